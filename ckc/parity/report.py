"""The parity table (text), parity.json and parity.png."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ckc.atomic import replaced
from ckc.parity.calls import op_label


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.2e}" if x else "0"


def table(result: dict) -> str:
    head = (f"ckc parity: {Path(result['model']).name} against {result['against']}, {result['mode']} "
            f"({result['prompt_tokens']} prompt tokens" +
            (f", {result['steps']} decode steps" if result["mode"] == "decode" else "") + "), " f"{result['simd']}")
    if result["mode"] == "train":
        head += f"; loss {result['loss']:.6f} vs torch {result['torch_loss']:.6f}"
    lines = [head,
             "tolerance (max rel = max|x-ref| / max|ref|): " + ", ".join(
                 f"{k} {v:g}" for k, v in result["tolerances"].items()),
             "",
             f"{'fn':<8} {'#':>4} {'op':<28} {'kernel':<22} {'layer':>5} {'shape':<12} "
             f"{'max abs':>9} {'max rel':>9} {'cos':>10}  status"]
    for r in result["rows"]:
        lay = "-" if r["layer"] is None else str(r["layer"])
        shape = "x".join(str(d) for d in r["shape"])
        cos = "nan" if r["cos"] is None or math.isnan(r["cos"]) else f"{r['cos']:.7f}"
        status = r["status"] + (f" ({r['note']})" if r["note"] else "")
        if r["status"] == "no counterpart":
            lines.append(f"{r['function'][:8]:<8} {r['call']:>4} {r['op']:<28} {r['kernel']:<22} {lay:>5} "
                         f"{shape:<12} {'':>9} {'':>9} {'':>10}  {status}")
        else:
            lines.append(f"{r['function'][:8]:<8} {r['call']:>4} {r['op']:<28} {r['kernel']:<22} {lay:>5} "
                         f"{shape:<12} {_num(r['max_abs']):>9} {_num(r['max_rel']):>9} {cos:>10}  {status}")
    s = result["summary"]
    lines.append("")
    lines.append(f"{s['ok']} OK, {s['diverged']} DIVERGED, {s['no_counterpart']} without a counterpart in "
                 f"{result['against']}")
    f = result["first_divergence"]
    if f is None:
        lines.append("no op diverges")
    else:
        lay = "" if f["layer"] is None else f", layer {f['layer']}"
        lines.append(f"first divergence: {f['op']} ({f['kernel']}, @{f['function']} call #{f['call']}{lay}) "
                     f"in run {f['run']} (@{f['function']}, {f['n']} tokens at position {f['pos']}): "
                     f"max rel {_num(f['max_rel'])}, cos {f['cos']:.6f}, outside {f.get('criterion', '')}")
        for i in f["inputs"]:
            if "max_rel" in i:
                crit = f.get("criterion", "")
                ok = (i["cos"] >= float(crit.split()[-1])) if crit.startswith("cos") else i["max_rel"] <= f["tolerance"]
                st = "OK" if ok else "already off"
                lines.append(f"  input {i['name']}: {st} (max rel {_num(i['max_rel'])}), "
                             f"values {_vals(i['values'])} vs reference {_vals(i['reference_values'])}")
            else:
                lines.append(f"  input {i['name']}: {i['kind']}")
    return "\n".join(lines) + "\n"


def _vals(v) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"


def write_json(result: dict, path: Path) -> Path:
    """parity.json: strict JSON (an infinite or NaN error, from a kernel that wrote
    non-finite values, is null)."""
    with replaced(path) as tmp:
        Path(tmp).write_text(json.dumps(_finite(result), indent=1, default=str, allow_nan=False) + "\n")
    return path


def _finite(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _finite(x.item())
    return x


def plot(result: dict, path: Path) -> Path:
    """max rel error of every compared output in execution order, coloured by
    kernel, the tolerances as steps, the layers as bands, the first divergence marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["status"] != "no counterpart"]
    fig, ax = plt.subplots(figsize=(12, 5), dpi=100)
    kinds = sorted({r["kernel"] for r in rows})
    cmap = plt.get_cmap("tab20")
    floor = 1e-12
    for ki, k in enumerate(kinds):
        xs = [i for i, r in enumerate(rows) if r["kernel"] == k]
        ys = [max(rows[i]["max_rel"], floor) if math.isfinite(rows[i]["max_rel"]) else 1e3 for i in xs]
        ax.scatter(xs, ys, s=14, color=cmap(ki % 20), label=k, zorder=3)
    ax.step(range(len(rows)), [r["tolerance"] if r.get("criterion", "").startswith("max rel") else float("nan")
                               for r in rows], where="mid", color="red", lw=1, label="tolerance (max rel)", zorder=2)
    prev = None
    for i, r in enumerate(rows):
        if r["layer"] is not None and r["layer"] != prev and r["layer"] % 2 == 1:
            j = i
            while j < len(rows) and rows[j]["layer"] == r["layer"]:
                j += 1
            ax.axvspan(i - 0.5, j - 0.5, color="0.93", zorder=0)
        prev = r["layer"]
    f = result["first_divergence"]
    if f is not None:
        idx = next((i for i, r in enumerate(rows) if r["call"] == f["call"] and r["out"] == f["out"]
                    and r["function"] == f["function"]), None)
        if idx is not None:
            ax.axvline(idx, color="red", ls="--", lw=1)
            ax.annotate(f"first divergence: {f['op']} (layer {f['layer']})", (idx, ax.get_ylim()[1]),
                        xytext=(4, -14), textcoords="offset points", color="red", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel("kernel call output, in execution order (grey bands: odd layers)")
    ax.set_ylabel("max |x - ref| / max |ref|")
    ax.set_title(f"ckc parity: {Path(result['model']).name} vs {result['against']} ({result['mode']})")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    with replaced(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
