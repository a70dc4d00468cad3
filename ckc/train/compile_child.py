"""Builds a training library in a child process: ``python -m ckc.train.compile_child``.

    echo '{"config": {...}, "max_tokens": 64, "batch": 4, "simd": "native", "recompute": "none",
           "optim": {"beta1": 0.9, ...}, "out": ".cache/train/<key>"}' | python -m ckc.train.compile_child

Runs the training pipeline (ckc.pipeline.training_spec: ``lower-transformer{modes=
train_step,eval_loss}`` -> ``autodiff`` -> ``add-optimizer`` (``optim``: its
options) -> ``bufferize`` -> ``plan-memory`` -> ``select-simd`` ->
``lower-to-c``), the C emitter and the C compiler, and writes into ``out``:

- ``memory.txt``  the memory plan (every region -- weights, grads, adam_m,
  adam_v, activations --, the optimizer's parallel blocks, every function's buffers);
- ``consts.npz``  the compile-time constant tensors the runtime's weight table
  holds besides the weights (``const.*``: RoPE scaling tables), by name;
- ``model.c``     the generated C;
- ``record.json`` with ``"record": true`` (``ckc parity --mode train``): the
  call table (ckc/parity/calls.py) of a model.c built with
  ``lower-to-c{record}`` and ``-DCKC_RECORD``;
- ``model.so``    model.c + runtime/library/ckc_runtime.c (the one runtime,
  runtime/ckc_abi.h, as inference libraries), linked against
  libckernels.a; written last (each file to a temporary name, then renamed),
  so its presence means the folder is complete.

Why a child: importing xDSL and building, differentiating and printing the
module of a 124M-parameter model leaves a few hundred MiB in the Python heap
that the interpreter never returns; the training process (ckc.train.ckc_backend)
only loads the finished library. The request arrives as one JSON object on
stdin; success is exit status 0 with nothing on stderr; any failure is exit
status 1 and ONE line on stderr (the pass's, compiler's or loader's own
message), which the parent raises as a CkcTrainError.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from ckc.build import ROOT, RUNTIME_DIR, RUNTIME_FILES, RUNTIME_SOURCES  # noqa: F401 - ROOT, RUNTIME_FILES: re-exported
CC_FLAGS = ("-std=c11", "-O2", "-fPIC", "-shared", "-Wall")


def activation_peak_report(module, batch: int, max_tokens: int, recompute: str) -> str:
    """memory.txt's activation peak: the planned ``activations`` region (both
    functions' activations, saved ones included, overlaid by lifetime) for
    the compiled batch B, sequence length T and recompute policy."""
    from ckc.dialects.buffer import find_region
    from ckc.reports.memory import human

    arena = find_region(module, "activations")
    region = arena.region("activations") if arena is not None else None
    n = region.size.data if region is not None else 0
    rows = batch * max_tokens
    return (f"\n## Activation peak (B={batch} x T={max_tokens} = {rows} rows per call, recompute={recompute})\n"
            f"  activations  {n:>14,} bytes ({human(n)}), {n / rows / 1024:,.1f} KiB per row\n")


def training_passes(max_tokens: int, simd: str = "native", recompute: str = "none", optim: dict | None = None,
                    batch: int = 1):
    """The training pipeline's passes up to select-simd (the planned buffer module);
    ``optim``: add-optimizer's options (ckc_backend.optimizer_options)."""
    from ckc.pipeline import passes, training_spec

    return [p for p in passes(spec=training_spec(max_tokens, simd, recompute, batch=batch, **(optim or {})))
            if p.name != "lower-to-c"]


def build(cfg, max_tokens: int, simd: str, recompute: str, out: Path, *, debug: bool = False,
          sanitize: bool = False, overflow: str = "", record: bool = False, optim: dict | None = None,
          batch: int = 1) -> Path:
    """Write memory.txt, consts.npz, model.c and model.so into ``out``; the
    path of model.so. ``debug``: the arena canaries are checked after every
    kernel call and every step (lower-to-c{debug}, -DCKC_DEBUG); ``sanitize``:
    ASan + UBSan, against libckernels' sanitizer build; ``overflow``: the
    test-only lower-to-c option (a buffer written 8 bytes past its end)."""
    import numpy as np

    from ckc import kernels
    from ckc.artifacts import SANITIZE_FLAGS, _const_array, weight_plan, write_atomic
    from ckc.build import cc, cc_atomic
    from ckc.emit_c import emit_c
    from ckc.importers.to_ir import build_module
    from ckc.pipeline import passes, training_spec
    from ckc.reports.memory import memory_report
    from ckc.universe import make_context

    out.mkdir(parents=True, exist_ok=True)
    module = build_module(cfg, None)
    ctx = make_context()
    # p.apply, not pipeline.apply_pass: a pass's own message is the child's one line
    for p in passes(spec=training_spec(max_tokens, simd, recompute, debug=debug, overflow=overflow,
                                       record=record, batch=batch, **(optim or {}))):
        if p.name == "lower-to-c":  # the planned buffer module, before it becomes C
            shape = f"batch={batch} x max_tokens={max_tokens}" if batch > 1 else f"max_tokens={max_tokens}"
            memory = memory_report(module, f"{cfg.arch} train_step + eval_loss + optimizer_step "
                                           f"({shape}, recompute={recompute})") \
                + activation_peak_report(module, batch, max_tokens, recompute)
            consts = {name: _const_array(value, shape) for name, _, shape, value in weight_plan(module)
                      if value is not None}
            if record:  # ckc parity --mode train: the call table of this record build
                from ckc.parity.calls import call_table

                write_atomic(out / "record.json", json.dumps({"ckc_record": 1, "calls": call_table(module)}) + "\n")
        p.apply(ctx, module)
    source = emit_c(module)
    del module
    write_atomic(out / "memory.txt", memory)
    buf = io.BytesIO()
    np.savez(buf, **consts)
    write_atomic(out / "consts.npz", buf.getvalue())
    model_c = write_atomic(out / "model.c", source)
    static = kernels.static_library_path(sanitize)
    inc = [f"-I{p}" for p in (*kernels.include_dirs(), RUNTIME_DIR)]
    flags = [*CC_FLAGS, *(["-DCKC_DEBUG"] if debug else []), *(SANITIZE_FLAGS if sanitize else []),
             *(["-DCKC_RECORD"] if record else [])]
    so = out / "model.so"
    return cc_atomic(so, lambda tmp: [cc(), *flags, *inc, "-o", tmp, str(model_c), *map(str, RUNTIME_SOURCES), str(static),
                                      "-lpthread", "-lm"], str(so))


def _one_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
    msg = lines[0] if lines else ""
    # ckc's own errors carry their context in the message; anything else gets its type
    known = type(e).__module__.startswith(("ckc", "xdsl")) or isinstance(e, OSError)
    return msg if (msg and known) else f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def main() -> int:
    try:
        from ckc.importers.config import ModelConfig

        req = json.loads(sys.stdin.read())
        cfg = ModelConfig(**req["config"])
        build(cfg, int(req["max_tokens"]), str(req["simd"]), str(req["recompute"]), Path(req["out"]),
              debug=bool(req.get("debug")), sanitize=bool(req.get("sanitize")), overflow=str(req.get("overflow") or ""),
              record=bool(req.get("record", False)), optim=req.get("optim"), batch=int(req.get("batch", 1)))
    except Exception as e:  # one line for the parent, never a traceback
        print(_one_line(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
