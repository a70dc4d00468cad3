"""`ckc tokenize MODEL TEXT`: the tokenizer's own command (ckc/tokenizer/cli.py)."""

from ckc.tokenizer.cli import add_arguments, main  # noqa: F401
