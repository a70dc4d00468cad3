"""`lower-transformer`: transformer dialect -> tensorop dialect, one function per mode.

Input: a module with ``#transformer.config`` and ``func.func @forward(%tokens:
tensor<?xi32>) -> tensor<?xVxf32>`` (and optionally ``@train_step(%tokens,
%targets) -> tensor<f32>``) made of whole-model transformer ops. Output: the
same module (config kept) whose functions are tensorop graphs, one per mode
(option ``modes``, default all of them but ``eval_loss``):

- ``prefill``: ``@prefill(%tokens: tensor<?xi32>, %pos: index, %kc0, %vc0,
  ..., %kcL-1, %vcL-1) -> (tensor<1xVxf32>, %kc0', %vc0', ...)``: a chunk of
  T tokens at positions ``pos .. pos+T-1``; every layer writes its K/V rows
  into its caches (``tensorop.kv_write``) and attends over the cache
  (``causal_attention`` with ``pos``); returns the logits of the LAST row
  (generation) and the updated caches. Caches are value-semantic operands and
  results ``tensor<CONTEXT x kv_heads*head_dim x f32>`` (K and V per layer,
  in that order); bufferize turns them into in-place module buffers.
- ``prefill_all``: the same, returning the logits of every row
  ``tensor<?xVxf32>`` (parity tests, perplexity).
- ``decode``: ``@decode(%tokens: tensor<1xi32>, %pos: index, caches...) ->
  (tensor<1xVxf32>, caches...)``: one token, static shapes.
- ``decode_batch`` (option ``slots`` >= 1; not in the default ``modes``):
  ``@decode_batch(%tokens: tensor<?xi32>, %slots: tensor<?xi32>,
  %positions: tensor<?xi32>, %out_rows: tensor<?xi32>, %kc0, %vc0, ...) ->
  (tensor<?xVxf32>, caches...)``:
  rows of different sequences in one call, row i in KV-cache slot
  ``slots[i]`` at position ``positions[i]``; the caches are slot caches
  ``tensor<SLOTS x CONTEXT x kv_heads*head_dim x f32>``. The linear layers run
  once over all rows (the weights read once per step), ``rope_rows`` rotates
  each row at its own position, ``kv_scatter`` writes each row into its slot
  and ``slot_attention`` attends each row to its own slot. Rows of one slot
  come in position order, so a prefill chunk is consecutive rows of one slot
  and mixes with the decode rows of the others (chunked prefill). Logits of
  the rows ``out_rows`` only (``gather_rows`` before the final norm: the last
  row of each sequence, not every prompt row).
- ``train_step`` (only if the input has ``@train_step``): the forward pass
  over ``tokens`` without a cache (positions from 0) followed by
  ``cross_entropy``; autodiff adds the backward later.
- ``eval_loss`` (only if the input has ``@train_step``; not in the default
  ``modes``, ask for it by name): the same function as ``train_step`` under
  another name, left undifferentiated: the training library's forward-only
  loss (bufferize writes its per-row losses, no gradient).

Per layer (whole tensors, never per head)::

    h = rmsnorm|layernorm(x)
    q = matmul(h, wq^T [+bq]); k = ...; v = ...
    [q = rmsnorm(q, q_norm) per head; k = rmsnorm(k, k_norm)]      (Qwen3, Gemma3)
    q = rope(q, pos); k = rope(k, pos)                               (unless rope none)
    kc' = kv_write(kc, k, pos); vc' = kv_write(vc, v, pos)
    o = causal_attention(q, kc', vc', pos) {window, scale, softcap}
    a = matmul(o, wo^T [+bo]) [; a = norm(a)]                        (post-norms)
    r = add(x, a); g = norm(r)
    m = swiglu|geglu(matmul(g, wg^T), matmul(g, wu^T)) | gelu(matmul(g, wu^T))
    d = matmul(m, wd^T) [; d = norm(d)]; x = add(r, d)

then ``[last_rows] -> final norm -> matmul(x, W_out^T) [-> softcap]``. In
``prefill`` the last row is taken before the final norm (rows are
independent). Embeddings: ``embedding(table, tokens) {scale}``, plus
``embedding(position_embd, positions(tokens, pos))`` added for learned
positions (GPT-2). RoPE scaling (linear, llama3) becomes an ``inv_freq``
``tensorop.constant`` computed here as transformers does (fp32).

Weights keep their names and row ``offset`` (a slice of a fused tensor,
GPT-2's ``blk.N.attn_qkv.weight`` rows ``[offset, offset+rows)``), which
bufferize turns into a row offset into the whole tensor's buffer.

Option ``context`` (default 0: the config's) sets the KV cache rows, option
``slots`` (default 0) the KV-cache slots of ``decode_batch``, option
``kv_type`` (``f32`` default, ``f16``, ``q8_0``) their element type (``f16``,
``!quant.q8_0``; q8_0 needs head_dim a multiple of 32): ``kv_write`` converts
the new fp32 rows, attention reads the stored format.
Option ``seq_len`` (default 0: one sequence per call) makes ``train_step``
and ``eval_loss`` take a batch: their ``tokens`` / ``targets`` rows are
``B * seq_len`` tokens, B independent sequences of ``seq_len`` each, and
``positions``, ``rope`` and ``causal_attention`` carry ``seq_len`` (positions
restart at 0 and attention stays within each sequence); every other op is
token-wise and so runs once over all ``B * seq_len`` rows (one GEMM with
M = B * seq_len per weight).
Errors (no config, no @forward, an unsupported form) are one-line
``LowerTransformerError``s naming the op.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import IndexType, IntegerAttr, IntegerType, ModuleOp, TensorType, f32
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects import quant
from ckc.dialects import tensorop as T
from ckc.dialects import transformer as TF

MODES = ("prefill", "prefill_all", "decode", "decode_batch", "train_step", "eval_loss")
# The modes lowered from ``@train_step`` (tokens, targets -> loss, no cache).
LOSS_MODES = ("train_step", "eval_loss")
# ``modes``' default: every mode but ``eval_loss``, which is asked for by name.
DEFAULT_MODES = ("prefill", "prefill_all", "decode", "train_step")


class LowerTransformerError(DiagnosticException):
    """A model lower-transformer cannot lower (one line)."""


class _Lowering:
    """Lowers the body of one transformer function into a new tensorop function."""

    def __init__(self, config: TF.ConfigAttr, src: func.FuncOp, mode: str, context: int,
                 funcs: dict[str, func.FuncOp] | None = None, slots: int = 0, kv_type: str = "f32",
                 seq_len: int = 0):
        self.kv_elem = quant.element_type(kv_type)
        self.cfg = config
        self.seq = {"seq_len": seq_len} if seq_len and mode in LOSS_MODES else {}
        self.funcs = funcs or {}
        self.inlining: list[func.FuncOp] = []
        self.layer = 0
        self.src = src
        self.mode = mode
        self.context = context
        self.ops: list[Operation] = []
        self.env: dict[SSAValue, SSAValue] = {}
        self.weights: dict[tuple, SSAValue] = {}
        self.names: set[str] = set()
        self.kv_dim = config.kv_heads * config.head_dim
        self.caches: list[SSAValue] = []       # current value per cache (k0, v0, k1, v1, ...)
        self.pos: SSAValue | None = None
        self.slots = slots
        self.row_slots: SSAValue | None = None      # decode_batch: tensor<?xi32> per row
        self.row_pos: SSAValue | None = None
        self.out_rows: SSAValue | None = None       # decode_batch: the rows whose logits are returned
        # norms whose only use is the lm_head: in prefill (last row), take the
        # last row before them
        self.last_before: set[Operation] = set()
        if mode in ("prefill", "decode_batch"):
            for op in src.walk():  # (a head inside a called function is not seen: then last_rows comes later)
                if isinstance(op, TF.LmHeadOp):
                    d = op.x.owner
                    if isinstance(d, TF.NormOp) and d.result.has_one_use():
                        self.last_before.add(d)

    # -- helpers -----------------------------------------------------------

    def add(self, op: Operation, name: str | None = None) -> SSAValue:
        self.ops.append(op)
        res = op.results[0]
        if name:
            base, k = name, 1
            while name in self.names:
                k += 1
                name = f"{base}_v{k}"
            self.names.add(name)
            res.name_hint = name
        return res

    def fail(self, op: Operation, msg: str):
        raise LowerTransformerError(f"lower-transformer: '{op.name}' {msg}")

    def weight(self, value: SSAValue) -> SSAValue:
        if value in self.env:
            return self.env[value]
        op = value.owner
        if not isinstance(op, TF.WeightOp):
            raise LowerTransformerError(
                f"lower-transformer: a weight operand must come from transformer.weight, got {op.name}"
            )
        name, off = op.tensor_name.data, op.offset.value.data
        key = (name, off, value.type)
        if key not in self.weights:
            w = T.WeightOp(name, value.type, offset=off)
            self.weights[key] = self.add(w, ("b_" if name.endswith(".bias") else "w_") + self.hint(value, "w") + (f"_off{off}" if off else ""))
        self.env[value] = self.weights[key]
        return self.weights[key]

    @staticmethod
    def hint(wvalue: SSAValue | None, default: str) -> str:
        """A short SSA name from a weight name: blk.3.attn_q.weight -> l3_attn_q."""
        if wvalue is None or not isinstance(wvalue.owner, TF.WeightOp):
            return default
        name = wvalue.owner.tensor_name.data
        parts = name.split(".")
        if parts and parts[-1] in ("weight", "bias"):
            parts = parts[:-1]
        if len(parts) >= 2 and parts[0] == "blk":
            return f"l{parts[1]}_" + "_".join(parts[2:])
        return "_".join(parts)

    def linear(self, x: SSAValue, w: SSAValue, b: SSAValue | None, name: str) -> SSAValue:
        return self.add(
            T.MatmulOp(x, self.weight(w), self.weight(b) if b is not None else None, transpose_b=True), name
        )

    # -- entry -------------------------------------------------------------

    def run(self) -> func.FuncOp:
        cfg, mode = self.cfg, self.mode
        tok_ty = TensorType(IntegerType(32), [1 if mode == "decode" else TF.DYNAMIC])
        cache_ty = TensorType(self.kv_elem, [self.context, self.kv_dim])
        if mode == "decode_batch":  # (f32 only: kv_type with slots is refused in apply)
            cache_ty = TensorType(f32, [self.slots, self.context, self.kv_dim])
        arg_types: list = [tok_ty]
        src_args = list(self.src.body.block.args)
        if mode in LOSS_MODES:
            if len(src_args) != 2:
                raise LowerTransformerError("lower-transformer: @train_step must take (tokens, targets)")
            arg_types.append(src_args[1].type)
        else:
            if len(src_args) != 1:
                raise LowerTransformerError("lower-transformer: @forward must take (tokens)")
            if mode == "decode_batch":
                arg_types += [tok_ty, tok_ty, tok_ty]  # slots, positions (one per row), out_rows
            else:
                arg_types.append(IndexType())
            arg_types += [cache_ty] * (2 * cfg.layers)
        block = Block(arg_types=arg_types)
        args = list(block.args)
        args[0].name_hint = "tokens"
        self.env[src_args[0]] = args[0]
        if mode in LOSS_MODES:
            args[1].name_hint = "targets"
            self.env[src_args[1]] = args[1]
            zero = arith.ConstantOp(IntegerAttr(0, IndexType()))
            self.ops.append(zero)
            zero.result.name_hint = "pos"
            self.pos = zero.result
        else:
            first = 2
            if mode == "decode_batch":
                args[1].name_hint, args[2].name_hint, args[3].name_hint = "slots", "positions", "out_rows"
                self.row_slots, self.row_pos, self.out_rows = args[1], args[2], args[3]
                first = 4
            else:
                args[1].name_hint = "pos"
                self.pos = args[1]
            for i in range(cfg.layers):
                args[first + 2 * i].name_hint = f"kc{i}"
                args[first + 1 + 2 * i].name_hint = f"vc{i}"
            self.caches = args[first:]

        ret: func.ReturnOp | None = None
        for op in self.src.body.block.ops:
            if isinstance(op, func.ReturnOp):
                ret = op
                break
            self.lower(op)
        if ret is None or len(ret.arguments) != 1:
            raise LowerTransformerError(f"lower-transformer: @{self.src.sym_name.data} must return one value")
        result = self.env[ret.arguments[0]]
        outs = [result] + ([] if mode in LOSS_MODES else list(self.caches))
        self.ops.append(func.ReturnOp(*outs))
        block.add_ops(self.ops)
        return func.FuncOp(mode, (arg_types, [v.type for v in outs]), Region(block))

    def lower(self, op: Operation) -> None:
        if isinstance(op, TF.WeightOp):
            return  # materialized on first use
        if isinstance(op, func.CallOp):
            return self.inline_call(op)
        method = getattr(self, "lower_" + op.name.split(".")[-1], None)
        if not op.name.startswith("transformer.") or method is None:
            self.fail(op, "is not supported by lower-transformer")
        method(op)

    def inline_call(self, op: func.CallOp) -> None:
        """A call of another transformer function (``@train_step`` calling
        ``@forward``) is lowered inline."""
        callee = self.funcs.get(op.callee.root_reference.data)
        if callee is None or not callee.body.blocks:
            self.fail(op, f"calls an unknown function @{op.callee.root_reference.data}")
        if callee in self.inlining:
            self.fail(op, "is recursive")
        self.inlining.append(callee)
        for a, v in zip(callee.body.block.args, op.arguments, strict=True):
            self.env[a] = self.env[v]
        for inner in callee.body.block.ops:
            if isinstance(inner, func.ReturnOp):
                for r, v in zip(op.results, inner.arguments, strict=True):
                    self.env[r] = self.env[v]
                break
            self.lower(inner)
        self.inlining.pop()

    # -- ops -----------------------------------------------------------------

    def lower_embedding(self, op: TF.EmbeddingOp) -> None:
        scale = op.scale.value.data
        x = self.add(
            T.EmbeddingOp(self.weight(op.table), self.env[op.tokens], scale=None if scale == 1.0 else scale), "x_emb"
        )
        if op.positions is not None:
            if self.row_pos is not None:  # decode_batch: each row's own position
                ids = self.row_pos
            else:
                ids = self.add(T.PositionsOp(self.env[op.tokens], self.pos, **self.seq), "pos_ids")
            pe = self.add(T.EmbeddingOp(self.weight(op.positions), ids), "pos_emb")
            x = self.add(T.AddOp(x, pe), "x_pos")
        self.env[op.result] = x

    def norm(self, x: SSAValue, w: SSAValue, b: SSAValue | None, kind: str, eps: float,
             offset: float, name: str, where: Operation) -> SSAValue:
        if kind == "rms":
            if b is not None:
                self.fail(where, "RMS norm with a bias is not supported")
            return self.add(T.RMSNormOp(x, self.weight(w), eps=eps, offset=offset), name)
        return self.add(
            T.LayerNormOp(x, self.weight(w), self.weight(b) if b is not None else None, eps=eps, offset=offset), name
        )

    def last(self, x: SSAValue) -> SSAValue:
        """The rows whose logits are returned: prefill's last row, decode_batch's out_rows."""
        if self.out_rows is not None:
            return self.add(T.GatherRowsOp(x, self.out_rows), "x_out")
        return self.add(T.LastRowsOp(x, count=1), "x_last")

    def lower_norm(self, op: TF.NormOp) -> None:
        x = self.env[op.x]
        if op in self.last_before:
            x = self.last(x)
        self.env[op.result] = self.norm(
            x, op.weight, op.bias, op.kind.data, op.eps.value.data, op.offset.value.data,
            self.hint(op.weight, "norm"), op,
        )

    def lower_attention(self, op: TF.AttentionOp) -> None:
        if not op.causal.value.data:
            self.fail(op, "non-causal attention is not supported")
        layer = op.layer.value.data
        self.layer = layer
        p = f"l{layer}_"
        H, KV, D = op.heads.value.data, op.kv_heads.value.data, op.head_dim.value.data
        x = self.env[op.x]
        q = self.linear(x, op.wq, op.q_bias, p + "q")
        k = self.linear(x, op.wk, op.k_bias, p + "k")
        v = self.linear(x, op.wv, op.v_bias, p + "v")
        if op.q_norm is not None:
            eps = op.norm_eps.value.data
            off = op.norm_offset.value.data
            q = self.add(T.RMSNormOp(q, self.weight(op.q_norm), eps=eps, offset=off), p + "q_normed")
            k = self.add(T.RMSNormOp(k, self.weight(op.k_norm), eps=eps, offset=off), p + "k_normed")
        style = op.rope_style.data
        if style != "none":
            rd = op.effective_rotary_dim
            theta = op.rope_theta.value.data
            inv = None
            scaling = op.rope_scaling.data
            if scaling != "none":
                inv = self.add(T.rope_inv_freq_constant(
                    rd, theta, scaling=scaling, factor=op.rope_factor.value.data,
                    low_freq_factor=op.rope_low_freq_factor.value.data,
                    high_freq_factor=op.rope_high_freq_factor.value.data,
                    original_context=op.rope_original_context.value.data,
                ), p + "inv_freq")
            rot = rd if rd != D else None
            if self.row_pos is not None:
                q = self.add(T.RopeRowsOp(q, self.row_pos, inv, heads=H, head_dim=D, theta=theta, style=style,
                                          rotary_dim=rot), p + "q_rot")
                k = self.add(T.RopeRowsOp(k, self.row_pos, inv, heads=KV, head_dim=D, theta=theta, style=style,
                                          rotary_dim=rot), p + "k_rot")
            else:
                q = self.add(T.RopeOp(q, self.pos, inv, heads=H, head_dim=D, theta=theta, style=style,
                                      rotary_dim=rot, **self.seq), p + "q_rot")
                k = self.add(T.RopeOp(k, self.pos, inv, heads=KV, head_dim=D, theta=theta, style=style,
                                      rotary_dim=rot, **self.seq), p + "k_rot")
        attrs = dict(heads=H, kv_heads=KV, head_dim=D, scale=op.scale.value.data,
                     window=op.window.value.data, softcap=op.softcap.value.data)
        if self.mode in LOSS_MODES:
            o = self.add(T.CausalAttentionOp(q, k, v, **attrs, **self.seq), p + "attn")
        elif self.row_pos is not None:
            if not 0 <= layer < self.cfg.layers:
                self.fail(op, f"layer {layer} outside the config's {self.cfg.layers} layers")
            kc = self.add(T.KVScatterOp(self.caches[2 * layer], k, self.row_slots, self.row_pos), f"kc{layer}_new")
            vc = self.add(T.KVScatterOp(self.caches[2 * layer + 1], v, self.row_slots, self.row_pos), f"vc{layer}_new")
            self.caches[2 * layer], self.caches[2 * layer + 1] = kc, vc
            o = self.add(T.SlotAttentionOp(q, kc, vc, self.row_slots, self.row_pos, **attrs), p + "attn")
        else:
            if not 0 <= layer < self.cfg.layers:
                self.fail(op, f"layer {layer} outside the config's {self.cfg.layers} layers")
            kc = self.add(T.KVWriteOp(self.caches[2 * layer], k, self.pos), f"kc{layer}_new")
            vc = self.add(T.KVWriteOp(self.caches[2 * layer + 1], v, self.pos), f"vc{layer}_new")
            self.caches[2 * layer], self.caches[2 * layer + 1] = kc, vc
            o = self.add(T.CausalAttentionOp(q, kc, vc, self.pos, **attrs), p + "attn")
        self.env[op.result] = self.linear(o, op.wo, op.o_bias, p + "attn_out")

    def lower_mlp(self, op: TF.MlpOp) -> None:
        x = self.env[op.x]
        base = self.hint(op.up, "ffn")
        p = base[: -len("ffn_up")] if base.endswith("ffn_up") else base + "_"
        kind = op.kind.data
        approx = op.approximate.data
        up = self.linear(x, op.up, op.up_bias, p + "ffn_up")
        if kind == "gelu":
            h = self.add(T.GeluOp(up, approximate=approx), p + "ffn_act")
        else:
            gate = self.linear(x, op.gate, op.gate_bias, p + "ffn_gate")
            if kind == "swiglu":
                h = self.add(T.SwigluOp(gate, up), p + "ffn_act")
            else:
                h = self.add(T.GegluOp(gate, up, approximate=approx), p + "ffn_act")
        self.env[op.result] = self.linear(h, op.down, op.down_bias, p + "ffn_out")

    def lower_residual(self, op: TF.ResidualOp) -> None:
        self.env[op.result] = self.add(T.AddOp(self.env[op.lhs], self.env[op.rhs]), f"l{self.layer}_resid")

    def lower_lm_head(self, op: TF.LmHeadOp) -> None:
        x = self.env[op.x]
        if self.mode in ("prefill", "decode_batch") and op.x.owner not in self.last_before:
            x = self.last(x)
        logits = self.add(T.MatmulOp(x, self.weight(op.weight), transpose_b=True), "logits")
        cap = op.softcap.value.data
        if cap > 0:
            logits = self.add(T.SoftcapOp(logits, cap=cap), "logits_capped")
        self.env[op.result] = logits

    def lower_cross_entropy(self, op: TF.CrossEntropyOp) -> None:
        self.env[op.result] = self.add(
            T.CrossEntropyOp(self.env[op.logits], self.env[op.targets], ignore_index=op.ignore_index.value.data),
            "loss",
        )


@dataclass(frozen=True)
class LowerTransformer(ModulePass):
    """transformer -> tensorop: ``@forward`` becomes ``@prefill``,
    ``@prefill_all`` and ``@decode`` (KV cache as value operands/results),
    ``@train_step`` its tensorop forward + cross_entropy. See the module
    docstring."""

    name = "lower-transformer"

    modes: tuple[str, ...] = DEFAULT_MODES
    context: int = 0
    slots: int = 0
    kv_type: str = "f32"
    seq_len: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        cfg = op.attributes.get(TF.CONFIG_KEY)
        if not isinstance(cfg, TF.ConfigAttr):
            raise LowerTransformerError("lower-transformer: the module has no #transformer.config")
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise LowerTransformerError(
                f"lower-transformer: unknown mode '{bad[0]}' (expected some of {', '.join(MODES)})"
            )
        if self.seq_len < 0:
            raise LowerTransformerError(f"lower-transformer: seq_len must be >= 0, got {self.seq_len}")
        context = self.context or cfg.context
        if context <= 0:
            raise LowerTransformerError(f"lower-transformer: context must be positive, got {context}")
        if "decode_batch" in self.modes and self.slots < 1:
            raise LowerTransformerError(
                f"lower-transformer: mode decode_batch needs slots >= 1, got slots={self.slots}"
            )
        if self.kv_type not in T.KV_CACHE_TYPES:
            raise LowerTransformerError(
                f"lower-transformer: kv_type '{self.kv_type}' is not one of {', '.join(T.KV_CACHE_TYPES)}")
        if self.kv_type == "q8_0" and cfg.head_dim % 32:
            raise LowerTransformerError(
                f"lower-transformer: kv_type q8_0 needs head_dim a multiple of 32 (the q8_0 block); "
                f"this model's head_dim is {cfg.head_dim}")
        if self.kv_type != "f32" and "decode_batch" in self.modes:
            raise LowerTransformerError(
                f"lower-transformer: kv_type {self.kv_type} is not supported with decode_batch (slot caches are f32)")
        funcs = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        forward, train = funcs.get("forward"), funcs.get("train_step")
        new: list[func.FuncOp] = []
        for mode in MODES:
            if mode not in self.modes:
                continue
            if mode in LOSS_MODES:
                if train is None:
                    continue  # only when the model has one
                src = train
            else:
                if forward is None:
                    raise LowerTransformerError("lower-transformer: the module has no func.func @forward")
                src = forward
            if mode in funcs and funcs[mode] is not src:
                raise LowerTransformerError(f"lower-transformer: the module already has a function @{mode}")
            new.append(_Lowering(cfg, src, mode, context, funcs, self.slots, self.kv_type, self.seq_len).run())
        for f in (forward, train):
            if f is not None:
                f.detach()
                f.erase()
        for f in new:
            op.body.block.add_op(f)
