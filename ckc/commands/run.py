"""`ckc run MODEL --prompt TEXT`: compile on first use (cached by content hash
under .cache/compiled/<hash>), tokenize, generate, print the text.

The cache key covers the model's bytes, the compile options and every source
byte of the compiler that can change the generated model (passes, dialects,
the pipeline, kernels and runtime), so an edited compiler never reuses a stale
model.so. Text in and out goes through ckc's own tokenizer (ckc.tokenizer),
or the Hugging Face one if ckc's cannot read the model's vocabulary.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

from ckc.commands.compile import add_compile_options, options_from, resolve_model


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .gguf file, a Hugging Face model directory, or 'smollm2'")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--max-tokens", type=int, default=64, metavar="N", help="new tokens at most (default 64)")
    parser.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    parser.add_argument("--top-k", type=int, default=0, metavar="K", help="0 = off")
    parser.add_argument("--top-p", type=float, default=1.0, metavar="P", help="1 = off")
    parser.add_argument("--repeat-penalty", type=float, default=1.0, metavar="R", help="1 = off")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="sampling seed")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="0 = all cores (default)")
    parser.add_argument("--no-stats", action="store_true", help="do not print tokens/s")
    parser.add_argument("--verbose", action="store_true", help="show compilation progress")
    add_compile_options(parser)


def _compiler_hash() -> str:
    from ckc import kernels
    from ckc.build import ROOT, RUNTIME_FILES, source_hash

    files = list(kernels.sources())
    for folder in ("passes", "dialects"):
        files += sorted((ROOT / folder).glob("*.py"))
    files += list(RUNTIME_FILES)  # compiled into every model.so
    files += [ROOT / "ckc" / f for f in ("pipeline.py", "artifacts.py", "kernel_abi.py", "emit_c.py", "weights.py",
                                         "build.py", "kernels.py", "quantize.py")]
    files += sorted((ROOT / "ckc" / "importers").glob("*.py"))
    files += [ROOT / "kernels" / "include" / "ckernels_abi.py"]  # the kernel ABI table (not a library source)
    files += [ROOT / "ckc" / "parity" / "calls.py"]  # writes a record build's record.json (its outs' dtypes)
    return source_hash(sorted(set(files)))


def model_hash(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir()
        if p.is_file() and (p.suffix in (".json", ".safetensors", ".gguf", ".model") or p.name == "tokenizer.model")
    )
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def compiled_dir(path: Path, options, *, quiet: bool = True) -> Path:
    """The artifact directory of `path` compiled with `options`, compiling it
    into the cache first if needed."""
    from ckc.build import cache_dir
    from ckc.pipeline import compile_model
    from ckc.session import MANIFEST

    key = hashlib.sha256(f"{model_hash(path)};{options.key()};{_compiler_hash()}".encode()).hexdigest()[:20]
    root = cache_dir("compiled")
    final = root / key
    if (final / MANIFEST).is_file():
        return final
    if not quiet:
        print(f"ckc: compiling {path} (first use) into {final}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}-"))
    try:
        compile_model(path, tmp, options, quiet=quiet)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


class _HFTokenizer:
    """The Hugging Face tokenizer behind the small interface run needs."""

    def __init__(self, path: Path):
        from transformers import AutoTokenizer
        from transformers.utils import logging

        logging.set_verbosity_error()

        if path.is_dir():
            self.t = AutoTokenizer.from_pretrained(str(path))
        else:
            self.t = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self.eog_ids = {i for i in (self.t.eos_token_id,) if i is not None}

    def encode(self, text, add_special=True):
        return self.t.encode(text, add_special_tokens=add_special)

    def decode(self, ids, skip_special=False):
        return self.t.decode(ids, skip_special_tokens=skip_special)


def load_tokenizer(path: Path):
    from ckc import tokenizer

    try:
        return tokenizer.load(path)
    except tokenizer.TokenizerError as first:
        try:
            return _HFTokenizer(path)
        except Exception:  # noqa: BLE001 - the first error is the one to show
            raise first from None


def main(args) -> int:
    from ckc.cli import CkcError
    from ckc.errors import utf8_argument
    from ckc.sampling import Sampler, generate
    from ckc.session import Session

    if not args.prompt:
        raise CkcError("empty prompt: --prompt needs at least one character")
    utf8_argument("--prompt", args.prompt)
    if args.max_tokens < 0:
        raise CkcError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    if args.threads < 0:
        raise CkcError(f"--threads must be >= 0 (0 = all cores), got {args.threads}")
    try:
        sampler = Sampler(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          repetition_penalty=args.repeat_penalty, seed=args.seed)
    except ValueError as e:
        raise CkcError(str(e)) from None
    path = resolve_model(args.model)
    options = options_from(args)
    options.check()
    d = compiled_dir(path, options, quiet=not args.verbose)  # model errors first
    tok = load_tokenizer(path)
    ids = list(tok.encode(args.prompt, add_special=True))
    if not ids:
        raise CkcError("empty prompt: it encodes to no tokens")
    with Session(d, threads=args.threads) as s:
        if len(ids) >= s.context:
            raise CkcError(f"prompt of {len(ids)} tokens does not fit the context of {s.context}")
        stream = tok.stream() if hasattr(tok, "stream") else None
        out = sys.stdout
        out.write(args.prompt)
        out.flush()
        shown: list[int] = []

        def on_token(t: int):
            if stream is not None:
                out.write(stream.feed(t))
            else:
                shown.append(t)
            out.flush()

        g = generate(s, ids, args.max_tokens, eos_ids=getattr(tok, "eog_ids", ()), sampler=sampler,
                     on_token=on_token)
        if stream is not None:
            out.write(stream.flush())
        else:
            out.write(tok.decode(shown))
        out.write("\n")
        out.flush()
        if not args.no_stats:
            print(f"ckc: {g.prompt_tokens} prompt tokens, {len(g.tokens)} new ({g.stop_reason}); "
                  f"prefill {g.prefill_tokens_per_s:.1f} tok/s, decode {g.decode_tokens_per_s:.1f} tok/s, "
                  f"{s.threads} threads", file=sys.stderr)
    return 0
