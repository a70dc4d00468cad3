"""ckc.session + runtime/ckc_abi.h + runtime/weights.c end to end, on a
hand-written model (test/py/data/bigram_model.c) compiled with ckc.build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ckc import sampling as S
from ckc import weights as W
from ckc.build import ROOT, cc, compile_shared, run_checked
from ckc.session import ContextOverflowError, Session, SessionError, TokenRangeError, perplexity

RUNTIME = ROOT / "runtime"
VOCAB, CONTEXT = 23, 12


def build_bigram(debug: bool) -> str:
    return str(
        compile_shared(
            "bigram-debug" if debug else "bigram",
            [ROOT / "test/py/data/bigram_model.c", RUNTIME / "weights.c", RUNTIME / "arena.c"],
            headers=[RUNTIME / "weights.h", RUNTIME / "arena.h", RUNTIME / "ckc_abi.h"],
            flags=["-std=c11", "-O2", f"-I{RUNTIME}"] + (["-DCKC_DEBUG"] if debug else []),
        )
    )


@pytest.fixture(scope="module")
def bigram_so():
    return build_bigram(debug=True)


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    return {
        "token_embd.weight": rng.standard_normal((VOCAB, VOCAB)).astype(np.float32),
        "pos_bias.weight": (0.1 * rng.standard_normal((CONTEXT, VOCAB))).astype(np.float32),
    }


def make_artifact(path, so, tensors) -> str:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(so, path / "model.so")
    W.write_bump(path / "weights.bump", list(tensors.items()))
    return path


@pytest.fixture
def artifact(tmp_path, bigram_so, weights):
    return make_artifact(tmp_path / "art", bigram_so, weights)


def reference(weights, seq):
    """Logits of every position of ``seq`` (the bigram model's definition)."""
    T, P = weights["token_embd.weight"], weights["pos_bias.weight"]
    return np.stack([T[t] + P[i] + np.float32(0.25) * T[seq[0]] for i, t in enumerate(seq)])


def test_prefill_decode_match_reference(artifact, weights):
    seq = [5, 0, 22, 7, 7, 3, 11]
    ref = reference(weights, seq)
    with Session(artifact, threads=1) as s:
        assert s.position == 0
        out = s.prefill(seq[:4])
        assert out.shape == (VOCAB,) and out.dtype == np.float32
        np.testing.assert_allclose(out, ref[3], rtol=1e-6, atol=1e-6)
        assert s.position == 4
        for i in range(4, len(seq)):
            np.testing.assert_allclose(s.decode(seq[i]), ref[i], rtol=1e-6, atol=1e-6)
            assert s.position == i + 1
        # prefill_all after a reset gives every row, equal to the step-by-step logits
        s.reset()
        assert s.position == 0
        all_rows = s.prefill_all(np.array(seq, dtype=np.int64))
        assert all_rows.shape == (len(seq), VOCAB)
        np.testing.assert_allclose(all_rows, ref, rtol=1e-6, atol=1e-6)
        # a new sequence after reset really starts over (its first token changed)
        s.reset()
        other = [9] + seq[1:]
        np.testing.assert_allclose(s.prefill(other), reference(weights, other)[-1], rtol=1e-6, atol=1e-6)
        assert not np.allclose(reference(weights, other)[-1], ref[-1])


def test_info(artifact, weights, bigram_so):
    with Session(artifact, threads=3) as s:
        info = s.info
        assert (s.vocab, s.context, s.threads) == (VOCAB, CONTEXT, 3)
        assert info["abi_version"] == 2 and info["arch"] == "bigram" and info["simd"] == "scalar"
        assert info["weights_bytes"] == os.path.getsize(artifact / "weights.bump")
        assert info["arena_bytes"] >= CONTEXT * 4 and info["debug"] == 1
    with Session(artifact) as s:  # 0 = all cores
        assert s.threads == (os.cpu_count() or 1) or s.threads >= 1


def test_bad_calls_raise_one_line_and_keep_state(artifact):
    with Session(artifact) as s:
        s.prefill([1, 2])
        cases = [
            (lambda: s.prefill([1, VOCAB, 2]), TokenRangeError,
             f"token {VOCAB} at index 1 is out of range (vocab {VOCAB})"),
            (lambda: s.decode(-1), TokenRangeError, f"token -1 at index 0 is out of range (vocab {VOCAB})"),
            (lambda: s.decode(2**40), TokenRangeError, "out of range"),
            (lambda: s.prefill([]), SessionError, "empty token list (n = 0)"),
            (lambda: s.prefill_all([]), SessionError, "empty token list (n = 0)"),
            (lambda: s.prefill(list(range(CONTEXT - 1))), ContextOverflowError,
             f"context overflow: position 2 + {CONTEXT - 1} tokens > context {CONTEXT}"),
            (lambda: s.prefill([1.5, 2.0]), SessionError, "tokens must be integers"),
            (lambda: s.prefill([[1, 2]]), SessionError, "tokens must be a 1-D sequence"),
        ]
        for call, exc, msg in cases:
            with pytest.raises(exc) as info:
                call()
            assert msg in str(info.value) and "\n" not in str(info.value)
            assert s.position == 2  # nothing changed
        # filling the context exactly is fine, one more is not
        s.prefill(list(range(CONTEXT - 2)))
        assert s.position == CONTEXT
        with pytest.raises(ContextOverflowError, match=f"position {CONTEXT} \\+ 1 tokens > context {CONTEXT}"):
            s.decode(0)
        s.reset()
        s.decode(4)  # usable again after reset
    with pytest.raises(SessionError, match="session is closed"):
        s.decode(1)
    s.close()  # twice is fine


def test_two_sessions_are_independent(artifact, weights):
    a, b = Session(artifact), Session(artifact)
    try:
        a.prefill([1, 2, 3])
        out = b.prefill([4])
        np.testing.assert_allclose(out, reference(weights, [4])[0], rtol=1e-6, atol=1e-6)
        assert (a.position, b.position) == (3, 1)
    finally:
        a.close()
        b.close()


def test_load_errors_are_one_line(tmp_path, bigram_so, weights):
    def err(*args, **kwargs) -> str:
        with pytest.raises(SessionError) as info:
            Session(*args, **kwargs)
        msg = str(info.value)
        assert "\n" not in msg
        return msg

    assert err(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'}: no such artifact directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "model.so: no compiled model library" in err(empty)
    art = make_artifact(tmp_path / "a", bigram_so, weights)
    os.unlink(art / "weights.bump")
    assert err(art) == f"{art / 'weights.bump'}: cannot open weights file: No such file or directory"
    assert "threads must be >= 0" in err(art, threads=-1)

    # a truncated .bump: the C loader names the tensor that runs past the end
    art = make_artifact(tmp_path / "t", bigram_so, weights)
    full = (art / "weights.bump").read_bytes()
    (art / "weights.bump").write_bytes(full[: len(full) - 100])
    assert "truncated: tensor 'pos_bias.weight' needs bytes" in err(art)

    # weights that do not fit the model
    bad = dict(weights)
    bad["pos_bias.weight"] = np.zeros((CONTEXT, VOCAB + 1), np.float32)
    art = make_artifact(tmp_path / "s", bigram_so, bad)
    assert err(art) == (f"{art / 'weights.bump'}: tensor 'pos_bias.weight' has shape "
                        f"[{CONTEXT}, {VOCAB + 1}], expected [{CONTEXT}, {VOCAB}]")
    art = make_artifact(tmp_path / "m", bigram_so, {"token_embd.weight": weights["token_embd.weight"]})
    assert err(art) == f"{art / 'weights.bump'}: missing tensor 'pos_bias.weight'"

    # something that is not a model library
    art = make_artifact(tmp_path / "n", bigram_so, weights)
    (art / "model.so").write_bytes(b"not an ELF file")
    assert "model.so: cannot load" in err(art)


def test_truncated_weights_exit_cleanly_in_a_fresh_process(tmp_path, bigram_so, weights):
    """What the CLI sees: one line, exit status 1, no segfault."""
    art = make_artifact(tmp_path / "t", bigram_so, weights)
    full = (art / "weights.bump").read_bytes()
    for cut in (10, 100, len(full) // 2, len(full) - 1):
        (art / "weights.bump").write_bytes(full[:cut])
        code = (
            "import sys\nfrom ckc.session import Session, SessionError\n"
            f"try:\n    Session({str(art)!r})\nexcept SessionError as e:\n"
            "    print(e, file=sys.stderr); sys.exit(1)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "weights.bump: truncated" in lines[0], proc.stderr


def test_manifest_names_the_files(tmp_path, bigram_so, weights):
    art = tmp_path / "m"
    art.mkdir()
    shutil.copy(bigram_so, art / "bigram.so")
    W.write_bump(art / "w.bump", list(weights.items()))
    (art / "manifest.json").write_text(json.dumps({"library": "bigram.so", "weights": "w.bump"}))
    with Session(art) as s:
        assert s.library_path == art / "bigram.so" and s.weights_path == art / "w.bump"
        assert s.prefill([0]).shape == (VOCAB,)


def test_release_build_works_too(tmp_path, weights):
    art = make_artifact(tmp_path / "r", build_bigram(debug=False), weights)
    with Session(art) as s:
        assert s.info["debug"] == 0
        np.testing.assert_allclose(s.prefill([3, 4]), reference(weights, [3, 4])[-1], rtol=1e-6, atol=1e-6)


def test_generate_on_a_real_session(artifact, weights):
    prompt = [3, 1, 4]
    with Session(artifact) as s:
        g = S.generate(s, prompt, max_tokens=5)
        # greedy reference: argmax of the model's definition, step by step
        seq = list(prompt)
        for _ in range(5):
            seq.append(int(np.argmax(reference(weights, seq)[-1])))
        assert g.tokens == seq[len(prompt):] and g.stop_reason == "length"
        assert s.position == len(prompt) + 4  # the last token is never decoded

        # context limit: stops cleanly instead of overflowing
        g = S.generate(s, prompt, max_tokens=100)
        # every position is used; the last token is sampled from the last logits, never decoded
        assert g.stop_reason == "context" and len(prompt) + len(g.tokens) == CONTEXT + 1
        assert s.position == CONTEXT

        # seeded sampling is reproducible
        mk = lambda: S.Sampler(temperature=1.0, top_k=8, top_p=0.9, seed=7)  # noqa: E731
        a = S.generate(s, prompt, max_tokens=6, sampler=mk()).tokens
        b = S.generate(s, prompt, max_tokens=6, sampler=mk()).tokens
        assert a == b and len(a) == 6

        eos = g.tokens[2]
        g2 = S.generate(s, prompt, max_tokens=100, eos_ids=[eos])
        assert g2.stop_reason == "eos" and eos not in g2.tokens


def test_model_linked_against_libckernels(tmp_path, weights):
    """The real artifact shape: model.so carries no runtime code of its own and
    needs libckernels (which holds runtime/weights.c and arena.c); no rpath, so
    the session has to make libckernels visible first."""
    from ckc import kernels

    libdir = kernels.library_path().parent
    so = compile_shared(
        "bigram-linked",
        [ROOT / "test/py/data/bigram_model.c"],
        headers=[RUNTIME / "weights.h", RUNTIME / "arena.h", RUNTIME / "ckc_abi.h"],
        flags=["-std=c11", "-O2", f"-I{RUNTIME}"],
        libs=[f"-L{libdir}", "-lckernels"],
    )
    art = make_artifact(tmp_path / "linked", so, weights)
    code = (
        "import sys, numpy as np\nfrom ckc.session import Session\n"
        f"s = Session({str(art)!r})\nprint(s.prefill([3, 4]).tolist())\n"
    )
    # a fresh process, so libckernels is not already loaded by another test
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.array(json.loads(proc.stdout), np.float32)
    np.testing.assert_allclose(got, reference(weights, [3, 4])[-1], rtol=1e-6, atol=1e-6)


def test_log_probs_and_perplexity(artifact, weights):
    rng = np.random.default_rng(3)
    text = rng.integers(0, VOCAB, 30)

    def ref_logprobs(seq):
        lg = reference(weights, list(seq)).astype(np.float64)
        lse = np.log(np.exp(lg - lg.max(1, keepdims=True)).sum(1)) + lg.max(1)
        return lg[np.arange(len(seq) - 1), seq[1:]] - lse[:-1]

    with Session(artifact) as s:
        lp = s.log_probs(text[:CONTEXT])
        assert lp.shape == (CONTEXT - 1,) and np.all(lp < 0)
        np.testing.assert_allclose(lp, ref_logprobs(text[:CONTEXT]), atol=1e-5)
        # windows of 8: [0,8) [8,16) [16,24) [24,30)
        nll = -np.concatenate([ref_logprobs(text[i : i + 8]) for i in range(0, 30, 8)])
        assert nll.size == 30 - 4
        assert perplexity(s, text, window=8) == pytest.approx(np.exp(nll.mean()), rel=1e-6)
        with pytest.raises(SessionError, match="window must be in"):
            perplexity(s, text, window=CONTEXT + 1)
        with pytest.raises(SessionError, match="at least 2 tokens"):
            s.log_probs([1])


def test_abi_from_plain_c(tmp_path, artifact, weights):
    """test/py/data/abi_runner.c drives the same model.so through ckc_abi.h alone."""
    exe = tmp_path / "abi_runner"
    run_checked([cc(), "-std=gnu11", "-O1", f"-I{RUNTIME}", "-o", str(exe),
                 str(ROOT / "test/py/data/abi_runner.c"), "-ldl"], "abi_runner")
    prompt = [3, 1, 4]
    run = lambda *args: subprocess.run([str(exe), str(artifact / "model.so"), *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    proc = run(artifact / "weights.bump", 6, *prompt)
    assert proc.returncode == 0, proc.stderr
    with Session(artifact) as s:
        assert [int(t) for t in proc.stdout.split()] == S.generate(s, prompt, max_tokens=6).tokens
    proc = run(artifact / "weights.bump", 2, 1, VOCAB + 3)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"token {VOCAB + 3} at index 1 is out of range (vocab {VOCAB})"
    proc = run(tmp_path / "missing.bump", 2, 1)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("cannot open weights file: No such file or directory")
