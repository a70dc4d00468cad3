"""OpenAI request checking and response shapes, independent of the HTTP stack.

Every check failure is an ``ApiError`` carrying the HTTP status and the
OpenAI error body ``{"error": {"message", "type", "param", "code"}}``.
Unknown fields are ignored (clients send many); known fields of the wrong type
or out of range are refused with the field named in ``param``.
"""

from __future__ import annotations

import json
import math

MAX_STOPS = 4
MAX_LOGPROBS = 5


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, type_: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_ or ("invalid_request_error" if status < 500 else "server_error")
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def parse_json(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"request body is not valid JSON: {str(e).splitlines()[0]}",
                       code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}",
                       code="invalid_json")
    return data


def _bad(param: str, want: str, got) -> ApiError:
    return ApiError(400, f"'{param}' must be {want}, got {json.dumps(got)[:80]}", param=param,
                    code="invalid_type")


def _num(body: dict, key: str, default, lo=None, hi=None, *, integer=False, lo_open=False):
    v = body.get(key, None)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise _bad(key, "an integer" if integer else "a number", v)
    if not integer and not math.isfinite(v):
        raise _bad(key, "a finite number", v)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ApiError(400, f"'{key}' must be {'>' if lo_open else '>='} {lo}, got {v}", param=key,
                       code="invalid_value")
    if hi is not None and v > hi:
        raise ApiError(400, f"'{key}' must be <= {hi}, got {v}", param=key, code="invalid_value")
    return v


def sampling(body: dict, default_max_tokens: int) -> dict:
    """The generation parameters common to both endpoints."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("model", "a string", model)
    n = _num(body, "n", 1, integer=True)
    if n != 1:
        raise ApiError(400, f"'n' must be 1 (one completion per request), got {n}", param="n",
                       code="invalid_value")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _num(body, key, default_max_tokens, integer=True)
    if max_tokens <= 0:
        raise ApiError(400, f"'{key}' must be >= 1, got {max_tokens}", param=key, code="invalid_value")
    temperature = float(_num(body, "temperature", 1.0, 0.0, 2.0))
    top_p = float(_num(body, "top_p", 1.0, 0.0, 1.0, lo_open=True))
    top_k = int(_num(body, "top_k", 0, 0, integer=True))
    seed = _num(body, "seed", None, integer=True)
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,) if stop else ()
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOPS:
        stops = tuple(s for s in stop if s)
    else:
        raise _bad("stop", f"a string or a list of at most {MAX_STOPS} strings", stop)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream", "a boolean", stream)
    opts = body.get("stream_options")
    include_usage = False
    if opts is not None:
        if not isinstance(opts, dict) or not isinstance(opts.get("include_usage", False), bool):
            raise _bad("stream_options", 'an object like {"include_usage": true}', opts)
        include_usage = bool(opts.get("include_usage", False))
    return dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed,
                stop=stops, stream=stream, include_usage=include_usage)


def chat_messages(body: dict) -> list[dict]:
    """The ``messages`` list, each with a string role and string content (text
    parts of a content list are joined)."""
    msgs = body.get("messages")
    if msgs is None:
        raise ApiError(400, "'messages' is required", param="messages", code="missing_required_parameter")
    if not isinstance(msgs, list):
        raise _bad("messages", "a list of messages", msgs)
    if not msgs:
        raise ApiError(400, "'messages' must hold at least one message", param="messages", code="invalid_value")
    out = []
    for i, m in enumerate(msgs):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(p, "an object with 'role' and 'content'", m)
        role = m.get("role")
        if not isinstance(role, str) or not role:
            raise _bad(f"{p}.role", "a non-empty string", role)
        content = m.get("content")
        if content is None:
            content = ""
        elif isinstance(content, list):
            parts = []
            for j, part in enumerate(content):
                if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                    raise _bad(f"{p}.content[{j}]", 'a text part {"type": "text", "text": ...}', part)
                parts.append(part["text"])
            content = "".join(parts)
        elif not isinstance(content, str):
            raise _bad(f"{p}.content", "a string or a list of text parts", content)
        msg = {"role": role, "content": content}
        if isinstance(m.get("name"), str):
            msg["name"] = m["name"]
        out.append(msg)
    return out


def completion_prompt(body: dict):
    """``prompt``: a string (or a one-string list), or a list of token ids."""
    prompt = body.get("prompt")
    if prompt is None:
        raise ApiError(400, "'prompt' is required", param="prompt", code="missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise ApiError(400, "'prompt' must not be empty", param="prompt", code="invalid_value")
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return [int(t) for t in prompt]
    raise _bad("prompt", "a non-empty string or a list of token ids (n = 1)", prompt)


def completion_logprobs(body: dict) -> int | None:
    v = body.get("logprobs")
    if v is None or v is False:
        return None
    if v is True:
        return 0
    return int(_num(body, "logprobs", None, 0, MAX_LOGPROBS, integer=True))


def chat_logprobs(body: dict) -> int | None:
    v = body.get("logprobs")
    if v is None or v is False:
        return None
    if v is not True:
        raise _bad("logprobs", "a boolean", v)
    return int(_num(body, "top_logprobs", 0, 0, 20, integer=True))
