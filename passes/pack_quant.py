"""pack-quant: store block-format weights that only quantized GEMMs read repacked.

    ckc-opt model.mlir -p 'bufferize,pack-quant,plan-memory'

A GGUF weight in Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1 (``tensor<NxKx!quant.q4_1>``)
is stored row after row, so a GEMM kernel loads one row's block per activation
block. ``ck_qpack_<fmt>`` rearranges it into groups of 8 rows whose blocks lie
side by side with their scales first (ik_llama.cpp's _R8 layout, documented in
kernels/include/ckernels.h), so one 64-byte load feeds four rows per
``vpdpbusd`` and one float step serves four rows. A weight is constant for the
life of an inference library, so this pass does the repacking at compile time:

- a module-level ``weights`` buffer (static 2-D, not layered, not an inline
  constant, no layout yet) in one of those formats whose every use is the
  ``W`` operand (ins #1) of a ``buffer.call qgemm_<fmt>`` gets ``layout r8``
  and the size of the repacked tensor (``ceil(N/8)*8`` rows: N padded with
  zero rows);
- those calls become ``buffer.call qgemm_packed_<fmt>`` (same parameters and
  results up to fp32 rounding of the per-block accumulation).

A weight with another reader keeps the GGUF layout: a tied embedding (read by
``qembedding_<fmt>`` and the LM head's GEMM) or a slice read at a row offset
(GPT-2's fused ``attn_qkv``: an r8 group does not start at every row).
K-quants (Q2_K..Q6_K), f16 and bf16 have no repack kernel and stay as stored.
The compiler writes r8 weights into weights.bump with dtype ``<fmt>r8``, the
bytes ck_qpack_<fmt> of the kernel library produced (ckc/artifacts.py), so the
runtime maps them as they are. Runs before plan-memory (sizes change); a
planned module is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntAttr, ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc import kernel_abi
from ckc.dialects import quant
from ckc.dialects.buffer import R8_FORMATS, BufferOp, CallOp, packed_r8_bytes


def _candidate(b: BufferOp) -> str | None:
    """The format of a weights buffer pack-quant may repack, else None."""
    shape = b.type.get_shape()
    fmt = quant.format_name(b.type.element_type)
    ok = (b.region.data == "weights" and len(shape) == 2 and all(d > 0 for d in shape)
          and b.layers is None and b.layout is None and "value" not in b.attributes)
    return fmt if ok and fmt in R8_FORMATS and kernel_abi.QUANT_FORMATS[fmt][2] else None


@dataclass(frozen=True)
class PackQuant(ModulePass):
    name = "pack-quant"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        bufs = {b.buffer_name: b for b in op.ops if isinstance(b, BufferOp)}
        for b in bufs.values():
            if b.region.data == "weights" and b.offset is not None:
                raise DiagnosticException(
                    f"pack-quant: @{b.buffer_name} is already planned; run pack-quant before plan-memory")
        uses: dict[str, list[tuple[CallOp, int]]] = {}
        for call in op.walk():
            if isinstance(call, CallOp):
                for i, ref in enumerate(call.ins.data):
                    uses.setdefault(ref.buffer_name, []).append((call, i))

        def gemm_use(c: CallOp, i: int, fmt: str) -> bool:
            # W of an unpacked qgemm of its own format, read from row 0
            return (i == 1 and c.kernel.data == kernel_abi.qgemm_kernel(fmt)
                    and kernel_abi.row_param("in", 1) not in c.params.data
                    and kernel_abi.row_param("in", 1) not in [n.data for n in c.dyn_names.data])

        for name, b in bufs.items():
            fmt = _candidate(b)
            if fmt is None or not uses.get(name) or not all(gemm_use(c, i, fmt) for c, i in uses[name]):
                continue
            n, k = b.type.get_shape()
            b.properties["layout"] = StringAttr("r8")
            b.properties["size"] = IntAttr(max(b.size.data, packed_r8_bytes(b.type.element_type, n, k)))
            for c, _ in uses[name]:
                c.properties["kernel"] = StringAttr(kernel_abi.qgemm_kernel(fmt, packed=True))
