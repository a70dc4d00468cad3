"""GGUF -> (ModelConfig, WeightStore), through the ``gguf`` package.

Metadata keys are arch-prefixed (``llama.embedding_length``, ...). The header is
parsed here (``read_header``: gguf's value/tensor types and block sizes, without
``GGUFReader``'s per-element cost); the file is memory-mapped, fp32 tensors are
returned as views, everything else is dequantized to fp32 with
``gguf.quants.dequantize`` on access (``WeightStore.get``). Under ``weights="keep"``
(the default) the Linear and embedding weights keep the file's type instead:
``WeightStore.format`` names it (``q4_1``, ``q8_0``, ``f16``, ...; the element
types of dialects/quant.py) and ``WeightStore.raw`` hands out the stored bytes,
a view of the mapping (nothing copied, nothing dequantized). A kept tensor whose
type ckc has no kernel for (IQ2_XXS, ...) is an import error;
``weights="f32"`` (training) dequantizes everything.

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

import contextlib
import math
from pathlib import Path

import numpy as np

from .common import (KEEP_STORED, MAX_DIM, MAX_LAYERS, ModelImportError, TensorEntry, WeightStore, apply_rope_style,
                     check_layers, number, positive)
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
# GGML_QUANT_SIZES); test/py/test_importers.py cross-checks it against GGUFReader.

_SMALL_ARRAY = 4096  # arrays longer than this (vocabularies, merges) are skipped
MAX_DIMS = 4         # GGML_MAX_DIMS: ggml tensors have at most 4 dimensions
# The smallest encodings, used to reject counts the file cannot hold before
# looping over them: a key/value is a key length word, a type and at least one
# byte of value; a tensor info is a name length word, n_dims, one dim, type, offset.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8


class _Truncated(Exception):
    pass


class _Bad(Exception):
    """A malformed header; the message says what is wrong."""


class _Cursor:
    def __init__(self, buf, pos: int = 0):
        self.buf, self.pos = buf, pos

    def left(self) -> int:
        return len(self.buf) - self.pos

    def unpack(self, fmt: str):
        import struct

        try:
            vals = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error:
            raise _Truncated(self.pos) from None
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self, what: str = "string") -> str:
        at = self.pos
        n = self.unpack("<Q")
        if n > self.left():
            raise _Bad(f"{what} at byte {at} has length {n}, past the end of the file ({len(self.buf)} bytes)")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")


def _scalar_formats():
    from gguf import GGUFValueType as V

    return {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
            V.FLOAT32: "<f", V.BOOL: "<?", V.UINT64: "<Q", V.INT64: "<q", V.FLOAT64: "<d"}


def _read_value(cur: _Cursor, vtype: int, fmts, key: str, array=None):
    """One metadata value at the cursor. Arrays whose size is checked go to
    ``array(cur, key, etype, n)`` when given (it reads them and moves the
    cursor past them); by default short ones become lists, long ones None."""
    import struct

    from gguf import GGUFValueType as V

    if vtype == V.STRING:
        return cur.string(f"metadata '{key}'")
    if vtype == V.ARRAY:
        at = cur.pos
        etype, n = cur.unpack("<I"), cur.unpack("<Q")
        if etype == V.ARRAY:  # llama.cpp's gguf reader rejects them too
            raise _Bad(f"metadata '{key}': nested arrays are not supported")
        if etype != V.STRING and etype not in fmts:
            raise _Bad(f"metadata '{key}': unknown array element type {etype}")
        elem = 8 if etype == V.STRING else struct.calcsize(fmts[etype])
        if n > cur.left() // elem:
            raise _Bad(f"metadata '{key}': array at byte {at} has {n} elements, more than the "
                       f"{len(cur.buf)}-byte file can hold")
        if array is not None:
            return array(cur, key, etype, n)
        if n > _SMALL_ARRAY:
            if etype == V.STRING:
                for _ in range(n):
                    ln = cur.unpack("<Q")  # length word, then the bytes
                    if ln > cur.left():
                        raise _Bad(f"metadata '{key}': string of length {ln} at byte {cur.pos - 8} runs past "
                                   f"the end of the file ({len(cur.buf)} bytes)")
                    cur.pos += ln
            else:
                cur.pos += n * elem
            return None
        return [_read_value(cur, etype, fmts, key) for _ in range(n)]
    if vtype not in fmts:
        raise _Bad(f"metadata '{key}': unknown value type {vtype}")
    return cur.unpack(fmts[vtype])


@contextlib.contextmanager
def _header_errors(path: Path, buf):
    """_Truncated and _Bad from the header walk as one-line ModelImportErrors."""
    try:
        yield
    except _Truncated as t:
        raise ModelImportError(path, f"truncated GGUF: header cut at byte {t.args[0]} of {len(buf)}") from None
    except _Bad as e:
        raise ModelImportError(path, str(e)) from None


def _read_metadata(path: Path, cur: _Cursor, array=None) -> tuple[dict, int]:
    """(metadata, tensor count) from the header at the cursor (at byte 0);
    leaves the cursor at the first tensor info."""
    buf = cur.buf
    if len(buf) < 4 or bytes(buf[:4]) != b"GGUF":
        magic = bytes(buf[:4])
        raise ModelImportError(path, f"not a GGUF file (magic {magic!r})")
    cur.pos = 4
    fmts = _scalar_formats()
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise ModelImportError(path, f"unsupported GGUF version {version} (little-endian v2/v3 expected)")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_kv > cur.left() // _MIN_KV_BYTES:
        raise _Bad(f"metadata count {n_kv} cannot fit in a file of {len(buf)} bytes")
    if n_tensors > cur.left() // _MIN_TENSOR_BYTES:
        raise _Bad(f"tensor count {n_tensors} cannot fit in a file of {len(buf)} bytes")
    meta: dict = {}
    for _ in range(n_kv):
        key = cur.string("metadata key")
        vtype = cur.unpack("<I")
        meta[key] = _read_value(cur, vtype, fmts, key, array)
    return meta, n_tensors


def read_metadata(path: Path, buf, array=None) -> dict:
    """The key/value metadata of a GGUF buffer (tensor infos are not read).
    ``array``: how to read arrays (see ``_read_value``); the tokenizer reads
    its vocabulary as numpy views with it."""
    with _header_errors(path, buf):
        return _read_metadata(path, _Cursor(buf), array)[0]


def read_header(path: Path, buf) -> tuple[dict, list[tuple[str, list[int], int, int]], int]:
    """(metadata, [(name, dims (ggml order), type id, offset)], data start) of a GGUF buffer.

    Counts and lengths are checked against the bytes left before anything is
    looped over or allocated, so a corrupt header fails fast with one line."""
    from gguf import GGUF_DEFAULT_ALIGNMENT

    cur = _Cursor(buf)
    with _header_errors(path, buf):
        meta, n_tensors = _read_metadata(path, cur)
        infos = []
        seen = set()
        for _ in range(n_tensors):
            name = cur.string("tensor name")
            n_dims = cur.unpack("<I")
            if n_dims == 0 or n_dims > MAX_DIMS:
                raise _Bad(f"tensor '{name}' has {n_dims} dimensions (1 to {MAX_DIMS} expected)")
            dims = [cur.unpack("<Q") for _ in range(n_dims)]
            ttype = cur.unpack("<I")
            offset = cur.unpack("<Q")
            if name in seen:
                raise _Bad(f"tensor '{name}' appears twice")
            seen.add(name)
            infos.append((name, dims, ttype, offset))
    align = meta.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if type(align) is not int or align <= 0 or align & (align - 1) or align > 1 << 30:
        raise ModelImportError(path, f"general.alignment is {align!r}, expected a power of two")
    data_start = (cur.pos + align - 1) // align * align
    return meta, infos, data_start


def _f32(x) -> float:
    """A GGUF float32 as the shortest decimal that rounds to it (1e-05, not 9.99999974e-06)."""
    return float(str(np.float32(x)))


def _token_id(meta: dict, k: str) -> int | None:
    """A token id from the metadata, or None when absent or not a plain integer."""
    v = meta.get(k)
    return int(v) if type(v) is int and v >= 0 else None


def config_from_gguf(path: Path, meta: dict, tensors: dict) -> ModelConfig:
    arch = meta.get("general.architecture")
    if arch is None:
        raise ModelImportError(path, "GGUF has no general.architecture")
    if not isinstance(arch, str):
        raise ModelImportError(path, f"general.architecture is {type(arch).__name__}, expected a string")
    if arch not in ARCHS:
        raise ModelImportError(path, f"unsupported architecture '{arch}' (supported: {', '.join(ARCHS)})")

    def key(k, default=None, required=True):
        full = f"{arch}.{k}"
        if full in meta:
            return meta[full]
        if required and default is None:
            raise ModelImportError(path, f"metadata key '{full}' missing")
        return default

    def size(k, default=None, limit=MAX_DIM):
        v = key(k, default, required=default is None)
        if isinstance(v, list):  # per-layer values (head counts): the first layer's
            v = v[0] if v else None
        return positive(path, f"{arch}.{k}", v, limit)

    def num(k, default):
        return number(path, f"{arch}.{k}", key(k, default, required=False))

    hidden = size("embedding_length")
    n_heads = size("attention.head_count")
    n_kv = size("attention.head_count_kv", n_heads)
    n_layers = size("block_count", limit=MAX_LAYERS)
    check_layers(path, f"{arch}.block_count", n_layers, len(tensors))
    head_dim = size("attention.key_length", max(hidden // n_heads, 1))
    if "token_embd.weight" in tensors:
        vocab_rows = tensors["token_embd.weight"][0]
    else:
        raise ModelImportError(path, "tensor 'token_embd.weight' missing")
    vocab = size("vocab_size", vocab_rows)

    kw = family_defaults(arch)
    if arch == "llama":
        kw["rope_style"] = "interleaved"  # LLAMA_ROPE_TYPE_NORM; Q/K rows permuted by the converter
    if arch in ("llama", "qwen2", "qwen3"):
        kw["qkv_bias"] = kw.get("qkv_bias", False) or "blk.0.attn_q.bias" in tensors
        kw["out_bias"] = "blk.0.attn_output.bias" in tensors
        kw["mlp_bias"] = "blk.0.ffn_up.bias" in tensors
    if kw["norm"] == "layernorm":
        eps = num("attention.layer_norm_epsilon", 1e-5)
    else:
        eps = num("attention.layer_norm_rms_epsilon", 1e-6)

    cfg = dict(
        arch=arch,
        vocab_size=vocab,
        hidden=hidden,
        n_layers=n_layers,
        n_heads=int(n_heads),
        n_kv_heads=int(n_kv),
        head_dim=head_dim,
        ffn=size("feed_forward_length"),
        max_context=size("context_length", 2048),
        norm_eps=_f32(eps),
        tied_embeddings="output.weight" not in tensors,
        source="gguf",
        name=str(meta.get("general.name", ""))[:200],
        bos_token_id=_token_id(meta, "tokenizer.ggml.bos_token_id"),
        eos_token_id=_token_id(meta, "tokenizer.ggml.eos_token_id"),
        **kw,
    )
    if kw.get("positional", "rope") == "rope":
        cfg["rope_theta"] = _f32(num("rope.freq_base", 10000.0))
        cfg["rope_dim"] = size("rope.dimension_count", head_dim)
        stype = key("rope.scaling.type", None, required=False)
        if stype and stype != "none":
            if not isinstance(stype, str):
                raise ModelImportError(path, f"{arch}.rope.scaling.type is {type(stype).__name__}, expected a string")
            cfg["rope_scaling"] = stype
            cfg["rope_scaling_factor"] = _f32(num("rope.scaling.factor", 1.0))
            cfg["rope_scaling_orig_context"] = int(num("rope.scaling.original_context_length", 0))
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
            cfg["sliding_window"] = size("attention.sliding_window")
            pat = key("attention.sliding_window_pattern", 6, required=False)
            if isinstance(pat, list):
                local = [bool(x) for x in pat][:n_layers]
            else:
                p = int(number(path, f"{arch}.attention.sliding_window_pattern", pat))
                local = [p <= 0 or (il % p < p - 1) for il in range(n_layers)]
            cfg["local_layers"] = tuple(local) + (False,) * (n_layers - len(local))
            cfg["rope_theta_local"] = _f32(num("rope.freq_base_swa", 10000.0))
    softcap = num("final_logit_softcapping", 0.0)
    if softcap:
        cfg["final_logit_softcap"] = _f32(softcap)
    return ModelConfig(**cfg)


def tensor_entries(path: Path, mm, infos, data_start: int, align: int) -> dict[str, TensorEntry]:
    """A TensorEntry per header tensor, after checking its type, dimensions and
    byte range: inside the file, aligned, and overlapping no other tensor."""
    import gguf
    import gguf.quants

    from ckc.dialects.quant import format_of_ggml

    size = len(mm)
    supported = _supported_types()
    entries: dict[str, TensorEntry] = {}
    spans = []
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
        if any(d <= 0 or d > MAX_DIM for d in dims):
            raise ModelImportError(path, f"tensor '{name}' has invalid dimensions {list(dims)} "
                                         f"(each must be 1 to 2^40)")
        n = math.prod(int(d) for d in dims)
        if dims[0] % block:
            raise ModelImportError(path, f"tensor '{name}' of type {qtype.name}: row length {dims[0]} is not a "
                                         f"multiple of the {block}-value block")
        row_bytes = dims[0] // block * type_size
        nbytes = n // dims[0] * row_bytes
        if offset % align:
            raise ModelImportError(path, f"tensor '{name}' at data offset {offset} is not {align}-byte aligned")
        start = data_start + offset
        end = start + nbytes
        if start >= size:
            raise ModelImportError(path, f"truncated GGUF: tensor '{name}' at data offset {offset} starts past the end of the "
                                         f"file ({size} bytes)")
        if end > size:
            raise ModelImportError(path, f"truncated GGUF: tensor '{name}' of type {qtype.name} needs bytes "
                                         f"[{start}, {end}), file has {size}")
        shape = tuple(int(d) for d in reversed(dims))
        spans.append((start, end, name))

        def load(start=start, end=end, row_bytes=row_bytes, qtype=qtype, shape=shape):
            raw = mm[start:end].reshape(-1, row_bytes)
            return gguf.quants.dequantize(raw, qtype).reshape(shape)

        def raw(start=start, end=end, row_bytes=row_bytes):
            return mm[start:end].reshape(-1, row_bytes)

        fmt = format_of_ggml(int(qtype))
        entries[name] = TensorEntry(shape=shape, src_type=qtype.name, load=load, fmt=fmt,
                                    raw=raw if fmt is not None else None)
    spans.sort()
    for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise ModelImportError(path, f"tensors '{n0}' [{s0}, {e0}) and '{n1}' [{s1}, {e1}) overlap in the file")
    return entries


def open_gguf(path) -> tuple[dict, dict[str, TensorEntry], object]:
    """(metadata, checked tensor entries, the mapping) of a GGUF file."""
    from gguf import GGUF_DEFAULT_ALIGNMENT

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ModelImportError(path, "empty file (not a GGUF file)")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    meta, infos, data_start = read_header(path, mm)
    entries = tensor_entries(path, mm, infos, data_start, meta.get("general.alignment", GGUF_DEFAULT_ALIGNMENT))
    return meta, entries, mm


def check_runnable(store: WeightStore) -> None:
    """Under ``keep``, every Linear / embedding weight must be in a format ckc
    has kernels for (dialects/quant.py FORMATS); one line naming the first
    that is not."""
    from ckc.dialects.quant import FORMATS

    if store.weights != "keep":
        return
    for name in store:
        e = store._entry(name)
        if e.fmt is None and KEEP_STORED.match(name):
            raise ModelImportError(store.path, f"tensor '{name}' has type {e.src_type}, which this build cannot "
                                               f"run (it runs {', '.join(t.upper() for t in FORMATS)})")


def load_gguf(path, *, rope_style: str | None = None, weights: str = "keep") -> tuple[ModelConfig, WeightStore]:
    """Read a GGUF file. ``rope_style="neox"`` un-permutes llama Q/K rows.
    ``weights``: "keep" (Linear/embedding weights in the file's types) or "f32"."""
    path = Path(path)
    meta, entries, mm = open_gguf(path)
    cfg = config_from_gguf(path, meta, {k: e.shape for k, e in entries.items()})
    store = WeightStore(path, entries, keepalive=mm, weights=weights)
    check_runnable(store)
    store.validate(cfg)
    apply_rope_style(cfg, store, rope_style)
    return cfg, store
