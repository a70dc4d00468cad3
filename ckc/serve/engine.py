"""The slot engine: N sequences of one compiled model advanced together, step by step.

    engine = Engine(SerialBackend(artifact_dir, slots=2), tokenizer)
    req = Request(prompt_ids, Params(max_tokens=64, sampler=Sampler()), sink=events.put)
    engine.submit(req)            # queued; raises QueueFull past the queue limit
    ...                           # sink receives Event("token", ...) then Event("done", ...)
    req.cancel()                  # the client went away: its slot is freed at the next step
    engine.close(drain=True)      # finish running and queued requests, then stop

One scheduler thread owns the model. Each step it

1. drops cancelled requests (queued or running), freeing their slots;
2. admits queued requests into free slots (FIFO), resetting the slot;
3. gives every busy slot one piece of work: a slot still reading its prompt gets
   its next chunk of at most ``prefill_chunk`` tokens (chunked prefill: a long
   prompt takes several steps and never stalls the slots that are decoding),
   a generating slot gets its last sampled token (one decode);
4. runs all that work as ONE ``backend.step(work)`` call, which returns the
   logits of the last token of every entry;
5. samples each slot whose prompt is done, detokenizes, checks EOS, stop
   strings, ``max_tokens`` and the context, and sends the events.

The backend runs a step. ``BatchedBackend`` (the default of ``ckc serve``) holds
ONE ``ckc.session.Session`` of a model compiled with KV-cache slots
(``CompileOptions(slots=N)``, the IR's ``@decode_batch``): the step's entries
become the rows of one ``Session.batch`` call -- the decode rows of the running
slots and the prompt chunks of new ones together -- so the weights are read
once per step for every slot. ``SerialBackend`` holds one ``Session`` per slot
-- own arena and KV cache, the weights file mapped by each (the OS shares its
pages) -- and runs a step's entries one after another (``ckc serve --backend
serial``, ``ckc chat``). The scheduler is the same for both.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ckc.sampling import Sampler


class QueueFull(RuntimeError):
    """More requests waiting than the engine's queue limit."""


class EngineClosed(RuntimeError):
    """The engine is draining or stopped and takes no new requests."""


# ------------------------------------------------------------------- backend
class SerialBackend:
    """One Session per slot; ``step`` runs the entries one after another."""

    def __init__(self, artifact_dir, slots: int, threads: int = 0):
        from ckc.session import Session

        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.sessions = []
        try:
            for _ in range(slots):
                self.sessions.append(Session(artifact_dir, threads=threads))
        except Exception:
            self.close()
            raise
        first = self.sessions[0]
        self.slots = slots
        self.context: int = first.context
        self.vocab: int = first.vocab
        self.threads: int = first.threads
        self.info = first.info

    def reset(self, slot: int) -> None:
        self.sessions[slot].reset()

    def position(self, slot: int) -> int:
        return self.sessions[slot].position

    def step(self, work: list[tuple[int, list[int]]]) -> list[np.ndarray | BaseException]:
        """For each (slot, tokens): append the tokens to that slot's sequence and
        return the logits [vocab] of the last one, or the exception that call raised
        (one slot's failure does not stop the others)."""
        out: list[np.ndarray | BaseException] = []
        for slot, tokens in work:
            s = self.sessions[slot]
            try:
                out.append(s.decode(tokens[0]) if len(tokens) == 1 else s.prefill(tokens))
            except Exception as e:  # noqa: BLE001 - delivered to that slot's request
                out.append(e)
        return out

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        self.sessions = []


class BatchedBackend:
    """One Session of a model compiled with ``slots`` KV-cache slots; ``step``
    runs every entry in ONE compiled call (``Session.batch``: row i of the call
    is a token of slot i's sequence, the GEMMs run over all rows)."""

    def __init__(self, artifact_dir, slots: int, threads: int = 0):
        from ckc.session import Session, SessionError

        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.session = Session(artifact_dir, threads=threads)
        if self.session.slots < slots:
            have = self.session.slots
            self.session.close()
            raise SessionError(f"{artifact_dir}: the model has {have} KV-cache slots, {slots} wanted "
                               "(compile it with slots)")
        self.slots = slots
        self.context: int = self.session.context
        self.vocab: int = self.session.vocab
        self.threads: int = self.session.threads
        self.info = self.session.info

    def reset(self, slot: int) -> None:
        self.session.slot_reset(slot)

    def position(self, slot: int) -> int:
        return self.session.slot_position(slot)

    def step(self, work: list[tuple[int, list[int]]]) -> list[np.ndarray | BaseException]:
        """As SerialBackend.step, in one call. An entry the model would refuse
        (context overflow, a bad token) gets its error and stays out of the call,
        so it does not fail the others."""
        from ckc.session import ContextOverflowError, TokenRangeError

        out: list[np.ndarray | BaseException | None] = [None] * len(work)
        slots: list[int] = []
        tokens: list[int] = []
        last: list[tuple[int, int]] = []  # (entry, row of its last token)
        for i, (slot, toks) in enumerate(work):
            pos = self.position(slot)
            if not toks:
                out[i] = ValueError("empty token list")
            elif pos + len(toks) > self.context:
                out[i] = ContextOverflowError(
                    f"context overflow: position {pos} + {len(toks)} tokens > context {self.context}")
            elif any(not 0 <= t < self.vocab for t in toks):
                bad = next(t for t in toks if not 0 <= t < self.vocab)
                out[i] = TokenRangeError(f"token {bad} is out of range (vocab {self.vocab})")
            else:
                slots += [slot] * len(toks)
                tokens += toks
                last.append((i, len(tokens) - 1))
        if tokens:
            try:
                logits = self.session.batch(slots, tokens, [row for _, row in last])  # only the sampled rows
                for k, (i, _) in enumerate(last):
                    out[i] = logits[k]
            except Exception as e:  # noqa: BLE001 - the call failed for every entry in it
                for i, _ in last:
                    out[i] = e
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if getattr(self, "session", None) is not None:
            self.session.close()
            self.session = None


# ------------------------------------------------------------------ requests
@dataclass
class Params:
    max_tokens: int
    sampler: Sampler = field(default_factory=Sampler)
    stop: tuple[str, ...] = ()
    logprobs: int | None = None       # None: none; k >= 0: the sampled token's + the top k
    eos_ids: frozenset = frozenset()


@dataclass
class TokenInfo:
    id: int
    text: str                          # the token's own text (for logprobs)
    logprob: float | None = None
    top: dict | None = None            # text -> logprob of the top k


@dataclass
class Event:
    kind: str                          # "token" (text and/or tokens), "done", "error"
    text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    finish_reason: str | None = None   # "stop", "length", "cancelled" (done)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


_ids = itertools.count(1)


class Request:
    """One generation: prompt ids in, events out through ``sink`` (called from
    the scheduler thread; it must not block)."""

    def __init__(self, prompt_ids, params: Params, sink: Callable[[Event], object]):
        self.id = next(_ids)
        self.prompt = [int(t) for t in prompt_ids]
        self.params = params
        self.sink = sink
        self.cancelled = False
        self.done = False
        self.submitted = time.monotonic()
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.generated: list[int] = []
        self._text = ""        # all text decoded so far
        self._sent = 0         # how much of it went out (the rest may start a stop string)
        self._decoder = None

    def cancel(self) -> None:
        """Stop this request (safe from any thread); the engine frees its slot."""
        self.cancelled = True
        eng = getattr(self, "_engine", None)
        if eng is not None:
            eng._wake()

    # -- text with stop strings, used by the scheduler thread
    def _feed_text(self, delta: str) -> tuple[str, bool]:
        """Add decoded text; (text safe to send now, whether a stop string matched)."""
        self._text += delta
        stops = self.params.stop
        if not stops:
            out, self._sent = self._text[self._sent:], len(self._text)
            return out, False
        start = max(0, self._sent - max(len(s) for s in stops))
        hits = [i for i in (self._text.find(s, start) for s in stops) if i >= 0]
        if hits:
            cut = min(hits)
            out = self._text[self._sent:cut] if cut > self._sent else ""
            self._text = self._text[:max(cut, self._sent)]
            self._sent = len(self._text)
            return out, True
        # hold back the longest tail that could still grow into a stop string
        hold = 0
        for s in stops:
            for k in range(min(len(s) - 1, len(self._text) - self._sent), 0, -1):
                if self._text.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        safe = len(self._text) - hold
        out, self._sent = self._text[self._sent:safe], safe
        return out, False

    def _rest(self) -> str:
        out, self._sent = self._text[self._sent:], len(self._text)
        return out

    @property
    def text(self) -> str:
        return self._text


@dataclass
class _Slot:
    index: int
    req: Request | None = None
    pending: list[int] = field(default_factory=list)   # prompt tokens not yet fed
    next_token: int | None = None                      # sampled, to feed next step
    history: list[int] = field(default_factory=list)   # for the repetition penalty


# -------------------------------------------------------------------- engine
class Stats:
    """Counters for /metrics (read without the lock: ints are atomic enough)."""

    def __init__(self):
        self.requests = collections.Counter()          # finish reason -> count
        self.prompt_tokens = 0
        self.generated_tokens = 0
        self.steps = 0
        self.busy_seconds = 0.0
        self.ttft_sum = 0.0
        self.ttft_count = 0
        self.recent = collections.deque()              # (time, generated tokens) per step
        self.started = time.monotonic()

    WINDOW_S = 10.0

    def record_step(self, now: float, tokens: int) -> None:
        """Scheduler thread only (the only one that mutates ``recent``)."""
        self.recent.append((now, tokens))
        while self.recent and self.recent[0][0] < now - self.WINDOW_S:
            self.recent.popleft()

    def tokens_per_s(self) -> float:
        """Any thread: tokens generated per second over the last WINDOW_S."""
        now = time.monotonic()
        items = list(self.recent)  # one C-level copy under the GIL: safe against the scheduler's appends
        span = min(self.WINDOW_S, now - self.started)
        return sum(n for t, n in items if t >= now - self.WINDOW_S) / span if span > 0 else 0.0


class Engine:
    def __init__(self, backend, tokenizer, *, max_queue: int = 64, prefill_chunk: int = 32):
        if prefill_chunk < 1:
            raise ValueError(f"prefill chunk must be >= 1, got {prefill_chunk}")
        self.backend = backend
        self.tokenizer = tokenizer
        self.max_queue = max_queue
        self.prefill_chunk = prefill_chunk
        self.context = backend.context
        self.slots = [_Slot(i) for i in range(backend.slots)]
        self.queue: collections.deque[Request] = collections.deque()
        self.stats = Stats()
        self._cv = threading.Condition()
        self._accepting = True
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="ckc-engine", daemon=True)
        self._thread.start()

    # -- public, any thread
    def submit(self, req: Request) -> None:
        if not req.prompt:
            raise ValueError("empty prompt")
        if len(req.prompt) >= self.context:
            raise ValueError(f"prompt of {len(req.prompt)} tokens does not fit the context of {self.context}")
        with self._cv:
            if not self._accepting:
                raise EngineClosed("the server is shutting down")
            if len(self.queue) >= self.max_queue:
                raise QueueFull(f"{len(self.queue)} requests are waiting (limit {self.max_queue})")
            req._engine = self
            self.queue.append(req)
            self._cv.notify_all()

    @property
    def busy_slots(self) -> int:
        return sum(1 for s in self.slots if s.req is not None)

    @property
    def queued(self) -> int:
        return len(self.queue)

    def close(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; with ``drain`` finish the running and queued ones
        first, else cancel them. Then stop the thread and free the model."""
        with self._cv:
            self._accepting = False
            if not drain:
                for r in self.queue:
                    r.cancelled = True
                for s in self.slots:
                    if s.req is not None:
                        s.req.cancelled = True
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.backend.close()

    def _wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    # -- the scheduler thread
    def _loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    self._drop_cancelled()
                    self._admit()
                    busy = [s for s in self.slots if s.req is not None]
                    if busy:
                        break
                    if self._stop and not self.queue:
                        return
                    self._cv.wait()
            try:
                self._step(busy)
            except Exception as e:  # noqa: BLE001 - a bug must not hang every client: fail this step's requests
                msg = f"internal error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                with self._cv:
                    for s in busy:
                        if s.req is not None:
                            self._finish(s, s.req, "error", error=msg)

    def _drop_cancelled(self) -> None:
        if any(r.cancelled for r in self.queue):
            for r in [r for r in self.queue if r.cancelled]:
                self.queue.remove(r)
                self._finish(None, r, "cancelled")
        for s in self.slots:
            if s.req is not None and s.req.cancelled:
                self._finish(s, s.req, "cancelled")

    def _admit(self) -> None:
        for s in self.slots:
            if not self.queue:
                return
            if s.req is None:
                req = self.queue.popleft()
                self.backend.reset(s.index)
                s.req, s.pending, s.next_token = req, list(req.prompt), None
                s.history = list(req.prompt)
                self.stats.prompt_tokens += len(req.prompt)
                if req.params.max_tokens == 0:
                    self._finish(s, req, "length")

    def _step(self, busy: list[_Slot]) -> None:
        work, fed = [], []
        for s in busy:
            if s.pending:
                chunk = s.pending[: self.prefill_chunk]
                del s.pending[: len(chunk)]
            else:
                chunk = [s.next_token]
            work.append((s.index, chunk))
            fed.append(s)
        t0 = time.monotonic()
        results = self.backend.step(work)
        made = 0
        for s, res in zip(fed, results):
            req = s.req
            if req is None:
                continue
            if isinstance(res, BaseException):
                self._finish(s, req, "error", error=str(res).splitlines()[0] if str(res) else type(res).__name__)
                continue
            if s.pending:
                continue  # more prompt to read: these logits are not sampled
            try:
                made += self._sample(s, req, res)
            except Exception as e:  # noqa: BLE001 - a bad sink or sampler ends this request only
                self._finish(s, req, "error", error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        now = time.monotonic()
        st = self.stats
        st.steps += 1
        st.busy_seconds += now - t0
        st.generated_tokens += made
        st.record_step(now, made)

    def _sample(self, s: _Slot, req: Request, logits: np.ndarray) -> int:
        p = req.params
        tok = p.sampler(logits, s.history)
        info = None
        if p.logprobs is not None:
            info = self._logprobs(logits, tok, p.logprobs)
        if req.first_token_at is None:
            req.first_token_at = time.monotonic()
            self.stats.ttft_sum += req.first_token_at - req.submitted
            self.stats.ttft_count += 1
        if tok in p.eos_ids:
            self._finish(s, req, "stop")
            return 0
        req.generated.append(tok)
        s.history.append(tok)
        if req._decoder is None:
            req._decoder = _Detok(self.tokenizer)
        text, stopped = req._feed_text(req._decoder.feed(tok))
        if info is not None:
            info.text = self._piece(tok)
        req.sink(Event("token", text=text, tokens=[info] if info else [TokenInfo(tok, "")]))
        if stopped:
            self._finish(s, req, "stop", flush=False)
        elif len(req.generated) >= p.max_tokens or self.backend.position(s.index) >= self.context:
            self._finish(s, req, "length")
        else:
            s.next_token = tok
        return 1

    def _piece(self, tok: int) -> str:
        """A token's own text: its bytes (with the leading space a lone decode drops)."""
        if hasattr(self.tokenizer, "piece"):
            return self.tokenizer.piece(tok).decode("utf-8", "replace")
        return self.tokenizer.decode([tok])

    def _logprobs(self, logits, tok: int, k: int) -> TokenInfo:
        x = np.asarray(logits, np.float64)
        m = x.max()
        lse = m + np.log(np.exp(x - m).sum())
        lp = x - lse
        top = {}
        if k > 0:
            for i in np.argsort(-lp, kind="stable")[:k]:
                top.setdefault(self._piece(int(i)), float(lp[i]))
        return TokenInfo(tok, "", float(lp[tok]), top)

    def _finish(self, s: _Slot | None, req: Request, reason: str, *, error: str | None = None,
                flush: bool = True) -> None:
        if s is not None:
            s.req, s.pending, s.next_token, s.history = None, [], None, []
        if req.done:
            return
        req.done = True
        req.finished_at = time.monotonic()
        self.stats.requests[reason] += 1
        try:
            if flush and reason in ("stop", "length") and req._decoder is not None:
                text, _ = req._feed_text(req._decoder.flush())
                text += req._rest()
                if text:
                    req.sink(Event("token", text=text))
            if reason == "error":
                req.sink(Event("error", error=error, finish_reason="error"))
            else:
                req.sink(Event("done", finish_reason=reason, prompt_tokens=len(req.prompt),
                               completion_tokens=len(req.generated)))
        except Exception:  # noqa: BLE001 - the receiver is gone; nothing to tell
            pass


class _Detok:
    """Incremental detokenizer: ckc's StreamDecoder, or a diff of whole decodes
    for tokenizers without one (holding back an incomplete UTF-8 character)."""

    def __init__(self, tok):
        self._stream = tok.stream() if hasattr(tok, "stream") else None
        self._tok, self._ids, self._out = tok, [], ""

    def feed(self, t: int) -> str:
        if self._stream is not None:
            return self._stream.feed(t)
        self._ids.append(t)
        full = self._tok.decode(self._ids)
        if full.endswith("\ufffd"):
            return ""
        delta, self._out = full[len(self._out):], full
        return delta

    def flush(self) -> str:
        if self._stream is not None:
            return self._stream.flush()
        full = self._tok.decode(self._ids)
        delta, self._out = full[len(self._out):], full
        return delta
