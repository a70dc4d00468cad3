"""ckc's exported GGUF loads in llama.cpp (built from source, ckc.llamacpp) and gives
ckc's logits.

- Every family of ckc.modelzoo (fp32 random weights): ckc compiled from the Hugging
  Face folder vs llama.cpp running the GGUF that ckc.train.export writes of the
  same weights.
- A tiny Llama trained a few AdamW steps (PyTorch backend) on Shakespeare from
  random init: exported to GGUF, run by ckc (from that GGUF) and by llama.cpp.

Logits of every position of one prompt (llama.cpp: one batch, fp32 KV cache, no
flash attention), llama.cpp at 1 and 2 threads. Tolerance, relative to the
logits' scale: max |diff| <= tol * max(1, max |logit|), and the same argmax at
every position, with

- tol = 1e-5 for the SiLU families (llama, qwen2, qwen3): fp32 weights and
  arithmetic in both (measured: <= 8e-7);
- tol = 2e-3 for the GELU families (gemma, gemma3, gpt2): llama.cpp's CPU
  backend computes GELU through a table indexed by the fp16 rounding of its
  input (``#define GGML_GELU_FP16`` in ggml-cpu/vec.h), about 3 significant
  digits (measured: 1.4e-4 gemma, 6.5e-4 gemma3, 4.4e-4 gpt2).

llama.cpp is built once per machine (minutes, cached under .cache/build); the
tests need cmake and a C/C++ compiler, which the project's build needs anyway.
"""

from __future__ import annotations

import numpy as np
import pytest

from ckc import llamacpp, modelzoo
from ckc.commands.run import compiled_dir
from ckc.importers import load_model
from ckc.pipeline import CompileOptions
from ckc.session import Session
from ckc.train.export import export_gguf

TOL_SILU = 1e-5
TOL_GELU = 2e-3     # ggml's fp16 GELU table
T = 24


def _tol(family: str) -> float:
    return TOL_GELU if family in ("gemma", "gemma3", "gpt2") else TOL_SILU


def _check(ref: np.ndarray, got: np.ndarray, what: str, tol: float) -> None:
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(got - ref).max())
    assert diff <= tol * scale, f"{what}: max |diff| {diff:.3g} (logit scale {scale:.3g})"
    bad = np.nonzero(got.argmax(-1) != ref.argmax(-1))[0]
    assert bad.size == 0, f"{what}: argmax differs at positions {bad.tolist()}"


def _ckc_logits(model_path, tokens) -> np.ndarray:
    with Session(compiled_dir(model_path, CompileOptions()), threads=1) as s:
        return s.prefill_all(tokens)


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_exported_gguf_runs_in_llama_cpp_like_ckc(tmp_path, family):
    src = modelzoo.hf_dir(family)
    cfg, store = load_model(src)
    tok_src = src if family == "gpt2" else modelzoo.gguf_file(family)
    path = export_gguf(cfg, {n: np.array(store[n]) for n in store}, tmp_path / "m.gguf", tokenizer_src=tok_src)
    rng = np.random.default_rng(sum(map(ord, family)))
    toks = rng.integers(0, cfg.vocab_size, size=T).astype(np.int32)
    ref = _ckc_logits(src, toks)
    got = llamacpp.logits(path, toks, threads=1, all_positions=True)
    _check(ref, got, f"{family} 1 thread", _tol(family))
    last = llamacpp.logits(path, toks, threads=2)
    _check(ref[-1:], last[None], f"{family} 2 threads, last position", _tol(family))


def test_trained_llama_exported_runs_in_llama_cpp_like_ckc(tmp_path):
    from ckc import assets, tokenizer
    from ckc.train.models import family_config, init_weights
    from ckc.train.trainer import OptimConfig, make_backend

    tok_src = modelzoo.gguf_file("llama")      # a 384-piece SentencePiece vocabulary
    tok = tokenizer.load(tok_src)
    cfg = family_config("llama:tiny", vocab_size=len(tok))
    ids = np.array(tok.encode(assets.shakespeare_text()[:20000]), dtype=np.int32)
    backend = make_backend("torch", cfg, init_weights(cfg, seed=0), OptimConfig(weight_decay=0.0), threads=1)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(8):
        starts = rng.integers(0, ids.size - 65, size=4)
        x = np.stack([ids[s:s + 64] for s in starts])
        y = np.stack([ids[s + 1:s + 65] for s in starts])
        losses.append(backend.train_step(x, y))
        backend.optimizer_step(3e-3)
    assert losses[-1] < losses[0] - 0.3, losses          # it did train (measured 5.96 -> 5.39)
    path = export_gguf(cfg, backend.get_weights(), tmp_path / "trained.gguf", tokenizer_src=tok_src)
    toks = ids[1000:1000 + T]
    ref = _ckc_logits(path, toks)
    for threads in (1, 2):
        got = llamacpp.logits(path, toks, threads=threads, all_positions=True)
        _check(ref, got, f"trained llama, {threads} threads", TOL_SILU)


def test_llama_cpp_refuses_a_broken_gguf_with_one_line(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(llamacpp.LlamaCppError) as e:
        llamacpp.logits(bad, [1, 2, 3])
    assert "\n" not in str(e.value) and "logits" in str(e.value)
