"""`ckc chat` with piped stdin, and the chat templates it and `ckc serve` share.

- SmolLM2's template (from its GGUF) renders exactly as transformers'
  ``render_jinja_template`` renders it, for conversations with and without a
  system message, with and without the generation prompt;
- tokenizer_config.json templates (string and named list), the fallback, and a
  template's ``raise_exception`` as one-line ``ChatTemplateError``;
- `ckc chat` on the tiny llama: every reply equals greedy generation
  (ckc.sampling.generate on a Session, the loop `ckc run` uses) on the same
  rendered conversation, a stats line per reply, /reset, bad input.
"""

from __future__ import annotations

import json

import pytest

from serve_util import ckc

CONVERSATIONS = [
    [{"role": "user", "content": "Hi there"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
]


@pytest.mark.parametrize("gen", [True, False])
@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
def test_smollm2_template_matches_transformers(conv, gen):
    from transformers.utils.chat_template_utils import render_jinja_template

    from ckc import assets, chat_template
    from ckc.tokenizer import load

    path = assets.smollm2_gguf()
    t = chat_template.load(path, load(path))
    assert t.source.startswith("gguf")
    msgs = CONVERSATIONS[conv]
    want = render_jinja_template([msgs], chat_template=t.template, add_generation_prompt=gen,
                                 bos_token=t.bos_token, eos_token=t.eos_token)
    want = want[0][0] if isinstance(want, tuple) else want
    want = want[0] if isinstance(want, list) else want
    assert t.render(msgs, add_generation_prompt=gen) == want


def test_template_from_tokenizer_config(tmp_path):
    from ckc import chat_template

    tpl = "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] | tojson }}{% endfor %}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": [{"name": "tool_use", "template": "no"}, {"name": "default", "template": tpl}],
         "bos_token": {"content": "<s>"}, "eos_token": "</s>"}))
    t = chat_template.load(tmp_path)
    assert t.source == "tokenizer_config.json"
    assert t.render([{"role": "user", "content": "<b>é"}]) == '<s>[user]"<b>é"'

    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": "{{ raise_exception('only user messages') }}"}))
    with pytest.raises(chat_template.ChatTemplateError, match="only user messages"):
        chat_template.load(tmp_path).render([{"role": "user", "content": "x"}])

    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{% for %}"}))
    with pytest.raises(chat_template.ChatTemplateError, match="does not compile"):
        chat_template.load(tmp_path).render([])

    (tmp_path / "tokenizer_config.json").write_text("{}")
    t = chat_template.load(tmp_path)
    assert t.source == "fallback"
    assert t.render([{"role": "user", "content": "hi"}]) == "user: hi\nassistant: "


def _reference_replies(model, lines, max_tokens):
    """Each turn's greedy reply, computed with Session + generate (no engine)."""
    from ckc import chat_template
    from ckc.commands.run import compiled_dir, load_tokenizer
    from ckc.pipeline import CompileOptions
    from ckc.sampling import generate
    from ckc.serve.app import encode_chat
    from ckc.session import Session

    tok = load_tokenizer(model)
    t = chat_template.load(model, tok)
    history, out = [], []
    with Session(compiled_dir(model, CompileOptions()), threads=1) as s:
        for line in lines:
            history.append({"role": "user", "content": line})
            ids = encode_chat(tok, t.render(history))
            g = generate(s, ids, max_tokens, eos_ids=tok.eog_ids)
            reply = tok.decode(g.tokens)
            out.append(reply)
            history.append({"role": "assistant", "content": reply})
    return out


def test_chat_piped_stdin_equals_greedy_generation():
    from ckc import modelzoo

    model = modelzoo.gguf_file("llama")
    lines = ["Who is the king?", "And the queen?"]
    want = _reference_replies(model, lines, 10)
    r = ckc("chat", str(model), "--threads", "1", "--max-tokens", "10", input="\n".join(lines) + "\n", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(w + "\n" for w in want)
    stats = [ln for ln in r.stderr.splitlines() if ln.startswith("[")]
    assert len(stats) == 2 and all("tok/s" in s and "10 tokens (length)" in s for s in stats), r.stderr

    # /reset forgets the conversation: the second question then gets its first-turn answer
    r2 = ckc("chat", str(model), "--threads", "1", "--max-tokens", "10", "--no-stats",
             input=f"{lines[0]}\n/reset\n{lines[1]}\n/exit\nnever read\n", timeout=300)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == want[0] + "\n" + _reference_replies(model, [lines[1]], 10)[0] + "\n"
    assert r2.stderr == ""


def test_chat_bad_input():
    from ckc import modelzoo

    r = ckc("chat", "/nonexistent/model.gguf", input="hi\n", timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("ckc: error:") and "Traceback" not in r.stderr
    r = ckc("chat", str(modelzoo.gguf_file("llama")), "--ctx", "100000", input="hi\n", timeout=120)
    assert r.returncode == 1 and "exceeds the model's context of 256" in r.stderr, r.stderr
    r = ckc("chat", str(modelzoo.gguf_file("llama")), "--max-tokens", "0", input="hi\n", timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("ckc: error: --max-tokens"), r.stderr
