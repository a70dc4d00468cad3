"""`roll-layers`: the unrolled per-layer calls of a planned buffer module
become one ``buffer.loop`` over the layers.

`bufferize` emits every layer's calls one after the other, each layer on its
own buffers (``@blk.3.attn_q.weight``, ``@blk.3.k_cache``, ``@l3_q_rot``), and
`plan-memory` gives each of them an offset. This pass runs after those (and
after `select-simd`), so it changes no offset, no variant and no kernel
argument: it only finds runs of layers whose calls are the same but for the
buffers they name, and writes each run once, inside a loop, with a
``buffer.layers`` table per buffer operand that differs between layers:

    buffer.layers @attn_norm.weight = [@blk.0.attn_norm.weight, @blk.1.attn_norm.weight]
    buffer.layers @q_rot = [@l0_q_rot, @l1_q_rot]
    buffer.loop %l = 0 to 2 {
      buffer.call rmsnorm<avx2> ins(@x, @attn_norm.weight[%l]) outs(@q_rot[%l]) params(...)
    }

Iteration ``l`` of the loop makes exactly the calls the ``l``-th layer of the
run made, in the same order, on the same buffers, so the generated C computes
the same bits (tests/test_roll_layers.py compares logits bit for bit). Which
layer a call belongs to is read from the names `bufferize` gives
(``lN_``, ``d_lN_``, ``blk.N.``, ``grad.blk.N.``: the outputs', else the
weights' it reads); a call naming no layer between two calls of one layer
belongs to it. A run is two or more consecutive layers (ascending, or
descending as in a backward pass) whose call sequences match: same kernels,
variants, params (static values equal, dynamic ones the same SSA values) and,
operand by operand, buffers of the same type, region and layout. Layers that
differ (Gemma 3's global layer among sliding-window ones) end a run and stay
unrolled; several runs give several loops. A loop whose iteration ``l`` is not
layer ``l`` says which layer it is: ``{ckc.first_layer = F, ckc.layer_step = S}``
(iteration ``l`` is layer ``F + S * l``).

Option ``enabled`` (default true): ``roll-layers{enabled=false}`` leaves the
module as it is (the unrolled reference the tests compare against).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass

from ckc.dialects import buffer as B

_LAYER = (re.compile(r"^l(\d+)_"), re.compile(r"^d_l(\d+)_"), re.compile(r"^(?:grad\.)?blk\.(\d+)\."))
_PREFIX = re.compile(r"^(d_|grad\.)?(?:l\d+_|blk\.\d+\.)")


def layer_of(name: str) -> int | None:
    """The layer a buffer name belongs to (``l3_q_rot``, ``d_l3_x``, ``blk.3.k_cache``), or None."""
    for r in _LAYER:
        m = r.match(name)
        if m:
            return int(m.group(1))
    return None


def call_layer(call: B.CallOp) -> int | None:
    """The layer of a call: its outputs' names, else the layer weights (and
    their gradients) it reads; not an input activation's (the final norm
    reads the last layer's residual)."""
    for ref in call.out_refs:
        if (t := layer_of(ref.buffer_name)) is not None:
            return t
    for ref in call.in_refs:
        if ref.buffer_name.startswith(("blk.", "grad.blk.")) and (t := layer_of(ref.buffer_name)) is not None:
            return t
    return None


def _ref_key(call: B.CallOp, name: str) -> tuple:
    b = B.lookup_buffer(call, name)
    if b is None or b.layers is not None:
        return ("?", name)  # unknown or layered: only the same name matches
    return (str(b.type), b.region.data, b.layout.data if b.layout is not None else None)


def _signature(call: B.CallOp) -> tuple:
    """What must be equal for two calls to be one call in a loop (buffer names aside)."""
    return (
        call.kernel.data,
        call.variant.data if call.variant is not None else None,
        tuple((k, str(v)) for k, v in call.params.data.items()),
        tuple(n.data for n in call.dyn_names.data),
        tuple(id(v) for v in call.dyn_params),
        tuple(_ref_key(call, r.buffer_name) for r in call.in_refs),
        tuple(_ref_key(call, r.buffer_name) for r in call.out_refs),
        tuple(sorted((k, str(v)) for k, v in call.attributes.items())),
    )


@dataclass
class _Segment:
    layer: int | None        # None: a call naming no layer, or a barrier (another op)
    calls: list[B.CallOp]


def _segments(block: Block) -> list[_Segment]:
    """The block's calls in layer segments; anything a loop cannot take
    (another op, a call already indexed) is a segment of layer None."""
    # (layer, call) per call; None calls are barriers unless sandwiched in one layer
    items: list[tuple[int | None, B.CallOp | None]] = []
    for op in block.ops:
        if isinstance(op, (B.BufferOp, B.LayersOp)):
            continue
        if isinstance(op, B.CallOp) and op.layer is None:
            items.append((call_layer(op), op))
        else:
            items.append((None, None))  # barrier
    tags = [t for t, _ in items]
    for i, (t, c) in enumerate(items):
        if t is not None or c is None:
            continue
        prev = next((tags[j] for j in range(i - 1, -1, -1) if tags[j] is not None or items[j][1] is None), None)
        nxt = next((tags[j] for j in range(i + 1, len(items)) if tags[j] is not None or items[j][1] is None), None)
        if prev is not None and prev == nxt:
            tags[i] = prev
    segs: list[_Segment] = []
    for t, (_, c) in zip(tags, items):
        if t is not None and c is not None and segs and segs[-1].layer == t:
            segs[-1].calls.append(c)
        else:
            segs.append(_Segment(t, [c] if c is not None else []))
    return segs


def _shape(seg: _Segment) -> tuple:
    return tuple(_signature(c) for c in seg.calls)


def _runs(segs: list[_Segment]) -> list[list[_Segment]]:
    """Maximal runs of >= 2 consecutive layer segments (layer +1 or -1 each
    step) with equal shapes."""
    runs: list[list[_Segment]] = []
    shapes = [_shape(s) if s.layer is not None else None for s in segs]
    i = 0
    while i < len(segs):
        s = segs[i]
        if s.layer is None or i + 1 >= len(segs) or segs[i + 1].layer is None:
            i += 1
            continue
        step = segs[i + 1].layer - s.layer
        if step not in (1, -1):
            i += 1
            continue
        j = i + 1
        while j < len(segs) and segs[j].layer == s.layer + step * (j - i) and shapes[j] == shapes[i]:
            j += 1
        if j - i >= 2:
            runs.append(segs[i:j])
            i = j
        else:
            i += 1
    return runs


def _group_name(names: list[str], taken: set[str]) -> str:
    """A table's name: its last member's without the layer prefix (``_in`` added
    where the members name different values, as a layer's input: the embedding,
    then each layer's output), made unique."""
    labels = {_PREFIX.sub(lambda m: m.group(1) or "", n) for n in names}
    base = _PREFIX.sub(lambda m: m.group(1) or "", names[-1])
    if len(labels) > 1:
        base += "_in"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}.{k}"
    taken.add(name)
    return name


def _taken_names(module: ModuleOp, f: func.FuncOp) -> set[str]:
    names = {o.sym_name.data for o in module.ops if isinstance(o, B.BufferOp)}
    names |= {o.sym_name.data for o in f.body.block.ops if isinstance(o, (B.BufferOp, B.LayersOp))}
    return names


def _roll(module: ModuleOp, f: func.FuncOp, run: list[_Segment], taken: set[str],
          groups: dict[tuple[str, ...], str]) -> None:
    block = f.body.block
    first = run[0].calls[0]
    loop = B.LoopOp(0, len(run))
    loop.index.name_hint = "l"
    l0, step = run[0].layer, run[1].layer - run[0].layer
    if (l0, step) != (0, 1):
        loop.attributes["ckc.first_layer"] = IntegerAttr(l0, i64)
        loop.attributes["ckc.layer_step"] = IntegerAttr(step, i64)
    new_groups: list[B.LayersOp] = []

    def ref(p: int, side: str, r: int, proto: B.BufRefAttr):
        names = [getattr(seg.calls[p], side)[r].buffer_name for seg in run]
        if all(n == names[0] for n in names):
            return proto.buffer_name
        key = tuple(names)
        if key not in groups:
            groups[key] = _group_name(names, taken)
            new_groups.append(B.LayersOp(groups[key], names))
        return (groups[key], True)

    for p, call in enumerate(run[0].calls):
        ins = [ref(p, "in_refs", r, x) for r, x in enumerate(call.in_refs)]
        outs = [ref(p, "out_refs", r, x) for r, x in enumerate(call.out_refs)]
        params: dict = dict(call.params.data)
        params.update({n.data: v for n, v in zip(call.dyn_names.data, call.dyn_params)})
        indexed = any(isinstance(x, tuple) for x in ins + outs)
        new = B.CallOp(call.kernel.data, ins, outs, params,
                       call.variant.data if call.variant is not None else None,
                       loop.index if indexed else None)
        new.attributes |= dict(call.attributes)
        loop.body.block.add_op(new)
    block.insert_ops_before([*new_groups, loop], first)
    for seg in run:
        for c in seg.calls:
            block.erase_op(c)


@dataclass(frozen=True)
class RollLayers(ModulePass):
    """Repeated per-layer calls -> buffer.loop over buffer.layers tables (see the module docstring)."""

    name = "roll-layers"

    enabled: bool = True
    """false: leave the module unrolled (the reference rolled code is compared with)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.enabled:
            return
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if not f.body.blocks:
                continue
            taken = _taken_names(op, f)
            groups: dict[tuple[str, ...], str] = {}
            for run in _runs(_segments(f.body.block)):
                _roll(op, f, run, taken, groups)
