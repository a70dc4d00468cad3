"""Quantized inference speed: ckc vs llama.cpp on the same GGUF files, same threads.

    nice .venv/bin/python bench/inference.py --quick      # SmolLM2 Q4_1 and Q8_0 (minutes)
    nice .venv/bin/python bench/inference.py              # + Qwen2-0.5B- and Llama-1B-shaped
                                                          #   random weights in Q8_0, Q4_0, Q4_K_M (long)
    options: [--threads 1,2] [--decode 32] [--reps 2] [--rounds 2] [--models smollm2-q4_1,...]

Files:

- smollm2-q4_1: SmolLM2-135M-Instruct's downloaded GGUF (mostly Q4_1, some Q8_0);
- smollm2-q8_0: that file requantized to Q8_0 by llama_model_quantize;
- qwen2-0.5b-*, llama-1b-*: random weights at those models' shapes, converted
  by llama.cpp's convert_hf_to_gguf.py to F16 and quantized by
  llama_model_quantize (ckc.llamacpp_quant: built once, cached, niced; GBs).

Both engines run each file: ckc through its normal compile (``compile_model``;
today the importer dequantizes GGUF blocks to fp32, so its weights are 4 bytes
a value; once quantized types reach the IR, the file's own blocks), llama.cpp
(built from source by ckc.llamacpp, native CPU flags without AMX, its
CPU_REPACK interleaved layouts on) with its defaults: f16 KV cache, flash
attention auto; each of its figures is the better of its OpenMP default and
OMP_WAIT_POLICY=PASSIVE (see OMP_POLICIES). ckc's KV cache is fp32 (its only type today).

Measured, for each file and thread count, interleaved in --rounds rounds (ckc
then llama.cpp), each --reps repetitions, best figure kept (the machine is
shared and drifts):

- prefill 64 and prefill 512: tokens/s of one prompt of that many tokens from
  an empty cache (ckc: one prefill call; llama.cpp: one batch);
- decode: tokens/s over --decode single-token greedy steps after the 64-token
  prompt;
- decode GB/s: bytes read per decoded token / decode time per token, with bytes
  = the engine's weight bytes (every bench model ties its embedding to the
  output, so every weight is read once per token) + its KV cache rows up to the
  mean decode position; shown as a fraction of a streaming read measured by
  ckc.roofline's probe in this run at the same thread count.

Prints tokens/s and ckc / llama.cpp ratios (> 1: ckc faster).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUICK = ("smollm2-q4_1", "smollm2-q8_0")
BIG = tuple(f"{shape}-{fmt.lower()}" for shape in ("qwen2-0.5b", "llama-1b") for fmt in ("Q8_0", "Q4_0", "Q4_K_M"))
PROMPTS = (64, 512)


def model_file(name: str) -> Path:
    from ckc import assets
    from ckc import llamacpp_quant as lq

    if name == "smollm2-q4_1":
        return assets.smollm2_gguf()
    if name == "smollm2-q8_0":
        return lq.requantized(assets.smollm2_gguf(), "Q8_0")
    shape, _, fmt = name.rpartition("-")
    fam = {"qwen2-0.5b": "qwen2", "llama-1b": "llama"}.get(shape)
    if fam is None:
        raise SystemExit(f"bench: unknown model '{name}' (have: {', '.join(QUICK + BIG)})")
    return lq.quant_gguf(fam, fmt.upper(), shape=shape)


def gguf_facts(path: Path) -> dict:
    """Tensor bytes and the KV geometry, from the GGUF's header."""
    import gguf

    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()

    def num(key, default=None):
        f = r.fields.get(f"{arch}.{key}")
        return default if f is None else int(np.asarray(f.contents()).reshape(-1)[0])

    layers, embd, heads = num("block_count"), num("embedding_length"), num("attention.head_count")
    kv_heads = num("attention.head_count_kv", heads)
    head_dim = num("attention.key_length", embd // heads)
    types = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + int(t.n_bytes)
    return {"tensor_bytes": sum(types.values()), "types": types,
            "kv_row_values": 2 * layers * kv_heads * head_dim}


def bench_ckc(session, prompts: dict, decode: int, reps: int) -> dict:
    best = {}
    for _ in range(reps):
        for n, prompt in prompts.items():
            session.reset()
            t0 = time.perf_counter()
            logits = session.prefill(prompt)
            t1 = time.perf_counter()
            best[f"p{n}"] = max(best.get(f"p{n}", 0.0), n / (t1 - t0))
            if n == min(prompts):
                tok = int(np.argmax(logits))
                t1 = time.perf_counter()
                for _ in range(decode):
                    tok = int(np.argmax(session.decode(tok)))
                t2 = time.perf_counter()
                best["d"] = max(best.get("d", 0.0), decode / (t2 - t1))
    return best


# llama.cpp's OpenMP threads spin at barriers by default; on a machine shared
# beyond its cores a spinning thread holds the core its partner needs (measured
# here at 2 threads: 6 vs 153 prefill tokens/s). Both policies run; the better
# figure counts (the peer at its best on this machine).
OMP_POLICIES = (None, "PASSIVE")


def bench_llama(path: Path, threads: int, prompts: dict, decode: int, reps: int) -> dict:
    import os

    from ckc import llamacpp

    best = {}
    old = os.environ.get("OMP_WAIT_POLICY")
    try:
        for policy in OMP_POLICIES:
            if policy is None:
                os.environ.pop("OMP_WAIT_POLICY", None)
            else:
                os.environ["OMP_WAIT_POLICY"] = policy
            for n, prompt in prompts.items():
                steps = decode if n == min(prompts) else 0
                p, d = llamacpp.bench(path, prompt, decode=steps, reps=reps, threads=threads, kv_f32=False)
                best[f"p{n}"] = max(best.get(f"p{n}", 0.0), p)
                if steps:
                    best["d"] = max(best.get("d", 0.0), d)
    finally:
        if old is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
        else:
            os.environ["OMP_WAIT_POLICY"] = old
    return best


def _print_row(r: dict, stream_gbs: float) -> None:
    cells = []
    for k in ("p64", "p512", "d"):
        c, l = r["c"].get(k), r["l"].get(k)
        cells.append(f"{c:>7.1f} {l:>7.1f} {c / l:>5.2f}" if c and l else f"{'-':>7} {'-':>7} {'-':>5}")
    print(f"{r['name']:<18} {r['th']:>3} | " + " | ".join(cells)
          + f" | {r['mb_c']:>6.0f} {r['mb_l']:>6.0f} | {r['gbs_c']:>5.1f} ({r['gbs_c'] / stream_gbs:>4.0%})"
          f" {r['gbs_l']:>5.1f} ({r['gbs_l'] / stream_gbs:>4.0%})", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="SmolLM2 files only")
    ap.add_argument("--models", default="", help=f"comma-separated subset of {','.join(QUICK + BIG)}")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--decode", type=int, default=32, help="decode steps")
    ap.add_argument("--reps", type=int, default=2, help="repetitions per round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of ckc and llama.cpp")
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m] or list(QUICK if args.quick else QUICK + BIG)
    threads = [int(t) for t in args.threads.split(",")]

    from ckc import roofline
    from ckc.build import cache_dir
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions, compile_model
    from ckc.session import Session

    rng = np.random.default_rng(0)
    rows = []
    stream = {th: roofline.measure(th)["read_gbs"] for th in threads}
    print(f"ckc vs llama.cpp on the same GGUF files; tokens/s, best of {args.rounds} interleaved rounds x "
          f"{args.reps} reps; ratio = ckc / llama.cpp (> 1: ckc faster)")
    print("ckc: fp32 KV cache, weights as its compile holds them; llama.cpp: its defaults (f16 KV, flash auto), "
          "best of OpenMP spinning and passive waits")
    print(f"stream read (ckc.roofline probe, this run): "
          + ", ".join(f"{th} thread(s) {g:.1f} GB/s" for th, g in sorted(stream.items())))
    print(f"{'model':<18} {'thr':>3} | {'prefill 64':^22} | {'prefill 512':^22} | {'decode':^22} | "
          f"{'MB/token':^13} | {'decode GB/s (of stream)':^27}")
    print(f"{'':<18} {'':>3} | " + " | ".join(f"{'ckc':>7} {'llama':>7} {'ratio':>5}" for _ in range(3))
          + f" | {'ckc':>6} {'llama':>6} | {'ckc':>12} {'llama':>12}", flush=True)
    for name in names:
        path = model_file(name)
        facts = gguf_facts(path)
        tmp = None
        if name.startswith("smollm2"):
            art = compiled_dir(path, CompileOptions(), quiet=False)
        else:
            # GBs of fp32 weights today: compiled for this run only, removed after
            tmp = Path(tempfile.mkdtemp(dir=cache_dir("bench"), prefix=f"{name}-"))
            print(f"bench: compiling {name} into {tmp}", file=sys.stderr, flush=True)
            compile_model(path, tmp, CompileOptions(), quiet=True)
            art = tmp
        try:
            for th in threads:
                with Session(art, threads=th) as s:
                    vocab = s.vocab
                    prompts = {n: rng.integers(10, min(vocab, 30000), size=n).astype(np.int32) for n in PROMPTS
                               if n + args.decode < s.context}
                    ckc_w = s.info["weights_bytes"]
                    res_c, res_l = {}, {}
                    for _ in range(args.rounds):
                        for k, v in bench_ckc(s, prompts, args.decode, args.reps).items():
                            res_c[k] = max(res_c.get(k, 0.0), v)
                        for k, v in bench_llama(path, th, prompts, args.decode, args.reps).items():
                            res_l[k] = max(res_l.get(k, 0.0), v)
                pos = min(prompts) + args.decode / 2
                bytes_c = ckc_w + 4 * facts["kv_row_values"] * pos       # fp32 KV
                bytes_l = facts["tensor_bytes"] + 2 * facts["kv_row_values"] * pos   # f16 KV
                rows.append(dict(name=name, th=th, c=res_c, l=res_l, gbs_c=bytes_c * res_c["d"] / 1e9,
                                 gbs_l=bytes_l * res_l["d"] / 1e9, mb_c=bytes_c / 1e6, mb_l=bytes_l / 1e6,
                                 types=facts["types"]))
                _print_row(rows[-1], stream[th])
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    print("GGUF tensor types (MB): " + "; ".join(
        f"{r['name']}: " + ", ".join(f"{t} {b / 1e6:.0f}" for t, b in sorted(r["types"].items()))
        for r in rows if r["th"] == threads[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
