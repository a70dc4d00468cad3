"""Helpers for the `ckc serve` tests: a server subprocess on a free loopback port,
raw HTTP for requests the openai client would refuse to send, and `ckc run`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600      # includes compiling the model on first use


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ckc(*args: str, input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ckc.cli", *args], cwd=ROOT, input=input, capture_output=True,
                          text=True, timeout=timeout)


def run_text(model: str, prompt: str, max_tokens: int, *extra: str) -> str:
    """What `ckc run` generates after the prompt (greedy)."""
    r = ckc("run", model, "--prompt", prompt, "--max-tokens", str(max_tokens), "--no-stats", *extra)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(prompt) and r.stdout.endswith("\n"), r.stdout
    return r.stdout[len(prompt):-1]


class ServerProcess:
    def __init__(self, model: str, *args: str, api_key: str | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        cmd = [sys.executable, "-m", "ckc.cli", "serve", model, "--host", "127.0.0.1", "--port", str(self.port), *args]
        if api_key:
            cmd += ["--api-key", api_key]
        # a file, not a pipe: a full pipe would block the server
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ckc serve exited with {self.proc.returncode}: {self.output()}")
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ckc serve did not come up")
            time.sleep(0.2)

    def headers(self, key: str | None = "default") -> dict:
        key = self.api_key if key == "default" else key
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int, object, bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers if headers is not None else self.headers())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get(self, path: str) -> tuple[int, bytes]:
        status, _, body = self.raw("GET", path, timeout=10)
        return status, body

    def health(self) -> dict:
        status, body = self.get("/health")
        assert status == 200, body
        return json.loads(body)

    def metrics(self) -> dict[str, float]:
        status, body = self.get("/metrics")
        assert status == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def wait_for(self, pred, timeout: float = 30.0, what: str = "condition") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            h = self.health()
            if pred(h):
                return h
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {h}"
            time.sleep(0.05)

    def client(self, key: str | None = "default", **kw):
        import openai

        return openai.OpenAI(base_url=self.base + "/v1", api_key=(self.api_key if key == "default" else key)
                             or "none", max_retries=0, timeout=kw.pop("timeout", 120), **kw)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return self.proc.returncode, self.output()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if not self.log.closed:
            self.log.close()
