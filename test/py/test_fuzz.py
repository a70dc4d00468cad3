"""The fuzz targets in make test: every input that ever crashed a loader
(test/py/data/fuzz/<target>/), then a short fixed-seed mutation run per target.

The long coverage-guided runs are `make fuzz` (bench/fuzz.py). Here the Python
targets run without atheris' runtime (tools/fuzz/targets.py's own mutator) and
the C targets are built with gcc + ASan/UBSan and a main() that replays files
through LLVMFuzzerTestOneInput, so no clang is needed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "fuzz"))

import cbuild  # noqa: E402
import targets  # noqa: E402

# fixed-seed mutations per target: a second or two each on this machine
N_MUTATIONS = {"mlir": 150, "hf_config": 150, "checkpoint": 150}
N_DEFAULT = 250


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_python_target(name, tmp_path):
    target = targets.TARGETS[name]
    work = tmp_path / "w"
    for p in targets.corpus_files(name):  # every input that ever crashed, first
        assert targets.check_one(target, p.read_bytes(), work) is None, p
    for s in target.seeds():  # the seeds load or fail cleanly
        assert targets.check_one(target, s, work) is None
    rng = random.Random(f"ckc-fuzz-{name}")
    pool = target.seeds() + [p.read_bytes() for p in targets.corpus_files(name)]
    for i in range(N_MUTATIONS.get(name, N_DEFAULT)):
        data = targets.mutate(rng.choice(pool), rng, pool)
        bad = targets.check_one(target, data, work)
        assert bad is None, f"{name} mutation #{i}: {bad}"


class _Raw(Exception):
    pass


def _raising(exc):
    def run(data, work):
        raise exc(work)
    return targets.Target("t", run, lambda: (_Raw,), lambda: [], ())


def test_checker_reports_bugs(tmp_path):
    """The harness is not vacuous: a traceback, a two-line message or one that
    does not name the file are all findings; a clean one-line error is not."""
    work = tmp_path / "w"
    assert "KeyError" in targets.check_one(_raising(lambda w: KeyError("x")), b"", work)
    assert "not one line" in targets.check_one(_raising(lambda w: _Raw(f"{w}: a\nb")), b"", work)
    assert "does not name the file" in targets.check_one(_raising(lambda w: _Raw("bad")), b"", work)
    assert targets.check_one(_raising(lambda w: _Raw(f"{w}: bad")), b"", work) is None


def _mutations(seeds: list[bytes], n: int, seed: str) -> list[bytes]:
    rng = random.Random(seed)
    return [targets.mutate(rng.choice(seeds), rng, seeds) for _ in range(n)]


@pytest.mark.parametrize("name", cbuild.C_TARGETS)
def test_c_target_replay(name, tmp_path):
    """Seeds, kept crashers and 2000 fixed-seed mutations through the C reader
    under ASan/UBSan (gcc): any memory error or abort fails the run."""
    exe = cbuild.build(name, "replay")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    seeds = targets.c_seeds(name)
    for i, s in enumerate(seeds + _mutations(seeds, 2000, f"ckc-fuzz-{name}")):
        (inputs / f"in-{i}").write_bytes(s)
    args = [str(exe), str(inputs)]
    kept = targets.CORPUS / name
    if kept.is_dir():
        args.append(str(kept))
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "halt_on_error=1"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert "replayed" in proc.stdout


@pytest.mark.parametrize("edit,expect", [
    (lambda s: s["config"].update(n_layers=10 ** 12), "n_layers is 1000000000000, expected a positive integer"),
    (lambda s: s["config"].update(head_dim=0), "head_dim is 0, expected a positive integer"),
    (lambda s: s.update(step="3"), "'step' is '3', expected a count"),
    (lambda s: s.update(weights=5), "'weights' is not a list of tensor names"),
])
def test_checkpoint_state_rejected(tmp_path, edit, expect):
    """state.json values a fuzzer found hard to reach: sizes checked before use."""
    import json

    from ckc.train.checkpoint import CheckpointError

    cfg = targets._tiny_cfg()
    state = targets._checkpoint_state(cfg, targets._tiny_tensors(cfg))
    edit(state)
    with pytest.raises(CheckpointError, match="state.json: ") as e:
        targets._run_checkpoint(json.dumps(state).encode(), tmp_path)
    assert expect in str(e.value)
