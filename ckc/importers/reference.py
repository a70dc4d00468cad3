"""A plain numpy forward pass driven only by ModelConfig + WeightStore.

It is the executable definition of what every ModelConfig field means (the
compiled model must compute the same thing), and the proof that the importers
capture every numeric detail: test/py/test_importers_reference.py checks it
against transformers for all six families, from the HF directory and from the
llama.cpp-converted GGUF (whose llama Q/K rows are in "interleaved" order).

    logits = forward(cfg, weights, tokens)     # [T, vocab], float64
"""

from __future__ import annotations

import math

import numpy as np

from .common import WeightStore
from .config import ModelConfig


def _norm(cfg: ModelConfig, w: WeightStore, x: np.ndarray, prefix: str) -> np.ndarray:
    g = w[f"{prefix}.weight"].astype(np.float64)
    if cfg.norm == "layernorm":
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg.norm_eps) * g + w[f"{prefix}.bias"]
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg.norm_eps) * g


def _rms_heads(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def inv_freq(cfg: ModelConfig, layer: int) -> np.ndarray:
    """Per-pair RoPE frequencies of ``layer`` (``rope_dim / 2`` values)."""
    rot = cfg.rope_dim
    theta = cfg.layer_rope_theta(layer)
    f = 1.0 / theta ** (np.arange(0, rot, 2, dtype=np.float64) / rot)
    scaled = not (cfg.is_local(layer) and cfg.rope_theta_local is not None)
    if cfg.rope_scaling == "linear" and scaled:
        f = f / cfg.rope_scaling_factor
    elif cfg.rope_scaling == "llama3" and scaled:
        factor, lo, hi = cfg.rope_scaling_factor, cfg.rope_low_freq_factor, cfg.rope_high_freq_factor
        old = cfg.rope_scaling_orig_context
        wavelen = 2 * math.pi / f
        low_wl, high_wl = old / lo, old / hi
        out = np.where(wavelen > low_wl, f / factor, f)
        smooth = (old / wavelen - lo) / (hi - lo)
        mid = (1 - smooth) * out / factor + smooth * out
        medium = (wavelen >= high_wl) & (wavelen <= low_wl)
        f = np.where(medium, mid, out)
    elif cfg.rope_scaling not in ("none",) and scaled:
        raise NotImplementedError(f"rope scaling '{cfg.rope_scaling}' in the reference")
    return f


def rope(cfg: ModelConfig, x: np.ndarray, pos: np.ndarray, layer: int) -> np.ndarray:
    """Rotate ``x`` [T, heads, head_dim] in place-free fashion per ``cfg.rope_style``."""
    if cfg.rope_style == "none":
        return x
    rot = cfg.rope_dim
    ang = pos[:, None].astype(np.float64) * inv_freq(cfg, layer)[None, :]  # [T, rot/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = x.copy()
    if cfg.rope_style == "neox":
        a, b = x[..., : rot // 2], x[..., rot // 2 : rot]
        out[..., : rot // 2] = a * cos - b * sin
        out[..., rot // 2 : rot] = b * cos + a * sin
    elif cfg.rope_style == "interleaved":
        a, b = x[..., 0:rot:2], x[..., 1:rot:2]
        out[..., 0:rot:2] = a * cos - b * sin
        out[..., 1:rot:2] = b * cos + a * sin
    else:
        raise ValueError(cfg.rope_style)
    return out


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _act(cfg: ModelConfig, x):
    if cfg.activation == "silu":
        return x / (1.0 + np.exp(-x))
    if cfg.activation == "gelu_tanh":
        return _gelu_tanh(x)
    if cfg.activation == "gelu":
        return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    raise ValueError(cfg.activation)


def _lin(w: WeightStore, x, name: str, bias: bool, rows: slice | None = None):
    W = w[f"{name}.weight"].astype(np.float64)
    b = w[f"{name}.bias"].astype(np.float64) if bias else None
    if rows is not None:
        W = W[rows]
        b = b[rows] if b is not None else None
    y = x @ W.T
    return y + b if b is not None else y


def forward(cfg: ModelConfig, w: WeightStore, tokens) -> np.ndarray:
    """Logits [T, vocab] (float64) of a full causal pass over ``tokens``."""
    tokens = np.asarray(tokens, dtype=np.int64)
    T = len(tokens)
    H, KV, D = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
    pos = np.arange(T)
    x = w["token_embd.weight"][tokens].astype(np.float64) * cfg.embed_scale
    if cfg.positional == "learned":
        x = x + w["position_embd.weight"][:T]
    for i in range(cfg.n_layers):
        b = f"blk.{i}"
        h = _norm(cfg, w, x, f"{b}.attn_norm")
        if cfg.fused_qkv:
            q = _lin(w, h, f"{b}.attn_qkv", cfg.qkv_bias, slice(0, cfg.q_dim))
            k = _lin(w, h, f"{b}.attn_qkv", cfg.qkv_bias, slice(cfg.q_dim, cfg.q_dim + cfg.kv_dim))
            v = _lin(w, h, f"{b}.attn_qkv", cfg.qkv_bias, slice(cfg.q_dim + cfg.kv_dim, cfg.q_dim + 2 * cfg.kv_dim))
        else:
            q = _lin(w, h, f"{b}.attn_q", cfg.qkv_bias)
            k = _lin(w, h, f"{b}.attn_k", cfg.qkv_bias)
            v = _lin(w, h, f"{b}.attn_v", cfg.qkv_bias)
        q, k, v = q.reshape(T, H, D), k.reshape(T, KV, D), v.reshape(T, KV, D)
        if cfg.qk_norm:
            q = _rms_heads(q, w[f"{b}.attn_q_norm.weight"], cfg.norm_eps)
            k = _rms_heads(k, w[f"{b}.attn_k_norm.weight"], cfg.norm_eps)
        q, k = rope(cfg, q, pos, i), rope(cfg, k, pos, i)
        rep = H // KV
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) * cfg.attn_scale
        dist = pos[:, None] - pos[None, :]
        mask = dist >= 0
        if cfg.is_local(i):
            mask &= dist < cfg.sliding_window
        s = np.where(mask[None], s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        p = s / s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", p, v).reshape(T, H * D)
        a = _lin(w, o, f"{b}.attn_output", cfg.out_bias)
        if cfg.post_norms:
            a = _norm(cfg, w, a, f"{b}.post_attention_norm")
        r = x + a
        g = _norm(cfg, w, r, f"{b}.ffn_norm")
        if cfg.mlp == "gelu":
            m = _lin(w, _act(cfg, _lin(w, g, f"{b}.ffn_up", cfg.mlp_bias)), f"{b}.ffn_down", cfg.mlp_bias)
        else:
            gate = _act(cfg, _lin(w, g, f"{b}.ffn_gate", cfg.mlp_bias))
            m = _lin(w, gate * _lin(w, g, f"{b}.ffn_up", cfg.mlp_bias), f"{b}.ffn_down", cfg.mlp_bias)
        if cfg.post_norms:
            m = _norm(cfg, w, m, f"{b}.post_ffw_norm")
        x = r + m
    xf = _norm(cfg, w, x, "output_norm")
    head = w["token_embd.weight"] if cfg.tied_embeddings else w["output.weight"]
    logits = xf @ head.astype(np.float64).T
    if cfg.final_logit_softcap:
        c = cfg.final_logit_softcap
        logits = c * np.tanh(logits / c)
    return logits
