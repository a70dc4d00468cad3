"""The `transformers` reference: the Hugging Face model (fp32, eager attention)
run once on the whole token sequence the compiled model saw, every tensor the
mapping needs captured by forward hooks (module outputs, or a module's input:
the attention output is ``o_proj``'s input) and, for RoPE, which is a function
rather than a module in transformers, by wrapping the modeling module's
``apply_rotary_pos_emb`` while a layer's attention runs. Causal attention
makes row p of the whole-sequence forward equal to the compiled model's run at
position p, so a prefill chunk or a decode step compares with its rows.

The mapping (:data:`LLAMA_LIKE`, :data:`GPT2`) takes an IR value name
(``l3_ffn_up``, ``l3_k_cache`` for the rows a call wrote into layer 3's K
cache) to a capture point; an IR value with no entry has no counterpart.
A GGUF of a Llama-style model stores q/k rows permuted for llama.cpp's
interleaved RoPE; the captured q/k tensors are permuted the same way.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from ckc.errors import CkcError

# IR name (without the layer prefix) -> (module path under the layer, "out" | "in" | "rope_q" | "rope_k")
LLAMA_LIKE = {
    "attn_norm": ("input_layernorm", "out"),
    "q": ("self_attn.q_proj", "out"),
    "k": ("self_attn.k_proj", "out"),
    "v": ("self_attn.v_proj", "out"),
    "v_cache": ("self_attn.v_proj", "out"),
    "q_normed": ("self_attn.q_norm", "out"),
    "k_normed": ("self_attn.k_norm", "out"),
    "q_rot": ("self_attn", "rope_q"),
    "k_rot": ("self_attn", "rope_k"),
    "k_cache": ("self_attn", "rope_k"),
    "attn": ("self_attn.o_proj", "in"),
    "attn_out": ("self_attn.o_proj", "out"),
    "post_attention_norm": ("post_attention_layernorm", "out"),
    "resid": ("post_attention_layernorm", "in"),
    "ffn_norm": ("post_attention_layernorm", "out"),
    "ffn_up": ("mlp.up_proj", "out"),
    "ffn_gate": ("mlp.gate_proj", "out"),
    "ffn_act": ("mlp.down_proj", "in"),
    "ffn_out": ("mlp.down_proj", "out"),
    "post_ffw_norm": ("post_feedforward_layernorm", "out"),
    "resid_v2": ("", "out"),
}
# Gemma 2/3 norm both sides of each block: the FFN's input norm is pre_feedforward_layernorm.
SANDWICH = dict(LLAMA_LIKE, resid=("pre_feedforward_layernorm", "in"), ffn_norm=("pre_feedforward_layernorm", "out"))
LLAMA_GLOBAL = {"x_emb": ("model.layers.0", "in"), "output_norm": ("model.norm", "out"), "logits": ("lm_head", "out")}

GPT2 = {
    "attn_norm": ("ln_1", "out"),
    "q": ("attn.c_attn", "out:0/3"),
    "k_cache": ("attn.c_attn", "out:1/3"),
    "v_cache": ("attn.c_attn", "out:2/3"),
    "k": ("attn.c_attn", "out:1/3"),       # the training graph's names (no KV cache)
    "v": ("attn.c_attn", "out:2/3"),
    "attn": ("attn.c_proj", "in"),
    "attn_out": ("attn.c_proj", "out"),
    "resid": ("ln_2", "in"),
    "ffn_norm": ("ln_2", "out"),
    "ffn_up": ("mlp.c_fc", "out"),
    "ffn_act": ("mlp.c_proj", "in"),
    "ffn_out": ("mlp.c_proj", "out"),
    "resid_v2": ("", "out"),
}
GPT2_GLOBAL = {"x_emb": ("transformer.wte", "out"), "x_pos": ("transformer.h.0", "in"),
               "output_norm": ("transformer.ln_f", "out"), "logits": ("lm_head", "out")}

_PERMUTED = ("q", "k", "q_rot", "k_rot", "k_cache", "q_normed", "k_normed")


def load_torch_model(path: Path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    path = Path(path)
    try:
        if path.is_dir():
            return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32,
                                                        attn_implementation="eager").eval()
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        cfg = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
        cfg._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
        model.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in tensors.items()}, strict=False)
        model.tie_weights()
        return model.eval()
    except Exception as e:  # noqa: BLE001 - transformers' own refusal, as one line
        raise CkcError(f"{path}: transformers cannot load it: {str(e).splitlines()[0] if str(e) else type(e).__name__}")


class HFReference:
    name = "transformers"
    full_sequence = True

    def __init__(self, model, permute_heads: tuple[int, int] | None = None):
        self.model = model
        self.gpt2 = model.config.model_type == "gpt2"
        self.permute = permute_heads  # (heads, kv_heads) when q/k are stored permuted (GGUF llama)
        mt = model.config.model_type
        self.layer_points = GPT2 if self.gpt2 else (SANDWICH if mt.startswith(("gemma2", "gemma3")) else LLAMA_LIKE)
        self.global_points = GPT2_GLOBAL if self.gpt2 else LLAMA_GLOBAL
        self.layers_path = "transformer.h" if self.gpt2 else "model.layers"

    @classmethod
    def load(cls, path):
        from ckc.importers import load_model

        path = Path(path)
        cfg, _ = load_model(path)
        model = load_torch_model(path)
        permute = None
        if getattr(cfg, "rope_style", "") == "interleaved" and model.config.model_type in ("llama",):
            permute = (cfg.n_heads, cfg.n_kv_heads)
        return cls(model, permute)

    def mapping(self, value: str) -> str | None:
        """IR value name -> capture key (the module path and how), or None."""
        m = re.match(r"^l(\d+)_(.*)$", value)
        if m:
            pt = self.layer_points.get(m.group(2))
            if pt is None:
                return None
            mod = f"{self.layers_path}.{m.group(1)}" + (f".{pt[0]}" if pt[0] else "")
            return f"{mod}|{pt[1]}|{m.group(2)}"
        pt = self.global_points.get(value)
        return f"{pt[0]}|{pt[1]}|{value}" if pt else None

    def capture(self, runs, seq: list[int]) -> list[dict]:
        """Per run, {capture key: rows of that run}."""
        import torch

        from ckc.parity.calls import value_name

        keys = {self.mapping(value_name(o.name)) for r in runs for o in r.outputs}
        keys.discard(None)
        with torch.no_grad():
            full, _ = self.run(keys, lambda: self.model(torch.tensor([seq], dtype=torch.long), use_cache=False),
                               T=len(seq))
        return [{k: v[r.pos:r.pos + r.n] for k, v in full.items()} for r in runs]

    def run(self, keys: set[str], forward, T: int, grads: bool = False) -> tuple[dict, dict]:
        """Calls forward() with hooks capturing the tensors of `keys`;
        ({key: value}, {key: gradient}) as numpy, rows first (the gradients
        when forward() ran a backward pass and grads is set)."""
        mods = dict(self.model.named_modules())
        got: dict[str, tuple] = {}  # key -> (tensor, how to make it [T, ...])
        handles = []
        rope_layers: dict[str, list[str]] = {}

        def keep(key, t, post=None):
            t = t[0] if isinstance(t, (tuple, list)) else t
            if grads and t.requires_grad:
                t.retain_grad()
            got[key] = (t, post)

        by_mod: dict[tuple[str, str], list[str]] = {}
        for k in keys:
            mod, how, _ = k.split("|")
            if how.startswith("rope"):
                rope_layers.setdefault(mod, []).append(k)
                continue
            by_mod.setdefault((mod, how), []).append(k)
        for (mod, how), ks in by_mod.items():
            if mod not in mods:
                raise CkcError(f"transformers model has no module '{mod}' (mapping for {ks[0].split('|')[2]})")
            if how == "in":
                def pre(m, args, kwargs, ks=ks):
                    x = args[0] if args else kwargs.get("hidden_states", kwargs.get("input"))
                    for k in ks:
                        keep(k, x)
                handles.append(mods[mod].register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(m, args, output, ks=ks, how=how):
                    cut = None
                    if ":" in how:  # a third of a fused projection (GPT-2's c_attn)
                        i, n = map(int, how.split(":")[1].split("/"))

                        def cut(a, i=i, n=n):
                            w = a.shape[-1] // n
                            return a[..., i * w:(i + 1) * w]
                    for k in ks:
                        keep(k, output, cut)
                handles.append(mods[mod].register_forward_hook(post))
        current: list[str | None] = [None]
        patched = []
        for mod in rope_layers:
            def enter(m, args, kwargs, mod=mod):
                current[0] = mod

            def leave(m, args, output):
                current[0] = None
            handles.append(mods[mod].register_forward_pre_hook(enter, with_kwargs=True))
            handles.append(mods[mod].register_forward_hook(leave))
            modeling = sys.modules[type(mods[mod]).__module__]
            if modeling not in [p[0] for p in patched]:
                orig = modeling.apply_rotary_pos_emb

                def wrapped(q, k, *a, orig=orig, **kw):
                    qr, kr = orig(q, k, *a, **kw)
                    if current[0] is not None:
                        for key in rope_layers.get(current[0], []):
                            # [b, h, T, d] -> [T, h, d]
                            keep(key, qr if key.split("|")[1] == "rope_q" else kr, lambda a: a.swapaxes(-2, -3))
                    return qr, kr
                patched.append((modeling, orig))
                modeling.apply_rotary_pos_emb = wrapped
        try:
            forward()
        finally:
            for h in handles:
                h.remove()
            for modeling, orig in patched:
                modeling.apply_rotary_pos_emb = orig
        values, gradients = {}, {}
        for k, (t, post) in got.items():
            values[k] = self._rows(k, t.detach(), post, T)
            if grads and t.grad is not None:
                gradients[k] = self._rows(k, t.grad, post, T)
        return values, gradients

    def _rows(self, key: str, t, post, T: int) -> np.ndarray:
        a = t.float().numpy()
        if post is not None:
            a = post(a)
        a = a[0] if a.ndim >= 2 and a.shape[0] == 1 else a
        if a.ndim == 3 and a.shape[1] == T and a.shape[0] != T:  # [heads, T, d] -> [T, heads, d]
            a = a.transpose(1, 0, 2)
        name = key.split("|")[2]
        if self.permute and name in _PERMUTED:
            flat = a.reshape(a.shape[0], -1)
            heads = self.permute[0] if name.startswith("q") else self.permute[1]
            a = flat.reshape(a.shape[0], heads, 2, -1).swapaxes(2, 3).reshape(a.shape[0], -1)
        return a
