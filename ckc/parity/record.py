"""Run a record build (``CompileOptions(record=True)``: ``lower-to-c{record}``,
model.so built with ``-DCKC_RECORD``) and collect every kernel call's outputs.

The runtime calls the recorder installed with ``ckc_record_set`` after every
kernel call, once per output, with the pointer the kernel wrote through and
the bytes it wrote (passes/lower_to_c.py); the recorder copies them. Calls are
numbered as in ``record.json`` (ckc/parity/calls.py), so a compute function run
is a run of increasing call numbers of one function.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ckc import binding
from ckc.errors import CkcError

_FN = binding.RECORD_FN


@dataclass
class Output:
    call: dict          # the record.json entry
    out: int            # which of the call's outputs
    layer: int | None   # the loop's layer index, or the one the names say
    data: np.ndarray    # rows x row shape, as the kernel wrote them

    @property
    def name(self) -> str:
        return self.call["outs"][self.out]["name"]


@dataclass
class Run:
    """One execution of a compute function."""

    function: str
    n: int
    pos: int
    tokens: list[int]
    outputs: list[Output] = field(default_factory=list)


def load_table(artifact_dir: Path) -> list[dict]:
    f = Path(artifact_dir) / "record.json"
    if not f.is_file():
        raise CkcError(f"{artifact_dir}: no record.json (not a record build: compile with CompileOptions(record=True))")
    return json.loads(f.read_text())["calls"]


class Recorder:
    """Installs itself into a record build's model.so (the Session's handle)."""

    def __init__(self, so: Path, table: list[dict]):
        self.lib = ctypes.CDLL(str(Path(so).resolve()))
        if not binding.declare_flavour(self.lib, binding.RECORD):
            raise CkcError(f"{so}: not a record build (compile with CompileOptions(record=True))")
        n = len(binding.call_names(self.lib))
        if n != len(table):
            raise CkcError(f"record.json has {len(table)} calls, {so} {n} (stale artifacts: recompile)")
        self.table = table
        self.raw: list[tuple[int, int, int, np.ndarray]] = []
        self._cb = _FN(self._record)  # kept alive as long as the recorder
        self.lib.ckc_record_set(self._cb, None)

    def _record(self, k, i, layer, ptr, nbytes, _user) -> None:
        if k < 0:  # a compute function run starts: n, pos
            self.raw.append((-1, i, layer, None))
            return
        c = self.table[k]
        o = c["outs"][i]
        buf = (ctypes.c_char * int(nbytes)).from_address(ptr)
        a = _decode(bytes(buf), o["dtype"])
        shape = o["shape"]
        if len(shape) > 1:
            row = int(np.prod(shape[1:]))
            a = a.reshape(-1, *shape[1:]) if a.size % row == 0 else a
        self.raw.append((k, i, layer, a))

    def take(self, tokens: list[int]) -> list[Run]:
        """What was recorded since the last take, as runs; `tokens` is the
        sequence the runs consumed from position 0 (for each run's tokens)."""
        runs: list[Run] = []
        for k, i, layer, a in self.raw:
            if k < 0:
                runs.append(Run("", i, layer, tokens[layer:layer + i]))
                continue
            if not runs:
                raise CkcError(f"call #{k} recorded outside a compute function run")
            c = self.table[k]
            r = runs[-1]
            if not r.function:
                r.function = c["function"]
            elif c["function"] != r.function:
                raise CkcError(f"call #{k} of @{c['function']} recorded during a run of @{r.function}")
            r.outputs.append(Output(c, i, layer if layer >= 0 else c["layer"], a))
        self.raw = []
        return runs

    def close(self) -> None:
        self.lib.ckc_record_set(_FN(), None)


def drive(session, recorder: Recorder, tokens: list[int], mode: str, steps: int) -> tuple[list[Run], list[int]]:
    """prefill: the prompt (in the runtime's chunks). decode: the prompt, then
    `steps` greedy decode steps. Returns the runs and the whole token sequence."""
    session.reset()
    recorder.raw = []
    logits = session.prefill(tokens)
    seq = list(tokens)
    if mode == "decode":
        for _ in range(steps):
            t = int(np.argmax(logits))
            seq.append(t)
            logits = session.decode(t)
    return recorder.take(seq), seq


_Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])  # ckernels.h's ck_block_q8_0


def _decode(raw: bytes, dtype: str) -> np.ndarray:
    """Recorded bytes as values: i32, f32, or an f16 / q8_0 KV cache's rows in fp32."""
    if dtype == "i32":
        return np.frombuffer(raw, np.int32)
    if dtype == "f16":
        return np.frombuffer(raw, np.float16).astype(np.float32)
    if dtype == "q8_0":
        b = np.frombuffer(raw, _Q8_0)
        return (b["d"].astype(np.float32)[:, None] * b["qs"].astype(np.float32)).reshape(-1)
    return np.frombuffer(raw, np.float32)
