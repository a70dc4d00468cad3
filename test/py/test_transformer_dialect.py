"""The transformer dialect from Python: #transformer.config, the op constructors,
the reference builder (build_model / weight_shapes) and verify-shapes.

The parameter inventory of build_model is checked against real (tiny, random)
transformers models of all six families: same number of tensors per kind and
the same total parameter count.
"""

from __future__ import annotations

import math

import pytest
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.printer import Printer

from ckc.dialects.transformer import (
    ConfigAttr,
    EmbeddingOp,
    MlpOp,
    WeightOp,
)
from ckc.importers.build_ir import build_model, weight_shapes
from ckc.passes.verify_shapes import ShapeMismatch, VerifyShapesPass
from ckc.universe import make_context

# Small configs of the six families, as transformers would configure them.
FAMILIES = {
    "llama": dict(arch="llama", vocab=128, hidden=64, layers=2, heads=4, kv_heads=2, ffn=160, context=256,
                  norm_eps=1e-5, rope_theta=10000.0),
    "qwen2": dict(arch="qwen2", vocab=128, hidden=64, layers=2, heads=4, kv_heads=2, ffn=160, context=256,
                  norm_eps=1e-6, rope_theta=1e6, qkv_bias=True),
    "qwen3": dict(arch="qwen3", vocab=128, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=32, ffn=160,
                  context=256, norm_eps=1e-6, rope_theta=1e6, qk_norm=True),
    "gemma": dict(arch="gemma", vocab=128, hidden=64, layers=2, heads=4, kv_heads=1, head_dim=32, ffn=160,
                  context=256, norm_eps=1e-6, mlp="geglu", embed_scale=8.0, tied_embeddings=True),
    "gemma3": dict(arch="gemma3", vocab=128, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=32, ffn=160,
                   context=256, norm_eps=1e-6, mlp="geglu", qk_norm=True, post_norms=True,
                   attn_scale=32 ** -0.5, rope_theta=1e6, rope_local_theta=1e4, embed_scale=8.0,
                   tied_embeddings=True, sliding_window=16, sliding_layers=[0]),
    "gpt2": dict(arch="gpt2", vocab=96, hidden=48, layers=2, heads=4, ffn=192, context=64, norm="layer",
                 mlp="gelu", rope_style="none", learned_pos=True, tied_embeddings=True, qkv_bias=True,
                 o_bias=True, mlp_bias=True),
}


def _print(module: ModuleOp, generic: bool = False) -> str:
    import io

    out = io.StringIO()
    Printer(stream=out, print_generic_format=generic).print_op(module)
    return out.getvalue()


def _parse(text: str) -> ModuleOp:
    return Parser(make_context(), text).parse_module()


# -- #transformer.config ---------------------------------------------------------


def test_config_defaults_are_derived():
    cfg = ConfigAttr(arch="llama", vocab=10, hidden=64, layers=1, heads=8, ffn=100, context=32)
    assert cfg.kv_heads == 8 and cfg.head_dim == 8
    assert cfg.attn_scale == 8 ** -0.5
    assert cfg.rotary_dim == 8 and cfg.act == "silu" and cfg.norm_bias is False
    assert cfg["rope_local_theta"] == cfg.rope_theta == 10000.0
    layer = ConfigAttr(arch="gpt2", vocab=10, hidden=64, layers=1, heads=8, ffn=100, context=32,
                       norm="layer", mlp="gelu")
    assert layer.norm_bias is True and layer.act == "gelu_tanh"
    assert cfg.replace(ffn=200).ffn == 200


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(vocab=10, hidden=64, layers=1, heads=8, ffn=1), "missing required field 'arch'"),
        (dict(arch="x", vocab=10, hidden=64, layers=1, heads=8, ffn=1, context=4, rope="x"),
         "unknown #transformer.config field 'rope'"),
        (dict(arch="x", vocab="10", hidden=64, layers=1, heads=8, ffn=1, context=4), "must be an integer"),
    ],
)
def test_config_bad_python_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConfigAttr(**kwargs)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_config_text_round_trip_is_exact(family):
    cfg = ConfigAttr(**FAMILIES[family])
    module = ModuleOp([])
    module.attributes["transformer.config"] = cfg
    again = _parse(_print(module)).attributes["transformer.config"]
    assert again == cfg
    assert again.attn_scale == cfg.attn_scale  # floats survive text bit-exactly


def test_config_per_layer_queries():
    cfg = ConfigAttr(**FAMILIES["gemma3"])
    assert cfg.is_sliding(0) and not cfg.is_sliding(1)
    assert cfg.layer_window(0) == 16 and cfg.layer_window(1) == 0
    assert cfg.layer_rope_theta(0) == 1e4 and cfg.layer_rope_theta(1) == 1e6
    gpt = ConfigAttr(**FAMILIES["gpt2"], scale_by_inverse_layer=True)
    assert math.isclose(gpt.layer_attn_scale(1), 12 ** -0.5 / 2)


# -- builder, verifiers, printing -------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("fused_qkv", [False, True])
def test_build_model_verifies_round_trips_and_passes_verify_shapes(family, fused_qkv):
    module = build_model(ConfigAttr(**FAMILIES[family]), train=True, fused_qkv=fused_qkv)
    module.verify()
    VerifyShapesPass().apply(Context(), module)
    text = _print(module)
    assert _print(_parse(text)) == text
    assert _print(_parse(_print(module, generic=True))) == text
    names = [op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)]
    assert names == ["forward", "train_step"]
    # one op per layer per kind, never per head
    kinds = [op.name for op in module.walk()]
    assert kinds.count("transformer.attention") == 2 * FAMILIES[family]["layers"]
    assert kinds.count("transformer.mlp") == 2 * FAMILIES[family]["layers"]


def test_verify_shapes_names_the_first_disagreeing_op():
    module = build_model(ConfigAttr(**FAMILIES["llama"]))
    module.attributes["transformer.config"] = ConfigAttr(**{**FAMILIES["llama"], "ffn": 192})
    with pytest.raises(ShapeMismatch) as info:
        VerifyShapesPass().apply(Context(), module)
    assert isinstance(info.value.op, MlpOp)
    assert str(info.value) == "gate has shape [160, 64], expected [ffn, hidden] = [192, 64] by #transformer.config"


def test_constructors_infer_result_types():
    from xdsl.dialects.builtin import TensorType, i32

    from ckc.dialects.transformer import DYNAMIC
    from xdsl.ir import Block

    block = Block(arg_types=[TensorType(i32, [DYNAMIC])])
    table = WeightOp("token_embd.weight", [100, 32])
    emb = EmbeddingOp(block.args[0], table, scale=2.0)
    assert emb.result.type == TensorType(table.result.type.element_type, [DYNAMIC, 32])
    block.add_ops([table, emb])
    emb.verify()


# -- the parameter inventory agrees with transformers -----------------------------


def _hf_model(family: str):
    import torch  # a pinned test dependency: missing is a failure, not a skip
    import transformers
    torch.manual_seed(0)
    f = FAMILIES[family]
    common = dict(vocab_size=f["vocab"], hidden_size=f["hidden"], num_hidden_layers=f["layers"],
                  num_attention_heads=f["heads"], max_position_embeddings=f["context"])
    if family == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=f["vocab"], n_embd=f["hidden"], n_layer=f["layers"],
                                      n_head=f["heads"], n_inner=f["ffn"], n_positions=f["context"])
        return transformers.GPT2LMHeadModel(cfg)
    common.update(num_key_value_heads=f["kv_heads"], intermediate_size=f["ffn"])
    if "head_dim" in f:
        common["head_dim"] = f["head_dim"]
    if family == "llama":
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(**common, tie_word_embeddings=False))
    if family == "qwen2":
        return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common, tie_word_embeddings=False))
    if family == "qwen3":
        return transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**common, tie_word_embeddings=False))
    if family == "gemma":
        return transformers.GemmaForCausalLM(transformers.GemmaConfig(**common))
    if family == "gemma3":
        cfg = transformers.Gemma3TextConfig(**common, sliding_window=16, sliding_window_pattern=2)
        return transformers.Gemma3ForCausalLM(cfg)
    raise AssertionError(family)


# HF parameter-name fragments -> GGUF tensor kinds (llama.cpp's tensor map).
_HF_KIND = [
    ("embed_tokens", "token_embd"), ("wte", "token_embd"), ("wpe", "position_embd"),
    ("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"), ("o_proj", "attn_output"),
    ("c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"), ("q_norm", "attn_q_norm"),
    ("k_norm", "attn_k_norm"), ("input_layernorm", "attn_norm"), ("ln_1", "attn_norm"),
    ("post_attention_layernorm", "*post_attention"), ("pre_feedforward_layernorm", "ffn_norm"),
    ("post_feedforward_layernorm", "post_ffw_norm"), ("ln_2", "ffn_norm"), ("gate_proj", "ffn_gate"),
    ("up_proj", "ffn_up"), ("c_fc", "ffn_up"), ("down_proj", "ffn_down"), ("mlp.c_proj", "ffn_down"),
    ("model.norm", "output_norm"), ("ln_f", "output_norm"), ("lm_head", "output"),
]


def _hf_inventory(family: str) -> tuple[dict[str, int], int]:
    model = _hf_model(family)
    kinds: dict[str, int] = {}
    total = 0
    for name, p in model.named_parameters():  # tied tensors appear once
        kind = next(k for frag, k in _HF_KIND if frag in name)
        if kind == "*post_attention":
            # Llama-style models call their pre-MLP norm post_attention_layernorm;
            # Gemma3 uses it for the real post-attention norm.
            kind = "post_attention_norm" if family == "gemma3" else "ffn_norm"
        suffix = name.rsplit(".", 1)[1]
        key = f"{kind}.{suffix}"
        kinds[key] = kinds.get(key, 0) + 1
        total += p.numel()
    return kinds, total


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_weight_inventory_matches_transformers(family):
    hf_kinds, hf_total = _hf_inventory(family)
    shapes = weight_shapes(ConfigAttr(**FAMILIES[family]), fused_qkv=(family == "gpt2"))
    kinds: dict[str, int] = {}
    for name in shapes:
        parts = name.split(".")
        key = f"{parts[-2]}.{parts[-1]}"
        kinds[key] = kinds.get(key, 0) + 1
    assert kinds == hf_kinds
    assert sum(math.prod(s) for s in shapes.values()) == hf_total


# -- every op's docstring example parses and verifies ----------------------------


def _example_module(doc: str) -> str:
    """Wrap a docstring's ```mlir example: values it uses but does not define
    come from one "test.op" (types read from each op's trailing type list)."""
    import re

    body = doc.split("```mlir", 1)[1].split("```", 1)[0]
    stmts = [" ".join(s.split()) for s in re.split(r"(?=%\w+ = transformer\.)", " ".join(body.split()))]
    stmts = [s for s in stmts if s]
    defined: set[str] = set()
    needed: dict[str, str] = {}
    for stmt in stmts:
        result, rest = stmt.split(" = ", 1)
        head = rest.split(" {", 1)[0].split(" : ", 1)[0]
        uses = re.findall(r"%\w+", head)
        types_text = rest.rsplit(" : ", 1)[1]
        if types_text.startswith("("):
            inputs = types_text[1:].split(") ->", 1)[0]
            types = re.findall(r"tensor<[^>]*>", inputs)
        else:
            types = [types_text.strip()] * len(uses)
        assert len(types) == len(uses), stmt
        for use, ty in zip(uses, types):
            if use not in defined:
                needed.setdefault(use, ty)
        defined.add(result)
    lines = []
    if needed:
        names = ", ".join(needed)
        tys = ", ".join(needed.values())
        lines.append(f'{names} = "test.op"() : () -> ({tys})')
    lines += stmts
    return "\n".join(lines)


@pytest.mark.parametrize(
    "op",
    [pytest.param(op, id=op.name) for op in __import__("ckc.dialects.transformer", fromlist=["Transformer"]).Transformer.operations],
)
def test_docstring_example_parses_and_verifies(op):
    assert op.__doc__ and "```mlir" in op.__doc__, f"{op.name} has no textual example"
    text = _example_module(op.__doc__)
    module = _parse(text)
    module.verify()
    assert any(o.name == op.name for o in module.walk())


def test_config_docstring_example_parses():
    doc = ConfigAttr.__doc__
    example = " ".join(doc.split("::", 1)[1].split("\n\n", 2)[1].split())
    module = _parse(f"builtin.module attributes {{transformer.config = {example}}} {{}}")
    cfg = module.attributes["transformer.config"]
    assert cfg.arch == "llama" and cfg.kv_heads == 3 and cfg.tied_embeddings


# -- verify-shapes also holds after lowering to tensorop -------------------------

_VARIANTS = {
    **FAMILIES,
    "llama3-scaling": dict(FAMILIES["llama"], rope_scaling="llama3", rope_factor=8.0, rope_original_context=128),
    "gpt2-inverse-layer-scale": dict(FAMILIES["gpt2"], scale_by_inverse_layer=True),
    "gemma3-linear-global": dict(FAMILIES["gemma3"], rope_scaling="linear", rope_factor=8.0,
                                 rope_local_scaling=False),
}


@pytest.mark.parametrize("family", sorted(_VARIANTS))
def test_verify_shapes_accepts_lowered_models(family):
    from ckc.universe import load_pass

    try:
        lower = load_pass("lower_transformer")
    except ImportError:  # pragma: no cover - before lower-transformer exists
        pytest.skip("lower-transformer not available")
    module = build_model(ConfigAttr(**_VARIANTS[family]), train=True, fused_qkv=(family.startswith("gpt2")))
    lower().apply(Context(), module)
    module.verify()
    assert any(op.name.startswith("tensorop.") for op in module.walk())
    VerifyShapesPass().apply(Context(), module)
    # and a lowered op that disagrees is still caught
    module.attributes["transformer.config"] = ConfigAttr(**{**_VARIANTS[family], "norm_eps": 0.5})
    with pytest.raises(ShapeMismatch, match="eps is .* by #transformer.config norm_eps"):
        VerifyShapesPass().apply(Context(), module)


def test_verify_shapes_asks_ops_with_a_hook():
    from xdsl.irdl import IRDLOperation, irdl_op_definition
    from xdsl.utils.exceptions import VerifyException

    seen = []

    @irdl_op_definition
    class HookOp(IRDLOperation):
        name = "test.hook"

        def verify_shapes(self, config):
            seen.append(config.hidden)
            if config.hidden != 32:
                raise VerifyException("hidden must be 32 for this op")

    module = build_model(ConfigAttr(**FAMILIES["llama"]))
    hook = HookOp.create()
    module.body.block.add_op(hook)
    with pytest.raises(ShapeMismatch, match="hidden must be 32") as info:
        VerifyShapesPass().apply(Context(), module)
    assert info.value.op is hook and seen == [64]


def test_keyword_constructor_stores_every_property_in_definition_order():
    """transformer ops share one constructor (`_KeywordInit`): operands
    positionally or by name, Python values converted by the property's kind,
    defaults stored, unknown names refused."""
    from xdsl.dialects.builtin import TensorType, f32

    from ckc.dialects.transformer import DYNAMIC, AttentionOp
    from xdsl.ir import Block

    x = Block(arg_types=[TensorType(f32, [DYNAMIC, 64])]).args[0]
    wq, wkv, wo = (WeightOp(n, s).result for n, s in (("q", [64, 64]), ("kv", [32, 64]), ("o", [64, 64])))
    a = AttentionOp(x, wq, wkv, wkv, wo, heads=4, kv_heads=2, head_dim=16, layer=0, rotary_dim=8, causal=False)
    assert list(a.properties)[-2:] == ["rotary_dim", "operandSegmentSizes"]
    assert a.scale.value.data == 0.25 and a.causal.value.data == 0 and a.rope_style.data == "neox"
    m = MlpOp(x, kind="gelu", down=wo, up=wq)  # required operands by name
    assert m.up is wq and m.down is wo and m.result.type == x.type
    with pytest.raises(TypeError, match="no property heads"):
        MlpOp(x, wq, wo, kind="gelu", heads=4)
