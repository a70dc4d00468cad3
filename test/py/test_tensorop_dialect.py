"""tensorop dialect: Python constructors infer result types and verify,
docstring examples parse and verify, built IR round-trips through text,
invalid constructions fail naming the op, canonicalization runs from Python."""

from __future__ import annotations

import re

import pytest
from xdsl.context import Context
from xdsl.dialects import func, test
from xdsl.dialects.builtin import (
    Builtin,
    DenseIntOrFPElementsAttr,
    IndexType,
    ModuleOp,
    TensorType,
    f32,
    i32,
)
from xdsl.ir import Block, Region
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

import ckc.dialects.tensorop as T
from ckc.dialects.tensorop import DYN

# Small model dims used throughout: C=64, 4 heads x 32, 2 kv heads, vocab 256.
C, H, KV, HD, V = 64, 4, 2, 32, 256


def _ctx() -> Context:
    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(func.Func)
    ctx.load_dialect(test.Test)
    ctx.load_dialect(T.Tensorop)
    return ctx


def _t(*shape, elem=f32):
    return TensorType(elem, list(shape))


def _build_all():
    """Every op built from Python, in one function; returns (module, ops)."""
    arg_types = [
        _t(DYN, C),            # x
        _t(DYN, elem=i32),     # tokens
        IndexType(),           # pos
        f32,                   # lr
        _t(DYN, H * HD),       # dy of q width
    ]
    blk = Block(arg_types=arg_types)
    x, tok, pos, lr, dyq = blk.args
    ops = []

    def add(op):
        ops.append(op)
        return op

    wq = add(T.WeightOp("blk.0.attn_q.weight", (H * HD, C)))
    bq = add(T.WeightOp("blk.0.attn_q.bias", (H * HD,)))
    wk = add(T.WeightOp("blk.0.attn_qkv.weight", _t(KV * HD, C), offset=H * HD))
    nw = add(T.WeightOp("blk.0.attn_norm.weight", (C,)))
    emb = add(T.WeightOp("token_embd.weight", (V, C)))
    kc = add(T.ZerosOp(_t(128, KV * HD)))
    freqs = add(T.ConstantOp.splat(1.0, _t(HD // 2)))
    zl = add(T.ZerosLikeOp(x))
    e = add(T.EmbeddingOp(emb, tok, scale=8.0))
    ids = add(T.PositionsOp(tok, pos))
    pe = add(T.EmbeddingOp(emb, ids))
    s = add(T.AddOp(e, pe))
    m = add(T.MulOp(s, zl))
    sc = add(T.ScaleOp(m, 0.5))
    h = add(T.RMSNormOp(sc, nw, eps=1e-5))
    ln = add(T.LayerNormOp(sc, nw, nw, eps=1e-5))
    ln2 = add(T.LayerNormOp(ln, nw))
    q = add(T.MatmulOp(h, wq, bq, transpose_b=True))
    k = add(T.MatmulOp(h, wk, transpose_b=True))
    qn = add(T.RMSNormOp(q, add(T.WeightOp("blk.0.attn_q_norm.weight", (HD,))), offset=1.0))
    qr = add(T.RopeOp(qn, pos, heads=H, head_dim=HD, theta=1e6))
    kr = add(T.RopeOp(k, pos, freqs, heads=KV, head_dim=HD, style="interleaved"))
    kc1 = add(T.KVWriteOp(kc, kr, pos))
    att = add(T.CausalAttentionOp(qr, kr, k, heads=H, kv_heads=KV, head_dim=HD, window=4))
    attc = add(T.CausalAttentionOp(qr, kc1, kc1, pos, heads=H, kv_heads=KV, head_dim=HD,
                                   softcap=50.0))
    # slot-batched decode: rows of several sequences (tok as slot and position ids)
    skc = add(T.ZerosOp(_t(2, 128, KV * HD)))
    rr = add(T.RopeRowsOp(qn, tok, heads=H, head_dim=HD, theta=1e6))
    krr = add(T.RopeRowsOp(k, tok, freqs, heads=KV, head_dim=HD, style="interleaved"))
    skc1 = add(T.KVScatterOp(skc, krr, tok, tok))
    add(T.SlotAttentionOp(rr, skc1, skc1, tok, tok, heads=H, kv_heads=KV, head_dim=HD, window=4))
    add(T.GatherRowsOp(qn, tok))
    sm = add(T.SoftmaxOp(att))
    si = add(T.SiluOp(h))
    ge = add(T.GeluOp(h, approximate="tanh"))
    sw = add(T.SwigluOp(si, ge))
    gg = add(T.GegluOp(si, ge, approximate="tanh"))
    rs = add(T.ReshapeOp(q, _t(DYN, H, HD)))
    tr = add(T.TransposeOp(h))
    last = add(T.LastRowsOp(h, count=1))
    logits = add(T.MatmulOp(h, emb, transpose_b=True))
    capped = add(T.SoftcapOp(logits, cap=30.0))
    ce = add(T.CrossEntropyOp(capped, tok))
    cef = add(T.CrossEntropyFusedOp(logits, tok, grad_scale=0.5))
    ceg = add(T.CrossEntropyGradOp(ce, logits, tok, ignore_index=-1))
    scg = add(T.SoftcapGradOp(ceg, logits, cap=30.0))
    mg = add(T.MatmulGradOp(dyq, h, wq, transpose_b=True, has_bias=True))
    mg2 = add(T.MatmulGradOp(dyq, h, wq, transpose_b=True))
    mulg = add(T.MulGradOp(s, s, zl))
    rg = add(T.RMSNormGradOp(h, sc, nw, eps=1e-5))
    lg = add(T.LayerNormGradOp(h, sc, nw))
    rpg = add(T.RopeGradOp(dyq, pos, heads=H, head_dim=HD, rotary_dim=16))
    smg = add(T.SoftmaxGradOp(sm, sm))
    ag = add(T.CausalAttentionGradOp(att, qr, kr, k, heads=H, kv_heads=KV, head_dim=HD))
    sig = add(T.SiluGradOp(h, h))
    geg = add(T.GeluGradOp(h, h, approximate="tanh"))
    swg = add(T.SwigluGradOp(h, h, h))
    ggg = add(T.GegluGradOp(h, h, h))
    eg = add(T.EmbeddingGradOp(h, tok, vocab=V, scale=8.0))
    acc = add(T.AccumulateOp(emb, eg))
    gn = add(T.GlobalNormOp([acc, nw]))
    clip = add(T.ClipByNormOp(acc, gn, max_norm=1.0))
    mom = add(T.ZerosOp(_t(V, C)))
    ad = add(T.AdamWUpdateOp(emb, clip, mom, mom, lr, pos, weight_decay=0.1))
    fq = add(T.RMSNormQKVRopeOp(x, nw, wq, wk, wk, pos, bq=bq, heads=H, kv_heads=KV,
                                head_dim=HD, eps=1e-5))
    fq2 = add(T.RMSNormQKVRopeOp(x, nw, wq, wk, wk, pos, inv_freq=freqs, heads=H,
                                 kv_heads=KV, head_dim=HD))
    add(func.ReturnOp())
    blk.add_ops(ops)
    f = func.FuncOp("all_ops", (arg_types, []), Region(blk))
    return ModuleOp([f]), {type(o) for o in ops}


def test_every_op_builds_from_python_and_verifies():
    module, built = _build_all()
    module.verify()
    missing = {cls.__name__ for cls in T.TENSOROP_OPS} - {c.__name__ for c in built}
    assert not missing, f"ops without a Python construction test: {missing}"


def test_built_ir_round_trips_through_text():
    module, _ = _build_all()
    text = str(module)
    reparsed = Parser(_ctx(), text).parse_module()
    reparsed.verify()
    assert str(reparsed) == text


def test_inferred_types():
    blk = Block(arg_types=[_t(DYN, C), _t(DYN, elem=i32), IndexType()])
    x, tok, pos = blk.args
    w = T.WeightOp("w", (2 * C, C))
    y = T.MatmulOp(x, w, transpose_b=True)
    assert y.result.type == _t(DYN, 2 * C)
    yt = T.MatmulOp(w, y, transpose_a=True, transpose_b=True)
    assert yt.result.type == _t(C, DYN)
    g = T.MatmulGradOp(y, x, w, transpose_b=True, has_bias=True)
    assert [r.type for r in g.results] == [_t(DYN, C), _t(2 * C, C), _t(2 * C)]
    assert g.dbias is not None
    g2 = T.MatmulGradOp(y, x, w, transpose_b=True)
    assert len(g2.results) == 2 and g2.dbias is None
    eg = T.EmbeddingGradOp(x, tok, vocab=V)
    assert eg.result.type == _t(V, C)
    ce = T.CrossEntropyFusedOp(y, tok)
    assert ce.loss.type == _t() and ce.dlogits.type == _t(DYN, 2 * C)
    att = T.CausalAttentionOp(y, x, x, heads=4, kv_heads=2, head_dim=32)
    assert att.scale.value.data == pytest.approx(32 ** -0.5)
    assert T.PositionsOp(tok, pos).result.type == _t(DYN, elem=i32)
    assert T.LastRowsOp(x, count=3).result.type == _t(3, C)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda x, w: T.MatmulOp(x, w), "tensorop.matmul: contraction sizes differ"),
        (lambda x, w: T.AddOp(x, w), "tensorop.add: operands: shapes"),
        (lambda x, w: T.RopeOp(x, x, heads=3, head_dim=32), "tensorop.rope"),
        (lambda x, w: T.CausalAttentionOp(x, x, x, heads=3, kv_heads=2, head_dim=32),
         "heads (3) must be a multiple of kv_heads (2)"),
        (lambda x, w: T.GeluOp(x, approximate="erf"), "approximate must be one of none, tanh"),
        (lambda x, w: T.AdamWUpdateOp(w, w, w, w, x, x, beta1=1.5), "beta1 must be in [0, 1)"),
    ],
)
def test_invalid_construction_names_the_op(build, message):
    blk = Block(arg_types=[_t(DYN, C), _t(2 * C, 2 * C)])
    x, w = blk.args
    with pytest.raises((VerifyException, Exception)) as err:
        build(x, w)
    assert message in str(err.value)


_EXAMPLE = re.compile(r"```mlir\n(.*?)```", re.S)


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _example_module(line: str) -> str:
    """Wraps one example line in a module whose undefined operands come from
    `test.op` (operand order = type order in the custom syntax)."""
    lhs, _, rhs = line.partition("=") if re.match(r"\s*%", line) else ("", "", line)
    head, _, types_text = rhs.rpartition(" : (")
    head = re.sub(r"\{.*\}", "", head)
    head = re.sub(r'"[^"]*"', "", head)
    names = re.findall(r"%\w+", head)
    pre = []
    if names:
        types = _split_top(types_text.split(") ->", 1)[0])
        assert len(types) == len(names), line
        seen = set()
        for n, t in zip(names, types):
            if n not in seen:
                seen.add(n)
                pre.append(f'{n} = "test.op"() : () -> {t}')
    return "\n".join(pre + [line])


@pytest.mark.parametrize("cls", T.TENSOROP_OPS, ids=lambda c: c.name)
def test_docstring_example_parses_and_verifies(cls):
    doc = cls.__doc__ or ""
    examples = _EXAMPLE.findall(doc)
    assert examples, f"{cls.name} has no ```mlir example in its docstring"
    lines = [l.strip() for ex in examples for l in ex.splitlines() if cls.name in l]
    assert lines, f"{cls.name}: the example does not use the op"
    for line in lines:
        src = _example_module(line)
        module = Parser(_ctx(), src).parse_module()
        module.verify()
        op = [o for o in module.walk() if o.name == cls.name][0]
        # The example is written as the printer prints it.
        printed = str(module).splitlines()[-2].strip()
        assert printed.split(" = ", 1)[-1] == line.split(" = ", 1)[-1], printed


def test_canonicalize_from_python():
    from xdsl.transforms.canonicalize import CanonicalizePass

    blk = Block(arg_types=[_t(8, C)])
    (x,) = blk.args
    z = T.ZerosOp(_t(8, C))
    a = T.AddOp(x, z)
    r1 = T.ReshapeOp(a, _t(8 * C))
    r2 = T.ReshapeOp(r1, _t(8, C))
    s = T.ScaleOp(r2, 1.0)
    t1 = T.TransposeOp(s)
    t2 = T.TransposeOp(t1)
    blk.add_ops([z, a, r1, r2, s, t1, t2, func.ReturnOp(t2)])
    module = ModuleOp([func.FuncOp("f", ([_t(8, C)], [_t(8, C)]), Region(blk))])
    module.verify()
    CanonicalizePass().apply(_ctx(), module)
    ops = [o.name for o in module.walk()]
    assert ops == ["builtin.module", "func.func", "func.return"], ops
    ret = [o for o in module.walk() if isinstance(o, func.ReturnOp)][0]
    assert ret.operands[0] is x


def test_constant_splat_value():
    c = T.ConstantOp(DenseIntOrFPElementsAttr.from_list(_t(2), [1.0, 2.0]))
    assert c.splat_value() is None
    assert T.ConstantOp.splat(0.0, _t(4, 4)).splat_value() == 0.0


def test_inplace_and_view_metadata():
    blk = Block(arg_types=[_t(16, C), _t(DYN, C), IndexType(), _t(DYN, C)])
    cache, x, pos, y = blk.args
    w = T.KVWriteOp(cache, x, pos)
    assert w.inplace_operands() == {0: cache}
    acc = T.AccumulateOp(x, y)
    assert acc.inplace_operands() == {0: x}
    assert T.MatmulOp(x, cache, transpose_b=True).inplace_operands() == {}
    assert T.ReshapeOp.VIEW_OF == "x" and T.LastRowsOp.VIEW_OF == "x"
    assert T.TransposeOp.VIEW_OF is None
    rs = T.ReshapeOp(x, _t(DYN, 8, 8))
    assert rs.prop_values() == {}
    rope = T.RopeOp(x, pos, heads=2, head_dim=32)
    assert rope.prop_values() == {"theta": 10000.0, "style": "neox", "heads": 2,
                                  "head_dim": 32, "rotary_dim": None, "seq_len": 0}


def test_generic_constructor_rules():
    """One constructor for every op: operands positional (optional ones also
    by name), properties by name; every property is stored, in definition
    order, with its default when not given; misuse is a TypeError."""
    blk = Block(arg_types=[_t(DYN, C), _t(2 * C, C), _t(2 * C), IndexType()])
    x, w, b, pos = blk.args
    by_pos = T.MatmulOp(x, w, b, transpose_b=True)
    by_name = T.MatmulOp(x, w, bias=b, transpose_b=True)
    assert by_pos.bias is b and by_name.bias is b
    rope = T.RopeOp(x, pos, seq_len=0, head_dim=16, heads=4)  # any keyword order
    assert list(rope.properties) == ["heads", "head_dim", "theta", "style", "seq_len"]
    nw = T.WeightOp("w", (C,)).result
    assert T.LayerNormOp(x, nw).prop_values()["eps"] == pytest.approx(1e-5)  # PY_DEFAULTS
    assert T.RMSNormOp(x, nw).prop_values()["eps"] == pytest.approx(1e-6)
    with pytest.raises(TypeError, match="no property transpose_c"):
        T.MatmulOp(x, w, transpose_c=True)
    with pytest.raises(TypeError, match="operand 'b' is required"):
        T.MatmulOp(x)
    with pytest.raises(TypeError, match="property 'heads' is required"):
        T.RopeOp(x, pos, head_dim=16)
    with pytest.raises(TypeError, match="4 operands given"):
        T.SiluOp(x, x, x, x)


def test_optional_operands_spelled_by_name_in_definition_order():
    """The shared syntax (dialects/_syntax.py): `, <name> %v` after the
    required operands, in definition order; other orders are errors."""
    src = """
    func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index, %b: tensor<64xf32>) {
      %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p, bk %b, bv %b {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
      func.return
    }
    """
    module = Parser(_ctx(), src).parse_module()
    module.verify()
    assert ", bk %b, bv %b {" in str(module)
    with pytest.raises(Exception, match="repeated or out of order"):
        Parser(_ctx(), src.replace("bk %b, bv %b", "bv %b, bk %b")).parse_module()
