"""The `transformer` dialect: whole-model ops of decoder-only language models.

One op per layer per kind (never per head or per token). It covers GPT-2,
Llama, Qwen2, Qwen3 (QK-norm), Gemma and Gemma3 (sliding window, GeGLU,
post-norms, embedding scaling). A model is a ``func.func`` of the token ids
(and the targets, for training) whose parameters come from
``transformer.weight`` ops; the model-wide facts live in a
``#transformer.config<...>`` attribute on the module, under the key
``transformer.config``.

Conventions (shared with every ckc dialect):

- activations are ``tensor<TxCxf32>`` where ``T`` (tokens in this call) may be
  dynamic (``?``) and every model dim is static;
- linear weights are stored ``[out, in]`` (PyTorch/GGUF): ``y = x . W^T + b``;
- token ids and targets are ``tensor<?xi32>``.

A two-layer Llama-style model, abridged::

    builtin.module attributes {transformer.config = #transformer.config<
        arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4,
        kv_heads = 2, ffn = 160, context = 256>} {
      func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x128xf32> {
        %emb = transformer.weight "token_embd.weight" : tensor<128x64xf32>
        %x0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
        ...
        %logits = transformer.lm_head %xf, %out : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
        func.return %logits : tensor<?x128xf32>
      }
    }

From Python (what importers use)::

    cfg = ConfigAttr(arch="llama", vocab=49152, hidden=576, layers=30, heads=9,
                     kv_heads=3, ffn=1536, context=8192, rope_theta=1e5,
                     tied_embeddings=True)          # defaults filled in
    module = build_model(cfg, train=True)           # ckc.importers.build_ir: @forward, @train_step

or op by op: ``WeightOp(name, shape, offset=0)``, ``EmbeddingOp(tokens,
table, positions=None, scale=1.0)``, ``NormOp(x, w, kind=, eps=, offset=,
bias=)``, ``AttentionOp(x, wq, wk, wv, wo, heads=, kv_heads=, head_dim=,
layer=, scale=None, window=0, rope_style=, rope_theta=, q_bias=, ..., q_norm=,
k_norm=, norm_eps=)``, ``MlpOp(x, kind=, up=, down=, gate=None, ...)``,
``ResidualOp(a, b)``, ``LmHeadOp(x, w, tied=, softcap=)``,
``CrossEntropyOp(logits, targets, ignore_index=-100)``; result types are
inferred (one constructor, ``_KeywordInit``: operands positionally or by
name, properties by name). Ops with optional operands use the syntax of
``dialects/_syntax.py`` (``%x, %w, bias %b``), shared with ``tensorop``.
``passes/verify_shapes.py`` checks a module against its config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    I64,
    AnyFloat,
    ArrayAttr,
    BoolAttr,
    DictionaryAttr,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, Operation
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from ckc.dialects._syntax import OperandsSyntax, split_operands
from ckc.dialects import quant
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

DYNAMIC = DYNAMIC_INDEX
"""The dimension value xDSL uses for `?`."""

# ---------------------------------------------------------------------------
# value sets
# ---------------------------------------------------------------------------

NORM_KINDS = ("rms", "layer")
ROPE_STYLES = ("neox", "interleaved", "none")
ROPE_SCALINGS = ("none", "linear", "llama3")
MLP_KINDS = ("swiglu", "geglu", "gelu")
ACTS = ("silu", "gelu_tanh", "gelu")
GELU_APPROX = ("tanh", "none")


def _f64(value: float) -> FloatAttr:
    return FloatAttr(float(value), Float64Type())


def _i64(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), 64)


def _bool(value: bool) -> IntegerAttr:
    return IntegerAttr.from_bool(bool(value))


def _fmt_float(value: float) -> str:
    """Shortest text that the MLIR lexer reads back as exactly `value`."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        mant, exp = text.lower().split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}e{exp}"
    if "." not in text:
        text += ".0"
    return text


# ---------------------------------------------------------------------------
# #transformer.config
# ---------------------------------------------------------------------------

# (field, kind, default). A default of None means "required"; a callable
# default is computed from the fields already known (in this order).
_CONFIG_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("arch", "str", None),
    ("vocab", "int", None),
    ("hidden", "int", None),
    ("layers", "int", None),
    ("heads", "int", None),
    ("kv_heads", "int", lambda c: c["heads"]),
    ("head_dim", "int", lambda c: c["hidden"] // c["heads"] if c["heads"] else 0),
    ("ffn", "int", None),
    ("context", "int", None),
    ("norm", "str", "rms"),
    ("norm_eps", "float", 1e-5),
    ("norm_offset", "float", 0.0),
    ("norm_bias", "bool", lambda c: c["norm"] == "layer"),
    ("post_norms", "bool", False),
    ("mlp", "str", "swiglu"),
    ("act", "str", lambda c: "silu" if c["mlp"] == "swiglu" else "gelu_tanh"),
    ("mlp_bias", "bool", False),
    ("qkv_bias", "bool", False),
    ("o_bias", "bool", False),
    ("qk_norm", "bool", False),
    ("attn_scale", "float", lambda c: c["head_dim"] ** -0.5 if c["head_dim"] > 0 else 1.0),
    ("scale_by_inverse_layer", "bool", False),
    ("attn_softcap", "float", 0.0),
    ("final_softcap", "float", 0.0),
    ("rope_style", "str", "neox"),
    ("rope_theta", "float", 10000.0),
    ("rotary_dim", "int", lambda c: c["head_dim"]),
    ("rope_scaling", "str", "none"),
    ("rope_factor", "float", 1.0),
    ("rope_low_freq_factor", "float", 1.0),
    ("rope_high_freq_factor", "float", 4.0),
    ("rope_original_context", "int", 0),
    ("rope_local_theta", "float", lambda c: c["rope_theta"]),
    ("rope_local_scaling", "bool", True),
    ("learned_pos", "bool", False),
    ("embed_scale", "float", 1.0),
    ("tied_embeddings", "bool", False),
    ("sliding_window", "int", 0),
    ("sliding_layers", "ints", lambda c: ()),
    ("bos", "int", -1),
    ("eos", "int", -1),
)
CONFIG_FIELD_NAMES = tuple(f for f, _, _ in _CONFIG_FIELDS)
_CONFIG_KIND = {f: k for f, k, _ in _CONFIG_FIELDS}


def _to_attr(kind: str, value: Any) -> Attribute:
    if kind == "str":
        return StringAttr(str(value))
    if kind == "int":
        return _i64(int(value))
    if kind == "float":
        return _f64(float(value))
    if kind == "bool":
        return _bool(bool(value))
    if kind == "ints":
        return ArrayAttr([_i64(int(v)) for v in value])
    raise AssertionError(kind)


def _from_attr(kind: str, attr: Attribute) -> Any:
    if kind == "str":
        assert isinstance(attr, StringAttr)
        return attr.data
    if kind in ("int",):
        assert isinstance(attr, IntegerAttr)
        return attr.value.data
    if kind == "float":
        assert isinstance(attr, FloatAttr)
        return attr.value.data
    if kind == "bool":
        assert isinstance(attr, IntegerAttr)
        return bool(attr.value.data)
    if kind == "ints":
        assert isinstance(attr, ArrayAttr)
        return tuple(a.value.data for a in attr.data)  # type: ignore[union-attr]
    raise AssertionError(kind)


def _attr_matches(kind: str, attr: Attribute) -> bool:
    if kind == "str":
        return isinstance(attr, StringAttr)
    if kind == "int":
        return isinstance(attr, IntegerAttr) and attr.type == IntegerType(64)
    if kind == "float":
        return isinstance(attr, FloatAttr) and isinstance(attr.type, Float64Type)
    if kind == "bool":
        return isinstance(attr, IntegerAttr) and attr.type == IntegerType(1)
    if kind == "ints":
        return isinstance(attr, ArrayAttr) and all(
            isinstance(a, IntegerAttr) and a.type == IntegerType(64) for a in attr.data
        )
    return False


def config_fields(values: Mapping[str, Any]) -> DictionaryAttr:
    """Normalize Python values to the config's stored dictionary, filling defaults.

    Raises ValueError naming an unknown or missing field.
    """
    unknown = [k for k in values if k not in _CONFIG_KIND]
    if unknown:
        raise ValueError(f"unknown #transformer.config field '{unknown[0]}'")
    resolved: dict[str, Any] = {}
    for field, kind, default in _CONFIG_FIELDS:
        if field in values:
            value = values[field]
        elif default is None:
            raise ValueError(f"#transformer.config is missing required field '{field}'")
        elif callable(default):
            value = default(resolved)
        else:
            value = default
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"#transformer.config field '{field}' must be an integer, got {value!r}")
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"#transformer.config field '{field}' must be a number, got {value!r}")
            value = float(value)
        if kind == "str" and not isinstance(value, str):
            raise ValueError(f"#transformer.config field '{field}' must be a string, got {value!r}")
        if kind == "bool" and not isinstance(value, (bool, int)):
            raise ValueError(f"#transformer.config field '{field}' must be true or false, got {value!r}")
        if kind == "ints":
            value = tuple(int(v) for v in value)
        resolved[field] = value
    return DictionaryAttr({f: _to_attr(_CONFIG_KIND[f], resolved[f]) for f in CONFIG_FIELD_NAMES})


@irdl_attr_definition
class ConfigAttr(ParametrizedAttribute):
    """Model-wide facts of a transformer LM, attached to the module as
    ``transformer.config``.

    Textual form: ``key = value`` pairs in any order; optional keys may be
    left out and take their defaults (the printer writes every key, in the
    canonical order)::

        #transformer.config<arch = "llama", vocab = 49152, hidden = 576,
            layers = 30, heads = 9, kv_heads = 3, ffn = 1536, context = 8192,
            norm_eps = 1.0e-05, rope_theta = 100000.0, tied_embeddings = true>

    Fields (required ones have no default):

    - ``arch`` (str): family name as in GGUF (gpt2, llama, qwen2, qwen3,
      gemma, gemma3, ...); informational, every numeric fact is below.
    - ``vocab``, ``hidden``, ``layers``, ``heads``, ``ffn``, ``context``
      (int): vocabulary size, model width C, number of layers, query heads,
      MLP inner width, maximum positions.
    - ``kv_heads`` (= heads), ``head_dim`` (= hidden / heads).
    - ``norm`` ("rms" | "layer", = "rms"), ``norm_eps`` (= 1e-5),
      ``norm_offset`` (= 0.0; Gemma's ``x * (1 + w)`` is offset 1.0),
      ``norm_bias`` (= norm == "layer"; LayerNorm with a bias, GPT-2),
      ``post_norms`` (= false; Gemma2/3 norm the attention and MLP outputs
      before the residual add, and add a pre-feedforward norm).
    - ``mlp`` ("swiglu" | "geglu" | "gelu", = "swiglu"), ``act`` ("silu" |
      "gelu_tanh" | "gelu"; = "silu" for swiglu else "gelu_tanh"),
      ``mlp_bias`` (= false).
    - ``qkv_bias`` (= false; Qwen2 and GPT-2 true), ``o_bias`` (= false;
      GPT-2 true), ``qk_norm`` (= false; Qwen3 and Gemma3 RMS-normalize each
      query/key head with a ``[head_dim]`` weight before RoPE).
    - ``attn_scale`` (= head_dim^-0.5; Gemma3: query_pre_attn_scalar^-0.5),
      ``scale_by_inverse_layer`` (= false; GPT-2's
      scale_attn_by_inverse_layer_idx: layer i uses attn_scale / (i + 1)),
      ``attn_softcap`` and ``final_softcap`` (= 0.0, none; otherwise
      ``cap * tanh(x / cap)`` on attention scores / final logits).
    - ``rope_style`` ("neox" rotates halves [HF rotate_half], "interleaved"
      rotates adjacent pairs [GGUF llama], "none" [GPT-2]; = "neox"),
      ``rope_theta`` (= 10000.0), ``rotary_dim`` (= head_dim; partial RoPE
      rotates the first rotary_dim dims of each head).
    - ``rope_scaling`` ("none" | "linear" | "llama3", = "none") with
      ``rope_factor`` (= 1.0), ``rope_low_freq_factor`` (= 1.0),
      ``rope_high_freq_factor`` (= 4.0), ``rope_original_context`` (= 0).
    - ``rope_local_theta`` (= rope_theta): theta of sliding-window layers
      (Gemma3: 10000 local vs 1e6 global); ``rope_local_scaling`` (= true):
      whether rope_scaling applies to sliding-window layers too (Gemma3: false).
    - ``learned_pos`` (= false; GPT-2's ``position_embd.weight``
      [context, hidden] added to the token embeddings).
    - ``embed_scale`` (= 1.0; Gemma: sqrt(hidden)), ``tied_embeddings``
      (= false; lm_head reuses ``token_embd.weight``).
    - ``sliding_window`` (= 0, none; a query at i sees keys j with
      i - window < j <= i) and ``sliding_layers`` (= [], the layer indices
      that use it; Gemma3: every layer with (i + 1) % 6 != 0).
    - ``bos``, ``eos`` (= -1, unknown): special token ids.

    In Python: ``ConfigAttr(arch="llama", vocab=..., ...)`` fills the
    defaults; ``cfg.hidden``, ``cfg["hidden"]`` and ``cfg.to_dict()`` read it.
    """

    name = "transformer.config"

    fields: DictionaryAttr

    def __init__(self, fields: DictionaryAttr | Mapping[str, Any] | None = None, **values: Any):
        if fields is None:
            fields = config_fields(values)
        elif not isinstance(fields, DictionaryAttr):
            fields = config_fields({**fields, **values})
        super().__init__(fields)

    # -- Python access ------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key not in _CONFIG_KIND:
            raise KeyError(key)
        return _from_attr(_CONFIG_KIND[key], self.fields.data[key])

    def __getattr__(self, key: str) -> Any:
        if key in _CONFIG_KIND:
            return self[key]
        raise AttributeError(key)

    def to_dict(self) -> dict[str, Any]:
        return {f: self[f] for f in CONFIG_FIELD_NAMES}

    def replace(self, **values: Any) -> ConfigAttr:
        """A copy with some fields changed (derived defaults are not recomputed)."""
        return ConfigAttr(**{**self.to_dict(), **values})

    def is_sliding(self, layer: int) -> bool:
        return self["sliding_window"] > 0 and layer in self["sliding_layers"]

    def layer_window(self, layer: int) -> int:
        """Attention window of `layer` (0 = full causal attention)."""
        return self["sliding_window"] if self.is_sliding(layer) else 0

    def layer_rope_theta(self, layer: int) -> float:
        return self["rope_local_theta"] if self.is_sliding(layer) else self["rope_theta"]

    def layer_attn_scale(self, layer: int) -> float:
        scale = self["attn_scale"]
        return scale / (layer + 1) if self["scale_by_inverse_layer"] else scale

    def layer_rope_scaling(self, layer: int) -> str:
        if self.is_sliding(layer) and not self["rope_local_scaling"]:
            return "none"
        return self["rope_scaling"]

    # -- text form --------------------------------------------------------------

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        values: dict[str, Any] = {}

        def parse_entry() -> None:
            pos = parser.pos
            key = parser.parse_identifier(context_msg=" in #transformer.config")
            if key not in _CONFIG_KIND:
                parser.raise_error(f"unknown #transformer.config field '{key}'", pos, parser.pos)
            if key in values:
                parser.raise_error(f"duplicate #transformer.config field '{key}'", pos, parser.pos)
            parser.parse_punctuation("=")
            kind = _CONFIG_KIND[key]
            if kind == "str":
                values[key] = parser.parse_str_literal(f" for '{key}'")
            elif kind == "int":
                values[key] = parser.parse_integer(allow_boolean=False, context_msg=f" for '{key}'")
            elif kind == "float":
                values[key] = float(parser.parse_number(context_msg=f" for '{key}'"))
            elif kind == "bool":
                value = parser.parse_optional_boolean()
                if value is None:
                    parser.raise_error(f"expected true or false for '{key}'")
                values[key] = value
            else:
                values[key] = parser.parse_comma_separated_list(
                    parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
                )

        start = parser.pos
        parser.parse_comma_separated_list(parser.Delimiter.ANGLE, parse_entry)
        try:
            fields = config_fields(values)
        except ValueError as err:
            parser.raise_error(str(err), start, parser.pos)
        problem = config_problem({f: _from_attr(_CONFIG_KIND[f], fields.data[f]) for f in CONFIG_FIELD_NAMES})
        if problem:
            parser.raise_error(f"#transformer.config: {problem}", start, parser.pos)
        return [fields]

    def print_parameters(self, printer: Printer) -> None:
        parts = []
        for field in CONFIG_FIELD_NAMES:
            kind = _CONFIG_KIND[field]
            value = self[field]
            if kind == "str":
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            elif kind == "int":
                text = str(value)
            elif kind == "float":
                text = _fmt_float(value)
            elif kind == "bool":
                text = "true" if value else "false"
            else:
                text = "[" + ", ".join(str(v) for v in value) + "]"
            parts.append(f"{field} = {text}")
        printer.print_string("<" + ", ".join(parts) + ">")

    # -- verification -----------------------------------------------------------

    def verify(self) -> None:
        data = self.fields.data
        for field in CONFIG_FIELD_NAMES:
            if field not in data:
                raise VerifyException(f"#transformer.config is missing field '{field}'")
            if not _attr_matches(_CONFIG_KIND[field], data[field]):
                raise VerifyException(
                    f"#transformer.config field '{field}' must be of kind {_CONFIG_KIND[field]}"
                )
        for field in data:
            if field not in _CONFIG_KIND:
                raise VerifyException(f"unknown #transformer.config field '{field}'")
        problem = config_problem(self.to_dict())
        if problem:
            raise VerifyException(f"#transformer.config: {problem}")


def config_problem(c: Mapping[str, Any]) -> str | None:
    """The first rule a complete config dictionary breaks, or None."""

    class _Fail(Exception):
        pass

    def fail(msg: str) -> None:
        raise _Fail(msg)

    try:
        if not c["arch"]:
            fail("arch must not be empty")
        for field in ("vocab", "hidden", "layers", "heads", "kv_heads", "head_dim", "ffn", "context"):
            if c[field] <= 0:
                fail(f"{field} must be positive, got {c[field]}")
        if c["heads"] % c["kv_heads"] != 0:
            fail(f"heads ({c['heads']}) must be a multiple of kv_heads ({c['kv_heads']})")
        if c["norm"] not in NORM_KINDS:
            fail(f"norm must be one of {', '.join(NORM_KINDS)}, got '{c['norm']}'")
        if not c["norm_eps"] > 0:
            fail(f"norm_eps must be positive, got {c['norm_eps']}")
        if c["mlp"] not in MLP_KINDS:
            fail(f"mlp must be one of {', '.join(MLP_KINDS)}, got '{c['mlp']}'")
        if c["act"] not in ACTS:
            fail(f"act must be one of {', '.join(ACTS)}, got '{c['act']}'")
        if (c["mlp"] == "swiglu") != (c["act"] == "silu"):
            fail(f"mlp '{c['mlp']}' does not go with act '{c['act']}'")
        if not c["attn_scale"] > 0:
            fail(f"attn_scale must be positive, got {c['attn_scale']}")
        for field in ("attn_softcap", "final_softcap"):
            if c[field] < 0:
                fail(f"{field} must be >= 0, got {c[field]}")
        if c["rope_style"] not in ROPE_STYLES:
            fail(f"rope_style must be one of {', '.join(ROPE_STYLES)}, got '{c['rope_style']}'")
        if c["rope_style"] != "none":
            if not (c["rope_theta"] > 0 and c["rope_local_theta"] > 0):
                fail("rope_theta and rope_local_theta must be positive")
            r = c["rotary_dim"]
            if not (0 < r <= c["head_dim"]) or r % 2:
                fail(f"rotary_dim must be even and in (0, head_dim={c['head_dim']}], got {r}")
        if c["rope_scaling"] not in ROPE_SCALINGS:
            fail(f"rope_scaling must be one of {', '.join(ROPE_SCALINGS)}, got '{c['rope_scaling']}'")
        if not c["rope_factor"] > 0:
            fail(f"rope_factor must be positive, got {c['rope_factor']}")
        if c["rope_scaling"] == "llama3" and c["rope_original_context"] <= 0:
            fail("rope_scaling llama3 needs rope_original_context > 0")
        if not c["embed_scale"] > 0:
            fail(f"embed_scale must be positive, got {c['embed_scale']}")
        if c["sliding_window"] < 0:
            fail(f"sliding_window must be >= 0, got {c['sliding_window']}")
        layers = c["sliding_layers"]
        if layers and c["sliding_window"] == 0:
            fail("sliding_layers given but sliding_window is 0")
        if list(layers) != sorted(set(layers)) or any(not 0 <= i < c["layers"] for i in layers):
            fail(f"sliding_layers must be increasing layer indices in [0, {c['layers']})")
    except _Fail as err:
        return str(err)
    return None


# ---------------------------------------------------------------------------
# verifier helpers
# ---------------------------------------------------------------------------


def _fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join("?" if d == DYNAMIC else str(d) for d in shape) + "]"


def shape_of(value: SSAValue | Attribute) -> tuple[int, ...]:
    ty = value.type if isinstance(value, SSAValue) else value
    if not isinstance(ty, TensorType):
        raise VerifyException(f"expected a tensor, got {ty}")
    return tuple(ty.get_shape())


def check_shape(what: str, value: SSAValue, expected: Sequence[int | None], meaning: str = "") -> None:
    """Check `value`'s tensor shape against `expected` (None matches any dim;
    a dynamic dim in the value matches any expected dim)."""
    actual = shape_of(value)
    ok = len(actual) == len(expected) and all(
        e is None or a == DYNAMIC or a == e for a, e in zip(actual, expected)
    )
    if not ok:
        exp = "[" + ", ".join("?" if e is None else str(e) for e in expected) + "]"
        if meaning:
            exp = f"{meaning} = {exp}"
        raise VerifyException(f"{what} has shape {_fmt_shape(actual)}, expected {exp}")


def _dims_agree(a: int, b: int) -> bool:
    return a == DYNAMIC or b == DYNAMIC or a == b


def _check_float(what: str, value: SSAValue) -> None:
    ty = value.type
    assert isinstance(ty, TensorType)
    if not isinstance(ty.element_type, AnyFloat):
        raise VerifyException(f"{what} must have a float element type, got {ty.element_type}")


def _check_stored(what: str, value: SSAValue) -> None:
    """A stored weight: a float or a GGUF block format (rows whole blocks)."""
    ty = value.type
    assert isinstance(ty, TensorType)
    if quant.is_quantized(ty.element_type):
        why = quant.check_shape(ty.element_type, ty.get_shape())
        if why:
            raise VerifyException(f"{what}: {why}")
        return
    _check_float(what, value)


def _check_activation(what: str, value: SSAValue) -> tuple[int, int]:
    """[T, C] f32 with C static; returns (T, C)."""
    shape = shape_of(value)
    if len(shape) != 2:
        raise VerifyException(f"{what} must be a 2-D [tokens, features] tensor, got {_fmt_shape(shape)}")
    if shape[1] == DYNAMIC:
        raise VerifyException(f"{what} must have a static feature dimension, got {_fmt_shape(shape)}")
    _check_float(what, value)
    return shape[0], shape[1]


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise VerifyException(f"{what} must be one of {', '.join(choices)}, got '{value}'")


def _tensor(shape: Sequence[int], element: Attribute = f32) -> TensorType:
    return TensorType(element, list(shape))


_F64_ATTR = FloatAttr[Float64Type]
_I64_ATTR = IntegerAttr[I64]



# ---------------------------------------------------------------------------
# ops
# ---------------------------------------------------------------------------

class _KeywordInit:
    """The constructor of every op with operands: ``Op(*operands, **props)``,
    operands positionally in definition order (or by name), properties by
    name as Python values; every property is stored (its default when not
    given), in definition order. `result_type` gives the result's type."""

    PY_DEFAULTS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def result_type(cls, t: dict[str, Any], props: dict[str, Attribute]) -> Attribute:
        return t["x"]

    def __init__(self, *operands: Any, **props: Any):
        cls = type(self)
        groups, types = split_operands(cls, operands, props)
        pdefs = cls.get_irdl_definition().properties
        if unknown := set(props) - set(pdefs):
            raise TypeError(f"{cls.name}: no property {', '.join(sorted(unknown))}")
        attrs: dict[str, Attribute] = {}
        for name, pdef in pdefs.items():
            value = props.get(name, cls.PY_DEFAULTS.get(name, pdef.default_value))
            if isinstance(value, bool):
                value = _bool(value)
            elif isinstance(value, str):
                value = StringAttr(value)
            elif isinstance(value, int | float):
                base = getattr(pdef.constr, "base_attr", None)
                value = _f64(value) if base is FloatAttr else _i64(value)
            if value is not None:
                attrs[name] = value
        super().__init__(operands=groups, properties=attrs, result_types=[cls.result_type(types, attrs)])



@irdl_op_definition
class WeightOp(IRDLOperation):
    """A named model parameter (weights are never computed, only read).

    ``tensor_name`` is the tensor's canonical (GGUF) name. Two weight ops with
    the same name (and offset) denote the same tensor (tied embeddings use
    this).

    ``offset`` (default 0) selects a slice of a stored tensor along its first
    dimension: the result is rows ``[offset, offset + shape[0])``. Rows are
    contiguous in row-major storage, so a slice is just a pointer offset. This
    is how GPT-2's fused ``blk.N.attn_qkv.weight`` ``[3C, C]`` (rows Q, K, V)
    and its ``[3C]`` bias feed the attention op without a copy.

    Example:

    ```mlir
    %wq = transformer.weight "blk.0.attn_q.weight" : tensor<256x64xf32>
    %wk = transformer.weight "blk.0.attn_qkv.weight" offset 64 : tensor<64x64xf32>
    ```
    """

    name = "transformer.weight"

    tensor_name = prop_def(StringAttr)
    offset = prop_def(_I64_ATTR, default_value=_i64(0))
    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$tensor_name (`offset` $offset^)? attr-dict `:` type($result)"

    def __init__(
        self,
        tensor_name: str | StringAttr,
        shape: Sequence[int] | TensorType,
        element: Attribute = f32,
        *,
        offset: int = 0,
    ):
        """``WeightOp("blk.0.attn_q.weight", [256, 64])``; ``offset`` picks rows
        of a fused tensor."""
        if isinstance(tensor_name, str):
            tensor_name = StringAttr(tensor_name)
        ty = shape if isinstance(shape, TensorType) else _tensor(shape, element)
        super().__init__(properties={"tensor_name": tensor_name, "offset": _i64(offset)}, result_types=[ty])

    def verify_(self) -> None:
        if not self.tensor_name.data:
            raise VerifyException("weight name must not be empty")
        shape = shape_of(self.result)
        if not shape:
            raise VerifyException("weight must have rank >= 1")
        if any(d == DYNAMIC for d in shape):
            raise VerifyException(f"weight '{self.tensor_name.data}' must have a static shape, got {_fmt_shape(shape)}")
        if self.offset.value.data < 0:
            raise VerifyException(f"offset must be >= 0, got {self.offset.value.data}")
        _check_stored(f"weight '{self.tensor_name.data}'", self.result)


@irdl_op_definition
class EmbeddingOp(_KeywordInit, OperandsSyntax):
    """Token embedding lookup: ``x[t] = table[tokens[t]] * scale (+ positions[t])``.

    ``table`` is ``[vocab, hidden]``; the optional ``positions`` table
    ``[context, hidden]`` holds GPT-2's learned position embeddings (position
    t is the t-th token of this call, offset by the KV cache length when
    decoding). ``scale`` (default 1.0) multiplies the token embedding (Gemma:
    sqrt(hidden)) before positions are added.

    Example:

    ```mlir
    %x = transformer.embedding %tokens, %wte, positions %wpe
        : (tensor<?xi32>, tensor<128x64xf32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    %g = transformer.embedding %tokens, %emb {scale = 8.0 : f64}
        : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "transformer.embedding"

    @classmethod
    def result_type(cls, t, props):
        return _tensor([shape_of(t["tokens"])[0], shape_of(t["table"])[1]])

    tokens = operand_def(TensorType)
    table = operand_def(TensorType)
    positions = opt_operand_def(TensorType)
    scale = prop_def(_F64_ATTR, default_value=_f64(1.0))
    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)

    def verify_(self) -> None:
        shape = shape_of(self.tokens)
        ty = self.tokens.type
        assert isinstance(ty, TensorType)
        if len(shape) != 1 or not isinstance(ty.element_type, IntegerType):
            raise VerifyException(f"tokens must be a 1-D integer tensor, got {ty}")
        vc = shape_of(self.table)
        if len(vc) != 2 or DYNAMIC in vc:
            raise VerifyException(f"table has shape {_fmt_shape(vc)}, expected a static [vocab, hidden]")
        _check_stored("table", self.table)
        _, c = vc
        if self.positions is not None:
            check_shape("positions", self.positions, [None, c], "[context, hidden]")
            if DYNAMIC in shape_of(self.positions):
                raise VerifyException("positions must have a static shape")
            _check_float("positions", self.positions)
        t, rc = _check_activation("result", self.result)
        if rc != c or not _dims_agree(t, shape[0]):
            raise VerifyException(
                f"result has shape {_fmt_shape((t, rc))}, expected [tokens, hidden] = {_fmt_shape((shape[0], c))}"
            )
        if not self.scale.value.data > 0:
            raise VerifyException(f"scale must be positive, got {self.scale.value.data}")


@irdl_op_definition
class NormOp(_KeywordInit, OperandsSyntax):
    """Per-token normalization over the feature dimension.

    ``kind = "rms"``: ``y = x / sqrt(mean(x^2) + eps) * (offset + w) (+ b)``;
    ``kind = "layer"``: ``y = (x - mean) / sqrt(var + eps) * (offset + w) (+ b)``.
    ``offset`` is 0.0 except for Gemma's ``(1 + w)`` norms. ``weight`` and the
    optional ``bias`` are ``[C]``.

    Example:

    ```mlir
    %h = transformer.norm %x, %w {kind = "rms", eps = 1.0e-05 : f64}
        : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %l = transformer.norm %x, %g, bias %b {kind = "layer", eps = 1.0e-05 : f64}
        : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "transformer.norm"
    PY_DEFAULTS: ClassVar[dict[str, Any]] = {"kind": "rms", "eps": 1e-5}

    x = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    kind = prop_def(StringAttr)
    eps = prop_def(_F64_ATTR)
    offset = prop_def(_F64_ATTR, default_value=_f64(0.0))
    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)

    def verify_(self) -> None:
        _check_choice("kind", self.kind.data, NORM_KINDS)
        eps = self.eps.value.data
        if not eps > 0:
            raise VerifyException(f"eps must be positive, got {eps}")
        if not math.isfinite(self.offset.value.data):
            raise VerifyException("offset must be finite")
        _, c = _check_activation("x", self.x)
        check_shape("weight", self.weight, [c], "[C]")
        _check_float("weight", self.weight)
        if self.bias is not None:
            check_shape("bias", self.bias, [c], "[C]")
            _check_float("bias", self.bias)
        if self.result.type != self.x.type:
            raise VerifyException(f"result type {self.result.type} must equal x's type {self.x.type}")


@irdl_op_definition
class AttentionOp(_KeywordInit, OperandsSyntax):
    """Multi-head (grouped-query) self-attention of one layer, projections
    included: ``y = softmax(mask(rope(q) . rope(k)^T * scale)) . v . Wo^T (+ bo)``.

    ``x`` is ``[T, C]``. ``wq`` is ``[heads*head_dim, C]``, ``wk`` and ``wv``
    are ``[kv_heads*head_dim, C]``, ``wo`` is ``[C, heads*head_dim]``; the
    optional biases are ``[heads*head_dim]``, ``[kv_heads*head_dim]`` (k and v)
    and ``[C]`` (o). ``heads % kv_heads == 0``: query head h reads kv head
    ``h / (heads / kv_heads)``.

    Optional ``q_norm``/``k_norm`` (``[head_dim]``, Qwen3/Gemma3) RMS-normalize
    each head of q and k before RoPE with ``norm_eps`` and ``norm_offset``
    (Gemma3: 1.0). RoPE (``rope_style`` neox | interleaved | none,
    ``rope_theta``, ``rotary_dim`` = head_dim when absent, ``rope_scaling``
    none | linear | llama3 with ``rope_factor``, ``rope_low_freq_factor``,
    ``rope_high_freq_factor``, ``rope_original_context``) rotates the first
    rotary_dim dims of every head. ``causal`` (default true) masks future
    keys; ``window`` > 0 also masks keys at distance >= window (a query at i
    sees i - window < j <= i). ``softcap`` > 0 caps scores to
    ``softcap * tanh(s / softcap)``. ``scale`` multiplies the scores
    (usually head_dim^-0.5). ``layer`` is the layer index (KV-cache slot).

    Example:

    ```mlir
    %a = transformer.attention %h, %wq, %wk, %wv, %wo
        {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64,
         scale = 2.500000e-01 : f64, rope_theta = 1.000000e+04 : f64}
        : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>,
           tensor<64x64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "transformer.attention"

    def __init__(self, *operands: Any, scale: float | None = None, **props: Any):
        """``scale`` defaults to head_dim^-0.5."""
        super().__init__(*operands, scale=props["head_dim"] ** -0.5 if scale is None else scale, **props)

    x = operand_def(TensorType)
    wq = operand_def(TensorType)
    wk = operand_def(TensorType)
    wv = operand_def(TensorType)
    wo = operand_def(TensorType)
    q_bias = opt_operand_def(TensorType)
    k_bias = opt_operand_def(TensorType)
    v_bias = opt_operand_def(TensorType)
    o_bias = opt_operand_def(TensorType)
    q_norm = opt_operand_def(TensorType)
    k_norm = opt_operand_def(TensorType)

    heads = prop_def(_I64_ATTR)
    kv_heads = prop_def(_I64_ATTR)
    head_dim = prop_def(_I64_ATTR)
    layer = prop_def(_I64_ATTR)
    scale = prop_def(_F64_ATTR)
    causal = prop_def(BoolAttr, default_value=_bool(True))
    window = prop_def(_I64_ATTR, default_value=_i64(0))
    softcap = prop_def(_F64_ATTR, default_value=_f64(0.0))
    rope_style = prop_def(StringAttr, default_value=StringAttr("neox"))
    rope_theta = prop_def(_F64_ATTR, default_value=_f64(10000.0))
    rope_scaling = prop_def(StringAttr, default_value=StringAttr("none"))
    rope_factor = prop_def(_F64_ATTR, default_value=_f64(1.0))
    rope_low_freq_factor = prop_def(_F64_ATTR, default_value=_f64(1.0))
    rope_high_freq_factor = prop_def(_F64_ATTR, default_value=_f64(4.0))
    rope_original_context = prop_def(_I64_ATTR, default_value=_i64(0))
    norm_offset = prop_def(_F64_ATTR, default_value=_f64(0.0))
    rotary_dim = opt_prop_def(_I64_ATTR)
    norm_eps = opt_prop_def(_F64_ATTR)

    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(), AttrSizedOperandSegments(as_property=True))

    @property
    def effective_rotary_dim(self) -> int:
        """Dims rotated per head (0 when rope_style is none)."""
        if self.rope_style.data == "none":
            return 0
        return self.rotary_dim.value.data if self.rotary_dim is not None else self.head_dim.value.data

    def verify_(self) -> None:
        h = self.heads.value.data
        kv = self.kv_heads.value.data
        d = self.head_dim.value.data
        for what, v in (("heads", h), ("kv_heads", kv), ("head_dim", d)):
            if v <= 0:
                raise VerifyException(f"{what} must be positive, got {v}")
        if h % kv:
            raise VerifyException(f"heads ({h}) must be a multiple of kv_heads ({kv})")
        if self.layer.value.data < 0:
            raise VerifyException(f"layer must be >= 0, got {self.layer.value.data}")
        if self.window.value.data < 0:
            raise VerifyException(f"window must be >= 0, got {self.window.value.data}")
        if not self.scale.value.data > 0:
            raise VerifyException(f"scale must be positive, got {self.scale.value.data}")
        if not self.softcap.value.data >= 0:
            raise VerifyException(f"softcap must be >= 0, got {self.softcap.value.data}")
        style = self.rope_style.data
        _check_choice("rope_style", style, ROPE_STYLES)
        if style == "none":
            if self.rotary_dim is not None:
                raise VerifyException("rotary_dim must be absent when rope_style is none")
        else:
            if not self.rope_theta.value.data > 0:
                raise VerifyException(f"rope_theta must be positive, got {self.rope_theta.value.data}")
            r = self.effective_rotary_dim
            if not 0 < r <= d or r % 2:
                raise VerifyException(f"rotary_dim must be even and in (0, head_dim={d}], got {r}")
        scaling = self.rope_scaling.data
        _check_choice("rope_scaling", scaling, ROPE_SCALINGS)
        if not self.rope_factor.value.data > 0:
            raise VerifyException(f"rope_factor must be positive, got {self.rope_factor.value.data}")
        if scaling == "llama3":
            if self.rope_original_context.value.data <= 0:
                raise VerifyException("rope_scaling llama3 needs rope_original_context > 0")
            if not self.rope_high_freq_factor.value.data > self.rope_low_freq_factor.value.data:
                raise VerifyException("rope_high_freq_factor must exceed rope_low_freq_factor")

        _, c = _check_activation("x", self.x)
        q_dim, kv_dim = h * d, kv * d
        check_shape("wq", self.wq, [q_dim, c], "[heads*head_dim, hidden]")
        check_shape("wk", self.wk, [kv_dim, c], "[kv_heads*head_dim, hidden]")
        check_shape("wv", self.wv, [kv_dim, c], "[kv_heads*head_dim, hidden]")
        check_shape("wo", self.wo, [c, q_dim], "[hidden, heads*head_dim]")
        for what, v, shape, meaning in (
            ("q_bias", self.q_bias, [q_dim], "[heads*head_dim]"),
            ("k_bias", self.k_bias, [kv_dim], "[kv_heads*head_dim]"),
            ("v_bias", self.v_bias, [kv_dim], "[kv_heads*head_dim]"),
            ("o_bias", self.o_bias, [c], "[hidden]"),
            ("q_norm", self.q_norm, [d], "[head_dim]"),
            ("k_norm", self.k_norm, [d], "[head_dim]"),
        ):
            if v is not None:
                check_shape(what, v, shape, meaning)
        for what, v in (("wq", self.wq), ("wk", self.wk), ("wv", self.wv), ("wo", self.wo)):
            _check_stored(what, v)
        if (self.q_norm is None) != (self.k_norm is None):
            raise VerifyException("q_norm and k_norm must be given together")
        if self.q_norm is not None:
            if self.norm_eps is None:
                raise VerifyException("norm_eps is required with q_norm/k_norm")
            if not self.norm_eps.value.data > 0:
                raise VerifyException(f"norm_eps must be positive, got {self.norm_eps.value.data}")
        elif self.norm_eps is not None or self.norm_offset.value.data != 0.0:
            raise VerifyException("norm_eps/norm_offset given without q_norm/k_norm")
        if self.result.type != self.x.type:
            raise VerifyException(f"result type {self.result.type} must equal x's type {self.x.type}")


@irdl_op_definition
class MlpOp(_KeywordInit, OperandsSyntax):
    """The feed-forward block of one layer.

    - ``kind = "swiglu"``: ``down(silu(gate(x)) * up(x))`` (Llama, Qwen);
    - ``kind = "geglu"``: ``down(gelu(gate(x)) * up(x))`` (Gemma);
    - ``kind = "gelu"``: ``down(gelu(up(x)))`` (GPT-2's c_fc -> up,
      c_proj -> down; no gate).

    ``gate``/``up`` are ``[ffn, C]``, ``down`` is ``[C, ffn]``; optional biases
    ``gate_bias``/``up_bias`` ``[ffn]``, ``down_bias`` ``[C]``.
    ``approximate`` ("tanh" default, or "none" for exact erf) picks the GELU
    (geglu and gelu only).

    Example:

    ```mlir
    %m = transformer.mlp %h, %wu, %wd, gate %wg {kind = "swiglu"}
        : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>)
        -> tensor<?x64xf32>
    %g = transformer.mlp %h, %wfc, %wproj, up_bias %bfc, down_bias %bproj {kind = "gelu"}
        : (tensor<?x64xf32>, tensor<256x64xf32>, tensor<64x256xf32>, tensor<256xf32>,
           tensor<64xf32>) -> tensor<?x64xf32>
    ```
    """

    name = "transformer.mlp"

    x = operand_def(TensorType)
    up = operand_def(TensorType)
    down = operand_def(TensorType)
    gate = opt_operand_def(TensorType)
    gate_bias = opt_operand_def(TensorType)
    up_bias = opt_operand_def(TensorType)
    down_bias = opt_operand_def(TensorType)
    kind = prop_def(StringAttr)
    approximate = prop_def(StringAttr, default_value=StringAttr("tanh"))
    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(), AttrSizedOperandSegments(as_property=True))

    def verify_(self) -> None:
        kind = self.kind.data
        _check_choice("kind", kind, MLP_KINDS)
        _check_choice("approximate", self.approximate.data, GELU_APPROX)
        if kind == "swiglu" and self.approximate.data != "tanh":
            raise VerifyException("approximate applies to geglu and gelu only")
        gated = kind in ("swiglu", "geglu")
        if gated and self.gate is None:
            raise VerifyException(f"kind '{kind}' needs a gate weight")
        if not gated and (self.gate is not None or self.gate_bias is not None):
            raise VerifyException("kind 'gelu' takes no gate weight")
        _, c = _check_activation("x", self.x)
        up = shape_of(self.up)
        if len(up) != 2 or DYNAMIC in up:
            raise VerifyException(f"up has shape {_fmt_shape(up)}, expected a static [ffn, hidden]")
        f = up[0]
        check_shape("up", self.up, [f, c], "[ffn, hidden]")
        if self.gate is not None:
            check_shape("gate", self.gate, [f, c], "[ffn, hidden]")
        check_shape("down", self.down, [c, f], "[hidden, ffn]")
        for what, v, shape, meaning in (
            ("gate_bias", self.gate_bias, [f], "[ffn]"),
            ("up_bias", self.up_bias, [f], "[ffn]"),
            ("down_bias", self.down_bias, [c], "[hidden]"),
        ):
            if v is not None:
                check_shape(what, v, shape, meaning)
        if self.result.type != self.x.type:
            raise VerifyException(f"result type {self.result.type} must equal x's type {self.x.type}")


@irdl_op_definition
class ResidualOp(IRDLOperation):
    """Residual add of two ``[T, C]`` activations of the same type (the
    short form spells that type once).

    Example:

    ```mlir
    %r = transformer.residual %x, %a : tensor<?x64xf32>
    ```
    """

    name = "transformer.residual"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)

    traits = traits_def(Pure())

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation):
        lhs = SSAValue.get(lhs)
        super().__init__(operands=[lhs, rhs], result_types=[lhs.type])

    @classmethod
    def parse(cls, parser: Parser) -> ResidualOp:
        lhs = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        rhs = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        ty = parser.parse_type()
        op = cls.build(
            operands=[parser.resolve_operand(lhs, ty), parser.resolve_operand(rhs, ty)],
            result_types=[ty],
            attributes=attrs,
        )
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.lhs)
        printer.print_string(", ")
        printer.print_operand(self.rhs)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    def verify_(self) -> None:
        _check_activation("lhs", self.lhs)
        if self.rhs.type != self.lhs.type:
            raise VerifyException(f"rhs type {self.rhs.type} must equal lhs type {self.lhs.type}")
        if self.result.type != self.lhs.type:
            raise VerifyException(f"result type {self.result.type} must equal lhs type {self.lhs.type}")


@irdl_op_definition
class LmHeadOp(_KeywordInit, IRDLOperation):
    """Output projection to vocabulary logits: ``logits = x . W^T``
    (then ``final_softcap * tanh(logits / final_softcap)`` when softcap > 0).

    ``weight`` is ``[vocab, C]``; ``tied`` marks that it is the token
    embedding table (``token_embd.weight``), which matters for training
    (the gradient accumulates into one tensor).

    Example:

    ```mlir
    %logits = transformer.lm_head %xf, %emb {tied = true}
        : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
    ```
    """

    name = "transformer.lm_head"

    @classmethod
    def result_type(cls, t, props):
        return _tensor([shape_of(t["x"])[0], shape_of(t["weight"])[0]])

    x = operand_def(TensorType)
    weight = operand_def(TensorType)
    tied = prop_def(BoolAttr, default_value=_bool(False))
    softcap = prop_def(_F64_ATTR, default_value=_f64(0.0))
    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$x `,` $weight attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        t, c = _check_activation("x", self.x)
        w = shape_of(self.weight)
        if len(w) != 2 or DYNAMIC in w:
            raise VerifyException(f"weight has shape {_fmt_shape(w)}, expected a static [vocab, hidden]")
        check_shape("weight", self.weight, [None, c], "[vocab, hidden]")
        _check_stored("weight", self.weight)
        rt, rv = _check_activation("result", self.result)
        if rv != w[0] or not _dims_agree(rt, t):
            raise VerifyException(
                f"result has shape {_fmt_shape((rt, rv))}, expected [tokens, vocab] = {_fmt_shape((t, w[0]))}"
            )
        if not self.softcap.value.data >= 0:
            raise VerifyException(f"softcap must be >= 0, got {self.softcap.value.data}")


@irdl_op_definition
class CrossEntropyOp(_KeywordInit, IRDLOperation):
    """Mean next-token cross-entropy of ``logits`` ``[T, V]`` against
    ``targets`` ``[T]`` (integer ids); positions whose target equals
    ``ignore_index`` (default -100) are left out of the mean. The result is a
    scalar ``tensor<f32>``.

    Example:

    ```mlir
    %loss = transformer.cross_entropy %logits, %targets
        : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<f32>
    ```
    """

    name = "transformer.cross_entropy"

    @classmethod
    def result_type(cls, t, props):
        return _tensor([])

    logits = operand_def(TensorType)
    targets = operand_def(TensorType)
    ignore_index = prop_def(_I64_ATTR, default_value=_i64(-100))
    result = result_def(TensorType)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$logits `,` $targets attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        t, _ = _check_activation("logits", self.logits)
        ty = self.targets.type
        assert isinstance(ty, TensorType)
        shape = shape_of(self.targets)
        if len(shape) != 1 or not isinstance(ty.element_type, IntegerType):
            raise VerifyException(f"targets must be a 1-D integer tensor, got {ty}")
        if not _dims_agree(shape[0], t):
            raise VerifyException(
                f"targets has shape {_fmt_shape(shape)}, expected [tokens] = {_fmt_shape((t,))}"
            )
        if self.result.type != _tensor([]):
            raise VerifyException(f"result must be tensor<f32>, got {self.result.type}")


Transformer = Dialect(
    "transformer",
    [
        WeightOp,
        EmbeddingOp,
        NormOp,
        AttentionOp,
        MlpOp,
        ResidualOp,
        LmHeadOp,
        CrossEntropyOp,
    ],
    [ConfigAttr],
)

CONFIG_KEY = "transformer.config"
"""The module attribute holding the model's ``#transformer.config``."""


def module_config(module: Operation) -> ConfigAttr | None:
    """The ``#transformer.config`` of a module (or of the module enclosing `module`)."""
    op: Operation | None = module
    while op is not None:
        attr = op.attributes.get(CONFIG_KEY)
        if isinstance(attr, ConfigAttr):
            return attr
        op = op.parent_op()
    return None

