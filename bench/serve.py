"""`ckc serve` under load: throughput and latency with 1, 2, 4, 8 concurrent clients.

    .venv/bin/python bench/serve.py [--model smollm2] [--clients 1,2,4,8] [--slots 8]
                                    [--requests 3] [--max-tokens 32] [--threads 0] [--rounds 2]
                                    [--backends batched,serial] [--llama-server auto|none|PATH]

Starts `ckc serve` on a free loopback port (127.0.0.1 only), then for each
client count N runs N client threads, each sending --requests streaming
completions one after another (greedy, --max-tokens new tokens, different
prompts) with the official openai client. Reports per N:

- aggregate generated tokens/s (all tokens of all clients / wall time),
- time to first token p50 / p99 (request sent -> first text chunk),
- per-token latency p50 / p99 over requests (time per output token after the
  first: (last chunk - first chunk) / (tokens - 1); the server may merge
  tokens that are ready together into one chunk, so chunk gaps are not it),

and the aggregate rate at N as a ratio of the rate at 1 client: how much the
slot engine gains from running N sequences together. Each engine backend
(``--backends``) gets its own server: ``batched`` (the default of ``ckc
serve``: every step of every slot in one compiled ``@decode_batch`` call, the
weights read once per step) and ``serial`` (one model per slot, one call per
slot: the slots share the cores rather than the weight reads, the ratio stays
near 1); the last lines compare them per client count. For scale, the first line is the same compiled model driven
directly (one Session, `ckc run`'s generate loop, no server), measured in this
process while the server idles: "server / direct" is what HTTP, the
scheduler and per-token sampling cost at 1 client.

The peer is llama.cpp's llama-server (``ckc.llamacpp.server_binary()``: the
cached llama.cpp source built once per machine with its server target, offline,
niced; a cold build takes 10+ minutes on two cores), started on the same model
file with the same slot count (``-np`` = --slots, one non-unified KV cache of
--ctx per slot: ``-c`` = slots * ctx, ``-no-kvu``), the same threads, ckc's KV
arithmetic (``-ctk f32 -ctv f32``, flash attention off) and its prompt cache
off (``-cram 0``: ckc reuses no prefixes), and driven by the same client code
through its /v1/completions, alternating rounds with ckc's servers; the last
lines give ckc / llama-server per client count. ``--llama-server PATH`` uses
another binary, ``--llama-server none`` skips the peer.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "py"))

from serve_util import ServerProcess, free_port  # noqa: E402

PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "In the beginning",
           "The best way to learn", "Water boils at", "My favourite book is", "A long time ago"]


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def load(base: str, clients: int, requests: int, max_tokens: int, api_key: str = "none") -> dict:
    import openai

    ttft, gaps, tokens, errors = [], [], [0], []
    lock = threading.Lock()

    def client(i):
        c = openai.OpenAI(base_url=base + "/v1", api_key=api_key, max_retries=0, timeout=600)
        for r in range(requests):
            prompt = PROMPTS[(i * requests + r) % len(PROMPTS)]
            t0 = time.perf_counter()
            last, first, n = None, None, 0
            try:
                stream = c.completions.create(model="m", prompt=prompt, max_tokens=max_tokens, temperature=0,
                                              stream=True, stream_options={"include_usage": True})
                for chunk in stream:
                    now = time.perf_counter()
                    if chunk.usage is not None:
                        n = chunk.usage.completion_tokens
                    if chunk.choices and chunk.choices[0].text:
                        if first is None:
                            first = now
                        last = now
            except Exception as e:  # noqa: BLE001 - counted and shown
                errors.append(repr(e))
                continue
            with lock:
                if first is not None:
                    ttft.append(first - t0)
                    if n > 1 and last > first:
                        gaps.append((last - first) / (n - 1))
                tokens[0] += n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "tokens": tokens[0], "wall": wall, "tok_s": tokens[0] / wall,
            "ttft50": pct(ttft, 50), "ttft99": pct(ttft, 99), "itl50": pct(gaps, 50), "itl99": pct(gaps, 99),
            "errors": errors}


def report(name: str, rows: list[dict]) -> None:
    base = rows[0]["tok_s"] if rows else float("nan")
    print(f"\n{name}")
    print(f"{'clients':>7} {'tokens':>7} {'tok/s':>8} {'x1':>6} {'ttft p50':>9} {'ttft p99':>9} "
          f"{'tok p50':>8} {'tok p99':>8}")
    for r in rows:
        print(f"{r['clients']:>7} {r['tokens']:>7} {r['tok_s']:>8.1f} {r['tok_s'] / base:>6.2f} "
              f"{r['ttft50'] * 1e3:>7.0f}ms {r['ttft99'] * 1e3:>7.0f}ms {r['itl50'] * 1e3:>6.1f}ms "
              f"{r['itl99'] * 1e3:>6.1f}ms" + (f"  {len(r['errors'])} errors: {r['errors'][0]}" if r["errors"] else ""))


def direct(model: str, ctx: int, threads: int, max_tokens: int):
    """A function measuring decode tokens/s of the compiled model without the
    server (one Session, `ckc run`'s generate loop, best of 3), and its closer."""
    from ckc.commands.compile import resolve_model
    from ckc.commands.run import compiled_dir, load_tokenizer
    from ckc.importers import load_model
    from ckc.pipeline import CompileOptions
    from ckc.sampling import generate
    from ckc.session import Session

    path = resolve_model(model)
    native = load_model(path)[0].max_context
    s = Session(compiled_dir(path, CompileOptions(context=0 if ctx >= native else ctx)), threads=threads)
    tok = load_tokenizer(path)

    def measure(reps: int = 3) -> float:
        best = 0.0
        for r in range(reps):
            ids = tok.encode(PROMPTS[r % len(PROMPTS)], add_special=True)
            best = max(best, generate(s, ids, max_tokens).decode_tokens_per_s)  # no EOS: max_tokens
        return best

    return measure, s.close


def llama_server_args(binary, model: Path, port: int, slots: int, ctx: int, threads: int,
                      kv_type: str = "f32") -> list[str]:
    """llama-server's command line matching `ckc serve --slots --ctx --threads` (see the top)."""
    t = str(threads or os.cpu_count())
    return [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-np", str(slots), "-c", str(slots * ctx), "-no-kvu", "-t", t, "-tb", t,
            "-ctk", kv_type, "-ctv", kv_type, "-fa", "on" if kv_type == "q8_0" else "off", "-cram", "0",
            "--no-webui"]


class LlamaServer:
    """A running llama-server on a free loopback port (``.base``, ``.stop()``)."""

    def __init__(self, binary, model: Path, slots: int, ctx: int, threads: int):
        import urllib.request

        port = free_port()
        self.log = open(os.devnull, "w")
        self.proc = subprocess.Popen(llama_server_args(binary, model, port, slots, ctx, threads),
                                     stdout=self.log, stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = [l for l in self.proc.stderr.read().decode(errors="replace").splitlines() if l.strip()]
                raise RuntimeError(f"llama-server exited ({self.proc.returncode}): {' | '.join(err[-3:])}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        # its log is not read from here on: a full pipe must not block it
                        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("llama-server did not come up in 300 s")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--requests", type=int, default=3, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best is reported")
    ap.add_argument("--llama-server", default="auto", metavar="PATH",
                    help="the llama-server binary to compare with: auto (ckc.llamacpp's cached build, "
                         "built if missing), none, or a path")
    ap.add_argument("--backends", default="batched,serial", help="ckc serve --backend values to measure")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]

    # The machine may be shared: the direct run and every server (each ckc
    # backend, llama-server) take turns for --rounds rounds, all servers up and
    # idle meanwhile; each figure is the best round (latencies from that round).
    from ckc.commands.compile import resolve_model

    peer_bin = None
    if args.llama_server == "auto":
        from ckc import llamacpp

        peer_bin = llamacpp.cached_server_binary()
        if peer_bin is None:
            print("building llama-server (once per machine, 10+ minutes on two cores)...", file=sys.stderr,
                  flush=True)
            peer_bin = llamacpp.server_binary()
    elif args.llama_server != "none":
        peer_bin = args.llama_server
    measure, close = direct(args.model, args.ctx, args.threads, args.max_tokens)
    base_rate, servers, best = 0.0, {}, {}
    try:
        for backend in args.backends.split(","):
            servers[backend] = ServerProcess(args.model, "--slots", str(args.slots), "--ctx", str(args.ctx),
                                             "--threads", str(args.threads), "--queue", "256", "--backend", backend)
        if peer_bin:
            servers["llama-server"] = LlamaServer(peer_bin, resolve_model(args.model), args.slots, args.ctx,
                                                  args.threads)
        for srv in servers.values():
            load(srv.base, 1, 1, 4)  # warm up
        for _ in range(args.rounds):
            base_rate = max(base_rate, measure())
            for name, srv in servers.items():
                for n in counts:
                    row = load(srv.base, n, args.requests, args.max_tokens)
                    if (name, n) not in best or row["tok_s"] > best[name, n]["tok_s"]:
                        best[name, n] = row
    finally:
        for name, srv in servers.items():
            if name == "llama-server":
                srv.stop()
                continue
            srv.proc.send_signal(signal.SIGTERM)
            try:
                srv.proc.wait(60)
            finally:
                srv.stop()
        close()
    results = {name: [best[name, n] for n in counts] for name in servers}
    peer = results.pop("llama-server", None)
    print(f"direct Session decode (no server, 1 sequence): {base_rate:.1f} tok/s")
    for backend, rows in results.items():
        report(f"ckc serve {args.model} --backend {backend} ({args.slots} slots, ctx {args.ctx}, "
               f"threads {args.threads or os.cpu_count()}, best of {args.rounds} rounds)", rows)
        if rows and rows[0]["clients"] == 1:
            print(f"server / direct at 1 client: {rows[0]['tok_s'] / base_rate:.2f}")
    if "batched" in results and "serial" in results:
        print("\nbatched / serial tok/s: " + ", ".join(
            f"{a['clients']} clients {a['tok_s'] / b['tok_s']:.2f}x" for a, b in zip(results["batched"],
                                                                                    results["serial"])))
    if peer:
        report(f"llama-server {peer_bin} (-np {args.slots}, -c {args.slots * args.ctx}, f32 KV, "
               f"best of {args.rounds} rounds)", peer)
        for backend, rows in results.items():
            print(f"\nckc {backend} / llama-server tok/s: " + ", ".join(
                f"{a['clients']} clients {a['tok_s'] / b['tok_s']:.2f}x" for a, b in zip(rows, peer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
