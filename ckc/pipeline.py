"""The pipelines: a model file to model.c / model.so, IR kept in memory.

    ckc.importers.load_model -> to_ir (transformer dialect)          import, to-ir
      -> libckernels (cmake, cached by source hash)                   build-kernels
      -> lower-transformer -> fuse-rmsnorm-qkv-rope -> bufferize -> pack-weights -> pack-quant -> plan-memory
      -> select-simd -> lower-to-c                                    one stage per pass
      -> C emitter -> weights.bump -> cc (model.so, ckc/artifacts.py) emit-c, weights, cc

The pass part is ONE named pipeline, a PassPipeline spec string
(:func:`pipeline_spec`, e.g. ``lower-transformer{modes=prefill,prefill_all,decode},
fuse-rmsnorm-qkv-rope,bufferize{max_tokens=64},pack-weights,plan-memory,select-simd{target=native},
lower-to-c{roll=true readable=true}``; lower-to-c's ``roll`` runs roll-layers, the layers as loops):
the same string runs under ``ckc-opt -p '...'`` on a transformer module and
gives the same C (test/py/test_pipeline.py checks it). The training library's
pipeline, :func:`training_spec`, sits next to it (ckc/train/compile_child.py
runs it; ckc-opt replays it the same way). :func:`compile_model`
parses that spec and applies its passes one by one to the module in memory
(no text round trip), timing each and printing progress.

Compilation flows one way: this module (options, specs, the driver) imports
the stages (importers, passes, ckc/artifacts.py for emit + build); no stage
imports it back.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import PassPipeline
from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException

from ckc.errors import CkcError

INFERENCE_MODES = ("prefill", "prefill_all", "decode")
TRAINING_MODES = ("train_step", "eval_loss")
SIMD_TARGETS = ("native", "avx512", "avx2", "scalar")
KV_TYPES = ("f32", "f16", "q8_0")  # tensorop.KV_CACHE_TYPES (not imported here: xDSL loads lazily)
STAGES = ("transformer", "tensorop", "buffer", "c")

# The pass after which the module is at each stage.
_STAGE_AFTER = {"transformer": None, "tensorop": "lower-transformer", "buffer": "select-simd", "c": "lower-to-c"}


@dataclass(frozen=True)
class CompileOptions:
    max_tokens: int = 64          # largest prefill chunk (bufferize{max_tokens})
    simd: str = "native"          # select-simd{target}
    context: int = 0              # KV cache rows; 0 = the model's
    slots: int = 0                # KV-cache slots of @decode_batch (ckc serve); 0 = no batched decode
    kv_type: str = "f32"          # KV cache element type: f32, f16, q8_0 (lower-transformer{kv_type})
    debug: bool = False           # canary checks after every kernel call (and -DCKC_DEBUG)
    dump_ir: bool = False         # write DIR/ir/<n>-<stage>.mlir
    opt_level: str = "-O2"        # for model.c
    pack_weights: bool = True     # pack-weights: Linear weights stored prepacked (f32p32)
    fuse: bool = True             # fuse-rmsnorm-qkv-rope: one kernel per attention input
    profile: bool = False         # lower-to-c{profile}: every kernel call timed (ckc profile)
    allow_nonfinite: bool = False  # NaN/Inf weights: a warning instead of an error
    plugins: tuple[str, ...] = ()  # --load-plugin FILE.py: passes (ckc-opt's plugin format) for pre_passes
    pre_passes: str = ""          # a pass spec run on the transformer module before lower-transformer
    weights: str = "keep"         # --weights: keep (the file's types; f32 for safetensors); f32 (every
                                  # weight dequantized at import); another format of
                                  # ckc.dialects.quant.FORMATS: quantize-weights{type=...}, converted
                                  # when weights.bump is written (ckc/quantize.py)
    # tests only (no CLI flag):
    overflow: str = ""            # lower-to-c{overflow}: calls writing this buffer write 8 bytes past it
    sanitize: bool = False        # model.so built with ASan + UBSan against libckernels' sanitizer build
    record: bool = False          # lower-to-c{record}: every kernel call's outputs recorded (ckc parity)
    pipeline: str = ""            # a whole pass pipeline spec replacing pipeline_spec() (ckc parity --pipeline)
    roll: bool = True             # lower-to-c{roll}: layers as loops (off: unrolled, for the bit-identity test;
                                  # profile and record builds stay unrolled: their call tables are per layer)
    pack_quant: bool = True       # pack-quant: block-format weights repacked 8 rows interleaved (r8)

    def check(self) -> None:
        if self.max_tokens <= 0:
            raise CkcError(f"--max-tokens-per-chunk must be positive, got {self.max_tokens}")
        if self.simd not in SIMD_TARGETS:
            raise CkcError(f"--simd must be one of {', '.join(SIMD_TARGETS)}, got '{self.simd}'")
        if self.context < 0:
            raise CkcError(f"--context must be >= 0, got {self.context}")
        if self.slots < 0:
            raise CkcError(f"--slots must be >= 0, got {self.slots}")
        if self.kv_type not in KV_TYPES:
            raise CkcError(f"--kv-type must be one of {', '.join(KV_TYPES)}, got '{self.kv_type}'")
        for f in self.plugins:
            if not Path(f).is_file():
                raise CkcError(f"{f}: plugin file not found")
        if self.weights != "keep":
            from ckc.dialects.quant import FORMATS

            if self.weights not in FORMATS:
                raise CkcError(f"--weights must be keep or one of {', '.join(FORMATS)}, got '{self.weights}'")
        if self.pre_passes or self.plugins:
            passes(self)  # a bad spec or plugin fails before the model is read

    def key(self) -> str:
        """What changes the generated code (for cache keys)."""
        return (f"max_tokens={self.max_tokens};simd={self.simd};context={self.context};debug={int(self.debug)};"
                + (f"slots={self.slots};" if self.slots else "") +
                f"O={self.opt_level}" + ("" if self.kv_type == "f32" else f";kv_type={self.kv_type}")
                + ("" if self.pack_weights else ";pack_weights=0")
                + ("" if self.fuse else ";fuse=0") + (";profile=1" if self.profile else "")
                + (";allow_nonfinite=1" if self.allow_nonfinite else "")
                + (f";pre_passes={self.pre_passes}" if self.pre_passes else "")
                + (f";weights={self.weights}" if self.weights != "keep" else "")
                + (f";overflow={self.overflow}" if self.overflow else "") + (";sanitize=1" if self.sanitize else "")
                + "".join(f";plugin={hashlib.sha256(Path(f).read_bytes()).hexdigest()[:16]}" for f in self.plugins)
                + (";record=1" if self.record else "") + (f";pipeline={self.pipeline}" if self.pipeline else "")
                + ("" if self.roll else ";roll=0")
                + ("" if self.pack_quant else ";pack_quant=0"))


def pipeline_spec(options: CompileOptions = CompileOptions()) -> str:
    """The whole pass pipeline as one spec string (runs under ckc-opt too).
    ``options.pipeline``, when set, is used as given, except that the
    ``debug``/``profile``/``record`` options are added to its lower-to-c."""
    if options.pipeline:
        parts = _split_spec(options.pipeline)
        return ",".join(_lower_to_c(options) if p.strip() == "lower-to-c" else p.strip() for p in parts)
    lt = "lower-transformer{modes=" + ",".join(INFERENCE_MODES + (("decode_batch",) if options.slots else ()))
    if options.context:
        lt += f" context={options.context}"
    if options.slots:
        lt += f" slots={options.slots}"
    if options.kv_type != "f32":
        lt += f" kv_type={options.kv_type}"
    lt += "}"
    return ",".join(
        [
            *([options.pre_passes] if options.pre_passes else []),
            *([f"quantize-weights{{type={options.weights}}}"] if options.weights != "keep" else []),
            lt,
            *(["fuse-rmsnorm-qkv-rope"] if options.fuse else []),
            f"bufferize{{max_tokens={options.max_tokens}}}",
            *(["pack-weights"] if options.pack_weights else []),
            *(["pack-quant"] if options.pack_quant else []),
            "plan-memory",
            f"select-simd{{target={options.simd}}}",
            _lower_to_c(options),
        ]
    )


def training_spec(max_tokens: int, simd: str = "native", recompute: str = "none", *, debug: bool = False,
                  overflow: str = "", record: bool = False, roll: bool = True, batch: int = 1,
                  beta1: float = 0.9, beta2: float = 0.95, eps: float = 1e-8, weight_decay: float = 0.1,
                  max_norm: float = 1.0) -> str:
    """The training library's pass pipeline (ckc/train/compile_child.py) as one spec string.

    ``add-optimizer`` writes ``@optimizer_step`` (global-norm clipping at
    ``max_norm``, 0 = none; AdamW with ``beta1``, ``beta2``, ``eps`` and
    ``weight_decay`` on the matrices; lr and step are runtime arguments) and
    ``@zero_grads``; bufferize and plan-memory lay the weights, gradients and
    AdamW moments out as parallel blocks, so the library's optimizer is
    generated from the IR like the step. Defaults: ckc.train.trainer.OptimConfig's.
    Micro-batches accumulate by calling ``@train_step`` again with the
    runtime ``grad_scale`` (1/k), so ``micro_batches`` stays 1.

    ``batch`` B > 1 compiles a batched step: ``@train_step`` / ``@eval_loss`` take up to B
    sequences of exactly ``max_tokens`` T tokens in one call (lower-transformer{seq_len=T}:
    GEMMs and every token-wise op over B*T rows, attention and positions per sequence;
    bufferize{max_tokens=B*T}: the activations sized for B*T rows). B = 1: one sequence of
    1..T tokens per call, as before.

    Not in it, though the inference pipeline has them:
    - fuse-rmsnorm-qkv-rope: autodiff has no rule for the fused op (and the backward reads the norm output);
    - pack-weights: gemm_grad reads, and AdamW updates, the weights row-major.
    """
    if batch < 1:
        raise CkcError(f"training batch must be >= 1, got {batch}")
    seq = f" seq_len={max_tokens}" if batch > 1 else ""

    def num(x: float) -> str:  # xDSL's option parser wants a mantissa with a dot (1.0e-08, not 1e-08)
        r = repr(float(x))
        return r if "e" not in r or "." in r.split("e")[0] else r.replace("e", ".0e")

    opt = " ".join(f"{k}={num(v)}" for k, v in (("beta1", beta1), ("beta2", beta2), ("eps", eps),
                                                 ("weight_decay", weight_decay), ("max_norm", max_norm)))
    return ",".join(
        [
            "lower-transformer{modes=" + ",".join(TRAINING_MODES) + seq + "}",
            f"autodiff{{recompute={recompute}}}",
            f"add-optimizer{{{opt}}}",
            f"bufferize{{max_tokens={max_tokens * batch}}}",
            "plan-memory",
            f"select-simd{{target={simd}}}",
            _lower_to_c(CompileOptions(debug=debug, overflow=overflow, record=record, roll=roll)),
        ]
    )


def rolls(options: CompileOptions) -> bool:
    """Whether lower-to-c rolls the layers into loops (roll-layers): not for
    profile and record builds, whose call tables (calls.json, record.json) are
    per layer, nor for the test-only overflow builds, whose canary message
    names the one layer's buffer the call wrote."""
    return options.roll and not options.profile and not options.record and not options.overflow


def _lower_to_c(options: CompileOptions) -> str:
    overflow = options.overflow
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", overflow):  # a spec IDENT, else a quoted string
        overflow = json.dumps(overflow)  # (training buffer names hold dots)
    opts = [o for o, on in (("debug=true", options.debug), ("profile=true", options.profile),
                            (f"overflow={overflow}", bool(options.overflow)),
                            ("record=true", options.record),
                            ("roll=true", rolls(options)), ("readable=true", True)) if on]
    return "lower-to-c" + ("{" + " ".join(opts) + "}" if opts else "")


def _split_spec(spec: str) -> list[str]:
    """A pipeline spec split at the commas outside {...}."""
    parts, depth, cur = [], 0, ""
    for ch in spec:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p.strip()]


class PassError(CkcError):
    """A pass of the pipeline raised (a plugin's bug, or IR a ckc pass rejects); one line naming it."""


def available_passes(options: CompileOptions = CompileOptions()) -> dict:
    """ckc's passes plus those of the ``--load-plugin`` files (which may not shadow ckc's)."""
    from ckc.opt import UserError, load_plugin_file
    from ckc.universe import all_passes

    found = dict(all_passes())
    for f in options.plugins:
        try:
            plugin = load_plugin_file(f)
        except UserError as err:
            raise CkcError(str(err)) from None
        for name, factory in plugin.all_passes.items():
            if name in found:
                raise CkcError(f"{f}: plugin pass '{name}' has the name of a ckc pass")
            found[name] = factory
    return found


def passes(options: CompileOptions = CompileOptions(), spec: str | None = None):
    """The pass objects of ``spec`` (default: the inference pipeline of ``options``)."""
    try:
        return PassPipeline.parse_spec(available_passes(options),
                                       pipeline_spec(options) if spec is None else spec).passes
    except (ArgSpecParseError, ValueError) as err:  # an unknown pass, a bad option (ArgSpecParseError
        # is a BaseException in xDSL)
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        where = f" (--passes '{options.pre_passes}')" if options.pre_passes else ""
        raise CkcError(f"bad pass pipeline{where}: {lines[-1] if lines else err}") from None


def apply_pass(p, ctx, module: ModuleOp) -> None:
    """``p.apply(ctx, module)``. A diagnostic (IR a pass rejects) and anything a
    plugin's pass raises become one PassError line naming the pass; anything
    else one of ckc's own passes raises is a bug in ckc and keeps its traceback."""
    try:
        p.apply(ctx, module)
    except CkcError:
        raise
    except Exception as err:  # noqa: BLE001 - a plugin's pass may raise anything
        if not isinstance(err, DiagnosticException) and type(p).__module__.startswith("ckc."):
            raise
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        msg = lines[0] if lines else ""
        if not isinstance(err, DiagnosticException):
            msg = f"{type(err).__name__}: {msg}" if msg else type(err).__name__
        raise PassError(f"pass '{p.name}' failed: {msg}") from err


@dataclass
class Progress:
    """Prints one line per stage with its time (to `out`, default stderr)."""

    out: object = None
    quiet: bool = False
    times: dict[str, float] = field(default_factory=dict)

    def stage(self, name: str, seconds: float, extra: str = "") -> None:
        self.times[name] = seconds
        if not self.quiet:
            print(f"ckc: {name:<18} {seconds * 1000:9.1f} ms{('  ' + extra) if extra else ''}",
                  file=self.out or sys.stderr, flush=True)


def import_model(path, progress: Progress | None = None, weights: str = "keep"):
    """(transformer module, ModelConfig, WeightStore) for a model path.
    ``weights``: "keep" (a GGUF's Linear/embedding weights in their stored
    types) or "f32" (everything dequantized)."""
    from ckc.importers import load_model
    from ckc.importers.to_ir import build_module

    progress = progress or Progress(quiet=True)
    t0 = time.perf_counter()
    cfg, weights = load_model(path, weights=weights)
    t1 = time.perf_counter()
    progress.stage("import", t1 - t0, f"{cfg.arch}, {cfg.n_layers} layers, vocab {cfg.vocab_size}")
    module = build_module(cfg, weights, train=False)
    progress.stage("to-ir", time.perf_counter() - t1, f"{_count_ops(module)} ops")
    return module, cfg, weights


def build_kernels(progress: Progress, *, sanitize: bool = False, probe: bool = True) -> None:
    """libckernels (and with ``sanitize`` its ASan flavour) built if its cache
    entry is missing, and with ``probe`` loaded (select-simd{target=native}
    asks it for the CPU's features): the stage ``build-kernels``, once per
    compile (a second call with the same ``progress`` does nothing)."""
    from ckc import kernels

    if "build-kernels" in progress.times:
        return
    t0 = time.perf_counter()
    kernels.build_dir(sanitize)
    if probe:
        kernels.cpu_features()
    progress.stage("build-kernels", time.perf_counter() - t0)


def _count_ops(module: ModuleOp) -> int:
    return sum(1 for _ in module.walk())


def run_passes(
    module: ModuleOp,
    options: CompileOptions = CompileOptions(),
    *,
    progress: Progress | None = None,
    stop_after: str | None = None,
    on_stage: Callable[[str, ModuleOp], None] | None = None,
    before_pass: Callable[[str, ModuleOp], None] | None = None,
) -> ModuleOp:
    """Applies the pipeline's passes in place (until `stop_after`, a pass name).
    `on_stage(pass_name, module)` after each pass; `before_pass(name, module)`
    before each."""
    from ckc.universe import make_context

    progress = progress or Progress(quiet=True)
    ctx = make_context()
    for p in passes(options):
        if p.name == "select-simd" and getattr(p, "target", None) == "native":
            build_kernels(progress)  # its CPU probe loads libckernels: a cold build is not the pass's time
        if before_pass is not None:
            before_pass(p.name, module)
        t0 = time.perf_counter()
        apply_pass(p, ctx, module)
        progress.stage(p.name, time.perf_counter() - t0)
        if on_stage is not None:
            on_stage(p.name, module)
        if p.name == stop_after:
            break
    return module


def module_at_stage(path, stage: str, options: CompileOptions = CompileOptions(),
                    progress: Progress | None = None) -> ModuleOp:
    """The model's IR at one of STAGES (transformer, tensorop, buffer, c)."""
    if stage not in STAGES:
        from ckc.cli import CkcError

        raise CkcError(f"unknown stage '{stage}' (expected one of {', '.join(STAGES)})")
    module, _, _ = import_model(path, progress, "f32" if options.weights == "f32" else "keep")
    after = _STAGE_AFTER[stage]
    if after is not None:
        run_passes(module, options, progress=progress, stop_after=after)
    if stage == "buffer" and rolls(options):  # what lower-to-c{roll} lowers: the layers as loops
        from ckc.passes.roll_layers import RollLayers
        from ckc.universe import make_context

        RollLayers().apply(make_context(), module)
    return module


def compile_model(path, out_dir, options: CompileOptions = CompileOptions(), *, quiet: bool = False,
                  out=None, memory_png: bool = False):
    """Compiles the model at `path` into `out_dir` (see ckc/artifacts.py for
    what is written). Returns the artifacts.Artifacts."""
    from ckc import artifacts

    options.check()
    progress = Progress(out=out, quiet=quiet)
    t_all = time.perf_counter()
    module, cfg, weights = import_model(path, progress, "f32" if options.weights == "f32" else "keep")
    src, out_dir = Path(path), Path(out_dir)
    build_kernels(progress, sanitize=options.sanitize, probe=options.simd == "native")
    rec = artifacts.Recorder(out_dir, options, f"{src.name} ({cfg.arch})")
    rec.on_stage("transformer", module)
    run_passes(module, options, progress=progress, before_pass=rec.before_pass, on_stage=rec.on_stage)
    return artifacts.build(module, rec.state, cfg, weights, src, out_dir, options, progress, t_all,
                           pipeline_spec(options), memory_png=memory_png)


def with_options(options: CompileOptions, **kw) -> CompileOptions:
    return replace(options, **kw)
