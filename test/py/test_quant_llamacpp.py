"""ckc vs llama.cpp on GGUFs quantized by llama.cpp's own quantizer, and on SmolLM2's file.

Files: the zoo's random-weight models widened so every row is a multiple of 256
(ckc.llamacpp_quant, shape q256: K-quant blocks fit, so each file holds the
types its name says), converted by convert_hf_to_gguf.py to F32 and quantized
by llama_model_quantize (what llama-quantize runs); and SmolLM2-135M's
downloaded Q4_1/Q8_0 file. Both engines run the same file with the same KV
cache type (f32 here; CKC_QUANT_KV=f16 runs the module with an f16 cache on
both sides once ckc has that option).

What separates the two engines on a quantized file is not only the weights:
llama.cpp quantizes activations to 8-bit blocks (Q8_0 for Q8_0/Q4_0/Q4_1
weights, Q8_K for the K types) before its integer dot products. Its effect is
measured in each test, as the *noise*: llama.cpp on the file vs llama.cpp on the
same file dequantized to F32 by llama_model_quantize (exactly the same weights,
fp32 activations). Measured over the full matrix (6 families x 5 formats, 32
steps): ckc today (weights dequantized at import, fp32 arithmetic) equals the
dequantized run within 3.3e-6 of the logit scale (4e-4 for the GELU families:
ggml's fp16 GELU table), its perplexity within 0.015% of it; the noise is
0.9-8.7% of the logit scale on these random-weight models (they amplify small
perturbations). Checks:

- logits, ckc's greedy run (16-token prompt, 32 greedy tokens: prefill then
  single-token decodes, its GEMV path) vs llama.cpp's logits of prompt + those
  tokens in one batch: max |diff| <= 1.5 x noise + 2e-3 x scale. ckc's
  quantized kernels (8-bit activations too) should land at or below 1x. It
  catches weights off by a quantization step: ckc running the Q6_K file's
  weights against llama.cpp on the Q8_0 file (llama) exceeds the bound 2.5x,
  Q4_0 against Q8_0 10x; a misread block moves logits by their own size.
- top-1 over the 32 steps: llama.cpp's top-1 is ckc's token, except at
  near-ties: steps where llama.cpp's logit of ckc's token is within that
  step's noise of its top-1 (its own 8-bit activations decide those; measured
  0-4 of 32 over the matrix, gaps <= 0.105 against noise >= 0.139); at most 6.
- perplexity with llama-perplexity's windows (ckc.llamacpp.perplexity: n_ctx
  windows, BOS first where the vocabulary adds it, the second half of each
  scored) over Macbeth, the perplexities p (ckc), r (llama.cpp on the file)
  and d (llama.cpp on the dequantized file): ckc within 0.5% of r or of d (the
  engine with its arithmetic), and |ln p/r| <= max(ln 1.005, 1.5 |ln d/r|).
  Measured: SmolLM2 (trained; ppl 42 on Macbeth's verse) p = d = 42.31, r =
  42.78: llama.cpp's 8-bit activations cost it 1.1% here, so ckc today meets
  the 0.5% target against llama.cpp's fp32 arithmetic, not against its file
  run. The random models' perplexity is above their vocabulary size (1200 to
  33000 for 384 pieces, 180000 for GPT-2's 50257: confidently wrong); there p
  vs r differs by up to 1.1% (llama Q4_K_M), p vs d by <= 0.015%.

In ``make test``: Llama Q4_K_M and Qwen2 Q8_0 (K-quant super-blocks and
32-value blocks) and SmolLM2. CKC_QUANT_FULL=1: every family llama.cpp
converts x Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K (30 files, built once).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from ckc import llamacpp_quant as lq
from ckc import modelzoo
from quant_parity_util import STEPS, greedy, perplexities, text_tokens

NOISE_X = 1.5       # x llama.cpp's own activation-quantization effect
FLOOR = 2e-3        # x logit scale: fp32 order of operations, ggml's fp16 GELU table
MAX_TIES = 6        # of STEPS (measured <= 4)
PPL_TOL = 0.005     # relative
KV = os.environ.get("CKC_QUANT_KV", "f32")

FAST = [("llama", "Q4_K_M"), ("qwen2", "Q8_0")]
FULL = [(f, q) for f in modelzoo.FAMILIES for q in lq.FORMATS]
CASES = FULL if os.environ.get("CKC_QUANT_FULL") else FAST


def _prompt(vocab: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, vocab, size=16).astype(np.int32)


def _check_greedy(g, what: str) -> None:
    assert g.ckc.shape == g.ref.shape == g.deq.shape == (STEPS, g.ref.shape[1]), what
    noise = float(g.noise.max())
    bound = NOISE_X * noise + FLOOR * g.scale
    assert g.max_diff <= bound, (f"{what}: max |logit diff| {g.max_diff:.4g} > {bound:.4g} "
                                 f"(llama.cpp's activation noise {noise:.4g}, scale {g.scale:.3g})")
    ties = np.nonzero(~g.top1_equal)[0]
    wrong = [int(t) for t in ties if g.gap[t] > g.noise[t]]
    assert not wrong, (f"{what}: llama.cpp's top-1 is not ckc's token at steps {wrong} and not a near-tie "
                       f"(gaps {g.gap[wrong].round(4).tolist()}, noise {g.noise[wrong].round(4).tolist()})")
    assert ties.size <= MAX_TIES, f"{what}: {ties.size} near-ties of {STEPS} steps"


@pytest.mark.parametrize("family,fmt", CASES)
def test_quantized_zoo_model_greedy(family, fmt):
    path = lq.quant_gguf(family, fmt)
    types = set(lq.tensor_types(path).values())
    want = {"Q8_0": "Q8_0", "Q4_0": "Q4_0", "Q4_K_M": "Q4_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}[fmt]
    assert want in types, f"{path}: llama-quantize wrote {sorted(types)}, no {want}"
    vocab = lq.config_dict(family)["vocab_size"]
    g = greedy(path, _prompt(min(vocab, 384), len(family)), kv_type=KV)
    _check_greedy(g, f"{family} {fmt}")


@pytest.mark.parametrize("family,fmt", CASES)
def test_quantized_zoo_model_perplexity(family, fmt):
    path = lq.quant_gguf(family, fmt)
    toks, bos = text_tokens(path, 256)
    _check_ppl(*perplexities(path, toks, n_ctx=64, bos=bos, kv_type=KV), f"{family} {fmt}")


def _check_ppl(p_ckc: float, p_ref: float, p_deq: float, what: str) -> None:
    msg = f"{what}: ckc ppl {p_ckc:.4f}, llama.cpp {p_ref:.4f}, llama.cpp on the dequantized file {p_deq:.4f}"
    tol = np.log1p(PPL_TOL)
    assert min(abs(np.log(p_ckc / p_ref)), abs(np.log(p_ckc / p_deq))) <= tol, msg
    assert abs(np.log(p_ckc / p_ref)) <= max(tol, NOISE_X * abs(np.log(p_deq / p_ref))), msg


def test_smollm2_file_greedy_and_perplexity():
    from ckc import assets

    path = assets.smollm2_gguf()
    types = set(lq.tensor_types(path).values())
    assert {"Q4_1", "Q8_0"} <= types, sorted(types)
    toks, bos = text_tokens(path, 256)
    g = greedy(path, toks[:16], kv_type=KV)
    _check_greedy(g, "SmolLM2 Q4_1/Q8_0")
    p_ckc, p_ref, p_deq = perplexities(path, toks, n_ctx=128, bos=bos, kv_type=KV)
    assert p_ref < 100, p_ref        # a trained model on English text
    _check_ppl(p_ckc, p_ref, p_deq, "SmolLM2 Q4_1/Q8_0")


def test_perplexity_windows_score_like_llama_perplexity():
    from ckc import llamacpp

    assert llamacpp.perplexity_windows(20, 8) == [(0, 8), (8, 16)]        # the tail of 4 is dropped
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 11, size=20)
    seen = []

    def fn(w):
        seen.append(w.copy())
        return rng.normal(size=(w.size, 11))

    ppl, nll = llamacpp.perplexity(fn, toks, n_ctx=8, bos=7)
    assert [w[0] for w in seen] == [7, 7] and np.array_equal(seen[1][1:], toks[9:16])
    # first = n_ctx/2 = 4: rows 4, 5, 6 of each window predict its tokens 5, 6, 7
    rng = np.random.default_rng(0)
    rng.integers(0, 11, size=20)
    want = []
    for w in seen:
        lg = rng.normal(size=(8, 11))
        for i in (4, 5, 6):
            want.append(np.log(np.exp(lg[i]).sum()) - lg[i, w[i + 1]])
    assert np.allclose(nll, want, rtol=1e-12) and np.isclose(ppl, np.exp(np.mean(want)), rtol=1e-12)
    with pytest.raises(ValueError, match="at least n_ctx"):
        llamacpp.perplexity(fn, toks[:5], n_ctx=8)
    with pytest.raises(ValueError, match="kv_type 'q4' unknown"):
        llamacpp.logits("m.gguf", [1], kv_type="q4")
