"""CkcBackend's memory and its forward-only evaluation (ckc/train/ckc_backend.py,
ckc/train/compile_child.py, runtime/library/ckc_runtime.c).

- eval_loss runs the library's @eval_loss (the forward and the loss, no
  backward): its loss equals the training step's loss for the same batch
  within EVAL_TOL (absolute; the two use the same forward kernels, the step's
  variants also saving rstd / lse), and it leaves the gradients bit for bit
  as they were;
- the generated @eval_loss calls no backward kernel and needs no more
  activation memory than the region @train_step already has;
- the backend keeps no Python copy of the weights: references to the
  caller's arrays until the library exists, nothing after;
- a recompile for a longer sequence moves weights, gradients, moments and the
  step into the new library unchanged;
- the library is cached on its inputs: a second backend of the same model
  loads it without running the compiler (and without importing xDSL), and a
  failing compile is one CkcTrainError line.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from ckc.train.ckc_backend import CkcBackend, CkcTrainError, library_key
from ckc.train.models import family_config, init_weights
from ckc.train.trainer import OptimConfig

EVAL_TOL = 1e-6  # |eval_loss - train_step loss|, absolute (losses ~ log(vocab) ~ 6)
VOCAB = 320
SEQ = 16


def _cfg(family: str):
    return family_config(f"{family}:tiny", vocab_size=VOCAB)


def _batch(rng, rows: int, seq: int = SEQ):
    tok = rng.integers(0, VOCAB, (rows, seq + 1)).astype(np.int32)
    return tok[:, :-1].copy(), tok[:, 1:].copy()


def _arrays(obj, seen=None):
    """Every ndarray reachable from obj through attributes, dicts, lists and tuples."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _arrays(v, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from _arrays(vars(obj), seen)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
def test_eval_loss_is_the_step_loss_and_leaves_gradients(family):
    cfg = _cfg(family)
    be = CkcBackend(cfg, init_weights(cfg, 0), max_tokens=SEQ, threads=2)
    rng = np.random.default_rng(0)
    x, y = _batch(rng, 3)
    y[1, 5:9] = -100  # ignored targets weigh nothing, in both
    zero = be.gradients()
    assert all(not a.any() for a in zero.values())
    e0 = be.eval_loss(x, y)
    assert all(not a.any() for a in be.gradients().values()), "eval wrote a gradient"
    loss = be.train_step(x, y, 0.5)
    g1 = be.gradients()
    assert any(a.any() for a in g1.values())
    e1 = be.eval_loss(x, y)
    g2 = be.gradients()
    assert abs(e0 - loss) <= EVAL_TOL and abs(e1 - loss) <= EVAL_TOL, (e0, e1, loss)
    for n in g1:
        assert np.array_equal(g1[n], g2[n]), n
    # shorter sequences and one row ([T] form)
    assert abs(be.eval_loss(x[0, :7], y[0, :7]) - be.train_step(x[0, :7], y[0, :7], 0.0)) <= EVAL_TOL


def test_eval_function_is_forward_only():
    cfg = _cfg("llama")
    be = CkcBackend(cfg, init_weights(cfg, 0), max_tokens=SEQ)
    src = (be.library.parent / "model.c").read_text()
    body = src[src.index("int ckc_gen_eval_loss("):]
    body = body[: body.index("\n}\n")]
    calls = set(re.findall(r"\b(ck_\w+?)_f32_\w+\(", body))
    assert "ck_cross_entropy" in calls and "ck_gemm" in calls
    assert not [c for c in calls if c.endswith("_grad") or c in ("ck_axpy", "ck_adamw")], calls
    mem = (be.library.parent / "memory.txt").read_text()
    region = int(re.search(r"region activations +offset +[\d,]+ +size +([\d,]+)", mem).group(1).replace(",", ""))
    peaks = dict(re.findall(r"## Function @(\w+):.*?activation peak ([\d,]+) bytes", mem, re.S))
    peaks = {k: int(v.replace(",", "")) for k, v in peaks.items()}
    assert set(peaks) == {"train_step", "eval_loss", "zero_grads", "optimizer_step"}
    assert peaks["eval_loss"] <= peaks["train_step"] <= region
    # the optimizer works in place on the parallel blocks: one float (the clip coefficient) of its own
    assert peaks["optimizer_step"] <= 64 and peaks["zero_grads"] == 0
    assert re.search(r"## Optimizer blocks", mem) and "params.decay" in mem and "adam_v.no_decay" in mem


def test_backend_keeps_no_copy_of_the_weights():
    cfg = _cfg("gpt2")
    w = init_weights(cfg, 0)
    be = CkcBackend(cfg, w, OptimConfig())  # no library yet: references only
    held = list(_arrays(be))
    assert held and all(any(a is v for v in w.values()) for a in held)
    rng = np.random.default_rng(1)
    x, y = _batch(rng, 2)
    be.train_step(x, y)  # compiles; the weights go into the runtime
    be.optimizer_step(1e-3)
    assert list(_arrays(be)) == [], "the backend holds arrays after compiling"
    assert set(w) == set(cfg.expected_shapes())  # the caller's dict is left as it was
    assert not np.array_equal(be.get_weights()["blk.0.ffn_up.weight"], w["blk.0.ffn_up.weight"])


def test_recompile_moves_every_state():
    cfg = _cfg("llama")
    be = CkcBackend(cfg, init_weights(cfg, 0), OptimConfig(), max_tokens=8)
    rng = np.random.default_rng(2)
    be.train_step(*_batch(rng, 2, 8))
    be.optimizer_step(1e-3)
    be.train_step(*_batch(rng, 1, 8), 0.5)  # gradients pending across the recompile
    w0, g0, (s0, m0, v0) = be.get_weights(), be.gradients(), be.get_optimizer_state()
    x, y = _batch(rng, 1, 12)
    e = be.eval_loss(x, y)  # longer: recompiles
    assert be.model.max_tokens == 12
    w1, g1, (s1, m1, v1) = be.get_weights(), be.gradients(), be.get_optimizer_state()
    assert s0 == s1 == 1
    for n in w0:
        assert np.array_equal(w0[n], w1[n]) and np.array_equal(m0[n], m1[n]) and np.array_equal(v0[n], v1[n]), n
    for n in g0:
        assert np.array_equal(g0[n], g1[n]), n
    assert abs(e - be.train_step(x, y, 0.0)) <= EVAL_TOL


def test_cached_library_needs_no_compiler(monkeypatch):
    cfg = _cfg("llama")
    a = CkcBackend(cfg, init_weights(cfg, 0), max_tokens=SEQ)
    k = library_key(cfg, SEQ)
    assert k == library_key(cfg, SEQ)
    from ckc.train.trainer import OptimConfig

    # the optimizer's hyperparameters are compiled in (add-optimizer), so they enter the key
    assert library_key(cfg, SEQ, optim=OptimConfig()) == k
    assert len({k, library_key(cfg, SEQ + 1), library_key(cfg, SEQ, recompute="all"),
                library_key(cfg, SEQ, simd="scalar"), library_key(cfg, SEQ, optim=OptimConfig(weight_decay=0.0)),
                library_key(cfg, SEQ, optim=OptimConfig(grad_clip=0.0))}) == 6
    assert a.library.parent.name == k

    def no_child(*args, **kw):
        raise AssertionError(f"ran {args[0] if args else kw} for a cached library")

    monkeypatch.setattr(subprocess, "run", no_child)
    b = CkcBackend(cfg, init_weights(cfg, 0), max_tokens=SEQ)
    assert b.library == a.library
    monkeypatch.undo()
    # a fresh process loading it imports no xDSL
    code = ("import sys; from ckc.train.models import family_config, init_weights; "
            "from ckc.train.ckc_backend import CkcBackend; "
            f"cfg = family_config('llama:tiny', vocab_size={VOCAB}); "
            f"be = CkcBackend(cfg, init_weights(cfg, 0), max_tokens={SEQ}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'xdsl' or m.startswith('ckc.passes')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_compile_errors_are_one_line():
    cfg = _cfg("llama")
    with pytest.raises(CkcTrainError, match=r"^compiling the training library failed: autodiff: recompute must be") as e:
        CkcBackend(cfg, init_weights(cfg, 0), max_tokens=SEQ, recompute="sometimes")
    assert "\n" not in str(e.value)
    with pytest.raises(CkcTrainError, match="select-simd: unknown target 'mmx'") as e:
        CkcBackend(cfg, init_weights(cfg, 0), max_tokens=SEQ, simd="mmx")
    assert "\n" not in str(e.value)


def test_lower_transformer_eval_loss_mode():
    """``eval_loss`` is @train_step's tensorop function under another name,
    asked for by name only (not in the default modes)."""
    from xdsl.context import Context
    from xdsl.dialects import func

    from ckc.importers.to_ir import build_module
    from ckc.passes.lower_transformer import LowerTransformer

    cfg = _cfg("gpt2")
    m = build_module(cfg, None)
    LowerTransformer(modes=("train_step", "eval_loss")).apply(Context(), m)
    fs = {f.sym_name.data: f for f in m.ops if isinstance(f, func.FuncOp)}
    assert set(fs) == {"train_step", "eval_loss"}
    ops = {k: [op.name for op in f.body.block.ops] for k, f in fs.items()}
    assert ops["eval_loss"] == ops["train_step"] and ops["eval_loss"][-2:] == ["tensorop.cross_entropy", "func.return"]
    assert fs["eval_loss"].function_type == fs["train_step"].function_type
    m = build_module(cfg, None)
    LowerTransformer().apply(Context(), m)
    assert "eval_loss" not in {f.sym_name.data for f in m.ops if isinstance(f, func.FuncOp)}
