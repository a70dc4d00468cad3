"""ckc's tokenizer against HF tokenizers on SmolLM2's vocabulary and real text.

The HF tokenizer is SmolLM2's own configuration (tokenizer.json of
HuggingFaceTB/SmolLM2: BPE, pre-tokenizer Sequence[Digits(individual), ByteLevel])
built from the vocabulary and merges in the SmolLM2 GGUF, since no hub is reachable.
"""

import os

import numpy as np
import pytest

from ckc import tokenizer as T
from ckc.assets import shakespeare_texts, smollm2_gguf

import tokenizers  # a test dependency: missing is a failure, not a skip
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

MB = 3_000_000  # bytes of Shakespeare compared id for id


@pytest.fixture(scope="module")
def smol():
    return T.from_gguf(smollm2_gguf())


@pytest.fixture(scope="module")
def hf(smol):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    meta = T.read_gguf_metadata(smollm2_gguf())
    m = meta["tokenizer.ggml.merges"]
    merges = [tuple(m[i].decode().split(" ", 1)) for i in range(len(m))]
    vocab = {smol.token_text(i): i for i in range(smol.n_vocab)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    types = meta["tokenizer.ggml.token_type"]
    tk.add_special_tokens([AddedToken(smol.token_text(i), special=True, normalized=False)
                           for i in range(smol.n_vocab) if types[i] == T.T_CONTROL])
    return tk


@pytest.fixture(scope="module")
def corpus():
    parts, size = [], 0
    for f in sorted(shakespeare_texts().glob("*.txt")):
        parts.append(f.read_text(encoding="utf-8", errors="replace"))
        size += len(parts[-1])
        if size >= MB:
            break
    text = "".join(parts)[:MB]
    lines = text.splitlines(keepends=True)
    return [("".join(lines[i:i + 300])) for i in range(0, len(lines), 300)]


def test_smollm2_loads_as_smollm(smol):
    assert smol.pre == "smollm"
    assert smol.n_vocab == 49152 and smol.bos_id == 1 and smol.eos_id == 2
    assert not smol.add_bos  # tokenizer.ggml.add_bos_token = false in the file


def test_shakespeare_ids_equal_hf(smol, hf, corpus):
    assert sum(len(c.encode()) for c in corpus) >= 2_900_000
    ours = [smol.encode(c) for c in corpus]
    theirs = [e.ids for e in hf.encode_batch(corpus, add_special_tokens=False)]
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"chunk {i} differs at token {next(k for k in range(min(len(a), len(b))) if a[k] != b[k])}"
    text = "".join(corpus)
    assert smol.decode(np.concatenate([smol.encode_np(c) for c in corpus])) == text


def test_mixed_text_equals_hf(smol, hf):
    texts = ["Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "  \n\n\t x = 3.14159;\r\n",
             "don't WON'T I'm we'll they're I've he'd", "<|im_start|>user\nhi<|im_end|>", "ЁЖЗ ελληνικά عربى हिन्दी"]
    for t in texts:
        assert smol.encode(t, parse_special=True) == hf.encode(t, add_special_tokens=False).ids, t
        assert smol.decode(smol.encode(t)) == t


def test_tokenizer_json_loader_matches(smol, hf, corpus, tmp_path):
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    tj = T.load(tmp_path)  # a folder holding tokenizer.json
    for c in corpus[:20]:
        assert tj.encode(c) == smol.encode(c)
    assert tj.encode("<|im_start|>", parse_special=True) == [smol.token_to_id("<|im_start|>")]
    assert tj.decode(tj.encode("a 12 b")) == "a 12 b"


def test_encode_batch_matches_encode(smol, corpus):
    lines = "".join(corpus[:5]).splitlines(keepends=True)
    assert smol.encode_batch(lines) == [smol.encode(x) for x in lines]
    assert smol.encode_batch([]) == [] and smol.encode_batch(["", "a"]) == [[], smol.encode("a")]


# HF tokenizers' own pre-tokenizers (Oniguruma regexes) as the reference for
# ckc's hand-written matchers: each vocabulary's real HF configuration, built
# from the GGUF, on the llama.cpp test texts, Shakespeare and random strings
# mixing every character class the regexes distinguish.
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN35_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def _hf_pre(name):
    from tokenizers import Regex, pre_tokenizers as P

    split = lambda rx: P.Split(Regex(rx), behavior="isolated")  # noqa: E731
    bl = P.ByteLevel(add_prefix_space=False, use_regex=False)
    return {
        "gpt-2": (P.ByteLevel(add_prefix_space=False, use_regex=True), False),
        "starcoder": (P.Sequence([P.Digits(individual_digits=True),
                                  P.ByteLevel(add_prefix_space=False, use_regex=True)]), False),
        "llama-bpe": (P.Sequence([split(LLAMA3_RE), bl]), True),
        "qwen2": (P.Sequence([split(QWEN2_RE), bl]), False),
        "qwen35": (P.Sequence([split(QWEN35_RE), bl]), False),
        "deepseek-coder": (P.Sequence([split(r"[\r\n]"), split(r"\s?\p{L}+"), split(r"\s?\p{P}+"),
                                       split("[一-龥ࠀ-一가-퟿]+"), split(r"\p{N}"), bl]), False),
    }[name]


def _random_texts(n, seed=5):
    import random

    rng = random.Random(seed)
    pools = ["abcXYZ", "0123456789", "   ", "\t\n\r\n\x0b\x0c", "'", "sStTmMdDlLrReEvV", ".,;:!?-()[]{}\"",
             "$+<=>^`|~", "éàüßñçÅØ", "\u0301\u0308\u093f\u0947", "你好世界中文", "안녕", "ア日本",
             "\u0663\u0967\u00b2\u00bd\u2167", "😀🦙✅", "\u00a0\u3000\u2028\u0085\u2009\u1680\u202f",
             "\x1c\x1f\u200b\ufeff", "Ωθλ", "нещо", "\u0e01\u0e34"]
    out = []
    for _ in range(n):
        k = rng.randint(1, 24)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(k)))
    return out


@pytest.fixture(scope="module")
def vocab_dir():
    from ckc.assets import llama_cpp_vocab_dir

    return llama_cpp_vocab_dir()


@pytest.mark.parametrize("name", ["gpt-2", "starcoder", "llama-bpe", "qwen2", "qwen35", "deepseek-coder"])
def test_pretokenizers_match_hf_regexes(name, corpus, vocab_dir):
    from tokenizers import AddedToken, Tokenizer, models

    path = vocab_dir / f"ggml-vocab-{name}.gguf"
    ours = T.from_gguf(path)
    meta = T.read_gguf_metadata(path)
    m = meta["tokenizer.ggml.merges"]
    pre, ignore = _hf_pre(name)
    hf = Tokenizer(models.BPE(vocab={ours.token_text(i): i for i in range(ours.n_vocab)},
                              merges=[tuple(m[i].decode().split(" ", 1)) for i in range(len(m))],
                              ignore_merges=ignore))
    hf.pre_tokenizer = pre
    hf.add_tokens([AddedToken(ours.token_text(i), special=ours.types[i] == T.T_CONTROL, normalized=False)
                   for i in range(ours.n_vocab) if ours.types[i] in (T.T_CONTROL, T.T_USER)])
    texts = _random_texts(2000) + ["".join(corpus[:2])[:100_000]]
    theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [(t, a, b) for t, a, b in zip(texts, ours.encode_batch(texts), theirs) if a != b]
    assert not bad, f"{len(bad)} differ, first: {bad[0]!r}"


def test_tokenizer_config_names_special_tokens(smol, hf, tmp_path):
    import json

    hf.save(str(tmp_path / "tokenizer.json"))
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["added_tokens"] = []  # only tokenizer_config.json says which tokens are special
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "add_bos_token": True}))
    t = T.load(tmp_path)
    im_end = smol.token_to_id("<|im_end|>")
    assert t.eos_id == im_end and t.bos_id == smol.token_to_id("<|im_start|>") and t.add_bos
    assert t.encode("hi<|im_end|>", parse_special=True) == smol.encode("hi") + [im_end]
    assert t.encode("hi", add_special=True) == [t.bos_id] + smol.encode("hi")
    assert im_end in t.eog_ids
