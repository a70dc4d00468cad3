"""The tensorop reference semantics (ckc/interpreters/tensorop.py) against PyTorch.

- every `*_grad` op (explicit formulas, what a kernel computes) equals
  torch.autograd applied to its forward op: float64, max |diff| <= 1e-9 *
  max(1, max |expected|);
- forward ops that have an independent torch equivalent match it (float32,
  max |diff| <= 1e-5 relative to the max-norm): F.scaled_dot_product_attention,
  F.rms_norm, HF's rotate_half RoPE, Meta's complex RoPE, torch.optim.AdamW,
  clip_grad_norm_;
- KV-cache attention (kv_write + attention at pos) equals attention over the
  whole sequence; the fused rmsnorm_qkv_rope equals its unfused composition;
  canonicalize preserves the values a function computes.
"""

from __future__ import annotations


import pytest

import torch  # a pinned test dependency: missing is a failure, not a skip

from xdsl.context import Context  # noqa: E402
from xdsl.dialects import arith, func, test  # noqa: E402
from xdsl.dialects.builtin import Builtin, IndexType, TensorType, f32, i32  # noqa: E402
from xdsl.ir import Block  # noqa: E402
from xdsl.parser import Parser  # noqa: E402

import ckc.dialects.tensorop as T  # noqa: E402
from ckc.interpreters import tensorop as R  # noqa: E402
from ckc.dialects.tensorop import DYN  # noqa: E402

GRAD_TOL = 1e-9
FWD_TOL = 1e-5


def _close(actual, expected, tol):
    actual, expected = actual.double(), expected.double()
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(1.0, expected.abs().max().item())
    diff = (actual - expected).abs().max().item()
    assert diff <= tol * scale, f"max |diff| {diff:.3e} > {tol:.0e} * {scale:.3g}"


def _vals(*types):
    """SSA values of the given types (block arguments) to build ops on."""
    return Block(arg_types=list(types)).args


def _t(*shape, elem=f32):
    return TensorType(elem, list(shape))


def _rand(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype)


def test_every_op_has_reference_semantics():
    assert R.missing_rules() == []


@pytest.mark.parametrize("ta,tb,bias", [(False, True, True), (False, False, False),
                                        (True, False, True), (True, True, False)])
def test_matmul_grad(ta, tb, bias):
    torch.manual_seed(0)
    M, K, N = 5, 7, 3
    a_shape = (K, M) if ta else (M, K)
    b_shape = (N, K) if tb else (K, N)
    a, b, bb, dy = _vals(_t(*a_shape), _t(*b_shape), _t(N), _t(M, N))
    fwd = T.MatmulOp(a, b, bb if bias else None, transpose_a=ta, transpose_b=tb)
    grad = T.MatmulGradOp(dy, a, b, transpose_a=ta, transpose_b=tb, has_bias=bias)
    A, B, Bb = _rand(*a_shape), _rand(*b_shape), _rand(N)
    leaves = [x.clone().requires_grad_() for x in (A, B, Bb)]
    (y,) = R.eval_op(fwd, leaves if bias else leaves[:2])
    DY = _rand(M, N)
    (y * DY).sum().backward()
    outs = R.eval_op(grad, [DY, A, B])
    _close(outs[0], leaves[0].grad, GRAD_TOL)
    _close(outs[1], leaves[1].grad, GRAD_TOL)
    assert len(outs) == (3 if bias else 2)
    if bias:
        _close(outs[2], leaves[2].grad, GRAD_TOL)


def _unary_case(fwd_cls, grad_cls, shape, **props):
    x, dy = _vals(_t(*shape), _t(*shape))
    fwd = fwd_cls(x, **props)
    grad = grad_cls(dy, x, **props)
    X = _rand(*shape).requires_grad_()
    (y,) = R.eval_op(fwd, [X])
    DY = _rand(*shape)
    (y * DY).sum().backward()
    (dx,) = R.eval_op(grad, [DY, X.detach()])
    _close(dx, X.grad, GRAD_TOL)


def test_silu_gelu_softcap_grads():
    torch.manual_seed(1)
    _unary_case(T.SiluOp, T.SiluGradOp, (6, 10))
    _unary_case(T.GeluOp, T.GeluGradOp, (6, 10), approximate="none")
    _unary_case(T.GeluOp, T.GeluGradOp, (6, 10), approximate="tanh")
    _unary_case(T.SoftcapOp, T.SoftcapGradOp, (6, 10), cap=1.5)


def test_softmax_grad():
    torch.manual_seed(2)
    x, dy = _vals(_t(4, 9), _t(4, 9))
    X = _rand(4, 9).requires_grad_()
    (y,) = R.eval_op(T.SoftmaxOp(x), [X])
    DY = _rand(4, 9)
    (y * DY).sum().backward()
    (dx,) = R.eval_op(T.SoftmaxGradOp(dy, x), [DY, y.detach()])
    _close(dx, X.grad, GRAD_TOL)


@pytest.mark.parametrize("fwd_cls,grad_cls,kw", [(T.SwigluOp, T.SwigluGradOp, {}),
                                                 (T.GegluOp, T.GegluGradOp, {"approximate": "tanh"}),
                                                 (T.GegluOp, T.GegluGradOp, {"approximate": "none"})])
def test_gated_grads(fwd_cls, grad_cls, kw):
    torch.manual_seed(3)
    g, u, dy = _vals(_t(5, 8), _t(5, 8), _t(5, 8))
    G, U = _rand(5, 8).requires_grad_(), _rand(5, 8).requires_grad_()
    (y,) = R.eval_op(fwd_cls(g, u, **kw), [G, U])
    DY = _rand(5, 8)
    (y * DY).sum().backward()
    dg, du = R.eval_op(grad_cls(dy, g, u, **kw), [DY, G.detach(), U.detach()])
    _close(dg, G.grad, GRAD_TOL)
    _close(du, U.grad, GRAD_TOL)


def test_mul_grad():
    torch.manual_seed(4)
    a, b, dy = _vals(_t(3, 4), _t(3, 4), _t(3, 4))
    A, B = _rand(3, 4).requires_grad_(), _rand(3, 4).requires_grad_()
    (y,) = R.eval_op(T.MulOp(a, b), [A, B])
    DY = _rand(3, 4)
    (y * DY).sum().backward()
    da, db = R.eval_op(T.MulGradOp(dy, a, b), [DY, A.detach(), B.detach()])
    _close(da, A.grad, GRAD_TOL)
    _close(db, B.grad, GRAD_TOL)


@pytest.mark.parametrize("D,offset", [(16, 0.0), (4, 1.0)])
def test_rmsnorm_grad(D, offset):
    torch.manual_seed(5)
    x, w, dy = _vals(_t(5, 16), _t(D), _t(5, 16))
    X, W = _rand(5, 16).requires_grad_(), _rand(D).requires_grad_()
    (y,) = R.eval_op(T.RMSNormOp(x, w, eps=1e-5, offset=offset), [X, W])
    DY = _rand(5, 16)
    (y * DY).sum().backward()
    dx, dw = R.eval_op(T.RMSNormGradOp(dy, x, w, eps=1e-5, offset=offset),
                       [DY, X.detach(), W.detach()])
    _close(dx, X.grad, GRAD_TOL)
    _close(dw, W.grad, GRAD_TOL)


def test_rmsnorm_matches_torch():
    torch.manual_seed(6)
    x, w = _vals(_t(5, 16), _t(16))
    X, W = _rand(5, 16, dtype=torch.float32), _rand(16, dtype=torch.float32)
    (y,) = R.eval_op(T.RMSNormOp(x, w, eps=1e-6), [X, W])
    _close(y, torch.nn.functional.rms_norm(X, (16,), W, eps=1e-6), FWD_TOL)


@pytest.mark.parametrize("offset,bias", [(0.0, True), (1.0, False)])
def test_layernorm_grad(offset, bias):
    torch.manual_seed(7)
    x, w, b, dy = _vals(_t(5, 12), _t(12), _t(12), _t(5, 12))
    X, W, B = (_rand(5, 12).requires_grad_(), _rand(12).requires_grad_(),
               _rand(12).requires_grad_())
    fwd = T.LayerNormOp(x, w, b if bias else None, eps=1e-5, offset=offset)
    (y,) = R.eval_op(fwd, [X, W, B] if bias else [X, W])
    DY = _rand(5, 12)
    (y * DY).sum().backward()
    dx, dw, db = R.eval_op(T.LayerNormGradOp(dy, x, w, eps=1e-5, offset=offset),
                           [DY, X.detach(), W.detach()])
    _close(dx, X.grad, GRAD_TOL)
    _close(dw, W.grad, GRAD_TOL)
    if bias:
        _close(db, B.grad, GRAD_TOL)
    else:
        _close(db, DY.sum(0), GRAD_TOL)


ROPE_CASES = [
    dict(style="neox", rotary_dim=None, inv=False),
    dict(style="interleaved", rotary_dim=None, inv=False),
    dict(style="neox", rotary_dim=4, inv=False),
    dict(style="interleaved", rotary_dim=None, inv=True),
]


@pytest.mark.parametrize("case", ROPE_CASES, ids=lambda c: f"{c['style']}-{c['rotary_dim']}-{c['inv']}")
def test_rope_grad_is_inverse_rotation(case):
    torch.manual_seed(8)
    H, D, Tn = 3, 8, 5
    rd = case["rotary_dim"] or D
    x, pos, f, dy = _vals(_t(Tn, H * D), IndexType(), _t(rd // 2), _t(Tn, H * D))
    kw = dict(heads=H, head_dim=D, theta=500.0, style=case["style"], rotary_dim=case["rotary_dim"])
    fwd = T.RopeOp(x, pos, f if case["inv"] else None, **kw)
    grad = T.RopeGradOp(dy, pos, f if case["inv"] else None, **kw)
    F = torch.rand(rd // 2)
    X = _rand(Tn, H * D).requires_grad_()
    (y,) = R.eval_op(fwd, [X, 3] + ([F] if case["inv"] else []))
    DY = _rand(Tn, H * D)
    (y * DY).sum().backward()
    (dx,) = R.eval_op(grad, [DY, 3] + ([F] if case["inv"] else []))
    _close(dx, X.grad, 1e-6)  # cos/sin tables are float32


def test_rope_matches_hf_and_meta():
    torch.manual_seed(9)
    H, D, Tn, pos0, theta = 2, 8, 6, 5, 10000.0
    X = _rand(Tn, H * D, dtype=torch.float32)
    x, pos = _vals(_t(Tn, H * D), IndexType())
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    ang = torch.arange(pos0, pos0 + Tn).float()[:, None] * inv[None, :]
    # HF rotate_half (neox)
    emb = torch.cat([ang, ang], -1)[:, None, :]
    xh = X.reshape(Tn, H, D)
    rot = torch.cat([-xh[..., D // 2:], xh[..., : D // 2]], -1)
    hf = (xh * emb.cos() + rot * emb.sin()).reshape(Tn, H * D)
    (y,) = R.eval_op(T.RopeOp(x, pos, heads=H, head_dim=D, theta=theta), [X, pos0])
    _close(y, hf, FWD_TOL)
    # Meta complex multiplication (interleaved pairs)
    xc = torch.view_as_complex(xh.reshape(Tn, H, D // 2, 2).double())
    meta = torch.view_as_real(xc * torch.polar(torch.ones_like(ang).double(), ang.double())[:, None, :])
    (y2,) = R.eval_op(T.RopeOp(x, pos, heads=H, head_dim=D, theta=theta, style="interleaved"),
                      [X, pos0])
    _close(y2, meta.reshape(Tn, H * D).float(), FWD_TOL)


ATTN = [dict(window=0, softcap=0.0), dict(window=3, softcap=0.0), dict(window=0, softcap=2.0)]


@pytest.mark.parametrize("cfg", ATTN, ids=lambda c: f"w{c['window']}-cap{c['softcap']}")
def test_attention_grad(cfg):
    torch.manual_seed(10)
    H, KV, D, Tn = 4, 2, 8, 7
    q, k, v, do = _vals(_t(Tn, H * D), _t(Tn, KV * D), _t(Tn, KV * D), _t(Tn, H * D))
    kw = dict(heads=H, kv_heads=KV, head_dim=D, scale=0.3, **cfg)
    Q, K, V = (_rand(Tn, H * D).requires_grad_(), _rand(Tn, KV * D).requires_grad_(),
               _rand(Tn, KV * D).requires_grad_())
    (o,) = R.eval_op(T.CausalAttentionOp(q, k, v, **kw), [Q, K, V])
    DO = _rand(Tn, H * D)
    (o * DO).sum().backward()
    dq, dk, dv = R.eval_op(T.CausalAttentionGradOp(do, q, k, v, **kw),
                           [DO, Q.detach(), K.detach(), V.detach()])
    _close(dq, Q.grad, GRAD_TOL)
    _close(dk, K.grad, GRAD_TOL)
    _close(dv, V.grad, GRAD_TOL)


@pytest.mark.parametrize("window", [0, 3])
def test_attention_matches_sdpa(window):
    torch.manual_seed(11)
    H, KV, D, Tn = 4, 2, 8, 7
    q, k, v = _vals(_t(DYN, H * D), _t(DYN, KV * D), _t(DYN, KV * D))
    Q, K, V = (_rand(Tn, H * D, dtype=torch.float32), _rand(Tn, KV * D, dtype=torch.float32),
               _rand(Tn, KV * D, dtype=torch.float32))
    (o,) = R.eval_op(T.CausalAttentionOp(q, k, v, heads=H, kv_heads=KV, head_dim=D,
                                         window=window), [Q, K, V])
    i = torch.arange(Tn)
    mask = (i[None, :] <= i[:, None])
    if window:
        mask &= (i[:, None] - i[None, :]) < window
    qh = Q.reshape(Tn, H, D).transpose(0, 1)
    kh = K.reshape(Tn, KV, D).transpose(0, 1).repeat_interleave(H // KV, 0)
    vh = V.reshape(Tn, KV, D).transpose(0, 1).repeat_interleave(H // KV, 0)
    ref = torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
    _close(o, ref.transpose(0, 1).reshape(Tn, H * D), FWD_TOL)


def test_kv_cache_attention_equals_full_attention():
    torch.manual_seed(12)
    H, KV, D, S, Tn, split = 4, 2, 8, 16, 7, 4
    q, k, v, c, pos = _vals(_t(DYN, H * D), _t(DYN, KV * D), _t(DYN, KV * D),
                            _t(S, KV * D), IndexType())
    kw = dict(heads=H, kv_heads=KV, head_dim=D, window=5)
    Q, K, V = (_rand(Tn, H * D, dtype=torch.float32), _rand(Tn, KV * D, dtype=torch.float32),
               _rand(Tn, KV * D, dtype=torch.float32))
    (full,) = R.eval_op(T.CausalAttentionOp(q, k, v, **kw), [Q, K, V])
    write = T.KVWriteOp(c, k, pos)
    cached = T.CausalAttentionOp(q, c, c, pos, **kw)
    kc = vc = torch.zeros(S, KV * D)
    outs = []
    for lo, hi in ((0, split), (split, split + 1), (split + 1, Tn)):
        (kc,) = R.eval_op(write, [kc, K[lo:hi], lo])
        (vc,) = R.eval_op(write, [vc, V[lo:hi], lo])
        (o,) = R.eval_op(cached, [Q[lo:hi], kc, vc, lo])
        outs.append(o)
    _close(torch.cat(outs), full, FWD_TOL)


def test_embedding_grad_and_positions():
    torch.manual_seed(13)
    Vn, C = 11, 6
    table, tok, dy, pos = _vals(_t(Vn, C), _t(DYN, elem=i32), _t(DYN, C), IndexType())
    TB = _rand(Vn, C).requires_grad_()
    TOK = torch.tensor([3, 1, 3, 0, 10, 3], dtype=torch.int32)
    (y,) = R.eval_op(T.EmbeddingOp(table, tok, scale=2.5), [TB, TOK])
    DY = _rand(6, C)
    (y * DY).sum().backward()
    (dt,) = R.eval_op(T.EmbeddingGradOp(dy, tok, vocab=Vn, scale=2.5), [DY, TOK])
    _close(dt, TB.grad, GRAD_TOL)
    (ids,) = R.eval_op(T.PositionsOp(tok, pos), [TOK, 4])
    assert ids.tolist() == [4, 5, 6, 7, 8, 9] and ids.dtype == torch.int32


def test_cross_entropy_grad_and_fused():
    torch.manual_seed(14)
    Tn, Vn = 6, 9
    logits, tgt, dl = _vals(_t(DYN, Vn), _t(DYN, elem=i32), _t())
    L = _rand(Tn, Vn).requires_grad_()
    TG = torch.tensor([1, -100, 4, 8, -100, 0], dtype=torch.int32)
    (loss,) = R.eval_op(T.CrossEntropyOp(logits, tgt), [L, TG])
    (loss * 0.5).backward()
    (dlog,) = R.eval_op(T.CrossEntropyGradOp(dl, logits, tgt),
                        [torch.tensor(0.5, dtype=torch.float64), L.detach(), TG])
    _close(dlog, L.grad, GRAD_TOL)
    loss2, dlog2 = R.eval_op(T.CrossEntropyFusedOp(logits, tgt, grad_scale=0.5), [L.detach(), TG])
    _close(loss2, loss.detach(), GRAD_TOL)
    _close(dlog2, L.grad, GRAD_TOL)


def test_adamw_and_clip_match_torch():
    torch.manual_seed(15)
    p, g, n, lr, step = _vals(_t(4, 5), _t(4, 5), _t(), f32, IndexType())
    kw = dict(beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1)
    upd = T.AdamWUpdateOp(p, g, p, p, lr, step, **kw)
    assert upd.inplace_operands() == {0: upd.param, 1: upd.m, 2: upd.v}
    norm = T.GlobalNormOp([g, g])
    clip = T.ClipByNormOp(g, n, max_norm=0.5)
    P0 = _rand(4, 5, dtype=torch.float32)
    ref = torch.nn.Parameter(P0.clone())
    ref2 = torch.nn.Parameter(P0.clone() * 0.5)
    opt = torch.optim.AdamW([ref, ref2], lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
    P, P2 = P0.clone(), P0.clone() * 0.5
    M, Vv, M2, V2 = (torch.zeros(4, 5) for _ in range(4))
    for s in range(1, 4):
        G, G2 = _rand(4, 5, dtype=torch.float32), _rand(4, 5, dtype=torch.float32)
        ref.grad, ref2.grad = G.clone(), G2.clone()
        torch.nn.utils.clip_grad_norm_([ref, ref2], 0.5)
        opt.step()
        (N,) = R.eval_op(norm, [G, G2])
        (Gc,) = R.eval_op(clip, [G, N])
        (G2c,) = R.eval_op(clip, [G2, N])
        P, M, Vv = R.eval_op(upd, [P, Gc, M, Vv, 0.01, s])
        P2, M2, V2 = R.eval_op(upd, [P2, G2c, M2, V2, 0.01, s])
    _close(P, ref.detach(), FWD_TOL)
    _close(P2, ref2.detach(), FWD_TOL)


def _ctx():
    ctx = Context()
    for d in (Builtin, func.Func, arith.Arith, test.Test, T.Tensorop):
        ctx.load_dialect(d)
    return ctx


def test_fused_rmsnorm_qkv_rope_equals_composition():
    torch.manual_seed(16)
    C, H, KV, D = 16, 4, 2, 4
    x, nw, wq, wk, wv, pos, bk, f = _vals(_t(DYN, C), _t(C), _t(H * D, C), _t(KV * D, C),
                                         _t(KV * D, C), IndexType(), _t(KV * D), _t(D // 2))
    kw = dict(heads=H, kv_heads=KV, head_dim=D, eps=1e-5, offset=1.0, theta=100.0,
              style="interleaved")
    fused = T.RMSNormQKVRopeOp(x, nw, wq, wk, wv, pos, bk=bk, inv_freq=f, **kw)
    X, NW, WQ, WK, WV, BK, F = (_rand(5, C, dtype=torch.float32), _rand(C, dtype=torch.float32),
                                _rand(H * D, C, dtype=torch.float32),
                                _rand(KV * D, C, dtype=torch.float32),
                                _rand(KV * D, C, dtype=torch.float32),
                                _rand(KV * D, dtype=torch.float32), torch.rand(D // 2))
    q, k, v = R.eval_op(fused, [X, NW, WQ, WK, WV, 2, BK, F])
    rope = dict(head_dim=D, theta=100.0, style="interleaved")
    (h,) = R.eval_op(T.RMSNormOp(x, nw, eps=1e-5, offset=1.0), [X, NW])
    (q0,) = R.eval_op(T.MatmulOp(x, wq, transpose_b=True), [h, WQ])
    (k0,) = R.eval_op(T.MatmulOp(x, wk, bk, transpose_b=True), [h, WK, BK])
    (v0,) = R.eval_op(T.MatmulOp(x, wv, transpose_b=True), [h, WV])
    q0v, k0v = _vals(_t(DYN, H * D), _t(DYN, KV * D))
    (q1,) = R.eval_op(T.RopeOp(q0v, pos, f, heads=H, **rope), [q0, 2, F])
    (k1,) = R.eval_op(T.RopeOp(k0v, pos, f, heads=KV, **rope), [k0, 2, F])
    _close(q, q1, FWD_TOL)
    _close(k, k1, FWD_TOL)
    _close(v, v0, FWD_TOL)


CANON_IR = """
func.func @f(%x: tensor<?x16xf32>, %w: tensor<16xf32>) -> tensor<?x16xf32> {
  %z = tensorop.zeros_like %x : (tensor<?x16xf32>) -> tensor<?x16xf32>
  %a = tensorop.add %x, %z : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  %r = tensorop.reshape %a : (tensor<?x16xf32>) -> tensor<?x4x4xf32>
  %r2 = tensorop.reshape %r : (tensor<?x4x4xf32>) -> tensor<?x16xf32>
  %t = tensorop.transpose %r2 : (tensor<?x16xf32>) -> tensor<16x?xf32>
  %t2 = tensorop.transpose %t : (tensor<16x?xf32>) -> tensor<?x16xf32>
  %s = tensorop.scale %t2 {factor = 1.0 : f32} : (tensor<?x16xf32>) -> tensor<?x16xf32>
  %n = tensorop.rmsnorm %s, %w {eps = 1.0e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  %g = tensorop.swiglu %n, %s : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  func.return %g : tensor<?x16xf32>
}
"""


def test_canonicalize_preserves_values():
    from xdsl.transforms.canonicalize import CanonicalizePass

    torch.manual_seed(17)
    X, W = _rand(5, 16, dtype=torch.float32), _rand(16, dtype=torch.float32)
    module = Parser(_ctx(), CANON_IR).parse_module()
    f = next(o for o in module.walk() if isinstance(o, func.FuncOp))
    (before,) = R.evaluate(f, [X, W])
    n_before = len(list(f.body.block.ops))
    CanonicalizePass().apply(_ctx(), module)
    (after,) = R.evaluate(f, [X, W])
    assert len(list(f.body.block.ops)) == 3  # rmsnorm, swiglu, return
    assert n_before == 10
    assert torch.equal(before, after)


def test_evaluate_uses_weights_and_scalars():
    ir = """
    func.func @f(%tok: tensor<?xi32>) -> tensor<f32> {
      %emb = tensorop.weight "token_embd.weight" : tensor<8x4xf32>
      %x = tensorop.embedding %emb, %tok : (tensor<8x4xf32>, tensor<?xi32>) -> tensor<?x4xf32>
      %p = arith.constant 0 : index
      %ids = tensorop.positions %tok, %p : (tensor<?xi32>, index) -> tensor<?xi32>
      %l = tensorop.matmul %x, %emb {transpose_b} : (tensor<?x4xf32>, tensor<8x4xf32>) -> tensor<?x8xf32>
      %loss = tensorop.cross_entropy %l, %ids : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<f32>
      func.return %loss : tensor<f32>
    }
    """
    module = Parser(_ctx(), ir).parse_module()
    module.verify()
    f = next(o for o in module.walk() if isinstance(o, func.FuncOp))
    E = _rand(8, 4, dtype=torch.float32)
    tok = torch.tensor([1, 2, 3], dtype=torch.int32)
    (loss,) = R.evaluate(f, [tok], {"token_embd.weight": E})
    ref = torch.nn.functional.cross_entropy(E[tok.long()] @ E.T, torch.arange(3))
    _close(loss, ref, FWD_TOL)


def test_weight_offset_selects_rows():
    ir = """
    func.func @f() -> (tensor<2x3xf32>, tensor<2x3xf32>) {
      %q = tensorop.weight "blk.0.attn_qkv.weight" : tensor<2x3xf32>
      %k = tensorop.weight "blk.0.attn_qkv.weight" offset 2 : tensor<2x3xf32>
      func.return %q, %k : tensor<2x3xf32>, tensor<2x3xf32>
    }
    """
    module = Parser(_ctx(), ir).parse_module()
    f = next(o for o in module.walk() if isinstance(o, func.FuncOp))
    W = torch.arange(18, dtype=torch.float32).reshape(6, 3)
    q, k = R.evaluate(f, [], {"blk.0.attn_qkv.weight": W})
    assert torch.equal(q, W[0:2]) and torch.equal(k, W[2:4])


@pytest.mark.parametrize("scaling", [
    dict(rope_type="default"),
    dict(rope_type="linear", factor=4.0),
    dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
         original_max_position_embeddings=64),
], ids=lambda s: s["rope_type"])
def test_rope_inv_freq_matches_transformers(scaling):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    theta, head_dim = 500000.0, 64
    params = dict(scaling, rope_theta=theta)
    cfg = LlamaConfig(hidden_size=256, num_attention_heads=4, head_dim=head_dim,
                      max_position_embeddings=512, rope_parameters=params)
    kind = scaling["rope_type"]
    if kind == "default":
        ref = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        got = T.rope_inv_freq(head_dim, theta)
    else:
        ref, _ = ROPE_INIT_FUNCTIONS[kind](cfg, "cpu")
        got = T.rope_inv_freq(
            head_dim, theta, scaling=kind, factor=scaling["factor"],
            low_freq_factor=scaling.get("low_freq_factor", 1.0),
            high_freq_factor=scaling.get("high_freq_factor", 4.0),
            original_context=scaling.get("original_max_position_embeddings", 0))
    _close(torch.tensor(got), ref, 1e-6)
    const = T.rope_inv_freq_constant(head_dim, theta)
    assert const.result.type == TensorType(f32, [head_dim // 2])


def test_batched_sequences_are_independent():
    """seq_len splits [B*L, C] into B sequences: rope, attention and positions
    equal running each sequence alone; the attention grad still matches autograd."""
    torch.manual_seed(18)
    B, L, H, KV, D = 3, 4, 4, 2, 8
    q, k, v, pos, do = _vals(_t(B * L, H * D), _t(B * L, KV * D), _t(B * L, KV * D),
                             IndexType(), _t(B * L, H * D))
    akw = dict(heads=H, kv_heads=KV, head_dim=D, window=3, softcap=5.0)
    Q, K, V = _rand(B * L, H * D), _rand(B * L, KV * D), _rand(B * L, KV * D)
    (qr,) = R.eval_op(T.RopeOp(q, pos, heads=H, head_dim=D, seq_len=L), [Q, 2])
    (o,) = R.eval_op(T.CausalAttentionOp(q, k, v, seq_len=L, **akw), [Q, K, V])
    (ids,) = R.eval_op(T.PositionsOp(_vals(_t(DYN, elem=i32))[0], pos, seq_len=L),
                       [torch.zeros(B * L, dtype=torch.int32), 2])
    assert ids.tolist() == [2, 3, 4, 5] * B
    single_rope = T.RopeOp(q, pos, heads=H, head_dim=D)
    single_attn = T.CausalAttentionOp(q, k, v, **akw)
    for b in range(B):
        rows = slice(b * L, (b + 1) * L)
        (qr_b,) = R.eval_op(single_rope, [Q[rows], 2])
        (o_b,) = R.eval_op(single_attn, [Q[rows], K[rows], V[rows]])
        _close(qr[rows], qr_b, GRAD_TOL)
        _close(o[rows], o_b, GRAD_TOL)
    leaves = [x.clone().requires_grad_() for x in (Q, K, V)]
    (o2,) = R.eval_op(T.CausalAttentionOp(q, k, v, seq_len=L, **akw), leaves)
    DO = _rand(B * L, H * D)
    (o2 * DO).sum().backward()
    grads = R.eval_op(T.CausalAttentionGradOp(do, q, k, v, seq_len=L, **akw), [DO, Q, K, V])
    for g, leaf in zip(grads, leaves):
        _close(g, leaf.grad, GRAD_TOL)
    X = _rand(B * L, H * D).requires_grad_()
    (y,) = R.eval_op(T.RopeOp(q, pos, heads=H, head_dim=D, seq_len=L), [X, 2])
    (y * DO).sum().backward()
    (dx,) = R.eval_op(T.RopeGradOp(do, pos, heads=H, head_dim=D, seq_len=L), [DO, 2])
    _close(dx, X.grad, 1e-6)


LLAMA_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.layers.0.input_layernorm.weight": "blk.0.attn_norm.weight",
    "model.layers.0.self_attn.q_proj.weight": "blk.0.attn_q.weight",
    "model.layers.0.self_attn.k_proj.weight": "blk.0.attn_k.weight",
    "model.layers.0.self_attn.v_proj.weight": "blk.0.attn_v.weight",
    "model.layers.0.self_attn.o_proj.weight": "blk.0.attn_output.weight",
    "model.layers.0.post_attention_layernorm.weight": "blk.0.ffn_norm.weight",
    "model.layers.0.mlp.gate_proj.weight": "blk.0.ffn_gate.weight",
    "model.layers.0.mlp.up_proj.weight": "blk.0.ffn_up.weight",
    "model.layers.0.mlp.down_proj.weight": "blk.0.ffn_down.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def _tiny_llama(seed: int):
    """The one-layer Llama of llama-layer.mlir in transformers, with random
    norm weights, and its weights under GGUF names."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=8, rms_norm_eps=1e-5, max_position_embeddings=16,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    sd = model.state_dict()
    with torch.no_grad():
        for n in LLAMA_NAMES:  # norms start at 1: randomize them so they matter
            if "norm" in n:
                sd[n].copy_(torch.rand_like(sd[n]) + 0.5)
    weights = {gg: sd[hf].detach().float().clone() for hf, gg in LLAMA_NAMES.items()}
    return model, weights


def _lit_func(name: str):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "test/lit/dialects/tensorop" / name
    module = Parser(_ctx(), path.read_text()).parse_module()
    module.verify()
    return next(o for o in module.walk() if isinstance(o, func.FuncOp))


def test_llama_layer_ir_matches_transformers():
    """test/lit/dialects/tensorop/llama-layer.mlir, run by the reference, gives
    transformers' LlamaForCausalLM logits: prefill of 5 tokens (pos 0), then
    two decode steps through the K/V caches (float32, max |diff| <= 1e-4)."""
    model, weights = _tiny_llama(19)
    f = _lit_func("llama-layer.mlir")
    ids = torch.randint(0, 64, (7,), dtype=torch.int32)
    with torch.no_grad():
        ref = model(ids.long()[None]).logits[0]
    kc = vc = torch.zeros(16, 16)
    logits, kc, vc = R.evaluate(f, [ids[:5], 0, kc, vc], weights)
    _close(logits, ref[:5], 1e-4)
    for t in (5, 6):
        logits, kc, vc = R.evaluate(f, [ids[t:t + 1], t, kc, vc], weights)
        _close(logits, ref[t:t + 1], 1e-4)


def test_llama_train_step_ir_matches_autograd():
    """llama-train-step.mlir (forward + hand-written backward of *_grad ops)
    gives torch autograd's loss (within 1e-5) and every weight's gradient
    (max |diff| <= 1e-4 * max-norm) for LlamaForCausalLM."""
    model, weights = _tiny_llama(21)
    f = _lit_func("llama-train-step.mlir")
    ids = torch.randint(0, 64, (8,), dtype=torch.int32)
    targets = torch.cat([ids[1:], torch.tensor([-100], dtype=torch.int32)])
    logits = model(ids.long()[None]).logits[0]
    ref_loss = torch.nn.functional.cross_entropy(logits, targets.long(), ignore_index=-100)
    ref_loss.backward()
    params = dict(model.named_parameters())
    outs = R.evaluate(f, [ids, targets], weights)
    assert abs(outs[0].item() - ref_loss.item()) <= 1e-5
    order = ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
             "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight",
             "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
             "blk.0.ffn_down.weight", "output_norm.weight", "output.weight"]
    by_gguf = {gg: hf for hf, gg in LLAMA_NAMES.items()}
    for name, grad in zip(order, outs[1:]):
        _close(grad, params[by_gguf[name]].grad, 1e-4)


def test_gpt2_layer_ir_matches_transformers():
    """test/lit/dialects/tensorop/gpt2-layer.mlir (fused qkv read by weight
    offsets, learned positions, LayerNorm biases, tanh GELU, tied output)
    gives GPT2LMHeadModel's logits: prefill of 6 tokens then 2 decode steps."""
    from pathlib import Path

    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(20)
    cfg = GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=4, n_positions=16,
                     n_inner=128, layer_norm_epsilon=1e-5, activation_function="gelu_new")
    model = GPT2LMHeadModel(cfg).eval()
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    for k in sd:  # random LayerNorm affine params and biases so they matter
        if k.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            sd[k] = torch.rand_like(sd[k]) + 0.5
        elif k.endswith(".bias") and sd[k].dim() == 1:
            sd[k] = torch.randn_like(sd[k]) * 0.1
    model.load_state_dict(sd, strict=False)
    p = "transformer.h.0."
    weights = {  # GGUF names; Conv1D weights are [in, out] in HF, [out, in] in GGUF
        "token_embd.weight": sd["transformer.wte.weight"],
        "position_embd.weight": sd["transformer.wpe.weight"],
        "blk.0.attn_norm.weight": sd[p + "ln_1.weight"], "blk.0.attn_norm.bias": sd[p + "ln_1.bias"],
        "blk.0.attn_qkv.weight": sd[p + "attn.c_attn.weight"].T.contiguous(),
        "blk.0.attn_qkv.bias": sd[p + "attn.c_attn.bias"],
        "blk.0.attn_output.weight": sd[p + "attn.c_proj.weight"].T.contiguous(),
        "blk.0.attn_output.bias": sd[p + "attn.c_proj.bias"],
        "blk.0.ffn_norm.weight": sd[p + "ln_2.weight"], "blk.0.ffn_norm.bias": sd[p + "ln_2.bias"],
        "blk.0.ffn_up.weight": sd[p + "mlp.c_fc.weight"].T.contiguous(),
        "blk.0.ffn_up.bias": sd[p + "mlp.c_fc.bias"],
        "blk.0.ffn_down.weight": sd[p + "mlp.c_proj.weight"].T.contiguous(),
        "blk.0.ffn_down.bias": sd[p + "mlp.c_proj.bias"],
        "output_norm.weight": sd["transformer.ln_f.weight"],
        "output_norm.bias": sd["transformer.ln_f.bias"],
    }
    path = Path(__file__).resolve().parents[2] / "test/lit/dialects/tensorop/gpt2-layer.mlir"
    module = Parser(_ctx(), path.read_text()).parse_module()
    module.verify()
    f = next(o for o in module.walk() if isinstance(o, func.FuncOp))
    ids = torch.randint(0, 64, (8,), dtype=torch.int32)
    with torch.no_grad():
        ref = model(ids.long()[None]).logits[0]
    kc = vc = torch.zeros(16, 32)
    logits, kc, vc = R.evaluate(f, [ids[:6], 0, kc, vc], weights)
    _close(logits, ref[:6], 1e-4)
    for t in (6, 7):
        logits, kc, vc = R.evaluate(f, [ids[t:t + 1], t, kc, vc], weights)
        _close(logits, ref[t:t + 1], 1e-4)


@pytest.mark.parametrize("fmt", ["q8_0", "q4_1", "q5_0", "f16"])   # (gguf-py quantizes no K-quant)
def test_stored_weight_is_dequantized(fmt):
    """A `tensorop.weight` of a GGUF format handed over as its raw bytes (what
    WeightStore.raw gives) evaluates to gguf-py's dequantization of them, and a
    matmul reading it equals x · dequant(W)ᵀ (float64 reference, fp32 tolerance)."""
    import gguf
    import gguf.quants
    import numpy as np

    from ckc.dialects import quant

    el = quant.element_type(fmt)
    k = 256
    w32 = np.random.default_rng(0).standard_normal((8, k)).astype(np.float32)
    qt = gguf.GGMLQuantizationType[fmt.upper()]
    raw = w32.astype(np.float16).view(np.uint8) if fmt == "f16" else gguf.quants.quantize(w32, qt)
    deq = gguf.quants.dequantize(raw, qt).reshape(8, k)
    w = T.WeightOp("w", TensorType(el, [8, k]))
    got = R.eval_op(w, [], {"w": np.asarray(raw, np.uint8)})[0]
    np.testing.assert_array_equal(got.numpy(), deq)
    x = _rand(3, k).float()
    mm = T.MatmulOp(_vals(_t(3, k))[0], w.result, transpose_b=True)
    y = R.eval_op(mm, [x, got])[0]
    _close(y, x.double() @ torch.from_numpy(deq).double().T, 1e-4)
