"""Aligning a record build's outputs with a reference and judging each op.

Per output and run: the reference tensor the mapping names, cut to the rows
the run wrote (a single-row output of a multi-row run, e.g. the last
position's final norm, is the reference's last row) and reshaped to the
kernel's layout when only the layout differs (``[T, heads, head_dim]`` vs
``[T, heads*head_dim]``). Errors:

- max abs: ``max |x - ref|``
- max rel: ``max |x - ref| / max |ref|`` (relative to the tensor's scale,
  not per element, so near-zero elements do not dominate)
- cosine similarity of the flattened tensors

An op is OK when its max rel stays within the tolerance of its kernel kind
(:func:`tolerance`; after an op the reference computes less exactly, e.g.
llama.cpp's fp16-tabulated GELU, every later op inherits that op's), or, from
the first op on quantized weights on, when its cosine similarity stays at or
above QUANTIZED_MIN_COS, in every run; the table keeps the worst run. The first
divergence is the first output, in execution order (runs in order, calls in
order within a run), over its tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ckc.parity.calls import op_label, value_name

# max rel per kernel kind, fp32 against an fp32 reference: a few ulps of
# accumulation-order difference per op, compounded over the layers before it.
TOLERANCE = {"default": 1e-4, "embedding": 1e-6,
             # a KV cache stored in f16 / q8_0 (--kv-type; the `ir` reference rounds the same
             # way): an fp32 last-bit difference upstream may flip one rounding, one f16 ulp
             # (2^-10 relative) or one q8_0 step (amax/127 of the block)
             "kv_write_f16": 1e-3, "kv_write_q8_0": 8e-3}
# Kernels on quantized weights, or a reference multiplying quantized weights with
# 8-bit-quantized activations (llama.cpp), are judged by cosine similarity instead:
# about 1e-2 relative per matmul, compounding over the layers, with outliers that
# make max rel spiky (SmolLM2's Q4_1 against llama.cpp: max rel up to 0.17, cosine
# >= 0.9958 everywhere; a planted bug gives cosine 0.7).
QUANTIZED_MIN_COS = 0.99
# llama.cpp tabulates GELU at fp16 inputs (ggml's GELU table), 2e-3 there;
# every op after a loosened one inherits its tolerance (the error flows on).
REFERENCE_TOLERANCE = {"llama.cpp": {"gelu": 2e-3, "geglu": 2e-3}}


def quantized_kernel(kernel: str) -> bool:
    if kernel.startswith(("kv_write_", "attention_kv", "attention_decode_kv")):
        return False  # a quantized KV cache, not weights: fp32 tolerances against a reference that rounds alike
    return any(q in kernel.split("<")[0] for q in ("q4", "q8", "q5", "q6", "q2", "q3"))


def tolerance(kernel: str, reference: str = "") -> float:
    """The max rel tolerance of a kernel kind (fp32 kernels; see QUANTIZED_MIN_COS)."""
    base = kernel.split("<")[0]
    t = TOLERANCE.get(base, TOLERANCE["default"])
    return max(t, REFERENCE_TOLERANCE.get(reference, {}).get(base, 0.0))


def errors(x: np.ndarray, ref: np.ndarray) -> dict:
    x = x.astype(np.float64).ravel()
    r = ref.astype(np.float64).ravel()
    d = np.abs(x - r)
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    max_abs = float(d.max()) if d.size else 0.0
    nx, nr = float(np.linalg.norm(x)), float(np.linalg.norm(r))
    cos = float(x @ r / (nx * nr)) if nx > 0 and nr > 0 else (1.0 if nx == nr else 0.0)
    finite = bool(np.isfinite(x).all())
    return {"max_abs": max_abs if finite else float("inf"),
            "max_rel": (max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))) if finite
            else float("inf"),
            "cos": cos if finite else float("nan")}


def align(x: np.ndarray, ref: np.ndarray) -> np.ndarray | None:
    """The reference cut and shaped like the recorded output, or None."""
    ref = np.asarray(ref)
    if ref.ndim >= 2 and ref.shape[0] == 1 and ref.ndim > x.ndim:  # a batch dimension
        ref = ref[0]
    if ref.size == x.size:
        return ref.reshape(x.shape)
    rows = x.shape[0] if x.ndim >= 1 else 1
    if ref.ndim >= 1 and ref.shape[0] > rows and ref[-rows:].size == x.size:
        return ref[-rows:].reshape(x.shape)
    return None


@dataclass
class Row:
    """One output of one call, over every run that executed it."""

    function: str
    call: int
    out: int
    kernel: str
    name: str
    layer: int | None
    shape: list
    ref_name: str | None
    tol: float
    ins: list = field(default_factory=list)
    max_abs: float = 0.0
    max_rel: float = 0.0
    cos: float = 1.0
    runs: int = 0
    worst_run: int | None = None
    note: str = ""
    min_cos: float | None = None  # quantized: judged by cosine similarity instead of max rel

    def diverges(self, max_rel: float, cos: float) -> bool:
        if self.min_cos is not None:
            return not (cos >= self.min_cos)
        return not (max_rel <= self.tol)

    @property
    def status(self) -> str:
        if self.ref_name is None or self.runs == 0:
            return "no counterpart"
        return "DIVERGED" if self.diverges(self.max_rel, self.cos) else "OK"

    @property
    def criterion(self) -> str:
        return f"cos >= {self.min_cos:g}" if self.min_cos is not None else f"max rel <= {self.tol:g}"

    def as_dict(self) -> dict:
        return {"function": self.function, "call": self.call, "out": self.out, "kernel": self.kernel,
                "op": op_label(self.name), "buffer": self.name, "layer": self.layer, "shape": self.shape,
                "reference": self.ref_name, "tolerance": self.tol, "max_abs": self.max_abs,
                "max_rel": self.max_rel, "cos": self.cos, "runs": self.runs, "worst_run": self.worst_run,
                "status": self.status, "criterion": self.criterion, "note": self.note, "ins": self.ins}


def compare(runs, captures: list[dict], mapping, reference: str, loosen=None) -> tuple[list[Row], dict | None]:
    """Rows in execution order (first appearance) and the first divergence.
    `loosen(call)`: a looser tolerance the reference needs for that call (or None)."""
    rows: dict[tuple, Row] = {}
    first = None
    carried = 0.0  # the loosest reference-specific tolerance so far, in execution order
    quant = False  # a quantized op ran before: cosine from here on
    for r, (run, cap) in enumerate(zip(runs, captures)):
        seen: dict[str, tuple] = {}  # buffer -> (data, ref) of its latest write in this run
        for o in run.outputs:
            c = o.call
            key = (c["function"], c["index"], o.out, o.layer)
            vname = value_name(o.name)
            rname = mapping(vname)
            row = rows.get(key)
            if row is None:
                tol = tolerance(c["kernel"], reference)
                if tol != tolerance(c["kernel"]):
                    carried = max(carried, tol)
                quant = quant or quantized_kernel(c["kernel"]) or bool(loosen is not None and loosen(c))
                row = rows[key] = Row(c["function"], c["index"], o.out, c["kernel"], o.name, o.layer,
                                      list(o.data.shape), rname, max(tol, carried), list(c["ins"]),
                                      min_cos=QUANTIZED_MIN_COS if quant else None)
            ref = cap.get(rname) if rname is not None else None
            if ref is None:
                seen[o.name] = (o.data, None)
                continue
            a = align(o.data, ref)
            if a is None:
                row.note = f"shape {list(o.data.shape)} vs reference {list(np.shape(ref))}"
                seen[o.name] = (o.data, None)
                continue
            e = errors(o.data, a)
            row.runs += 1
            if e["max_rel"] > row.max_rel or row.worst_run is None:
                row.max_rel, row.worst_run = e["max_rel"], r
            row.max_abs = max(row.max_abs, e["max_abs"])
            row.cos = min(row.cos, e["cos"]) if np.isfinite(e["cos"]) else float("nan")
            if first is None and row.diverges(e["max_rel"], e["cos"]):
                first = {"run": r, "function": run.function, "n": run.n, "pos": run.pos, "row": row,
                         **e, "inputs": _inputs(c, seen, cap, mapping)}
            seen[o.name] = (o.data, a)
    return list(rows.values()), first


def _inputs(call: dict, seen: dict, cap: dict, mapping) -> list[dict]:
    """What the diverging call read: each input's own error (recorded in this
    run before the call) or that it is a weight / token ids / not recorded."""
    out = []
    for name in call["ins"]:
        if name in seen:
            data, ref = seen[name]
            d = {"name": name, "kind": "activation", "shape": list(data.shape),
                 "values": [float(v) for v in data.ravel()[:4]]}
            if ref is not None:
                d.update(errors(data, ref))
                d["reference_values"] = [float(v) for v in np.asarray(ref).ravel()[:4]]
            out.append(d)
        elif name == "tokens":
            out.append({"name": name, "kind": "token ids"})
        elif ".weight" in name or ".bias" in name or name.startswith("const."):
            out.append({"name": name, "kind": "weight"})
        else:
            out.append({"name": name, "kind": "written by an earlier run (KV cache) or not recorded"})
    return out
