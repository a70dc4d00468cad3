"""`ckc tokenize MODEL TEXT`: print the ids and pieces of TEXT under MODEL's tokenizer."""

from __future__ import annotations

import argparse
import sys


DESCRIPTION = ("Tokenize TEXT with MODEL's tokenizer (a .gguf file, a tokenizer.json, "
               "a folder holding tokenizer.json, or 'smollm2') and print one line per token: "
               "index, id, piece.")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments of `ckc tokenize` (also used by `python -m ckc.tokenizer.cli`)."""
    ap.add_argument("model", help="a .gguf file, a tokenizer.json, or a folder holding tokenizer.json")
    ap.add_argument("text", nargs="?", help="text to tokenize ('-' or absent: read stdin)")
    ap.add_argument("--add-special", action="store_true", help="add BOS/EOS as the model asks")
    ap.add_argument("--parse-special", action="store_true",
                    help="turn control tokens written in the text (e.g. <|endoftext|>) into their ids")
    ap.add_argument("--ids-only", action="store_true", help="print only the ids, space separated")


def tokenize_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ckc tokenize", description=DESCRIPTION)
    add_arguments(ap)
    return main(ap.parse_args(argv))


def main(args: argparse.Namespace) -> int:
    from ckc.commands.compile import resolve_model
    from ckc.tokenizer import TokenizerError, load

    text = args.text
    if text is None or text == "-":
        text = sys.stdin.buffer.read()
    try:
        tok = load(resolve_model(args.model))
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
