"""The slot-batched decode (``@decode_batch``, ``ckc_batch``, ``Session.batch``)
on the tiny model zoo: several sequences, each in its own KV-cache slot at its
own position, advanced in ONE compiled call, against the same sequences run one
at a time through prefill/decode (slot 0 of a separate model).

Tolerance: the attention of a slot's rows is the very call a single sequence
makes (kernels/slot_attention.c), so the only difference is the GEMMs running
with M = all rows instead of M = one sequence's rows; measured: llama 0 (bit
identical), gpt2 <= 1.5e-6 absolute (|logits| ~ 4). Asserted: 1e-5 absolute.
"""

from __future__ import annotations

import numpy as np
import pytest

from ckc import modelzoo
from ckc.pipeline import CompileOptions, compile_model
from ckc.session import ContextOverflowError, Session, SessionError, TokenRangeError

ATOL = 1e-5
SLOTS, CONTEXT = 3, 64


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def artifact(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"batch_{request.param}")
    compile_model(modelzoo.gguf_file(request.param), out, CompileOptions(slots=SLOTS, context=CONTEXT), quiet=True)
    return out


def _reference(artifact, prompt, steps):
    """Logits of every prompt row and of `steps` greedy decodes, one sequence alone."""
    with Session(artifact, threads=2) as s:
        rows = [s.prefill_all(prompt)]
        toks = list(prompt)
        for _ in range(steps):
            t = int(rows[-1][-1].argmax())
            toks.append(t)
            rows.append(s.decode(t)[None])
    return np.concatenate(rows), toks


def test_batch_equals_single_sequences(artifact):
    steps = 4
    with Session(artifact, threads=2) as b:
        assert b.slots == SLOTS and b.info["context"] == CONTEXT
        rng = np.random.default_rng(0)
        prompts = [rng.integers(0, b.vocab, n).tolist() for n in (5, 3, 9)]
        refs = [_reference(artifact, p, steps) for p in prompts]
        # one call: the three prompts' rows (chunked prefill of three sequences at once)
        slots = [i for i, p in enumerate(prompts) for _ in p]
        lg = b.batch(slots, sum(prompts, []))
        got, off = [], 0
        for p in prompts:
            got.append([lg[off:off + len(p)]])
            off += len(p)
        # decode steps: one row per sequence, different positions, in varying row order
        for step in range(steps):
            order = [2, 0, 1] if step % 2 else [0, 1, 2]
            lg = b.batch(order, [refs[i][1][len(prompts[i]) + step] for i in order])
            for r, i in enumerate(order):
                got[i].append(lg[r:r + 1])
        for i, (ref, _) in enumerate(refs):
            err = np.abs(np.concatenate(got[i]) - ref).max()
            assert err <= ATOL, (i, err)
        assert [b.slot_position(i) for i in range(SLOTS)] == [len(p) + steps for p in prompts]
        # a freed slot is reused: reset slot 1 and run another prompt in it while 0 and 2 decode
        b.slot_reset(1)
        assert b.slot_position(1) == 0
        new = rng.integers(0, b.vocab, 4).tolist()
        ref_new, _ = _reference(artifact, new, 0)
        lg = b.batch([0, 1, 1, 1, 1, 2], [refs[0][1][-1], *new, refs[2][1][-1]])
        assert np.abs(lg[1:5] - ref_new).max() <= ATOL


def test_out_rows_select_the_logits(artifact):
    """``out_rows``: only those rows go through the final norm and the lm_head
    (gather_rows), with the logits they have in the all-rows call; a call longer
    than max_batch (64) rows runs as several compute calls."""
    with Session(artifact, threads=2) as a, Session(artifact, threads=2) as b:
        rng = np.random.default_rng(3)
        slots = [0] * 30 + [1] * 50 + [2] * 3
        toks = rng.integers(0, a.vocab, len(slots)).tolist()
        every = a.batch(slots, toks)
        rows = [29, 63, 64, 79, 82]  # a chunk boundary (64) between them; chunk 2 has rows too
        some = b.batch(slots, toks, out_rows=rows)
        assert some.shape == (len(rows), b.vocab)
        assert np.abs(some - every[rows]).max() <= ATOL
        assert [b.slot_position(i) for i in range(SLOTS)] == [30, 50, 3]
        assert b.batch([0, 1], toks[:2], out_rows=[]).shape == (0, b.vocab)  # KV written, no logits
        assert [b.slot_position(i) for i in range(SLOTS)] == [31, 51, 3]
        for bad in ([1, 1], [2], [-1]):
            with pytest.raises(SessionError, match="rows must increase within"):
                b.batch([0, 1], toks[:2], out_rows=bad)
        assert [b.slot_position(i) for i in range(SLOTS)] == [31, 51, 3]


def test_prefill_chunks_interleave_with_decode(artifact):
    """A long prompt fed in chunks between the decode steps of another sequence
    gives the same logits as that prompt prefilled alone."""
    with Session(artifact, threads=2) as b:
        rng = np.random.default_rng(1)
        long, short = rng.integers(0, b.vocab, 40).tolist(), rng.integers(0, b.vocab, 3).tolist()
        ref_long, _ = _reference(artifact, long, 0)
        ref_short, toks = _reference(artifact, short, 5)
        for s in range(SLOTS):
            b.slot_reset(s)
        b.batch([2] * 3, short)
        got = []
        for step, lo in enumerate(range(0, 40, 8)):  # chunks of 8 rows of slot 0, one decode row of slot 2
            lg = b.batch([0] * 8 + [2], long[lo:lo + 8] + [toks[3 + step]])
            got.append(lg[:8])
            assert np.abs(lg[8] - ref_short[3 + step]).max() <= ATOL
        assert np.abs(np.concatenate(got) - ref_long).max() <= ATOL


def test_bad_batches_are_one_line_errors_and_change_nothing(artifact):
    with Session(artifact, threads=1) as b:
        b.batch([0, 1], [1, 2])
        before = [b.slot_position(i) for i in range(SLOTS)]
        with pytest.raises(SessionError, match=r"slot 3 at row 1 out of range \(the model has 3 slots\)"):
            b.batch([0, 3], [1, 2])
        with pytest.raises(TokenRangeError, match="out of range"):
            b.batch([0], [b.vocab])
        with pytest.raises(ContextOverflowError, match="context overflow: slot 1"):
            b.batch([1] * CONTEXT, [1] * CONTEXT)
        with pytest.raises(SessionError, match="2 slots for 1 tokens"):
            b.batch([0, 1], [1])
        assert [b.slot_position(i) for i in range(SLOTS)] == before
        with pytest.raises(SessionError, match="slot 7 out of range"):
            b.slot_reset(7)


def test_memory_plan_shows_kv_per_slot(artifact):
    text = (artifact / "memory.txt").read_text()
    assert f"## KV cache slots: {SLOTS} slots x " in text
    for s in range(SLOTS):
        assert f"  {s:<6} blk.0.k_cache" in text and f"{s * CONTEXT}..{(s + 1) * CONTEXT - 1}" in text
    assert "## Function @decode_batch" in text


def test_engine_batched_backend_equals_serial():
    """The serve engine on BatchedBackend (one compiled call per step, chunked
    prefill of new requests mixed with the decode of running ones, slots freed
    and reused) produces the same greedy tokens as on SerialBackend."""
    import threading

    from ckc.commands.run import compiled_dir, load_tokenizer
    from ckc.serve.engine import BatchedBackend, Engine, Params, Request, SerialBackend

    path = modelzoo.gguf_file("llama")
    tok = load_tokenizer(path)
    rng = np.random.default_rng(2)
    prompts = [rng.integers(3, 384, n).tolist() for n in (3, 11, 5, 17, 2, 9)]

    def run(backend) -> list[list[int]]:
        engine = Engine(backend, tok, prefill_chunk=4)  # prompts take several steps
        done = [threading.Event() for _ in prompts]
        reqs = []
        for i, p in enumerate(prompts):
            sink = (lambda ev, i=i: done[i].set() if ev.kind in ("done", "error") else None)
            reqs.append(Request(p, Params(max_tokens=10), sink))
            engine.submit(reqs[-1])
        try:
            for d in done:
                assert d.wait(120)
        finally:
            engine.close(drain=False)
        return [r.generated for r in reqs]

    serial = run(SerialBackend(compiled_dir(path, CompileOptions(context=CONTEXT)), 2, threads=1))
    batched = run(BatchedBackend(compiled_dir(path, CompileOptions(context=CONTEXT, slots=2)), 2, threads=1))
    assert batched == serial
    assert all(len(g) == 10 for g in serial)


def test_debug_build_checks_canaries_after_batches(tmp_path):
    """lower-to-c{debug}: every kernel call of @decode_batch (the scatter into the
    last slot included) leaves the arena canaries intact."""
    compile_model(modelzoo.gguf_file("llama"), tmp_path, CompileOptions(slots=2, context=16, debug=True), quiet=True)
    with Session(tmp_path, threads=1) as s:
        assert s.info["debug"] == 1 and s.slots == 2
        s.batch([1] * 16, list(range(3, 19)))  # slot 1 filled to its last row
        lg = s.batch([0, 0], [5, 6], out_rows=[1])
        assert lg.shape == (1, s.vocab) and np.isfinite(lg).all()
        assert [s.slot_position(i) for i in range(2)] == [2, 16]
