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

Iteration ``l`` of the loop makes exactly the calls the ``l``-th window of
the run made, in the same order, on the same buffers, so the generated C
computes the same bits (test/py/test_roll_layers.py compares logits and
gradients bit for bit). A run is two or more consecutive windows of P calls
that match call by call: same kernels, variants and params (static values
equal, dynamic ones the same SSA values) and, operand by operand, buffers of
the same type, region and layout. The candidate lengths P come from the names
`bufferize` gives (``lN_``, ``d_lN_``, ``blk.N.``, ``grad.blk.N.``): the
distances between the first calls of consecutive layers, give or take two
calls (a backward layer ends writing the gradient of the layer below), and a
run begins where a layer begins (the first call touching another layer's
weights) when one can. Layers that differ (Gemma 3's global layer among
sliding-window ones) end a run and stay unrolled; several runs give several
loops; a forward and a backward pass (layers downwards) give one loop each. A
loop whose iteration ``l`` is not layer ``l`` says which layer it is:
``{ckc.first_layer = F, ckc.layer_step = S}`` (iteration ``l`` is layer
``F + S * l``; S = 0: iterations that are not whole layers, never seen from
bufferize's output but kept correct).

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


def _calls(block: Block) -> list[B.CallOp | None]:
    """The block's calls in order, None for anything a loop cannot take in
    (another op, a call already indexed by a loop); buffer declarations and
    tables are skipped."""
    out: list[B.CallOp | None] = []
    for op in block.ops:
        if isinstance(op, (B.BufferOp, B.LayersOp)):
            continue
        out.append(op if isinstance(op, B.CallOp) and op.layer is None else None)
    return out


def _periods(tags: list[int | None]) -> set[int]:
    """Candidate layer lengths (in calls): the distances between the starts of
    consecutive layers' calls (layer t, then t + 1 or t - 1: forward and
    backward passes; a call of no layer ends one, as the loss between the
    last layer's forward and its backward)."""
    starts: list[tuple[int, int]] = []  # (index, layer) wherever the layer changes
    for i, t in enumerate(tags):
        if t is not None and (not starts or starts[-1][1] != t or tags[i - 1] is None):
            starts.append((i, t))
    found = {j - i for (i, t), (j, u) in zip(starts, starts[1:]) if abs(u - t) == 1}
    # a layer's first or last calls can name the next layer (a backward layer ends writing the
    # gradient of the layer below): the distance is then off by a call or two
    return {d + e for d in found for e in (-2, -1, 0, 1, 2) if d + e > 0}


@dataclass
class _Run:
    start: int       # index into the call list
    period: int      # calls per iteration
    count: int       # iterations (>= 2)


def _runs(sigs: list, periods: set[int], starts: list[bool]) -> list[_Run]:
    """Left to right, the longest repetition (most calls covered) starting at
    each position: `count` >= 2 consecutive windows of `period` calls with
    equal signatures. A window never spans a None (sigs holds a fresh object
    there, equal to nothing). A run found off a layer start (`starts`) gives
    way to one at a layer start within its first window: after a layer that
    differs (Gemma 3's global one), the next layers' calls shifted by one also
    repeat, but the loop should begin where a layer begins."""

    def at(i: int) -> _Run | None:
        best: _Run | None = None
        for p in sorted(periods):
            w = sigs[i:i + p]
            if len(w) < p:
                continue
            k = 1
            while i + (k + 1) * p <= n and sigs[i + k * p:i + (k + 1) * p] == w:
                k += 1
            if k >= 2 and (best is None or k * p > best.count * best.period):
                best = _Run(i, p, k)
        return best

    runs: list[_Run] = []
    n, i = len(sigs), 0
    while i < n:
        best = at(i)
        if best is not None and not starts[i]:
            j = next((j for j in range(i + 1, min(n, i + best.period)) if starts[j] and at(j) is not None), None)
            if j is not None:
                i = j
                continue
        if best is None:
            i += 1
        else:
            runs.append(best)
            i += best.count * best.period
    return runs


def _layer_starts(calls: list[B.CallOp | None]) -> list[bool]:
    """Where a layer begins: the first call reading (or writing the gradient
    of) another layer's weights than the last call that touched weights did
    (a model-level weight, as the final norm's, counts as another)."""
    out: list[bool] = []
    last: object = None
    for c in calls:
        tag: object = None
        if c is not None:
            for ref in c.in_refs + c.out_refs:
                t = layer_of(ref.buffer_name) if ref.buffer_name.startswith(("blk.", "grad.blk.")) else None
                if t is not None:
                    tag = t
                    break
                b = B.lookup_buffer(c, ref.buffer_name)
                if b is not None and b.region.data in ("weights", "grads") and tag is None:
                    tag = "model"
        out.append(tag is not None and tag != last)
        if tag is not None:
            last = tag
    return out


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


def _layers_of(windows: list[list[B.CallOp]]) -> tuple[int, int] | None:
    """(first layer, step) when window j is layer first + step * j by the names
    its calls write (the most common layer among them), else None."""
    found = []
    for w in windows:
        tags = [t for t in map(call_layer, w) if t is not None]
        if not tags:
            return None
        found.append(max(set(tags), key=lambda t: (tags.count(t), -t)))
    step = found[1] - found[0]
    if step not in (1, -1) or any(b - a != step for a, b in zip(found, found[1:])):
        return None
    return found[0], step


def _roll(f: func.FuncOp, windows: list[list[B.CallOp]], taken: set[str],
          groups: dict[tuple[str, ...], str]) -> None:
    block = f.body.block
    first = windows[0][0]
    loop = B.LoopOp(0, len(windows))
    loop.index.name_hint = "l"
    layers = _layers_of(windows)
    if layers is None:  # iterations that are not whole layers: no layer numbers
        layers = (0, 0)
    if layers != (0, 1):
        loop.attributes["ckc.first_layer"] = IntegerAttr(layers[0], i64)
        loop.attributes["ckc.layer_step"] = IntegerAttr(layers[1], i64)
    new_groups: list[B.LayersOp] = []

    def ref(p: int, side: str, r: int):
        names = [getattr(w[p], side)[r].buffer_name for w in windows]
        if all(n == names[0] for n in names):
            return names[0]
        key = tuple(names)
        if key not in groups:
            groups[key] = _group_name(names, taken)
            new_groups.append(B.LayersOp(groups[key], names))
        return (groups[key], True)

    for p, call in enumerate(windows[0]):
        ins = [ref(p, "in_refs", r) for r in range(len(call.in_refs))]
        outs = [ref(p, "out_refs", r) for r in range(len(call.out_refs))]
        params: dict = dict(call.params.data)
        params.update({n.data: v for n, v in zip(call.dyn_names.data, call.dyn_params)})
        indexed = any(isinstance(x, tuple) for x in ins + outs)
        new = B.CallOp(call.kernel.data, ins, outs, params,
                       call.variant.data if call.variant is not None else None,
                       loop.index if indexed else None)
        new.attributes |= dict(call.attributes)
        loop.body.block.add_op(new)
    block.insert_ops_before([*new_groups, loop], first)
    for w in windows:
        for c in w:
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
            calls = _calls(f.body.block)
            sigs = [_signature(c) if c is not None else object() for c in calls]
            periods = _periods([call_layer(c) if c is not None else None for c in calls])
            taken = _taken_names(op, f)
            groups: dict[tuple[str, ...], str] = {}
            for run in _runs(sigs, periods, _layer_starts(calls)):
                windows = [calls[run.start + j * run.period:run.start + (j + 1) * run.period]
                           for j in range(run.count)]
                _roll(f, windows, taken, groups)
