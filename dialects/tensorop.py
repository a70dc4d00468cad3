"""The `tensorop` dialect: value-semantic tensor ops at whole-tensor granularity.

`lower-transformer` produces it from the `transformer` dialect, `autodiff` adds
the `*_grad` ops and the optimizer, `fuse-rmsnorm-qkv-rope` fuses, and
`bufferize` turns it into kernel calls on buffers.

Conventions (shared by every ckc dialect):

- Tensors are builtin `tensor<...xf32>` (token ids and targets `tensor<?xi32>`),
  row-major. Activations are 2-D `[T, C]`; T (tokens in this call) may be
  dynamic `?`, every model dimension is static. Q/K/V are `[T, heads*head_dim]`
  and `[T, kv_heads*head_dim]`: ops work on whole tensors, never per head or
  per token.
- Linear weights are `[out, in]`: `y = x·Wᵀ + b` is `matmul` with `transpose_b`.
- Runtime scalars (a start position, an optimizer step) are `index` or signless
  integer values; the learning rate is an `f32` value (schedules change it
  every step). Computed scalars (a loss, a norm) are 0-d `tensor<f32>`.
- Every op is Pure (value semantics), so unused ops are removed by `dce` and
  `canonicalize`. Ops meant to update storage in place (`kv_write`,
  `accumulate`, `adamw_update`) return the new value; bufferization reuses the
  operand's buffer for the result (`op.INPLACE`, `op.inplace_operands()`).
  `reshape` and `last_rows` results may alias their input (`op.VIEW_OF`).
- Backward ops (`*_grad`) take the gradient of the forward result first, then
  the forward's inputs (and attributes); they return one gradient per
  differentiable input. `add`/`accumulate` pass gradients through, `scale`,
  `reshape` and `transpose` are their own backward (same op on the gradient).
  `rmsnorm_qkv_rope`, `kv_write`, `last_rows` and `positions` are inference
  only (no gradient).

Python: every op has a constructor inferring its result types, e.g.
`MatmulOp(x, w, bias, transpose_b=True)`, `RopeOp(q, pos, heads=9,
head_dim=64, theta=1e5)` (one constructor for all: `TensorOp.__init__`);
invalid shapes raise VerifyException naming the op. Ops of one family
(unary, binary, their gradients, gated, RoPE, attention) share a base class.
`op.prop_values()` gives the properties as Python values (defaults applied).
`dialects/_tensorop_ref.py` is the executable (PyTorch) reference of every op;
`rope_inv_freq()` computes scaled RoPE frequency tables.

Syntax (`dialects/_syntax.py`, shared with `transformer`). Every op with
operands prints as

    %r = tensorop.<op> %a, %b[, <keyword> %opt]* {props} : (<operand types>) -> <result type(s)>

required operands positional, optional operands introduced by their name, and
properties in the attribute dictionary (defaults elided). `weight`, `constant`
and `zeros` have no operands and print their type only.

Canonicalization patterns (run by upstream `canonicalize`) are in
`passes/_tensorop_canonicalization.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    I64,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i32,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from ckc.dialects._syntax import OperandsSyntax, group_results, split_operands
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    OptionalDef,
    VariadicDef,
    base,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    opt_result_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.pattern_rewriter import RewritePattern
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, HasCanonicalizationPatternsTrait, Pure
from xdsl.utils.exceptions import VerifyException

from ckc.dialects import quant

DYN = DYNAMIC_INDEX

# Operand / property constraints ------------------------------------------------

AnyTensor = base(TensorType)
Scalar = base(IndexType) | base(IntegerType)  # positions, steps
F32Scalar = base(Float32Type)

ROPE_STYLES = ("neox", "interleaved")
GELU_APPROX = ("none", "tanh")  # PyTorch names: none = exact erf


def _f32(default: float | None = None):
    if default is None:
        return prop_def(FloatAttr[Float32Type])
    return prop_def(FloatAttr[Float32Type], FloatAttr(default, f32))


def _i64(default: int | None = None):
    if default is None:
        return prop_def(IntegerAttr[I64])
    return prop_def(IntegerAttr[I64], IntegerAttr(default, i64))


def _str(default: str | None = None):
    if default is None:
        return prop_def(StringAttr)
    return prop_def(StringAttr, StringAttr(default))


def _unit():
    return opt_prop_def(UnitAttr)


# Shape helpers ----------------------------------------------------------------


def _d(x: int) -> str:
    return "?" if x == DYN else str(x)


def _fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(_d(x) for x in shape) + "]"


def _compat(a: int, b: int) -> bool:
    return a == DYN or b == DYN or a == b


def _merge(a: int, b: int) -> int:
    return b if a == DYN else a


def _tensor(t: Attribute, what: str, rank: int | None = None, elem=f32) -> tuple[int, ...]:
    """The shape of `t`, checking it is a tensor of `elem` with `rank` dims."""
    if not isinstance(t, TensorType):
        raise VerifyException(f"{what} must be a tensor, got {t}")
    if t.element_type != elem:
        raise VerifyException(f"{what} must have element type {elem}, got {t}")
    shape = tuple(t.get_shape())
    if rank is not None and len(shape) != rank:
        raise VerifyException(f"{what} must have rank {rank}, got {t}")
    return shape


def _stored(t: Attribute, what: str, rank: int | None = None) -> tuple[int, ...]:
    """The shape of a stored weight `t`: f32, f16, bf16 or a GGUF block format
    (``!quant.q4_1``: rows of whole blocks), see dialects/quant.py."""
    from ckc.dialects import quant

    if not isinstance(t, TensorType):
        raise VerifyException(f"{what} must be a tensor, got {t}")
    if quant.format_name(t.element_type) is None:
        raise VerifyException(f"{what} must have a weight element type (f32, f16, bf16, !quant.*), got {t}")
    shape = tuple(t.get_shape())
    if rank is not None and len(shape) != rank:
        raise VerifyException(f"{what} must have rank {rank}, got {t}")
    why = quant.check_shape(t.element_type, shape)
    if why:
        raise VerifyException(f"{what}: {why}")
    return shape


# Element types a KV cache may be stored in (ckc --kv-type): `kv_write` converts
# fp32 rows into them, the cache form of `causal_attention` reads them.
KV_CACHE_TYPES = ("f32", "f16", "q8_0")


def _kv_cache(t: Attribute, what: str, head_dim: int | None = None) -> tuple[int, ...]:
    """The shape of a 2-D KV cache `t` in one of KV_CACHE_TYPES (Q8_0: heads of whole blocks)."""
    if not isinstance(t, TensorType):
        raise VerifyException(f"{what} must be a tensor, got {t}")
    fmt = quant.format_name(t.element_type)
    if fmt not in KV_CACHE_TYPES:
        raise VerifyException(f"{what} must have element type {', '.join(KV_CACHE_TYPES)}, got {t}")
    shape = tuple(t.get_shape())
    if len(shape) != 2:
        raise VerifyException(f"{what} must have rank 2, got {t}")
    why = quant.check_shape(t.element_type, shape)
    if why is None and head_dim is not None and fmt == "q8_0" and head_dim % 32:
        why = f"head_dim {head_dim} is not a multiple of the q8_0 block (32 values)"
    if why:
        raise VerifyException(f"{what}: {why}")
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


def _positive(value: float | int, what: str) -> None:
    if not value > 0:
        raise VerifyException(f"{what} must be positive, got {_num(value)}")


def _nonneg(value: float | int, what: str) -> None:
    if not value >= 0:
        raise VerifyException(f"{what} must be non-negative, got {_num(value)}")


def _one_of(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise VerifyException(f"{what} must be one of {', '.join(choices)}, got '{value}'")


def _scalar_tensor(t: Attribute, what: str) -> None:
    _tensor(t, what, rank=0)


def _T(*shape: int, elem=f32) -> TensorType:
    return TensorType(elem, list(shape))


def _is_type(t: Attribute | None, expected: Attribute) -> bool:
    if t is None:
        return False
    if isinstance(t, TensorType) and isinstance(expected, TensorType):
        if t.element_type != expected.element_type:
            return False
        a, b = t.get_shape(), expected.get_shape()
        return len(a) == len(b) and all(_compat(x, y) for x, y in zip(a, b))
    return t == expected


class _Args:
    """Attribute access to a dict (operand types or property values by name)."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)




# The common base --------------------------------------------------------------


class TensorOp(OperandsSyntax):
    """Base of every tensorop op with operands: shared syntax (`_syntax.py`),
    verification and construction.

    Subclasses define `infer(t, p, r)`: `t` holds operand types by name (None
    for an absent optional operand, a tuple for a variadic one), `p` property
    values as Python values (defaults applied), `r` the result types when
    known (only ops whose result type is not implied by their operands use
    it). It checks every shape and attribute rule, raising VerifyException,
    and returns the expected result types. `verify_` compares them with the
    actual ones; the constructor uses them as the result types.

    Constructor: `Op(*operands, **properties)`: operands positionally in
    definition order (optional ones also by name), properties by name as
    Python values; `PY_DEFAULTS` supplies Python-side defaults of required
    properties. Invalid shapes raise VerifyException naming the op.
    """

    INPLACE: ClassVar[dict[int, str]] = {}
    """Result index -> name of the operand whose storage that result updates
    in place (bufferization gives both one buffer): `kv_write`,
    `accumulate`, `adamw_update`."""

    VIEW_OF: ClassVar[str | None] = None
    """Name of the operand whose buffer the (single) result may alias without
    a copy: the result is a contiguous range of that operand's row-major
    storage (`reshape`, `last_rows`)."""

    PY_DEFAULTS: ClassVar[dict[str, Any]] = {}

    traits = traits_def(Pure())  # value semantics: every op (subclasses add traits)

    @classmethod
    def infer(cls, t: _Args, p: _Args, r: Sequence[Attribute] | None) -> list[Attribute]:
        raise NotImplementedError

    def inplace_operands(self) -> dict[int, SSAValue]:
        """Result index -> the operand value it updates in place."""
        return {i: getattr(self, name) for i, name in self.INPLACE.items()}

    # -- properties as Python values --------------------------------------

    @classmethod
    def _props(cls) -> dict[str, Any]:
        return {n: d for n, d in cls.get_irdl_definition().properties.items()
                if n != AttrSizedOperandSegments.attribute_name}

    @classmethod
    def _prop_base(cls, name: str) -> type[Attribute]:
        constr = cls.get_irdl_definition().properties[name].constr
        return getattr(constr, "base_attr", None) or getattr(constr, "attr")

    @staticmethod
    def _to_py(attr: Attribute | None) -> Any:
        if isinstance(attr, UnitAttr):
            return True
        if isinstance(attr, FloatAttr | IntegerAttr):
            return attr.value.data
        if isinstance(attr, StringAttr):
            return attr.data
        return attr

    @classmethod
    def _to_attr(cls, name: str, value: Any) -> Attribute | None:
        if value is None or isinstance(value, Attribute):
            return value
        kind = cls._prop_base(name)
        if kind is UnitAttr:
            return UnitAttr() if value else None
        if kind is FloatAttr:
            return FloatAttr(float(value), f32)
        if kind is IntegerAttr:
            return IntegerAttr(int(value), i64)
        if kind is StringAttr:
            return StringAttr(str(value))
        raise TypeError(f"{cls.name}: cannot convert {value!r} for property '{name}'")

    @classmethod
    def _py_values(cls, attrs: dict[str, Attribute | None]) -> dict[str, Any]:
        """Python values of every property, defaults applied (units as bool)."""
        out: dict[str, Any] = {}
        for name, pdef in cls._props().items():
            value = cls._to_py(attrs.get(name, pdef.default_value))
            out[name] = False if value is None and cls._prop_base(name) is UnitAttr else value
        return out

    def prop_values(self) -> dict[str, Any]:
        """Property values as Python values, defaults applied (units as bool)."""
        return self._py_values(dict(self.properties))

    # -- verification -------------------------------------------------------

    def operand_type_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, odef in self.get_irdl_definition().operands:
            value = getattr(self, name)
            if isinstance(odef, OptionalDef):
                out[name] = None if value is None else value.type
            elif isinstance(odef, VariadicDef):
                out[name] = tuple(v.type for v in value)
            else:
                out[name] = value.type
        return out

    def verify_(self) -> None:
        expected = self.infer(
            _Args(self.operand_type_map()), _Args(self.prop_values()), [r.type for r in self.results]
        )
        if len(expected) != len(self.results):
            raise VerifyException(f"expected {len(expected)} results, got {len(self.results)}")
        for i, (res, exp) in enumerate(zip(self.results, expected)):
            if not _is_type(res.type, exp):
                raise VerifyException(
                    f"result #{i} has type {res.type}, expected a type compatible with {exp}"
                )

    # -- construction ---------------------------------------------------------

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
        super().__init__(
            operands=groups,
            result_types=group_results(cls.get_irdl_definition(), rtypes),
            properties={k: v for k, v in attrs.items() if v is not None},
        )


# Canonicalization traits (patterns are defined at the end of the module) -------


class _Canon(HasCanonicalizationPatternsTrait):
    """The op's canonicalization patterns, kept in
    ``passes/_tensorop_canonicalization.py`` (as xDSL keeps its dialects'
    in ``xdsl/transforms/canonicalization_patterns/``)."""

    def get_patterns(self, op: type[Operation]) -> tuple[RewritePattern, ...]:
        from ckc.passes._tensorop_canonicalization import PATTERNS

        return PATTERNS.get(op.name, ())

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        return ()


# ============================================================================
# Values: weights, constants
# ============================================================================


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A named model parameter (GGUF tensor naming), static f32 shape.

    The same names, shapes and `offset` as `transformer.weight`: `offset`
    (default 0) selects rows `[offset, offset + shape[0])` of a stored tensor
    (GPT-2's fused `attn_qkv`), a pointer offset into the weights region.

    ```mlir
    %wq = tensorop.weight "blk.0.attn_q.weight" : tensor<576x576xf32>
    %wk = tensorop.weight "blk.0.attn_qkv.weight" offset 64 : tensor<64x64xf32>
    ```
    """

    name = "tensorop.weight"
    tensor_name = prop_def(StringAttr)
    offset = prop_def(IntegerAttr[I64], IntegerAttr(0, i64))
    result = result_def(AnyTensor)
    traits = traits_def(Pure())
    assembly_format = "$tensor_name (`offset` $offset^)? attr-dict `:` type($result)"

    def __init__(
        self,
        tensor_name: str | StringAttr,
        type: TensorType | Sequence[int],
        *,
        offset: int = 0,
    ):
        if isinstance(tensor_name, str):
            tensor_name = StringAttr(tensor_name)
        if not isinstance(type, TensorType):
            type = TensorType(f32, list(type))
        props: dict[str, Attribute] = {"tensor_name": tensor_name}
        if offset:
            props["offset"] = IntegerAttr(offset, i64)
        super().__init__(properties=props, result_types=[type])

    def verify_(self) -> None:
        if not self.tensor_name.data:
            raise VerifyException("weight name must not be empty")
        shape = _stored(self.result.type, f"weight '{self.tensor_name.data}'")
        _static(shape, f"weight '{self.tensor_name.data}'")
        if not shape:
            raise VerifyException(f"weight '{self.tensor_name.data}' must have rank >= 1")
        if self.offset.value.data < 0:
            raise VerifyException(f"offset must be >= 0, got {self.offset.value.data}")


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A constant tensor from a dense elements attribute (static shape).

    ```mlir
    %c = tensorop.constant dense<5.000000e-01> : tensor<4x8xf32>
    ```
    """

    name = "tensorop.constant"
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
        if len(values) == 0:
            return None
        v0 = values[0]
        return v0 if all(v == v0 for v in values) else None

    def verify_(self) -> None:
        if self.value.type != self.result.type:
            raise VerifyException(
                f"result type {self.result.type} differs from the value's type {self.value.type}"
            )
        if not isinstance(self.result.type, TensorType):
            raise VerifyException(f"result must be a tensor, got {self.result.type}")
        _static(self.result.type.get_shape(), "constant")

    @classmethod
    def parse(cls, parser: Parser):
        start = parser.pos
        value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error("expected a dense elements attribute", start, parser.pos)
        attrs = parser.parse_optional_attr_dict()
        op = cls(value)
        op.attributes.update(attrs)
        return op

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)


@irdl_op_definition
class ZerosOp(IRDLOperation):
    """A tensor of zeros (static shape): initial accumulators, optimizer state.

    ```mlir
    %z = tensorop.zeros : tensor<576x576xf32>
    ```
    """

    name = "tensorop.zeros"
    result = result_def(AnyTensor)
    traits = traits_def(Pure(), ConstantLike())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type: TensorType):
        super().__init__(result_types=[type])

    def verify_(self) -> None:
        t = self.result.type
        if not isinstance(t, TensorType):
            raise VerifyException(f"result must be a tensor, got {t}")
        _static(t.get_shape(), "zeros")




# ============================================================================
# Families: the fields and shape rule several ops share (a subclass's own
# fields come first, then its bases', in method resolution order)
# ============================================================================


def _unary(t) -> list[Attribute]:
    return [_T(*_tensor(t.x, "operand 'x'"))]


def _grad_of_unary(t) -> list[Attribute]:
    DY = _tensor(t.dy, "operand 'dy'")
    X = _tensor(t.x, "operand 'x'")
    return [_T(*_same_shape(DY, X, "'dy' and 'x'"))]


class _Check:
    """`check(p)`: the property rules of an elementwise family member."""

    @classmethod
    def check(cls, p) -> None:
        pass


class _Unary(_Check, TensorOp):
    """`y = f(x)` elementwise: one tensor in, one of the same shape out."""

    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        cls.check(p)
        return _unary(t)


class _UnaryGrad(_Check, TensorOp):
    """The gradient of a `_Unary` op from its input: `dx = dy * f'(x)`."""

    dy = operand_def(AnyTensor)
    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        cls.check(p)
        return _grad_of_unary(t)


def _elementwise_binary(t, what: str = "operands") -> list[Attribute]:
    A = _tensor(t.a, "operand 'a'")
    B = _tensor(t.b, "operand 'b'")
    return [_T(*_same_shape(A, B, what))]


class _Binary(TensorOp):
    """`y = a ∘ b` elementwise on two tensors of the same shape."""

    a = operand_def(AnyTensor)
    b = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        return _elementwise_binary(t)


def _gated(t) -> tuple[int, ...]:
    G = _tensor(t.gate, "operand 'gate'", 2)
    U = _tensor(t.up, "operand 'up'", 2)
    return _same_shape(G, U, "'gate' and 'up'")


class _Gated(_Check, TensorOp):
    """`y = act(gate) * up` (a gated MLP activation)."""

    gate = operand_def(AnyTensor)
    up = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        cls.check(p)
        return [_T(*_gated(t))]


class _GatedGrad(_Check, TensorOp):
    """Gradients of a `_Gated` op: `dgate`, `dup`."""

    dy = operand_def(AnyTensor)
    gate = operand_def(AnyTensor)
    up = operand_def(AnyTensor)
    dgate = result_def(AnyTensor)
    dup = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        cls.check(p)
        S = _same_shape(_tensor(t.dy, "operand 'dy'", 2), _gated(t), "'dy' and 'gate'")
        return [_T(*S), _T(*S)]


class _Approximate(_Check):
    """GELU's `approximate`: `none` (exact erf form, default) or `tanh`, as
    PyTorch's `F.gelu`."""

    approximate = _str("none")

    @classmethod
    def check(cls, p) -> None:
        _one_of(p.approximate, GELU_APPROX, "approximate")


class _Cap(_Check):
    cap = _f32()

    @classmethod
    def check(cls, p) -> None:
        _positive(p.cap, "cap")


class _RopeProps:
    """The RoPE property set (after `heads`, `head_dim`)."""

    theta = _f32(10000.0)
    style = _str("neox")
    rotary_dim = opt_prop_def(IntegerAttr[I64])


class _SeqLen:
    """`seq_len` (0 = one sequence) splits the rows into independent
    sequences of seq_len rows (a batch of B sequences is `[B*seq_len, C]`)."""

    seq_len = _i64(0)


class _NormProps:
    eps = _f32()
    offset = _f32(0.0)


class _AttentionProps(_SeqLen):
    heads = _i64()
    kv_heads = _i64()
    head_dim = _i64()
    scale = _f32()
    window = _i64(0)
    softcap = _f32(0.0)

    def __init__(self, *operands, scale: float | None = None, **props):
        if scale is None:
            scale = 1.0 / math.sqrt(props["head_dim"])
        super().__init__(*operands, scale=scale, **props)


def _op(bases: type | tuple[type, ...], name: str, doc: str, example: str, **fields: Any) -> Any:
    """A family member: `bases` with the op's name, docstring (its ```mlir
    `example` appended) and any fields of its own."""
    cls_name = "".join(w.capitalize() for w in name.split("_")) + "Op"
    doc = f"{doc}\n\n    ```mlir\n    {example}\n    ```\n    "
    body = {"name": f"tensorop.{name}", "__doc__": doc, "__module__": __name__, **fields}
    return irdl_op_definition(type(cls_name, bases if isinstance(bases, tuple) else (bases,), body))


class _IgnoreIndex:
    ignore_index = _i64(-100)


# ============================================================================
# Ops, each backward op after its forward op. Backward ops (`*_grad`) take
# the gradient of the forward result first.
# ============================================================================


@irdl_op_definition
class ZerosLikeOp(TensorOp):
    """Zeros with the type (and dynamic sizes) of its operand.

    ```mlir
    %z = tensorop.zeros_like %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "tensorop.zeros_like"
    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        if not isinstance(t.x, TensorType):
            raise VerifyException(f"operand 'x' must be a tensor, got {t.x}")
        return [t.x]


class _MatmulProps:
    transpose_a = _unit()
    transpose_b = _unit()


@irdl_op_definition
class MatmulOp(_MatmulProps, TensorOp):
    """Matrix product of two 2-D tensors, with an optional bias row.

    `y = op(a) · op(b) (+ bias)` where `op` transposes when `transpose_a` /
    `transpose_b` is set. A linear layer (weights `[out, in]`) is
    `transpose_b`: `[T, in] x [out, in] -> [T, out]`; the bias is `[out]`.

    ```mlir
    %y = tensorop.matmul %x, %w, bias %b {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
    ```
    """

    name = "tensorop.matmul"
    a = operand_def(AnyTensor)
    b = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def dims(cls, t, p) -> tuple[int, int, int]:
        A = _tensor(t.a, "operand 'a'", 2)
        B = _stored(t.b, "operand 'b'", 2)
        M, Ka = (A[1], A[0]) if p.transpose_a else A
        Kb, N = (B[1], B[0]) if p.transpose_b else B
        if not _compat(Ka, Kb):
            raise VerifyException(
                f"contraction sizes differ: {_d(Ka)} from 'a' {_fmt_shape(A)}, "
                f"{_d(Kb)} from 'b' {_fmt_shape(B)}"
            )
        return M, _merge(Ka, Kb), N

    @classmethod
    def infer(cls, t, p, r):
        M, _, N = cls.dims(t, p)
        if t.bias is not None:
            (nb,) = _tensor(t.bias, "bias", 1)
            _dim(nb, N, "bias size")
        return [_T(M, N)]


@irdl_op_definition
class MatmulGradOp(TensorOp):
    """Gradients of `matmul` (same flags): `da`, `db` (types of `a`, `b`) and,
    with `has_bias`, `dbias` (the column sums of `dy`).

    For a linear layer (`transpose_b`): `dx = dy · W`, `dW = dyᵀ · x`.

    ```mlir
    %dx, %dw, %db = tensorop.matmul_grad %dy, %x, %w {transpose_b, has_bias} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>)
    ```
    """

    name = "tensorop.matmul_grad"
    dy = operand_def(AnyTensor)
    a = operand_def(AnyTensor)
    b = operand_def(AnyTensor)
    transpose_a = _unit()
    transpose_b = _unit()
    has_bias = _unit()
    da = result_def(AnyTensor)
    db = result_def(AnyTensor)
    dbias = opt_result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        M, _, N = MatmulOp.dims(t, p)
        DY = _tensor(t.dy, "operand 'dy'", 2)
        _same_shape(DY, (M, N), "'dy' and the matmul result")
        return [t.a, t.b] + ([_T(N)] if p.has_bias else [])


AddOp = _op(_Binary, "add", "Elementwise sum of two tensors of the same shape.",
            "%y = tensorop.add %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")

MulOp = _op(_Binary, "mul", "Elementwise product of two tensors of the same shape.",
            "%y = tensorop.mul %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")


@irdl_op_definition
class MulGradOp(TensorOp):
    """Gradients of `mul`: `da = dy * b`, `db = dy * a`.

    ```mlir
    %da, %db = tensorop.mul_grad %dy, %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
    """

    name = "tensorop.mul_grad"
    dy = operand_def(AnyTensor)
    a = operand_def(AnyTensor)
    b = operand_def(AnyTensor)
    da = result_def(AnyTensor)
    db = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        S = _elementwise_binary(t)[0].get_shape()
        _same_shape(_tensor(t.dy, "operand 'dy'"), S, "'dy' and the operands")
        return [t.a, t.b]


@irdl_op_definition
class ScaleOp(TensorOp):
    """Multiplies every element by a constant `factor`.

    It is linear, so it is its own gradient: the backward of `scale` is
    `scale` of the output gradient by the same factor.

    ```mlir
    %y = tensorop.scale %x {factor = 2.400000e+01 : f32} : (tensor<?x576xf32>) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.scale"
    x = operand_def(AnyTensor)
    factor = _f32()
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    def __init__(self, x, factor: float):
        super().__init__(x, factor=factor)

    @classmethod
    def infer(cls, t, p, r):
        if not math.isfinite(p.factor):
            raise VerifyException(f"factor must be finite, got {_num(p.factor)}")
        return _unary(t)


def _norm_weight(t_w, C: int, what: str = "weight") -> int:
    (D,) = _tensor(t_w, what, 1)
    _static((D,), what)
    if C != DYN and (D == 0 or C % D != 0):
        raise VerifyException(
            f"{what} size {D} must divide the normalized dim {C} (one group per {D} elements)"
        )
    return D


@irdl_op_definition
class RMSNormOp(_NormProps, TensorOp):
    """RMS normalization over groups of the last dim, times `offset + weight`.

    `y = x / sqrt(mean(x²) + eps) * (offset + w)`, mean over each group of
    `D = size(w)` consecutive elements of a row. Usually D = C (one group per
    row); Qwen3/Gemma3 QK-norm normalizes each head of `[T, heads*head_dim]`
    with a `[head_dim]` weight in one op. Gemma's `(1 + w)` is `offset = 1.0`.

    ```mlir
    %y = tensorop.rmsnorm %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x576xf32>, tensor<576xf32>) -> tensor<?x576xf32>
    %q = tensorop.rmsnorm %q0, %qn {eps = 1.000000e-06 : f32, offset = 1.000000e+00 : f32} : (tensor<?x512xf32>, tensor<64xf32>) -> tensor<?x512xf32>
    ```
    """

    name = "tensorop.rmsnorm"
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-6}
    x = operand_def(AnyTensor)
    w = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def check(cls, t, p) -> tuple[int, ...]:
        X = _tensor(t.x, "operand 'x'", 2)
        _norm_weight(t.w, X[1])
        _positive(p.eps, "eps")
        return X

    @classmethod
    def infer(cls, t, p, r):
        return [_T(*cls.check(t, p))]


@irdl_op_definition
class RMSNormGradOp(_NormProps, TensorOp):
    """Gradients of `rmsnorm` (same attributes): `dx` and `dw`.

    ```mlir
    %dx, %dw = tensorop.rmsnorm_grad %dy, %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x576xf32>, tensor<?x576xf32>, tensor<576xf32>) -> (tensor<?x576xf32>, tensor<576xf32>)
    ```
    """

    name = "tensorop.rmsnorm_grad"
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-6}
    dy = operand_def(AnyTensor)
    x = operand_def(AnyTensor)
    w = operand_def(AnyTensor)
    dx = result_def(AnyTensor)
    dw = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        X = RMSNormOp.check(t, p)
        _same_shape(_tensor(t.dy, "operand 'dy'", 2), X, "'dy' and 'x'")
        return [_T(*X), t.w]


@irdl_op_definition
class LayerNormOp(_NormProps, TensorOp):
    """Layer normalization over the last dim with weight `[C]` and an
    optional bias `[C]`.

    `y = (x - mean) / sqrt(var + eps) * (offset + w) + b` (biased variance,
    as PyTorch; `offset` is 0 except for (1 + w) style norms).

    ```mlir
    %y = tensorop.layernorm %x, %w, bias %b {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "tensorop.layernorm"
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-5}
    x = operand_def(AnyTensor)
    w = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def check(cls, t, p) -> tuple[int, ...]:
        X = _tensor(t.x, "operand 'x'", 2)
        (W,) = _tensor(t.w, "weight", 1)
        _dim(W, X[1], "weight size")
        _static((W,), "weight")
        if getattr(t, "bias", None) is not None:
            (B,) = _tensor(t.bias, "bias", 1)
            _dim(B, X[1], "bias size")
        _positive(p.eps, "eps")
        return X

    @classmethod
    def infer(cls, t, p, r):
        return [_T(*cls.check(t, p))]


@irdl_op_definition
class LayerNormGradOp(_NormProps, TensorOp):
    """Gradients of `layernorm` (same eps, offset): `dx`, `dw`, `db` (the
    bias itself is not needed; `db` is the column sums of `dy`).

    ```mlir
    %dx, %dw, %db = tensorop.layernorm_grad %dy, %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
    ```
    """

    name = "tensorop.layernorm_grad"
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-5}
    dy = operand_def(AnyTensor)
    x = operand_def(AnyTensor)
    w = operand_def(AnyTensor)
    dx = result_def(AnyTensor)
    dw = result_def(AnyTensor)
    db = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        X = LayerNormOp.check(_Args({"x": t.x, "w": t.w, "bias": None}), p)
        _same_shape(_tensor(t.dy, "operand 'dy'", 2), X, "'dy' and 'x'")
        return [_T(*X), t.w, t.w]


ROPE_SCALINGS = ("none", "linear", "llama3")


def rope_inv_freq(
    rotary_dim: int,
    theta: float,
    scaling: str = "none",
    factor: float = 1.0,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    original_context: int = 0,
) -> list[float]:
    """RoPE inverse frequencies `[rotary_dim/2]`, as transformers computes them
    in float32 (`rope_type` default, linear, llama3): the values of the
    `inv_freq` operand of `rope` / `rope_grad` / `rmsnorm_qkv_rope` when
    scaling is used (without scaling, `theta` alone gives the same table)."""
    import numpy as np

    if scaling not in ROPE_SCALINGS:
        raise ValueError(f"rope scaling must be one of {', '.join(ROPE_SCALINGS)}, got '{scaling}'")
    exps = np.arange(0, rotary_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(rotary_dim)
    inv = (np.float32(1.0) / (np.float32(theta) ** exps)).astype(np.float32)
    if scaling == "linear":
        inv = (inv / np.float32(factor)).astype(np.float32)
    elif scaling == "llama3":
        old = float(original_context)
        low_wl, high_wl = old / low_freq_factor, old / high_freq_factor
        wavelen = (np.float32(2 * math.pi) / inv).astype(np.float32)
        scaled = np.where(wavelen > low_wl, inv / np.float32(factor), inv).astype(np.float32)
        smooth = ((old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)).astype(np.float32)
        smoothed = ((1 - smooth) * scaled / np.float32(factor) + smooth * scaled).astype(np.float32)
        medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
        inv = np.where(medium, smoothed, scaled).astype(np.float32)
    return [float(v) for v in inv]


def rope_inv_freq_constant(rotary_dim: int, theta: float, **scaling) -> "ConstantOp":
    """`rope_inv_freq(...)` as a `tensorop.constant` of type `tensor<[rotary_dim/2]xf32>`."""
    values = rope_inv_freq(rotary_dim, theta, **scaling)
    return ConstantOp(
        DenseIntOrFPElementsAttr.from_list(TensorType(f32, [len(values)]), values)
    )


def _check_seq_len(rows: int, p) -> None:
    """`seq_len` (0 = one sequence) splits the rows into independent
    sequences of seq_len rows (a batch of B sequences is `[B*seq_len, C]`)."""
    _nonneg(p.seq_len, "seq_len")
    if p.seq_len and rows != DYN and rows % p.seq_len:
        raise VerifyException(f"{rows} rows are not a whole number of sequences of {p.seq_len}")


def _check_rope(X: Sequence[int], p, heads_attr: str = "heads", inv_freq=None) -> None:
    heads = getattr(p, heads_attr)
    _positive(heads, heads_attr)
    _positive(p.head_dim, "head_dim")
    rd = p.head_dim if p.rotary_dim is None else p.rotary_dim
    if rd <= 0 or rd > p.head_dim or rd % 2:
        raise VerifyException(
            f"rotary_dim must be even and in (0, head_dim={p.head_dim}], got {rd}"
        )
    _positive(p.theta, "theta")
    _one_of(p.style, ROPE_STYLES, "style")
    _dim(X[1], heads * p.head_dim, f"row size ({heads_attr} * head_dim)")
    if hasattr(p, "seq_len"):
        _check_seq_len(X[0], p)
    if inv_freq is not None:
        (F,) = _tensor(inv_freq, "inv_freq", 1)
        if F != rd // 2:
            raise VerifyException(f"inv_freq has {_d(F)} entries, expected rotary_dim / 2 = {rd // 2}")


_ROPE_DOC = """
    Rotary position embedding on `[T, heads*head_dim]`: row i has position
    `pos + i` (`pos + i mod seq_len` when `seq_len > 0`: a batch of
    sequences, each starting at `pos`); in each head the first `rotary_dim` (default head_dim) features
    rotate with frequencies `theta^(-2j/rotary_dim)`, pairs `(j, j + rd/2)`
    for style `neox` (Llama, Qwen, Gemma in HF layout) or `(2j, 2j+1)` for
    `interleaved` (GGUF/Meta layout); the rest pass through. The optional
    `inv_freq` operand (`[rotary_dim/2]`, usually a `tensorop.constant`)
    replaces the frequencies `theta^(-2j/rotary_dim)`: RoPE scaling (linear,
    llama3) is a different frequency table computed at compile time.
"""


def _check_attention(t, p, cache: bool = False) -> tuple[int, int, int]:
    """Checks q/k/v against the attention attributes; returns (T, S, kv width)."""
    _positive(p.heads, "heads")
    _positive(p.kv_heads, "kv_heads")
    _positive(p.head_dim, "head_dim")
    if p.heads % p.kv_heads:
        raise VerifyException(
            f"heads ({p.heads}) must be a multiple of kv_heads ({p.kv_heads})"
        )
    _positive(p.scale, "scale")
    _nonneg(p.window, "window")
    _nonneg(p.softcap, "softcap")
    Q = _tensor(t.q, "operand 'q'", 2)
    if cache:  # KV caches, possibly stored in f16 / q8_0
        K = _kv_cache(t.k, "operand 'k'", p.head_dim)
        V = _kv_cache(t.v, "operand 'v'", p.head_dim)
        if t.k.element_type != t.v.element_type:
            raise VerifyException(f"'k' and 'v' caches have different element types: {t.k} and {t.v}")
    else:
        K = _tensor(t.k, "operand 'k'", 2)
        V = _tensor(t.v, "operand 'v'", 2)
    _dim(Q[1], p.heads * p.head_dim, "q row size (heads * head_dim)")
    _dim(K[1], p.kv_heads * p.head_dim, "k row size (kv_heads * head_dim)")
    _same_shape(K, V, "'k' and 'v'")
    return Q[0], _merge(K[0], V[0]), K[1]


_ATTN_DOC = """
    Causal multi-head attention with grouped-query (GQA) K/V: query head h
    reads kv head `h / (heads / kv_heads)`; scores are `scale · q·kᵀ`
    (then `softcap · tanh(s / softcap)` when `softcap > 0`), causal, and with
    `window > 0` a query at position p sees keys in `(p - window, p]`
    (sliding window, Gemma3 local layers).
"""




class _Rope(_RopeProps, _SeqLen, TensorOp):
    """`rope` and `rope_grad`: the first operand (x, or dy) rotated."""

    pos = operand_def(Scalar)
    inv_freq = opt_operand_def(AnyTensor)
    heads = _i64()
    head_dim = _i64()
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        first = cls.get_irdl_definition().operands[0][0]
        X = _tensor(getattr(t, first), f"operand '{first}'", 2)
        _check_rope(X, p, inv_freq=t.inv_freq)
        return [_T(*X)]


@irdl_op_definition
class RopeOp(_Rope):
    __doc__ = _ROPE_DOC + """
    ```mlir
    %q = tensorop.rope %x, %pos {theta = 1.000000e+05 : f32, heads = 9 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, index) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.rope"
    x = operand_def(AnyTensor)


RopeGradOp = _op(_Rope, "rope_grad", "Gradient of `rope` (same attributes): the inverse rotation of `dy`.",
                 "%dx = tensorop.rope_grad %dy, %pos {heads = 9 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, index) -> tensor<?x576xf32>", dy=operand_def(AnyTensor))


@irdl_op_definition
class SoftmaxOp(_Unary):
    """Softmax along the last dim.

    ```mlir
    %p = tensorop.softmax %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "tensorop.softmax"

    @classmethod
    def infer(cls, t, p, r):
        if len(_tensor(t.x, "operand 'x'")) < 1:
            raise VerifyException("operand 'x' must have rank >= 1")
        return _unary(t)


@irdl_op_definition
class SoftmaxGradOp(TensorOp):
    """Gradient of `softmax` from its output `y`: `dx = y * (dy - sum(dy*y))`.

    ```mlir
    %dx = tensorop.softmax_grad %dy, %y : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "tensorop.softmax_grad"
    dy = operand_def(AnyTensor)
    y = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        DY = _tensor(t.dy, "operand 'dy'")
        Y = _tensor(t.y, "operand 'y'")
        if len(Y) < 1:
            raise VerifyException("operand 'y' must have rank >= 1")
        return [_T(*_same_shape(DY, Y, "'dy' and 'y'"))]


@irdl_op_definition
class CausalAttentionOp(_AttentionProps, TensorOp):
    __doc__ = _ATTN_DOC + """
    Without `pos`, q, k and v hold the same T tokens (positions 0..T-1);
    with `seq_len > 0` the rows are a batch of independent sequences of
    seq_len rows each and no query attends outside its own sequence.
    With `pos` (the KV-cache form), k and v are caches `[S, kv_heads*head_dim]`
    whose rows `0 .. pos+T-1` are valid (see `kv_write`); query row i has
    position `pos + i` and attends to cache rows `0 .. pos+i`.

    ```mlir
    %o = tensorop.causal_attention %q, %k, %v {heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64, scale = 1.250000e-01 : f32} : (tensor<?x576xf32>, tensor<?x192xf32>, tensor<?x192xf32>) -> tensor<?x576xf32>
    %o2 = tensorop.causal_attention %q, %kc, %vc, pos %p {heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64, scale = 1.250000e-01 : f32} : (tensor<?x576xf32>, tensor<2048x192xf32>, tensor<2048x192xf32>, index) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.causal_attention"
    q = operand_def(AnyTensor)
    k = operand_def(AnyTensor)
    v = operand_def(AnyTensor)
    pos = opt_operand_def(Scalar)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        T, S, _ = _check_attention(t, p, cache=t.pos is not None)
        _check_seq_len(T, p)
        if t.pos is None:
            _dim(S, T, "k/v row count (no pos: same tokens as q)")
        elif S == DYN:
            raise VerifyException("with 'pos', k and v are KV caches and need a static row count")
        elif p.seq_len:
            raise VerifyException("seq_len (a batch of sequences) needs the no-cache form")
        return [_T(T, p.heads * p.head_dim)]


@irdl_op_definition
class CausalAttentionGradOp(_AttentionProps, TensorOp):
    """Gradients of `causal_attention` (no-cache form, same attributes)
    w.r.t. q, k and v; the attention probabilities are recomputed from q and k.

    ```mlir
    %dq, %dk, %dv = tensorop.causal_attention_grad %do, %q, %k, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, scale = 2.500000e-01 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
    ```
    """

    name = "tensorop.causal_attention_grad"
    dout = operand_def(AnyTensor)
    q = operand_def(AnyTensor)
    k = operand_def(AnyTensor)
    v = operand_def(AnyTensor)
    dq = result_def(AnyTensor)
    dk = result_def(AnyTensor)
    dv = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        T, S, W = _check_attention(t, p)
        _dim(S, T, "k/v row count")
        _check_seq_len(T, p)
        DO = _tensor(t.dout, "operand 'dout'", 2)
        _same_shape(DO, (T, p.heads * p.head_dim), "'dout' and the attention output")
        return [_T(T, p.heads * p.head_dim), _T(S, W), _T(S, W)]


@irdl_op_definition
class KVWriteOp(TensorOp):
    """Writes T rows into a KV cache at rows `pos .. pos+T-1`, returning the
    new cache (bufferization updates the cache buffer in place). The cache may
    be stored in f16 or `!quant.q8_0` (blocks of 32 along the row): the fp32
    rows are converted on the way in.

    ```mlir
    %kc1 = tensorop.kv_write %kc, %k, %pos : (tensor<2048x192xf32>, tensor<?x192xf32>, index) -> tensor<2048x192xf32>
    %kh1 = tensorop.kv_write %kh, %k, %pos : (tensor<2048x192xf16>, tensor<?x192xf32>, index) -> tensor<2048x192xf16>
    ```
    """

    name = "tensorop.kv_write"
    INPLACE: ClassVar[dict[int, str]] = {0: "cache"}
    cache = operand_def(AnyTensor)
    x = operand_def(AnyTensor)
    pos = operand_def(Scalar)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        C = _kv_cache(t.cache, "cache")
        _static(C, "cache")
        X = _tensor(t.x, "operand 'x'", 2)
        _dim(X[1], C[1], "row size of 'x'")
        if X[0] != DYN and X[0] > C[0]:
            raise VerifyException(f"{X[0]} rows do not fit a cache of {C[0]} rows")
        return [t.cache]


SiluOp = _op(_Unary, "silu", "Elementwise SiLU: `x * sigmoid(x)`.",
             "%y = tensorop.silu %x : (tensor<?x1536xf32>) -> tensor<?x1536xf32>")

SiluGradOp = _op(_UnaryGrad, "silu_grad", "Gradient of `silu`: `dx = dy * s * (1 + x * (1 - s))`, `s = sigmoid(x)`.",
                 "%dx = tensorop.silu_grad %dy, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>")

GeluOp = _op((_Approximate, _Unary), "gelu", "Elementwise GELU, `approximate` none (exact erf, default) or tanh (GPT-2, Gemma), as `F.gelu`.",
             '%y = tensorop.gelu %x {approximate = "tanh"} : (tensor<?x256xf32>) -> tensor<?x256xf32>')


GeluGradOp = _op((_Approximate, _UnaryGrad), "gelu_grad", "Gradient of `gelu` (same `approximate`).",
                 '%dx = tensorop.gelu_grad %dy, %x {approximate = "tanh"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>')

SoftcapOp = _op((_Cap, _Unary), "softcap", "Elementwise soft capping `cap · tanh(x / cap)` (final logit softcap).",
                "%y = tensorop.softcap %x {cap = 3.000000e+01 : f32} : (tensor<?x256xf32>) -> tensor<?x256xf32>")

SoftcapGradOp = _op((_Cap, _UnaryGrad), "softcap_grad", "Gradient of `softcap` from its input: `dx = dy · (1 - tanh²(x / cap))`.",
                    "%dx = tensorop.softcap_grad %dy, %x {cap = 3.000000e+01 : f32} : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>")

SwigluOp = _op(_Gated, "swiglu", "Gated SiLU: `silu(gate) * up` (Llama/Qwen MLP).",
               "%h = tensorop.swiglu %g, %u : (tensor<?x1536xf32>, tensor<?x1536xf32>) -> tensor<?x1536xf32>")

SwigluGradOp = _op(_GatedGrad, "swiglu_grad", "Gradients of `swiglu`: `dgate`, `dup`.",
                   "%dg, %du = tensorop.swiglu_grad %dy, %g, %u : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>)")

GegluOp = _op((_Approximate, _Gated), "geglu", "Gated GELU: `gelu(gate) * up` (Gemma MLP), `approximate` as in `gelu`.",
              '%h = tensorop.geglu %g, %u {approximate = "tanh"} : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>')

GegluGradOp = _op((_Approximate, _GatedGrad), "geglu_grad", "Gradients of `geglu` (same `approximate`): `dgate`, `dup`.",
                  '%dg, %du = tensorop.geglu_grad %dy, %g, %u {approximate = "tanh"} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>)')


def _tokens(t_tok, what: str = "tokens") -> int:
    (T,) = _tensor(t_tok, what, 1, elem=i32)
    return T


def _finite_scale(p) -> None:
    if p.scale is not None and not math.isfinite(p.scale):
        raise VerifyException(f"scale must be finite, got {_num(p.scale)}")


@irdl_op_definition
class EmbeddingOp(TensorOp):
    """Row gather: `y[i] = table[tokens[i]] * scale` (scale optional, Gemma
    uses sqrt(hidden)).

    ```mlir
    %x = tensorop.embedding %table, %tokens : (tensor<49152x576xf32>, tensor<?xi32>) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.embedding"
    table = operand_def(AnyTensor)
    tokens = operand_def(AnyTensor)
    scale = opt_prop_def(FloatAttr[Float32Type])
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        W = _stored(t.table, "table", 2)
        _static(W, "table")
        T = _tokens(t.tokens)
        _finite_scale(p)
        return [_T(T, W[1])]


@irdl_op_definition
class EmbeddingGradOp(TensorOp):
    """Gradient of `embedding` w.r.t. the table: `dtable[tokens[i]] += dy[i] *
    scale`, a `[vocab, C]` tensor (zero rows for unused tokens).

    ```mlir
    %dt = tensorop.embedding_grad %dy, %tokens {vocab = 256 : i64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<256x64xf32>
    ```
    """

    name = "tensorop.embedding_grad"
    dy = operand_def(AnyTensor)
    tokens = operand_def(AnyTensor)
    vocab = _i64()
    scale = opt_prop_def(FloatAttr[Float32Type])
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        DY = _tensor(t.dy, "operand 'dy'", 2)
        _dim(_tokens(t.tokens), DY[0], "token count")
        _positive(p.vocab, "vocab")
        if DY[1] == DYN:
            raise VerifyException("operand 'dy' must have a static row size")
        _finite_scale(p)
        return [_T(p.vocab, DY[1])]


@irdl_op_definition
class ReshapeOp(TensorOp):
    """Reinterprets a row-major tensor with another shape (same element count
    and type). The result type is given.

    ```mlir
    %y = tensorop.reshape %x : (tensor<?x576xf32>) -> tensor<?x9x64xf32>
    ```
    """

    name = "tensorop.reshape"
    VIEW_OF: ClassVar[str | None] = "x"
    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    def __init__(self, x, type: TensorType):
        super().__init__(x, result_types=[type])

    @classmethod
    def infer(cls, t, p, r):
        if not isinstance(t.x, TensorType):
            raise VerifyException(f"operand 'x' must be a tensor, got {t.x}")
        if r is None or len(r) != 1 or not isinstance(r[0], TensorType):
            raise VerifyException("result must be one tensor")
        res = r[0]
        if res.element_type != t.x.element_type:
            raise VerifyException(f"element type changes from {t.x.element_type} to {res.element_type}")
        a, b = t.x.get_shape(), res.get_shape()
        if DYN not in a and DYN not in b and math.prod(a) != math.prod(b):
            raise VerifyException(f"element count changes from {math.prod(a)} to {math.prod(b)}")
        dyn_a, dyn_b = DYN in a, DYN in b
        if dyn_a != dyn_b:
            raise VerifyException(f"a dynamic dim must stay dynamic: {_fmt_shape(a)} -> {_fmt_shape(b)}")
        if dyn_a and dyn_b:
            sa = math.prod(x for x in a if x != DYN)
            sb = math.prod(x for x in b if x != DYN)
            if sa == 0 or sb == 0 or (sa % sb and sb % sa):
                raise VerifyException(
                    f"static sizes {_fmt_shape(a)} and {_fmt_shape(b)} cannot hold the same elements"
                )
        return [res]


@irdl_op_definition
class TransposeOp(TensorOp):
    """Transposes a 2-D tensor: `[M, N] -> [N, M]`.

    ```mlir
    %y = tensorop.transpose %x : (tensor<?x64xf32>) -> tensor<64x?xf32>
    ```
    """

    name = "tensorop.transpose"
    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        if not isinstance(t.x, TensorType):
            raise VerifyException(f"operand 'x' must be a tensor, got {t.x}")
        X = t.x.get_shape()
        if len(X) != 2:
            raise VerifyException(f"operand 'x' must have rank 2, got {t.x}")
        return [TensorType(t.x.element_type, [X[1], X[0]])]


@irdl_op_definition
class LastRowsOp(TensorOp):
    """The last `count` rows of a 2-D tensor (prefill computes logits for the
    last token only).

    ```mlir
    %h = tensorop.last_rows %x : (tensor<?x576xf32>) -> tensor<1x576xf32>
    ```
    """

    name = "tensorop.last_rows"
    VIEW_OF: ClassVar[str | None] = "x"
    x = operand_def(AnyTensor)
    count = _i64(1)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        X = _tensor(t.x, "operand 'x'", 2)
        _positive(p.count, "count")
        if X[0] != DYN and X[0] < p.count:
            raise VerifyException(f"count {p.count} exceeds the {X[0]} rows of 'x'")
        return [_T(p.count, X[1])]


@irdl_op_definition
class PositionsOp(_SeqLen, TensorOp):
    """The absolute positions of the tokens of this call: `pos + i` for each
    row i of `tokens` (`pos + i mod seq_len` for a batch of sequences); learned
    position embeddings are `embedding` of the position table at these ids.

    ```mlir
    %ids = tensorop.positions %tokens, %pos : (tensor<?xi32>, index) -> tensor<?xi32>
    ```
    """

    name = "tensorop.positions"
    tokens = operand_def(AnyTensor)
    pos = operand_def(Scalar)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        T_ = _tokens(t.tokens)
        _check_seq_len(T_, p)
        return [_T(T_, elem=i32)]


def _check_ce(t) -> tuple[int, int]:
    L = _tensor(t.logits, "logits", 2)
    T = _tokens(t.targets, "targets")
    _dim(T, L[0], "target count")
    return L[0], L[1]


class _GradScale:
    grad_scale = _f32(1.0)


@irdl_op_definition
class CrossEntropyOp(_IgnoreIndex, TensorOp):
    """Mean cross-entropy of `logits [T, V]` against `targets [T]`; rows whose
    target is `ignore_index` are skipped (mean over the others).

    ```mlir
    %loss = tensorop.cross_entropy %logits, %targets : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
    ```
    """

    name = "tensorop.cross_entropy"
    logits = operand_def(AnyTensor)
    targets = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        _check_ce(t)
        return [_T()]


@irdl_op_definition
class CrossEntropyGradOp(_IgnoreIndex, TensorOp):
    """Gradient of `cross_entropy` w.r.t. the logits, given `dloss` (0-d):
    `dloss * (softmax(logits) - onehot(targets)) / n_valid`.

    ```mlir
    %dl = tensorop.cross_entropy_grad %dloss, %logits, %targets : (tensor<f32>, tensor<?x256xf32>, tensor<?xi32>) -> tensor<?x256xf32>
    ```
    """

    name = "tensorop.cross_entropy_grad"
    dloss = operand_def(AnyTensor)
    logits = operand_def(AnyTensor)
    targets = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        _scalar_tensor(t.dloss, "dloss")
        return [_T(*_check_ce(t))]


@irdl_op_definition
class CrossEntropyFusedOp(_IgnoreIndex, _GradScale, TensorOp):
    """Cross-entropy and its gradient in one pass: the loss (as
    `cross_entropy`) and `dlogits = grad_scale * (softmax(logits) -
    onehot(targets)) / n_valid` (zero rows for ignored targets).

    ```mlir
    %loss, %dlogits = tensorop.cross_entropy_fused %logits, %targets {grad_scale = 5.000000e-01 : f32} : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x256xf32>)
    ```
    """

    name = "tensorop.cross_entropy_fused"
    logits = operand_def(AnyTensor)
    targets = operand_def(AnyTensor)
    loss = result_def(AnyTensor)
    dlogits = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        T, V = _check_ce(t)
        if not math.isfinite(p.grad_scale):
            raise VerifyException(f"grad_scale must be finite, got {_num(p.grad_scale)}")
        return [_T(), _T(T, V)]


# ============================================================================
# Optimizer and gradient helpers
# ============================================================================


@irdl_op_definition
class AdamWUpdateOp(TensorOp):
    """One AdamW step for one parameter, returning the new param, m and v
    (bufferized in place).

    With `t = step` (1-based): `m = b1·m + (1-b1)·g`, `v = b2·v + (1-b2)·g²`,
    `p -= lr·(m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + weight_decay·p)`.
    `lr` is an f32 value (it follows a schedule), `step` an index/integer.

    ```mlir
    %p1, %m1, %v1 = tensorop.adamw_update %p, %g, %m, %v, %lr, %step {weight_decay = 1.000000e-01 : f32} : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, f32, index) -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
    ```
    """

    name = "tensorop.adamw_update"
    INPLACE: ClassVar[dict[int, str]] = {0: "param", 1: "m", 2: "v"}
    param = operand_def(AnyTensor)
    grad = operand_def(AnyTensor)
    m = operand_def(AnyTensor)
    v = operand_def(AnyTensor)
    lr = operand_def(F32Scalar)
    step = operand_def(Scalar)
    beta1 = _f32(0.9)
    beta2 = _f32(0.999)
    eps = _f32(1e-8)
    weight_decay = _f32(0.0)
    new_param = result_def(AnyTensor)
    new_m = result_def(AnyTensor)
    new_v = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        P = _tensor(t.param, "param")
        _static(P, "param")
        for name in ("grad", "m", "v"):
            _same_shape(_tensor(getattr(t, name), name), P, f"'{name}' and 'param'")
        for name in ("beta1", "beta2"):
            value = getattr(p, name)
            if not 0.0 <= value < 1.0:
                raise VerifyException(f"{name} must be in [0, 1), got {_num(value)}")
        _positive(p.eps, "eps")
        _nonneg(p.weight_decay, "weight_decay")
        return [t.param, t.param, t.param]


@irdl_op_definition
class AccumulateOp(TensorOp):
    """Gradient accumulation: `acc + x`, written into the accumulator's buffer.

    ```mlir
    %g1 = tensorop.accumulate %g0, %dw : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
    ```
    """

    name = "tensorop.accumulate"
    INPLACE: ClassVar[dict[int, str]] = {0: "acc"}
    acc = operand_def(AnyTensor)
    x = operand_def(AnyTensor)
    result = result_def(AnyTensor)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        A = _tensor(t.acc, "operand 'acc'")
        _same_shape(A, _tensor(t.x, "operand 'x'"), "'acc' and 'x'")
        return [t.acc]


@irdl_op_definition
class GlobalNormOp(TensorOp):
    """The L2 norm of all elements of all operands together (a 0-d tensor):
    `sqrt(sum_i sum(g_i²))`, for global-norm gradient clipping.

    ```mlir
    %n = tensorop.global_norm %g0, %g1 : (tensor<64x64xf32>, tensor<64xf32>) -> tensor<f32>
    ```
    """

    name = "tensorop.global_norm"
    grads = var_operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        if not t.grads:
            raise VerifyException("needs at least one operand")
        for i, g in enumerate(t.grads):
            _tensor(g, f"operand #{i}")
        return [_T()]


@irdl_op_definition
class ClipByNormOp(TensorOp):
    """Scales `g` by `min(1, max_norm / (norm + 1e-6))`, given the global norm
    (0-d) from `global_norm` (PyTorch clip_grad_norm_).

    ```mlir
    %gc = tensorop.clip_by_norm %g, %n {max_norm = 5.000000e-01 : f32} : (tensor<64x64xf32>, tensor<f32>) -> tensor<64x64xf32>
    ```
    """

    name = "tensorop.clip_by_norm"
    g = operand_def(AnyTensor)
    norm = operand_def(AnyTensor)
    max_norm = _f32(1.0)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        G = _tensor(t.g, "operand 'g'")
        _scalar_tensor(t.norm, "norm")
        _positive(p.max_norm, "max_norm")
        return [_T(*G)]


# ============================================================================
# Fused ops
# ============================================================================


@irdl_op_definition
class RMSNormQKVRopeOp(_RopeProps, TensorOp):
    """RMSNorm, the Q/K/V projections (optional biases) and RoPE on q and k,
    in one op (produced by `fuse-rmsnorm-qkv-rope`):

        h = rmsnorm(x, norm_w; eps, offset)
        q = rope(h·wqᵀ + bq; heads),  k = rope(h·wkᵀ + bk; kv_heads),  v = h·wvᵀ + bv

    with the rope attributes (and optional `inv_freq`) of `rope`.

    ```mlir
    %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wv, %pos {eps = 1.000000e-05 : f32, heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, tensor<576xf32>, tensor<576x576xf32>, tensor<192x576xf32>, tensor<192x576xf32>, index) -> (tensor<?x576xf32>, tensor<?x192xf32>, tensor<?x192xf32>)
    ```
    """

    name = "tensorop.rmsnorm_qkv_rope"
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"eps": 1e-6}
    x = operand_def(AnyTensor)
    norm_w = operand_def(AnyTensor)
    wq = operand_def(AnyTensor)
    wk = operand_def(AnyTensor)
    wv = operand_def(AnyTensor)
    pos = operand_def(Scalar)
    bq = opt_operand_def(AnyTensor)
    bk = opt_operand_def(AnyTensor)
    bv = opt_operand_def(AnyTensor)
    inv_freq = opt_operand_def(AnyTensor)
    heads = _i64()
    kv_heads = _i64()
    head_dim = _i64()
    eps = _f32()
    offset = _f32(0.0)
    q = result_def(AnyTensor)
    k = result_def(AnyTensor)
    v = result_def(AnyTensor)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(_Canon())

    @classmethod
    def infer(cls, t, p, r):
        X = _tensor(t.x, "operand 'x'", 2)
        C = X[1]
        if C == DYN:
            raise VerifyException("operand 'x' must have a static row size")
        (D,) = _tensor(t.norm_w, "norm weight", 1)
        _dim(D, C, "norm weight size")
        _positive(p.eps, "eps")
        _positive(p.kv_heads, "kv_heads")
        if p.heads % p.kv_heads if p.heads > 0 else False:
            raise VerifyException(
                f"heads ({p.heads}) must be a multiple of kv_heads ({p.kv_heads})"
            )
        nq = p.heads * p.head_dim
        nk = p.kv_heads * p.head_dim
        _check_rope((X[0], nq), p, inv_freq=t.inv_freq)
        for name, rows in (("wq", nq), ("wk", nk), ("wv", nk)):
            W = _tensor(getattr(t, name), name, 2)
            if tuple(W) != (rows, C):
                raise VerifyException(
                    f"{name} has shape {_fmt_shape(W)}, expected [{rows}, {C}]"
                )
            b = getattr(t, "b" + name[1])
            if b is not None:
                (nb,) = _tensor(b, "b" + name[1], 1)
                _dim(nb, rows, f"size of 'b{name[1]}'")
        return [_T(X[0], nq), _T(X[0], nk), _T(X[0], nk)]


# ============================================================================
# Slot-batched decode (`lower-transformer{modes=decode_batch slots=N}`): the
# rows of one call belong to different sequences, each in its own KV-cache
# slot at its own position. Caches are `[slots, context, kv_heads*head_dim]`;
# `slots` and `positions` are `tensor<?xi32>` with one entry per row. Rows of
# one slot come in increasing position order (a prefill chunk is consecutive
# rows of one slot), so a row sees every earlier row of its slot once all
# rows are written (`kv_scatter` before `slot_attention`). Inference only.


def _row_ids(t, what: str, rows: int) -> None:
    (n,) = _tensor(t, what, 1, elem=i32)
    _dim(n, rows, f"length of '{what}' (one per row)")


def _slot_cache(t, what: str) -> tuple[int, int, int]:
    C = _tensor(t, what, 3)
    _static(C, what)
    return C[0], C[1], C[2]


@irdl_op_definition
class RopeRowsOp(_RopeProps, TensorOp):
    __doc__ = _ROPE_DOC + """
    `rope_rows` is `rope` with one position per row (`positions[i]`, i32)
    instead of `pos + i`: the rows of a slot-batched decode.

    ```mlir
    %q = tensorop.rope_rows %x, %p {heads = 9 : i64, head_dim = 64 : i64} : (tensor<?x576xf32>, tensor<?xi32>) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.rope_rows"
    x = operand_def(AnyTensor)
    positions = operand_def(AnyTensor)
    inv_freq = opt_operand_def(AnyTensor)
    heads = _i64()
    head_dim = _i64()
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        X = _tensor(t.x, "operand 'x'", 2)
        _check_rope(X, p, inv_freq=t.inv_freq)
        _row_ids(t.positions, "positions", X[0])
        return [_T(*X)]


@irdl_op_definition
class KVScatterOp(TensorOp):
    """Writes row i of `x` into the slot cache at `[slots[i], positions[i]]`,
    returning the new cache (bufferization updates the cache buffer in place).

    ```mlir
    %kc1 = tensorop.kv_scatter %kc, %k, %s, %p : (tensor<4x2048x192xf32>, tensor<?x192xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<4x2048x192xf32>
    ```
    """

    name = "tensorop.kv_scatter"
    INPLACE: ClassVar[dict[int, str]] = {0: "cache"}
    cache = operand_def(AnyTensor)
    x = operand_def(AnyTensor)
    slots = operand_def(AnyTensor)
    positions = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        _, _, W = _slot_cache(t.cache, "cache")
        X = _tensor(t.x, "operand 'x'", 2)
        _dim(X[1], W, "row size of 'x'")
        _row_ids(t.slots, "slots", X[0])
        _row_ids(t.positions, "positions", X[0])
        return [t.cache]


@irdl_op_definition
class SlotAttentionOp(_AttentionProps, TensorOp):
    __doc__ = _ATTN_DOC + """
    `slot_attention` is the KV-cache form of `causal_attention` for rows of
    different sequences: k and v are slot caches `[slots, context,
    kv_heads*head_dim]`; query row i attends to rows `0 .. positions[i]` of
    slot `slots[i]`.

    ```mlir
    %o = tensorop.slot_attention %q, %kc, %vc, %s, %p {heads = 9 : i64, kv_heads = 3 : i64, head_dim = 64 : i64, scale = 1.250000e-01 : f32} : (tensor<?x576xf32>, tensor<4x2048x192xf32>, tensor<4x2048x192xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.slot_attention"
    q = operand_def(AnyTensor)
    k = operand_def(AnyTensor)
    v = operand_def(AnyTensor)
    slots = operand_def(AnyTensor)
    positions = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        _positive(p.heads, "heads")
        _positive(p.kv_heads, "kv_heads")
        _positive(p.head_dim, "head_dim")
        if p.heads % p.kv_heads:
            raise VerifyException(f"heads ({p.heads}) must be a multiple of kv_heads ({p.kv_heads})")
        _positive(p.scale, "scale")
        _nonneg(p.window, "window")
        _nonneg(p.softcap, "softcap")
        if p.seq_len:
            raise VerifyException("seq_len does not apply to slot caches")
        Q = _tensor(t.q, "operand 'q'", 2)
        _dim(Q[1], p.heads * p.head_dim, "q row size (heads * head_dim)")
        K, V = _slot_cache(t.k, "k"), _slot_cache(t.v, "v")
        _same_shape(K, V, "'k' and 'v'")
        _dim(K[2], p.kv_heads * p.head_dim, "k row size (kv_heads * head_dim)")
        _row_ids(t.slots, "slots", Q[0])
        _row_ids(t.positions, "positions", Q[0])
        return [_T(Q[0], p.heads * p.head_dim)]


@irdl_op_definition
class GatherRowsOp(TensorOp):
    """Rows `rows[i]` of `x` (i32 row indices): `@decode_batch` keeps only the
    rows whose logits are wanted (the last token of each sequence in the call)
    before the final norm and the lm_head.

    ```mlir
    %y = tensorop.gather_rows %x, %r : (tensor<?x576xf32>, tensor<?xi32>) -> tensor<?x576xf32>
    ```
    """

    name = "tensorop.gather_rows"
    x = operand_def(AnyTensor)
    rows = operand_def(AnyTensor)
    result = result_def(AnyTensor)

    @classmethod
    def infer(cls, t, p, r):
        X = _tensor(t.x, "operand 'x'", 2)
        (R,) = _tensor(t.rows, "rows", 1, elem=i32)
        return [_T(R, X[1])]


# ============================================================================
# Every op defined above, in definition order.
TENSOROP_OPS = [
    v for v in list(globals().values())
    if isinstance(v, type) and issubclass(v, IRDLOperation) and getattr(v, "name", "").startswith("tensorop.")
]

Tensorop = Dialect("tensorop", TENSOROP_OPS, [])
