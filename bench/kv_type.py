"""KV cache types (--kv-type f32 | f16 | q8_0): decode speed at long context, one run.

    .venv/bin/python bench/kv_type.py [--threads 1,2] [--ctx 1024,4096] [--no-model | --no-kernel]

1. Kernel: ck_attention_decode over an n_past-row cache (SmolLM2's 9/3 heads
   and a Llama-1B-shaped 32/8, head_dim 64), f16 and q8_0 vs f32 in the same
   run, interleaved (best of several; the machine is shared): the decode
   attention reads the whole cache, so its time follows the cache bytes
   (f16: 1/2, q8_0: 17/32 of f32).
2. Model: SmolLM2-135M (its GGUF, weights as stored: Q4_1/Q8_0, about 100 MB),
   compiled three times (context 2048); prompt of --prompt tokens, then
   decode steps timed at that context, the three interleaved. Decode reads the
   weights plus the KV cache (30 layers x 2 x n x 192 x 4 bytes: 47 MB at
   1024 in f32), so the model-level gain is the KV share of the bytes. Also checks
   greedy top-1 of f16 / q8_0 against f32 over 32 steps (file weights, and
   weights=f32, which isolates the KV type from the 8-bit activation rounding).
Ratios > 1: the KV type is faster than f32.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernels import best_times  # noqa: E402

from ckc import kernels as ck  # noqa: E402

c_int, c_float, c_void_p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
DEC = [c_void_p] * 4 + [c_int] * 5 + [c_float, c_float, c_void_p, c_int]
WRITE = [c_void_p, c_void_p, c_int, c_int, c_void_p, c_int]


def fn(lib, name, argtypes):
    f = getattr(lib, name)
    f.argtypes, f.restype = argtypes, c_int
    return f


def kernel_bench(variant, threads, ctxs):
    lib = ck.library()
    pools = {n: ck.Pool(n, lib) for n in threads if n > 1}
    print(f"decode attention, variant {variant}: time per call (µs, per layer cache), ratio f32 / type")
    print(f"{'shape':>16} {'n_past':>7} {'thr':>4} {'f32':>9} {'f16':>9} {'q8_0':>9} {'f16 x':>7} {'q8_0 x':>7}")
    rng = np.random.default_rng(0)
    names = {"f32": "ck_attention_decode_f32", "f16": "ck_attention_decode_kvf16",
             "q8_0": "ck_attention_decode_kvq8_0"}
    for H, KV, D in ((9, 3, 64), (32, 8, 64)):
        for n in ctxs:
            # one cache per layer, about 192 MB of f32 caches in all, visited in turn as a
            # decode step does: the caches come from memory, not from the L2 of the last call
            layers = max(2, int(192e6 // (2 * (n + 1) * KV * D * 4)))
            k = rng.standard_normal((n + 1, KV * D), dtype=np.float32)
            v = rng.standard_normal((n + 1, KV * D), dtype=np.float32)
            q = rng.standard_normal((1, H * D), dtype=np.float32)
            out = np.zeros((1, H * D), np.float32)
            caches = {"f32": [(k + i, v - i) for i in range(layers)]}
            for fmt, per_row in (("f16", KV * D * 2), ("q8_0", KV * D // 32 * 34)):
                w = fn(lib, f"ck_kv_write_{fmt}_{variant}", WRITE)
                caches[fmt] = []
                for kk, vv in caches["f32"]:
                    kc, vc = np.zeros((n + 1, per_row), np.uint8), np.zeros((n + 1, per_row), np.uint8)
                    w(kk.ctypes.data, kc.ctypes.data, n + 1, KV * D, None, 1)
                    w(vv.ctypes.data, vc.ctypes.data, n + 1, KV * D, None, 1)
                    caches[fmt].append((kc, vc))
            for nth in threads:
                pool = pools[nth].handle if nth > 1 else None

                def step(f, cs, nth=nth, pool=pool):
                    for kc, vc in cs:
                        f(q.ctypes.data, kc.ctypes.data, vc.ctypes.data, out.ctypes.data, n, H, KV, D, 0, 0.125, 0.0,
                          pool, nth)

                calls = [lambda fmt=fmt: step(fn(lib, f"{names[fmt]}_{variant}", DEC), caches[fmt])
                         for fmt in ("f32", "f16", "q8_0")]
                t = [x / layers for x in best_times(*calls, min_time=1.0)]
                print(f"{f'{H}/{KV}x{D}':>16} {n:>7} {nth:>4} {t[0] * 1e6:9.1f} {t[1] * 1e6:9.1f} {t[2] * 1e6:9.1f} "
                      f"{t[0] / t[1]:7.2f} {t[0] / t[2]:7.2f}")
            del caches


def model_bench(threads, prompt, steps):
    from ckc import assets
    from ckc.commands.run import compiled_dir, load_tokenizer
    from ckc.pipeline import CompileOptions
    from ckc.session import Session

    gguf = assets.smollm2_gguf()
    kvs = ("f32", "f16", "q8_0")
    dirs = {}
    for kv in kvs:
        t0 = time.perf_counter()
        dirs[kv] = compiled_dir(gguf, CompileOptions(kv_type=kv, context=2048))
        print(f"SmolLM2 --kv-type {kv}: {time.perf_counter() - t0:.0f} s to compile (or find in the cache)", flush=True)
    toks = np.random.default_rng(1).integers(0, 49152, size=prompt).astype(np.int32)
    print(f"SmolLM2 decode at context {prompt}: best ms per token over {steps} interleaved steps (ratio f32 / type)")
    for nth in threads:
        sessions = {kv: Session(dirs[kv], threads=nth) for kv in kvs}
        try:
            tok = {}
            for kv, s in sessions.items():
                for i in range(0, prompt, 64):
                    logits = s.prefill(toks[i:i + 64])
                tok[kv] = int(logits.argmax())
            best = {kv: float("inf") for kv in kvs}
            for step in range(steps):  # interleaved, rotating order: the machine is shared
                for kv in kvs[step % 3:] + kvs[:step % 3]:
                    t0 = time.perf_counter()
                    logits = sessions[kv].decode(tok[kv])
                    best[kv] = min(best[kv], time.perf_counter() - t0)
                    tok[kv] = int(logits.argmax())
        finally:
            for s in sessions.values():
                s.close()
        print(f"  {nth} thread(s): " + ", ".join(
            f"{kv} {best[kv] * 1e3:.1f} ms ({best['f32'] / best[kv]:.2f}x)" for kv in kvs))
    # greedy top-1 over 32 steps from a text prompt (chat-less completion), with the file's
    # own weights and with weights=f32: with quantized weights the GEMMs quantize their
    # activations to 8 bits, which turns any last-bit change (even 2 threads instead of 1)
    # into logit changes of order 1, so weights=f32 isolates what the KV type does
    text = load_tokenizer(gguf).encode("The history of the Roman Empire begins with")
    for weights in ("keep", "f32"):
        greedy = {}
        for kv in kvs:
            d = compiled_dir(gguf, CompileOptions(kv_type=kv, context=2048, weights=weights))
            with Session(d, threads=threads[0]) as s:
                tok, seq = int(s.prefill(np.array(text, np.int32)).argmax()), []
                for _ in range(32):
                    seq.append(tok)
                    tok = int(s.decode(tok).argmax())
                greedy[kv] = seq
        for kv in ("f16", "q8_0"):
            same = sum(a == b for a, b in zip(greedy[kv], greedy["f32"]))
            first = next((i for i, (a, b) in enumerate(zip(greedy[kv], greedy["f32"])) if a != b), None)
            print(f"  weights={weights}: greedy top-1 {kv} vs f32 over 32 steps: {same}/32 equal" +
                  ("" if first is None else f" (first difference at step {first})"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ctx", default="1024,4096", help="cache rows for the kernel bench")
    ap.add_argument("--variant", default=None, help="kernel variant (default: the best this CPU runs)")
    ap.add_argument("--prompt", type=int, default=1024, help="model bench: context when decode is timed")
    ap.add_argument("--steps", type=int, default=24, help="model bench: decode steps timed (best kept)")
    ap.add_argument("--no-model", action="store_true", help="kernel bench only")
    ap.add_argument("--no-kernel", action="store_true", help="model bench only")
    a = ap.parse_args()
    threads = [int(x) for x in a.threads.split(",")]
    variant = a.variant or ck.best_variant()
    if not a.no_kernel:
        kernel_bench(variant, threads, [int(x) for x in a.ctx.split(",")])
    if not a.no_model:
        model_bench(threads, a.prompt, a.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
