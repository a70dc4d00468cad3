"""GGUF -> (ModelConfig, WeightStore), through the ``gguf`` package.

Metadata keys are arch-prefixed (``llama.embedding_length``, ...). The header is
parsed here (``read_header``: gguf's value/tensor types and block sizes, without
``GGUFReader``'s per-element cost); the file is memory-mapped, fp32 tensors are
returned as views, everything else is dequantized to fp32 with
``gguf.quants.dequantize`` on access.

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

from .common import ModelImportError, TensorEntry, WeightStore, apply_rope_style, positive
from .config import ARCHS, ModelConfig, family_defaults

# Types gguf.quants can turn into fp32.
_FLOAT_TYPES = {"F32", "F16", "BF16"}


def _supported_types() -> set[str]:
    import gguf.quants as q

    traits = getattr(q, "_type_traits", {})
    return _FLOAT_TYPES | {t.name for t in traits}


# ---------------------------------------------------------------------------
# header parsing
#
# gguf.GGUFReader builds a numpy view per array element, which takes ~10 s on
# a file with a 50k-token vocabulary; this parser reads the same header with
# struct (skipping big arrays) in milliseconds. Layout, types and block sizes
# come from the gguf package (GGUFValueType, GGMLQuantizationType,
# GGML_QUANT_SIZES); tests/test_importers.py cross-checks it against GGUFReader.

_SMALL_ARRAY = 4096  # arrays longer than this (vocabularies, merges) are skipped


class _Truncated(Exception):
    pass


class _Cursor:
    def __init__(self, buf, pos: int = 0):
        self.buf, self.pos = buf, pos

    def unpack(self, fmt: str):
        import struct

        try:
            vals = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error:
            raise _Truncated(self.pos) from None
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self) -> str:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise _Truncated(self.pos)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")


def _scalar_formats():
    from gguf import GGUFValueType as V

    return {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
            V.FLOAT32: "<f", V.BOOL: "<?", V.UINT64: "<Q", V.INT64: "<q", V.FLOAT64: "<d"}


def _read_value(cur: _Cursor, vtype: int, fmts):
    from gguf import GGUFValueType as V

    if vtype == V.STRING:
        return cur.string()
    if vtype == V.ARRAY:
        etype, n = cur.unpack("<I"), cur.unpack("<Q")
        if n > _SMALL_ARRAY:
            if etype == V.STRING:
                for _ in range(n):
                    ln = cur.unpack("<Q")  # length word, then the bytes
                    cur.pos += ln
                    if cur.pos > len(cur.buf):
                        raise _Truncated(cur.pos)
            elif etype in fmts:
                import struct

                cur.pos += n * struct.calcsize(fmts[etype])
                if cur.pos > len(cur.buf):
                    raise _Truncated(cur.pos)
            else:
                for _ in range(n):
                    _read_value(cur, etype, fmts)
            return None
        return [_read_value(cur, etype, fmts) for _ in range(n)]
    if vtype not in fmts:
        raise ValueError(f"unknown metadata value type {vtype}")
    return cur.unpack(fmts[vtype])


def read_header(path: Path, buf) -> tuple[dict, list[tuple[str, list[int], int, int]], int]:
    """(metadata, [(name, dims (ggml order), type id, offset)], data start) of a GGUF buffer."""
    from gguf import GGUF_DEFAULT_ALIGNMENT

    if len(buf) < 4 or bytes(buf[:4]) != b"GGUF":
        magic = bytes(buf[:4])
        raise ModelImportError(path, f"not a GGUF file (magic {magic!r})")
    cur = _Cursor(buf, 4)
    fmts = _scalar_formats()
    try:
        version = cur.unpack("<I")
        if version not in (2, 3):
            raise ModelImportError(path, f"unsupported GGUF version {version} (little-endian v2/v3 expected)")
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        meta: dict = {}
        for _ in range(n_kv):
            key = cur.string()
            vtype = cur.unpack("<I")
            try:
                meta[key] = _read_value(cur, vtype, fmts)
            except ValueError as e:
                raise ModelImportError(path, f"metadata '{key}': {e}") from None
        infos = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("<I")
            if n_dims > 8:
                raise ModelImportError(path, f"tensor '{name}' has {n_dims} dimensions (malformed GGUF)")
            dims = [cur.unpack("<Q") for _ in range(n_dims)]
            ttype = cur.unpack("<I")
            offset = cur.unpack("<Q")
            infos.append((name, dims, ttype, offset))
    except _Truncated as t:
        raise ModelImportError(path, f"truncated GGUF: header cut at byte {t.args[0]} of {len(buf)}") from None
    align = int(meta.get("general.alignment", GGUF_DEFAULT_ALIGNMENT) or GGUF_DEFAULT_ALIGNMENT)
    data_start = (cur.pos + align - 1) // align * align
    return meta, infos, data_start


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
    n_heads = positive(path, "attention.head_count", n_heads)
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
    import gguf
    import gguf.quants

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ModelImportError(path, "empty file (not a GGUF file)")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    meta, infos, data_start = read_header(path, mm)
    supported = _supported_types()
    entries: dict[str, TensorEntry] = {}
    for name, dims, ttype, offset in infos:
        try:
            qtype = gguf.GGMLQuantizationType(ttype)
        except ValueError:
            raise ModelImportError(path, f"tensor '{name}' has unsupported type {ttype}") from None
        if qtype.name not in supported:
            raise ModelImportError(path, f"tensor '{name}' has unsupported type {qtype.name}")
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        # Every dimension positive and sane, so sizes below cannot divide by
        # zero or wrap around (a corrupt header must not pass the size check).
        if any(d <= 0 or d > 1 << 40 for d in dims):
            raise ModelImportError(path, f"tensor '{name}' has invalid dimensions {list(dims)}")
        n = math.prod(int(d) for d in dims) if dims else 1
        if not dims or dims[0] % block:
            raise ModelImportError(path, f"tensor '{name}' of type {qtype.name}: row length {dims[:1]} is not a multiple of {block}")
        row_bytes = dims[0] // block * type_size
        start = data_start + offset
        end = start + n // dims[0] * row_bytes
        if end > size:
            raise ModelImportError(path, f"truncated GGUF: tensor '{name}' needs bytes up to {end}, file has {size}")
        shape = tuple(int(d) for d in reversed(dims))

        def load(start=start, end=end, row_bytes=row_bytes, qtype=qtype, shape=shape):
            raw = mm[start:end].reshape(-1, row_bytes)
            return gguf.quants.dequantize(raw, qtype).reshape(shape)

        entries[name] = TensorEntry(shape=shape, src_type=qtype.name, load=load)

    cfg = config_from_gguf(path, meta, {k: e.shape for k, e in entries.items()})
    store = WeightStore(path, entries, keepalive=mm)
    store.validate(cfg)
    apply_rope_style(cfg, store, rope_style)
    return cfg, store
