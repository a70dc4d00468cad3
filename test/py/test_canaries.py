"""Arena canaries, proven: a debug build catches a kernel writing out of bounds
and names the canary (the region it ends, the buffer right before it) and the
call that killed it; the training arena has canaries too.

The out-of-bounds write is real: lower-to-c's test-only ``overflow=NAME``
option (CompileOptions.overflow / CkcBackend(overflow=...)) gives every call
that writes buffer NAME an output pointer 8 bytes past NAME's planned offset,
so the kernel writes NAME's last 8 bytes past its end. The tests pick NAME as a
buffer that ends right at a canary (read from the memory plan) and write it
whole, so the write lands exactly on the canary.
"""

from __future__ import annotations

import numpy as np
import pytest

from ckc import modelzoo
from ckc.dialects import buffer as B
from ckc.pipeline import CompileOptions, compile_model, module_at_stage
from ckc.session import ModelMemoryError, Session

CHUNK = 8


def next_to_canary(module, region: str, function: str | None) -> tuple[str, int]:
    """(name, canary offset) of a buffer of ``region`` (in ``function``, or at
    module level) whose last byte is right before a canary of the arena."""
    arena = next(a for a in module.ops if isinstance(a, B.ArenaOp) and a.sym_name.data == "arena")
    canaries = set(arena.canary_offsets)
    if function is None:
        bufs = [b for b in module.ops if isinstance(b, B.BufferOp)]
    else:
        f = next(op for op in module.ops if getattr(op, "sym_name", None) and op.sym_name.data == function)
        bufs = [b for b in f.walk() if isinstance(b, B.BufferOp)]
    for b in bufs:
        if b.region.data == region and b.offset is not None and b.offset.data + b.footprint in canaries:
            return b.buffer_name, b.offset.data + b.footprint
    raise AssertionError(f"no {region} buffer of {function} ends at a canary")


def test_out_of_bounds_kernel_write_is_caught_and_named(tmp_path):
    src = modelzoo.hf_dir("llama")
    opts = CompileOptions(debug=True, max_tokens=CHUNK)
    name, canary = next_to_canary(module_at_stage(src, "buffer", opts), "activations", "prefill")
    compile_model(src, tmp_path / "bad", CompileOptions(debug=True, max_tokens=CHUNK, overflow=name), quiet=True)
    tokens = np.arange(3, 3 + CHUNK, dtype=np.int32)  # a whole chunk: every row of the buffer is written
    with Session(tmp_path / "bad", threads=1) as s:
        assert s.info["debug"] == 1
        with pytest.raises(ModelMemoryError) as err:
            s.prefill(tokens)
        msg = str(err.value)
        assert f"at offset {canary} (end of region 'activations', after " in msg and f"@{name}" in msg
        assert "overwritten by call @prefill #" in msg and f"-> {name})" in msg  # the call that wrote it
        # the model is usable again after a reset (debug builds rewrite the canaries)
        s.reset()
        with pytest.raises(ModelMemoryError):
            s.prefill(tokens)
    # without the hook the same debug build runs clean
    compile_model(src, tmp_path / "good", opts, quiet=True)
    with Session(tmp_path / "good", threads=1) as s:
        assert np.isfinite(s.prefill(tokens)).all()


def test_training_arena_has_canaries_checked_in_debug_builds():
    """The training library's arena: plan-memory's canaries (after each region:
    grads, adam_m, adam_v, activations) are written by ckc_model_create; a debug
    build (CkcBackend(debug=True)) checks them after every kernel call. The
    overflow targets the last gradient buffer (its kernel writes it whole at any
    length), then the AdamW v block the generated optimizer writes; each error
    names the region and the buffer the canary ends."""
    from xdsl.context import Context

    from ckc.importers import load_model
    from ckc.importers.to_ir import build_module
    from ckc.train.ckc_backend import CkcBackend, CkcTrainError
    from ckc.train.compile_child import training_passes

    cfg, store = load_model(modelzoo.hf_dir("llama"), rope_style="neox")
    weights = {n: np.array(store[n], np.float32) for n in cfg.expected_shapes()}
    module = build_module(cfg, None)
    for p in training_passes(CHUNK):
        p.apply(Context(), module)
    name, canary = next_to_canary(module, "grads", None)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, cfg.vocab_size, size=(1, CHUNK + 1)).astype(np.int32)
    x, y = tokens[:, :-1], tokens[:, 1:]

    good = CkcBackend(cfg, weights, threads=1, max_tokens=CHUNK, debug=True)
    assert np.isfinite(good.train_step(x, y)) and np.isfinite(good.optimizer_step(1e-3))
    assert np.isfinite(good.eval_loss(x, y))

    bad = CkcBackend(cfg, weights, threads=1, max_tokens=CHUNK, debug=True, overflow=name)
    with pytest.raises(CkcTrainError) as err:
        bad.train_step(x, y)
    msg = str(err.value)
    assert msg.startswith(f"train_step: arena canary #") and f"at offset {canary} (end of region 'grads', after @{name})" in msg
    assert "overwritten by call @train_step #" in msg and f"-> " in msg and name in msg.split("overwritten by call")[1]

    # the library names a canary after every region of the training arena
    import ctypes

    lib = ctypes.CDLL(str(good.library))
    n = ctypes.c_int.in_dll(lib, "ckc_gen_n_canaries").value
    names = [s.decode() for s in (ctypes.c_char_p * n).in_dll(lib, "ckc_gen_canary_names")]
    assert [nm.split("'")[1] for nm in names] == ["grads", "adam_m", "adam_v", "activations"]

    # canaries sit between all the training arena's regions: AdamW's v block (written only by the
    # generated @optimizer_step, through the group alias that spans it) ends at one too
    arena = next(a for a in module.ops if isinstance(a, B.ArenaOp) and a.sym_name.data == "arena")
    assert [r.kind.data for r in arena.arena_regions.data][:3] == ["grads", "adam_m", "adam_v"]
    assert len(arena.canary_offsets) == len(arena.arena_regions.data)
    alias, v_canary = next((b.buffer_name, b.offset.data + b.size.data) for b in module.ops
                           if isinstance(b, B.BufferOp) and b.region.data == "adam_v" and B.covers(b)
                           and b.offset.data + b.size.data in set(arena.canary_offsets))
    last = B.covers(next(b for b in module.ops if isinstance(b, B.BufferOp) and b.buffer_name == alias))[1]
    bad_v = CkcBackend(cfg, weights, threads=1, max_tokens=CHUNK, debug=True, overflow=alias)
    assert np.isfinite(bad_v.train_step(x, y))
    with pytest.raises(CkcTrainError) as err:
        bad_v.optimizer_step(1e-3)
    msg = str(err.value)
    assert msg.startswith("optimizer_step: arena canary #")
    assert f"at offset {v_canary} (end of region 'adam_v', after @{last})" in msg
    assert "overwritten by call @optimizer_step #" in msg and "ck_adamw_coef" in msg
