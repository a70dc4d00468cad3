"""The compiled training backend: ``@train_step`` in a generated ``model.so``.

    be = CkcBackend(cfg, weights, OptimConfig(...), threads=2, max_tokens=64)
    loss = be.train_step(tokens, targets, 0.5)     # int32 [b, T] (or [T]); grads +=
    norm = be.optimizer_step(lr)                   # the generated @optimizer_step + @zero_grads
    loss = be.eval_loss(tokens, targets)           # forward only, grads untouched

Compilation (:func:`compile_train`): the model's transformer module ->
``lower-transformer{modes=train_step,eval_loss}`` -> ``autodiff`` (of
``@train_step``) -> ``add-optimizer`` (``@optimizer_step``: clipping and
AdamW with the OptimConfig's hyperparameters compiled in; ``@zero_grads``) ->
``bufferize`` (the gradients in the ``grads`` region, AdamW's moments in
``adam_m`` / ``adam_v``, saved activations; ``@eval_loss`` the forward
alone) -> ``plan-memory`` (weights, gradients, m and v as parallel blocks) ->
``select-simd`` -> ``lower-to-c`` -> model.c, compiled with
``runtime/library/ckc_runtime.c`` (implements ``runtime/ckc_abi.h``) into a
model.so linked against libckernels.a. The pipeline runs in a child process
(``python -m ckc.train.compile_child``) so that xDSL and the module never
weigh on the training process, and only when the cache misses: the library
lives in ``.cache/train/<key>`` where the key hashes the inputs (the model
config, the optimizer's hyperparameters, max_tokens, simd and the CPU's variants, recompute, the sources that
generate code — ckc/, dialects/, passes/ —, the training runtime, libckernels,
the C compiler and xDSL's version), so a cached library is loaded without
building anything. A failure in the child is one line, raised here as
CkcTrainError.

Memory: the process holds ONE copy of the weights, the runtime's. The weights
given to the backend are kept as references (no copy) until the library
exists, then written into the runtime tensor by tensor and dropped; the
runtime's gradient and AdamW blocks start untouched (runtime/ckc_abi.h), so
they become resident as training writes them. A recompile (a longer sequence)
moves weights, gradients, moments and the step into the new library one tensor
at a time (read, discard from the old runtime, write), never holding two full
copies.

Batches: ``batch`` B (a compile option, default 1) is how many sequences
one call of the compiled step takes. B = 1: the step runs one causal
sequence of ``n <= max_tokens`` tokens, and a ``[b, T]`` micro-batch is b
calls. B > 1 (``training_spec(batch=B)``): the step takes up to B sequences
of exactly T = max_tokens tokens in ONE call (GEMMs with M = B*T, attention
per sequence); a ``[b, T]`` micro-batch is ceil(b / B) calls, shorter
sequences padded at their end (token 0, target -100: causal attention and
ignored targets make the padding contribute exactly nothing). Each call
gets gradient scale ``grad_scale * count_call / count`` (count = valid
targets in the micro-batch), so the gradients are exactly those of the
micro-batch's mean loss, as PyTorch's ``cross_entropy`` over ``b*T`` rows.
``eval_loss`` calls the library's forward-only ``@eval_loss``
(``ckc_eval_loss``: no backward, the gradients are not touched) the same
way and weights the calls' losses alike.

``recompute`` (none | attention | all) is the `autodiff` option: which
activations the backward recomputes instead of keeping them from the forward.

``max_tokens`` (the sequence length the library is compiled for) defaults to
the first sequence length seen; a longer sequence recompiles and moves the
state over.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ckc import binding
from ckc.binding import ADAM_M, ADAM_V, GRAD, WEIGHT  # noqa: F401 - the stores, re-exported

from .compile_child import CC_FLAGS, ROOT, RUNTIME_FILES


class CkcTrainError(RuntimeError):
    """A compiled training call failed (one line)."""


def generator_sources() -> list[Path]:
    """The files whose bytes decide a training library's contents: every
    Python source of ckc/, dialects/ and passes/ (the importer, passes, C
    emitter, kernel ABI) except the training loop's own modules, plus the
    runtime's sources and headers (ckc.build.RUNTIME_FILES). libckernels enters the key by its
    (source-hashed) path."""
    files = list(RUNTIME_FILES)
    for d in ("ckc", "dialects", "passes"):
        for p in (ROOT / d).rglob("*.py"):
            rel = p.relative_to(ROOT).parts
            if rel[:2] == ("ckc", "train") and p.name != "compile_child.py":
                continue
            files.append(p)
    return files


def optimizer_options(optim) -> dict:
    """add-optimizer's options (ckc.pipeline.training_spec) for an OptimConfig (None: its defaults)."""
    from .trainer import OptimConfig

    o = optim or OptimConfig()
    return {"beta1": float(o.beta1), "beta2": float(o.beta2), "eps": float(o.eps),
            "weight_decay": float(o.weight_decay), "max_norm": float(o.grad_clip or 0.0)}


def library_key(cfg, max_tokens: int, simd: str = "native", recompute: str = "none", optim=None, batch: int = 1,
                **build) -> str:
    """The cache key of a training library: a hash of its inputs, computed
    without running the pipeline."""
    from importlib.metadata import PackageNotFoundError, version

    from ckc import kernels
    from ckc.build import cc, source_hash

    try:
        xdsl_version = version("xdsl")
    except PackageNotFoundError:  # pragma: no cover - xdsl is a dependency
        xdsl_version = "?"
    inputs = {
        "config": cfg.to_dict(), "max_tokens": int(max_tokens), "simd": simd, "recompute": recompute,
        "optim": optimizer_options(optim),
        "variants": kernels.available_variants() if simd == "native" else None,
        "libckernels": str(kernels.static_library_path()), "cc": cc(), "cc_flags": list(CC_FLAGS),
        "xdsl": xdsl_version,
        **({"batch": int(batch)} if batch != 1 else {}),
        **({"build": build} if any(build.values()) else {}),  # debug / sanitize / overflow (tests)
    }
    return source_hash(generator_sources(), json.dumps(inputs, sort_keys=True, default=str))


def _complete(out: Path) -> bool:
    return all((out / f).is_file() for f in ("memory.txt", "consts.npz", "model.so"))


def compile_train(cfg, max_tokens: int, *, simd: str = "native", recompute: str = "none", optim=None,
                  out_dir: Path | None = None, debug: bool = False, sanitize: bool = False, overflow: str = "",
                  record: bool = False, batch: int = 1):
    """(path of model.so, {const name: array}) for a training library of `cfg`;
    the memory plan (every region: weights, io, grads, activations with the
    saved set; both functions) is written next to it as memory.txt. Builds in a
    child process (ckc/train/compile_child.py) unless the folder is complete."""
    from ckc.build import cache_dir

    build = {"debug": debug, "sanitize": sanitize, "overflow": overflow, "record": record}
    out = Path(out_dir) if out_dir is not None else cache_dir("train") / library_key(cfg, max_tokens, simd, recompute,
                                                                                    optim, batch, **build)
    if not _complete(out):
        req = {"config": cfg.to_dict(), "max_tokens": int(max_tokens), "batch": int(batch), "simd": simd,
               "recompute": recompute, "optim": optimizer_options(optim), "out": str(out), **build}
        try:
            proc = subprocess.run([sys.executable, "-m", "ckc.train.compile_child"], input=json.dumps(req, default=str),
                                  capture_output=True, text=True)
        except OSError as e:
            raise CkcTrainError(f"cannot start the training compiler: {e}") from None
        if proc.returncode != 0 or not _complete(out):
            lines = [s.strip() for s in proc.stderr.strip().splitlines() if s.strip()]
            why = lines[-1] if lines else f"exit status {proc.returncode}"
            raise CkcTrainError(f"compiling the training library failed: {why}")
    with np.load(out / "consts.npz") as z:
        consts = {k: z[k] for k in z.files}
    return out / "model.so", consts


def _release_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``).

    The weights handed over to the runtime were NumPy arrays of a few MiB each,
    which glibc serves from its heap once its mmap threshold has grown; freeing
    them leaves ~100 MiB of free but resident heap for a 124M model unless
    trimmed. A no-op where the C library has no malloc_trim."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


class CompiledModel(binding.Handle):
    """A handle on a training model.so (runtime/ckc_abi.h, bound by ckc/binding.py):
    the weights are the runtime's writable copy (created with no .bump)."""

    def __init__(self, so: Path, threads: int = 1):
        self.h = None
        try:
            self.lib = binding.load_library(so)
        except binding.BindingError as e:
            raise CkcTrainError(str(e)) from None
        err = ctypes.create_string_buffer(512)
        self.h = self.lib.ckc_model_create(None, max(int(threads), 1), err, 512)
        if not self.h:
            raise CkcTrainError(f"{so}: {err.value.decode()}")
        info = binding.info(self.lib, self.h).as_dict()
        if "train_step" not in info["functions"]:
            raise CkcTrainError(f"{so}: this library has no @train_step (it has "
                                f"{', '.join(info['functions']) or 'no compute function'})")
        self.max_tokens = info["seq_len"]  # per sequence
        self.max_batch = info["batch"]     # sequences per call (1: one of 1..max_tokens)
        self.vocab = info["vocab"]
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.trainable: list[str] = []
        shape = (ctypes.c_int64 * 4)()
        for i in range(info["n_tensors"]):
            name = self.lib.ckc_tensor_name(self.h, i).decode()
            nd = self.lib.ckc_tensor_shape(self.h, i, shape)
            self.shapes[name] = tuple(int(shape[d]) for d in range(nd))
            if self.lib.ckc_tensor_trainable(self.h, i):
                self.trainable.append(name)

    def close(self) -> None:
        h, self.h = getattr(self, "h", None), None
        if h:
            self.lib.ckc_model_destroy(h)

    def _check(self, rc: int) -> None:
        if rc != binding.OK:
            raise CkcTrainError(binding.last_error(self.lib, self.h, rc))

    def read(self, what: int, name: str) -> np.ndarray:
        if name not in self.shapes:
            raise CkcTrainError(f"unknown tensor '{name}'")
        a = np.empty(self.shapes[name], np.float32)
        self._check(self.lib.ckc_tensor_read(self.h, what, name.encode(), a.ctypes.data, a.nbytes))
        return a

    def write(self, what: int, name: str, value) -> None:
        a = np.ascontiguousarray(value, dtype=np.float32)
        if name in self.shapes and a.shape != self.shapes[name]:
            raise CkcTrainError(f"tensor '{name}' has shape {list(a.shape)}, the model needs {list(self.shapes[name])}")
        self._check(self.lib.ckc_tensor_write(self.h, what, name.encode(), a.ctypes.data, a.nbytes))

    def read_into(self, what: int, name: str, out: np.ndarray) -> None:
        """Copy tensor ``name`` of store ``what`` into ``out`` (float32, C-contiguous,
        its element count; e.g. a slice of a flat all-reduce bucket)."""
        if out.dtype != np.float32 or not out.flags.c_contiguous:
            raise CkcTrainError(f"read_into '{name}': needs a contiguous float32 array")
        self._check(self.lib.ckc_tensor_read(self.h, what, name.encode(), out.ctypes.data, out.nbytes))

    def write_from(self, what: int, name: str, src: np.ndarray) -> None:
        """Copy ``src`` (float32, C-contiguous, the tensor's element count) into tensor
        ``name`` of store ``what``."""
        if src.dtype != np.float32 or not src.flags.c_contiguous:
            raise CkcTrainError(f"write_from '{name}': needs a contiguous float32 array")
        self._check(self.lib.ckc_tensor_write(self.h, what, name.encode(), src.ctypes.data, src.nbytes))

    def discard(self, what: int, name: str) -> None:
        """Zero tensor ``name`` of store ``what`` and give its pages back to the OS."""
        self._check(self.lib.ckc_tensor_discard(self.h, what, name.encode()))

    @staticmethod
    def _sequence(tokens, targets) -> tuple[np.ndarray, np.ndarray]:
        tok = np.ascontiguousarray(tokens, dtype=np.int32)
        tgt = np.ascontiguousarray(targets, dtype=np.int32)
        if tok.shape != tgt.shape or tok.ndim != 1:
            raise CkcTrainError(f"tokens {list(tok.shape)} and targets {list(tgt.shape)} must be one row each "
                                "(a batched library's sequences back to back)")
        return tok, tgt

    def step(self, tokens: np.ndarray, targets: np.ndarray, grad_scale: float) -> float:
        tok, tgt = self._sequence(tokens, targets)
        loss = ctypes.c_float()
        self._check(self.lib.ckc_train_step(self.h, tok.ctypes.data, tgt.ctypes.data, len(tok),
                                             float(grad_scale), ctypes.byref(loss)))
        return float(loss.value)

    def eval(self, tokens: np.ndarray, targets: np.ndarray) -> float:
        """The step's mean loss from the forward pass alone (gradients untouched)."""
        tok, tgt = self._sequence(tokens, targets)
        loss = ctypes.c_float()
        self._check(self.lib.ckc_eval_loss(self.h, tok.ctypes.data, tgt.ctypes.data, len(tok), ctypes.byref(loss)))
        return float(loss.value)

    def optimizer_step(self, lr: float) -> float:
        """The library's generated @optimizer_step (its hyperparameters were compiled in), then
        @zero_grads; the gradient norm before clipping."""
        norm = ctypes.c_float()
        self._check(self.lib.ckc_optimizer_step(self.h, float(lr), ctypes.byref(norm)))
        return float(norm.value)

    def zero_grads(self) -> None:
        self._check(self.lib.ckc_zero_grads(self.h))

    @property
    def step_count(self) -> int:
        return int(self.lib.ckc_get_step(self.h))

    @step_count.setter
    def step_count(self, v: int) -> None:
        self._check(self.lib.ckc_set_step(self.h, int(v)))


class CkcBackend:
    """``StepBackend`` (ckc/train/trainer.py) running the compiled train step."""

    name = "ckc"

    def __init__(self, cfg, weights: dict, optim=None, *, threads: int | None = None,
                 max_tokens: int | None = None, simd: str = "native", recompute: str = "none",
                 debug: bool = False, sanitize: bool = False, overflow: str = "", record: bool = False,
                 batch: int = 1):
        from .trainer import OptimConfig

        # debug: canaries checked after every kernel call; sanitize: ASan + UBSan (the process must
        # preload the ASan runtime); overflow: the test-only out-of-bounds write (compile_child.build)
        self.build = {"debug": debug, "sanitize": sanitize, "overflow": overflow, "record": record}

        self.cfg = cfg
        if int(batch) < 1:
            raise CkcTrainError(f"batch must be >= 1, got {batch}")
        self.batch = int(batch)  # sequences per call of the compiled step
        self.optim = optim or OptimConfig()
        self.threads = int(threads or 1)
        self.simd = simd
        self.recompute = recompute
        self.record = record  # a record build (ckc parity --mode train): record.json beside model.so
        self.names = list(cfg.expected_shapes())
        self.model: CompiledModel | None = None
        self.library: Path | None = None
        self._pending = self._take(weights)   # references, until the library exists
        self._state: tuple[int, dict, dict] | None = None
        if max_tokens:
            self._compile(int(max_tokens))

    def _take(self, weights: dict) -> dict:
        missing = [n for n in self.names if n not in weights]
        if missing:
            from .trainer import TrainError

            raise TrainError(f"initial weights lack tensor '{missing[0]}'")
        return {n: weights[n] for n in self.names}

    # -- the library ---------------------------------------------------------

    def _compile(self, max_tokens: int) -> None:
        so, consts = compile_train(self.cfg, max_tokens, simd=self.simd, recompute=self.recompute, optim=self.optim,
                                   batch=self.batch,
                                   **self.build)
        m = CompiledModel(so, self.threads)
        old = self.model
        for name, shape in m.shapes.items():
            if name in consts or (old is not None and name in old.shapes):
                continue
            if name not in self._pending:
                raise CkcTrainError(f"the compiled model reads tensor '{name}' that the weights lack")
            got = tuple(np.shape(self._pending[name]))
            if got != shape:
                raise CkcTrainError(f"tensor '{name}' has shape {list(got)}, the model needs {list(shape)}")
        for name in m.shapes:
            if name in consts:
                m.write(WEIGHT, name, consts[name])
            elif old is not None and name in old.shapes:
                self._move(old, m, WEIGHT, name)
            else:
                m.write(WEIGHT, name, self._pending.pop(name))  # our last reference goes
        self._pending = {}
        if old is not None:
            for name in m.trainable:
                if name in old.trainable:
                    for what in (GRAD, ADAM_M, ADAM_V):
                        self._move(old, m, what, name)
            m.step_count = old.step_count
            self.model = None
            del old
        self.model, self.library = m, so
        _release_heap()
        if self._state is not None:
            state, self._state = self._state, None
            self.set_optimizer_state(*state)

    @staticmethod
    def _move(src: CompiledModel, dst: CompiledModel, what: int, name: str) -> None:
        """One tensor from one runtime to another; the source's pages are
        released first, so at most one tensor exists twice."""
        a = src.read(what, name)
        src.discard(what, name)
        if what == WEIGHT or a.any():  # a new store starts zero (and uncommitted)
            dst.write(what, name, a)

    def _ready(self, T: int) -> CompiledModel:
        if self.model is None or T > self.model.max_tokens:
            self._compile(T)
        return self.model

    @staticmethod
    def _rows(tokens, targets, vocab: int):
        tok = np.atleast_2d(np.asarray(tokens))
        tgt = np.atleast_2d(np.asarray(targets))
        counts = [int(((r >= 0) & (r < vocab)).sum()) for r in tgt]
        return tok, tgt, counts, sum(counts)

    # -- StepBackend -----------------------------------------------------------

    @staticmethod
    def _calls(m: CompiledModel, tok, tgt, counts):
        """The library calls of a [b, T] micro-batch: (tokens, targets, valid
        targets) per call: one row each, or for a batched library up to
        max_batch rows each, padded to its sequence length, back to back."""
        if m.max_batch == 1:
            return [(tok[r], tgt[r], c) for r, c in enumerate(counts)]
        S, T = m.max_tokens, tok.shape[1]
        if T < S:  # padding at the end of each sequence: never attended to (causal), target ignored
            tok = np.pad(np.asarray(tok, np.int32), ((0, 0), (0, S - T)))
            tgt = np.pad(np.asarray(tgt, np.int32), ((0, 0), (0, S - T)), constant_values=-100)
        B = m.max_batch
        return [(tok[i:i + B].reshape(-1), tgt[i:i + B].reshape(-1), sum(counts[i:i + B]))
                for i in range(0, tok.shape[0], B)]

    def train_step(self, tokens, targets, grad_scale: float = 1.0) -> float:
        m = self._ready(np.atleast_2d(np.asarray(tokens)).shape[1])
        tok, tgt, counts, total = self._rows(tokens, targets, m.vocab)
        loss = 0.0
        for t, y, c in self._calls(m, tok, tgt, counts):
            scale = grad_scale * c / total if total else 0.0
            loss += m.step(t, y, scale) * c
        return loss / total if total else 0.0

    def optimizer_step(self, lr: float) -> float:
        return self._ready(1).optimizer_step(float(lr))

    def eval_loss(self, tokens, targets) -> float:
        """The mean loss over the valid targets, from the forward pass alone."""
        m = self._ready(np.atleast_2d(np.asarray(tokens)).shape[1])
        tok, tgt, counts, total = self._rows(tokens, targets, m.vocab)
        loss = sum(m.eval(t, y) * c for t, y, c in self._calls(m, tok, tgt, counts) if c)
        return loss / total if total else 0.0

    def gradients(self) -> dict[str, np.ndarray]:
        """The accumulated gradient of every trainable tensor (for tests)."""
        m = self._ready(1)
        return {n: m.read(GRAD, n) for n in m.trainable}

    def get_weights(self) -> dict[str, np.ndarray]:
        if self.model is None:
            return {n: np.array(a, np.float32) for n, a in self._pending.items()}
        return {n: self.model.read(WEIGHT, n) for n in self.names}

    def set_weights(self, weights: dict) -> None:
        if self.model is None:
            self._pending = self._take(weights)
            return
        for n in self._take(weights):
            self.model.write(WEIGHT, n, weights[n])

    def get_optimizer_state(self):
        if self.model is None:
            if self._state is not None:
                return self._state
            shapes = self.cfg.expected_shapes()
            z = {n: np.zeros(shapes[n], np.float32) for n in self.names}
            return 0, z, {n: a.copy() for n, a in z.items()}
        m = self.model
        mm, vv = {}, {}
        for n in self.names:
            if n in m.trainable:
                mm[n], vv[n] = m.read(ADAM_M, n), m.read(ADAM_V, n)
            else:
                mm[n] = np.zeros(m.shapes[n], np.float32)
                vv[n] = np.zeros(m.shapes[n], np.float32)
        return m.step_count, mm, vv

    def set_optimizer_state(self, step: int, m: dict, v: dict) -> None:
        if self.model is None:
            self._state = (int(step), m, v)  # references, until the library exists
            return
        for n in self.model.trainable:
            for what, src in ((ADAM_M, m), (ADAM_V, v)):
                if int(step) > 0:
                    self.model.write(what, n, src[n])
                else:
                    self.model.discard(what, n)
        self.model.step_count = int(step)


CompiledBackend = CkcBackend
