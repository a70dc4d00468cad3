"""`ckc parity MODEL --against transformers|llama.cpp|ir [--prompt TEXT] [--tokens N]
[--mode prefill|decode|train] [-o DIR]`: every kernel call's outputs against a
reference (ckc/parity/), a table in execution order, the first divergent op
and what it read; DIR receives parity.json and parity.png.

`ckc parity MODEL --stages`: the tensorop reference after every pipeline pass
(ckc/parity/stages.py); names the first pass that changes the outputs.

`--pipeline SPEC` compiles with another pass pipeline (the standard one is
`ckc ir`'s), `--load-plugin FILE.py` adds the passes a file defines (as for
ckc-opt): how a pass of one's own is checked."""

from __future__ import annotations

import sys
from pathlib import Path

from ckc.commands.compile import add_compile_options, options_from, resolve_model


def add_arguments(parser) -> None:
    from ckc.parity.run import AGAINST, DEFAULT_PROMPT

    parser.add_argument("model", help="a .gguf file, a Hugging Face model directory, or 'smollm2'")
    parser.add_argument("--against", choices=AGAINST, default="transformers",
                        help="the reference (default transformers)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"the input text (default '{DEFAULT_PROMPT}')")
    parser.add_argument("--tokens", type=int, default=4, metavar="N",
                        help="decode steps after the prompt in --mode decode (default 4)")
    parser.add_argument("--mode", choices=("prefill", "decode", "train"), default="prefill",
                        help="compare the prompt's prefill, the prefill and N decode steps, or one training step's "
                             "activations and gradients against torch autograd (default prefill)")
    parser.add_argument("--stages", action="store_true",
                        help="run the tensorop reference after every pass instead; name the first pass "
                             "that changes the outputs")
    parser.add_argument("--pipeline", default="", metavar="SPEC",
                        help="the pass pipeline to compile with (default: ckc's; see `ckc-opt`)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="threads of the compiled model (default 1)")
    parser.add_argument("-o", "--output", default="parity", metavar="DIR",
                        help="folder for parity.json and parity.png (default ./parity)")
    parser.add_argument("--verbose", action="store_true", help="show compilation progress")
    add_compile_options(parser)


def main(args) -> int:
    from ckc.cli import CkcError
    from ckc.parity import report
    from ckc.parity.run import parity, prompt_ids

    if args.threads < 0:
        raise CkcError(f"--threads must be >= 0 (0 = all cores), got {args.threads}")
    path = resolve_model(args.model)
    options = options_from(args, pipeline=args.pipeline)
    options.check()  # a bad option, plugin or pass spec fails before any model is read
    if args.pipeline:
        from ckc import pipeline

        try:
            pipeline.passes(options)
        except ValueError as e:  # xDSL's unknown pass / bad option
            raise CkcError(f"--pipeline: {str(e).splitlines()[0]}") from None
    out = Path(args.output)
    if args.stages:
        from ckc.parity import stages

        if args.mode == "train":
            raise CkcError("--stages follows the inference pipeline: --mode prefill or decode")
        result = stages.stages(path, prompt_ids(path, args.prompt), args.mode, args.tokens, options)
        sys.stdout.write(stages.table(result))
        js = report.write_json(result, out / "stages.json")
        print(f"ckc: wrote {js}", file=sys.stderr)
        return 0
    result = parity(path, args.against, prompt=args.prompt, tokens=args.tokens, mode=args.mode, options=options,
                    threads=args.threads, out_dir=out, quiet=not args.verbose)
    sys.stdout.write(report.table(result))
    js = report.write_json(result, out / "parity.json")
    png = report.plot(result, out / "parity.png")
    print(f"ckc: wrote {js} and {png}", file=sys.stderr)
    return 0
