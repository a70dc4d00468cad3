"""runtime/arena.c: the one aligned, zeroed arena of a model, with canary words."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from ckc.build import ROOT, compile_shared

RUNTIME = ROOT / "runtime"
CANARY = 0xC4C4CA7A4E5A11ED  # CK_CANARY_VALUE


class Arena(ctypes.Structure):
    _fields_ = [
        ("base", ctypes.c_void_p),
        ("size", ctypes.c_size_t),
        ("mapped", ctypes.c_size_t),
        ("canaries", ctypes.POINTER(ctypes.c_size_t)),
        ("ncanaries", ctypes.c_size_t),
    ]


@pytest.fixture(scope="module")
def lib():
    so = compile_shared(
        "ckarena-test", [RUNTIME / "arena.c"], headers=[RUNTIME / "arena.h"],
        flags=["-std=c11", "-O1", f"-I{RUNTIME}"],
    )
    lib = ctypes.CDLL(str(so))
    lib.ck_arena_init.restype = ctypes.c_int
    lib.ck_arena_init.argtypes = [
        ctypes.POINTER(Arena), ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
        ctypes.c_char_p, ctypes.c_int,
    ]
    lib.ck_arena_check_canaries.restype = ctypes.c_long
    lib.ck_arena_check_canaries.argtypes = [ctypes.POINTER(Arena)]
    lib.ck_arena_clear.argtypes = [ctypes.POINTER(Arena)]
    lib.ck_arena_free.argtypes = [ctypes.POINTER(Arena)]
    return lib


def init(lib, size, canaries):
    a = Arena()
    offs = (ctypes.c_size_t * max(1, len(canaries)))(*canaries)
    err = ctypes.create_string_buffer(256)
    rc = lib.ck_arena_init(ctypes.byref(a), size, offs, len(canaries), err, len(err))
    return rc, a, err.value.decode()


def view(a) -> np.ndarray:
    return np.ctypeslib.as_array(ctypes.cast(a.base, ctypes.POINTER(ctypes.c_uint8)), shape=(a.size,))


def test_aligned_zeroed_with_canaries(lib):
    size = 10_000
    canaries = [1024, 4096, size - 8]
    rc, a, err = init(lib, size, canaries)
    assert rc == 0 and err == ""
    try:
        assert a.base % 64 == 0 and a.size == size and a.mapped >= size
        mem = view(a)
        words = {c: int(mem[c : c + 8].view(np.uint64)[0]) for c in canaries}
        assert all(w == CANARY for w in words.values())
        mask = np.ones(size, bool)
        for c in canaries:
            mask[c : c + 8] = False
        assert not mem[mask].any()  # everything else is zero
        assert lib.ck_arena_check_canaries(ctypes.byref(a)) == -1
        mem[:1024] = 0xAB  # writes up to the first canary: still intact
        assert lib.ck_arena_check_canaries(ctypes.byref(a)) == -1
        mem[4096 + 7] ^= 1  # one bit of the second canary
        assert lib.ck_arena_check_canaries(ctypes.byref(a)) == 1
        mem[1024] = 0  # the first one broken too: it is the one reported
        assert lib.ck_arena_check_canaries(ctypes.byref(a)) == 0
        lib.ck_arena_clear(ctypes.byref(a))  # zeroes and rewrites the canaries
        assert lib.ck_arena_check_canaries(ctypes.byref(a)) == -1 and not mem[:1024].any()
    finally:
        lib.ck_arena_free(ctypes.byref(a))
    assert a.base is None and a.size == 0
    lib.ck_arena_free(ctypes.byref(a))  # twice is safe


def test_bad_canary_offsets_are_rejected(lib):
    for size, offs, what in [(64, [60], "canary #0 at offset 60"), (64, [0, 3], "canary #1 at offset 3"),
                             (64, [64], "canary #0 at offset 64")]:
        rc, a, err = init(lib, size, offs)
        assert rc == -1 and what in err and "\n" not in err
        assert a.base is None
        lib.ck_arena_free(ctypes.byref(a))


def test_empty_and_huge(lib):
    rc, a, err = init(lib, 0, [])
    assert rc == 0 and a.base is None and lib.ck_arena_check_canaries(ctypes.byref(a)) == -1
    lib.ck_arena_free(ctypes.byref(a))
    rc, a, err = init(lib, 1 << 62, [])  # cannot be mapped: an error, not a crash
    assert rc == -1 and "cannot allocate" in err and a.base is None
