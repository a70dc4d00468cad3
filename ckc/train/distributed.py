"""Data-parallel training over MPI: ``mpirun -np N ckc train ...``.

    world = World.from_environment()          # None unless started by mpirun / mpiexec
    be = world.build_in_turn(lambda: make_backend("ckc", cfg, weights, optim, max_tokens=T))
    dp = DataParallel(be, world, vocab=cfg.vocab_size)   # a StepBackend again
    Trainer(dp, cfg, corpus, settings, out_dir=out if world.rank == 0 else None).run()

Every rank holds the whole model and the whole optimizer state, and draws the
same global batches (``BatchLoader`` with the run's seed), so the data order
does not depend on N. Sharding: rank r takes rows ``[r·b/N, (r+1)·b/N)`` of
every micro-batch of b rows (contiguous, disjoint, deterministic), and scales
its rows' gradients by ``count_row / count_micro_batch`` over the GLOBAL
micro-batch, so the sum of the ranks' gradients is the single-process
gradient of the same global batch. The reported loss is the same weighted
mean, gathered from the ranks.

Gradient all-reduce (``optimizer_step``, before clipping and AdamW): the
trainable tensors, in the backend's order, are packed into buckets of about
``bucket_mb`` MiB. A bucket of n floats (padded to N·c) is exchanged with
``Ialltoall``: rank j receives slice j of every rank's bucket, adds them in
rank order ``((g_0 + g_1) + g_2) + ...`` with NumPy float32 adds, and
``Iallgather`` hands every rank the summed slices. MPI only moves bytes here
(no MPI reduction op, whose algorithm Open MPI picks by message size and
process count), each element is summed by exactly one rank in a fixed order,
and every rank receives the same bytes: the result does not depend on timing
or on the MPI library's algorithm choice, and the replicas never drift
apart. The next bucket is packed while the previous one is in flight; the
reduction does not overlap the backward itself (the compiled train step is
one C call that returns when the backward is done).

Versus one process with the same global batch the gradients differ only in
the float32 summation order of the per-row contributions (one process
accumulates rows 0..b-1 in turn; N ranks accumulate their rows, then add the
N partial sums), so losses and weights agree within float32 rounding, not
bit for bit; two runs with the same N agree bit for bit.

Failures: every wait is bounded (``timeout`` seconds, ``--mpi-timeout``); a
rank that times out names the ranks that did not answer. A rank that dies
makes Open MPI's launcher stop the job (it prints the rank and its signal);
the survivors receive SIGTERM, which becomes :class:`RankFailure` naming the
dead rank(s) (peers on the same host are checked by process id), so rank 0
never leaves a half-written checkpoint (checkpoints are written to a temporary
folder and renamed).
"""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np

# environment variables an MPI launcher sets in every rank (Open MPI, PMIx, MPICH/Hydra)
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE")


# how long a wait polls with sched_yield before it sleeps between polls: every
# sleep costs a trip through the scheduler, and a bucket's exchange needs
# several Test rounds, so short waits stay awake (yielding the core to others)
SPIN_S = 0.05


class RankFailure(RuntimeError):
    """Another rank died, or did not answer within the timeout (one line)."""


def launched_by_mpi() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _process_state(pid: int) -> str:
    """"gone" (exited, or a zombie waiting for its parent), "stopped" (SIGSTOP,
    a debugger) or "running"."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "running"
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "running"
    return "gone" if st in ("Z", "X") else "stopped" if st in ("T", "t") else "running"


class World:
    """The MPI communicator of a data-parallel run, with bounded waits."""

    def __init__(self, comm, timeout: float = 300.0):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.timeout = float(timeout)
        comm.Set_errhandler(MPI.ERRORS_RETURN)  # MPI errors become exceptions, not aborts
        self.failing = False
        # a communicator of its own for fail_together: a barrier there never meets
        # (and mismatches) a collective of the training itself
        self._exit_comm = comm.Dup()
        host = socket.gethostname()
        # who runs where: names a dead peer on this host by its pid (see dead_ranks)
        self.peers = self.allgather_object((host, os.getpid()), "start-up")
        self.host = host

    @classmethod
    def from_environment(cls, timeout: float = 300.0) -> "World | None":
        """The world when started by an MPI launcher, else None (a plain process)."""
        if not launched_by_mpi():
            return None
        try:
            from mpi4py import MPI
        except ImportError:
            from .trainer import TrainError

            raise TrainError("started by mpirun, but mpi4py is not installed (pip install 'ckc[mpi]')") from None
        return cls(MPI.COMM_WORLD.Dup(), timeout)

    # -- failures --------------------------------------------------------------

    def dead_ranks(self) -> list[int]:
        """Ranks on this host whose process has exited."""
        return self._ranks_in("gone")

    def _ranks_in(self, state: str) -> list[int]:
        return [r for r, (host, pid) in enumerate(self.peers)
                if r != self.rank and host == self.host and _process_state(pid) == state]

    def _failure(self, what: str, timeout: float | None = None) -> RankFailure:
        for state, verb in (("gone", "died"), ("stopped", "is stopped (SIGSTOP?)")):
            ranks = self._ranks_in(state)
            if ranks:
                who = ", ".join(f"rank {r} (pid {self.peers[r][1]})" for r in ranks)
                return RankFailure(f"rank {self.rank}: {who} {verb} during {what}; stopping (checkpoints "
                                   f"already written are intact)")
        return RankFailure(f"rank {self.rank}: {what} got no answer from the other ranks within "
                           f"{self.timeout if timeout is None else timeout:g}s; stopping")

    def fail_together(self, seconds: float = 10.0) -> bool:
        """This rank is leaving with an error: wait up to ``seconds`` for the
        others to leave too (the same bad input fails every rank at once), so
        the launcher does not stop them half-way. True when all did."""
        self.failing = True
        req = self._exit_comm.Ibarrier()
        deadline = time.monotonic() + seconds
        try:
            while not req.Test():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.001)
        except self.MPI.Exception:
            return False
        return True

    def install_signal_handlers(self) -> None:
        """SIGTERM (the launcher stopping the job after a rank died) -> RankFailure,
        raised where Python next runs, so files being written are cleaned up."""
        def on_term(signum, frame):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
            if self.failing:
                os._exit(1)  # leaving already, with our own message
            dead = self.dead_ranks()
            if dead:
                raise RankFailure(f"rank {self.rank}: " + ", ".join(f"rank {r} (pid {self.peers[r][1]})" for r in dead)
                                  + " died; stopping (checkpoints already written are intact)")
            raise RankFailure(f"rank {self.rank}: stopped by the MPI launcher (SIGTERM; another rank failed "
                              f"or the job was cancelled)")

        signal.signal(signal.SIGTERM, on_term)

    def wait(self, req, what: str, timeout: float | None = None) -> None:
        """Complete a nonblocking request within ``timeout`` (default: the world's) seconds."""
        start = time.monotonic()
        timeout = self.timeout if timeout is None else timeout
        deadline = start + timeout
        try:
            while not req.Test():  # Open MPI progresses a nonblocking collective inside Test
                now = time.monotonic()
                if now > deadline:
                    raise self._failure(what, timeout)
                if now - start < SPIN_S:
                    os.sched_yield()  # stay close: an all-reduce takes many Test rounds
                else:
                    time.sleep(0.001)  # a long wait (a checkpoint, a build): free the core
        except self.MPI.Exception as e:
            if self.dead_ranks():
                raise self._failure(what) from None
            raise RankFailure(f"rank {self.rank}: MPI error during {what}: "
                              f"{str(e).splitlines()[0] if str(e) else e}") from None

    # -- collectives ------------------------------------------------------------

    def allgather_object(self, obj, what: str) -> list:
        """Every rank's small picklable ``obj``, in rank order (bounded wait)."""
        import pickle

        data = np.frombuffer(pickle.dumps(obj), np.uint8)
        sizes = np.zeros(self.size, np.int64)
        self.wait(self.comm.Iallgather(np.array([data.size], np.int64), sizes), what)
        out = np.zeros(int(sizes.sum()), np.uint8)
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.wait(self.comm.Iallgatherv(data, [out, sizes, displs, self.MPI.BYTE]), what)
        return [pickle.loads(out[displs[r]:displs[r] + sizes[r]].tobytes()) for r in range(self.size)]

    def sum_in_rank_order(self, values: np.ndarray, what: str) -> np.ndarray:
        """float64 ``values`` summed over the ranks, in rank order (small arrays)."""
        v = np.ascontiguousarray(values, np.float64)
        out = np.zeros((self.size,) + v.shape, np.float64)
        self.wait(self.comm.Iallgather(v, out), what)
        acc = out[0].copy()
        for r in range(1, self.size):
            acc += out[r]
        return acc

    def start_bucket(self, bucket: np.ndarray, recv: np.ndarray | None = None):
        """Begin the fixed-order sum of float32 ``bucket`` ([size, c], every rank
        the same shape): rank j receives row j of every rank (into ``recv``, a
        [size, c] array, or a new one)."""
        recv = np.empty_like(bucket) if recv is None else recv
        return recv, self.comm.Ialltoall(bucket, recv)

    def finish_bucket(self, bucket: np.ndarray, recv: np.ndarray, req, what: str,
                      acc: np.ndarray | None = None) -> None:
        """Complete :meth:`start_bucket`: add the received rows in rank order
        (into ``acc``, c floats, or a new array), share the sums; ``bucket``
        then holds the global sum on every rank."""
        self.wait(req, what)
        if acc is None:
            acc = recv[0].copy()
        else:
            np.copyto(acc, recv[0])
        for r in range(1, self.size):
            acc += recv[r]
        self.wait(self.comm.Iallgather(acc, bucket), what)

    def barrier(self, what: str, timeout: float | None = None) -> None:
        self.wait(self.comm.Ibarrier(), what, timeout)

    def build_in_turn(self, make):
        """``make()`` on rank 0 first, then on the others: rank 0 fills the shared
        compile cache, so the ranks do not build the same library at once."""
        if self.rank == 0:
            obj = make()
        # building a large model's library takes minutes: 12 timeouts (an hour by default)
        self.barrier("start-up (rank 0 building the training library)", 12 * self.timeout)
        if self.rank != 0:
            obj = make()
        return obj


def shard(rows: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s rows of a micro-batch of ``rows`` (contiguous, disjoint)."""
    per = rows // size
    return slice(rank * per, (rank + 1) * per)


# --------------------------------------------------------------------------- gradients

class _TorchGrads:
    """Gradient access of trainer.TorchBackend (torch's .grad tensors)."""

    def __init__(self, be):
        self.be = be
        self.names = list(be.names)
        self.sizes = [int(be.params[n].numel()) for n in self.names]

    def read(self, i: int, out: np.ndarray) -> None:
        g = self.be.params[self.names[i]].grad
        if g is None:
            out[:] = 0.0
        else:
            out[:] = g.detach().reshape(-1).numpy()

    def write(self, i: int, src: np.ndarray) -> None:
        p = self.be.params[self.names[i]]
        t = self.be.torch.from_numpy(src.reshape(p.shape).copy())
        if p.grad is None:
            p.grad = t
        else:
            p.grad.copy_(t)


class _CkcGrads:
    """Gradient access of ckc_backend.CkcBackend (the runtime's gradient store,
    read into / written from the bucket's memory directly)."""

    def __init__(self, be):
        self.be = be
        self.m = be.model
        self.names = list(self.m.trainable)
        self.sizes = [int(np.prod(self.m.shapes[n])) for n in self.names]

    def read(self, i: int, out: np.ndarray) -> None:
        self.m.read_into(1, self.names[i], out)

    def write(self, i: int, src: np.ndarray) -> None:
        self.m.write_from(1, self.names[i], src)


def _grad_access(be):
    if be.name == "ckc":
        be._ready(1)  # the library exists (it was built at the first train_step)
        return _CkcGrads(be)
    if be.name == "torch":
        return _TorchGrads(be)
    raise RankFailure(f"data-parallel training does not know the '{be.name}' backend's gradients")


class DataParallel:
    """A ``StepBackend`` (trainer.py) that runs ``backend`` on this rank's shard
    of every micro-batch and all-reduces the gradients before the optimizer step."""

    def __init__(self, backend, world: World, vocab: int, bucket_mb: float = 4.0):
        self.inner, self.world, self.vocab = backend, world, int(vocab)
        self.name = backend.name
        self.bucket_floats = max(1, int(bucket_mb * 2**20 / 4))
        self._grads = None
        self._buckets: list[list[int]] | None = None
        self.comm_s = 0.0   # time spent in the gradient all-reduce (for the bench)

    # -- sharding
    def _local(self, tokens, targets):
        tok = np.atleast_2d(np.asarray(tokens))
        tgt = np.atleast_2d(np.asarray(targets))
        w = self.world
        if tok.shape[0] % w.size:
            raise RankFailure(f"a micro-batch of {tok.shape[0]} rows does not split over {w.size} ranks")
        valid = (tgt >= 0) & (tgt < self.vocab)
        total = int(valid.sum())
        sl = shard(tok.shape[0], w.rank, w.size)
        local = int(valid[sl].sum())
        return tok[sl], tgt[sl], local, total

    def train_step(self, tokens, targets, grad_scale: float = 1.0) -> float:
        tok, tgt, local, total = self._local(tokens, targets)
        scale = grad_scale * local / total if total else 0.0
        loss = self.inner.train_step(tok, tgt, scale) if local else 0.0
        s = self.world.sum_in_rank_order(np.array([loss * local]), "the step's loss")
        return float(s[0] / total) if total else 0.0

    def eval_loss(self, tokens, targets) -> float:
        tok, tgt, local, total = self._local(tokens, targets)
        loss = self.inner.eval_loss(tok, tgt) if local else 0.0
        s = self.world.sum_in_rank_order(np.array([loss * local]), "the eval loss")
        return float(s[0] / total) if total else 0.0

    # -- the all-reduce
    def _plan(self):
        g = _grad_access(self.inner)
        buckets, cur, n = [], [], 0
        for i, size in enumerate(g.sizes):
            if cur and n + size > self.bucket_floats:
                buckets.append(cur)
                cur, n = [], 0
            cur.append(i)
            n += size
        if cur:
            buckets.append(cur)
        self._grads, self._buckets = g, buckets
        N = self.world.size
        most = max(-(-sum(g.sizes[i] for i in b) // N) for b in buckets)
        self._slots = [(np.empty(N * most, np.float32), np.empty(N * most, np.float32), np.empty(most, np.float32))
                       for _ in range(2)]

    def _pack(self, idx: list[int], slot: int):
        """Bucket ``idx`` read into buffer set ``slot`` (two sets, reused every
        step: no page faults on fresh memory): (send, recv, acc) views."""
        g, N = self._grads, self.world.size
        n = sum(g.sizes[i] for i in idx)
        c = -(-n // N)
        send, recv, acc = self._slots[slot]
        buf, recv, acc = send[:N * c].reshape(N, c), recv[:N * c].reshape(N, c), acc[:c]
        flat = buf.reshape(-1)
        at = 0
        for i in idx:
            g.read(i, flat[at:at + g.sizes[i]])
            at += g.sizes[i]
        return buf, recv, acc  # the padding past n is never read back

    def _unpack(self, idx: list[int], buf: np.ndarray) -> None:
        g = self._grads
        flat = buf.reshape(-1)
        at = 0
        for i in idx:
            g.write(i, flat[at:at + g.sizes[i]])
            at += g.sizes[i]

    def allreduce_gradients(self) -> None:
        if self.world.size == 1:
            return
        t0 = time.perf_counter()
        if self._buckets is None or (self.inner.name == "ckc" and self._grads.m is not self.inner.model):
            self._plan()  # first step, or the ckc library was rebuilt for longer sequences
        w = self.world
        pending = None
        for k, idx in enumerate(self._buckets):
            buf, recv, acc = self._pack(idx, k % 2)  # slot k % 2: bucket k-2 is done with it
            recv, req = w.start_bucket(buf, recv)
            if pending is not None:  # bucket k-1 completes while bucket k is in flight
                self._finish(*pending)
            pending = (k, idx, buf, recv, req, acc)
        if pending is not None:
            self._finish(*pending)
        self.comm_s += time.perf_counter() - t0

    def _finish(self, k, idx, buf, recv, req, acc) -> None:
        self.world.finish_bucket(buf, recv, req, f"the gradient all-reduce (bucket {k + 1}/{len(self._buckets)})",
                                 acc)
        self._unpack(idx, buf)

    def optimizer_step(self, lr: float) -> float:
        self.allreduce_gradients()
        return self.inner.optimizer_step(lr)

    # -- state: every rank holds the same, rank 0 saves it
    def get_weights(self):
        return self.inner.get_weights()

    def set_weights(self, weights) -> None:
        self.inner.set_weights(weights)

    def get_optimizer_state(self):
        return self.inner.get_optimizer_state()

    def set_optimizer_state(self, step, m, v) -> None:
        self.inner.set_optimizer_state(step, m, v)

    def gradients(self):
        return self.inner.gradients()
