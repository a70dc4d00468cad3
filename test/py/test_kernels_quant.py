"""Parity of the quantized kernels (ckernels.h, section quant) against numpy.

Weights are quantized with the ``gguf`` package's own quantizer and the
reference uses its dequantization, in fp64:

* ``want_q``: dequant(W) · x̂ᵀ with x̂ the 8-bit activation blocks the kernels
  must compute (d = amax/127 in fp32, q = round-half-even(x·(1/d)) — rebuilt
  here bit for bit). The kernels do exact integer dot products per block and
  one fp32 step per block, so the only error is fp32 rounding of ~K/32 block
  terms: max |y − want_q| / max |want_q| <= TIGHT = 3e-5.
* ``want``: dequant(W) · xᵀ with the original activations. Every x element is
  off by at most d_block/2 after rounding, so per output
  |y − want| <= Σ_k |w_k|·d_k/2 (a hard bound) plus the tight slack.
* F16/BF16 quantize nothing: max |y − want| / max |want| <= 5e-5 (fp32
  accumulation over K up to 8192: ~sqrt(K)·eps relative, with margin).
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import pytest
from gguf import GGMLQuantizationType as GT
from gguf import quants

from kernel_util import (aligned_empty, c_float, c_int, c_size_t, c_void_p, guarded_copy, kernel, lib,
                               max_rel_err, pool, ptr, run_isolated, run_sanitized, runnable, variants)

TIGHT = 3e-5
HALF_TOL = 5e-5
CK_OK, CK_ERR_WORKSPACE, CK_ERR_ARG = 0, -1, -2
VNNI = 1 << 8

FMTS = {"q8_0": GT.Q8_0, "q4_0": GT.Q4_0, "q4_1": GT.Q4_1, "q5_0": GT.Q5_0, "q5_1": GT.Q5_1,
        "f16": GT.F16, "bf16": GT.BF16}
BLOCK_FMTS = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]
PACKED_FMTS = BLOCK_FMTS
QARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, c_void_p, c_size_t,
         c_void_p, c_int]

# (M, N, K): N not a multiple of the 4/8-row tiles or the 8-row packing, M = 1, 3, 17, 64
SHAPES = [(1, 37, 32), (3, 45, 96), (17, 29, 256), (64, 70, 512), (1, 19, 8192), (3, 11, 8192),
          (1, 300, 1024), (5, 8, 64),
          (64, 9, 8192)]   # M beyond one L2-sized chunk of x rows (chunks of 24 / 16 / 8 rows at this K)


def simd_variants():
    """variants() plus the avx512 variant with VNNI masked off (its AVX-512BW fallback)."""
    out = list(variants())
    for p in variants("avx512"):
        out.append(pytest.param("avx512-novnni", id="avx512-novnni", marks=p.marks))
    return out


class Variant:
    """Runs a kernel of variant v ("avx512-novnni": avx512 with VNNI cleared from ck_cpu_features)."""

    def __init__(self, v):
        self.v, self.mask = (("avx512", VNNI) if v == "avx512-novnni" else (v, 0))

    def __enter__(self):
        setup()
        lib().ck_cpu_disable(self.mask)
        return self.v

    def __exit__(self, *exc):
        lib().ck_cpu_disable(0)


@functools.cache
def setup():
    L = lib()
    L.ck_cpu_disable.argtypes = [c_int]
    L.ck_cpu_disable.restype = None
    for name, args, res in (("ck_qgemm_workspace_size", [c_int] * 5, c_size_t),
                            ("ck_qpacked_size", [c_int] * 3, c_size_t),
                            ("ck_qrow_size", [c_int] * 2, c_size_t),
                            ("ck_qtype_block_size", [c_int], c_int),
                            ("ck_qtype_type_size", [c_int], c_int)):
        getattr(L, name).argtypes, getattr(L, name).restype = args, res
    return L


@functools.cache
def weights(fmt, N, K, seed=0):
    """(gguf-quantized W bytes [N, row bytes], its fp64 dequantization)."""
    rng = np.random.default_rng(seed + N * 131 + K)
    W = (rng.standard_normal((N, K)) * 0.1).astype(np.float32)
    W[0, :] += 0.3   # a row with an offset: exercises the Q4_1/Q5_1 minimum
    q = np.ascontiguousarray(quants.quantize(W, FMTS[fmt]))
    deq = quants.dequantize(q, FMTS[fmt]).astype(np.float64).reshape(N, K)
    return q, deq


def quant_act(x):
    """The kernels' 8-bit activation blocks, in numpy: (x̂ = q·d as fp64, d per element)."""
    M, K = x.shape
    b = x.reshape(M, K // 32, 32)
    d = (np.abs(b).max(axis=-1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.clip(np.rint((b * inv).astype(np.float32)), -127, 127)
    xh = (q.astype(np.float64) * d.astype(np.float64)).reshape(M, K)
    return xh, np.broadcast_to(d, b.shape).reshape(M, K).astype(np.float64)


def run_qgemm(fmt, variant, x, Wq, N, b=None, y=None, acc=0, nth=1, packed=False):
    L = setup()
    M, K = x.shape
    ws_size = L.ck_qgemm_workspace_size(int(FMTS[fmt]), M, N, K, nth)
    ws = aligned_empty(max(ws_size, 1))
    name = f"ck_qgemm_packed_{fmt}" if packed else f"ck_qgemm_{fmt}"
    fn = kernel(name, variant, QARGS, c_int)
    if y is None:
        y = np.full((M, N), np.nan, np.float32)
    rc = fn(ptr(x), ptr(Wq), ptr(b), ptr(y), M, N, K, acc, ptr(ws), ws_size, pool(nth), nth)
    assert rc == CK_OK
    return y


def pack(fmt, Wq, N, K, nth=1):
    L = setup()
    size = L.ck_qpacked_size(int(FMTS[fmt]), N, K)
    assert size == -(-N // 8) * 8 * Wq.shape[1]
    Wp = aligned_empty(size)
    fn = kernel(f"ck_qpack_{fmt}", None, [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int])
    fn(ptr(Wq), N, K, ptr(Wp), pool(nth), nth)
    return Wp


def check(fmt, y, x, deq, b=None, y0=None):
    base = (y0.astype(np.float64) if y0 is not None else 0) + (b.astype(np.float64) if b is not None else 0)
    want = x.astype(np.float64) @ deq.T + base
    if fmt in ("f16", "bf16"):
        assert max_rel_err(y, want) <= HALF_TOL
        return
    xh, d = quant_act(x)
    want_q = xh @ deq.T + base
    err = max_rel_err(y, want_q)
    assert err <= TIGHT, f"vs quantized activations: {err:.2e}"
    bound = (d / 2) @ np.abs(deq).T + TIGHT * np.abs(want_q).max()
    assert np.all(np.abs(y - want) <= bound), "beyond the 8-bit activation rounding bound"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("fmt", list(FMTS))
@pytest.mark.parametrize("variant", simd_variants())
def test_qgemm(variant, fmt, shape):
    M, N, K = shape
    Wq, deq = weights(fmt, N, K)
    rng = np.random.default_rng(M * 7 + N)
    x = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    with Variant(variant) as v:
        y = run_qgemm(fmt, v, x, Wq, N, b=b)
        check(fmt, y, x, deq, b=b)
        # accumulate, no bias, 2 threads
        y0 = rng.standard_normal((M, N)).astype(np.float32)
        y2 = run_qgemm(fmt, v, x, Wq, N, y=y0.copy(), acc=1, nth=2)
        check(fmt, y2, x, deq, y0=y0)


def guarded_sweep(vs):
    """Run in a subprocess by test_qgemm_stays_inside_its_operands (a fault must not
    kill pytest): x, W (rows or R8-packed), b and y each end right before an
    inaccessible page; N tails of the 4/8-row tiles and the 8-row groups, the
    column chunks of 2-3 threads (896), M on both sides of the row kernels."""
    K = 64
    for fmt in FMTS:
        for N in (9, 65, 896):
            Wq, deq = weights(fmt, N, K)
            ws = {False: guarded_copy(Wq)}
            if fmt in PACKED_FMTS:
                ws[True] = guarded_copy(pack(fmt, Wq, N, K))
            for M in (1, 5, 17):
                rng = np.random.default_rng(M * 31 + N)
                x = rng.standard_normal((M, K)).astype(np.float32)
                b = rng.standard_normal(N).astype(np.float32)
                gx, gb = guarded_copy(x), guarded_copy(b)
                for variant in vs:
                    for nth in (1, 2):
                        for packed, gw in ws.items():
                            print(f"{fmt} {variant} M={M} N={N} nth={nth} packed={packed}", flush=True)
                            gy = guarded_copy(np.full((M, N), np.nan, np.float32))
                            with Variant(variant) as v:
                                y = run_qgemm(fmt, v, gx, gw, N, b=gb, y=gy, nth=nth, packed=packed)
                            check(fmt, y, x, deq, b=b)
    print("sweep ok")


def test_qgemm_stays_inside_its_operands():
    vs = runnable(simd_variants())
    assert "sweep ok" in run_isolated(f"from test_kernels_quant import guarded_sweep; guarded_sweep({vs!r})")


def r8_layout(fmt, Wq, N):
    """The R8 packed layout (ckernels.h) built in numpy from GGUF blocks."""
    bsz = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24}[fmt]
    nb = Wq.shape[1] // bsz
    G = -(-N // 8)
    blocks = np.zeros((G * 8, nb, bsz), np.uint8)
    blocks[:N] = Wq.reshape(N, nb, bsz)
    blocks = blocks.reshape(G, 8, nb, bsz).transpose(0, 2, 1, 3)       # [g, kb, r, bytes]
    parts = [blocks[..., 0:2].reshape(G, nb, 16)]                       # d[8]
    if fmt in ("q4_1", "q5_1"):
        parts.append(blocks[..., 2:4].reshape(G, nb, 16))               # m[8]
    if fmt in ("q5_0", "q5_1"):
        o = 4 if fmt == "q5_1" else 2
        parts.append(blocks[..., o:o + 4].reshape(G, nb, 32))           # qh[8]
    q = blocks[..., bsz - (32 if fmt == "q8_0" else 16):]
    for h in (0, 1):                                                    # rows 0-3, rows 4-7
        rows = q[:, :, 4 * h:4 * h + 4]
        if fmt == "q8_0":
            parts += [rows[..., :16].reshape(G, nb, 64), rows[..., 16:].reshape(G, nb, 64)]
        else:
            parts.append(rows.reshape(G, nb, 64))
    return np.concatenate(parts, axis=-1).reshape(-1)


@pytest.mark.parametrize("fmt", PACKED_FMTS)
def test_pack_layout(fmt):
    for N, K in [(13, 96), (16, 64), (1, 32)]:
        Wq, _ = weights(fmt, N, K)
        assert np.array_equal(pack(fmt, Wq, N, K, nth=2), r8_layout(fmt, Wq, N))
    assert setup().ck_qpacked_size(int(GT.F16), 8, 64) == 0


@pytest.mark.parametrize("fmt", PACKED_FMTS)
@pytest.mark.parametrize("variant", simd_variants())
def test_packed(variant, fmt):
    """R8 packed weights: same tolerances, and the unpacked kernel's results up to fp32 rounding."""
    for M, N, K in [(1, 45, 256), (3, 13, 8192), (17, 29, 512), (64, 8, 96), (5, 70, 1024), (41, 9, 8192)]:
        Wq, deq = weights(fmt, N, K)
        x = np.random.default_rng(N).standard_normal((M, K)).astype(np.float32)
        b = np.random.default_rng(K).standard_normal(N).astype(np.float32)
        with Variant(variant) as v:
            Wp = pack(fmt, Wq, N, K, nth=2)
            y = run_qgemm(fmt, v, x, Wp, N, b=b, packed=True, nth=2)
            check(fmt, y, x, deq, b=b)
            assert max_rel_err(y, run_qgemm(fmt, v, x, Wq, N, b=b)) <= 1e-5
            ys = [run_qgemm(fmt, v, x, Wp, N, packed=True, nth=n) for n in (1, 3)]
            assert np.array_equal(ys[0], ys[1])


@pytest.mark.parametrize("fmt", list(FMTS))
@pytest.mark.parametrize("variant", simd_variants())
def test_thread_count_independent(variant, fmt):
    M, N, K = 17, 75, 1024
    Wq, _ = weights(fmt, N, K)
    x = np.random.default_rng(3).standard_normal((M, K)).astype(np.float32)
    with Variant(variant) as v:
        ys = [run_qgemm(fmt, v, x, Wq, N, nth=n) for n in (1, 2, 3, 5)]
    for y in ys[1:]:
        assert np.array_equal(y, ys[0])


@pytest.mark.parametrize("fmt", BLOCK_FMTS)
def test_variants_agree(fmt):
    """Same quantized activations and block integers everywhere: variants differ by fp32 rounding only."""
    M, N, K = 3, 40, 2048
    Wq, _ = weights(fmt, N, K)
    x = np.random.default_rng(5).standard_normal((M, K)).astype(np.float32)
    ys = []
    for p in simd_variants():
        if p.marks:
            continue
        with Variant(p.values[0]) as v:
            ys.append(run_qgemm(fmt, v, x, Wq, N))
    for y in ys[1:]:
        assert max_rel_err(y, ys[0]) <= 1e-5


@pytest.mark.parametrize("fmt", list(FMTS))
@pytest.mark.parametrize("variant", variants())
def test_embedding(variant, fmt):
    V, C, T = 50, 96, 9
    Wq, deq = weights(fmt, V, C)
    ids = np.array([0, 3, 49, -1, 7, 50, 3, 12, 1], np.int32)
    fn = kernel(f"ck_qembedding_{fmt}", variant,
                [c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_float, c_void_p, c_int], c_int)
    for scale, nth in ((1.0, 1), (2.5, 2)):
        out = np.full((T, C), np.nan, np.float32)
        assert fn(ptr(ids), ptr(Wq), ptr(out), T, V, C, scale, pool(nth), nth) == 2
        want = np.where(((ids >= 0) & (ids < V))[:, None], deq[np.clip(ids, 0, V - 1)] * scale, 0.0)
        if scale == 1.0:   # exactly gguf's dequantization
            assert np.array_equal(out, want.astype(np.float32))
        else:
            assert max_rel_err(out, want) <= 1e-7


@pytest.mark.parametrize("variant", variants())
def test_bad_arguments(variant):
    L = setup()
    Wq, _ = weights("q4_0", 8, 64)
    x = np.ones((2, 64), np.float32)
    fn = kernel("ck_qgemm_q4_0", variant, QARGS, c_int)
    size = L.ck_qgemm_workspace_size(int(GT.Q4_0), 2, 8, 64, 1)
    ws = aligned_empty(size)
    y = np.full((2, 8), 7.0, np.float32)
    assert fn(ptr(x), ptr(Wq), None, ptr(y), 2, 8, 64, 0, ptr(ws), size - 1, None, 1) == CK_ERR_WORKSPACE
    assert fn(ptr(x), ptr(Wq), None, ptr(y), 2, 8, 64, 0, None, 0, None, 1) == CK_ERR_WORKSPACE
    assert fn(ptr(x), ptr(Wq), None, ptr(y), 2, 8, 48, 0, ptr(ws), size, None, 1) == CK_ERR_ARG
    assert np.all(y == 7.0)


def test_type_sizes():
    """Block geometry equals gguf's GGML_QUANT_SIZES for every type, K-quants included."""
    from gguf.constants import GGML_QUANT_SIZES
    L = setup()
    for t in (GT.F32, GT.F16, GT.BF16, GT.Q4_0, GT.Q4_1, GT.Q5_0, GT.Q5_1, GT.Q8_0, GT.Q8_1,
              GT.Q2_K, GT.Q3_K, GT.Q4_K, GT.Q5_K, GT.Q6_K, GT.Q8_K):
        be, bs = GGML_QUANT_SIZES[t]
        assert (L.ck_qtype_block_size(int(t)), L.ck_qtype_type_size(int(t))) == (be, bs), t.name
        assert L.ck_qrow_size(int(t), be * 3) == bs * 3
    assert L.ck_qrow_size(int(GT.Q4_0), 33) == 0
    assert L.ck_qtype_block_size(99) == 0


def test_fp16_conversions():
    """Exactly numpy's float16 conversions: every half, and floats around every rounding edge."""
    L = setup()
    to32 = kernel("ck_fp16_to_fp32_row", None, [c_void_p, c_void_p, ctypes.c_int64])
    to16 = kernel("ck_fp32_to_fp16_row", None, [c_void_p, c_void_p, ctypes.c_int64])
    h = np.arange(1 << 16, dtype=np.uint16)
    f = np.empty(h.size, np.float32)
    to32(ptr(h), ptr(f), h.size)
    want = h.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(f), nan) and np.array_equal(f[~nan].view(np.uint32), want[~nan].view(np.uint32))
    # every finite half, its midpoints to the next one (ties), +-1 ulp of fp32 around them, big and tiny values
    fin = want[np.isfinite(want)].astype(np.float64)
    mids = np.sort(np.unique(fin))
    mids = ((mids[1:] + mids[:-1]) / 2).astype(np.float32)
    x = np.concatenate([want[~nan], mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf)),
                        np.float32([65504, 65519.99, 65520, 1e9, -1e9, np.inf, -np.inf, 1e-8, 3e-8, -6e-8, 0.0, -0.0]),
                        np.random.default_rng(0).standard_normal(10000).astype(np.float32) * 100]).astype(np.float32)
    out = np.empty(x.size, np.uint16)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    to16(ptr(x), ptr(out), x.size)
    assert np.array_equal(out, ref), x[out != ref][:5]
    xn = np.float32([np.nan])
    to16(ptr(xn), ptr(out), 1)
    assert np.isnan(out[:1].view(np.float16)[0])
    assert L is not None


def test_sanitized():
    run_sanitized("test/py/test_kernels_quant.py", "-k",
                  "test_qgemm and (3x45x96 or 1x37x32) or test_packed and q4_1 or test_embedding and q5_0")
