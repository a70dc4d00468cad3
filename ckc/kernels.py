"""The C kernel library (libckernels) from Python: build on demand, load, query the CPU.

``library()`` configures and builds ``kernels/`` + ``runtime/`` with CMake the
first time it is asked for, into ``.cache/build/ckernels-<hash>`` where the hash
covers every source byte, CMakeLists.txt, the compiler and the build options,
so an edited kernel rebuilds and an unchanged tree never does. The build runs
in a temporary folder that is renamed into place only when complete, so an
interrupted build is never picked up.

``library(sanitize=True)`` builds the AddressSanitizer + UBSan flavour
(``-DCKC_SANITIZE=ON``). It can only be loaded by a process started with the
ASan runtime preloaded (``LD_PRELOAD=$(asan_runtime())``), so the tests use it
in a subprocess.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ckc.binding import Handle
from ckc.build import ROOT, BuildError, cache_dir, cc, run_checked, source_hash

LIB_NAME = "ckernels"

# Bit flags of ck_cpu_features() (runtime/cpu.h).
CPU_FLAGS = {
    "avx": 1 << 0,
    "avx2": 1 << 1,
    "fma": 1 << 2,
    "f16c": 1 << 3,
    "avx512f": 1 << 4,
    "avx512bw": 1 << 5,
    "avx512dq": 1 << 6,
    "avx512vl": 1 << 7,
    "avx512vnni": 1 << 8,   # not a variant requirement: chosen at run time inside avx512 kernels
}
# The flags each variant's files are compiled for (CMakeLists.txt).
VARIANT_NEEDS = {
    "scalar": (),
    "avx2": ("avx", "avx2", "fma", "f16c"),
    "avx512": ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl"),
}
VARIANTS = tuple(VARIANT_NEEDS)

_LIBS: dict[bool, ctypes.CDLL] = {}


def sources() -> list[Path]:
    """Every file whose bytes go into the library."""
    files = [ROOT / "CMakeLists.txt"]
    # As CMakeLists.txt globs: all of kernels/, but only runtime/'s top level
    # (runtime/library/ is compiled into each model.so, so
    # editing them must not rebuild the library).
    candidates = list((ROOT / "kernels").rglob("*")) + list((ROOT / "runtime").glob("*"))
    for p in candidates:
        if p.is_file() and p.suffix in (".c", ".h"):
            files.append(p)
    return files


def _cmake_generator() -> list[str]:
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def build_dir(sanitize: bool = False) -> Path:
    """The folder holding libckernels.so and libckernels.a, built if needed."""
    if shutil.which("cmake") is None:
        raise BuildError("building libckernels needs cmake, which is not on PATH")
    options = [f"-DCKC_SANITIZE={'ON' if sanitize else 'OFF'}", "-DCMAKE_BUILD_TYPE=Release"]
    key = source_hash(sources(), " ".join([cc(), *options]))
    flavour = "-asan" if sanitize else ""
    final = cache_dir("build") / f"{LIB_NAME}{flavour}-{key}"
    lib = final / f"lib{LIB_NAME}.so"
    if lib.is_file():
        return final
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        env = dict(os.environ, CC=cc())
        for cmd, what in (
            (["cmake", "-S", str(ROOT), "-B", str(tmp), *_cmake_generator(), *options], "configure"),
            (["cmake", "--build", str(tmp), "-j", str(min(os.cpu_count() or 1, 4))], "build"),
        ):
            run_checked(cmd, f"libckernels ({what})", env=env)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process finished the same build first: use theirs.
            if not lib.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def library_path(sanitize: bool = False) -> Path:
    return build_dir(sanitize) / f"lib{LIB_NAME}.so"


def static_library_path(sanitize: bool = False) -> Path:
    return build_dir(sanitize) / f"lib{LIB_NAME}.a"


def include_dirs() -> list[Path]:
    """Folders to pass as -I when compiling C against libckernels."""
    return [ROOT / "kernels" / "include", ROOT / "runtime"]


def library(sanitize: bool = False) -> ctypes.CDLL:
    """libckernels loaded with ctypes (built on first use; one load per process)."""
    lib = _LIBS.get(sanitize)
    if lib is None:
        lib = load(library_path(sanitize), sanitize)
    return lib


def load(path, sanitize: bool = False) -> ctypes.CDLL:
    """Load a given libckernels.so (e.g. one a parent process built) as ``library()``'s result."""
    lib = _LIBS.get(sanitize)
    if lib is None:
        lib = ctypes.CDLL(str(path))
        lib.ck_cpu_features.restype = ctypes.c_int
        lib.ck_cpu_features.argtypes = []
        lib.ck_pool_create.restype = ctypes.c_void_p
        lib.ck_pool_create.argtypes = [ctypes.c_int]
        lib.ck_pool_destroy.restype = None
        lib.ck_pool_destroy.argtypes = [ctypes.c_void_p]
        lib.ck_pool_size.restype = ctypes.c_int
        lib.ck_pool_size.argtypes = [ctypes.c_void_p]
        _LIBS[sanitize] = lib
    return lib


def asan_runtime() -> str | None:
    """Path of the compiler's libasan.so (for LD_PRELOAD), or None."""
    try:
        out = subprocess.run([cc(), "-print-file-name=libasan.so"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return out if os.path.isabs(out) and os.path.exists(out) else None


def cpu_feature_bits() -> int:
    # any already-loaded flavour answers the same (avoids building another one)
    lib = next(iter(_LIBS.values()), None) or library()
    return int(lib.ck_cpu_features())


def cpu_features() -> frozenset[str]:
    """Names of the CPU features the OS and CPU support: {"avx2", "fma", "avx512f", ...}."""
    bits = cpu_feature_bits()
    return frozenset(name for name, bit in CPU_FLAGS.items() if bits & bit)


def available_variants() -> list[str]:
    """Kernel variants this machine runs, e.g. ["scalar", "avx2", "avx512"].

    ``CKC_VARIANTS`` (comma-separated) restricts the list, e.g. to test a
    machine without AVX-512 on one that has it."""
    feats = cpu_features()
    out = [v for v, needs in VARIANT_NEEDS.items() if all(f in feats for f in needs)]
    only = os.environ.get("CKC_VARIANTS")
    if only:
        allowed = {v.strip() for v in only.split(",")}
        out = [v for v in out if v in allowed]
    return out


def best_variant() -> str:
    return available_variants()[-1]


class Pool(Handle):
    """A ck_pool (persistent worker threads) owned by Python; pass ``.handle``."""

    def __init__(self, nthreads: int = 0, lib: ctypes.CDLL | None = None):
        self._lib = lib or library()
        self.handle = ctypes.c_void_p(self._lib.ck_pool_create(nthreads))
        if not self.handle.value:
            raise RuntimeError(f"ck_pool_create({nthreads}) failed")

    @property
    def size(self) -> int:
        return int(self._lib.ck_pool_size(self.handle))

    def close(self) -> None:
        if self.handle is not None and self.handle.value:
            self._lib.ck_pool_destroy(self.handle)
        self.handle = None
