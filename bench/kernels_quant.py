"""Quantized kernels (ckernels.h, section quant), one run, 1 and 2 threads:

    .venv/bin/python bench/kernels_quant.py [--variant avx512] [--threads 1,2] [--quick]

* Decode GEMV (M = 1): GB/s of quantized weight bytes read, against a streaming
  read (torch.sum over 512 MiB) measured in the same run. The weights are a set
  of matrices cycled through (about 200 MB per format), so they stream from memory
  as in a real decode step rather than sitting in cache.
* Prefill GEMM (M = 64, 512): GFLOP/s (2·M·N·K per call) of ck_qgemm, its
  interleaved (packed) form, ckc's fp32 GEMM (W prepacked) and torch fp32
  F.linear on the dequantized W; ratios qgemm / f32-ckc and qgemm / torch
  (the better of plain and packed); per-cpu-s: GFLOP per CPU-second of the
  packed (else plain) qgemm, steadier than wall clock when the machine is busy.
Times are the best of repetitions with contenders interleaved (bench/kernels.py's
best_times: this VM's speed drifts). Weights: random, quantized by gguf.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType as GT
from gguf import quants

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ckc import kernels as ck  # noqa: E402
import kernels as kbench  # noqa: E402
from kernels import aligned, best_times, ptr, stream_bandwidth  # noqa: E402

c_int, c_size_t, c_void_p = ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p
QARGS = [c_void_p] * 4 + [c_int] * 4 + [c_void_p, c_size_t, c_void_p, c_int]
FMTS = {"q8_0": GT.Q8_0, "q4_0": GT.Q4_0, "q4_1": GT.Q4_1, "q5_0": GT.Q5_0, "q5_1": GT.Q5_1,
        "f16": GT.F16, "bf16": GT.BF16}
PACKABLE = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")   # the R8 layout


class Q:
    def __init__(self, variant):
        self.lib = L = ck.library()
        self.v = variant
        L.ck_qgemm_workspace_size.argtypes = [c_int] * 5
        L.ck_qgemm_workspace_size.restype = c_size_t
        L.ck_qpacked_size.argtypes = [c_int] * 3
        L.ck_qpacked_size.restype = c_size_t
        L.ck_gemm_workspace_size.argtypes = [c_int] * 4
        L.ck_gemm_workspace_size.restype = c_size_t
        L.ck_gemm_packed_size.argtypes = [c_int, c_int]
        L.ck_gemm_packed_size.restype = c_size_t
        L.ck_gemm_pack_f32.argtypes = [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int]
        L.ck_cpu_disable.argtypes = [c_int]
        self.pools = {}

    def fn(self, name):
        f = getattr(self.lib, name)
        f.argtypes, f.restype = QARGS, c_int
        return f

    def pool(self, nth):
        if nth <= 1:
            return None
        if nth not in self.pools:
            self.pools[nth] = ck.Pool(nth, self.lib)
        return self.pools[nth].handle

    def ws(self, fmt, M, N, K, nth):
        size = self.lib.ck_qgemm_workspace_size(int(FMTS[fmt]), M, N, K, nth)
        return aligned(max(size, 64)), size


def quantize(fmt, W):
    return np.ascontiguousarray(quants.quantize(W, FMTS[fmt]))


def gemv_rows(q, nth, fmts, rng, total_mb):
    pool = q.pool(nth)
    stream = stream_bandwidth()
    print(f"decode GEMV, {q.v}: quantized bytes read / time; stream read now {stream:.1f} GB/s")
    N, K = 2048, 2048
    base = (rng.standard_normal((N, K)) * 0.05).astype(np.float32)
    for fmt in fmts:
        one = quantize(fmt, base)
        count = max(2, int(total_mb * 1e6 / one.nbytes))
        mats = [one.copy() for _ in range(count)]
        packed = []
        if fmt in PACKABLE:
            pack = getattr(q.lib, f"ck_qpack_{fmt}")
            pack.argtypes = [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int]
            for m in mats:
                p = aligned(q.lib.ck_qpacked_size(int(FMTS[fmt]), N, K))
                pack(ptr(m), N, K, ptr(p), None, 1)
                packed.append(p)
        x = rng.standard_normal((1, K)).astype(np.float32)
        y = np.empty((1, N), np.float32)
        ws, wsz = q.ws(fmt, 1, N, K, nth)
        f = q.fn(f"ck_qgemm_{fmt}_{q.v}")
        fp = q.fn(f"ck_qgemm_packed_{fmt}_{q.v}") if packed else None

        def sweep(f, ms):
            for m in ms:
                f(ptr(x), ptr(m), None, ptr(y), 1, N, K, 0, ptr(ws), wsz, pool, nth)
        fns = ([lambda: sweep(fp, packed)] if packed else []) + [lambda: sweep(f, mats)]
        ts = best_times(*fns, min_time=0.5, max_reps=20)
        per_cpu = one.nbytes * count / kbench.CPU_TIMES[-1] / 1e9 / nth
        nbytes = one.nbytes * count
        t_plain, t_packed = ts[-1], (ts[0] if packed else None)
        line = f"  {fmt:5s} {N}x{K} x{count:3d}: {nbytes / t_plain / 1e9:5.1f} GB/s ({100 * nbytes / t_plain / 1e9 / stream:3.0f}% of stream)"
        if packed:
            line += f"   packed {nbytes / t_packed / 1e9:5.1f} GB/s ({100 * nbytes / t_packed / 1e9 / stream:3.0f}%)"
        print(line + f"   {per_cpu:5.1f} GB per cpu-s per thread ({'packed' if packed else 'plain'})")
        del mats, packed


def gemm_rows(q, nth, fmts, rng, Ms):
    pool = q.pool(nth)
    L = q.lib
    N, K = 2048, 2048
    W = (rng.standard_normal((N, K)) * 0.05).astype(np.float32)
    Wp32 = aligned(L.ck_gemm_packed_size(N, K)).view(np.float32)
    L.ck_gemm_pack_f32(ptr(W), N, K, ptr(Wp32), None, 1)
    g32 = getattr(L, f"ck_gemm_packed_f32_{q.v}")
    g32.argtypes, g32.restype = QARGS, c_int
    ws32 = aligned(L.ck_gemm_workspace_size(0, 0, 0, nth))
    print(f"prefill GEMM, {q.v}: GFLOP/s, N = K = {N}; ratios: qgemm (best of plain/packed) / fp32")
    print(f"  {'fmt':5s} {'M':>4s} {'qgemm':>7s} {'packed':>7s} {'f32ckc':>7s} {'torch':>7s} {'q/f32ckc':>8s} {'q/torch':>8s} {'per-cpu-s':>9s}")
    for fmt in fmts:
        Wq = quantize(fmt, W)
        tW = torch.from_numpy(quants.dequantize(Wq, FMTS[fmt]).astype(np.float32).reshape(N, K))
        Wpk = None
        if fmt in PACKABLE:
            Wpk = aligned(L.ck_qpacked_size(int(FMTS[fmt]), N, K))
            pk = getattr(L, f"ck_qpack_{fmt}")
            pk.argtypes = [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int]
            pk(ptr(Wq), N, K, ptr(Wpk), None, 1)
        for M in Ms:
            x = rng.standard_normal((M, K)).astype(np.float32)
            tx = torch.from_numpy(x)
            y = np.empty((M, N), np.float32)
            ws, wsz = q.ws(fmt, M, N, K, nth)
            f = q.fn(f"ck_qgemm_{fmt}_{q.v}")
            fns = [lambda: f(ptr(x), ptr(Wq), None, ptr(y), M, N, K, 0, ptr(ws), wsz, pool, nth),
                   lambda: g32(ptr(x), ptr(Wp32), None, ptr(y), M, N, K, 0, ptr(ws32), ws32.nbytes, pool, nth),
                   lambda: F.linear(tx, tW)]
            if Wpk is not None:   # packed first: its CPU time is the 'per cpu-s' column
                fp = q.fn(f"ck_qgemm_packed_{fmt}_{q.v}")
                fns.insert(0, lambda: fp(ptr(x), ptr(Wpk), None, ptr(y), M, N, K, 0, ptr(ws), wsz, pool, nth))
            ts = best_times(*fns, min_time=0.4, max_reps=30)
            flops = 2.0 * M * N * K
            gf = [flops / t / 1e9 for t in ts]
            if Wpk is None:
                gf.insert(0, None)
            pk = f"{gf[0]:7.1f}" if gf[0] else f"{'-':>7s}"
            best_q = max(gf[1], gf[0] or 0)
            per_cpu = flops / kbench.CPU_TIMES[-1] / 1e9
            print(f"  {fmt:5s} {M:4d} {gf[1]:7.1f} {pk} {gf[2]:7.1f} {gf[3]:7.1f} {best_q / gf[2]:8.2f} "
                  f"{best_q / gf[3]:8.2f} {per_cpu:8.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default=None)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--fmts", default=",".join(FMTS))
    ap.add_argument("--no-vnni", action="store_true", help="mask AVX-512 VNNI off (the AVX-512BW path)")
    ap.add_argument("--quick", action="store_true", help="fewer formats and shapes, ~150 MB of weights")
    args = ap.parse_args(argv)
    q = Q(args.variant or ck.best_variant())
    if args.no_vnni:
        q.lib.ck_cpu_disable(1 << 8)
    fmts = args.fmts.split(",")
    Ms = [64, 512]
    total = 200
    if args.quick:
        fmts, Ms, total = [f for f in fmts if f in ("q8_0", "q4_0", "q4_1")], [64], 150
    vnni = bool(ck.cpu_feature_bits() & (1 << 8))
    print(f"ckc quantized kernels ({q.v}{', VNNI' if vnni and q.v == 'avx512' else ''}) vs torch "
          f"{torch.__version__}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rng = np.random.default_rng(0)
    for nth in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(nth)
        print(f"\n== {nth} thread{'s' if nth > 1 else ''} ==")
        gemv_rows(q, nth, fmts, rng, total)
        gemm_rows(q, nth, fmts, rng, Ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
