"""Parity of the embedding lookup (+ scale) and its backward (scatter-add into
dtable, repeated ids summed) against torch F.embedding + autograd, every variant
the CPU runs, 1 and 2 threads, odd widths. Out-of-range ids give zero rows,
are counted by the return value and skipped by the backward.
Tolerance: max error <= 1e-6 relative (a copy times a scale; a short sum)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kernel_util import c_float, c_int, c_void_p, kernel, max_rel_err, pool, ptr, rand, variants

TOL = 1e-6
ARGS = [c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_float, c_void_p, c_int]


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("T,vocab,C", [(1, 3, 1), (9, 50, 17), (64, 1000, 576), (300, 37, 4096)])
@pytest.mark.parametrize("scale", [1.0, None], ids=["1", "sqrtC"])
@pytest.mark.parametrize("nth", [1, 2])
def test_embedding(variant, T, vocab, C, scale, nth):
    scale = math.sqrt(C) if scale is None else scale
    rng = np.random.default_rng(T + C)
    table = rand(rng, vocab, C)
    ids = rng.integers(0, vocab, size=T).astype(np.int32)  # repeats when T > vocab
    out = np.full((T, C), np.nan, np.float32)
    fwd = kernel("ck_embedding_f32", variant, ARGS, c_int)
    assert fwd(ptr(ids), ptr(table), ptr(out), T, vocab, C, scale, pool(nth), nth) == 0
    tt = torch.from_numpy(table).double().requires_grad_()
    yt = F.embedding(torch.from_numpy(ids).long(), tt) * np.float32(scale)
    dout = rand(rng, T, C)
    yt.backward(torch.from_numpy(dout).double())
    assert max_rel_err(out, yt.detach().numpy()) <= TOL

    d0 = rand(rng, vocab, C)  # dtable accumulates
    dtable = d0.copy()
    bwd = kernel("ck_embedding_grad_f32", variant, ARGS)
    bwd(ptr(ids), ptr(dout), ptr(dtable), T, vocab, C, scale, pool(nth), nth)
    assert max_rel_err(dtable - d0, tt.grad.numpy()) <= 1e-5  # difference of accumulated values


@pytest.mark.parametrize("variant", variants())
def test_embedding_out_of_range(variant):
    vocab, C = 10, 20
    rng = np.random.default_rng(0)
    table = rand(rng, vocab, C)
    ids = np.array([3, -1, 10, 9, 12345], np.int32)
    out = np.full((5, C), np.nan, np.float32)
    fwd = kernel("ck_embedding_f32", variant, ARGS, c_int)
    assert fwd(ptr(ids), ptr(table), ptr(out), 5, vocab, C, 1.0, None, 1) == 3
    np.testing.assert_array_equal(out[[1, 2, 4]], 0)
    np.testing.assert_array_equal(out[[0, 3]], table[[3, 9]])
    dtable = np.zeros((vocab, C), np.float32)
    kernel("ck_embedding_grad_f32", variant, ARGS)(ptr(ids), ptr(np.ones((5, C), np.float32)), ptr(dtable), 5,
                                                   vocab, C, 1.0, None, 1)
    assert dtable.sum() == 2 * C and dtable[3].sum() == C and dtable[9].sum() == C
