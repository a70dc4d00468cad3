"""The normalized model description every importer produces.

One dataclass for the six supported families (llama, qwen2, qwen3, gemma,
gemma3, gpt2). It holds every numeric detail the forward pass needs, so the
rest of the compiler never looks at a family name to decide arithmetic.

Conventions the importers normalize (whatever the source file stores):

- Weights use GGUF canonical names (``token_embd.weight``, ``blk.N.attn_q.weight``,
  ``output.weight``, ...) and are fp32 numpy arrays in PyTorch layout:
  linear weights ``[out, in]``, y = x·Wᵀ + b (GPT-2's Conv1D ``[in, out]`` is
  transposed on import, as llama.cpp's converter does).
- RMSNorm is always ``y = x / sqrt(mean(x²) + eps) * w``. Gemma/Gemma3 store
  ``w - 1`` in Hugging Face checkpoints (their norm computes ``x̂ * (1 + w)``);
  the HF importer adds 1, exactly as ``convert_hf_to_gguf.py`` does, so both
  sources give the same weights and one norm formula.
- ``rope_style`` says how RoPE pairs head dimensions: ``"neox"`` rotates
  ``(i, i + rot/2)`` (Hugging Face ``rotate_half``), ``"interleaved"`` rotates
  consecutive pairs ``(2i, 2i+1)`` (llama.cpp ``LLAMA_ROPE_TYPE_NORM``),
  ``"none"`` means no RoPE (GPT-2's learned positions). A llama-architecture
  GGUF written by ``convert_hf_to_gguf.py`` holds Q/K rows permuted for
  ``"interleaved"``; every other family here is ``"neox"``. ``load_model(...,
  rope_style="neox")`` undoes the permutation so a single RoPE flavour suffices.
- GPT-2 keeps its fused ``blk.N.attn_qkv.{weight,bias}`` ``[3*C, C]`` (rows:
  Q, then K, then V), as in GGUF.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

ARCHS = ("llama", "qwen2", "qwen3", "gemma", "gemma3", "gpt2")


@dataclass
class ModelConfig:
    """Normalized model description (see module docstring for conventions).

    Dims: ``hidden`` = model width C, ``n_heads * head_dim`` = Q width,
    ``n_kv_heads * head_dim`` = K/V width, ``ffn`` = MLP inner width.
    """

    arch: str                      # one of ARCHS
    vocab_size: int
    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn: int
    max_context: int

    # normalization: "rmsnorm" (y = x̂·w) or "layernorm" (y = (x-μ)/σ·w + b)
    norm: str = "rmsnorm"
    norm_eps: float = 1e-6

    # MLP: "swiglu" (down(silu(gate(x)) * up(x))), "geglu" (gelu_tanh instead
    # of silu), "gelu" (down(gelu_tanh(up(x) + b) + b), GPT-2)
    mlp: str = "swiglu"
    activation: str = "silu"       # "silu" | "gelu_tanh" (gelu_new == gelu_pytorch_tanh) | "gelu" (exact erf)

    # biases and extra norms
    qkv_bias: bool = False         # Q/K/V projections carry biases (qwen2, gpt2)
    out_bias: bool = False         # attention output projection bias (gpt2)
    mlp_bias: bool = False         # MLP projections carry biases (gpt2)
    fused_qkv: bool = False        # one attn_qkv weight [q; k; v] (gpt2)
    qk_norm: bool = False          # RMSNorm over head_dim on Q and K before RoPE (qwen3, gemma3)
    post_norms: bool = False       # post_attention_norm / post_ffw_norm on each branch output (gemma3)

    # positions
    positional: str = "rope"       # "rope" | "learned" (position_embd.weight, gpt2)
    rope_style: str = "neox"       # "neox" | "interleaved" | "none"
    rope_theta: float = 10000.0    # global (full-attention) layers
    rope_theta_local: float | None = None   # sliding-window layers (gemma3); None: same as rope_theta
    rope_dim: int = 0              # rotated dims per head (== head_dim for these families)
    rope_scaling: str = "none"     # "none" | "linear" | "yarn" | "llama3" | "longrope" | "dynamic"
    rope_scaling_factor: float = 1.0
    rope_scaling_orig_context: int = 0
    rope_low_freq_factor: float = 1.0    # llama3 scaling
    rope_high_freq_factor: float = 4.0   # llama3 scaling

    # attention
    attn_scale: float = 0.0        # multiplies Q·Kᵀ; 1/sqrt(head_dim) unless the family says otherwise
    sliding_window: int | None = None    # window (tokens) of local layers; None: no local layers
    local_layers: tuple[bool, ...] = ()  # per layer: True = sliding-window (local) attention

    # embeddings / head
    embed_scale: float = 1.0       # token embeddings multiplied by this (gemma: sqrt(hidden))
    tied_embeddings: bool = False  # lm head reuses token_embd.weight (no output.weight)
    final_logit_softcap: float | None = None  # logits = cap*tanh(logits/cap) when set

    # tokens
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    # provenance (not part of the arithmetic)
    source: str = ""               # "gguf" | "hf"
    name: str = ""

    def __post_init__(self):
        if not self.rope_dim and self.positional == "rope":
            self.rope_dim = self.head_dim
        if not self.attn_scale:
            self.attn_scale = self.head_dim ** -0.5  # as transformers computes it
        if not self.local_layers:
            self.local_layers = (False,) * self.n_layers
        self.local_layers = tuple(bool(b) for b in self.local_layers)

    # -- helpers -----------------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    def is_local(self, layer: int) -> bool:
        return self.sliding_window is not None and self.local_layers[layer]

    def layer_rope_theta(self, layer: int) -> float:
        if self.is_local(layer) and self.rope_theta_local is not None:
            return self.rope_theta_local
        return self.rope_theta

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # fields that describe the file rather than the arithmetic
    PROVENANCE = ("source", "name", "bos_token_id", "eos_token_id")

    def arithmetic(self) -> dict:
        """The fields that determine the forward pass (provenance dropped)."""
        d = self.to_dict()
        for k in self.PROVENANCE:
            d.pop(k, None)
        return d

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor this config needs, canonical name -> numpy shape."""
        C, V, F = self.hidden, self.vocab_size, self.ffn
        shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (V, C), "output_norm.weight": (C,)}
        if self.norm == "layernorm":
            shapes["output_norm.bias"] = (C,)
        if not self.tied_embeddings:
            shapes["output.weight"] = (V, C)
        if self.positional == "learned":
            shapes["position_embd.weight"] = (self.max_context, C)
        for i in range(self.n_layers):
            b = f"blk.{i}."
            shapes[b + "attn_norm.weight"] = (C,)
            shapes[b + "ffn_norm.weight"] = (C,)
            if self.norm == "layernorm":
                shapes[b + "attn_norm.bias"] = (C,)
                shapes[b + "ffn_norm.bias"] = (C,)
            if self.fused_qkv:
                shapes[b + "attn_qkv.weight"] = (self.q_dim + 2 * self.kv_dim, C)
                if self.qkv_bias:
                    shapes[b + "attn_qkv.bias"] = (self.q_dim + 2 * self.kv_dim,)
            else:
                shapes[b + "attn_q.weight"] = (self.q_dim, C)
                shapes[b + "attn_k.weight"] = (self.kv_dim, C)
                shapes[b + "attn_v.weight"] = (self.kv_dim, C)
                if self.qkv_bias:
                    shapes[b + "attn_q.bias"] = (self.q_dim,)
                    shapes[b + "attn_k.bias"] = (self.kv_dim,)
                    shapes[b + "attn_v.bias"] = (self.kv_dim,)
            shapes[b + "attn_output.weight"] = (C, self.q_dim)
            if self.out_bias:
                shapes[b + "attn_output.bias"] = (C,)
            if self.qk_norm:
                shapes[b + "attn_q_norm.weight"] = (self.head_dim,)
                shapes[b + "attn_k_norm.weight"] = (self.head_dim,)
            if self.post_norms:
                shapes[b + "post_attention_norm.weight"] = (C,)
                shapes[b + "post_ffw_norm.weight"] = (C,)
            if self.mlp in ("swiglu", "geglu"):
                shapes[b + "ffn_gate.weight"] = (F, C)
            shapes[b + "ffn_up.weight"] = (F, C)
            shapes[b + "ffn_down.weight"] = (C, F)
            if self.mlp_bias:
                if self.mlp in ("swiglu", "geglu"):
                    shapes[b + "ffn_gate.bias"] = (F,)
                shapes[b + "ffn_up.bias"] = (F,)
                shapes[b + "ffn_down.bias"] = (C,)
        return shapes


def family_defaults(arch: str) -> dict:
    """Per-family structure (what is not a number in the file)."""
    if arch in ("llama",):
        return dict(norm="rmsnorm", mlp="swiglu", activation="silu", rope_style="neox")
    if arch == "qwen2":
        return dict(norm="rmsnorm", mlp="swiglu", activation="silu", rope_style="neox", qkv_bias=True)
    if arch == "qwen3":
        return dict(norm="rmsnorm", mlp="swiglu", activation="silu", rope_style="neox", qk_norm=True)
    if arch == "gemma":
        return dict(norm="rmsnorm", mlp="geglu", activation="gelu_tanh", rope_style="neox")
    if arch == "gemma3":
        return dict(norm="rmsnorm", mlp="geglu", activation="gelu_tanh", rope_style="neox",
                    qk_norm=True, post_norms=True)
    if arch == "gpt2":
        return dict(norm="layernorm", mlp="gelu", activation="gelu_tanh", rope_style="none",
                    positional="learned", qkv_bias=True, out_bias=True, mlp_bias=True, fused_qkv=True)
    raise KeyError(arch)


def permute_for_norm_rope(w, n_heads: int):
    """HF (neox) Q/K rows -> llama.cpp "interleaved" (LLAMA_ROPE_TYPE_NORM) rope layout (convert_hf_to_gguf's permute)."""
    shape = w.shape
    return w.reshape(n_heads, 2, shape[0] // n_heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def unpermute_from_norm_rope(w, n_heads: int):
    """Inverse of :func:`permute_for_norm_rope`."""
    shape = w.shape
    return w.reshape(n_heads, shape[0] // n_heads // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
