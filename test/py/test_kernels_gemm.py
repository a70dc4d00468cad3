"""Parity of the GEMM / GEMV kernels (Linear forward and backward) against torch.

Tolerance: max |ckc - torch| / max |torch| <= 1e-4 (``max_rel_err``) for every
output, every variant the CPU runs, 1 and 2 threads. torch computes in fp32 too;
the bound covers different summation orders over K up to 4096.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kernel_util import (aligned_empty, c_int, c_size_t, c_void_p, guarded_copy, kernel, lib,
                               max_rel_err, pool, ptr, rand, run_isolated, run_sanitized, variants)

TOL = 1e-4
CK_OK, CK_ERR_WORKSPACE = 0, -1
ACC_DX, ACC_DW, ACC_DB = 1, 2, 4

# (M, N, K): y[M,N] = x[M,K] W[N,K]^T
SHAPES = [
    (1, 7, 13),
    (5, 33, 65),
    (17, 100, 257),
    (64, 896, 896),
    (1, 37, 4096),      # GEMV, long rows
    (1, 4096, 37),
    (1, 300, 4096),
    (2, 129, 1000),
    (3, 31, 17),
    (13, 50, 3),
    (40, 1, 64),
    (7, 45, 300),       # largest M of the small-M (no packing) path
    (8, 64, 33),        # smallest M of the packed path
    (100, 513, 255),
    (800, 70, 300),     # M beyond one MC=768 row block of the packed path
    (2, 65, 3),         # 3 panels of 32 left for the decode GEMV (a 4-panel group read past Wp);
                        # K = 3: a panel is 384 bytes, inside ASan's red zone after Wp
]

GEMM_ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_int,
             c_void_p, c_size_t, c_void_p, c_int]
GRAD_ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int,
             c_int, c_int, c_void_p, c_size_t, c_void_p, c_int]
GEMV_ARGS = [c_void_p, c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_void_p, c_int]


def workspace(M, N, K, nth):
    fn = kernel("ck_gemm_workspace_size", None, [c_int, c_int, c_int, c_int], c_size_t)
    size = fn(M, N, K, nth)
    return aligned_empty(size), size


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("variant", variants())
def test_forward(variant, shape, nth):
    M, N, K = shape
    rng = np.random.default_rng(hash(shape) % 2**32)
    x, W, b = rand(rng, M, K), rand(rng, N, K, scale=0.1), rand(rng, N)
    want = F.linear(torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b)).numpy()
    ws, wsz = workspace(M, N, K, nth)
    gemm = kernel("ck_gemm_f32", variant, GEMM_ARGS, c_int)
    y = np.full((M, N), np.nan, np.float32)
    assert gemm(ptr(x), ptr(W), ptr(b), ptr(y), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
    assert max_rel_err(y, want) <= TOL
    # accumulate, no bias
    y0 = rand(rng, M, N)
    y = y0.copy()
    assert gemm(ptr(x), ptr(W), None, ptr(y), M, N, K, 1, ptr(ws), wsz, pool(nth), nth) == CK_OK
    want = y0 + F.linear(torch.from_numpy(x), torch.from_numpy(W)).numpy()
    assert max_rel_err(y, want) <= TOL


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("variant", variants())
def test_backward(variant, shape, nth):
    M, N, K = shape
    rng = np.random.default_rng(hash(shape) % 2**32 + 1)
    x, W, b, dy = rand(rng, M, K), rand(rng, N, K, scale=0.1), rand(rng, N), rand(rng, M, N)
    tx, tW, tb = (torch.from_numpy(a).requires_grad_() for a in (x, W, b))
    F.linear(tx, tW, tb).backward(torch.from_numpy(dy))
    ws, wsz = workspace(M, N, K, nth)
    grad = kernel("ck_gemm_grad_f32", variant, GRAD_ARGS, c_int)
    dx = np.full((M, K), np.nan, np.float32)
    dW = np.full((N, K), np.nan, np.float32)
    db = np.full((N,), np.nan, np.float32)
    assert grad(ptr(dy), ptr(x), ptr(W), ptr(dx), ptr(dW), ptr(db), M, N, K, 0,
                ptr(ws), wsz, pool(nth), nth) == CK_OK
    assert max_rel_err(dx, tx.grad.numpy()) <= TOL
    assert max_rel_err(dW, tW.grad.numpy()) <= TOL
    assert max_rel_err(db, tb.grad.numpy()) <= TOL
    # accumulate into existing gradients (dW, db) and dx; NULL outputs are skipped
    dW0, db0, dx0 = rand(rng, N, K), rand(rng, N), rand(rng, M, K)
    dW, db, dx = dW0.copy(), db0.copy(), dx0.copy()
    assert grad(ptr(dy), ptr(x), ptr(W), None, ptr(dW), ptr(db), M, N, K, ACC_DW | ACC_DB,
                ptr(ws), wsz, pool(nth), nth) == CK_OK
    assert max_rel_err(dW, dW0 + tW.grad.numpy()) <= TOL
    assert max_rel_err(db, db0 + tb.grad.numpy()) <= TOL
    assert grad(ptr(dy), None, ptr(W), ptr(dx), None, None, M, N, K, ACC_DX,
                ptr(ws), wsz, pool(nth), nth) == CK_OK
    assert max_rel_err(dx, dx0 + tx.grad.numpy()) <= TOL


@pytest.mark.parametrize("variant", variants())
@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("N,K", [(1, 1), (5, 4096), (4864, 896), (257, 1023)])
def test_gemv(variant, N, K, nth):
    rng = np.random.default_rng(N * 7 + K)
    x, W, b = rand(rng, K), rand(rng, N, K, scale=0.1), rand(rng, N)
    gemv = kernel("ck_gemv_f32", variant, GEMV_ARGS)
    y = np.full((N,), np.nan, np.float32)
    gemv(ptr(x), ptr(W), ptr(b), ptr(y), N, K, 0, pool(nth), nth)
    want = F.linear(torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b)).numpy()
    assert max_rel_err(y, want) <= TOL
    y2 = y.copy()
    gemv(ptr(x), ptr(W), None, ptr(y2), N, K, 1, pool(nth), nth)
    assert max_rel_err(y2, y + (want - b)) <= TOL


# ---- prepacked weights (ck_gemm_pack_f32 + ck_gemm_packed_f32_<v>) ----

PW = 32   # panel width of the packed layout (ckernels.h)


def pack(W, nth=1):
    N, K = W.shape
    size = kernel("ck_gemm_packed_size", None, [c_int, c_int], c_size_t)(N, K)
    Wp = aligned_empty(size).view(np.float32)
    Wp[:] = np.nan
    kernel("ck_gemm_pack_f32", None, [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int])(
        ptr(W), N, K, ptr(Wp), pool(nth), nth)
    return Wp


@pytest.mark.parametrize("N,K", [(1, 1), (31, 7), (32, 16), (33, 17), (100, 257), (64, 4096)])
@pytest.mark.parametrize("nth", [1, 2])
def test_pack_layout(N, K, nth):
    """Wp[q][k][j] = W[32q + j][k], zero-padded to whole panels, exactly."""
    W = rand(np.random.default_rng(N + K), N, K)
    Wp = pack(W, nth)
    panels = -(-N // PW)
    assert Wp.size == panels * PW * K
    Wpad = np.zeros((panels * PW, K), np.float32)
    Wpad[:N] = W
    want = Wpad.reshape(panels, PW, K).transpose(0, 2, 1)
    np.testing.assert_array_equal(Wp.reshape(panels, K, PW), want)


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("variant", variants())
def test_packed_forward(variant, shape, nth):
    """Same result as torch (TOL), and bit for bit the same as the unpacked kernel
    of the same variant wherever that one packs W too (M >= 8; the scalar one always)."""
    M, N, K = shape
    rng = np.random.default_rng(hash(shape) % 2**32 + 7)
    x, W, b = rand(rng, M, K), rand(rng, N, K, scale=0.1), rand(rng, N)
    Wp = pack(W)
    ws, wsz = workspace(M, N, K, nth)
    packed = kernel("ck_gemm_packed_f32", variant, GEMM_ARGS, c_int)
    y = np.full((M, N), np.nan, np.float32)
    assert packed(ptr(x), ptr(Wp), ptr(b), ptr(y), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
    want = F.linear(torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b)).numpy()
    assert max_rel_err(y, want) <= TOL
    if M >= 8 or variant == "scalar":
        y_ref = np.full((M, N), np.nan, np.float32)
        gemm = kernel("ck_gemm_f32", variant, GEMM_ARGS, c_int)
        assert gemm(ptr(x), ptr(W), ptr(b), ptr(y_ref), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
        np.testing.assert_array_equal(y, y_ref)
    y0 = rand(rng, M, N)
    y = y0.copy()
    assert packed(ptr(x), ptr(Wp), None, ptr(y), M, N, K, 1, ptr(ws), wsz, pool(nth), nth) == CK_OK
    assert max_rel_err(y, y0 + F.linear(torch.from_numpy(x), torch.from_numpy(W)).numpy()) <= TOL


@pytest.mark.parametrize("variant", variants("avx2", "avx512"))
@pytest.mark.parametrize("shape", [(64, 896, 896), (100, 513, 255), (800, 70, 300), (3, 1000, 64)],
                         ids=lambda s: "x".join(map(str, s)))
def test_gemm_same_bits_for_any_thread_count(variant, shape):
    """The dynamic schedule changes who computes what, never the arithmetic."""
    M, N, K = shape
    rng = np.random.default_rng(M + N + K)
    x, W, b, dy = rand(rng, M, K), rand(rng, N, K, scale=0.1), rand(rng, N), rand(rng, M, N)
    Wp = pack(W)
    gemm = kernel("ck_gemm_f32", variant, GEMM_ARGS, c_int)
    packed = kernel("ck_gemm_packed_f32", variant, GEMM_ARGS, c_int)
    grad = kernel("ck_gemm_grad_f32", variant, GRAD_ARGS, c_int)
    outs = []
    for nth in (1, 2, 3, 4):
        ws, wsz = workspace(M, N, K, nth)
        y, yp = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
        dx, dW = np.empty((M, K), np.float32), np.empty((N, K), np.float32)
        assert gemm(ptr(x), ptr(W), ptr(b), ptr(y), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
        assert packed(ptr(x), ptr(Wp), ptr(b), ptr(yp), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
        assert grad(ptr(dy), ptr(x), ptr(W), ptr(dx), ptr(dW), None, M, N, K, 0,
                    ptr(ws), wsz, pool(nth), nth) == CK_OK
        outs.append((y, yp, dx, dW))
    for later in outs[1:]:
        for a, b_ in zip(outs[0], later):
            np.testing.assert_array_equal(a, b_)


# Every operand ends right before an inaccessible page (guarded_empty), so a read
# or write even one float past x, W / Wp, b or y faults. N covers the column tails
# of the decode GEMV's panel groups (avx512 streams 4, 3, 2 or 1 panels of 32 at a
# time): 96 = 3 panels in one chunk, 608 = 512 + 3 panels at 1 thread, 896 with
# 2 threads = 160-column chunks, the last one 3 panels (the Qwen2-0.5B ffn_down
# crash: the 4-panel group read a 4th panel past the end of the weights file).
GUARD_M = (1, 2, 3, 4, 5, 13, 30)
GUARD_N = (1, 33, 65, 96, 97, 160, 608, 896)
GUARD_K = 64


def guarded_sweep(variant):
    """Run in a subprocess by test_gemm_stays_inside_its_operands (a fault must not kill pytest)."""
    gemm = kernel("ck_gemm_f32", variant, GEMM_ARGS, c_int)
    packed = kernel("ck_gemm_packed_f32", variant, GEMM_ARGS, c_int)
    cases = [(M, N, GUARD_K, nth) for M in GUARD_M for N in GUARD_N for nth in (1, 2, 3)]
    cases.append((1, 896, 4864, 2))   # the model's own ffn_down shape
    for M, N, K, nth in cases:
        rng = np.random.default_rng(M * 7919 + N * 31 + K)
        x, W, b = rand(rng, M, K), rand(rng, N, K, scale=0.1), rand(rng, N)
        want = x.astype(np.float64) @ W.T.astype(np.float64) + b
        Wp = pack(W)
        gx, gW, gWp, gb = guarded_copy(x), guarded_copy(W), guarded_copy(Wp), guarded_copy(b)
        ws, wsz = workspace(M, N, K, nth)
        for fn, w in ((gemm, gW), (packed, gWp)):
            print(f"{fn.__name__} M={M} N={N} K={K} nth={nth}", flush=True)   # the last line names a fault's case
            y = guarded_copy(np.full((M, N), np.nan, np.float32))
            assert fn(ptr(gx), ptr(w), ptr(gb), ptr(y), M, N, K, 0, ptr(ws), wsz, pool(nth), nth) == CK_OK
            err = max_rel_err(y, want)
            assert err <= TOL, f"{variant} M={M} N={N} K={K} nth={nth}: error {err:.3g}"
    print(f"{len(cases)} shapes ok")


@pytest.mark.parametrize("variant", variants())
def test_gemm_stays_inside_its_operands(variant):
    """No GEMM path (small-M dot, decode GEMV on packed panels, private and shared
    packed A) touches memory past x, W, Wp, b or y, at 1-3 threads; results within TOL."""
    out = run_isolated(f"from test_kernels_gemm import guarded_sweep; guarded_sweep({variant!r})")
    assert "shapes ok" in out


def test_workspace_too_small_is_refused():
    for variant in [v for v in ("avx2", "avx512") if v in __import__("ckc.kernels").kernels.available_variants()]:
        gemm = kernel("ck_gemm_f32", variant, GEMM_ARGS, c_int)
        x, W = np.ones((20, 30), np.float32), np.ones((40, 30), np.float32)
        y = np.zeros((20, 40), np.float32)
        assert gemm(ptr(x), ptr(W), None, ptr(y), 20, 40, 30, 0, None, 0, None, 1) == CK_ERR_WORKSPACE
        assert not y.any()
        packed = kernel("ck_gemm_packed_f32", variant, GEMM_ARGS, c_int)
        Wp = pack(W)
        assert packed(ptr(x), ptr(Wp), None, ptr(y), 20, 40, 30, 0, None, 0, None, 1) == CK_ERR_WORKSPACE
        assert not y.any()


# ---- thread pool ----

TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)


def _pool_run():
    fn = lib().ck_pool_run
    fn.argtypes = [c_void_p, c_int, TASK, c_void_p]
    fn.restype = None
    return fn


@pytest.mark.parametrize("pool_size", [0, 1, 2, 3])
def test_pool_runs_every_task_once(pool_size):
    from ckc.kernels import Pool
    run = _pool_run()
    counts = np.zeros(64, np.int64)
    seen_nth = set()

    def task(arg, ith, nth):
        counts[ith] += 1
        seen_nth.add(nth)

    cb = TASK(task)
    p = Pool(pool_size) if pool_size else None
    handle = p.handle if p else None
    if p and pool_size:
        assert p.size == pool_size
    total = np.zeros(64, np.int64)
    for nth in [1, 2, 3, 5, 17, 64, 2, 1] * 4:   # many tiny runs, nth above the pool size too
        counts[:] = 0
        run(handle, nth, cb, None)
        assert list(counts[:nth]) == [1] * nth and not counts[nth:].any(), nth
        total[:nth] += 1
    assert seen_nth == {1, 2, 3, 5, 17, 64}
    if p:
        p.close()


@pytest.mark.parametrize("variant", variants())
def test_pool_many_gemm_calls_agree(variant):
    """Many small parallel kernel calls through one pool of 2, more parts than threads,
    on both the small-M (dot) and the packed path."""
    rng = np.random.default_rng(3)
    gemm = kernel("ck_gemm_f32", variant, GEMM_ARGS, c_int)
    for M in (3, 30):
        x, W = rand(rng, M, 40), rand(rng, 200, 40)
        want = x.astype(np.float64) @ W.T.astype(np.float64)
        for nth in [1, 2, 3, 7] * 10:
            ws, wsz = workspace(M, 200, 40, nth)
            y = np.zeros((M, 200), np.float32)
            assert gemm(ptr(x), ptr(W), None, ptr(y), M, 200, 40, 0, ptr(ws), wsz, pool(2), nth) == CK_OK
            assert max_rel_err(y, want) <= TOL


def test_split_range_covers_exactly():
    fn = kernel("ck_split_range", None, [ctypes.c_long, ctypes.c_long, c_int, c_int,
                                         ctypes.POINTER(ctypes.c_long), ctypes.POINTER(ctypes.c_long)])
    for n, align, nth in [(0, 1, 3), (10, 1, 3), (100, 16, 3), (7, 32, 2), (1000, 12, 7)]:
        lo, hi = ctypes.c_long(), ctypes.c_long()
        prev = 0
        for i in range(nth):
            fn(n, align, i, nth, ctypes.byref(lo), ctypes.byref(hi))
            assert lo.value == prev and hi.value >= lo.value
            assert lo.value % align == 0 or lo.value == n
            prev = hi.value
        assert prev == n


def test_cpu_features_consistent():
    from ckc import kernels as ck
    feats = ck.cpu_features()
    v = ck.available_variants()
    assert v[0] == "scalar"
    if "avx512" in v:
        assert "avx2" in v and {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= feats
    best = lib().ck_cpu_best_variant
    best.restype = c_int
    assert ["scalar", "avx2", "avx512"][best()] == [x for x in ck.VARIANTS if x in
                                                   [y for y, n in ck.VARIANT_NEEDS.items() if set(n) <= feats]][-1]


def test_sanitizer_subset():
    """A subset of the above against the ASan + UBSan build: every variant, odd
    shapes (edge tiles, masked tails, small-M path), 2 threads, the pool."""
    run_sanitized(__file__, "-k", "(forward or backward or gemv) and (5x33x65 or 17x100x257 or 2x129x1000"
                  " or 1x37x4096 or 257-1023 or 2x65x3) and 2] or pool_runs or split_range or pack_layout"
                  " or (same_bits and 100x513x255)")


def test_pool_nested_and_concurrent_callers():
    """A task that runs a job on its own pool runs it inline; two threads sharing a
    pool are serialised; every task still runs exactly once."""
    import threading
    from ckc.kernels import Pool
    run = _pool_run()
    p = Pool(2)
    inner_counts = np.zeros((8, 4), np.int64)
    outer_counts = np.zeros(8, np.int64)

    def inner(arg, ith, nth):
        inner_counts[arg or 0, ith] += 1

    inner_cb = TASK(inner)

    def outer(arg, ith, nth):
        outer_counts[ith] += 1
        run(p.handle, 4, inner_cb, ith)

    outer_cb = TASK(outer)
    run(p.handle, 8, outer_cb, None)
    assert list(outer_counts) == [1] * 8
    assert (inner_counts == 1).all()

    totals = [np.zeros(5, np.int64) for _ in range(2)]
    cbs = []

    def caller(k):
        def task(arg, ith, nth):
            totals[k][ith] += 1
        cb = TASK(task)
        cbs.append(cb)
        for _ in range(50):
            run(p.handle, 5, cb, None)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(list(t) == [50] * 5 for t in totals)
    p.close()
