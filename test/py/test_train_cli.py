"""`ckc train` end to end (tiny model, few steps): outputs, exports, resume, one-line errors."""

import numpy as np
import pytest

import torch  # a pinned test dependency: missing is a failure, not a skip
import transformers  # noqa: F401 - a pinned test dependency: missing is a failure

from ckc.cli import main
from ckc.importers import load_model
from ckc.train import checkpoint as ck
from ckc.train.curves import read_csv
from train_util import text, train_argv  # noqa: F401 - text is a fixture


@pytest.fixture(autouse=True)
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)



def test_train_writes_curves_checkpoints_and_exports(tmp_path, text, capsys):
    out = tmp_path / "run"
    rc = main(train_argv(text, out, "--steps", "6", "--micro-batches", "2", "--export-safetensors", str(tmp_path / "hf"),
                    "--export-gguf", str(tmp_path / "m.gguf"), "--sample", "To be", "--sample-tokens", "5",
                    "--temperature", "0"))
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "backend: ckc (compiled train_step)" in printed  # the default when the compiled backend exists
    assert "step 6/6" in printed and "tok/s" in printed
    rows = read_csv(out / "loss.csv")
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert [r["eval_loss"] is not None for r in rows] == [False, False, True, False, False, True]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    last = ck.load(out / "checkpoints")
    assert last.step == 6 and last.data["position"] == 6
    for path in (tmp_path / "hf", tmp_path / "m.gguf"):
        cfg, store = load_model(path, rope_style="neox")
        assert cfg.arch == "llama" and cfg.vocab_size == 384
        for n, a in last.weights.items():
            assert np.array_equal(store[n], a), (path, n)
    # --sample compiled the exported GGUF with ckc: its logits match transformers on the exported folder
    assert "sample (ckc inference path" in printed
    import transformers
    from ckc.session import Session

    ids = [5, 17, 200, 3, 44, 91, 7, 300]
    m = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    with torch.no_grad():
        lt = m(torch.tensor([ids])).logits[0].numpy()
    with Session(out / "compiled", threads=1) as s:
        lc = s.prefill_all(np.array(ids, np.int32))
    assert np.abs(lc - lt).max() <= 1e-5 * max(1.0, np.abs(lt).max())


@pytest.mark.parametrize("backend", ["torch", "ckc"])
def test_resume_after_a_crash_matches_the_straight_run(tmp_path, text, capsys, backend):
    be = ["--backend", backend]
    assert main(train_argv(text, tmp_path / "a", "--steps", "6", *be)) == 0
    assert main(train_argv(text, tmp_path / "b", "--steps", "6", "--checkpoint-every", "3", *be)) == 0
    import shutil

    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step-000006")   # as if killed after step 3's checkpoint
    assert main(train_argv(text, tmp_path / "b", "--steps", "6", *be)) == 1   # refuses to overwrite
    assert "pass --resume" in capsys.readouterr().err
    assert main(train_argv(text, tmp_path / "b", "--steps", "6", "--resume", *be)) == 0
    assert "resuming from" in capsys.readouterr().out
    a, b = ck.load(tmp_path / "a" / "checkpoints"), ck.load(tmp_path / "b" / "checkpoints")
    assert a.step == b.step == 6
    assert all(np.array_equal(a.weights[n], b.weights[n]) for n in a.weights)
    assert [r["loss"] for r in read_csv(tmp_path / "a" / "loss.csv")] == \
        [r["loss"] for r in read_csv(tmp_path / "b" / "loss.csv")]


@pytest.mark.parametrize("extra, msg", [
    (["--lr", "-1"], "--lr must be positive"),
    (["--micro-batches", "3"], "multiple of micro-batches 3"),
    (["--steps", "0"], "--steps must be positive"),
    (["--context", "4000"], "exceeds the model's maximum context"),
    (["--resume"], "no checkpoint to resume from"),
])
def test_user_errors_are_one_line(tmp_path, text, capsys, extra, msg):
    assert main(train_argv(text, tmp_path / "x", *extra)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ckc: error: ") and msg in err and "\n" not in err


def test_bad_model_and_data(tmp_path, text, capsys):
    assert main(["train", "llama:huge", "--data", str(text), "--out", str(tmp_path / "o")]) == 1
    assert "unknown size 'huge'" in capsys.readouterr().err
    assert main(["train", "llama:tiny", "--data", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 1
    assert "none.txt: no such file" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "nomodel.gguf"), "--out", str(tmp_path / "o")]) == 1
    assert "no such model file" in capsys.readouterr().err
