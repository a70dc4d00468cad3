"""Quantized GGUFs made by llama.cpp's own tools, cached, for parity tests and the bench.

    from ckc import llamacpp_quant as lq
    lq.quant_gguf("llama", "Q4_K_M")                  # tiny random Llama, K-quant friendly shape
    lq.quant_gguf("qwen2", "Q8_0", shape="qwen2-0.5b")  # Qwen2-0.5B-shaped random weights
    lq.requantized(assets.smollm2_gguf(), "Q8_0")       # a real file requantized

The recipe is the one people use on a downloaded model: ``convert_hf_to_gguf.py``
(llama.cpp's converter, from the cached source tree) writes an F32 or F16 GGUF
of a random-weight Hugging Face folder, then ``llama_model_quantize`` (what the
``llama-quantize`` tool calls; run through ckc.llamacpp's harness, built from
the same tree) writes each format. Formats are llama.cpp file types, so the
K-quant mixes are its own per-tensor choices (Q4_K_M: Q6_K for the output and
half of attn_v/ffn_down, Q4_K elsewhere).

Shapes (``SHAPES``):

- ``q256``: the zoo's tiny models of ckc.modelzoo (same init recipe and
  tokenizers) widened so every matrix row is a multiple of 256 (hidden 256,
  4 heads of 64, 2 KV heads, FFN 512): K-quant blocks span 256 values of a row,
  and llama.cpp falls back for rows that are not a multiple (Q4_K -> Q5_0,
  Q5_K -> Q5_1, Q6_K -> Q8_0; ``llama_tensor_get_type``), so at this shape
  every file holds the K types it names.
- ``qwen2-0.5b`` / ``llama-1b``: the layer shapes of Qwen2-0.5B (hidden 896,
  24 layers, 14/2 heads, FFN 4864, vocab 151936, tied) and Llama-3.2-1B
  (hidden 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256, tied), random
  weights, for speed only. 896 is not a multiple of 256, so a Qwen2-0.5B-shaped
  Q4_K_M mixes Q4_K, Q5_0, Q6_K and Q8_0 as the real download does. The vocab
  is the zoo's 384-piece SentencePiece model padded by the converter. These
  are built from a bf16 folder and an F16 GGUF (as the real ones are
  distributed), niced, once (GBs; minutes on 2 cores).

Everything is cached under ``.cache/models/quant-<family>-<shape>-<key>/``,
the key hashing the config, seed and recipe; the quantized files additionally
carry the llama.cpp build key in their name (another quantizer version makes
other files). Each file is written under a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from ckc import llamacpp, modelzoo
from ckc.build import cache_dir

FORMATS = ("Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K")
RECIPE = "q1"       # bump when the widening or the build steps change

_Q256 = dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, intermediate_size=512)

SHAPES = ("q256", "qwen2-0.5b", "llama-1b")

_BIG = {
    "qwen2-0.5b": ("qwen2", dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                                 num_key_value_heads=2, intermediate_size=4864, vocab_size=151936,
                                 max_position_embeddings=4096, tie_word_embeddings=True)),
    "llama-1b": ("llama", dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                               num_key_value_heads=8, head_dim=64, intermediate_size=8192, vocab_size=128256,
                               max_position_embeddings=4096, rope_theta=500000.0, tie_word_embeddings=True)),
}


def config_dict(family: str, shape: str = "q256") -> dict:
    """The zoo config of ``family`` at ``shape`` (see the module docstring)."""
    base = modelzoo._config_dict(family)
    if shape == "q256":
        if family == "gpt2":
            return dict(base, n_embd=256)           # n_inner: 4 * 256
        cfg = dict(base, **_Q256)
        if "head_dim" in cfg:
            cfg["head_dim"] = 64
        if family == "gemma3":
            cfg["query_pre_attn_scalar"] = 64
        return cfg
    if shape in _BIG:
        fam, over = _BIG[shape]
        if family != fam:
            raise KeyError(f"shape '{shape}' is a {fam} shape, not {family}")
        return dict(base, **over)
    raise KeyError(f"unknown shape '{shape}' (have: {', '.join(SHAPES)})")


def _key(family: str, shape: str) -> str:
    blob = json.dumps({"cfg": config_dict(family, shape), "seed": modelzoo.SEED, "zoo": modelzoo.RECIPE,
                       "recipe": RECIPE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _big(shape: str) -> bool:
    return shape in _BIG


def _nice() -> None:
    # the big builds run beside other people's work on a small machine
    if hasattr(os, "nice"):
        os.nice(10)


def hf_dir(family: str, shape: str = "q256") -> Path:
    """Folder with config.json, model.safetensors and the zoo's tokenizer (cached)."""
    final = cache_dir("models") / f"quant-{family}-{shape}-{_key(family, shape)}"

    def build(tmp: Path):
        import torch
        from transformers import AutoConfig
        from transformers.utils import logging as hf_logging

        d = dict(config_dict(family, shape))
        cfg = AutoConfig.for_model(d.pop("model_type"), **d)
        cls = modelzoo._model_class(family)
        cfg.architectures = [cls.__name__]
        torch.manual_seed(modelzoo.SEED)
        # the big shapes in bf16 from the start (a 1B model in fp32 is 5 GB of RAM)
        dtype = torch.bfloat16 if _big(shape) else torch.float32
        model = cls._from_config(cfg, dtype=dtype).eval()
        modelzoo._randomize(model, family, modelzoo.SEED)
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(tmp, safe_serialization=True)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        modelzoo._write_tokenizer(family, tmp)

    if not final.is_dir() and _big(shape):
        return modelzoo._atomic_dir(final, lambda tmp: _in_child(build, tmp))
    return modelzoo._atomic_dir(final, build)


def _in_child(build, tmp: Path) -> None:
    """Runs ``build(tmp)`` in a niced child process (fork), so the big build does
    not nice the caller and its memory is returned when it ends."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _die_with_parent()
            _nice()
            build(tmp)
            code = 0
        except BaseException as e:  # noqa: BLE001 - reported by the parent
            print(f"ckc: building {tmp.name} failed: {e}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"building the random-weight model in {tmp} failed (see above)")


def _die_with_parent() -> None:
    # an interrupted caller must not leave a GB-sized build running (Linux only)
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def source_gguf(family: str, shape: str = "q256") -> Path:
    """The folder converted by llama.cpp's convert_hf_to_gguf.py: F32 for q256,
    F16 for the big shapes (cached next to the folder)."""
    src = hf_dir(family, shape)
    outtype = "f16" if _big(shape) else "f32"
    out = src / f"model-{outtype}.gguf"
    if not out.is_file():
        modelzoo.convert_hf_to_gguf(src, out, outtype, f"{family} ({shape})",
                                    preexec_fn=_nice if _big(shape) else None)
    return out


def _quantized(src: Path, folder: Path, fmt: str, *, nice: bool) -> Path:
    if fmt not in llamacpp.FTYPES:
        raise ValueError(f"format '{fmt}' unknown (have: {', '.join(llamacpp.FTYPES)})")
    out = folder / f"model-{fmt.lower()}-{llamacpp.build_key()}.gguf"
    if out.is_file():
        return out
    llamacpp.quantize(src, out, fmt, nice=10 if nice else 0)
    return out


def quant_gguf(family: str, fmt: str, shape: str = "q256") -> Path:
    """``family`` at ``shape`` quantized by llama_model_quantize to ``fmt`` (a
    llama.cpp file type: Q8_0, Q4_0, Q4_K_M, ...; F32/F16 give the converter's file)."""
    src = source_gguf(family, shape)
    if fmt == ("F16" if _big(shape) else "F32"):
        return src
    return _quantized(src, src.parent, fmt, nice=_big(shape))


def requantized(gguf: Path, fmt: str) -> Path:
    """An existing GGUF (e.g. SmolLM2's Q4_1 file) requantized to ``fmt`` by
    llama_model_quantize, cached under ``.cache/models/requant-<content hash>``."""
    from ckc.commands.run import model_hash

    gguf = Path(gguf)
    folder = cache_dir("models", f"requant-{model_hash(gguf)[:16]}")
    return _quantized(gguf, folder, fmt, nice=False)


def dequantized(gguf: Path) -> Path:
    """``gguf``'s weights dequantized to F32 by llama_model_quantize (llama.cpp's own
    dequantizer), cached next to it (or under ``requant-<hash>`` for a file outside
    the cache): llama.cpp on this file computes with exactly the weights of the
    quantized one but in fp32, which separates what its 8-bit activations do
    from what the weights are."""
    gguf = Path(gguf)
    if gguf.parent.name.startswith(("quant-", "requant-")):
        out = gguf.parent / f"{gguf.stem}-deq-f32.gguf"
        if not out.is_file():
            llamacpp.quantize(gguf, out, "F32")
        return out
    return requantized(gguf, "F32")


def tensor_types(gguf: Path) -> dict[str, str]:
    """{tensor name: GGML type name} of a GGUF (what llama-quantize chose)."""
    import gguf as g

    return {t.name: t.tensor_type.name for t in g.GGUFReader(gguf).tensors}
