"""Lock-step comparison of two step backends (the training-parity check).

    rows = lockstep(torch_backend, ckc_backend, batches, settings)
    worst = max(abs(r["loss_a"] - r["loss_b"]) for r in rows)     # the issue asks <= 1e-4

Both backends start from the same weights (the caller builds them so) and get
the same batches, micro-batch split, learning-rate schedule and optimizer
settings, one optimizer step at a time; every row holds both losses and
gradient norms of one step.
"""

from __future__ import annotations

from .schedule import lr_at
from .trainer import TrainSettings


def lockstep(a, b, batches, settings: TrainSettings) -> list[dict]:
    """Run ``len(batches)`` optimizer steps on backends ``a`` and ``b`` side by side.

    ``batches``: ``[(tokens, targets)]``, int32 ``[B, T]`` each."""
    s = settings
    mb = s.batch // s.micro_batches
    rows = []
    for step, (x, y) in enumerate(batches):
        lr = lr_at(step, lr=s.lr, warmup=s.warmup, total=s.steps, min_lr=s.min_lr)
        out = {"step": step + 1, "lr": lr}
        for tag, be in (("a", a), ("b", b)):
            losses = [be.train_step(x[i:i + mb], y[i:i + mb], 1.0 / s.micro_batches) for i in range(0, len(x), mb)]
            out[f"loss_{tag}"] = sum(losses) / len(losses)
            out[f"grad_norm_{tag}"] = be.optimizer_step(lr)
        rows.append(out)
    return rows
