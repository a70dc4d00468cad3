"""KV caches stored in fp16 / Q8_0 (ckc --kv-type): the append kernels
(ck_kv_write_f16 / _q8_0) and attention reading such caches
(ck_attention_kv{f16,q8_0}, prefill and decode), every variant the CPU runs,
1 and 2 threads.

- kv_write: the bytes equal numpy's (f16: astype(float16), round to nearest
  even; Q8_0: d = fp16(amax/127), q = rint(x * (127/amax)) in fp32), and gguf's
  Q8_0 dequantizer reads them back as d*q (the GGUF block layout).
- attention: against the float64 torch reference of test_kernels_attention on
  K/V rounded the same way (ckc/interpreters/tensorop.kv_round): the kernel
  dequantizes exactly, so the fp32 attention tolerance holds, 1e-4 relative
  to the reference's largest magnitude. GQA, MQA, sliding window, softcap,
  n_past, head_dim tails (f16). Results do not depend on the thread count
  (bitwise)."""

import math

import numpy as np
import pytest
import torch

from ckc.interpreters.tensorop import kv_round
from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, run_sanitized, variants
from test_kernels_attention import DEC_ARGS, reference

TOL = 1e-4
KV_FWD_ARGS = [c_void_p] * 4 + [c_int] * 6 + [c_float, c_float, c_void_p, c_int]
WRITE_ARGS = [c_void_p, c_void_p, c_int, c_int, c_void_p, c_int]
Q8_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])


def np_q8_0(x: np.ndarray) -> np.ndarray:
    """fp32 rows [T, C] -> Q8_0 blocks [T, C/32] (structured), as ckernels.h specifies."""
    xb = x.reshape(x.shape[0], -1, 32).astype(np.float32)
    amax = np.abs(xb).max(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    out = np.zeros(xb.shape[:2], Q8_BLOCK)
    out["d"] = (amax[..., 0] / np.float32(127)).astype(np.float16)
    out["qs"] = np.rint(xb * inv).astype(np.int8)
    return out


def to_cache(x: np.ndarray, fmt: str) -> np.ndarray:
    """The cache bytes of fp32 rows (uint16 for f16, Q8_0 blocks)."""
    if fmt == "f16":
        with np.errstate(over="ignore"):  # 1e6 -> inf on purpose
            return x.astype(np.float16).view(np.uint16)
    return np_q8_0(x)


def rounded(x: np.ndarray, fmt: str) -> torch.Tensor:
    return kv_round(torch.from_numpy(x), fmt).double()


def write_kernel(fmt, variant):
    return kernel(f"ck_kv_write_{fmt}", variant, WRITE_ARGS, c_int)


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("fmt,T,C", [("f16", 7, 72), ("f16", 1, 5), ("q8_0", 7, 96), ("q8_0", 3, 32)])
@pytest.mark.parametrize("nth", [1, 2])
def test_kv_write_bytes(variant, fmt, T, C, nth):
    rng = np.random.default_rng(T * C)
    x = rand(rng, T, C, scale=3.0)
    x[0, :C // 2] *= 1e-6       # small values (fp16 subnormals)
    if fmt == "q8_0":
        x[-1, :32] = 0.0        # an all-zero block: d = 0, q = 0
    else:
        x[-1, 0] = 1e6          # overflows fp16 -> inf
    want = to_cache(x, fmt)
    got = np.zeros_like(want)
    # write at row 2 of a larger cache: rows outside stay untouched
    cache = np.zeros((T + 4,) + want.shape[1:], want.dtype)
    assert write_kernel(fmt, variant)(ptr(x), cache[2:].ctypes.data, T, C, pool(nth), nth) == 0
    got = cache[2:2 + T]
    assert got.tobytes() == want.tobytes()
    assert not cache[:2].tobytes().strip(b"\0") and not cache[2 + T:].tobytes().strip(b"\0")
    if fmt == "q8_0":
        from gguf import GGMLQuantizationType, quants
        deq = quants.dequantize(want.view(np.uint8).reshape(T, -1), GGMLQuantizationType.Q8_0)
        np.testing.assert_array_equal(deq, kv_round(torch.from_numpy(x), "q8_0").numpy())
    else:
        np.testing.assert_array_equal(want.view(np.float16).astype(np.float32),
                                      kv_round(torch.from_numpy(x), "f16").numpy())


@pytest.mark.parametrize("variant", variants())
def test_kv_write_bad_args(variant):
    x = np.zeros((2, 48), np.float32)
    c = np.zeros(4096, np.uint8)
    assert write_kernel("q8_0", variant)(ptr(x), c.ctypes.data, 2, 48, None, 1) == -2  # C % 32
    assert write_kernel("f16", variant)(ptr(x), c.ctypes.data, -1, 48, None, 1) == -2


CASES = [
    # T, n_past, H, KV, D, window, softcap
    (1, 0, 1, 1, 32, 0, 0.0),
    (37, 0, 4, 2, 64, 0, 0.0),
    (70, 0, 9, 3, 64, 16, 0.0),   # SmolLM2 heads, sliding window (Gemma 3 local layers)
    (20, 13, 6, 1, 96, 0, 0.0),   # MQA, prefill continuing a cache
    (33, 5, 4, 4, 64, 7, 50.0),   # softcap (Gemma 2) + window
    (130, 0, 2, 1, 256, 0, 0.0),  # Gemma head_dim, several key/query blocks
    (150, 40, 8, 2, 32, 100, 0.0),  # window larger than a key block, n_past
]
IDS = [f"T{c[0]}p{c[1]}H{c[2]}KV{c[3]}D{c[4]}w{c[5]}c{int(c[6])}" for c in CASES]
F16_ONLY = [(21, 3, 4, 2, 40, 0, 0.0)]  # head_dim 40: not whole Q8_0 blocks, vector tails for f16


def run_attention(fmt, variant, case, nth, seed):
    T, n_past, H, KV, D, window, softcap = case
    rng = np.random.default_rng(seed)
    S = n_past + T
    q, k, v = rand(rng, T, H * D), rand(rng, S, KV * D), rand(rng, S, KV * D)
    kc, vc = to_cache(k, fmt), to_cache(v, fmt)
    out = np.full((T, H * D), np.nan, np.float32)
    f = kernel(f"ck_attention_kv{fmt}", variant, KV_FWD_ARGS, c_int)
    scale = 1.0 / math.sqrt(D)
    assert f(ptr(q), kc.ctypes.data, vc.ctypes.data, ptr(out), T, n_past, H, KV, D, window, scale, softcap,
             pool(nth), nth) == 0
    want, _ = reference(torch.from_numpy(q).double(), rounded(k, fmt), rounded(v, fmt), T, n_past, H, KV, D,
                        window, scale, softcap)
    return out, want.numpy()


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("fmt,case", [(f, c) for f in ("f16", "q8_0") for c in CASES] + [("f16", c) for c in F16_ONLY],
                         ids=[f"{f}-{i}" for f in ("f16", "q8_0") for i in IDS] + ["f16-T21p3H4KV2D40"])
def test_attention_kv(variant, fmt, case):
    out1, want = run_attention(fmt, variant, case, 1, case[0] * 7 + case[4])
    assert max_rel_err(out1, want) <= TOL
    out2, _ = run_attention(fmt, variant, case, 2, case[0] * 7 + case[4])
    assert out1.tobytes() == out2.tobytes()  # independent of the thread count


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("fmt", ["f16", "q8_0"])
@pytest.mark.parametrize("H,KV,n_past,window", [(9, 3, 200, 0), (8, 4, 255, 31), (4, 1, 70, 0)])
def test_attention_decode_kv(variant, fmt, H, KV, n_past, window):
    """One token against a [max_ctx, KV*D] cache written by ck_kv_write_*; rows past
    n_past hold NaN bytes (never read)."""
    D, max_ctx = 64, 256
    rng = np.random.default_rng(n_past + H)
    k, v = rand(rng, n_past + 1, KV * D), rand(rng, n_past + 1, KV * D)
    q = rand(rng, 1, H * D)
    outs = []
    for nth in (1, 2):
        kc = np.full((max_ctx,) + to_cache(k[:1], fmt).shape[1:], 0xFF, to_cache(k[:1], fmt).dtype)
        kc = np.frombuffer(np.full(kc.nbytes, 0xFF, np.uint8).tobytes(), kc.dtype).reshape(kc.shape).copy()
        vc = kc.copy()
        w = write_kernel(fmt, variant)
        assert w(ptr(k), kc.ctypes.data, n_past + 1, KV * D, pool(nth), nth) == 0
        assert w(ptr(v), vc.ctypes.data, n_past + 1, KV * D, pool(nth), nth) == 0
        out = np.full((1, H * D), np.nan, np.float32)
        dec = kernel(f"ck_attention_decode_kv{fmt}", variant, DEC_ARGS, c_int)
        assert dec(ptr(q), kc.ctypes.data, vc.ctypes.data, ptr(out), n_past, H, KV, D, window, 1 / 8, 0.0,
                   pool(nth), nth) == 0
        outs.append(out)
    want, _ = reference(torch.from_numpy(q).double(), rounded(k, fmt), rounded(v, fmt), 1, n_past, H, KV, D,
                        window, 1 / 8, 0.0)
    assert max_rel_err(outs[0], want.numpy()) <= TOL
    assert outs[0].tobytes() == outs[1].tobytes()


@pytest.mark.parametrize("variant", variants())
def test_attention_kv_bad_args(variant):
    f = kernel("ck_attention_kvq8_0", variant, KV_FWD_ARGS, c_int)
    x = np.zeros(8192, np.float32)
    assert f(ptr(x), ptr(x), ptr(x), ptr(x), 1, 0, 2, 1, 40, 0, 1.0, 0.0, None, 1) == -2  # D % 32
    g = kernel("ck_attention_kvf16", variant, KV_FWD_ARGS, c_int)
    assert g(ptr(x), ptr(x), ptr(x), ptr(x), 1, 0, 3, 2, 32, 0, 1.0, 0.0, None, 1) == -2  # H % KV


def test_kv_cache_sanitized():
    """A subset under ASan + UBSan (the converted-block stack tiles, Q8_0 row addressing)."""
    run_sanitized(f"{__file__}::test_attention_decode_kv", f"{__file__}::test_kv_write_bytes", "-k",
                  "not avx2 and (q8_0 or f16-7)")
