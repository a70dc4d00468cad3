"""The numpy reference forward pass (ckc.importers.reference), driven only by an
imported ModelConfig + WeightStore, reproduces transformers' logits for every
family, from the HF directory and from llama.cpp's GGUF (llama's Q/K rows in
"interleaved" RoPE order, Gemma norms with the +1 folded in, GPT-2 Conv1D
transposed). This checks that the importers capture every numeric detail.
Tolerance: max |logit diff| <= 1e-4 (torch fp32 vs numpy fp64), same argmax."""

from __future__ import annotations

import numpy as np
import pytest

from ckc import modelzoo
from ckc.importers import load_model
from ckc.importers.reference import forward

import torch  # a pinned test dependency: missing is a failure, not a skip

T = 21  # longer than Gemma3's sliding window (8)


@pytest.fixture(scope="module", params=modelzoo.FAMILIES)
def case(request):
    family = request.param
    model = modelzoo.torch_model(family)
    cfg, _ = load_model(modelzoo.hf_dir(family))
    tokens = np.random.default_rng(1).integers(0, cfg.vocab_size, size=T)
    with torch.no_grad():
        want = model(torch.tensor(tokens[None])).logits[0].double().numpy()
    return family, tokens, want


@pytest.mark.parametrize("source", ["hf", "gguf", "gguf-neox"])
def test_reference_matches_transformers(case, source):
    family, tokens, want = case
    if source == "hf":
        cfg, w = load_model(modelzoo.hf_dir(family))
    else:
        cfg, w = load_model(modelzoo.gguf_file(family), rope_style="neox" if source == "gguf-neox" else None)
    got = forward(cfg, w, tokens)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4
    assert (got.argmax(-1) == want.argmax(-1)).all()
    assert want.std() > 0.1  # the random model is not degenerate


def test_wrong_rope_style_is_detected():
    """Reading llama's GGUF rows as neox (ignoring llama.cpp's permutation) breaks parity."""
    family = "llama"
    model = modelzoo.torch_model(family)
    cfg, w = load_model(modelzoo.gguf_file(family))
    assert cfg.rope_style == "interleaved"
    tokens = np.arange(1, T + 1)
    with torch.no_grad():
        want = model(torch.tensor(tokens[None])).logits[0].double().numpy()
    cfg.rope_style = "neox"
    assert np.abs(forward(cfg, w, tokens) - want).max() > 1e-2
