"""Parity of the elementwise kernels (residual add, product, scale, axpy) against torch,
every variant the CPU runs, 1 and 2 threads, odd sizes. Tolerance: max error
<= 1e-6 relative to the reference's largest magnitude (these are one rounding
each: add/mul, or one FMA)."""

import ctypes

import numpy as np
import pytest
import torch

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, variants

c_i64 = ctypes.c_int64
TOL = 1e-6
SIZES = [1, 15, 1000, 65537]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("nth", [1, 2])
def test_add(variant, n, nth):
    rng = np.random.default_rng(n)
    a, b = rand(rng, n), rand(rng, n)
    y = np.full(n, np.nan, np.float32)
    f = kernel("ck_add_f32", variant, [c_void_p, c_void_p, c_void_p, c_i64, c_void_p, c_int])
    f(ptr(a), ptr(b), ptr(y), n, pool(nth), nth)
    want = (torch.from_numpy(a).double() + torch.from_numpy(b).double()).numpy()
    assert max_rel_err(y, want) <= TOL
    # in place: y = a + b into a
    f(ptr(a), ptr(b), ptr(a), n, pool(nth), nth)
    np.testing.assert_array_equal(a, y)


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("nth", [1, 2])
def test_scale_and_axpy(variant, n, nth):
    rng = np.random.default_rng(n + 1)
    x, y0 = rand(rng, n), rand(rng, n)
    out = np.full(n, np.nan, np.float32)
    scale = kernel("ck_scale_f32", variant, [c_void_p, c_void_p, c_i64, c_float, c_void_p, c_int])
    scale(ptr(x), ptr(out), n, -0.37, pool(nth), nth)
    assert max_rel_err(out, torch.from_numpy(x).double().mul(np.float32(-0.37)).numpy()) <= TOL
    axpy = kernel("ck_axpy_f32", variant, [c_void_p, c_void_p, c_i64, c_float, c_void_p, c_int])
    y = y0.copy()
    axpy(ptr(y), ptr(x), n, 2.5, pool(nth), nth)
    want = torch.from_numpy(y0).double() + 2.5 * torch.from_numpy(x).double()
    assert max_rel_err(y, want.numpy()) <= TOL


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("nth", [1, 2])
def test_mul(variant, n, nth):
    rng = np.random.default_rng(n + 2)
    a, b = rand(rng, n), rand(rng, n)
    y = np.full(n, np.nan, np.float32)
    f = kernel("ck_mul_f32", variant, [c_void_p, c_void_p, c_void_p, c_i64, c_void_p, c_int])
    f(ptr(a), ptr(b), ptr(y), n, pool(nth), nth)
    assert max_rel_err(y, (torch.from_numpy(a).double() * torch.from_numpy(b).double()).numpy()) <= TOL
