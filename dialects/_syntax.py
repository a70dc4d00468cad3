"""The one generic op syntax of ckc's value-level dialects (`transformer`,
`tensorop`): ops whose operand list has optional members, which xDSL's
declarative `assembly_format` cannot spell unambiguously (an optional group
opening with `,` commits on the comma)::

    %r = dialect.op %a, %b[, <name> %opt]* {props and attrs} : (<operand types>) -> <result type(s)>

Required operands come first, positional and comma-separated, in definition
order (a variadic one takes every following operand); each present optional
operand follows as `, <its name> %value`, in definition order. The types
list every present operand in the same order. Properties equal to their
default are elided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import AttrSizedOperandSegments, IRDLOperation, OptionalDef, VariadicDef, operand_def, result_def
from xdsl.parser import Parser
from xdsl.printer import Printer


def split_operands(op_type, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """A constructor's operands: `args` positionally in definition order, the
    rest by name (popped from `kwargs`). Returns the operand groups for
    `IRDLOperation.__init__` and each operand's type by name (None when an
    optional one is absent, a tuple for a variadic one)."""
    op_def = op_type.get_irdl_definition()
    names = [n for n, _ in op_def.operands]
    if len(args) > len(names):
        raise TypeError(f"{op_type.name}: {len(args)} operands given, it takes {len(names)}")
    given = dict(zip(names, args)) | {n: kwargs.pop(n, None) for n in names[len(args):]}
    groups: list[Any] = []
    types: dict[str, Any] = {}
    for name, odef in op_def.operands:
        value = given[name]
        if isinstance(odef, VariadicDef) and not isinstance(odef, OptionalDef):
            vals = [SSAValue.get(v) for v in (value or ())]
            groups.append(vals)
            types[name] = tuple(v.type for v in vals)
        elif value is None:
            if not isinstance(odef, OptionalDef):
                raise TypeError(f"{op_type.name}: operand '{name}' is required")
            groups.append([])
            types[name] = None
        else:
            value = SSAValue.get(value)
            groups.append([value] if isinstance(odef, OptionalDef) else value)
            types[name] = value.type
    return groups, types


def group_results(op_def, rtypes: list[Attribute]) -> list[Any] | None:
    """Groups a flat result type list by result definition (optional or
    variadic results get a list); None when the count cannot fit."""
    extra = len(rtypes) - sum(1 for _, d in op_def.results if not isinstance(d, VariadicDef))
    if extra < 0 or (extra > 0 and not any(isinstance(d, VariadicDef) for _, d in op_def.results)):
        return None
    groups: list[Any] = []
    k = 0
    for _, rdef in op_def.results:
        if isinstance(rdef, VariadicDef):
            n = min(extra, 1) if isinstance(rdef, OptionalDef) else extra
            groups.append(rtypes[k : k + n])
            k += n
            extra -= n
        else:
            groups.append(rtypes[k])
            k += 1
    return groups if k == len(rtypes) else None


class OperandsSyntax(IRDLOperation):
    """Base class giving an op the syntax of this module."""

    @classmethod
    def parse(cls, parser: Parser):
        op_def = cls.get_irdl_definition()
        start = parser.pos
        optional = [n for n, d in op_def.operands if isinstance(d, OptionalDef)]
        unresolved: dict[str, list] = {n: [] for n, _ in op_def.operands}
        first = True
        for name, odef in op_def.operands:
            if isinstance(odef, OptionalDef):
                continue
            if not first:
                parser.parse_punctuation(",")
            first = False
            unresolved[name].append(parser.parse_unresolved_operand())
            if isinstance(odef, VariadicDef):
                while parser.parse_optional_punctuation(","):
                    unresolved[name].append(parser.parse_unresolved_operand())
        seen: list[str] = []
        while parser.parse_optional_punctuation(","):
            kw = parser.parse_optional_keyword_in(optional)
            if kw is None:
                parser.raise_error(f"expected one of the optional operands {', '.join(optional)}")
            if kw in seen or any(optional.index(s) > optional.index(kw) for s in seen):
                parser.raise_error(f"optional operand '{kw}' repeated or out of order")
            seen.append(kw)
            unresolved[kw].append(parser.parse_unresolved_operand())
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        ftype = parser.parse_function_type()
        order = [n for n, _ in op_def.operands if n not in optional] + optional
        flat = [u for n in order for u in unresolved[n]]
        values = iter(parser.resolve_operands(flat, ftype.inputs.data, start))
        resolved = {n: [next(values) for _ in unresolved[n]] for n in order}
        groups = [resolved[n] if isinstance(d, VariadicDef) else resolved[n][0] for n, d in op_def.operands]
        rtypes = list(ftype.outputs.data)
        rgroups = group_results(op_def, rtypes)
        if rgroups is None:
            n_single = sum(1 for _, d in op_def.results if not isinstance(d, VariadicDef))
            n_opt = len(op_def.results) - n_single
            expected = f"{n_single}" if not n_opt else f"{n_single} to {n_single + n_opt}"
            parser.raise_error(f"'{cls.name}' has {expected} results, got {len(rtypes)} result types", start)
        return cls.build(
            operands=groups,
            result_types=rgroups,
            properties={n: a for n, a in attrs.items() if n in op_def.properties},
            attributes={n: a for n, a in attrs.items() if n not in op_def.properties},
        )

    def print(self, printer: Printer):
        op_def = self.get_irdl_definition()
        printed: list[SSAValue] = []
        for name, odef in op_def.operands:
            if not isinstance(odef, OptionalDef):
                value = getattr(self, name)
                for v in list(value) if isinstance(odef, VariadicDef) else [value]:
                    printer.print_string(", " if printed else " ")
                    printer.print_operand(v)
                    printed.append(v)
        for name, odef in op_def.operands:
            if isinstance(odef, OptionalDef) and (value := getattr(self, name)) is not None:
                printer.print_string(f", {name} ")
                printer.print_operand(value)
                printed.append(value)
        shown: dict[str, Attribute] = {}
        for name, attr in self.properties.items():
            pdef = op_def.properties.get(name)
            if name != AttrSizedOperandSegments.attribute_name and (pdef is None or pdef.default_value != attr):
                shown[name] = attr
        printer.print_op_attributes(shown | dict(self.attributes))
        printer.print_string(" : ")
        printer.print_function_type([v.type for v in printed], [r.type for r in self.results])


def operand_defs(n: int, constr: Any = TensorType) -> tuple[Any, ...]:
    """`n` required operands of one constraint, for `a, b, c = operand_defs(3)`
    in an op's class body (names bind, and so define, left to right)."""
    return tuple(operand_def(constr) for _ in range(n))


def result_defs(n: int, constr: Any = TensorType) -> tuple[Any, ...]:
    """`n` results of one constraint, as `operand_defs`."""
    return tuple(result_def(constr) for _ in range(n))
