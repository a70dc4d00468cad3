"""`ckc compile` / `ckc run` / `ckc ir` from the command line: bad inputs give one
line `ckc: error: ...` and a non-zero exit (never a traceback); good ones work."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ckc import modelzoo
from ckc.cli import main
from gguf_util import llama_parts, write_gguf  # noqa: F401 - llama_parts is a fixture


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc != 0, err
    assert len(lines) == 1, err
    assert lines[0].startswith("ckc: error: "), err
    return lines[0]


def test_nonexistent_path(capsys, tmp_path):
    for argv in (["compile", str(tmp_path / "nope.gguf"), "-o", str(tmp_path / "out")],
                 ["run", str(tmp_path / "nope.gguf"), "--prompt", "hi"],
                 ["ir", str(tmp_path / "nope")]):
        msg = _one_line_error(capsys, argv)
        assert "nope" in msg and "no such file" in msg


def test_truncated_gguf(capsys, tmp_path):
    data = modelzoo.gguf_file("llama").read_bytes()
    p = tmp_path / "cut.gguf"
    p.write_bytes(data[: len(data) // 2])
    msg = _one_line_error(capsys, ["compile", str(p), "-o", str(tmp_path / "out")])
    assert "truncated" in msg and "cut.gguf" in msg


def test_unknown_architecture(capsys, tmp_path, llama_parts):
    cfg, t = llama_parts
    p = tmp_path / "mamba.gguf"
    write_gguf(p, "mamba", cfg, t)
    msg = _one_line_error(capsys, ["compile", str(p), "-o", str(tmp_path / "out")])
    assert "unsupported architecture 'mamba'" in msg


def test_missing_tensor(capsys, tmp_path, llama_parts):
    cfg, t = llama_parts
    p = tmp_path / "missing.gguf"
    write_gguf(p, "llama", cfg, {n: a for n, a in t.items() if n != "blk.1.ffn_gate.weight"})
    msg = _one_line_error(capsys, ["compile", str(p), "-o", str(tmp_path / "out")])
    assert "blk.1.ffn_gate.weight" in msg and "missing" in msg


def test_shape_mismatch(capsys, tmp_path, llama_parts):
    cfg, t = llama_parts
    t = dict(t)
    t["blk.0.attn_k.weight"] = np.zeros((cfg.q_dim, cfg.hidden), np.float32)
    p = tmp_path / "shape.gguf"
    write_gguf(p, "llama", cfg, t)
    msg = _one_line_error(capsys, ["run", str(p), "--prompt", "hello"])
    assert "blk.0.attn_k.weight" in msg and f"expected [{cfg.kv_dim}, {cfg.hidden}]" in msg


def test_empty_prompt(capsys):
    msg = _one_line_error(capsys, ["run", str(modelzoo.gguf_file("llama")), "--prompt", ""])
    assert "empty prompt" in msg


def test_bad_sampling_options(capsys):
    g = str(modelzoo.gguf_file("llama"))
    assert "top-p" in _one_line_error(capsys, ["run", g, "--prompt", "a", "--top-p", "0"])
    assert "temperature" in _one_line_error(capsys, ["run", g, "--prompt", "a", "--temperature", "-1"])
    assert "threads" in _one_line_error(capsys, ["run", g, "--prompt", "a", "--threads", "-2"])


def test_run_greedy_and_cache(capsys):
    """`ckc run` compiles on first use into the cache, then generates; greedy
    output equals transformers' greedy continuation of the same ids."""
    import torch

    from ckc import tokenizer

    g = modelzoo.gguf_file("llama")
    argv = ["run", str(g), "--prompt", "the cat", "--max-tokens", "8", "--threads", "1"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.out.startswith("the cat") and "tok/s" in out.err
    tok = tokenizer.load(g)
    ids = tok.encode("the cat", add_special=True)
    ref = modelzoo.torch_model("llama").eval().generate(
        torch.tensor([ids]), max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)
    new = ref[0, len(ids):].tolist()
    stops = tok.eog_ids
    if any(t in stops for t in new):
        new = new[: min(i for i, t in enumerate(new) if t in stops)]
    assert out.out.rstrip("\n") == "the cat" + tok.decode(new)
    # second run: cached, same text
    assert main(argv) == 0
    assert capsys.readouterr().out == out.out


def test_ir_stages(capsys):
    g = str(modelzoo.gguf_file("gpt2"))
    assert main(["ir", g, "--stage", "tensorop"]) == 0
    assert "func.func @decode" in capsys.readouterr().out
    assert main(["ir", g, "--stage", "buffer"]) == 0
    text = capsys.readouterr().out
    assert "buffer.arena @weights" in text and "gemm<" in text
    assert main(["ir", g, "--stage", "c", "--emit-c"]) == 0
    assert "int ckc_gen_decode(" in capsys.readouterr().out


def test_exit_status_from_a_real_process(tmp_path):
    code = "import sys; from ckc.cli import main; sys.exit(main())"  # what the `ckc` script runs
    r = subprocess.run([sys.executable, "-c", code, "compile", str(tmp_path / "x.gguf"), "-o", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("ckc: error:")


def test_compile_dump_ir(capsys, tmp_path):
    out = tmp_path / "art"
    g = str(modelzoo.gguf_file("gpt2"))
    assert main(["compile", g, "-o", str(out), "--dump-ir", "--simd", "avx2", "--max-tokens-per-chunk", "8"]) == 0
    err = capsys.readouterr().err
    for stage in ("import", "lower-transformer", "fuse-rmsnorm-qkv-rope", "bufferize", "pack-weights",
                  "pack-quant", "plan-memory", "select-simd", "lower-to-c", "cc"):
        assert f"ckc: {stage}" in err, err  # progress with per-stage times
    names = sorted(p.name for p in (out / "ir").iterdir())
    assert names == ["00-transformer.mlir", "01-lower-transformer.mlir", "02-fuse-rmsnorm-qkv-rope.mlir",
                     "03-bufferize.mlir", "04-pack-weights.mlir", "05-pack-quant.mlir", "06-plan-memory.mlir",
                     "07-select-simd.mlir", "08-lower-to-c.mlir"]
    assert "transformer.attention" in (out / "ir" / "00-transformer.mlir").read_text()
    packed = (out / "ir" / "04-pack-weights.mlir").read_text()
    assert "buffer.call gemm_packed ins(" in packed and " layout p32" in packed
    assert "<avx2>" in (out / "ir" / "07-select-simd.mlir").read_text()
    assert "ckc_gen_max_tokens : !c.int = 8" in (out / "ir" / "08-lower-to-c.mlir").read_text()
