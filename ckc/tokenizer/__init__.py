"""ckc's tokenizer: a C core (ctok.c) behind a small ctypes binding.

    tok = ckc.tokenizer.load("model.gguf")          # or tokenizer.json, or its folder
    ids = tok.encode("Hello world")                 # list[int]; add_special=True adds BOS/EOS
    text = tok.decode(ids)
    stream = tok.stream(); parts = [stream.feed(i) for i in ids] + [stream.flush()]

Supported models: GGUF ``tokenizer.ggml.model`` "gpt2" (byte-level BPE with the
pre-tokenizer llama.cpp names in ``tokenizer.ggml.pre``, see PRE_TOKENIZERS),
"llama" (SentencePiece BPE: scores, byte fallback, U+2581, dummy prefix) and
"gemma4" (BPE over raw UTF-8 with U+2581 and byte fallback); tokenizer.json
files with a BPE model and a ByteLevel / Digits / Split(known regex) pre-tokenizer
or a Metaspace-style normalizer. WordPiece (BERT), Unigram (T5), RWKV and
PLaMo-2 vocabularies are rejected with a TokenizerError naming the model type.

Behaviour on odd input (tested in test/py/test_tokenizer_bad_input.py):
  * invalid UTF-8 (bytes input) or lone surrogates (str input, passed as
    surrogatepass bytes): every invalid byte is its own symbol of no Unicode
    category and is encoded through the byte tokens, so decode_bytes(encode(x))
    gives back the same bytes; decode() returns str with U+FFFD for them;
  * empty input: [] (or just BOS/EOS with add_special=True);
  * one 10 MB line: encoded in one pass (memory ~ 40 bytes per character);
  * text that looks like special tokens ("<|endoftext|>", "<s>"): plain text
    unless parse_special=True; user-defined added tokens are always matched
    whole (as HF tokenizers and llama.cpp do). Matching is leftmost-longest;
  * SentencePiece-style models (llama, gemma4) encode ' ' as U+2581, so a
    literal U+2581 in the text decodes back as ' ' (as with HF and llama.cpp).
"""

from __future__ import annotations

import ctypes
import json
from array import array
import mmap
import os
import threading
import unicodedata
from pathlib import Path

import numpy as np
from gguf import GGUFValueType

from ckc.build import ROOT, cache_dir, compile_shared
from ckc.tokenizer.gen_unicode import ensure_table

__all__ = ["Tokenizer", "TokenizerError", "StreamDecoder", "load", "PRE_TOKENIZERS"]


class TokenizerError(ValueError):
    """A vocabulary ckc cannot load; the message names the file and the reason."""

    def __init__(self, message: str):
        from ckc.errors import one_line

        super().__init__(one_line(message))


# ---------------------------------------------------------------- C library

_HERE = Path(__file__).resolve().parent
_lib_cache = None
_lib_lock = threading.Lock()

# flags (ctok.c)
F_SPM, F_BYTE_LEVEL, F_ESCAPE_WS, F_SPACE_PREFIX = 1, 2, 4, 8
F_BYTE_FALLBACK, F_IGNORE_MERGES, F_NL_WORDS = 16, 32, 64
T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER, T_UNUSED, T_BYTE = 1, 2, 3, 4, 5, 6
A_LSTRIP, A_RSTRIP = 1, 2


def library() -> ctypes.CDLL:
    """The compiled tokenizer core (built once per source hash)."""
    global _lib_cache
    with _lib_lock:
        if _lib_cache is None:
            table = ensure_table(cache_dir("gen", "tokenizer"))
            so = compile_shared("ctok", [_HERE / "ctok.c", table], flags=["-O3", "-std=gnu11"])
            lib = ctypes.CDLL(str(so))
            P, I64, I32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
            sig = {
                "ctok_new": (P, [I32, ctypes.c_int, P, P, P, P, P, P]),
                "ctok_free": (None, [P]),
                "ctok_error": (ctypes.c_char_p, [P]),
                "ctok_set_special": (None, [P, I32, I32, I32, ctypes.c_int, ctypes.c_int]),
                "ctok_set_merges": (I64, [P, I64, P, P, P]),
                "ctok_set_pretok": (ctypes.c_int, [P, P, I32]),
                "ctok_build_specials": (ctypes.c_int, [P]),
                "ctok_encode": (I64, [P, ctypes.c_char_p, I64, ctypes.c_int, ctypes.c_int]),
                "ctok_ids": (None, [P, P]),
                "ctok_decode": (I64, [P, P, I64, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
                "ctok_decoded": (P, [P]),
                "ctok_token_text": (I64, [P, I32, ctypes.POINTER(ctypes.c_void_p)]),
                "ctok_piece": (I64, [P, I32, ctypes.POINTER(ctypes.c_void_p)]),
                "ctok_lookup": (I32, [P, ctypes.c_char_p, I64]),
                "ctok_utf8_ready": (I64, [ctypes.c_char_p, I64]),
                "ctok_gguf_strings": (I64, [P, I64, I64, I64, P, P]),
                "ctok_spm_split": (ctypes.c_int, [P, ctypes.c_int]),
                "ctok_ids_ptr": (P, [P]),
                "ctok_encode_batch": (I64, [P, P, P, P, I64, ctypes.c_int, ctypes.c_int, P]),
            }
            for name, (res, args) in sig.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _lib_cache = lib
        return _lib_cache


# ------------------------------------------------------------ pre-tokenizers

PT_GPT2, PT_LLAMA3, PT_CLASS, PT_WS_END, PT_NEWLINES = 1, 2, 3, 4, 5
_CAT = {"L": 1, "N": 2, "P": 4, "S": 8, "M": 16}


def _stage(kind, ndig=0, marks=0, ws=0, neg=0, lo=0, hi=0, cats=0, ranges=()):
    flat = [c for r in ranges for c in r]
    return [kind, ndig, marks, ws, neg, lo, hi, cats, len(ranges), *flat]


def _class(pattern: str) -> list[int]:
    r"""A stage for one character-class regex: \s?  then [..] or \p{X}, then +, {n} or nothing."""
    s, ws = pattern, 0
    if s.startswith(r"\s?"):
        ws, s = 1, s[3:]
    cats, ranges, neg = 0, [], 0
    if s.startswith(r"\p{"):
        end = s.index("}")
        cats, s = _CAT[s[3:end]], s[end + 1:]
    else:
        assert s[0] == "["
        i = 1
        if s[i] == "^":
            neg, i = 1, 2
        chars = []
        while s[i] != "]":
            if s.startswith(r"\p{", i):
                end = s.index("}", i)
                cats |= _CAT[s[i + 3:end]]
                i = end + 1
                continue
            c = s[i]
            if c == "\\":
                c = {"r": "\r", "n": "\n", "t": "\t"}.get(s[i + 1], s[i + 1])
                i += 1
            i += 1
            if s[i] == "-" and s[i + 1] != "]":
                hi = s[i + 1]
                if hi == "\\":
                    hi = s[i + 2]
                    i += 1
                ranges.append((ord(c), ord(hi)))
                i += 2
            else:
                chars.append(ord(c))
        ranges += [(c, c) for c in chars]
        s = s[i + 1:]
    lo, hi = 1, 1
    if s == "+":
        lo, hi = 1, 0
    elif s.startswith("{"):
        a, _, b = s[1:-1].partition(",")
        lo, hi = int(a), int(b or a)
    else:
        assert s == "", pattern
    return _stage(PT_CLASS, ws=ws, neg=neg, lo=lo, hi=hi, cats=cats, ranges=ranges)


_GPT2 = _stage(PT_GPT2)
_CJK = "[一-龥ࠀ-一가-퟿]+"

# Pre-tokenizer stages per llama.cpp pre-tokenizer type (the regexes of
# llama.cpp's src/llama-vocab.cpp, applied in order; each stage re-splits the
# pieces of the one before and keeps unmatched text as pieces).
PRE_STAGES = {
    "gpt2": [_GPT2],
    "starcoder": [_class(r"\p{N}"), _GPT2],
    "llama3": [_stage(PT_LLAMA3, ndig=3)],
    "qwen2": [_stage(PT_LLAMA3, ndig=1)],
    "qwen35": [_stage(PT_LLAMA3, ndig=1, marks=1)],
    "deepseek-coder": [_class(r"[\r\n]"), _class(r"\s?\p{L}+"), _class(r"\s?\p{P}+"), _class(_CJK), _class(r"\p{N}")],
    "deepseek-llm": [_class(r"[\r\n]"),
                     _class(r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"),
                     _class(r"\s?[!-/:-~！-／：-～‘-‟　-。]+"),
                     _stage(PT_WS_END), _class(_CJK), _class(r"\p{N}+")],
    "falcon": [_class(r"[\p{P}\$\+<=>\^~\|`]+"), _GPT2, _class("[0-9]{3}")],
    "default": [_class(r"[\p{P}\$\+<=>\^~\|]+"), _GPT2, _class(r"\p{N}+"), _class("[0-9]{3}")],
    "newlines": [_stage(PT_NEWLINES)],
}

# GGUF tokenizer.ggml.pre -> (stages, ignore_merges, add_bos default)
PRE_TOKENIZERS = {}
for _names, _st, _im, _bos in [
    ("gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert "
     "jina-v1-en jina-v2-code roberta-bpe mpt olmo jais trillion granite-docling exaone4", "gpt2", False, False),
    ("starcoder refact command-r smollm codeshell exaone minerva-7b mellum2", "starcoder", False, False),
    ("llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano", "llama3", True, True),
    ("dbrx smaug-bpe chatglm-bpe", "llama3", False, False),
    ("glm4 glm5", "llama3", True, False),
    ("qwen2 deepseek-r1-qwen kormo f2llmv2 stablelm2 megrez hunyuan grok-2 solar-open", "qwen2", False, False),
    ("qwen35", "qwen35", False, False),
    ("deepseek-coder", "deepseek-coder", False, False),
    ("deepseek-llm", "deepseek-llm", False, False),
    ("falcon", "falcon", False, False),
    ("default", "default", False, False),
]:
    for _n in _names.split():
        PRE_TOKENIZERS[_n] = (_st, _im, _bos)

# tokenizer.json Split regexes ckc recognises -> stages
_GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_SPLIT_RES = {
    _GPT2_RE: [_GPT2],
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)": [_GPT2],
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": PRE_STAGES["llama3"],
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": PRE_STAGES["qwen2"],
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": PRE_STAGES["qwen35"],
    r"[\r\n]": [_class(r"[\r\n]")],
    r"\s?\p{L}+": [_class(r"\s?\p{L}+")],
    r"\s?\p{P}+": [_class(r"\s?\p{P}+")],
    _CJK: [_class(_CJK)],
    r"\p{N}": [_class(r"\p{N}")],
    r"\p{N}+": [_class(r"\p{N}+")],
    r"\p{N}{1,3}": [_class(r"\p{N}{1,3}")],
    r"\s+$": [_stage(PT_WS_END)],
}

EOG_TEXTS = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
             "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
             "<eos>", "<turn|>", "<｜end▁of▁sentence｜>"}


# ------------------------------------------------------------- GGUF metadata

# numpy dtypes of GGUF array element types (gguf.GGUFValueType)
_V = GGUFValueType
_GGUF_NP = {int(k): v for k, v in {
    _V.UINT8: np.uint8, _V.INT8: np.int8, _V.UINT16: np.uint16, _V.INT16: np.int16, _V.UINT32: np.uint32,
    _V.INT32: np.int32, _V.FLOAT32: np.float32, _V.BOOL: np.bool_, _V.UINT64: np.uint64, _V.INT64: np.int64,
    _V.FLOAT64: np.float64}.items()}


class _Strings:
    """A GGUF string array kept as (start, length) into the mapped file."""

    def __init__(self, data, start, length):
        self.data, self.start, self.length = data, start, length

    def __len__(self):
        return len(self.start)

    def __getitem__(self, i) -> bytes:
        s = int(self.start[i])
        return bytes(self.data[s:s + int(self.length[i])])


def read_gguf_metadata(path) -> dict:
    """The key/value metadata of a GGUF file (tensors are not read).

    The importer's header reader (ckc.importers.gguf.read_metadata: the same
    checks and messages) with arrays kept in the mapped file: numbers as numpy
    views, strings as (start, length) split by C. gguf.GGUFReader is not used:
    it builds numpy views for every tensor and every string and took 84 s
    (llama-bpe, 128k tokens + 280k merges) and 147 s (gemma-4, 262k + 515k) on
    this machine, against well under 1 s here.
    """
    from ckc.importers.common import ModelImportError
    from ckc.importers.gguf import read_metadata

    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise TokenizerError(f"{path}: cannot open: {e.strerror}") from None
    with f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise TokenizerError(f"{path}: empty file, expected a GGUF model") from None
    data = np.frombuffer(mm, dtype=np.uint8)
    lib = library()

    def array(cur, key, et, count):
        # read_metadata has checked the element type and that count of them fit
        if et in _GGUF_NP:
            val = np.frombuffer(mm, dtype=_GGUF_NP[et], count=count, offset=cur.pos)
            cur.pos += val.nbytes
            return val
        start = np.empty(count, np.int64)
        length = np.empty(count, np.int64)
        end = lib.ctok_gguf_strings(data.ctypes.data, len(data), cur.pos, count,
                                    start.ctypes.data, length.ctypes.data)
        if end < 0:
            raise TokenizerError(f"{path}: truncated GGUF metadata (string array {key})")
        cur.pos = end
        return _Strings(data, start, length)

    try:
        return read_metadata(path, data, array)
    except ModelImportError as e:
        raise TokenizerError(str(e)) from None


# ----------------------------------------------------------------- tokenizer

def _blob(items: list[bytes]):
    lens = np.fromiter((len(b) for b in items), dtype=np.int64, count=len(items))
    starts = np.zeros(len(items), np.int64)
    if len(items) > 1:
        np.cumsum(lens[:-1], out=starts[1:])
    return b"".join(items), starts, lens


class Tokenizer:
    """One vocabulary with its model and pre-tokenizer (see the module docstring)."""

    def __init__(self, *, tokens, types=None, scores=None, attrs=None, merges=None, flags=0,
                 stages=(), bos=-1, eos=-1, unk=-1, add_bos=False, add_eos=False,
                 name="", nfc=False):
        lib = self._lib = library()
        self._lock = threading.Lock()
        n = len(tokens)
        if isinstance(tokens, _Strings):
            base, starts, lens = tokens.data, tokens.start, tokens.length
            base_ptr = base.ctypes.data
        else:
            blob, starts, lens = _blob([t if isinstance(t, bytes) else t.encode() for t in tokens])
            base = ctypes.create_string_buffer(blob, len(blob) + 1)
            base_ptr = ctypes.addressof(base)
        types = None if types is None else np.ascontiguousarray(types, np.int32)
        scores = None if scores is None else np.ascontiguousarray(scores, np.float32)
        attrs = None if attrs is None else np.ascontiguousarray(attrs, np.uint8)
        ptr = lambda a: None if a is None else a.ctypes.data  # noqa: E731
        self._h = lib.ctok_new(n, flags, base_ptr, ptr(starts), ptr(lens), ptr(types), ptr(scores), ptr(attrs))
        if not self._h:
            raise TokenizerError(f"{name}: out of memory building the vocabulary")
        self._free = lib.ctok_free
        if merges is not None and len(merges):
            if isinstance(merges, _Strings):
                mptr, ms, ml = merges.data.ctypes.data, merges.start, merges.length
                keep = merges.data
            else:
                mblob, ms, ml = _blob([m if isinstance(m, bytes) else m.encode() for m in merges])
                keep = ctypes.create_string_buffer(mblob, len(mblob) + 1)
                mptr = ctypes.addressof(keep)
            self.n_merges = lib.ctok_set_merges(self._h, len(merges), mptr, ms.ctypes.data, ml.ctypes.data)
            del keep
            if self.n_merges < 0:
                raise TokenizerError(f"{name}: {lib.ctok_error(self._h).decode()}")
        else:
            self.n_merges = 0
        spec = np.array([v for st in stages for v in st], dtype=np.int32)
        if lib.ctok_set_pretok(self._h, spec.ctypes.data, len(spec)) != 0:
            raise TokenizerError(f"{name}: {lib.ctok_error(self._h).decode()}")
        if lib.ctok_build_specials(self._h) != 0:
            raise TokenizerError(f"{name}: out of memory")
        lib.ctok_set_special(self._h, bos, eos, unk, int(add_bos), int(add_eos))
        self._enc, self._ids_ptr = lib.ctok_encode, lib.ctok_ids_ptr
        self.n_vocab = n
        self.flags = flags
        self.name = name
        self.nfc = nfc
        self.bos_id = bos if 0 <= bos < n else None
        self.eos_id = eos if 0 <= eos < n else None
        self.unk_id = unk if 0 <= unk < n else None
        self.add_bos = bool(add_bos and self.bos_id is not None)
        self.add_eos = bool(add_eos and self.eos_id is not None)
        self.types = np.ones(n, np.int32) if types is None else types.copy()
        self.eog_ids = {i for i in range(n) if self.types[i] in (T_CONTROL, T_USER)
                        and self.token_text(i) in EOG_TEXTS}
        if self.eos_id is not None:
            self.eog_ids.add(self.eos_id)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            self._free(h)
            self._h = None

    # -- encoding
    def _bytes(self, text) -> bytes:
        if isinstance(text, str):
            if self.nfc:
                text = unicodedata.normalize("NFC", text)
            return text.encode("utf-8", "surrogatepass")
        if isinstance(text, (bytes, bytearray, memoryview)):
            return bytes(text)
        raise TypeError(f"encode() takes str or bytes, not {type(text).__name__}")

    def _encode_raw(self, text, add_special, parse_special) -> bytes:
        """The ids of one text as native int32 bytes."""
        if type(text) is str:
            data = (unicodedata.normalize("NFC", text) if self.nfc else text).encode("utf-8", "surrogatepass")
        else:
            data = self._bytes(text)
        with self._lock:
            n = self._enc(self._h, data, len(data), 1 if add_special else 0, 1 if parse_special else 0)
            if n < 0:
                raise TokenizerError(f"{self.name}: {self._lib.ctok_error(self._h).decode()}")
            return ctypes.string_at(self._ids_ptr(self._h), 4 * n) if n else b""

    def encode_np(self, text, add_special: bool = False, parse_special: bool = False) -> np.ndarray:
        """Token ids as an int32 array. add_special: BOS/EOS as the model asks;
        parse_special: control tokens written in the text become their ids."""
        return np.frombuffer(self._encode_raw(text, add_special, parse_special), np.int32).copy()

    def encode(self, text, add_special: bool = False, parse_special: bool = False) -> list[int]:
        """Token ids as a list (see encode_np)."""
        a = array("i")
        a.frombytes(self._encode_raw(text, add_special, parse_special))
        return a.tolist()

    __call__ = encode

    def encode_batch(self, texts, add_special: bool = False, parse_special: bool = False) -> list[list[int]]:
        """encode() of each text, in one call into C (one thread)."""
        items = [self._bytes(t) for t in texts]
        if not items:
            return []
        blob, starts, lens = _blob(items)
        counts = np.empty(len(items), np.int64)
        with self._lock:
            n = self._lib.ctok_encode_batch(self._h, blob, starts.ctypes.data, lens.ctypes.data, len(items),
                                            int(add_special), int(parse_special), counts.ctypes.data)
            if n < 0:
                raise TokenizerError(f"{self.name}: {self._lib.ctok_error(self._h).decode()}")
            raw = ctypes.string_at(self._ids_ptr(self._h), 4 * n) if n else b""
        a = array("i")
        a.frombytes(raw)
        flat = a.tolist()
        out, k = [], 0
        for c in counts.tolist():
            out.append(flat[k:k + c])
            k += c
        return out

    # -- decoding
    def _decode(self, ids, skip_special, state):
        arr = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).astype(np.int32, copy=False))
        with self._lock:
            n = self._lib.ctok_decode(self._h, arr.ctypes.data, len(arr), int(skip_special), state)
            if n < 0:
                raise TokenizerError(f"{self.name}: {self._lib.ctok_error(self._h).decode()}")
            return ctypes.string_at(self._lib.ctok_decoded(self._h), n) if n else b""

    def decode_bytes(self, ids, skip_special: bool = False) -> bytes:
        """The exact bytes the ids spell (control tokens dropped with skip_special)."""
        return self._decode(ids, skip_special, ctypes.byref(ctypes.c_int(1)))

    def decode(self, ids, skip_special: bool = False) -> str:
        return self.decode_bytes(ids, skip_special).decode("utf-8", "replace")

    def stream(self, skip_special: bool = False) -> "StreamDecoder":
        return StreamDecoder(self, skip_special)

    # -- vocabulary
    def token_text(self, i: int) -> str:
        """The token as written in the vocabulary (e.g. 'Ġworld', '▁world', '<0x0A>')."""
        p = ctypes.c_void_p()
        n = self._lib.ctok_token_text(self._h, int(i), ctypes.byref(p))
        return ctypes.string_at(p, n).decode("utf-8", "replace") if n else ""

    def piece(self, i: int) -> bytes:
        """The bytes token i decodes to."""
        p = ctypes.c_void_p()
        n = self._lib.ctok_piece(self._h, int(i), ctypes.byref(p))
        return ctypes.string_at(p, n) if n else b""

    def token_to_id(self, text: str):
        b = text.encode()
        i = self._lib.ctok_lookup(self._h, b, len(b))
        return None if i < 0 else i

    def __len__(self):
        return self.n_vocab

    def __repr__(self):
        kind = "spm" if self.flags & F_SPM else "bpe"
        return f"<Tokenizer {self.name!r} {kind} n_vocab={self.n_vocab}>"


class StreamDecoder:
    """Incremental decode: feed ids one at a time, get text as soon as it is whole.

    Bytes of a UTF-8 character split across tokens are held back until the
    character completes; bytes that can never form a character come out as
    U+FFFD. flush() returns whatever is left.
    """

    def __init__(self, tok: Tokenizer, skip_special: bool = False):
        self.tok, self.skip_special = tok, skip_special
        self._state = ctypes.c_int(1)
        self._pending = b""

    def feed(self, token_id) -> str:
        ids = [token_id] if np.isscalar(token_id) else token_id
        self._pending += self.tok._decode(ids, self.skip_special, ctypes.byref(self._state))
        ready = self.tok._lib.ctok_utf8_ready(self._pending, len(self._pending))
        out, self._pending = self._pending[:ready], self._pending[ready:]
        return out.decode("utf-8", "replace")

    def flush(self) -> str:
        out, self._pending = self._pending, b""
        return out.decode("utf-8", "replace")


# ------------------------------------------------------------------ loaders

def _scalar(meta, key, default=None):
    v = meta.get(key, default)
    if isinstance(v, np.ndarray) or isinstance(v, _Strings):
        return default
    return v


def from_gguf(path) -> Tokenizer:
    """The tokenizer stored in a GGUF file's tokenizer.ggml.* metadata."""
    path = Path(path)
    meta = read_gguf_metadata(path)
    model = _scalar(meta, "tokenizer.ggml.model")
    if model is None:
        raise TokenizerError(f"{path}: no tokenizer.ggml.model key (a GGUF without a vocabulary)")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, _Strings) or len(tokens) == 0:
        raise TokenizerError(f"{path}: tokenizer.ggml.tokens missing or not a string array")
    n = len(tokens)
    types = meta.get("tokenizer.ggml.token_type")
    if types is not None:
        if not isinstance(types, np.ndarray) or len(types) < n:
            raise TokenizerError(f"{path}: tokenizer.ggml.token_type has {len(types)} entries, expected {n}")
        types = types[:n]
    scores = meta.get("tokenizer.ggml.scores")
    if scores is not None:
        if not isinstance(scores, np.ndarray) or len(scores) < n:
            raise TokenizerError(f"{path}: tokenizer.ggml.scores has {len(scores)} entries, expected {n}")
        scores = scores[:n].astype(np.float32)
    merges = meta.get("tokenizer.ggml.merges")
    pre = _scalar(meta, "tokenizer.ggml.pre", "") or ""
    name = f"{path.name}"

    def ident(key, default):
        v = _scalar(meta, key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and 0 <= v < n  # not NaN
        return int(v) if ok else default

    flags, stages, add_bos, add_eos = 0, [], False, False
    if model == "gpt2":
        if merges is None:
            raise TokenizerError(f"{path}: tokenizer.ggml.merges missing for a BPE (gpt2) vocabulary")
        pre_name = pre or "default"
        if pre_name not in PRE_TOKENIZERS:
            raise TokenizerError(f"{path}: pre-tokenizer {pre_name!r} not supported by ckc "
                                 f"(supported: {', '.join(sorted(PRE_TOKENIZERS))})")
        st, ignore, add_bos = PRE_TOKENIZERS[pre_name]
        stages = PRE_STAGES[st]
        flags = F_BYTE_LEVEL | (F_IGNORE_MERGES if ignore else 0)
        bos, eos, unk = ident("tokenizer.ggml.bos_token_id", 11 if 11 < n else -1), \
            ident("tokenizer.ggml.eos_token_id", 11 if 11 < n else -1), ident("tokenizer.ggml.unknown_token_id", -1)
    elif model == "llama":
        flags = F_SPM | F_BYTE_FALLBACK
        if _scalar(meta, "tokenizer.ggml.add_space_prefix", True):
            flags |= F_SPACE_PREFIX
        add_bos = True
        bos, eos, unk = ident("tokenizer.ggml.bos_token_id", 1), ident("tokenizer.ggml.eos_token_id", 2), \
            ident("tokenizer.ggml.unknown_token_id", 0)
        pre_name = "spm"
    elif model == "gemma4":
        if merges is None:
            raise TokenizerError(f"{path}: tokenizer.ggml.merges missing for a gemma4 vocabulary")
        flags = F_ESCAPE_WS | F_BYTE_FALLBACK | F_NL_WORDS
        stages = PRE_STAGES["newlines"]
        add_bos = True  # llama.cpp forces it for Gemma 4
        bos, eos, unk = ident("tokenizer.ggml.bos_token_id", -1), ident("tokenizer.ggml.eos_token_id", -1), \
            ident("tokenizer.ggml.unknown_token_id", -1)
        pre_name = "gemma4"
    else:
        kinds = {"bert": "WordPiece", "t5": "Unigram", "rwkv": "RWKV", "plamo2": "PLaMo-2"}
        raise TokenizerError(f"{path}: tokenizer model {model!r} ({kinds.get(model, 'unknown')}) not supported; "
                             "ckc supports gpt2 (byte-level BPE), llama (SentencePiece BPE) and gemma4")
    v = _scalar(meta, "tokenizer.ggml.add_bos_token")
    if v is not None and model != "gemma4":
        add_bos = bool(v)
    v = _scalar(meta, "tokenizer.ggml.add_eos_token")
    if v is not None:
        add_eos = bool(v)

    # llama.cpp's per-model token attributes: Phi-3 strips spaces right of its special tokens
    attrs = None
    gname = str(_scalar(meta, "general.name", "") or "").lower()
    if "phi-3" in gname or "phi3" in gname:
        attrs = np.zeros(n, np.uint8)
        if types is not None:
            attrs[np.isin(types, (T_CONTROL, T_USER, T_UNKNOWN))] = A_RSTRIP
        for i in range(n):
            if types is not None and types[i] in (T_CONTROL, T_USER, T_UNKNOWN, T_NORMAL):
                t = tokens[i]
                if t == b"</s>":
                    attrs[i] = A_RSTRIP
                elif t in (b"<unk>", b"<s>", b"<|endoftext|>"):
                    attrs[i] = 0
    tok = Tokenizer(tokens=tokens, types=types, scores=scores, attrs=attrs, merges=merges, flags=flags,
                    stages=stages, bos=bos, eos=eos, unk=unk, add_bos=add_bos, add_eos=add_eos, name=name)
    tok.model, tok.pre = model, pre_name
    return tok


def _tokjson_pretok(pt, path):
    """(stages, byte_level, metaspace) for a tokenizer.json pre_tokenizer."""
    if pt is None:
        return [], False, False
    kind = pt.get("type")
    if kind == "Sequence":
        stages, bl, ms = [], False, False
        for sub in pt.get("pretokenizers", []):
            s, b, m = _tokjson_pretok(sub, path)
            stages += s
            bl, ms = bl or b, ms or m
        return stages, bl, ms
    if kind == "ByteLevel":
        if pt.get("add_prefix_space"):
            raise TokenizerError(f"{path}: ByteLevel add_prefix_space=true not supported")
        return ([_GPT2] if pt.get("use_regex", True) else []), True, False
    if kind == "Digits":
        return [_class(r"\p{N}" if pt.get("individual_digits") else r"\p{N}+")], False, False
    if kind == "Split":
        pat = pt.get("pattern", {})
        rx = pat.get("Regex", pat.get("String"))
        if pt.get("behavior", "Isolated") != "Isolated" or pt.get("invert"):
            raise TokenizerError(f"{path}: Split behavior {pt.get('behavior')!r} not supported")
        if rx not in _SPLIT_RES:
            raise TokenizerError(f"{path}: pre-tokenizer regex {rx!r} not supported by ckc")
        return _SPLIT_RES[rx], False, False
    if kind == "Metaspace":
        return [], False, True
    raise TokenizerError(f"{path}: pre-tokenizer {kind!r} not supported by ckc")


def from_tokenizer_json(path) -> Tokenizer:
    """A HF tokenizers tokenizer.json with a BPE model."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise TokenizerError(f"{path}: cannot read tokenizer.json: {e}") from None
    try:
        return _from_tokenizer_json(path, spec)
    except TokenizerError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:
        # a field of the wrong JSON type somewhere below the checked ones
        raise TokenizerError(f"{path}: malformed tokenizer.json ({type(e).__name__}: {str(e)[:100]})") from None


def _ids_ok(vocab, added) -> bool:
    ok = lambda i: type(i) is int and 0 <= i < 1 << 31  # noqa: E731
    return all(isinstance(t, str) and ok(i) for t, i in vocab.items()) and all(
        isinstance(a, dict) and ok(a.get("id")) and isinstance(a.get("content"), str) for a in added)


def _from_tokenizer_json(path: Path, spec) -> Tokenizer:
    if not isinstance(spec, dict):
        raise TokenizerError(f"{path}: expected a JSON object, got {type(spec).__name__}")
    model = spec.get("model") or {}
    if not isinstance(model, dict):
        raise TokenizerError(f"{path}: 'model' is not a JSON object")
    if model.get("type", "BPE") != "BPE":
        raise TokenizerError(f"{path}: model type {model.get('type')!r} not supported (ckc supports BPE)")
    vocab = model.get("vocab") or {}
    added = spec.get("added_tokens") or []
    if not isinstance(vocab, dict) or not isinstance(added, list) or not _ids_ok(vocab, added):
        raise TokenizerError(f"{path}: model.vocab must map strings to token ids and added_tokens be "
                             "objects with an id and a content")
    n = max([*vocab.values(), *(a["id"] for a in added), -1]) + 1
    if n == 0:
        raise TokenizerError(f"{path}: empty vocabulary")
    # ids are dense in real files; a stray huge id must not allocate a table of that size
    if n > 2 * (len(vocab) + len(added)) + 1024:
        raise TokenizerError(f"{path}: token id {n - 1} is far above the {len(vocab) + len(added)} tokens listed")
    tokens = [b""] * n
    types = np.full(n, T_UNUSED, np.int32)
    for t, i in vocab.items():
        tokens[i] = t.encode("utf-8")
        types[i] = T_NORMAL
    byte_fallback = bool(model.get("byte_fallback"))
    if byte_fallback:
        for t, i in vocab.items():
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                types[i] = T_BYTE
    attrs = np.zeros(n, np.uint8)
    for a in added:
        i = a["id"]
        tokens[i] = a["content"].encode("utf-8")
        types[i] = T_CONTROL if a.get("special") else T_USER
        attrs[i] = (A_LSTRIP if a.get("lstrip") else 0) | (A_RSTRIP if a.get("rstrip") else 0)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    stages, byte_level, metaspace = _tokjson_pretok(spec.get("pre_tokenizer"), path)
    flags = (F_BYTE_LEVEL if byte_level else 0) | (F_BYTE_FALLBACK if byte_fallback else 0)
    if model.get("ignore_merges"):
        flags |= F_IGNORE_MERGES
    nfc = False
    norm = spec.get("normalizer")
    norms = (norm.get("normalizers", []) if norm and norm.get("type") == "Sequence" else [norm] if norm else [])
    prefix = False
    for nm in norms:
        k = nm.get("type")
        if k == "NFC":
            nfc = True
        elif k == "Replace" and nm.get("pattern", {}).get("String") == " " and nm.get("content") == "▁":
            flags |= F_ESCAPE_WS
        elif k == "Prepend" and nm.get("prepend") == "▁":
            prefix = True
        else:
            raise TokenizerError(f"{path}: normalizer {k!r} not supported by ckc")
    if metaspace:
        flags |= F_ESCAPE_WS
        prefix = True
    if prefix:
        raise TokenizerError(f"{path}: a prepended '▁' (SentencePiece-style tokenizer.json) is not supported; "
                             "load the model's GGUF instead")
    bos = eos = -1
    add_bos = add_eos = False
    post = spec.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        single = post.get("single", [])
        ids = {k: v["ids"][0] for k, v in (post.get("special_tokens") or {}).items() if v.get("ids")}
        if single and "SpecialToken" in single[0]:
            bos, add_bos = ids.get(single[0]["SpecialToken"]["id"], -1), True
        if len(single) > 1 and "SpecialToken" in single[-1]:
            eos, add_eos = ids.get(single[-1]["SpecialToken"]["id"], -1), True
    unk = vocab.get(model.get("unk_token") or "", -1)
    cfg = path.parent / "tokenizer_config.json"
    if cfg.is_file():
        # transformers adds the special tokens named here to the vocabulary as special
        try:
            c = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise TokenizerError(f"{cfg}: cannot read: {e}") from None
        by_text = {t: i for i, t in enumerate(tokens) if t}

        def tid(key):
            v = c.get(key)
            v = v.get("content") if isinstance(v, dict) else v
            i = by_text.get(v.encode("utf-8"), -1) if isinstance(v, str) else -1
            if i >= 0 and types[i] == T_NORMAL:
                types[i] = T_CONTROL
            return i

        cb, ce, cu = tid("bos_token"), tid("eos_token"), tid("unk_token")
        tid("pad_token")
        bos = bos if bos >= 0 else cb
        eos = eos if eos >= 0 else ce
        unk = unk if unk >= 0 else cu
        add_bos = bool(c.get("add_bos_token", add_bos))
        add_eos = bool(c.get("add_eos_token", add_eos))
    tok = Tokenizer(tokens=tokens, types=types, attrs=attrs, merges=merges, flags=flags, stages=stages,
                    bos=bos, eos=eos, unk=unk, add_bos=add_bos, add_eos=add_eos, name=path.name, nfc=nfc)
    tok.model, tok.pre = "tokenizer.json", "tokenizer.json"
    return tok


def load(path) -> Tokenizer:
    """A tokenizer from a .gguf file, a tokenizer.json, or a folder holding tokenizer.json."""
    p = Path(path)
    if p.is_dir():
        if (p / "tokenizer.json").is_file():
            return from_tokenizer_json(p / "tokenizer.json")
        ggufs = sorted(p.glob("*.gguf"))
        if ggufs:
            return from_gguf(ggufs[0])
        raise TokenizerError(f"{p}: folder holds neither tokenizer.json nor a .gguf file")
    if not p.exists():
        raise TokenizerError(f"{p}: no such file")
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        return from_gguf(p)
    if p.suffix == ".json":
        return from_tokenizer_json(p)
    raise TokenizerError(f"{p}: neither a GGUF file nor a tokenizer.json")
