"""Parity of AdamW (decoupled weight decay, bias correction) against
torch.optim.AdamW over several steps, and of global-norm clipping (sum of
squares over many tensors, then the coefficient) against
torch.nn.utils.clip_grad_norm_. Every variant the CPU runs, 1 and 2 threads,
odd sizes. Tolerance: params, m and v within 1e-5 relative to the reference's
largest magnitude after 3 steps; the norm within 1e-6 relative."""

import ctypes

import numpy as np
import pytest
import torch

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, variants

c_i64 = ctypes.c_int64
c_double = ctypes.c_double
TOL = 1e-5
ADAMW = [c_void_p, c_void_p, c_void_p, c_void_p, c_i64, c_float, c_float, c_float, c_float, c_float, c_int, c_float,
         c_void_p, c_int]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("n", [1, 37, 4096 + 3, 100000])
@pytest.mark.parametrize("grad_scale", [1.0, 0.3])
@pytest.mark.parametrize("nth", [1, 2])
def test_adamw(variant, n, grad_scale, nth):
    rng = np.random.default_rng(n)
    lr, b1, b2, eps, wd = 3e-3, 0.9, 0.95, 1e-8, 0.1
    p = rand(rng, n)
    m = np.zeros(n, np.float32)
    v = np.zeros(n, np.float32)
    pt = torch.nn.Parameter(torch.from_numpy(p.copy()))
    opt = torch.optim.AdamW([pt], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    f = kernel("ck_adamw_f32", variant, ADAMW)
    for step in range(1, 4):
        g = rand(rng, n, scale=0.1 * step)
        f(ptr(p), ptr(g), ptr(m), ptr(v), n, lr, b1, b2, eps, wd, step, grad_scale, pool(nth), nth)
        pt.grad = torch.from_numpy(g * np.float32(grad_scale))
        opt.step()
    st = opt.state[pt]
    assert max_rel_err(p, pt.detach().numpy()) <= TOL
    assert max_rel_err(m, st["exp_avg"].numpy()) <= TOL
    assert max_rel_err(v, st["exp_avg_sq"].numpy()) <= TOL


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clips", "no-clip"])
@pytest.mark.parametrize("nth", [1, 2])
def test_global_norm_clip(variant, max_norm, nth):
    rng = np.random.default_rng(1)
    grads = [rand(rng, *s) for s in [(7,), (64, 33), (4099,), (300, 257)]]
    sumsq = kernel("ck_sumsq_f32", variant, [c_void_p, c_i64, c_void_p, c_int], c_double)
    coef = kernel("ck_clip_coef_f32", variant, [c_double, c_float, ctypes.POINTER(c_float)], c_float)
    scale = kernel("ck_scale_f32", variant, [c_void_p, c_void_p, c_i64, c_float, c_void_p, c_int])
    total = 0.0
    for g in grads:  # phase 1: accumulate over tensors
        total += sumsq(ptr(g), g.size, pool(nth), nth)
    norm = c_float()
    c = coef(total, max_norm, ctypes.byref(norm))
    for g in grads:  # phase 2: scale
        scale(ptr(g), ptr(g), g.size, c, pool(nth), nth)

    params = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    rng = np.random.default_rng(1)
    for prm, s in zip(params, [(7,), (64, 33), (4099,), (300, 257)]):
        prm.grad = torch.from_numpy(rand(rng, *s))
    want = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)
    assert abs(norm.value - want.item()) <= 1e-6 * want.item()
    assert (c < 1.0) == (max_norm == 0.5)
    for g, prm in zip(grads, params):
        assert max_rel_err(g, prm.grad.numpy()) <= TOL
