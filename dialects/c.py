"""The `c` dialect: exactly what the C emitter prints.

Nothing in this dialect is decided by the emitter (``ckc-opt -t c``,
``ckc/emit_c.py``): `lower-to-c` chooses every include, prototype, type,
name, offset and constant, and the emitter spells them out in C11.

A translation unit is the ``builtin.module`` itself. Its top level holds
``c.include``, ``c.opaque``, ``c.decl`` (prototypes), ``c.global`` (constant
tables the runtime reads with dlsym), ``c.comment`` and ``c.func`` (function
definitions), printed in that order of appearance.

Values and C names
------------------
Every SSA value of the dialect stands for one C expression:

- *expression ops* (``c.constant``, ``c.ptr``, ``c.binop``, ``c.cast``) are pure and are
  printed inline at each use (they never declare anything);
- *named values* (``c.func`` parameters, the ``c.for`` induction variable,
  ``c.var`` and value-returning ``c.call``) carry their C identifier
  explicitly (``as NAME`` / ``c.var NAME``), so the emitted C does not depend
  on how the MLIR printer names SSA values. Within a function no name may
  shadow a visible one (a parameter, an enclosing loop variable, a local of an
  enclosing block) or a top-level symbol; sibling loops may reuse a name.

Types
-----
``f32`` (float), ``f64`` (double), ``i1`` (_Bool), ``i8/i16/i32/i64``
(intN_t, signless and ``si`` alike), ``ui8..ui64`` (uintN_t), ``!c.int``
(int), ``!c.size`` (size_t), ``!c.char`` (char), ``!c.void`` (void: return type or pointee only),
``!c.named<"ck_pool">`` (a typedef name, e.g. from ``c.opaque``) and
``!c.ptr<T>`` / ``!c.ptr<T, const>`` (``T *`` / ``const T *``).

Example (the whole of a small translation unit)::

    c.include <"stddef.h">
    c.include "ckernels.h"
    c.decl @ck_scale_f32_scalar(!c.ptr<f32>, !c.int, f32) -> !c.void
    c.global const @ck_arena_size : !c.size = 4096
    c.func @run(%a: !c.ptr<ui8> as arena, %n: !c.int as n) -> !c.void {
      %c0 = c.constant 0 : !c.int
      %c4 = c.constant 4 : !c.int
      %s = c.constant 0.5 : f32
      c.for %l = %c0 to %c4 as l {
        %x = c.ptr %a[64 + %l * 1024] : !c.ptr<ui8> -> !c.ptr<f32>
        c.call @ck_scale_f32_scalar(%x, %n, %s) : (!c.ptr<f32>, !c.int, f32) -> ()
      }
      c.return
    }
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import cast

from xdsl.dialects.builtin import (
    ArrayAttr,
    Float32Type,
    Float64Type,
    FloatAttr,
    FunctionType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
    SymbolNameConstraint,
    SymbolRefAttr,
    UnitAttr,
    f32,
    f64,
    i64,
)
from xdsl.ir import (
    Attribute,
    Block,
    BlockArgument,
    Dialect,
    Operation,
    OpResult,
    ParametrizedAttribute,
    Region,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    opt_result_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.irdl.declarative_assembly_format import (
    AttributeVariable,
    CustomDirective,
    ParsingState,
    PrintingState,
    TypeDirective,
    irdl_custom_directive,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    NoTerminator,
    Pure,
    SymbolOpInterface,
)
from xdsl.utils.exceptions import VerifyException

# --------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------


def _scalar_type(cls_name: str, name: str, doc: str) -> type[ParametrizedAttribute]:
    """A C type without parameters."""
    body = {"name": name, "__doc__": doc, "__module__": __name__}
    return irdl_attr_definition(type(cls_name, (ParametrizedAttribute, TypeAttribute), body))


VoidType = _scalar_type("VoidType", "c.void",
                        "C ``void``: a function's return type, or a pointee (``!c.ptr<!c.void>``).")
IntType = _scalar_type("IntType", "c.int",
                       "C ``int`` (what kernels take for sizes and thread counts; loop variables).")
CharType = _scalar_type("CharType", "c.char",
                        "C ``char`` (for strings: ``!c.ptr<!c.char, const>`` is ``const char *``).")
SizeType = _scalar_type("SizeType", "c.size", "C ``size_t`` (needs ``<stddef.h>``).")


@irdl_attr_definition
class NamedType(ParametrizedAttribute, TypeAttribute):
    """A C type by its typedef name, e.g. ``!c.named<"ck_pool">`` prints ``ck_pool``."""

    name = "c.named"

    type_name: StringAttr

    def __init__(self, type_name: str | StringAttr):
        if isinstance(type_name, str):
            type_name = StringAttr(type_name)
        super().__init__(type_name)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string_literal(self.type_name.data)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr]:
        with parser.in_angle_brackets():
            return (StringAttr(parser.parse_str_literal()),)

    def verify(self) -> None:
        check_identifier(self.type_name.data, "!c.named type name")


@irdl_attr_definition
class PtrType(ParametrizedAttribute, TypeAttribute):
    """A C pointer: ``!c.ptr<f32>`` is ``float *``, ``!c.ptr<f32, const>`` is
    ``const float *``, ``!c.ptr<!c.ptr<ui8>>`` is ``uint8_t **``."""

    name = "c.ptr"

    pointee: Attribute
    is_const: IntAttr

    def __init__(self, pointee: Attribute, is_const: bool = False):
        super().__init__(pointee, IntAttr(int(is_const)))

    @property
    def const(self) -> bool:
        return bool(self.is_const.data)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_attribute(self.pointee)
            if self.const:
                printer.print_string(", const")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[Attribute, IntAttr]:
        with parser.in_angle_brackets():
            pointee = parser.parse_type()
            is_const = 0
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("const")
                is_const = 1
        return (pointee, IntAttr(is_const))

    def verify(self) -> None:
        if self.is_const.data not in (0, 1):
            raise VerifyException("!c.ptr const flag must be 0 or 1")
        if not (isinstance(self.pointee, VoidType) or is_c_type(self.pointee)):
            raise VerifyException(f"!c.ptr pointee {self.pointee} is not a C type")


# --------------------------------------------------------------------------
# Helpers shared with the emitter
# --------------------------------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern
    float for goto if inline int long register restrict return short signed
    sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
    _Static_assert _Thread_local""".split()
)


def check_identifier(name: str, what: str) -> None:
    """Raise VerifyException unless `name` is a usable C identifier."""
    if not _IDENT.match(name):
        raise VerifyException(f"{what} '{name}' is not a C identifier")
    if name in C_KEYWORDS:
        raise VerifyException(f"{what} '{name}' is a C keyword")


_INT_WIDTHS = (8, 16, 32, 64)


def is_scalar_type(t: Attribute) -> bool:
    """An arithmetic C type (not void, not a pointer, not a typedef name)."""
    if isinstance(t, (Float32Type, Float64Type, IntType, SizeType, CharType)):
        return True
    if isinstance(t, IntegerType):
        return t.width.data == 1 or t.width.data in _INT_WIDTHS
    return False


def is_int_type(t: Attribute) -> bool:
    return is_scalar_type(t) and not isinstance(t, (Float32Type, Float64Type))


def is_c_type(t: Attribute) -> bool:
    """A type a value, parameter or variable may have (everything but void)."""
    return is_scalar_type(t) or isinstance(t, (PtrType, NamedType))


def int_range(t: Attribute) -> tuple[int, int]:
    """Inclusive value range of an integer C type."""
    if isinstance(t, IntType):
        return -(2**31), 2**31 - 1
    if isinstance(t, SizeType):
        return 0, 2**64 - 1
    if isinstance(t, CharType):
        return 0, 127
    assert isinstance(t, IntegerType)
    w = t.width.data
    if w == 1:
        return 0, 1
    if t.signedness.data == Signedness.UNSIGNED:
        return 0, 2**w - 1
    return -(2 ** (w - 1)), 2 ** (w - 1) - 1


def ptr_assignable(arg: Attribute, param: Attribute) -> bool:
    """Whether C accepts `arg` for a parameter of type `param` without a warning."""
    if arg == param:
        return True
    if isinstance(arg, PtrType) and isinstance(param, PtrType):
        if arg.const and not param.const:
            return False
        if isinstance(param.pointee, VoidType):
            return True
        return arg.pointee == param.pointee
    return is_scalar_type(arg) and is_scalar_type(param)


def _module_symbol(op: Operation, name: str) -> Operation | None:
    """The top-level op of the enclosing module whose sym_name is `name`."""
    module = op
    while module is not None and not isinstance(module, ModuleOp):
        module = module.parent_op()
    if module is None:
        return None
    for top in module.ops:
        sym = top.properties.get("sym_name")
        if isinstance(sym, StringAttr) and sym.data == name:
            return top
    return None


def _module_symbols(op: Operation) -> set[str]:
    module = op
    while module is not None and not isinstance(module, ModuleOp):
        module = module.parent_op()
    if module is None:
        return set()
    names = set()
    for top in module.ops:
        sym = top.properties.get("sym_name")
        if isinstance(sym, StringAttr):
            names.add(sym.data)
        if isinstance(top, OpaqueOp):
            names.add(top.type_name.data)
    return names


def _check_signature(inputs: Sequence[Attribute], ret: Attribute, what: str) -> None:
    for i, t in enumerate(inputs):
        if not is_c_type(t):
            raise VerifyException(f"{what}: parameter #{i} type {t} is not a C type")
    if not (isinstance(ret, VoidType) or is_c_type(ret)):
        raise VerifyException(f"{what}: return type {ret} is not a C type")


def _fn_type(inputs: Sequence[Attribute], ret: Attribute) -> FunctionType:
    return FunctionType.from_lists(list(inputs), [ret])


def _sig_of(fn_type: FunctionType, what: str) -> tuple[list[Attribute], Attribute]:
    outs = fn_type.outputs.data
    if len(outs) != 1:
        raise VerifyException(
            f"{what}: function_type must have exactly one result type "
            f"(use !c.void for none), got {len(outs)}"
        )
    return list(fn_type.inputs.data), outs[0]


# --------------------------------------------------------------------------
# Custom directives of the declarative formats
# --------------------------------------------------------------------------


@irdl_custom_directive
class CName(CustomDirective):
    """A C identifier, printed bare (``c.var end = ...``)."""

    attr: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        self.attr.set(state, StringAttr(parser.parse_identifier()))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        attr = self.attr.get(op)
        assert isinstance(attr, StringAttr)
        printer.print_string(attr.data)


@irdl_custom_directive
class OneType(CustomDirective):
    """One type spelled for two typeables (``c.var``: initializer, variable)."""

    first: TypeDirective
    second: TypeDirective

    def parse(self, parser: Parser, state: ParsingState) -> None:
        t = parser.parse_type()
        self.first.set(state, (t,))
        self.second.set(state, (t,))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        printer.print_attribute(self.first.get(op)[0])


@irdl_custom_directive
class Int(CustomDirective):
    """An ``IntAttr`` as a bare integer (``c.ptr %a[8192]``)."""

    attr: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        self.attr.set(state, IntAttr(parser.parse_integer(allow_boolean=False)))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        attr = self.attr.get(op)
        assert isinstance(attr, IntAttr)
        printer.print_string(str(attr.data))


@irdl_custom_directive
class IntIndex(CustomDirective):
    """The type of an optional index operand: a ``!c.int`` is not spelled
    (``c.ptr %a[64 + %l * 1024]``), a ``!c.size`` byte offset is ``bytes``
    (``c.ptr %a[0 + %o * 1] bytes``); the verifier checks it."""

    index: TypeDirective

    def parse(self, parser: Parser, state: ParsingState) -> None:
        present = state.operands[self.index.inner.index]  # type: ignore[attr-defined]
        t = SizeType() if present and parser.parse_optional_keyword("bytes") is not None else IntType()
        self.index.set(state, (t,) * len(present or ()))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        idx = getattr(op, "index", None)
        if idx is not None and isinstance(idx.type, SizeType):
            printer.print_string(" bytes")


@irdl_custom_directive
class OperandsType(OneType):
    """``c.binop``: one type spelled for both operands; the result has it too,
    except for comparisons and logic (``!c.int``)."""

    first: TypeDirective
    second: TypeDirective
    result: TypeDirective

    def parse(self, parser: Parser, state: ParsingState) -> None:
        super().parse(parser, state)
        t = state.operand_types[self.first.inner.index][0]  # type: ignore[attr-defined, index]
        kind = state.properties.get("kind")
        self.result.set(state, (t if isinstance(kind, StringAttr) and kind.data in _ARITH else IntType(),))


@irdl_custom_directive
class Header(CustomDirective):
    """``<"h">`` (a system header: sets `system`) or ``"h"``."""

    header: AttributeVariable
    system: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        system = parser.parse_optional_punctuation("<") is not None
        self.header.set(state, StringAttr(parser.parse_str_literal()))
        if system:
            parser.parse_punctuation(">")
            self.system.set(state, UnitAttr())

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        system = self.system.get(op) is not None
        printer.print_string("<" if system else "")
        printer.print_string_literal(cast(StringAttr, self.header.get(op)).data)
        printer.print_string(">" if system else "")


@irdl_custom_directive
class Signature(CustomDirective):
    """A prototype's ``(T1, T2) -> R`` (R is ``!c.void`` for none)."""

    function_type: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        args = parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_type)
        parser.parse_punctuation("->")
        self.function_type.set(state, _fn_type(args, parser.parse_type()))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        fn = cast(FunctionType, self.function_type.get(op))
        printer.print_string("(")
        printer.print_list(fn.inputs.data, printer.print_attribute)
        printer.print_string(") -> ")
        printer.print_list(fn.outputs.data, printer.print_attribute)


@irdl_custom_directive
class Initializer(CustomDirective):
    """A ``c.global`` value: a number or string, or ``[...]`` of them, stored
    as attributes of the element type parsed before it."""

    value: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        t = state.properties["elem_type"]
        many = parser.parse_optional_comma_separated_list(parser.Delimiter.SQUARE, lambda: _parse_number(parser))
        if many is not None:
            self.value.set(state, ArrayAttr([_num_attr(v, t) for v in many]))
        else:
            self.value.set(state, _num_attr(_parse_number(parser), t))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        value = self.value.get(op)
        if isinstance(value, ArrayAttr):
            with printer.in_square_brackets():
                printer.print_list(value.data, lambda v: _print_number(printer, v))
        else:
            _print_number(printer, cast(Attribute, value))


@irdl_custom_directive
class NumberOfType(CustomDirective):
    """``576 : !c.int``: a literal stored rounded to its type (a float for an
    integer type is kept as f64 for the verifier to reject)."""

    value: AttributeVariable
    type: TypeDirective

    def parse(self, parser: Parser, state: ParsingState) -> None:
        v = _parse_number(parser)
        parser.parse_punctuation(":")
        t = parser.parse_type()
        self.value.set(state, FloatAttr(v, f64) if isinstance(v, float) and is_int_type(t) else _num_attr(v, t))
        self.type.set(state, (t,))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        _print_number(printer, cast(Attribute, self.value.get(op)))
        printer.print_string(" : ")
        printer.print_attribute(self.type.get(op)[0])


@irdl_custom_directive
class AsName(CustomDirective):
    """The C name of a call's result: `` as NAME``, absent without a result."""

    name: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        if parser.parse_optional_keyword("as") is not None:
            self.name.set(state, StringAttr(parser.parse_identifier()))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        if (name := self.name.get(op)) is not None:
            printer.print_string(f" as {cast(StringAttr, name).data}")


# --------------------------------------------------------------------------
# Top-level ops
# --------------------------------------------------------------------------


@irdl_op_definition
class IncludeOp(IRDLOperation):
    """An ``#include`` line.

    ```mlir
    c.include <"stdint.h">      // #include <stdint.h>
    c.include "ckernels.h"      // #include "ckernels.h"
    ```
    """

    name = "c.include"

    header = prop_def(StringAttr)
    system = opt_prop_def(UnitAttr)

    traits = traits_def(HasParent(ModuleOp))

    custom_directives = (Header,)
    assembly_format = "custom<Header>($header, $system) attr-dict"

    def __init__(self, header: str, system: bool = False):
        props: dict[str, Attribute] = {"header": StringAttr(header)}
        if system:
            props["system"] = UnitAttr()
        super().__init__(properties=props)

    def verify_(self) -> None:
        h = self.header.data
        if not h or any(ch in h for ch in '"<>\n\\') or h != h.strip():
            raise VerifyException(f"bad header name '{h}'")


@irdl_op_definition
class OpaqueOp(IRDLOperation):
    """Declares an incomplete struct type usable through pointers.

    ```mlir
    c.opaque "ck_pool"          // typedef struct ck_pool ck_pool;
    ```
    (C11 allows repeating this typedef, so it may coexist with a header that
    declares the same type.)
    """

    name = "c.opaque"

    type_name = prop_def(StringAttr)

    traits = traits_def(HasParent(ModuleOp))

    assembly_format = "$type_name attr-dict"

    def __init__(self, type_name: str):
        super().__init__(properties={"type_name": StringAttr(type_name)})

    def verify_(self) -> None:
        check_identifier(self.type_name.data, "opaque type name")


@irdl_op_definition
class DeclOp(IRDLOperation):
    """A function prototype (a kernel or runtime function defined elsewhere).

    ```mlir
    c.decl @ck_rmsnorm_f32_avx512(!c.ptr<f32, const>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, f32) -> !c.void
    // void ck_rmsnorm_f32_avx512(const float *, const float *, float *, int, int, float);
    ```
    """

    name = "c.decl"

    sym_name = prop_def(SymbolNameConstraint())
    function_type = prop_def(FunctionType)

    traits = traits_def(HasParent(ModuleOp), SymbolOpInterface())

    custom_directives = (Signature,)
    assembly_format = "$sym_name custom<Signature>($function_type) attr-dict"

    def __init__(self, name: str, inputs: Sequence[Attribute], ret: Attribute):
        super().__init__(
            properties={
                "sym_name": StringAttr(name),
                "function_type": _fn_type(inputs, ret),
            }
        )

    @property
    def signature(self) -> tuple[list[Attribute], Attribute]:
        # another op's verifier may ask before this op's own properties were verified
        fn_type = self.properties.get("function_type")
        if not isinstance(fn_type, FunctionType):
            raise VerifyException(f"{self.name} has no valid function_type")
        return _sig_of(fn_type, self.name)

    def verify_(self) -> None:
        check_identifier(self.sym_name.data, "function name")
        inputs, ret = self.signature
        _check_signature(inputs, ret, f"@{self.sym_name.data}")


@irdl_op_definition
class GlobalOp(IRDLOperation):
    """A file-scope variable with a constant initializer: a number, a string
    (type ``!c.ptr<!c.char, const>``), or an array of either (tables the
    runtime reads through dlsym: arena size, tensor names and offsets, ...).
    ``const`` makes the object itself const.

    ```mlir
    c.global const @ck_arena_size : !c.size = 12288
    // const size_t ck_arena_size = 12288;
    c.global const @ck_region_offsets : !c.size = [0, 4096, 8192]
    // const size_t ck_region_offsets[3] = {0, 4096, 8192};
    c.global const @ck_arch : !c.ptr<!c.char, const> = "llama"
    // const char *const ck_arch = "llama";
    c.global const @ck_names : !c.ptr<!c.char, const> = ["a.weight", "b\0A"]
    // const char *const ck_names[2] = {"a.weight", "b\n"};
    c.global static const @attn_norm_weight : !c.size = [98304, 270848]
    // static const size_t attn_norm_weight[2] = {98304, 270848};
    ```
    ``static`` gives the object internal linkage (a table only this file reads).
    """

    name = "c.global"

    sym_name = prop_def(SymbolNameConstraint())
    elem_type = prop_def(Attribute)
    value = prop_def(IntegerAttr | FloatAttr | StringAttr | ArrayAttr)
    constant = opt_prop_def(UnitAttr)
    static = opt_prop_def(UnitAttr)

    traits = traits_def(HasParent(ModuleOp), SymbolOpInterface())

    custom_directives = (Initializer,)
    assembly_format = (
        "(`static` $static^)? (`const` $constant^)? $sym_name `:` $elem_type `=` custom<Initializer>($value) attr-dict"
    )

    def __init__(
        self,
        name: str,
        elem_type: Attribute,
        value: int | float | str | Sequence[int | float | str],
        constant: bool = True,
        static: bool = False,
    ):
        def num(v: int | float) -> Attribute:
            return _num_attr(v, elem_type)

        many = isinstance(value, Sequence) and not isinstance(value, str)
        init = ArrayAttr([num(v) for v in value]) if many else num(value)
        props: dict[str, Attribute] = {
            "sym_name": StringAttr(name),
            "elem_type": elem_type,
            "value": init,
        }
        if constant:
            props["constant"] = UnitAttr()
        if static:
            props["static"] = UnitAttr()
        super().__init__(properties=props)

    @property
    def values(self) -> list[Attribute]:
        return list(self.value.data) if isinstance(self.value, ArrayAttr) else [self.value]

    def verify_(self) -> None:
        check_identifier(self.sym_name.data, "global name")
        t = self.elem_type
        if not (is_scalar_type(t) or is_string_type(t)):
            raise VerifyException(
                f"global element type {t} must be an arithmetic C type or !c.ptr<!c.char, const>"
            )
        if isinstance(self.value, ArrayAttr) and not self.value.data:
            raise VerifyException("global array initializer must not be empty")
        for v in self.values:
            _check_number(v, t)


def _int_attr(v: int) -> IntegerAttr:
    """Integer literals are stored as i64 attributes (range checks use the
    C type, see `_check_number`); values above 2**63 (uint64) as ui64."""
    if v >= 2**63:
        return IntegerAttr(v, IntegerType(64, Signedness.UNSIGNED))
    return IntegerAttr(v, i64)


def _num_attr(v: int | float | str, t: Attribute) -> Attribute:
    if isinstance(v, str):
        return StringAttr(v)
    if isinstance(t, Float32Type):
        try:
            struct.pack("<f", float(v))
        except OverflowError:  # kept as f64 for the verifier to reject
            return FloatAttr(float(v), f64)
        return FloatAttr(float(v), t)
    if isinstance(t, Float64Type):
        return FloatAttr(float(v), t)
    if isinstance(v, float):
        raise VerifyException(f"float literal {v} for integer type {t}")
    return _int_attr(v)


def _parse_number(parser: Parser) -> int | float | str:
    s = parser.parse_optional_str_literal()
    if s is not None:
        return s
    v = parser.parse_optional_number()
    if v is None:
        parser.raise_error("expected a number")
    return v


def format_float(value: float, type: Attribute) -> str:
    """The shortest decimal that reads back as exactly `value` in `type`
    (f32: rounded to single precision first), always with a '.' so that it
    is a float literal both in MLIR and in C (``1.0e-05``, ``0.5``, ``3.0``)."""
    if isinstance(type, Float32Type):
        v32 = struct.unpack("<f", struct.pack("<f", value))[0]
        for digits in range(6, 10):
            s = f"{v32:.{digits}g}"
            if struct.unpack("<f", struct.pack("<f", float(s)))[0] == v32:
                break
    else:
        s = repr(float(value))
    if "inf" in s or "nan" in s:
        raise ValueError(f"non-finite float {s} has no C literal")
    mant, e, exp = s.partition("e")
    if "." not in mant:
        mant += ".0"
    return mant + e + exp


def _print_number(printer: Printer, v: Attribute) -> None:
    if isinstance(v, StringAttr):
        printer.print_string_literal(v.data)
    elif isinstance(v, IntegerAttr):
        printer.print_string(str(v.value.data))
    else:
        assert isinstance(v, FloatAttr)
        printer.print_string(format_float(v.value.data, v.type))


def is_string_type(t: Attribute) -> bool:
    """``!c.ptr<!c.char, const>``: what a string literal initializes."""
    return isinstance(t, PtrType) and t.const and isinstance(t.pointee, CharType)


def _check_number(v: Attribute, t: Attribute) -> None:
    if is_string_type(t):
        if not isinstance(v, StringAttr):
            raise VerifyException(f"expected a string value for {t}, got {v}")
        return
    if isinstance(v, StringAttr):
        raise VerifyException(f"string value for non-string type {t}")
    if isinstance(t, (Float32Type, Float64Type)):
        if not isinstance(v, FloatAttr):
            raise VerifyException(f"expected a float value for {t}, got {v}")
        x = v.value.data
        if x != x or x in (float("inf"), float("-inf")):
            raise VerifyException("non-finite float constants cannot be printed as C literals")
        if isinstance(t, Float32Type):
            try:
                struct.pack("<f", x)
            except OverflowError:
                raise VerifyException(f"{x} overflows f32") from None
        if v.type != t:
            raise VerifyException(f"float value {v} does not have type {t}")
        return
    if not isinstance(v, IntegerAttr):
        raise VerifyException(f"expected an integer value for {t}, got {v}")
    lo, hi = int_range(t)
    if not lo <= v.value.data <= hi:
        raise VerifyException(f"value {v.value.data} out of range for {t} [{lo}, {hi}]")


@irdl_op_definition
class CommentOp(IRDLOperation):
    """A C comment, at top level or in a body.

    ```mlir
    c.comment "layer loop"      // /* layer loop */
    ```
    """

    name = "c.comment"

    text = prop_def(StringAttr)

    assembly_format = "$text attr-dict"

    def __init__(self, text: str):
        super().__init__(properties={"text": StringAttr(text)})

    def verify_(self) -> None:
        if "*/" in self.text.data or "\n" in self.text.data:
            raise VerifyException("comment text must not contain '*/' or a newline")


# --------------------------------------------------------------------------
# Functions and statements
# --------------------------------------------------------------------------


def _print_named_args(printer: Printer, args: Sequence[BlockArgument], names: Sequence[str]):
    def one(pair):
        arg, n = pair
        printer.print_block_argument(arg)
        printer.print_string(f" as {n}")

    printer.print_list(list(zip(args, names)), one)


@irdl_op_definition
class FuncOp(IRDLOperation):
    """A C function definition. Parameters carry their C names (``as NAME``);
    the body is one block ending in ``c.return``.

    ```mlir
    c.func @decode(%a: !c.ptr<ui8> as arena, %p: !c.int as pos) -> !c.void {
      c.return
    }
    // void decode(uint8_t *arena, int pos) {
    //   return;
    // }
    ```
    ``static`` after ``c.func`` gives the function internal linkage.
    """

    name = "c.func"

    sym_name = prop_def(StringAttr)
    function_type = prop_def(FunctionType)
    arg_names = prop_def(ArrayAttr[StringAttr])
    static = opt_prop_def(UnitAttr)

    body = region_def("single_block")

    traits = traits_def(HasParent(ModuleOp), SymbolOpInterface(), IsolatedFromAbove())

    def __init__(
        self,
        name: str,
        params: Sequence[tuple[str, Attribute]],
        ret: Attribute,
        body: Region | None = None,
        static: bool = False,
    ):
        """`params` are (C name, type) pairs; without `body` an empty entry
        block with one argument per parameter is created (fill it, end with
        ``ReturnOp``)."""
        types = [t for _, t in params]
        if body is None:
            body = Region(Block(arg_types=types))
        props: dict[str, Attribute] = {
            "sym_name": StringAttr(name),
            "function_type": _fn_type(types, ret),
            "arg_names": ArrayAttr([StringAttr(n) for n, _ in params]),
        }
        if static:
            props["static"] = UnitAttr()
        super().__init__(properties=props, regions=[body])

    @property
    def signature(self) -> tuple[list[Attribute], Attribute]:
        # another op's verifier may ask before this op's own properties were verified
        fn_type = self.properties.get("function_type")
        if not isinstance(fn_type, FunctionType):
            raise VerifyException(f"{self.name} has no valid function_type")
        return _sig_of(fn_type, self.name)

    @property
    def args(self) -> tuple[BlockArgument, ...]:
        return self.body.block.args

    def verify_(self) -> None:
        fname = self.sym_name.data
        check_identifier(fname, "function name")
        inputs, ret = self.signature
        _check_signature(inputs, ret, f"@{fname}")
        names = [n.data for n in self.arg_names.data]
        if len(names) != len(inputs):
            raise VerifyException(
                f"@{fname}: {len(names)} parameter names for {len(inputs)} parameters"
            )
        block = self.body.block
        if [a.type for a in block.args] != inputs:
            raise VerifyException(f"@{fname}: entry block argument types differ from the signature")
        if not isinstance(block.last_op, ReturnOp):
            raise VerifyException(f"@{fname}: body must end with c.return")
        taken = _module_symbols(self)
        visible: set[str] = set()
        for n in names:
            check_identifier(n, f"@{fname}: parameter name")
            if n in visible:
                raise VerifyException(f"@{fname}: duplicate C name '{n}'")
            if n in taken:
                raise VerifyException(f"@{fname}: C name '{n}' shadows a top-level symbol")
            visible.add(n)
        _check_scope(block, visible, taken, fname)

    @classmethod
    def parse(cls, parser: Parser) -> FuncOp:
        static = parser.parse_optional_keyword("static") is not None
        name = parser.parse_symbol_name().data

        def one():
            arg = parser.parse_argument()
            parser.parse_keyword("as")
            return arg, parser.parse_identifier()

        pairs = parser.parse_comma_separated_list(parser.Delimiter.PAREN, one)
        parser.parse_punctuation("->")
        ret = parser.parse_type()
        attrs = parser.parse_optional_attr_dict_with_keyword()
        region = parser.parse_region([a for a, _ in pairs])
        op = cls(name, [(n, a.type) for a, n in pairs], ret, region, static)
        if attrs is not None:
            op.attributes |= attrs.data
        return op

    def print(self, printer: Printer) -> None:
        if self.static is not None:
            printer.print_string(" static")
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string("(")
        _print_named_args(printer, self.body.block.args, [n.data for n in self.arg_names.data])
        printer.print_string(") -> ")
        printer.print_attribute(self.function_type.outputs.data[0])
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=True)


def _declared_name(op: Operation) -> str | None:
    if isinstance(op, VarOp):
        return op.var_name.data
    if isinstance(op, CallOp) and op.result_name is not None:
        return op.result_name.data
    return None


def _check_scope(block: Block, visible: set[str], taken: set[str], fname: str) -> None:
    """C names: no redeclaration, no shadowing of visible names or symbols."""
    scope = set(visible)
    for op in block.ops:
        if isinstance(op, ForOp):
            n = op.var_name.data
            if n in scope or n in taken:
                raise VerifyException(f"@{fname}: loop variable '{n}' redeclares a visible C name")
            _check_scope(op.body.block, scope | {n}, taken, fname)
            continue
        if isinstance(op, IfOp):
            for r in (op.then_region, op.else_region):
                for b in r.blocks:
                    _check_scope(b, scope, taken, fname)
            continue
        n = _declared_name(op)
        if n is None:
            continue
        if n in scope or n in taken:
            raise VerifyException(f"@{fname}: local '{n}' redeclares a visible C name")
        scope.add(n)


def _enclosing_func(op: Operation) -> FuncOp | None:
    p = op.parent_op()
    while p is not None and not isinstance(p, FuncOp):
        p = p.parent_op()
    return p


@irdl_op_definition
class ReturnOp(IRDLOperation):
    """Returns from the enclosing ``c.func``, with a value unless it returns void.

    ```mlir
    c.return                    // return;
    c.return %v : !c.int        // return v;
    ```
    """

    name = "c.return"

    value = opt_operand_def()

    traits = traits_def(IsTerminator())

    assembly_format = "($value^ `:` type($value))? attr-dict"

    def __init__(self, value: SSAValue | Operation | None = None):
        super().__init__(operands=[[value] if value is not None else []])

    def verify_(self) -> None:
        func = _enclosing_func(self)
        if func is None:
            raise VerifyException("c.return must be inside a c.func")
        _, ret = func.signature
        if isinstance(ret, VoidType):
            if self.value is not None:
                raise VerifyException("returns a value from a function returning void")
        elif self.value is None or self.value.type != ret:
            raise VerifyException(f"must return a value of type {ret}")


@irdl_op_definition
class ForOp(IRDLOperation):
    """A counted loop ``for (int NAME = lb; NAME < ub; ++NAME) { body }``.
    The body block has one ``!c.int`` argument (the induction variable, with
    its C name after ``as``) and no terminator.

    ```mlir
    %c0 = c.constant 0 : !c.int
    %c30 = c.constant 30 : !c.int
    c.for %l = %c0 to %c30 as l {
      c.comment "one layer"
    }
    // for (int l = 0; l < 30; ++l) {
    //   /* one layer */
    // }
    ```
    """

    name = "c.for"

    lb = operand_def(IntType)
    ub = operand_def(IntType)
    var_name = prop_def(StringAttr)

    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    def __init__(
        self,
        lb: SSAValue | Operation,
        ub: SSAValue | Operation,
        var_name: str,
        body: Region | None = None,
    ):
        """Without `body`, an empty block with the induction variable is made."""
        if body is None:
            body = Region(Block(arg_types=[IntType()]))
        super().__init__(
            operands=[lb, ub],
            properties={"var_name": StringAttr(var_name)},
            regions=[body],
        )

    @property
    def induction_var(self) -> BlockArgument:
        return self.body.block.args[0]

    def verify_(self) -> None:
        check_identifier(self.var_name.data, "loop variable")
        args = self.body.block.args
        if len(args) != 1 or not isinstance(args[0].type, IntType):
            raise VerifyException("body must have exactly one !c.int argument (the induction variable)")
        if _enclosing_func(self) is None:
            raise VerifyException("c.for must be inside a c.func")

    @classmethod
    def parse(cls, parser: Parser) -> ForOp:
        arg = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        lb = parser.parse_operand(IntType())
        parser.parse_keyword("to")
        ub = parser.parse_operand(IntType())
        parser.parse_keyword("as")
        name = parser.parse_identifier()
        attrs = parser.parse_optional_attr_dict_with_keyword()
        region = parser.parse_region([arg.resolve(IntType())])
        op = cls(lb, ub, name, region)
        if attrs is not None:
            op.attributes |= attrs.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.induction_var)
        printer.print_string(" = ")
        printer.print_operand(self.lb)
        printer.print_string(" to ")
        printer.print_operand(self.ub)
        printer.print_string(f" as {self.var_name.data}")
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=True)


@irdl_op_definition
class IfOp(IRDLOperation):
    """``if (cond) { then }``, optionally ``else { ... }``; no terminators
    (a ``c.return`` may end either block).

    ```mlir
    %bad = c.binop "!=" %ok, %c0 : !c.int
    c.if %bad {
      c.return %c4 : !c.int
    }
    // if ((ok != 0)) {
    //   return 4;
    // }
    ```
    """

    name = "c.if"

    cond = operand_def()
    then_region = region_def("single_block")
    else_region = region_def()

    traits = traits_def(NoTerminator())

    def __init__(self, cond: SSAValue | Operation, with_else: bool = False):
        """Makes empty blocks to fill (`then_block`, `else_block`)."""
        els = Region(Block()) if with_else else Region()
        super().__init__(operands=[cond], regions=[Region(Block()), els])

    @property
    def then_block(self) -> Block:
        return self.then_region.block

    @property
    def else_block(self) -> Block | None:
        return self.else_region.blocks.first

    def verify_(self) -> None:
        if not is_scalar_type(self.cond.type):
            raise VerifyException(f"condition must have an arithmetic C type, got {self.cond.type}")
        if len(self.else_region.blocks) > 1:
            raise VerifyException("else region must have at most one block")
        for r in (self.then_region, self.else_region):
            for b in r.blocks:
                if b.args:
                    raise VerifyException("c.if blocks take no arguments")
        if _enclosing_func(self) is None:
            raise VerifyException("c.if must be inside a c.func")

    @classmethod
    def parse(cls, parser: Parser) -> IfOp:
        cond = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        cond_v = parser.resolve_operand(cond, parser.parse_type())
        attrs = parser.parse_optional_attr_dict_with_keyword()
        then = parser.parse_region()
        els = Region()
        if parser.parse_optional_keyword("else") is not None:
            els = parser.parse_region()
        if not then.blocks:
            then.add_block(Block())
        op = cls.create(operands=[cond_v], regions=[then, els])
        if attrs is not None:
            op.attributes |= attrs.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.cond)
        printer.print_string(" : ")
        printer.print_attribute(self.cond.type)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.then_region, print_entry_block_args=False, print_empty_block=True)
        if self.else_region.blocks:
            printer.print_string(" else ")
            printer.print_region(self.else_region, print_entry_block_args=False, print_empty_block=True)


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A numeric constant, printed inline where used. Floats are stored
    rounded to their type and print (in MLIR and in C) as the shortest decimal
    that reads back as exactly that value (at most 9 significant digits for
    f32, 17 for f64), so the kernel receives the bits the IR holds.

    ```mlir
    %n = c.constant 576 : !c.int        // 576
    %e = c.constant 1.0e-05 : f32       // 1.0e-05f
    %t = c.constant 0.1 : f64           // 0.1
    ```
    """

    name = "c.constant"

    value = prop_def(IntegerAttr | FloatAttr)
    result = result_def()

    traits = traits_def(Pure())

    custom_directives = (NumberOfType,)
    assembly_format = "custom<NumberOfType>($value, type($result)) attr-dict"

    def __init__(self, value: int | float, type: Attribute):
        super().__init__(properties={"value": _num_attr(value, type)}, result_types=[type])

    def verify_(self) -> None:
        t = self.result.type
        if not is_scalar_type(t):
            raise VerifyException(f"constant type {t} must be an arithmetic C type")
        _check_number(self.value, t)


@irdl_op_definition
class PtrOp(IRDLOperation):
    """A typed pointer into a byte buffer: ``base + offset [+ index * stride]``
    bytes, cast to the result pointer type. `base` must point to bytes
    (``ui8``/``i8``); the index is a ``!c.int`` (usually a loop variable);
    offset and stride must be multiples of the pointee's size (no misaligned
    element pointers).

    ```mlir
    %x = c.ptr %arena[8192] : !c.ptr<ui8> -> !c.ptr<f32>
    // (float *)(arena + 8192)
    %w = c.ptr %arena[4096 + %l * 2304] : !c.ptr<ui8> -> !c.ptr<f32, const>
    // (const float *)(arena + 4096 + (long long)l * 2304)
    %o = c.elem @attn_norm_weight[%l] : !c.size
    %v = c.ptr %weights[0 + %o * 1] bytes : !c.ptr<ui8, const> -> !c.ptr<f32, const>
    // (const float *)(weights + attn_norm_weight[l])
    ```
    A ``!c.size`` index is a byte offset (stride 1; from a table of planned
    offsets, which keeps them aligned).
    """

    name = "c.ptr"

    base = operand_def(PtrType)
    index = opt_operand_def()
    offset = prop_def(IntAttr)
    stride = opt_prop_def(IntAttr)
    result = result_def(PtrType)

    traits = traits_def(Pure())

    custom_directives = (Int, IntIndex)
    assembly_format = (
        "$base `[` custom<Int>($offset) (`+` $index^ `*` custom<Int>($stride))? `]` custom<IntIndex>(type($index))"
        " attr-dict"
        " `:` type($base) `->` type($result)"
    )

    def __init__(
        self,
        base: SSAValue | Operation,
        offset: int,
        result_type: PtrType,
        index: SSAValue | Operation | None = None,
        stride: int | None = None,
    ):
        props: dict[str, Attribute] = {"offset": IntAttr(offset)}
        if stride is not None:
            props["stride"] = IntAttr(stride)
        super().__init__(
            operands=[base, [index] if index is not None else []],
            properties=props,
            result_types=[result_type],
        )

    def verify_(self) -> None:
        base_t = self.base.type
        assert isinstance(base_t, PtrType)
        p = base_t.pointee
        if not (isinstance(p, IntegerType) and p.width.data == 8):
            raise VerifyException(f"base must be a byte pointer (!c.ptr<ui8> or !c.ptr<i8>), got {base_t}")
        res = self.result.type
        assert isinstance(res, PtrType)
        if base_t.const and not res.const:
            raise VerifyException("cannot drop const from the base pointer")
        if self.offset.data < 0:
            raise VerifyException(f"offset {self.offset.data} must be non-negative")
        if (self.index is None) != (self.stride is None):
            raise VerifyException("index and stride come together")
        byte_index = False
        if self.index is not None:
            byte_index = isinstance(self.index.type, SizeType)
            if not isinstance(self.index.type, IntType) and not byte_index:
                raise VerifyException(f"index must be a !c.int, got {self.index.type} (or a !c.size byte offset)")
            if byte_index and self.stride.data != 1:
                raise VerifyException("a !c.size index is a byte offset: its stride is 1")
            if self.stride.data <= 0:
                raise VerifyException(f"stride {self.stride.data} must be positive")
        size = _elem_size(res.pointee)
        if size is not None:
            if self.offset.data % size:
                raise VerifyException(
                    f"offset {self.offset.data} is not a multiple of the {size}-byte element"
                )
            if self.stride is not None and not byte_index and self.stride.data % size:
                raise VerifyException(
                    f"stride {self.stride.data} is not a multiple of the {size}-byte element"
                )


def _elem_size(t: Attribute) -> int | None:
    if isinstance(t, Float32Type):
        return 4
    if isinstance(t, Float64Type):
        return 8
    if isinstance(t, IntType):
        return 4
    if isinstance(t, CharType):
        return 1
    if isinstance(t, (SizeType, PtrType)):
        return 8
    if isinstance(t, IntegerType) and t.width.data in _INT_WIDTHS:
        return t.width.data // 8
    return None


_ARITH = ("+", "-", "*", "/", "%")
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_LOGIC = ("&&", "||")
_BINOPS = _ARITH + _COMPARE + _LOGIC


@irdl_op_definition
class BinOp(IRDLOperation):
    """A binary C operator on two values of the same type, printed inline and
    parenthesized. Arithmetic (``+ - * / %``) gives the operands' type;
    comparisons (``== != < <= > >=``) and ``&& ||`` give ``!c.int`` (the type
    after ``:`` is the operands' type).

    ```mlir
    %t = c.binop "+" %pos, %n : !c.int   // (pos + n_tokens)
    %b = c.binop "<" %a, %b : f32        // (a < b), an int
    ```
    ``%`` is for integer types only.
    """

    name = "c.binop"

    kind = prop_def(StringAttr)
    lhs = operand_def()
    rhs = operand_def()
    result = result_def()

    traits = traits_def(Pure())

    custom_directives = (OperandsType,)
    assembly_format = "$kind $lhs `,` $rhs attr-dict `:` custom<OperandsType>(type($lhs), type($rhs), type($result))"

    def __init__(self, kind: str, lhs: SSAValue | Operation, rhs: SSAValue | Operation):
        t = SSAValue.get(lhs).type
        if kind not in _ARITH:
            t = IntType()
        super().__init__(
            operands=[lhs, rhs], properties={"kind": StringAttr(kind)}, result_types=[t]
        )

    def verify_(self) -> None:
        k = self.kind.data
        if k not in _BINOPS:
            raise VerifyException(f"unknown operator '{k}' (expected one of {' '.join(_BINOPS)})")
        t = self.lhs.type
        if not is_scalar_type(t):
            raise VerifyException(f"operands must have an arithmetic C type, got {t}")
        if self.rhs.type != t:
            raise VerifyException("both operands must have the same type")
        want = t if k in _ARITH else IntType()
        if self.result.type != want:
            raise VerifyException(f"'{k}' on {t} gives {want}, not {self.result.type}")
        if k == "%" and not is_int_type(t):
            raise VerifyException("'%' needs integer operands")


@irdl_op_definition
class CastOp(IRDLOperation):
    """An arithmetic conversion, printed inline: ``((T)x)``. Used to widen an
    ``int`` before a product that may not fit it (an element count of
    rows x cols passed as ``int64_t``).

    ```mlir
    %w = c.cast %n : !c.int to i64        // ((int64_t)n)
    %p = c.binop "*" %w, %c262144 : i64   // (((int64_t)n) * 262144)
    ```
    """

    name = "c.cast"

    input = operand_def()
    result = result_def()

    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, value: SSAValue | Operation, to: Attribute):
        super().__init__(operands=[value], result_types=[to])

    def verify_(self) -> None:
        for what, t in (("operand", self.input.type), ("result", self.result.type)):
            if not is_scalar_type(t):
                raise VerifyException(f"{what} must have an arithmetic C type, got {t}")


@irdl_op_definition
class ElemOp(IRDLOperation):
    """One element of a file-scope ``c.global`` array, printed inline.

    ```mlir
    %o = c.elem @attn_norm_weight[%l] : !c.size     // attn_norm_weight[l]
    ```
    """

    name = "c.elem"

    table = prop_def(SymbolRefAttr)
    index = operand_def(IntType)
    result = result_def()

    traits = traits_def(Pure())

    assembly_format = "$table `[` $index `]` attr-dict `:` type($result)"

    def __init__(self, table: str, index: SSAValue | Operation, result_type: Attribute):
        super().__init__(
            operands=[index], properties={"table": SymbolRefAttr(table)}, result_types=[result_type]
        )

    def verify_(self) -> None:
        name = self.table.string_value()
        g = _module_symbol(self, name)
        if g is None:
            raise VerifyException(f"@{name} is not a global of the module")
        if not isinstance(g, GlobalOp) or not isinstance(g.value, ArrayAttr):
            raise VerifyException(f"@{name} is not a global array")
        if g.elem_type != self.result.type:
            raise VerifyException(f"@{name} holds {g.elem_type}, not {self.result.type}")
        if _enclosing_func(self) is None:
            raise VerifyException("c.elem must be inside a c.func")


@irdl_op_definition
class VarOp(IRDLOperation):
    """A local variable declaration with an initializer; its result is the
    variable (printed by name at each use).

    ```mlir
    %end = c.var end = %t : !c.int      // int end = (pos + n_tokens);
    ```
    """

    name = "c.var"

    var_name = prop_def(StringAttr)
    init = operand_def()
    result = result_def()

    custom_directives = (CName, OneType)
    assembly_format = "custom<CName>($var_name) `=` $init attr-dict `:` custom<OneType>(type($init), type($result))"

    def __init__(self, var_name: str, init: SSAValue | Operation):
        super().__init__(
            operands=[init],
            properties={"var_name": StringAttr(var_name)},
            result_types=[SSAValue.get(init).type],
        )

    def verify_(self) -> None:
        check_identifier(self.var_name.data, "variable name")
        if not is_c_type(self.result.type):
            raise VerifyException(f"variable type {self.result.type} is not a C type")
        if self.init.type != self.result.type:
            raise VerifyException("initializer type must equal the variable type")
        if _enclosing_func(self) is None:
            raise VerifyException("c.var must be inside a c.func")


@irdl_op_definition
class CallOp(IRDLOperation):
    """A call statement. A call with a result stores it in a new local named
    after ``as``. When the callee is a ``c.decl``/``c.func`` of the module,
    arity and types are checked against it (a ``T *`` argument may meet a
    ``const T *`` or ``void *`` parameter); callees from included headers are
    taken as written.

    ```mlir
    c.call @ck_rmsnorm_f32_avx512(%x, %w, %y, %n, %c576, %eps) : (!c.ptr<f32, const>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, f32) -> ()
    // ck_rmsnorm_f32_avx512(x, w, y, n_tokens, 576, 1.0e-05f);
    %ok = c.call @ck_canaries_ok(%a) as ok : (!c.ptr<ui8>) -> !c.int
    // int ok = ck_canaries_ok(arena);
    ```
    """

    name = "c.call"

    callee = prop_def(SymbolRefAttr)
    args = var_operand_def()
    result_name = opt_prop_def(StringAttr)
    res = opt_result_def()

    custom_directives = (AsName,)
    assembly_format = "$callee `(` $args `)` custom<AsName>($result_name) attr-dict `:` functional-type($args, $res)"

    def __init__(
        self,
        callee: str,
        args: Sequence[SSAValue | Operation],
        result_type: Attribute | None = None,
        result_name: str | None = None,
    ):
        props: dict[str, Attribute] = {"callee": SymbolRefAttr(callee)}
        if result_name is not None:
            props["result_name"] = StringAttr(result_name)
        super().__init__(
            operands=[list(args)],
            properties=props,
            result_types=[[result_type] if result_type is not None else []],
        )

    def verify_(self) -> None:
        callee = self.callee.string_value()
        if self.callee.nested_references.data:
            raise VerifyException("callee must be a flat symbol")
        check_identifier(callee, "callee")
        if (self.res is None) != (self.result_name is None):
            raise VerifyException("a call result needs a C name ('as NAME') and vice versa")
        if self.result_name is not None:
            check_identifier(self.result_name.data, "call result name")
            if not is_c_type(self.res.type):
                raise VerifyException(f"result type {self.res.type} is not a C type")
        for i, a in enumerate(self.args):
            if not is_c_type(a.type):
                raise VerifyException(f"argument #{i} type {a.type} is not a C type")
        if _enclosing_func(self) is None:
            raise VerifyException("c.call must be inside a c.func")
        target = _module_symbol(self, callee)
        if target is None:
            return
        if not isinstance(target, (DeclOp, FuncOp)):
            raise VerifyException(f"@{callee} is not a function")
        params, ret = target.signature
        if len(params) != len(self.args):
            raise VerifyException(
                f"@{callee} takes {len(params)} arguments, {len(self.args)} given"
            )
        for i, (a, p) in enumerate(zip(self.args, params)):
            if not ptr_assignable(a.type, p):
                raise VerifyException(f"argument #{i} of @{callee}: {a.type} does not match {p}")
        if isinstance(ret, VoidType):
            if self.res is not None:
                raise VerifyException(f"@{callee} returns void")
        elif self.res is not None and self.res.type != ret:
            raise VerifyException(f"@{callee} returns {ret}, not {self.res.type}")


C = Dialect(
    "c",
    [
        IncludeOp,
        OpaqueOp,
        DeclOp,
        GlobalOp,
        CommentOp,
        FuncOp,
        ReturnOp,
        ForOp,
        IfOp,
        ConstantOp,
        PtrOp,
        BinOp,
        CastOp,
        ElemOp,
        VarOp,
        CallOp,
    ],
    [VoidType, IntType, SizeType, CharType, NamedType, PtrType],
)
