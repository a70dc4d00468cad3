"""ckc.train.data: corpus tokenization, eval split, deterministic resumable batches; schedule."""

import math

import numpy as np
import pytest

from ckc.train.data import BatchLoader, Corpus, DataError, eval_batches, read_texts
from ckc.train.schedule import lr_at


class ByteTok:
    """A stand-in with the ckc.tokenizer interface the corpus uses (bytes as ids)."""

    eos_id = 0

    def encode_np(self, text):
        return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)

    def __len__(self):
        return 256


def test_corpus_joins_documents_with_eos_and_holds_back_the_tail():
    c = Corpus.from_texts(["ab", ("doc2", "cde")], ByteTok(), eval_fraction=0.5)
    stream = np.concatenate([c.train, c.eval])
    assert stream.tolist() == [97, 98, 0, 99, 100, 101]
    assert len(c.eval) == 3 and c.eval.tolist() == [99, 100, 101]
    assert c.vocab_size == 256


def test_corpus_with_the_real_tokenizer():
    from ckc import modelzoo, tokenizer

    tok = tokenizer.load(modelzoo.gguf_file("llama"))
    text = "To be, or not to be, that is the question."
    c = Corpus.from_texts([text, text], tok, eval_fraction=0.0)
    ids = tok.encode(text)
    assert c.train.tolist() == ids + [tok.eos_id] + ids
    assert tok.decode(c.train[: len(ids)].tolist()) == text


def test_corpus_rejects_bad_ids_and_empty_text():
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        Corpus.from_tokens([1, 2, 10], 10)
    with pytest.raises(DataError, match="empty"):
        Corpus.from_texts([""], type("T", (ByteTok,), {"eos_id": None})())


def test_batches_are_shifted_windows_and_deterministic():
    stream = np.arange(1000, dtype=np.int32)
    a = BatchLoader(stream, batch=4, context=16, seed=3)
    b = BatchLoader(stream, batch=4, context=16, seed=3)
    for _ in range(5):
        (x, y), (x2, y2) = a.next(), b.next()
        assert x.shape == y.shape == (4, 16) and x.dtype == np.int32
        assert np.array_equal(x, x2) and np.array_equal(y, y2)
        assert np.array_equal(y[:, :-1], x[:, 1:]) and np.array_equal(y[:, -1], x[:, -1] + 1)
        assert x.max() + 1 <= stream[-1]
    c = BatchLoader(stream, batch=4, context=16, seed=4)
    assert not np.array_equal(c.next()[0], BatchLoader(stream, 4, 16, 3).next()[0])


def test_restore_continues_the_same_sequence():
    stream = np.random.default_rng(0).integers(0, 50, 5000).astype(np.int32)
    full = BatchLoader(stream, 3, 8, seed=11)
    ref = [full.next() for _ in range(12)]
    first = BatchLoader(stream, 3, 8, seed=11)
    for _ in range(5):
        first.next()
    import json

    state = json.loads(json.dumps(first.state()))  # what a checkpoint stores
    resumed = BatchLoader(stream, 3, 8, seed=11)
    resumed.restore(state)
    assert resumed.position == 5
    for i in range(5, 12):
        x, y = resumed.next()
        assert np.array_equal(x, ref[i][0]) and np.array_equal(y, ref[i][1])
    skipped = BatchLoader(stream, 3, 8, seed=11)
    skipped.skip_to(7)
    assert np.array_equal(skipped.next()[0], ref[7][0])
    with pytest.raises(DataError, match="batch is 3"):
        BatchLoader(stream, 4, 8, seed=11).restore(state)


def test_short_text_and_eval_batches():
    with pytest.raises(DataError, match="context 64"):
        BatchLoader(np.arange(50, dtype=np.int32), 2, 64, 0)
    ev = eval_batches(np.arange(100, dtype=np.int32), batch=2, context=10, max_batches=10)
    assert len(ev) == 4  # 9 whole windows of 10 (+1 target) -> 4 batches of 2
    x, y = ev[1]
    assert x[0].tolist() == list(range(20, 30)) and y[1].tolist() == list(range(31, 41))


def test_read_texts(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    assert read_texts(tmp_path) == [("a.txt", "first"), ("b.txt", "second")]
    assert read_texts(tmp_path / "b.txt") == [("b.txt", "second")]
    with pytest.raises(DataError, match="no such file"):
        read_texts(tmp_path / "missing.txt")


def test_warmup_cosine_schedule():
    kw = dict(lr=1e-3, warmup=10, total=110)
    assert lr_at(0, **kw) == pytest.approx(1e-4)
    assert lr_at(9, **kw) == pytest.approx(1e-3)
    assert lr_at(10, **kw) == pytest.approx(1e-3)
    assert lr_at(60, **kw) == pytest.approx(1e-4 + 0.9e-3 * 0.5)       # half way: mid point
    assert lr_at(110, **kw) == pytest.approx(1e-4) and lr_at(500, **kw) == pytest.approx(1e-4)
    lrs = [lr_at(s, **kw) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lr_at(0, lr=1.0, warmup=0, total=4, min_lr=0.0) == 1.0
    assert lr_at(2, lr=1.0, warmup=0, total=4, min_lr=0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_token_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CKC_CACHE", str(tmp_path))
    tok = ByteTok()
    a = Corpus.from_texts(["hello", "world"], tok, 0.2, cache_key="bytes-v1")
    files = list((tmp_path / "train-data").glob("*.npy"))
    assert len(files) == 1
    calls = []
    tok.encode_np = lambda text: calls.append(text)  # a cache hit never tokenizes
    b = Corpus.from_texts(["hello", "world"], tok, 0.2, cache_key="bytes-v1")
    assert calls == [] and np.array_equal(a.train, b.train) and np.array_equal(a.eval, b.eval)
    with pytest.raises(TypeError):  # other texts miss the cache and tokenize (with the broken stub)
        Corpus.from_texts(["hello", "there"], tok, 0.2, cache_key="bytes-v1")
