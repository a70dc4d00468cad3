"""Canonicalization patterns of the `tensorop` dialect (run by upstream
`canonicalize`, which finds them through the ops' `_Canon` trait): reshape of
reshape, reshape to the same type, transpose of transpose, scale by 1.0, add
or accumulate of zeros, mul by a splat 1.0, reshape/transpose of zeros or of
a splat constant, zeros_like of a static type, last_rows of every row, and
unit properties dropped (embedding scale 1.0, rotary_dim = head_dim).
Tested by test/lit/passes/canonicalize.mlir.
"""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from ckc.dialects import tensorop as T


def _splat_of(value: SSAValue) -> float | None:
    """The value of every element of `value` when known (zeros, a splat constant)."""
    owner = value.owner
    if isinstance(owner, T.ZerosOp | T.ZerosLikeOp):
        return 0.0
    if isinstance(owner, T.ConstantOp):
        return owner.splat_value()
    return None


class ReshapeOfReshape(RewritePattern):
    """reshape(reshape(x)) -> reshape(x)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.ReshapeOp, rewriter: PatternRewriter, /):
        inner = op.x.owner
        if isinstance(inner, T.ReshapeOp):
            rewriter.replace(op, T.ReshapeOp(inner.x, op.result.type))


class ViewOfAll(RewritePattern):
    """A view of all of x as x's own type (reshape to the same type, last_rows
    of every row) -> x."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.ReshapeOp | T.LastRowsOp, rewriter: PatternRewriter, /):
        if op.x.type == op.result.type:
            rewriter.replace(op, [], [op.x])


class ShapeOfSplat(RewritePattern):
    """reshape / transpose of zeros or of a splat constant, with a static
    result type -> zeros / the splat constant of the new type."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.ReshapeOp | T.TransposeOp, rewriter: PatternRewriter, /):
        t = op.result.type
        if not (isinstance(t, TensorType) and t.has_static_shape()):
            return
        owner = op.x.owner
        if isinstance(owner, T.ZerosOp):
            rewriter.replace(op, T.ZerosOp(t))
        elif isinstance(owner, T.ConstantOp) and (v := owner.splat_value()) is not None:
            rewriter.replace(op, T.ConstantOp.splat(v, t))


class DropUnitProperty(RewritePattern):
    """Removes a property whose value means 'nothing': an embedding `scale`
    of 1.0, a RoPE `rotary_dim` equal to `head_dim` (canonical forms, so CSE
    and later passes see one spelling)."""

    @staticmethod
    def _is_unit(op: Operation, name: str) -> bool:
        attr = op.properties.get(name)
        if attr is None:
            return False
        if name == "scale":
            return isinstance(attr, FloatAttr) and attr.value.data == 1.0
        if name == "rotary_dim":
            return attr == op.properties.get("head_dim")
        return False

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /):
        for name in ("scale", "rotary_dim"):
            if self._is_unit(op, name):
                del op.properties[name]
                rewriter.notify_op_modified(op)


class TransposeOfTranspose(RewritePattern):
    """transpose(transpose(x)) -> x (when the types agree exactly)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.TransposeOp, rewriter: PatternRewriter, /):
        inner = op.x.owner
        if isinstance(inner, T.TransposeOp) and inner.x.type == op.result.type:
            rewriter.replace(op, [], [inner.x])


class ScaleByOne(RewritePattern):
    """scale(x, 1.0) -> x."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.ScaleOp, rewriter: PatternRewriter, /):
        if op.factor.value.data == 1.0 and op.x.type == op.result.type:
            rewriter.replace(op, [], [op.x])


class AddZeros(RewritePattern):
    """add(x, zeros) -> x and add(zeros, x) -> x (the sign of a zero result
    may differ: -0 + 0 is +0; ckc does not distinguish)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.AddOp | T.AccumulateOp, rewriter: PatternRewriter, /):
        a, b = op.operands
        if _splat_of(b) == 0.0 and a.type == op.result.type:
            rewriter.replace(op, [], [a])
        elif _splat_of(a) == 0.0 and b.type == op.result.type:
            rewriter.replace(op, [], [b])


class MulByOne(RewritePattern):
    """mul(x, splat 1.0) -> x and mul(splat 1.0, x) -> x."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.MulOp, rewriter: PatternRewriter, /):
        if _splat_of(op.b) == 1.0 and op.a.type == op.result.type:
            rewriter.replace(op, [], [op.a])
        elif _splat_of(op.a) == 1.0 and op.b.type == op.result.type:
            rewriter.replace(op, [], [op.b])


class ZerosLikeStatic(RewritePattern):
    """zeros_like(x) with a static type -> zeros."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: T.ZerosLikeOp, rewriter: PatternRewriter, /):
        t = op.result.type
        if isinstance(t, TensorType) and t.has_static_shape():
            rewriter.replace(op, T.ZerosOp(t))


PATTERNS: dict[str, tuple[RewritePattern, ...]] = {
    T.ReshapeOp.name: (ViewOfAll(), ReshapeOfReshape(), ShapeOfSplat()),
    T.TransposeOp.name: (TransposeOfTranspose(), ShapeOfSplat()),
    T.ScaleOp.name: (ScaleByOne(),),
    T.AddOp.name: (AddZeros(),),
    T.AccumulateOp.name: (AddZeros(),),
    T.MulOp.name: (MulByOne(),),
    T.ZerosLikeOp.name: (ZerosLikeStatic(),),
    T.LastRowsOp.name: (ViewOfAll(),),
    T.EmbeddingOp.name: (DropUnitProperty(),),
    T.EmbeddingGradOp.name: (DropUnitProperty(),),
    T.RopeOp.name: (DropUnitProperty(),),
    T.RopeGradOp.name: (DropUnitProperty(),),
    T.RMSNormQKVRopeOp.name: (DropUnitProperty(),),
}
