"""End-to-end inference speed on SmolLM2-135M: ckc vs transformers and llama.cpp, same threads.

    .venv/bin/python bench/inference.py [--threads 1,2] [--prompt 64] [--decode 32] [--reps 2]
                                        [--rounds 2] [--peers hf,llama-f32,llama-q8]

All run the same weights (the Q4_1 GGUF, as stored or dequantized), greedy, batch 1:

- ckc: the file's own Q4_1/Q8_0 weights (``--weights keep``, the default:
  qgemm kernels, activations quantized on the fly to 8-bit blocks, Q4_1
  repacked r8 by pack-quant), fp32 KV cache (its compiled model.so);
- ckc-f32: ckc on the same file dequantized to fp32 at compile time
  (``weights="f32"``: fp32 weights, the f32 GEMMs);
- hf: transformers fp32 through its own GGUF reader, with its KV cache;
- llama-f32: llama.cpp (built from source by ckc.llamacpp, native CPU flags)
  on an F32 GGUF of the same weights (llama_model_quantize to F32), fp32 KV
  cache, no flash attention: ckc's arithmetic;
- llama-q8: llama.cpp on a Q8_0 GGUF quantized from that F32 one, with its
  defaults (f16 KV cache, flash attention auto): its usual native setting, a
  reference point, not the same arithmetic.

Prefill: tokens/s over a prompt of --prompt tokens from an empty cache, one
call. Decode: tokens/s over --decode single-token steps after that prompt.
For each thread count the peers run interleaved, in --rounds rounds of ckc,
then each peer, each doing --reps repetitions, in this process (llama.cpp as a
subprocess of it); a figure is the best over all rounds and repetitions (the
machine may be shared, its speed drifts). Model loading is not timed. Prints
ckc / peer as ratios (> 1: ckc faster).
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
    with contextlib.redirect_stderr(io.StringIO()):     # its reader's progress bar
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


def llama_ggufs(src):
    """F32 and Q8_0 GGUFs of ``src``'s weights (made once, cached under .cache/models)."""
    from ckc import llamacpp
    from ckc.build import cache_dir
    from ckc.commands.run import model_hash

    d = cache_dir("models", f"llamacpp-{model_hash(src)[:16]}-{llamacpp.build_key()}")
    f32, q8 = d / "model-f32.gguf", d / "model-q8_0.gguf"
    if not f32.is_file():
        llamacpp.quantize(src, f32, "F32")
    if not q8.is_file():
        llamacpp.quantize(f32, q8, "Q8_0")
    return f32, q8


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    ap.add_argument("--decode", type=int, default=32, help="decode steps")
    ap.add_argument("--reps", type=int, default=2, help="repetitions per round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every peer")
    ap.add_argument("--peers", default="ckc-f32,hf,llama-f32,llama-q8", help="comma-separated peers of ckc")
    args = ap.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - {"ckc-f32", "hf", "llama-f32", "llama-q8"}
    if unknown:
        ap.error(f"unknown peer(s): {', '.join(sorted(unknown))}")

    from ckc import assets, llamacpp
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions

    gguf = assets.smollm2_gguf()
    art = compiled_dir(gguf, CompileOptions(), quiet=False)
    art_f32 = compiled_dir(gguf, CompileOptions(weights="f32"), quiet=False) if "ckc-f32" in peers else None
    model = hf_from_gguf(gguf) if "hf" in peers else None
    if {"llama-f32", "llama-q8"} & set(peers):
        f32, q8 = llama_ggufs(gguf)
    rng = np.random.default_rng(0)
    prompt = rng.integers(100, 40000, size=args.prompt).astype(np.int32)
    names = {"ckc-f32": "ckc fp32", "hf": "transformers", "llama-f32": "llama.cpp F32", "llama-q8": "llama.cpp Q8_0"}
    runs = {"ckc-f32": lambda th: bench_ckc(art_f32, th, prompt, args.decode, args.reps),
            "hf": lambda th: bench_hf(model, th, prompt, args.decode, args.reps),
            "llama-f32": lambda th: llamacpp.bench(f32, prompt, decode=args.decode, reps=args.reps, threads=th),
            "llama-q8": lambda th: llamacpp.bench(q8, prompt, decode=args.decode, reps=args.reps, threads=th,
                                                  kv_f32=False)}
    threads = [int(t) for t in args.threads.split(",")]
    res = {}
    runs["ckc"] = lambda th: bench_ckc(art, th, prompt, args.decode, args.reps)
    for th in threads:
        for _ in range(args.rounds):
            for p in ["ckc", *peers]:
                got = runs[p](th)
                old = res.get((th, p), (0.0, 0.0))
                res[th, p] = (max(old[0], got[0]), max(old[1], got[1]))
    print(f"SmolLM2-135M, prompt {args.prompt} tokens, {args.decode} decode steps, "
          f"best of {args.rounds} interleaved rounds x {args.reps} reps; "
          f"tokens/s (ratio = ckc / peer, > 1: ckc faster)")
    print("ckc: the file's Q4_1/Q8_0 weights; ckc fp32, transformers, llama.cpp F32: fp32 weights; "
          "llama.cpp Q8_0: 8-bit weights, f16 KV cache")
    for phase, k in (("prefill", 0), ("decode", 1)):
        head = f"{phase:>8} {'threads':>7} {'ckc':>9}" + "".join(f" {names[p]:>15} {'ratio':>6}" for p in peers)
        print(head)
        for th in threads:
            c = res[th, "ckc"][k]
            row = f"{'':>8} {th:>7} {c:>9.1f}"
            for p in peers:
                v = res[th, p][k]
                row += f" {v:>15.1f} {c / v:>6.2f}"
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
