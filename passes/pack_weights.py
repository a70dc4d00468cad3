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
  same parameters, same arithmetic order as ``ck_gemm_f32`` from 8 rows up);
- the Wq/Wk/Wv operands (ins #2-4) of a fused ``rmsnorm_qkv_rope[_bias]``
  call count as Linear uses too: packed all three or none, and the call's
  ``packed`` param becomes 1.

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
from xdsl.dialects.builtin import DictionaryAttr, IntAttr, IntegerAttr, ModuleOp, StringAttr, f32, i64
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects.buffer import BufferOp, CallOp, packed_p32_bytes

GEMM, PACKED = "gemm", "gemm_packed"
FUSED = ("rmsnorm_qkv_rope", "rmsnorm_qkv_rope_bias")   # W operands ins #2-4, param packed


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
        def linear_use(c: CallOp, i: int) -> bool:
            return (c.kernel.data == GEMM and i == 1) or (c.kernel.data in FUSED and i in (2, 3, 4))

        ok = {name for name, b in bufs.items()
              if _candidate(b) and uses.get(name) and all(linear_use(c, i) for c, i in uses[name])}
        # a fused call reads its three weights in one layout: all packed or none
        fused = {id(c): c for users in uses.values() for c, _ in users if c.kernel.data in FUSED}
        for c in fused.values():
            ws = [r.buffer_name for r in c.ins.data[2:5]]
            if not all(w in ok for w in ws):
                ok -= set(ws)
        for name in ok:
            b = bufs[name]
            n, k = b.type.get_shape()
            b.properties["layout"] = StringAttr("p32")
            b.properties["size"] = IntAttr(max(b.size.data, packed_p32_bytes(n, k)))
            for c, _ in uses[name]:
                if c.kernel.data == GEMM:
                    c.properties["kernel"] = StringAttr(PACKED)
        for c in fused.values():
            if c.ins.data[2].buffer_name in ok:
                c.properties["params"] = DictionaryAttr({**c.params.data, "packed": IntegerAttr(1, i64)})
