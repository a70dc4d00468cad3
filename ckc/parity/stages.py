"""`ckc parity --stages`: which pass changed what the model computes.

The pipeline (the standard one, or ``--pipeline``) runs pass by pass on the
model's IR in memory; after every pass the IR is run on the same tokens as
the first stage (the one right after ``lower-transformer``): a prefill of the
prompt, and in decode mode the decode steps after it. Tensorop IR runs on
the tensorop reference semantics (ckc/interpreters/tensorop.py); buffer IR
(after ``bufferize``, through ``select-simd``) on ckc/parity/ref_buffer.py,
which gives each kernel call the same semantics through the pointers
lower-to-c would give it. Every named value is compared with the same name
at the baseline (a buffer's value is what its call wrote, a KV cache's the
rows written); a stage whose function outputs (logits, the KV-cache rows)
move beyond the tolerance is where the outputs changed, and the first named
value that moved says where in the model. The C dialect (after
``lower-to-c``) is not evaluated (the record build, ``ckc parity --against
ir``, checks it).
"""

from __future__ import annotations

import time

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from ckc.errors import CkcError
from ckc.parity.compare import TOLERANCE, align, errors
from ckc.parity.record import Run

OUTPUT_TOLERANCE = TOLERANCE["default"]


def _evaluable(module: ModuleOp) -> bool:
    for f in module.ops:
        if isinstance(f, func.FuncOp):
            for op in f.walk():
                if op is f:
                    continue
                if not (op.name.startswith(("tensorop.", "arith.", "func."))):
                    return False
    return any(isinstance(f, func.FuncOp) for f in module.ops)


def _is_buffer(module: ModuleOp) -> bool:
    from ckc.dialects import buffer as B

    return any(isinstance(o, B.ArenaOp) for o in module.ops) or any(
        isinstance(o, B.CallOp) for f in module.ops if isinstance(f, func.FuncOp) for o in f.walk())


def _outputs(keep: dict) -> list[str]:
    return [k for k in keep if k == "logits" or k.endswith(("_k_cache", "_v_cache"))]


def stages(path, ids: list[int], mode: str = "prefill", steps: int = 2, options=None) -> dict:
    from ckc import pipeline
    from ckc.parity import ref_buffer
    from ckc.parity.ref_ir import IRReference
    from ckc.pipeline import CompileOptions
    from ckc.universe import make_context

    options = options or CompileOptions()
    module, _, store = pipeline.import_model(path)
    ctx = make_context()
    plan = [Run("prefill", len(ids), 0, list(ids))]
    base: list[dict] | None = None
    base_pass = None
    rows = []
    first = None
    for i, p in enumerate(pipeline.passes(options)):
        t0 = time.perf_counter()
        try:
            p.apply(ctx, module)
        except Exception as e:  # noqa: BLE001 - a pass's refusal, as one line
            raise CkcError(f"pass {p.name} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        row = {"index": i, "pass": p.name, "seconds": time.perf_counter() - t0, "evaluated": False}
        rows.append(row)
        if _evaluable(module):
            ref = IRReference(module, store)
        elif base is not None and _is_buffer(module):
            why = ref_buffer.evaluable(module)
            if why:
                row["status"] = f"not evaluated ({why})"
                continue
            ref = ref_buffer.BufferReference(module, store)
        else:
            row["status"] = "not evaluated (" + ("C dialect" if not _is_buffer(module) else "no baseline") + ")"
            continue
        if base is None and mode == "decode":  # the decode tokens: greedy at the baseline
            seq = list(ids)
            for _ in range(steps):
                seq.append(int(ref.capture(plan)[-1]["logits"][-1].argmax()))
                plan.append(Run("decode", 1, len(seq) - 1, [seq[-1]]))
        caps = ref.capture(plan)
        row["evaluated"] = True
        if base is None:
            base, base_pass = caps, p.name
            row.update(status="baseline", max_rel=0.0)
            continue
        worst, moved = 0.0, None
        for r, (b, c) in enumerate(zip(base, caps)):
            for name in _outputs(b):
                ref = align(c[name], b[name]) if name in c else None
                if ref is not None:
                    worst = max(worst, errors(c[name], ref)["max_rel"])
            if moved is None:
                for name, v in c.items():
                    ref = align(v, b[name]) if name in b else None
                    if ref is not None:
                        e = errors(v, ref)
                        if e["max_rel"] > OUTPUT_TOLERANCE:
                            moved = {"run": r, "function": plan[r].function, "value": name, **e}
                            break
        row["max_rel"] = worst
        row["status"] = "CHANGED" if worst > OUTPUT_TOLERANCE else "same"
        if moved is not None:
            row["first_changed_value"] = moved
        if worst > OUTPUT_TOLERANCE and first is None:
            first = row
    return {"ckc_parity_stages": 1, "model": str(path), "mode": mode, "prompt_tokens": len(ids),
            "pipeline": pipeline.pipeline_spec(options), "baseline": base_pass, "tolerance": OUTPUT_TOLERANCE,
            "stages": rows, "first_changed": first}


def table(result: dict) -> str:
    lines = [f"ckc parity --stages: {result['model']}, {result['mode']}, {result['prompt_tokens']} prompt tokens",
             f"pipeline: {result['pipeline']}",
             f"each stage's IR run by the reference semantics (tensorop; buffer: per kernel call), compared with the IR after "
             f"{result['baseline']} (outputs: logits and KV-cache rows; tolerance max rel {result['tolerance']:g})",
             "",
             f"{'#':>2} {'pass':<28} {'outputs max rel':>16}  status"]
    for r in result["stages"]:
        mr = f"{r['max_rel']:.2e}" if "max_rel" in r else ""
        extra = ""
        if r.get("first_changed_value"):
            v = r["first_changed_value"]
            extra = f"  (first changed value: %{v['value']} in @{v['function']}, max rel {v['max_rel']:.2e})"
        lines.append(f"{r['index']:>2} {r['pass']:<28} {mr:>16}  {r['status']}{extra}")
    f = result["first_changed"]
    lines.append("")
    if f is None:
        lines.append("no evaluated pass changes the outputs")
    else:
        v = f.get("first_changed_value")
        lines.append(f"first pass that changes the outputs: {f['pass']} (#{f['index']})"
                     + (f", first changed value %{v['value']}" if v else ""))
    return "\n".join(lines) + "\n"
