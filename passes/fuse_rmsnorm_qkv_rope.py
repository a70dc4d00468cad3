"""fuse-rmsnorm-qkv-rope: one `tensorop.rmsnorm_qkv_rope` per attention input.

    ckc-opt model.mlir -p 'lower-transformer,fuse-rmsnorm-qkv-rope,bufferize'

Matches, in a function body, the attention input that lower-transformer writes
for the RMSNorm families (llama, qwen2, gemma, SmolLM2):

    h = rmsnorm(x, nw)                          h read only by the three matmuls
    q = matmul(h, Wq) [+ bq]   -> rope(q)       q read only by its rope
    k = matmul(h, Wk) [+ bk]   -> rope(k)       k read only by its rope
    v = matmul(h, Wv) [+ bv]                    v read by no rope

(transpose_b matmuls; biases all present or all absent; the two ropes agree on
position, theta, style, head_dim, rotary_dim and inv_freq; k is the projection
whose rotated rows are written to a KV cache, q the other one) and replaces
the six ops by one `rmsnorm_qkv_rope`, which bufferize lowers to one kernel
call (ck_rmsnorm_qkv_rope_f32: the norm computed once into a scratch buffer,
q and k rotated right after their GEMM, k and v written straight into the KV
cache rows). The fused op is placed after the last of the ops it replaces; a
match whose results are read before that point is left alone. Families with a
norm between projection and rope (qwen3/gemma3 QK-norm) or a LayerNorm / fused
qkv weight (gpt2) do not match and keep their separate ops, and so do
projections whose weights are not f32 (a GGUF's ``!quant.*`` / f16 weights: the
fused kernel reads f32 weights; their matmuls become qgemm calls, each quantizing
the normalized rows itself). Inference only: the
training pipeline differentiates the separate ops (autodiff has no rule for
the fused one).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, f32
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from ckc.dialects import tensorop as T


def _single_user(v: SSAValue) -> Operation | None:
    uses = list(v.uses)
    return uses[0].operation if len(uses) == 1 else None


def _feeds_cache(v: SSAValue) -> bool:
    return any(isinstance(u.operation, T.KVWriteOp) and u.operation.x is v for u in v.uses)


def _rope_key(r: T.RopeOp):
    p = r.prop_values()
    return (r.pos, r.inv_freq, p["head_dim"], p["rotary_dim"], float(p["theta"]), p["style"], p["seq_len"])


def _match(norm: T.RMSNormOp):
    """(q matmul, q rope, k matmul, k rope, v matmul) or None."""
    users = [u.operation for u in norm.result.uses]
    if len(users) != 3 or len(set(map(id, users))) != 3:
        return None
    mms = []
    for m in users:
        if not isinstance(m, T.MatmulOp) or m.a is not norm.result or m.b is norm.result:
            return None
        p = m.prop_values()
        if p["transpose_a"] or not p["transpose_b"]:
            return None
        if m.b.type.element_type != f32:   # ck_rmsnorm_qkv_rope_f32 reads f32 weights only
            return None
        mms.append(m)
    if len({m.bias is None for m in mms}) != 1:
        return None
    roped, plain = [], []
    for m in mms:
        r = _single_user(m.result)
        if isinstance(r, T.RopeOp) and r.x is m.result:
            roped.append((m, r))
        else:
            plain.append(m)
    if len(roped) != 2 or len(plain) != 1 or any(isinstance(u.operation, T.RopeOp) for u in plain[0].result.uses):
        return None
    if _rope_key(roped[0][1]) != _rope_key(roped[1][1]) or roped[0][1].prop_values()["seq_len"]:
        return None   # (seq_len: positions restarting per packed sequence, training only)
    to_cache = [_feeds_cache(r.result) for _, r in roped]
    if to_cache == [True, False]:
        roped.reverse()
    elif to_cache != [False, True]:
        return None
    (mq, rq), (mk, rk) = roped
    return mq, rq, mk, rk, plain[0]


def _fuse(block: Block, norm: T.RMSNormOp) -> bool:
    m = _match(norm)
    if m is None:
        return False
    mq, rq, mk, rk, mv = m
    replaced = [norm, mq, rq, mk, rk, mv]
    order = {id(op): i for i, op in enumerate(block.ops)}
    if any(id(op) not in order for op in replaced):
        return False
    last = max(replaced, key=lambda op: order[id(op)])
    # every reader of the new results must come after the fused op's position
    for v in (rq.result, rk.result, mv.result):
        for u in v.uses:
            if order.get(id(u.operation), -1) <= order[id(last)]:
                return False
    pn, pr = norm.prop_values(), rq.prop_values()
    fused = T.RMSNormQKVRopeOp(
        norm.x, norm.w, mq.b, mk.b, mv.b, rq.pos, mq.bias, mk.bias, mv.bias, rq.inv_freq,
        heads=pr["heads"], kv_heads=rk.prop_values()["heads"], head_dim=pr["head_dim"], eps=float(pn["eps"]),
        offset=float(pn["offset"]), theta=float(pr["theta"]), style=pr["style"], rotary_dim=pr["rotary_dim"])
    block.insert_op_after(fused, last)
    for new, old in ((fused.q, rq.result), (fused.k, rk.result), (fused.v, mv.result)):
        new.name_hint = old.name_hint
        old.replace_all_uses_with(new)
    for op in (rq, rk, mq, mk, mv, norm):
        op.detach()
        op.erase()
    return True


@dataclass(frozen=True)
class FuseRmsnormQkvRope(ModulePass):
    name = "fuse-rmsnorm-qkv-rope"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for norm in [o for o in op.walk() if isinstance(o, T.RMSNormOp)]:
            block = norm.parent_block()
            if block is not None:
                _fuse(block, norm)
