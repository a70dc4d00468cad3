"""Shared pieces of the importers: the one-line error and the weight store."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np


class ModelImportError(Exception):
    """Bad model input: one line naming the file, the tensor and what was expected."""

    def __init__(self, path, message: str):
        from ckc.errors import one_line

        self.path = str(path)
        self.detail = one_line(message)
        super().__init__(one_line(f"{path}: {message}"))


# Short alias used by the issue text.
ImportError_ = ModelImportError


# No real dimension comes near this; a corrupt header must not reach the
# arithmetic (sizes that wrap, lists of 2^60 layers) before it is rejected.
MAX_DIM = 1 << 40
MAX_LAYERS = 1 << 16  # per-layer tables are built from the count before tensors are matched


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def positive(path, what: str, value, limit: int = MAX_DIM) -> int:
    """``value`` as an int in [1, limit], else a one-line ModelImportError naming
    ``what`` (a size of 0 would otherwise surface later as a division by zero).
    Integral floats (``4096.0``) pass; strings, bools and fractions do not."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelImportError(path, f"{what} is {_short(value)}, expected a positive integer")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ModelImportError(path, f"{what} is {_short(value)}, expected a positive integer")
    n = int(value)
    if n <= 0 or n > limit:
        raise ModelImportError(path, f"{what} is {n}, expected a positive integer up to {limit}")
    return n


def number(path, what: str, value) -> float:
    """``value`` as a finite float, else a one-line ModelImportError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelImportError(path, f"{what} is {_short(value)}, expected a number")
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")):
        raise ModelImportError(path, f"{what} is {x}, expected a finite number")
    return x


def check_layers(path, what: str, n_layers: int, n_tensors: int) -> None:
    """Every layer has tensors: a layer count above the tensor count is corrupt
    (and would otherwise build per-layer tables of that length first)."""
    if n_layers > n_tensors:
        raise ModelImportError(path, f"{what} is {n_layers} but the model has only {n_tensors} tensors")


@dataclass
class TensorEntry:
    shape: tuple[int, ...]     # numpy (row-major) shape after import transforms
    src_type: str              # type in the file: F32, F16, BF16, Q4_1, ...
    load: Callable[[], np.ndarray]
    # The stored form, when ckc can run it as it is (GGUF): the format name of
    # dialects/quant.py ("q4_1", "f16", "f32", ...) and the raw bytes as a
    # uint8 [rows, row_bytes] view of the mapped file (no copy).
    fmt: str | None = None
    raw: Callable[[], np.ndarray] | None = None


# The tensors a kernel reads in their stored format: the Linear weights and the
# embedding table (qgemm_*, qembedding_*). Everything else (norms, biases,
# learned positions, rope tables) is small and read as fp32.
KEEP_STORED = re.compile(r"^(token_embd|output|blk\.\d+\.(attn_(q|k|v|qkv|output)|ffn_(gate|up|down)))\.weight$")
WEIGHT_MODES = ("keep", "f32")


class WeightStore:
    """Canonically named fp32 tensors, loaded on demand from a mapped file.

    ``store[name]`` returns a float32 numpy array in PyTorch layout (linear
    weights ``[out, in]``). Unquantized fp32 tensors come back as read-only
    views of the memory-mapped file (no copy); quantized ones are dequantized
    with ``gguf.quants`` on each access (cache them at the call site if needed).
    """

    def __init__(self, path, entries: dict[str, TensorEntry], keepalive=None, weights: str = "keep"):
        if weights not in WEIGHT_MODES:
            raise ModelImportError(path, f"unknown weights mode '{weights}' (expected {', '.join(WEIGHT_MODES)})")
        self.path = str(path)
        self._entries = entries
        self._keepalive = keepalive  # the reader / memmaps the loaders use
        self.weights = weights       # keep: Linear/embedding weights in their stored format; f32: all fp32

    def format(self, name: str) -> str:
        """The format the IR gives tensor ``name``: its stored format ("q4_1",
        "q8_0", "f16", ...) for a Linear or embedding weight under ``keep``
        (the default for GGUF), else "f32" (:meth:`get` dequantizes)."""
        e = self._entry(name)
        if self.weights == "keep" and e.fmt is not None and e.raw is not None and len(e.shape) == 2 \
                and KEEP_STORED.match(name):
            return e.fmt
        return "f32"

    def formats(self) -> dict[str, str]:
        return {n: self.format(n) for n in self._entries}

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of ``name`` (uint8 [rows, row_bytes], a view of the
        mapped file), in :meth:`format`'s format; import transforms (rope
        row permutations) applied."""
        e = self._entry(name)
        if e.raw is None:
            raise ModelImportError(self.path, f"tensor '{name}' has no stored form ckc reads as it is")
        return e.raw()

    # mapping-ish API
    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def src_type(self, name: str) -> str:
        return self._entry(name).src_type

    def get(self, name: str) -> np.ndarray:
        e = self._entry(name)
        arr = np.asarray(e.load())
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        if arr.shape != e.shape:
            arr = arr.reshape(e.shape)
        return arr

    __getitem__ = get

    def items(self):
        for n in self._entries:
            yield n, self.get(n)

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise ModelImportError(self.path, f"tensor '{name}' missing") from None

    # transforms (lazily composed)
    def _map(self, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        e = self._entries[name]
        inner = e.load
        e.load = lambda: fn(np.asarray(inner(), dtype=np.float32))
        if e.raw is not None:  # row permutations apply to the stored rows as they are
            inner_raw = e.raw
            e.raw = lambda: fn(inner_raw())

    def validate(self, config) -> None:
        """Raise a one-line error for a missing tensor or a wrong shape."""
        for name, shape in config.expected_shapes().items():
            if name not in self._entries:
                raise ModelImportError(self.path, f"tensor '{name}' missing")
            got = self._entries[name].shape
            if tuple(got) != tuple(shape):
                raise ModelImportError(
                    self.path,
                    f"tensor '{name}' has shape {list(got)}, expected {list(shape)}",
                )


# --------------------------------------------------------------------------
# safetensors, read by hand (memory-mapped; no dependency; bf16 supported)

_ST_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "BF16": np.uint16,
}


_ST_ITEMSIZE = {"F32": 4, "F16": 2, "F64": 8, "BF16": 2}
# A header is JSON describing tensors: real ones are kilobytes to a few MB.
# The limit keeps a corrupt length word from reading a whole multi-GB file into memory.
_ST_MAX_HEADER = 100 << 20


def read_safetensors_index(path: Path) -> dict[str, tuple[str, tuple[int, ...], Callable[[], np.ndarray]]]:
    """name -> (dtype, shape, loader) for one .safetensors file (memory-mapped).

    Everything is checked before anything is mapped: the header length, that the
    header is a JSON object of ``{dtype, shape, data_offsets}`` entries, that
    each tensor's byte range matches its dtype and shape and lies in the file,
    and that no two ranges overlap."""
    import json
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelImportError(path, "truncated safetensors file (no header)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ModelImportError(path, f"truncated safetensors file (header of {n} bytes, file has {size})")
        if n > _ST_MAX_HEADER:
            raise ModelImportError(path, f"safetensors header of {n} bytes is over the {_ST_MAX_HEADER}-byte limit")
        try:
            header = json.loads(f.read(n))
        except (ValueError, RecursionError) as e:
            raise ModelImportError(path, f"malformed safetensors header ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(header, dict):
        raise ModelImportError(path, "malformed safetensors header (not a JSON object)")
    base = 8 + n
    out = {}
    ranges = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ModelImportError(path, f"tensor '{name}': header entry is not an object")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ST_DTYPES:
            raise ModelImportError(path, f"tensor '{name}' has unsupported type {_short(dtype)}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(type(d) is int and 0 <= d <= MAX_DIM for d in shape)):
            raise ModelImportError(path, f"tensor '{name}' has invalid shape {_short(shape)}")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(type(o) is int for o in offs)
                or not 0 <= offs[0] <= offs[1]):
            raise ModelImportError(path, f"tensor '{name}' has invalid data_offsets {_short(offs)}")
        start, end = offs
        shape = tuple(shape)
        want = math.prod(shape) * _ST_ITEMSIZE[dtype]
        if end - start != want:
            raise ModelImportError(path, f"tensor '{name}': data_offsets {offs} hold {end - start} bytes, "
                                         f"{dtype} {list(shape)} needs {want}")
        if base + end > size:
            raise ModelImportError(path, f"truncated safetensors file (tensor '{name}' runs past the end)")
        ranges.append((start, end, name))

        def load(start=start, end=end, dtype=dtype, shape=shape):
            raw = mm[base + start : base + end]
            if dtype == "BF16":
                u = raw.view(np.uint16).astype(np.uint32) << 16
                return u.view(np.float32).reshape(shape)
            arr = raw.view(_ST_DTYPES[dtype]).reshape(shape)
            return arr if dtype == "F32" else arr.astype(np.float32)

        out[name] = (dtype, shape, load)
    ranges.sort()
    for (s0, e0, n0), (s1, e1, n1) in zip(ranges, ranges[1:]):
        if s1 < e0 and s1 < e1:
            raise ModelImportError(path, f"tensors '{n0}' and '{n1}' overlap in the file")
    mm = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    return out


def apply_rope_style(cfg, store: WeightStore, rope_style: str | None) -> None:
    """Re-lay Q/K rows (and biases) so ``cfg.rope_style == rope_style``.

    ``None`` keeps what the file holds. Converting between "neox" and "interleaved" is
    an exact row permutation within each head (convert_hf_to_gguf's permute).
    """
    from .config import permute_for_norm_rope, unpermute_from_norm_rope

    if rope_style is None or cfg.rope_style == "none" or rope_style == cfg.rope_style:
        return
    if rope_style not in ("neox", "interleaved"):
        raise ModelImportError(store.path, f"unknown rope_style '{rope_style}' (use neox or norm)")
    fn = unpermute_from_norm_rope if rope_style == "neox" else permute_for_norm_rope
    for i in range(cfg.n_layers):
        for part, heads in (("attn_q", cfg.n_heads), ("attn_k", cfg.n_kv_heads)):
            for suffix in ("weight", "bias"):
                n = f"blk.{i}.{part}.{suffix}"
                if n in store:
                    store._map(n, lambda w, h=heads: fn(w, h))
    cfg.rope_style = rope_style
