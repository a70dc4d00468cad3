"""ckc.llamacpp's quantize and bench (what bench/inference.py uses) on a tiny Llama.

- quantize: ckc's F32 export -> Q8_0 -> F32 through llama_model_quantize; the F32
  file holds exactly the weights ckc reads from the Q8_0 one (bit for bit), and
  llama.cpp on that F32 file gives ckc's logits on the Q8_0 file within 1e-5
  relative (the same arithmetic as test/py/test_llamacpp_export.py): this is how
  the bench gives llama.cpp fp32 weights equal to ckc's dequantized ones.
- bench: positive, finite token rates for both KV settings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ckc import llamacpp, modelzoo
from ckc.commands.run import compiled_dir
from ckc.importers import load_model
from ckc.pipeline import CompileOptions
from ckc.session import Session
from ckc.train.export import export_gguf

TOL = 1e-5


@pytest.fixture(scope="module")
def f32_gguf(tmp_path_factory):
    cfg, store = load_model(modelzoo.hf_dir("llama"))
    out = tmp_path_factory.mktemp("llamacpp") / "m.gguf"
    return export_gguf(cfg, {n: np.array(store[n]) for n in store}, out, tokenizer_src=modelzoo.gguf_file("llama"))


def test_quantize_round_trip_keeps_ckc_weights_and_logits(f32_gguf, tmp_path):
    import gguf

    q8 = llamacpp.quantize(f32_gguf, tmp_path / "q8.gguf", "Q8_0")
    back = llamacpp.quantize(q8, tmp_path / "f32.gguf", "F32")
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(q8).tensors}
    assert types["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["output_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert {t.tensor_type for t in gguf.GGUFReader(back).tensors} == {gguf.GGMLQuantizationType.F32}
    _, sq = load_model(q8)
    _, sf = load_model(back)
    assert sorted(sq.names()) == sorted(sf.names())
    for n in sq.names():
        assert np.array_equal(np.array(sq[n]), np.array(sf[n])), n
    toks = np.arange(5, 29, dtype=np.int32)
    # ckc on the Q8_0 file dequantized (weights="f32"): the same fp32 weights as llama.cpp on `back`
    with Session(compiled_dir(q8, CompileOptions(weights="f32")), threads=1) as s:
        ref = s.prefill_all(toks)
    got = llamacpp.logits(back, toks, all_positions=True)
    diff = float(np.abs(got - ref).max())
    assert diff <= TOL * max(1.0, float(np.abs(ref).max())), diff
    assert np.array_equal(got.argmax(-1), ref.argmax(-1))
    assert not list(tmp_path.glob(".*.tmp"))


def test_bench_reports_rates(f32_gguf):
    prompt = np.arange(5, 21, dtype=np.int32)
    for kv_f32 in (True, False):
        p, d = llamacpp.bench(f32_gguf, prompt, decode=4, reps=1, threads=1, kv_f32=kv_f32)
        assert math.isfinite(p) and math.isfinite(d) and p > 0 and d > 0


def test_quantize_errors(f32_gguf, tmp_path):
    with pytest.raises(ValueError, match="ftype 'Q9_9' unknown"):
        llamacpp.quantize(f32_gguf, tmp_path / "x.gguf", "Q9_9")
    with pytest.raises(llamacpp.LlamaCppError) as e:
        llamacpp.quantize(tmp_path / "missing.gguf", tmp_path / "x.gguf", "F32")
    assert "\n" not in str(e.value) and "quantize" in str(e.value)
    assert not (tmp_path / "x.gguf").exists() and not list(tmp_path.glob(".x.gguf*"))
