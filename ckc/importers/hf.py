"""Hugging Face style directory (config.json + *.safetensors) -> (ModelConfig, WeightStore).

Tensor names are mapped to GGUF canonical names with the ``gguf`` package's
``TensorNameMap`` (the table llama.cpp's converter uses), and tensors get the
same fix-ups the converter applies, so the rest of ckc sees one naming and
one layout whatever the source:

- GPT-2 Conv1D weights (``c_attn``, ``c_proj``, ``c_fc``; stored ``[in, out]``)
  are transposed to ``[out, in]``;
- Gemma/Gemma3 ``*norm.weight`` get +1 (their RMSNorm multiplies by ``1 + w``);
- a tied ``lm_head.weight`` is dropped (``tied_embeddings``).

RoPE stays in HF order ("neox") unless ``rope_style="interleaved"`` asks for the
llama.cpp permutation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .common import (MAX_LAYERS, ModelImportError, TensorEntry, WeightStore, apply_rope_style, check_layers, number, positive,
                     read_safetensors_index)
from .config import ModelConfig, family_defaults

# HF model_type -> ckc arch
MODEL_TYPES = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma3_text": "gemma3",
    "gemma3": "gemma3",
    "gpt2": "gpt2",
}

_GGUF_ARCH = {"llama": "LLAMA", "qwen2": "QWEN2", "qwen3": "QWEN3", "gemma": "GEMMA",
              "gemma3": "GEMMA3", "gpt2": "GPT2"}


def _activation(path, act: str) -> str:
    """transformers ACT2FN name -> ModelConfig.activation."""
    if act in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):  # one formula: 0.5x(1+tanh(√(2/π)(x+0.044715x³)))
        return "gelu_tanh"
    if act in ("silu", "swish"):
        return "silu"
    if act == "gelu":
        return "gelu"  # exact (erf)
    raise ModelImportError(path, f"unsupported activation '{act}'")


def _rope_params(hp: dict, kind: str | None = None) -> dict:
    """rope parameters: transformers>=5 ``rope_parameters`` or older rope_theta/rope_scaling."""
    rp = hp.get("rope_parameters")
    if isinstance(rp, dict) and rp:
        if kind is not None and kind in rp and isinstance(rp[kind], dict):
            return rp[kind]
        if "full_attention" in rp and isinstance(rp["full_attention"], dict):
            return rp["full_attention"]
        return rp
    out = dict(hp.get("rope_scaling") or {})
    if "type" in out and "rope_type" not in out:
        out["rope_type"] = out["type"]
    if kind == "sliding_attention":
        return {"rope_type": "default", "rope_theta": hp.get("rope_local_base_freq", 10000.0)}
    out["rope_theta"] = hp.get("rope_theta", 10000.0)
    return out


def config_from_hf(path: Path, hp: dict) -> ModelConfig:
    if not isinstance(hp, dict):
        raise ModelImportError(path, f"expected a JSON object, got {type(hp).__name__}")
    mt = hp.get("model_type")
    if mt == "gemma3" and "text_config" in hp:
        if not isinstance(hp["text_config"], dict):
            raise ModelImportError(path, "text_config is not a JSON object")
        hp = {**hp["text_config"], "model_type": "gemma3_text"}
        mt = "gemma3_text"
    if not isinstance(mt, str) or mt not in MODEL_TYPES:
        raise ModelImportError(path, f"unsupported architecture '{mt}' (supported: {', '.join(sorted(MODEL_TYPES))})")
    arch = MODEL_TYPES[mt]
    kw = family_defaults(arch)

    def need(k):
        if k not in hp:
            raise ModelImportError(path, f"config key '{k}' missing")
        return hp[k]

    def size(k, default=None):  # a required (default None) or optional positive int
        return positive(path, k, need(k) if default is None else (hp.get(k) or default))

    def num(k, default):
        v = hp.get(k)
        return number(path, k, default if v is None else v)

    if arch == "gpt2":
        hidden = size("n_embd")
        n_heads = size("n_head")
        cfg = dict(
            vocab_size=size("vocab_size"),
            hidden=hidden,
            n_layers=positive(path, "n_layer", need("n_layer"), MAX_LAYERS),
            n_heads=n_heads,
            n_kv_heads=n_heads,
            head_dim=positive(path, "n_embd / n_head", hidden // n_heads),
            ffn=size("n_inner", 4 * hidden),
            max_context=size("n_positions"),
            norm_eps=num("layer_norm_epsilon", 1e-5),
        )
        kw["activation"] = _activation(path, hp.get("activation_function", "gelu_new"))
        if hp.get("scale_attn_by_inverse_layer_idx") or hp.get("reorder_and_upcast_attn"):
            raise ModelImportError(path, "GPT-2 option scale_attn_by_inverse_layer_idx/reorder_and_upcast_attn is not supported")
        if hp.get("scale_attn_weights", True) is False:
            cfg["attn_scale"] = 1.0
    else:
        hidden = size("hidden_size")
        n_heads = size("num_attention_heads")
        head_dim = positive(path, "head_dim", hp.get("head_dim") or hidden // n_heads)
        cfg = dict(
            vocab_size=size("vocab_size"),
            hidden=hidden,
            n_layers=positive(path, "num_hidden_layers", need("num_hidden_layers"), MAX_LAYERS),
            n_heads=n_heads,
            n_kv_heads=size("num_key_value_heads", n_heads),
            head_dim=head_dim,
            ffn=size("intermediate_size"),
            max_context=size("max_position_embeddings", 2048),
            norm_eps=num("rms_norm_eps", 1e-6),
        )
        if arch == "gemma":
            # transformers' GemmaConfig turns the legacy "gelu" into the tanh approximation
            act = hp.get("hidden_act") or "gelu_pytorch_tanh"
            act = "gelu_pytorch_tanh" if act == "gelu" else act
        elif arch == "gemma3":
            act = hp.get("hidden_activation") or "gelu_pytorch_tanh"
        else:
            act = hp.get("hidden_act", "silu")
        kw["activation"] = _activation(path, act)
        if (kw["mlp"] == "swiglu") != (kw["activation"] == "silu"):
            raise ModelImportError(path, f"unsupported activation '{act}' for {arch}")
        if arch in ("llama", "qwen3"):
            kw["qkv_bias"] = kw["out_bias"] = bool(hp.get("attention_bias", False))
        if arch == "llama":
            kw["mlp_bias"] = bool(hp.get("mlp_bias", False))
        rp = _rope_params(hp)
        cfg["rope_theta"] = float(rp.get("rope_theta", 10000.0))
        rtype = rp.get("rope_type", "default") or "default"
        if rtype != "default":
            cfg["rope_scaling"] = rtype
            cfg["rope_scaling_factor"] = float(rp.get("factor", 1.0))
            cfg["rope_scaling_orig_context"] = int(rp.get("original_max_position_embeddings", 0) or 0)
            if rtype == "llama3":
                cfg["rope_low_freq_factor"] = float(rp.get("low_freq_factor", 1.0))
                cfg["rope_high_freq_factor"] = float(rp.get("high_freq_factor", 4.0))
        if hp.get("partial_rotary_factor"):
            cfg["rope_dim"] = int(head_dim * float(hp["partial_rotary_factor"]))
        if arch in ("gemma", "gemma3"):
            cfg["embed_scale"] = math.sqrt(hidden)
        if arch == "gemma3":
            cfg["attn_scale"] = float(hp.get("query_pre_attn_scalar", 256)) ** -0.5  # transformers' default
            if hp.get("attn_logit_softcapping"):
                raise ModelImportError(path, "Gemma3 attn_logit_softcapping is not supported")
            if hp.get("use_bidirectional_attention"):
                raise ModelImportError(path, "bidirectional attention is not supported")
            cfg["rope_theta_local"] = float(_rope_params(hp, "sliding_attention").get("rope_theta", 10000.0))
        layer_types = hp.get("layer_types")
        if arch == "gemma3" and not layer_types:
            p = int(hp.get("sliding_window_pattern") or hp.get("_sliding_window_pattern") or 6)
            layer_types = ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(cfg["n_layers"])]
        if layer_types and any(t == "sliding_attention" for t in layer_types) and hp.get("sliding_window"):
            if arch in ("qwen2", "qwen3") and not hp.get("use_sliding_window", False):
                pass
            else:
                cfg["sliding_window"] = int(hp["sliding_window"])
                cfg["local_layers"] = tuple(t == "sliding_attention" for t in layer_types)
        if hp.get("final_logit_softcapping"):
            cfg["final_logit_softcap"] = float(hp["final_logit_softcapping"])
    eos = hp.get("eos_token_id")
    return ModelConfig(
        arch=arch,
        tied_embeddings=bool(hp.get("tie_word_embeddings", arch in ("gemma", "gemma3", "gpt2"))),
        source="hf",
        name=str(hp.get("_name_or_path", "")),
        bos_token_id=hp.get("bos_token_id"),
        eos_token_id=eos[0] if isinstance(eos, list) and eos else eos,
        **cfg,
        **kw,
    )


def _safetensors_files(d: Path) -> list[Path]:
    idx = d / "model.safetensors.index.json"
    if idx.is_file():
        try:
            wm = json.loads(idx.read_bytes())["weight_map"]
            files = sorted({d / f for f in wm.values()})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise ModelImportError(idx, f"malformed index ({type(e).__name__}: {str(e)[:80]})") from None
        for f in files:
            if not f.is_file():
                raise ModelImportError(f, "shard listed in model.safetensors.index.json does not exist")
        return files
    single = d / "model.safetensors"
    if single.is_file():
        return [single]
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise ModelImportError(d, "no model.safetensors (or index) in the directory")
    return files


def load_hf(path, *, rope_style: str | None = None) -> tuple[ModelConfig, WeightStore]:
    import gguf

    path = Path(path)
    d = path.parent if path.is_file() else path
    cfile = d / "config.json"
    if not cfile.is_file():
        raise ModelImportError(d, "no config.json in the directory")
    try:
        hp = json.loads(cfile.read_bytes())
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ModelImportError(cfile, f"malformed JSON ({str(e).splitlines()[0][:100]})") from None
    try:
        cfg = config_from_hf(cfile, hp)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, ZeroDivisionError) as e:
        # the typed checks above cover the sizes; this names any other value of the wrong kind
        raise ModelImportError(cfile, f"malformed config ({type(e).__name__}: {str(e)[:100]})") from None
    indexes = [(f, read_safetensors_index(f)) for f in _safetensors_files(d)]
    check_layers(cfile, "num_hidden_layers", cfg.n_layers, sum(len(ix) for _, ix in indexes))
    tmap = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, _GGUF_ARCH[cfg.arch]), cfg.n_layers)

    entries: dict[str, TensorEntry] = {}
    for f, index in indexes:
        for hf_name, (dtype, shape, load) in index.items():
            name = hf_name
            for pre in ("model.language_model.", "language_model."):
                if name.startswith(pre):
                    name = "model." + name[len(pre):]
            if cfg.arch == "gpt2" and name.endswith((".attn.bias", ".attn.masked_bias")):
                continue  # causal-mask buffers of old checkpoints
            if name == "lm_head.weight" and cfg.tied_embeddings:
                continue
            if name.endswith("rotary_emb.inv_freq"):
                continue
            canon = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
            if canon is None:
                raise ModelImportError(f, f"tensor '{hf_name}' has no GGUF name for {cfg.arch}")
            fn = None
            if cfg.arch == "gpt2" and hf_name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
                shape = shape[::-1]
                fn = lambda w: np.ascontiguousarray(w.T)
            elif cfg.arch in ("gemma", "gemma3") and canon.endswith("norm.weight"):
                fn = lambda w: w + np.float32(1.0)
            if fn is not None:
                inner = load
                load = lambda inner=inner, fn=fn: fn(np.asarray(inner(), dtype=np.float32))
            entries[canon] = TensorEntry(shape=tuple(shape), src_type=dtype, load=load)
    if cfg.tied_embeddings:
        entries.pop("output.weight", None)
    store = WeightStore(d, entries)
    store.validate(cfg)
    apply_rope_style(cfg, store, rope_style)
    return cfg, store
