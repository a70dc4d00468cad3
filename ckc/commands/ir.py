"""`ckc ir MODEL --stage transformer|tensorop|buffer|c`: the model's IR at one
stage of the pipeline (buffer: after plan-memory and select-simd, with the
layers rolled into loops as lower-to-c{roll} lowers them; c: after
lower-to-c; `--emit-c` prints the C source instead)."""

from __future__ import annotations

import sys

from ckc.commands.compile import add_compile_options, options_from, resolve_model
from ckc.pipeline import STAGES


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .gguf file, a Hugging Face model directory, or 'smollm2'")
    parser.add_argument("--stage", choices=STAGES, default="transformer", help="which IR (default transformer)")
    parser.add_argument("--emit-c", action="store_true", help="with --stage c: print the C source")
    add_compile_options(parser)


def main(args) -> int:
    from ckc.artifacts import ir_text
    from ckc.pipeline import module_at_stage

    options = options_from(args)
    options.check()
    module = module_at_stage(resolve_model(args.model), args.stage, options)
    if args.emit_c and args.stage == "c":
        from ckc.emit_c import emit_c

        sys.stdout.write(emit_c(module))
    else:
        sys.stdout.write(ir_text(module))
    return 0
