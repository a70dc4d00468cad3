"""Parity of RMSNorm (plain and Gemma's 1+w, and per-head QK-norm as T*heads
rows) and LayerNorm (with and without bias, and a 1+w offset), forward and backward (dx, dw, db), against torch autograd in float64,
every variant the CPU runs, 1 and 2 threads, odd widths and rows up to 4096.

Tolerance: max error <= 1e-5 relative to the reference's largest magnitude,
for y, dx, dw and db. The saved statistics (rstd, mean) are checked too."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, variants

TOL = 1e-5
SHAPES = [(1, 7), (5, 64), (9, 896), (3, 1000), (4, 4096), (130, 33)]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("T,C", SHAPES)
@pytest.mark.parametrize("offset", [0.0, 1.0], ids=["w", "1+w"])
@pytest.mark.parametrize("nth", [1, 2])
def test_rmsnorm(variant, T, C, offset, nth):
    rng = np.random.default_rng(T * C)
    x = rand(rng, T, C, scale=2.0) + np.float32(0.5)
    w = rand(rng, C, scale=0.5)
    dy = rand(rng, T, C)
    eps = 1e-6
    y = np.full((T, C), np.nan, np.float32)
    rstd = np.full(T, np.nan, np.float32)
    fwd = kernel("ck_rmsnorm_f32", variant,
                 [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_float, c_float, c_void_p, c_int])
    fwd(ptr(x), ptr(w), ptr(y), ptr(rstd), T, C, eps, offset, pool(nth), nth)

    xt = torch.from_numpy(x).double().requires_grad_()
    wt = torch.from_numpy(w).double().requires_grad_()
    yt = F.rms_norm(xt, (C,), wt + offset, eps=eps)
    yt.backward(torch.from_numpy(dy).double())
    assert max_rel_err(y, yt.detach().numpy()) <= TOL
    want_rstd = torch.rsqrt(xt.detach().pow(2).mean(-1) + eps).numpy()
    assert max_rel_err(rstd, want_rstd) <= TOL

    dx = np.full((T, C), np.nan, np.float32)
    dw0 = rand(rng, C)  # dw accumulates
    dw = dw0.copy()
    bwd = kernel("ck_rmsnorm_grad_f32", variant,
                 [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_float, c_void_p, c_int])
    bwd(ptr(dy), ptr(x), ptr(w), ptr(rstd), ptr(dx), ptr(dw), T, C, offset, pool(nth), nth)
    assert max_rel_err(dx, xt.grad.numpy()) <= TOL
    assert max_rel_err(dw - dw0, wt.grad.numpy()) <= TOL

    # in place forward (y == x)
    xi = x.copy()
    fwd(ptr(xi), ptr(w), ptr(xi), None, T, C, eps, offset, pool(nth), nth)
    np.testing.assert_array_equal(xi, y)


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("T,C", SHAPES)
@pytest.mark.parametrize("bias,offset", [(True, 0.0), (False, 0.0), (True, 1.0)], ids=["bias", "nobias", "bias-1+w"])
@pytest.mark.parametrize("nth", [1, 2])
def test_layernorm(variant, T, C, bias, offset, nth):
    rng = np.random.default_rng(T * C + 1)
    x = rand(rng, T, C, scale=3.0) + np.float32(1.5)
    w = rand(rng, C)
    b = rand(rng, C) if bias else None
    dy = rand(rng, T, C)
    eps = 1e-5
    y = np.full((T, C), np.nan, np.float32)
    mean = np.full(T, np.nan, np.float32)
    rstd = np.full(T, np.nan, np.float32)
    fwd = kernel("ck_layernorm_f32", variant,
                 [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_float, c_float, c_void_p,
                  c_int])
    fwd(ptr(x), ptr(w), ptr(b), ptr(y), ptr(mean), ptr(rstd), T, C, eps, offset, pool(nth), nth)

    xt = torch.from_numpy(x).double().requires_grad_()
    wt = torch.from_numpy(w).double().requires_grad_()
    bt = torch.from_numpy(b).double().requires_grad_() if bias else None
    yt = F.layer_norm(xt, (C,), wt + offset, bt, eps=eps)
    yt.backward(torch.from_numpy(dy).double())
    assert max_rel_err(y, yt.detach().numpy()) <= TOL
    assert max_rel_err(mean, xt.detach().mean(-1).numpy()) <= TOL
    assert max_rel_err(rstd, torch.rsqrt(xt.detach().var(-1, unbiased=False) + eps).numpy()) <= TOL

    dx = np.full((T, C), np.nan, np.float32)
    dw0, db0 = rand(rng, C), rand(rng, C)
    dw, db = dw0.copy(), db0.copy()
    bwd = kernel("ck_layernorm_grad_f32", variant,
                 [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int,
                  c_float, c_void_p, c_int])
    bwd(ptr(dy), ptr(x), ptr(w), ptr(mean), ptr(rstd), ptr(dx), ptr(dw), ptr(db) if bias else None, T, C,
        offset, pool(nth), nth)
    assert max_rel_err(dx, xt.grad.numpy()) <= TOL
    assert max_rel_err(dw - dw0, wt.grad.numpy()) <= TOL
    if bias:
        assert max_rel_err(db - db0, bt.grad.numpy()) <= TOL
    else:
        np.testing.assert_array_equal(db, db0)


@pytest.mark.parametrize("variant", variants())
def test_rmsnorm_per_head(variant):
    """QK-norm: [T, heads*hd] normalised per head with a [hd] weight = T*heads rows."""
    T, heads, hd = 5, 3, 64
    rng = np.random.default_rng(5)
    x, w = rand(rng, T, heads * hd), rand(rng, hd)
    y = np.full_like(x, np.nan)
    fwd = kernel("ck_rmsnorm_f32", variant,
                 [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_float, c_float, c_void_p, c_int])
    fwd(ptr(x), ptr(w), ptr(y), None, T * heads, hd, 1e-6, 0.0, None, 1)
    want = F.rms_norm(torch.from_numpy(x).double().view(T, heads, hd), (hd,), torch.from_numpy(w).double(), eps=1e-6)
    assert max_rel_err(y, want.reshape(T, heads * hd).numpy()) <= TOL
