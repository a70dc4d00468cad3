"""The Python fuzz targets: every loader that reads a user's file.

Each target takes the fuzzer's bytes, writes them where the loader expects a
file, and calls the loader the CLI calls. The loader may accept the input or
reject it with the project's one-line error (the exception type the CLI turns
into ``ckc: error: ...``), whose message names the file. Anything else is a
finding: another exception type (a traceback for the user), a multi-line
message, a message that does not name the file, or an input that runs longer
than ``SLOW_S``.

Used three ways: ``run_atheris.py`` (coverage-guided, bench/fuzz.py and
``make fuzz``), ``replay`` (the corpus under test/py/data/fuzz/, in make test)
and ``mutate`` (a fixed-seed mutation loop without atheris' runtime, also in
make test).
"""

from __future__ import annotations

import io
import json
import random
import signal
import struct
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT, ROOT / "test" / "py"):  # ckc and the tests' gguf_util, however this file was reached
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
CORPUS = ROOT / "test" / "py" / "data" / "fuzz"
SLOW_S = 5.0    # an input slower than this is a finding
HANG_S = 20.0   # ... and one still running after this is stopped
# Dequantizing a fuzzed header's tensors is bounded: the header may name
# tensors of up to the file's size, but the loop must stay fast.
_MAX_ELEMS = 1 << 16


class Finding(Exception):
    """A loader misbehaved on an input (the message says how)."""


@dataclass
class Target:
    name: str
    run: Callable[[bytes, Path], None]      # raises only the expected errors
    errors: Callable[[], tuple]             # the one-line error types
    seeds: Callable[[], list[bytes]]
    modules: tuple[str, ...]                # what atheris instruments
    names_file: bool = True                 # the message must name the file
    message: Callable[[BaseException], str] = str  # what the user sees
    prepare: Callable[[], None] | None = None      # one-time setup kept out of the timing
    _errors: tuple = field(default=(), repr=False)

    def check(self, data: bytes, work: Path) -> None:
        """Run one input; raise Finding (or let the bug's exception escape)."""
        if not self._errors:
            self._errors = self.errors()
            # NaN/Inf from random block data is the data's business, not the loader's
            warnings.simplefilter("ignore", RuntimeWarning)
        try:
            self.run(data, work)
        except self._errors as e:
            msg = self.message(e)
            if not msg.strip() or "\n" in msg.strip():
                raise Finding(f"{type(e).__name__} message is not one line: {msg!r}") from e
            if self.names_file and str(work) not in msg:
                raise Finding(f"{type(e).__name__} message does not name the file: {msg!r}") from e


def _write(work: Path, name: str, data: bytes) -> Path:
    p = work / name
    p.write_bytes(data)
    return p


# ---------------------------------------------------------------- GGUF

def _tiny_cfg():
    from ckc.importers.config import ModelConfig, family_defaults

    return ModelConfig(arch="llama", vocab_size=16, hidden=8, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=4,
                       ffn=16, max_context=32, **family_defaults("llama"))


def _tiny_tensors(cfg) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in cfg.expected_shapes().items()}


def _gguf_bytes(arch: str, cfg, tensors: dict, raw: dict | None = None, vocab: str | None = None) -> bytes:
    import tempfile

    from gguf_util import write_gguf  # the tests' small-GGUF writer (run from the checkout)

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "seed.gguf"
        write_gguf(p, arch, cfg, tensors, raw, vocab=vocab)
        return p.read_bytes()


def _gguf_seeds() -> list[bytes]:
    """A tiny llama (f32 and f16 tensors) and one tensor of every quantized type."""
    import gguf
    import gguf.quants as q

    cfg = _tiny_cfg()
    t = _tiny_tensors(cfg)
    seeds = [_gguf_bytes("llama", cfg, t, vocab="llama")]
    t16 = {n: (a.astype(np.float16) if a.ndim == 2 else a) for n, a in t.items()}
    seeds.append(_gguf_bytes("llama", cfg, t16))
    rng = np.random.default_rng(1)
    for qt in sorted(q._type_traits, key=lambda x: x.name):
        block, tsize = gguf.GGML_QUANT_SIZES[qt]
        raw = {f"x.{qt.name.lower()}": (rng.integers(0, 256, (2, tsize), dtype=np.uint8), qt)}
        seeds.append(_gguf_bytes("llama", cfg, {"token_embd.weight": t["token_embd.weight"]}, raw))
    return seeds


def _run_gguf(data: bytes, work: Path) -> None:
    from ckc.importers.gguf import config_from_gguf, load_gguf, open_gguf

    p = _write(work, "model.gguf", data)
    meta, entries, mm = open_gguf(p)
    budget = _MAX_ELEMS
    for e in entries.values():
        n = int(np.prod(e.shape))
        if n <= budget:  # the block data of each quantized type, dequantized
            budget -= n
            a = e.load()
            if a.size != n:
                raise Finding(f"dequantized {a.size} values, the header says {n}")
    try:
        config_from_gguf(p, meta, {k: e.shape for k, e in entries.items()})
    finally:
        del mm
    load_gguf(p)


def _run_gguf_tokenizer(data: bytes, work: Path) -> None:
    from ckc.tokenizer import from_gguf

    tok = from_gguf(_write(work, "model.gguf", data))
    ids = tok.encode("abc a\u2581b <|endoftext|> \xff", add_special=True)
    tok.decode(ids)


def _tokenizer_library() -> None:
    from ckc.tokenizer import library

    library()  # compiled once per source hash: seconds on a cold cache


def _import_errors():
    from ckc.importers import ModelImportError

    return (ModelImportError,)


def _tokenizer_errors():
    from ckc.tokenizer import TokenizerError

    return (TokenizerError,)


def _tokenizer_gguf_seeds() -> list[bytes]:
    cfg = _tiny_cfg()
    return [_gguf_bytes("llama", cfg, {}, vocab="gpt2"), _gguf_bytes("llama", cfg, {}, vocab="llama")]


# ---------------------------------------------------------------- .bump

def _bump_seeds() -> list[bytes]:
    import tempfile

    from ckc.weights import F32P32, write_bump

    rng = np.random.default_rng(2)
    seeds = []
    with tempfile.TemporaryDirectory() as d:
        for i, tensors in enumerate([
            [("a", rng.standard_normal((3, 5)).astype(np.float32))],
            [("w", rng.standard_normal((4, 2)).astype(np.float16)), ("b", np.zeros(7, np.float32)),
             ("p", rng.standard_normal((33, 3)).astype(np.float32), F32P32)],
            [],
        ]):
            p = Path(d) / f"s{i}.bump"
            write_bump(p, tensors)
            seeds.append(p.read_bytes())
    return seeds


def _run_bump(data: bytes, work: Path) -> None:
    from ckc.weights import read_bump

    for name, a in read_bump(_write(work, "w.bump", data)).items():
        np.asarray(a).sum()


def _bump_errors():
    from ckc.weights import BumpError

    return (BumpError,)


# ---------------------------------------------------------------- tokenizer.json

def _tokenizer_json_seeds() -> list[bytes]:
    vocab = {c: i for i, c in enumerate("abcdĠ")}
    vocab.update({"ab": 5, "abc": 6, "Ġa": 7})
    bl = {"model": {"type": "BPE", "vocab": vocab, "merges": ["a b", ["ab", "c"], "Ġ a"]},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
          "added_tokens": [{"id": 8, "content": "<|end|>", "special": True}],
          "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|end|>"}}],
                             "special_tokens": {"<|end|>": {"ids": [8]}}}}
    fb = {"model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                    "vocab": {"<unk>": 0, "<0x41>": 1, "a": 2, "b": 3, "ab": 4}, "merges": ["a b"]},
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": True},
              {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated"}]}}
    return [json.dumps(s).encode() for s in (bl, fb)]


def _run_tokenizer_json(data: bytes, work: Path) -> None:
    from ckc.tokenizer import from_tokenizer_json

    tok = from_tokenizer_json(_write(work, "tokenizer.json", data))
    tok.decode(tok.encode("abc ab 12 <|end|> \u00e9", add_special=True))


# ---------------------------------------------------------------- safetensors / config.json

def _st_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        dt = {np.float32: "F32", np.float16: "F16"}[a.dtype.type]
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def _hf_tiny() -> tuple[dict, dict[str, np.ndarray]]:
    cfg = {"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1,
           "num_hidden_layers": 1, "intermediate_size": 16, "vocab_size": 16, "max_position_embeddings": 32,
           "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False}
    rng = np.random.default_rng(3)
    shapes = {"model.embed_tokens.weight": (16, 8), "model.norm.weight": (8,), "lm_head.weight": (16, 8),
              "model.layers.0.input_layernorm.weight": (8,),
              "model.layers.0.post_attention_layernorm.weight": (8,),
              "model.layers.0.self_attn.q_proj.weight": (8, 8), "model.layers.0.self_attn.k_proj.weight": (4, 8),
              "model.layers.0.self_attn.v_proj.weight": (4, 8), "model.layers.0.self_attn.o_proj.weight": (8, 8),
              "model.layers.0.mlp.gate_proj.weight": (16, 8), "model.layers.0.mlp.up_proj.weight": (16, 8),
              "model.layers.0.mlp.down_proj.weight": (8, 16)}
    return cfg, {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}


def _safetensors_seeds() -> list[bytes]:
    _, t = _hf_tiny()
    small = {"a": np.ones((2, 3), np.float16), "b": np.zeros(0, np.float32)}
    return [_st_bytes(t), _st_bytes(small)]


def _run_safetensors(data: bytes, work: Path) -> None:
    from ckc.importers.common import read_safetensors_index

    for name, (dtype, shape, load) in read_safetensors_index(_write(work, "model.safetensors", data)).items():
        if int(np.prod(shape)) <= _MAX_ELEMS:
            load()


_HF_WEIGHTS: bytes | None = None


def _hf_config_seeds() -> list[bytes]:
    cfg, _ = _hf_tiny()
    gpt2 = {"model_type": "gpt2", "n_embd": 8, "n_head": 2, "n_layer": 1, "vocab_size": 16, "n_positions": 32}
    gemma3 = {"model_type": "gemma3", "text_config": {**cfg, "sliding_window": 4, "query_pre_attn_scalar": 4,
                                                      "rope_scaling": {"rope_type": "linear", "factor": 2.0}}}
    return [json.dumps(c).encode() for c in (cfg, gpt2, gemma3)]


def _run_hf_config(data: bytes, work: Path) -> None:
    global _HF_WEIGHTS
    from ckc.importers.hf import load_hf

    if _HF_WEIGHTS is None:
        _HF_WEIGHTS = _st_bytes(_hf_tiny()[1])
    st = work / "model.safetensors"
    if not st.exists():
        st.write_bytes(_HF_WEIGHTS)
    _write(work, "config.json", data)
    load_hf(work)


# ---------------------------------------------------------------- .mlir (ckc-opt's parser)

_CTX = None


def _mlir_seeds() -> list[bytes]:
    seeds = []
    for f in sorted((ROOT / "test" / "lit").rglob("*.mlir")):
        text = f.read_text()
        for chunk in text.split("// -----"):
            body = "\n".join(l for l in chunk.splitlines() if not l.lstrip().startswith("//"))
            if body.strip() and len(body) < 8000:
                seeds.append(body.encode())
    return seeds


def _run_mlir(data: bytes, work: Path) -> None:
    from xdsl.parser import Parser

    _mlir_ctx()
    text = data.decode("utf-8", "replace")
    module = Parser(_CTX, text, "fuzz.mlir").parse_module()
    module.verify()


def _mlir_ctx():
    global _CTX
    if _CTX is None:
        from ckc.opt import CkcOptMain

        _CTX = CkcOptMain(args=[]).ctx
    return _CTX


def _mlir_message(e) -> str:
    from ckc.opt import _diagnose

    return _diagnose(None, e)  # the line ckc-opt prints


def _mlir_errors():
    from xdsl.utils.exceptions import DiagnosticException, ParseError

    return (ParseError, DiagnosticException)


# ---------------------------------------------------------------- training checkpoints

_CK_FILES: dict | None = None


def _checkpoint_state(cfg, weights) -> dict:
    from ckc.train.checkpoint import FORMAT, VERSION

    return {"format": FORMAT, "version": VERSION, "step": 3, "opt_step": 3, "config": cfg.to_dict(),
            "weights": list(weights), "data": {"pos": 1}, "run": {"lr": 1e-3}, "history": [[1, 2.5]],
            "extra": {"backend": "numpy"}}


def _checkpoint_seeds() -> list[bytes]:
    cfg = _tiny_cfg()
    return [json.dumps(_checkpoint_state(cfg, _tiny_tensors(cfg))).encode()]


def _run_checkpoint(data: bytes, work: Path) -> None:
    """state.json fuzzed, next to valid weights.bump and optim.bump of the tiny model."""
    global _CK_FILES
    import tempfile

    from ckc.train.checkpoint import load
    from ckc.weights import write_bump

    if _CK_FILES is None:
        t = _tiny_tensors(_tiny_cfg())
        with tempfile.TemporaryDirectory() as d:
            write_bump(Path(d) / "w.bump", list(t.items()))
            write_bump(Path(d) / "o.bump", [(f"{k}.{n}", a) for k in "mv" for n, a in t.items()])
            _CK_FILES = {"weights.bump": (Path(d) / "w.bump").read_bytes(),
                         "optim.bump": (Path(d) / "o.bump").read_bytes()}
    step = work / "step-000003"
    step.mkdir(exist_ok=True)
    for name, blob in _CK_FILES.items():
        if not (step / name).exists():
            (step / name).write_bytes(blob)
    _write(step, "state.json", data)
    load(step)


def _checkpoint_errors():
    from ckc.train.checkpoint import CheckpointError

    return (CheckpointError,)


TARGETS = {t.name: t for t in [
    Target("gguf", _run_gguf, _import_errors, _gguf_seeds,
           ("ckc.importers.gguf", "ckc.importers.common", "ckc.importers.config")),
    Target("gguf_tokenizer", _run_gguf_tokenizer, _tokenizer_errors, _tokenizer_gguf_seeds,
           ("ckc.tokenizer",), prepare=_tokenizer_library),
    Target("bump", _run_bump, _bump_errors, _bump_seeds, ("ckc.weights",)),
    Target("tokenizer_json", _run_tokenizer_json, _tokenizer_errors, _tokenizer_json_seeds, ("ckc.tokenizer",),
           prepare=_tokenizer_library),
    Target("safetensors", _run_safetensors, _import_errors, _safetensors_seeds,
           ("ckc.importers.common",)),
    Target("hf_config", _run_hf_config, _import_errors, _hf_config_seeds,
           ("ckc.importers.hf", "ckc.importers.common", "ckc.importers.config")),
    Target("mlir", _run_mlir, _mlir_errors, _mlir_seeds, ("dialects.transformer", "dialects.tensorop", "dialects.buffer", "dialects.c", "ckc.opt"), names_file=False,
           message=_mlir_message, prepare=_mlir_ctx),
    Target("checkpoint", _run_checkpoint, _checkpoint_errors, _checkpoint_seeds, ("ckc.train.checkpoint", "ckc.weights")),
]}


# ---------------------------------------------------------------- seeds of the C targets

def c_seeds(name: str) -> list[bytes]:
    """bump_c: the .bump seeds; ctok: fuzz_ctok.c's line format (flags, options,
    tokens, "M" merges, "X" text): a byte-level BPE and an SPM-style vocabulary."""
    if name == "bump_c":
        return _bump_seeds()
    return [b"\x02\x09a\nb\nc\nab\nabc\n3<|end|>\nMa b\nMab c\nXabc ab <|end|> \xc3\xa9\xff 12",
            b"\x11\x18<unk>\n3<s>\n3</s>\n6<0x41>\n6<0xFF>\n\xe2\x96\x81\n\xe2\x96\x81a\na\nb\nMa b\nX a b\xff",
            b"\x04\x0b\xe2\x96\x81\na\n\n\n\n2<unk>\nX\n\nab\n\n"]


# ---------------------------------------------------------------- driving without atheris

_INTERESTING = [0, 1, 2, 4, 7, 8, 31, 32, 63, 64, 255, 256, 4095, 4096, 65535, 1 << 31, (1 << 32) - 1,
                1 << 40, (1 << 40) + 1, 1 << 48, (1 << 63) - 1, 1 << 63, (1 << 64) - 64, (1 << 64) - 1]
_TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"null", b"-1", b"1e999", b"NaN", b'""', b"[[[[", b"%",
           b"(", b")", b"<", b">", b"!", b"#", b"\x00", b"\xff", b"\n"]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One to four random edits: byte flips, interesting little-endian integers,
    inserted/deleted/duplicated spans, text tokens, splices with another seed."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        n = len(b)
        i = rng.randrange(n + 1)
        if op == 0 and n:
            b[min(i, n - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[min(i, n - 1)] = rng.randrange(256)
        elif op == 2:
            w = rng.choice((1, 2, 4, 8))
            v = rng.choice(_INTERESTING) & ((1 << (8 * w)) - 1)
            b[i:i + w] = v.to_bytes(w, "little")
        elif op == 3 and n:
            j = min(n, i + rng.randint(1, 64))
            del b[i:j]
        elif op == 4:
            j = min(n, i + rng.randint(1, 64))
            b[i:i] = b[i:j]
        elif op == 5:
            b[i:i] = rng.choice(_TOKENS)
        elif op == 6 and pool:
            other = rng.choice(pool)
            k = rng.randrange(len(other) + 1)
            b = b[:i] + bytearray(other[k:])
        elif op == 7:
            del b[i:]
    return bytes(b)


def corpus_files(name: str) -> list[Path]:
    d = CORPUS / name
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


class _Hang(BaseException):
    pass


def _hang(signum, frame):
    raise _Hang()


def check_one(target: Target, data: bytes, work: Path) -> str | None:
    """None if the loader behaved, else a one-line description of the finding."""
    import shutil

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if target.prepare is not None:
        target.prepare()
        target.prepare = None
    t0 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _hang)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        target.check(data, work)
    except _Hang:
        return f"hang: over {HANG_S:.0f} s"
    except Finding as e:
        return str(e)
    except (RecursionError, MemoryError) as e:
        return f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - any other exception is the bug we look for
        import traceback

        tb = traceback.extract_tb(e.__traceback__)[-1]
        return f"{type(e).__name__}: {str(e)[:200]} at {Path(tb.filename).name}:{tb.lineno}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    dt = time.perf_counter() - t0
    if dt > SLOW_S:
        return f"slow: {dt:.1f} s"
    return None


def fuzz_seconds(target: Target, seconds: float, seed: int, work: Path, stop_on_first=True):
    """The fixed-seed mutation loop: (inputs run, [(input, finding)])."""
    rng = random.Random(seed)
    pool = target.seeds() + [p.read_bytes() for p in corpus_files(target.name)]
    found, n = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        data = mutate(rng.choice(pool), rng, pool)
        n += 1
        bad = check_one(target, data, work)
        if bad:
            found.append((data, bad))
            if stop_on_first:
                break
    return n, found


def main(argv=None) -> int:
    """python tools/fuzz/targets.py TARGET SECONDS [SEED]: the mutation loop, saving findings."""
    import hashlib
    import tempfile

    args = (argv or sys.argv)[1:]
    target = TARGETS[args[0]]
    with tempfile.TemporaryDirectory() as d:
        n, found = fuzz_seconds(target, float(args[1]), int(args[2]) if len(args) > 2 else 0, Path(d) / "w",
                                stop_on_first=False)
    seen = set()
    for data, bad in found:
        key = bad.split(" at ")[-1] if " at " in bad else bad[:60]
        if key in seen:
            continue
        seen.add(key)
        out = Path(tempfile.gettempdir()) / f"fuzz-{target.name}-{hashlib.sha1(data).hexdigest()[:12]}"
        out.write_bytes(data)
        print(f"{target.name}: {bad}  ->  {out}")
    print(f"{target.name}: {n} inputs, {len(found)} findings")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
