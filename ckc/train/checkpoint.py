"""Training checkpoints: one folder per step, written whole or not at all.

    OUT/checkpoints/step-000010/
        weights.bump     model weights, canonical names, f32 (ckc.weights format)
        optim.bump       AdamW state: ``m.<name>`` and ``v.<name>`` per weight, f32
        state.json       step, optimizer step, model config, run settings, data
                         position + RNG state, loss history, backend

``save`` writes everything into a hidden temporary folder next to the final
one and renames it into place, so a run killed mid-save leaves the previous
checkpoints intact and never a half-written one under a ``step-*`` name.
``load`` validates everything (files present, format/version, every weight and
its m/v present with the config's shapes) and raises ``CheckpointError`` with
one line naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ckc.atomic import disk_full
from ckc.importers.config import ModelConfig
from ckc.weights import BumpError, read_bump, write_bump

FORMAT = "ckc-train-checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{6,})$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; str() is one line."""

    def __init__(self, message: str):
        from ckc.errors import one_line

        super().__init__(one_line(message))


@dataclass
class Checkpoint:
    step: int                                  # optimizer updates done
    config: ModelConfig
    weights: dict[str, np.ndarray]             # canonical name -> f32
    m: dict[str, np.ndarray]                   # AdamW first moments
    v: dict[str, np.ndarray]                   # AdamW second moments
    opt_step: int                              # AdamW's step counter (bias correction)
    data: dict = field(default_factory=dict)   # BatchLoader.state()
    run: dict = field(default_factory=dict)    # settings of the run (batch, lr, ...)
    history: list = field(default_factory=list)  # loss rows so far
    extra: dict = field(default_factory=dict)  # backend name, torch RNG state, ...


def step_dir(root, step: int) -> Path:
    return Path(root) / f"step-{step:06d}"


def save(root, ck: Checkpoint, keep: int = 2) -> Path:
    """Write ``ck`` as ``root/step-NNNNNN`` atomically; keep the newest ``keep`` checkpoints."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, ck.step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        names = list(ck.weights)
        write_bump(tmp / "weights.bump", [(n, np.asarray(ck.weights[n], np.float32)) for n in names])
        opt = []
        for n in names:
            opt.append((f"m.{n}", np.asarray(ck.m[n], np.float32)))
            opt.append((f"v.{n}", np.asarray(ck.v[n], np.float32)))
        write_bump(tmp / "optim.bump", opt)
        state = {"format": FORMAT, "version": VERSION, "step": ck.step, "opt_step": ck.opt_step,
                 "config": ck.config.to_dict(), "weights": names, "data": ck.data, "run": ck.run,
                 "history": ck.history, "extra": ck.extra}
        with open(tmp / "state.json", "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if disk_full(err):  # name the checkpoint, not the hidden folder that was removed
            raise OSError(err.errno, os.strerror(err.errno), str(final)) from None
        raise
    if keep > 0:
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest(root) -> Path | None:
    cks = list_checkpoints(root)
    return cks[-1] if cks else None


def load(path) -> Checkpoint:
    """Read and validate a checkpoint folder (``step-NNNNNN``) or a root holding some."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if not (path / "state.json").exists():
        last = latest(path)
        if last is None:
            raise CheckpointError(f"{path}: no checkpoint (no step-*/state.json)")
        path = last
    sfile = path / "state.json"
    try:
        state = json.loads(sfile.read_bytes())
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{sfile}: malformed JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{sfile}: not a ckc training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{sfile}: checkpoint version {state.get('version')}, this ckc reads {VERSION}")
    for k in ("step", "opt_step", "config", "weights"):
        if k not in state:
            raise CheckpointError(f"{sfile}: key '{k}' missing")
    for k in ("step", "opt_step"):
        if type(state[k]) is not int or state[k] < 0:
            raise CheckpointError(f"{sfile}: '{k}' is {state[k]!r}, expected a count")
    if not isinstance(state["weights"], list) or not all(isinstance(n, str) for n in state["weights"]):
        raise CheckpointError(f"{sfile}: 'weights' is not a list of tensor names")
    for k in ("data", "run", "extra"):
        if not isinstance(state.get(k) or {}, dict):
            raise CheckpointError(f"{sfile}: '{k}' is not a JSON object")
    if not isinstance(state.get("history") or [], list):
        raise CheckpointError(f"{sfile}: 'history' is not a list")
    conf = state["config"]
    if not isinstance(conf, dict):
        raise CheckpointError(f"{sfile}: bad model config (not a JSON object)")
    # sizes first: a corrupt one must not reach the arithmetic (0 divides,
    # 10^12 layers build per-layer tables) before it is rejected
    from ckc.importers.common import MAX_DIM, MAX_LAYERS

    for k in ("vocab_size", "hidden", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn", "max_context"):
        v = conf.get(k)
        if type(v) is not int or not 0 < v <= (MAX_LAYERS if k == "n_layers" else MAX_DIM):
            raise CheckpointError(f"{sfile}: bad model config ({k} is {v!r}, expected a positive integer)")
    try:
        cfg = ModelConfig(**conf)
        shapes = cfg.expected_shapes()
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError) as e:
        raise CheckpointError(f"{sfile}: bad model config ({type(e).__name__}: {e})") from None
    for fname in ("weights.bump", "optim.bump"):
        if not (path / fname).is_file():
            raise CheckpointError(f"{path / fname}: missing from the checkpoint")
    try:
        wts = read_bump(path / "weights.bump")
        opt = read_bump(path / "optim.bump")
    except FileNotFoundError as e:
        raise CheckpointError(f"{e.filename}: missing from the checkpoint") from None
    except BumpError as e:
        raise CheckpointError(str(e).splitlines()[0]) from None
    names = list(state["weights"])
    if set(names) != set(shapes):
        extra = sorted(set(names) ^ set(shapes))
        raise CheckpointError(f"{sfile}: weight list disagrees with the model config at '{extra[0]}'")
    weights, m, v = {}, {}, {}
    for n in names:
        for store, key, fname in ((wts, n, "weights.bump"), (opt, f"m.{n}", "optim.bump"), (opt, f"v.{n}", "optim.bump")):
            if key not in store:
                raise CheckpointError(f"{path / fname}: tensor '{key}' missing")
            a = store[key]
            if a.dtype != np.float32 or tuple(a.shape) != tuple(shapes[n]):
                raise CheckpointError(f"{path / fname}: tensor '{key}' is {a.dtype} {list(a.shape)}, "
                                      f"expected float32 {list(shapes[n])}")
        weights[n] = np.array(wts[n])
        m[n] = np.array(opt[f"m.{n}"])
        v[n] = np.array(opt[f"v.{n}"])
    return Checkpoint(step=int(state["step"]), config=cfg, weights=weights, m=m, v=v,
                      opt_step=int(state["opt_step"]), data=state.get("data") or {}, run=state.get("run") or {},
                      history=state.get("history") or [], extra=state.get("extra") or {})
