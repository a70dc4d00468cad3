"""Choosing the next token from logits, and the generation loop.

Semantics follow Hugging Face transformers' logits processors (tests compare
against them on random logits), applied in transformers' order:

1. repetition penalty (``RepetitionPenaltyLogitsProcessor``; llama.cpp's
   ``repeat_penalty`` is the same formula): for every token id seen in the
   history, a positive logit is divided by the penalty, a negative one
   multiplied by it;
2. temperature (``TemperatureLogitsWarper``): logits / T;
3. top-k (``TopKLogitsWarper``): keep the k largest (ties at the k-th value kept);
4. top-p (``TopPLogitsWarper``): keep the smallest set of most likely tokens
   whose probability mass exceeds p (at least one kept);
5. min-p (``MinPLogitsWarper``): drop tokens whose probability is below
   min_p * (probability of the most likely token).

Removed tokens get ``-inf``. Temperature 0 means greedy: the argmax of the
(penalised) logits, the other filters are then irrelevant and ignored, like
transformers' ``do_sample=False``. Sampling draws from a seeded
``numpy.random.Generator``, so the same seed gives the same tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np


# ---------------------------------------------------------------- processors
def apply_repetition_penalty(logits: np.ndarray, history: Iterable[int], penalty: float) -> np.ndarray:
    """A copy of ``logits`` with every token id in ``history`` penalised: positive
    logits divided by ``penalty``, negative ones multiplied. Ids outside the vocab
    are ignored (as in transformers)."""
    out = np.array(logits, dtype=np.float32, copy=True)
    if penalty == 1.0:
        return out
    ids = np.fromiter(history, dtype=np.int64) if not isinstance(history, np.ndarray) else history.astype(np.int64)
    ids = np.unique(ids[(ids >= 0) & (ids < out.shape[-1])])
    if ids.size:
        s = out[ids]
        out[ids] = np.where(s < 0, s * np.float32(penalty), s / np.float32(penalty))
    return out


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    return np.asarray(logits, dtype=np.float32) / np.float32(temperature)


def apply_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep tokens whose logit is >= the k-th largest (0 or k >= vocab: no-op)."""
    logits = np.asarray(logits, dtype=np.float32)
    if k <= 0 or k >= logits.shape[-1]:
        return logits.copy()
    kth = np.partition(logits, -k)[-k]
    return np.where(logits < kth, np.float32(-np.inf), logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax in float64; ``-inf`` entries get probability 0."""
    x = np.asarray(logits, dtype=np.float64)
    m = np.max(x)
    if not np.isfinite(m):
        raise ValueError("no token left to sample from (all logits are -inf or nan)")
    e = np.exp(x - m)
    return e / e.sum()


def apply_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: sort ascending, drop the tokens whose cumulative
    probability is <= 1 - p; the most likely token always stays (p >= 1: no-op)."""
    logits = np.asarray(logits, dtype=np.float32)
    if p >= 1.0:
        return logits.copy()
    order = np.argsort(logits, kind="stable")
    cum = np.cumsum(softmax(logits[order]))
    remove = cum <= 1.0 - p
    remove[-1] = False
    out = logits.copy()
    out[order[remove]] = -np.inf
    return out


def apply_min_p(logits: np.ndarray, min_p: float) -> np.ndarray:
    """Drop tokens with probability < min_p * max probability (0: no-op)."""
    logits = np.asarray(logits, dtype=np.float32)
    if min_p <= 0.0:
        return logits.copy()
    probs = softmax(logits)
    remove = probs < min_p * probs.max()
    remove[np.argmax(probs)] = False
    return np.where(remove, np.float32(-np.inf), logits)


# ------------------------------------------------------------------- sampler
@dataclass
class Sampler:
    """Next-token choice. ``temperature=0`` is greedy. ``top_k=0``, ``top_p=1``,
    ``min_p=0`` and ``repetition_penalty=1`` switch those filters off.
    ``repetition_window`` limits the penalised history to its last N tokens
    (0 = the whole history, as in transformers; llama.cpp uses 64)."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repetition_window: int = 0
    seed: int | None = None
    _rng: np.random.Generator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checks = [
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (self.top_k >= 0, f"top-k must be >= 0, got {self.top_k}"),
            (0.0 < self.top_p <= 1.0, f"top-p must be in (0, 1], got {self.top_p}"),
            (0.0 <= self.min_p <= 1.0, f"min-p must be in [0, 1], got {self.min_p}"),
            (self.repetition_penalty > 0, f"repetition penalty must be > 0, got {self.repetition_penalty}"),
            (self.repetition_window >= 0, f"repetition window must be >= 0, got {self.repetition_window}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        self._rng = np.random.default_rng(self.seed)

    @classmethod
    def greedy(cls, repetition_penalty: float = 1.0) -> "Sampler":
        return cls(temperature=0.0, repetition_penalty=repetition_penalty)

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def process(self, logits: np.ndarray, history: Sequence[int] = ()) -> np.ndarray:
        """The filtered scores (float32, removed tokens = -inf) the next token is
        drawn from; for greedy sampling only the penalty is applied."""
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        if self.repetition_penalty != 1.0:
            hist = history[-self.repetition_window :] if self.repetition_window else history
            logits = apply_repetition_penalty(logits, hist, self.repetition_penalty)
        if self.is_greedy:
            return logits
        scores = apply_temperature(logits, self.temperature)
        scores = apply_top_k(scores, self.top_k)
        scores = apply_top_p(scores, self.top_p)
        return apply_min_p(scores, self.min_p)

    def probs(self, logits: np.ndarray, history: Sequence[int] = ()) -> np.ndarray:
        """The distribution the next token is drawn from (one-hot when greedy)."""
        scores = self.process(logits, history)
        if self.is_greedy:
            out = np.zeros(scores.shape, np.float64)
            out[int(np.argmax(scores))] = 1.0
            return out
        return softmax(scores)

    def __call__(self, logits: np.ndarray, history: Sequence[int] = ()) -> int:
        scores = self.process(logits, history)
        if self.is_greedy:
            return int(np.argmax(scores))
        cdf = np.cumsum(softmax(scores))
        u = self._rng.random() * cdf[-1]
        return int(min(np.searchsorted(cdf, u, side="right"), cdf.size - 1))


# ---------------------------------------------------------------- generation
@dataclass
class Generation:
    """The result of ``generate``: the new tokens (EOS excluded), why it stopped
    ("eos", "length", "context" or "callback"), and timings."""

    tokens: list[int]
    stop_reason: str
    prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float
    decode_steps: int
    eos_token: int | None = None

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_seconds if self.prefill_seconds > 0 else float("nan")

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else float("nan")


def generate(
    session,
    prompt_ids: Sequence[int],
    max_tokens: int,
    eos_ids: Iterable[int] = (),
    sampler: Sampler | None = None,
    on_token: Callable[[int], object] | None = None,
    *,
    reset: bool = True,
) -> Generation:
    """Prefill ``prompt_ids`` then sample up to ``max_tokens`` new tokens.

    ``session`` is anything with ``prefill(tokens) -> logits``, ``decode(token) ->
    logits`` and ``reset()`` (a ``ckc.session.Session``); with ``reset`` (default)
    the session starts from position 0. Stops when a token in ``eos_ids`` is
    sampled (it is not returned nor passed to ``on_token``), after ``max_tokens``
    tokens, when the session's context is full, or when ``on_token(token)``
    returns True. The repetition penalty sees the prompt and the new tokens.
    An empty prompt is a ValueError.
    """
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise ValueError("empty prompt: generation needs at least one token")
    if max_tokens < 0:
        raise ValueError(f"max tokens must be >= 0, got {max_tokens}")
    sampler = sampler or Sampler()
    eos = {int(t) for t in eos_ids}
    if reset:
        session.reset()
    context = getattr(session, "context", None)

    t0 = time.perf_counter()
    logits = session.prefill(prompt)
    prefill_s = time.perf_counter() - t0
    history = list(prompt)
    out: list[int] = []
    decode_s = 0.0
    steps = 0
    reason = "length"
    eos_token = None
    while len(out) < max_tokens:
        tok = sampler(logits, history)
        if tok in eos:
            reason, eos_token = "eos", tok
            break
        out.append(tok)
        history.append(tok)
        if on_token is not None and on_token(tok) is True:
            reason = "callback"
            break
        if len(out) >= max_tokens:
            break
        if context is not None and session.position >= context:
            reason = "context"
            break
        t1 = time.perf_counter()
        logits = session.decode(tok)
        decode_s += time.perf_counter() - t1
        steps += 1
    return Generation(out, reason, len(prompt), prefill_s, decode_s, steps, eos_token)
