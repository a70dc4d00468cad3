"""The training loop over a pluggable step backend.

    backend = make_backend("torch", cfg, weights, OptimConfig(weight_decay=0.1))
    trainer = Trainer(backend, cfg, corpus, TrainSettings(batch=8, context=64, steps=200), out_dir="run")
    trainer.run()                                  # or trainer.run(until=100), then resume later

One optimizer step = ``micro_batches`` calls of ``train_step`` on the batch's
rows split in equal parts (each scaled by ``1 / micro_batches``, so the
accumulated gradient is that of the mean loss over the whole batch), then one
``optimizer_step(lr)``: global-norm clipping (as ``torch.nn.utils.clip_grad_norm_``:
``c = min(1, max_norm / (‖g‖ + 1e-6))``) followed by AdamW (as ``torch.optim.AdamW``,
bias-corrected; weight decay applies to tensors with 2 or more dimensions —
matrices and embeddings — not to norm weights and biases, as nanoGPT does),
then zero-grad. The learning rate comes from ``ckc.train.schedule.lr_at``.

The ``StepBackend`` interface (what the compiled ckc backend implements to plug in):

    name: str                                        "torch", "ckc"
    train_step(tokens, targets, grad_scale) -> float  int32 [b, T] each; adds
                                                      grad_scale·∇(mean loss) to the grads;
                                                      returns the mean loss (f32 -> float)
    optimizer_step(lr) -> float                      clip + AdamW + zero-grad; returns ‖g‖
    eval_loss(tokens, targets) -> float              mean loss, no gradient
    get_weights() -> {name: f32 array}               canonical names, ckc layout
    set_weights(weights)
    get_optimizer_state() -> (step, m, v)            AdamW step count and moments, ckc layout
    set_optimizer_state(step, m, v)

``make_backend(name, cfg, weights, optim)`` builds one; ``"ckc"`` is
``ckc.train.ckc_backend.CkcBackend`` (the compiled train_step).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ckc.importers.config import ModelConfig

from . import checkpoint as ckpt
from .curves import write_csv, write_png
from .data import BatchLoader, Corpus, eval_batches
from .schedule import lr_at


class TrainError(ValueError):
    """A training run that cannot start or continue; one line."""


class NonFinite(ArithmeticError):
    """A step's loss, or the weights about to be checkpointed, came out NaN or
    Inf (Trainer.run turns it into a TrainError naming the step)."""

    def __init__(self, what: str, step: int):
        super().__init__(f"{what} at step {step}")
        self.what, self.step = what, step


@dataclass
class OptimConfig:
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0          # max global grad norm; 0 disables clipping


@dataclass
class TrainSettings:
    batch: int = 8
    context: int = 64
    steps: int = 100
    micro_batches: int = 1
    lr: float = 1e-3
    min_lr: float | None = None     # cosine floor; default lr / 10
    warmup: int = 0
    eval_every: int = 0             # 0: evaluate only at the end
    eval_batches: int = 4
    checkpoint_every: int = 0       # 0: checkpoint only when the run stops
    keep_checkpoints: int = 2
    seed: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    ranks: int = 1                  # data-parallel MPI ranks (ckc.train.distributed)

    # what must match between a checkpoint and the run resuming it (the rank
    # count sets the gradients' float32 summation order)
    DATA_KEYS = ("batch", "context", "seed", "micro_batches", "ranks")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        d = dict(d)
        d["optim"] = OptimConfig(**d.get("optim", {}))
        return cls(**d)


class StepBackend(Protocol):
    name: str

    def train_step(self, tokens: np.ndarray, targets: np.ndarray, grad_scale: float = 1.0) -> float: ...
    def optimizer_step(self, lr: float) -> float: ...
    def eval_loss(self, tokens: np.ndarray, targets: np.ndarray) -> float: ...
    def get_weights(self) -> dict[str, np.ndarray]: ...
    def set_weights(self, weights: dict[str, np.ndarray]) -> None: ...
    def get_optimizer_state(self) -> tuple[int, dict, dict]: ...
    def set_optimizer_state(self, step: int, m: dict, v: dict) -> None: ...


# --------------------------------------------------------------------------- PyTorch

class TorchBackend:
    """The PyTorch peer: a transformers model of ``cfg`` holding ``weights``, trained
    with ``torch.optim.AdamW`` and ``clip_grad_norm_``. Deterministic on CPU for a
    given thread count (single-tensor AdamW, no dropout)."""

    name = "torch"

    def __init__(self, cfg: ModelConfig, weights: dict, optim: OptimConfig | None = None, *,
                 threads: int | None = None, attn: str = "sdpa"):
        import torch
        import transformers

        from .export import HF_CLASS, hf_config_dict, hf_param_map

        self.torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self.cfg = cfg
        self.optim = optim or OptimConfig()
        conf = transformers.AutoConfig.for_model(**hf_config_dict(cfg))
        conf._attn_implementation = attn
        conf.use_cache = False
        cls = getattr(transformers, HF_CLASS[cfg.arch])
        torch.manual_seed(0)
        self.model = cls(conf).to(torch.float32)
        self.model.train()
        named = dict(self.model.named_parameters())
        self.pmap = hf_param_map(cfg, list(named))          # canonical -> hf name
        self.names = list(cfg.expected_shapes())
        self.params = {n: named[self.pmap[n]] for n in self.names}
        self.set_weights(weights)
        decay = [self.params[n] for n in self.names if self.params[n].ndim >= 2]
        no_decay = [self.params[n] for n in self.names if self.params[n].ndim < 2]
        o = self.optim
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=1e-3, betas=(o.beta1, o.beta2), eps=o.eps, foreach=False, fused=False)

    def _loss(self, tokens, targets):
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.int64))
        logits = self.model(input_ids=x, use_cache=False).logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

    def train_step(self, tokens, targets, grad_scale: float = 1.0) -> float:
        loss = self._loss(tokens, targets)
        (loss * grad_scale).backward() if grad_scale != 1.0 else loss.backward()
        return float(loss.detach())

    def optimizer_step(self, lr: float) -> float:
        torch = self.torch
        params = [self.params[n] for n in self.names]
        if self.optim.grad_clip and self.optim.grad_clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, self.optim.grad_clip))
        else:
            norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return norm

    def eval_loss(self, tokens, targets) -> float:
        with self.torch.no_grad():
            return float(self._loss(tokens, targets))

    def get_weights(self) -> dict[str, np.ndarray]:
        from .export import from_hf

        return {n: from_hf(self.cfg, n, self.pmap[n], self.params[n].detach().numpy()).copy() for n in self.names}

    def set_weights(self, weights: dict) -> None:
        from .export import to_hf

        with self.torch.no_grad():
            for n in self.names:
                if n not in weights:
                    raise TrainError(f"initial weights lack tensor '{n}'")
                a = to_hf(self.cfg, n, self.pmap[n], weights[n])
                p = self.params[n]
                if tuple(a.shape) != tuple(p.shape):
                    raise TrainError(f"tensor '{n}' has shape {list(a.shape)}, the model needs {list(p.shape)}")
                p.copy_(self.torch.from_numpy(a))

    def get_optimizer_state(self):
        from .export import from_hf

        m, v, step = {}, {}, 0
        for n in self.names:
            st = self.opt.state.get(self.params[n], {})
            if st:
                step = int(float(st["step"]))
                m[n] = from_hf(self.cfg, n, self.pmap[n], st["exp_avg"].numpy(), moments=True).copy()
                v[n] = from_hf(self.cfg, n, self.pmap[n], st["exp_avg_sq"].numpy(), moments=True).copy()
            else:
                shape = tuple(self.cfg.expected_shapes()[n])
                m[n], v[n] = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        return step, m, v

    def set_optimizer_state(self, step: int, m: dict, v: dict) -> None:
        from .export import to_hf

        torch = self.torch
        self.opt.state.clear()
        if step <= 0:
            return
        for n in self.names:
            p = self.params[n]
            self.opt.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": torch.from_numpy(to_hf(self.cfg, n, self.pmap[n], m[n], moments=True).copy()),
                "exp_avg_sq": torch.from_numpy(to_hf(self.cfg, n, self.pmap[n], v[n], moments=True).copy()),
            }


def backend_available(name: str) -> bool:
    if name == "torch":
        return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None
    if name == "ckc":
        return importlib.util.find_spec("ckc.train.ckc_backend") is not None
    return False


def make_backend(name: str, cfg: ModelConfig, weights: dict, optim: OptimConfig | None = None, **kw):
    """A ``StepBackend`` called ``name`` ("torch" or "ckc") holding ``weights``."""
    if name == "torch":
        if not backend_available("torch"):
            raise TrainError("the torch backend needs torch and transformers (pip install ckc[test])")
        return TorchBackend(cfg, weights, optim, **kw)
    if name == "ckc":
        if not backend_available("ckc"):
            raise TrainError("the compiled ckc training backend is not available in this install; use --backend torch")
        from .ckc_backend import CkcBackend

        kw.pop("attn", None)  # a PyTorch option
        return CkcBackend(cfg, weights, optim, **kw)
    raise TrainError(f"unknown backend '{name}' (use torch or ckc)")


# --------------------------------------------------------------------------- the loop

class Trainer:
    """Runs ``settings.steps`` optimizer steps; resumable from its checkpoints.

    ``out_dir`` (optional) receives ``loss.csv``, ``loss.png`` and
    ``checkpoints/step-NNNNNN`` (see ``ckc.train.checkpoint``).
    """

    def __init__(self, backend, cfg: ModelConfig, corpus: Corpus, settings: TrainSettings, out_dir=None,
                 progress=None, log=None):
        s = settings
        if s.micro_batches < 1 or s.batch % s.micro_batches:
            raise TrainError(f"batch {s.batch} must be a multiple of micro-batches {s.micro_batches}")
        if s.context > cfg.max_context:
            raise TrainError(f"context {s.context} exceeds the model's maximum context {cfg.max_context}")
        if s.steps < 1:
            raise TrainError(f"steps must be positive, got {s.steps}")
        self.backend, self.cfg, self.corpus, self.s = backend, cfg, corpus, settings
        self.out = Path(out_dir) if out_dir is not None else None
        self.loader = BatchLoader(corpus.train, s.batch, s.context, s.seed)
        self.evals = eval_batches(corpus.eval, s.batch, s.context, s.eval_batches) if s.eval_batches else []
        self.step = 0
        self.history: list[dict] = []
        self.progress = progress
        self.log = log or (lambda msg: None)
        self.elapsed = 0.0

    # -- state
    @property
    def checkpoint_dir(self) -> Path | None:
        return self.out / "checkpoints" if self.out is not None else None

    def checkpoint(self) -> ckpt.Checkpoint:
        opt_step, m, v = self.backend.get_optimizer_state()
        extra = {"backend": self.backend.name, "corpus": self.corpus.fingerprint, "elapsed_s": self.elapsed}
        return ckpt.Checkpoint(step=self.step, config=self.cfg, weights=self.backend.get_weights(), m=m, v=v,
                               opt_step=opt_step, data=self.loader.state(), run=self.s.to_dict(),
                               history=list(self.history), extra=extra)

    def save_checkpoint(self) -> Path | None:
        """Writes a checkpoint of the current state; never one whose weights hold NaN
        or Inf (a finite loss can still come with weights that overflowed on the
        last update), so the newest checkpoint is always a good one to resume."""
        if self.checkpoint_dir is None:
            return None
        ck = self.checkpoint()
        bad = next((n for n, w in ck.weights.items() if not np.isfinite(w).all()), None)
        if bad is not None:
            raise NonFinite(f"weights became non-finite (tensor '{bad}')", self.step)
        return ckpt.save(self.checkpoint_dir, ck, keep=self.s.keep_checkpoints)

    def restore(self, ck: ckpt.Checkpoint) -> None:
        """Continue from ``ck`` (weights, optimizer, data position, history)."""
        if ck.config.arithmetic() != self.cfg.arithmetic():
            raise TrainError("the checkpoint's model config differs from this run's model")
        run = ck.run or {}
        for k in TrainSettings.DATA_KEYS:
            if k in run and run[k] != getattr(self.s, k):
                raise TrainError(f"the checkpoint was made with {k}={run[k]}, this run has {k}={getattr(self.s, k)}")
        fp = ck.extra.get("corpus")
        if fp and fp != self.corpus.fingerprint:
            raise TrainError("the checkpoint was trained on different text (corpus fingerprint differs)")
        if ck.step > self.s.steps:
            raise TrainError(f"the checkpoint is at step {ck.step}, past the run's {self.s.steps} steps")
        self.backend.set_weights(ck.weights)
        self.backend.set_optimizer_state(ck.opt_step, ck.m, ck.v)
        self.loader.restore(ck.data)
        self.step = ck.step
        self.history = [dict(r) for r in ck.history if r.get("step", 0) <= ck.step]
        self.elapsed = float(ck.extra.get("elapsed_s", 0.0))

    # -- loop
    def lr(self, step: int) -> float:
        return lr_at(step, lr=self.s.lr, warmup=self.s.warmup, total=self.s.steps, min_lr=self.s.min_lr)

    def eval_loss(self) -> float | None:
        if not self.evals:
            return None
        return float(np.mean([self.backend.eval_loss(x, y) for x, y in self.evals]))

    def train_one(self) -> dict:
        s = self.s
        t0 = time.perf_counter()
        lr = self.lr(self.step)
        tokens, targets = self.loader.next()
        mb = s.batch // s.micro_batches
        losses = [self.backend.train_step(tokens[i:i + mb], targets[i:i + mb], 1.0 / s.micro_batches)
                  for i in range(0, s.batch, mb)]
        loss = float(np.mean(losses))
        if not math.isfinite(loss):
            # before the optimizer step: the weights (and any checkpoint) stay those of the last good step
            raise NonFinite(f"loss became {loss}", self.step + 1)
        norm = self.backend.optimizer_step(lr)
        self.step += 1
        dt = time.perf_counter() - t0
        self.elapsed += dt
        row = {"step": self.step, "loss": loss, "eval_loss": None, "lr": lr, "grad_norm": norm,
               "tokens_per_s": s.batch * s.context / dt if dt > 0 else 0.0, "elapsed_s": self.elapsed}
        self.history.append(row)
        return row

    def write_curves(self) -> None:
        if self.out is None:
            return
        write_csv(self.out / "loss.csv", self.history)
        write_png(self.out / "loss.png", self.history)

    def run(self, until: int | None = None) -> list[dict]:
        """Train to ``until`` (default: ``settings.steps``), checkpointing on the way and at the stop."""
        s = self.s
        end = min(s.steps, until if until is not None else s.steps)
        if self.step == 0 and self.evals and s.eval_every and not self.history:
            self.log(f"step 0: eval loss {self.eval_loss():.4f}")
        try:
            self._loop(end)
            if self.progress is not None:
                self.progress.close()
            self.save_checkpoint()
        except NonFinite as bad:
            # stop; checkpoints already written are left as they are (the newest is the last good state)
            if self.progress is not None:
                self.progress.close()
            if self.history:
                self.write_curves()
            last = ckpt.latest(self.checkpoint_dir) if self.checkpoint_dir is not None else None
            kept = f"the last good checkpoint is {last}" if last is not None else "no checkpoint was written"
            raise TrainError(f"{bad.what} at step {bad.step}; training stopped, {kept} (try a lower --lr)") from None
        self.write_curves()
        return self.history

    def _loop(self, end: int) -> None:
        s = self.s
        while self.step < end:
            row = self.train_one()
            ev = None
            if (s.eval_every and self.step % s.eval_every == 0) or self.step == s.steps:
                ev = self.eval_loss()
                row["eval_loss"] = ev
            if self.progress is not None:
                self.progress.update(self.step, row["loss"], row["tokens_per_s"], ev)
            if s.checkpoint_every and self.step % s.checkpoint_every == 0 and self.step < end:
                self.save_checkpoint()
                self.write_curves()
