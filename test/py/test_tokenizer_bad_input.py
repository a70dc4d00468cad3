"""Odd input to the tokenizer: no crash, and the documented behaviour.

  * invalid UTF-8 bytes: each invalid byte is encoded through the byte tokens;
    decode_bytes gives the same bytes back, decode() shows U+FFFD for them;
  * empty input: no ids (BOS/EOS only with add_special);
  * a 10 MB single line: encoded in one call, lossless;
  * text that looks like special tokens: plain text unless parse_special;
  * streaming decode holds back a partial UTF-8 character.
"""

import time

import pytest

from ckc import tokenizer as T
from ckc.assets import llama_cpp_vocab_dir
from ckc.tokenizer.cli import tokenize_main

VOCAB = llama_cpp_vocab_dir()
KINDS = ["gpt-2", "llama-bpe", "llama-spm", "gemma-4"]  # byte-level BPE x2, SPM, raw BPE
_cache = {}


def tok(name):
    if name not in _cache:
        _cache[name] = T.from_gguf(VOCAB / f"ggml-vocab-{name}.gguf")
    return _cache[name]


BAD = [b"\xff", b"abc\x80def", b"\xc3", b"\xe2\x82", b"ok \xf0\x9f\x98", b"\xed\xa0\x80 surrogate",
       b"\xc0\xaf overlong", b"\xf5\x80\x80\x80", b"\x00\x01\x02 nul", "caf\u00e9 \udc80".encode("utf-8", "surrogatepass")]


@pytest.mark.parametrize("name", KINDS)
def test_invalid_utf8_round_trips(name):
    t = tok(name)
    for b in BAD:
        ids = t.encode(b)
        assert ids and all(0 <= i < t.n_vocab for i in ids)
        assert t.decode_bytes(ids) == b, (b, ids)
        assert t.decode(ids) == b.decode("utf-8", "replace")


@pytest.mark.parametrize("name", KINDS)
def test_lone_surrogate_str(name):
    t = tok(name)
    ids = t.encode("a\udc80b")
    assert t.decode_bytes(ids) == "a\udc80b".encode("utf-8", "surrogatepass")


def test_invalid_byte_is_its_own_byte_token():
    t = tok("gpt-2")
    assert t.encode(b"\xff") == [t.encode(b"\xff")[0]] and t.piece(t.encode(b"\xff")[0]) == b"\xff"
    assert tok("llama-spm").encode(b"\xff")[-1] == tok("llama-spm").token_to_id("<0xFF>")


@pytest.mark.parametrize("name", KINDS)
def test_empty_input(name):
    t = tok(name)
    assert t.encode("") == [] and t.encode(b"") == []
    assert t.decode([]) == ""
    special = t.encode("", add_special=True)
    assert special == ([t.bos_id] if t.add_bos else []) + ([t.eos_id] if t.add_eos else [])


@pytest.mark.parametrize("name", ["gpt-2", "llama-spm"])
def test_ten_megabyte_single_line(name):
    t = tok(name)
    line = ("All the world's a stage, and all the men and women merely players; " * 150_000)[:10_000_000]
    assert "\n" not in line
    t0 = time.process_time()
    ids = t.encode_np(line)
    assert time.process_time() - t0 < 60
    assert 1_000_000 < len(ids) < 5_000_000
    assert t.decode(ids) == line


def test_two_megabyte_single_word():
    # one pre-tokenizer piece of 2 MB: the heap BPE path, no quadratic blow-up
    t = tok("gpt-2")
    word = "ab" * 1_000_000
    t0 = time.process_time()
    ids = t.encode_np(word)
    assert time.process_time() - t0 < 60
    assert t.decode(ids) == word


def test_text_that_looks_like_special_tokens():
    t = tok("gpt-2")
    eot = t.token_to_id("<|endoftext|>")
    plain = t.encode("a<|endoftext|>b")
    assert eot not in plain and t.decode(plain) == "a<|endoftext|>b"
    parsed = t.encode("a<|endoftext|>b", parse_special=True)
    assert parsed == t.encode("a") + [eot] + t.encode("b")
    assert t.decode(parsed) == "a<|endoftext|>b"
    assert t.decode(parsed, skip_special=True) == "ab"
    # half a special token, or two glued together
    assert eot not in t.encode("<|endoftext|", parse_special=True)
    assert t.encode("<|endoftext|><|endoftext|>", parse_special=True) == [eot, eot]

    spm = tok("llama-spm")
    assert spm.bos_id not in spm.encode("<s>hi</s>")
    assert spm.encode("<s>hi", parse_special=True)[0] == spm.bos_id
    assert spm.decode(spm.encode("<s>hi</s> x", parse_special=True)) == "<s>hi</s> x"


def test_user_defined_tokens_always_match():
    # deepseek-coder's added tokens (e.g. 'õ' = 32000) are user-defined: matched whole
    # even without parse_special, as HF tokenizers and llama.cpp do
    t = T.from_gguf(VOCAB / "ggml-vocab-deepseek-coder.gguf")
    assert t.encode("õ") == [32000]


def test_stream_decode_holds_back_partial_utf8():
    t = tok("llama-spm")
    ids = t.encode("a 🦙 b")
    assert sum(1 for i in ids if t.token_text(i).startswith("<0x")) == 4  # the llama is 4 byte tokens
    s = t.stream()
    parts = [s.feed(i) for i in ids] + [s.flush()]
    assert "".join(parts) == "a 🦙 b"
    assert all("\ufffd" not in p for p in parts)
    assert "🦙" in parts  # emitted whole, once its last byte arrived
    # an id stream that ends inside a character: flush gives U+FFFD, no exception
    s = t.stream()
    assert s.feed(t.token_to_id("<0xF0>")) == "" and s.flush() == "\ufffd"


def test_stream_decode_byte_level():
    t = tok("gpt-2")
    text = "naïve 😶‍🌫️ café"
    s = t.stream()
    assert "".join([s.feed(i) for i in t.encode(text)] + [s.flush()]) == text


def test_decode_ignores_out_of_range_ids():
    t = tok("gpt-2")
    assert t.decode([-1, t.n_vocab, 10 ** 9] + t.encode("x")) == "x"


def test_bad_files(tmp_path):
    with pytest.raises(T.TokenizerError, match="no such file"):
        T.load(tmp_path / "missing.gguf")
    src = (VOCAB / "ggml-vocab-gpt-2.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(src[:len(src) // 3])
    with pytest.raises(T.TokenizerError, match="truncated"):
        T.load(cut)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 40)
    with pytest.raises(T.TokenizerError):
        T.load(junk)
    notgguf = tmp_path / "x.bin"
    notgguf.write_bytes(b"hello")
    with pytest.raises(T.TokenizerError, match="neither"):
        T.load(notgguf)
    badjson = tmp_path / "tokenizer.json"
    badjson.write_text("{not json")
    with pytest.raises(T.TokenizerError, match="cannot read"):
        T.load(tmp_path)


def test_encode_rejects_non_text():
    with pytest.raises(TypeError):
        tok("gpt-2").encode(123)


def test_cli_tokenize(capsys):
    assert tokenize_main([str(VOCAB / "ggml-vocab-llama-bpe.gguf"), "Hello world"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "9906" in out[0] and "'Hello'" in out[0] and "b' world'" in out[1]
    assert tokenize_main([str(VOCAB / "ggml-vocab-llama-bpe.gguf"), "Hello world", "--ids-only",
                          "--add-special"]) == 0
    assert capsys.readouterr().out.strip() == "128000 9906 1917"
    assert tokenize_main([str(VOCAB / "ggml-vocab-bert-bge.gguf"), "x"]) == 1
    assert "WordPiece" in capsys.readouterr().err


@pytest.mark.parametrize("name", KINDS)
def test_random_bytes_never_crash(name):
    import random

    t = tok(name)
    rng = random.Random(11)
    alphabet = bytes(range(256))
    samples = [bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    # plus valid text glued to garbage, and special-token look-alikes cut in half
    samples += [b"<|endoftext|"[:k] + b"\xff\xfe" + "тест ▁ 🦙".encode()[:k] for k in range(12)]
    for parse in (False, True):
        for ids, b in zip(t.encode_batch(samples, parse_special=parse), samples):
            assert all(0 <= i < t.n_vocab for i in ids)
            if not parse:
                assert t.decode_bytes(ids) == b.replace("▁".encode(), b" ") if t.flags & (T.F_SPM | T.F_ESCAPE_WS) \
                    else t.decode_bytes(ids) == b
