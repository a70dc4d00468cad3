"""The non-GEMM kernels against the AddressSanitizer + UBSan build of
libckernels (``ckc.kernels.library(sanitize=True)``), every variant the CPU
runs, odd shapes that exercise the masked vector tails and the thread split.

The sanitized library can only be loaded by a process started with the ASan
runtime preloaded, so the checks run in a subprocess (the script below):
each kernel runs on exactly-sized numpy buffers (ASan puts red zones around
them), with 1 and 2 threads, and its results are compared with the scalar
variant of the same build (max error <= 1e-4 relative to the scalar result's
largest magnitude; the full-precision parity against torch is in the other
test_kernels_*.py files). The test passes only if the subprocess exits 0,
prints OK and ASan/UBSan report nothing."""

import os
import subprocess
import sys
import textwrap

import pytest

from ckc import kernels as ck

SCRIPT = textwrap.dedent(r'''
    import ctypes, math, sys
    import numpy as np
    from ckc import kernels as ck

    lib = ck.library(sanitize=True)
    P, I, F, D, L = ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_double, ctypes.c_int64
    pools = {1: None, 2: ctypes.c_void_p(lib.ck_pool_create(2))}

    def fn(name, v, argtypes, restype=None):
        f = getattr(lib, f"{name}_{v}")
        f.argtypes, f.restype = argtypes, restype
        return f

    def p(a):
        return None if a is None else ctypes.c_void_p(a.ctypes.data)

    rng = np.random.default_rng(0)
    def r(*s):
        return np.ascontiguousarray(rng.standard_normal(s).astype(np.float32))

    def run_all(v, nth):
        global rng
        rng = np.random.default_rng(0)  # the same inputs for every variant
        pool = pools[nth]
        out = {}
        n = 77
        x, y, g = r(n), r(n), r(n)
        o = np.empty(n, np.float32)
        fn("ck_add_f32", v, [P, P, P, L, P, I])(p(x), p(y), p(o), n, pool, nth); out["add"] = o.copy()
        fn("ck_mul_f32", v, [P, P, P, L, P, I])(p(x), p(y), p(o), n, pool, nth); out["mul"] = o.copy()
        fn("ck_scale_f32", v, [P, P, L, F, P, I])(p(x), p(o), n, 0.5, pool, nth); out["scale"] = o.copy()
        z = y.copy(); fn("ck_axpy_f32", v, [P, P, L, F, P, I])(p(z), p(x), n, 2.0, pool, nth); out["axpy"] = z
        for name, extra in (("silu", []), ("gelu", [0]), ("gelu", [1]), ("softcap", [30.0])):
            et = [] if not extra else [F if name == "softcap" else I]
            fn(f"ck_{name}_f32", v, [P, P, L, *et, P, I])(p(x), p(o), n, *extra, pool, nth)
            out[f"{name}{extra}"] = o.copy()
            fn(f"ck_{name}_grad_f32", v, [P, P, P, L, *et, P, I])(p(x), p(g), p(o), n, *extra, pool, nth)
            out[f"{name}{extra}_grad"] = o.copy()
        T, C = 5, 45
        gate, up, dy = r(T, C), r(T, C), r(T, C)
        yy, dg, du = (np.empty((T, C), np.float32) for _ in range(3))
        fn("ck_swiglu_f32", v, [P, P, P, I, I, I, I, P, I])(p(gate), p(up), p(yy), T, C, C, C, pool, nth); out["swiglu"] = yy.copy()
        fn("ck_swiglu_grad_f32", v, [P, P, P, P, P, I, I, I, I, P, I])(p(gate), p(up), p(dy), p(dg), p(du), T, C, C, C, pool, nth)
        out["swiglu_dg"], out["swiglu_du"] = dg.copy(), du.copy()
        fn("ck_geglu_f32", v, [P, P, P, I, I, I, I, I, P, I])(p(gate), p(up), p(yy), T, C, C, C, 1, pool, nth); out["geglu"] = yy.copy()
        fn("ck_geglu_grad_f32", v, [P, P, P, P, P, I, I, I, I, I, P, I])(p(gate), p(up), p(dy), p(dg), p(du), T, C, C, C, 0, pool, nth)
        out["geglu_dg"], out["geglu_du"] = dg.copy(), du.copy()
        # norms
        xs, w, b = r(T, C), r(C), r(C)
        rstd, mean = np.empty(T, np.float32), np.empty(T, np.float32)
        fn("ck_rmsnorm_f32", v, [P, P, P, P, I, I, F, F, P, I])(p(xs), p(w), p(yy), p(rstd), T, C, 1e-6, 1.0, pool, nth); out["rms"] = yy.copy()
        dx, dw = np.empty((T, C), np.float32), np.zeros(C, np.float32)
        fn("ck_rmsnorm_grad_f32", v, [P, P, P, P, P, P, I, I, F, P, I])(p(dy), p(xs), p(w), p(rstd), p(dx), p(dw), T, C, 1.0, pool, nth)
        out["rms_dx"], out["rms_dw"] = dx.copy(), dw.copy()
        fn("ck_layernorm_f32", v, [P, P, P, P, P, P, I, I, F, F, P, I])(p(xs), p(w), p(b), p(yy), p(mean), p(rstd), T, C, 1e-5, 0.0, pool, nth); out["ln"] = yy.copy()
        dw, db = np.zeros(C, np.float32), np.zeros(C, np.float32)
        fn("ck_layernorm_grad_f32", v, [P, P, P, P, P, P, P, P, I, I, F, P, I])(p(dy), p(xs), p(w), p(mean), p(rstd), p(dx), p(dw), p(db), T, C, 0.0, pool, nth)
        out["ln_dx"], out["ln_dw"], out["ln_db"] = dx.copy(), dw.copy(), db.copy()
        fn("ck_softmax_f32", v, [P, P, I, I, P, I])(p(xs), p(yy), T, C, pool, nth); out["softmax"] = yy.copy()
        fn("ck_softmax_grad_f32", v, [P, P, P, I, I, P, I])(p(yy), p(dy), p(dx), T, C, pool, nth); out["softmax_grad"] = dx.copy()
        # rope: 3 heads of 22 dims, rotary 14 (odd pair count), both styles
        Tr, heads, hd = 4, 3, 22
        xr = r(Tr, heads * hd); yr = np.empty_like(xr)
        for style in (0, 1):
            assert fn("ck_rope_f32", v, [P, P, P, P, I, I, I, I, I, F, I, P, I], I)(p(xr), p(yr), None, None, Tr, heads, hd, 14, 3, 10000.0, style, pool, nth) == 0
            out[f"rope{style}"] = yr.copy()
            assert fn("ck_rope_grad_f32", v, [P, P, P, P, I, I, I, I, I, F, I, P, I], I)(p(xr), p(yr), None, None, Tr, heads, hd, 14, 3, 10000.0, style, pool, nth) == 0
            out[f"rope{style}_grad"] = yr.copy()
        # attention: prefill continuing a cache, window, softcap, head_dim with a tail; decode; backward
        Tq, npast, H, KV, Dh = 19, 6, 4, 2, 20
        S = npast + Tq
        q, k, vv, do = r(Tq, H * Dh), r(S, KV * Dh), r(S, KV * Dh), r(Tq, H * Dh)
        ao, lse = np.empty((Tq, H * Dh), np.float32), np.empty((Tq, H), np.float32)
        AT = [P, P, P, P, P, I, I, I, I, I, I, F, F, P, I]
        assert fn("ck_attention_f32", v, AT, I)(p(q), p(k), p(vv), p(ao), p(lse), Tq, npast, H, KV, Dh, 9, 0.2, 20.0, pool, nth) == 0
        out["attn"], out["attn_lse"] = ao.copy(), lse.copy()
        dq, dk, dvv = np.empty_like(q), np.empty_like(k), np.empty_like(vv)
        assert fn("ck_attention_grad_f32", v, [P] * 9 + [I] * 6 + [F, F, P, I], I)(
            p(q), p(k), p(vv), p(ao), p(do), p(lse), p(dq), p(dk), p(dvv), Tq, npast, H, KV, Dh, 9, 0.2, 20.0, pool, nth) == 0
        out["attn_dq"], out["attn_dk"], out["attn_dv"] = dq, dk, dvv
        q1, o1 = r(1, H * Dh), np.empty((1, H * Dh), np.float32)
        assert fn("ck_attention_decode_f32", v, [P, P, P, P, I, I, I, I, I, F, F, P, I], I)(
            p(q1), p(k), p(vv), p(o1), S - 1, H, KV, Dh, 0, 0.2, 0.0, pool, nth) == 0
        out["decode"] = o1
        # embedding
        vocab, Ce = 11, 37
        table, ids = r(vocab, Ce), np.array([3, 0, 10, 3, 7], np.int32)
        eo = np.empty((5, Ce), np.float32)
        assert fn("ck_embedding_f32", v, [P, P, P, I, I, I, F, P, I], I)(p(ids), p(table), p(eo), 5, vocab, Ce, 2.0, pool, nth) == 0
        out["emb"] = eo.copy()
        dt = np.zeros((vocab, Ce), np.float32)
        fn("ck_embedding_grad_f32", v, [P, P, P, I, I, I, F, P, I])(p(ids), p(eo), p(dt), 5, vocab, Ce, 2.0, pool, nth)
        out["emb_grad"] = dt
        # cross-entropy
        lg, tg = r(6, 53), np.array([1, -100, 52, 0, 7, 3], np.int32)
        dl, ls = np.empty((6, 53), np.float32), np.empty(6, np.float32)
        loss = fn("ck_cross_entropy_f32", v, [P, P, P, P, I, I, I, F, P, I], F)(p(lg), p(tg), p(dl), p(ls), 6, 53, -100, 1.0, pool, nth)
        out["ce"], out["ce_d"], out["ce_rows"] = np.array([loss], np.float32), dl, ls
        # optimizer
        m, s2, pr = np.zeros(n, np.float32), np.zeros(n, np.float32), x.copy()
        fn("ck_adamw_f32", v, [P, P, P, P, L, F, F, F, F, F, I, F, P, I])(p(pr), p(g), p(m), p(s2), n, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, 1.0, pool, nth)
        out["adamw"], out["adamw_m"], out["adamw_v"] = pr, m, s2
        ss = fn("ck_sumsq_f32", v, [P, L, P, I], D)(p(x), n, pool, nth)
        nrm = F()
        c = fn("ck_clip_coef_f32", v, [D, F, ctypes.POINTER(F)], F)(ss, 1.0, ctypes.byref(nrm))
        out["clip"] = np.array([ss, c, nrm.value], np.float32)
        # the compiled @optimizer_step / @zero_grads kernels (exactly-sized coef / norm buffers)
        nb, cb = np.zeros(1, np.float32), np.zeros(1, np.float32)
        fn("ck_clip_norm_f32", v, [P, L, F, P, P, P, I])(p(x), n, 0.5, p(nb), p(cb), pool, nth)
        m2, s3, pr2 = np.zeros(n, np.float32), np.zeros(n, np.float32), x.copy()
        fn("ck_adamw_coef_f32", v, [P, P, P, P, P, L, F, F, F, F, F, I, P, I])(
            p(pr2), p(g), p(m2), p(s3), p(cb), n, 1e-3, 0.9, 0.95, 1e-8, 0.1, 2, pool, nth)
        zg = g.copy()
        fn("ck_zero_f32", v, [P, L, P, I])(p(zg), n, pool, nth)
        assert not zg.any()
        out["clip_norm"], out["adamw_coef"], out["adamw_coef_v"] = np.concatenate([nb, cb]), pr2, s3
        return out

    variants = sys.argv[1].split(",")
    ref = run_all("scalar", 1)
    for v in variants:
        for nth in (1, 2):
            got = run_all(v, nth)
            for key, want in ref.items():
                scale = max(float(np.max(np.abs(want))), 1e-30)
                err = float(np.max(np.abs(got[key].astype(np.float64) - want))) / scale
                if not err <= 1e-4:
                    print(f"MISMATCH {v} nth={nth} {key}: {err:.3g}")
                    sys.exit(1)
    lib.ck_pool_destroy(pools[2])
    print("OK")
''')


def test_other_kernels_under_asan_ubsan():
    runtime = ck.asan_runtime()
    if runtime is None:
        pytest.skip("the C compiler has no AddressSanitizer runtime (libasan.so)")
    ck.build_dir(sanitize=True)  # build here, so a build error shows as such
    env = dict(os.environ, LD_PRELOAD=runtime,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=23",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    variants = ",".join(ck.available_variants())
    proc = subprocess.run([sys.executable, "-c", SCRIPT, variants], capture_output=True, text=True, env=env,
                          timeout=600)
    report = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, report
    assert "OK" in proc.stdout, report
    assert "AddressSanitizer" not in proc.stderr and "runtime error" not in proc.stderr, report
