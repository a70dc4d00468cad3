"""ckc.sampling against transformers' logits processors, and the generation loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ckc import sampling as S

VOCAB = 257


def rand_logits(seed: int, scale: float = 3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(VOCAB) * scale).astype(np.float32)


def hf(processor, logits: np.ndarray, history=(0,)) -> np.ndarray:
    ids = torch.tensor([list(history)], dtype=torch.long)
    return processor(ids, torch.from_numpy(logits.copy())[None])[0].numpy()


def same_filtered(ours: np.ndarray, theirs: np.ndarray, atol: float = 1e-6) -> None:
    """Same kept set, same kept values (float32 rounding), same distribution."""
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
    keep = ~np.isneginf(ours)
    np.testing.assert_allclose(ours[keep], theirs[keep], rtol=1e-6, atol=atol)
    p_ours = S.softmax(ours)
    p_theirs = torch.softmax(torch.from_numpy(theirs).double(), -1).numpy()
    np.testing.assert_allclose(p_ours, p_theirs, atol=1e-7)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("penalty", [1.3, 0.7, 2.0])
def test_repetition_penalty_matches_transformers(seed, penalty):
    logits = rand_logits(seed)
    rng = np.random.default_rng(100 + seed)
    history = list(rng.integers(0, VOCAB, 40)) + [3, 3, 3]  # repeats count once
    ours = S.apply_repetition_penalty(logits, history, penalty)
    theirs = hf(RepetitionPenaltyLogitsProcessor(penalty), logits, history)
    np.testing.assert_array_equal(ours, theirs)  # exact: same float32 ops
    # seen tokens become less likely for penalty > 1, more likely below 1
    seen = np.unique(history)
    assert np.all(ours[seen] <= logits[seen]) if penalty > 1 else np.all(ours[seen] >= logits[seen])
    unseen = np.setdiff1d(np.arange(VOCAB), seen)
    np.testing.assert_array_equal(ours[unseen], logits[unseen])
    # ids outside the vocab are ignored, like transformers
    np.testing.assert_array_equal(S.apply_repetition_penalty(logits, [VOCAB + 5], penalty), logits)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("t", [0.3, 1.0, 1.7])
def test_temperature_matches_transformers(seed, t):
    logits = rand_logits(seed)
    np.testing.assert_allclose(S.apply_temperature(logits, t), hf(TemperatureLogitsWarper(t), logits), rtol=1e-7)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 2, 10, 100, VOCAB - 1])
def test_top_k_matches_transformers(seed, k):
    logits = rand_logits(seed)
    ours = S.apply_top_k(logits, k)
    same_filtered(ours, hf(TopKLogitsWarper(k), logits))
    assert (~np.isneginf(ours)).sum() == k


def test_top_k_keeps_ties_and_edge_cases():
    logits = np.array([1, 3, 3, 2, 3, 0], np.float32)
    same_filtered(S.apply_top_k(logits, 2), hf(TopKLogitsWarper(2), logits))
    assert (~np.isneginf(S.apply_top_k(logits, 2))).sum() == 3  # the three tied 3s
    np.testing.assert_array_equal(S.apply_top_k(logits, 0), logits)  # off
    np.testing.assert_array_equal(S.apply_top_k(logits, 99), logits)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_matches_transformers(seed, p):
    logits = rand_logits(seed, scale=2.0)
    same_filtered(S.apply_top_p(logits, p), hf(TopPLogitsWarper(p), logits))


def test_top_p_keeps_at_least_one():
    logits = np.array([10.0, 0.0, -1.0], np.float32)
    out = S.apply_top_p(logits, 0.01)
    assert not np.isneginf(out[0]) and np.isneginf(out[1:]).all()
    np.testing.assert_array_equal(S.apply_top_p(logits, 1.0), logits)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("min_p", [0.01, 0.1, 0.5])
def test_min_p_matches_transformers(seed, min_p):
    logits = rand_logits(seed)
    same_filtered(S.apply_min_p(logits, min_p), hf(MinPLogitsWarper(min_p), logits))


@pytest.mark.parametrize("seed", range(6))
def test_full_chain_matches_transformers_order(seed):
    """penalty -> temperature -> top-k -> top-p -> min-p, as transformers' generate."""
    logits = rand_logits(seed)
    history = list(np.random.default_rng(seed).integers(0, VOCAB, 20))
    sampler = S.Sampler(temperature=0.8, top_k=50, top_p=0.9, min_p=0.02, repetition_penalty=1.2, seed=0)
    theirs = torch.from_numpy(logits.copy())[None]
    ids = torch.tensor([history])
    for proc in (
        RepetitionPenaltyLogitsProcessor(1.2),
        TemperatureLogitsWarper(0.8),
        TopKLogitsWarper(50),
        TopPLogitsWarper(0.9),
        MinPLogitsWarper(0.02),
    ):
        theirs = proc(ids, theirs)
    same_filtered(sampler.process(logits, history), theirs[0].numpy())


def test_greedy_is_argmax_of_penalised_logits():
    logits = rand_logits(0)
    best = int(np.argmax(logits))
    assert S.Sampler()(logits) == best
    assert S.Sampler(temperature=0, top_k=1, top_p=0.1)(logits) == best  # filters ignored when greedy
    # a strong penalty on the best token moves the choice to the runner-up (if positive)
    second = int(np.argsort(logits)[-2])
    assert logits[best] > 0
    assert S.Sampler(repetition_penalty=1e6)(logits, [best]) == second
    np.testing.assert_array_equal(S.Sampler().probs(logits), np.eye(VOCAB)[best])


def test_sampling_is_seeded_and_follows_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    a = S.Sampler(temperature=1.0, seed=42)
    b = S.Sampler(temperature=1.0, seed=42)
    draws_a = [a(logits) for _ in range(4000)]
    assert draws_a == [b(logits) for _ in range(4000)]  # same seed, same tokens
    c = S.Sampler(temperature=1.0, seed=43)
    assert draws_a[:50] != [c(logits) for _ in range(50)]
    freq = np.bincount(draws_a, minlength=4) / len(draws_a)
    # 4000 draws: standard error <= 0.008; 4 sigma
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.032)
    # top-k 2 never draws the filtered tokens, and renormalises
    d = S.Sampler(temperature=1.0, top_k=2, seed=1)
    draws = [d(logits) for _ in range(2000)]
    assert set(draws) == {0, 1}
    assert abs(np.mean(np.array(draws) == 0) - 0.5 / 0.8) < 0.045
    a.reseed(42)
    assert [a(logits) for _ in range(10)] == draws_a[:10]


def test_sampler_rejects_bad_options():
    for kwargs, msg in [
        (dict(temperature=-1), "temperature"),
        (dict(top_k=-2), "top-k"),
        (dict(top_p=0.0), "top-p"),
        (dict(top_p=1.5), "top-p"),
        (dict(min_p=2.0), "min-p"),
        (dict(repetition_penalty=0), "repetition penalty"),
    ]:
        with pytest.raises(ValueError, match=msg):
            S.Sampler(**kwargs)
    with pytest.raises(ValueError, match="no token left"):
        S.softmax(np.full(3, -np.inf, np.float32))


# ---------------------------------------------------------------- generate
class Counter:
    """A deterministic toy LM for the loop logic (the real Session is exercised in
    test/py/test_session.py): it predicts (last + step) % vocab with logit 5, every
    other token 1, and tracks the position like a session."""

    def __init__(self, vocab=10, context=100, step=1):
        self.vocab, self.context, self.position, self.step = vocab, context, 0, step
        self.calls = []

    def _logits(self, tok):
        out = np.ones(self.vocab, np.float32)
        out[(tok + self.step) % self.vocab] = 5.0
        return out

    def reset(self):
        self.position = 0
        self.calls.append(("reset",))

    def prefill(self, tokens):
        self.position += len(tokens)
        self.calls.append(("prefill", list(tokens)))
        return self._logits(tokens[-1])

    def decode(self, tok):
        self.position += 1
        self.calls.append(("decode", tok))
        return self._logits(tok)


def test_generate_stops_at_limit_eos_context_and_callback():
    lm = Counter()
    g = S.generate(lm, [3], max_tokens=4)
    assert g.tokens == [4, 5, 6, 7] and g.stop_reason == "length"
    # prefill once, then one decode per token except the last one (never needed)
    assert lm.calls == [("reset",), ("prefill", [3]), ("decode", 4), ("decode", 5), ("decode", 6)]
    assert g.decode_steps == 3 and g.prompt_tokens == 1

    g = S.generate(Counter(), [3], max_tokens=20, eos_ids=[7])
    assert g.tokens == [4, 5, 6] and g.stop_reason == "eos" and g.eos_token == 7

    seen = []
    g = S.generate(Counter(), [0, 1], max_tokens=20, on_token=lambda t: seen.append(t) or t == 4)
    assert g.tokens == [2, 3, 4] == seen and g.stop_reason == "callback"

    g = S.generate(Counter(context=5), [0, 1], max_tokens=20)
    assert g.tokens == [2, 3, 4, 5] and g.stop_reason == "context"  # 2 + 3 decoded = 5 positions

    g = S.generate(Counter(), [1], max_tokens=0)
    assert g.tokens == [] and g.stop_reason == "length"


def test_generate_penalty_sees_prompt_and_output():
    # a model that always repeats its last token; a huge penalty forces the
    # lowest-numbered unseen token instead (prompt tokens count as seen)
    assert S.generate(Counter(vocab=4, step=0), [2], max_tokens=3).tokens == [2, 2, 2]
    g = S.generate(Counter(vocab=4, step=0), [2], max_tokens=3, sampler=S.Sampler(repetition_penalty=1e9))
    assert g.tokens == [0, 1, 3]


def test_generate_rejects_empty_prompt():
    with pytest.raises(ValueError, match="empty prompt"):
        S.generate(Counter(), [], max_tokens=3)
