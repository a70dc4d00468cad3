"""memory.png: the memory plan as a picture, one panel per function.

Every buffer local to a function is a rectangle: its lifetime (the call
indices from its first to its last use, as plan-memory computed them) across,
its bytes in the arena up (offset to offset + footprint). Rectangles that
share rows of bytes are buffers whose lifetimes do not overlap reusing the
same memory; the dashed line is the function's activation peak and the dotted
one the live-set bound (the most bytes live at one call), the two numbers
memory.txt prints. Made from the same planned module as memory.txt
(ckc/reports/memory.py), right before lower-to-c.
"""

from __future__ import annotations

from pathlib import Path

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from ckc.atomic import replaced
from ckc.dialects.buffer import BufferOp
from ckc.reports.memory import function_plans, human

MEMORY_PNG = "memory.png"


def plan_data(module: ModuleOp) -> list[dict]:
    """Per function: its name, calls, peak, bound and local buffers
    (name, offset, bytes, first and last call), from a planned module."""
    plans = {p.name: p for p in function_plans(module)}
    out = []
    for f in module.ops:
        if not isinstance(f, func.FuncOp) or not f.body.blocks:
            continue
        p = plans[f.sym_name.data]
        bufs = []
        for b in f.body.block.ops:
            if isinstance(b, BufferOp) and b.offset is not None:
                first, last = b.live or (0, max(p.calls - 1, 0))
                bufs.append({"name": b.buffer_name, "offset": b.offset.data, "bytes": b.footprint,
                             "first": first, "last": last})
        out.append({"function": p.name, "calls": p.calls, "peak": p.peak, "bound": p.bound, "buffers": bufs})
    return out


def plot(data: list[dict], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    panels = [d for d in data if d["buffers"]] or data[:1]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * max(len(panels), 1)), dpi=100, squeeze=False)
    cmap = plt.get_cmap("tab20")
    for ax, d in zip(axes[:, 0], panels):
        unit, scale = next(((u, s) for u, s in (("MiB", 2**20), ("KiB", 2**10)) if d["peak"] >= 4 * s), ("B", 1))
        base = min((b["offset"] for b in d["buffers"]), default=0)
        for i, b in enumerate(sorted(d["buffers"], key=lambda b: (b["offset"], b["first"]))):
            ax.add_patch(Rectangle((b["first"], (b["offset"] - base) / scale), b["last"] - b["first"] + 1,
                                   b["bytes"] / scale, facecolor=cmap(i % 20), edgecolor="black",
                                   linewidth=0.3, alpha=0.85))
        ax.axhline(d["peak"] / scale, color="red", ls="--", lw=1, label=f"peak {human(d['peak'])}")
        ax.axhline(d["bound"] / scale, color="black", ls=":", lw=1, label=f"live-set bound {human(d['bound'])}")
        ax.set_xlim(0, max(d["calls"], 1))
        ax.set_ylim(0, max(d["peak"], 1) / scale * 1.12)
        ax.set_ylabel(f"{unit} above the region start")
        ax.set_title(f"@{d['function']}: {len(d['buffers'])} buffers over {d['calls']} kernel calls", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("kernel call (lifetime: first to last use)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with replaced(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
