"""The .bump weights file: Python writer/reader (ckc/weights.py) and the C loader
(runtime/weights.c) agree on the format and on every error message."""

from __future__ import annotations

import ctypes
import os
import struct

import numpy as np
import pytest

from ckc import weights as W
from ckc.build import ROOT, compile_shared

RUNTIME = ROOT / "runtime"


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def clib():
    so = compile_shared(
        "ckweights-test",
        [RUNTIME / "weights.c"],
        headers=[RUNTIME / "weights.h"],
        flags=["-std=c11", "-O1", "-g", f"-I{RUNTIME}"],
    )
    lib = ctypes.CDLL(str(so))
    lib.ck_weights_open.restype = ctypes.c_int
    lib.ck_weights_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_int]
    lib.ck_weights_close.argtypes = [ctypes.c_void_p]
    lib.ck_weights_count.argtypes = [ctypes.c_void_p]
    lib.ck_weights_find.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ck_weights_tensor.restype = ctypes.POINTER(TensorInfo)
    lib.ck_weights_tensor.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.ck_weights_size.restype = ctypes.c_uint64
    lib.ck_weights_size.argtypes = [ctypes.c_void_p]
    lib.ck_weights_expect.restype = ctypes.c_void_p
    lib.ck_weights_expect.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
        ctypes.POINTER(ctypes.c_int64), ctypes.c_char_p, ctypes.c_int,
    ]
    lib.ck_fnv1a64.restype = ctypes.c_uint64
    lib.ck_fnv1a64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    lib.ck_dtype_row_bytes.restype = ctypes.c_uint64
    lib.ck_dtype_row_bytes.argtypes = [ctypes.c_int, ctypes.c_uint64]
    return lib


class TensorInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("shape", ctypes.c_int64 * 8),
        ("offset", ctypes.c_uint64),
        ("nbytes", ctypes.c_uint64),
        ("data", ctypes.c_void_p),
    ]


def c_open(lib, path):
    """(rc, handle or None, error line)."""
    h = ctypes.c_void_p()
    err = ctypes.create_string_buffer(512)
    rc = lib.ck_weights_open(str(path).encode(), ctypes.byref(h), err, len(err))
    return rc, (h if rc == 0 else None), err.value.decode()


def py_error(path) -> str | None:
    try:
        W.read_bump(path)
    except W.BumpError as e:
        return str(e)
    return None


def c_error(lib, path) -> str | None:
    rc, h, err = c_open(lib, path)
    if rc == 0:
        assert err == ""
        lib.ck_weights_close(h)
        return None
    assert h is None
    return err


def both_fail(lib, path, *fragments) -> str:
    """Python and C reject ``path`` with the same single line containing fragments."""
    pe, ce = py_error(path), c_error(lib, path)
    assert pe is not None and ce is not None, (pe, ce)
    assert pe == ce
    assert "\n" not in pe and pe.startswith(f"{path}: ")
    for f in fragments:
        assert f in pe, pe
    return pe


def sample_tensors(rng):
    return [
        ("token_embd.weight", rng.standard_normal((37, 16)).astype(np.float32)),
        ("blk.0.attn_norm.weight", rng.standard_normal(16).astype(np.float32)),
        ("scalar", np.array(2.5, np.float32)),
        ("empty", np.zeros((0, 3), np.float32)),
        ("blk.0.half", rng.standard_normal((3, 5, 7)).astype(np.float16)),
        ("output.weight", rng.standard_normal((37, 16)).astype(np.float32)),
    ]


def patch_and_rehash(path, offset: int, fmt: str, value) -> None:
    """Overwrite one header/table field and fix the checksum, so only that field is wrong."""
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    data = struct.unpack_from("<Q", raw, 32)[0]
    h = W.fnv1a64(bytes(raw[:48]) + bytes(8) + bytes(raw[56:data]))
    struct.pack_into("<Q", raw, 48, h)
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------- round trip
def test_roundtrip_python(tmp_path):
    rng = np.random.default_rng(0)
    tensors = sample_tensors(rng)
    p = W.write_bump(tmp_path / "m.bump", tensors)
    got = W.read_bump(p)
    assert list(got) == [n for n, _ in tensors]  # caller's order is the file order
    for name, arr in tensors:
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
        np.testing.assert_array_equal(got[name], arr)
    assert isinstance(got["token_embd.weight"], np.memmap)
    with pytest.raises(ValueError):
        got["token_embd.weight"][0, 0] = 1.0  # read-only mapping
    table = W.read_table(p)
    offsets = [e.offset for e in table]
    assert all(o % 64 == 0 for o in offsets) and offsets == sorted(offsets)
    assert os.path.getsize(p) % 64 == 0
    # the layout is known before writing (for memory reports)
    planned, total = W.bump_layout([(n, a.shape, W.F32 if a.dtype == np.float32 else W.F16) for n, a in tensors])
    assert planned == table and total == os.path.getsize(p)
    assert not [f for f in tmp_path.iterdir() if f.name != "m.bump"]  # no temp file left


def test_roundtrip_c_loader(clib, tmp_path):
    rng = np.random.default_rng(1)
    tensors = sample_tensors(rng)
    p = W.write_bump(tmp_path / "m.bump", tensors)
    rc, h, err = c_open(clib, p)
    assert rc == 0, err
    try:
        assert clib.ck_weights_count(h) == len(tensors)
        assert clib.ck_weights_size(h) == os.path.getsize(p)
        for i, (name, arr) in enumerate(tensors):
            assert clib.ck_weights_find(h, name.encode()) == i  # lookup by name
            t = clib.ck_weights_tensor(h, i).contents  # lookup by index
            assert t.name.decode() == name
            assert t.dtype == (W.F32 if arr.dtype == np.float32 else W.F16)
            assert list(t.shape[: t.ndim]) == list(arr.shape)
            assert t.nbytes == arr.nbytes and t.offset % 64 == 0
            assert t.data % 64 == 0  # aligned in memory too
            if arr.nbytes:
                got = np.frombuffer((ctypes.c_char * t.nbytes).from_address(t.data), dtype=arr.dtype)
                np.testing.assert_array_equal(got.reshape(arr.shape), arr)
        assert clib.ck_weights_find(h, b"nope") == -1
        assert not clib.ck_weights_tensor(h, len(tensors))
        assert not clib.ck_weights_tensor(h, -1)
    finally:
        clib.ck_weights_close(h)
    clib.ck_weights_close(None)  # NULL is allowed


def test_c_expect(clib, tmp_path):
    p = W.write_bump(tmp_path / "m.bump", [("a.weight", np.ones((4, 8), np.float32))])
    rc, h, _ = c_open(clib, p)
    err = ctypes.create_string_buffer(256)

    def expect(name, dtype, shape):
        arr = (ctypes.c_int64 * len(shape))(*shape)
        ptr = clib.ck_weights_expect(h, name, dtype, len(shape), arr, err, len(err))
        return ptr, err.value.decode()

    try:
        ptr, _ = expect(b"a.weight", W.F32, [4, 8])
        assert ptr and ptr % 64 == 0
        assert expect(b"b.weight", W.F32, [4, 8]) == (None, f"{p}: missing tensor 'b.weight'")
        assert expect(b"a.weight", W.F32, [8, 4]) == (None, f"{p}: tensor 'a.weight' has shape [4, 8], expected [8, 4]")
        assert expect(b"a.weight", W.F32, [32]) == (None, f"{p}: tensor 'a.weight' has shape [4, 8], expected [32]")
        assert expect(b"a.weight", W.F16, [4, 8]) == (None, f"{p}: tensor 'a.weight' has dtype f32, expected f16")
    finally:
        clib.ck_weights_close(h)


def test_checksum_and_block_sizes_agree(clib):
    data = bytes(range(256)) * 3
    assert clib.ck_fnv1a64(data, len(data), 0xCBF29CE484222325) == W.fnv1a64(data)
    assert W.fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a 64 test vector
    for code in W.DTYPE_NAMES:
        if code == W.F32P32 or W.DTYPE_NAMES[code].endswith("r8"):   # not per-row layouts: 2-D only
            assert clib.ck_dtype_row_bytes(code, 32) == 0 and W.tensor_nbytes(code, (32,)) is None
            continue
        for n in (32, 64, 256, 4096):   # 0 / None: n not a whole number of the format's blocks
            assert (clib.ck_dtype_row_bytes(code, n) or None) == W.tensor_nbytes(code, (n,)), (code, n)
    assert clib.ck_dtype_row_bytes(W.Q4_0, 33) == 0 and W.tensor_nbytes(W.Q4_0, (33,)) is None


def test_prepacked_f32p32(clib, tmp_path):
    """f32p32 (pack-weights' layout): written packed, read back by both readers with
    the panel size rule ceil(N/32)*32*K*4, unpacked exactly, and the C kernel
    library's ck_gemm_pack_f32 produces the same bytes."""
    from kernel_util import lib as kernel_lib

    rng = np.random.default_rng(3)
    mats = {"a.weight": rng.standard_normal((40, 16), dtype=np.float32),
            "b.weight": rng.standard_normal((1, 3), dtype=np.float32),
            "c.weight": rng.standard_normal((64, 5), dtype=np.float32)}
    p = W.write_bump(tmp_path / "p.bump", [(n, a, W.F32P32) for n, a in mats.items()]
                     + [("plain", np.ones(4, np.float32))])
    got = W.read_bump(p)
    table = {e.name: e for e in W.read_table(p)}
    for n, a in mats.items():
        e = table[n]
        assert e.dtype == W.F32P32 and e.shape == a.shape
        assert e.nbytes == -(-a.shape[0] // 32) * 32 * a.shape[1] * 4
        np.testing.assert_array_equal(W.unpack_p32(got[n], a.shape[0]), a)
        kl = kernel_lib()
        kl.ck_gemm_pack_f32.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                        ctypes.c_void_p, ctypes.c_int]
        out = np.full(e.nbytes // 4, np.nan, np.float32)
        kl.ck_gemm_pack_f32(a.ctypes.data, a.shape[0], a.shape[1], out.ctypes.data, None, 1)
        np.testing.assert_array_equal(out, got[n].reshape(-1))
    assert c_error(clib, p) is None
    rc, h, _ = c_open(clib, p)
    try:
        err = ctypes.create_string_buffer(256)
        shape = (ctypes.c_int64 * 2)(40, 16)
        assert clib.ck_weights_expect(h, b"a.weight", W.F32P32, 2, shape, err, len(err))
        assert not clib.ck_weights_expect(h, b"a.weight", W.F32, 2, shape, err, len(err))
        assert err.value.decode() == f"{p}: tensor 'a.weight' has dtype f32p32, expected f32"
    finally:
        clib.ck_weights_close(h)
    # the size rule is enforced identically: the row-major size of a.weight is refused
    a_index = list(table).index("a.weight")
    patch_and_rehash(p, 64 + 96 * a_index + 80, "<Q", 40 * 16 * 4)
    both_fail(clib, p, "tensor 'a.weight': 2560 bytes do not match f32p32 [40, 16]")
    with pytest.raises(W.BumpError, match="f32p32 needs a 2-D f32 matrix"):
        W.write_bump(tmp_path / "bad.bump", [("x", np.ones(4, np.float32), W.F32P32)])


def test_empty_file_list(clib, tmp_path):
    p = W.write_bump(tmp_path / "none.bump", [])
    assert W.read_bump(p) == {}
    assert c_error(clib, p) is None


# ----------------------------------------------------------- atomic write
def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "m.bump"
    W.write_bump(p, [("old", np.ones(3, np.float32))])
    before = p.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        W.write_bump(p, [("new", np.zeros(1000, np.float32))])
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["m.bump"]


def test_writer_rejects_bad_input(tmp_path):
    p = tmp_path / "m.bump"
    with pytest.raises(W.BumpError, match="tensor 'x' given twice"):
        W.write_bump(p, [("x", np.ones(1, np.float32)), ("x", np.ones(1, np.float32))])
    with pytest.raises(W.BumpError, match="tensor 'y' has dtype float64"):
        W.write_bump(p, [("y", np.ones(1))])
    for bad in ("", "caf\u00e9", "a\nb"):
        with pytest.raises(W.BumpError, match="non-empty printable ASCII"):
            W.write_bump(p, [(bad, np.ones(1, np.float32))])
    assert not p.exists()


# ----------------------------------------------------------------- errors
def test_missing_file(clib, tmp_path):
    p = tmp_path / "nope.bump"
    with pytest.raises(W.WeightsError):  # the name the CLI catches
        W.read_bump(p)
    assert both_fail(clib, p) == f"{p}: cannot open weights file: No such file or directory"
    assert both_fail(clib, tmp_path, "not a regular file")


def test_bad_magic(clib, tmp_path):
    p = tmp_path / "m.gguf"
    p.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(200))
    both_fail(clib, p, "bad magic", "CKCBUMP1")
    p.write_bytes(b"hi")  # too short to even hold the magic
    both_fail(clib, p, "truncated: 2 bytes")
    p.write_bytes(b"")
    both_fail(clib, p, "truncated: 0 bytes")


def test_truncated_names_the_tensor(clib, tmp_path):
    rng = np.random.default_rng(2)
    tensors = sample_tensors(rng)
    full = W.write_bump(tmp_path / "full.bump", tensors).read_bytes()
    table = W.read_table(tmp_path / "full.bump")
    out = tmp_path / "cut.bump"
    last = table[-1]
    out.write_bytes(full[: last.offset + 10])
    msg = both_fail(clib, out, "truncated", "'output.weight'")
    assert msg == (f"{out}: truncated: tensor 'output.weight' needs bytes "
                   f"[{last.offset}, {last.offset + last.nbytes}) but the file has {last.offset + 10}")
    first = table[0]
    out.write_bytes(full[: first.offset + 4])
    both_fail(clib, out, "truncated", "'token_embd.weight'")
    out.write_bytes(full[:100])  # inside the table
    both_fail(clib, out, "truncated")
    small = W.write_bump(tmp_path / "small.bump", [("a", np.ones(5, np.float32))]).read_bytes()
    out.write_bytes(small[:-1])  # only the padding after the last tensor is missing
    assert both_fail(clib, out) == f"{out}: truncated: {len(small) - 1} bytes but the header says {len(small)}"


def test_every_truncation_length_fails_cleanly(clib, tmp_path):
    """Every prefix of a valid file is rejected by both readers, with one line."""
    full = W.write_bump(tmp_path / "f.bump", sample_tensors(np.random.default_rng(3))).read_bytes()
    out = tmp_path / "cut.bump"
    for n in range(0, len(full), 11):
        out.write_bytes(full[:n])
        both_fail(clib, out)


def test_bad_alignment(clib, tmp_path):
    p = W.write_bump(tmp_path / "m.bump", sample_tensors(np.random.default_rng(4)))
    patch_and_rehash(p, 12, "<I", 32)
    both_fail(clib, p, "bad alignment 32")
    p = W.write_bump(tmp_path / "m.bump", sample_tensors(np.random.default_rng(4)))
    patch_and_rehash(p, 12, "<I", 96)
    both_fail(clib, p, "bad alignment 96")
    # a tensor whose offset is moved off the 64-byte grid
    p = W.write_bump(tmp_path / "m.bump", sample_tensors(np.random.default_rng(4)))
    e1 = W.read_table(p)[1]
    patch_and_rehash(p, 64 + 96 * 1 + 72, "<Q", e1.offset + 4)
    assert both_fail(clib, p) == (
        f"{p}: bad alignment: tensor 'blk.0.attn_norm.weight' at offset {e1.offset + 4} is not 64-byte aligned")


def test_corrupt_table_and_header(clib, tmp_path):
    def fresh():
        return W.write_bump(tmp_path / "m.bump", sample_tensors(np.random.default_rng(5)))

    p = fresh()
    raw = bytearray(p.read_bytes())
    raw[64 + 20] ^= 0xFF  # a shape byte, checksum NOT fixed
    p.write_bytes(bytes(raw))
    both_fail(clib, p, "header checksum mismatch")

    p = fresh()
    patch_and_rehash(p, 8, "<I", 2)
    both_fail(clib, p, "unsupported .bump version 2")

    p = fresh()
    patch_and_rehash(p, 64 + 0, "<I", 99)  # dtype of tensor 0
    both_fail(clib, p, "unknown dtype code 99")

    p = fresh()
    patch_and_rehash(p, 64 + 8, "<Q", 38)  # shape[0] of tensor 0: size no longer matches
    both_fail(clib, p, "'token_embd.weight': 2368 bytes do not match f32 [38, 16]")

    p = fresh()
    e = W.read_table(p)
    patch_and_rehash(p, 64 + 96 * 2 + 72, "<Q", e[0].offset)  # tensor 2 on top of tensor 0
    both_fail(clib, p, "'scalar'", "overlaps the previous tensor")

    p = fresh()
    patch_and_rehash(p, 64 + 96 * 1 + 92, "<I", 10_000)  # name length past the name table
    both_fail(clib, p, "tensor #1 has a bad name")

    p = fresh()
    patch_and_rehash(p, 64 + 96 * 1 + 88, "<I", 0)  # name 1 reuses name 0's bytes
    both_fail(clib, p, "tensor #1 has a bad name")

    # two tensors with the same name (the writer refuses, so rename one in place)
    p = W.write_bump(tmp_path / "d.bump", [("dup_a", np.ones(2, np.float32)), ("dup_b", np.ones(3, np.float32))])
    raw = p.read_bytes()
    at = raw.index(b"dup_adup_b") + 9
    patch_and_rehash(p, at, "<c", b"a")
    both_fail(clib, p, "tensor 'dup_a' appears twice")

    p = fresh()
    with open(p, "ab") as f:
        f.write(b"junk")
    both_fail(clib, p, "trailing data")


def test_random_corruption_never_crashes(clib, tmp_path):
    """Byte flips anywhere in header/table/names: both readers accept or reject
    identically and never crash (the C side reads only inside the mapping)."""
    src = W.write_bump(tmp_path / "f.bump", sample_tensors(np.random.default_rng(6)))
    full = src.read_bytes()
    data = W.read_table(src)[0].offset
    rng = np.random.default_rng(7)
    out = tmp_path / "x.bump"
    for trial in range(200):
        raw = bytearray(full)
        for _ in range(int(rng.integers(1, 4))):
            raw[int(rng.integers(0, data))] = int(rng.integers(0, 256))
        if trial % 2:  # fix the checksum so the table validation itself is exercised
            h = W.fnv1a64(bytes(raw[:48]) + bytes(8) + bytes(raw[56:data]))
            struct.pack_into("<Q", raw, 48, h)
        out.write_bytes(bytes(raw))
        pe, ce = py_error(out), c_error(clib, out)
        assert pe == ce, (trial, pe, ce)
        assert pe is None or "\n" not in pe


_ASAN_SCRIPT = r"""
import ctypes, struct, sys, tempfile, pathlib
import numpy as np
sys.path.insert(0, {tests!r})
import test_weights as T
from ckc import weights as W
lib = ctypes.CDLL({so!r})
lib.ck_weights_open.restype = ctypes.c_int
lib.ck_weights_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_int]
lib.ck_weights_close.argtypes = [ctypes.c_void_p]
d = pathlib.Path(tempfile.mkdtemp())
src = W.write_bump(d / "f.bump", T.sample_tensors(np.random.default_rng(6)))
full = src.read_bytes()
data = W.read_table(src)[0].offset
out = d / "x.bump"
for n in range(0, len(full), 5):
    out.write_bytes(full[:n])
    assert T.py_error(out) == T.c_error(lib, out)
rng = np.random.default_rng(11)
for trial in range(300):
    raw = bytearray(full)
    for _ in range(int(rng.integers(1, 4))):
        raw[int(rng.integers(0, data))] = int(rng.integers(0, 256))
    if trial % 2:
        h = W.fnv1a64(bytes(raw[:48]) + bytes(8) + bytes(raw[56:data]))
        struct.pack_into("<Q", raw, 48, h)
    out.write_bytes(bytes(raw))
    assert T.py_error(out) == T.c_error(lib, out)
print("ASAN-FUZZ-OK")
"""


def test_c_loader_under_asan(tmp_path):
    """Truncations and corruptions with the loader built with ASan + UBSan: no
    out-of-bounds read, no undefined behaviour (leaks were checked by hand: the
    Python interpreter's own make LSan unusable here)."""
    import subprocess
    import sys

    from ckc.kernels import asan_runtime

    rt = asan_runtime()
    if rt is None:
        pytest.skip("the C compiler has no AddressSanitizer runtime (libasan.so)")
    so = compile_shared(
        "ckweights-asan",
        [RUNTIME / "weights.c"],
        headers=[RUNTIME / "weights.h"],
        flags=["-std=c11", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
               f"-I{RUNTIME}"],
    )
    script = _ASAN_SCRIPT.format(tests=str(ROOT / "test" / "py"), so=str(so))
    env = dict(os.environ, LD_PRELOAD=rt, ASAN_OPTIONS="detect_leaks=0")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "ASAN-FUZZ-OK" in proc.stdout, proc.stderr[-3000:]


def test_stored_formats_and_r8(clib, tmp_path):
    """Every GGUF format and its r8 repacking (pack-quant) is written as its bytes
    and read back by both readers with the same size rule: rows of whole blocks,
    r8 = ceil(N/8)*8 rows; the r8 bytes are what the kernel library's ck_qpack_*
    makes (ckc/artifacts.qpack_r8) and ck_weights_expect checks the dtype."""
    import gguf
    import gguf.quants

    from ckc.artifacts import qpack_r8

    rng = np.random.default_rng(5)
    w = rng.standard_normal((20, 64)).astype(np.float32)
    items, want = [], {}
    for fmt in ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1"):
        raw = gguf.quants.quantize(w, gguf.GGMLQuantizationType[fmt.upper()])
        items.append((f"{fmt}.weight", raw.reshape(-1), W.dtype_code(fmt), (20, 64)))
        packed = qpack_r8(fmt, raw, 20, 64)
        assert packed.size == 24 * raw.shape[1]          # 20 rows padded to 3 groups of 8
        items.append((f"{fmt}.r8", packed, W.dtype_code(fmt, "r8"), (20, 64)))
        want[f"{fmt}.r8"] = packed
    for fmt, per in (("q2_k", 84), ("q3_k", 110), ("q4_k", 144), ("q5_k", 176), ("q6_k", 210)):
        items.append((f"{fmt}.weight", rng.integers(0, 255, 3 * per, dtype=np.uint8), W.dtype_code(fmt), (3, 256)))
    items.append(("bf16.weight", rng.integers(0, 255, 2 * 64 * 2, dtype=np.uint8), W.BF16, (2, 64)))
    p = W.write_bump(tmp_path / "q.bump", items)
    got = W.read_bump(p)
    for name, raw, code, shape in items:
        e = next(t for t in W.read_table(p) if t.name == name)
        assert (e.dtype, e.shape, e.nbytes) == (code, shape, raw.size), name
        np.testing.assert_array_equal(np.asarray(got[name]).reshape(-1).view(np.uint8), raw)
    assert c_error(clib, p) is None
    rc, h, _ = c_open(clib, p)
    try:
        err = ctypes.create_string_buffer(256)
        shape = (ctypes.c_int64 * 2)(20, 64)
        assert clib.ck_weights_expect(h, b"q4_1.r8", W.Q4_1R8, 2, shape, err, len(err))
        assert not clib.ck_weights_expect(h, b"q4_1.r8", W.Q4_1, 2, shape, err, len(err))
        assert err.value.decode() == f"{p}: tensor 'q4_1.r8' has dtype q4_1r8, expected q4_1"
    finally:
        clib.ck_weights_close(h)
    with pytest.raises(W.BumpError, match="are not the"):   # bytes that are not the format's size
        W.write_bump(tmp_path / "bad.bump", [("x", np.zeros(33, np.uint8), W.Q8_0, (1, 32))])
