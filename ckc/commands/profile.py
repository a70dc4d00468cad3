"""`ckc profile MODEL [--mode prefill|decode] [--tokens N] [--threads N] [-o DIR]`:
time every kernel call of the model (ckc/profiler.py) and print the table;
DIR receives profile.json and roofline.png (ckc/reports/profile.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from ckc.commands.compile import add_compile_options, options_from, resolve_model


def add_arguments(parser) -> None:
    from ckc.profiler import MODES

    parser.add_argument("model", help="a .gguf file, a Hugging Face model directory, or 'smollm2'")
    parser.add_argument("--mode", choices=MODES, default="decode", help="what to time (default decode)")
    parser.add_argument("--tokens", type=int, default=32, metavar="N",
                        help="decode steps, or the prompt length of each prefill (default 32)")
    parser.add_argument("--rounds", type=int, default=3, metavar="R", help="prefills timed (default 3)")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="0 = all cores (default)")
    parser.add_argument("-o", "--output", default="profile", metavar="DIR",
                        help="folder for profile.json and roofline.png (default ./profile)")
    parser.add_argument("--top", type=int, default=10, metavar="K", help="slowest calls listed (default 10)")
    parser.add_argument("--reprobe", action="store_true",
                        help="measure this machine's roofline again (it is cached after the first run)")
    parser.add_argument("--verbose", action="store_true", help="show compilation progress")
    add_compile_options(parser)


def main(args) -> int:
    from ckc.cli import CkcError
    from ckc.profiler import profile
    from ckc.reports.profile import table, write_all

    if args.rounds <= 0:
        raise CkcError(f"--rounds must be positive, got {args.rounds}")
    path = resolve_model(args.model)
    result = profile(path, args.mode, args.tokens, args.threads, options=options_from(args),
                     rounds=args.rounds, quiet=not args.verbose, reprobe=args.reprobe)
    sys.stdout.write(table(result, top=args.top))
    js, png = write_all(result, Path(args.output))
    print(f"ckc: wrote {js} and {png}", file=sys.stderr)
    return 0
