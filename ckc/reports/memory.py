"""memory.txt: the memory plan of a compiled model, for a person to read.

Made from the IR after plan-memory: every arena and region, every buffer
(offset, size, lifetime), totals per region, and for each function its
activation peak next to the live-set bound (the largest total size of
buffers live at the same call), the number a perfect packing could reach.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from ckc.dialects import quant
from ckc.dialects.buffer import ArenaOp, BufferOp, covers
from ckc.passes.plan_memory import call_sequence


@dataclass(frozen=True)
class FunctionPlan:
    name: str
    calls: int
    peak: int          # bytes spanned by the function's local buffers
    bound: int         # largest sum of simultaneously live local buffers
    buffers: int


def human(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def live_set_bound(bufs: list[BufferOp], ncalls: int) -> int:
    """Largest total footprint of buffers live at one call index."""
    if not bufs:
        return 0
    delta = defaultdict(int)
    for b in bufs:
        first, last = b.live or (0, max(ncalls - 1, 0))
        delta[first] += b.footprint
        delta[last + 1] -= b.footprint
    best = cur = 0
    for i in sorted(delta):
        cur += delta[i]
        best = max(best, cur)
    return best


def function_plans(module: ModuleOp) -> list[FunctionPlan]:
    out = []
    for f in module.ops:
        if not isinstance(f, func.FuncOp) or not f.body.blocks:
            continue
        bufs = [b for b in f.body.block.ops if isinstance(b, BufferOp) and b.offset is not None]
        ncalls = len(call_sequence(f))
        if bufs:
            lo = min(b.offset.data for b in bufs)
            hi = max(b.offset.data + b.footprint for b in bufs)
            peak = hi - lo
        else:
            peak = 0
        out.append(FunctionPlan(f.sym_name.data, ncalls, peak, live_set_bound(bufs, ncalls), len(bufs)))
    return out


def _buffer_line(b: BufferOp) -> str:
    live = f"{b.live[0]}-{b.live[1]}" if b.live else "program"
    layers = f" x{b.num_layers} stride {b.stride.data}" if b.layers is not None else ""
    off = f"{b.offset.data:,}" if b.offset is not None else "caller"
    layout = f" (prepacked {b.layout.data})" if b.layout is not None else ""
    fmt = quant.format_name(b.type.element_type)
    if b.region.data == "weights" and fmt not in (None, "f32"):   # bytes are the weight's stored format
        layout = f" [{fmt}]" + layout
    span = covers(b)
    alias = f" (alias of @{span[0]} .. @{span[1]}: no bytes of its own)" if span else ""
    return f"  {b.region.data:<12} {off:>14} {b.footprint:>14,}  {live:<10} {b.buffer_name}{layers}{layout}{alias}"


def _parallel_blocks(module: ModuleOp) -> list[str]:
    """Training: the optimizer's flat blocks (alias buffers), one line per
    group, with where each of its parallel blocks starts."""
    aliases = [b for b in module.ops if isinstance(b, BufferOp) and covers(b) and b.offset is not None]
    if not aliases:
        return []
    lines = ["## Optimizer blocks (weights, grads, adam_m, adam_v laid out in parallel, llm.c style)"]
    for b in aliases:
        first, last = covers(b)
        lines.append(f"  {b.buffer_name:<20} {b.region.data:<8} offset {b.offset.data:>14,}  "
                     f"{b.size.data // 4:>12,} floats  @{first} .. @{last}")
    lines.append("")
    return lines


def kv_slot_lines(module: ModuleOp) -> list[str]:
    """With KV-cache slots (``@decode_batch``): each slot's byte range in every
    cache buffer (slot s = rows ``s*context ..`` of ``[slots*context, W]``) and
    the KV bytes one slot costs."""
    from xdsl.dialects.builtin import IntegerAttr

    caches = [b for b in module.ops if isinstance(b, BufferOp) and b.region.data == "kv_cache"
              and isinstance(b.attributes.get("slots"), IntegerAttr)]
    if not caches:
        return []
    n = caches[0].attributes["slots"].value.data
    per_slot = sum(b.size.data // n for b in caches)
    lines = [f"## KV cache slots: {n} slots x {per_slot:,} bytes ({human(per_slot)}) "
             f"= {n * per_slot:,} bytes",
             f"  {'slot':<6} {'buffer':<28} {'offset':>14} {'bytes':>14}  rows"]
    for b in caches:
        rows = b.type.get_shape()[0] // n
        size = b.size.data // n
        for s in range(n):
            off = f"{b.offset.data + s * size:,}" if b.offset is not None else "-"
            lines.append(f"  {s:<6} {b.buffer_name:<28} {off:>14} {size:>14,}  {s * rows}..{(s + 1) * rows - 1}")
    lines.append("")
    return lines


def memory_report(module: ModuleOp, title: str = "") -> str:
    """The text of memory.txt for a planned buffer-dialect module."""
    lines = [f"# ckc memory plan{': ' + title if title else ''}", ""]
    arenas = [a for a in module.ops if isinstance(a, ArenaOp)]
    if not arenas:
        return "\n".join(lines + ["(not planned: run plan-memory first)", ""])

    lines.append("## Arenas")
    for a in arenas:
        lines.append(f"arena @{a.sym_name.data}: {a.size.data:,} bytes ({human(a.size.data)}), "
                     f"align {a.alignment.data}")
        for r in a.arena_regions.data:
            lines.append(f"  region {r.kind.data:<12} offset {r.offset.data:>14,}  "
                         f"size {r.size.data:>14,} ({human(r.size.data)})")
        if a.canary_offsets:
            lines.append(f"  canaries at {', '.join(f'{c:,}' for c in a.canary_offsets)}")
    lines.append("")

    header = f"  {'region':<12} {'offset':>14} {'bytes':>14}  {'live':<10} name"
    lines.append("## Module buffers (live for the whole program)")
    lines.append(header)
    totals: dict[str, int] = defaultdict(int)
    for b in module.ops:
        if isinstance(b, BufferOp):
            lines.append(_buffer_line(b))
            if covers(b) is None:
                totals[b.region.data] += b.footprint
    lines.append("")
    lines += _parallel_blocks(module)

    lines += kv_slot_lines(module)

    plans = {p.name: p for p in function_plans(module)}
    for f in module.ops:
        if not isinstance(f, func.FuncOp) or not f.body.blocks:
            continue
        p = plans[f.sym_name.data]
        lines.append(f"## Function @{p.name}: {p.calls} kernel calls, {p.buffers} local buffers")
        lines.append(header)
        for b in f.body.block.ops:
            if isinstance(b, BufferOp):
                lines.append(_buffer_line(b))
        ratio = f"{p.peak / p.bound:.3f}" if p.bound else "-"
        lines.append(f"  activation peak {p.peak:,} bytes ({human(p.peak)}); live-set bound "
                     f"{p.bound:,} bytes ({human(p.bound)}); peak/bound {ratio}")
        lines.append("")

    lines.append("## Totals per region")
    for a in arenas:
        for r in a.arena_regions.data:
            kind = r.kind.data
            module_bytes = totals.get(kind, 0)
            lines.append(f"  {kind:<12} region {r.size.data:>14,} bytes ({human(r.size.data)}); "
                         f"module buffers {module_bytes:,}")
    total = sum(a.size.data for a in arenas)
    lines.append(f"  {'all arenas':<12} {total:>21,} bytes ({human(total)})")
    lines.append("")
    return "\n".join(lines)
