"""Export trained weights (GGUF canonical names, ckc layout) to Hugging Face and GGUF.

    export_hf(cfg, weights, "out/hf", tokenizer_src=...)     # config.json + model.safetensors
    export_gguf(cfg, weights, "out/model.gguf", tokenizer_src=...)

``weights`` maps canonical names (``token_embd.weight``, ``blk.0.attn_q.weight``,
...) to fp32 arrays in ckc's layout (see ``ckc.importers.config``). Both
exports invert exactly what the importers do, so ``ckc.importers.load_model``
on an export gives back the same numbers:

- Hugging Face: names through the ``gguf`` package's ``TensorNameMap`` (the
  table the HF importer uses) applied to the transformers model's own
  parameter names; GPT-2 Conv1D weights (``c_attn``, ``c_proj``, ``c_fc``)
  transposed back to ``[in, out]``; Gemma norms stored as ``w − 1``; Q/K rows
  in HF ("neox") order (un-permuted if the weights are "interleaved"); a tied
  head is not written. ``model.safetensors`` is written by hand (8-byte
  little-endian header length, JSON header, raw little-endian data), no
  ``safetensors`` package.
- GGUF: ``gguf.GGUFWriter`` with the arch keys ckc's GGUF importer and
  llama.cpp read, f32 tensors, llama Q/K rows in llama.cpp's "interleaved"
  order (as ``convert_hf_to_gguf.py`` writes them), and the tokenizer
  metadata copied from a GGUF (``tokenizer.*`` keys) or built from a
  tokenizer.json (byte-level BPE).

``hf_param_map`` / ``to_hf`` / ``from_hf`` are shared with the PyTorch
training backend, which holds the model as a transformers module.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from ckc.atomic import replaced
from ckc.importers.config import ModelConfig, permute_for_norm_rope, unpermute_from_norm_rope


class ExportError(ValueError):
    """An export that cannot be written; one line."""


HF_MODEL_TYPE = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma": "gemma",
                 "gemma3": "gemma3_text", "gpt2": "gpt2"}
HF_CLASS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
            "gemma": "GemmaForCausalLM", "gemma3": "Gemma3ForCausalLM", "gpt2": "GPT2LMHeadModel"}
_GGUF_ARCH = {"llama": "LLAMA", "qwen2": "QWEN2", "qwen3": "QWEN3", "gemma": "GEMMA",
              "gemma3": "GEMMA3", "gpt2": "GPT2"}
_GPT2_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")


# --------------------------------------------------------------------------- config.json

def _hf_act(cfg: ModelConfig) -> str:
    return {"silu": "silu", "gelu_tanh": "gelu_pytorch_tanh", "gelu": "gelu"}[cfg.activation]


def _rope_dict(cfg: ModelConfig, theta: float, scaled: bool = True) -> dict:
    d = {"rope_type": "default", "rope_theta": float(theta)}
    if scaled and cfg.rope_scaling not in ("none", "", None):
        if cfg.rope_scaling not in ("linear", "llama3", "yarn", "dynamic", "longrope"):
            raise ExportError(f"rope scaling '{cfg.rope_scaling}' has no Hugging Face equivalent")
        d.update(rope_type=cfg.rope_scaling, factor=float(cfg.rope_scaling_factor))
        if cfg.rope_scaling_orig_context:
            d["original_max_position_embeddings"] = int(cfg.rope_scaling_orig_context)
        if cfg.rope_scaling == "llama3":
            d.update(low_freq_factor=float(cfg.rope_low_freq_factor), high_freq_factor=float(cfg.rope_high_freq_factor))
    return d


def hf_config_dict(cfg: ModelConfig) -> dict:
    """The config.json a transformers model of ``cfg`` reads (transformers >= 5 keys)."""
    if cfg.arch not in HF_MODEL_TYPE:
        raise ExportError(f"architecture '{cfg.arch}' cannot be exported to Hugging Face")
    special = {k: v for k, v in (("bos_token_id", cfg.bos_token_id), ("eos_token_id", cfg.eos_token_id))
               if v is not None}
    if cfg.arch == "gpt2":
        if cfg.n_kv_heads != cfg.n_heads or cfg.head_dim * cfg.n_heads != cfg.hidden:
            raise ExportError("GPT-2 needs n_kv_heads == n_heads and head_dim * n_heads == hidden")
        d = dict(model_type="gpt2", n_embd=cfg.hidden, n_layer=cfg.n_layers, n_head=cfg.n_heads,
                 n_inner=cfg.ffn, n_positions=cfg.max_context, n_ctx=cfg.max_context, vocab_size=cfg.vocab_size,
                 layer_norm_epsilon=cfg.norm_eps,
                 activation_function={"gelu_tanh": "gelu_new", "gelu": "gelu"}[cfg.activation],
                 scale_attn_weights=abs(cfg.attn_scale - cfg.head_dim ** -0.5) < 1e-12,
                 resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=cfg.tied_embeddings)
        if not d["scale_attn_weights"] and cfg.attn_scale != 1.0:
            raise ExportError(f"GPT-2 attention scale {cfg.attn_scale} is neither 1/sqrt(head_dim) nor 1")
    else:
        d = dict(model_type=HF_MODEL_TYPE[cfg.arch], hidden_size=cfg.hidden, intermediate_size=cfg.ffn,
                 num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                 num_key_value_heads=cfg.n_kv_heads, head_dim=cfg.head_dim,
                 max_position_embeddings=cfg.max_context, vocab_size=cfg.vocab_size, rms_norm_eps=cfg.norm_eps,
                 tie_word_embeddings=cfg.tied_embeddings, attention_dropout=0.0)
        if cfg.norm != "rmsnorm":
            raise ExportError(f"{cfg.arch} with {cfg.norm} has no Hugging Face equivalent")
        if cfg.rope_dim != cfg.head_dim:
            d["partial_rotary_factor"] = cfg.rope_dim / cfg.head_dim
        if cfg.arch in ("gemma", "gemma3"):
            d["hidden_activation"] = _hf_act(cfg)
            if cfg.arch == "gemma":
                d["hidden_act"] = _hf_act(cfg)
        else:
            d["hidden_act"] = _hf_act(cfg)
        if cfg.arch in ("llama", "qwen3"):
            d["attention_bias"] = bool(cfg.qkv_bias)
            if cfg.qkv_bias != cfg.out_bias:
                raise ExportError(f"{cfg.arch}: Q/K/V and output biases must agree for Hugging Face")
        if cfg.arch == "llama":
            d["mlp_bias"] = bool(cfg.mlp_bias)
        if cfg.arch == "gemma3":
            d["query_pre_attn_scalar"] = float(cfg.attn_scale) ** -2
            if abs(round(d["query_pre_attn_scalar"]) - d["query_pre_attn_scalar"]) < 1e-6:
                d["query_pre_attn_scalar"] = int(round(d["query_pre_attn_scalar"]))
            local = cfg.sliding_window is not None
            d["layer_types"] = ["sliding_attention" if (local and cfg.local_layers[i]) else "full_attention"
                                for i in range(cfg.n_layers)]
            d["sliding_window"] = int(cfg.sliding_window) if local else None
            d["rope_parameters"] = {
                "full_attention": _rope_dict(cfg, cfg.rope_theta),
                "sliding_attention": _rope_dict(cfg, cfg.rope_theta_local or cfg.rope_theta, scaled=False)}
            d["final_logit_softcapping"] = cfg.final_logit_softcap
            d["attn_logit_softcapping"] = None
        else:
            if cfg.sliding_window is not None and any(cfg.local_layers):
                raise ExportError(f"{cfg.arch}: sliding-window layers are not exported")
            if cfg.final_logit_softcap:
                raise ExportError(f"{cfg.arch}: a final logit softcap has no Hugging Face equivalent")
            d["rope_parameters"] = _rope_dict(cfg, cfg.rope_theta)
    d.update(special)
    d["architectures"] = [HF_CLASS[cfg.arch]]
    d["torch_dtype"] = "float32"
    return d


# --------------------------------------------------------------------------- names and layouts

def _meta_model(cfg: ModelConfig):
    """An (empty, meta-device) transformers model of ``cfg``: only its parameter names are used."""
    import torch
    import transformers

    conf = transformers.AutoConfig.for_model(**hf_config_dict(cfg))
    cls = getattr(transformers, HF_CLASS[cfg.arch])
    with torch.device("meta"):
        return cls(conf)


def hf_param_map(cfg: ModelConfig, hf_names=None) -> dict[str, str]:
    """canonical name -> transformers parameter name (tied head omitted).

    ``hf_names``: the model's parameter names (default: those of a meta-device
    transformers model of ``cfg``). Every canonical tensor of ``cfg`` must map.
    """
    import gguf

    if hf_names is None:
        hf_names = [n for n, _ in _meta_model(cfg).named_parameters()]
    tmap = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, _GGUF_ARCH[cfg.arch]), cfg.n_layers)
    out: dict[str, str] = {}
    for name in hf_names:
        canon = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if canon is None:
            raise ExportError(f"transformers parameter '{name}' has no GGUF name for {cfg.arch}")
        if canon == "output.weight" and cfg.tied_embeddings:
            continue
        out[canon] = name
    missing = [n for n in cfg.expected_shapes() if n not in out]
    if missing:
        raise ExportError(f"no transformers parameter for tensor '{missing[0]}'")
    return out


def _rope_rows(cfg: ModelConfig, canon: str):
    """(heads, is Q/K rows) for Q/K weights and biases."""
    for part, heads in ((".attn_q.", cfg.n_heads), (".attn_k.", cfg.n_kv_heads)):
        if part in canon and canon.startswith("blk."):
            return heads
    return None


def to_hf(cfg: ModelConfig, canon: str, hf_name: str, arr: np.ndarray, moments: bool = False) -> np.ndarray:
    """ckc layout -> the transformers parameter's layout (fp32, contiguous).

    ``moments=True`` for optimizer state (m, v): the same permutations and
    transposes, but no Gemma ``w − 1`` shift (a shift does not apply to moments)."""
    a = np.asarray(arr, dtype=np.float32)
    heads = _rope_rows(cfg, canon)
    if heads is not None and cfg.rope_style == "interleaved":
        a = unpermute_from_norm_rope(a, heads)
    if cfg.arch == "gpt2" and hf_name.endswith(_GPT2_CONV1D):
        a = a.T
    if cfg.arch in ("gemma", "gemma3") and canon.endswith("norm.weight") and not moments:
        a = a - np.float32(1.0)
    return np.ascontiguousarray(a, dtype=np.float32)


def from_hf(cfg: ModelConfig, canon: str, hf_name: str, arr: np.ndarray, moments: bool = False) -> np.ndarray:
    """Inverse of :func:`to_hf`."""
    a = np.asarray(arr, dtype=np.float32)
    if cfg.arch in ("gemma", "gemma3") and canon.endswith("norm.weight") and not moments:
        a = a + np.float32(1.0)
    if cfg.arch == "gpt2" and hf_name.endswith(_GPT2_CONV1D):
        a = a.T
    heads = _rope_rows(cfg, canon)
    if heads is not None and cfg.rope_style == "interleaved":
        a = permute_for_norm_rope(a, heads)
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_weights(cfg: ModelConfig, weights) -> None:
    for name, shape in cfg.expected_shapes().items():
        if name not in weights:
            raise ExportError(f"tensor '{name}' missing from the weights to export")
        got = tuple(np.shape(weights[name]))
        if got != tuple(shape):
            raise ExportError(f"tensor '{name}' has shape {list(got)}, expected {list(shape)}")


# --------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Path:
    """Write fp32 ``tensors`` as a .safetensors file (atomically: temp file + rename).

    Format: u64 little-endian N, then N bytes of JSON ``{name: {dtype, shape,
    data_offsets: [begin, end]}, "__metadata__": {...}}`` (padded with spaces
    to a multiple of 8), then the tensors' bytes back to back.
    """
    path = Path(path)
    header: dict = {"__metadata__": dict(metadata or {"format": "pt"})}
    arrays = []
    off = 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        arrays.append(a)
        off += a.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with replaced(path) as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for a in arrays:
            f.write(a.reshape(-1).view(np.uint8).data)
    return path


_HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                       "vocab.json", "merges.txt", "generation_config.json")


def export_hf(cfg: ModelConfig, weights, out_dir, tokenizer_src=None) -> Path:
    """Write ``out_dir``/config.json + model.safetensors (+ tokenizer files found next to
    ``tokenizer_src``, a tokenizer.json / folder); returns ``out_dir``."""
    _check_weights(cfg, weights)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pmap = hf_param_map(cfg)
    tensors = {hf: to_hf(cfg, canon, hf, weights[canon]) for canon, hf in pmap.items()}
    write_safetensors(out / "model.safetensors", tensors, {"format": "pt"})
    conf = hf_config_dict(cfg)
    with replaced(out / "config.json") as tmp:
        Path(tmp).write_text(json.dumps(conf, indent=2, sort_keys=True) + "\n")
    if tokenizer_src is not None:
        src = Path(tokenizer_src)
        folder = src if src.is_dir() else src.parent
        if src.is_dir() or src.suffix == ".json" or src.name == "config.json":
            for n in _HF_TOKENIZER_FILES:
                if (folder / n).is_file() and folder.resolve() != out.resolve():
                    with replaced(out / n) as tmp:
                        shutil.copyfile(folder / n, tmp)
    return out


# --------------------------------------------------------------------------- GGUF

def _gguf_tokenizer_fields(src: Path) -> list[tuple[str, object, object, object]]:
    """``[(key, value, vtype, sub_type)]`` of every ``tokenizer.*`` key of a GGUF."""
    import gguf

    r = gguf.GGUFReader(src)
    out = []
    for key, field in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = gguf.GGUFValueType(field.types[0])
        sub = gguf.GGUFValueType(field.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        val = field.contents()
        out.append((key, val, vtype, sub))
    return out


def _tokjson_fields(src: Path) -> list[tuple[str, object, object, object]]:
    """Byte-level BPE tokenizer.json -> llama.cpp ``gpt2`` tokenizer metadata."""
    import gguf

    V = gguf.GGUFValueType
    spec = json.loads(src.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type", "BPE") != "BPE":
        raise ExportError(f"{src}: only BPE tokenizer.json vocabularies can be written to GGUF")
    vocab = model.get("vocab") or {}
    added = spec.get("added_tokens") or []
    n = max([*vocab.values(), *(a["id"] for a in added), -1]) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [int(gguf.TokenType.UNUSED)] * n
    for t, i in vocab.items():
        tokens[i], types[i] = t, int(gguf.TokenType.NORMAL)
    for a in added:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = int(gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    fields = [("tokenizer.ggml.model", "gpt2", V.STRING, None), ("tokenizer.ggml.pre", "gpt-2", V.STRING, None),
              ("tokenizer.ggml.tokens", tokens, V.ARRAY, V.STRING),
              ("tokenizer.ggml.token_type", types, V.ARRAY, V.INT32),
              ("tokenizer.ggml.merges", merges, V.ARRAY, V.STRING)]
    cfgf = src.parent / "tokenizer_config.json"
    ids = {t: i for i, t in enumerate(tokens)}
    if cfgf.is_file():
        c = json.loads(cfgf.read_text(encoding="utf-8"))
        for k in ("bos", "eos", "unk"):
            v = c.get(f"{k}_token")
            v = v.get("content") if isinstance(v, dict) else v
            if v in ids:
                types[ids[v]] = int(gguf.TokenType.CONTROL)  # as convert_hf_to_gguf.py marks special tokens
                if k != "unk":
                    fields.append((f"tokenizer.ggml.{k}_token_id", ids[v], V.UINT32, None))
        fields.append(("tokenizer.ggml.add_bos_token", bool(c.get("add_bos_token", False)), V.BOOL, None))
        fields.append(("tokenizer.ggml.add_eos_token", bool(c.get("add_eos_token", False)), V.BOOL, None))
    return fields


def tokenizer_fields(tokenizer_src) -> list:
    """GGUF tokenizer metadata from a GGUF file or a tokenizer.json (or its folder)."""
    if tokenizer_src is None:
        return []
    src = Path(tokenizer_src)
    if src.is_dir():
        if (src / "tokenizer.json").is_file():
            src = src / "tokenizer.json"
        else:
            ggufs = sorted(src.glob("*.gguf"))
            if not ggufs:
                raise ExportError(f"{src}: no tokenizer.json or .gguf to take the tokenizer from")
            src = ggufs[0]
    with open(src, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        return _gguf_tokenizer_fields(src)
    return _tokjson_fields(src)


def export_gguf(cfg: ModelConfig, weights, path, tokenizer_src=None, name: str | None = None) -> Path:
    """Write an f32 GGUF of ``weights`` (atomically) that ckc and llama.cpp load."""
    import gguf

    _check_weights(cfg, weights)
    if cfg.arch not in _GGUF_ARCH:
        raise ExportError(f"architecture '{cfg.arch}' cannot be exported to GGUF")
    path = Path(path)
    with replaced(path) as tmp:
        w = gguf.GGUFWriter(tmp, cfg.arch)
        w.add_type("model")
        w.add_name(name or cfg.name or f"ckc-{cfg.arch}")
        w.add_context_length(cfg.max_context)
        w.add_embedding_length(cfg.hidden)
        w.add_block_count(cfg.n_layers)
        w.add_feed_forward_length(cfg.ffn)
        w.add_head_count(cfg.n_heads)
        w.add_head_count_kv(cfg.n_kv_heads)
        w.add_vocab_size(cfg.vocab_size)
        if cfg.head_dim * cfg.n_heads != cfg.hidden or cfg.arch != "gpt2":
            w.add_key_length(cfg.head_dim)
            w.add_value_length(cfg.head_dim)
        if cfg.norm == "layernorm":
            w.add_layer_norm_eps(cfg.norm_eps)
        else:
            w.add_layer_norm_rms_eps(cfg.norm_eps)
        if cfg.positional == "rope":
            w.add_rope_freq_base(cfg.rope_theta)
            w.add_rope_dimension_count(cfg.rope_dim)
            if cfg.rope_scaling in ("linear", "yarn"):
                w.add_rope_scaling_type(gguf.RopeScalingType(cfg.rope_scaling))
                w.add_rope_scaling_factor(cfg.rope_scaling_factor)
                if cfg.rope_scaling_orig_context:
                    w.add_rope_scaling_orig_ctx_len(cfg.rope_scaling_orig_context)
            elif cfg.rope_scaling not in ("none", "", None):
                raise ExportError(f"rope scaling '{cfg.rope_scaling}' is not exported to GGUF")
        if cfg.arch == "gemma3":
            if cfg.sliding_window is not None:
                w.add_sliding_window(int(cfg.sliding_window))
                w.add_array(f"{cfg.arch}.attention.sliding_window_pattern", [bool(b) for b in cfg.local_layers])
                w.add_float32(f"{cfg.arch}.rope.freq_base_swa", float(cfg.rope_theta_local or 10000.0))
            if cfg.final_logit_softcap:
                w.add_final_logit_softcapping(cfg.final_logit_softcap)
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        for key, val, vtype, sub in tokenizer_fields(tokenizer_src):
            if key == "tokenizer.ggml.tokens" and len(val) != cfg.vocab_size:
                raise ExportError(f"tokenizer has {len(val)} tokens, the model's vocabulary is {cfg.vocab_size}")
            w.add_key_value(key, val, vtype, sub_type=sub)
        for canon in cfg.expected_shapes():
            a = np.ascontiguousarray(weights[canon], dtype=np.float32)
            heads = _rope_rows(cfg, canon)
            if heads is not None and cfg.arch == "llama" and cfg.rope_style == "neox":
                a = permute_for_norm_rope(a, heads)     # llama.cpp's LLAMA_ROPE_TYPE_NORM rows
            elif heads is not None and cfg.arch != "llama" and cfg.rope_style == "interleaved":
                a = unpermute_from_norm_rope(a, heads)  # every other family is neox in GGUF
            w.add_tensor(canon, np.ascontiguousarray(a))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return path
