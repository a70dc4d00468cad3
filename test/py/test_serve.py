"""`ckc serve` on the tiny llama (ckc/modelzoo.py), driven with the official openai
client from a subprocess on a free loopback port: completions and chat,
streaming and not, greedy text equal to `ckc run`'s, stop strings, logprobs,
seeds, 8 concurrent streams on 2 slots, and every kind of bad input (status +
OpenAI error body, the server still healthy afterwards). The server runs with
--threads 1 like the `ckc run` it is compared with (the thread count changes
float summation order)."""

from __future__ import annotations

import json
import math
import threading

import pytest

from serve_util import ServerProcess, run_text

KEY = "sk-test-key"
PROMPTS = ["To be or not", "The king", "Now is the winter of our discontent", "O Romeo",
           "Friends, Romans", "All the world", "What light", "A horse"]


@pytest.fixture(scope="module")
def model() -> str:
    from ckc import modelzoo

    return str(modelzoo.gguf_file("llama"))


@pytest.fixture(scope="module")
def server(model):
    s = ServerProcess(model, "--slots", "2", "--threads", "1", "--queue", "16", api_key=KEY)
    try:
        yield s
    finally:
        s.stop()


def _complete(client, prompt, n=16, **kw):
    return client.completions.create(model="m", prompt=prompt, max_tokens=n, temperature=0, **kw)


def _stream_text(stream) -> tuple[str, str | None]:
    text, finish = [], None
    for chunk in stream:
        if chunk.choices:
            c = chunk.choices[0]
            text.append(getattr(c, "text", None) or (c.delta.content if hasattr(c, "delta") else "") or "")
            finish = c.finish_reason or finish
    return "".join(text), finish


def test_models_health_metrics(server):
    c = server.client()
    assert [m.id for m in c.models.list().data] == ["model-f32"]
    h = server.health()
    assert h["slots_total"] == 2 and h["slots_busy"] == 0 and h["queue"] == 0 and h["context"] == 256
    m = server.metrics()
    assert m["ckc_slots_total"] == 2 and "ckc_tokens_per_second" in m and "ckc_queue_depth" in m


def test_completion_greedy_equals_ckc_run(server, model):
    want = run_text(model, PROMPTS[0], 16, "--threads", "1")
    r = _complete(server.client(), PROMPTS[0])
    assert r.choices[0].text == want
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 16 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + 16
    text, finish = _stream_text(_complete(server.client(), PROMPTS[0], stream=True))
    assert (text, finish) == (want, "length")


def test_chat_stream_equals_non_stream(server):
    c = server.client()
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who is the king?"}]
    r = c.chat.completions.create(model="m", messages=msgs, max_tokens=12, temperature=0)
    msg = r.choices[0].message
    assert msg.role == "assistant" and msg.content and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 12 and r.object == "chat.completion"
    roles, parts, finish = [], [], None
    for chunk in c.chat.completions.create(model="m", messages=msgs, max_tokens=12, temperature=0, stream=True,
                                           stream_options={"include_usage": True}):
        if chunk.usage is not None:
            assert chunk.usage.completion_tokens == 12 and not chunk.choices
            continue
        assert chunk.object == "chat.completion.chunk"
        d = chunk.choices[0].delta
        roles.append(d.role)
        parts.append(d.content or "")
        finish = chunk.choices[0].finish_reason or finish
    assert roles[0] == "assistant" and "".join(parts) == msg.content and finish == "length"


def test_stop_string(server):
    c = server.client()
    full = _complete(c, PROMPTS[1], 24).choices[0].text
    stop = full[len(full) // 2: len(full) // 2 + 2]
    assert stop.strip()
    r = _complete(c, PROMPTS[1], 24, stop=[stop, "\u2603never"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == full[: full.index(stop)]
    text, finish = _stream_text(_complete(c, PROMPTS[1], 24, stop=stop, stream=True))
    assert (text, finish) == (full[: full.index(stop)], "stop")


def test_logprobs(server):
    r = _complete(server.client(), PROMPTS[2], 6, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.token_logprobs) == len(lp.tokens) == len(lp.top_logprobs) == 6
    for tok, v, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert v <= 0 and 1 <= len(top) <= 3
        # greedy: the chosen token is the most likely one (log-softmax in float64)
        assert math.isclose(v, max(top.values()), abs_tol=1e-9)
        assert top.get(tok) is not None
    assert "".join(lp.tokens) == r.choices[0].text
    chat = server.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                   max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    joined = "".join(t.token for t in content)
    # an SPM text drops the first token's leading space, a token's own text keeps it
    assert len(content) == 4 and joined.endswith(chat.choices[0].message.content)
    assert not joined[: len(joined) - len(chat.choices[0].message.content)].strip()
    assert all(len(t.top_logprobs) == 2 and t.logprob == t.top_logprobs[0].logprob for t in content)


def test_generation_stops_at_the_context(server):
    r = _complete(server.client(), PROMPTS[0], 1000)
    # the last token is sampled when the cache is full: context - prompt + 1 new tokens
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 256 - r.usage.prompt_tokens + 1
    assert server.health()["slots_busy"] == 0


def test_unknown_fields_are_ignored(server):
    body = {"messages": OK_MSG, "max_tokens": 2, "temperature": 0, "frequency_penalty": 0, "user": "u",
            "x_vendor": {"nested": [1, 2]}, "tools": "not-a-list"}
    status, _, raw = server.raw("POST", CHAT, json.dumps(body).encode())
    assert status == 200, raw
    assert json.loads(raw)["usage"]["completion_tokens"] == 2


def test_seeded_sampling_is_reproducible(server):
    c = server.client()
    kw = dict(model="m", prompt=PROMPTS[3], max_tokens=20, temperature=1.0, top_p=0.9)
    a = c.completions.create(seed=7, **kw).choices[0].text
    b = c.completions.create(seed=7, **kw).choices[0].text
    assert a == b
    others = {c.completions.create(seed=s, **kw).choices[0].text for s in (8, 9, 10)}
    assert others != {a}


def test_eight_concurrent_streams_on_two_slots(server):
    c = server.client()
    single = [_complete(c, p, 40).choices[0].text for p in PROMPTS]
    before = server.metrics()
    got: dict[int, tuple[str, str | None]] = {}
    errors = []

    def client(i):
        try:
            got[i] = _stream_text(_complete(server.client(), PROMPTS[i], 40, stream=True))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    for i in range(8):
        assert got[i] == (single[i], "length"), i
    after = server.metrics()
    tokens = after["ckc_generation_tokens_total"] - before["ckc_generation_tokens_total"]
    steps = after["ckc_engine_steps_total"] - before["ckc_engine_steps_total"]
    assert tokens == 8 * 40
    assert steps < tokens  # some steps advanced both slots
    assert server.wait_for(lambda h: h["slots_busy"] == 0 and h["queue"] == 0, 10, "idle")


def _err(server, status, method, path, body, headers=None, code=None, param=None):
    st, _, raw = server.raw(method, path, body, headers)
    assert st == status, (st, raw)
    err = json.loads(raw)["error"]
    assert isinstance(err["message"], str) and err["message"] and "type" in err
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


CHAT = "/v1/chat/completions"
OK_MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("path,body,code,param", [
    (CHAT, b'{"messages": [', "invalid_json", None),
    (CHAT, b"\xff\xfe", "invalid_json", None),
    (CHAT, b"[1, 2]", "invalid_json", None),
    (CHAT, b"{}", "missing_required_parameter", "messages"),
    (CHAT, {"messages": []}, "invalid_value", "messages"),
    (CHAT, {"messages": "hi"}, "invalid_type", "messages"),
    (CHAT, {"messages": [{"role": 3, "content": "x"}]}, "invalid_type", "messages[0].role"),
    (CHAT, {"messages": [{"role": "user", "content": {"a": 1}}]}, "invalid_type", "messages[0].content"),
    (CHAT, {"messages": OK_MSG, "max_tokens": 0}, "invalid_value", "max_tokens"),
    (CHAT, {"messages": OK_MSG, "max_tokens": -5}, "invalid_value", "max_tokens"),
    (CHAT, {"messages": OK_MSG, "max_tokens": "ten"}, "invalid_type", "max_tokens"),
    (CHAT, {"messages": OK_MSG, "max_tokens": 2.5}, "invalid_type", "max_tokens"),
    (CHAT, {"messages": OK_MSG, "temperature": "hot"}, "invalid_type", "temperature"),
    (CHAT, {"messages": OK_MSG, "temperature": -1}, "invalid_value", "temperature"),
    (CHAT, {"messages": OK_MSG, "top_p": 0}, "invalid_value", "top_p"),
    (CHAT, {"messages": OK_MSG, "top_k": True}, "invalid_type", "top_k"),
    (CHAT, {"messages": OK_MSG, "stop": 5}, "invalid_type", "stop"),
    (CHAT, {"messages": OK_MSG, "stream": "yes"}, "invalid_type", "stream"),
    (CHAT, {"messages": OK_MSG, "n": 2}, "invalid_value", "n"),
    (CHAT, {"messages": OK_MSG, "seed": "x"}, "invalid_type", "seed"),
    (CHAT, {"messages": [{"role": "user", "content": "war " * 400}]}, "context_length_exceeded", "messages"),
    ("/v1/completions", {"prompt": ""}, "invalid_value", "prompt"),
    ("/v1/completions", {"prompt": {"x": 1}}, "invalid_type", "prompt"),
    ("/v1/completions", {"prompt": [1, 99999]}, "invalid_value", "prompt"),
    ("/v1/completions", {"prompt": "hi", "logprobs": 9}, "invalid_value", "logprobs"),
    ("/v1/completions", {"prompt": "war " * 400}, "context_length_exceeded", "prompt"),
])
def test_bad_input_is_400(server, path, body, code, param):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    _err(server, 400, "POST", path, raw, code=code, param=param)
    assert server.health()["slots_busy"] == 0


def test_auth_and_routing_errors(server):
    import openai

    body = json.dumps({"messages": OK_MSG, "max_tokens": 2}).encode()
    _err(server, 401, "POST", CHAT, body, server.headers("wrong"), code="invalid_api_key")
    _err(server, 401, "POST", CHAT, body, server.headers(None), code="invalid_api_key")
    _err(server, 401, "GET", "/v1/models", None, server.headers("wrong"), code="invalid_api_key")
    with pytest.raises(openai.AuthenticationError):
        server.client(key="wrong").chat.completions.create(model="m", messages=OK_MSG, max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        server.client().completions.create(model="m", prompt="hi", max_tokens=0)
    _err(server, 404, "GET", "/v1/nothing", None, code="not_found")
    _err(server, 405, "GET", CHAT, None, code="method_not_allowed")
    assert server.health()["slots_busy"] == 0
    # and it still generates
    assert _complete(server.client(), PROMPTS[0], 2).usage.completion_tokens == 2


def test_cli_errors(server, model):
    from serve_util import ckc

    r = ckc("serve", model, "--port", str(server.port), timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("ckc: error: cannot listen on 127.0.0.1:"), r.stderr
    for bad, what in ((["--slots", "0"], "--slots"), (["--ctx", "9999"], "--ctx"), (["--queue", "-1"], "--queue")):
        r = ckc("serve", model, "--port", "0", *bad, timeout=120)
        assert r.returncode == 1 and r.stderr.startswith("ckc: error:") and what in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
