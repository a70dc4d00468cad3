"""annotate-op-count: record on each function how many ops its body holds.

A small but real analysis pass: it walks every ``func.func`` and attaches
``example.op_count`` (optionally counting only ops of one dialect), which a
later pass or a person reading the IR can use to see how big each mode is.
"""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.passes import ModulePass


@dataclass(frozen=True)
class AnnotateOpCount(ModulePass):
    name = "annotate-op-count"

    dialect: str = ""
    """Count only ops of this dialect (e.g. "tensorop"); empty counts all."""

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        for f in op.walk():
            if not isinstance(f, func.FuncOp):
                continue
            prefix = self.dialect + "." if self.dialect else ""
            n = sum(
                1
                for inner in f.body.walk()
                if inner.name.startswith(prefix)
            )
            f.attributes["example.op_count"] = builtin.IntegerAttr(n, 64)
