"""`ckc chat MODEL`: chat in the terminal.

Each line read from stdin is a user message; the conversation goes through the
model's chat template (the one `ckc serve` uses), the reply streams to stdout
as it is generated, and a stats line (tokens, tokens/s) goes to stderr.
`/reset` starts a new conversation, `/exit` (or end of input) quits. When the
conversation outgrows the context the oldest turns are dropped.
Works with piped stdin too (no prompt is printed then).
"""

from __future__ import annotations

import queue
import sys
import time


def add_arguments(parser) -> None:
    from ckc.commands.serve import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--system", default=None, metavar="TEXT", help="a system message to start with")
    parser.add_argument("--max-tokens", type=int, default=256, metavar="N", help="new tokens per reply at most")
    parser.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    parser.add_argument("--top-k", type=int, default=0, metavar="K", help="0 = off")
    parser.add_argument("--top-p", type=float, default=1.0, metavar="P", help="1 = off")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="sampling seed")
    parser.add_argument("--no-stats", action="store_true", help="do not print tokens/s after each reply")


def main(args) -> int:
    from ckc.chat_template import ChatTemplateError
    from ckc.cli import CkcError
    from ckc.commands.serve import load_model
    from ckc.sampling import Sampler
    from ckc.serve.app import encode_chat
    from ckc.serve.engine import Engine, Params, Request

    if args.max_tokens < 1:
        raise CkcError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    try:
        sampler = Sampler(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    except ValueError as e:
        raise CkcError(str(e)) from None
    _, tok, template, backend = load_model(args, 1)
    engine = Engine(backend, tok, max_queue=1)
    eos = frozenset(int(t) for t in getattr(tok, "eog_ids", ()) or ())
    tty = sys.stdin.isatty()
    out = sys.stdout
    history: list[dict] = [{"role": "system", "content": args.system}] if args.system else []
    if tty:
        print(f"ckc chat: context {engine.context}, template {template.source}; /reset, /exit", file=sys.stderr)
    try:
        while True:
            if tty:
                out.write("> ")
                out.flush()
            line = sys.stdin.readline()
            if not line:
                break
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.strip() == "/exit":
                break
            if line.strip() == "/reset":
                history = history[:1] if args.system else []
                continue
            history.append({"role": "user", "content": line})
            while True:  # drop the oldest turns until the prompt fits with room to answer
                try:
                    ids = encode_chat(tok, template.render(history, add_generation_prompt=True))
                except ChatTemplateError as e:
                    raise CkcError(str(e)) from None
                first = 1 if args.system else 0
                if len(ids) < engine.context or len(history) - first <= 1:
                    break
                del history[first]
            if len(ids) >= engine.context:
                print(f"ckc: that message is {len(ids)} tokens; the context holds {engine.context}",
                      file=sys.stderr)
                history.pop()
                continue
            events: queue.Queue = queue.Queue()
            req = Request(ids, Params(max_tokens=args.max_tokens, sampler=sampler, eos_ids=eos), events.put)
            t0 = time.perf_counter()
            engine.submit(req)
            reply, first_at = [], None
            try:
                while True:
                    ev = events.get()
                    if ev.kind == "token":
                        if first_at is None:
                            first_at = time.perf_counter()
                        out.write(ev.text)
                        out.flush()
                        reply.append(ev.text)
                    elif ev.kind == "error":
                        raise CkcError(ev.error)
                    else:
                        break
            except KeyboardInterrupt:
                req.cancel()
                ev = None
            out.write("\n")
            out.flush()
            history.append({"role": "assistant", "content": "".join(reply)})
            if not args.no_stats and ev is not None:
                t1 = time.perf_counter()
                n = ev.completion_tokens
                rate = (n - 1) / (t1 - first_at) if first_at and n > 1 and t1 > first_at else float("nan")
                print(f"[{n} tokens ({ev.finish_reason}), first after {(first_at or t1) - t0:.2f} s, "
                      f"{rate:.1f} tok/s]", file=sys.stderr, flush=True)
    finally:
        engine.close(drain=False, timeout=5)
    return 0
