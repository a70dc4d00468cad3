"""`ckc serve MODEL`: an OpenAI-compatible HTTP server (uvicorn + Starlette).

Compiles the model on first use (the same cache as `ckc run`) with --slots
KV-cache slots, so every step of every slot is one batched compiled call
(``--backend serial``: one session per slot instead), and serves /v1/chat/completions, /v1/completions, /v1/models,
/health and /metrics (ckc/serve/app.py). SIGTERM or Ctrl-C stops accepting
connections, lets running requests finish (up to --drain-timeout), then exits.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

DEFAULT_CTX = 2048


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free one)")
    parser.add_argument("--slots", type=int, default=2, metavar="N",
                        help="sequences generated at once, each with its own KV cache (default 2)")
    parser.add_argument("--queue", type=int, default=64, metavar="N",
                        help="requests that may wait for a slot; more get 503 + Retry-After (default 64)")
    parser.add_argument("--api-key", default=None, metavar="K", help="require 'Authorization: Bearer K' on /v1/*")
    parser.add_argument("--model-name", default=None, metavar="NAME", help="the id /v1/models reports")
    parser.add_argument("--max-tokens", type=int, default=256, metavar="N",
                        help="new tokens when a request names none (default 256)")
    parser.add_argument("--prefill-chunk", type=int, default=32, metavar="N",
                        help="prompt tokens one slot reads per step (default 32)")
    parser.add_argument("--backend", choices=("batched", "serial"), default="batched",
                        help="batched (default): every slot's step in one compiled call (the model is compiled "
                        "with --slots KV-cache slots); serial: one model per slot, one call per slot")
    parser.add_argument("--drain-timeout", type=float, default=60.0, metavar="S",
                        help="on SIGTERM, seconds to let running requests finish (default 60)")


def add_model_arguments(parser) -> None:
    parser.add_argument("model", help="a .gguf file, a Hugging Face model directory, or 'smollm2'")
    parser.add_argument("--ctx", type=int, default=0, metavar="N",
                        help=f"context (KV cache rows) per slot (default: the model's, at most {DEFAULT_CTX})")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="0 = all cores (default)")
    parser.add_argument("--kv-type", choices=("f32", "f16", "q8_0"), default="f32",
                        help="KV cache element type (default f32; f16 halves the cache, q8_0 needs head_dim %% 32 == 0)")
    parser.add_argument("--verbose", action="store_true", help="show compilation progress")


def load_model(args, slots: int, batched: bool | None = None):
    """(model path, tokenizer, chat template, backend) for serve and chat;
    ``batched`` (default: ``args.backend == "batched"``) picks BatchedBackend."""
    from ckc.chat_template import ChatTemplateError, load as load_template
    from ckc.cli import CkcError
    from ckc.commands.compile import resolve_model
    from ckc.commands.run import compiled_dir, load_tokenizer
    from ckc.importers import load_model as import_model
    from ckc.pipeline import CompileOptions
    from ckc.serve.engine import BatchedBackend, SerialBackend

    if args.ctx < 0:
        raise CkcError(f"--ctx must be >= 0 (0 = the model's, at most {DEFAULT_CTX}), got {args.ctx}")
    if args.threads < 0:
        raise CkcError(f"--threads must be >= 0 (0 = all cores), got {args.threads}")
    if slots < 1:
        raise CkcError(f"--slots must be >= 1, got {slots}")
    path = resolve_model(args.model)
    cfg, _ = import_model(path)  # model errors first; weights are read lazily
    native = int(cfg.max_context)
    if args.ctx > native:
        raise CkcError(f"--ctx {args.ctx} exceeds the model's context of {native}")
    ctx = args.ctx or min(native, DEFAULT_CTX)
    if batched is None:
        batched = getattr(args, "backend", "serial") == "batched"
    kv_type = getattr(args, "kv_type", "f32")
    if batched and kv_type != "f32":
        raise CkcError(f"--kv-type {kv_type} is not supported by the batched backend yet (its slot caches are f32)")
    options = CompileOptions(context=0 if ctx == native else ctx, slots=slots if batched else 0, kv_type=kv_type)
    d = compiled_dir(path, options, quiet=not args.verbose)
    tok = load_tokenizer(path)
    try:
        template = load_template(path, tok)
    except ChatTemplateError as e:
        raise CkcError(str(e)) from None
    backend = (BatchedBackend if batched else SerialBackend)(d, slots, threads=args.threads)
    return path, tok, template, backend


def _bind(host: str, port: int) -> socket.socket:
    from ckc.cli import CkcError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise CkcError(f"--host {host}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise CkcError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main(args) -> int:
    import contextlib

    import uvicorn

    from ckc.cli import CkcError
    from ckc.serve.app import Server
    from ckc.serve.engine import Engine

    for name in ("queue", "max_tokens", "prefill_chunk"):
        if getattr(args, name) < (0 if name == "queue" else 1):
            raise CkcError(f"--{name.replace('_', '-')} must be >= {0 if name == 'queue' else 1}, "
                           f"got {getattr(args, name)}")
    if not 0 <= args.port <= 65535:
        raise CkcError(f"--port must be in [0, 65535], got {args.port}")
    sock = _bind(args.host, args.port)
    path, tok, template, backend = load_model(args, args.slots)
    engine = Engine(backend, tok, max_queue=args.queue, prefill_chunk=args.prefill_chunk)
    name = args.model_name or (args.model if args.model == "smollm2" else Path(path).stem)
    server = Server(engine, tok, template, name, api_key=args.api_key, default_max_tokens=args.max_tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        # uvicorn has waited for the open requests (SIGTERM drain); finish what is left
        engine.close(drain=True, timeout=args.drain_timeout)

    config = uvicorn.Config(server.app(lifespan=lifespan), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=args.drain_timeout, lifespan="on")
    host, port = sock.getsockname()[:2]
    print(f"ckc: serving {name} on http://{host}:{port} ({args.slots} slots, {args.backend} decode, "
          f"context {engine.context}, "
          f"{backend.threads} threads, chat template: {template.source})", file=sys.stderr, flush=True)
    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after its graceful shutdown; a drained
            # shutdown is a normal exit here (status 0, "server stopped")
            self._captured_signals.clear()

    try:
        _Server(config).run(sockets=[sock])
    finally:
        engine.close(drain=False, timeout=5)
        sock.close()
    print("ckc: server stopped", file=sys.stderr, flush=True)
    return 0
