"""The one ctypes binding of runtime/ckc_abi.h: every model.so, inference or training.

``load_library(so)`` dlopens a model.so (making libckernels available first
when it needs it), refuses a library of another ABI version with one line
(``recompile``), and declares every entry point the header has that the
library exports. ckc/session.py (inference) and ckc/train/ckc_backend.py
(training) call through it; neither declares a C function itself.

``Handle`` is the create/destroy life cycle both share: ``close()`` (also on
``with`` exit and at garbage collection) destroys the C object once.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

ABI_VERSION = 2

# Return codes (CKC_OK, CKC_ERR_*)
OK, ERR_INVALID, ERR_TOKEN, ERR_CONTEXT, ERR_MEMORY, ERR_INTERNAL, ERR_UNSUPPORTED = range(7)

# ckc_info.functions (CKC_FN_*): the compute functions of the library's IR
FUNCTIONS = ("prefill", "prefill_all", "decode", "decode_batch", "train_step", "eval_loss", "optimizer_step",
             "zero_grads")
FN = {name: 1 << i for i, name in enumerate(FUNCTIONS)}

# Stores of ckc_tensor_read / _write / _discard (CKC_WEIGHT, ...)
WEIGHT, GRAD, ADAM_M, ADAM_V = 0, 1, 2, 3


class BindingError(RuntimeError):
    """A library could not be loaded or is not of this ckc's ABI; str() is one line."""


class CkcInfo(ctypes.Structure):
    """Mirror of ``ckc_info`` in runtime/ckc_abi.h."""

    _fields_ = [
        ("abi_version", ctypes.c_int32),
        ("vocab", ctypes.c_int32),
        ("context", ctypes.c_int32),
        ("max_batch", ctypes.c_int32),
        ("layers", ctypes.c_int32),
        ("hidden", ctypes.c_int32),
        ("nthreads", ctypes.c_int32),
        ("debug", ctypes.c_int32),
        ("arena_bytes", ctypes.c_int64),
        ("weights_bytes", ctypes.c_int64),
        ("arch", ctypes.c_char * 32),
        ("simd", ctypes.c_char * 16),
        ("functions", ctypes.c_int32),
        ("slots", ctypes.c_int32),
        ("seq_len", ctypes.c_int32),
        ("batch", ctypes.c_int32),
        ("n_tensors", ctypes.c_int32),
        ("n_params", ctypes.c_int32),
        ("weights_owned", ctypes.c_int32),
        ("reserved32", ctypes.c_int32),
        ("reserved", ctypes.c_int64 * 4),
    ]

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name, _ in self._fields_ if not name.startswith("reserved")}
        out["arch"] = self.arch.decode("utf-8", "replace")
        out["simd"] = self.simd.decode("utf-8", "replace")
        out["functions"] = [f for f in FUNCTIONS if self.functions & FN[f]]
        return out


_P, _I, _F, _S = ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_size_t
_I32P = ctypes.POINTER(ctypes.c_int32)
_F32P = ctypes.POINTER(ctypes.c_float)
_STR = ctypes.c_char_p

# Every entry point of runtime/ckc_abi.h: name -> (restype, argtypes).
REQUIRED = {
    "ckc_abi_version": (_I, []),
    "ckc_model_create": (_P, [_STR, _I, _STR, _I]),
    "ckc_model_destroy": (None, [_P]),
    "ckc_model_info": (_I, [_P, ctypes.POINTER(CkcInfo)]),
    "ckc_last_error": (_STR, [_P]),
}
OPTIONAL = {  # a hand-written library (test/py/data/bigram_model.c) may implement only part of the ABI
    "ckc_prefill": (_I, [_P, _I32P, _I, _F32P]),
    "ckc_prefill_all": (_I, [_P, _I32P, _I, _F32P]),
    "ckc_decode": (_I, [_P, ctypes.c_int32, _F32P]),
    "ckc_reset": (_I, [_P]),
    "ckc_position": (_I, [_P]),
    "ckc_slots": (_I, [_P]),
    "ckc_batch": (_I, [_P, _I32P, _I32P, _I, _I32P, _I, _F32P]),
    "ckc_slot_reset": (_I, [_P, _I]),
    "ckc_slot_position": (_I, [_P, _I]),
    "ckc_tensor_name": (_STR, [_P, _I]),
    "ckc_tensor_shape": (_I, [_P, _I, ctypes.POINTER(ctypes.c_int64)]),
    "ckc_tensor_trainable": (_I, [_P, _I]),
    "ckc_tensor_read": (_I, [_P, _I, _STR, _P, _S]),
    "ckc_tensor_write": (_I, [_P, _I, _STR, _P, _S]),
    "ckc_tensor_discard": (_I, [_P, _I, _STR]),
    "ckc_train_step": (_I, [_P, _P, _P, _I, _F, _F32P]),
    "ckc_eval_loss": (_I, [_P, _P, _P, _I, _F32P]),
    "ckc_optimizer_step": (_I, [_P, _F, _F32P]),
    "ckc_zero_grads": (_I, [_P]),
    "ckc_get_step": (ctypes.c_int64, [_P]),
    "ckc_set_step": (_I, [_P, ctypes.c_int64]),
}


# The build flavours' own entry points (runtime/library/ckc_runtime.c): -DCKC_PROFILE
# (ckc/profiler.py reads the per-call counters) and -DCKC_RECORD (ckc/parity/record.py
# installs the recorder, runtime/record.h).
RECORD_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int64,
                             ctypes.c_void_p)
PROFILE = {
    "ckc_profile_fields": (_I, []),
    "ckc_profile_read": (_I, [_P, _P]),
    "ckc_profile_reset": (None, []),
}
RECORD = {"ckc_record_set": (None, [RECORD_FN, _P])}


def declare_flavour(lib: ctypes.CDLL, table: dict) -> bool:
    """Declare a build flavour's entry points (PROFILE, RECORD); False if ``lib`` lacks them."""
    if not all(hasattr(lib, name) for name in table):
        return False
    for name, (res, args) in table.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return True


def call_names(lib: ctypes.CDLL) -> list[str]:
    """``ckc_gen_call_names``: every kernel call of the library's model.c, in its numbering."""
    n = ctypes.c_int.in_dll(lib, "ckc_gen_n_calls").value
    names = (ctypes.c_char_p * max(n, 1)).in_dll(lib, "ckc_gen_call_names")
    return [names[i].decode() for i in range(n)]


def declare(lib: ctypes.CDLL, so) -> ctypes.CDLL:
    """Set restype / argtypes of every entry point ``lib`` exports; the required ones must exist."""
    for table, required in ((REQUIRED, True), (OPTIONAL, False)):
        for name, (res, args) in table.items():
            f = getattr(lib, name, None)
            if f is None:
                if required:
                    raise BindingError(f"{so}: not a ckc model library (missing {name})")
                continue
            f.restype, f.argtypes = res, args
    return lib


def _load_global(path: Path) -> None:
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def _dlopen(so: Path) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(str(so.resolve()))
    except OSError as first:
        msg = str(first).replace("\n", " ")
        if "libckernels" not in msg and "undefined symbol: ck_" not in msg:
            raise BindingError(f"{so}: cannot load: {msg}") from None
    local = so.parent / "libckernels.so"
    try:
        if local.is_file():
            _load_global(local)
        else:
            from ckc import kernels  # the kernel library, built on demand

            _load_global(kernels.library_path())
        return ctypes.CDLL(str(so.resolve()))
    except Exception as e:  # noqa: BLE001 - reported as one line
        raise BindingError(f"{so}: cannot load (needs libckernels): {str(e).splitlines()[0]}") from None


def load_library(so) -> ctypes.CDLL:
    """dlopen a model.so of this ckc's ABI and declare its entry points; a
    library of an older ckc (ABI 1's inference library, the separate training
    ABI's ``ckc_train_*``) is refused with one line saying to recompile."""
    so = Path(so)
    if not so.is_file():
        raise BindingError(f"{so}: no compiled model library (run `ckc compile` first)")
    lib = _dlopen(so)
    if not hasattr(lib, "ckc_abi_version") and hasattr(lib, "ckc_train_abi_version"):
        f = lib.ckc_train_abi_version
        f.restype, f.argtypes = ctypes.c_int, []
        raise BindingError(f"{so}: a training library of the old training ABI (version {f()}), this ckc speaks "
                           f"ABI {ABI_VERSION}: recompile it")
    declare(lib, so)
    abi = lib.ckc_abi_version()
    if abi != ABI_VERSION:
        raise BindingError(f"{so}: model ABI version {abi}, this ckc speaks {ABI_VERSION}: recompile the model")
    return lib


def info(lib: ctypes.CDLL, handle) -> CkcInfo:
    out = CkcInfo()
    if lib.ckc_model_info(handle, ctypes.byref(out)) != OK:
        raise BindingError("ckc_model_info failed")
    return out


def last_error(lib: ctypes.CDLL, handle, rc: int) -> str:
    """ckc_last_error's first line, or a generic one."""
    msg = (lib.ckc_last_error(handle) or b"").decode("utf-8", "replace").strip()
    return msg.splitlines()[0] if msg else f"model call failed with code {rc}"


def i32p(a):
    return a.ctypes.data_as(_I32P)


def f32p(a):
    return a.ctypes.data_as(_F32P)


class Handle:
    """A C object with a ``close()`` that frees it once: context manager, and
    closed at garbage collection."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
