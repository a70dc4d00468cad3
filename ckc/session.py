"""A compiled model at run time: model.so + weights, driven through ctypes.

``Session(artifact_dir, threads=N)`` loads ``artifact_dir/model.so`` (the ABI in
``runtime/ckc_abi.h``, bound by ckc/binding.py) and maps ``artifact_dir/weights.bump``; a
``manifest.json`` in the directory may name other files (keys ``"library"`` and
``"weights"``, paths relative to the directory). model.so is linked against
libckernels; when the dynamic linker cannot find it by itself, the session loads
``artifact_dir/libckernels.so`` or the library ``ckc.kernels.library()`` builds,
globally, and tries again.

    with Session("out/smollm2", threads=4) as s:
        logits = s.prefill([1, 2, 3])      # [vocab] for the last token
        logits = s.decode(int(logits.argmax()))
        s.reset()

Every failure on the C side (bad token id, context overflow, a missing or
truncated weights file, ...) becomes a ``SessionError`` (or a subclass) whose
message is one line, ready for the CLI to print. The model is left as it was
(same position) after invalid-argument errors.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np

from ckc import binding
from ckc.binding import ABI_VERSION, ERR_CONTEXT, ERR_MEMORY, ERR_TOKEN, OK, CkcInfo  # noqa: F401 - re-exported

MODEL_LIBRARY = "model.so"
WEIGHTS_FILE = "weights.bump"
MANIFEST = "manifest.json"


class SessionError(RuntimeError):
    """A compiled model could not be loaded or refused a call; str() is one line."""


class TokenRangeError(SessionError, ValueError):
    """A token id outside [0, vocab)."""


class ContextOverflowError(SessionError):
    """position + tokens would exceed the model's context."""


class ModelMemoryError(SessionError):
    """Debug build: an arena canary was overwritten (a kernel wrote out of bounds)."""


_ERRORS = {ERR_TOKEN: TokenRangeError, ERR_CONTEXT: ContextOverflowError, ERR_MEMORY: ModelMemoryError}


def load_model_library(so: Path) -> ctypes.CDLL:
    """dlopen a model.so of this ckc's ABI (ckc/binding.py), errors as SessionError."""
    try:
        return binding.load_library(so)
    except binding.BindingError as e:
        raise SessionError(str(e)) from None


def _artifact_paths(artifact_dir: Path) -> tuple[Path, Path]:
    library, weights = artifact_dir / MODEL_LIBRARY, artifact_dir / WEIGHTS_FILE
    manifest = artifact_dir / MANIFEST
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError) as e:
            raise SessionError(f"{manifest}: unreadable manifest: {e}") from None
        if isinstance(data, dict):
            library = artifact_dir / data.get("library", MODEL_LIBRARY)
            weights = artifact_dir / data.get("weights", WEIGHTS_FILE)
    return library, weights


class Session(binding.Handle):
    """One sequence on one compiled model (see the module docstring)."""

    def __init__(self, artifact_dir, threads: int = 0, *, library=None, weights=None):
        self._model = None
        artifact_dir = Path(artifact_dir)
        if library is None or weights is None:
            if not artifact_dir.is_dir():
                raise SessionError(f"{artifact_dir}: no such artifact directory")
            lib_default, weights_default = _artifact_paths(artifact_dir)
            library = library if library is not None else lib_default
            weights = weights if weights is not None else weights_default
        if int(threads) < 0:
            raise SessionError(f"threads must be >= 0 (0 = all cores), got {threads}")
        self.artifact_dir = artifact_dir
        self.library_path = Path(library)
        self.weights_path = Path(weights)
        self._lib = load_model_library(self.library_path)
        err = ctypes.create_string_buffer(512)
        model = self._lib.ckc_model_create(str(self.weights_path).encode(), int(threads), err, len(err))
        if not model:
            msg = err.value.decode("utf-8", "replace").strip() or f"{self.weights_path}: cannot create the model"
            raise SessionError(msg.splitlines()[0])
        self._model = model
        info = binding.info(self._lib, model)
        self._info = info.as_dict()
        if "prefill" not in self._info["functions"]:
            self.close()
            raise SessionError(f"{self.library_path}: this library has no @prefill "
                               f"(it has {', '.join(self._info['functions']) or 'no compute function'}): "
                               "compile the model for inference")
        self.vocab: int = info.vocab
        self.context: int = info.context
        self.threads: int = info.nthreads

    # -- facts
    @property
    def info(self) -> dict:
        """``ckc_info`` as a dict: vocab, context, max_batch, layers, hidden, nthreads,
        debug, arena_bytes, weights_bytes, arch, simd, functions (names), slots, ..."""
        return dict(self._info)

    @property
    def position(self) -> int:
        return self._lib.ckc_position(self._handle())

    # -- calls
    def prefill(self, tokens) -> np.ndarray:
        """Append ``tokens`` at the current position; the last one's logits [vocab]."""
        toks = self._tokens(tokens)
        out = np.empty(self.vocab, dtype=np.float32)
        self._check(self._lib.ckc_prefill(self._handle(), _i32p(toks), toks.size, _f32p(out)))
        return out

    def prefill_all(self, tokens) -> np.ndarray:
        """Append ``tokens``; logits of every one of them [n, vocab]."""
        toks = self._tokens(tokens)
        out = np.empty((toks.size, self.vocab), dtype=np.float32)
        self._check(self._lib.ckc_prefill_all(self._handle(), _i32p(toks), toks.size, _f32p(out)))
        return out

    def decode(self, token: int) -> np.ndarray:
        """Append one token; its logits [vocab]."""
        (tok,) = self._tokens([token])
        out = np.empty(self.vocab, dtype=np.float32)
        self._check(self._lib.ckc_decode(self._handle(), ctypes.c_int32(int(tok)), _f32p(out)))
        return out

    def log_probs(self, tokens) -> np.ndarray:
        """From a reset, the log-probability (float64) of every next token:
        ``out[i] = log p(tokens[i + 1] | tokens[: i + 1])``, ``n - 1`` values.
        The tokens must fit the context; the session is left at position n."""
        toks = self._tokens(tokens)
        if toks.size < 2:
            raise SessionError(f"scoring needs at least 2 tokens, got {toks.size}")
        self.reset()
        logits = self.prefill_all(toks).astype(np.float64)
        m = logits.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        rows = np.arange(toks.size - 1)
        return logits[rows, toks[1:]] - lse[:-1]

    # -- KV-cache slots (a model compiled with slots, e.g. by `ckc serve`)
    @property
    def slots(self) -> int:
        """KV-cache slots of the model (0: compiled without; slot 0 is the
        sequence prefill/decode/reset use)."""
        return self._info["slots"]

    def batch(self, slots, tokens, out_rows=None) -> np.ndarray:
        """One compiled call over rows of several sequences: row i appends
        ``tokens[i]`` to slot ``slots[i]`` (rows of a slot in order: a prefill
        chunk is consecutive rows). The logits of the rows ``out_rows``
        (increasing row indices; only they pay for the lm_head) [len, vocab], by
        default of every row [n, vocab]."""
        toks = self._tokens(tokens)
        sl = np.ascontiguousarray(np.asarray(slots, dtype=np.int64).reshape(-1), dtype=np.int32)
        if sl.size != toks.size:
            raise SessionError(f"batch: {sl.size} slots for {toks.size} tokens")
        if not self.slots:
            raise SessionError(f"{self.library_path}: the model was compiled without KV-cache slots")
        rows = None
        if out_rows is not None:
            rows = np.ascontiguousarray(np.asarray(out_rows, dtype=np.int64).reshape(-1), dtype=np.int32)
        n_out = toks.size if rows is None else rows.size
        out = np.empty((n_out, self.vocab), dtype=np.float32)
        self._check(self._lib.ckc_batch(self._handle(), _i32p(sl), _i32p(toks), toks.size,
                                        None if rows is None else _i32p(rows), n_out, _f32p(out)))
        return out

    def slot_position(self, slot: int) -> int:
        return self._lib.ckc_slot_position(self._handle(), int(slot)) if self.slots else (
            self.position if slot == 0 else -1)

    def slot_reset(self, slot: int) -> None:
        if not self.slots:
            raise SessionError(f"{self.library_path}: the model was compiled without KV-cache slots")
        self._check(self._lib.ckc_slot_reset(self._handle(), int(slot)))

    def reset(self) -> None:
        """Back to position 0 (a new sequence; the KV cache memory is reused)."""
        self._check(self._lib.ckc_reset(self._handle()))

    def close(self) -> None:
        if self._model:
            self._lib.ckc_model_destroy(self._model)
            self._model = None

    def __repr__(self) -> str:
        state = f"position={self.position}" if self._model else "closed"
        return f"Session({str(self.artifact_dir)!r}, vocab={self.vocab}, context={self.context}, {state})"

    # -- helpers
    def _handle(self):
        if not self._model:
            raise SessionError("session is closed")
        return self._model

    def _check(self, rc: int) -> None:
        if rc == OK:
            return
        raise _ERRORS.get(rc, SessionError)(binding.last_error(self._lib, self._model, rc))

    def _tokens(self, tokens) -> np.ndarray:
        arr = np.asarray(tokens)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise SessionError(f"tokens must be a 1-D sequence, got shape {list(arr.shape)}")
        if arr.size == 0:
            return np.zeros(0, dtype=np.int32)
        if arr.dtype.kind not in "iu":
            raise SessionError(f"tokens must be integers, got {arr.dtype}")
        # Ids that do not fit int32 would wrap; report them as the C side would.
        bad = np.flatnonzero((arr < 0) | (arr > np.iinfo(np.int32).max))
        if bad.size:
            i = int(bad[0])
            raise TokenRangeError(f"token {int(arr[i])} at index {i} is out of range (vocab {self.vocab})")
        return np.ascontiguousarray(arr, dtype=np.int32)


_i32p, _f32p = binding.i32p, binding.f32p


def perplexity(session: Session, tokens, window: int | None = None) -> float:
    """exp(mean negative log-likelihood) of ``tokens``, scored in consecutive,
    non-overlapping windows of ``window`` tokens (default: the whole context),
    each from a reset; the first token of each window is context only, never
    predicted. The same scheme must be used on the reference side."""
    toks = np.asarray(tokens)
    window = int(window or session.context)
    if window < 2 or window > session.context:
        raise SessionError(f"perplexity window must be in [2, {session.context}], got {window}")
    nll, count = 0.0, 0
    for start in range(0, toks.size, window):
        chunk = toks[start : start + window]
        if chunk.size < 2:
            break
        lp = session.log_probs(chunk)
        nll -= float(lp.sum())
        count += lp.size
    if count == 0:
        raise SessionError("perplexity needs at least 2 tokens")
    return float(np.exp(nll / count))
