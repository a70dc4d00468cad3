"""Test-only passes that plant a bug, for test/py/test_parity_bisect.py (loaded
with `ckc parity --load-plugin`; never part of ckc's pipeline).

- drop-k-rope{layer=L}: a wrong rewrite at the tensorop level: layer L's k
  skips RoPE (its rope op's uses take the unrotated k).
- wrong-kernel{kernel=K layer=L to=W}: a wrong kernel-variant table entry:
  layer L's call of kernel K is pointed at kernel W (same C signature), after
  select-simd, so only the compiled model is wrong.
"""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass


@dataclass(frozen=True)
class DropKRope(ModulePass):
    name = "drop-k-rope"
    layer: int = 1

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for rope in [o for o in op.walk() if o.name == "tensorop.rope"
                     and o.results[0].name_hint == f"l{self.layer}_k_rot"]:
            rope.results[0].replace_all_uses_with(rope.operands[0])
            rope.detach()
            rope.erase()


@dataclass(frozen=True)
class WrongKernel(ModulePass):
    name = "wrong-kernel"
    kernel: str = "swiglu"
    layer: int = 1
    to: str = "mul"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from ckc.dialects import buffer as B

        for call in op.walk():
            if isinstance(call, B.CallOp) and call.kernel.data == self.kernel and any(
                    r.buffer_name.startswith(f"l{self.layer}_") for r in call.out_refs):
                call.kernel = StringAttr(self.to)
