"""The transformer-dialect model a ``#transformer.config`` describes: its
weight inventory (:func:`weight_shapes`) and its graph (:func:`build_model`),
what ``ckc.importers.to_ir`` builds for every imported model.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DYNAMIC_INDEX as DYNAMIC
from xdsl.dialects.builtin import IntegerType, TensorType
from xdsl.ir import Operation, SSAValue

from ckc.dialects import transformer as TF

def weight_shapes(config: TF.ConfigAttr, *, fused_qkv: bool = False) -> dict[str, tuple[int, ...]]:
    """Every parameter tensor of the model `config` describes, by canonical
    GGUF name, with its stored shape (linear weights ``[out, in]``), in
    build order. ``fused_qkv`` stores GPT-2 style ``blk.N.attn_qkv.weight``
    ``[q + 2 kv, C]`` (and ``.bias``) instead of separate q/k/v tensors."""
    c = config.to_dict()
    h, f, d = c["hidden"], c["ffn"], c["head_dim"]
    q, kv = c["heads"] * d, c["kv_heads"] * d
    out: dict[str, tuple[int, ...]] = {"token_embd.weight": (c["vocab"], h)}
    if c["learned_pos"]:
        out["position_embd.weight"] = (c["context"], h)

    def norm(prefix: str) -> None:
        out[f"{prefix}.weight"] = (h,)
        if c["norm_bias"]:
            out[f"{prefix}.bias"] = (h,)

    for i in range(c["layers"]):
        b = f"blk.{i}"
        norm(f"{b}.attn_norm")
        if fused_qkv:
            out[f"{b}.attn_qkv.weight"] = (q + 2 * kv, h)
            if c["qkv_bias"]:
                out[f"{b}.attn_qkv.bias"] = (q + 2 * kv,)
        else:
            out[f"{b}.attn_q.weight"] = (q, h)
            out[f"{b}.attn_k.weight"] = (kv, h)
            out[f"{b}.attn_v.weight"] = (kv, h)
            if c["qkv_bias"]:
                out[f"{b}.attn_q.bias"] = (q,)
                out[f"{b}.attn_k.bias"] = (kv,)
                out[f"{b}.attn_v.bias"] = (kv,)
        out[f"{b}.attn_output.weight"] = (h, q)
        if c["o_bias"]:
            out[f"{b}.attn_output.bias"] = (h,)
        if c["qk_norm"]:
            out[f"{b}.attn_q_norm.weight"] = (d,)
            out[f"{b}.attn_k_norm.weight"] = (d,)
        if c["post_norms"]:
            norm(f"{b}.post_attention_norm")
        norm(f"{b}.ffn_norm")
        if c["mlp"] != "gelu":
            out[f"{b}.ffn_gate.weight"] = (f, h)
        out[f"{b}.ffn_up.weight"] = (f, h)
        out[f"{b}.ffn_down.weight"] = (h, f)
        if c["mlp_bias"]:
            if c["mlp"] != "gelu":
                out[f"{b}.ffn_gate.bias"] = (f,)
            out[f"{b}.ffn_up.bias"] = (f,)
            out[f"{b}.ffn_down.bias"] = (h,)
        if c["post_norms"]:
            norm(f"{b}.post_ffw_norm")
    norm("output_norm")
    if not c["tied_embeddings"]:
        out["output.weight"] = (c["vocab"], h)
    return out


def build_forward_ops(
    config: TF.ConfigAttr, tokens: SSAValue, *, fused_qkv: bool = False, formats: dict[str, str] | None = None
) -> tuple[list[Operation], SSAValue]:
    """The ops of one forward pass over `tokens` (``tensor<?xi32>``), weights
    included, and the logits value ``[T, vocab]``. Layers are unrolled, one op
    per layer per kind, in the order of the Hugging Face modeling code:

        x = embedding(tokens) (* embed_scale, + positions)
        per layer: h = norm(x); a = attention(h) [; a = norm(a) post-norm]
                   r = x + a; g = norm(r); m = mlp(g) [; m = norm(m)]; x = r + m
        logits = lm_head(norm(x))

    ``formats`` (tensor name -> "q4_1", "f16", ...; default "f32") gives each
    weight its element type (dialects/quant.py): a GGUF's weights as stored.
    """
    from ckc.dialects import quant

    formats = formats or {}
    c = config.to_dict()
    ops: list[Operation] = []
    weights: dict[tuple[str, int, tuple[int, ...]], SSAValue] = {}

    def w(name: str, shape: Sequence[int], offset: int = 0) -> SSAValue:
        key = (name, offset, tuple(shape))
        if key not in weights:
            op = TF.WeightOp(name, list(shape), quant.element_type(formats.get(name, "f32")), offset=offset)
            ops.append(op)
            weights[key] = op.result
        return weights[key]

    def add(op: Operation) -> SSAValue:
        ops.append(op)
        return op.results[0]

    h, f, d = c["hidden"], c["ffn"], c["head_dim"]
    q, kv = c["heads"] * d, c["kv_heads"] * d

    def norm(x: SSAValue, prefix: str) -> SSAValue:
        weight = w(f"{prefix}.weight", [h])
        bias = w(f"{prefix}.bias", [h]) if c["norm_bias"] else None
        return add(TF.NormOp(x, weight, kind=c["norm"], eps=c["norm_eps"], offset=c["norm_offset"], bias=bias))

    emb = w("token_embd.weight", [c["vocab"], h])
    pos = w("position_embd.weight", [c["context"], h]) if c["learned_pos"] else None
    x = add(TF.EmbeddingOp(tokens, emb, pos, scale=c["embed_scale"]))
    for i in range(c["layers"]):
        b = f"blk.{i}"
        hn = norm(x, f"{b}.attn_norm")
        if fused_qkv:
            name = f"{b}.attn_qkv"
            wq, wk, wv = w(f"{name}.weight", [q, h]), w(f"{name}.weight", [kv, h], q), w(f"{name}.weight", [kv, h], q + kv)
            if c["qkv_bias"]:
                bq, bk, bv = w(f"{name}.bias", [q]), w(f"{name}.bias", [kv], q), w(f"{name}.bias", [kv], q + kv)
            else:
                bq = bk = bv = None
        else:
            wq, wk, wv = w(f"{b}.attn_q.weight", [q, h]), w(f"{b}.attn_k.weight", [kv, h]), w(f"{b}.attn_v.weight", [kv, h])
            if c["qkv_bias"]:
                bq, bk, bv = w(f"{b}.attn_q.bias", [q]), w(f"{b}.attn_k.bias", [kv]), w(f"{b}.attn_v.bias", [kv])
            else:
                bq = bk = bv = None
        wo = w(f"{b}.attn_output.weight", [h, q])
        bo = w(f"{b}.attn_output.bias", [h]) if c["o_bias"] else None
        qn = w(f"{b}.attn_q_norm.weight", [d]) if c["qk_norm"] else None
        kn = w(f"{b}.attn_k_norm.weight", [d]) if c["qk_norm"] else None
        rope = c["rope_style"]
        scaling = config.layer_rope_scaling(i)
        a = add(
            TF.AttentionOp(
                hn, wq, wk, wv, wo,
                heads=c["heads"], kv_heads=c["kv_heads"], head_dim=d, layer=i,
                scale=config.layer_attn_scale(i), window=config.layer_window(i), softcap=c["attn_softcap"],
                rope_style=rope, rope_theta=config.layer_rope_theta(i) if rope != "none" else 10000.0,
                rotary_dim=(c["rotary_dim"] if c["rotary_dim"] != d else None) if rope != "none" else None,
                rope_scaling=scaling if rope != "none" else "none",
                rope_factor=c["rope_factor"] if scaling != "none" and rope != "none" else 1.0,
                rope_low_freq_factor=c["rope_low_freq_factor"] if scaling == "llama3" else 1.0,
                rope_high_freq_factor=c["rope_high_freq_factor"] if scaling == "llama3" else 4.0,
                rope_original_context=c["rope_original_context"] if scaling == "llama3" else 0,
                q_bias=bq, k_bias=bk, v_bias=bv, o_bias=bo, q_norm=qn, k_norm=kn,
                norm_eps=c["norm_eps"] if c["qk_norm"] else None,
                norm_offset=c["norm_offset"] if c["qk_norm"] else 0.0,
            )
        )
        if c["post_norms"]:
            a = norm(a, f"{b}.post_attention_norm")
        r = add(TF.ResidualOp(x, a))
        g = norm(r, f"{b}.ffn_norm")
        gated = c["mlp"] != "gelu"
        m = add(
            TF.MlpOp(
                g, kind=c["mlp"],
                up=w(f"{b}.ffn_up.weight", [f, h]), down=w(f"{b}.ffn_down.weight", [h, f]),
                gate=w(f"{b}.ffn_gate.weight", [f, h]) if gated else None,
                gate_bias=w(f"{b}.ffn_gate.bias", [f]) if gated and c["mlp_bias"] else None,
                up_bias=w(f"{b}.ffn_up.bias", [f]) if c["mlp_bias"] else None,
                down_bias=w(f"{b}.ffn_down.bias", [h]) if c["mlp_bias"] else None,
                approximate="none" if c["act"] == "gelu" else "tanh",
            )
        )
        if c["post_norms"]:
            m = norm(m, f"{b}.post_ffw_norm")
        x = add(TF.ResidualOp(r, m))
    xf = norm(x, "output_norm")
    head = emb if c["tied_embeddings"] else w("output.weight", [c["vocab"], h])
    logits = add(TF.LmHeadOp(xf, head, tied=c["tied_embeddings"], softcap=c["final_softcap"]))
    return ops, logits


def build_model(config: TF.ConfigAttr, *, train: bool = False, fused_qkv: bool = False,
                formats: dict[str, str] | None = None):
    """A module holding ``@forward(tokens: tensor<?xi32>) -> tensor<?xVxf32>``
    (and, with ``train``, ``@train_step(tokens, targets) -> tensor<f32>``, the
    same graph followed by ``cross_entropy``), with `config` attached as
    ``transformer.config``. The result verifies and passes verify-shapes."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp
    from xdsl.ir import Block, Region

    tok_ty = TensorType(IntegerType(32), [DYNAMIC])
    funcs = []
    block = Block(arg_types=[tok_ty])
    ops, logits = build_forward_ops(config, block.args[0], fused_qkv=fused_qkv, formats=formats)
    block.add_ops([*ops, func.ReturnOp(logits)])
    block.args[0].name_hint = "tokens"
    funcs.append(func.FuncOp("forward", ([tok_ty], [logits.type]), Region(block)))
    if train:
        block = Block(arg_types=[tok_ty, tok_ty])
        block.args[0].name_hint, block.args[1].name_hint = "tokens", "targets"
        ops, logits = build_forward_ops(config, block.args[0], fused_qkv=fused_qkv, formats=formats)
        loss = TF.CrossEntropyOp(logits, block.args[1])
        block.add_ops([*ops, loss, func.ReturnOp(loss.result)])
        funcs.append(func.FuncOp("train_step", ([tok_ty, tok_ty], [loss.result.type]), Region(block)))
    module = ModuleOp(funcs)
    module.attributes[TF.CONFIG_KEY] = config
    return module
