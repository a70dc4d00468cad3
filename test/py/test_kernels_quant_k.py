"""K-quant kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) against numpy references built
from ``gguf.quants`` dequantization.

Weights: gguf-py only dequantizes the K-quants (no quantize_blocks), so valid
blocks are built byte-wise: every quant / scale / mask byte uniform random (all
bit patterns reachable), the fp16 scale fields finite and positive.

Activations: the kernels quantize x to Q8_K (per 256 values q = round_half_even(x·127/amax),
d = amax/127, in float32). ``q8k`` replicates that in numpy and the kernel's
bytes must equal it exactly.

Tolerances:
- tight, against an fp64 dot product of dequant(W) with the Q8_K-rounded
  activations xq·d: |y − ref| ≤ 1e-5·(|W|·|xq·d| + |b|) per element. The
  integer dot products are exact; what rounds is one float step per
  super-block and the float sum over at most 32 super-blocks (worst case ≈ 50
  ulp ≈ 3e-6 relative to the sum of |terms|, ×2-3 because the kernels use
  unsigned q with an offset/min term; observed ≤ 1.1e-8 at K = 8192), while a wrong scale,
  bit or offset gives O(1) errors.
- loose, against the original float activations: the 8-bit rounding moves each
  x by at most half a step d/2 = amax/254 of its super-block, so
  |y − W·x| ≤ |W|·(d/2) + the tight bound, a hard bound per element
  (observed: max |y − W·x| ≈ 0.6-1% of max |W·x|, as llama.cpp's Q8_K).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT
from gguf import quants

from kernel_util import (aligned_empty, c_float, c_int, c_size_t, c_void_p, guarded_copy, kernel, lib,
                               pool, ptr, run_isolated, run_sanitized, runnable, variants)

CK_OK, CK_ERR_WORKSPACE, CK_ERR_ARG = 0, -1, -2
QK = 256
TIGHT = 1e-5

# name -> (ggml type, block bytes, fp16 field offsets)
FORMATS = {
    "q2_k": (QT.Q2_K, 84, (80, 82)),
    "q3_k": (QT.Q3_K, 110, (108,)),
    "q4_k": (QT.Q4_K, 144, (0, 2)),
    "q5_k": (QT.Q5_K, 176, (0, 2)),
    "q6_k": (QT.Q6_K, 210, (208,)),
}

GEMM_ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, c_void_p, c_size_t,
             c_void_p, c_int]


def gemm_variants():
    """Every variant, plus "avx512bw": the AVX-512 variant's path for CPUs without
    VNNI (ck_qgemm_<fmt>_avx512bw), testable on a VNNI machine too."""
    out = variants()
    bw = variants("avx512")[0]
    out.append(pytest.param("avx512bw", id="avx512bw", marks=bw.marks))
    return out


def random_rows(fmt: str, N: int, K: int, rng: np.random.Generator) -> np.ndarray:
    """N rows of K values in fmt: uint8 [N, K/256·block bytes], valid random blocks."""
    _, bb, halves = FORMATS[fmt]
    blocks = rng.integers(0, 256, size=(N * (K // QK), bb), dtype=np.uint8)
    for off in halves:
        h = (rng.uniform(0.2, 1.0, size=blocks.shape[0]) * 0.02).astype(np.float16)
        blocks[:, off:off + 2] = h.view(np.uint8).reshape(-1, 2)
    return np.ascontiguousarray(blocks.reshape(N, -1))


def dequant(fmt: str, rows: np.ndarray) -> np.ndarray:
    return quants.dequantize(rows, FORMATS[fmt][0]).astype(np.float32)


def q8k(x: np.ndarray):
    """numpy replica of the kernels' activation quantizer: (q int8 [M,K], d float32 [M,K/256])."""
    M, K = x.shape
    xb = x.reshape(M, K // QK, QK).astype(np.float32)
    amax = np.abs(xb).max(axis=-1)
    with np.errstate(divide="ignore"):
        iscale = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.clip(np.rint(xb * iscale[..., None]), -127, 127).astype(np.int8)
    d = (amax / np.float32(127)).astype(np.float32)
    return q.reshape(M, K), d


def workspace(fmt, M, N, K, nth):
    fn = kernel("ck_qkgemm_workspace_size", None, [c_int] * 5, c_size_t)
    size = fn(int(FORMATS[fmt][0]), M, N, K, nth)
    return aligned_empty(size), size


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_one_workspace_query_for_every_format(fmt):
    # the compiler asks ck_qgemm_workspace_size for any format; for K-quants it
    # must give what their own driver needs (tiled buffers included)
    common = kernel("ck_qgemm_workspace_size", None, [c_int] * 5, c_size_t)
    own = kernel("ck_qkgemm_workspace_size", None, [c_int] * 5, c_size_t)
    for M, N, K, nth in ((1, 7, 256, 1), (17, 64, 1024, 2), (64, 300, 4096, 3)):
        assert common(int(FORMATS[fmt][0]), M, N, K, nth) == own(int(FORMATS[fmt][0]), M, N, K, nth) > 0


def gemm_fn(fmt, variant):
    return kernel(f"ck_qgemm_{fmt}", variant, GEMM_ARGS, c_int)


def run_gemm(fn, fmt, x, Wq, b, M, N, K, nth, acc=0, y0=None):
    ws, wsz = workspace(fmt, M, N, K, nth)
    y = np.full((M, N), np.nan, np.float32) if y0 is None else y0.copy()
    rc = fn(ptr(x), ptr(Wq), ptr(b), ptr(y), M, N, K, acc, ptr(ws), wsz, pool(nth), nth)
    assert rc == CK_OK
    return y


def check(y, x, Wd, b, what):
    """Tight bound vs Q8_K-rounded activations, hard bound vs the original x."""
    M, K = x.shape
    q, d = q8k(x)
    xq = q.astype(np.float64) * np.repeat(d.astype(np.float64), QK, axis=1)
    W64 = Wd.astype(np.float64)
    bb = np.zeros(W64.shape[0]) if b is None else b.astype(np.float64)
    ref = xq @ W64.T + bb
    tight = TIGHT * (np.abs(xq) @ np.abs(W64).T + np.abs(bb)) + 1e-30
    err = np.abs(y - ref)
    assert np.all(err <= tight), f"{what}: tight bound exceeded by {np.max(err / tight):.3g}x"
    exact = x.astype(np.float64) @ W64.T + bb
    half_step = np.repeat(d.astype(np.float64) / 2, QK, axis=1)
    bound = half_step @ np.abs(W64).T + tight
    assert np.all(np.abs(y - exact) <= bound), f"{what}: 8-bit rounding bound exceeded"


SHAPES = [  # (M, N, K)
    (1, 7, 256),
    (1, 33, 2048),
    (1, 5, 8192),
    (3, 17, 512),
    (17, 13, 1024),
    (64, 9, 768),
    (3, 3, 8192),
]


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("variant", gemm_variants())
def test_qgemm(variant, fmt, shape, nth):
    M, N, K = shape
    rng = np.random.default_rng([M, N, K, int(FORMATS[fmt][0])])
    Wq = random_rows(fmt, N, K, rng)
    Wd = dequant(fmt, Wq)
    x = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32)
    fn = gemm_fn(fmt, variant)
    y = run_gemm(fn, fmt, x, Wq, b, M, N, K, nth)
    check(y, x, Wd, b, f"{fmt} {variant} {shape}")
    # accumulate, no bias: the same products added to y0
    y0 = rng.standard_normal((M, N), dtype=np.float32)
    y2 = run_gemm(fn, fmt, x, Wq, None, M, N, K, nth, acc=1, y0=y0)
    check(y2 - y0, x, Wd, None, f"{fmt} {variant} {shape} accumulate")


def guarded_sweep(vs):
    """Run in a subprocess by test_qgemm_stays_inside_its_operands (a fault must not
    kill pytest): x, W, b and y each end right before an inaccessible page; N tails
    of the row groups and the 2-thread split, M on both sides of the tiled path."""
    K = 256
    for fmt in FORMATS:
        for N in (9, 65, 896):
            rng = np.random.default_rng([N, int(FORMATS[fmt][0])])
            Wq = random_rows(fmt, N, K, rng)
            Wd, gw = dequant(fmt, Wq), guarded_copy(Wq)
            for M in (1, 3, 16):
                x = rng.standard_normal((M, K), dtype=np.float32)
                b = rng.standard_normal(N, dtype=np.float32)
                gx, gb = guarded_copy(x), guarded_copy(b)
                for variant in vs:
                    fn = gemm_fn(fmt, variant)
                    for nth in (1, 2):
                        print(f"{fmt} {variant} M={M} N={N} nth={nth}", flush=True)
                        ws, wsz = workspace(fmt, M, N, K, nth)
                        y = guarded_copy(np.full((M, N), np.nan, np.float32))
                        assert fn(ptr(gx), ptr(gw), ptr(gb), ptr(y), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
                        check(y, x, Wd, b, f"{fmt} {variant} M={M} N={N} nth={nth}")
    print("sweep ok")


def test_qgemm_stays_inside_its_operands():
    vs = runnable(gemm_variants())
    assert "sweep ok" in run_isolated(f"from test_kernels_quant_k import guarded_sweep; guarded_sweep({vs!r})")


@pytest.mark.parametrize("M", [5, 40])   # 40: the tiled path (M >= 16) where the CPU has VNNI
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("variant", gemm_variants())
def test_qgemm_same_bits_for_any_thread_count(variant, fmt, M):
    N, K = 67, 1024
    rng = np.random.default_rng(7)
    Wq = random_rows(fmt, N, K, rng)
    x = rng.standard_normal((M, K), dtype=np.float32)
    fn = gemm_fn(fmt, variant)
    ys = [run_gemm(fn, fmt, x, Wq, None, M, N, K, nth) for nth in (1, 2, 3, 8)]
    for y in ys[1:]:
        assert np.array_equal(y, ys[0])


@pytest.mark.parametrize("variant", variants())
def test_quantize_q8_k_bytes(variant):
    M, K = 3, 768
    rng = np.random.default_rng(3)
    x = rng.standard_normal((M, K), dtype=np.float32) * np.float32(3)
    x[1, 256:512] = 0.0                         # an all-zero block: d = 0, q = 0
    x[2, :256] *= np.float32(1e-20)             # tiny scales
    x[0, 5] = x[0, 300] = np.float32(0.5) * np.abs(x[0, :256]).max()   # exact ties at .5 steps are possible
    fn = kernel("ck_quantize_q8_k", variant, [c_void_p, c_void_p, c_int, c_int, c_void_p, c_int], c_int)
    buf = aligned_empty(M * K // QK * 384)
    assert fn(ptr(x), ptr(buf), M, K, pool(2), 2) == CK_OK
    blocks = buf.reshape(M, K // QK, 384)
    q, d = q8k(x)
    assert np.array_equal(blocks[..., :256].view(np.int8).reshape(M, K), q)
    bsums = blocks[..., 256:288].copy().view(np.int16)
    assert np.array_equal(bsums, q.reshape(M, K // QK, 16, 16).astype(np.int32).sum(-1))
    assert np.array_equal(blocks[..., 288:292].copy().view(np.float32)[..., 0], d)
    bsf = blocks[..., 320:384].copy().view(np.float32)
    assert np.array_equal(bsf, d[..., None] * bsums.astype(np.float32))
    assert fn(ptr(x), ptr(buf), M, 300, None, 1) == CK_ERR_ARG


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("variant", variants())
def test_dequant_and_embedding_match_gguf(variant, fmt):
    vocab, C, T = 11, 512, 6
    rng = np.random.default_rng(int(FORMATS[fmt][0]))
    table = random_rows(fmt, vocab, C, rng)
    want = dequant(fmt, table)
    deq = kernel(f"ck_qdequant_{fmt}", None, [c_void_p, c_void_p, ctypes.c_int64], c_int)
    out = np.full((vocab, C), np.nan, np.float32)
    assert deq(ptr(table), ptr(out), vocab * C) == CK_OK
    assert np.array_equal(out, want)
    assert deq(ptr(table), ptr(out), 100) == CK_ERR_ARG
    emb = kernel(f"ck_qembedding_{fmt}", variant,
                 [c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_float, c_void_p, c_int], c_int)
    ids = np.array([3, 0, 10, -1, 11, 3], np.int32)
    out = np.full((T, C), np.nan, np.float32)
    assert emb(ptr(ids), ptr(table), ptr(out), T, vocab, C, 1.0, pool(2), 2) == 2
    ok = (ids >= 0) & (ids < vocab)
    assert np.array_equal(out[ok], want[ids[ok]])
    assert np.all(out[~ok] == 0)
    assert emb(ptr(ids), ptr(table), ptr(out), T, vocab, C, 2.0, None, 1) == 2
    assert np.array_equal(out[ok], want[ids[ok]] * np.float32(2))
    assert emb(ptr(ids), ptr(table), ptr(out), T, vocab, 300, 1.0, None, 1) == CK_ERR_ARG


@pytest.mark.parametrize("variant", variants())
def test_bad_arguments_write_nothing(variant):
    fmt, M, N, K = "q4_k", 2, 3, 512
    rng = np.random.default_rng(1)
    Wq = random_rows(fmt, N, K, rng)
    x = rng.standard_normal((M, K), dtype=np.float32)
    fn = gemm_fn(fmt, variant)
    ws, wsz = workspace(fmt, M, N, K, 1)
    y = np.full((M, N), 5.0, np.float32)
    assert fn(ptr(x), ptr(Wq), None, ptr(y), M, N, 300, 0, ptr(ws), wsz, None, 1) == CK_ERR_ARG
    assert fn(ptr(x), ptr(Wq), None, ptr(y), M, N, 0, 0, ptr(ws), wsz, None, 1) == CK_ERR_ARG
    assert fn(ptr(x), ptr(Wq), None, ptr(y), M, N, K, 0, ptr(ws), wsz - 1, None, 1) == CK_ERR_WORKSPACE
    assert fn(ptr(x), ptr(Wq), None, ptr(y), M, N, K, 0, None, wsz, None, 1) == CK_ERR_WORKSPACE
    assert np.all(y == 5.0)
    # the K-quant drivers size their rows with the one row-size query of every format
    rb = kernel("ck_qrow_size", None, [c_int, c_int], c_size_t)
    assert [rb(int(FORMATS[f][0]), 512) for f in FORMATS] == [2 * FORMATS[f][1] for f in FORMATS]
    assert rb(12, 300) == 0 and rb(2, 512) == 16 * 18


def test_sanitizer_subset():
    run_sanitized(__file__, "-k", "(qgemm and 17x13x1024 and nth2) or quantize_q8 or dequant or bad_arguments")
