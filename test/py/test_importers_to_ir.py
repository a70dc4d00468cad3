"""Imported models -> transformer dialect: the module verifies, ckc-opt re-parses
its text (and verify-shapes accepts it), the config attribute carries the
model's numbers, and every weight op names a stored tensor of its shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ckc import modelzoo
from ckc.importers import ModelImportError, load_model
from ckc.importers.to_ir import build_module


def ckc_opt(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ckc-opt"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ckc.opt"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True)


def _weights_of(module):
    from ckc.dialects.transformer import WeightOp

    return [op for op in module.walk() if isinstance(op, WeightOp)]


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_module_roundtrips_through_ckc_opt(family, tmp_path):
    cfg, store = load_model(modelzoo.hf_dir(family))
    module = build_module(cfg, store)
    funcs = [op.sym_name.data for op in module.body.block.ops]
    assert funcs == ["forward", "train_step"]
    text = str(module)
    f = tmp_path / f"{family}.mlir"
    f.write_text(text)
    proc = ckc_opt(str(f))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == text.strip()
    proc = ckc_opt(str(f), "-p", "verify-shapes")
    assert proc.returncode == 0, proc.stderr

    # every weight op reads an existing tensor: whole, or (GPT-2 fused qkv) a row slice
    for op in _weights_of(module):
        name = op.tensor_name.data
        shape = tuple(op.result.type.get_shape())
        assert name in store, name
        full = store.shape(name)
        off = op.offset.value.data
        assert shape[1:] == full[1:] and off + shape[0] <= full[0], (name, shape, off, full)
    names = {op.tensor_name.data for op in _weights_of(module)}
    assert names == set(store.names())


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_gguf_and_hf_give_the_same_module(family):
    hcfg, hstore = load_model(modelzoo.hf_dir(family))
    gcfg, gstore = load_model(modelzoo.gguf_file(family), rope_style="neox")
    assert str(build_module(hcfg, hstore)) == str(build_module(gcfg, gstore))


def test_config_attribute_values():
    from ckc.dialects.transformer import module_config

    cfg, store = load_model(modelzoo.gguf_file("gemma3"))
    c = module_config(build_module(cfg, store))
    assert (c.arch, c.layers, c.heads, c.kv_heads, c.head_dim, c.hidden) == ("gemma3", 6, 4, 2, 16, 64)
    assert c.sliding_window == 8 and c.sliding_layers == (0, 1, 2, 3, 4)
    assert (c.rope_theta, c.rope_local_theta, c.rope_local_scaling) == (1e6, 1e4, False)
    assert c.embed_scale == 8.0 and c.attn_scale == 0.25 and c.norm_offset == 0.0
    assert c.qk_norm and c.post_norms and c.tied_embeddings and (c.mlp, c.act) == ("geglu", "gelu_tanh")

    cfg, store = load_model(modelzoo.gguf_file("llama"))
    module = build_module(cfg, store, train=False)
    assert module_config(module).rope_style == "interleaved"
    attn = [op for op in module.walk() if op.name == "transformer.attention"]
    assert len(attn) == 2 and all(op.rope_style.data == "interleaved" for op in attn)

    cfg, store = load_model(modelzoo.gguf_file("gpt2"))
    c = module_config(build_module(cfg, store))
    assert (c.norm, c.rope_style, c.learned_pos, c.qkv_bias, c.o_bias, c.mlp_bias) == ("layer", "none", True, True, True, True)

    from ckc.assets import smollm2_gguf

    cfg, store = load_model(smollm2_gguf())
    module = build_module(cfg, store, train=False)
    c = module_config(module)
    assert (c.vocab, c.hidden, c.layers, c.heads, c.kv_heads, c.ffn) == (49152, 576, 30, 9, 3, 1536)
    assert len([op for op in module.walk() if op.name == "transformer.attention"]) == 30


def test_import_module_from_path():
    from ckc.importers.to_ir import import_module

    module, cfg, store = import_module(modelzoo.gguf_file("qwen2"), train=False)
    assert cfg.arch == "qwen2" and "blk.0.attn_q.bias" in store
    assert [op.sym_name.data for op in module.body.block.ops] == ["forward"]


def test_build_checks_weights():
    cfg, store = load_model(modelzoo.hf_dir("qwen3"))
    del store._entries["blk.1.attn_k_norm.weight"]
    with pytest.raises(ModelImportError, match=r"tensor 'blk\.1\.attn_k_norm\.weight' missing"):
        build_module(cfg, store)
