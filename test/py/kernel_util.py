"""Shared helpers for the kernel parity tests (test/py/test_kernels_*.py).

- ``lib()``: libckernels loaded once per test process (built on demand); the
  ASan + UBSan build when ``CKC_TEST_SANITIZE=1`` (set by ``run_sanitized``).
- ``run_sanitized(*pytest_args)``: runs a pytest selection in a subprocess
  against the sanitizer build (libasan preloaded, leaks off) and fails on any
  ASan/UBSan report; each family's test file adds a small subset this way.
- ``variants()``: pytest params for every variant; one the CPU lacks is
  skipped with a reason naming the missing features.
- ``kernel(name, variant, argtypes, restype)``: a ctypes function with its
  prototype set, e.g. ``kernel("ck_gemm_f32", "avx512", [...])``.
- ``ptr(a)``: the data pointer of a C-contiguous float32/int32 numpy array
  (or a torch CPU tensor), for ``c_void_p`` arguments.
- ``pool(n)``: a ck_pool handle of n threads, shared per test process.
- ``max_rel_err(got, want)``: max |got - want| / max(max |want|, tiny) — the
  error relative to the reference's scale, so elements near zero do not blow it up.
- ``aligned_empty(nbytes)``: a 64-byte aligned numpy byte buffer (workspaces).
- ``guarded_empty(nbytes)``: a byte buffer whose last byte is followed by an
  inaccessible page, so a kernel reading even one byte past it faults at once
  (a read past a numpy buffer mostly lands in mapped memory and goes unseen).
  ``guarded_copy(a)``: a copy of array a in such a buffer.
- ``run_isolated(code)``: runs Python ``code`` in a subprocess (repo root on
  sys.path) and fails with its output, naming the signal, unless it exits 0:
  how tests drive a kernel that may fault without taking pytest down.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ckc import kernels as ck

c_int = ctypes.c_int
c_float = ctypes.c_float
c_size_t = ctypes.c_size_t
c_void_p = ctypes.c_void_p


SANITIZE = os.environ.get("CKC_TEST_SANITIZE") == "1"


@functools.cache
def lib() -> ctypes.CDLL:
    if SANITIZE and os.environ.get("CKC_TEST_SANITIZE_LIB"):
        # the parent built it: load exactly that one (sources may change meanwhile)
        return ck.load(os.environ["CKC_TEST_SANITIZE_LIB"], sanitize=True)
    return ck.library(sanitize=SANITIZE)


def run_sanitized(*pytest_args: str, timeout: float = 300) -> None:
    """Run ``pytest *pytest_args`` against the ASan + UBSan build in a subprocess; must pass clean."""
    if SANITIZE:
        pytest.skip("already running under the sanitizer build")
    asan = ck.asan_runtime()
    if asan is None:
        pytest.skip("the C compiler has no libasan.so (cannot run the sanitizer build)")
    path = ck.library_path(sanitize=True)
    env = dict(os.environ, CKC_TEST_SANITIZE="1", CKC_TEST_SANITIZE_LIB=str(path), LD_PRELOAD=asan,
               ASAN_OPTIONS="detect_leaks=0:halt_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "--capture=sys", *pytest_args],   # sys: ASan's report (fd 2) must reach us, not die in a capture file
        cwd=ck.ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    bad = [l for l in out.splitlines() if "AddressSanitizer" in l or "runtime error:" in l
           or "LeakSanitizer" in l]
    assert proc.returncode == 0 and not bad, "sanitizer run failed:\n" + "\n".join((bad or out.splitlines())[-30:])
    assert " passed" in out, out[-2000:]


@functools.cache
def cpu_features() -> frozenset[str]:
    lib()  # load the flavour this process tests first
    return ck.cpu_features()


def variants(*only: str):
    """pytest.param per variant (all by default), skipping those this CPU lacks."""
    feats = cpu_features()
    params = []
    for v in only or ck.VARIANTS:
        missing = [f for f in ck.VARIANT_NEEDS[v] if f not in feats]
        marks = []
        if missing:
            marks.append(pytest.mark.skip(reason=f"this CPU lacks {', '.join(missing)} (needed by the {v} variant)"))
        elif v not in ck.available_variants():
            marks.append(pytest.mark.skip(reason=f"{v} excluded by CKC_VARIANTS"))
        params.append(pytest.param(v, id=v, marks=marks))
    return params


def kernel(name: str, variant: str | None, argtypes, restype=None):
    """``ck_<op>_f32_<variant>`` (or ``name`` itself when variant is None) with its prototype."""
    full = f"{name}_{variant}" if variant else name
    fn = getattr(lib(), full)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


def ptr(a) -> ctypes.c_void_p:
    """Pointer to the data of a contiguous numpy array or torch CPU tensor (None -> NULL)."""
    if a is None:
        return ctypes.c_void_p(None)
    if isinstance(a, np.ndarray):
        assert a.flags["C_CONTIGUOUS"], "kernel arguments must be C-contiguous"
        return ctypes.c_void_p(a.ctypes.data)
    assert a.is_contiguous() and a.device.type == "cpu"
    return ctypes.c_void_p(a.data_ptr())


_POOLS: dict[int, ck.Pool] = {}


def pool(n: int) -> ctypes.c_void_p:
    """Handle of a shared ck_pool with n threads (n <= 1: NULL, run inline)."""
    if n <= 1:
        return ctypes.c_void_p(None)
    if n not in _POOLS:
        _POOLS[n] = ck.Pool(n, lib())
    return _POOLS[n].handle


def aligned_empty(nbytes: int, align: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def guarded_empty(nbytes: int) -> np.ndarray:
    """nbytes ending right before a PROT_NONE page (64-byte aligned when nbytes
    is a multiple of 64: the end is page aligned). The array holds the mapping:
    it is unmapped when the array goes."""
    page = mmap.PAGESIZE
    body = -(-max(nbytes, 1) // page) * page
    m = mmap.mmap(-1, body + page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [c_void_p, c_size_t, c_int]
    if libc.mprotect(ctypes.c_void_p(base + body), page, 0) != 0:   # 0: PROT_NONE
        raise OSError(ctypes.get_errno(), "mprotect of the guard page failed")
    return np.frombuffer(m, np.uint8, count=body)[body - nbytes:]


def guarded_copy(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in a guarded_empty buffer (same dtype and shape)."""
    out = guarded_empty(a.nbytes).view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def runnable(params) -> list[str]:
    """The variant names of variants()-style params this CPU runs (no skip mark)."""
    return [p.values[0] for p in params if not p.marks]


def run_isolated(code: str, timeout: float = 300) -> str:
    """Run ``code`` with ``python -c`` from the repo root; its stdout if it exits 0."""
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], cwd=ck.ROOT, capture_output=True, text=True,
                          timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [str(ck.ROOT), str(Path(__file__).resolve().parent), *filter(None, [os.environ.get("PYTHONPATH")])])))
    if proc.returncode != 0:
        why = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        raise AssertionError(f"isolated run {why}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


def max_rel_err(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    if want.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(want))), 1e-30)
    return float(np.max(np.abs(got - want))) / scale


def rand(rng: np.random.Generator, *shape, scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 array (C-contiguous)."""
    return np.ascontiguousarray((rng.standard_normal(shape) * scale).astype(np.float32))
