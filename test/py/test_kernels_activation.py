"""Parity of SiLU, GELU (exact erf and tanh), softcap, SwiGLU and GeGLU, forward and
backward, against torch.nn.functional + autograd in float64, every variant the
CPU runs, 1 and 2 threads, odd sizes and long rows.

Tolerance: max error <= 1e-5 relative to the reference's largest magnitude
(``max_rel_err``), and additionally every element within 1e-5 relative +
1e-6·max absolute (so the small negative tails of GELU/SiLU are checked too).
The SIMD variants use their own exp/erfc approximations (internal/simd.h)."""

import ctypes

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, variants

c_i64 = ctypes.c_int64
TOL = 1e-5


def check(got, want):
    want = np.asarray(want, dtype=np.float64)
    assert max_rel_err(got, want) <= TOL
    scale = max(float(np.max(np.abs(want))), 1e-30)
    np.testing.assert_allclose(got, want, rtol=TOL, atol=1e-6 * scale)


def inputs(n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    # cover the tails and the exp/erfc range ends
    edge = np.array([-30, -12, -9.5, -6, -3.1, -1e-3, 0, 1e-4, 2.2, 6, 9.5, 12, 30], np.float32)
    x[: min(n, edge.size)] = edge[: min(n, edge.size)]
    dy = rng.standard_normal(n).astype(np.float32)
    return x, dy


def torch_act(name, x):
    if name == "softcap":
        return 30.0 * torch.tanh(x / 30.0)
    if name == "silu":
        return F.silu(x)
    if name == "gelu_erf":
        return F.gelu(x)
    return F.gelu(x, approximate="tanh")


UNARY = [("silu", "ck_silu_f32", None), ("gelu_erf", "ck_gelu_f32", 0), ("gelu_tanh", "ck_gelu_f32", 1),
         ("softcap", "ck_softcap_f32", 30.0)]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("act", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("n", [13, 1000, 4096 + 5])
@pytest.mark.parametrize("nth", [1, 2])
def test_unary(variant, act, n, nth):
    name, sym, approx = act
    x, dy = inputs(n, n)
    extra = [] if approx is None else [c_float if name == "softcap" else c_int]
    extra_v = [] if approx is None else [approx]
    if name == "softcap":
        x = x * np.float32(10.0)  # reach the saturated range of cap = 30
    fwd = kernel(sym, variant, [c_void_p, c_void_p, c_i64, *extra, c_void_p, c_int])
    bwd = kernel(sym.replace("_f32", "_grad_f32"), variant, [c_void_p, c_void_p, c_void_p, c_i64, *extra, c_void_p, c_int])
    y = np.full(n, np.nan, np.float32)
    dx = np.full(n, np.nan, np.float32)
    fwd(ptr(x), ptr(y), n, *extra_v, pool(nth), nth)
    bwd(ptr(x), ptr(dy), ptr(dx), n, *extra_v, pool(nth), nth)
    xt = torch.from_numpy(x).double().requires_grad_()
    yt = torch_act(name, xt)
    yt.backward(torch.from_numpy(dy).double())
    check(y, yt.detach().numpy())
    check(dx, xt.grad.numpy())


GATED = [("swiglu", "ck_swiglu_f32", None), ("geglu_erf", "ck_geglu_f32", 0), ("geglu_tanh", "ck_geglu_f32", 1)]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("act", GATED, ids=[g[0] for g in GATED])
@pytest.mark.parametrize("T,Fd,fused", [(1, 17, False), (7, 1000, True), (3, 4096, False), (33, 64, True)])
@pytest.mark.parametrize("nth", [1, 2])
def test_gated(variant, act, T, Fd, fused, nth):
    name, sym, approx = act
    rng = np.random.default_rng(T * Fd)
    # fused: one [T, 2F] gate|up buffer (ld_in = 2F); else two [T, F] tensors
    if fused:
        gu = (rng.standard_normal((T, 2 * Fd)) * 2).astype(np.float32)
        gate_v, up_v = gu[:, :Fd], gu[:, Fd:]
        gate_p, up_p, ld_in = ptr(gu), ctypes.c_void_p(gu.ctypes.data + 4 * Fd), 2 * Fd
        dgu = np.full((T, 2 * Fd), np.nan, np.float32)
        dgate_p, dup_p = ptr(dgu), ctypes.c_void_p(dgu.ctypes.data + 4 * Fd)
    else:
        gate_v = (rng.standard_normal((T, Fd)) * 2).astype(np.float32)
        up_v = rng.standard_normal((T, Fd)).astype(np.float32)
        gate_p, up_p, ld_in = ptr(gate_v), ptr(up_v), Fd
        dg = np.full((T, Fd), np.nan, np.float32)
        du = np.full((T, Fd), np.nan, np.float32)
        dgate_p, dup_p = ptr(dg), ptr(du)
    dy = rng.standard_normal((T, Fd)).astype(np.float32)
    y = np.full((T, Fd), np.nan, np.float32)
    extra = [] if approx is None else [c_int]
    extra_v = [] if approx is None else [approx]
    fwd = kernel(sym, variant, [c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, *extra, c_void_p, c_int])
    bwd = kernel(sym.replace("_f32", "_grad_f32"), variant,
                 [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int, *extra, c_void_p, c_int])
    fwd(gate_p, up_p, ptr(y), T, Fd, ld_in, Fd, *extra_v, pool(nth), nth)
    bwd(gate_p, up_p, ptr(dy), dgate_p, dup_p, T, Fd, ld_in, Fd, *extra_v, pool(nth), nth)
    g = torch.from_numpy(np.ascontiguousarray(gate_v)).double().requires_grad_()
    u = torch.from_numpy(np.ascontiguousarray(up_v)).double().requires_grad_()
    act_name = "silu" if name == "swiglu" else name.replace("geglu", "gelu")
    yt = torch_act(act_name, g) * u
    yt.backward(torch.from_numpy(dy).double())
    check(y, yt.detach().numpy())
    if fused:
        check(dgu[:, :Fd], g.grad.numpy())
        check(dgu[:, Fd:], u.grad.numpy())
    else:
        check(dg, g.grad.numpy())
        check(du, u.grad.numpy())
