"""Encode throughput of ckc's tokenizer against HF tokenizers and tiktoken.

    .venv/bin/python bench/tokenizer.py [--mb 4] [--repeat 3]

All three use GPT-2's vocabulary and merge ranks, read from llama.cpp's
ggml-vocab-gpt-2.gguf (no model hub is reachable, so tiktoken's Encoding is built
from the same ranks: GPT-2's token ids follow its merge order, which is what
tiktoken's ranks are), and encode the same Shakespeare plays, one document per
call, on one thread (HF's batch parallelism is not used). Throughput is MB of
UTF-8 input per second of this thread's CPU time (time.thread_time), so other
load on the machine does not skew the ratios; wall-clock numbers are printed too.
The ids of all three are checked to be identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from ckc import tokenizer as ctok  # noqa: E402
from ckc.assets import llama_cpp_vocab_dir, shakespeare_texts  # noqa: E402

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def corpus(mb: float) -> list[str]:
    docs, total = [], 0
    for f in sorted(shakespeare_texts().glob("*.txt")):
        t = f.read_text(encoding="utf-8", errors="replace")
        docs.append(t)
        total += len(t.encode())
        if total >= mb * 1e6:
            break
    return docs


def timed(fn, docs, repeat):
    best_cpu = best_wall = float("inf")
    out = None
    for _ in range(repeat):
        c0, w0 = time.thread_time(), time.perf_counter()
        out = [fn(d) for d in docs]
        best_cpu = min(best_cpu, time.thread_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return out, best_cpu, best_wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=4.0, help="MB of Shakespeare to encode (default 4)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tokenizer; the best is kept")
    args = ap.parse_args(argv)

    gguf = llama_cpp_vocab_dir() / "ggml-vocab-gpt-2.gguf"
    tok = ctok.from_gguf(gguf)
    n = tok.n_vocab
    texts = [tok.token_text(i) for i in range(n)]
    meta = ctok.read_gguf_metadata(gguf)
    merges = [m.decode() for m in (meta["tokenizer.ggml.merges"][i] for i in range(len(meta["tokenizer.ggml.merges"])))]
    eot = tok.token_to_id("<|endoftext|>")

    runners = {"ckc": lambda d: tok.encode_np(d).tolist()}
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        hf = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(texts)}, merges=[tuple(m.split(" ", 1)) for m in merges]))
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        runners["hf-tokenizers"] = lambda d: hf.encode(d, add_special_tokens=False).ids
    except ImportError:
        print("hf tokenizers not installed: skipped", file=sys.stderr)
    try:
        import tiktoken

        ranks = {tok.piece(i): i for i in range(n) if i != eot}
        enc = tiktoken.Encoding("gpt2-from-gguf", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                                special_tokens={"<|endoftext|>": eot})
        runners["tiktoken"] = lambda d: enc.encode_ordinary(d)
    except ImportError:
        print("tiktoken not installed: skipped", file=sys.stderr)

    docs = corpus(args.mb)
    nbytes = sum(len(d.encode()) for d in docs)
    print(f"GPT-2 ranks from {gguf.name}; {len(docs)} Shakespeare plays, {nbytes / 1e6:.2f} MB, one thread, "
          f"best of {args.repeat}")
    results, ref = {}, None
    for name, fn in runners.items():
        ids, cpu, wall = timed(fn, docs, args.repeat)
        same = "reference" if ref is None else ("ids identical" if ids == ref else "IDS DIFFER")
        ref = ref if ref is not None else ids
        results[name] = cpu
        ntok = sum(len(x) for x in ids)
        print(f"  {name:14s} {nbytes / cpu / 1e6:8.2f} MB/s cpu   {nbytes / wall / 1e6:8.2f} MB/s wall   "
              f"{ntok} tokens   {same}")
    base = results["ckc"]
    for name, cpu in results.items():
        if name != "ckc":
            print(f"  ckc / {name}: {cpu / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
