"""The HTTP side of ``ckc serve``: a Starlette app over an ``Engine``.

Routes: POST /v1/chat/completions, POST /v1/completions (``stream`` as
server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``),
GET /v1/models, GET /health, GET /metrics (Prometheus text).

Every error is an OpenAI-style JSON body with a 4xx/5xx status; an exception in
a handler is a 500 for that request only. Requests wait in the engine's queue
when every slot is busy; past its limit the answer is 503 with Retry-After.
A streaming client that disconnects cancels its request (the slot is freed at
the engine's next step); a non-streaming one is polled for disconnects.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ckc.sampling import Sampler
from ckc.serve import protocol
from ckc.serve.engine import EngineClosed, Event, Params, QueueFull, Request
from ckc.serve.protocol import ApiError

DISCONNECT_POLL_S = 0.25     # non-streaming: how often to check that the client is still there
KEEPALIVE_S = 5.0            # streaming: an SSE comment while waiting in the queue


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


class _SSE(StreamingResponse):
    """A StreamingResponse that always closes its generator, so the generator's
    ``finally`` (cancelling the request) runs as soon as the response ends."""

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


class Server:
    def __init__(self, engine, tokenizer, template, model_name: str, *, api_key: str | None = None,
                 default_max_tokens: int = 256, retry_after_s: int = 1):
        self.engine = engine
        self.tok = tokenizer
        self.template = template
        self.model_name = model_name
        self.api_key = api_key
        self.default_max_tokens = default_max_tokens
        self.retry_after_s = retry_after_s
        self.created = int(time.time())
        self.http = {}          # (route, status) -> count
        self.eos_ids = frozenset(int(t) for t in getattr(tokenizer, "eog_ids", ()) or ())

    # -- app
    def app(self, lifespan=None) -> Starlette:
        routes = [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

        async def http_error(request, exc: HTTPException):
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
            return error_response(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                                           code=code))

        async def crash(request, exc: Exception):
            return error_response(ApiError(500, f"internal error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: crash},
                         lifespan=lifespan)

    def _count(self, route: str, status: int) -> None:
        self.http[(route, status)] = self.http.get((route, status), 0) + 1

    def _auth(self, request: HttpRequest) -> None:
        if self.api_key is None:
            return
        got = request.headers.get("authorization", "")
        if got != f"Bearer {self.api_key}":
            raise ApiError(401, "invalid API key: send 'Authorization: Bearer <key>'" if got else
                           "missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})

    # -- simple routes
    async def health(self, request: HttpRequest) -> Response:
        e = self.engine
        return JSONResponse({"status": "ok", "slots_total": len(e.slots), "slots_busy": e.busy_slots,
                             "queue": e.queued, "context": e.context})

    async def models(self, request: HttpRequest) -> Response:
        try:
            self._auth(request)
        except ApiError as err:
            self._count("models", err.status)
            return error_response(err)
        self._count("models", 200)
        return JSONResponse({"object": "list", "data": [
            {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "ckc"}]})

    async def metrics(self, request: HttpRequest) -> Response:
        e, st = self.engine, self.engine.stats
        lines = []

        def metric(name, kind, help_, samples):
            lines.append(f"# HELP ckc_{name} {help_}")
            lines.append(f"# TYPE ckc_{name} {kind}")
            for labels, v in samples:
                lab = "{" + ",".join(f'{k}="{val}"' for k, val in labels.items()) + "}" if labels else ""
                lines.append(f"ckc_{name}{lab} {v}")

        metric("http_requests_total", "counter", "HTTP requests by route and status",
               [({"route": r, "status": str(s)}, n) for (r, s), n in sorted(self.http.items())] or [({}, 0)])
        metric("requests_finished_total", "counter", "generations finished, by reason",
               [({"reason": r}, n) for r, n in sorted(st.requests.items())] or [({}, 0)])
        metric("prompt_tokens_total", "counter", "prompt tokens read", [({}, st.prompt_tokens)])
        metric("generation_tokens_total", "counter", "tokens generated", [({}, st.generated_tokens)])
        metric("tokens_per_second", "gauge", "tokens generated per second over the last 10 s",
               [({}, f"{st.tokens_per_s():.3f}")])
        metric("queue_depth", "gauge", "requests waiting for a slot", [({}, e.queued)])
        metric("slots_busy", "gauge", "slots running a request", [({}, e.busy_slots)])
        metric("slots_total", "gauge", "slots", [({}, len(e.slots))])
        metric("engine_steps_total", "counter", "scheduler steps (one model call per busy slot)", [({}, st.steps)])
        metric("engine_busy_seconds_total", "counter", "seconds spent in model steps",
               [({}, f"{st.busy_seconds:.6f}")])
        ttft = st.ttft_sum / st.ttft_count if st.ttft_count else 0.0
        metric("time_to_first_token_seconds_avg", "gauge", "mean time from arrival to first token",
               [({}, f"{ttft:.6f}")])
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    # -- generation routes
    async def chat(self, request: HttpRequest) -> Response:
        return await self._generate(request, chat=True)

    async def completions(self, request: HttpRequest) -> Response:
        return await self._generate(request, chat=False)

    async def _generate(self, request: HttpRequest, chat: bool) -> Response:
        route = "chat" if chat else "completions"
        try:
            self._auth(request)
            body = protocol.parse_json(await request.body())
            opts = protocol.sampling(body, self.default_max_tokens)
            if chat:
                messages = protocol.chat_messages(body)
                logprobs = protocol.chat_logprobs(body)
                ids = self._chat_ids(messages)
            else:
                prompt = protocol.completion_prompt(body)
                logprobs = protocol.completion_logprobs(body)
                ids = self._completion_ids(prompt)
            if len(ids) >= self.engine.context:
                raise ApiError(400, f"the prompt is {len(ids)} tokens; the context holds {self.engine.context} "
                               "(prompt + at least 1 new token)", param="messages" if chat else "prompt",
                               code="context_length_exceeded")
            try:
                sampler = Sampler(temperature=opts["temperature"], top_k=opts["top_k"], top_p=opts["top_p"],
                                  seed=opts["seed"])
            except ValueError as e:
                raise ApiError(400, str(e), code="invalid_value") from None
            params = Params(max_tokens=opts["max_tokens"], sampler=sampler, stop=opts["stop"],
                            logprobs=logprobs, eos_ids=self.eos_ids)
            loop = asyncio.get_running_loop()
            events: asyncio.Queue = asyncio.Queue()

            def sink(ev: Event) -> None:
                try:
                    loop.call_soon_threadsafe(events.put_nowait, ev)
                except RuntimeError:  # the loop is closed: nobody is listening
                    pass

            req = Request(ids, params, sink)
            try:
                self.engine.submit(req)
            except QueueFull as e:
                raise ApiError(503, f"server busy: {e}; retry later", code="server_busy", type_="server_error",
                               headers={"Retry-After": str(self.retry_after_s)}) from None
            except EngineClosed as e:
                raise ApiError(503, str(e), code="shutting_down", type_="server_error",
                               headers={"Retry-After": str(self.retry_after_s)}) from None
        except ApiError as err:
            self._count(route, err.status)
            return error_response(err)
        self._count(route, 200)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        if opts["stream"]:
            return _SSE(self._stream(req, events, rid, chat, opts["include_usage"]), media_type="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await self._collect(request, req, events, rid, chat)

    def _chat_ids(self, messages) -> list[int]:
        from ckc.chat_template import ChatTemplateError

        try:
            text = self.template.render(messages, add_generation_prompt=True)
        except ChatTemplateError as e:
            raise ApiError(400, str(e), param="messages", code="invalid_value") from None
        return encode_chat(self.tok, text)

    def _completion_ids(self, prompt) -> list[int]:
        if isinstance(prompt, list):
            vocab = self.engine.backend.vocab
            bad = [t for t in prompt if not 0 <= t < vocab]
            if bad:
                raise ApiError(400, f"token id {bad[0]} is out of range (vocab {vocab})", param="prompt",
                               code="invalid_value")
            return prompt
        ids = list(self.tok.encode(prompt, add_special=True))
        if not ids:
            raise ApiError(400, "the prompt encodes to no tokens", param="prompt", code="invalid_value")
        return ids

    # -- output shapes
    def _chunk(self, rid, chat, text, finish, tokens=None, first=False) -> dict:
        base = {"id": rid, "created": int(time.time()), "model": self.model_name, "system_fingerprint": "ckc"}
        if chat:
            delta = {}
            if first:
                delta["role"] = "assistant"
            if text or first:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": _chat_lp(tokens), "finish_reason": finish}
            return dict(base, object="chat.completion.chunk", choices=[choice])
        choice = {"index": 0, "text": text, "logprobs": _completion_lp(tokens), "finish_reason": finish}
        return dict(base, object="text_completion", choices=[choice])

    async def _stream(self, req: Request, events: asyncio.Queue, rid: str, chat: bool, include_usage: bool):
        def sse(obj) -> str:
            return "data: " + json.dumps(obj, ensure_ascii=False) + "\n\n"

        try:
            if chat:
                yield sse(self._chunk(rid, chat, "", None, first=True))
            pending = None
            while True:
                if pending is not None:
                    ev, pending = pending, None
                else:
                    try:
                        ev = await asyncio.wait_for(events.get(), KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        yield ": waiting\n\n"   # an SSE comment: lets a gone client show up as a failed send
                        continue
                if ev.kind == "token":
                    # tokens that arrived while the last chunk was being sent go out as one chunk:
                    # no added latency, less per-token overhead when the model outruns the client
                    text, toks = ev.text, list(ev.tokens)
                    while not events.empty():
                        nxt = events.get_nowait()
                        if nxt.kind != "token":
                            pending = nxt
                            break
                        text += nxt.text
                        toks += nxt.tokens
                    lp = [t for t in toks if t.logprob is not None]
                    if text or lp:
                        yield sse(self._chunk(rid, chat, text, None, lp or None))
                elif ev.kind == "done":
                    yield sse(self._chunk(rid, chat, "", ev.finish_reason if ev.finish_reason != "cancelled"
                                          else "stop"))
                    if include_usage:
                        yield sse({"id": rid, "object": "chat.completion.chunk" if chat else "text_completion",
                                   "created": int(time.time()), "model": self.model_name, "choices": [],
                                   "usage": _usage(ev)})
                    yield "data: [DONE]\n\n"
                    return
                else:  # error: the stream has started, so it is reported in-band
                    yield sse({"error": {"message": ev.error, "type": "server_error", "param": None,
                                         "code": "generation_failed"}})
                    yield "data: [DONE]\n\n"
                    return
        finally:
            if not req.done:
                req.cancel()

    async def _collect(self, request: HttpRequest, req: Request, events: asyncio.Queue, rid: str, chat: bool):
        text, tokens = [], []
        loop = asyncio.get_running_loop()
        next_check = loop.time() + DISCONNECT_POLL_S
        try:
            while True:
                # tokens may arrive faster than the poll period: check on the clock, not on idle
                if loop.time() >= next_check:
                    next_check = loop.time() + DISCONNECT_POLL_S
                    if await request.is_disconnected():
                        req.cancel()
                        return Response(status_code=499)
                try:
                    ev: Event = await asyncio.wait_for(events.get(), DISCONNECT_POLL_S)
                except asyncio.TimeoutError:
                    continue
                if ev.kind == "token":
                    text.append(ev.text)
                    tokens += [t for t in ev.tokens if t.logprob is not None]
                elif ev.kind == "error":
                    return error_response(ApiError(500, f"generation failed: {ev.error}", code="generation_failed"))
                else:
                    break
        finally:
            if not req.done:
                req.cancel()
        out = "".join(text)
        created = int(time.time())
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": out},
                      "logprobs": _chat_lp(tokens or None), "finish_reason": ev.finish_reason}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": out, "logprobs": _completion_lp(tokens or None),
                      "finish_reason": ev.finish_reason}
            obj = "text_completion"
        return JSONResponse({"id": rid, "object": obj, "created": created, "model": self.model_name,
                             "system_fingerprint": "ckc", "choices": [choice], "usage": _usage(ev)})


def encode_chat(tok, text: str) -> list[int]:
    """A rendered chat as ids: the template wrote BOS and the control tokens
    itself, so no BOS is added and control tokens in the text are parsed."""
    try:
        return list(tok.encode(text, add_special=False, parse_special=True))
    except TypeError:  # a tokenizer without parse_special (the Hugging Face fallback parses them anyway)
        return list(tok.encode(text, add_special=False))


def _usage(ev: Event) -> dict:
    return {"prompt_tokens": ev.prompt_tokens, "completion_tokens": ev.completion_tokens,
            "total_tokens": ev.prompt_tokens + ev.completion_tokens}


def _completion_lp(tokens):
    if not tokens:
        return None
    return {"tokens": [t.text for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [t.top or {} for t in tokens], "text_offset": None}


def _chat_lp(tokens):
    if not tokens:
        return None
    return {"content": [{"token": t.text, "logprob": t.logprob, "bytes": list(t.text.encode()),
                         "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())}
                                          for k, v in (t.top or {}).items()]} for t in tokens]}
