"""A one-line training progress bar.

On a terminal the line is redrawn in place (``\\r``):

    step  120/500 [#######.............]  loss 2.3141  eval 2.4410  3,210 tok/s  ETA 1m58s

When the stream is not a TTY (a log file, a pipe, CI), nothing is redrawn:
one plain line is printed every ``every`` steps, on evaluations, and at the end.
"""

from __future__ import annotations

import sys
import time


def fmt_duration(s: float) -> str:
    if s != s or s < 0 or s == float("inf"):
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    def __init__(self, total: int, *, start: int = 0, stream=None, every: int | None = None, width: int = 20,
                 tty: bool | None = None):
        self.total, self.start_step = int(total), int(start)
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every if every is not None else max(1, self.total // 20)
        self.width = width
        self.t0 = time.perf_counter()
        self.eval_loss = None
        self._drawn = False

    def line(self, step: int, loss: float, tokens_per_s: float) -> str:
        done = step - self.start_step
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        filled = int(self.width * step / max(1, self.total))
        bar = "#" * filled + "." * (self.width - filled)
        n = len(str(self.total))
        ev = f"  eval {self.eval_loss:.4f}" if self.eval_loss is not None else ""
        return (f"step {step:>{n}}/{self.total} [{bar}]  loss {loss:.4f}{ev}  "
                f"{tokens_per_s:,.0f} tok/s  ETA {fmt_duration(eta)}")

    def update(self, step: int, loss: float, tokens_per_s: float, eval_loss: float | None = None) -> None:
        if eval_loss is not None:
            self.eval_loss = eval_loss
        text = self.line(step, loss, tokens_per_s)
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            self._drawn = True
        elif eval_loss is not None or step % self.every == 0 or step == self.total:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
