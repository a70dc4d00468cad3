"""`ckc parity`: the whole run (compile a record build, drive it, capture the
reference, compare, report)."""

from __future__ import annotations

from pathlib import Path

from ckc.errors import CkcError

AGAINST = ("transformers", "llama.cpp", "ir")
MODES = ("prefill", "decode", "train")
DEFAULT_PROMPT = "The capital of France is"


def record_build(path: Path, options, out_dir: Path | None = None, quiet: bool = True) -> Path:
    """The record build's artifact directory: cached like `ckc run` for the
    standard pipeline, compiled into out_dir/build for a custom one (its
    plugin passes are not covered by the cache key)."""
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import compile_model, with_options

    options = with_options(options, record=True)
    options.check()
    if not options.pipeline:
        return compiled_dir(path, options, quiet=quiet)
    from xdsl.utils.exceptions import DiagnosticException

    d = Path(out_dir or "parity") / "build"
    try:
        compile_model(path, d, options, quiet=quiet)
    except (DiagnosticException, ValueError) as e:  # a pass of the custom pipeline refused the IR
        raise CkcError(f"--pipeline: {str(e).strip().splitlines()[0]}") from None
    return d


def prompt_ids(path: Path, prompt: str) -> list[int]:
    from ckc.commands.run import load_tokenizer

    if not prompt:
        raise CkcError("empty prompt: --prompt needs at least one character")
    ids = list(load_tokenizer(path).encode(prompt, add_special=True))
    if not ids:
        raise CkcError("empty prompt: it encodes to no tokens")
    return ids


def reference(against: str, path: Path, kv_type: str = "f32"):
    if against == "ir":
        from ckc.parity.ref_ir import IRReference

        return IRReference.load(path, kv_type)  # the same KV cache type: its kv_write rounds as the kernel
    if against == "transformers":
        from ckc.parity.ref_hf import HFReference

        return HFReference.load(path)
    if against == "llama.cpp":
        from ckc.parity.ref_llamacpp import LlamaCppReference

        return LlamaCppReference.load(path)
    raise CkcError(f"--against must be one of {', '.join(AGAINST)}, got '{against}'")


def _train(path: Path, ids: list[int], threads: int) -> dict:
    from ckc.parity.train import TOLERANCE, train_parity

    t = train_parity(path, ids, threads=threads)
    rows = t["rows"]
    fd = None
    if t["first"] is not None:
        row = t["first"].pop("row")
        fd = {**row.as_dict(), **t["first"], "tolerance": row.tol}
    return {
        "ckc_parity": 1, "model": str(path), "against": "torch autograd (transformers)", "mode": "train",
        "prompt_tokens": len(ids), "steps": 0, "tokens": ids, "artifacts": t["artifacts"], "simd": t["simd"],
        "pipeline": "ckc.train.compile_child.training_passes + lower-to-c{record=true}",
        "loss": t["loss"], "torch_loss": t["torch_loss"],
        "tolerances": {"every value and gradient": TOLERANCE},
        "runs": [{"function": "train_step", "n": len(ids) - 1, "pos": 0}],
        "rows": [r.as_dict() for r in rows],
        "summary": {"ok": sum(r.status == "OK" for r in rows), "diverged": sum(r.status == "DIVERGED" for r in rows),
                    "no_counterpart": sum(r.status == "no counterpart" for r in rows)},
        "first_divergence": fd,
    }


def parity(path, against: str = "transformers", *, prompt: str = DEFAULT_PROMPT, tokens: int = 4,
           mode: str = "prefill", options=None, threads: int = 1, out_dir=None, quiet: bool = True,
           ids: list[int] | None = None) -> dict:
    """Compares every kernel call's outputs with the reference; the parity.json content."""
    from ckc.parity.compare import TOLERANCE, compare, tolerance
    from ckc.parity.record import Recorder, drive, load_table
    from ckc.pipeline import CompileOptions, pipeline_spec, with_options
    from ckc.session import Session

    path = Path(path)
    if against not in AGAINST:
        raise CkcError(f"--against must be one of {', '.join(AGAINST)}, got '{against}'")
    if mode not in MODES:
        raise CkcError(f"--mode must be one of {', '.join(MODES)}, got '{mode}'")
    if tokens <= 0:
        raise CkcError(f"--tokens must be positive, got {tokens}")
    ids = list(ids) if ids is not None else prompt_ids(path, prompt)
    if mode == "train":
        if against != "transformers":
            raise CkcError("--mode train compares with torch autograd: use --against transformers")
        if options is not None and (options.pipeline or not options.fuse or not options.pack_weights):
            raise CkcError("--mode train compiles ckc's training pipeline (no --pipeline, --no-fuse, --no-pack-weights)")
        return _train(path, ids, threads)
    ref = reference(against, path, (options or CompileOptions()).kv_type)  # first: a model the reference cannot take fails before compiling
    d = record_build(path, options or CompileOptions(), out_dir, quiet)
    table_ = load_table(d)
    with Session(d, threads=threads) as s:
        if len(ids) + (tokens if mode == "decode" else 0) > s.context:
            raise CkcError(f"{len(ids)} prompt tokens + {tokens} steps exceed the context of {s.context}")
        rec = Recorder(s.library_path, table_)
        try:
            runs, seq = drive(s, rec, ids, mode, tokens)
        finally:
            rec.close()
        info = s.info
    captures = ref.capture(runs, seq) if getattr(ref, "full_sequence", False) else ref.capture(runs)
    rows, first = compare(runs, captures, ref.mapping, against, getattr(ref, "loosen", None))
    kinds = sorted({r.kernel for r in rows})
    tols = {k: tolerance(k, against) for k in kinds}
    tols = {k: v for k, v in tols.items() if v != TOLERANCE["default"]} | {"other ops": TOLERANCE["default"]}
    if any(r.min_cos is not None for r in rows):
        from ckc.parity.compare import QUANTIZED_MIN_COS

        types = ", ".join(sorted(set(getattr(ref, "quantized", {}).values()))) or "quantized"
        tols[f"from the first op on {types} weights on: cos >="] = QUANTIZED_MIN_COS
    out_rows = [r.as_dict() for r in rows]
    fd = None
    if first is not None:
        row = first.pop("row")
        fd = {**row.as_dict(), **first, "tolerance": row.tol, "criterion": row.criterion}
    return {
        "ckc_parity": 1,
        "model": str(path),
        "against": against,
        "mode": mode,
        "prompt_tokens": len(ids),
        "steps": tokens if mode == "decode" else 0,
        "tokens": seq,
        "artifacts": str(d),
        "simd": info["simd"],
        "pipeline": pipeline_spec(with_options(options or CompileOptions(), record=True)),
        "tolerances": tols,
        "runs": [{"function": r.function, "n": r.n, "pos": r.pos} for r in runs],
        "rows": out_rows,
        "summary": {"ok": sum(r.status == "OK" for r in rows), "diverged": sum(r.status == "DIVERGED" for r in rows),
                    "no_counterpart": sum(r.status == "no counterpart" for r in rows)},
        "first_divergence": fd,
    }
