"""`verify-shapes`: check every model op against the module's `#transformer.config`.

An analysis: the IR is left unchanged when everything agrees. Otherwise the
FIRST op (in walk order) whose shapes or attributes disagree with the config
raises a ``ShapeMismatch`` naming the operand, what was expected and what was
found; ``ckc-opt`` prints it as one line
``file:line:col: error: 'transformer.attention' op wq has shape [...], expected ...``.

What is checked, per op (each op's own verifier already checked that its
operands agree with each other and with its attributes):

- ``transformer.embedding``: table ``[vocab, hidden]``, a positions table
  ``[context, hidden]`` iff ``learned_pos``, ``scale == embed_scale``;
- ``transformer.norm``: kind, eps and offset as configured, weight ``[hidden]``,
  a bias iff ``norm_bias``;
- ``transformer.attention``: heads, kv_heads, head_dim, layer < layers (each
  layer once per function), scale, softcap, window and RoPE (style, theta,
  rotary_dim, scaling) of that layer, biases iff ``qkv_bias``/``o_bias``,
  q/k norms iff ``qk_norm`` (with the config's norm eps and offset),
  x ``[T, hidden]``;
- ``transformer.mlp``: kind, GELU flavour of ``act``, gate/up ``[ffn, hidden]``,
  down ``[hidden, ffn]``, biases iff ``mlp_bias``;
- ``transformer.residual``: ``[T, hidden]``;
- ``transformer.lm_head``: weight ``[vocab, hidden]``, tied flag (a tied head
  reads ``token_embd.weight``), softcap ``final_softcap``;
- ``transformer.cross_entropy``: logits ``[T, vocab]``;
- ``transformer.weight``: the canonical names with a known shape
  (``token_embd.weight``, ``position_embd.weight``, ``output.weight``,
  ``output_norm.weight[/bias]``), ``blk.N.*`` with N < layers, and tensors
  that only exist under a config flag (positions, post-norms, q/k norms,
  biases) only when it is set.

tensorop ops (after lower-transformer the module keeps its config) are
checked by name and property where they carry model facts: ``weight`` as
above; ``causal_attention[_grad]`` heads, kv_heads, head_dim, scale, window and
softcap; ``rope[_grad]`` heads, head_dim, style, theta, rotary_dim;
``rmsnorm``/``layernorm`` (and grads) eps, offset and a ``[hidden]`` (or
``[head_dim]`` with QK-norm) weight; ``embedding`` a ``[vocab, hidden]`` (or
positions ``[context, hidden]``) table. Ops of other dialects are skipped,
and any op defining ``verify_shapes(config)`` is also asked to check itself.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from ckc.dialects.transformer import (
    CONFIG_KEY,
    DYNAMIC,
    AttentionOp,
    ConfigAttr,
    CrossEntropyOp,
    EmbeddingOp,
    LmHeadOp,
    MlpOp,
    NormOp,
    ResidualOp,
    WeightOp,
    shape_of,
)


class ShapeMismatch(VerifyException):
    """An op disagrees with the model config; ``op`` is the culprit."""

    def __init__(self, op: Operation, message: str):
        super().__init__(message)
        self.op = op


def _fmt(shape: tuple[int, ...] | list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None or d == DYNAMIC else str(d) for d in shape) + "]"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _short32(x: float) -> str:
    """Shortest decimal that reads back as the same f32 (tensorop props are f32)."""
    for digits in range(1, 10):
        text = f"{x:.{digits}g}"
        if _f32(float(text)) == _f32(x):
            return repr(float(text))
    return repr(x)


def _close32(a: float, b: float) -> bool:
    """Equal once both are rounded to f32 (tensorop keeps f32 properties)."""
    return _f32(a) == _f32(b) or math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


class _Checker:
    def __init__(self, cfg: ConfigAttr):
        self.cfg = cfg
        self.c = cfg.to_dict()
        self.layers_seen: dict[int, set[int]] = {}

    # -- helpers ----------------------------------------------------------------

    def fail(self, op: Operation, msg: str) -> None:
        raise ShapeMismatch(op, msg)

    def shape(self, op: Operation, what: str, value: SSAValue, expected: list[int | None], meaning: str) -> None:
        actual = shape_of(value)
        ok = len(actual) == len(expected) and all(
            e is None or a == DYNAMIC or a == e for a, e in zip(actual, expected)
        )
        if not ok:
            self.fail(op, f"{what} has shape {_fmt(actual)}, expected {meaning} = {_fmt(expected)} by #transformer.config")

    def attr(self, op: Operation, what: str, actual: Any, field: str, expected: Any | None = None) -> None:
        want = self.c[field] if expected is None else expected
        same = _close(actual, want) if isinstance(want, float) and not isinstance(want, bool) else actual == want
        if not same:
            self.fail(op, f"{what} is {_show(actual)}, expected {_show(want)} by #transformer.config {field}")

    def presence(self, op: Operation, what: str, value: SSAValue | None, want: bool, field: str) -> None:
        if (value is not None) != want:
            if want:
                self.fail(op, f"{what} is missing, expected by #transformer.config {field} = true")
            self.fail(op, f"{what} is present, but #transformer.config {field} = false")

    def activation(self, op: Operation, what: str, value: SSAValue) -> None:
        self.shape(op, what, value, [None, self.c["hidden"]], "[tokens, hidden]")

    # -- per op -----------------------------------------------------------------

    def check(self, op: Operation) -> None:
        if isinstance(op, WeightOp):
            self.weight(op)
        elif isinstance(op, EmbeddingOp):
            self.embedding(op)
        elif isinstance(op, NormOp):
            self.norm(op)
        elif isinstance(op, AttentionOp):
            self.attention(op)
        elif isinstance(op, MlpOp):
            self.mlp(op)
        elif isinstance(op, ResidualOp):
            self.activation(op, "lhs", op.lhs)
            self.activation(op, "rhs", op.rhs)
        elif isinstance(op, LmHeadOp):
            self.lm_head(op)
        elif isinstance(op, CrossEntropyOp):
            self.shape(op, "logits", op.logits, [None, self.c["vocab"]], "[tokens, vocab]")
        elif op.name.startswith("tensorop."):
            self.tensorop(op)
        if callable(hook := getattr(op, "verify_shapes", None)):
            try:
                hook(self.cfg)
            except ShapeMismatch:
                raise
            except VerifyException as err:
                raise ShapeMismatch(op, str(err)) from err

    _KNOWN = {
        "token_embd.weight": ("[vocab, hidden]", ("vocab", "hidden")),
        "position_embd.weight": ("[context, hidden]", ("context", "hidden")),
        "output.weight": ("[vocab, hidden]", ("vocab", "hidden")),
        "output_norm.weight": ("[hidden]", ("hidden",)),
        "output_norm.bias": ("[hidden]", ("hidden",)),
    }

    # weights that only exist when a config flag says so
    _NEEDS = (
        (r"^position_embd\.", "learned_pos"),
        (r"\.(post_attention_norm|post_ffw_norm)\.", "post_norms"),
        (r"\.attn_[qk]_norm\.", "qk_norm"),
        (r"(^|\.)(attn_norm|ffn_norm|output_norm|post_attention_norm|post_ffw_norm)\.bias$", "norm_bias"),
        (r"\.(attn_q|attn_k|attn_v|attn_qkv)\.bias$", "qkv_bias"),
        (r"\.attn_output\.bias$", "o_bias"),
        (r"\.ffn_(gate|up|down)\.bias$", "mlp_bias"),
    )

    def weight(self, op: WeightOp) -> None:
        self.weight_name(op, op.tensor_name.data, op.result, op.offset.value.data)

    def weight_name(self, op: Operation, name: str, result: SSAValue, offset: int = 0) -> None:
        if name in self._KNOWN and offset == 0:
            meaning, fields = self._KNOWN[name]
            self.shape(op, f"weight '{name}'", result, [self.c[f] for f in fields], meaning)
        m = re.match(r"blk\.(\d+)\.", name)
        if m and int(m.group(1)) >= self.c["layers"]:
            self.fail(op, f"weight '{name}' names layer {m.group(1)}, but #transformer.config layers = {self.c['layers']}")
        for pattern, field in self._NEEDS:
            if re.search(pattern, name) and not self.c[field]:
                self.fail(op, f"weight '{name}' is present, but #transformer.config {field} = false")

    # -- tensorop ops (by name and property; lowered IR keeps the config) -------

    def prop(self, op: Operation, name: str) -> Any:
        attr = op.properties.get(name, op.attributes.get(name))
        if attr is None:
            return None
        if isinstance(attr, StringAttr):
            return attr.data
        if isinstance(attr, (IntegerAttr, FloatAttr)):
            return attr.value.data
        return None

    def prop_is(self, op: Operation, name: str, field: str, allowed: list[Any]) -> None:
        """Property `name` (if present) must be one of `allowed` (config values)."""
        actual = self.prop(op, name)
        if actual is None:
            return
        for want in allowed:
            if isinstance(want, float) and isinstance(actual, float):
                if _close32(actual, want):
                    return
            elif actual == want:
                return
        shown = " or ".join(_show(a) for a in dict.fromkeys(allowed))
        got = _short32(actual) if isinstance(actual, float) else _show(actual)
        self.fail(op, f"{name} is {got}, expected {shown} by #transformer.config {field}")

    def tensorop(self, op: Operation) -> None:
        c, cfg = self.c, self.cfg
        kind = op.name.removeprefix("tensorop.")
        layers = range(c["layers"])
        if kind == "weight" and isinstance(self.prop(op, "tensor_name"), str) and op.results:
            self.weight_name(op, self.prop(op, "tensor_name"), op.results[0], self.prop(op, "offset") or 0)
        elif kind in ("causal_attention", "causal_attention_grad"):
            self.prop_is(op, "heads", "heads", [c["heads"]])
            self.prop_is(op, "kv_heads", "kv_heads", [c["kv_heads"]])
            self.prop_is(op, "head_dim", "head_dim", [c["head_dim"]])
            self.prop_is(op, "scale", "attn_scale", [cfg.layer_attn_scale(i) for i in layers])
            self.prop_is(op, "window", "sliding_window", [cfg.layer_window(i) for i in layers])
            self.prop_is(op, "softcap", "attn_softcap", [c["attn_softcap"]])
        elif kind in ("rope", "rope_grad"):
            self.prop_is(op, "heads", "heads", [c["heads"], c["kv_heads"]])
            self.prop_is(op, "head_dim", "head_dim", [c["head_dim"]])
            self.prop_is(op, "style", "rope_style", [c["rope_style"]])
            if getattr(op, "inv_freq", None) is None:
                self.prop_is(op, "theta", "rope_theta", [cfg.layer_rope_theta(i) for i in layers])
            if self.prop(op, "rotary_dim") is not None:
                self.prop_is(op, "rotary_dim", "rotary_dim", [c["rotary_dim"]])
        elif kind in ("rmsnorm", "rmsnorm_grad", "layernorm", "layernorm_grad"):
            self.prop_is(op, "eps", "norm_eps", [c["norm_eps"]])
            self.prop_is(op, "offset", "norm_offset", [c["norm_offset"]])
            # The weight operand is `w` on the forward ops and on their grads
            # (whose first operand is the incoming gradient).
            w = getattr(op, "w", None)
            if w is not None and isinstance(w.type, TensorType):
                allowed = [c["hidden"]] + ([c["head_dim"]] if c["qk_norm"] else [])
                shape = shape_of(w)
                if len(shape) != 1 or shape[0] not in allowed:
                    want = " or ".join(f"[{a}]" for a in allowed)
                    self.fail(op, f"weight has shape {_fmt(shape)}, expected {want} ([hidden] or [head_dim]) by #transformer.config")
        elif kind == "embedding":
            table = op.operands[0] if op.operands else None
            if table is not None and isinstance(table.type, TensorType):
                shape = shape_of(table)
                if shape not in ((c["vocab"], c["hidden"]), (c["context"], c["hidden"])):
                    self.fail(
                        op,
                        f"table has shape {_fmt(shape)}, expected [vocab, hidden] = {_fmt([c['vocab'], c['hidden']])} by #transformer.config",
                    )

    def embedding(self, op: EmbeddingOp) -> None:
        c = self.c
        self.shape(op, "table", op.table, [c["vocab"], c["hidden"]], "[vocab, hidden]")
        self.presence(op, "positions", op.positions, c["learned_pos"], "learned_pos")
        if op.positions is not None:
            self.shape(op, "positions", op.positions, [c["context"], c["hidden"]], "[context, hidden]")
        self.attr(op, "scale", op.scale.value.data, "embed_scale")

    def norm(self, op: NormOp) -> None:
        c = self.c
        self.attr(op, "kind", op.kind.data, "norm")
        self.attr(op, "eps", op.eps.value.data, "norm_eps")
        self.attr(op, "offset", op.offset.value.data, "norm_offset")
        self.activation(op, "x", op.x)
        self.shape(op, "weight", op.weight, [c["hidden"]], "[hidden]")
        self.presence(op, "bias", op.bias, c["norm_bias"], "norm_bias")

    def attention(self, op: AttentionOp) -> None:
        c, cfg = self.c, self.cfg
        self.attr(op, "heads", op.heads.value.data, "heads")
        self.attr(op, "kv_heads", op.kv_heads.value.data, "kv_heads")
        self.attr(op, "head_dim", op.head_dim.value.data, "head_dim")
        layer = op.layer.value.data
        if layer >= c["layers"]:
            self.fail(op, f"layer is {layer}, expected < {c['layers']} by #transformer.config layers")
        func = op.parent_op()
        seen = self.layers_seen.setdefault(id(func), set())
        if layer in seen:
            self.fail(op, f"layer {layer} has a second attention op in this function")
        seen.add(layer)
        self.activation(op, "x", op.x)
        q_dim, kv_dim, h = c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"], c["hidden"]
        self.shape(op, "wq", op.wq, [q_dim, h], "[heads*head_dim, hidden]")
        self.shape(op, "wk", op.wk, [kv_dim, h], "[kv_heads*head_dim, hidden]")
        self.shape(op, "wv", op.wv, [kv_dim, h], "[kv_heads*head_dim, hidden]")
        self.shape(op, "wo", op.wo, [h, q_dim], "[hidden, heads*head_dim]")
        self.presence(op, "q_bias", op.q_bias, c["qkv_bias"], "qkv_bias")
        self.presence(op, "k_bias", op.k_bias, c["qkv_bias"], "qkv_bias")
        self.presence(op, "v_bias", op.v_bias, c["qkv_bias"], "qkv_bias")
        self.presence(op, "o_bias", op.o_bias, c["o_bias"], "o_bias")
        self.presence(op, "q_norm", op.q_norm, c["qk_norm"], "qk_norm")
        self.presence(op, "k_norm", op.k_norm, c["qk_norm"], "qk_norm")
        if op.q_norm is not None and op.norm_eps is not None:
            self.attr(op, "norm_eps", op.norm_eps.value.data, "norm_eps")
            self.attr(op, "norm_offset", op.norm_offset.value.data, "norm_offset")
        if not op.causal.value.data:
            self.fail(op, "causal is false, but decoder-only models attend causally")
        self.attr(op, f"scale of layer {layer}", op.scale.value.data, "attn_scale", cfg.layer_attn_scale(layer))
        self.attr(op, "softcap", op.softcap.value.data, "attn_softcap")
        self.attr(op, f"window of layer {layer}", op.window.value.data, "sliding_window", cfg.layer_window(layer))
        self.attr(op, "rope_style", op.rope_style.data, "rope_style")
        if c["rope_style"] != "none":
            field = "rope_local_theta" if cfg.is_sliding(layer) else "rope_theta"
            self.attr(op, f"rope_theta of layer {layer}", op.rope_theta.value.data, field, cfg.layer_rope_theta(layer))
            self.attr(op, "rotary_dim", op.effective_rotary_dim, "rotary_dim")
            scaling = cfg.layer_rope_scaling(layer)
            self.attr(op, f"rope_scaling of layer {layer}", op.rope_scaling.data, "rope_scaling", scaling)
            if scaling != "none":
                self.attr(op, "rope_factor", op.rope_factor.value.data, "rope_factor")
            if scaling == "llama3":
                self.attr(op, "rope_low_freq_factor", op.rope_low_freq_factor.value.data, "rope_low_freq_factor")
                self.attr(op, "rope_high_freq_factor", op.rope_high_freq_factor.value.data, "rope_high_freq_factor")
                self.attr(
                    op, "rope_original_context", op.rope_original_context.value.data, "rope_original_context"
                )

    def mlp(self, op: MlpOp) -> None:
        c = self.c
        self.attr(op, "kind", op.kind.data, "mlp")
        if c["mlp"] != "swiglu":
            approx = "tanh" if c["act"] == "gelu_tanh" else "none"
            self.attr(op, "approximate", op.approximate.data, "act", approx)
        self.activation(op, "x", op.x)
        f, h = c["ffn"], c["hidden"]
        if op.gate is not None:
            self.shape(op, "gate", op.gate, [f, h], "[ffn, hidden]")
        self.shape(op, "up", op.up, [f, h], "[ffn, hidden]")
        self.shape(op, "down", op.down, [h, f], "[hidden, ffn]")
        if op.gate is not None:
            self.presence(op, "gate_bias", op.gate_bias, c["mlp_bias"], "mlp_bias")
        self.presence(op, "up_bias", op.up_bias, c["mlp_bias"], "mlp_bias")
        self.presence(op, "down_bias", op.down_bias, c["mlp_bias"], "mlp_bias")

    def lm_head(self, op: LmHeadOp) -> None:
        c = self.c
        self.activation(op, "x", op.x)
        self.shape(op, "weight", op.weight, [c["vocab"], c["hidden"]], "[vocab, hidden]")
        self.attr(op, "tied", bool(op.tied.value.data), "tied_embeddings")
        self.attr(op, "softcap", op.softcap.value.data, "final_softcap")
        owner = op.weight.owner
        if isinstance(owner, WeightOp):
            want = "token_embd.weight" if c["tied_embeddings"] else "output.weight"
            if owner.tensor_name.data != want:
                self.fail(
                    op,
                    f"weight is '{owner.tensor_name.data}', expected '{want}' "
                    f"(#transformer.config tied_embeddings = {_show(c['tied_embeddings'])})",
                )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@dataclass(frozen=True)
class VerifyShapesPass(ModulePass):
    """Check every transformer op against the module's ``#transformer.config``;
    raise ``ShapeMismatch`` for the first op that disagrees. IR unchanged."""

    name = "verify-shapes"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        cfg = op.attributes.get(CONFIG_KEY)
        if cfg is None:
            if any(o.name.startswith("transformer.") for o in op.walk()):
                raise VerifyException(f"module has transformer ops but no '{CONFIG_KEY}' attribute")
            return
        if not isinstance(cfg, ConfigAttr):
            raise VerifyException(f"module attribute '{CONFIG_KEY}' must be a #transformer.config, got {cfg}")
        checker = _Checker(cfg)
        for inner in op.walk():
            checker.check(inner)
