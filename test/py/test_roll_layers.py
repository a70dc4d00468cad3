"""roll-layers (passes/roll_layers.py) and lower-to-c{roll readable}: the
layers as C loops over per-layer offset tables compute the same bits as the
unrolled calls.

- inference, every family of ckc.modelzoo: prefill_all, prefill and decode
  logits of the rolled build (CompileOptions(), the default) and of the
  unrolled one (CompileOptions(roll=False)) are equal bit for bit; the rolled
  model.c has its layer loop and is shorter;
- training: the loss and every gradient of one @train_step (forward loop and
  backward loop, which runs its layers downwards) equal bit for bit;
- the generated C is deterministic (the same IR gives the same bytes);
- the rolled buffer IR verifies and round-trips through its text.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from ckc import modelzoo
from ckc.pipeline import CompileOptions, compile_model
from ckc.session import Session


def _logits(d, toks: np.ndarray) -> np.ndarray:
    with Session(d, threads=2) as s:
        got = [s.prefill_all(toks[:5]).reshape(-1), s.prefill(toks[5:9]).reshape(-1)]
        got += [s.decode(int(t)).reshape(-1) for t in toks[9:]]
    return np.concatenate(got)


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_rolled_logits_bit_identical(family, tmp_path):
    toks = np.random.default_rng(sum(map(ord, family))).integers(0, 300, size=12).astype(np.int32)
    got = {}
    for roll in (True, False):
        d = tmp_path / f"roll{int(roll)}"
        compile_model(modelzoo.gguf_file(family), d, CompileOptions(max_tokens=16, roll=roll), quiet=True)
        got[roll] = _logits(d, toks)
        src = (d / "model.c").read_text()
        assert ("for (int l = 0; l < " in src) == roll, family
        got[f"lines{int(roll)}"] = src.count("\n")
    assert got[True].tobytes() == got[False].tobytes(), family
    assert got["lines1"] < got["lines0"]


@pytest.mark.parametrize("batch", [1, 2])
def test_rolled_train_step_bit_identical(batch, tmp_path, monkeypatch):
    """@train_step's forward loop and its backward loop (layers downwards);
    batch 2: the batched step (lower-transformer{seq_len}: seq_positions,
    rope_ids, attention_*_seq), whose layers roll the same way."""
    import ckc.pipeline as P
    from ckc.importers import load_model
    from ckc.train import ckc_backend, compile_child

    cfg, ws = load_model(modelzoo.hf_dir("llama"))
    w = {n: np.array(ws[n], np.float32) for n in cfg.expected_shapes()}
    spec, compile_train = P.training_spec, ckc_backend.compile_train
    rng = np.random.default_rng(3)
    tok = rng.integers(1, cfg.vocab_size, (2, 17 if batch == 1 else 9)).astype(np.int32)
    T = 16 if batch == 1 else 8  # batched: two sequences of exactly T tokens in one call
    out = {}
    for roll in (True, False):
        d = tmp_path / f"roll{int(roll)}"
        monkeypatch.setattr(P, "training_spec", lambda *a, roll=roll, **k: spec(*a, **k, roll=roll))
        compile_child.build(cfg, T, "native", "none", d, batch=batch)
        src = (d / "model.c").read_text()
        loops = re.findall(r"/\* layers (\d+)\.\.(\d+) \*/", src.split("int ckc_gen_train_step(")[1].split("\n}\n")[0])
        assert loops == ([("0", "1"), ("1", "0")] if roll else []), loops
        monkeypatch.setattr(ckc_backend, "compile_train", lambda c, t, d=d, **k: compile_train(c, t, out_dir=d))
        be = ckc_backend.CkcBackend(cfg, w, max_tokens=T, threads=1, batch=batch)
        assert be.model.max_batch == batch  # the library built above: one call for both sequences
        loss = be.train_step(tok[:, :-1].copy(), tok[:, 1:].copy())
        out[roll] = (np.float32(loss).tobytes(), {n: g.tobytes() for n, g in be.gradients().items()})
    assert out[True][0] == out[False][0]
    assert out[True][1].keys() == out[False][1].keys()
    bad = [n for n in out[True][1] if out[True][1][n] != out[False][1][n]]
    assert not bad, bad


def _buffer_module(family: str, roll: bool):
    from ckc.importers.to_ir import build_module
    from ckc.importers import load_model
    from ckc.pipeline import passes
    from ckc.universe import make_context

    cfg, _ = load_model(modelzoo.hf_dir(family))
    m = build_module(cfg, None, train=False)
    ctx = make_context()
    for p in passes(CompileOptions(simd="avx2", roll=roll)):
        if p.name == "lower-to-c":
            break
        p.apply(ctx, m)
    return m, ctx


def test_rolled_c_is_deterministic_and_ir_round_trips():
    from ckc.artifacts import ir_text
    from ckc.emit_c import emit_c
    from ckc.passes.lower_to_c import LowerToC
    from ckc.passes.roll_layers import RollLayers
    from xdsl.parser import Parser

    texts, sources = [], []
    for _ in range(2):
        m, ctx = _buffer_module("gemma3", True)
        RollLayers().apply(ctx, m)
        m.verify()
        texts.append(ir_text(m))
        again = Parser(ctx, texts[-1]).parse_module()  # the rolled IR parses back to the same text
        assert ir_text(again) == texts[-1]
        LowerToC(readable=True).apply(ctx, m)
        sources.append(emit_c(m))
    assert texts[0] == texts[1] and sources[0] == sources[1]
    t = texts[0]
    # gemma3: 5 sliding-window layers roll, the global layer 5 stays unrolled, in each function
    assert t.count("buffer.loop %l = 0 to 5") == 3 and "@blk.5.attn_q.weight" in t
    assert "buffer.layers @attn_norm.weight = [@blk.0.attn_norm.weight, @blk.1.attn_norm.weight" in t
    src = sources[0]
    assert "static const size_t attn_norm_weight_off[5] = {" in src
    assert "/* layers 0..4 */" in src and "/* layer l: rmsnorm" in src and "/* layer 5: " in src
    assert "const float *attn_norm_weight = (const float *)(weights + attn_norm_weight_off[l]);" in src


def _loops(m) -> list[tuple[str, int, int, int]]:
    """(function, iterations, first layer, step) of every buffer.loop."""
    from ckc.dialects import buffer as B
    from xdsl.dialects import func

    out = []
    for f in m.ops:
        if isinstance(f, func.FuncOp):
            for op in f.walk():
                if isinstance(op, B.LoopOp):
                    a = op.attributes
                    first = a["ckc.first_layer"].value.data if "ckc.first_layer" in a else 0
                    step = a["ckc.layer_step"].value.data if "ckc.layer_step" in a else 1
                    out.append((f.sym_name.data, op.ub.data - op.lb.data, first, step))
    return out


def test_roll_layers_runs_begin_at_layers():
    """A 13-layer Gemma 3 (every 6th layer global): loops over layers 0..4 and
    6..10 (not over calls shifted by one after the global layer 5), in every
    function; a 4-layer @train_step (one sequence, and a batch of two): its
    forward upwards, its backward downwards."""
    import dataclasses

    from ckc.importers import load_model
    from ckc.importers.to_ir import build_module
    from ckc.passes.roll_layers import RollLayers
    from ckc.pipeline import passes, training_spec
    from ckc.universe import make_context

    cfg, _ = load_model(modelzoo.hf_dir("gemma3"))
    cfg = dataclasses.replace(cfg, n_layers=13, local_layers=tuple(i % 6 != 5 for i in range(13)))
    m, ctx = build_module(cfg, None, train=False), make_context()
    for p in passes(CompileOptions(simd="avx2")):
        if p.name == "lower-to-c":
            break
        p.apply(ctx, m)
    RollLayers().apply(ctx, m)
    m.verify()
    assert _loops(m) == [(f, n, first, 1) for f in ("prefill", "prefill_all", "decode")
                         for n, first in ((5, 0), (5, 6))]

    cfg, _ = load_model(modelzoo.hf_dir("llama"))
    cfg = dataclasses.replace(cfg, n_layers=4)
    # batch 2: the batched step's seq_positions call comes first, so layer 0 is like the others
    for spec in (training_spec(16, "avx2"), training_spec(8, "avx2", batch=2)):
        m = build_module(cfg, None)
        for p in passes(spec=spec):
            if p.name == "lower-to-c":
                break
            p.apply(ctx, m)
        RollLayers().apply(ctx, m)
        m.verify()
        assert _loops(m) == [("train_step", 4, 0, 1), ("train_step", 4, 3, -1), ("eval_loss", 4, 0, 1)], spec
