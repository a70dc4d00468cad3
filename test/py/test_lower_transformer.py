"""lower-transformer: structure of the tensorop functions for every family, and
their numbers against Hugging Face transformers through the tensorop reference
interpreter (ckc/interpreters/tensorop.py).

Numerical tolerance: max |logit difference| <= 1e-4 against transformers in
fp32 (both sides compute in fp32 with the same formulas; observed ~3e-6), and
the same cross-entropy loss within 1e-4.
"""

from __future__ import annotations

from collections import Counter

import pytest
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IndexType, ModuleOp, TensorType

from ckc import modelzoo
from ckc.dialects import tensorop as T
from ckc.dialects import transformer as TF
from ckc.importers import build_ir
from ckc.importers.hf import config_from_hf
from ckc.importers.to_ir import build_module
from ckc.passes.lower_transformer import LowerTransformer, LowerTransformerError

DYN = T.DYN


def family_module(family: str, train: bool = True) -> ModuleOp:
    """The transformer-dialect module of a tiny `family` model (config only)."""
    cfg = config_from_hf("config.json", modelzoo.hf_config(family).to_dict())
    return build_module(cfg, train=train)


def lowered(family: str, **options) -> tuple[ModuleOp, dict[str, func.FuncOp], TF.ConfigAttr]:
    m = family_module(family)
    LowerTransformer(**options).apply(Context(), m)
    m.verify()
    funcs = {f.sym_name.data: f for f in m.ops if isinstance(f, func.FuncOp)}
    return m, funcs, m.attributes[TF.CONFIG_KEY]


def ops_of(f: func.FuncOp) -> Counter:
    return Counter(op.name for op in f.body.block.ops)


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_every_family_lowers(family):
    m, funcs, cfg = lowered(family)
    assert set(funcs) == {"prefill", "prefill_all", "decode", "train_step"}
    assert not any(op.dialect_name() == "transformer" for op in m.walk())
    L, kvd = cfg.layers, cfg.kv_heads * cfg.head_dim
    cache = TensorType(T.f32, [cfg.context, kvd])
    for mode in ("prefill", "prefill_all", "decode"):
        f = funcs[mode]
        ins, outs = f.function_type.inputs.data, f.function_type.outputs.data
        # tokens, pos, then K and V per layer; results: logits then the new caches
        assert isinstance(ins[1], IndexType)
        assert list(ins[2:]) == [cache] * (2 * L)
        assert list(outs[1:]) == [cache] * (2 * L)
        rows = {"prefill": 1, "prefill_all": DYN, "decode": 1}[mode]
        assert outs[0] == TensorType(T.f32, [rows, cfg.vocab])
        n = ops_of(f)
        # whole-tensor ops: a fixed number per layer, independent of the head count
        assert n["tensorop.kv_write"] == 2 * L
        assert n["tensorop.causal_attention"] == L
        assert n["tensorop.rope"] == (0 if cfg.rope_style == "none" else 2 * L)
        per_layer_mm = 4 + (2 if cfg.mlp == "gelu" else 3)
        assert n["tensorop.matmul"] == per_layer_mm * L + 1
        assert n["tensorop.last_rows"] == (1 if mode == "prefill" else 0)
        ret = f.body.block.last_op
        assert isinstance(ret, func.ReturnOp)
        # each returned cache is the kv_write chain of the matching argument
        for i, v in enumerate(ret.arguments[1:]):
            assert isinstance(v.owner, T.KVWriteOp)
            assert v.owner.cache is f.body.block.args[2 + i]
        for op in f.body.block.ops:
            if isinstance(op, T.CausalAttentionOp):
                assert op.pos is f.body.block.args[1]
        if mode == "decode":  # one token: every tensor static
            for op in f.walk():
                for r in op.results:
                    if isinstance(r.type, TensorType):
                        assert DYN not in r.type.get_shape(), op
    tr = funcs["train_step"]
    n = ops_of(tr)
    assert n["tensorop.kv_write"] == 0 and n["tensorop.cross_entropy"] == 1
    assert all(op.pos is None for op in tr.body.block.ops if isinstance(op, T.CausalAttentionOp))
    assert tr.function_type.outputs.data[0] == TensorType(T.f32, [])


def _attn(f: func.FuncOp) -> list[T.CausalAttentionOp]:
    return [op for op in f.body.block.ops if isinstance(op, T.CausalAttentionOp)]


def test_family_features():
    # Qwen3: per-head QK-norm (a [head_dim] weight on the whole [T, heads*head_dim] q)
    _, funcs, cfg = lowered("qwen3")
    norms = [op for op in funcs["prefill"].body.block.ops if isinstance(op, T.RMSNormOp)]
    qk = [op for op in norms if op.w.type.get_shape() == (cfg.head_dim,)]
    assert len(qk) == 2 * cfg.layers
    # Qwen2: q/k/v biases
    _, funcs, cfg = lowered("qwen2")
    biased = [op for op in funcs["decode"].body.block.ops if isinstance(op, T.MatmulOp) and op.bias is not None]
    assert len(biased) == 3 * cfg.layers
    # Gemma: embedding scale sqrt(hidden), GeGLU tanh
    _, funcs, cfg = lowered("gemma")
    emb = next(op for op in funcs["prefill"].body.block.ops if isinstance(op, T.EmbeddingOp))
    assert emb.prop_values()["scale"] == pytest.approx(cfg.hidden ** 0.5)
    geglu = [op for op in funcs["prefill"].body.block.ops if isinstance(op, T.GegluOp)]
    assert len(geglu) == cfg.layers and all(op.prop_values()["approximate"] == "tanh" for op in geglu)
    # Gemma3: per layer window and RoPE theta, post-norms, query_pre_attn_scalar scale
    _, funcs, cfg = lowered("gemma3")
    f = funcs["prefill"]
    attn = _attn(f)
    assert [a.prop_values()["window"] for a in attn] == [cfg.layer_window(i) for i in range(cfg.layers)]
    assert {a.prop_values()["window"] for a in attn} == {0, cfg.sliding_window}
    ropes = [op for op in f.body.block.ops if isinstance(op, T.RopeOp)]
    thetas = [r.prop_values()["theta"] for r in ropes[::2]]
    assert thetas == pytest.approx([cfg.layer_rope_theta(i) for i in range(cfg.layers)])
    assert len(set(thetas)) == 2
    assert all(a.prop_values()["scale"] == pytest.approx(cfg.attn_scale) for a in attn)
    n = ops_of(f)
    assert n["tensorop.rmsnorm"] == cfg.layers * (4 + 2) + 1  # 2 pre + 2 post + q/k norms, final
    # GPT-2: learned positions, LayerNorm with bias, GELU, fused qkv read as row slices
    _, funcs, cfg = lowered("gpt2")
    f = funcs["prefill_all"]
    n = ops_of(f)
    assert n["tensorop.positions"] == 1 and n["tensorop.layernorm"] == 2 * cfg.layers + 1
    assert n["tensorop.gelu"] == cfg.layers and n["tensorop.rope"] == 0
    qkv = sorted(
        (op.offset.value.data, op.result.type.get_shape()[0])
        for op in f.body.block.ops
        if isinstance(op, T.WeightOp) and op.tensor_name.data == "blk.0.attn_qkv.weight"
    )
    q = cfg.heads * cfg.head_dim
    assert qkv == [(0, q), (q, q), (2 * q, q)]


def test_modes_and_context_options():
    m, funcs, cfg = lowered("llama", modes=("decode",), context=16)
    assert set(funcs) == {"decode"}
    assert funcs["decode"].function_type.inputs.data[2] == TensorType(T.f32, [16, cfg.kv_heads * cfg.head_dim])
    # a model without @train_step simply gets no train_step
    m = family_module("llama", train=False)
    LowerTransformer().apply(Context(), m)
    assert {f.sym_name.data for f in m.ops if isinstance(f, func.FuncOp)} == {"prefill", "prefill_all", "decode"}


def test_rope_scaling_table():
    cfg = TF.ConfigAttr(arch="llama", vocab=32, hidden=64, layers=1, heads=2, ffn=32, context=64,
                        rope_theta=500000.0, rope_scaling="llama3", rope_factor=8.0, rope_low_freq_factor=1.0,
                        rope_high_freq_factor=4.0, rope_original_context=16)
    m = build_ir.build_model(cfg)
    LowerTransformer(modes=("decode",)).apply(Context(), m)
    m.verify()
    f = next(f for f in m.ops if isinstance(f, func.FuncOp))
    ropes = [op for op in f.body.block.ops if isinstance(op, T.RopeOp)]
    assert len(ropes) == 2 and ropes[0].inv_freq is ropes[1].inv_freq is not None
    table = list(ropes[0].inv_freq.owner.value.get_values())
    assert table == pytest.approx(T.rope_inv_freq(32, 500000.0, "llama3", 8.0, 1.0, 4.0, 16))


def test_errors_are_one_line():
    m = family_module("llama")
    del m.attributes[TF.CONFIG_KEY]
    with pytest.raises(LowerTransformerError, match="no #transformer.config"):
        LowerTransformer().apply(Context(), m)
    m = family_module("llama")
    with pytest.raises(LowerTransformerError, match="unknown mode 'generate'"):
        LowerTransformer(modes=("generate",)).apply(Context(), m)
    m = ModuleOp([])
    m.attributes[TF.CONFIG_KEY] = family_module("llama").attributes[TF.CONFIG_KEY]
    with pytest.raises(LowerTransformerError, match="no func.func @forward"):
        LowerTransformer().apply(Context(), m)


def test_ckc_opt_reports_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path / "m.mlir"
    src.write_text('builtin.module {\n  func.func @forward(%t: tensor<?xi32>) {\n    func.return\n  }\n}\n')
    opt = Path(sys.executable).parent / "ckc-opt"
    r = subprocess.run([str(opt), str(src), "-p", "lower-transformer"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "no #transformer.config" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_numbers_match_transformers(family):
    """prefill_all (7 tokens) -> prefill (3 more, last row) -> 2 decode steps
    through the KV caches, and train_step's loss, against transformers."""
    import torch  # a pinned test dependency: missing is a failure, not a skip
    from ckc.interpreters.tensorop import evaluate
    from ckc.importers import load_model

    cfg, ws = load_model(modelzoo.hf_dir(family))
    m = build_module(cfg, ws)
    ctx = 32
    LowerTransformer(context=ctx).apply(Context(), m)
    funcs = {f.sym_name.data: f for f in m.ops if isinstance(f, func.FuncOp)}
    weights = {n: torch.tensor(ws[n]) for n in ws}
    hf = modelzoo.torch_model(family)
    g = torch.Generator().manual_seed(1)
    toks = torch.randint(0, cfg.vocab_size, (12,), generator=g, dtype=torch.int32)
    with torch.no_grad():
        ref = hf(toks[None].long()).logits[0]
    kvd = cfg.n_kv_heads * cfg.head_dim
    caches = [torch.zeros(ctx, kvd) for _ in range(2 * cfg.n_layers)]
    out = evaluate(funcs["prefill_all"], [toks[:7], 0, *caches], weights)
    assert (out[0] - ref[:7]).abs().max().item() <= 1e-4
    out = evaluate(funcs["prefill"], [toks[7:10], 7, *out[1:]], weights)
    assert out[0].shape == (1, cfg.vocab_size)
    assert (out[0][0] - ref[9]).abs().max().item() <= 1e-4
    caches = out[1:]
    for i in (10, 11):
        out = evaluate(funcs["decode"], [toks[i : i + 1], i, *caches], weights)
        assert (out[0][0] - ref[i]).abs().max().item() <= 1e-4
        assert out[0][0].argmax() == ref[i].argmax()
        caches = out[1:]
    (loss,) = evaluate(funcs["train_step"], [toks[:11], toks[1:12]], weights)
    expect = torch.nn.functional.cross_entropy(ref[:11], toks[1:12].long()).item()
    assert abs(loss.item() - expect) <= 1e-4
