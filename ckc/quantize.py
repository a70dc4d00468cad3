"""Quantizing fp32 weights to GGUF block formats at compile time.

    from ckc.quantize import quantize, dequantize
    raw = quantize(w, "q4_k")                 # w [rows, K] fp32 -> uint8 [rows, row_bytes]
    w2 = dequantize(raw, "q4_k", w.shape)     # fp32 again (gguf-py's dequantizer)

``quantize`` writes the bytes llama.cpp's reference quantizers write
(``quantize_row_<fmt>_ref`` in ggml-quants.c, what llama-quantize uses when no
importance matrix is given), for every format of :data:`ckc.dialects.quant.FORMATS`.
The work is C (``ck_quantize_rows_<variant>``, kernels/quantize.c: a
statement-by-statement port whose K-quant scale searches run 16 groups in
vector lanes, same bytes) run over row ranges on a thread pool (ctypes
releases the GIL); gguf-py's numpy quantizers are slower and have no K-quants
(bench/quantize.py measures both). F32 and F16 are numpy
conversions (F16: round to nearest even, as ggml). ``dequantize`` is
gguf-py's ``gguf.quants.dequantize``, the reference every ckc kernel is
checked against.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ckc.dialects.quant import FORMATS
from ckc.errors import CkcError

# rows per task: about 4 MiB of fp32 input, so a task is long next to its overhead
_TASK_BYTES = 4 << 20


class QuantizeError(CkcError):
    """A tensor that cannot be stored in the format asked for (one line)."""


def row_bytes(fmt: str, k: int) -> int:
    """Bytes of a row of ``k`` values in ``fmt`` (k a multiple of the block)."""
    _, block, size = _format(fmt)
    return k // block * size


def _format(fmt: str) -> tuple[int, int, int]:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise QuantizeError(f"unknown weight format '{fmt}' (expected one of {', '.join(FORMATS)})") from None


def _check(fmt: str, shape, what: str) -> tuple[int, int]:
    """(rows, K) of ``shape``, K a whole number of ``fmt`` blocks."""
    _, block, _ = _format(fmt)
    k = int(shape[-1]) if len(shape) else 1
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    if k <= 0 or k % block:
        raise QuantizeError(f"{what}: row length {k} is not a multiple of the {fmt} block ({block} values)")
    return rows, k


def _entry(variant: str | None):
    """ck_quantize_rows_<variant> (default: the best this CPU runs; every
    variant writes the same bytes)."""
    from ckc import kernels

    variant = variant or kernels.best_variant()
    fn = getattr(kernels.library(), f"ck_quantize_rows_{variant}")
    fn.restype = ctypes.c_int64
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    return fn


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def quantize(x: np.ndarray, fmt: str, *, threads: int = 0, name: str = "tensor",
             variant: str | None = None) -> np.ndarray:
    """``x`` (fp32, last dim K a multiple of the block) stored in ``fmt``:
    uint8 ``[*x.shape[:-1], row_bytes(fmt, K)]``, GGUF's block bytes.
    ``threads`` (0 = the CPUs this process may use) split the rows;
    the bytes do not depend on it, nor on ``variant`` (scalar, avx2, avx512;
    default the best this CPU runs). ``name`` goes into the error message."""
    x = np.asarray(x)
    shape = x.shape if x.ndim else (1,)
    rows, k = _check(fmt, shape, f"tensor '{name}' ({fmt})")
    rb = row_bytes(fmt, k)
    out_shape = (*shape[:-1], rb)
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(rows, k)
    if fmt == "f32":
        return x.view(np.uint8).reshape(out_shape).copy()
    if fmt == "f16":
        return x.astype("<f2").view(np.uint8).reshape(out_shape)
    ggml, _, _ = FORMATS[fmt]
    out = np.empty((rows, rb), np.uint8)
    fn = _entry(variant)
    step = max(1, _TASK_BYTES // (4 * k))
    ranges = [(r, min(rows, r + step)) for r in range(0, rows, step)]

    def run(r0: int, r1: int) -> None:
        n = fn(ggml, x[r0:r1].ctypes.data, out[r0:r1].ctypes.data, r1 - r0, k)
        if n != (r1 - r0) * rb:
            raise QuantizeError(f"tensor '{name}': ck_quantize_rows({fmt}) returned {n}")

    nth = min(threads or default_threads(), len(ranges))
    if nth <= 1:
        for r in ranges:
            run(*r)
    else:
        with ThreadPoolExecutor(nth) as pool:
            for f in [pool.submit(run, *r) for r in ranges]:
                f.result()
    return out.reshape(out_shape)


def dequantize(raw: np.ndarray, fmt: str, shape) -> np.ndarray:
    """fp32 ``shape`` from the bytes of a ``fmt`` tensor of that logical shape
    (gguf-py's dequantizer, bit for bit)."""
    import gguf

    shape = tuple(int(d) for d in shape)
    rows, k = _check(fmt, shape, f"dequantize ({fmt})")
    rb = row_bytes(fmt, k)
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    if raw.size != rows * rb:
        raise QuantizeError(f"dequantize ({fmt}): {raw.size} bytes, a {list(shape)} tensor has {rows * rb}")
    raw = raw.reshape(rows, rb)
    if fmt == "f32":
        return raw.view("<f4").reshape(shape).copy()
    qtype = gguf.GGMLQuantizationType(FORMATS[fmt][0])
    return np.asarray(gguf.quants.dequantize(raw, qtype), dtype=np.float32).reshape(shape)
