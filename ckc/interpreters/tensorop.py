"""Reference semantics of every `tensorop` op, in PyTorch (fp32, CPU).

The executable specification of the dialect (dialects/tensorop.py): kernels,
the lowering passes and `autodiff` are checked against it. Backward ops are
explicit formulas (what a kernel computes); tests compare them with
torch.autograd applied to the forward ops.

    from ckc.interpreters.tensorop import evaluate
    outs = evaluate(func_op, args=[tokens, pos], weights={"token_embd.weight": ...})

Values are torch tensors (token ids int32), scalars Python int/float. torch is
imported lazily so the dialect itself never needs it.
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
"""Op name -> rule(op, inputs, ctx) giving the op's result (a tuple for several)."""


def _torch():
    import torch

    return torch


def rule(*op_classes):
    def deco(fn):
        _RULES.update({c.name: fn for c in op_classes})
        return fn

    return deco


# -- the math shared by forward and backward rules ---------------------------------


def positions(T_: int, pos: int, seq_len: int = 0):
    """Position of each row: pos + i, or pos + i mod seq_len for a batch."""
    i = _torch().arange(T_)
    return pos + (i % seq_len if seq_len else i)


def rope_tables(T_: int, pos: int, p: dict, inv_freq=None):
    """cos/sin `[T, rotary_dim/2]` for the rows' positions (HF's formula)."""
    torch = _torch()
    rd = p["rotary_dim"] or p["head_dim"]
    if inv_freq is None:
        inv_freq = 1.0 / (p["theta"] ** (torch.arange(0, rd, 2, dtype=torch.int64).float() / rd))
    ang = positions(T_, pos, p.get("seq_len", 0)).float()[:, None] * inv_freq.float()[None, :]
    return ang.cos(), ang.sin()


def rope_apply(x, pos: int, p: dict, heads_key: str = "heads", inv_freq=None, inverse=False):
    torch = _torch()
    H, D = p[heads_key], p["head_dim"]
    rd, T_ = p["rotary_dim"] or D, x.shape[0]
    cos, sin = (t[:, None, :] for t in rope_tables(T_, pos, p, inv_freq))
    sin = -sin if inverse else sin
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
    return _torch().nn.functional.gelu(x, approximate=approximate)


def gelu_prime(x, approximate: str):
    torch = _torch()
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        t = torch.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))
    return cdf + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def silu_prime(x):
    s = _torch().sigmoid(x)
    return s * (1 + x * (1 - s))


def _heads(x, n: int, D: int, repeat: int = 1):
    """`[S, n*D]` as `[n*repeat, S, D]` (GQA: each kv head repeated for its query heads)."""
    return x.reshape(x.shape[0], n, D).transpose(0, 1).repeat_interleave(repeat, dim=0)


def attention_probs(q, k, p: dict, pos: int | None):
    """Scores before softmax ([H, T, S], masked with -inf) and the raw
    (pre-softcap) scores, for queries at positions (pos or 0) + i."""
    torch = _torch()
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    qh, kh = _heads(q, H, D), _heads(k, KV, D, H // KV)
    s = raw = p["scale"] * (qh @ kh.transpose(1, 2))
    if p["softcap"] > 0:
        s = p["softcap"] * torch.tanh(raw / p["softcap"])
    qpos = torch.arange(q.shape[0])[:, None] + (pos or 0)
    kpos = torch.arange(k.shape[0])[None, :]
    mask = kpos <= qpos
    if p["window"] > 0:
        mask &= (qpos - kpos) < p["window"]
    if p.get("seq_len", 0):
        mask &= (qpos // p["seq_len"]) == (kpos // p["seq_len"])
    return s.masked_fill(~mask, float("-inf")), raw, qh, kh


def causal_attention(q, k, v, p: dict, pos: int | None = None):
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    P = _torch().softmax(attention_probs(q, k, p, pos)[0], dim=-1)
    return (P @ _heads(v, KV, D, H // KV)).transpose(0, 1).reshape(q.shape[0], H * D)


def causal_attention_grad(dout, q, k, v, p: dict):
    torch = _torch()
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    T_, S, g = q.shape[0], k.shape[0], H // KV
    s, raw, qh, kh = attention_probs(q, k, p, None)
    P = torch.softmax(s, dim=-1)
    do = _heads(dout, H, D)
    dvh = P.transpose(1, 2) @ do
    dP = do @ _heads(v, KV, D, g).transpose(1, 2)
    dS = P * (dP - (dP * P).sum(-1, keepdim=True))
    if p["softcap"] > 0:
        dS = dS * (1 - torch.tanh(raw / p["softcap"]) ** 2)
    dq, dkh = p["scale"] * (dS @ kh), p["scale"] * (dS.transpose(1, 2) @ qh)
    flat = lambda t, n, rows: t.transpose(0, 1).reshape(rows, n * D)  # noqa: E731
    return flat(dq, H, T_), flat(dkh.reshape(KV, g, S, D).sum(1), KV, S), flat(dvh.reshape(KV, g, S, D).sum(1), KV, S)


def _groups(x, w):
    """x `[T, C]` as `[T, C/D, D]` for a norm weight of D elements."""
    return x.reshape(x.shape[0], x.shape[1] // w.shape[0], w.shape[0])


def rmsnorm(x, w, eps, offset):
    xg = _groups(x, w)
    return (xg * _torch().rsqrt((xg * xg).mean(-1, keepdim=True) + eps) * (offset + w)).reshape(x.shape)


def rmsnorm_grad(dy, x, w, eps, offset):
    xg, dyg = _groups(x, w), _groups(dy, w)
    r = _torch().rsqrt((xg * xg).mean(-1, keepdim=True) + eps)
    xh = xg * r
    dxh = dyg * (offset + w)
    dx = r * (dxh - xh * (dxh * xh).mean(-1, keepdim=True))
    return dx.reshape(x.shape), (dyg * xh).sum((0, 1))


def layernorm_grad(dy, x, w, eps, offset):
    mu = x.mean(-1, keepdim=True)
    rstd = (((x - mu) ** 2).mean(-1, keepdim=True) + eps).rsqrt()
    xh = (x - mu) * rstd
    dxh = dy * (offset + w)
    dx = rstd * (dxh - dxh.mean(-1, keepdim=True) - xh * (dxh * xh).mean(-1, keepdim=True))
    return dx, (dy * xh).sum(0), dy.sum(0)


def ce_dlogits(logits, targets, ignore_index: int, scale):
    torch = _torch()
    valid = targets.long() != ignore_index
    P = torch.softmax(logits, dim=-1)
    onehot = torch.zeros_like(P)
    onehot[torch.arange(P.shape[0]), targets.long().clamp(min=0)] = 1.0
    return (P - onehot) * valid[:, None] / valid.sum().clamp(min=1) * scale


def cross_entropy(logits, targets, ignore_index: int):
    return _torch().nn.functional.cross_entropy(logits, targets.long(), ignore_index=ignore_index, reduction="mean")


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


def _dequantized(w, el, shape):
    """A stored weight handed over as its raw bytes (uint8, e.g. a GGUF tensor's
    blocks: WeightStore.raw) as the fp32 values it holds, by gguf-py's
    ``gguf.quants.dequantize``; anything else as it is."""
    import numpy as np

    fmt = quant.format_name(el)
    if fmt in (None, "f32"):
        return w  # (a torch parameter the caller differentiates: left as it is)
    arr = w.numpy() if hasattr(w, "numpy") else w
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
        return w
    import gguf
    import gguf.quants

    rows = np.ascontiguousarray(arr).reshape(-1, quant.row_bytes(el, shape[-1]))
    vals = gguf.quants.dequantize(rows, gguf.GGMLQuantizationType[fmt.upper()])
    return _torch().from_numpy(np.ascontiguousarray(vals, dtype=np.float32).reshape(-1, *shape[1:]))


# -- rules: one per op, `p` is the op's properties as Python values ---------------------


def _p(op: Operation) -> dict:
    return op.prop_values() if isinstance(op, T.TensorOp) else {}


def _opt(op: Operation, ins: list, name: str, index: int):
    """The value of the optional operand `name` (at `index` when present), or None."""
    return ins[index] if getattr(op, name) is not None else None


def _per_row(x, fn):
    """`fn(i)` for every row i of x, concatenated (x's shape when there are none)."""
    rows = [fn(i) for i in range(x.shape[0])]
    return _torch().cat(rows) if rows else x.new_zeros(x.shape)


@rule(T.ConstantOp)
def _constant(op, ins, ctx):
    torch, ty = _torch(), op.result.type
    dtype = torch.int32 if isinstance(ty.element_type, IntegerType) else torch.float32
    t = torch.tensor(list(op.value.get_values()), dtype=dtype)
    return t.reshape(()).expand(ty.get_shape()).clone() if t.numel() == 1 else t.reshape(ty.get_shape())


@rule(T.WeightOp)
def _weight(op, ins, ctx):
    shape = op.result.type.get_shape()
    w = _dequantized(ctx["weights"][op.tensor_name.data], op.result.type.element_type, shape)
    off = op.offset.value.data
    return w[off : off + shape[0]] if (off or w.shape[0] != shape[0]) else w


@rule(T.MatmulOp)
def _matmul(op, ins, ctx):
    p = _p(op)
    y = (ins[0].T if p["transpose_a"] else ins[0]) @ (ins[1].T if p["transpose_b"] else ins[1])
    return y + ins[2] if op.bias is not None else y


@rule(T.MatmulGradOp)
def _matmul_grad(op, ins, ctx):
    p = _p(op)
    dy, a, b = ins
    A, B = (a.T if p["transpose_a"] else a), (b.T if p["transpose_b"] else b)
    dA, dB = dy @ B.T, A.T @ dy
    return (dA.T if p["transpose_a"] else dA, dB.T if p["transpose_b"] else dB) + ((dy.sum(0),) if p["has_bias"] else ())


@rule(T.RopeOp, T.RopeGradOp)
def _rope(op, ins, ctx):
    return rope_apply(ins[0], int(ins[1]), _p(op), inv_freq=_opt(op, ins, "inv_freq", 2), inverse=isinstance(op, T.RopeGradOp))


@rule(T.RopeRowsOp)
def _rope_rows(op, ins, ctx):
    x, pos, inv = ins[0], ins[1], _opt(op, ins, "inv_freq", 2)
    return _per_row(x, lambda i: rope_apply(x[i : i + 1], int(pos[i]), _p(op), inv_freq=inv))


@rule(T.KVWriteOp)
def _kv_write(op, ins, ctx):
    cache, x, pos = ins[0].clone(), ins[1], int(ins[2])
    if pos + x.shape[0] > cache.shape[0]:
        raise ValueError(f"kv_write: rows {pos}..{pos + x.shape[0]} exceed the cache")
    cache[pos : pos + x.shape[0]] = kv_round(x, quant.format_name(op.cache.type.element_type) or "f32")
    return cache


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

    def row(i):
        s, p = int(slots[i]), int(pos[i])
        return causal_attention(q[i : i + 1], kc[s, : p + 1], vc[s, : p + 1], _p(op), p)

    return _per_row(q, row)


@rule(T.GatherRowsOp)
def _gather_rows(op, ins, ctx):
    x, rows = ins
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= x.shape[0]):
        raise ValueError(f"gather_rows: a row index outside [0, {x.shape[0]})")
    return x[rows.long()]


@rule(T.EmbeddingOp)
def _embedding(op, ins, ctx):
    y, scale = ins[0][ins[1].long()], _p(op)["scale"]
    return y * scale if scale is not None else y


@rule(T.EmbeddingGradOp)
def _embedding_grad(op, ins, ctx):
    p, (dy, tok) = _p(op), ins
    dy = dy * p["scale"] if p["scale"] is not None else dy
    return _torch().zeros(p["vocab"], dy.shape[1], dtype=dy.dtype).index_add_(0, tok.long(), dy)


@rule(T.AdamWUpdateOp)
def _adamw(op, ins, ctx):
    p, (param, g, m, v, lr, step) = _p(op), ins
    lr, step, b1, b2 = float(lr), int(step), p["beta1"], p["beta2"]
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    denom = (v.sqrt() / math.sqrt(1 - b2**step)) + p["eps"]
    return param * (1 - lr * p["weight_decay"]) - (lr / (1 - b1**step)) * (m / denom), m, v


@rule(T.RMSNormQKVRopeOp)
def _fused(op, ins, ctx):
    p, (x, nw, wq, wk, wv, pos), rest = _p(op), ins[:6], iter(ins[6:])
    opt = {n: (next(rest) if getattr(op, n) is not None else None) for n in ("bq", "bk", "bv", "inv_freq")}
    h = rmsnorm(x, nw, p["eps"], p["offset"])
    q, k, v = (h @ w.T + (opt[b] if opt[b] is not None else 0) for w, b in ((wq, "bq"), (wk, "bk"), (wv, "bv")))
    return (rope_apply(q, int(pos), p, "heads", opt["inv_freq"]), rope_apply(k, int(pos), p, "kv_heads", opt["inv_freq"]), v)


def _ce(op, ins, ctx):
    return cross_entropy(ins[0], ins[1], _p(op)["ignore_index"])


_RULES.update({c.name: fn for c, fn in {
    T.ZerosOp: lambda op, ins, ctx: _torch().zeros(op.result.type.get_shape(), dtype=_torch().float32),
    T.ZerosLikeOp: lambda op, ins, ctx: _torch().zeros_like(ins[0]),
    T.AddOp: lambda op, ins, ctx: ins[0] + ins[1],
    T.AccumulateOp: lambda op, ins, ctx: ins[0] + ins[1],
    T.MulOp: lambda op, ins, ctx: ins[0] * ins[1],
    T.MulGradOp: lambda op, ins, ctx: (ins[0] * ins[2], ins[0] * ins[1]),
    T.ScaleOp: lambda op, ins, ctx: ins[0] * _p(op)["factor"],
    T.RMSNormOp: lambda op, ins, ctx: rmsnorm(ins[0], ins[1], _p(op)["eps"], _p(op)["offset"]),
    T.RMSNormGradOp: lambda op, ins, ctx: rmsnorm_grad(*ins, _p(op)["eps"], _p(op)["offset"]),
    T.LayerNormOp: lambda op, ins, ctx: _torch().nn.functional.layer_norm(
        ins[0], (ins[0].shape[1],), _p(op)["offset"] + ins[1], _opt(op, ins, "bias", 2), _p(op)["eps"]),
    T.LayerNormGradOp: lambda op, ins, ctx: layernorm_grad(*ins, _p(op)["eps"], _p(op)["offset"]),
    T.SoftmaxOp: lambda op, ins, ctx: _torch().softmax(ins[0], dim=-1),
    T.SoftmaxGradOp: lambda op, ins, ctx: ins[1] * (ins[0] - (ins[0] * ins[1]).sum(-1, keepdim=True)),
    T.CausalAttentionOp: lambda op, ins, ctx: causal_attention(
        ins[0], ins[1], ins[2], _p(op), int(ins[3]) if op.pos is not None else None),
    T.CausalAttentionGradOp: lambda op, ins, ctx: causal_attention_grad(*ins, _p(op)),
    T.SiluOp: lambda op, ins, ctx: _torch().nn.functional.silu(ins[0]),
    T.SiluGradOp: lambda op, ins, ctx: ins[0] * silu_prime(ins[1]),
    T.GeluOp: lambda op, ins, ctx: gelu(ins[0], _p(op)["approximate"]),
    T.GeluGradOp: lambda op, ins, ctx: ins[0] * gelu_prime(ins[1], _p(op)["approximate"]),
    T.SoftcapOp: lambda op, ins, ctx: _p(op)["cap"] * _torch().tanh(ins[0] / _p(op)["cap"]),
    T.SoftcapGradOp: lambda op, ins, ctx: ins[0] * (1 - _torch().tanh(ins[1] / _p(op)["cap"]) ** 2),
    T.SwigluOp: lambda op, ins, ctx: _torch().nn.functional.silu(ins[0]) * ins[1],
    T.SwigluGradOp: lambda op, ins, ctx: (ins[0] * ins[2] * silu_prime(ins[1]), ins[0] * _torch().nn.functional.silu(ins[1])),
    T.GegluOp: lambda op, ins, ctx: gelu(ins[0], _p(op)["approximate"]) * ins[1],
    T.GegluGradOp: lambda op, ins, ctx: (ins[0] * ins[2] * gelu_prime(ins[1], _p(op)["approximate"]),
                                         ins[0] * gelu(ins[1], _p(op)["approximate"])),
    T.ReshapeOp: lambda op, ins, ctx: ins[0].reshape([-1 if d == T.DYN else d for d in op.result.type.get_shape()]),
    T.TransposeOp: lambda op, ins, ctx: ins[0].T.contiguous(),
    T.LastRowsOp: lambda op, ins, ctx: ins[0][-_p(op)["count"] :],
    T.PositionsOp: lambda op, ins, ctx: positions(ins[0].shape[0], int(ins[1]), _p(op)["seq_len"]).to(_torch().int32),
    T.CrossEntropyOp: _ce,
    T.CrossEntropyFusedOp: lambda op, ins, ctx: (
        _ce(op, ins, ctx), ce_dlogits(ins[0], ins[1], _p(op)["ignore_index"], _p(op)["grad_scale"])),
    T.CrossEntropyGradOp: lambda op, ins, ctx: ce_dlogits(ins[1], ins[2], _p(op)["ignore_index"], ins[0]),
    T.GlobalNormOp: lambda op, ins, ctx: _torch().sqrt(sum((g.double() ** 2).sum() for g in ins)).float(),
    T.ClipByNormOp: lambda op, ins, ctx: ins[0] * (_p(op)["max_norm"] / (ins[1] + 1e-6)).clamp(max=1.0),
}.items()})


# -- the interpreter --------------------------------------------------------------------


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
    """Runs a func of tensorop ops (plus `arith.constant` for scalars) on torch
    tensors; returns the values of its `func.return`. ``observe(op, inputs,
    outputs)`` sees every op's values as it runs (ckc parity --against ir)."""
    env: dict[SSAValue, Any] = dict(zip(fn.body.block.args, args))
    for op in fn.body.block.ops:
        if isinstance(op, func.ReturnOp):
            return [env[v] for v in op.operands]
        if op.name == "arith.constant":
            env[op.results[0]] = op.value.value.data
            continue
        ins = [env[v] for v in op.operands]
        if extra and op.name in extra:
            outs = extra[op.name](op, ins)
            outs = outs if isinstance(outs, tuple) else (outs,)
        else:
            outs = eval_op(op, ins, weights)
        if observe is not None:
            observe(op, ins, outs)
        env.update(zip(op.results, outs))
    raise ValueError(f"@{fn.sym_name.data} has no func.return")


def missing_rules() -> list[str]:
    """tensorop ops without reference semantics (should be empty)."""
    return [c.name for c in T.TENSOROP_OPS if c.name not in _RULES]


__all__ = ["evaluate", "eval_op", "missing_rules"]
