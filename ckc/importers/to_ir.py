"""ModelConfig -> transformer-dialect module.

    from ckc.importers import load_model
    from ckc.importers.to_ir import build_module
    cfg, weights = load_model("model.gguf")
    module = build_module(cfg, weights)      # @forward(tokens) -> logits, @train_step(tokens, targets) -> loss

The module carries ``#transformer.config`` (from :func:`config_attr`) and one
``transformer.weight`` op per tensor, named canonically; the graph itself is
``ckc.importers.build_ir.build_model``.
"""

from __future__ import annotations

from .common import ModelImportError, WeightStore
from .config import ModelConfig

# ModelConfig.rope_scaling values the transformer dialect can express
_DIALECT_SCALINGS = ("none", "linear", "llama3")


def config_fields(cfg: ModelConfig) -> dict:
    """The ``#transformer.config`` fields of ``cfg``."""
    if cfg.rope_scaling not in _DIALECT_SCALINGS:
        raise ModelImportError(cfg.name or cfg.arch, f"unsupported rope scaling '{cfg.rope_scaling}'")
    local = [i for i, b in enumerate(cfg.local_layers) if b] if cfg.sliding_window else []
    return dict(
        arch=cfg.arch,
        vocab=cfg.vocab_size,
        hidden=cfg.hidden,
        layers=cfg.n_layers,
        heads=cfg.n_heads,
        kv_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        ffn=cfg.ffn,
        context=cfg.max_context,
        norm={"rmsnorm": "rms", "layernorm": "layer"}[cfg.norm],
        norm_eps=cfg.norm_eps,
        norm_offset=0.0,  # importers fold Gemma's (1 + w) into the weights
        norm_bias=cfg.norm == "layernorm",
        post_norms=cfg.post_norms,
        mlp=cfg.mlp,
        act=cfg.activation,
        mlp_bias=cfg.mlp_bias,
        qkv_bias=cfg.qkv_bias,
        o_bias=cfg.out_bias,
        qk_norm=cfg.qk_norm,
        attn_scale=cfg.attn_scale,
        final_softcap=cfg.final_logit_softcap or 0.0,
        rope_style=cfg.rope_style,
        rope_theta=cfg.rope_theta,
        rotary_dim=cfg.rope_dim or cfg.head_dim,
        rope_scaling=cfg.rope_scaling,
        rope_factor=cfg.rope_scaling_factor,
        rope_low_freq_factor=cfg.rope_low_freq_factor,
        rope_high_freq_factor=cfg.rope_high_freq_factor,
        rope_original_context=cfg.rope_scaling_orig_context,
        rope_local_theta=cfg.rope_theta_local if cfg.rope_theta_local is not None else cfg.rope_theta,
        # Gemma3 scales only its global layers (HF's sliding_attention rope is
        # "default"; llama.cpp's freq_scale_swa is 1)
        rope_local_scaling=cfg.rope_theta_local is None,
        learned_pos=cfg.positional == "learned",
        embed_scale=cfg.embed_scale,
        tied_embeddings=cfg.tied_embeddings,
        sliding_window=cfg.sliding_window or 0,
        sliding_layers=local,
        bos=-1 if cfg.bos_token_id is None else int(cfg.bos_token_id),
        eos=-1 if cfg.eos_token_id is None else int(cfg.eos_token_id),
    )


def config_attr(cfg: ModelConfig):
    from ckc.dialects.transformer import ConfigAttr

    return ConfigAttr(**config_fields(cfg))


def build_module(cfg: ModelConfig, weights: WeightStore | None = None, *, train: bool = True):
    """``@forward`` (and with ``train`` ``@train_step``) for ``cfg``, verified.

    With ``weights``, every weight op's tensor must exist in the store with
    the op's shape (a one-line ModelImportError otherwise).
    """
    from .build_ir import build_model, weight_shapes

    attr = config_attr(cfg)
    if weights is not None:
        for name, shape in weight_shapes(attr, fused_qkv=cfg.fused_qkv).items():
            if name not in weights:
                raise ModelImportError(weights.path, f"tensor '{name}' missing")
            if tuple(weights.shape(name)) != tuple(shape):
                raise ModelImportError(
                    weights.path, f"tensor '{name}' has shape {list(weights.shape(name))}, expected {list(shape)}"
                )
    # the weights' element types: a GGUF's Linear/embedding weights as stored
    # (WeightStore.format); training (train=True) reads fp32
    formats = weights.formats() if weights is not None and not train else None
    module = build_model(attr, train=train, fused_qkv=cfg.fused_qkv, formats=formats)
    module.verify()
    return module


def import_module(path, *, rope_style: str | None = None, train: bool = True):
    """``load_model(path)`` then :func:`build_module`: (module, config, weights)."""
    from . import load_model

    cfg, weights = load_model(path, rope_style=rope_style)
    return build_module(cfg, weights, train=train), cfg, weights
