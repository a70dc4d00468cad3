"""`ckc parity --mode train`: one training step of the compiled ``@train_step``
against torch autograd, op by op.

The training library is built as a record build (``lower-to-c{record}``,
``-DCKC_RECORD``, record.json: ckc/train/compile_child.py), one sequence
(the prompt's tokens, each predicting the next) runs through
``CkcBackend.train_step``, and every kernel call's outputs are recorded. The
peer is ckc's PyTorch training backend (``TorchBackend``: the transformers
model with the same weights, eager attention) running the same step, with
the transformers reference's hooks (ckc/parity/ref_hf.py) keeping every
mapped activation and its gradient (``retain_grad``).

Compared, in execution order:
- every saved activation of the forward (``l3_ffn_up``) with the module's
  output;
- every activation gradient (``d_l3_ffn_up``, its final value: a buffer the
  backward accumulates into is compared after its last write; the ``.2``,
  ``.3`` partial sums are skipped) with the tensor's ``.grad``;
  ``d_logits`` is what the fused cross-entropy leaves in ``logits``;
- every parameter gradient (``grad.blk.3.ffn_up.weight``) with the
  parameter's ``.grad`` (in ckc's layout, ckc/train/export.py).
``.rstd`` / ``.lse`` (what a forward kernel saves for its backward) and the
per-row losses have no counterpart. Tolerance: max rel 1e-4 for all
(test/py/test_train_compiled.py's gradient tolerance).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ckc.errors import CkcError

TOLERANCE = 1e-4


def _key(buffer: str, kernel: str) -> tuple[str, str] | None:
    """(kind, IR value name) of a recorded train_step output, or None to skip."""
    from ckc.parity.calls import value_name

    if re.search(r"\.\d+$", buffer):
        return None  # a partial sum the backward adds into the real buffer
    if buffer.startswith("grad."):
        return "param", buffer[len("grad."):]
    if buffer == "logits" and kernel.startswith("cross_entropy"):
        return "grad", "logits"
    if buffer.startswith("d_"):
        return "grad", value_name(buffer[2:])
    return "value", value_name(buffer)


def train_parity(path, ids: list[int], *, threads: int = 1) -> dict:
    from ckc.importers import load_model
    from ckc.parity.calls import layer_of
    from ckc.parity.compare import Row, align, errors
    from ckc.parity.record import Recorder, load_table
    from ckc.parity.ref_hf import HFReference
    from ckc.train.ckc_backend import CkcBackend
    from ckc.train.export import from_hf
    from ckc.train.trainer import TorchBackend

    if len(ids) < 2:
        raise CkcError("--mode train needs a prompt of at least 2 tokens (each predicts the next)")
    path = Path(path)
    cfg, ws = load_model(path, weights="f32")
    w = {n: np.array(ws[n], np.float32) for n in cfg.expected_shapes()}
    tokens = np.array(ids[:-1], np.int32)[None]
    targets = np.array(ids[1:], np.int32)[None]
    T = tokens.shape[1]

    be = CkcBackend(cfg, w, max_tokens=T, threads=threads, record=True)
    table = load_table(be.library.parent)
    rec = Recorder(be.library, table)
    try:
        loss = be.train_step(tokens, targets)
        runs = rec.take(list(tokens[0]))
    finally:
        rec.close()
    grads = be.gradients()

    tb = TorchBackend(cfg, w, threads=1, attn="eager")
    permute = (cfg.n_heads, cfg.n_kv_heads) if getattr(cfg, "rope_style", "") == "interleaved" else None
    ref = HFReference(tb.model, permute)
    keys = set()
    for o in runs[0].outputs:
        k = _key(o.name, o.call["kernel"])
        if k and k[0] != "param":
            hk = ref.mapping(k[1])
            if hk:
                keys.add(hk)
    holder = {}

    def step():
        holder["loss"] = tb.train_step(tokens.astype(np.int64), targets.astype(np.int64))

    values, gradients = ref.run(keys, step, T=T, grads=True)
    pgrads = {n: from_hf(cfg, n, tb.pmap[n], tb.params[n].grad.detach().numpy(), moments=True) for n in tb.names}

    last: dict[str, tuple] = {}  # buffer -> (order, output), its last write
    for i, o in enumerate(runs[0].outputs):
        name = "d_logits" if (o.name == "logits" and o.call["kernel"].startswith("cross_entropy")) else o.name
        last[name] = (i, o)
    rows, first = [], None
    for name, (_, o) in sorted(last.items(), key=lambda kv: kv[1][0]):
        c = o.call
        k = _key(o.name, c["kernel"])
        if k is None:
            continue
        kind, vname = k
        if kind == "param":
            ref_arr, rname = pgrads.get(vname), (f"{vname}.grad" if vname in pgrads else None)
        else:
            hk = ref.mapping(vname)
            src = values if kind == "value" else gradients
            ref_arr, rname = (src.get(hk), hk) if hk else (None, None)
            if rname and kind == "grad":
                rname += " (grad)"
        own = layer_of(re.sub(r"^(grad\.|d_)", "", name))  # the output's own layer (a norm's grad
        row = Row(c["function"], c["index"], o.out, c["kernel"], name,   # also writes the layer below's)
                  own if own is not None else o.layer, list(o.data.shape), rname, TOLERANCE, list(c["ins"]))
        rows.append(row)
        if ref_arr is None:
            row.ref_name = None
            continue
        a = align(o.data, ref_arr)
        if a is None:
            row.note = f"shape {list(o.data.shape)} vs reference {list(np.shape(ref_arr))}"
            row.ref_name = None
            continue
        e = errors(o.data, a)
        row.runs, row.worst_run = 1, 0
        row.max_abs, row.max_rel, row.cos = e["max_abs"], e["max_rel"], e["cos"]
        if first is None and e["max_rel"] > TOLERANCE:
            first = {"run": 0, "function": "train_step", "n": T, "pos": 0, "row": row, **e, "inputs": [
                {"name": n, "kind": "weight" if ".weight" in n or ".bias" in n else "activation or gradient"}
                for n in c["ins"]]}
    missing = sorted(set(pgrads) - {r.name[len("grad."):] for r in rows if r.name.startswith("grad.")})
    if missing:
        raise CkcError(f"the training library recorded no gradient for {missing[0]}")
    return {"rows": rows, "first": first, "loss": loss, "torch_loss": holder["loss"], "tokens": ids,
            "artifacts": str(be.library.parent), "simd": "native", "grads": len(grads)}
