"""This machine's roofline: fp32 FMA peak and streaming read bandwidth.

    from ckc import roofline
    r = roofline.machine(threads=2)   # {"peak_gflops": ..., "read_gbs": ..., ...}

Measured by ckc's own probes (tools/roofline/probe.c, built through
ckc.build.compile_shared) at a given thread count, once per machine: the
result is cached as JSON under the cache dir (``roofline/<machine>-t<N>.json``,
the key covering the CPU model, its flags, the core count and the probe's
source), so every later ``ckc profile`` reads it (``--reprobe`` measures
again and keeps the better figures). Each figure is the best of several runs
spread over a few seconds (this kind of VM drifts; the best run is the closest
to what the hardware can do, which is what a roofline is).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from ckc.atomic import replaced
from ckc.build import ROOT, cache_dir, compile_shared, source_hash

PROBE = ROOT / "tools" / "roofline" / "probe.c"
READ_BYTES = 256 << 20      # far beyond any last-level cache here (105 MiB L3)
FMA_ITERS = 20_000_000      # ~0.1 s per thread at 100 GFLOP/s
RUNS = 4
ROUNDS = 4


def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(compile_shared("ckc-roofline", [PROBE], flags=["-std=c11", "-O2"], libs=["-lpthread"])))
    lib.ckc_probe_lanes.restype = ctypes.c_int
    lib.ckc_probe_fma_gflops.restype = ctypes.c_double
    lib.ckc_probe_fma_gflops.argtypes = [ctypes.c_int, ctypes.c_long]
    lib.ckc_probe_read_gbs.restype = ctypes.c_double
    lib.ckc_probe_read_gbs.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    return lib


def _cpu() -> tuple[str, str]:
    """(model name, flags) from /proc/cpuinfo (the platform's name elsewhere)."""
    model, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = (x.strip() for x in line.partition(":"))
            if k == "model name" and not model:
                model = v
            elif k in ("flags", "Features") and not flags:
                flags = v
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return model, flags


def cache_path(threads: int) -> Path:
    model, flags = _cpu()
    key = source_hash([PROBE], f"{model};{flags};{os.cpu_count()}")
    return cache_dir("roofline") / f"{key}-t{threads}.json"


def measure(threads: int) -> dict:
    """Runs the probes now (no cache)."""
    lib = _library()
    buf = np.ones(READ_BYTES // 4, np.float32)  # written once: every page is mapped
    peak = read = 0.0
    for _ in range(ROUNDS):  # rounds apart in time: a neighbour's burst spoils one, not all
        peak = max([peak] + [lib.ckc_probe_fma_gflops(threads, FMA_ITERS) for _ in range(RUNS)])
        read = max([read] + [lib.ckc_probe_read_gbs(threads, buf.ctypes.data, buf.nbytes) for _ in range(RUNS)])
        time.sleep(0.3)
    if peak <= 0 or read <= 0:
        raise RuntimeError(f"roofline probes failed at {threads} threads")
    return {
        "ckc_roofline": 1,
        "cpu": _cpu()[0],
        "threads": threads,
        "lanes": lib.ckc_probe_lanes(),
        "peak_gflops": round(peak, 2),
        "read_gbs": round(read, 2),
        "read_bytes": READ_BYTES,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cached(path: Path, threads: int) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or unreadable: measure again
    ok = isinstance(data, dict) and data.get("ckc_roofline") == 1 and data.get("threads") == threads
    return data if ok else None


def machine(threads: int, *, refresh: bool = False) -> dict:
    """The cached roofline of this machine at `threads` threads (measured on
    first use). With refresh the probes run again and each figure becomes the
    better of the new and the cached one: a roofline is what the machine can
    reach, and a run slowed by a neighbour says nothing against that. The dict
    has ``cached``: whether it came from the cache unchanged."""
    path = cache_path(threads)
    old = _cached(path, threads)
    if old is not None and not refresh:
        return dict(old, cached=True, path=str(path))
    data = measure(threads)
    if old is not None:
        for k in ("peak_gflops", "read_gbs"):
            data[k] = max(data[k], old[k])
    with replaced(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")
    return dict(data, cached=False, path=str(path))
