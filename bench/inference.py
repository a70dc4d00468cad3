"""End-to-end inference speed on SmolLM2-135M: ckc vs transformers, same threads.

    .venv/bin/python bench/inference.py [--threads 1,2] [--prompt 64] [--decode 32] [--reps 3]

Both run the same weights in fp32 (the Q4_1 GGUF dequantized; transformers
through its own GGUF reader), greedy, batch 1. Prefill: tokens/s over a prompt
of --prompt tokens from an empty cache. Decode: tokens/s over --decode single
token steps after that prompt (transformers with its KV cache, one forward per
token). Times are the best of --reps repetitions (the machine may be shared).
Prints ckc / transformers as ratios (> 1: ckc faster).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def hf_from_gguf(path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    from transformers.utils import logging

    logging.set_verbosity_error()
    cfg = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
    model.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in tensors.items()}, strict=False)
    model.tie_weights()
    return model.eval()


def bench_ckc(art, threads, prompt, decode, reps):
    from ckc.session import Session

    best_p = best_d = float("inf")
    with Session(art, threads=threads) as s:
        for _ in range(reps):
            s.reset()
            t0 = time.perf_counter()
            logits = s.prefill(prompt)
            t1 = time.perf_counter()
            tok = int(np.argmax(logits))
            for _ in range(decode):
                tok = int(np.argmax(s.decode(tok)))
            t2 = time.perf_counter()
            best_p, best_d = min(best_p, t1 - t0), min(best_d, t2 - t1)
    return len(prompt) / best_p, decode / best_d


def bench_hf(model, threads, prompt, decode, reps):
    import torch

    torch.set_num_threads(threads)
    ids = torch.tensor(prompt[None].astype(np.int64))
    best_p = best_d = float("inf")
    with torch.inference_mode():
        for _ in range(reps):
            t0 = time.perf_counter()
            out = model(ids, use_cache=True)
            t1 = time.perf_counter()
            pkv = out.past_key_values
            tok = out.logits[0, -1].argmax().view(1, 1)
            for _ in range(decode):
                out = model(tok, past_key_values=pkv, use_cache=True)
                pkv = out.past_key_values
                tok = out.logits[0, -1].argmax().view(1, 1)
            t2 = time.perf_counter()
            best_p, best_d = min(best_p, t1 - t0), min(best_d, t2 - t1)
    return len(prompt) / best_p, decode / best_d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    ap.add_argument("--decode", type=int, default=32, help="decode steps")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from ckc import assets
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions

    gguf = assets.smollm2_gguf()
    art = compiled_dir(gguf, CompileOptions(), quiet=False)
    model = hf_from_gguf(gguf)
    rng = np.random.default_rng(0)
    prompt = rng.integers(100, 40000, size=args.prompt).astype(np.int32)
    print(f"SmolLM2-135M fp32, prompt {args.prompt} tokens, {args.decode} decode steps, best of {args.reps}")
    print(f"{'threads':>7} {'ckc prefill':>12} {'hf prefill':>11} {'ratio':>6} {'ckc decode':>11} {'hf decode':>10} {'ratio':>6}")
    for th in (int(t) for t in args.threads.split(",")):
        cp, cd = bench_ckc(art, th, prompt, args.decode, args.reps)
        hp, hd = bench_hf(model, th, prompt, args.decode, args.reps)
        print(f"{th:>7} {cp:>10.1f}/s {hp:>9.1f}/s {cp / hp:>6.2f} {cd:>9.1f}/s {hd:>8.1f}/s {cd / hd:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
