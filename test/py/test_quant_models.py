"""Quantized GGUF weights run as stored (issue 11): per family, a tiny GGUF whose
Linear and embedding weights are Q8_0, Q4_0 or F16 (quantized by gguf-py's own
``gguf.quants.quantize`` from the zoo's random-weight fp32 GGUF) compiled as
stored (qgemm / qembedding kernels, the default ``--weights keep``) vs the same
file dequantized to fp32 (``weights="f32"``: the fp32 kernels on gguf's exact
dequantization). The weights are the same numbers on both sides, so:

- F16: the kernels convert W to fp32 and use fp32 FMA: only the summation order
  differs, max |d logit| <= 1e-4 of the logits' std (measured <= 3e-6);
- Q8_0 / Q4_0: activations are quantized on the fly to 8-bit blocks of 32
  (step amax/127, ~0.6% rms error per GEMM input), compounded through the
  GEMMs in series over 2-6 layers: rms |d logit| <= 0.05 std, max <= 0.2 std
  (measured rms 1.0-2.4%, max 3.5-9.2% of std), and the same top-1 token at
  every step (prefill of 20 tokens, 3 decode steps).

Also: the bad inputs of a quantized GGUF, each one line naming the tensor and
its type, exit status 1.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ckc import modelzoo
from ckc.cli import main

from gguf_util import requantize

# one block format per family (both formats, all families would double the run
# time; the kernels themselves are tested per format in test_kernels_quant*.py),
# F16 on one (GPT-2's fused qkv slices, read at row offsets, and its tied 50257-row
# embedding are covered by its Q4_0 case)
CASES = [("llama", "Q8_0"), ("llama", "F16"), ("qwen2", "Q4_0"), ("qwen3", "Q8_0"), ("gemma", "Q4_0"),
         ("gemma3", "Q8_0"), ("gpt2", "Q4_0")]


def _logits(d, ids):
    from ckc.session import Session

    with Session(d, threads=1) as s:
        return np.stack([s.prefill(ids).copy()] + [s.decode(t).copy() for t in (5, 9, 11)])


@pytest.mark.parametrize("family,qtype", CASES)
def test_stored_weights_vs_dequantized(tmp_path, family, qtype):
    import gguf

    from ckc import weights as bump
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions

    p = tmp_path / f"{family}-{qtype}.gguf"
    requantize(modelzoo.gguf_file(family), p, gguf.GGMLQuantizationType[qtype])
    q = compiled_dir(p, CompileOptions(max_tokens=16))
    f = compiled_dir(p, CompileOptions(max_tokens=16, weights="f32"))
    table = {e.name: e.dtype_name for e in bump.read_table(q / "weights.bump")}
    want = {"Q8_0": ("q8_0", "q8_0r8"), "Q4_0": ("q4_0", "q4_0r8"), "F16": ("f16",)}[qtype]
    assert table["token_embd.weight"] == want[0] and table["blk.0.ffn_up.weight"] == want[-1]
    assert {e.dtype_name for e in bump.read_table(f / "weights.bump")} <= {"f32", "f32p32"}
    ids = np.arange(3, 23, dtype=np.int32)
    lf, lq = _logits(f, ids), _logits(q, ids)
    std = lf.std()
    d = np.abs(lf - lq)
    if qtype == "F16":
        assert d.max() <= 1e-4 * std, d.max() / std
    else:
        assert np.sqrt((d ** 2).mean()) <= 0.05 * std and d.max() <= 0.2 * std, (d.max() / std)
        np.testing.assert_array_equal(lf.argmax(1), lq.argmax(1))


def test_parity_against_ir_reads_the_stored_weights(tmp_path):
    """`ckc parity --against ir` on a Q4_0 model: the tensorop reference
    evaluates the same IR, its !quant.q4_0 weights dequantized with gguf-py; the
    quantized kernels' outputs are judged by cosine (ckc/parity/compare.py) and
    none diverges."""
    import gguf

    from ckc.parity.run import parity

    p = tmp_path / "llama-q4_0.gguf"
    requantize(modelzoo.gguf_file("llama"), p, gguf.GGMLQuantizationType.Q4_0)
    r = parity(p, "ir", ids=list(range(3, 15)), tokens=2, out_dir=tmp_path / "parity")
    kernels = {x["kernel"] for x in r["rows"]}
    assert {"qgemm_packed_q4_0", "qembedding_q4_0"} <= {k.split("<")[0] for k in kernels}, kernels
    assert r["first_divergence"] is None, [x for x in r["rows"] if x["status"] != "OK"][:3]


# -- bad input: one line naming the tensor and its type


def _tiny_quant(tmp_path, raw_up) -> "Path":
    """The tiny llama of test/py/gguf_util.py with blk.0.ffn_up.weight replaced by ``raw_up``."""
    from gguf_util import write_gguf

    from ckc.importers import load_model

    cfg, store = load_model(modelzoo.gguf_file("llama"), weights="f32")
    tensors = {n: np.array(store[n]) for n in store.names() if n != "blk.0.ffn_up.weight"}
    p = tmp_path / "bad.gguf"
    write_gguf(p, "llama", cfg, tensors, raw={"blk.0.ffn_up.weight": raw_up})
    return p


def _one_line(capsys, p) -> str:
    rc = main(["compile", str(p), "-o", str(p.parent / "out")])
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith(f"ckc: error: {p}: "), lines
    return lines[0]


def test_type_this_build_cannot_run(capsys, tmp_path):
    import gguf

    # IQ4_NL: 18 bytes per 32 values, a type gguf-py can dequantize but ckc has no kernel for
    t = gguf.GGMLQuantizationType.IQ4_NL
    p = _tiny_quant(tmp_path, (np.zeros((160, 36), np.uint8), t))
    msg = _one_line(capsys, p)
    assert "tensor 'blk.0.ffn_up.weight' has type IQ4_NL, which this build cannot run" in msg


def test_row_not_whole_blocks(capsys, tmp_path):
    import gguf

    # Q8_0 rows of 48 values (1.5 blocks): gguf's writer refuses them, so the
    # header's dims [64, 160] of a proper tensor are patched to [48, 160]
    up = gguf.quants.quantize(np.ones((160, 64), np.float32), gguf.GGMLQuantizationType.Q8_0)
    p = _tiny_quant(tmp_path, (up, gguf.GGMLQuantizationType.Q8_0))
    name = b"blk.0.ffn_up.weight"
    info = struct.pack("<Q", len(name)) + name + struct.pack("<IQQ", 2, 64, 160)
    blob = p.read_bytes()
    assert blob.count(info) == 1
    p.write_bytes(blob.replace(info, info[:-16] + struct.pack("<QQ", 48, 160)))
    msg = _one_line(capsys, p)
    assert "tensor 'blk.0.ffn_up.weight' of type Q8_0: row length 48 is not a multiple of the 32-value block" in msg


def test_truncated_block(capsys, tmp_path):
    import gguf

    up = gguf.quants.quantize(np.ones((160, 64), np.float32), gguf.GGMLQuantizationType.Q4_1)
    p = _tiny_quant(tmp_path, (up, gguf.GGMLQuantizationType.Q4_1))
    # ffn_up is the last tensor written: cut the file inside its last block
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) - 20 * 160 + 7])
    msg = _one_line(capsys, p)
    assert "truncated" in msg and "Q4_1" in msg, msg


def test_weights_option_quantizes_at_compile_time(tmp_path):
    """`--weights q8_0` on an F32 GGUF: quantize-weights retypes the Linear and
    embedding weights and weights.bump gets them through ckc/quantize.py, whose
    Q8_0 bytes equal gguf-py's. So the library equals the one compiled from the
    same model requantized to Q8_0 by gguf-py and kept as stored: the same
    weights.bump bytes and bit-identical logits. `--weights f16` on that Q8_0
    file converts stored blocks (dequantized, then rounded to f16, ~2^-11
    relative per weight; the f16 kernels use fp32 FMA): logits within 0.01 of
    the logits' std of the same file dequantized to fp32 (measured 0.0037)."""
    import gguf

    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions

    src = modelzoo.gguf_file("llama")
    q8 = tmp_path / "llama-Q8_0.gguf"
    requantize(src, q8, gguf.GGMLQuantizationType.Q8_0)
    ours = compiled_dir(src, CompileOptions(max_tokens=16, weights="q8_0"))
    theirs = compiled_dir(q8, CompileOptions(max_tokens=16))
    assert (ours / "weights.bump").read_bytes() == (theirs / "weights.bump").read_bytes()
    ids = np.arange(3, 23, dtype=np.int32)
    np.testing.assert_array_equal(_logits(ours, ids), _logits(theirs, ids))
    lh = _logits(compiled_dir(q8, CompileOptions(max_tokens=16, weights="f16")), ids)
    lf = _logits(compiled_dir(q8, CompileOptions(max_tokens=16, weights="f32")), ids)
    assert np.abs(lf - lh).max() <= 0.01 * lf.std(), np.abs(lf - lh).max() / lf.std()
    np.testing.assert_array_equal(lf.argmax(1), lh.argmax(1))
