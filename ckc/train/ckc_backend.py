"""The compiled training backend: ``@train_step`` in a generated ``model.so``.

    be = CkcBackend(cfg, weights, OptimConfig(...), threads=2, max_tokens=64)
    loss = be.train_step(tokens, targets, 0.5)     # int32 [b, T] (or [T]); grads +=
    norm = be.optimizer_step(lr)                   # clip + AdamW + zero-grad, in C

Compilation (:func:`compile_train`): the model's transformer module ->
``lower-transformer{modes=train_step}`` -> ``autodiff`` -> ``bufferize`` (the
gradients in the ``grads`` region, saved activations) -> ``plan-memory`` ->
``select-simd`` -> ``lower-to-c`` -> model.c, compiled with
``runtime/train/train_runtime.c`` (implements ``runtime/train_abi.h``) into a
model.so linked against libckernels.a. Cached under
``.cache/train/<sha of model.c + runtime>``; the weights are not part of the
library (the runtime owns a writable copy that this class fills by name).

Batches: the compiled step runs one causal sequence of ``n <= max_tokens``
tokens. A ``[b, T]`` micro-batch is b calls, row r with gradient scale
``grad_scale * count_r / count`` (count = valid targets in the micro-batch),
so the gradients are exactly those of the micro-batch's mean loss, as
PyTorch's ``cross_entropy`` over ``b*T`` rows. ``eval_loss`` runs the same
step with gradient scale 0 (the gradients get ``+= 0``).

``recompute`` (none | attention | all) is the `autodiff` option: which
activations the backward recomputes instead of keeping them from the forward.

``max_tokens`` (the sequence length the library is compiled for) defaults to
the first sequence length seen; a longer sequence recompiles and moves the
weights, moments and step over.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

TRAIN_RUNTIME = Path(__file__).resolve().parents[2] / "runtime" / "train" / "train_runtime.c"
TRAIN_ABI_H = TRAIN_RUNTIME.parent.parent / "train_abi.h"

WEIGHT, GRAD, ADAM_M, ADAM_V = 0, 1, 2, 3


class CkcTrainError(RuntimeError):
    """A compiled training call failed (one line)."""


def training_passes(max_tokens: int, simd: str = "native", recompute: str = "none"):
    from ckc.passes.autodiff import Autodiff
    from ckc.passes.bufferize import Bufferize
    from ckc.passes.lower_transformer import LowerTransformer
    from ckc.passes.plan_memory import PlanMemory
    from ckc.passes.select_simd import SelectSimd

    return [LowerTransformer(modes=("train_step",)), Autodiff(recompute=recompute),
            Bufferize(max_tokens=max_tokens), PlanMemory(), SelectSimd(target=simd)]


def compile_train(cfg, max_tokens: int, *, simd: str = "native", recompute: str = "none",
                  out_dir: Path | None = None):
    """(path of model.so, {const name: array}) for a training library of `cfg`;
    the memory plan (every region: weights, io, grads, activations with the
    saved set) is written next to it as memory.txt."""
    from xdsl.context import Context

    from ckc import kernels
    from ckc.artifacts import _const_array, weight_plan, write_atomic
    from ckc.build import cache_dir, cc, run_checked
    from ckc.emit_c import emit_c
    from ckc.importers.to_ir import build_module
    from ckc.passes.lower_to_c import LowerToC
    from ckc.reports.memory import memory_report

    module = build_module(cfg, None)
    ctx = Context()
    for p in training_passes(max_tokens, simd, recompute):
        p.apply(ctx, module)
    memory = memory_report(module, f"{cfg.arch} train_step (max_tokens={max_tokens}, recompute={recompute})")
    consts = {name: _const_array(value, shape) for name, _, shape, value in weight_plan(module) if value is not None}
    LowerToC().apply(ctx, module)
    source = emit_c(module)
    h = hashlib.sha256(source.encode())
    h.update(TRAIN_RUNTIME.read_bytes())
    h.update(TRAIN_ABI_H.read_bytes())
    h.update(str(kernels.static_library_path()).encode())
    out = Path(out_dir) if out_dir is not None else cache_dir() / "train" / h.hexdigest()[:20]
    so = out / "model.so"
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "memory.txt").exists():
        write_atomic(out / "memory.txt", memory)
    if so.exists():
        return so, consts
    model_c = write_atomic(out / "model.c", source)
    kernels.build_dir()
    static = kernels.static_library_path()
    inc = [f"-I{p}" for p in (*kernels.include_dirs(), TRAIN_ABI_H.parent)]
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".so", dir=out)
    os.close(fd)
    try:
        run_checked([cc(), "-std=c11", "-O2", "-fPIC", "-shared", "-Wall", *inc, "-o", tmp, str(model_c),
                     str(TRAIN_RUNTIME), str(static), "-lpthread", "-lm"], str(so))
        os.replace(tmp, so)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return so, consts


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    P, I, F, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_size_t
    fp = ctypes.POINTER(ctypes.c_float)
    sig = {
        "ckc_train_abi_version": (I, []),
        "ckc_train_create": (P, [I, ctypes.c_char_p, S]),
        "ckc_train_destroy": (None, [P]),
        "ckc_train_error": (ctypes.c_char_p, [P]),
        "ckc_train_max_tokens": (I, [P]),
        "ckc_train_vocab": (I, [P]),
        "ckc_train_n_tensors": (I, [P]),
        "ckc_train_tensor_name": (ctypes.c_char_p, [P, I]),
        "ckc_train_tensor_shape": (I, [P, I, ctypes.POINTER(ctypes.c_int64)]),
        "ckc_train_tensor_trainable": (I, [P, I]),
        "ckc_train_read": (I, [P, I, ctypes.c_char_p, P, S]),
        "ckc_train_write": (I, [P, I, ctypes.c_char_p, P, S]),
        "ckc_train_step": (I, [P, P, P, I, F, fp]),
        "ckc_zero_grads": (None, [P]),
        "ckc_optimizer_step": (I, [P, F, F, F, F, F, F, fp]),
        "ckc_train_get_step": (ctypes.c_int64, [P]),
        "ckc_train_set_step": (None, [P, ctypes.c_int64]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


class CompiledModel:
    """A ctypes handle on a training model.so (runtime/train_abi.h)."""

    def __init__(self, so: Path, threads: int = 1):
        self.lib = _bind(ctypes.CDLL(str(so)))
        err = ctypes.create_string_buffer(512)
        self.h = self.lib.ckc_train_create(int(threads), err, 512)
        if not self.h:
            raise CkcTrainError(f"{so}: {err.value.decode()}")
        self.max_tokens = self.lib.ckc_train_max_tokens(self.h)
        self.vocab = self.lib.ckc_train_vocab(self.h)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.trainable: list[str] = []
        shape = (ctypes.c_int64 * 4)()
        for i in range(self.lib.ckc_train_n_tensors(self.h)):
            name = self.lib.ckc_train_tensor_name(self.h, i).decode()
            nd = self.lib.ckc_train_tensor_shape(self.h, i, shape)
            self.shapes[name] = tuple(int(shape[d]) for d in range(nd))
            if self.lib.ckc_train_tensor_trainable(self.h, i):
                self.trainable.append(name)

    def __del__(self):
        h, self.h = getattr(self, "h", None), None
        if h:
            self.lib.ckc_train_destroy(h)

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise CkcTrainError(self.lib.ckc_train_error(self.h).decode())

    def read(self, what: int, name: str) -> np.ndarray:
        if name not in self.shapes:
            raise CkcTrainError(f"unknown tensor '{name}'")
        a = np.empty(self.shapes[name], np.float32)
        self._check(self.lib.ckc_train_read(self.h, what, name.encode(), a.ctypes.data, a.nbytes))
        return a

    def write(self, what: int, name: str, value) -> None:
        a = np.ascontiguousarray(value, dtype=np.float32)
        if name in self.shapes and a.shape != self.shapes[name]:
            raise CkcTrainError(f"tensor '{name}' has shape {list(a.shape)}, the model needs {list(self.shapes[name])}")
        self._check(self.lib.ckc_train_write(self.h, what, name.encode(), a.ctypes.data, a.nbytes))

    def step(self, tokens: np.ndarray, targets: np.ndarray, grad_scale: float) -> float:
        tok = np.ascontiguousarray(tokens, dtype=np.int32)
        tgt = np.ascontiguousarray(targets, dtype=np.int32)
        if tok.shape != tgt.shape or tok.ndim != 1:
            raise CkcTrainError(f"tokens {list(tok.shape)} and targets {list(tgt.shape)} must be one sequence each")
        loss = ctypes.c_float()
        self._check(self.lib.ckc_train_step(self.h, tok.ctypes.data, tgt.ctypes.data, len(tok),
                                             float(grad_scale), ctypes.byref(loss)))
        return float(loss.value)

    def optimizer_step(self, lr, beta1, beta2, eps, weight_decay, max_norm) -> float:
        norm = ctypes.c_float()
        self._check(self.lib.ckc_optimizer_step(self.h, lr, beta1, beta2, eps, weight_decay, max_norm,
                                                ctypes.byref(norm)))
        return float(norm.value)

    def zero_grads(self) -> None:
        self.lib.ckc_zero_grads(self.h)

    @property
    def step_count(self) -> int:
        return int(self.lib.ckc_train_get_step(self.h))

    @step_count.setter
    def step_count(self, v: int) -> None:
        self.lib.ckc_train_set_step(self.h, int(v))


class CkcBackend:
    """``StepBackend`` (ckc/train/trainer.py) running the compiled train step."""

    name = "ckc"

    def __init__(self, cfg, weights: dict, optim=None, *, threads: int | None = None,
                 max_tokens: int | None = None, simd: str = "native", recompute: str = "none"):
        from .trainer import OptimConfig

        self.cfg = cfg
        self.optim = optim or OptimConfig()
        self.threads = int(threads or 1)
        self.simd = simd
        self.recompute = recompute
        self.names = list(cfg.expected_shapes())
        self.model: CompiledModel | None = None
        self._weights = {n: np.array(weights[n], np.float32) for n in self.names if n in weights}
        missing = [n for n in self.names if n not in weights]
        if missing:
            from .trainer import TrainError

            raise TrainError(f"initial weights lack tensor '{missing[0]}'")
        self._state: tuple[int, dict, dict] | None = None
        if max_tokens:
            self._compile(int(max_tokens))

    # -- the library ---------------------------------------------------------

    def _compile(self, max_tokens: int) -> None:
        carry = None
        if self.model is not None:
            self._weights = self.get_weights()
            carry = self.get_optimizer_state()
        elif self._state is not None:
            carry = self._state
        so, consts = compile_train(self.cfg, max_tokens, simd=self.simd, recompute=self.recompute)
        self.library = so
        m = CompiledModel(so, self.threads)
        for name in m.shapes:
            if name in consts:
                m.write(WEIGHT, name, consts[name])
            elif name in self._weights:
                m.write(WEIGHT, name, self._weights[name])
            else:
                raise CkcTrainError(f"the compiled model reads tensor '{name}' that the weights lack")
        self.model = m
        if carry is not None:
            self.set_optimizer_state(*carry)

    def _ready(self, T: int) -> CompiledModel:
        if self.model is None or T > self.model.max_tokens:
            self._compile(T)
        return self.model

    # -- StepBackend -----------------------------------------------------------

    def train_step(self, tokens, targets, grad_scale: float = 1.0) -> float:
        tok = np.atleast_2d(np.asarray(tokens))
        tgt = np.atleast_2d(np.asarray(targets))
        m = self._ready(tok.shape[1])
        counts = [int(((r >= 0) & (r < m.vocab)).sum()) for r in tgt]
        total = sum(counts)
        loss = 0.0
        for r, c in zip(range(len(tok)), counts):
            scale = grad_scale * c / total if total else 0.0
            loss += m.step(tok[r], tgt[r], scale) * c
        return loss / total if total else 0.0

    def optimizer_step(self, lr: float) -> float:
        o = self.optim
        m = self._ready(1)
        return m.optimizer_step(float(lr), o.beta1, o.beta2, o.eps, o.weight_decay,
                                float(o.grad_clip or 0.0))

    def eval_loss(self, tokens, targets) -> float:
        tok = np.atleast_2d(np.asarray(tokens))
        tgt = np.atleast_2d(np.asarray(targets))
        m = self._ready(tok.shape[1])
        counts = [int(((r >= 0) & (r < m.vocab)).sum()) for r in tgt]
        total = sum(counts)
        loss = sum(m.step(tok[r], tgt[r], 0.0) * c for r, c in zip(range(len(tok)), counts))
        return loss / total if total else 0.0

    def gradients(self) -> dict[str, np.ndarray]:
        """The accumulated gradient of every trainable tensor (for tests)."""
        m = self._ready(1)
        return {n: m.read(GRAD, n) for n in m.trainable}

    def get_weights(self) -> dict[str, np.ndarray]:
        if self.model is None:
            return {n: a.copy() for n, a in self._weights.items()}
        return {n: self.model.read(WEIGHT, n) for n in self.names}

    def set_weights(self, weights: dict) -> None:
        for n in self.names:
            if n not in weights:
                from .trainer import TrainError

                raise TrainError(f"initial weights lack tensor '{n}'")
        if self.model is None:
            self._weights = {n: np.array(weights[n], np.float32) for n in self.names}
        else:
            for n in self.names:
                self.model.write(WEIGHT, n, weights[n])

    def get_optimizer_state(self):
        if self.model is None:
            if self._state is not None:
                return self._state
            z = {n: np.zeros_like(a) for n, a in self._weights.items()}
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
            self._state = (int(step), m, v)
            return
        for n in self.model.trainable:
            self.model.write(ADAM_M, n, m[n] if int(step) > 0 else np.zeros(self.model.shapes[n], np.float32))
            self.model.write(ADAM_V, n, v[n] if int(step) > 0 else np.zeros(self.model.shapes[n], np.float32))
        self.model.step_count = int(step)


CompiledBackend = CkcBackend
