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


def _flat_block(shapes):
    """Offsets (floats) of tensors laid out one after another, each 64-byte aligned, and
    the block's length: plan-memory's parallel layout of weights / grads / m / v."""
    offs, at = [], 0
    for s in shapes:
        offs.append(at)
        at += (int(np.prod(s)) + 15) // 16 * 16
    return offs, at


CLIP_NORM = [c_void_p, c_i64, c_float, c_void_p, c_void_p, c_void_p, c_int]
ADAMW_COEF = [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_i64, c_float, c_float, c_float, c_float, c_float,
              c_int, c_void_p, c_int]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("max_norm", [0.5, 0.0], ids=["clips", "no-clip"])
@pytest.mark.parametrize("nth", [1, 2])
def test_flat_optimizer_step(variant, max_norm, nth):
    """The compiled @optimizer_step's kernels on flat parallel blocks: ck_clip_norm_f32
    over the whole gradient block (padding between tensors included, zero), one
    ck_adamw_coef_f32 per parameter group (matrices decayed, vectors not), then
    ck_zero_f32 -- 3 steps vs clip_grad_norm_ + torch.optim.AdamW with two groups.
    Tolerance: weights, m, v within 1e-5 relative to the largest magnitude; the
    norm within 1e-6 relative."""
    rng = np.random.default_rng(7)
    mats, vecs = [(64, 33), (300, 257), (5, 3)], [(7,), (4099,)]
    lr, b1, b2, eps, wd = 3e-3, 0.9, 0.95, 1e-8, 0.1
    offs, n_mat = _flat_block(mats)
    voffs, n_vec = _flat_block(vecs)
    total = n_mat + n_vec  # the matrix group, then the vector group (each group padded the same way)
    where = [(o, s) for o, s in zip(offs, mats)] + [(n_mat + o, s) for o, s in zip(voffs, vecs)]
    W, G, M, V = (np.zeros(total, np.float32) for _ in range(4))
    for o, s in where:
        W[o:o + int(np.prod(s))] = rand(rng, int(np.prod(s)))
    params = [torch.nn.Parameter(torch.from_numpy(W[o:o + int(np.prod(s))].reshape(s).copy())) for o, s in where]
    opt = torch.optim.AdamW([{"params": params[:len(mats)]}, {"params": params[len(mats):], "weight_decay": 0.0}],
                            lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    clip = kernel("ck_clip_norm_f32", variant, CLIP_NORM)
    adamw = kernel("ck_adamw_coef_f32", variant, ADAMW_COEF)
    zero = kernel("ck_zero_f32", variant, [c_void_p, c_i64, c_void_p, c_int])
    norm, coef = np.zeros(1, np.float32), np.zeros(1, np.float32)
    f32 = np.dtype(np.float32).itemsize
    for step in range(1, 4):
        for (o, s), prm in zip(where, params):
            g = rand(rng, *s, scale=0.1 * step)
            G[o:o + g.size] = g.ravel()
            prm.grad = torch.from_numpy(g.copy())
        clip(ptr(G), total, max_norm, ptr(norm), ptr(coef), pool(nth), nth)
        adamw(ptr(W), ptr(G), ptr(M), ptr(V), ptr(coef), n_mat, lr, b1, b2, eps, wd, step, pool(nth), nth)
        off = n_mat * f32
        adamw(W.ctypes.data + off, G.ctypes.data + off, M.ctypes.data + off, V.ctypes.data + off, ptr(coef),
              n_vec, lr, b1, b2, eps, 0.0, step, pool(nth), nth)
        zero(ptr(G), total, pool(nth), nth)
        want = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"), foreach=False)
        opt.step()
        assert abs(norm[0] - want.item()) <= 1e-6 * want.item(), (step, norm[0], want.item())
        assert (coef[0] < 1.0) == (max_norm > 0) and not G.any()
    for (o, s), prm in zip(where, params):
        k = int(np.prod(s))
        st = opt.state[prm]
        assert max_rel_err(W[o:o + k], prm.detach().numpy().ravel()) <= TOL
        assert max_rel_err(M[o:o + k], st["exp_avg"].numpy().ravel()) <= TOL
        assert max_rel_err(V[o:o + k], st["exp_avg_sq"].numpy().ravel()) <= TOL
    pad = np.ones(total, bool)
    for o, s in where:
        pad[o:o + int(np.prod(s))] = False
    assert not W[pad].any() and not M[pad].any()  # the padding stays zero
