"""Named family + size configs for training from random init, and the init itself.

    cfg = family_config("llama:tiny", vocab_size=384)
    weights = init_weights(cfg, seed=0)        # canonical name -> f32 numpy

Sizes (any of the six families; GPT-2 uses n_kv_heads = n_heads, ffn = 4·hidden):

    name    hidden  layers  heads  kv  head_dim  ffn   context
    tiny        64       2      4   2        16   176      256
    small      128       4      4   2        32   352      512
    medium     256       6      8   4        32   704     1024
    124m       768      12     12  12        64  3072     1024   (GPT-2 small's shape)

Init (GPT-2 / nanoGPT style, from a NumPy PCG64 generator seeded with
``seed``, tensors drawn in ``cfg.expected_shapes()`` order so every backend
starts from the same numbers): matrices and embeddings ~ N(0, 0.02²), the
residual output projections (``attn_output``, ``ffn_down``) ~ N(0, (0.02/√(2L))²),
norm weights 1 (ckc's norm convention: Gemma's stored ``w − 1`` is 0), biases 0.
"""

from __future__ import annotations

import math

import numpy as np

from ckc.importers.config import ARCHS, ModelConfig, family_defaults

SIZES = {
    "tiny": dict(hidden=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, ffn=176, max_context=256),
    "small": dict(hidden=128, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=32, ffn=352, max_context=512),
    "medium": dict(hidden=256, n_layers=6, n_heads=8, n_kv_heads=4, head_dim=32, ffn=704, max_context=1024),
    "124m": dict(hidden=768, n_layers=12, n_heads=12, n_kv_heads=12, head_dim=64, ffn=3072, max_context=1024),
}

TIED = {"llama": False, "qwen2": False, "qwen3": True, "gemma": True, "gemma3": True, "gpt2": True}


class ModelSpecError(ValueError):
    """An unknown family or size; one line."""


def is_family_spec(spec: str) -> bool:
    fam, _, size = str(spec).partition(":")
    return bool(size) and fam in ARCHS


def family_config(spec: str, vocab_size: int | None = None) -> ModelConfig:
    """``family:size`` (e.g. ``llama:tiny``, ``gpt2:124m``) -> ModelConfig."""
    fam, _, size = str(spec).partition(":")
    if fam not in ARCHS:
        raise ModelSpecError(f"unknown model family '{fam}' (families: {', '.join(ARCHS)})")
    if size not in SIZES:
        raise ModelSpecError(f"unknown size '{size}' (sizes: {', '.join(SIZES)})")
    dims = dict(SIZES[size])
    if fam == "gpt2":
        dims.update(n_kv_heads=dims["n_heads"], head_dim=dims["hidden"] // dims["n_heads"], ffn=4 * dims["hidden"])
    if vocab_size is None:
        vocab_size = 50257 if fam == "gpt2" else 384
    kw = family_defaults(fam)
    extra: dict = {}
    if fam in ("gemma", "gemma3"):
        extra["embed_scale"] = math.sqrt(dims["hidden"])
    if fam in ("qwen2", "qwen3"):
        extra["rope_theta"] = 1000000.0
    if fam == "gemma3":
        extra.update(rope_theta=1000000.0, rope_theta_local=10000.0, sliding_window=max(16, dims["max_context"] // 4),
                     local_layers=tuple(i % 6 < 5 for i in range(dims["n_layers"])))
    eps = 1e-5 if fam in ("llama", "gpt2") else 1e-6
    return ModelConfig(arch=fam, vocab_size=int(vocab_size), norm_eps=eps, tied_embeddings=TIED[fam],
                       name=f"{fam}-{size}", **dims, **kw, **extra)


def init_weights(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random initial weights for ``cfg`` (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    resid_std = 0.02 / math.sqrt(2 * cfg.n_layers)
    out = {}
    for name, shape in cfg.expected_shapes().items():
        if name.endswith(".bias"):
            out[name] = np.zeros(shape, np.float32)
        elif len(shape) == 1:  # norm weights
            out[name] = np.ones(shape, np.float32)
        else:
            std = resid_std if (".attn_output." in name or ".ffn_down." in name) else 0.02
            out[name] = (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)
    return out
