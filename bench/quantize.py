"""Compile-time quantization speed: ckc.quantize vs ggml's quantizer and gguf-py's, same run.

    .venv/bin/python bench/quantize.py [--layers 1] [--vocab-rows 16384] [--formats q8_0,q4_k]

The weights of a Llama-3.2-1B-shaped model (hidden 2048, 8 KV heads of 64, ffn
8192, 16 layers, vocab 128256 tied): ``--layers`` of its layers (7 matrices
each) and ``--vocab-rows`` rows of the embedding table are quantized, random
N(0, 0.02) values. For each format it prints fp32 MB/s read for

- ckc  1t / ckc Nt: ckc.quantize.quantize with 1 thread and all CPUs;
- ggml 1t: ggml_quantize_chunk (llama.cpp's reference quantizers, what
  llama-quantize runs per tensor, one thread; timed inside the process,
  tools/llamacpp/ggml_quantize.c) on the same tensors;
- gguf-py: gguf.quants.quantize (numpy; legacy formats only);

the ratios ckc 1t / ggml 1t and ckc 1t / gguf-py (same thread count), and the
time the whole 1B model (1.236e9 weights) would take with ckc at N threads
(measured rate x full size). Bytes are checked equal to ggml's on every tensor.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ckc import llamacpp  # noqa: E402
from ckc.dialects.quant import FORMATS  # noqa: E402
from ckc.quantize import default_threads, quantize  # noqa: E402

HIDDEN, KV, FFN, LAYERS, VOCAB = 2048, 512, 8192, 16, 128256
LAYER = [("attn_q", HIDDEN, HIDDEN), ("attn_k", KV, HIDDEN), ("attn_v", KV, HIDDEN), ("attn_output", HIDDEN, HIDDEN),
         ("ffn_gate", FFN, HIDDEN), ("ffn_up", FFN, HIDDEN), ("ffn_down", HIDDEN, FFN)]
MODEL_WEIGHTS = LAYERS * sum(n * k for _, n, k in LAYER) + VOCAB * HIDDEN
GGUF_PY = ("f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--vocab-rows", type=int, default=16384)
    ap.add_argument("--formats", default=",".join(f for f in FORMATS if f != "f32"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    tensors = [rng.normal(0, 0.02, (n, k)).astype(np.float32) for _ in range(args.layers) for _, n, k in LAYER]
    tensors.append(rng.normal(0, 0.02, (args.vocab_rows, HIDDEN)).astype(np.float32))
    mb = sum(t.nbytes for t in tensors) / 1e6
    nth = default_threads()
    print(f"{len(tensors)} tensors, {mb:.0f} MB fp32 ({args.layers} Llama-1B layers + {args.vocab_rows} embedding rows); "
          f"{nth} threads")
    print(f"{'format':7} {'ckc 1t':>9} {'ckc %dt' % nth:>9} {'ggml 1t':>9} {'gguf-py':>9}  {'vs ggml':>7} {'vs gguf':>7}"
          f"  {'1B model, ckc %dt' % nth:>18}   (MB/s of fp32 read)")
    for fmt in args.formats.split(","):
        ggml_s = 0.0
        for t in tensors:
            ref, s = llamacpp.ggml_quantize(t, FORMATS[fmt][0], timed=True)
            ggml_s += s
            if not np.array_equal(quantize(t, fmt, threads=nth), ref):
                print(f"{fmt}: bytes differ from ggml's", file=sys.stderr)
                return 1
        rates = []
        for th in (1, nth):
            t0 = time.perf_counter()
            for t in tensors:
                quantize(t, fmt, threads=th)
            rates.append(mb / (time.perf_counter() - t0))
        py = ""
        py_rate = None
        if fmt in GGUF_PY:
            import gguf

            t0 = time.perf_counter()
            for t in tensors:
                gguf.quants.quantize(t, gguf.GGMLQuantizationType(FORMATS[fmt][0]))
            py_rate = mb / (time.perf_counter() - t0)
            py = f"{py_rate:9.1f}"
        ggml_rate = mb / ggml_s
        model_s = MODEL_WEIGHTS * 4 / 1e6 / rates[1]
        print(f"{fmt:7} {rates[0]:9.1f} {rates[1]:9.1f} {ggml_rate:9.1f} {py:>9}  {rates[0] / ggml_rate:7.2f}"
              f" {(rates[0] / py_rate) if py_rate else float('nan'):7.2f}  {model_s:16.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
