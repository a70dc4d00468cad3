"""The ``.bump`` weights file: one flat, mmap-able file with every tensor of a model.

The byte layout is documented next to the C reader in ``runtime/weights.h``; this
module writes and reads the same format and raises the same one-line errors:

- a 64-byte header: magic ``CKCBUMP1``, version, alignment (64), tensor count,
  total size, data offset, name-table size, FNV-1a 64 checksum of everything
  before the data;
- a table of 96-byte entries (dtype, shape, byte offset, byte size, name),
  names printable ASCII and unique;
- the data, every tensor at a 64-byte-aligned offset, in the caller's order.

``write_bump`` writes to a temporary file and renames it, so an interrupted write
never leaves a half-written file under the final name. ``read_bump`` returns
read-only ``np.memmap`` views, nothing is copied.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ckc.atomic import replaced

MAGIC = b"CKCBUMP1"
VERSION = 1
ALIGN = 64
HEADER_BYTES = 64
ENTRY_BYTES = 96
MAX_DIMS = 8

# dtype codes (part of the file format; never renumber): ggml block layouts
# along the last dim (the GGUF bytes as they are), then their r8 repackings.
F32, F16, Q8_0, Q4_0, Q4_1, BF16, F32P32 = range(7)
Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K = range(7, 14)
Q8_0R8, Q4_0R8, Q4_1R8, Q5_0R8, Q5_1R8 = range(14, 19)
DTYPE_NAMES = {F32: "f32", F16: "f16", Q8_0: "q8_0", Q4_0: "q4_0", Q4_1: "q4_1", BF16: "bf16", F32P32: "f32p32",
               Q5_0: "q5_0", Q5_1: "q5_1", Q2_K: "q2_k", Q3_K: "q3_k", Q4_K: "q4_k", Q5_K: "q5_k", Q6_K: "q6_k",
               Q8_0R8: "q8_0r8", Q4_0R8: "q4_0r8", Q4_1R8: "q4_1r8", Q5_0R8: "q5_0r8", Q5_1R8: "q5_1r8"}
# f32p32: a 2-D f32 weight [N, K] stored prepacked for ck_gemm_packed_f32 (panels of
# 32 rows, k-major, N padded with zero rows to a multiple of 32; runtime/weights.h).
P32 = 32
# <fmt>r8: a 2-D block-format weight [N, K] repacked by ck_qpack_<fmt> (8 rows'
# blocks interleaved, N padded with zero rows to a multiple of 8; ckernels.h).
R8 = 8
# (values per block, bytes per block)
_BLOCKS = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q8_0: (32, 34), Q4_0: (32, 18), Q4_1: (32, 20),
           Q5_0: (32, 22), Q5_1: (32, 24), Q2_K: (256, 84), Q3_K: (256, 110), Q4_K: (256, 144),
           Q5_K: (256, 176), Q6_K: (256, 210)}
_R8_OF = {Q8_0R8: Q8_0, Q4_0R8: Q4_0, Q4_1R8: Q4_1, Q5_0R8: Q5_0, Q5_1R8: Q5_1}
_NUMPY = {F32: np.dtype("<f4"), F16: np.dtype("<f2")}
_CODE = {name: code for code, name in DTYPE_NAMES.items()}


def dtype_code(fmt: str, layout: str | None = None) -> int:
    """The code of a weight format (dialects/quant.py names) in a layout:
    ``("q4_1", None)`` -> Q4_1, ``("q4_1", "r8")`` -> Q4_1R8, ``("f32", "p32")`` -> F32P32."""
    name = fmt if layout is None else fmt + layout
    if name not in _CODE:
        raise KeyError(name)
    return _CODE[name]

_HEADER = struct.Struct("<8sIIQQQQQQ")  # 64 bytes
_ENTRY = struct.Struct("<II8QQQII")  # 96 bytes
assert _HEADER.size == HEADER_BYTES and _ENTRY.size == ENTRY_BYTES

_FNV_INIT = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1


class BumpError(ValueError):
    """A .bump file is missing, malformed or truncated; str() is one line."""

    def __init__(self, message: str):
        from ckc.errors import one_line

        super().__init__(one_line(message))


WeightsError = BumpError  # the name ckc.cli looks up for user-facing errors


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, "?")


def fnv1a64(data: bytes, h: int = _FNV_INIT) -> int:
    """FNV-1a 64 (the header checksum). A serial hash; it only covers the header,
    table and names (about 100 bytes per tensor), never the data."""
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def tensor_nbytes(dtype: int, shape: tuple[int, ...]) -> int | None:
    """Bytes for a tensor of ``shape``; None if the last dim does not fit the blocks."""
    if dtype == F32P32:
        if len(shape) != 2:
            return None
        n, k = shape
        return -(-n // P32) * P32 * k * 4
    if dtype in _R8_OF:
        if len(shape) != 2:
            return None
        n, k = shape
        rows = tensor_nbytes(_R8_OF[dtype], (1, k))
        return None if rows is None else -(-n // R8) * R8 * rows
    per_block, block_bytes = _BLOCKS[dtype]
    last = shape[-1] if shape else 1
    rows = math.prod(shape[:-1])
    if last % per_block:
        return None
    return rows * (last // per_block) * block_bytes


def pack_p32(w: np.ndarray) -> np.ndarray:
    """W[N, K] f32 -> its f32p32 panels [ceil(N/32), K, 32] (ck_gemm_pack_f32's layout)."""
    n, k = w.shape
    if n % P32:
        pad = np.zeros((-(-n // P32) * P32, k), np.float32)
        pad[:n] = w
        w = pad
    return np.ascontiguousarray(w.reshape(-1, P32, k).transpose(0, 2, 1))


def unpack_p32(panels: np.ndarray, n: int) -> np.ndarray:
    """f32p32 panels [P, K, 32] -> W[n, K] (a copy)."""
    return np.ascontiguousarray(panels.transpose(0, 2, 1).reshape(-1, panels.shape[1])[:n])


def _printable(name: bytes) -> bool:
    return all(0x20 <= b <= 0x7E for b in name)


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def _dtype_code(arr: np.ndarray, name: str, path: Path) -> int:
    if arr.dtype == np.float32:
        return F32
    if arr.dtype == np.float16:
        return F16
    raise BumpError(f"{path}: tensor '{name}' has dtype {arr.dtype}; a .bump stores f32 or f16")


def bump_layout(specs) -> tuple[list[TensorEntry], int]:
    """Where ``write_bump`` puts each tensor, without writing anything: ``specs`` is a
    list of ``(name, shape, dtype code)`` in file order; returns the table entries
    (with offsets) and the total file size. For reports such as memory.txt."""
    specs = list(specs)
    strtab = sum(len(name) for name, _, _ in specs)
    pos = _align(HEADER_BYTES + ENTRY_BYTES * len(specs) + strtab)
    entries = []
    for name, shape, code in specs:
        shape = tuple(int(d) for d in shape)
        nbytes = tensor_nbytes(code, shape)
        if nbytes is None:
            raise BumpError(f"tensor '{name}': shape {list(shape)} does not fit {DTYPE_NAMES[code]} blocks")
        entries.append(TensorEntry(name, code, shape, pos, nbytes))
        pos = _align(pos + nbytes)
    return entries, pos


def write_bump(path, tensors) -> Path:
    """Write ``tensors`` (a list of ``(name, np.ndarray)``, f32 or f16, in the order
    they should lie in the file) to ``path`` atomically. Returns the path.
    ``(name, W, F32P32)`` stores the 2-D f32 matrix W prepacked (f32p32);
    ``(name, raw, code, shape)`` stores ``raw`` (uint8, exactly the bytes of
    ``code`` for ``shape``: GGUF blocks, bf16 bits, an r8 repacking) as it is."""
    path = Path(path)
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    seen: set[str] = set()
    arrays = []
    specs = []
    for item in items:
        name, arr = item[0], item[1]
        if not isinstance(name, str) or not name or not _printable(name.encode("utf-8")):
            raise BumpError(f"{path}: tensor names must be non-empty printable ASCII, got {name!r}")
        if name in seen:
            raise BumpError(f"{path}: tensor '{name}' given twice")
        seen.add(name)
        arr = np.asarray(arr)
        if len(item) > 3:   # stored bytes in a given dtype (quantized blocks, bf16, r8)
            code, shape = item[2], tuple(int(d) for d in item[3])
            want = tensor_nbytes(code, shape) if code in DTYPE_NAMES and code != F32P32 else None
            if arr.dtype != np.uint8 or want is None or arr.size != want:
                raise BumpError(f"{path}: tensor '{name}': {arr.size} {arr.dtype} values are not the "
                                f"{want} bytes of {DTYPE_NAMES.get(code, code)} {list(shape)}")
            arrays.append(np.ascontiguousarray(arr).reshape(-1))
            specs.append((name, shape, code))
            continue
        if len(item) > 2 and item[2] == F32P32:
            if arr.ndim != 2 or arr.dtype != np.float32:
                raise BumpError(f"{path}: tensor '{name}': f32p32 needs a 2-D f32 matrix, got {arr.dtype} "
                                f"{list(arr.shape)}")
            arrays.append(pack_p32(arr))
            specs.append((name, arr.shape, F32P32))
            continue
        code = _dtype_code(arr, name, path)
        if arr.ndim > MAX_DIMS:
            raise BumpError(f"{path}: tensor '{name}' has {arr.ndim} dims (at most {MAX_DIMS})")
        arrays.append(np.ascontiguousarray(arr, dtype=_NUMPY[code]))
        specs.append((name, arr.shape, code))

    entries, total = bump_layout(specs)
    strtab = "".join(e.name for e in entries).encode("ascii")
    table_end = HEADER_BYTES + ENTRY_BYTES * len(entries)
    data = _align(table_end + len(strtab))
    table = bytearray()
    noff = 0
    for e in entries:
        dims = list(e.shape) + [0] * (MAX_DIMS - len(e.shape))
        table += _ENTRY.pack(e.dtype, len(e.shape), *dims, e.offset, e.nbytes, noff, len(e.name))
        noff += len(e.name)
    # the checksum covers [0, data) with its own field read as zero
    head = _HEADER.pack(MAGIC, VERSION, ALIGN, len(entries), total, data, len(strtab), 0, 0)
    meta = head + bytes(table) + strtab + bytes(data - table_end - len(strtab))
    checksum = fnv1a64(meta)
    head = _HEADER.pack(MAGIC, VERSION, ALIGN, len(entries), total, data, len(strtab), checksum, 0)
    meta = head + meta[HEADER_BYTES:]

    with replaced(path) as tmp, open(tmp, "wb") as f:
        f.write(meta)
        for e, arr in zip(entries, arrays):
            f.seek(e.offset)
            f.write(arr.reshape(-1).view(np.uint8).data)
        f.truncate(total)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_table(path) -> list[TensorEntry]:
    """Validate ``path`` and return its table (no data is touched)."""
    return _read(Path(path))[0]


def read_bump(path) -> dict[str, np.ndarray]:
    """Validate ``path`` and return ``{name: read-only np.memmap view}`` in file order.
    Quantized tensors come back as their raw bytes (uint8, shape [nbytes]); f32p32
    ones as their panels ([ceil(N/32), K, 32], see :func:`unpack_p32`)."""
    entries, mm = _read(Path(path))
    out: dict[str, np.ndarray] = {}
    for e in entries:
        raw = mm[e.offset : e.offset + e.nbytes]
        if e.dtype in _NUMPY:
            out[e.name] = raw.view(_NUMPY[e.dtype]).reshape(e.shape)
        elif e.dtype == F32P32:   # the panels [ceil(N/32), K, 32]; unpack_p32 gives W
            out[e.name] = raw.view("<f4").reshape(-1, e.shape[1], P32)
        elif e.dtype == BF16:
            out[e.name] = raw.view("<u2").reshape(e.shape)
        else:
            out[e.name] = raw
    return out


def _read(path: Path):
    def fail(msg: str):
        raise BumpError(f"{path}: {msg}")

    try:
        size = path.stat().st_size
        if not path.is_file():
            fail("not a regular file")
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError as e:
        fail(f"cannot open weights file: {e.strerror or e}")
    if size >= 8 and head[:8] != MAGIC:
        fail(f'bad magic: not a ckc weights file (expected "{MAGIC.decode()}")')
    if size < HEADER_BYTES:
        fail(f"truncated: {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    _, version, align, count, total, data, strtab, checksum, _ = _HEADER.unpack(head)
    if version != VERSION:
        fail(f"unsupported .bump version {version} (this runtime reads {VERSION})")
    if align < ALIGN or align > 65536 or align & (align - 1):
        fail(f"bad alignment {align} (expected a power of two >= {ALIGN})")
    if count > (size - HEADER_BYTES) // ENTRY_BYTES or count > 0x7FFFFFFF:
        fail(f"truncated: table of {count} tensors does not fit in {size} bytes")
    table_end = HEADER_BYTES + count * ENTRY_BYTES
    if strtab > size - table_end:
        fail(f"truncated: name table of {strtab} bytes runs past the end ({size} bytes)")
    if data < table_end + strtab:
        fail(f"corrupt header: data offset {data} inside the tensor table")
    if data > size:
        fail(f"truncated: data starts at {data} but the file has {size} bytes")
    if data % align:
        fail(f"bad alignment: data offset {data} is not {align}-byte aligned")

    mm = np.memmap(path, dtype=np.uint8, mode="r")
    meta = bytes(mm[:data])
    h = fnv1a64(meta[:48])
    h = fnv1a64(bytes(8), h)
    h = fnv1a64(meta[56:], h)
    if h != checksum:
        fail(f"header checksum mismatch (stored {checksum:016x}, computed {h:016x}): corrupt file")

    names = meta[table_end : table_end + strtab]
    entries: list[TensorEntry] = []
    prev_end = data
    name_pos = 0  # names lie back to back in table order
    for i in range(count):
        fields = _ENTRY.unpack_from(meta, HEADER_BYTES + i * ENTRY_BYTES)
        code, ndim = fields[0], fields[1]
        dims = fields[2:10]
        off, nbytes, noff, nlen = fields[10:14]
        raw_name = names[noff : noff + nlen]
        if nlen == 0 or noff != name_pos or noff > strtab or nlen > strtab - noff or not _printable(raw_name):
            fail(f"corrupt table: tensor #{i} has a bad name")
        name_pos += nlen
        name = raw_name.decode("ascii")
        if code not in DTYPE_NAMES:
            fail(f"tensor '{name}' has unknown dtype code {code}")
        if ndim > MAX_DIMS:
            fail(f"tensor '{name}' has {ndim} dims (at most {MAX_DIMS})")
        for d in dims:
            if d > 1 << 48:
                fail(f"tensor '{name}' has an impossible dim {d}")
        shape = tuple(int(d) for d in dims[:ndim])
        want = tensor_nbytes(code, shape)
        if want != nbytes:
            fail(f"tensor '{name}': {nbytes} bytes do not match {DTYPE_NAMES[code]} "
                 f"[{', '.join(map(str, shape))}]")
        if off % align:
            fail(f"bad alignment: tensor '{name}' at offset {off} is not {align}-byte aligned")
        if off < prev_end:
            fail(f"corrupt table: tensor '{name}' at offset {off} overlaps the "
                 f"{'previous tensor' if i else 'header'}")
        if off > size or nbytes > size - off:
            fail(f"truncated: tensor '{name}' needs bytes [{off}, {off + nbytes}) "
                 f"but the file has {size}")
        prev_end = off + nbytes
        entries.append(TensorEntry(name, code, shape, off, nbytes))
    if size < total:
        fail(f"truncated: {size} bytes but the header says {total}")
    if size > total:
        fail(f"{size} bytes but the header says {total} (trailing data)")
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            fail(f"corrupt table: tensor '{e.name}' appears twice")
        seen.add(e.name)
    return entries, mm
