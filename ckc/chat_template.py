"""A model's chat template: found in its files, rendered with jinja2 as transformers does.

    t = chat_template.load(Path("SmolLM2-135M-Instruct.Q4_1.gguf"))
    text = t.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True)

Where the template comes from, first found wins:

1. a GGUF file's metadata key ``tokenizer.chat_template``;
2. ``tokenizer_config.json``'s ``chat_template`` (a string, or a list of
   ``{"name", "template"}`` of which "default" is taken) next to the model, or
   ``chat_template.jinja`` there;
3. otherwise ``FALLBACK``, a plain "role: content" layout, so models without
   a template (the tiny test models) still chat. ``ChatTemplate.source`` says
   which one was used.

Rendering follows ``transformers.utils.chat_template_utils``: an immutable
sandboxed jinja2 environment with ``trim_blocks`` and ``lstrip_blocks``, the
``loopcontrols`` extension, ``raise_exception``, ``strftime_now``, and a
``tojson`` that does not escape HTML; ``bos_token``/``eos_token`` are passed as
variables. A template that raises (``raise_exception``, a jinja error) becomes a
``ChatTemplateError`` with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

FALLBACK = (
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)


class ChatTemplateError(ValueError):
    """A template that cannot be read, compiled or rendered; str() is one line."""


@lru_cache(maxsize=8)
def _compile(source: str):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # jinja's own tojson escapes HTML characters; transformers' does not
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateError as e:
        raise ChatTemplateError(f"chat template does not compile: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


@dataclass
class ChatTemplate:
    source: str            # where the template came from ("gguf:...", "tokenizer_config.json", "fallback")
    template: str
    bos_token: str = ""
    eos_token: str = ""

    def render(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> str:
        import jinja2

        compiled = _compile(self.template)
        try:
            return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                   bos_token=self.bos_token, eos_token=self.eos_token, **extra)
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"chat template: {_one_line(e)}") from None
        except (TypeError, KeyError, AttributeError, ValueError) as e:
            raise ChatTemplateError(f"chat template cannot render these messages: {_one_line(e)}") from None


def _token_text(tok, i) -> str:
    if i is None:
        return ""
    try:
        return tok.token_text(int(i)) if hasattr(tok, "token_text") else tok.decode([int(i)])
    except Exception:  # noqa: BLE001 - a missing special token only empties the variable
        return ""


def _from_config(folder: Path) -> tuple[str, str, str] | None:
    """(template, bos, eos) from tokenizer_config.json / chat_template.jinja in folder."""
    cfg = folder / "tokenizer_config.json"
    data = {}
    if cfg.is_file():
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ChatTemplateError(f"{cfg}: unreadable: {_one_line(e)}") from None
        if not isinstance(data, dict):
            data = {}

    def special(key):
        v = data.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        return v if isinstance(v, str) else ""

    tpl = data.get("chat_template")
    if isinstance(tpl, list):
        named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
        tpl = named.get("default")
    if not isinstance(tpl, str) and (folder / "chat_template.jinja").is_file():
        tpl = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(tpl, str) and tpl.strip():
        return tpl, special("bos_token"), special("eos_token")
    return None


def load(model_path, tokenizer=None) -> ChatTemplate:
    """The chat template of a model file or directory (see the module docstring).
    ``tokenizer`` (optional) names the BOS/EOS tokens for a GGUF template."""
    path = Path(model_path)
    if path.is_file() and path.suffix == ".gguf":
        from ckc.tokenizer import read_gguf_metadata

        meta = read_gguf_metadata(path)
        tpl = meta.get("tokenizer.chat_template")
        if isinstance(tpl, str) and tpl.strip():
            bos = _token_text(tokenizer, meta.get("tokenizer.ggml.bos_token_id")) if tokenizer else ""
            eos = _token_text(tokenizer, meta.get("tokenizer.ggml.eos_token_id")) if tokenizer else ""
            return ChatTemplate("gguf:tokenizer.chat_template", tpl, bos, eos)
    folder = path if path.is_dir() else path.parent
    found = _from_config(folder)
    if found is not None:
        return ChatTemplate("tokenizer_config.json", *found)
    return ChatTemplate("fallback", FALLBACK)
