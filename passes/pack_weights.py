"""pack-weights: store every weight that only a Linear reads prepacked for it.

    ckc-opt model.mlir -p 'bufferize,pack-weights,plan-memory'

A GEMM against W[N, K] (y = x·Wᵀ) must first rearrange W into panels the
micro-kernel streams; done on every call, that costs a pass over W per call
(15-25% of a 64-row prefill chunk). A weight is constant for the life of an
inference library, so this pass moves the rearrangement to compile time:

- a module-level ``weights`` buffer (static 2-D f32, not layered, not an
  inline constant) whose every use is the ``W`` operand (ins #1) of a
  ``buffer.call gemm`` gets ``layout p32`` and the size of its panels
  (``ceil(N/32)*32*K*4`` bytes: N padded to whole 32-row panels);
- those calls become ``buffer.call gemm_packed`` (``ck_gemm_packed_f32``,
  same parameters, same arithmetic order as ``ck_gemm_f32`` from 8 rows up).

A weight with any other reader keeps its row-major layout: a tied embedding
(``token_embd.weight`` read by ``embedding`` and the LM head's ``gemm``) or a
weight the training step updates (the train pipeline does not run this pass).
The compiler writes p32 weights into weights.bump with dtype ``f32p32``
(ckc/artifacts.py), so the runtime maps them as they are, nothing repacks at
load. Runs before plan-memory (sizes change); a planned module is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntAttr, ModuleOp, StringAttr, f32
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects.buffer import BufferOp, CallOp, packed_p32_bytes

GEMM, PACKED = "gemm", "gemm_packed"


def _candidate(b: BufferOp) -> bool:
    shape = b.type.get_shape()
    return (b.region.data == "weights" and len(shape) == 2 and all(d > 0 for d in shape)
            and b.layers is None and b.layout is None and "value" not in b.attributes
            and b.type.element_type == f32)


@dataclass(frozen=True)
class PackWeights(ModulePass):
    name = "pack-weights"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        bufs = {b.buffer_name: b for b in op.ops if isinstance(b, BufferOp)}
        for b in bufs.values():
            if b.region.data == "weights" and b.offset is not None:
                raise DiagnosticException(
                    f"pack-weights: @{b.buffer_name} is already planned; run pack-weights before plan-memory")
        uses: dict[str, list[tuple[CallOp, int]]] = {}
        for call in op.walk():
            if isinstance(call, CallOp):
                for i, ref in enumerate(call.ins.data):
                    uses.setdefault(ref.buffer_name, []).append((call, i))
        for name, b in bufs.items():
            if not _candidate(b):
                continue
            users = uses.get(name, [])
            if not users or any(c.kernel.data != GEMM or i != 1 for c, i in users):
                continue
            n, k = b.type.get_shape()
            b.properties["layout"] = StringAttr("p32")
            b.properties["size"] = IntAttr(max(b.size.data, packed_p32_bytes(n, k)))
            for c, _ in users:
                c.properties["kernel"] = StringAttr(PACKED)
