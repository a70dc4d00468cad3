"""quantize-weights: store the Linear weights of a transformer module in a GGUF format.

    ckc-opt model.mlir -p 'quantize-weights{type=q4_k}'
    ckc compile model/ --weights q4_k -o out      (runs it before lower-transformer)

Retypes ``transformer.weight`` results (``tensor<576x576xf32>`` ->
``tensor<576x576x!quant.q4_k>``); the weights writer (ckc/artifacts.py) then
stores those tensors quantized (ckc/quantize.py: llama.cpp's reference
quantizers, bit for bit). Which tensors, as llama-quantize chooses them
(llama-quant.cpp, ``tensor_allows_quantization``):

- quantized: the 2-D weights every reader of which is a Linear layer or the
  token lookup: attention ``wq wk wv wo``, mlp ``up down gate``, the
  ``lm_head`` weight and the ``embedding`` table (``token_embd.weight``,
  tied or not), fused GPT-2 ``attn_qkv`` slices (``offset``) included;
- kept in their type: every 1-D tensor (norm weights, biases, q/k norms),
  learned position embeddings (llama.cpp keeps ``position_embd``), and any
  weight with another reader.

Options:

- ``type`` (default ``q8_0``): a format of ``ckc.dialects.quant.FORMATS``
  (``f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k``), or
  ``keep`` (the pass changes nothing: a GGUF's own types);
- ``output`` / ``embedding`` (default: ``type``): the format of the LM head
  weight and of the token embedding table (llama-quantize's
  ``--output-tensor-type`` / ``--token-embedding-type``); a tied table takes
  ``embedding``;
- ``fallback`` (default true): a row (last dim) that is not a whole number of
  blocks falls back as llama-quantize's ``tensor_type_fallback`` does:
  q2_k/q3_k -> q4_0, q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, then f16 if
  the row is not a multiple of 32 either; ``fallback=false`` refuses with one
  line naming the tensor. Every fallback is recorded on the module as
  ``quantize.fallbacks`` (``{tensor = "q5_0"}``) so reports can show it.

A weight already in the asked format is left alone; one in another format
is requantized (the writer dequantizes the file's tensor first), as
``llama-quantize --allow-requantize``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects import quant
from ckc.dialects import transformer as tr

KEEP = "keep"
# llama-quant.cpp tensor_type_fallback: K-quant -> legacy format with a 32-value block
FALLBACK = {"q2_k": "q4_0", "q3_k": "q4_0", "q4_k": "q5_0", "q5_k": "q5_1", "q6_k": "q8_0"}
FALLBACKS_ATTR = "quantize.fallbacks"


def _linear_operands(op: Operation) -> list[tuple[SSAValue, str]]:
    """(operand, role) of the weights ``op`` reads as a Linear / lookup table."""
    if isinstance(op, tr.AttentionOp):
        return [(v, "linear") for v in (op.wq, op.wk, op.wv, op.wo)]
    if isinstance(op, tr.MlpOp):
        return [(v, "linear") for v in (op.up, op.down, op.gate) if v is not None]
    if isinstance(op, tr.LmHeadOp):
        return [(op.weight, "output")]
    if isinstance(op, tr.EmbeddingOp):
        return [(op.table, "embedding")]
    return []


def fallback_format(fmt: str, k: int) -> str | None:
    """The format llama-quantize stores a row of ``k`` values in when ``fmt``'s
    blocks do not divide it (``fmt`` itself when they do)."""
    _, block, _ = quant.FORMATS[fmt]
    if k % block == 0:
        return fmt
    alt = FALLBACK.get(fmt, fmt)
    return alt if k % quant.FORMATS[alt][1] == 0 else "f16"


@dataclass(frozen=True)
class QuantizeWeights(ModulePass):
    name = "quantize-weights"

    type: str = "q8_0"
    output: str = ""
    embedding: str = ""
    fallback: bool = True

    def _formats(self) -> dict[str, str]:
        out = {}
        for opt, value in (("type", self.type), ("output", self.output or self.type),
                           ("embedding", self.embedding or self.type)):
            if value != KEEP and value not in quant.FORMATS:
                raise DiagnosticException(
                    f"quantize-weights: {opt}={value} is not a weight format "
                    f"(expected keep or one of {', '.join(quant.FORMATS)})")
            out[opt] = value
        return {"linear": out["type"], "output": out["output"], "embedding": out["embedding"]}

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        formats = self._formats()
        weights: dict[str, list[tr.WeightOp]] = {}
        role: dict[str, str | None] = {}   # tensor -> its role, None if some reader is not a Linear
        for o in op.walk():
            if isinstance(o, tr.WeightOp):
                weights.setdefault(o.tensor_name.data, []).append(o)
        for name, ops in weights.items():
            roles = {_use_role(use) for w in ops for use in w.result.uses}
            # a tied table: read by the lookup and the head, one tensor, the embedding's format
            if roles == {"embedding", "output"}:
                roles = {"embedding"}
            role[name] = roles.pop() if len(roles) == 1 else None

        fallbacks: dict[str, str] = {}
        for name, ops in weights.items():
            r = role[name]
            if r is None or formats[r] == KEEP:
                continue
            ty = ops[0].result.type
            assert isinstance(ty, TensorType)
            if len(ty.get_shape()) != 2 or name.startswith("position_embd"):
                continue
            want = formats[r]
            k = ty.get_shape()[-1]
            fmt = fallback_format(want, k)
            if fmt != want:
                if not self.fallback:
                    why = quant.check_shape(quant.element_type(want), ty.get_shape())
                    raise DiagnosticException(f"quantize-weights: tensor '{name}' {list(ty.get_shape())}: {why} "
                                              f"(fallback=false)")
                fallbacks[name] = fmt
            el = quant.element_type(fmt)
            for w in ops:
                wty = w.result.type
                assert isinstance(wty, TensorType)
                if wty.element_type == el:
                    continue
                new = tr.WeightOp(w.tensor_name, TensorType(el, wty.get_shape()), offset=w.offset.value.data)
                new.attributes.update(w.attributes)
                Rewriter.replace_op(w, new)
        if fallbacks:
            prev = op.attributes.get(FALLBACKS_ATTR)
            merged = dict(prev.data) if isinstance(prev, DictionaryAttr) else {}
            merged.update({n: StringAttr(f) for n, f in fallbacks.items()})
            op.attributes[FALLBACKS_ATTR] = DictionaryAttr(dict(sorted(merged.items())))


def _use_role(use) -> str | None:
    """The role of a weight's use (linear, output, embedding), None for any other reader."""
    op = use.operation
    val = op.operands[use.index]
    roles = [r for v, r in _linear_operands(op) if v is val]
    if not roles or sum(1 for v in op.operands if v is val) > len(roles):
        return None   # also read as something else (a bias, an activation)
    return roles[0]
