"""Whole models under AddressSanitizer + UBSan: the tiny model of every family
(ckc.modelzoo) compiled against libckernels' sanitizer build, model.c and the
runtime compiled with the same flags (CompileOptions(sanitize=True),
CkcBackend(sanitize=True)), run through prefill, decode and a training step
(train_step, optimizer_step, eval_loss).

The sanitized libraries only load into a process started with the ASan runtime
preloaded, so this test compiles everything here, then runs all families in
ONE subprocess (LD_PRELOAD=libasan) that prints its numbers as JSON. It passes
only if that process exits 0 with no ASan/UBSan report, and its numbers agree
with transformers: the logits of every position within 1e-4 (relative to the
largest logit; measured ~1e-6), the training loss within 1e-4 of transformers'
causal-LM loss on the same tokens.

What ASan sees: the heap (the caller's token and logit arrays, the GEMM
workspace, the scratch logits, the whole training state: weights, arena,
AdamW moments, all malloc'd), so a kernel reading or writing past one of them
is reported; the inference arena and the weights are mmapped (no red zones:
that is what the arena canaries are for, test/py/test_canaries.py). UBSan checks
every kernel and the generated code (overflow, misaligned access, bad shifts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ckc import kernels as ck
from ckc import modelzoo

PROMPT, DECODE, TRAIN_T = 5, 3, 8

SCRIPT = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    from ckc import modelzoo
    from ckc.importers import load_model
    from ckc.session import Session
    from ckc.train.ckc_backend import CkcBackend

    req = json.loads(sys.argv[1])
    out = {}
    for fam, job in req.items():
        toks = np.array(job["tokens"], np.int32)
        with Session(job["dir"], threads=2) as s:
            got = [s.prefill_all(toks[:job["prompt"]])]
            got += [s.decode(int(t))[None] for t in toks[job["prompt"]:]]
        logits = np.concatenate(got)
        cfg, store = load_model(modelzoo.hf_dir(fam), rope_style="neox")
        weights = {n: np.array(store[n], np.float32) for n in cfg.expected_shapes()}
        be = CkcBackend(cfg, weights, threads=2, max_tokens=job["train_t"], sanitize=True)
        x = np.array(job["train"], np.int32)[None]
        loss = be.train_step(x[:, :-1], x[:, 1:])
        norm = be.optimizer_step(1e-3)
        after = be.eval_loss(x[:, :-1], x[:, 1:])
        out[fam] = {"logits": logits.tolist(), "loss": loss, "norm": norm, "after": after}
    print("RESULT " + json.dumps(out))
''')


def test_every_family_runs_clean_under_asan_ubsan(tmp_path):
    import torch

    from ckc.importers import load_model
    from ckc.pipeline import CompileOptions, compile_model
    from ckc.train.ckc_backend import compile_train

    runtime = ck.asan_runtime()
    if runtime is None:
        pytest.skip("the C compiler has no libasan.so (install gcc's sanitizer runtime)")
    ck.build_dir(sanitize=True)
    req, ref = {}, {}
    for fam in modelzoo.FAMILIES:
        src = modelzoo.hf_dir(fam)
        compile_model(src, tmp_path / fam, CompileOptions(sanitize=True, max_tokens=4), quiet=True)
        cfg, _ = load_model(src, rope_style="neox")
        train_so, _ = compile_train(cfg, TRAIN_T, sanitize=True)  # cached for the child's CkcBackend(sanitize=True)
        for so in (tmp_path / fam / "model.so", train_so):  # instrumented, not just linked
            data = so.read_bytes()
            assert b"__asan_report_store" in data and b"__ubsan_handle_" in data, so
        rng = np.random.default_rng(len(fam))
        toks = rng.integers(1, cfg.vocab_size, size=PROMPT + DECODE)
        train = rng.integers(1, cfg.vocab_size, size=TRAIN_T + 1)
        req[fam] = {"dir": str(tmp_path / fam), "tokens": toks.tolist(), "prompt": PROMPT,
                    "train": train.tolist(), "train_t": TRAIN_T}
        model = modelzoo.torch_model(fam).eval()
        with torch.no_grad():
            logits = model(torch.tensor(toks[None])).logits[0].float().numpy()
            ids = torch.tensor(train[None])
            loss = model(input_ids=ids, labels=ids).loss.item()
        ref[fam] = (logits, loss)

    env = dict(os.environ, LD_PRELOAD=runtime, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=23",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(req)], capture_output=True, text=True,
                          env=env, timeout=600)
    report = proc.stderr[-4000:]
    assert proc.returncode == 0, report
    assert "ERROR: AddressSanitizer" not in proc.stderr and "runtime error:" not in proc.stderr, report
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])
    assert sorted(got) == sorted(modelzoo.FAMILIES)
    for fam, (logits, loss) in ref.items():
        g = np.array(got[fam]["logits"], np.float32)
        assert g.shape == logits.shape, fam
        diff = float(np.abs(g - logits).max())
        assert diff <= 1e-4 * max(1.0, float(np.abs(logits).max())), (fam, diff)
        assert abs(got[fam]["loss"] - loss) <= 1e-4, (fam, got[fam]["loss"], loss)
        assert np.isfinite(got[fam]["norm"]) and got[fam]["norm"] > 0, fam
        assert got[fam]["after"] < got[fam]["loss"], fam  # one AdamW step on the same tokens lowers their loss
