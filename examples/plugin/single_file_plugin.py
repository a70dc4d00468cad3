"""A single-file ckc-opt plugin: ``ckc-opt --load-plugin single_file_plugin.py``.

ckc-opt imports this file and registers every ModulePass subclass (with a
``name``) and every Dialect object defined at its top level.
"""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.passes import ModulePass


@dataclass(frozen=True)
class MarkLargeFuncs(ModulePass):
    """Mark functions holding at least ``threshold`` ops with ``example.large``."""

    name = "mark-large-funcs"

    threshold: int = 4

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        for f in op.walk():
            if isinstance(f, func.FuncOp):
                n = sum(1 for _ in f.body.walk())
                if n >= self.threshold:
                    f.attributes["example.large"] = builtin.UnitAttr()
