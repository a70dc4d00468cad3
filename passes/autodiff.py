"""`autodiff`: reverse-mode differentiation of ``@train_step`` on the tensorop dialect.

    ckc-opt model.mlir -p 'lower-transformer{modes=train_step},autodiff{recompute=attention}'

Input: ``func.func @train_step(%tokens, %targets) -> tensor<f32>`` made of
tensorop ops (what `lower-transformer` produces: the forward pass and a
`cross_entropy` loss). Output: the same function returning the loss AND the
gradient of every weight it reads:

    func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>)
        -> (tensor<f32>,
            tensor<32x16xf32> {tensorop.grad = "token_embd.weight"},
            tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64},
            ...)

How gradients leave the function
--------------------------------
Result 0 is the loss. Every further result is the gradient of one *weight
unit*: a `tensorop.weight` (tensor name, row offset, shape), in the order the
forward reads them (first use). Its result attributes name it:
``tensorop.grad = "<tensor name>"`` and, when the unit is a row slice of a
stored tensor (GPT-2's fused ``attn_qkv``), ``tensorop.offset = <first row>``.
Bufferize places each gradient in the ``grads`` region buffer of that tensor
(by name) at that row offset, so the slices of a fused tensor fill one
gradient tensor with the stored tensor's shape. Slices of one tensor must not
overlap (checked). Several uses of one weight (tied embeddings: the token
table feeds both `embedding` and the lm_head `matmul`) give one gradient, the
sum of the contributions. A weight the loss does not depend on gets no result
(as PyTorch leaves its `.grad` None).

The backward graph
------------------
Backward ops follow the forward ops in the same block, in reverse order, just
before `func.return`. Each forward op has ONE rule in ``RULES`` (below): the
`*_grad` ops it emits, given the gradient of its result; an op without a rule
is an error naming it (``AutodiffError``, one line), as is the KV-cache form of
`causal_attention`. Where a value has several uses (the residual stream, a
normalized activation feeding q/k/v, a tied embedding) its gradient is the sum
of the contributions, built with `tensorop.accumulate` (in place into the
first contribution; `tensorop.add` when that contribution is shared, e.g. the
pass-through gradient of an `add`). The seed is ``dloss = 1``; the root
`cross_entropy` becomes `cross_entropy_fused` in the forward position, which
yields the loss and ``dlogits`` in one pass, so the logits are never saved.

Saved and recomputed activations
--------------------------------
Option ``recompute`` decides which forward values the backward reads from the
forward pass (saved: live from forward to backward) and which it recomputes
(a clone of the forward op, named ``<name>_re`` and marked
``{autodiff.recomputed}`` so that `cse` does not merge it back into the
forward op, emitted just before its first backward use, from saved values):

- ``none`` (default): nothing is recomputed; every forward value a grad op
  needs is saved.
- ``attention``: the attention outputs (`causal_attention`, needed only by the
  output projection's weight gradient) are recomputed from the saved q, k, v;
  one attention forward per layer buys back a ``[T, heads*head_dim]`` per layer.
- ``all``: activation checkpointing. Only the residual stream (`add`,
  `embedding`) and the fused loss are saved; every other activation of a
  layer is recomputed from them during that layer's backward.

Option ``function`` (default ``train_step``) names the function to
differentiate. Weights, constants and function arguments are never "saved"
(they live elsewhere). Each forward op whose result the backward reads gets the unit
attribute ``autodiff.saved`` (the saved set, visible in the IR), and the
function gets ``autodiff.recompute = "<policy>"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    Float32Type,
    FunctionType,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i64,
)
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects import tensorop as T

RECOMPUTE = ("none", "attention", "all")
GRAD_ATTR = "tensorop.grad"
OFFSET_ATTR = "tensorop.offset"
SAVED_ATTR = "autodiff.saved"
RECOMPUTED_ATTR = "autodiff.recomputed"
POLICY_ATTR = "autodiff.recompute"


class AutodiffError(DiagnosticException):
    """A function autodiff cannot differentiate (one line)."""


def _fail(op: Operation | None, msg: str):
    where = f"'{op.name}' " if op is not None else ""
    raise AutodiffError(f"autodiff: {where}{msg}")


# ============================================================================
# The rule table: ONE entry per forward op
# ============================================================================
#
# A rule is `fn(ad, op, dy) -> grads`: `dy` is the gradient of the op's
# (single) result, `grads` one entry per operand of `op` (in `op.operands`
# order; None where the operand gets no gradient: token ids, positions,
# frequency tables). `ad.fwd(v)` is forward value `v` as the backward reads it
# (saved, or recomputed under the policy), `ad.emit(op)` appends a backward op.
# LEAF marks the parameters (gradients are collected), NONDIFF ops whose
# results carry no gradient (ints, constants).

LEAF = "leaf"
NONDIFF = "nondiff"
Rule = Callable[["_Autodiff", Operation, SSAValue], Sequence[SSAValue | None]]


def _props(op: Operation, *names: str) -> dict:
    p = op.prop_values()
    return {n: p[n] for n in names}


def _matmul(ad, op: T.MatmulOp, dy):
    has_bias = op.bias is not None
    g = ad.emit(T.MatmulGradOp(dy, ad.fwd(op.a), ad.fwd(op.b), has_bias=has_bias,
                               **_props(op, "transpose_a", "transpose_b")))
    return list(g.results)


def _add(ad, op, dy):
    return [dy, dy]


def _mul(ad, op: T.MulOp, dy):
    return list(ad.emit(T.MulGradOp(dy, ad.fwd(op.a), ad.fwd(op.b))).results)


def _scale(ad, op: T.ScaleOp, dy):
    return [ad.emit(T.ScaleOp(dy, op.factor.value.data)).results[0]]


def _rmsnorm(ad, op: T.RMSNormOp, dy):
    g = ad.emit(T.RMSNormGradOp(dy, ad.fwd(op.x), ad.fwd(op.w), **_props(op, "eps", "offset")))
    return [g.dx, g.dw]


def _layernorm(ad, op: T.LayerNormOp, dy):
    g = ad.emit(T.LayerNormGradOp(dy, ad.fwd(op.x), ad.fwd(op.w), **_props(op, "eps", "offset")))
    return [g.dx, g.dw] + ([g.db] if op.bias is not None else [])


def _rope(ad, op: T.RopeOp, dy):
    inv = ad.fwd(op.inv_freq) if op.inv_freq is not None else None
    g = ad.emit(T.RopeGradOp(dy, ad.fwd(op.pos), inv, **_props(
        op, "heads", "head_dim", "theta", "style", "rotary_dim", "seq_len")))
    return [g.result, None] + ([None] if inv is not None else [])


def _softmax(ad, op: T.SoftmaxOp, dy):
    return [ad.emit(T.SoftmaxGradOp(dy, ad.fwd(op.result))).result]


def _attention(ad, op: T.CausalAttentionOp, dy):
    if op.pos is not None:
        _fail(op, "with 'pos' (the KV-cache form) has no gradient; train_step attends without a cache")
    g = ad.emit(T.CausalAttentionGradOp(dy, ad.fwd(op.q), ad.fwd(op.k), ad.fwd(op.v), **_props(
        op, "heads", "kv_heads", "head_dim", "scale", "window", "softcap", "seq_len")))
    return [g.dq, g.dk, g.dv]


def _silu(ad, op, dy):
    return [ad.emit(T.SiluGradOp(dy, ad.fwd(op.x))).result]


def _gelu(ad, op, dy):
    return [ad.emit(T.GeluGradOp(dy, ad.fwd(op.x), **_props(op, "approximate"))).result]


def _softcap(ad, op, dy):
    return [ad.emit(T.SoftcapGradOp(dy, ad.fwd(op.x), **_props(op, "cap"))).result]


def _swiglu(ad, op, dy):
    g = ad.emit(T.SwigluGradOp(dy, ad.fwd(op.gate), ad.fwd(op.up)))
    return [g.dgate, g.dup]


def _geglu(ad, op, dy):
    g = ad.emit(T.GegluGradOp(dy, ad.fwd(op.gate), ad.fwd(op.up), **_props(op, "approximate")))
    return [g.dgate, g.dup]


def _embedding(ad, op: T.EmbeddingOp, dy):
    vocab = op.table.type.get_shape()[0]
    g = ad.emit(T.EmbeddingGradOp(dy, ad.fwd(op.tokens), vocab=vocab, **_props(op, "scale")))
    return [g.result, None]


def _reshape(ad, op: T.ReshapeOp, dy):
    return [ad.emit(T.ReshapeOp(dy, op.x.type)).result]


def _transpose(ad, op: T.TransposeOp, dy):
    return [ad.emit(T.TransposeOp(dy)).result]


def _cross_entropy(ad, op: T.CrossEntropyOp, dy):
    ignore = op.prop_values()["ignore_index"]
    if ad.is_seed(dy) and op.result.has_one_use():
        # the loss itself: loss and dlogits in one pass, in the forward position
        return [ad.fuse_loss(op), None]
    g = ad.emit(T.CrossEntropyGradOp(dy, ad.fwd(op.logits), ad.fwd(op.targets), ignore_index=ignore))
    return [g.result, None]


RULES: dict[str, Rule | str] = {
    T.WeightOp.name: LEAF,
    T.ConstantOp.name: NONDIFF,
    T.ZerosOp.name: NONDIFF,
    T.ZerosLikeOp.name: NONDIFF,
    T.PositionsOp.name: NONDIFF,
    arith.ConstantOp.name: NONDIFF,
    T.MatmulOp.name: _matmul,
    T.AddOp.name: _add,
    T.AccumulateOp.name: _add,
    T.MulOp.name: _mul,
    T.ScaleOp.name: _scale,
    T.RMSNormOp.name: _rmsnorm,
    T.LayerNormOp.name: _layernorm,
    T.RopeOp.name: _rope,
    T.SoftmaxOp.name: _softmax,
    T.CausalAttentionOp.name: _attention,
    T.SiluOp.name: _silu,
    T.GeluOp.name: _gelu,
    T.SoftcapOp.name: _softcap,
    T.SwigluOp.name: _swiglu,
    T.GegluOp.name: _geglu,
    T.EmbeddingOp.name: _embedding,
    T.ReshapeOp.name: _reshape,
    T.TransposeOp.name: _transpose,
    T.CrossEntropyOp.name: _cross_entropy,
}
"""Forward op name -> its gradient rule (or LEAF / NONDIFF). Inference-only
ops (`kv_write`, `last_rows`, `rmsnorm_qkv_rope`) and backward/optimizer ops
have none: meeting them in @train_step is an error."""

# Ops recomputed in the backward under each policy (free ops -- weights,
# constants, arith -- are never saved anyway).
_CHECKPOINTS = {T.AddOp.name, T.AccumulateOp.name, T.EmbeddingOp.name,
                T.CrossEntropyOp.name, T.CrossEntropyFusedOp.name}


def _recomputable(policy: str, op: Operation) -> bool:
    if policy == "attention":
        return isinstance(op, T.CausalAttentionOp)
    if policy == "all":
        rule = RULES.get(op.name)
        return callable(rule) and op.name not in _CHECKPOINTS
    return False


_FREE = (T.WeightOp, T.ConstantOp, T.ZerosOp, arith.ConstantOp)


# ============================================================================
# The transformation
# ============================================================================


def _hint(v: SSAValue) -> str:
    return v.name_hint or "v"


class _Autodiff:
    def __init__(self, fn: func.FuncOp, policy: str):
        self.fn = fn
        self.policy = policy
        self.block = fn.body.block
        ret = self.block.last_op
        if not isinstance(ret, func.ReturnOp):
            _fail(None, f"@{fn.sym_name.data} must end with func.return")
        self.ret = ret
        self.forward: list[Operation] = [op for op in self.block.ops if op is not ret]
        self.fwd_set: set[Operation] = set(self.forward)
        self.backward: list[Operation] = []
        self.recomputed: dict[SSAValue, SSAValue] = {}
        self.seed: SSAValue | None = None
        self.contrib_count: dict[SSAValue, int] = {}

    # -- helpers used by the rules -----------------------------------------

    def emit(self, op: Operation) -> Operation:
        self.backward.append(op)
        return op

    def is_seed(self, v: SSAValue) -> bool:
        return v is self.seed

    def fwd(self, v: SSAValue) -> SSAValue:
        """Forward value `v` as read by the backward: itself (saved, or free)
        or a recomputed clone."""
        owner = v.owner
        if not isinstance(owner, Operation) or owner not in self.fwd_set or isinstance(owner, _FREE):
            return v
        if not _recomputable(self.policy, owner):
            return v
        if v in self.recomputed:
            return self.recomputed[v]
        mapping = {o: self.fwd(o) for o in owner.operands}
        clone = owner.clone(value_mapper=mapping)
        clone.attributes.pop(SAVED_ATTR, None)
        # marked, so that cse does not merge it back into the forward op
        clone.attributes[RECOMPUTED_ATTR] = UnitAttr()
        self.emit(clone)
        for r_old, r_new in zip(owner.results, clone.results):
            r_new.name_hint = _hint(r_old) + "_re"
            self.recomputed[r_old] = r_new
        return self.recomputed[v]

    def fuse_loss(self, op: T.CrossEntropyOp) -> SSAValue:
        fused = T.CrossEntropyFusedOp(op.logits, op.targets, ignore_index=op.prop_values()["ignore_index"])
        fused.loss.name_hint = _hint(op.result)
        fused.dlogits.name_hint = "d_" + _hint(op.logits)
        self.block.insert_op_before(fused, op)
        op.result.replace_all_uses_with(fused.loss)
        self.forward[self.forward.index(op)] = fused
        self.fwd_set.discard(op)
        self.fwd_set.add(fused)
        op.detach()
        op.erase()
        return fused.dlogits

    # -- sums of contributions ---------------------------------------------

    def total(self, v: SSAValue, parts: list[SSAValue]) -> SSAValue:
        if len(parts) == 1:
            return parts[0]
        # accumulate in place into a contribution nobody else reads
        private = [p for p in parts if self.contrib_count.get(p, 0) == 1
                   and not isinstance(p.owner, _FREE)]
        if private:
            acc = private[0]
            rest = [p for p in parts if p is not acc] if parts.count(acc) == 1 else parts[1:]
        else:
            acc = self.emit(T.AddOp(parts[0], parts[1])).result
            rest = parts[2:]
        for p in rest:
            acc = self.emit(T.AccumulateOp(acc, p)).result
            acc.name_hint = "d_" + _hint(v)
        return acc

    # -- main ---------------------------------------------------------------

    def run(self) -> None:
        fn = self.fn
        if len(self.ret.arguments) != 1:
            _fail(None, f"@{fn.sym_name.data} must return exactly the loss (got {len(self.ret.arguments)} "
                        "results; already differentiated?)")
        loss = self.ret.arguments[0]
        if not (isinstance(loss.type, TensorType) and loss.type.get_shape() == ()
                and isinstance(loss.type.element_type, Float32Type)):
            _fail(None, f"@{fn.sym_name.data} must return a scalar loss tensor<f32>, got {loss.type}")
        for op in self.forward:
            if op.name not in RULES:
                _fail(op, f"in @{fn.sym_name.data} has no gradient rule (inference-only and "
                          "backward ops cannot be differentiated)")

        # values that depend on a weight (only those carry gradients)
        active: set[SSAValue] = set()
        for op in self.forward:
            rule = RULES[op.name]
            if rule == LEAF or (callable(rule) and any(o in active for o in op.operands)):
                active.update(op.results)
        if loss not in active:
            _fail(None, "the loss does not depend on any weight")

        seed = T.ConstantOp.splat(1.0, TensorType(f32, []))
        seed.result.name_hint = "d_loss"
        self.emit(seed)
        self.seed = seed.result
        parts: dict[SSAValue, list[SSAValue]] = {loss: [self.seed]}
        self.contrib_count[self.seed] = 1

        weight_grads: list[tuple[T.WeightOp, SSAValue]] = []
        for op in reversed(list(self.forward)):
            rule = RULES[op.name]
            if rule == NONDIFF or not any(r in parts for r in op.results):
                continue
            (res,) = op.results
            dy = self.total(res, parts.pop(res))
            if rule == LEAF:
                weight_grads.append((op, dy))
                continue
            grads = rule(self, op, dy)
            operands = list(op.operands)
            if len(grads) != len(operands):
                _fail(op, f"gradient rule gave {len(grads)} gradients for {len(operands)} operands")
            for o, g in zip(operands, grads):
                if g is None or o not in active:
                    continue
                if not g.name_hint:
                    g.name_hint = "d_" + _hint(o)
                parts.setdefault(o, []).append(g)
                self.contrib_count[g] = self.contrib_count.get(g, 0) + 1

        # one gradient per weight unit (name, offset), in forward order
        units: dict[tuple[str, int], tuple[TensorType, SSAValue, list[SSAValue]]] = {}
        for wop, g in reversed(weight_grads):
            key = (wop.tensor_name.data, wop.offset.value.data)
            if key in units and units[key][0] != wop.result.type:
                _fail(wop, f"'{key[0]}' offset {key[1]} is read with two shapes "
                           f"({units[key][0]} and {wop.result.type})")
            units.setdefault(key, (wop.result.type, wop.result, []))[2].append(g)
        _check_disjoint(units)
        loss = self.ret.arguments[0]  # (the fused loss, if the root was fused)
        if not self.seed.uses:
            self.backward.remove(self.seed.owner)
        results: list[SSAValue] = [loss]
        res_attrs: list[DictionaryAttr] = [DictionaryAttr({})]
        for (name, off), (ty, wval, gs) in units.items():
            g = self.total(wval, gs)
            results.append(g)
            attrs = {GRAD_ATTR: StringAttr(name)}
            if off:
                attrs[OFFSET_ATTR] = IntegerAttr(off, i64)
            res_attrs.append(DictionaryAttr(attrs))

        # the saved set: forward results the backward reads
        bwd_set = set(self.backward)
        for op in self.backward:
            for o in op.operands:
                owner = o.owner
                if isinstance(owner, Operation) and owner in self.fwd_set and not isinstance(owner, _FREE):
                    owner.attributes[SAVED_ATTR] = UnitAttr()
        assert not (bwd_set & self.fwd_set)

        self.block.insert_ops_before(self.backward, self.ret)
        new_ret = func.ReturnOp(*results)
        self.block.insert_op_before(new_ret, self.ret)
        self.ret.detach()
        self.ret.erase()
        fn.function_type = FunctionType.from_lists(
            list(fn.function_type.inputs.data), [r.type for r in results]
        )
        fn.res_attrs = ArrayAttr(res_attrs)
        fn.attributes[POLICY_ATTR] = StringAttr(self.policy)


def _check_disjoint(units) -> None:
    by_name: dict[str, list[tuple[int, int]]] = {}
    for (name, off), (ty, _, _) in units.items():
        by_name.setdefault(name, []).append((off, off + ty.get_shape()[0]))
    for name, spans in by_name.items():
        spans.sort()
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            if b0 < a1:
                raise AutodiffError(
                    f"autodiff: rows {a0}..{a1 - 1} and {b0}..{b1 - 1} of '{name}' overlap "
                    "(weight slices must be disjoint)"
                )


def grad_units(fn: func.FuncOp) -> list[tuple[str, int]]:
    """(tensor name, row offset) of each gradient result of a differentiated
    function, in result order (result 0, the loss, excluded)."""
    out = []
    attrs = fn.res_attrs.data if fn.res_attrs is not None else ()
    for d in attrs:
        if GRAD_ATTR in d.data:
            off = d.data.get(OFFSET_ATTR)
            out.append((d.data[GRAD_ATTR].data, off.value.data if off is not None else 0))
    return out


@dataclass(frozen=True)
class Autodiff(ModulePass):
    """Reverse mode over ``@train_step``: returns the loss and one gradient
    per weight unit (result attributes ``tensorop.grad``/``tensorop.offset``);
    ``recompute`` = none | attention | all picks the saved set. See the
    module docstring."""

    name = "autodiff"

    recompute: str = "none"
    function: str = "train_step"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.recompute not in RECOMPUTE:
            raise AutodiffError(
                f"autodiff: recompute must be one of {', '.join(RECOMPUTE)}, got '{self.recompute}'"
            )
        fns = [f for f in op.ops if isinstance(f, func.FuncOp) and f.sym_name.data == self.function]
        if not fns:
            raise AutodiffError(f"autodiff: the module has no func.func @{self.function}")
        _Autodiff(fns[0], self.recompute).run()
