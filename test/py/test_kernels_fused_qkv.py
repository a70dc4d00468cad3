"""Parity of the fused attention input ck_rmsnorm_qkv_rope_f32 (RMSNorm, Q/K/V
projections with optional biases, RoPE on q and k) against torch: RMSNorm as
transformers' LlamaRMSNorm (offset 1 for Gemma), F.linear, and the RoPE
reference of test_kernels_rope (rotate_half / complex multiply, fp32 angles).
Row-major and prepacked weights, both RoPE styles, GQA, a start position.

Tolerance: max |ckc - torch| <= 1e-4 relative to the largest |torch| value of
each output (GEMM over C up to 576, then a rotation). The fused call is also
bit for bit the separate kernels of the same variant (it is composed of them).
"""

import ctypes

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kernel_util import aligned_empty, c_float, c_int, c_size_t, c_void_p, kernel, max_rel_err, pool, ptr, rand, \
    run_sanitized, variants
from test_kernels_rope import rope_ref

TOL = 1e-4
ARGS = [c_void_p] * 13 + [c_int] * 7 + [c_float, c_int, c_float, c_float, c_int, c_void_p, c_size_t, c_void_p,
                                          c_int]

CASES = [
    # T, C, heads, kv_heads, head_dim, rotary_dim, pos0, style, bias, offset
    (1, 64, 4, 2, 16, 16, 0, 0, False, 0.0),
    (7, 576, 9, 3, 64, 64, 37, 0, False, 0.0),      # SmolLM2 shapes, continuing a cache
    (13, 96, 6, 6, 16, 16, 5, 1, True, 0.0),        # qwen2-like biases, interleaved
    (9, 128, 4, 1, 32, 16, 100, 0, False, 1.0),     # Gemma (1 + w), partial rotary, MQA
]


def pack(W):
    N, K = W.shape
    size = kernel("ck_gemm_packed_size", None, [c_int, c_int], c_size_t)(N, K)
    Wp = aligned_empty(size).view(np.float32)
    kernel("ck_gemm_pack_f32", None, [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int])(
        ptr(W), N, K, ptr(Wp), None, 1)
    return Wp


def reference(x, nw, ws, bs, heads, kv_heads, hd, rot, pos0, style, eps, offset):
    tx = torch.from_numpy(x).double()
    h = tx * torch.rsqrt(tx.pow(2).mean(-1, keepdim=True) + eps) * (torch.from_numpy(nw).double() + offset)
    q, k, v = (F.linear(h, torch.from_numpy(w).double(), None if b is None else torch.from_numpy(b).double())
               for w, b in zip(ws, bs))
    pos = torch.arange(pos0, pos0 + x.shape[0])
    theta = 10000.0
    return (rope_ref(q, pos, heads, hd, rot, theta, style).numpy(),
            rope_ref(k, pos, kv_heads, hd, rot, theta, style).numpy(), v.numpy())


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("packed", [False, True], ids=["rowmajor", "packed"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"T{c[0]}C{c[1]}h{c[2]}kv{c[3]}")
@pytest.mark.parametrize("variant", variants())
def test_fused_qkv(variant, case, packed, nth):
    T, C, heads, kv_heads, hd, rot, pos0, style, bias, offset = case
    rng = np.random.default_rng(T * C + heads)
    nq, nk = heads * hd, kv_heads * hd
    x, nw = rand(rng, T, C), rand(rng, C, scale=0.5)
    ws = [rand(rng, n, C, scale=0.1) for n in (nq, nk, nk)]
    bs = [rand(rng, n) if bias else None for n in (nq, nk, nk)]
    eps = 1e-5
    wants = reference(x, nw, ws, bs, heads, kv_heads, hd, rot, pos0, style, eps, offset)
    q, k, v = (np.full((T, n), np.nan, np.float32) for n in (nq, nk, nk))
    h = np.full((T, C), np.nan, np.float32)
    wsz = kernel("ck_gemm_workspace_size", None, [c_int] * 4, c_size_t)(T, nq, C, nth)
    work = aligned_empty(wsz)
    wargs = [pack(w) for w in ws] if packed else ws
    fn = kernel("ck_rmsnorm_qkv_rope_f32", variant, ARGS, c_int)
    rc = fn(ptr(x), ptr(nw), *map(ptr, wargs), *(ptr(b) if b is not None else None for b in bs), None,
            ptr(q), ptr(k), ptr(v), ptr(h), T, C, heads, kv_heads, hd, rot, pos0, 10000.0, style, eps, offset,
            int(packed), ptr(work), wsz, pool(nth), nth)
    assert rc == 0
    for got, want, name in zip((q, k, v), wants, "qkv"):
        assert max_rel_err(got, want) <= TOL, name

    # bit for bit the separate kernels of this variant
    rms = kernel("ck_rmsnorm_f32", variant, [c_void_p] * 4 + [c_int, c_int, c_float, c_float, c_void_p, c_int])
    gemm = kernel("ck_gemm_f32", variant, [c_void_p] * 4 + [c_int] * 4 + [c_void_p, c_size_t, c_void_p, c_int], c_int)
    rope = kernel("ck_rope_f32", variant, [c_void_p] * 4 + [c_int] * 5 + [c_float, c_int, c_void_p, c_int], c_int)
    h2 = np.empty_like(h)
    rms(ptr(x), ptr(nw), ptr(h2), None, T, C, eps, offset, pool(nth), nth)
    outs = []
    for w, b, n, nh, rotate in zip(ws, bs, (nq, nk, nk), (heads, kv_heads, kv_heads), (True, True, False)):
        y = np.empty((T, n), np.float32)
        assert gemm(ptr(h2), ptr(w), ptr(b) if b is not None else None, ptr(y), T, n, C, 0, ptr(work), wsz,
                    pool(nth), nth) == 0
        if rotate:
            assert rope(ptr(y), ptr(y), None, None, T, nh, hd, rot, pos0, 10000.0, style, pool(nth), nth) == 0
        outs.append(y)
    if not packed or T >= 8 or variant == "scalar":   # same GEMM arithmetic (the small-M paths differ)
        for got, want in zip((q, k, v), outs):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("variant", variants())
def test_fused_qkv_bad_args(variant):
    fn = kernel("ck_rmsnorm_qkv_rope_f32", variant, ARGS, c_int)
    x = np.ones((2, 8), np.float32)
    w = np.ones((8, 8), np.float32)
    out = np.zeros((2, 8), np.float32)
    work = aligned_empty(1 << 22)
    # heads not a multiple of kv_heads
    assert fn(ptr(x), ptr(x[0]), ptr(w), ptr(w), ptr(w), None, None, None, None, ptr(out), ptr(out), ptr(out),
              ptr(out), 2, 8, 3, 2, 2, 2, 0, 10000.0, 0, 1e-5, 0.0, 0, ptr(work), 1 << 22, None, 1) == -2
    # odd rotary_dim: rope refuses, the error comes back
    assert fn(ptr(x), ptr(x[0]), ptr(w), ptr(w), ptr(w), None, None, None, None, ptr(out), ptr(out), ptr(out),
              ptr(out), 2, 8, 2, 2, 4, 3, 0, 10000.0, 0, 1e-5, 0.0, 0, ptr(work), 1 << 22, None, 1) == -2


def test_fused_qkv_sanitized():
    """Every variant, biases and GQA, prepacked and row-major, 2 threads, against
    the ASan + UBSan build of libckernels (exactly-sized numpy buffers)."""
    run_sanitized(__file__, "-k", "test_fused_qkv and (T7C576 or T13C96) and 2]")
