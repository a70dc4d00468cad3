"""Parity of RoPE (split-half "neox" and interleaved styles, partial rotary,
start position / explicit positions), forward and backward, against torch
implementations written the way transformers (rotate_half) and Meta's llama
(complex multiply) do, in float64 from fp32 angles (inv_freq rounded to fp32,
angle = fp32(pos) * inv_freq in fp32, as HF computes them).

Tolerance: max error <= 1e-5 relative to the reference's largest magnitude."""

import numpy as np
import pytest
import torch

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, variants

TOL = 1e-5
NEOX, INTERLEAVED = 0, 1
ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, c_int, c_float, c_int, c_void_p, c_int]


def inv_freq(rot, theta):
    return (float(np.float32(theta)) ** (-np.arange(0, rot, 2, dtype=np.float64) / rot)).astype(np.float32)


def angles(pos, rot, theta, inv=None):
    inv = torch.from_numpy(inv_freq(rot, theta) if inv is None else inv)
    return (pos.float()[:, None] * inv[None, :]).double()  # fp32 product, then exact


def rope_ref(x, pos, heads, hd, rot, theta, style, inv=None):
    """x [T, heads*hd] float64 tensor -> rotated copy (autograd-friendly)."""
    T = x.shape[0]
    xh = x.view(T, heads, hd)
    xr, xp = xh[..., :rot], xh[..., rot:]
    ang = angles(pos, rot, theta, inv)[:, None, :]  # [T, 1, rot/2]
    if style == NEOX:  # transformers: q*cos + rotate_half(q)*sin, cos = cat(freqs, freqs)
        cos = torch.cat([ang.cos(), ang.cos()], -1)
        sin = torch.cat([ang.sin(), ang.sin()], -1)
        x1, x2 = xr[..., : rot // 2], xr[..., rot // 2:]
        out = xr * cos + torch.cat([-x2, x1], -1) * sin
    else:  # llama (Meta): view pairs as complex, multiply by e^{i angle}
        xc = torch.view_as_complex(xr.reshape(T, heads, rot // 2, 2).contiguous())
        out = torch.view_as_real(xc * torch.polar(torch.ones_like(ang), ang)).reshape(T, heads, rot)
    return torch.cat([out, xp], -1).reshape(T, heads * hd)


CASES = [
    # T, heads, head_dim, rotary_dim, pos0, theta
    (1, 1, 2, 2, 0, 10000.0),
    (7, 3, 64, 64, 0, 10000.0),
    (5, 9, 64, 64, 37, 100000.0),  # SmolLM2-like, continuing a cache
    (4, 2, 80, 32, 4090, 10000.0),  # partial rotary (Phi-like), far position
    (33, 4, 128, 128, 1000, 500000.0),
    (3, 2, 256, 256, 2, 10000.0),  # Gemma head_dim
    (2, 5, 48, 24, 9, 10000.0),  # odd-ish pair counts (12 pairs)
]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("case", CASES, ids=[f"T{c[0]}h{c[1]}d{c[2]}r{c[3]}p{c[4]}" for c in CASES])
@pytest.mark.parametrize("style", [NEOX, INTERLEAVED], ids=["neox", "interleaved"])
@pytest.mark.parametrize("nth", [1, 2])
def test_rope(variant, case, style, nth):
    T, heads, hd, rot, pos0, theta = case
    rng = np.random.default_rng(T * hd + rot)
    x = rand(rng, T, heads * hd)
    dy = rand(rng, T, heads * hd)
    fwd = kernel("ck_rope_f32", variant, ARGS, c_int)
    bwd = kernel("ck_rope_grad_f32", variant, ARGS, c_int)
    y = np.full_like(x, np.nan)
    assert fwd(ptr(x), ptr(y), None, None, T, heads, hd, rot, pos0, theta, style, pool(nth), nth) == 0
    pos = torch.arange(pos0, pos0 + T)
    xt = torch.from_numpy(x).double().requires_grad_()
    yt = rope_ref(xt, pos, heads, hd, rot, theta, style)
    yt.backward(torch.from_numpy(dy).double())
    assert max_rel_err(y, yt.detach().numpy()) <= TOL
    dx = np.full_like(x, np.nan)
    assert bwd(ptr(dy), ptr(dx), None, None, T, heads, hd, rot, pos0, theta, style, pool(nth), nth) == 0
    assert max_rel_err(dx, xt.grad.numpy()) <= TOL

    # explicit positions (packed sequences) and in place
    posv = rng.integers(0, 8192, size=T).astype(np.int32)
    xi = x.copy()
    assert fwd(ptr(xi), ptr(xi), ptr(posv), None, T, heads, hd, rot, 0, theta, style, pool(nth), nth) == 0
    want = rope_ref(torch.from_numpy(x).double(), torch.from_numpy(posv).long(), heads, hd, rot, theta, style)
    assert max_rel_err(xi, want.numpy()) <= TOL
    # grad is the inverse: rotating back restores x
    assert bwd(ptr(xi), ptr(xi), ptr(posv), None, T, heads, hd, rot, 0, theta, style, pool(nth), nth) == 0
    assert max_rel_err(xi, x) <= TOL


@pytest.mark.parametrize("variant", variants())
def test_rope_bad_args(variant):
    fwd = kernel("ck_rope_f32", variant, ARGS, c_int)
    x = np.zeros((1, 8), np.float32)
    for rot, style in [(3, NEOX), (0, NEOX), (10, NEOX), (8, 7)]:
        assert fwd(ptr(x), ptr(x), None, None, 1, 1, 8, rot, 0, 10000.0, style, None, 1) == -2


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("style", [NEOX, INTERLEAVED], ids=["neox", "interleaved"])
def test_rope_inv_freq_table(variant, style):
    """A caller-given frequency table (RoPE scaling, e.g. llama3 / linear) replaces theta."""
    T, heads, hd, rot, pos0 = 6, 2, 64, 64, 100
    rng = np.random.default_rng(11)
    x = rand(rng, T, heads * hd)
    inv = (inv_freq(rot, 500000.0) / np.linspace(1, 8, rot // 2)).astype(np.float32)  # linear-ish scaling
    y = np.full_like(x, np.nan)
    fwd = kernel("ck_rope_f32", variant, ARGS, c_int)
    assert fwd(ptr(x), ptr(y), None, ptr(inv), T, heads, hd, rot, pos0, 1.0, style, None, 1) == 0
    want = rope_ref(torch.from_numpy(x).double(), torch.arange(pos0, pos0 + T), heads, hd, rot, 0.0, style, inv)
    assert max_rel_err(y, want.numpy()) <= TOL
