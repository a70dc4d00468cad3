"""select-simd: give every kernel call the best variant the target runs.

    ckc-opt model.mlir -p 'select-simd{target=avx2}'

``target`` is ``native`` (probe this CPU with cpuid/xgetbv through the kernel
library), ``avx512``, ``avx2`` or ``scalar``. A named target is a promise about
the machine that will run the code (cross-compiling for it); each call gets
the most capable variant that both the target supports and the library has
for that kernel (ckc/kernel_abi.py), so a kernel with only a scalar version
still compiles for an AVX-512 target. The resolved target is recorded on the
module as ``ckc.simd`` (the runtime reports it).

Calls that already carry a variant keep it when ``keep=true`` (a person
pinned it); otherwise they are re-selected.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc import kernel_abi
from ckc.dialects.buffer import CallOp

# Most capable first: the first variant a kernel has and the target allows wins.
PREFERENCE = ("avx512", "avx2", "scalar")
TARGETS = {
    "avx512": ("avx512", "avx2", "scalar"),
    "avx2": ("avx2", "scalar"),
    "scalar": ("scalar",),
}


def allowed_variants(target: str) -> tuple[str, ...]:
    """Variants a target may run, most capable first."""
    if target == "native":
        from ckc.kernels import available_variants

        have = set(available_variants())
        return tuple(v for v in PREFERENCE if v in have)
    if target not in TARGETS:
        raise DiagnosticException(
            f"select-simd: unknown target '{target}' (expected native, {', '.join(TARGETS)})"
        )
    return TARGETS[target]


def choose(kernel: kernel_abi.Kernel, allowed: tuple[str, ...]) -> str | None:
    for v in allowed:
        if v in kernel.variants:
            return v
    return None


@dataclass(frozen=True)
class SelectSimd(ModulePass):
    name = "select-simd"

    target: str = "native"
    """native | avx512 | avx2 | scalar"""

    keep: bool = False
    """Keep variants already set on calls instead of re-selecting them."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        allowed = allowed_variants(self.target)
        best = allowed[0] if allowed else "scalar"
        for call in op.walk():
            if not isinstance(call, CallOp):
                continue
            if self.keep and call.variant is not None:
                continue
            name = call.kernel.data
            try:
                k = kernel_abi.kernel(name)
            except KeyError as err:
                raise DiagnosticException(
                    f"select-simd: buffer.call {name}: {err.args[0]}"
                ) from None
            v = choose(k, allowed)
            if v is None:
                raise DiagnosticException(
                    f"select-simd: kernel {name} has no variant for target "
                    f"'{self.target}' (has {', '.join(k.variants)})"
                )
            call.set_variant(v)
        op.attributes["ckc.simd"] = StringAttr(best)
