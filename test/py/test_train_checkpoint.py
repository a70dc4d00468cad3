"""ckc.train.checkpoint: atomic save, validated load, pruning; curves (CSV/PNG) and progress."""

import io
import json
import math
import os

import numpy as np
import pytest

from ckc.train import checkpoint as ck
from ckc.train.curves import BLUE, ORANGE, decode_png, read_csv, render, write_csv, write_png
from ckc.train.models import family_config, init_weights
from ckc.train.progress import Progress, fmt_duration


def _ck(step=3):
    cfg = family_config("llama:tiny", vocab_size=40)
    w = init_weights(cfg, 1)
    rng = np.random.default_rng(0)
    m = {n: rng.standard_normal(a.shape).astype(np.float32) for n, a in w.items()}
    v = {n: np.abs(rng.standard_normal(a.shape)).astype(np.float32) for n, a in w.items()}
    return ck.Checkpoint(step=step, config=cfg, weights=w, m=m, v=v, opt_step=step,
                         data={"position": step, "seed": 0}, run={"batch": 2}, history=[{"step": 1, "loss": 2.5}],
                         extra={"backend": "torch"})


def test_save_load_round_trip(tmp_path):
    c = _ck()
    p = ck.save(tmp_path, c)
    assert p.name == "step-000003" and sorted(os.listdir(p)) == ["optim.bump", "state.json", "weights.bump"]
    got = ck.load(tmp_path)  # the root: newest checkpoint
    assert got.step == 3 and got.opt_step == 3 and got.config.arithmetic() == c.config.arithmetic()
    for n in c.weights:
        assert np.array_equal(got.weights[n], c.weights[n])
        assert np.array_equal(got.m[n], c.m[n]) and np.array_equal(got.v[n], c.v[n])
    assert got.data == c.data and got.history == c.history and got.extra == c.extra


def test_keep_prunes_and_ignores_unfinished(tmp_path):
    for s in (1, 2, 3):
        ck.save(tmp_path, _ck(s), keep=2)
    (tmp_path / ".step-000004.abc.tmp").mkdir()   # an interrupted save
    (tmp_path / "step-000009").mkdir()            # no state.json: never completed
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-000002", "step-000003"]
    assert ck.load(tmp_path).step == 3


def test_interrupted_save_leaves_previous(tmp_path, monkeypatch):
    ck.save(tmp_path, _ck(1))
    import ckc.train.checkpoint as mod

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod.json, "dump", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.save(tmp_path, _ck(2))
    assert [p.name for p in tmp_path.iterdir()] == ["step-000001"]
    assert ck.load(tmp_path).step == 1


@pytest.mark.parametrize("damage, match", [
    ("rm_optim", "optim.bump: missing from the checkpoint"),
    ("bad_json", "malformed JSON"),
    ("not_ckpt", "not a ckc training checkpoint"),
    ("version", "checkpoint version 99"),
    ("trunc_weights", "weights.bump"),
    ("drop_weight", "weight list disagrees"),
])
def test_bad_checkpoints_give_one_line(tmp_path, damage, match):
    p = ck.save(tmp_path, _ck())
    st = json.loads((p / "state.json").read_text())
    if damage == "rm_optim":
        (p / "optim.bump").unlink()
    elif damage == "bad_json":
        (p / "state.json").write_text("{")
    elif damage == "not_ckpt":
        (p / "state.json").write_text("{}")
    elif damage == "version":
        st["version"] = 99
        (p / "state.json").write_text(json.dumps(st))
    elif damage == "trunc_weights":
        data = (p / "weights.bump").read_bytes()
        (p / "weights.bump").write_bytes(data[: len(data) // 2])
    elif damage == "drop_weight":
        st["weights"] = st["weights"][1:]
        (p / "state.json").write_text(json.dumps(st))
    with pytest.raises(ck.CheckpointError, match=match) as e:
        ck.load(p)
    assert "\n" not in str(e.value)
    with pytest.raises(ck.CheckpointError, match="no such checkpoint"):
        ck.load(tmp_path / "nope")


def test_csv_round_trip(tmp_path):
    rows = [{"step": i, "loss": 3.0 - i * 0.1, "eval_loss": (2.5 if i == 2 else None), "lr": 1e-3,
             "grad_norm": 0.5, "tokens_per_s": 100.0, "elapsed_s": float(i)} for i in (1, 2, 3)]
    write_csv(tmp_path / "loss.csv", rows)
    assert (tmp_path / "loss.csv").read_text().splitlines()[0] == "step,loss,eval_loss,lr,grad_norm,tokens_per_s,elapsed_s"
    assert read_csv(tmp_path / "loss.csv") == rows


def test_png_shows_a_falling_curve(tmp_path):
    rows = [{"step": s, "loss": 6.0 * math.exp(-s / 40) + 1.0,
             "eval_loss": (6.0 * math.exp(-s / 40) + 1.2 if s % 50 == 0 else None)} for s in range(1, 201)]
    p = write_png(tmp_path / "loss.png", rows, width=400, height=300)
    img = decode_png(p.read_bytes())
    assert img.shape == (300, 400, 3) and np.array_equal(img, render(rows, 400, 300))
    blue = np.all(img == BLUE, axis=-1)
    blue[:30] = False  # the legend
    cols = [c for c in range(img.shape[1]) if blue[:, c].any()]
    assert len(cols) > 250  # the line spans the plot width
    mean_y = [np.nonzero(blue[:, c])[0].mean() for c in cols]
    # loss falls -> the line goes down the image (y grows) left to right
    assert mean_y[-1] - mean_y[0] > 150
    assert sum(b < a - 1 for a, b in zip(mean_y, mean_y[1:])) == 0
    assert np.all(img[35:, :] == ORANGE, axis=-1).sum() > 20  # eval markers


def test_progress_tty_and_log():
    s = io.StringIO()
    p = Progress(100, stream=s, tty=False, every=50)
    for i in range(1, 101):
        p.update(i, 2.0, 1000.0, eval_loss=1.5 if i == 30 else None)
    lines = s.getvalue().splitlines()
    assert [l.split("/")[0] for l in lines] == ["step  30", "step  50", "step 100"]
    assert "eval 1.5000" in lines[-1] and "tok/s" in lines[0] and "ETA" in lines[0]
    t = io.StringIO()
    q = Progress(10, stream=t, tty=True)
    q.update(1, 3.0, 10.0)
    q.update(2, 2.5, 10.0)
    q.close()
    assert t.getvalue().count("\r") == 2 and t.getvalue().endswith("\n")
    assert fmt_duration(75) == "1m15s" and fmt_duration(3700) == "1h01m"
