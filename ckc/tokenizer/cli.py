"""`ckc tokenize MODEL TEXT`: print the ids and pieces of TEXT under MODEL's tokenizer."""

from __future__ import annotations

import argparse
import sys


def tokenize_main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="ckc tokenize",
        description="Tokenize TEXT with MODEL's tokenizer (a .gguf file, a tokenizer.json, "
                    "or a folder holding tokenizer.json) and print one line per token: "
                    "index, id, piece.")
    ap.add_argument("model", help="a .gguf file, a tokenizer.json, or a folder holding tokenizer.json")
    ap.add_argument("text", nargs="?", help="text to tokenize ('-' or absent: read stdin)")
    ap.add_argument("--add-special", action="store_true", help="add BOS/EOS as the model asks")
    ap.add_argument("--parse-special", action="store_true",
                    help="turn control tokens written in the text (e.g. <|endoftext|>) into their ids")
    ap.add_argument("--ids-only", action="store_true", help="print only the ids, space separated")
    args = ap.parse_args(argv)

    from ckc.tokenizer import TokenizerError, load

    text = args.text
    if text is None or text == "-":
        text = sys.stdin.buffer.read()
    try:
        tok = load(args.model)
        ids = tok.encode(text, add_special=args.add_special, parse_special=args.parse_special)
    except TokenizerError as e:
        print(f"ckc tokenize: {e}", file=sys.stderr)
        return 1
    if args.ids_only:
        print(" ".join(map(str, ids)))
        return 0
    for i, t in enumerate(ids):
        print(f"{i:6d} {t:8d}  {tok.token_text(t)!r:24s} {tok.piece(t)!r}")
    print(f"{len(ids)} tokens", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(tokenize_main())
