"""What `ckc compile MODEL -o DIR` writes, and how.

DIR/model.c        the generated C (lower-to-c + the C emitter); byte-identical for
                   the same model and options
DIR/model.so       model.c + runtime/library/ckc_runtime.c (runtime/ckc_abi.h), linked against
                   libckernels.a (static: runs without the compiler or the kernel
                   library's .so)
DIR/weights.bump   every weight the model reads, f32 (Linear weights that only
                   Linear layers read: f32p32, prepacked by pack-weights; a GGUF's Linear and
                   embedding weights in the file's own format, byte for byte, or repacked
                   r8 by pack-quant), in the order and at the
                   offsets plan-memory chose for the @weights arena (each tensor's
                   data offset minus the first one's equals its planned offset:
                   bump_layout packs 64-byte aligned tensors back to back, as
                   plan-memory does). The runtime maps it and checks every name,
                   shape and offset against the table compiled into model.so.
                   Compile-time constants (const.* buffers: RoPE scaling tables)
                   are packed like tensors.
DIR/memory.txt     the memory plan (ckc/reports/memory.py): every buffer with its
                   offset, size and lifetime, totals per region, activation peak
                   vs the live-set bound
DIR/memory.png     with memory_png (`ckc compile`; matplotlib costs ~1 s, so the compiles
                   behind `ckc run` and the tests skip it): the same plan as a
                   picture (ckc/reports/memory_plot.py): each
                   function's buffers as lifetime x arena-offset rectangles, its peak
                   and live-set bound
DIR/manifest.json  what was compiled, how, and the file names (ckc/session.py reads
                   "library" and "weights")
DIR/calls.json     profile builds (CompileOptions.profile): every kernel call's FLOPs
                   and bytes moved as expressions of n and pos (ckc/reports/costs.py),
                   in the numbering of ckc_gen_call_names; ckc profile reads it
DIR/record.json    record builds (CompileOptions.record, `ckc parity`): every kernel
                   call with its function, kernel, layer and its outputs' names,
                   shapes and regions, in the numbering of ckc_gen_call_names
DIR/ir/NN-<stage>.mlir  with --dump-ir: the IR after import and after every pass

Every file is written to a temporary name and renamed.

This is the stage after the passes (emit, then build): ckc/pipeline.py runs
the passes with a Recorder watching and hands the C-dialect module to
:func:`build`; nothing here imports the pipeline back.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

from ckc import weights as bump
from ckc.atomic import replaced
from ckc.build import RUNTIME_DIR, RUNTIME_SOURCES, BuildError, cc, cc_atomic  # noqa: F401 - RUNTIME_*: re-exported
from ckc.binding import ABI_VERSION
from ckc.errors import CkcError

MODEL_C = "model.c"
MODEL_SO = "model.so"
WEIGHTS = "weights.bump"
MEMORY = "memory.txt"
MEMORY_PNG = "memory.png"
MANIFEST = "manifest.json"
CALLS = "calls.json"
RECORD = "record.json"
# CompileOptions.sanitize: the flags CMakeLists.txt gives libckernels' CKC_SANITIZE build
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined")


@dataclass
class Artifacts:
    dir: Path
    model_c: Path
    model_so: Path
    weights: Path
    memory: Path
    manifest: Path
    times: dict


def write_atomic(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode()
    with replaced(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


def ir_text(module: ModuleOp) -> str:
    import io

    s = io.StringIO()
    Printer(stream=s).print_op(module)
    return s.getvalue() + "\n"


def weight_plan(module: ModuleOp) -> list[tuple[str, int, tuple[int, ...], object]]:
    """(name, planned offset, shape, const value attr or None) of every weights
    buffer of a planned buffer-dialect module, in offset order."""
    from ckc.dialects import buffer as B

    out = []
    for b in module.ops:
        if isinstance(b, B.BufferOp) and b.region.data == "weights":
            if b.offset is None:
                raise BuildError(f"weight buffer @{b.buffer_name} was not planned")
            out.append((b.buffer_name, b.offset.data, tuple(b.type.get_shape()), b.attributes.get("value")))
    out.sort(key=lambda t: t[1])
    return out


def packed_weights(module: ModuleOp) -> set[str]:
    """Names of the weights buffers pack-weights gave ``layout p32`` (stored f32p32)."""
    from ckc.dialects import buffer as B

    return {b.buffer_name for b in module.ops
            if isinstance(b, B.BufferOp) and b.region.data == "weights" and b.layout is not None}


def weight_formats(module: ModuleOp) -> dict[str, tuple[str, str | None]]:
    """(format, layout) of every weights buffer whose element type is not f32
    (dialects/quant.py names: "q4_1", "f16", ...; layout None or "r8")."""
    from ckc.dialects import buffer as B
    from ckc.dialects import quant

    out = {}
    for b in module.ops:
        if isinstance(b, B.BufferOp) and b.region.data == "weights":
            fmt = quant.format_name(b.type.element_type)
            if fmt not in (None, "f32"):
                out[b.buffer_name] = (fmt, b.layout.data if b.layout is not None else None)
    return out


def qpack_r8(fmt: str, raw: np.ndarray, n: int, k: int) -> np.ndarray:
    """A [n, k] block-format weight's bytes repacked into layout r8 by the kernel
    library's own ck_qpack_<fmt> (ctypes): what ck_qgemm_packed_<fmt> reads."""
    import ctypes

    from ckc import kernels
    from ckc.kernel_abi import QUANT_FORMATS

    lib = kernels.library()
    size_fn = lib.ck_qpacked_size
    size_fn.restype, size_fn.argtypes = ctypes.c_size_t, [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    size = size_fn(QUANT_FORMATS[fmt][0], n, k)
    if size == 0:
        raise BuildError(f"ck_qpacked_size({fmt}, {n}, {k}) is 0: no r8 layout for that shape")
    src = np.ascontiguousarray(raw).reshape(-1)
    out = np.zeros(size, np.uint8)
    pack = getattr(lib, f"ck_qpack_{fmt}")
    pack.restype = None
    pack.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    pack(src.ctypes.data, n, k, out.ctypes.data, None, 1)
    return out


def _stored_bytes(store, name: str, fmt: str, shape, src=None, on_nonfinite=None) -> np.ndarray:
    """The bytes of weight ``name`` in format ``fmt``: the source's stored bytes
    when it holds that format (a GGUF tensor as it is, a view of the mapping),
    else its values converted to ``fmt``."""
    from ckc.dialects import quant

    if hasattr(store, "format") and store.format(name) == fmt:
        raw = store.raw(name)
        want = quant.tensor_bytes(quant.element_type(fmt), shape)
        if raw.size != want:
            raise BuildError(f"tensor '{name}' holds {raw.size} bytes, {fmt} {list(shape)} needs {want}")
        return raw
    # The IR asks for another format than the source holds (quantize-weights /
    # --weights): the source's values (dequantized if stored quantized) are
    # quantized with ggml's reference quantizers (ckc/quantize.py).
    from ckc.quantize import quantize

    return quantize(_checked_f32(store, name, shape, src, on_nonfinite), fmt, name=name).reshape(-1)


def _checked_f32(store, name: str, shape, src, on_nonfinite) -> np.ndarray:
    """Weight ``name`` as contiguous fp32 of the planned ``shape``, its NaN / Inf
    reported to ``on_nonfinite`` (a warning) or raised when that is None."""
    arr = np.ascontiguousarray(store.get(name), dtype=np.float32)
    if tuple(arr.shape) != tuple(shape):
        raise BuildError(f"tensor '{name}' has shape {list(arr.shape)}, the model expects {list(shape)}")
    bad = check_finite(name, arr, src or "model")
    if bad is not None:
        if on_nonfinite is None:
            raise NonFiniteWeightsError(bad + "; pass --allow-nonfinite-weights to compile it anyway")
        on_nonfinite(bad)
    return arr


def _const_array(attr, shape) -> np.ndarray:
    vals = attr.get_values() if hasattr(attr, "get_values") else list(attr.iter_values())
    arr = np.asarray(vals, dtype=np.float32)
    if arr.size == 1 and int(np.prod(shape)) != 1:
        arr = np.full(shape, arr.reshape(-1)[0], dtype=np.float32)
    return arr.reshape(shape)


class NonFiniteWeightsError(CkcError):
    """A weight holds NaN or Inf: compiled, it would turn every logit into NaN."""


def check_finite(name: str, arr: np.ndarray, src) -> str | None:
    """None if every value of ``arr`` is finite, else one line naming the
    tensor, how many NaN / Inf values it holds and where the first one is."""
    ok = np.isfinite(arr)
    if ok.all():
        return None
    nan = int(np.isnan(arr).sum())
    first = np.unravel_index(int(np.argmin(ok)), arr.shape)
    return (f"{src}: tensor '{name}' holds {nan} NaN and {arr.size - int(ok.sum()) - nan} Inf values "
            f"(first at index {list(map(int, first))})")


def write_weights(path: Path, plan, store, packed: set[str] = frozenset(), *, src=None,
                  on_nonfinite=None, formats: dict[str, tuple[str, str | None]] | None = None) -> Path:
    """weights.bump for a weight plan (see module docstring); checks that the
    file's layout matches the planned offsets. Tensors named in ``packed`` are
    stored prepacked (f32p32, the layout gemm_packed reads). Tensors named in
    ``formats`` (:func:`weight_formats`) are stored in that format, their bytes
    copied from the model file as they are (layout r8: repacked by ck_qpack_*);
    nothing is dequantized.

    Every weight is checked for NaN / Inf first: ``on_nonfinite(message)`` is
    called for each bad tensor when given (``--allow-nonfinite-weights``: a
    warning), otherwise the first one raises NonFiniteWeightsError."""
    formats = formats or {}

    def code(name: str) -> int:
        if name in formats:
            return bump.dtype_code(*formats[name])
        return bump.F32P32 if name in packed else bump.F32

    specs = [(name, shape, code(name)) for name, _, shape, _ in plan]
    entries, _ = bump.bump_layout(specs)
    if entries:
        base_file, base_plan = entries[0].offset, plan[0][1]
        for e, (name, off, _, _) in zip(entries, plan):
            if e.offset - base_file != off - base_plan:
                raise BuildError(
                    f"weights layout: tensor '{name}' would be at +{e.offset - base_file} in the .bump file "
                    f"but plan-memory put it at +{off - base_plan}"
                )

    def tensors():
        for name, _, shape, value in plan:
            if value is not None:
                yield name, _const_array(value, shape)
            elif name in formats:
                fmt, layout = formats[name]
                raw = _stored_bytes(store, name, fmt, shape, src, on_nonfinite)
                if layout == "r8":
                    raw = qpack_r8(fmt, raw, shape[0], shape[1])
                yield name, raw, code(name), shape
            else:
                arr = _checked_f32(store, name, shape, src, on_nonfinite)
                yield (name, arr, bump.F32P32) if name in packed else (name, arr)

    return bump.write_bump(path, list(tensors()))


def cc_command(model_c: Path, out: Path, options) -> list[str]:
    from ckc import kernels

    sanitize = getattr(options, "sanitize", False)
    static = kernels.static_library_path(sanitize)
    inc = [f"-I{p}" for p in (*kernels.include_dirs(), RUNTIME_DIR)]
    flags = ["-std=c11", options.opt_level, "-fPIC", "-shared", "-Wall"]
    if sanitize:  # loads only into a process started with the ASan runtime preloaded
        flags += list(SANITIZE_FLAGS)
    if options.debug:
        flags.append("-DCKC_DEBUG")
    if getattr(options, "profile", False):
        flags.append("-DCKC_PROFILE")
    if getattr(options, "record", False):
        flags.append("-DCKC_RECORD")
    return [cc(), *flags, *inc, "-o", str(out), str(model_c), *map(str, RUNTIME_SOURCES), str(static),
            "-lpthread", "-lm"]


def build_so(model_c: Path, out: Path, options) -> Path:
    return cc_atomic(out, lambda tmp: cc_command(model_c, Path(tmp), options), str(out))


class Recorder:
    """Watches the pass pipeline run (``before_pass`` and ``on_stage`` are
    pipeline.run_passes' hooks): writes DIR/ir/NN-<stage>.mlir with
    ``options.dump_ir``, and keeps in ``state`` what the artifacts need from the
    planned buffer module before lower-to-c turns it into C (the memory plan,
    the weight plan, the function names, the calls' costs)."""

    def __init__(self, out_dir: Path, options, title: str):
        self.out_dir, self.options, self.title = out_dir, options, title
        self.state: dict = {}
        self.n = 0
        out_dir.mkdir(parents=True, exist_ok=True)

    def on_stage(self, stage: str, m: ModuleOp) -> None:
        if self.options.dump_ir:
            write_atomic(self.out_dir / "ir" / f"{self.n:02d}-{stage}.mlir", ir_text(m))
        self.n += 1

    def before_pass(self, name: str, m: ModuleOp) -> None:
        from ckc.reports.memory import memory_report
        from ckc.reports.memory_plot import plan_data

        state = self.state
        if name == "lower-to-c":
            state["memory"] = memory_report(m, self.title)
            state["memory_plot"] = plan_data(m)
            state["plan"] = weight_plan(m)
            state["packed"] = packed_weights(m)
            state["formats"] = weight_formats(m)
            state["functions"] = [f.sym_name.data for f in m.ops if isinstance(f, func.FuncOp)]
            if self.options.profile:
                from ckc.reports.costs import call_costs

                state["calls"] = call_costs(m)
            if self.options.record:
                from ckc.parity.calls import call_table

                state["record"] = call_table(m)


def build(module: ModuleOp, state: dict, cfg, store, src: Path, out_dir: Path, options, progress, t_all: float,
          spec: str, memory_png: bool = False) -> Artifacts:
    """Emits and builds every artifact from `module`, the pipeline's output (C
    dialect), and `state`, what a Recorder kept while the passes ran; `spec`
    is the pipeline that ran (for the manifest)."""
    from ckc.emit_c import emit_c
    from ckc.reports.memory_plot import plot as plot_memory

    t0 = time.perf_counter()
    source = emit_c(module)
    model_c = write_atomic(out_dir / MODEL_C, source)
    progress.stage("emit-c", time.perf_counter() - t0, f"{len(source.splitlines())} lines")

    memory = write_atomic(out_dir / MEMORY, state["memory"])
    if memory_png:
        t0 = time.perf_counter()
        plot_memory(state["memory_plot"], out_dir / MEMORY_PNG, f"memory plan: {src.name} ({cfg.arch})")
        progress.stage("memory.png", time.perf_counter() - t0)
    if options.profile:
        write_atomic(out_dir / CALLS, json.dumps({"ckc_calls": 1, "calls": state["calls"]}) + "\n")
    if options.record:
        write_atomic(out_dir / RECORD, json.dumps({"ckc_record": 1, "calls": state["record"]}) + "\n")

    t0 = time.perf_counter()
    def warn(msg: str) -> None:
        print(f"ckc: warning: {msg}", file=progress.out or __import__("sys").stderr, flush=True)

    weights = write_weights(out_dir / WEIGHTS, state["plan"], store, state["packed"], src=src,
                            on_nonfinite=warn if options.allow_nonfinite else None,
                            formats=state.get("formats"))
    progress.stage("weights", time.perf_counter() - t0, f"{weights.stat().st_size / 2**20:.1f} MiB")

    t0 = time.perf_counter()
    so = build_so(model_c, out_dir / MODEL_SO, options)
    progress.stage("cc", time.perf_counter() - t0)

    times = dict(progress.times)
    times["total"] = time.perf_counter() - t_all
    manifest = {
        "ckc_manifest": 1,
        "abi_version": ABI_VERSION,
        "model": str(src),
        "arch": cfg.arch,
        "library": MODEL_SO,
        "weights": WEIGHTS,
        "model_c": MODEL_C,
        "memory": MEMORY,
        **({"memory_png": MEMORY_PNG} if memory_png else {}),
        "options": asdict(options),
        "pipeline": spec,
        "functions": state.get("functions", []),
        "model_c_sha256": hashlib.sha256(source.encode()).hexdigest(),
        **({"calls": CALLS} if options.profile else {}),
        "times_s": {k: round(v, 4) for k, v in times.items()},
    }
    man = write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if not progress.quiet:
        png = f", {MEMORY_PNG}" if memory_png else ""
        print(f"ckc: wrote {out_dir}/{{{MODEL_C}, {MODEL_SO}, {WEIGHTS}, {MEMORY}{png}, {MANIFEST}}} "
              f"in {times['total']:.2f} s", file=progress.out or __import__("sys").stderr)
    return Artifacts(out_dir, model_c, so, weights, memory, man, times)
