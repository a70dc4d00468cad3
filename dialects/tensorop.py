"""The `tensorop` dialect: value-semantic tensor ops at whole-tensor granularity.

`lower-transformer` produces it from `transformer`, `autodiff` adds the `*_grad`
ops and the optimizer, `fuse-rmsnorm-qkv-rope` fuses, `bufferize` turns it into
kernel calls on buffers. The executable reference of every op is the
interpreter `ckc/interpreters/tensorop.py`; canonicalization patterns are in
`passes/_tensorop_canonicalization.py`.

Conventions:

- Tensors are builtin `tensor<...xf32>` (token ids, targets, row ids
  `tensor<?xi32>`), row-major. Activations are `[T, C]`: T may be dynamic,
  model dimensions are static; Q/K/V are `[T, heads*head_dim]`.
- Linear weights are `[out, in]`: `y = x·Wᵀ + b` is `matmul` with `transpose_b`.
- Runtime scalars (a position, a step) are `index`/integer values, the
  learning rate an `f32` value; computed scalars (a loss, a norm) are 0-d tensors.
- Every op is Pure. Ops that update storage (`kv_write`, `kv_scatter`,
  `accumulate`, `adamw_update`) return the new value and name the operand
  whose buffer the result reuses (`INPLACE`); `reshape`/`last_rows` results
  may alias their input (`VIEW_OF`).
- Backward ops (`*_grad`, each defined after its forward op) take the
  gradient of the forward result first, then the forward's inputs and
  properties, and return one gradient per differentiable input. `add` and
  `accumulate` pass gradients through; `scale`, `reshape` and `transpose` are
  their own backward; `rmsnorm_qkv_rope`, the KV-cache and row ops and
  `positions` are inference only.

Python: `Op(*operands, **properties)` infers the result types
(`TensorOp.__init__`), e.g. `MatmulOp(x, w, bias, transpose_b=True)`; invalid
shapes raise VerifyException naming the op. Ops of one family share a base
class holding their fields and shape rule; `op.prop_values()` gives the
properties as Python values (defaults applied).

Syntax (`dialects/_syntax.py`, shared with `transformer`)::

    %r = tensorop.<op> %a, %b[, <keyword> %opt]* {props} : (<operand types>) -> <result type(s)>

`weight`, `constant` and `zeros` have no operands and print their type only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from xdsl.dialects.builtin import DYNAMIC_INDEX, I64, DenseIntOrFPElementsAttr, Float32Type, FloatAttr
from xdsl.dialects.builtin import IndexType, IntegerAttr, IntegerType, StringAttr, TensorType, UnitAttr, f32, i32, i64
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import AttrSizedOperandSegments, IRDLOperation, OptionalDef, VariadicDef, base, irdl_op_definition
from xdsl.irdl import operand_def, opt_operand_def, opt_prop_def, opt_result_def, prop_def, result_def, traits_def
from xdsl.irdl import var_operand_def
from xdsl.parser import Parser
from xdsl.pattern_rewriter import RewritePattern
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, HasCanonicalizationPatternsTrait, Pure
from xdsl.utils.exceptions import VerifyException

from ckc.dialects import quant
from ckc.dialects._syntax import OperandsSyntax, group_results, operand_defs, result_defs, split_operands

DYN = DYNAMIC_INDEX
AnyTensor = base(TensorType)
Scalar = base(IndexType) | base(IntegerType)  # positions, steps
F32Scalar = base(Float32Type)
ROPE_STYLES = ("neox", "interleaved")
ROPE_SCALINGS = ("none", "linear", "llama3")
GELU_APPROX = ("none", "tanh")  # PyTorch names: none = exact erf
# Element types a KV cache may be stored in (ckc --kv-type): `kv_write` converts
# fp32 rows into them, the cache form of `causal_attention` reads them.
KV_CACHE_TYPES = ("f32", "f16", "q8_0")


def _f32(default: float | None = None):
    return prop_def(FloatAttr[Float32Type], None if default is None else FloatAttr(default, f32))


def _i64(default: int | None = None):
    return prop_def(IntegerAttr[I64], None if default is None else IntegerAttr(default, i64))


def _str(default: str):
    return prop_def(StringAttr, StringAttr(default))


# Shape and value checks (each raises VerifyException with one clear line) -------


def _d(x: int) -> str:
    return "?" if x == DYN else str(x)


def _fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(_d(x) for x in shape) + "]"


def _compat(a: int, b: int) -> bool:
    return a == DYN or b == DYN or a == b


def _merge(a: int, b: int) -> int:
    return b if a == DYN else a


def _shape(t: Attribute, what: str, rank: int | None, elem_ok, expected: str) -> tuple[int, ...]:
    if not isinstance(t, TensorType):
        raise VerifyException(f"{what} must be a tensor, got {t}")
    if not elem_ok(t.element_type):
        raise VerifyException(f"{what} must have {expected}, got {t}")
    shape = tuple(t.get_shape())
    if rank is not None and len(shape) != rank:
        raise VerifyException(f"{what} must have rank {rank}, got {t}")
    return shape


def _tensor(t: Attribute, what: str, rank: int | None = None, elem=f32) -> tuple[int, ...]:
    """The shape of `t`, checking it is a tensor of `elem` with `rank` dims."""
    return _shape(t, what, rank, lambda e: e == elem, f"element type {elem}")


def _quant_ok(t: Attribute, what: str, shape: tuple[int, ...], head_dim: int | None = None) -> None:
    why = quant.check_shape(t.element_type, shape)
    if why is None and head_dim is not None and quant.format_name(t.element_type) == "q8_0" and head_dim % 32:
        why = f"head_dim {head_dim} is not a multiple of the q8_0 block (32 values)"
    if why:
        raise VerifyException(f"{what}: {why}")


def _stored(t: Attribute, what: str, rank: int | None = None) -> tuple[int, ...]:
    """The shape of a stored weight: f32, f16, bf16 or a GGUF block format (dialects/quant.py)."""
    shape = _shape(t, what, rank, lambda e: quant.format_name(e) is not None,
                   "a weight element type (f32, f16, bf16, !quant.*)")
    _quant_ok(t, what, shape)
    return shape


def _kv_cache(t: Attribute, what: str, head_dim: int | None = None) -> tuple[int, ...]:
    """The shape of a 2-D KV cache in one of KV_CACHE_TYPES (Q8_0: heads of whole blocks)."""
    shape = _shape(t, what, 2, lambda e: quant.format_name(e) in KV_CACHE_TYPES,
                   f"element type {', '.join(KV_CACHE_TYPES)}")
    _quant_ok(t, what, shape, head_dim)
    return shape


def _static(shape: Sequence[int], what: str) -> None:
    if any(x == DYN for x in shape):
        raise VerifyException(f"{what} must have a static shape, got {_fmt_shape(shape)}")


def _same_shape(a: Sequence[int], b: Sequence[int], what: str) -> tuple[int, ...]:
    if len(a) != len(b) or not all(_compat(x, y) for x, y in zip(a, b)):
        raise VerifyException(f"{what}: shapes {_fmt_shape(a)} and {_fmt_shape(b)} differ")
    return tuple(_merge(x, y) for x, y in zip(a, b))


def _dim(actual: int, expected: int, what: str) -> None:
    if not _compat(actual, expected):
        raise VerifyException(f"{what} is {_d(actual)}, expected {_d(expected)}")


def _num(value: float | int) -> str:
    return f"{value:.7g}" if isinstance(value, float) else str(value)


def _positive(p, *names: str) -> None:
    for name in names:
        if not getattr(p, name) > 0:
            raise VerifyException(f"{name} must be positive, got {_num(getattr(p, name))}")


def _nonneg(p, *names: str) -> None:
    for name in names:
        if not getattr(p, name) >= 0:
            raise VerifyException(f"{name} must be non-negative, got {_num(getattr(p, name))}")


def _finite(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise VerifyException(f"{what} must be finite, got {_num(value)}")


def _one_of(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise VerifyException(f"{what} must be one of {', '.join(choices)}, got '{value}'")


def _rows(t: Attribute, what: str, rows: int | None = None) -> int:
    """The length of an i32 id vector (tokens, targets, one id per row)."""
    (n,) = _tensor(t, what, 1, elem=i32)
    if rows is not None:
        _dim(n, rows, f"length of '{what}' (one per row)")
    return n


def _matrix(t: Attribute, what: str) -> tuple[int, ...]:
    return _tensor(t, what, 2)


def _T(*shape: int, elem=f32) -> TensorType:
    return TensorType(elem, list(shape))


def _is_type(t: Attribute | None, expected: Attribute) -> bool:
    if isinstance(t, TensorType) and isinstance(expected, TensorType):
        a, b = t.get_shape(), expected.get_shape()
        return t.element_type == expected.element_type and len(a) == len(b) and all(map(_compat, a, b))
    return t is not None and t == expected


class _Args:
    """Attribute access to a dict (operand types or property values by name)."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


# The common base ---------------------------------------------------------------


class TensorOp(OperandsSyntax):
    """Base of every tensorop op with operands: the shared syntax, verification
    and construction.

    A subclass defines `infer(t, p, r)`: `t` holds the operand types by name
    (None for an absent optional operand, a tuple for a variadic one), `p` the
    property values (defaults applied), `r` the result types when known (for
    ops whose result type is not implied by their operands). It checks every
    rule, raising VerifyException, and returns the expected result types:
    `verify_` compares them with the actual ones, the constructor uses them.
    `PY_DEFAULTS` supplies Python-side defaults of required properties.
    """

    INPLACE: ClassVar[dict[int, str]] = {}
    """Result index -> name of the operand whose storage it updates in place."""
    VIEW_OF: ClassVar[str | None] = None
    """Operand whose buffer the result may alias (a contiguous range of it)."""
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {}

    traits = traits_def(Pure())  # value semantics: every op (subclasses add traits)

    @classmethod
    def infer(cls, t: _Args, p: _Args, r: Sequence[Attribute] | None) -> list[Attribute]:
        raise NotImplementedError

    def inplace_operands(self) -> dict[int, SSAValue]:
        """Result index -> the operand value it updates in place."""
        return {i: getattr(self, name) for i, name in self.INPLACE.items()}

    @classmethod
    def _props(cls) -> dict[str, Any]:
        return {n: d for n, d in cls.get_irdl_definition().properties.items()
                if n != AttrSizedOperandSegments.attribute_name}

    @classmethod
    def _prop_base(cls, name: str) -> type[Attribute]:
        constr = cls.get_irdl_definition().properties[name].constr
        return getattr(constr, "base_attr", None) or getattr(constr, "attr")

    @classmethod
    def _to_attr(cls, name: str, value: Any) -> Attribute | None:
        if value is None or isinstance(value, Attribute):
            return value
        kind = cls._prop_base(name)
        if kind is UnitAttr:
            return UnitAttr() if value else None
        convert = {FloatAttr: lambda v: FloatAttr(float(v), f32), IntegerAttr: lambda v: IntegerAttr(int(v), i64),
                   StringAttr: lambda v: StringAttr(str(v))}.get(kind)
        if convert is None:
            raise TypeError(f"{cls.name}: cannot convert {value!r} for property '{name}'")
        return convert(value)

    @classmethod
    def _py_values(cls, attrs: dict[str, Attribute | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, pdef in cls._props().items():
            attr = attrs.get(name, pdef.default_value)
            if cls._prop_base(name) is UnitAttr:
                out[name] = attr is not None
            else:
                out[name] = attr.value.data if isinstance(attr, FloatAttr | IntegerAttr) else (
                    attr.data if isinstance(attr, StringAttr) else attr)
        return out

    def prop_values(self) -> dict[str, Any]:
        """Property values as Python values, defaults applied (units as bool)."""
        return self._py_values(dict(self.properties))

    def operand_type_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, odef in self.get_irdl_definition().operands:
            value = getattr(self, name)
            if isinstance(odef, OptionalDef):
                out[name] = None if value is None else value.type
            else:
                out[name] = tuple(v.type for v in value) if isinstance(odef, VariadicDef) else value.type
        return out

    def verify_(self) -> None:
        expected = self.infer(_Args(self.operand_type_map()), _Args(self.prop_values()), [r.type for r in self.results])
        if len(expected) != len(self.results):
            raise VerifyException(f"expected {len(expected)} results, got {len(self.results)}")
        for i, (res, exp) in enumerate(zip(self.results, expected)):
            if not _is_type(res.type, exp):
                raise VerifyException(f"result #{i} has type {res.type}, expected a type compatible with {exp}")

    def __init__(self, *operands: Any, result_types: Sequence[Attribute] | None = None, **props: Any):
        cls = type(self)
        groups, types = split_operands(cls, operands, props)
        pdefs = cls._props()
        if unknown := set(props) - set(pdefs):
            raise TypeError(f"{cls.name}: no property {', '.join(sorted(unknown))}")
        attrs: dict[str, Attribute | None] = {}
        for name, pdef in pdefs.items():  # stored in definition order, defaults included
            value = props.get(name, cls.PY_DEFAULTS.get(name, pdef.default_value))
            if value is None and not isinstance(pdef, OptionalDef):
                raise TypeError(f"{cls.name}: property '{name}' is required")
            attrs[name] = cls._to_attr(name, value)
        try:
            inferred = cls.infer(_Args(types), _Args(cls._py_values(attrs)), result_types)
        except VerifyException as err:
            raise VerifyException(f"{cls.name}: {err}") from None
        rtypes = list(result_types) if result_types is not None else list(inferred)
        super().__init__(operands=groups, result_types=group_results(cls.get_irdl_definition(), rtypes),
                         properties={k: v for k, v in attrs.items() if v is not None})


class _Single(TensorOp):
    """An op with one result, `result`."""

    result = result_def(AnyTensor)


class _Canon(HasCanonicalizationPatternsTrait):
    """The op's canonicalization patterns, kept in passes/_tensorop_canonicalization.py
    (as xDSL keeps its dialects' in xdsl/transforms/canonicalization_patterns/)."""

    def get_patterns(self, op: type[Operation]) -> tuple[RewritePattern, ...]:
        from ckc.passes._tensorop_canonicalization import PATTERNS

        return PATTERNS.get(op.name, ())

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        return ()


def _def(name: str, *examples: str):
    """Class decorator of an op: its name, its docstring's ```mlir examples,
    and the IRDL definition."""

    def deco(cls):
        cls.name = f"tensorop.{name}"
        lines = "\n".join(f"    {e}" for e in examples)
        cls.__doc__ = f"{cls.__doc__}\n\n    ```mlir\n{lines}\n    ```\n    "
        return irdl_op_definition(cls)

    return deco


def _op(bases: type | tuple[type, ...], name: str, doc: str, example: str, **fields: Any) -> Any:
    """A family member made in one call: `bases` with the op's name, docstring,
    example and any fields of its own."""
    cls_name = "".join(w.capitalize() for w in name.split("_")) + "Op"
    body = {"__doc__": doc, "__module__": __name__, **fields}
    return _def(name, example)(type(cls_name, bases if isinstance(bases, tuple) else (bases,), body))


# Values: weights, constants ------------------------------------------------------


@_def("weight", '%wq = tensorop.weight "blk.0.attn_q.weight" : tensor<576x576xf32>', '%wk = tensorop.weight "blk.0.attn_qkv.weight" offset 64 : tensor<64x64xf32>')
class WeightOp(IRDLOperation):
    """A named model parameter (GGUF naming, static shape), as `transformer.weight`:
    `offset` selects rows `[offset, offset + shape[0])` of the stored tensor."""
    tensor_name = prop_def(StringAttr)
    offset = _i64(0)
    result = result_def(AnyTensor)
    traits = traits_def(Pure())
    assembly_format = "$tensor_name (`offset` $offset^)? attr-dict `:` type($result)"

    def __init__(self, tensor_name: str | StringAttr, type: TensorType | Sequence[int], *, offset: int = 0):
        props: dict[str, Attribute] = {"tensor_name": StringAttr(tensor_name) if isinstance(tensor_name, str) else tensor_name}
        if offset:
            props["offset"] = IntegerAttr(offset, i64)
        super().__init__(properties=props, result_types=[type if isinstance(type, TensorType) else _T(*type)])

    def verify_(self) -> None:
        what = f"weight '{self.tensor_name.data}'"
        if not self.tensor_name.data:
            raise VerifyException("weight name must not be empty")
        shape = _stored(self.result.type, what)
        _static(shape, what)
        if not shape:
            raise VerifyException(f"{what} must have rank >= 1")
        if self.offset.value.data < 0:
            raise VerifyException(f"offset must be >= 0, got {self.offset.value.data}")


def _static_result(op: IRDLOperation, what: str) -> None:
    if not isinstance(op.result.type, TensorType):
        raise VerifyException(f"result must be a tensor, got {op.result.type}")
    _static(op.result.type.get_shape(), what)


@_def("constant", "%c = tensorop.constant dense<5.000000e-01> : tensor<4x8xf32>")
class ConstantOp(IRDLOperation):
    """A constant tensor from a dense elements attribute (static shape)."""
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(AnyTensor)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, value: DenseIntOrFPElementsAttr):
        super().__init__(properties={"value": value}, result_types=[value.type])

    @staticmethod
    def splat(value: float, type: TensorType) -> ConstantOp:
        return ConstantOp(DenseIntOrFPElementsAttr.from_list(type, [float(value)]))

    def splat_value(self) -> float | None:
        """The value of every element when they are all equal, else None."""
        values = self.value.get_values()
        return values[0] if len(values) and all(v == values[0] for v in values) else None

    def verify_(self) -> None:
        if self.value.type != self.result.type:
            raise VerifyException(f"result type {self.result.type} differs from the value's type {self.value.type}")
        _static_result(self, "constant")

    @classmethod
    def parse(cls, parser: Parser):
        start = parser.pos
        value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error("expected a dense elements attribute", start, parser.pos)
        op = cls(value)
        op.attributes.update(parser.parse_optional_attr_dict())
        return op

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)


@_def("zeros", "%z = tensorop.zeros : tensor<576x576xf32>")
class ZerosOp(IRDLOperation):
    """A tensor of zeros (static shape): initial accumulators, optimizer state."""
    result = result_def(AnyTensor)
    traits = traits_def(Pure(), ConstantLike())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type: TensorType):
        super().__init__(result_types=[type])

    def verify_(self) -> None:
        _static_result(self, "zeros")


@_def("zeros_like", "%z = tensorop.zeros_like %x : (tensor<?x64xf32>) -> tensor<?x64xf32>")
class ZerosLikeOp(_Single):
    """Zeros with the type (and dynamic sizes) of its operand."""
    x = operand_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        if not isinstance(t.x, TensorType):
            raise VerifyException(f"operand 'x' must be a tensor, got {t.x}")
        return [t.x]


# Elementwise families: the base holds the fields and the shape rule (`shape(t)`:
# every result has that shape); a member adds its name, docstring and own
# properties with their rules (`check(p)`).


def _alike(t, a: str, b: str, what: str | None = None, rank: int | None = None) -> tuple[int, ...]:
    """The shape of operands `a` and `b`, which must agree."""
    A, B = _tensor(getattr(t, a), f"operand '{a}'", rank), _tensor(getattr(t, b), f"operand '{b}'", rank)
    return _same_shape(A, B, what or f"'{a}' and '{b}'")


class _Elementwise(TensorOp):
    """Results shaped `shape(t)`, after the member's property rules `check(p)`."""

    @classmethod
    def check(cls, p) -> None:
        pass

    @classmethod
    def infer(cls, t, p, r):
        cls.check(p)
        S = cls.shape(t)
        return [_T(*S) for _ in cls.get_irdl_definition().results]


class _Unary(_Elementwise):
    """`y = f(x)` elementwise: one tensor in, one of the same shape out."""

    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    shape = staticmethod(lambda t: _tensor(t.x, "operand 'x'"))


class _UnaryGrad(_Elementwise):
    """The gradient of a `_Unary` op from its input: `dx = dy * f'(x)`."""

    dy, x = operand_defs(2)
    result = result_def(AnyTensor)
    shape = staticmethod(lambda t: _alike(t, "dy", "x"))


class _Binary(_Elementwise):
    """`y = a ∘ b` elementwise on two tensors of the same shape."""

    a, b = operand_defs(2)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())
    shape = staticmethod(lambda t: _alike(t, "a", "b", "operands"))


class _Gated(_Elementwise):
    """`y = act(gate) * up` (a gated MLP activation) on two `[T, F]` tensors."""

    gate, up = operand_defs(2)
    result = result_def(AnyTensor)
    shape = staticmethod(lambda t: _alike(t, "gate", "up", rank=2))


class _GatedGrad(_Elementwise):
    """Gradients of a `_Gated` op: `dgate`, `dup`."""

    dy, gate, up = operand_defs(3)
    dgate, dup = result_defs(2)
    shape = staticmethod(lambda t: _same_shape(_tensor(t.dy, "operand 'dy'", 2), _Gated.shape(t), "'dy' and 'gate'"))


class _Approximate:
    """GELU's `approximate`: `none` (exact erf, default) or `tanh`, as `F.gelu`."""
    approximate = _str("none")

    @classmethod
    def check(cls, p) -> None:
        _one_of(p.approximate, GELU_APPROX, "approximate")


class _Cap:
    cap = _f32()

    @classmethod
    def check(cls, p) -> None:
        _positive(p, "cap")


AddOp = _op(_Binary, "add", "Elementwise sum of two tensors of the same shape.",
            "%y = tensorop.add %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")
MulOp = _op(_Binary, "mul", "Elementwise product of two tensors of the same shape.",
            "%y = tensorop.mul %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")


@_def("mul_grad", "%da, %db = tensorop.mul_grad %dy, %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)")
class MulGradOp(TensorOp):
    """Gradients of `mul`: `da = dy * b`, `db = dy * a`."""
    dy, a, b = operand_defs(3)
    da, db = result_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        _same_shape(_tensor(t.dy, "operand 'dy'"), _Binary.shape(t), "'dy' and the operands")
        return [t.a, t.b]


SiluOp = _op(_Unary, "silu", "Elementwise SiLU: `x * sigmoid(x)`.",
             "%y = tensorop.silu %x : (tensor<?x1536xf32>) -> tensor<?x1536xf32>")
SiluGradOp = _op(_UnaryGrad, "silu_grad", "Gradient of `silu`: `dx = dy * s * (1 + x * (1 - s))`, `s = sigmoid(x)`.",
                 "%dx = tensorop.silu_grad %dy, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")
GeluOp = _op((_Approximate, _Unary), "gelu", "Elementwise GELU, `approximate` none (exact erf) or tanh (GPT-2, Gemma).",
             '%y = tensorop.gelu %x {approximate = "tanh"} : (tensor<?x256xf32>) -> tensor<?x256xf32>')
GeluGradOp = _op((_Approximate, _UnaryGrad), "gelu_grad", "Gradient of `gelu` (same `approximate`).",
                 '%dx = tensorop.gelu_grad %dy, %x {approximate = "tanh"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>')
SoftcapOp = _op((_Cap, _Unary), "softcap", "Elementwise soft capping `cap · tanh(x / cap)` (final logit softcap).",
                "%y = tensorop.softcap %x {cap = 3.000000e+01 : f32} : (tensor<?x256xf32>) -> tensor<?x256xf32>")
SoftcapGradOp = _op((_Cap, _UnaryGrad), "softcap_grad", "Gradient of `softcap` from its input: `dx = dy · (1 - tanh²(x / cap))`.",
                    "%dx = tensorop.softcap_grad %dy, %x {cap = 3.000000e+01 : f32} : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>")


@_def("softmax", "%p = tensorop.softmax %x : (tensor<?x64xf32>) -> tensor<?x64xf32>")
class SoftmaxOp(_Unary):
    """Softmax along the last dim."""

    @staticmethod
    def shape(t, what: str = "x") -> tuple[int, ...]:
        if len(X := _tensor(getattr(t, what), f"operand '{what}'")) < 1:
            raise VerifyException(f"operand '{what}' must have rank >= 1")
        return X


@_def("softmax_grad", "%dx = tensorop.softmax_grad %dy, %y : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")
class SoftmaxGradOp(_Single):
    """Gradient of `softmax` from its output `y`: `dx = y * (dy - sum(dy*y))`."""
    dy, y = operand_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        DY = _tensor(t.dy, "operand 'dy'")
        return [_T(*_same_shape(DY, SoftmaxOp.shape(t, "y"), "'dy' and 'y'"))]


@_def("scale", "%y = tensorop.scale %x {factor = 2.400000e+01 : f32} : (tensor<?x576xf32>) -> tensor<?x576xf32>")
class ScaleOp(_Single):
    """Multiplies every element by a constant `factor` (its own gradient: `scale` of dy)."""
    x = operand_def(AnyTensor)
    factor = _f32()
    traits = traits_def(_Canon())

    def __init__(self, x, factor: float):  # the factor positionally
        super().__init__(x, factor=factor)

    @classmethod
    def infer(cls, t, p, r):
        _finite(p.factor, "factor")
        return [_T(*_tensor(t.x, "operand 'x'"))]


GegluOp = _op((_Approximate, _Gated), "geglu", "Gated GELU: `gelu(gate) * up` (Gemma MLP), `approximate` as in `gelu`.",
              '%h = tensorop.geglu %g, %u {approximate = "tanh"} : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>')
GegluGradOp = _op((_Approximate, _GatedGrad), "geglu_grad", "Gradients of `geglu` (same `approximate`): `dgate`, `dup`.",
                  '%dg, %du = tensorop.geglu_grad %dy, %g, %u {approximate = "tanh"} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>)')
SwigluOp = _op(_Gated, "swiglu", "Gated SiLU: `silu(gate) * up` (Llama/Qwen MLP).",
               "%h = tensorop.swiglu %g, %u : (tensor<?x1536xf32>, tensor<?x1536xf32>) -> tensor<?x1536xf32>")
SwigluGradOp = _op(_GatedGrad, "swiglu_grad", "Gradients of `swiglu`: `dgate`, `dup`.",
                   "%dg, %du = tensorop.swiglu_grad %dy, %g, %u : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>)")


# Linear algebra ---------------------------------------------------------------------


class _Transposes:
    transpose_a = opt_prop_def(UnitAttr)
    transpose_b = opt_prop_def(UnitAttr)


@_def("matmul", "%y = tensorop.matmul %x, %w, bias %b {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>")
class MatmulOp(_Transposes, _Single):
    """`y = op(a) · op(b) (+ bias)` on 2-D tensors, `op` transposing when `transpose_a`/`_b`
    is set. A linear layer (`[out, in]` weights) is `transpose_b`, its bias `[out]`."""
    a, b = operand_defs(2)
    bias = opt_operand_def(AnyTensor)

    @classmethod
    def dims(cls, t, p) -> tuple[int, int, int]:
        A, B = _tensor(t.a, "operand 'a'", 2), _stored(t.b, "operand 'b'", 2)
        M, Ka = (A[1], A[0]) if p.transpose_a else A
        Kb, N = (B[1], B[0]) if p.transpose_b else B
        if not _compat(Ka, Kb):
            raise VerifyException(f"contraction sizes differ: {_d(Ka)} from 'a' {_fmt_shape(A)}, "
                                  f"{_d(Kb)} from 'b' {_fmt_shape(B)}")
        return M, _merge(Ka, Kb), N

    @classmethod
    def infer(cls, t, p, r):
        M, _, N = cls.dims(t, p)
        if t.bias is not None:
            _dim(_tensor(t.bias, "bias", 1)[0], N, "bias size")
        return [_T(M, N)]


class _HasBias:
    has_bias = opt_prop_def(UnitAttr)


@_def("matmul_grad", "%dx, %dw, %db = tensorop.matmul_grad %dy, %x, %w {transpose_b, has_bias} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>)")
class MatmulGradOp(_Transposes, _HasBias, TensorOp):
    """Gradients of `matmul` (same flags): `da`, `db` and, with `has_bias`, `dbias`
    (column sums of `dy`). For a linear layer: `dx = dy · W`, `dW = dyᵀ · x`."""
    dy, a, b = operand_defs(3)
    da, db = result_defs(2)
    dbias = opt_result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        M, _, N = MatmulOp.dims(t, p)
        _same_shape(_tensor(t.dy, "operand 'dy'", 2), (M, N), "'dy' and the matmul result")
        return [t.a, t.b] + ([_T(N)] if p.has_bias else [])


# Normalization: `check` verifies x, w (and bias) against the properties; the
# gradient op checks with the forward's rule.


class _Norm(TensorOp):
    """x `[T, C]` normalized with a static weight (and optional bias); `check_weight`
    relates the weight size to C."""

    eps = _f32()
    offset = _f32(0.0)

    @classmethod
    def check(cls, t, p) -> tuple[int, ...]:
        X = _tensor(t.x, "operand 'x'", 2)
        (W,) = _tensor(t.w, "weight", 1)
        _static((W,), "weight")
        cls.check_weight(X[1], W)
        if getattr(t, "bias", None) is not None:
            _dim(_tensor(t.bias, "bias", 1)[0], X[1], "bias size")
        _positive(p, "eps")
        return X

    @classmethod
    def infer(cls, t, p, r):
        return [_T(*cls.check(t, p))]


class _NormGrad(TensorOp):
    """Gradients of `FORWARD`: `dx` and one per parameter (`dw`, `db`)."""

    FORWARD: ClassVar[type[_Norm]]  # the forward op, whose `check` applies
    dy, x, w = operand_defs(3)

    @classmethod
    def infer(cls, t, p, r):
        X = cls.FORWARD.check(_Args({"x": t.x, "w": t.w}), p)
        _same_shape(_tensor(t.dy, "operand 'dy'", 2), X, "'dy' and 'x'")
        return [_T(*X)] + [t.w] * (len(cls.get_irdl_definition().results) - 1)


@_def("rmsnorm", "%y = tensorop.rmsnorm %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x576xf32>, tensor<576xf32>) -> tensor<?x576xf32>", "%q = tensorop.rmsnorm %q0, %qn {eps = 1.000000e-06 : f32, offset = 1.000000e+00 : f32} : (tensor<?x512xf32>, tensor<64xf32>) -> tensor<?x512xf32>")
class RMSNormOp(_Norm):
    """`y = x / sqrt(mean(x²) + eps) * (offset + w)`, mean over each group of `size(w)`
    elements of a row (one group per row, or per head for QK-norm); Gemma's
    `(1 + w)` is `offset = 1.0`."""

    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-6}
    x, w = operand_defs(2)
    result = result_def(AnyTensor)

    @staticmethod
    def check_weight(C: int, D: int) -> None:
        if C != DYN and (D == 0 or C % D != 0):
            raise VerifyException(f"weight size {D} must divide the normalized dim {C} (one group per {D} elements)")


@_def("rmsnorm_grad", "%dx, %dw = tensorop.rmsnorm_grad %dy, %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x576xf32>, tensor<?x576xf32>, tensor<576xf32>) -> (tensor<?x576xf32>, tensor<576xf32>)")
class RMSNormGradOp(_NormGrad, _Norm):
    """Gradients of `rmsnorm` (same properties): `dx`, `dw`."""

    FORWARD: ClassVar = RMSNormOp
    PY_DEFAULTS: ClassVar = RMSNormOp.PY_DEFAULTS
    dx, dw = result_defs(2)


@_def("layernorm", "%y = tensorop.layernorm %x, %w, bias %b {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>")
class LayerNormOp(_Norm):
    """`y = (x - mean) / sqrt(var + eps) * (offset + w) + b` over the last dim (biased
    variance, as PyTorch), weight and optional bias `[C]`."""

    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-5}
    x, w = operand_defs(2)
    bias = opt_operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @staticmethod
    def check_weight(C: int, D: int) -> None:
        _dim(D, C, "weight size")


@_def("layernorm_grad", "%dx, %dw, %db = tensorop.layernorm_grad %dy, %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)")
class LayerNormGradOp(_NormGrad, _Norm):
    """Gradients of `layernorm` (same properties): `dx`, `dw`, `db` (the bias is not needed)."""

    FORWARD: ClassVar = LayerNormOp
    PY_DEFAULTS: ClassVar = LayerNormOp.PY_DEFAULTS
    dx, dw, db = result_defs(3)


# Rotary position embedding ------------------------------------------------------------


def rope_inv_freq(rotary_dim: int, theta: float, scaling: str = "none", factor: float = 1.0,
                  low_freq_factor: float = 1.0, high_freq_factor: float = 4.0, original_context: int = 0) -> list[float]:
    """RoPE inverse frequencies `[rotary_dim/2]` as transformers computes them in float32
    (default, linear, llama3): the `inv_freq` operand of the RoPE ops when scaling is used."""
    import numpy as np

    if scaling not in ROPE_SCALINGS:
        raise ValueError(f"rope scaling must be one of {', '.join(ROPE_SCALINGS)}, got '{scaling}'")
    f32_, fac = np.float32, np.float32(factor)
    exps = np.arange(0, rotary_dim, 2, dtype=np.int64).astype(np.float32) / f32_(rotary_dim)
    inv = (f32_(1.0) / (f32_(theta) ** exps)).astype(np.float32)
    if scaling == "linear":
        inv = (inv / fac).astype(np.float32)
    elif scaling == "llama3":
        old = float(original_context)
        low_wl, high_wl = old / low_freq_factor, old / high_freq_factor
        wavelen = (f32_(2 * math.pi) / inv).astype(np.float32)
        scaled = np.where(wavelen > low_wl, inv / fac, inv).astype(np.float32)
        smooth = ((old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)).astype(np.float32)
        smoothed = ((1 - smooth) * scaled / fac + smooth * scaled).astype(np.float32)
        inv = np.where(~(wavelen < high_wl) & ~(wavelen > low_wl), smoothed, scaled).astype(np.float32)
    return [float(v) for v in inv]


def rope_inv_freq_constant(rotary_dim: int, theta: float, **scaling) -> ConstantOp:
    """`rope_inv_freq(...)` as a `tensorop.constant` of type `tensor<[rotary_dim/2]xf32>`."""
    values = rope_inv_freq(rotary_dim, theta, **scaling)
    return ConstantOp(DenseIntOrFPElementsAttr.from_list(_T(len(values)), values))


class _SeqLen:
    """`seq_len` (0 = one sequence) splits the rows into independent sequences of
    seq_len rows (a batch of B sequences is `[B*seq_len, C]`)."""
    seq_len = _i64(0)

    @staticmethod
    def check_seq_len(rows: int, p) -> None:
        _nonneg(p, "seq_len")
        if p.seq_len and rows != DYN and rows % p.seq_len:
            raise VerifyException(f"{rows} rows are not a whole number of sequences of {p.seq_len}")


class _RopeProps:
    """The RoPE property set after `heads`, `head_dim`."""
    theta = _f32(10000.0)
    style = _str("neox")
    rotary_dim = opt_prop_def(IntegerAttr[I64])


def _check_rope(X: Sequence[int], p, heads_attr: str = "heads", inv_freq=None) -> None:
    """`X` (`[T, heads*head_dim]`) against the RoPE properties and `inv_freq`."""
    _positive(p, heads_attr, "head_dim")
    rd = p.head_dim if p.rotary_dim is None else p.rotary_dim
    if rd <= 0 or rd > p.head_dim or rd % 2:
        raise VerifyException(f"rotary_dim must be even and in (0, head_dim={p.head_dim}], got {rd}")
    _positive(p, "theta")
    _one_of(p.style, ROPE_STYLES, "style")
    _dim(X[1], getattr(p, heads_attr) * p.head_dim, f"row size ({heads_attr} * head_dim)")
    if hasattr(p, "seq_len"):
        _SeqLen.check_seq_len(X[0], p)
    if inv_freq is not None:
        (F,) = _tensor(inv_freq, "inv_freq", 1)
        if F != rd // 2:
            raise VerifyException(f"inv_freq has {_d(F)} entries, expected rotary_dim / 2 = {rd // 2}")


_ROPE_DOC = """Rotary position embedding on `[T, heads*head_dim]`. In each head the first
    `rotary_dim` (default head_dim) features rotate with frequencies `theta^(-2j/rotary_dim)`
    (or the optional `inv_freq` table: scaled RoPE), pairs `(j, j + rd/2)` for style `neox`,
    `(2j, 2j+1)` for `interleaved`; the rest pass through."""


class _RopeFamily(_RopeProps, TensorOp):
    """`rope`, `rope_grad`, `rope_rows`: the first operand `[T, heads*head_dim]` rotated."""
    inv_freq = opt_operand_def(AnyTensor)
    heads = _i64()
    head_dim = _i64()
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        first = cls.get_irdl_definition().operands[0][0]
        X = _tensor(getattr(t, first), f"operand '{first}'", 2)
        _check_rope(X, p, inv_freq=t.inv_freq)
        return [_T(*X)]


class _Rope(_RopeFamily, _SeqLen):
    pos = operand_def(Scalar)
    traits = traits_def(_Canon())


@_def("rope", "%q = tensorop.rope %x, %pos {theta = 1.000000e+05 : f32, heads = 9 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, index) -> tensor<?x576xf32>")
class RopeOp(_Rope):
    __doc__ = _ROPE_DOC + "\n    Row i has position `pos + i` (`pos + i mod seq_len` with `seq_len > 0`)."
    x = operand_def(AnyTensor)


RopeGradOp = _op(_Rope, "rope_grad", "Gradient of `rope` (same properties): the inverse rotation of `dy`.",
                 "%dx = tensorop.rope_grad %dy, %pos {heads = 9 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, index) -> tensor<?x576xf32>",
                 dy=operand_def(AnyTensor))


@_def("rope_rows", "%q = tensorop.rope_rows %x, %p {heads = 9 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, tensor<?xi32>) -> tensor<?x576xf32>")
class RopeRowsOp(_RopeFamily):
    __doc__ = _ROPE_DOC + "\n    Row i has position `positions[i]` (i32): the rows of a slot-batched decode."
    x, positions = operand_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        X = super().infer(t, p, r)[0].get_shape()
        _rows(t.positions, "positions", X[0])
        return [_T(*X)]


# Attention -------------------------------------------------------------------------


class _Attention(_SeqLen, TensorOp):
    """Causal multi-head attention with grouped-query K/V: query head h reads kv head
    `h / (heads / kv_heads)`; scores `scale · q·kᵀ` (then `softcap · tanh(s / softcap)`
    when `softcap > 0`); with `window > 0` a query at position p sees keys in `(p - window, p]`.
    The default `scale` is `1/sqrt(head_dim)`."""
    heads = _i64()
    kv_heads = _i64()
    head_dim = _i64()
    scale = _f32()
    window = _i64(0)
    softcap = _f32(0.0)

    def __init__(self, *operands, scale: float | None = None, **props):
        super().__init__(*operands, scale=1.0 / math.sqrt(props["head_dim"]) if scale is None else scale, **props)

    @classmethod
    def check(cls, t, p, kv) -> tuple[int, int, int]:
        """q against the properties, k and v (shapes by `kv(type, what)`, row width last)
        alike; returns (T, S, kv width)."""
        _positive(p, "heads", "kv_heads", "head_dim")
        if p.heads % p.kv_heads:
            raise VerifyException(f"heads ({p.heads}) must be a multiple of kv_heads ({p.kv_heads})")
        _positive(p, "scale")
        _nonneg(p, "window", "softcap")
        Q = _tensor(t.q, "operand 'q'", 2)
        K, V = kv(t.k, "operand 'k'"), kv(t.v, "operand 'v'")
        _dim(Q[1], p.heads * p.head_dim, "q row size (heads * head_dim)")
        _dim(K[-1], p.kv_heads * p.head_dim, "k row size (kv_heads * head_dim)")
        S = _same_shape(K, V, "'k' and 'v'")
        return Q[0], S[-2], S[-1]


@_def("causal_attention", "%o = tensorop.causal_attention %q, %k, %v {heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64, scale = 1.250000e-01 : f32} : (tensor<?x576xf32>, tensor<?x192xf32>, tensor<?x192xf32>) -> tensor<?x576xf32>", "%o2 = tensorop.causal_attention %q, %kc, %vc, pos %p {heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64, scale = 1.250000e-01 : f32} : (tensor<?x576xf32>, tensor<2048x192xf32>, tensor<2048x192xf32>, index) -> tensor<?x576xf32>")
class CausalAttentionOp(_Attention):
    __doc__ = _Attention.__doc__ + """
    Without `pos`, q, k and v hold the same T tokens (with `seq_len > 0`: a batch of
    sequences, none attending outside its own). With `pos`, k and v are KV caches
    `[S, kv_heads*head_dim]` (f32, f16 or q8_0, see `kv_write`) and query row i, at
    position `pos + i`, attends to cache rows `0 .. pos+i`."""

    q, k, v = operand_defs(3)
    pos = opt_operand_def(Scalar)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        if t.pos is None:
            T, S, _ = cls.check(t, p, _matrix)
            _dim(S, T, "k/v row count (no pos: same tokens as q)")
        else:
            T, S, _ = cls.check(t, p, lambda ty, what: _kv_cache(ty, what, p.head_dim))
            if t.k.element_type != t.v.element_type:
                raise VerifyException(f"'k' and 'v' caches have different element types: {t.k} and {t.v}")
            if S == DYN:
                raise VerifyException("with 'pos', k and v are KV caches and need a static row count")
            if p.seq_len:
                raise VerifyException("seq_len (a batch of sequences) needs the no-cache form")
        cls.check_seq_len(T, p)
        return [_T(T, p.heads * p.head_dim)]


@_def("causal_attention_grad", "%dq, %dk, %dv = tensorop.causal_attention_grad %do, %q, %k, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, scale = 2.500000e-01 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)")
class CausalAttentionGradOp(_Attention):
    """Gradients of `causal_attention` (no-cache form, same properties) w.r.t. q, k, v;
    the probabilities are recomputed from q and k."""
    dout, q, k, v = operand_defs(4)
    dq, dk, dv = result_defs(3)

    @classmethod
    def infer(cls, t, p, r):
        T, S, W = cls.check(t, p, _matrix)
        _dim(S, T, "k/v row count")
        cls.check_seq_len(T, p)
        _same_shape(_tensor(t.dout, "operand 'dout'", 2), (T, p.heads * p.head_dim), "'dout' and the attention output")
        return [_T(T, p.heads * p.head_dim), _T(S, W), _T(S, W)]


@_def("kv_write", "%kc1 = tensorop.kv_write %kc, %k, %pos : (tensor<2048x192xf32>, tensor<?x192xf32>, index) -> tensor<2048x192xf32>", "%kh1 = tensorop.kv_write %kh, %k, %pos : (tensor<2048x192xf16>, tensor<?x192xf32>, index) -> tensor<2048x192xf16>")
class KVWriteOp(_Single):
    """Writes T fp32 rows into a KV cache (f32, f16 or q8_0) at rows `pos .. pos+T-1`."""
    INPLACE: ClassVar[dict[int, str]] = {0: "cache"}
    cache, x = operand_defs(2)
    pos = operand_def(Scalar)

    @classmethod
    def infer(cls, t, p, r):
        C = _kv_cache(t.cache, "cache")
        _static(C, "cache")
        X = _tensor(t.x, "operand 'x'", 2)
        _dim(X[1], C[1], "row size of 'x'")
        if X[0] != DYN and X[0] > C[0]:
            raise VerifyException(f"{X[0]} rows do not fit a cache of {C[0]} rows")
        return [t.cache]


# Slot-batched decode (`lower-transformer{modes=decode_batch slots=N}`): the rows
# of one call belong to different sequences, row i in KV-cache slot `slots[i]` at
# position `positions[i]` (i32 vectors). Slot caches are `[slots, context,
# kv_heads*head_dim]`; `kv_scatter` writes every row before `slot_attention` reads.


def _slot_cache(t, what: str) -> tuple[int, ...]:
    C = _tensor(t, what, 3)
    _static(C, what)
    return C


@_def("kv_scatter", "%kc1 = tensorop.kv_scatter %kc, %k, %s, %p : (tensor<4x2048x192xf32>, tensor<?x192xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<4x2048x192xf32>")
class KVScatterOp(_Single):
    """Writes row i of `x` into the slot cache at `[slots[i], positions[i]]`."""
    INPLACE: ClassVar[dict[int, str]] = {0: "cache"}
    cache, x, slots, positions = operand_defs(4)

    @classmethod
    def infer(cls, t, p, r):
        W = _slot_cache(t.cache, "cache")[2]
        X = _tensor(t.x, "operand 'x'", 2)
        _dim(X[1], W, "row size of 'x'")
        _rows(t.slots, "slots", X[0])
        _rows(t.positions, "positions", X[0])
        return [t.cache]


@_def("slot_attention", "%o = tensorop.slot_attention %q, %kc, %vc, %s, %p {heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64, scale = 1.250000e-01 : f32} : (tensor<?x576xf32>, tensor<4x2048x192xf32>, tensor<4x2048x192xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x576xf32>")
class SlotAttentionOp(_Attention):
    """`causal_attention` on slot caches: query row i attends to rows
    `0 .. positions[i]` of slot `slots[i]` (seq_len must be 0)."""
    q, k, v, slots, positions = operand_defs(5)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        if p.seq_len:
            raise VerifyException("seq_len does not apply to slot caches")
        T, _, _ = cls.check(t, p, _slot_cache)
        _rows(t.slots, "slots", T)
        _rows(t.positions, "positions", T)
        return [_T(T, p.heads * p.head_dim)]


@_def("gather_rows", "%y = tensorop.gather_rows %x, %r : (tensor<?x576xf32>, tensor<?xi32>) -> tensor<?x576xf32>")
class GatherRowsOp(_Single):
    """Rows `rows[i]` of `x`: `@decode_batch` keeps the rows whose logits are wanted."""
    x, rows = operand_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        return [_T(_rows(t.rows, "rows"), _tensor(t.x, "operand 'x'", 2)[1])]


# Embeddings, positions, views -----------------------------------------------------------


class _EmbeddingScale(TensorOp):
    scale = opt_prop_def(FloatAttr[Float32Type])
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())


@_def("embedding", "%x = tensorop.embedding %table, %tokens : (tensor<49152x576xf32>, tensor<?xi32>) -> tensor<?x576xf32>")
class EmbeddingOp(_EmbeddingScale):
    """Row gather `y[i] = table[tokens[i]] * scale` (scale optional; Gemma's sqrt(hidden))."""
    table, tokens = operand_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        W = _stored(t.table, "table", 2)
        _static(W, "table")
        T = _rows(t.tokens, "tokens")
        _finite(p.scale, "scale")
        return [_T(T, W[1])]


@_def("embedding_grad", "%dt = tensorop.embedding_grad %dy, %tokens {vocab = 256 : i64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<256x64xf32>")
class EmbeddingGradOp(_EmbeddingScale):
    """Gradient of `embedding` w.r.t. the table: `dtable[tokens[i]] += dy[i] * scale` (`[vocab, C]`)."""
    dy, tokens = operand_defs(2)
    vocab = _i64()

    @classmethod
    def infer(cls, t, p, r):
        DY = _tensor(t.dy, "operand 'dy'", 2)
        _dim(_rows(t.tokens, "tokens"), DY[0], "token count")
        _positive(p, "vocab")
        if DY[1] == DYN:
            raise VerifyException("operand 'dy' must have a static row size")
        _finite(p.scale, "scale")
        return [_T(p.vocab, DY[1])]


@_def("positions", "%ids = tensorop.positions %tokens, %pos : (tensor<?xi32>, index) -> tensor<?xi32>")
class PositionsOp(_SeqLen, _Single):
    """The positions `pos + i` (`pos + i mod seq_len`) of the rows of `tokens`, for
    learned position embeddings."""
    tokens = operand_def(AnyTensor)
    pos = operand_def(Scalar)

    @classmethod
    def infer(cls, t, p, r):
        T = _rows(t.tokens, "tokens")
        cls.check_seq_len(T, p)
        return [_T(T, elem=i32)]


class _View(TensorOp):
    """`x` seen with another shape; the result may alias x's storage (`VIEW_OF`)."""
    VIEW_OF: ClassVar[str | None] = "x"
    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())


@_def("reshape", "%y = tensorop.reshape %x : (tensor<?x576xf32>) -> tensor<?x9x64xf32>")
class ReshapeOp(_View):
    """Reinterprets a row-major tensor with the given result type (same elements)."""

    def __init__(self, x, type: TensorType):  # the result type positionally
        super().__init__(x, result_types=[type])

    @classmethod
    def infer(cls, t, p, r):
        if not isinstance(t.x, TensorType):
            raise VerifyException(f"operand 'x' must be a tensor, got {t.x}")
        if r is None or len(r) != 1 or not isinstance(r[0], TensorType):
            raise VerifyException("result must be one tensor")
        if r[0].element_type != t.x.element_type:
            raise VerifyException(f"element type changes from {t.x.element_type} to {r[0].element_type}")
        a, b = t.x.get_shape(), r[0].get_shape()
        if DYN not in a and DYN not in b and math.prod(a) != math.prod(b):
            raise VerifyException(f"element count changes from {math.prod(a)} to {math.prod(b)}")
        if (DYN in a) != (DYN in b):
            raise VerifyException(f"a dynamic dim must stay dynamic: {_fmt_shape(a)} -> {_fmt_shape(b)}")
        sa, sb = (math.prod(x for x in s if x != DYN) for s in (a, b))
        if DYN in a and (sa == 0 or sb == 0 or (sa % sb and sb % sa)):
            raise VerifyException(f"static sizes {_fmt_shape(a)} and {_fmt_shape(b)} cannot hold the same elements")
        return [r[0]]


@_def("last_rows", "%h = tensorop.last_rows %x : (tensor<?x576xf32>) -> tensor<1x576xf32>")
class LastRowsOp(_View):
    """The last `count` rows of a 2-D tensor (prefill's logits of the last token)."""
    count = _i64(1)

    @classmethod
    def infer(cls, t, p, r):
        X = _tensor(t.x, "operand 'x'", 2)
        _positive(p, "count")
        if X[0] != DYN and X[0] < p.count:
            raise VerifyException(f"count {p.count} exceeds the {X[0]} rows of 'x'")
        return [_T(p.count, X[1])]


@_def("transpose", "%y = tensorop.transpose %x : (tensor<?x64xf32>) -> tensor<64x?xf32>")
class TransposeOp(_View):
    """`[M, N] -> [N, M]` (a copy: its own gradient)."""
    VIEW_OF: ClassVar[str | None] = None

    @classmethod
    def infer(cls, t, p, r):
        if not isinstance(t.x, TensorType):
            raise VerifyException(f"operand 'x' must be a tensor, got {t.x}")
        if len(X := t.x.get_shape()) != 2:
            raise VerifyException(f"operand 'x' must have rank 2, got {t.x}")
        return [TensorType(t.x.element_type, [X[1], X[0]])]


# Loss ----------------------------------------------------------------------------------


class _CrossEntropy:
    """Cross-entropy of `logits [T, V]` against i32 `targets [T]`; rows whose target is
    `ignore_index` are skipped (the mean is over the others)."""
    ignore_index = _i64(-100)

    @classmethod
    def check(cls, t) -> tuple[int, int]:
        L = _tensor(t.logits, "logits", 2)
        _dim(_rows(t.targets, "targets"), L[0], "target count")
        return L


@_def("cross_entropy", "%loss = tensorop.cross_entropy %logits, %targets : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>")
class CrossEntropyOp(_CrossEntropy, _Single):
    """The mean loss (0-d)."""
    logits, targets = operand_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        cls.check(t)
        return [_T()]


@_def("cross_entropy_grad", "%dl = tensorop.cross_entropy_grad %dloss, %logits, %targets : (tensor<f32>, tensor<?x256xf32>, tensor<?xi32>) -> tensor<?x256xf32>")
class CrossEntropyGradOp(_CrossEntropy, _Single):
    """Gradient w.r.t. the logits: `dloss * (softmax(logits) - onehot(targets)) / n_valid`."""
    dloss, logits, targets = operand_defs(3)

    @classmethod
    def infer(cls, t, p, r):
        _tensor(t.dloss, "dloss", 0)
        return [_T(*cls.check(t))]


class _GradScale:
    grad_scale = _f32(1.0)


@_def("cross_entropy_fused", "%loss, %dlogits = tensorop.cross_entropy_fused %logits, %targets {grad_scale = 5.000000e-01 : f32} : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x256xf32>)")
class CrossEntropyFusedOp(_CrossEntropy, _GradScale, TensorOp):
    """The loss and `dlogits` (as `cross_entropy_grad` with `dloss = grad_scale`) in one pass."""
    logits, targets = operand_defs(2)
    loss, dlogits = result_defs(2)

    @classmethod
    def infer(cls, t, p, r):
        _finite(p.grad_scale, "grad_scale")
        return [_T(), _T(*cls.check(t))]


# Optimizer and gradient helpers ----------------------------------------------------------


@_def("adamw_update", "%p1, %m1, %v1 = tensorop.adamw_update %p, %g, %m, %v, %lr, %step {weight_decay = 1.000000e-01 : f32} : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, f32, index) -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)")
class AdamWUpdateOp(TensorOp):
    """One AdamW step (`t = step`, 1-based): `m = b1·m + (1-b1)·g`, `v = b2·v + (1-b2)·g²`,
    `p -= lr·(m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + weight_decay·p)`; new p, m, v."""
    INPLACE: ClassVar[dict[int, str]] = {0: "param", 1: "m", 2: "v"}
    param, grad, m, v = operand_defs(4)
    lr = operand_def(F32Scalar)
    step = operand_def(Scalar)
    beta1 = _f32(0.9)
    beta2 = _f32(0.999)
    eps = _f32(1e-8)
    weight_decay = _f32(0.0)
    new_param, new_m, new_v = result_defs(3)

    @classmethod
    def infer(cls, t, p, r):
        P = _tensor(t.param, "param")
        _static(P, "param")
        for name in ("grad", "m", "v"):
            _same_shape(_tensor(getattr(t, name), name), P, f"'{name}' and 'param'")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(p, name) < 1.0:
                raise VerifyException(f"{name} must be in [0, 1), got {_num(getattr(p, name))}")
        _positive(p, "eps")
        _nonneg(p, "weight_decay")
        return [t.param] * 3


@_def("accumulate", "%g1 = tensorop.accumulate %g0, %dw : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>")
class AccumulateOp(_Single):
    """Gradient accumulation `acc + x`, into the accumulator's buffer."""
    INPLACE: ClassVar[dict[int, str]] = {0: "acc"}
    acc, x = operand_defs(2)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        _alike(t, "acc", "x")
        return [t.acc]


@_def("global_norm", "%n = tensorop.global_norm %g0, %g1 : (tensor<64x64xf32>, tensor<64xf32>) -> tensor<f32>")
class GlobalNormOp(_Single):
    """`sqrt(sum_i sum(g_i²))` over all operands (0-d), for gradient clipping."""
    grads = var_operand_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        if not t.grads:
            raise VerifyException("needs at least one operand")
        for i, g in enumerate(t.grads):
            _tensor(g, f"operand #{i}")
        return [_T()]


@_def("clip_by_norm", "%gc = tensorop.clip_by_norm %g, %n {max_norm = 5.000000e-01 : f32} : (tensor<64x64xf32>, tensor<f32>) -> tensor<64x64xf32>")
class ClipByNormOp(_Single):
    """`g * min(1, max_norm / (norm + 1e-6))` given the `global_norm` (PyTorch clip_grad_norm_)."""
    g, norm = operand_defs(2)
    max_norm = _f32(1.0)

    @classmethod
    def infer(cls, t, p, r):
        G = _tensor(t.g, "operand 'g'")
        _tensor(t.norm, "norm", 0)
        _positive(p, "max_norm")
        return [_T(*G)]


# Fused ops --------------------------------------------------------------------------------


@_def("rmsnorm_qkv_rope", "%q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wv, %pos {eps = 1.000000e-05 : f32, heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, tensor<576xf32>, tensor<576x576xf32>, tensor<192x576xf32>, tensor<192x576xf32>, index) -> (tensor<?x576xf32>, tensor<?x192xf32>, tensor<?x192xf32>)")
class RMSNormQKVRopeOp(_RopeProps, TensorOp):
    """`h = rmsnorm(x, norm_w)`, `q = rope(h·wqᵀ + bq; heads)`, `k = rope(h·wkᵀ + bk; kv_heads)`,
    `v = h·wvᵀ + bv` in one op (`fuse-rmsnorm-qkv-rope`; biases optional, RoPE as `rope`)."""
    PY_DEFAULTS: ClassVar = RMSNormOp.PY_DEFAULTS
    x, norm_w, wq, wk, wv = operand_defs(5)
    pos = operand_def(Scalar)
    bq, bk, bv, inv_freq = (opt_operand_def(AnyTensor) for _ in range(4))
    heads = _i64()
    kv_heads = _i64()
    head_dim = _i64()
    eps = _f32()
    offset = _f32(0.0)
    q, k, v = result_defs(3)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        X = _tensor(t.x, "operand 'x'", 2)
        C = X[1]
        if C == DYN:
            raise VerifyException("operand 'x' must have a static row size")
        _dim(_tensor(t.norm_w, "norm weight", 1)[0], C, "norm weight size")
        _positive(p, "eps", "kv_heads")
        if p.heads > 0 and p.heads % p.kv_heads:
            raise VerifyException(f"heads ({p.heads}) must be a multiple of kv_heads ({p.kv_heads})")
        nq, nk = p.heads * p.head_dim, p.kv_heads * p.head_dim
        _check_rope((X[0], nq), p, inv_freq=t.inv_freq)
        for w, b, rows in (("wq", "bq", nq), ("wk", "bk", nk), ("wv", "bv", nk)):
            if (W := _tensor(getattr(t, w), w, 2)) != (rows, C):
                raise VerifyException(f"{w} has shape {_fmt_shape(W)}, expected [{rows}, {C}]")
            if getattr(t, b) is not None:
                _dim(_tensor(getattr(t, b), b, 1)[0], rows, f"size of '{b}'")
        return [_T(X[0], nq), _T(X[0], nk), _T(X[0], nk)]


# Every op defined above, in definition order.
TENSOROP_OPS = [v for v in list(globals().values()) if isinstance(v, type) and issubclass(v, IRDLOperation)
                and getattr(v, "name", "").startswith("tensorop.")]

Tensorop = Dialect("tensorop", TENSOROP_OPS, [])
