"""K-quant kernels (Q2_K..Q6_K), one run: decode GEMV bandwidth against a stream
read, prefill GEMM against ckc's f32 GEMM, at 1 and 2 threads.

    .venv/bin/python bench/kernels_quant_k.py [--variant avx512] [--threads 1,2] [--quick]

GEMV (M = 1): a sweep over L distinct weight matrices ("layers", together
larger than the stream buffer so every call reads memory, not cache), timed
per call; GB/s = weight bytes / time, shown as % of a plain streaming read
(numpy sum over 512 MiB, split over the same number of threads) measured in
the same run. GEMM (prefill, M tokens): GFLOP/s of ck_qgemm_<fmt> and of
ck_gemm_packed_f32 (prepacked fp32 weights, the inference path) on the same
shape, interleaved best-of timing, ratio > 1: the quantized kernel is faster.

llama.cpp's peer: bench/ggml_qmatmul.c, linked with the cached llama.cpp
build (ckc.llamacpp.library_dir(), built on first use), times ggml's CPU
mul_mat on the same shapes, formats and thread counts (its own random blocks,
its own process; best of several runs each side). Skipped with --no-ggml.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ckc import kernels as ck  # noqa: E402

c_int, c_size_t, c_void_p = ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p
FORMATS = {"q2_k": (10, 84, (80, 82)), "q3_k": (11, 110, (108,)), "q4_k": (12, 144, (0, 2)),
           "q5_k": (13, 176, (0, 2)), "q6_k": (14, 210, (208,))}


def ptr(a):
    return None if a is None else c_void_p(a.ctypes.data)


def aligned(nbytes):
    raw = np.empty(nbytes + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + nbytes]


def random_rows(fmt, N, K, rng):
    _, bb, halves = FORMATS[fmt]
    blocks = np.frombuffer(bytearray(rng.bytes(N * (K // 256) * bb)), np.uint8).reshape(-1, bb)
    for off in halves:
        blocks[:, off:off + 2] = np.full(blocks.shape[0], 0.01, np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(N, -1)


def best(*fns, min_time=0.5, max_reps=2000):
    """Fastest wall time of each function, calls interleaved in rotating order."""
    for f in fns:
        f()
    out = [float("inf")] * len(fns)
    n, t_start = 0, time.perf_counter()
    while n < 3 or (time.perf_counter() - t_start < min_time and n < max_reps):
        for i in [(n + j) % len(fns) for j in range(len(fns))]:
            t0 = time.perf_counter()
            fns[i]()
            out[i] = min(out[i], time.perf_counter() - t0)
        n += 1
    return out


STREAM_BYTES = 1 << 29


def stream_read(nth, buf):
    """GB/s of a streaming read over buf (512 MiB) with nth threads (numpy releases the GIL)."""
    parts = np.array_split(buf, nth)

    def run():
        if nth == 1:
            parts[0].sum()
            return
        ts = [threading.Thread(target=p.sum) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return buf.nbytes / min(best(run, min_time=0.3, max_reps=6)) / 1e9


def ggml_peer():
    """Path of the ggml_qmatmul executable (built once into .cache/build), or None."""
    from ckc import llamacpp
    from ckc.build import cache_dir, cc
    try:
        lib = llamacpp.library_dir()
    except Exception as e:  # noqa: BLE001 - the peer is optional
        print(f"(llama.cpp peer unavailable: {e})")
        return None
    src = Path(__file__).with_name("ggml_qmatmul.c")
    key = hashlib.sha256(src.read_bytes() + lib.name.encode() + cc().encode()).hexdigest()[:16]
    exe = cache_dir("build", f"ggml-qmatmul-{key}") / "ggml_qmatmul"
    if not exe.exists():
        libs = [str(lib / "lib" / n) for n in ("libllama.a", "libggml.a", "libggml-cpu.a", "libggml-base.a")]
        tmp = exe.with_name(f".tmp-{os.getpid()}")
        subprocess.run([cc(), "-std=c11", "-O2", "-o", str(tmp), str(src), f"-I{lib / 'include'}", *libs,
                        *(lib / "link.txt").read_text().split()], check=True)
        os.replace(tmp, exe)
    return exe


def ggml_time(exe, code, M, N, K, nth, layers, reps):
    out = subprocess.run([str(exe), str(code), str(M), str(N), str(K), str(nth), str(layers), str(reps)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default=None)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="fewer shapes (Q4_K and Q6_K only)")
    ap.add_argument("--no-ggml", action="store_true", help="skip the llama.cpp (ggml) peer")
    args = ap.parse_args(argv)
    lib = ck.library()
    v = args.variant or ck.best_variant()
    feats = ck.cpu_features()
    print(f"variant {v}" + (" (AVX-512 VNNI)" if v == "avx512" and "avx512vnni" in feats else ""))
    lib.ck_qkgemm_workspace_size.argtypes = [c_int] * 5
    lib.ck_qkgemm_workspace_size.restype = c_size_t
    lib.ck_gemm_workspace_size.argtypes = [c_int] * 4
    lib.ck_gemm_workspace_size.restype = c_size_t
    lib.ck_gemm_packed_size.argtypes = [c_int, c_int]
    lib.ck_gemm_packed_size.restype = c_size_t
    lib.ck_gemm_pack_f32.argtypes = [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int]
    gargs = [c_void_p] * 4 + [c_int] * 4 + [c_void_p, c_size_t, c_void_p, c_int]
    f32 = getattr(lib, f"ck_gemm_packed_f32_{v}")
    f32.argtypes, f32.restype = gargs, c_int
    fmts = ["q4_k", "q6_k"] if args.quick else list(FORMATS)
    rng = np.random.default_rng(0)
    pools = {}

    def pool(n):
        if n <= 1:
            return None
        if n not in pools:
            pools[n] = ck.Pool(n, lib)
        return pools[n].handle

    # decode: 4096 x 4096 per layer, enough layers for > 1.2 GiB of weights
    Nd, Kd = 4096, 4096
    xd = rng.standard_normal((1, Kd), dtype=np.float32)
    yd = np.empty((1, Nd), np.float32)
    # prefill: M tokens through a 2048 x 2048 layer
    Np, Kp, Mp = 2048, 2048, 128
    xp = rng.standard_normal((Mp, Kp), dtype=np.float32)
    yp = np.empty((Mp, Np), np.float32)
    Wf = (rng.standard_normal((Np, Kp), dtype=np.float32) * 0.02)
    Wpk = aligned(lib.ck_gemm_packed_size(Np, Kp)).view(np.float32)
    lib.ck_gemm_pack_f32(ptr(Wf), Np, Kp, ptr(Wpk), None, 1)
    peer = None if args.no_ggml else ggml_peer()
    threads = [int(t) for t in args.threads.split(",")]
    buf = np.ones(STREAM_BYTES // 4, np.float32)
    sbw = {nth: stream_read(nth, buf) for nth in threads}
    del buf
    print("stream read: " + ", ".join(f"{sbw[n]:5.1f} GB/s at {n} thread(s)" for n in threads))
    for fmt in fmts:
        code, bb, _ = FORMATS[fmt]
        fn = getattr(lib, f"ck_qgemm_{fmt}_{v}")
        fn.argtypes, fn.restype = gargs, c_int
        row_bytes = Kd // 256 * bb
        L = max(2, int(1.25 * STREAM_BYTES) // (Nd * row_bytes) + 1)
        layers = [random_rows(fmt, Nd, Kd, rng) for _ in range(L)]
        Wq = random_rows(fmt, Np, Kp, rng)
        for nth in threads:
            wsz = lib.ck_qkgemm_workspace_size(code, Mp, Np, Kp, nth)
            ws = aligned(wsz)
            wsz_f = lib.ck_gemm_workspace_size(Mp, Np, Kp, nth)
            ws_f = aligned(wsz_f)
            p = pool(nth)

            def sweep():
                for W in layers:
                    fn(ptr(xd), ptr(W), None, ptr(yd), 1, Nd, Kd, 0, ptr(ws), wsz, p, nth)
            # rounds alternate ckc and the llama.cpp peer (this machine's speed drifts); best of each
            t = tq = tf = tg = tgm = float("inf")
            for _ in range(1 if peer is None else 2):
                t = min(t, min(best(sweep, min_time=0.5, max_reps=5)) / L)
                a, c = best(lambda: fn(ptr(xp), ptr(Wq), None, ptr(yp), Mp, Np, Kp, 0, ptr(ws), wsz, p, nth),
                            lambda: f32(ptr(xp), ptr(Wpk), None, ptr(yp), Mp, Np, Kp, 0, ptr(ws_f), wsz_f, p, nth))
                tq, tf = min(tq, a), min(tf, c)
                if peer is not None:
                    tg = min(tg, ggml_time(peer, code, 1, Nd, Kd, nth, L, 2))
                    tgm = min(tgm, ggml_time(peer, code, Mp, Np, Kp, nth, 1, 30))
            gbs = Nd * row_bytes / t / 1e9
            fl = 2.0 * Mp * Np * Kp
            print(f"{fmt} {nth}T GEMV {Nd}x{Kd} ({Nd * row_bytes / 2**20:4.1f} MiB/layer, {L} layers): "
                  f"{t * 1e6:7.1f} us  {gbs:5.1f} GB/s = {100 * gbs / sbw[nth]:3.0f}% of the stream read"
                  + (f";  llama.cpp {tg * 1e6:7.1f} us -> ckc {tg / t:4.2f}x" if peer else ""))
            print(f"{fmt} {nth}T GEMM M={Mp} {Np}x{Kp}: {fl / tq / 1e9:6.1f} GFLOP/s;  f32 packed "
                  f"{fl / tf / 1e9:6.1f} -> {tf / tq:4.2f}x"
                  + (f";  llama.cpp {fl / tgm / 1e9:6.1f} -> ckc {tgm / tq:4.2f}x" if peer else ""))
        del layers
    for pl in pools.values():
        pl.close()


if __name__ == "__main__":
    main()
