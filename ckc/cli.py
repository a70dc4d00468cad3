"""ckc: the user-facing command line (compile, run, train, ir, tokenize)."""

import sys


def main(argv=None) -> int:
    print("ckc: commands arrive with the inference issue; use ckc-opt for IR", file=sys.stderr)
    return 2
