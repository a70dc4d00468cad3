"""`ckc parity` (ckc/parity/): every kernel call's outputs against a reference,
and the bisector naming a planted bug.

- Unmodified pipeline: every op of every family's tiny model is OK against
  transformers and against llama.cpp on the GGUF (prefill of the prompt and 2
  decode steps), and against the tensorop IR; the tolerance per op kind is
  ckc.parity.compare.tolerance (max |x - ref| / max |ref| <= 1e-4,
  embeddings 1e-6; against llama.cpp GELU and what follows it 2e-3).
- Planted bugs (test/py/data/parity_plants.py, loaded with --load-plugin, so
  only these builds have them): layer 1's swiglu call pointed at the mul
  kernel after select-simd, and a pass dropping layer 1's RoPE on k. `ckc
  parity` names that op and layer as the first divergence (and the input it
  read as still OK); `ckc parity --stages` names the planted pass (the
  tensorop one by the tensorop reference, the buffer one by the buffer
  dialect's interpreter, ckc/parity/ref_buffer.py).
- --mode train: one compiled training step's activations, activation
  gradients and parameter gradients against torch autograd (1e-4).
- lower-to-c{record}: off, model.c has no trace of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckc import modelzoo
from ckc.cli import main
from ckc.parity.run import parity

PLANTS = str(Path(__file__).parent / "data" / "parity_plants.py")
PROMPT = "ROMEO: What light"


def spec(extra_tensorop: str = "", extra_buffer: str = "") -> str:
    return ",".join(p for p in (
        "lower-transformer{modes=prefill,prefill_all,decode}", extra_tensorop, "fuse-rmsnorm-qkv-rope",
        "bufferize{max_tokens=64}", "pack-weights", "plan-memory", "select-simd{target=native}", extra_buffer,
        "lower-to-c") if p)


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_every_op_ok_against_transformers(family):
    r = parity(modelzoo.hf_dir(family), "transformers", prompt=PROMPT, mode="decode", tokens=2)
    bad = [(x["function"], x["op"], x["layer"], x["status"], x["max_rel"]) for x in r["rows"] if x["status"] != "OK"]
    assert not bad, bad
    assert r["first_divergence"] is None
    assert {x["function"] for x in r["rows"]} == {"prefill", "decode"}
    assert [x["function"] for x in r["runs"]] == ["prefill", "decode", "decode"]
    # every output of every run was compared
    assert all(x["runs"] == (1 if x["function"] == "prefill" else 2) for x in r["rows"])


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_every_op_ok_against_llamacpp(family):
    """The GGUF llama.cpp's converter wrote, compiled by ckc and run by llama.cpp
    (tools/llamacpp/ckc_llama.c `tensors`, nodes seen through cb_eval)."""
    r = parity(modelzoo.gguf_file(family), "llama.cpp", prompt=PROMPT, mode="decode", tokens=2)
    bad = [(x["function"], x["op"], x["layer"], x["status"], x["max_rel"]) for x in r["rows"] if x["status"] != "OK"]
    assert not bad, bad
    # GELU families: llama.cpp's fp16 GELU table; the ops after it inherit its tolerance
    gelu = family in ("gemma", "gemma3", "gpt2")
    assert (max(x["tolerance"] for x in r["rows"]) == 2e-3) == gelu


def test_every_op_ok_against_ir():
    r = parity(modelzoo.hf_dir("qwen3"), "ir", prompt=PROMPT, mode="decode", tokens=2)
    assert r["summary"]["diverged"] == 0 and r["summary"]["no_counterpart"] == 0
    assert r["first_divergence"] is None


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen3"])
def test_train_step_against_torch_autograd(family, tmp_path, capsys):
    """--mode train: every saved activation, activation gradient and parameter
    gradient of one compiled training step against torch autograd (1e-4);
    only what a forward kernel saves for its backward (.rstd, .mean, .lse)
    and the per-row losses have no counterpart."""
    out = tmp_path / "out"
    assert main(["parity", str(modelzoo.hf_dir(family)), "--mode", "train", "--prompt", PROMPT,
                 "-o", str(out)]) == 0
    r = json.loads((out / "parity.json").read_text())
    assert r["first_divergence"] is None and r["summary"]["diverged"] == 0
    assert abs(r["loss"] - r["torch_loss"]) <= 1e-5
    rows = r["rows"]
    unmatched = {x["buffer"].split(".")[-1] for x in rows if x["status"] == "no counterpart"}
    assert unmatched <= {"rstd", "mean", "lse", "losses"}, unmatched
    params = [x for x in rows if x["buffer"].startswith("grad.")]
    from ckc.importers import load_model

    cfg, _ = load_model(modelzoo.hf_dir(family))
    assert {x["buffer"][5:] for x in params} == set(cfg.expected_shapes())
    assert any(x["buffer"].startswith("d_l") for x in rows) and all(x["status"] == "OK" for x in params)


def _cli(tmp_path, capsys, *argv) -> tuple[str, dict | None]:
    out = tmp_path / "out"
    assert main(["parity", str(modelzoo.hf_dir("llama")), "--prompt", PROMPT, "-o", str(out),
                 "--load-plugin", PLANTS, *argv]) == 0
    text = capsys.readouterr().out
    js = out / ("stages.json" if "--stages" in argv else "parity.json")
    return text, json.loads(js.read_text())


def test_planted_wrong_kernel_is_named(tmp_path, capsys):
    text, r = _cli(tmp_path, capsys, "--against", "transformers",
                   "--pipeline", spec(extra_buffer="wrong-kernel{kernel=swiglu layer=1 to=mul}"))
    f = r["first_divergence"]
    assert (f["op"], f["layer"], f["kernel"], f["function"]) == ("ffn_act", 1, "mul", "prefill")
    # what it read was right: the op itself is wrong
    assert [i["name"] for i in f["inputs"]] == ["l1_ffn_gate", "l1_ffn_up"]
    assert all(i["max_rel"] <= 1e-4 for i in f["inputs"])
    # everything before it is OK
    rows = r["rows"]
    first = next(i for i, x in enumerate(rows) if x["status"] == "DIVERGED")
    assert rows[first]["op"] == "ffn_act" and all(x["status"] == "OK" for x in rows[:first])
    assert "first divergence: ffn_act (mul, @prefill call #" in text and "layer 1" in text
    assert (tmp_path / "out" / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --stages follows the buffer IR too: the planted pass after select-simd is named
    text, s = _cli(tmp_path, capsys, "--stages",
                   "--pipeline", spec(extra_buffer="wrong-kernel{kernel=swiglu layer=1 to=mul}"))
    assert s["first_changed"]["pass"] == "wrong-kernel"
    assert s["first_changed"]["first_changed_value"]["value"] == "l1_ffn_act"


def test_planted_rope_drop_is_named_by_parity_and_stages(tmp_path, capsys):
    planted = spec(extra_tensorop="drop-k-rope{layer=1}")
    _, r = _cli(tmp_path, capsys, "--against", "ir", "--pipeline", planted)
    f = r["first_divergence"]
    assert (f["op"], f["layer"], f["buffer"]) == ("k_cache", 1, "blk.1.k_cache")
    assert f["inputs"][0]["name"] == "l1_attn_norm" and f["inputs"][0]["max_rel"] <= 1e-4
    text, s = _cli(tmp_path, capsys, "--stages", "--pipeline", planted)
    assert s["first_changed"]["pass"] == "drop-k-rope"
    assert s["first_changed"]["first_changed_value"]["value"] == "l1_k_cache"
    assert [x["status"] for x in s["stages"][:2]] == ["baseline", "CHANGED"]
    assert "first pass that changes the outputs: drop-k-rope" in text


def test_stages_of_the_unmodified_pipeline(tmp_path, capsys):
    text, s = _cli(tmp_path, capsys, "--stages", "--mode", "decode", "--tokens", "1")
    assert s["first_changed"] is None
    st = {x["pass"]: x["status"] for x in s["stages"]}
    assert st["lower-transformer"] == "baseline"
    # tensorop and buffer stages all evaluated (the buffer dialect by ckc/parity/ref_buffer.py)
    assert all(st[p] == "same" for p in ("fuse-rmsnorm-qkv-rope", "bufferize", "pack-weights", "plan-memory",
                                         "select-simd")), st
    assert st["lower-to-c"] == "not evaluated (C dialect)"


def test_record_off_leaves_model_c_unchanged(tmp_path):
    from ckc.pipeline import CompileOptions, compile_model

    g = modelzoo.hf_dir("llama")
    a = compile_model(g, tmp_path / "a", CompileOptions(), quiet=True).model_c.read_text()
    b = compile_model(g, tmp_path / "b", CompileOptions(record=True), quiet=True).model_c.read_text()
    assert "ckc_rt_record" not in a and "ckc_rt_record" in b
    assert not (tmp_path / "a" / "record.json").exists() and (tmp_path / "b" / "record.json").is_file()


@pytest.mark.parametrize("argv, what", [
    (["--tokens", "0"], "--tokens must be positive"),
    (["--pipeline", "lower-transformer,no-such-pass"], "no-such-pass"),
    (["--load-plugin", "/nonexistent/p.py"], "plugin file not found"),
    (["--prompt", ""], "empty prompt"),
    (["--against", "llama.cpp"], "needs a .gguf"),
    (["--mode", "train", "--against", "ir"], "torch autograd"),
    (["--stages", "--mode", "train"], "--stages follows the inference pipeline"),
])
def test_bad_input(tmp_path, capsys, argv, what):
    assert main(["parity", str(modelzoo.hf_dir("llama")), "-o", str(tmp_path), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ckc: error:") and "\n" not in err and what in err, err
