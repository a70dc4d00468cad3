"""The inference pipeline end to end on a tiny zoo model (ckc/pipeline.py,
ckc/artifacts.py, passes/lower_to_c.py, runtime/library/ckc_runtime.c).

Tolerances: logits of the compiled model vs transformers in fp32, max |diff|
<= 1e-3 (measured ~3e-6); chunked vs one-shot prefill and 1 vs 2 threads
<= 1e-4 (the same kernels, only the GEMM blocking may differ)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ckc import modelzoo
from ckc.build import ROOT, cc
from ckc.pipeline import CompileOptions, compile_model, module_at_stage, pipeline_spec
from ckc.session import Session, SessionError

LIT_INPUT = ROOT / "test" / "lit" / "passes" / "lower-to-c.mlir"


def _opt(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ckc.opt", *args], input=stdin, capture_output=True, text=True)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("llama")
    compile_model(modelzoo.hf_dir("llama"), d, CompileOptions(max_tokens=16), quiet=True)
    return d


@pytest.fixture(scope="module")
def torch_llama():
    return modelzoo.torch_model("llama").eval()


def _reference(model, tokens) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor(np.asarray(tokens, np.int64)[None])).logits[0].float().numpy()


def test_lower_to_c_output_compiles_with_werror(tmp_path):
    """`-t c` output of the lit inputs (every chunk) compiles with -Wall -Werror."""
    from ckc.kernels import include_dirs

    text = LIT_INPUT.read_text()
    chunks = text.split("// -----")
    for i, chunk in enumerate(chunks):
        for spec in ("lower-to-c", "lower-to-c{debug=true}"):
            r = _opt("-p", spec, "-t", "c", stdin=chunk)
            assert r.returncode == 0, r.stderr
            src = tmp_path / f"m{i}.c"
            src.write_text(r.stdout)
            cmd = [cc(), "-std=c11", "-Wall", "-Werror", "-c", str(src), "-o", str(tmp_path / f"m{i}.o"),
                   *[f"-I{p}" for p in include_dirs()]]
            p = subprocess.run(cmd, capture_output=True, text=True)
            assert p.returncode == 0, p.stderr


def test_lower_to_c_errors_are_one_line():
    chunk = LIT_INPUT.read_text().split("// -----")[1]
    no_variant = chunk.replace("rmsnorm<avx2>", "rmsnorm")
    r = _opt("-p", "lower-to-c", stdin=no_variant)
    assert r.returncode != 0
    assert "run select-simd first" in r.stderr and "Traceback" not in r.stderr
    no_offset = chunk.replace("size 64 align 64 offset 1152 live 1 to 2", "size 64 align 64 live 1 to 2")
    r = _opt("-p", "lower-to-c", stdin=no_offset)
    assert r.returncode != 0
    assert "@h has no offset: run plan-memory first" in r.stderr and "Traceback" not in r.stderr


def test_artifacts(llama_dir):
    for name in ("model.c", "model.so", "weights.bump", "memory.txt", "manifest.json"):
        assert (llama_dir / name).is_file(), name
    m = json.loads((llama_dir / "manifest.json").read_text())
    assert m["library"] == "model.so" and m["weights"] == "weights.bump" and m["arch"] == "llama"
    assert m["pipeline"] == pipeline_spec(CompileOptions(max_tokens=16))
    assert set(m["functions"]) == {"prefill", "prefill_all", "decode"}
    for stage in ("import", "lower-transformer", "bufferize", "plan-memory", "select-simd", "lower-to-c", "cc"):
        assert stage in m["times_s"]
    # model.c itself is warning-free
    from ckc.kernels import include_dirs

    cmd = [cc(), "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-c", str(llama_dir / "model.c"),
           "-o", str(llama_dir / "model.o"), *[f"-I{p}" for p in include_dirs()]]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from ckc.artifacts import RUNTIME_DIR, RUNTIME_SOURCES

    for src in RUNTIME_SOURCES:
        for debug in ([], ["-DCKC_DEBUG"]):
            cmd = [cc(), "-std=c11", "-Wall", "-Wextra", "-Werror", *debug, "-c", str(src), "-o",
                   str(llama_dir / "rt.o"), f"-I{RUNTIME_DIR}", *[f"-I{p}" for p in include_dirs()]]
            p = subprocess.run(cmd, capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
    # model.so needs neither the compiler nor libckernels.so
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(llama_dir / "model.so")], capture_output=True, text=True)
    if nm.returncode == 0:
        assert " ck_" not in nm.stdout, nm.stdout
    ldd = subprocess.run(["ldd", str(llama_dir / "model.so")], capture_output=True, text=True)
    if ldd.returncode == 0:
        assert "libckernels" not in ldd.stdout


def test_memory_txt_sane(llama_dir):
    text = (llama_dir / "memory.txt").read_text()
    for needle in ("## Arenas", "arena @weights", "arena @arena", "kv_cache", "activations",
                   "blk.1.ffn_down.weight", "blk.0.k_cache", "## Totals per region"):
        assert needle in text, needle
    funcs = 0
    for line in text.splitlines():
        if "activation peak" in line:
            funcs += 1
            nums = [int(w.replace(",", "")) for w in line.replace("(", " ").split() if w.replace(",", "").isdigit()]
            peak, bound = nums[0], nums[1]
            assert bound > 0 and bound <= peak <= 2 * bound, line
    assert funcs == 3


def test_model_c_is_deterministic(llama_dir, tmp_path):
    compile_model(modelzoo.hf_dir("llama"), tmp_path, CompileOptions(max_tokens=16), quiet=True)
    assert (tmp_path / "model.c").read_bytes() == (llama_dir / "model.c").read_bytes()
    assert (tmp_path / "weights.bump").read_bytes() == (llama_dir / "weights.bump").read_bytes()


def test_pipeline_spec_under_ckc_opt_gives_the_same_c(llama_dir, tmp_path):
    """The named pipeline is a plain pass pipeline: ckc-opt -p SPEC -t c on the
    transformer IR prints the same model.c as compile_model."""
    from ckc.artifacts import ir_text

    module = module_at_stage(modelzoo.hf_dir("llama"), "transformer")
    r = _opt("-p", pipeline_spec(CompileOptions(max_tokens=16)), "-t", "c", stdin=ir_text(module))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (llama_dir / "model.c").read_text()


def test_parity_prefill_chunks_decode(llama_dir, torch_llama):
    """max_tokens 16: a 40-token prompt runs as 16 + 16 + 8."""
    rng = np.random.default_rng(1)
    toks = rng.integers(0, 384, size=48).astype(np.int32)
    ref = _reference(torch_llama, toks)
    with Session(llama_dir, threads=1) as s:
        assert s.info["max_batch"] == 16
        all_ = s.prefill_all(toks[:40])
        assert s.position == 40
        dec = np.stack([s.decode(int(t)) for t in toks[40:]])
        got = np.concatenate([all_, dec])
        assert np.abs(got - ref).max() <= 1e-3
        assert (got.argmax(-1) == ref.argmax(-1)).all()
        s.reset()
        last = s.prefill(toks[:40])
        assert np.abs(last - all_[-1]).max() <= 1e-4
        s.reset()
        s.prefill(toks[:20])
        last2 = s.prefill(toks[20:40])  # a second prefill continues the sequence
        assert np.abs(last2 - all_[-1]).max() <= 1e-4


def test_threads_agree(llama_dir):
    toks = np.arange(1, 30, dtype=np.int32)
    with Session(llama_dir, threads=1) as a, Session(llama_dir, threads=2) as b:
        assert b.info["nthreads"] == 2
        assert np.abs(a.prefill_all(toks) - b.prefill_all(toks)).max() <= 1e-4
        assert np.abs(a.decode(5) - b.decode(5)).max() <= 1e-4


def test_runtime_errors(llama_dir):
    with Session(llama_dir, threads=1) as s:
        with pytest.raises(SessionError, match=r"token 384 at index 1 is out of range \(vocab 384\)"):
            s.prefill([1, 384])
        assert s.position == 0
        with pytest.raises(SessionError, match="out of range"):
            s.decode(-1)
        s.prefill(np.ones(250, np.int32))
        with pytest.raises(SessionError, match=r"context overflow: position 250 \+ 7 tokens > context 256"):
            s.prefill(np.ones(7, np.int32))
        assert s.position == 250
        s.prefill(np.ones(6, np.int32))
        with pytest.raises(SessionError, match="context overflow"):
            s.decode(1)
        s.reset()
        assert s.position == 0
        s.decode(3)


def test_weights_checked_against_the_compiled_table(llama_dir, tmp_path):
    from ckc import weights as bump

    tensors = bump.read_bump(llama_dir / "weights.bump")
    table = {e.name: e for e in bump.read_table(llama_dir / "weights.bump")}
    names = list(tensors)
    assert table["blk.0.attn_k.weight"].dtype == bump.F32P32   # pack-weights ran

    def item(n, arr=None):   # rewrite a tensor as it was stored (f32p32 ones prepacked again)
        e = table[n]
        if e.dtype == bump.F32P32:
            return n, bump.unpack_p32(tensors[n], e.shape[0]) if arr is None else arr, bump.F32P32
        return n, tensors[n] if arr is None else arr

    d = tmp_path / "art"
    shutil.copytree(llama_dir, d)
    # the same tensors written again: accepted
    bump.write_bump(d / "weights.bump", [item(n) for n in names])
    Session(d).close()
    # a missing tensor
    bump.write_bump(d / "weights.bump", [item(n) for n in names if n != "output_norm.weight"])
    with pytest.raises(SessionError, match="missing tensor 'output_norm.weight'"):
        Session(d)
    # a shape mismatch
    bad = [item(n, None if n != "blk.0.attn_k.weight" else np.zeros((8, 64), np.float32)) for n in names]
    bump.write_bump(d / "weights.bump", bad)
    with pytest.raises(SessionError, match=r"blk.0.attn_k.weight.*\[8, 64\].*\[32, 64\]"):
        Session(d)
    # a prepacked weight stored row-major
    bad = [(n, bump.unpack_p32(tensors[n], 32)) if n == "blk.0.attn_k.weight" else item(n) for n in names]
    bump.write_bump(d / "weights.bump", bad)
    with pytest.raises(SessionError, match="'blk.0.attn_k.weight' has dtype f32, expected f32p32"):
        Session(d)
    # the right tensors in another order: offsets differ from the compiled ones
    bump.write_bump(d / "weights.bump", [item(n) for n in reversed(names)])
    with pytest.raises(SessionError, match="the compiled model expects"):
        Session(d)
    # truncated file
    data = (llama_dir / "weights.bump").read_bytes()
    (d / "weights.bump").write_bytes(data[: len(data) // 2])
    with pytest.raises(SessionError, match="truncated"):
        Session(d)


def test_debug_build_checks_canaries(tmp_path):
    compile_model(modelzoo.hf_dir("qwen3"), tmp_path, CompileOptions(debug=True, simd="scalar"), quiet=True)
    assert "ckc_rt_canaries_ok(arena)" in (tmp_path / "model.c").read_text()
    ref = _reference(modelzoo.torch_model("qwen3").eval(), np.arange(1, 10))
    with Session(tmp_path, threads=1) as s:
        assert s.info["debug"] == 1 and s.info["simd"] == "scalar"
        got = s.prefill_all(np.arange(1, 10, dtype=np.int32))
        assert np.abs(got - ref).max() <= 1e-3


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma"])
def test_fused_attention_input_same_logits(family, tmp_path):
    """fuse-rmsnorm-qkv-rope (+ pack-weights) changes the calls, not the numbers: the
    fused library issues ck_rmsnorm_qkv_rope_f32 (qwen2: with q/k/v biases; gemma:
    its (1 + w) norm), the unfused one rmsnorm/gemm/rope, and their logits are bit
    for bit equal through prefill and decode; both within 1e-4 of transformers.
    (SmolLM2: test/py/test_parity_smollm2.py.)"""
    src = modelzoo.hf_dir(family)
    fused, plain = tmp_path / "fused", tmp_path / "plain"
    compile_model(src, fused, CompileOptions(max_tokens=16), quiet=True)
    compile_model(src, plain, CompileOptions(max_tokens=16, fuse=False), quiet=True)
    assert "ck_rmsnorm_qkv_rope_f32_" in (fused / "model.c").read_text()
    assert "ck_rmsnorm_qkv_rope_f32_" not in (plain / "model.c").read_text()
    tokens = np.arange(3, 24, dtype=np.int32)
    outs = []
    for d in (fused, plain):
        with Session(d, threads=2) as s:
            all_logits = s.prefill_all(tokens).copy()
            steps = np.stack([s.decode(int(t)).copy() for t in (5, 9, 11)])
            outs.append((all_logits, steps))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    ref = _reference(modelzoo.torch_model(family).eval(), tokens)
    assert np.abs(outs[0][0] - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max()))


@pytest.mark.parametrize("simd", ["scalar", "native"])
def test_pack_weights_same_logits(simd, tmp_path):
    """pack-weights moves the packing of Linear weights to compile time. Prefill
    chunks of >= 8 rows run the same blocked GEMM either way: bit for bit equal.
    Decode steps (M = 1) and shorter chunks: bit for bit with the scalar kernels;
    the SIMD ones stream the row-major weight with dot products along K when it
    is not prepacked (no packing per call for a few rows) but run the packed
    GEMV (vectors along N, K in order) when it is, so the sums are ordered
    differently: within 5e-6 there (measured 2.1e-6, logits up to |3.7|)."""
    src = modelzoo.hf_dir("llama")
    outs = []
    for pack in (True, False):
        d = tmp_path / f"pack{int(pack)}"
        compile_model(src, d, CompileOptions(max_tokens=16, simd=simd, pack_weights=pack), quiet=True)
        assert ("gemm_packed" in (d / "model.c").read_text()) == pack
        with Session(d, threads=2) as s:
            prefill = s.prefill_all(np.arange(3, 19, dtype=np.int32)).copy()   # one 16-row chunk
            decode = np.stack([s.decode(int(t)).copy() for t in (5, 9, 11, 17)])
            s.reset()
            short = s.prefill_all(np.arange(3, 6, dtype=np.int32)).copy()      # M = 3
        outs.append((prefill, decode, short))
    (p1, d1, s1), (p0, d0, s0) = outs
    np.testing.assert_array_equal(p1, p0)
    if simd == "scalar":
        np.testing.assert_array_equal(d1, d0)
        np.testing.assert_array_equal(s1, s0)
    else:
        assert np.abs(d1 - d0).max() <= 5e-6 and np.abs(s1 - s0).max() <= 5e-6
