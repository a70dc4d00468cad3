"""ckc.train.export: trained weights -> Hugging Face folder and GGUF, round trips.

Exact equality everywhere except logits through transformers, whose tolerance is
stated (1e-6 absolute; they come out identical in practice).
"""

import json
import struct

import numpy as np
import pytest

import torch  # a pinned test dependency: missing is a failure, not a skip
import transformers

from ckc import modelzoo
from ckc.importers import load_model
from ckc.train.export import ExportError, export_gguf, export_hf, hf_config_dict, write_safetensors

FAMILIES = modelzoo.FAMILIES
PROMPT = [[1, 5, 9, 33, 7, 100, 3, 2, 8, 17, 4, 250, 11]]


def _weights(store):
    return {n: np.array(store[n]) for n in store}


@pytest.mark.parametrize("family", FAMILIES)
def test_hf_export_round_trip_and_transformers_logits(tmp_path, family):
    src = modelzoo.hf_dir(family)
    cfg, store = load_model(src)
    w = _weights(store)
    out = export_hf(cfg, w, tmp_path / "hf", tokenizer_src=src)
    cfg2, store2 = load_model(out)
    assert cfg2.arithmetic() == cfg.arithmetic()
    assert sorted(store2.names()) == sorted(w)
    for n in w:
        assert np.array_equal(store2[n], w[n]), n
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    ref = modelzoo.torch_model(family)
    x = torch.tensor(PROMPT)
    with torch.no_grad():
        diff = (model(x).logits - ref(x).logits).abs().max().item()
    assert diff <= 1e-6, diff


@pytest.mark.parametrize("family", FAMILIES)
def test_gguf_export_matches_llama_cpp_converter(tmp_path, family):
    """Our GGUF loads back to the same weights and config, and holds exactly the tensors
    (names, layout) and arch metadata llama.cpp's convert_hf_to_gguf.py writes."""
    import gguf

    ref_gguf = modelzoo.gguf_file(family)
    cfg, store = load_model(modelzoo.hf_dir(family))
    w = _weights(store)
    tok_src = modelzoo.hf_dir(family) if family == "gpt2" else ref_gguf
    path = export_gguf(cfg, w, tmp_path / "m.gguf", tokenizer_src=tok_src)
    cfg2, store2 = load_model(path, rope_style="neox")
    assert cfg2.arithmetic() == cfg.arithmetic()
    for n in w:
        assert np.array_equal(store2[n], w[n]), n
    _, raw = load_model(path)           # llama: Q/K rows in llama.cpp's interleaved order
    _, conv = load_model(ref_gguf)
    assert sorted(raw.names()) == sorted(conv.names())
    for n in conv:
        assert np.array_equal(raw[n], conv[n]), n
    a, b = gguf.GGUFReader(ref_gguf), gguf.GGUFReader(path)
    for key, field in a.fields.items():
        if key.startswith((f"{family}.", "tokenizer.")):
            assert key in b.fields, key
            assert b.fields[key].contents() == field.contents(), key


def test_exported_tokenizer_encodes_like_the_source(tmp_path):
    from ckc import tokenizer

    text = "Now is the winter of our discontent <|endoftext|> 123"
    for family, tok_src in (("llama", modelzoo.gguf_file("llama")), ("gpt2", modelzoo.hf_dir("gpt2"))):
        cfg, store = load_model(modelzoo.hf_dir(family))
        path = export_gguf(cfg, _weights(store), tmp_path / f"{family}.gguf", tokenizer_src=tok_src)
        a, b = tokenizer.load(tok_src), tokenizer.load(path)
        assert len(a) == len(b)
        assert a.encode(text) == b.encode(text)


def test_safetensors_writer_is_read_by_the_reference_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b.c": np.float32([1.5]),
         "z": np.zeros((0, 4), np.float32)}
    p = write_safetensors(tmp_path / "x.safetensors", t)
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and json.loads(raw[8:8 + n])["__metadata__"] == {"format": "pt"}
    got = st.load_file(str(p))
    assert sorted(got) == sorted(t)
    for k in t:
        assert got[k].dtype == np.float32 and np.array_equal(got[k], t[k])


def test_export_errors(tmp_path):
    cfg, store = load_model(modelzoo.hf_dir("llama"))
    w = _weights(store)
    w.pop("blk.1.ffn_up.weight")
    with pytest.raises(ExportError, match="'blk.1.ffn_up.weight' missing"):
        export_hf(cfg, w, tmp_path / "x")
    w = _weights(store)
    w["output_norm.weight"] = w["output_norm.weight"][:3]
    with pytest.raises(ExportError, match=r"shape \[3\], expected \[64\]"):
        export_gguf(cfg, w, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists() and not list(tmp_path.glob(".x.gguf*"))
    assert hf_config_dict(cfg)["model_type"] == "llama"
