"""Importers: HF directory and llama.cpp-converted GGUF of every family, SmolLM2's
real quantized GGUF, and bad input.

Weights are compared exactly (max |diff| == 0, fp32) against the transformers
model's state_dict, through a name/layout mapping written out here
independently of the importer.
"""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pytest

from ckc import modelzoo
from ckc.importers import ModelConfig, ModelImportError, load_model

import torch  # a pinned test dependency: missing is a failure, not a skip
from gguf_util import llama_parts, write_gguf  # noqa: F401 - llama_parts is a fixture


# --------------------------------------------------------------------------
# reference mapping: HF state_dict name -> (canonical name, transform)

_LAYER = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
}
_GPT2_LAYER = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output",
               "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}


def reference_weights(family: str, model) -> dict[str, np.ndarray]:
    out = {}
    gemma = family in ("gemma", "gemma3")
    for name, t in model.state_dict().items():
        a = t.detach().to(torch.float32).numpy()
        if family == "gpt2":
            if name.endswith((".attn.bias", ".attn.masked_bias")):
                continue
            m = re.fullmatch(r"transformer\.h\.(\d+)\.(.+)\.(weight|bias)", name)
            if m:
                i, part, kind = m.groups()
                canon = f"blk.{i}.{_GPT2_LAYER[part]}.{kind}"
                if kind == "weight" and part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                    a = a.T  # Conv1D stores [in, out]
            else:
                canon = {"transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
                         "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias",
                         "lm_head.weight": "output.weight"}[name]
        else:
            m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
            if m:
                i, part, kind = m.groups()
                if part == "post_attention_layernorm":
                    tgt = "post_attention_norm" if family == "gemma3" else "ffn_norm"
                elif part == "pre_feedforward_layernorm":
                    tgt = "ffn_norm"
                elif part == "post_feedforward_layernorm":
                    tgt = "post_ffw_norm"
                else:
                    tgt = _LAYER[part]
                canon = f"blk.{i}.{tgt}.{kind}"
            else:
                canon = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                         "lm_head.weight": "output.weight"}[name]
            if gemma and canon.endswith("norm.weight"):
                a = a + np.float32(1.0)  # Gemma RMSNorm multiplies by (1 + w)
        if canon == "output.weight" and model.config.tie_word_embeddings:
            continue
        out[canon] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def permute_norm_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute, re-stated: pairs (i, i+d/2) -> (2i, 2i+1)."""
    d = w.shape[0] // n_head
    out = np.empty_like(w)
    for h in range(n_head):
        blk = w[h * d:(h + 1) * d]
        out[h * d:(h + 1) * d][0::2] = blk[: d // 2]
        out[h * d:(h + 1) * d][1::2] = blk[d // 2:]
    return out


@pytest.fixture(scope="module", params=modelzoo.FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def imported(family):
    model = modelzoo.torch_model(family)
    ref = reference_weights(family, model)
    hf = load_model(modelzoo.hf_dir(family))
    gg = load_model(modelzoo.gguf_file(family))
    return model, ref, hf, gg


def _same_config(a: ModelConfig, b: ModelConfig, skip=()):
    da, db = a.arithmetic(), b.arithmetic()
    for k in da:
        if k in skip:
            continue
        if isinstance(da[k], float) and isinstance(db[k], float):
            assert math.isclose(da[k], db[k], rel_tol=1e-6), (k, da[k], db[k])
        else:
            assert da[k] == db[k], (k, da[k], db[k])


def test_hf_config_matches_transformers(family, imported):
    model, _, (cfg, _), _ = imported
    hc = model.config
    assert cfg.arch == family and cfg.source == "hf"
    if family == "gpt2":
        assert (cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.vocab_size) == (hc.n_embd, hc.n_layer, hc.n_head, hc.vocab_size)
        assert (cfg.norm, cfg.positional, cfg.rope_style, cfg.fused_qkv) == ("layernorm", "learned", "none", True)
        assert cfg.ffn == 4 * hc.n_embd and cfg.max_context == hc.n_positions
        return
    assert (cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.ffn) == (
        hc.hidden_size, hc.num_hidden_layers, hc.num_attention_heads, hc.num_key_value_heads, hc.vocab_size,
        hc.intermediate_size)
    assert cfg.head_dim == getattr(hc, "head_dim", hc.hidden_size // hc.num_attention_heads)
    assert cfg.norm_eps == hc.rms_norm_eps
    assert cfg.tied_embeddings == hc.tie_word_embeddings
    assert cfg.rope_style == "neox"
    assert cfg.qkv_bias == (family == "qwen2")
    assert cfg.qk_norm == (family in ("qwen3", "gemma3"))
    if family in ("gemma", "gemma3"):
        assert cfg.embed_scale == math.sqrt(hc.hidden_size)
        assert (cfg.mlp, cfg.activation) == ("geglu", "gelu_tanh")
    else:
        assert cfg.embed_scale == 1.0 and (cfg.mlp, cfg.activation) == ("swiglu", "silu")
    if family == "gemma3":
        assert cfg.attn_scale == hc.query_pre_attn_scalar ** -0.5
        assert cfg.sliding_window == hc.sliding_window
        assert cfg.local_layers == tuple(t == "sliding_attention" for t in hc.layer_types)
        assert any(cfg.local_layers) and not all(cfg.local_layers)
        assert cfg.rope_theta_local == hc.rope_parameters["sliding_attention"]["rope_theta"]
        assert cfg.rope_theta == hc.rope_parameters["full_attention"]["rope_theta"]
        assert cfg.post_norms
    else:
        assert cfg.attn_scale == cfg.head_dim ** -0.5
        assert cfg.rope_theta == hc.rope_parameters["rope_theta"]


def test_gguf_config_matches_hf(family, imported):
    _, _, (hc, _), (gc, _) = imported
    assert gc.source == "gguf"
    # llama.cpp keeps llama's Q/K rows in "interleaved" (LLAMA_ROPE_TYPE_NORM) RoPE order, every other family in neox
    assert gc.rope_style == {"llama": "interleaved", "gpt2": "none"}.get(family, "neox")
    _same_config(hc, gc, skip=("rope_style",))
    nc, _ = load_model(modelzoo.gguf_file(family), rope_style="neox")
    _same_config(hc, nc)


def test_hf_weights_equal_state_dict(imported):
    _, ref, (cfg, store), _ = imported
    assert sorted(store.names()) == sorted(ref)
    for name, want in ref.items():
        got = store[name]
        assert got.dtype == np.float32 and got.shape == want.shape, name
        assert np.abs(got - want).max() == 0.0, name


def test_gguf_weights_equal_state_dict(family, imported):
    _, ref, _, (cfg, store) = imported
    assert sorted(store.names()) == sorted(ref)
    for name, want in ref.items():
        got = store[name]
        assert store.src_type(name) == "F32"
        if family == "llama" and re.fullmatch(r"blk\.\d+\.attn_[qk]\.weight", name):
            heads = cfg.n_heads if ".attn_q." in name else cfg.n_kv_heads
            want = permute_norm_rope(want, heads)
        assert got.shape == want.shape, name
        assert np.abs(got - want).max() == 0.0, name


def test_rope_style_conversion_is_exact():
    _, gstore = load_model(modelzoo.gguf_file("llama"), rope_style="neox")
    hcfg, hstore = load_model(modelzoo.hf_dir("llama"), rope_style="interleaved")
    _, graw = load_model(modelzoo.gguf_file("llama"))
    _, hraw = load_model(modelzoo.hf_dir("llama"))
    assert hcfg.rope_style == "interleaved"
    for n in ("blk.0.attn_q.weight", "blk.1.attn_k.weight"):
        assert np.array_equal(gstore[n], hraw[n])
        assert np.array_equal(hstore[n], graw[n])
        assert not np.array_equal(graw[n], hraw[n])


# --------------------------------------------------------------------------
# real quantized weights

def test_smollm2_q4_1_gguf():
    import gguf

    from ckc.assets import smollm2_gguf

    path = smollm2_gguf()
    cfg, store = load_model(path)
    assert (cfg.arch, cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size) == (
        "llama", 576, 30, 9, 3, 49152)
    assert (cfg.head_dim, cfg.ffn, cfg.rope_theta, cfg.norm_eps, cfg.rope_style) == (64, 1536, 100000.0, 1e-5, "interleaved")
    assert cfg.tied_embeddings and "output.weight" not in store
    reader = gguf.GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    for name, qtype in (("blk.3.ffn_down.weight", "Q4_1"), ("blk.0.attn_norm.weight", "F32")):
        t = by_name[name]
        assert store.src_type(name) == qtype == t.tensor_type.name
        want = gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed([int(x) for x in t.shape])))
        got = store[name]
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.abs(got - want).max() == 0.0
    assert store.shape("token_embd.weight") == (49152, 576) and store.src_type("token_embd.weight") == "Q8_0"
    # rope_style="neox" re-lays the (dequantized) rows exactly
    _, neox = load_model(path, rope_style="neox")
    q = store["blk.0.attn_q.weight"]
    assert np.array_equal(permute_norm_rope(neox["blk.0.attn_q.weight"], 9), q)


# --------------------------------------------------------------------------
# bad input: one-line errors naming the file and the culprit


def _err(path, **kw) -> str:
    with pytest.raises(ModelImportError) as ei:
        load_model(path, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_error_nonexistent_path(tmp_path):
    msg = _err(tmp_path / "nope.gguf")
    assert "no such file" in msg


def test_error_truncated_gguf(tmp_path):
    src = modelzoo.gguf_file("llama")
    data = src.read_bytes()
    for cut in (len(data) // 2, 1000, 10):
        p = tmp_path / f"cut{cut}.gguf"
        p.write_bytes(data[:cut])
        assert "truncated" in _err(p)


def test_error_not_gguf(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_bytes(b"NOPE" + bytes(100))
    assert "not a GGUF file" in _err(p)


def test_error_unknown_architecture(tmp_path, llama_parts):
    cfg, t = llama_parts
    p = tmp_path / "mamba.gguf"
    write_gguf(p, "mamba", cfg, t)
    assert "unsupported architecture 'mamba'" in _err(p)
    d = tmp_path / "hf"
    shutil.copytree(modelzoo.hf_dir("llama"), d)
    (d / "config.json").write_text((d / "config.json").read_text().replace('"llama"', '"falcon_mamba"'))
    assert "unsupported architecture 'falcon_mamba'" in _err(d)


def test_error_unsupported_tensor_type(tmp_path, llama_parts):
    cfg, t = llama_parts
    t = dict(t)
    t["blk.0.attn_norm.weight"] = np.arange(cfg.hidden, dtype=np.int32)
    p = tmp_path / "i32.gguf"
    write_gguf(p, "llama", cfg, t)
    msg = _err(p)
    assert "tensor 'blk.0.attn_norm.weight' has unsupported type I32" in msg


def test_error_missing_tensor(tmp_path, llama_parts):
    cfg, t = llama_parts
    t = {n: a for n, a in t.items() if n != "blk.1.ffn_gate.weight"}
    p = tmp_path / "missing.gguf"
    write_gguf(p, "llama", cfg, t)
    assert "tensor 'blk.1.ffn_gate.weight' missing" in _err(p)


def test_error_shape_mismatch(tmp_path, llama_parts):
    cfg, t = llama_parts
    t = dict(t)
    t["blk.0.attn_k.weight"] = np.zeros((cfg.q_dim, cfg.hidden), np.float32)
    p = tmp_path / "shape.gguf"
    write_gguf(p, "llama", cfg, t)
    msg = _err(p)
    assert f"tensor 'blk.0.attn_k.weight' has shape [{cfg.q_dim}, {cfg.hidden}], expected [{cfg.kv_dim}, {cfg.hidden}]" in msg


def test_rewritten_gguf_loads(tmp_path, llama_parts):
    """The writer used by the error tests makes a valid file (so the errors above are the intended ones)."""
    cfg, t = llama_parts
    p = tmp_path / "ok.gguf"
    write_gguf(p, "llama", cfg, t)
    cfg2, store = load_model(p)
    assert cfg2.arithmetic() == cfg.arithmetic()
    assert np.array_equal(store["blk.1.ffn_up.weight"], t["blk.1.ffn_up.weight"])


def test_error_hf_missing_and_bad_tensor(tmp_path):
    from safetensors.numpy import load_file, save_file

    src = modelzoo.hf_dir("qwen2")
    d = tmp_path / "hf"
    shutil.copytree(src, d)
    tensors = load_file(str(d / "model.safetensors"))
    del tensors["model.layers.0.self_attn.q_proj.bias"]
    save_file(tensors, str(d / "model.safetensors"))
    assert "tensor 'blk.0.attn_q.bias' missing" in _err(d)
    tensors["model.layers.0.self_attn.q_proj.bias"] = np.zeros(3, np.float32)
    save_file(tensors, str(d / "model.safetensors"))
    assert "tensor 'blk.0.attn_q.bias' has shape [3], expected [64]" in _err(d)
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:5000])
    assert "truncated safetensors" in _err(d)


def test_header_parser_agrees_with_gguf_reader():
    """ckc's fast GGUF header parser reads what gguf.GGUFReader reads."""
    import gguf

    from ckc.importers.gguf import read_header

    for family in ("llama", "gemma3"):
        path = modelzoo.gguf_file(family)
        meta, infos, _ = read_header(path, np.memmap(path, dtype=np.uint8, mode="r"))
        reader = gguf.GGUFReader(path)
        want = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
        assert meta == want
        assert [(n, d, t) for n, d, t, _ in infos] == [
            (t.name, [int(x) for x in t.shape], int(t.tensor_type)) for t in reader.tensors]
        _, store = load_model(path)
        for t in reader.tensors:
            assert np.array_equal(store[t.name], np.asarray(t.data).reshape(store.shape(t.name)))


# --------------------------------------------------------------------------
# every tensor type of real files, through ckc's byte slicing vs GGUFReader + gguf.quants

GGUF_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def test_every_quant_type_dequantizes_like_gguf(tmp_path, llama_parts):
    import gguf

    cfg, parts = llama_parts
    rng = np.random.default_rng(0)
    rows, cols = 3, 512  # 512: a multiple of every block size (K-quants: 256)
    extra = {}
    for name in GGUF_TYPES:
        qt = gguf.GGMLQuantizationType[name]
        block, tsize = gguf.GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 256, size=(rows, cols // block * tsize), dtype=np.uint8)
        # keep every fp16/bf16/f32 word finite (scales, or the values themselves):
        # clear the top exponent bits of each 16-bit word's high byte
        raw[:, 1::2] &= 0x3F
        extra[f"extra.{name}.weight"] = (raw, qt)
    p = tmp_path / "types.gguf"
    write_gguf(p, "llama", cfg, parts, raw=extra)

    _, store = load_model(p)
    by_name = {t.name: t for t in gguf.GGUFReader(p).tensors}
    for name in GGUF_TYPES:
        n = f"extra.{name}.weight"
        t = by_name[n]
        want = gguf.quants.dequantize(t.data, t.tensor_type).reshape(rows, cols)
        got = store[n]
        assert store.src_type(n) == name and got.shape == (rows, cols) and got.dtype == np.float32
        assert np.isfinite(want).all(), name
        assert np.array_equal(got, want), name


def test_hf_sharded_and_half_precision(tmp_path):
    model = modelzoo.torch_model("llama")
    ref = reference_weights("llama", model)
    d = tmp_path / "sharded"
    model.save_pretrained(d, max_shard_size="100KB")
    assert (d / "model.safetensors.index.json").is_file() and len(list(d.glob("*.safetensors"))) > 2
    _, store = load_model(d)
    assert sorted(store.names()) == sorted(ref)
    assert all(np.array_equal(store[n], ref[n]) for n in ref)
    for dtype in (torch.bfloat16, torch.float16):
        d = tmp_path / str(dtype)
        half = modelzoo.torch_model("llama").to(dtype)
        half.save_pretrained(d)
        _, store = load_model(d / "config.json")
        want = reference_weights("llama", half)
        for n in ref:
            assert store.src_type(n) == {torch.bfloat16: "BF16", torch.float16: "F16"}[dtype]
            assert np.array_equal(store[n], want[n]), n


def test_error_misc(tmp_path):
    (tmp_path / "empty.gguf").write_bytes(b"")
    assert "empty file" in _err(tmp_path / "empty.gguf")
    (tmp_path / "x.bin").write_bytes(b"hello")
    assert "unrecognized model file" in _err(tmp_path / "x.bin")
    (tmp_path / "d").mkdir()
    assert "no config.json" in _err(tmp_path / "d")


def test_hf_activation_names(tmp_path):
    import json

    def with_config(family, **changes):
        d = tmp_path / f"{family}-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(modelzoo.hf_dir(family), d)
        hp = json.loads((d / "config.json").read_text())
        hp.update(changes)
        (d / "config.json").write_text(json.dumps(hp))
        return d

    # transformers reads Gemma's legacy hidden_act="gelu" as the tanh approximation
    cfg, _ = load_model(with_config("gemma", hidden_act="gelu"))
    assert cfg.activation == "gelu_tanh"
    cfg, _ = load_model(with_config("gemma3", hidden_activation="gelu"))
    assert cfg.activation == "gelu"
    assert "unsupported activation 'relu'" in _err(with_config("gpt2", activation_function="relu"))
    assert "unsupported activation 'gelu_pytorch_tanh' for llama" in _err(with_config("llama", hidden_act="gelu_pytorch_tanh"))


def test_error_zero_sizes(tmp_path, llama_parts):
    # A corrupt size must give one line, not a division by zero.
    import dataclasses

    cfg, t = llama_parts
    p = tmp_path / "zero-heads.gguf"
    write_gguf(p, "llama", dataclasses.replace(cfg, n_heads=0), t)
    assert "attention.head_count is 0, expected a positive integer" in _err(p)

    t = dict(t)
    t["blk.0.attn_norm.weight"] = np.zeros((0, cfg.hidden), dtype=np.float32)
    p = tmp_path / "zero-dim.gguf"
    write_gguf(p, "llama", cfg, t)
    assert "tensor 'blk.0.attn_norm.weight' has invalid dimensions" in _err(p)

    d = tmp_path / "hf"
    shutil.copytree(modelzoo.hf_dir("llama"), d)
    cfg_text = (d / "config.json").read_text()
    import json

    hp = json.loads(cfg_text)
    hp["num_attention_heads"] = 0
    (d / "config.json").write_text(json.dumps(hp))
    assert "num_attention_heads is 0, expected a positive integer" in _err(d)
