"""GGUF -> (ModelConfig, WeightStore), through the ``gguf`` package.

Metadata keys are arch-prefixed (``llama.embedding_length``, ...). Tensors are
memory-mapped by ``gguf.GGUFReader``; fp32 tensors are returned as views,
everything else is dequantized to fp32 with ``gguf.quants.dequantize``.

RoPE style follows llama.cpp's ``llama_model_rope_type`` (src/llama-model.cpp):
``LLM_ARCH_LLAMA`` is ``LLAMA_ROPE_TYPE_NORM`` (consecutive pairs; the converter
permuted the Q/K rows for it), ``QWEN2``/``QWEN3``/``GEMMA``/``GEMMA3`` are
``LLAMA_ROPE_TYPE_NEOX`` (half-split pairs, rows as in HF), ``GPT2`` has none.
Gemma3 local/global layers follow ``llama_model_gemma3::load_arch_hparams``:
``attention.sliding_window`` enables SWA, ``attention.sliding_window_pattern``
(bool array or period) chooses the local layers, defaulting to period 6
(layer ``il`` is local when ``il % 6 < 5``); local layers use
``rope.freq_base_swa`` (default 10000).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import ModelImportError, TensorEntry, WeightStore, apply_rope_style
from .config import ARCHS, ModelConfig, family_defaults

# Types gguf.quants can turn into fp32.
_FLOAT_TYPES = {"F32", "F16", "BF16"}


def _supported_types() -> set[str]:
    import gguf.quants as q

    traits = getattr(q, "_type_traits", {})
    return _FLOAT_TYPES | {t.name for t in traits}


def open_reader(path: Path):
    import gguf

    size = path.stat().st_size
    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as e:  # the reader raises assorted errors on a cut file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise ModelImportError(path, f"not a GGUF file (magic {magic!r})") from None
        raise ModelImportError(path, f"truncated or malformed GGUF ({msg})") from None
    for t in reader.tensors:
        end = int(t.data_offset) + int(t.n_bytes)
        if end > size:
            raise ModelImportError(
                path, f"truncated GGUF: tensor '{t.name}' needs bytes up to {end}, file has {size}"
            )
    return reader


def metadata(reader) -> dict:
    out = {}
    for k, f in reader.fields.items():
        if k.startswith("tokenizer.ggml.") and k in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                                                    "tokenizer.ggml.token_type", "tokenizer.ggml.scores"):
            continue
        try:
            out[k] = f.contents()
        except Exception:  # odd field kinds are not needed here
            continue
    return out


def _f32(x) -> float:
    """A GGUF float32 as the shortest decimal that rounds to it (1e-05, not 9.99999974e-06)."""
    return float(str(np.float32(x)))


def config_from_gguf(path: Path, meta: dict, tensors: dict) -> ModelConfig:
    arch = meta.get("general.architecture")
    if arch is None:
        raise ModelImportError(path, "GGUF has no general.architecture")
    if arch not in ARCHS:
        raise ModelImportError(path, f"unsupported architecture '{arch}' (supported: {', '.join(ARCHS)})")

    def key(k, default=None, required=True):
        full = f"{arch}.{k}"
        if full in meta:
            return meta[full]
        if required and default is None:
            raise ModelImportError(path, f"metadata key '{full}' missing")
        return default

    hidden = int(key("embedding_length"))
    n_heads = int(key("attention.head_count"))
    n_kv = key("attention.head_count_kv", n_heads, required=False)
    n_layers = int(key("block_count"))
    if isinstance(n_kv, list):
        n_kv = n_kv[0]
    if isinstance(n_heads, list):
        n_heads = n_heads[0]
    head_dim = int(key("attention.key_length", hidden // n_heads, required=False))
    if "token_embd.weight" in tensors:
        vocab_rows = tensors["token_embd.weight"][0]
    else:
        raise ModelImportError(path, "tensor 'token_embd.weight' missing")
    vocab = int(key("vocab_size", vocab_rows, required=False))

    kw = family_defaults(arch)
    if arch == "llama":
        kw["rope_style"] = "interleaved"  # LLAMA_ROPE_TYPE_NORM; Q/K rows permuted by the converter
    if arch in ("llama", "qwen2", "qwen3"):
        kw["qkv_bias"] = kw.get("qkv_bias", False) or "blk.0.attn_q.bias" in tensors
        kw["out_bias"] = "blk.0.attn_output.bias" in tensors
        kw["mlp_bias"] = "blk.0.ffn_up.bias" in tensors
    if kw["norm"] == "layernorm":
        eps = key("attention.layer_norm_epsilon", 1e-5, required=False)
    else:
        eps = key("attention.layer_norm_rms_epsilon", 1e-6, required=False)

    cfg = dict(
        arch=arch,
        vocab_size=vocab,
        hidden=hidden,
        n_layers=n_layers,
        n_heads=int(n_heads),
        n_kv_heads=int(n_kv),
        head_dim=head_dim,
        ffn=int(key("feed_forward_length")),
        max_context=int(key("context_length", 2048, required=False)),
        norm_eps=_f32(eps),
        tied_embeddings="output.weight" not in tensors,
        source="gguf",
        name=str(meta.get("general.name", "")),
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        **kw,
    )
    if kw.get("positional", "rope") == "rope":
        cfg["rope_theta"] = _f32(key("rope.freq_base", 10000.0, required=False))
        cfg["rope_dim"] = int(key("rope.dimension_count", head_dim, required=False))
        stype = key("rope.scaling.type", None, required=False)
        if stype and stype != "none":
            cfg["rope_scaling"] = str(stype)
            cfg["rope_scaling_factor"] = _f32(key("rope.scaling.factor", 1.0, required=False))
            cfg["rope_scaling_orig_context"] = int(key("rope.scaling.original_context_length", 0, required=False))
        if "rope_freqs.weight" in tensors:
            cfg["rope_scaling"] = "freq_factors"  # per-dim divisors in rope_freqs.weight (llama3)
    if arch in ("gemma", "gemma3"):
        cfg["embed_scale"] = math.sqrt(hidden)
    if arch == "gemma3":
        # llama_model_gemma3: 1/sqrt(head_dim), except the 62-layer (27B) model
        if n_layers == 62:
            cfg["attn_scale"] = (hidden / n_heads) ** -0.5
        swa = key("attention.sliding_window", 0, required=False)
        if swa:
            cfg["sliding_window"] = int(swa)
            pat = key("attention.sliding_window_pattern", 6, required=False)
            if isinstance(pat, list):
                local = [bool(x) for x in pat][:n_layers]
            else:
                p = int(pat)
                local = [p == 0 or (il % p < p - 1) for il in range(n_layers)]
            cfg["local_layers"] = tuple(local)
            cfg["rope_theta_local"] = _f32(key("rope.freq_base_swa", 10000.0, required=False))
    softcap = key("final_logit_softcapping", None, required=False)
    if softcap:
        cfg["final_logit_softcap"] = _f32(softcap)
    return ModelConfig(**cfg)


def load_gguf(path, *, rope_style: str | None = None) -> tuple[ModelConfig, WeightStore]:
    """Read a GGUF file. ``rope_style="neox"`` un-permutes llama Q/K rows."""
    import gguf.quants

    path = Path(path)
    reader = open_reader(path)
    meta = metadata(reader)
    supported = _supported_types()
    entries: dict[str, TensorEntry] = {}
    for t in reader.tensors:
        tname = t.tensor_type.name
        if tname not in supported:
            raise ModelImportError(path, f"tensor '{t.name}' has unsupported type {tname}")
        shape = tuple(int(d) for d in reversed([int(x) for x in t.shape]))

        def load(t=t, shape=shape):
            return gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)

        entries[t.name] = TensorEntry(shape=shape, src_type=tname, load=load)

    cfg = config_from_gguf(path, meta, {k: e.shape for k, e in entries.items()})
    store = WeightStore(path, entries, keepalive=reader)
    store.validate(cfg)
    apply_rope_style(cfg, store, rope_style)
    return cfg, store
