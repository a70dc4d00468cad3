"""`ckc train`: train a model from random init, or fine-tune one, on a text corpus.

    ckc train llama:tiny --data shakespeare --batch 16 --context 64 --steps 300 --lr 3e-3 --out runs/tiny
    ckc train model.gguf --data notes.txt --steps 20 --lr 1e-4 --out runs/ft --export-safetensors runs/ft/hf
    ckc train llama:tiny --data shakespeare ... --out runs/tiny --resume      # continue from the last checkpoint
    ckc train llama:tiny ... --sample "HAMLET:"     # then compile the result with ckc and continue the prompt

MODEL is a GGUF file, a Hugging Face folder (config.json + safetensors), or
``family:size`` for random init (families: llama, qwen2, qwen3, gemma, gemma3,
gpt2; sizes: tiny, small, medium, 124m — see ckc.train.models). The corpus is
tokenized with the model's tokenizer (``--tokenizer`` or the one the model
file carries; random-init models default to the tiny SentencePiece vocabulary
of ckc's test models, or GPT-2's for gpt2). OUT receives loss.csv, loss.png
and checkpoints/step-NNNNNN (weights, optimizer state, data position, RNG).

Backends: ``ckc`` is the compiled train_step (ckc.train.ckc_backend: autodiff
-> generated C -> model.so); ``torch`` is the PyTorch reference (transformers +
torch.optim.AdamW). The default picks ckc when it is available, else torch, and
says which it uses.

Batching: with the ckc backend the step is compiled for a batch: one call
of the library's @train_step takes the B = batch / micro-batches / ranks
sequences of a micro-batch (GEMMs over B * context rows, attention per
sequence; memory.txt in the library's folder shows the activation peak for
that B and context).

Data-parallel: ``mpirun -np N ckc train ... --threads 1`` runs N ranks
(ckc.train.distributed): each takes 1/N of every micro-batch, the gradients
are summed in a fixed order before the optimizer step, rank 0 alone prints and
writes OUT (checkpoints, curves, exports). A checkpoint resumes only with the
same N.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("model", help="GGUF file, Hugging Face folder, or family:size (e.g. llama:tiny)")
    p.add_argument("--data", default="shakespeare",
                   help="text file, folder of *.txt, or 'shakespeare' (default)")
    p.add_argument("--tokenizer", help="GGUF or tokenizer.json supplying the vocabulary")
    p.add_argument("--out", required=True, help="output folder (loss.csv, loss.png, checkpoints/)")
    p.add_argument("--batch", type=int, default=8, help="sequences per optimizer step (default 8)")
    p.add_argument("--context", type=int, default=64, help="tokens per sequence (default 64)")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
    p.add_argument("--micro-batches", type=int, default=1, help="gradient accumulation chunks per step (default 1)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--min-lr", type=float, default=None, help="cosine floor (default lr/10)")
    p.add_argument("--warmup", type=int, default=None, help="linear warmup steps (default steps/20)")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay on matrices (default 0.1)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="max global gradient norm, 0 = off (default 1)")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate held-back text every K steps (0: at the end)")
    p.add_argument("--eval-batches", type=int, default=4, help="eval batches per evaluation (default 4)")
    p.add_argument("--eval-fraction", type=float, default=0.05, help="share of the text held back (default 0.05)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="checkpoint every K steps (0: at the end)")
    p.add_argument("--seed", type=int, default=0, help="seed for init and batch sampling (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT")
    p.add_argument("--backend", choices=("auto", "torch", "ckc"), default="auto",
                   help="step backend (default: ckc when available, else torch)")
    p.add_argument("--threads", type=int, default=0, help="threads (0: the backend's default)")
    p.add_argument("--mpi-timeout", type=float, default=300.0,
                   help="under mpirun: seconds a rank waits for the others before it stops (default 300)")
    p.add_argument("--export-safetensors", metavar="DIR", help="write the trained model as a HF folder")
    p.add_argument("--export-gguf", metavar="FILE", help="write the trained model as an f32 GGUF")
    p.add_argument("--sample", metavar="PROMPT",
                   help="after training, compile the trained model with ckc (inference path) and continue PROMPT")
    p.add_argument("--sample-tokens", type=int, default=100, help="tokens to sample (default 100)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature, 0 = greedy (default 0.8)")


def _sample(args, out: Path, gguf_path: Path, tok) -> None:
    """Compile ``gguf_path`` through ckc's inference pipeline and print a continuation."""
    from ckc.pipeline import compile_model
    from ckc.sampling import Sampler, generate
    from ckc.session import Session

    t0 = time.perf_counter()
    compile_model(gguf_path, out / "compiled", quiet=True)
    ids = tok.encode(args.sample) or [tok.bos_id or 0]
    with Session(out / "compiled", threads=args.threads or 0) as s:
        gen = generate(s, ids, args.sample_tokens, eos_ids=tok.eog_ids,
                       sampler=Sampler(temperature=args.temperature, seed=args.seed))
    print(f"sample (ckc inference path, compiled in {time.perf_counter() - t0:.1f}s, "
          f"{gen.decode_tokens_per_s:.0f} tok/s decode):")
    print(args.sample + tok.decode(gen.tokens))


def _default_tokenizer(family: str) -> Path:
    from ckc import modelzoo

    if family == "gpt2":
        return modelzoo.gpt2_tokenizer_json()
    return modelzoo.gguf_file("llama")  # the 384-piece SentencePiece vocabulary of ckc's tiny models


def _tokenizer_source(args, model_path: Path | None, family: str | None) -> Path:
    from ckc.cli import CkcError

    if args.tokenizer:
        return Path(args.tokenizer)
    if model_path is None:
        return _default_tokenizer(family)
    if model_path.is_file() and model_path.suffix != ".json":
        return model_path  # a GGUF carries its vocabulary
    folder = model_path if model_path.is_dir() else model_path.parent
    if (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    raise CkcError(f"{folder}: no tokenizer.json; give the vocabulary with --tokenizer (a GGUF or tokenizer.json)")


def main(args) -> int:
    """One process, or one rank of ``mpirun -np N`` (only rank 0 prints and writes)."""
    import contextlib

    from ckc.cli import CkcError
    from ckc.train.distributed import RankFailure, World
    from ckc.train.trainer import TrainError

    try:
        world = World.from_environment(args.mpi_timeout)
    except TrainError as e:
        raise CkcError(str(e)) from None
    if world is None:
        return _main(args, None)
    world.install_signal_handlers()
    try:
        if world.rank == 0:
            return _main(args, world)
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            return _main(args, world)
    except BaseException as e:
        # Leave without MPI_Finalize (a collective the other ranks may never reach):
        # the launcher sees the exit status and stops the job instead of waiting.
        from ckc.cli import user_errors

        if not isinstance(e, RankFailure):  # (after a RankFailure there is no one to wait for)
            world.fail_together()
        if isinstance(e, RankFailure):
            msg = str(e)
        elif isinstance(e, user_errors()):
            # every rank reads the same inputs and meets the same error: rank 0 says it
            msg = str(e).strip().splitlines()[0] if world.rank == 0 and str(e).strip() else None
        elif isinstance(e, KeyboardInterrupt):
            msg = None
        else:
            msg = f"rank {world.rank}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        if msg:
            print(f"ckc: error: {msg}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130 if isinstance(e, KeyboardInterrupt) else 1)


def _main(args, world) -> int:
    from ckc.cli import CkcError
    from ckc.errors import utf8_argument

    import numpy as np

    from ckc import tokenizer as ctok
    from ckc.train import checkpoint as ckpt
    from ckc.train.data import Corpus, DataError, read_texts
    from ckc.train.export import ExportError, export_gguf, export_hf
    from ckc.train.models import ModelSpecError, family_config, init_weights, is_family_spec
    from ckc.train.progress import Progress
    from ckc.train.trainer import (OptimConfig, Trainer, TrainError, TrainSettings, backend_available,
                                   make_backend)

    for name in ("batch", "context", "steps", "micro_batches"):
        if getattr(args, name) < 1:
            raise CkcError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.lr <= 0:
        raise CkcError(f"--lr must be positive, got {args.lr}")
    if args.sample is not None:
        utf8_argument("--sample", args.sample)

    # backend
    backend = args.backend
    if backend == "ckc" and not backend_available("ckc"):
        raise CkcError("the compiled ckc training backend is not available in this install; use --backend torch")
    if backend == "auto":
        backend = "ckc" if backend_available("ckc") else "torch"
    if backend == "torch" and not backend_available("torch"):
        raise CkcError("the torch backend needs torch and transformers installed (pip install ckc[test])")
    label = {"torch": "torch (PyTorch reference: transformers + torch.optim.AdamW"
                      + ("; the compiled ckc backend is not available)" if not backend_available("ckc") else ")"),
             "ckc": "ckc (compiled train_step)"}[backend]

    ranks = world.size if world is not None else 1
    if args.batch % args.micro_batches == 0 and (args.batch // args.micro_batches) % ranks:
        raise CkcError(f"--batch {args.batch} in {args.micro_batches} micro-batch(es) does not split evenly over "
                       f"{ranks} ranks (each micro-batch needs a multiple of {ranks} rows)")

    out = Path(args.out)
    try:
        # model
        spec = args.model
        model_path = None
        family = None
        if is_family_spec(spec) and not Path(spec).exists():
            family = spec.split(":", 1)[0]
        else:
            model_path = Path(spec)
            if not model_path.exists():
                if ":" in spec:
                    family_config(spec)  # raises the helpful unknown-family/size error
                raise CkcError(f"{spec}: no such model file, and not a family:size config")
        tok_src = _tokenizer_source(args, model_path, family)
        tok = ctok.load(tok_src)
        if model_path is not None:
            from ckc.importers import load_model

            cfg, store = load_model(model_path, rope_style="neox", weights="f32")  # training updates fp32
            weights = {n: np.array(store[n], dtype=np.float32) for n in cfg.expected_shapes()}
            if len(tok) > cfg.vocab_size:
                raise CkcError(f"{tok_src}: tokenizer has {len(tok)} tokens, the model only {cfg.vocab_size}")
        else:
            cfg = family_config(spec, vocab_size=len(tok))
            cfg.bos_token_id, cfg.eos_token_id = tok.bos_id, tok.eos_id
            weights = init_weights(cfg, args.seed)

        t0 = time.perf_counter()
        st = tok_src.stat()
        key = f"{tok_src.resolve()}:{st.st_size}:{st.st_mtime_ns}"
        corpus = Corpus.from_tokens(
            Corpus.from_texts(read_texts(args.data), tok, 0.0, cache_key=key).train, cfg.vocab_size,
            args.eval_fraction)
        n_params = sum(int(np.prod(s)) for s in cfg.expected_shapes().values())
        print(f"model: {cfg.name or spec} ({cfg.arch}, {n_params / 1e6:.2f}M parameters, vocab {cfg.vocab_size})")
        print(f"data: {args.data}: {len(corpus.train):,} training tokens, {len(corpus.eval):,} held back "
              f"(tokenized in {time.perf_counter() - t0:.1f}s with {tok_src.name})")
        print(f"backend: {label}" + (f", data-parallel over {ranks} MPI ranks" if world is not None else ""))

        warmup = args.warmup if args.warmup is not None else args.steps // 20
        settings = TrainSettings(batch=args.batch, context=args.context, steps=args.steps,
                                 micro_batches=args.micro_batches, lr=args.lr, min_lr=args.min_lr, warmup=warmup,
                                 eval_every=args.eval_every, eval_batches=args.eval_batches,
                                 checkpoint_every=args.checkpoint_every, seed=args.seed,
                                 optim=OptimConfig(weight_decay=args.weight_decay, grad_clip=args.grad_clip),
                                 ranks=ranks)
        ck = None
        if args.resume:
            if ckpt.latest(out / "checkpoints") is None:
                raise CkcError(f"{out / 'checkpoints'}: no checkpoint to resume from")
            ck = ckpt.load(out / "checkpoints")
            made = int((ck.run or {}).get("ranks", 1))
            if made != ranks:
                raise CkcError(f"{ckpt.step_dir(out / 'checkpoints', ck.step)}: made by {made} MPI rank(s), this "
                               f"run has {ranks}; resume with the same count ("
                               + (f"mpirun -np {made} ckc train ...)" if made > 1 else "one process, no mpirun)"))
            weights = ck.weights
            print(f"resuming from {ckpt.step_dir(out / 'checkpoints', ck.step)} (step {ck.step})")
        elif ckpt.latest(out / "checkpoints") is not None:
            raise CkcError(f"{out}: holds checkpoints already; pass --resume to continue, or choose another --out")
        kw = {"threads": args.threads} if args.threads else {}
        if backend == "ckc":
            # the batch is compiled into the step: one call takes a rank's share of a micro-batch
            kw["batch"] = max(1, args.batch // args.micro_batches // ranks)
        if world is None:
            be = make_backend(backend, cfg, weights, settings.optim, **kw)
        else:
            from ckc.train.distributed import DataParallel

            if backend == "ckc":
                kw["max_tokens"] = settings.context  # built now, by rank 0 first
            be = DataParallel(world.build_in_turn(lambda: make_backend(backend, cfg, weights, settings.optim, **kw)),
                              world, cfg.vocab_size)
        lead = world is None or world.rank == 0
        progress = Progress(settings.steps, start=ck.step if ck else 0) if lead else None
        trainer = Trainer(be, cfg, corpus, settings, out_dir=out if lead else None, progress=progress,
                          log=progress.message if lead else None)
        if ck is not None:
            trainer.restore(ck)
        if trainer.evals == [] and settings.eval_batches and lead:
            progress.message("note: the held-back text is too short for one eval batch; no eval loss")
        hist = trainer.run()
        first, last = hist[0], hist[-1]
        ev = f", eval {last['eval_loss']:.4f}" if last.get("eval_loss") is not None else ""
        print(f"done: step {trainer.step}, loss {first['loss']:.4f} -> {last['loss']:.4f}{ev}; "
              f"{trainer.elapsed:.1f}s training")
        if not lead:
            return 0  # rank 0 writes the outputs
        print(f"wrote {out / 'loss.csv'}, {out / 'loss.png'}, {ckpt.latest(out / 'checkpoints')}")
        final = be.get_weights()
        if args.export_safetensors:
            d = export_hf(cfg, final, args.export_safetensors, tokenizer_src=tok_src)
            print(f"exported {d} (config.json + model.safetensors)")
        if args.export_gguf:
            g = export_gguf(cfg, final, args.export_gguf, tokenizer_src=tok_src)
            print(f"exported {g}")
        if args.sample is not None:
            g = Path(args.export_gguf) if args.export_gguf else export_gguf(cfg, final, out / "model.gguf",
                                                                            tokenizer_src=tok_src)
            _sample(args, out, g, tok)
    except (DataError, TrainError, ExportError, ModelSpecError, ckpt.CheckpointError) as e:
        raise CkcError(str(e).splitlines()[0]) from None
    return 0
