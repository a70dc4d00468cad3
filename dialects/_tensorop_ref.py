"""Reference semantics of every `tensorop` op, in PyTorch (fp32, CPU).

This is the executable specification of the dialect: kernels, the lowering
passes and `autodiff` are checked against it. Backward ops are written as
explicit formulas (what a kernel computes), and tests compare them with
torch.autograd applied to the forward ops.

    from ckc.dialects._tensorop_ref import evaluate
    outs = evaluate(func_op, args=[tokens, pos], weights={"token_embd.weight": ...})

Values are torch tensors (token ids int32), scalars are Python int/float.
torch is imported lazily so the dialect itself never needs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Operation, SSAValue

from ckc.dialects import quant
from ckc.dialects import tensorop as T

_RULES: dict[str, Callable[..., Any]] = {}


def _torch():
    import torch

    return torch


def rule(op_cls):
    def deco(fn):
        _RULES[op_cls.name] = fn
        return fn

    return deco


# -- helpers ------------------------------------------------------------------


def positions(T_: int, pos: int, seq_len: int = 0):
    """Position of each row: pos + i, or pos + i mod seq_len for a batch."""
    torch = _torch()
    i = torch.arange(T_)
    return pos + (i % seq_len if seq_len else i)


def rope_tables(T_: int, pos: int, p: dict, inv_freq=None):
    """cos/sin `[T, rotary_dim/2]` for the rows' positions (HF's formula)."""
    torch = _torch()
    rd = p["rotary_dim"] or p["head_dim"]
    if inv_freq is None:
        inv_freq = 1.0 / (
            p["theta"] ** (torch.arange(0, rd, 2, dtype=torch.int64).float() / rd)
        )
    positions_ = positions(T_, pos, p.get("seq_len", 0)).float()
    ang = positions_[:, None] * inv_freq.float()[None, :]
    return ang.cos(), ang.sin()


def rope_apply(x, pos: int, p: dict, heads_key: str = "heads", inv_freq=None, inverse=False):
    torch = _torch()
    H, D = p[heads_key], p["head_dim"]
    rd = p["rotary_dim"] or D
    T_ = x.shape[0]
    cos, sin = rope_tables(T_, pos, p, inv_freq)
    cos, sin = cos[:, None, :], sin[:, None, :]
    if inverse:
        sin = -sin
    xh = x.reshape(T_, H, D)
    r, rest = xh[..., :rd], xh[..., rd:]
    if p["style"] == "neox":
        x1, x2 = r[..., : rd // 2], r[..., rd // 2 :]
        out = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    else:
        x1, x2 = r[..., 0::2], r[..., 1::2]
        out = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
    return torch.cat([out, rest], dim=-1).reshape(T_, H * D)


def gelu(x, approximate: str):
    torch = _torch()
    return torch.nn.functional.gelu(x, approximate=approximate)


def gelu_prime(x, approximate: str):
    torch = _torch()
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        u = c * (x + 0.044715 * x**3)
        t = torch.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return cdf + x * pdf


def silu_prime(x):
    torch = _torch()
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def attention_probs(q, k, p: dict, pos: int | None):
    """Scores before softmax ([H, T, S], masked with -inf) and the raw
    (pre-softcap) scores, for queries at positions (pos or 0) + i."""
    torch = _torch()
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    T_, S = q.shape[0], k.shape[0]
    qh = q.reshape(T_, H, D).transpose(0, 1)
    kh = k.reshape(S, KV, D).transpose(0, 1).repeat_interleave(H // KV, dim=0)
    raw = p["scale"] * (qh @ kh.transpose(1, 2))
    s = raw
    if p["softcap"] > 0:
        s = p["softcap"] * torch.tanh(raw / p["softcap"])
    qpos = torch.arange(T_)[:, None] + (pos or 0)
    kpos = torch.arange(S)[None, :]
    mask = kpos <= qpos
    if p["window"] > 0:
        mask &= (qpos - kpos) < p["window"]
    if p.get("seq_len", 0):
        mask &= (qpos // p["seq_len"]) == (kpos // p["seq_len"])
    s = s.masked_fill(~mask, float("-inf"))
    return s, raw, qh, kh


def causal_attention(q, k, v, p: dict, pos: int | None = None):
    torch = _torch()
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    s, _, _, _ = attention_probs(q, k, p, pos)
    P = torch.softmax(s, dim=-1)
    vh = v.reshape(v.shape[0], KV, D).transpose(0, 1).repeat_interleave(H // KV, dim=0)
    o = P @ vh
    return o.transpose(0, 1).reshape(q.shape[0], H * D)


def causal_attention_grad(dout, q, k, v, p: dict):
    torch = _torch()
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    T_, S = q.shape[0], k.shape[0]
    s, raw, qh, kh = attention_probs(q, k, p, None)
    P = torch.softmax(s, dim=-1)
    vh = v.reshape(S, KV, D).transpose(0, 1).repeat_interleave(H // KV, dim=0)
    do = dout.reshape(T_, H, D).transpose(0, 1)
    dvh = P.transpose(1, 2) @ do
    dP = do @ vh.transpose(1, 2)
    dS = P * (dP - (dP * P).sum(-1, keepdim=True))
    if p["softcap"] > 0:
        t = torch.tanh(raw / p["softcap"])
        dS = dS * (1 - t * t)
    dq = p["scale"] * (dS @ kh)
    dkh = p["scale"] * (dS.transpose(1, 2) @ qh)
    g = H // KV
    dk = dkh.reshape(KV, g, S, D).sum(1)
    dv = dvh.reshape(KV, g, S, D).sum(1)
    return (
        dq.transpose(0, 1).reshape(T_, H * D),
        dk.transpose(0, 1).reshape(S, KV * D),
        dv.transpose(0, 1).reshape(S, KV * D),
    )


def rmsnorm(x, w, eps, offset):
    torch = _torch()
    T_, C = x.shape
    D = w.shape[0]
    xg = x.reshape(T_, C // D, D)
    r = torch.rsqrt((xg * xg).mean(-1, keepdim=True) + eps)
    return (xg * r * (offset + w)).reshape(T_, C)


def rmsnorm_grad(dy, x, w, eps, offset):
    torch = _torch()
    T_, C = x.shape
    D = w.shape[0]
    xg = x.reshape(T_, C // D, D)
    dyg = dy.reshape(T_, C // D, D)
    r = torch.rsqrt((xg * xg).mean(-1, keepdim=True) + eps)
    xh = xg * r
    dw = (dyg * xh).sum((0, 1))
    dxh = dyg * (offset + w)
    dx = r * (dxh - xh * (dxh * xh).mean(-1, keepdim=True))
    return dx.reshape(T_, C), dw


def layernorm_grad(dy, x, w, eps, offset):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    rstd = (var + eps).rsqrt()
    xh = (x - mu) * rstd
    dw = (dy * xh).sum(0)
    db = dy.sum(0)
    dxh = dy * (offset + w)
    dx = rstd * (dxh - dxh.mean(-1, keepdim=True) - xh * (dxh * xh).mean(-1, keepdim=True))
    return dx, dw, db


def ce_dlogits(logits, targets, ignore_index: int, scale):
    torch = _torch()
    valid = targets.long() != ignore_index
    n = valid.sum().clamp(min=1)
    P = torch.softmax(logits, dim=-1)
    onehot = torch.zeros_like(P)
    idx = targets.long().clamp(min=0)
    onehot[torch.arange(P.shape[0]), idx] = 1.0
    d = (P - onehot) * valid[:, None] / n
    return d * scale


def cross_entropy(logits, targets, ignore_index: int):
    torch = _torch()
    return torch.nn.functional.cross_entropy(
        logits, targets.long(), ignore_index=ignore_index, reduction="mean"
    )


# -- rules: one per op ----------------------------------------------------------


def _p(op: Operation) -> dict:
    return op.prop_values() if isinstance(op, T.TensorOp) else {}


@rule(T.ZerosOp)
def _zeros(op, ins, ctx):
    torch = _torch()
    return torch.zeros(op.result.type.get_shape(), dtype=torch.float32)


@rule(T.ConstantOp)
def _constant(op, ins, ctx):
    torch = _torch()
    vals = list(op.value.get_values())
    shape = op.result.type.get_shape()
    elem = op.result.type.element_type
    dtype = torch.int32 if isinstance(elem, IntegerType) else torch.float32
    t = torch.tensor(vals, dtype=dtype)
    if t.numel() == 1:
        return t.reshape(()).expand(shape).clone()
    return t.reshape(shape)


def _dequantized(w, el, shape):
    """A stored weight handed over as its raw bytes (uint8, e.g. a GGUF tensor's
    blocks: WeightStore.raw) as the fp32 values it holds, by gguf-py's
    ``gguf.quants.dequantize``; anything else as it is."""
    import numpy as np

    from ckc.dialects import quant

    fmt = quant.format_name(el)
    if fmt in (None, "f32"):
        return w  # (a torch parameter the caller differentiates: left as it is)
    arr = w.numpy() if hasattr(w, "numpy") else w
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
        return w
    import gguf
    import gguf.quants

    qtype = gguf.GGMLQuantizationType[fmt.upper()]
    vals = gguf.quants.dequantize(np.ascontiguousarray(arr).reshape(-1, quant.row_bytes(el, shape[-1])), qtype)
    return _torch().from_numpy(np.ascontiguousarray(vals, dtype=np.float32).reshape(-1, *shape[1:]))


@rule(T.WeightOp)
def _weight(op, ins, ctx):
    w = _dequantized(ctx["weights"][op.tensor_name.data], op.result.type.element_type,
                     op.result.type.get_shape())
    off = op.offset.value.data
    rows = op.result.type.get_shape()[0]
    return w[off : off + rows] if (off or w.shape[0] != rows) else w


@rule(T.ZerosLikeOp)
def _zeros_like(op, ins, ctx):
    return _torch().zeros_like(ins[0])


@rule(T.MatmulOp)
def _matmul(op, ins, ctx):
    p = _p(op)
    a, b = ins[0], ins[1]
    a = a.T if p["transpose_a"] else a
    b = b.T if p["transpose_b"] else b
    y = a @ b
    if op.bias is not None:
        y = y + ins[2]
    return y


@rule(T.AddOp)
def _add(op, ins, ctx):
    return ins[0] + ins[1]


@rule(T.AccumulateOp)
def _accumulate(op, ins, ctx):
    return ins[0] + ins[1]


@rule(T.MulOp)
def _mul(op, ins, ctx):
    return ins[0] * ins[1]


@rule(T.ScaleOp)
def _scale(op, ins, ctx):
    return ins[0] * _p(op)["factor"]


@rule(T.RMSNormOp)
def _rmsnorm(op, ins, ctx):
    p = _p(op)
    return rmsnorm(ins[0], ins[1], p["eps"], p["offset"])


@rule(T.LayerNormOp)
def _layernorm(op, ins, ctx):
    torch = _torch()
    p = _p(op)
    x, w = ins[0], ins[1]
    b = ins[2] if op.bias is not None else None
    return torch.nn.functional.layer_norm(x, (x.shape[1],), p["offset"] + w, b, p["eps"])


@rule(T.RopeOp)
def _rope(op, ins, ctx):
    inv = ins[2] if op.inv_freq is not None else None
    return rope_apply(ins[0], int(ins[1]), _p(op), inv_freq=inv)


@rule(T.RopeGradOp)
def _rope_grad(op, ins, ctx):
    inv = ins[2] if op.inv_freq is not None else None
    return rope_apply(ins[0], int(ins[1]), _p(op), inv_freq=inv, inverse=True)


@rule(T.SoftmaxOp)
def _softmax(op, ins, ctx):
    return _torch().softmax(ins[0], dim=-1)


@rule(T.CausalAttentionOp)
def _attention(op, ins, ctx):
    pos = int(ins[3]) if op.pos is not None else None
    return causal_attention(ins[0], ins[1], ins[2], _p(op), pos)


@rule(T.KVWriteOp)
def _kv_write(op, ins, ctx):
    cache, x, pos = ins[0].clone(), ins[1], int(ins[2])
    if pos + x.shape[0] > cache.shape[0]:
        raise ValueError(f"kv_write: rows {pos}..{pos + x.shape[0]} exceed the cache")
    cache[pos : pos + x.shape[0]] = kv_round(x, quant.format_name(op.cache.type.element_type) or "f32")
    return cache


@rule(T.RopeRowsOp)
def _rope_rows(op, ins, ctx):
    inv = ins[2] if op.inv_freq is not None else None
    rows = [rope_apply(ins[0][i : i + 1], int(ins[1][i]), _p(op), inv_freq=inv) for i in range(ins[0].shape[0])]
    return _torch().cat(rows) if rows else ins[0].clone()


@rule(T.KVScatterOp)
def _kv_scatter(op, ins, ctx):
    cache, x, slots, pos = ins[0].clone(), ins[1], ins[2], ins[3]
    for i in range(x.shape[0]):
        s, p = int(slots[i]), int(pos[i])
        if not (0 <= s < cache.shape[0] and 0 <= p < cache.shape[1]):
            raise ValueError(f"kv_scatter: row {i} at slot {s} position {p} is outside the cache")
        cache[s, p] = x[i]
    return cache


@rule(T.SlotAttentionOp)
def _slot_attention(op, ins, ctx):
    q, kc, vc, slots, pos = ins
    rows = []
    for i in range(q.shape[0]):
        s, p = int(slots[i]), int(pos[i])
        rows.append(causal_attention(q[i : i + 1], kc[s, : p + 1], vc[s, : p + 1], _p(op), p))
    return _torch().cat(rows) if rows else q.new_zeros(q.shape)


@rule(T.GatherRowsOp)
def _gather_rows(op, ins, ctx):
    x, rows = ins
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= x.shape[0]):
        raise ValueError(f"gather_rows: a row index outside [0, {x.shape[0]})")
    return x[rows.long()]


def kv_round(x, fmt: str):
    """fp32 rows as a KV cache in `fmt` stores them (ck_kv_write_*, ckernels.h),
    back in fp32: f16 round to nearest even; q8_0 per block of 32 along the row
    d = fp16(amax/127), q = rint(x * (127/amax)) in fp32, value d*q."""
    torch = _torch()
    if fmt == "f32":
        return x
    if fmt == "f16":
        return x.to(torch.float16).to(x.dtype)
    if fmt != "q8_0":
        raise ValueError(f"no KV cache format '{fmt}'")
    xb = x.to(torch.float32).reshape(*x.shape[:-1], x.shape[-1] // 32, 32)
    amax = xb.abs().amax(-1, keepdim=True)
    inv = torch.where(amax > 0, torch.tensor(127.0, dtype=torch.float32) / amax, torch.zeros_like(amax))
    q = torch.round(xb * inv)  # half to even, as vcvtps2dq and nearbyintf
    d = (amax / torch.tensor(127.0, dtype=torch.float32)).to(torch.float16).to(torch.float32)
    return (d * q).reshape(x.shape).to(x.dtype)


@rule(T.SiluOp)
def _silu(op, ins, ctx):
    return _torch().nn.functional.silu(ins[0])


@rule(T.GeluOp)
def _gelu(op, ins, ctx):
    return gelu(ins[0], _p(op)["approximate"])


@rule(T.SwigluOp)
def _swiglu(op, ins, ctx):
    return _torch().nn.functional.silu(ins[0]) * ins[1]


@rule(T.GegluOp)
def _geglu(op, ins, ctx):
    return gelu(ins[0], _p(op)["approximate"]) * ins[1]


@rule(T.EmbeddingOp)
def _embedding(op, ins, ctx):
    p = _p(op)
    y = ins[0][ins[1].long()]
    return y * p["scale"] if p["scale"] is not None else y


@rule(T.ReshapeOp)
def _reshape(op, ins, ctx):
    shape = [-1 if d == T.DYN else d for d in op.result.type.get_shape()]
    return ins[0].reshape(shape)


@rule(T.TransposeOp)
def _transpose(op, ins, ctx):
    return ins[0].T.contiguous()


@rule(T.LastRowsOp)
def _last_rows(op, ins, ctx):
    return ins[0][-_p(op)["count"] :]


@rule(T.SoftcapOp)
def _softcap(op, ins, ctx):
    cap = _p(op)["cap"]
    return cap * _torch().tanh(ins[0] / cap)


@rule(T.PositionsOp)
def _positions(op, ins, ctx):
    torch = _torch()
    return positions(ins[0].shape[0], int(ins[1]), _p(op)["seq_len"]).to(torch.int32)


@rule(T.CrossEntropyOp)
def _ce(op, ins, ctx):
    return cross_entropy(ins[0], ins[1], _p(op)["ignore_index"])


@rule(T.CrossEntropyFusedOp)
def _ce_fused(op, ins, ctx):
    p = _p(op)
    loss = cross_entropy(ins[0], ins[1], p["ignore_index"])
    return loss, ce_dlogits(ins[0], ins[1], p["ignore_index"], p["grad_scale"])


@rule(T.CrossEntropyGradOp)
def _ce_grad(op, ins, ctx):
    return ce_dlogits(ins[1], ins[2], _p(op)["ignore_index"], ins[0])


@rule(T.MatmulGradOp)
def _matmul_grad(op, ins, ctx):
    p = _p(op)
    dy, a, b = ins
    A = a.T if p["transpose_a"] else a
    B = b.T if p["transpose_b"] else b
    dA = dy @ B.T
    dB = A.T @ dy
    out = [dA.T if p["transpose_a"] else dA, dB.T if p["transpose_b"] else dB]
    if p["has_bias"]:
        out.append(dy.sum(0))
    return tuple(out)


@rule(T.MulGradOp)
def _mul_grad(op, ins, ctx):
    dy, a, b = ins
    return dy * b, dy * a


@rule(T.RMSNormGradOp)
def _rmsnorm_grad(op, ins, ctx):
    p = _p(op)
    return rmsnorm_grad(ins[0], ins[1], ins[2], p["eps"], p["offset"])


@rule(T.LayerNormGradOp)
def _layernorm_grad(op, ins, ctx):
    p = _p(op)
    return layernorm_grad(ins[0], ins[1], ins[2], p["eps"], p["offset"])


@rule(T.SoftmaxGradOp)
def _softmax_grad(op, ins, ctx):
    dy, y = ins
    return y * (dy - (dy * y).sum(-1, keepdim=True))


@rule(T.CausalAttentionGradOp)
def _attention_grad(op, ins, ctx):
    return causal_attention_grad(*ins, _p(op))


@rule(T.SiluGradOp)
def _silu_grad(op, ins, ctx):
    return ins[0] * silu_prime(ins[1])


@rule(T.GeluGradOp)
def _gelu_grad(op, ins, ctx):
    return ins[0] * gelu_prime(ins[1], _p(op)["approximate"])


@rule(T.SoftcapGradOp)
def _softcap_grad(op, ins, ctx):
    t = _torch().tanh(ins[1] / _p(op)["cap"])
    return ins[0] * (1 - t * t)


@rule(T.SwigluGradOp)
def _swiglu_grad(op, ins, ctx):
    dy, g, u = ins
    return dy * u * silu_prime(g), dy * _torch().nn.functional.silu(g)


@rule(T.GegluGradOp)
def _geglu_grad(op, ins, ctx):
    a = _p(op)["approximate"]
    dy, g, u = ins
    return dy * u * gelu_prime(g, a), dy * gelu(g, a)


@rule(T.EmbeddingGradOp)
def _embedding_grad(op, ins, ctx):
    torch = _torch()
    p = _p(op)
    dy, tok = ins
    if p["scale"] is not None:
        dy = dy * p["scale"]
    out = torch.zeros(p["vocab"], dy.shape[1], dtype=dy.dtype)
    return out.index_add_(0, tok.long(), dy)


@rule(T.AdamWUpdateOp)
def _adamw(op, ins, ctx):
    p = _p(op)
    param, g, m, v, lr, step = ins
    lr, step = float(lr), int(step)
    b1, b2 = p["beta1"], p["beta2"]
    param = param * (1 - lr * p["weight_decay"])
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    bc1 = 1 - b1**step
    bc2 = 1 - b2**step
    denom = (v.sqrt() / math.sqrt(bc2)) + p["eps"]
    param = param - (lr / bc1) * (m / denom)
    return param, m, v


@rule(T.GlobalNormOp)
def _global_norm(op, ins, ctx):
    torch = _torch()
    return torch.sqrt(sum((g.double() ** 2).sum() for g in ins)).float()


@rule(T.ClipByNormOp)
def _clip(op, ins, ctx):
    g, n = ins
    coef = (_p(op)["max_norm"] / (n + 1e-6)).clamp(max=1.0)
    return g * coef


@rule(T.RMSNormQKVRopeOp)
def _fused(op, ins, ctx):
    p = _p(op)
    x, nw, wq, wk, wv, pos = ins[:6]
    opt = dict(zip(("bq", "bk", "bv", "inv_freq"), [None] * 4))
    k = 6
    for name in ("bq", "bk", "bv", "inv_freq"):
        if getattr(op, name) is not None:
            opt[name] = ins[k]
            k += 1
    h = rmsnorm(x, nw, p["eps"], p["offset"])
    q = h @ wq.T + (opt["bq"] if opt["bq"] is not None else 0)
    kk = h @ wk.T + (opt["bk"] if opt["bk"] is not None else 0)
    v = h @ wv.T + (opt["bv"] if opt["bv"] is not None else 0)
    q = rope_apply(q, int(pos), p, "heads", opt["inv_freq"])
    kk = rope_apply(kk, int(pos), p, "kv_heads", opt["inv_freq"])
    return q, kk, v


# -- the interpreter ------------------------------------------------------------


def eval_op(op: Operation, inputs: Sequence[Any], weights: Mapping[str, Any] | None = None):
    """Results of one op (a tuple, one entry per result) given its inputs."""
    fn = _RULES.get(op.name)
    if fn is None:
        raise NotImplementedError(f"no reference semantics for '{op.name}'")
    out = fn(op, list(inputs), {"weights": weights or {}})
    return out if isinstance(out, tuple) else (out,)


def evaluate(fn: func.FuncOp, args: Sequence[Any], weights: Mapping[str, Any] | None = None,
             extra: Mapping[str, Callable] | None = None,
             observe: Callable[[Operation, list, tuple], None] | None = None) -> list[Any]:
    """Runs a func of tensorop ops (plus `arith.constant` for scalars) on
    torch tensors; returns the values of its `func.return`. ``observe(op,
    inputs, outputs)`` sees every op's values as it runs (ckc parity --against ir)."""
    env: dict[SSAValue, Any] = dict(zip(fn.body.block.args, args))
    for op in fn.body.block.ops:
        if isinstance(op, func.ReturnOp):
            return [env[v] for v in op.operands]
        if op.name == "arith.constant":
            env[op.results[0]] = op.value.value.data
            continue
        if extra and op.name in extra:
            outs = extra[op.name](op, [env[v] for v in op.operands])
            outs = outs if isinstance(outs, tuple) else (outs,)
        else:
            outs = eval_op(op, [env[v] for v in op.operands], weights)
        if observe is not None:
            observe(op, [env[v] for v in op.operands], outs)
        for r, v in zip(op.results, outs):
            env[r] = v
    raise ValueError(f"@{fn.sym_name.data} has no func.return")


def missing_rules() -> list[str]:
    """tensorop ops without reference semantics (should be empty)."""
    return [c.name for c in T.TENSOROP_OPS if c.name not in _RULES]


__all__ = ["evaluate", "eval_op", "missing_rules"]
