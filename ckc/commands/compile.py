"""`ckc compile MODEL -o DIR`: a model file (GGUF or a Hugging Face directory) to
DIR/model.c, model.so, weights.bump, memory.txt, memory.png, manifest.json (ckc/artifacts.py)."""

from __future__ import annotations

from pathlib import Path

from ckc.pipeline import KV_TYPES, SIMD_TARGETS, CompileOptions, compile_model


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .gguf file, a Hugging Face model directory, or 'smollm2'")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="artifact directory")
    add_compile_options(parser)
    parser.add_argument("--dump-ir", action="store_true", help="write DIR/ir/NN-<stage>.mlir after every stage")


def add_compile_options(parser) -> None:
    parser.add_argument("--max-tokens-per-chunk", type=int, default=64, metavar="N",
                        help="largest prefill chunk one call handles (default 64)")
    parser.add_argument("--simd", choices=SIMD_TARGETS, default="native",
                        help="kernel variants: native probes this CPU (default)")
    parser.add_argument("--context", type=int, default=0, metavar="N",
                        help="KV cache length (default: the model's)")
    parser.add_argument("--slots", type=int, default=0, metavar="N",
                        help="KV-cache slots: adds @decode_batch, N sequences advanced in one call (ckc serve); "
                             "slot 0 is the one prefill/decode use (default 0: none)")
    parser.add_argument("--kv-type", choices=KV_TYPES, default="f32",
                        help="KV cache element type: f32 (default), f16 (half the cache bytes), q8_0 "
                             "(blocks of 32 along head_dim; head_dim must be a multiple of 32)")
    parser.add_argument("--debug", action="store_true",
                        help="check the arena canaries after every kernel call")
    parser.add_argument("--no-pack-weights", action="store_true",
                        help="keep Linear weights row-major (packed per GEMM call) instead of prepacked")
    parser.add_argument("--no-fuse", action="store_true",
                        help="keep RMSNorm, the Q/K/V projections and RoPE as separate kernel calls")
    parser.add_argument("--allow-nonfinite-weights", action="store_true",
                        help="compile weights holding NaN or Inf with a warning (default: an error naming the tensor)")
    parser.add_argument("--weights", default="keep", metavar="FORMAT",
                        help="store the Linear weights as f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, "
                             "q4_k, q5_k or q6_k (quantize-weights); keep (default): the file's own types "
                             "(f32 for safetensors)")
    parser.add_argument("--load-plugin", action="append", default=[], metavar="FILE.py",
                        help="load passes from a Python file, as ckc-opt --load-plugin does (repeatable)")
    parser.add_argument("--passes", default="", metavar="SPEC",
                        help="a pass pipeline (ckc's or plugins' passes) run on the transformer-dialect module "
                             "before ckc's own pipeline")


def options_from(args, **extra) -> CompileOptions:
    return CompileOptions(max_tokens=args.max_tokens_per_chunk, simd=args.simd, context=args.context,
                          slots=getattr(args, "slots", 0),
                          kv_type=args.kv_type,
                          debug=args.debug, pack_weights=not args.no_pack_weights, fuse=not args.no_fuse,
                          allow_nonfinite=args.allow_nonfinite_weights, plugins=tuple(args.load_plugin),
                          pre_passes=args.passes, weights=args.weights, **extra)


def resolve_model(name: str) -> Path:
    """A model argument: 'smollm2' or a path (checked to exist)."""
    from ckc.cli import CkcError

    if name == "smollm2":
        from ckc import assets

        return assets.smollm2_gguf()
    p = Path(name)
    if not p.exists():
        raise CkcError(f"{name}: no such file or directory")
    return p


def main(args) -> int:
    p = resolve_model(args.model)
    compile_model(p, Path(args.output), options_from(args, dump_ir=args.dump_ir), memory_png=True)
    return 0

