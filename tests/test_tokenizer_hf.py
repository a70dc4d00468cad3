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

tokenizers = pytest.importorskip("tokenizers")
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
