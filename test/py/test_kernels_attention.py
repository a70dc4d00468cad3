"""Parity of causal attention (GQA, sliding window, softcap, prefill continuing
a cache from n_past, single-token decode against a [max_ctx, KV*D] cache) and
its backward (dQ, dK, dV with the GQA reduction) against torch: a float64
reference with an explicit mask + autograd, and F.scaled_dot_product_attention
for the plain causal GQA case. Every variant the CPU runs, 1 and 2 threads.

Tolerance: max error <= 1e-4 relative to the reference's largest magnitude
(out, dq, dk, dv); the saved log-sum-exp within 1e-5 relative."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, variants

TOL = 1e-4
FWD_ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, c_int, c_int, c_float,
            c_float, c_void_p, c_int]
DEC_ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, c_int, c_float, c_float, c_void_p,
            c_int]
BWD_ARGS = [c_void_p] * 9 + [c_int] * 6 + [c_float, c_float, c_void_p, c_int]


def reference(q, k, v, T, n_past, H, KV, D, window, scale, softcap):
    """float64 torch: q [T, H*D], k/v [n_past+T, KV*D] -> out [T, H*D], lse [T, H]."""
    S = n_past + T
    qh = q.view(T, H, D).transpose(0, 1)  # [H, T, D]
    rep = H // KV
    kh = k.view(S, KV, D).transpose(0, 1).repeat_interleave(rep, 0)  # [H, S, D]
    vh = v.view(S, KV, D).transpose(0, 1).repeat_interleave(rep, 0)
    s = scale * qh @ kh.transpose(1, 2)  # [H, T, S]
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    P = torch.arange(n_past, n_past + T)[:, None]
    j = torch.arange(S)[None, :]
    visible = j <= P
    if window > 0:
        visible &= j > P - window
    s = s.masked_fill(~visible, float("-inf"))
    lse = torch.logsumexp(s, -1)  # [H, T]
    out = torch.softmax(s, -1) @ vh  # [H, T, D]
    return out.transpose(0, 1).reshape(T, H * D), lse.transpose(0, 1)


CASES = [
    # T, n_past, H, KV, D, window, softcap
    (1, 0, 1, 1, 8, 0, 0.0),
    (37, 0, 4, 2, 64, 0, 0.0),
    (70, 0, 9, 3, 64, 16, 0.0),  # SmolLM2 heads, sliding window
    (20, 13, 6, 1, 48, 0, 0.0),  # MQA, prefill continuing a cache, head_dim tail
    (33, 5, 4, 4, 80, 7, 50.0),  # softcap (Gemma 2) + window
    (130, 0, 2, 1, 256, 0, 0.0),  # Gemma head_dim, several key/query blocks
    (150, 40, 4, 2, 32, 100, 0.0),  # window larger than a key block, n_past
]
IDS = [f"T{c[0]}p{c[1]}H{c[2]}KV{c[3]}D{c[4]}w{c[5]}c{int(c[6])}" for c in CASES]


def make(case, seed):
    T, n_past, H, KV, D, window, softcap = case
    rng = np.random.default_rng(seed)
    S = n_past + T
    return rand(rng, T, H * D), rand(rng, S, KV * D), rand(rng, S, KV * D), rand(rng, T, H * D)


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("nth", [1, 2])
def test_attention_forward_backward(variant, case, nth):
    T, n_past, H, KV, D, window, softcap = case
    scale = 1.0 / math.sqrt(D)
    q, k, v, dout = make(case, T * 31 + D)
    out = np.full((T, H * D), np.nan, np.float32)
    lse = np.full((T, H), np.nan, np.float32)
    fwd = kernel("ck_attention_f32", variant, FWD_ARGS, c_int)
    assert fwd(ptr(q), ptr(k), ptr(v), ptr(out), ptr(lse), T, n_past, H, KV, D, window, scale, softcap,
               pool(nth), nth) == 0

    qt, kt, vt = (torch.from_numpy(a).double().requires_grad_() for a in (q, k, v))
    ot, lt = reference(qt, kt, vt, T, n_past, H, KV, D, window, scale, softcap)
    ot.backward(torch.from_numpy(dout).double())
    assert max_rel_err(out, ot.detach().numpy()) <= TOL
    assert max_rel_err(lse, lt.detach().numpy()) <= 1e-5

    S = n_past + T
    dq = np.full((T, H * D), np.nan, np.float32)
    dk = np.full((S, KV * D), np.nan, np.float32)
    dv = np.full((S, KV * D), np.nan, np.float32)
    bwd = kernel("ck_attention_grad_f32", variant, BWD_ARGS, c_int)
    assert bwd(ptr(q), ptr(k), ptr(v), ptr(out), ptr(dout), ptr(lse), ptr(dq), ptr(dk), ptr(dv), T, n_past, H, KV,
               D, window, scale, softcap, pool(nth), nth) == 0
    assert max_rel_err(dq, qt.grad.numpy()) <= TOL
    assert max_rel_err(dk, kt.grad.numpy()) <= TOL
    assert max_rel_err(dv, vt.grad.numpy()) <= TOL


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("nth", [1, 2])
def test_attention_matches_sdpa(variant, nth):
    """Plain causal GQA against torch's own fused kernel (float32)."""
    T, H, KV, D = 77, 8, 2, 64
    q, k, v, _ = make((T, 0, H, KV, D, 0, 0.0), 3)
    out = np.full((T, H * D), np.nan, np.float32)
    fwd = kernel("ck_attention_f32", variant, FWD_ARGS, c_int)
    assert fwd(ptr(q), ptr(k), ptr(v), ptr(out), None, T, 0, H, KV, D, 0, 1.0 / math.sqrt(D), 0.0, pool(nth), nth) == 0
    qh = torch.from_numpy(q).view(T, H, D).transpose(0, 1)[None]
    kh = torch.from_numpy(k).view(T, KV, D).transpose(0, 1)[None]
    vh = torch.from_numpy(v).view(T, KV, D).transpose(0, 1)[None]
    want = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, enable_gqa=True)
    assert max_rel_err(out, want[0].transpose(0, 1).reshape(T, H * D).numpy()) <= TOL


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("n_past,window", [(0, 0), (5, 0), (200, 0), (200, 64), (255, 31)])
@pytest.mark.parametrize("nth", [1, 2])
def test_attention_decode(variant, n_past, window, nth):
    """One token against a [max_ctx, KV*D] cache; rows past n_past are NaN (never read)."""
    H, KV, D, max_ctx = 9, 3, 64, 256
    rng = np.random.default_rng(n_past + window)
    kc = np.full((max_ctx, KV * D), np.nan, np.float32)
    vc = np.full((max_ctx, KV * D), np.nan, np.float32)
    kc[: n_past + 1] = rand(rng, n_past + 1, KV * D)
    vc[: n_past + 1] = rand(rng, n_past + 1, KV * D)
    q = rand(rng, 1, H * D)
    out = np.full((1, H * D), np.nan, np.float32)
    dec = kernel("ck_attention_decode_f32", variant, DEC_ARGS, c_int)
    scale = 1.0 / math.sqrt(D)
    assert dec(ptr(q), ptr(kc), ptr(vc), ptr(out), n_past, H, KV, D, window, scale, 0.0, pool(nth), nth) == 0
    want, _ = reference(torch.from_numpy(q).double(), torch.from_numpy(kc[: n_past + 1]).double(),
                        torch.from_numpy(vc[: n_past + 1]).double(), 1, n_past, H, KV, D, window, scale, 0.0)
    assert max_rel_err(out, want.numpy()) <= TOL


@pytest.mark.parametrize("variant", variants())
def test_attention_prefill_then_decode_equals_full(variant):
    """Prefill of 11 tokens, then 2 more as a second prefill (n_past=11), then decode:
    the rows equal one full prefill over all 14 tokens."""
    H, KV, D, S = 4, 2, 32, 14
    rng = np.random.default_rng(9)
    q, k, v = rand(rng, S, H * D), rand(rng, S, KV * D), rand(rng, S, KV * D)
    fwd = kernel("ck_attention_f32", variant, FWD_ARGS, c_int)
    dec = kernel("ck_attention_decode_f32", variant, DEC_ARGS, c_int)
    full = np.zeros((S, H * D), np.float32)
    fwd(ptr(q), ptr(k), ptr(v), ptr(full), None, S, 0, H, KV, D, 0, 0.2, 0.0, None, 1)
    part = np.zeros((S, H * D), np.float32)
    fwd(ptr(q[:11]), ptr(k), ptr(v), ptr(part[:11]), None, 11, 0, H, KV, D, 0, 0.2, 0.0, None, 1)
    fwd(ptr(q[11:13]), ptr(k), ptr(v), ptr(part[11:13]), None, 2, 11, H, KV, D, 0, 0.2, 0.0, None, 1)
    dec(ptr(q[13:]), ptr(k), ptr(v), ptr(part[13:]), 13, H, KV, D, 0, 0.2, 0.0, None, 1)
    assert max_rel_err(part, full) <= 1e-6


@pytest.mark.parametrize("variant", variants())
def test_attention_bad_args(variant):
    fwd = kernel("ck_attention_f32", variant, FWD_ARGS, c_int)
    x = np.zeros(4096, np.float32)
    assert fwd(ptr(x), ptr(x), ptr(x), ptr(x), None, 1, 0, 3, 2, 8, 0, 1.0, 0.0, None, 1) == -2  # H % KV
    assert fwd(ptr(x), ptr(x), ptr(x), ptr(x), None, 1, 0, 1, 1, 512, 0, 1.0, 0.0, None, 1) == -2  # D too big


SEQ_FWD_ARGS = [c_void_p] * 5 + [c_int] * 6 + [c_float, c_float, c_void_p, c_int]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("nth", [1, 2])
def test_attention_seq_is_per_sequence(variant, nth):
    """ck_attention_seq_f32 / ck_attention_grad_seq_f32 on B sequences of S rows
    back to back: bit for bit B calls of ck_attention_f32 / _grad_f32 (the
    same kernels on each sequence's rows; nothing crosses a sequence). Rows
    that are not a whole number of sequences are refused, nothing written."""
    B, S, H, KV, D, window, softcap = 3, 21, 4, 2, 32, 0, 0.0
    scale = 1.0 / math.sqrt(D)
    rng = np.random.default_rng(7)
    q, k, v, dout = rand(rng, B * S, H * D), rand(rng, B * S, KV * D), rand(rng, B * S, KV * D), rand(rng, B * S, H * D)
    fwd = kernel("ck_attention_f32", variant, FWD_ARGS, c_int)
    bwd = kernel("ck_attention_grad_f32", variant, BWD_ARGS, c_int)
    fwd_seq = kernel("ck_attention_seq_f32", variant, SEQ_FWD_ARGS, c_int)
    bwd_seq = kernel("ck_attention_grad_seq_f32", variant, BWD_ARGS, c_int)
    want = [np.zeros((B * S, H * D), np.float32), np.zeros((B * S, H), np.float32),
            np.zeros((B * S, H * D), np.float32), np.zeros((B * S, KV * D), np.float32),
            np.zeros((B * S, KV * D), np.float32)]
    for b in range(B):
        r = slice(b * S, (b + 1) * S)
        o, l, dq, dk, dv = (a[r] for a in want)
        # (row slices of C-contiguous arrays: contiguous views, written in place)
        assert fwd(ptr(q[r]), ptr(k[r]), ptr(v[r]), ptr(o), ptr(l), S, 0, H, KV, D, window,
                   scale, softcap, pool(nth), nth) == 0
        assert bwd(ptr(q[r]), ptr(k[r]), ptr(v[r]), ptr(o), ptr(dout[r]), ptr(l),
                   ptr(dq), ptr(dk), ptr(dv), S, 0, H, KV, D, window, scale, softcap, pool(nth), nth) == 0
    got = [np.full(w.shape, np.nan, np.float32) for w in want]
    o, l, dq, dk, dv = got
    assert fwd_seq(ptr(q), ptr(k), ptr(v), ptr(o), ptr(l), B * S, S, H, KV, D, window, scale, softcap,
                   pool(nth), nth) == 0
    assert bwd_seq(ptr(q), ptr(k), ptr(v), ptr(o), ptr(dout), ptr(l), ptr(dq), ptr(dk), ptr(dv), B * S, S, H, KV, D,
                   window, scale, softcap, pool(nth), nth) == 0
    for w, g in zip(want, got):
        assert np.array_equal(w, g)
    bad = np.full((B * S, H * D), np.nan, np.float32)
    assert fwd_seq(ptr(q), ptr(k), ptr(v), ptr(bad), None, B * S - 1, S, H, KV, D, 0, scale, 0.0, None, 1) == -2
    assert fwd_seq(ptr(q), ptr(k), ptr(v), ptr(bad), None, B * S, 0, H, KV, D, 0, scale, 0.0, None, 1) == -2
    assert np.isnan(bad).all()


@pytest.mark.parametrize("variant", variants())
def test_seq_positions(variant):
    f = kernel("ck_seq_positions_i32", variant, [c_void_p, c_int, c_int, c_int, c_void_p, c_int])
    pos = np.full(12, -1, np.int32)
    f(ptr(pos), 10, 4, 3, None, 1)
    assert pos.tolist() == [3, 4, 5, 6, 3, 4, 5, 6, 3, 4, -1, -1]
    f(ptr(pos), 5, 0, 2, None, 1)
    assert pos[:5].tolist() == [2, 3, 4, 5, 6]
