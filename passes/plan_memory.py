"""plan-memory: give every buffer a byte offset in one bump arena.

    ckc-opt model.mlir -p 'plan-memory{align=64 canaries=true reuse=true}'

Two arenas come out:

- ``@weights``: the ``weights`` region alone. It is the mmapped weight file,
  so weights are laid out one after another in IR order, each aligned, and
  the weight writer uses exactly these offsets.
- ``@arena``: every other region (``kv_cache``, ``grads``, ``adam_m``,
  ``adam_v``, ``opt_state``, ``activations``, ``scratch``) in that order, each region aligned, with an
  8-byte canary word after each region when ``canaries`` is set (the runtime
  checks them in debug runs).

Buffers of kind ``io`` (tokens, logits, targets) get no arena space: they are
the caller's memory, passed to the compute functions as parameters
(lower-to-c), so they keep no offset.

Inside a region, module-level buffers (live for the whole program: KV cache,
io, gradients, optimizer state) come first, one after another. Buffers local
to a function (activations) are then packed above them with lifetime-based
reuse: two buffers may share bytes only if their ``live`` ranges (call indices,
from ``compute_lifetimes``) do not intersect. Placement is greedy by size,
largest first, each at the lowest aligned offset that clashes with no placed
buffer it is live together with; this keeps a function's peak close to its
live-set bound (the largest sum of simultaneously live buffers), which the
memory report (ckc/reports/memory.py) prints next to it. Functions never run
at the same time, so each function's locals reuse the same region and the
region is as large as the largest function's peak. With ``reuse=false`` every
buffer gets bytes of its own (for debugging a suspected aliasing bug).

Training (llm.c style): bufferize orders the trained tensors the same way in
``weights``, ``grads``, ``adam_m`` and ``adam_v``, so each region's module
buffers come out as parallel flat blocks (the same sizes, alignments and
relative offsets). An *alias* buffer (``covers = [@first, @last]``, see
dialects/buffer.py) gets no bytes: it is placed at @first's offset, and its
size must be exactly the span from @first to the end of @last (else an
error), so the optimizer's few kernel calls over those blocks address the
tensors between.

Re-running the pass replans from scratch (offsets and arenas are replaced).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects.buffer import CANARY_BYTES, ArenaOp, BufferOp, CallOp, LoopOp, covers

# Region order inside @arena: long-lived state first, per-call scratch last.
ARENA_ORDER = ("kv_cache", "grads", "adam_m", "adam_v", "opt_state", "activations", "scratch")
WEIGHTS = "weights"
CALLER = "io"  # the caller's memory: never placed


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def place_with_reuse(
    items: list[tuple[str, int, int, tuple[int, int]]], base: int, reuse: bool = True
) -> dict[str, int]:
    """Offsets for (name, footprint, alignment, (first, last)) items at >= base.

    Greedy by size: largest first (ties: earliest first use, then name, so the
    result is deterministic), each at the lowest aligned offset that does not
    overlap any placed item whose lifetime intersects its own.
    """
    order = sorted(items, key=lambda it: (-it[1], it[3][0], it[0]))
    placed: list[tuple[int, int, tuple[int, int]]] = []  # (offset, end, live)
    out: dict[str, int] = {}
    for name, size, align, live in order:
        if reuse:
            busy = sorted(
                (o, e) for o, e, l in placed if not (l[1] < live[0] or live[1] < l[0])
            )
        else:
            busy = sorted((o, e) for o, e, _ in placed)
        off = align_up(base, align)
        for o, e in busy:
            if off + size <= o:
                break
            off = max(off, align_up(e, align))
        out[name] = off
        placed.append((off, off + size, live))
    return out


@dataclass(frozen=True)
class PlanMemory(ModulePass):
    name = "plan-memory"

    align: int = 64
    """Alignment (bytes) of regions and the minimum alignment of every buffer."""

    canaries: bool = True
    """Put an 8-byte canary word after each region of @arena."""

    reuse: bool = True
    """Let function-local buffers with disjoint lifetimes share memory."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.align <= 0 or self.align & (self.align - 1):
            raise DiagnosticException(f"plan-memory: align={self.align} is not a power of two")
        for old in [o for o in op.ops if isinstance(o, ArenaOp)]:
            old.detach()
            old.erase()

        module_bufs: dict[str, list[BufferOp]] = defaultdict(list)
        for b in op.ops:
            if isinstance(b, BufferOp):
                module_bufs[b.region.data].append(b)
        funcs = [f for f in op.ops if isinstance(f, func.FuncOp) and f.body.blocks]
        local_bufs: dict[str, dict[str, list[BufferOp]]] = defaultdict(lambda: defaultdict(list))
        lifetimes: dict[str, dict[str, tuple[int, int]]] = {}
        for f in funcs:
            fname = f.sym_name.data
            spans = compute_lifetimes(f)
            ncalls = len(call_sequence(f))
            lifetimes[fname] = spans
            for b in f.body.block.ops:
                if isinstance(b, BufferOp):
                    # A buffer no call touches is kept live throughout: safe.
                    first, last = spans.get(b.buffer_name, (0, max(ncalls - 1, 0)))
                    b.set_live(first, last)
                    local_bufs[b.region.data][fname].append(b)

        kinds = (set(module_bufs) | set(local_bufs)) - {CALLER}
        unknown = kinds - set(ARENA_ORDER) - {WEIGHTS}
        if unknown:
            raise DiagnosticException(f"plan-memory: unknown region kind(s) {sorted(unknown)}")

        def buf_align(b: BufferOp) -> int:
            return max(self.align, b.alignment.data)

        def place_alias(a: BufferOp, by_name: dict[str, BufferOp]) -> None:
            first, last = covers(a)
            lo, hi = by_name.get(first), by_name.get(last)
            if lo is None or hi is None or covers(lo) or covers(hi):
                err = DiagnosticException(f"plan-memory: alias @{a.buffer_name} covers @{first} .. @{last}, "
                                          f"which are not buffers of region '{a.region.data}'")
                err.op = a
                raise err
            span = hi.offset.data + hi.size.data - lo.offset.data
            if span != a.size.data:
                err = DiagnosticException(
                    f"plan-memory: alias @{a.buffer_name} is {a.size.data} bytes but @{first} .. @{last} span "
                    f"{span} (laid out with align={self.align}; bufferize sizes aliases for 64)")
                err.op = a  # located at the alias (ckc-opt), not at the half-planned module
                raise err
            a.set_offset(lo.offset.data)

        def plan_region(kind: str, start: int) -> int:
            """Place every buffer of `kind` from `start`; returns the region's end."""
            cursor = start
            aliases = []
            for b in module_bufs.get(kind, []):
                if covers(b) is not None:
                    aliases.append(b)
                    continue
                cursor = align_up(cursor, buf_align(b))
                b.set_offset(cursor)
                cursor += b.footprint
            for a in aliases:
                place_alias(a, {b.buffer_name: b for b in module_bufs[kind]})
            locals_base = cursor
            end = cursor
            for fname, bufs in sorted(local_bufs.get(kind, {}).items()):
                items = [(b.buffer_name, b.footprint, buf_align(b), b.live) for b in bufs]
                offsets = place_with_reuse(items, locals_base, self.reuse)
                for b in bufs:
                    b.set_offset(offsets[b.buffer_name])
                    end = max(end, offsets[b.buffer_name] + b.footprint)
            return end

        new_ops: list[ArenaOp] = []
        if WEIGHTS in kinds:
            end = plan_region(WEIGHTS, 0)
            size = max(align_up(end, self.align), self.align)
            new_ops.append(ArenaOp("weights", size, [(WEIGHTS, 0, size)], self.align))

        regions: list[tuple[str, int, int]] = []
        canaries: list[int] = []
        cursor = 0
        for kind in ARENA_ORDER:
            if kind not in kinds:
                continue
            start = align_up(cursor, self.align)
            end = plan_region(kind, start)
            size = max(align_up(end - start, self.align), self.align)
            regions.append((kind, start, size))
            cursor = start + size
            if self.canaries:
                canaries.append(cursor)
                cursor += CANARY_BYTES
        if regions:
            total = align_up(cursor, self.align)
            new_ops.append(ArenaOp("arena", total, regions, self.align, canaries or None))

        # Arenas go first in the module, weights before the rest.
        block = op.body.block
        for arena in reversed(new_ops):
            if block.first_op is None:
                block.add_op(arena)
            else:
                block.insert_op_before(arena, block.first_op)


# Lifetimes and overlaps: the whole-function facts the buffer verifiers leave out


def call_sequence(f: func.FuncOp) -> list[CallOp]:
    """The calls of a function in program order; a call's position in this
    list is its op index for lifetimes."""
    return [op for op in f.walk() if isinstance(op, CallOp)]


def compute_lifetimes(f: func.FuncOp) -> dict[str, tuple[int, int]]:
    """First and last call index using each buffer local to `f`.

    Conservative for loops: a buffer used inside a ``buffer.loop`` is live from
    the loop's first call to its last (values may flow between iterations)."""
    calls = call_sequence(f)
    index = {id(c): i for i, c in enumerate(calls)}
    spans: dict[str, tuple[int, int]] = {}

    def widen(name: str, lo: int, hi: int) -> None:
        if name in spans:
            a, b = spans[name]
            spans[name] = (min(a, lo), max(b, hi))
        else:
            spans[name] = (lo, hi)

    for c in calls:
        i = index[id(c)]
        lo = hi = i
        loop = c.parent_op()
        while isinstance(loop, LoopOp):
            inner = [index[id(x)] for x in loop.walk() if isinstance(x, CallOp)]
            lo, hi = min(lo, *inner), max(hi, *inner)
            loop = loop.parent_op()
        for ref in c.in_refs + c.out_refs:
            widen(ref.buffer_name, lo, hi)
    local = {o.sym_name.data for o in f.body.block.ops if isinstance(o, BufferOp)}
    return {k: v for k, v in spans.items() if k in local}


@dataclass(frozen=True)
class Overlap:
    """Two buffers sharing bytes of one arena while both are live."""

    a: str
    b: str
    scope: str  # "module" or the function name

    def __str__(self) -> str:
        return f"buffers @{self.a} and @{self.b} overlap in memory while both are live ({self.scope})"


def _intervals(b: BufferOp) -> list[tuple[int, int]]:
    off = b.offset.data
    if b.layers is None:
        return [(off, off + b.size.data)]
    return [(off + l * b.stride.data, off + l * b.stride.data + b.size.data) for l in range(b.num_layers)]


def find_overlaps(module: ModuleOp) -> list[Overlap]:
    """Pairs of planned buffers (offset set) that share bytes of the same arena
    while both are live. Module-level buffers are live everywhere; local
    buffers of one function conflict when their lifetimes intersect (or either
    has none); locals of different functions never conflict (functions do not
    run at the same time)."""
    arena_of: dict[str, str] = {}
    for op in module.ops:
        if isinstance(op, ArenaOp):
            for r in op.arena_regions.data:
                arena_of[r.kind.data] = op.sym_name.data
    # aliases span other buffers by design (no bytes of their own)
    top = [op for op in module.ops if isinstance(op, BufferOp) and op.offset is not None and covers(op) is None]
    out: list[Overlap] = []

    def clash(x: BufferOp, y: BufferOp) -> bool:
        if arena_of.get(x.region.data) != arena_of.get(y.region.data):
            return False
        for a0, a1 in _intervals(x):
            for b0, b1 in _intervals(y):
                if a0 < b1 and b0 < a1:
                    return True
        return False

    for i, x in enumerate(top):
        for y in top[i + 1 :]:
            if clash(x, y):
                out.append(Overlap(x.buffer_name, y.buffer_name, "module"))
    for f in module.ops:
        if not isinstance(f, func.FuncOp) or not f.body.blocks:
            continue
        local = [o for o in f.body.block.ops if isinstance(o, BufferOp) and o.offset is not None]
        for i, x in enumerate(local):
            for t in top:
                if clash(x, t):
                    out.append(Overlap(t.buffer_name, x.buffer_name, f.sym_name.data))
            for y in local[i + 1 :]:
                lx, ly = x.live, y.live
                if lx is not None and ly is not None and (lx[1] < ly[0] or ly[1] < lx[0]):
                    continue
                if clash(x, y):
                    out.append(Overlap(x.buffer_name, y.buffer_name, f.sym_name.data))
    return out
