"""`ckc profile`: where a model's time goes, kernel call by kernel call.

    from ckc import profiler
    result = profiler.profile(path, mode="decode", tokens=32, threads=2)

1. The model is compiled with ``CompileOptions(profile=True)`` (cached like
   ``ckc run``): ``lower-to-c{profile}`` puts a timer around every kernel call,
   the runtime (``-DCKC_PROFILE``) sums per call the wall time, the executions
   and the thread pool's per-thread busy time, and the compiler writes each
   call's FLOPs and bytes (ckc/reports/costs.py) to ``calls.json``.
2. The run: ``decode`` prefills a short prompt, then times ``tokens`` decode
   steps, each followed by greedy sampling of the next token; ``prefill``
   times ``rounds`` prefills of ``tokens`` tokens from position 0 (chunks of
   the model's max tokens per chunk, as the runtime splits them). Warm-up
   calls run first and are not counted.
3. Every call's FLOPs and bytes are evaluated for the (n, pos) of every
   compute function run the driver made, and divided by its time; the
   roofline comes from ckc.roofline (this machine's probes, cached).

The end-to-end time of the timed loop is split by nested timers: kernel calls
(the runtime's per-call timers), the rest of the compute functions (pointer
setup and the timers themselves), the runtime's entry points (argument
checks, chunking), the Python -> C call (ctypes, numpy buffers), sampling,
and what no timer covers (the driver loop: ``unattributed``).
"""

from __future__ import annotations

import ctypes
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ckc.errors import CkcError
from ckc.reports.costs import evaluate

MODES = ("prefill", "decode")
FIELDS = ("ns", "count", "busy_sum", "busy_max", "wake", "jobs", "joined", "pool_overhead")  # runtime PROF_*
TOTALS = ("abi_ns", "fn_ns", "fn_runs", "unused")


@dataclass
class Counters:
    calls: np.ndarray   # [n_calls, len(FIELDS)] int64
    totals: dict


class ProfiledLibrary:
    """The profiling entry points of a model.so built with -DCKC_PROFILE (the
    same dlopen handle the Session uses, so the same counters)."""

    def __init__(self, so: Path):
        from ckc import binding

        self.lib = ctypes.CDLL(str(Path(so).resolve()))
        if not binding.declare_flavour(self.lib, binding.PROFILE):
            raise CkcError(f"{so}: not a profile build (compile with CompileOptions(profile=True))")
        if self.lib.ckc_profile_fields() != len(FIELDS):
            raise CkcError(f"{so}: profile counters of another ckc version (recompile)")
        self.call_names = binding.call_names(self.lib)
        self.n_calls = len(self.call_names)

    def reset(self) -> None:
        self.lib.ckc_profile_reset()

    def read(self) -> Counters:
        calls = np.zeros((max(self.n_calls, 1), len(FIELDS)), np.int64)
        totals = np.zeros(len(TOTALS), np.int64)
        self.lib.ckc_profile_read(calls.ctypes.data, totals.ctypes.data)
        return Counters(calls[: self.n_calls], dict(zip(TOTALS, (int(t) for t in totals))))


def check_calls(table: list[dict], names: list[str]) -> None:
    """calls.json and the library's ckc_gen_call_names describe the same calls."""
    if len(table) != len(names):
        raise CkcError(f"calls.json has {len(table)} calls, model.so {len(names)} (stale artifacts: recompile)")
    for c, name in zip(table, names):
        if not name.startswith(f"@{c['function']} #{c['index']}: {c['symbol']}("):
            raise CkcError(f"calls.json call #{c['index']} is {c['symbol']} in @{c['function']}, "
                           f"model.so has '{name}' (stale artifacts: recompile)")


# -- the driver ----------------------------------------------------------------

@dataclass
class Timed:
    """What the Python side measured around the timed loop."""

    e2e_s: float = 0.0       # the whole loop
    call_s: float = 0.0      # inside session.prefill / session.decode (Python wall)
    sample_s: float = 0.0    # choosing the next token
    runs: list | None = None  # (function, n, pos) of every compute function run


def _tokens(vocab: int, n: int, seed: int = 0) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab, size=n)]


def drive(session, lib: ProfiledLibrary, mode: str, tokens: int, *, rounds: int = 3,
          prompt: int = 8, warmup: int = 2) -> Timed:
    """Runs the timed loop (see the module docstring) with the counters reset
    right before it."""
    from ckc.sampling import Sampler

    chunk = max(int(session.info["max_batch"]), 1)
    t = Timed(runs=[])
    if mode == "decode":
        if prompt + warmup + tokens > session.context:
            raise CkcError(f"--tokens {tokens}: {prompt} prompt + {warmup} warm-up + {tokens} decode steps "
                           f"exceed the context of {session.context}")
        sampler = Sampler()
        session.reset()
        logits = session.prefill(_tokens(session.vocab, prompt))
        history: list[int] = []
        for _ in range(warmup):
            history.append(sampler(logits, history))
            logits = session.decode(history[-1])
        lib.reset()
        pos = session.position
        t0 = time.perf_counter()
        for i in range(tokens):
            a = time.perf_counter()
            nxt = sampler(logits, history)
            b = time.perf_counter()
            logits = session.decode(nxt)
            c = time.perf_counter()
            history.append(nxt)
            t.sample_s += b - a
            t.call_s += c - b
        t.e2e_s = time.perf_counter() - t0
        t.runs = [("decode", 1, pos + i) for i in range(tokens)]
        return t
    if mode == "prefill":
        if tokens > session.context:
            raise CkcError(f"--tokens {tokens} exceeds the context of {session.context}")
        ids = _tokens(session.vocab, tokens)
        session.reset()
        session.prefill(ids)  # warm-up
        session.reset()
        lib.reset()
        for _ in range(rounds):  # each round timed from the prefill call to the sampled token
            a = time.perf_counter()
            logits = session.prefill(ids)
            b = time.perf_counter()
            int(np.argmax(logits))  # the first generated token (greedy)
            c = time.perf_counter()
            session.reset()
            t.call_s += b - a
            t.sample_s += c - b
            t.e2e_s += c - a
        for _ in range(rounds):
            t.runs += [("prefill", min(chunk, tokens - d), d) for d in range(0, tokens, chunk)]
        return t
    raise CkcError(f"--mode must be one of {', '.join(MODES)}, got '{mode}'")


# -- the numbers -----------------------------------------------------------------

def _rates(flops, nbytes, seconds: float, roof: dict) -> dict:
    """GFLOP/s, GB/s, arithmetic intensity and fraction of the roofline (the
    attainable rate min(peak, AI * bandwidth), i.e. max(flops/peak, bytes/bw))."""
    out = {"gflops": None, "gbs": None, "intensity": None, "roofline": None, "bound": None}
    if flops is None or nbytes is None or seconds <= 0:
        return out
    out["gflops"] = flops / seconds / 1e9
    out["gbs"] = nbytes / seconds / 1e9
    out["intensity"] = flops / nbytes if nbytes else None
    peak, bw = roof["peak_gflops"], roof["read_gbs"]
    out["roofline"] = max(out["gflops"] / peak, out["gbs"] / bw)
    if out["intensity"] is not None:
        out["bound"] = "memory" if out["intensity"] * bw < peak else "compute"
    return out


def analyse(table: list[dict], counters: Counters, timed: Timed, roof: dict, threads: int) -> dict:
    """Per-call and per-kind rows and the end-to-end split (the profile.json body)."""
    runs_per_fn: dict[str, int] = defaultdict(int)
    for fn, _, _ in timed.runs:
        runs_per_fn[fn] += 1
    calls = []
    for c, row in zip(table, counters.calls):
        r = dict(zip(FIELDS, (int(v) for v in row)))
        if r["count"] == 0:
            continue
        want = c["trips"] * runs_per_fn.get(c["function"], 0)
        if r["count"] != want:
            raise CkcError(f"call #{c['index']} ({c['symbol']}) ran {r['count']} times, "
                           f"the driver expected {want}: counters and runs disagree")
        flops = nbytes = None
        if c["flops"] is not None:
            flops = nbytes = 0
            for fn, n, pos in timed.runs:
                if fn == c["function"]:
                    env = {"n": n, "pos": pos}
                    flops += evaluate(c["flops"], env) * c["trips"]
                    nbytes += evaluate(c["bytes"], env) * c["trips"]
        calls.append({
            "index": c["index"], "function": c["function"], "kernel": c["kernel"], "symbol": c["symbol"],
            "ins": c["ins"], "outs": c["outs"], "executions": r["count"], "seconds": r["ns"] * 1e-9,
            "flops": flops, "bytes": nbytes, "busy_s": r["busy_sum"] * 1e-9, "busy_max_s": r["busy_max"] * 1e-9,
            "pool_join_s": r["wake"] * 1e-9, "pool_jobs": r["jobs"], "pool_jobs_joined": r["joined"],
            "pool_overhead_s": r["pool_overhead"] * 1e-9,
        })
    kinds: dict[str, dict] = {}
    for c in calls:
        k = kinds.setdefault(c["kernel"], {"kernel": c["kernel"], "calls": 0, "executions": 0, "seconds": 0.0,
                                           "flops": 0, "bytes": 0, "busy_s": 0.0, "busy_max_s": 0.0,
                                           "pool_join_s": 0.0, "pool_overhead_s": 0.0})
        k["calls"] += 1
        for f in ("executions", "seconds", "busy_s", "busy_max_s", "pool_join_s", "pool_overhead_s"):
            k[f] += c[f]
        for f in ("flops", "bytes"):
            k[f] = None if k[f] is None or c[f] is None else k[f] + c[f]
    kernel_s = sum(c["seconds"] for c in calls)
    e2e = timed.e2e_s
    for row in list(calls) + list(kinds.values()):
        row.update(_rates(row["flops"], row["bytes"], row["seconds"], roof))
        row["share"] = row["seconds"] / e2e if e2e > 0 else 0.0
        wall = row["seconds"]
        row["threads_busy"] = row["busy_s"] / (wall * threads) if wall > 0 else None
        row["imbalance"] = row["busy_max_s"] / (row["busy_s"] / threads) if row["busy_s"] > 0 else None
    fn_s = counters.totals["fn_ns"] * 1e-9
    abi_s = counters.totals["abi_ns"] * 1e-9
    split = [
        ("kernels", kernel_s),
        ("compute functions, outside kernels (pointer setup, timers)", fn_s - kernel_s),
        ("runtime entry (argument checks, chunking)", abi_s - fn_s),
        ("Python -> C call (ctypes, numpy buffers)", timed.call_s - abi_s),
        ("sampling", timed.sample_s),
        ("unattributed (driver loop)", e2e - timed.call_s - timed.sample_s),
    ]
    return {
        "end_to_end_s": e2e,
        "split": [{"part": p, "seconds": s, "share": s / e2e if e2e > 0 else 0.0} for p, s in split],
        "pool_join_s": sum(c["pool_join_s"] for c in calls),
        "pool_overhead_s": sum(c["pool_overhead_s"] for c in calls),
        "pool_jobs": sum(c["pool_jobs"] for c in calls),
        "pool_jobs_joined": sum(c["pool_jobs_joined"] for c in calls),
        "compute_function_runs": counters.totals["fn_runs"],
        "kinds": sorted(kinds.values(), key=lambda k: -k["seconds"]),
        "calls": sorted(calls, key=lambda c: -c["seconds"]),
    }


def profile(path, mode: str = "decode", tokens: int = 32, threads: int = 0, *, options=None,
            rounds: int = 3, quiet: bool = True, reprobe: bool = False) -> dict:
    """Compiles (cached), runs and analyses; the profile.json content."""
    from ckc import roofline
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions, with_options
    from ckc.session import Session

    if mode not in MODES:
        raise CkcError(f"--mode must be one of {', '.join(MODES)}, got '{mode}'")
    if tokens <= 0:
        raise CkcError(f"--tokens must be positive, got {tokens}")
    if threads < 0:
        raise CkcError(f"--threads must be >= 0 (0 = all cores), got {threads}")
    options = with_options(options or CompileOptions(), profile=True)
    options.check()
    d = compiled_dir(Path(path), options, quiet=quiet)
    table = json.loads((d / "calls.json").read_text())["calls"]
    with Session(d, threads=threads) as s:
        lib = ProfiledLibrary(s.library_path)
        check_calls(table, lib.call_names)
        roof = roofline.machine(s.threads, refresh=reprobe)
        timed = drive(s, lib, mode, tokens, rounds=rounds)
        counters = lib.read()
        info = s.info
    body = analyse(table, counters, timed, roof, info["nthreads"])
    return {
        "ckc_profile": 1,
        "model": str(path),
        "artifacts": str(d),
        "mode": mode,
        "tokens": tokens,
        "rounds": rounds if mode == "prefill" else 1,
        "threads": info["nthreads"],
        "simd": info["simd"],
        "roofline": {k: roof[k] for k in ("cpu", "threads", "lanes", "peak_gflops", "read_gbs", "path", "cached")},
        **body,
    }
