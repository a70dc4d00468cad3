"""Malformed model files through `ckc compile`: each fails fast with one line
`ckc: error: <file>: <what>` and exit status 1, before any large allocation.

GGUF headers are written by hand (struct) so every count, length, dimension and
offset can be set to what a corrupt or hostile file holds; see also
test/py/test_fuzz.py, which runs the loaders on mutated files.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from ckc.cli import main

U32, U64, STR, ARR = 4, 10, 8, 9  # GGUFValueType codes
F32 = 0  # GGMLQuantizationType.F32


def _s(text: str | bytes) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def gguf(kvs=(), tensors=(), *, n_kv=None, n_tensors=None, align=32, data=b"") -> bytes:
    """A GGUF v3 file. kvs: raw (key, type, payload bytes); tensors: (name, dims, type, offset)."""
    out = b"GGUF" + struct.pack("<I", 3)
    out += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    for key, vtype, payload in kvs:
        out += _s(key) + struct.pack("<I", vtype) + payload
    for name, dims, ttype, offset in tensors:
        out += _s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
    out += bytes(-len(out) % align)
    return out + data


ARCH = ("general.architecture", STR, _s("llama"))


def _error(capsys, tmp_path, name: str, blob: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(blob)
    rc = main(["compile", str(p), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ckc: error: {p}: "), err
    assert not (tmp_path / "out").exists()
    return lines[0]


@pytest.mark.parametrize("field", ["n_tensors", "n_kv"])
def test_huge_counts(capsys, tmp_path, field):
    msg = _error(capsys, tmp_path, "count.gguf", gguf([ARCH], **{field: 1 << 62}))
    what = "tensor count" if field == "n_tensors" else "metadata count"
    assert f"{what} {1 << 62} cannot fit in a file of" in msg


def test_huge_string_length(capsys, tmp_path):
    blob = gguf([("general.name", STR, struct.pack("<Q", 1 << 63) + b"abc")])
    msg = _error(capsys, tmp_path, "string.gguf", blob)
    assert f"metadata 'general.name' at byte" in msg and f"has length {1 << 63}, past the end" in msg


def test_huge_key_length(capsys, tmp_path):
    blob = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", (1 << 64) - 1) + b"k" * 16
    msg = _error(capsys, tmp_path, "key.gguf", blob)
    assert "metadata key at byte 24 has length 18446744073709551615, past the end" in msg


@pytest.mark.parametrize("etype,n", [(U32, 1 << 61), (STR, 1 << 40), (U64, 5000)])
def test_huge_array_length(capsys, tmp_path, etype, n):
    blob = gguf([ARCH, ("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", etype, n) + bytes(64))])
    msg = _error(capsys, tmp_path, "array.gguf", blob)
    assert f"metadata 'tokenizer.ggml.tokens': array at byte" in msg and f"has {n} elements, more than" in msg


def test_nested_arrays(capsys, tmp_path):
    inner = struct.pack("<IQ", ARR, 1) * 2000  # deep nesting would overflow the recursion
    msg = _error(capsys, tmp_path, "nested.gguf", gguf([ARCH, ("x", ARR, inner)]))
    assert "metadata 'x': nested arrays are not supported" in msg


def test_more_than_four_dims(capsys, tmp_path):
    msg = _error(capsys, tmp_path, "dims.gguf", gguf([ARCH], [("t", [1, 1, 1, 1, 1], F32, 0)], data=bytes(32)))
    assert "tensor 't' has 5 dimensions (1 to 4 expected)" in msg


def test_dim_above_2_40(capsys, tmp_path):
    msg = _error(capsys, tmp_path, "bigdim.gguf", gguf([ARCH], [("t", [(1 << 40) + 1, 1], F32, 0)], data=bytes(32)))
    assert f"tensor 't' has invalid dimensions [{(1 << 40) + 1}, 1] (each must be 1 to 2^40)" in msg


def test_offset_near_2_64(capsys, tmp_path):
    off = (1 << 64) - 32
    msg = _error(capsys, tmp_path, "offset.gguf", gguf([ARCH], [("t", [8], F32, off)], data=bytes(32)))
    assert f"truncated GGUF: tensor 't' at data offset {off} starts past the end of the file (160 bytes)" in msg


def test_misaligned_tensor(capsys, tmp_path):
    msg = _error(capsys, tmp_path, "misaligned.gguf", gguf([ARCH], [("t", [4], F32, 4)], data=bytes(64)))
    assert "tensor 't' at data offset 4 is not 32-byte aligned" in msg


def test_overlapping_tensors(capsys, tmp_path):
    blob = gguf([ARCH], [("a", [16], F32, 0), ("b", [8], F32, 32)], data=bytes(128))
    msg = _error(capsys, tmp_path, "overlap.gguf", blob)
    assert "tensors 'a'" in msg and "and 'b'" in msg and "overlap in the file" in msg


def test_bad_alignment_key(capsys, tmp_path):
    msg = _error(capsys, tmp_path, "align.gguf", gguf([ARCH, ("general.alignment", U32, struct.pack("<I", 24))]))
    assert "general.alignment is 24, expected a power of two" in msg


def test_tensor_name_with_newline(capsys, tmp_path):
    """Names come from the file: a newline in one must not break the one line."""
    msg = _error(capsys, tmp_path, "nl.gguf", gguf([ARCH], [("a\nb", [1] * 6, F32, 0)], data=bytes(32)))
    assert "tensor 'a\\nb' has 6 dimensions" in msg


# -- metadata of the wrong type, through a real (tiny) model written by gguf

def _tiny(tmp_path, name: str, edit) -> bytes:
    import gguf as g

    from ckc.importers.config import ModelConfig, family_defaults

    cfg = ModelConfig(arch="llama", vocab_size=16, hidden=8, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=4,
                      ffn=16, max_context=32, **family_defaults("llama"))
    p = tmp_path / name
    w = g.GGUFWriter(str(p), "llama")
    w.add_context_length(32)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-6)
    edit(w)
    for n, s in cfg.expected_shapes().items():
        w.add_tensor(n, np.ones(s, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return p.read_bytes()


@pytest.mark.parametrize("edit,expect", [
    (lambda w: w.add_string("llama.block_count", "two"), "llama.block_count is 'two', expected a positive integer"),
    (lambda w: w.add_float32("llama.block_count", 1.5), "llama.block_count is 1.5, expected a positive integer"),
    (lambda w: w.add_uint32("llama.block_count", 0), "llama.block_count is 0, expected a positive integer"),
    (lambda w: w.add_uint64("llama.block_count", 1 << 60), f"llama.block_count is {1 << 60}, expected a positive"),
    (lambda w: w.add_uint32("llama.block_count", 1000), "llama.block_count is 1000 but the model has only 12 tensors"),
])
def test_metadata_of_the_wrong_type(capsys, tmp_path, edit, expect):
    msg = _error(capsys, tmp_path, "typed.gguf", _tiny(tmp_path, "src.gguf", edit))
    assert expect in msg


def test_tiny_model_is_accepted(tmp_path):
    """The control: the same writer with a proper block_count loads."""
    from ckc.importers import load_model

    p = tmp_path / "ok.gguf"
    p.write_bytes(_tiny(tmp_path, "src.gguf", lambda w: w.add_block_count(1)))
    cfg, store = load_model(p)
    assert cfg.n_layers == 1 and store["blk.0.ffn_up.weight"].shape == (16, 8)


# -- Hugging Face directories

def _hf_dir(tmp_path, config: bytes | str, st: bytes | None = None):
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_bytes(config.encode() if isinstance(config, str) else config)
    if st is None:
        h = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
        st = struct.pack("<Q", len(h)) + h + bytes(4)
    (d / "model.safetensors").write_bytes(st)
    return d


def _dir_error(capsys, d, culprit) -> str:
    rc = main(["compile", str(d), "-o", str(d.parent / "out")])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"ckc: error: {culprit}: "), err
    return lines[0]


LLAMA = {"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
         "intermediate_size": 16, "vocab_size": 16}


@pytest.mark.parametrize("config,expect", [
    ("{", "malformed JSON (Expecting property name"),
    (b"\xff\xfe{}", "malformed JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    (json.dumps({**LLAMA, "hidden_size": "big"}), "hidden_size is 'big', expected a positive integer"),
    (json.dumps({**LLAMA, "num_hidden_layers": 10 ** 12}), "num_hidden_layers is 1000000000000, expected a positive"),
    (json.dumps({**LLAMA, "rms_norm_eps": "tiny"}), "rms_norm_eps is 'tiny', expected a number"),
    (json.dumps({**LLAMA, "rope_scaling": 3}), "malformed config (TypeError"),
    (json.dumps({**LLAMA, "num_hidden_layers": 50}), "num_hidden_layers is 50 but the model has only 1 tensors"),
])
def test_malformed_config_json(capsys, tmp_path, config, expect):
    d = _hf_dir(tmp_path, config)
    assert expect in _dir_error(capsys, d, d / "config.json")


@pytest.mark.parametrize("header_len,expect", [
    (1 << 63, f"truncated safetensors file (header of {1 << 63} bytes"),
    ((1 << 64) - 1, f"truncated safetensors file (header of {(1 << 64) - 1} bytes"),
])
def test_safetensors_huge_header_length(capsys, tmp_path, header_len, expect):
    d = _hf_dir(tmp_path, json.dumps(LLAMA), struct.pack("<Q", header_len) + b"{}")
    assert expect in _dir_error(capsys, d, d / "model.safetensors")


@pytest.mark.parametrize("header,expect", [
    ({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 4]}}, "data_offsets [0, 4] hold 4 bytes, F32 [2, 3] needs 24"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, "invalid data_offsets [8, 4]"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "invalid shape [-1]"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, "tensors 'a' and 'b' overlap"),
    ({"a": [1]}, "tensor 'a': header entry is not an object"),
])
def test_safetensors_bad_entries(capsys, tmp_path, header, expect):
    h = json.dumps(header).encode()
    d = _hf_dir(tmp_path, json.dumps(LLAMA), struct.pack("<Q", len(h)) + h + bytes(8))
    assert expect in _dir_error(capsys, d, d / "model.safetensors")


def test_exit_status_from_a_process(tmp_path):
    """The real `ckc` process: status 1, one line on stderr, nothing on stdout."""
    p = tmp_path / "count.gguf"
    p.write_bytes(gguf([ARCH], n_tensors=1 << 62))
    proc = subprocess.run([sys.executable, "-m", "ckc.cli", "compile", str(p), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"ckc: error: {p}: tensor count {1 << 62} cannot fit in a file "
                                                f"of {p.stat().st_size} bytes"]


@pytest.mark.parametrize("blob", [
    gguf([ARCH], n_tensors=1 << 62),
    gguf([ARCH], [("a", [16], F32, 0), ("b", [8], F32, 32)], data=bytes(128)),
    gguf([ARCH, ("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 1 << 40) + bytes(64))]),
], ids=["count", "overlap", "array"])
def test_ckc_run_rejects_too(capsys, tmp_path, blob):
    """`ckc run` reads the same files (model and vocabulary): the same one line."""
    p = tmp_path / "bad.gguf"
    p.write_bytes(blob)
    rc = main(["run", str(p), "--prompt", "hi"])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith(f"ckc: error: {p}: "), err
