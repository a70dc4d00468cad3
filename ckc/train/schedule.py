"""Learning-rate schedule: linear warmup, then cosine decay to a floor.

For step ``s`` (0-based: the update being made), peak ``lr``, ``warmup`` steps,
``total`` steps and floor ``min_lr`` (default ``lr / 10``, as nanoGPT and
llm.c do):

    s <  warmup:            lr · (s + 1) / warmup
    warmup <= s < total:    min_lr + (lr − min_lr) · ½ · (1 + cos(π · p)),
                            p = (s − warmup) / max(1, total − warmup)
    s >= total:             min_lr

so the first update uses ``lr / warmup`` (never 0), warmup ends at ``lr``, and
the last update is close to ``min_lr``. ``warmup = 0`` starts at the peak.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, lr: float, warmup: int, total: int, min_lr: float | None = None) -> float:
    """The learning rate of update ``step`` (0-based)."""
    floor = lr / 10.0 if min_lr is None else float(min_lr)
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if step >= total:
        return floor
    p = (step - warmup) / max(1, total - warmup)
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
