"""`bufferize`: tensorop functions -> buffer dialect (kernel calls on named buffers).

Input: the output of `lower-transformer` (``@prefill``, ``@prefill_all``,
``@decode``, ``@train_step``, ``@eval_loss``; any subset). Output: the same module (the
``#transformer.config`` kept) with

- module-level buffers (live for the whole program):

  - one ``weights`` buffer per weight tensor, named by its tensor name
    (``@"blk.0.attn_q.weight"``), with the whole tensor's shape; a slice of a
    fused tensor (GPT-2's ``attn_qkv``) is the same buffer read at a row
    offset; compile-time constants (RoPE scaling tables) are ``weights``
    buffers named ``const.<name>`` carrying their data in a ``value``
    attribute (the weight writer packs them like a tensor);
  - per layer a K and a V cache ``@"blk.N.k_cache"``, ``@"blk.N.v_cache"``
      ``tensor<CONTEXT x kv_heads*head_dim x E>`` in ``kv_cache``, E the
      cache's element type (f32; f16 or ``!quant.q8_0`` with ``--kv-type``);
  - ``io`` buffers exchanged with the caller: ``@tokens`` ``tensor<?xi32>``,
    ``@logits`` ``tensor<?xVxf32>`` (``max_tokens`` rows; ``@prefill`` and
    ``@decode`` write row 0 only), and for ``@train_step`` ``@targets`` and
    ``@loss`` ``tensor<f32>``;

- one function per mode, whose arguments are the runtime scalars:
  ``@prefill(%n: index, %pos: index)`` and ``@prefill_all(%n, %pos)`` (a chunk
  of ``n <= max_tokens`` tokens at positions ``pos..``), ``@decode(%pos:
  index)`` (one token), ``@train_step(%n: index)`` and ``@eval_loss(%n:
  index)`` (the training library's forward-only loss, see ``_LossFunction``
  below). Each body declares its
  activation buffers (``activations``; ``?`` rows sized for ``max_tokens``),
  then any ``arith`` index arithmetic on the arguments (``n - 1`` for the
  last row, ``n * heads`` for a per-head norm), then one ``buffer.call`` per
  compute op, in program order, then ``func.return``.

Every call follows the kernel ABI table (``kernels/include/ckernels_abi.py``,
read through ``ckc/kernel_abi.py``: kernel name, ins/outs order, param names).

Rules. Most ops have no rule of their own here: an op whose ABI entry has a
``map`` (``kernel_abi.OpMap``: the elementwise families and their gradients,
norms, rope, matmul, embedding, the loss) is lowered by ONE generic rule,
``_Function.generic``, which reads the entry: operands -> ins, results ->
outs, params from the op's properties, scalar operands and shapes. A
hand-written ``op_<name>`` method, when a class has one, takes precedence;
they remain for what a table cannot say: views and KV writes (below), the
forward ops that save statistics for their gradient and those gradients
(``_TrainFunction``), the kernel choice by context (attention: prefill,
decode or train), fused ops with scratch buffers, gradients accumulated into
``grads``. A hand-written rule may still end in ``self.generic(op)`` (a
norm with no gradient op, a token embedding). Views are aliases, never copies: ``reshape`` is the same buffer,
``last_rows`` the same buffer at row ``n - count`` (param ``in<i>_row``),
``kv_write`` makes the producer of the new K/V rows write them straight into
the cache at row ``pos`` (``out0_row = %pos``; a ``copy`` call only when the
rows have other uses), learned positions (``embedding`` of ``positions``)
read ``position_embd.weight`` from row ``pos``. Offsets and lifetimes are
left to `plan-memory`, kernel variants to `select-simd`.

Training with `add-optimizer` adds ``@optimizer_step(%lr: f32, %step: index)``
and ``@zero_grads()`` (see ``_OptLayout`` / ``_OptFunction`` below): the
trained tensors lead the ``weights`` region and lie in the same order in
``grads``, ``adam_m`` and ``adam_v`` (parallel flat blocks), and alias buffers
(``covers``) span each parameter group, so the optimizer is a few kernel
calls over contiguous memory; ``@train_step``'s gradient accumulators are its
``grads`` buffers.

Option ``max_tokens`` (default 64): the largest chunk a call handles.

A batch of sequences (ops with ``seq_len`` S > 0, `lower-transformer{seq_len}`
for a batched train step): the rows ``%n`` are ``n / S`` sequences of S rows
back to back, and ``max_tokens`` must be a multiple of S. Token-wise ops are
lowered as always (one call over all rows: GEMMs with M = n); attention and
its gradient call the per-sequence kernels ``attention_seq`` /
``attention_train_seq`` / ``attention_grad_seq``; ``positions`` become an i32
activation ``@positions`` written by ``seq_positions`` (pos + i mod S) at its
first use, read by RoPE (``rope_ids`` / ``rope_grad_ids``) and by learned
position embeddings as a gather (``embedding``; gradient ``embedding_grad``,
a scatter-add) instead of the one-sequence row view. The module gets
``ckc.seq_len = S`` (lower-to-c's ``ckc_gen_seq_len``, the runtime's batch
shape).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    IndexType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    f32,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc import kernel_abi
from ckc.dialects import buffer as B
from ckc.dialects import quant
from ckc.dialects import tensorop as T
from ckc.dialects import transformer as TF

DYN = T.DYN
ALIGN = 64
# Module attribute: the rows of one sequence when the functions take a batch of them (ops with `seq_len`).
SEQ_LEN_KEY = "ckc.seq_len"


# Mirrors CK_ATTN_MAX_HEAD_DIM in kernels/include/ckernels.h (a test keeps them equal).
ATTN_MAX_HEAD_DIM = 256


class BufferizeError(DiagnosticException):
    """IR bufferize cannot handle (one line)."""


def _fail(op: Operation | None, msg: str):
    where = f"'{op.name}' " if op is not None else ""
    raise BufferizeError(f"bufferize: {where}{msg}")


@dataclass
class Loc:
    """Where a tensor value lives: a buffer and an optional first row."""

    buffer: str
    row: int | SSAValue | None = None


def _shape(v: SSAValue | TensorType) -> tuple[int, ...]:
    t = v.type if isinstance(v, SSAValue) else v
    assert isinstance(t, TensorType), t
    return tuple(t.get_shape())


def _elem_bytes(t: TensorType) -> int:
    el = t.element_type
    if isinstance(el, IntegerType):
        return (el.width.data + 7) // 8
    return getattr(el, "bitwidth", 32) // 8


def _nbytes(t: TensorType, max_rows: int) -> int:
    shape = [max_rows if d == DYN else d for d in t.get_shape()]
    if quant.is_quantized(t.element_type):  # rows of whole blocks (a q8_0 KV cache)
        return max(quant.tensor_bytes(t.element_type, shape), 1)
    n = _elem_bytes(t)
    for d in shape:
        n *= d
    return max(n, 1)


def _stored_format(v: SSAValue) -> str:
    """The weight format of a value's element type ("f32", "q4_1", "f16", ...)."""
    fmt = quant.format_name(v.type.element_type)
    if fmt is None:
        _fail(None, f"weights of element type {v.type.element_type} are not supported")
    return fmt
def _kv_format(cache: SSAValue) -> str:
    """The storage format of a KV cache value: "f32", "f16" or "q8_0"."""
    t = cache.type
    assert isinstance(t, TensorType)
    return quant.format_name(t.element_type) or "f32"


_NAME_OK = re.compile(r"[^A-Za-z0-9_.\-]")


class _Module:
    """Module-level buffers, shared by every function."""

    def __init__(self, module: ModuleOp, max_tokens: int):
        self.module = module
        self.max_tokens = max_tokens
        self.cfg = module.attributes.get(TF.CONFIG_KEY)
        self.ops: list[B.BufferOp] = []
        self.by_name: dict[str, B.BufferOp] = {}
        self.weight_rows: dict[str, tuple[TensorType, int]] = {}  # name -> (slice type, rows needed)
        self.seq_len = 0  # of the ops with `seq_len` (one value per module: the runtime's batch shape)
        self.known_shapes: dict[str, tuple[int, ...]] = {}
        self.generic = kernel_abi.by_op()  # op name -> the kernel of the generic rule
        # decode_batch's slot caches [slots, context, W] (see _BatchFunction):
        # every function's cache is then one buffer of slots * context rows
        self.cache_slots = 0
        for f in module.ops:
            if isinstance(f, func.FuncOp) and f.body.blocks:
                for a in f.body.block.args:
                    if isinstance(a.type, TensorType) and len(a.type.get_shape()) == 3:
                        self.cache_slots = max(self.cache_slots, a.type.get_shape()[0])
        if isinstance(self.cfg, TF.ConfigAttr):
            from ckc.importers.build_ir import weight_shapes  # (ckc.importers loads numpy)

            names = {o.tensor_name.data for o in module.walk() if isinstance(o, T.WeightOp)}
            self.known_shapes = dict(
                weight_shapes(self.cfg, fused_qkv=any(".attn_qkv." in n for n in names))
            )

    def declare(self, name: str, type: TensorType, region: str, **attrs) -> str:
        if name in self.by_name:
            old = self.by_name[name]
            if old.type != type or old.region.data != region:
                _fail(None, f"buffer @{name} declared as {old.type} in {old.region.data} and as {type} in {region}")
            return name
        op = B.BufferOp(name, type, region, _nbytes(type, self.max_tokens), ALIGN)
        for k, v in attrs.items():
            op.attributes[k] = v
        self.ops.append(op)
        self.by_name[name] = op
        return name

    layout: "_OptLayout | None" = None

    def alias(self, region: str, name: str, members: list[str], floats: int) -> str:
        """A module-level alias buffer spanning ``members`` (tensor names) laid out
        in order in ``region`` (plan-memory places it over them)."""
        prefix = {"weights": "", "grads": GRAD_PREFIX}.get(region, ADAM_PREFIX.get(region, ""))
        first, last = prefix + members[0], prefix + members[-1]
        n = self.declare(name, TensorType(f32, [floats]), region)
        self.by_name[n].attributes[COVERS_ATTR] = B.covers_attr(first, last)
        return n

    def grads_all(self) -> str:
        lay = self.layout
        if lay is None or not lay.order:
            _fail(None, f"@{OPTIMIZER_FUNCTION} updates no parameter (no tensorop.adamw_update)")
        return self.alias("grads", "grads.all", lay.order, lay.floats(lay.order))

    def cache(self, name: str, ty: TensorType) -> Loc:
        """A layer's K or V cache. With slots (a module holding decode_batch),
        one buffer ``[slots * context, W]`` (slot s = rows ``s*context ..``,
        attribute ``slots``) for every function: a single-sequence function's
        ``[context, W]`` cache is slot 0."""
        shape = _shape(ty)
        if not self.cache_slots:
            return Loc(self.declare(name, ty, "kv_cache"))
        ctx, w = shape[-2], shape[-1]
        if len(shape) == 3 and shape[0] != self.cache_slots:
            _fail(None, f"cache @{name} has {shape[0]} slots, another function {self.cache_slots}")
        flat = TensorType(ty.element_type, [self.cache_slots * ctx, w])
        return Loc(self.declare(name, flat, "kv_cache", slots=IntegerAttr(self.cache_slots, IndexType())))

    def weight(self, op: T.WeightOp) -> Loc:
        name = op.tensor_name.data
        ty = op.result.type
        assert isinstance(ty, TensorType)
        off = op.offset.value.data
        shape = _shape(ty)
        if name in self.known_shapes:
            full = self.known_shapes[name]
            if len(full) != len(shape) or tuple(full[1:]) != tuple(shape[1:]) or off + shape[0] > full[0]:
                _fail(op, f"weight '{name}' {list(shape)} at row {off} does not fit the tensor's shape {list(full)}")
        else:
            rows = off + shape[0]
            prev = self.by_name.get(name)
            if prev is not None:
                pshape = _shape(prev.type)
                if pshape[1:] != shape[1:]:
                    _fail(op, f"weight '{name}' used with shapes {list(pshape)} and {list(shape)}")
                rows = max(rows, pshape[0])
                if rows != pshape[0]:
                    prev.properties["type"] = TensorType(ty.element_type, [rows, *shape[1:]])
                    prev.properties["size"] = IntAttr(_nbytes(prev.type, 1))
                return Loc(name, off or None)
            full = (rows, *shape[1:])
        self.declare(name, TensorType(ty.element_type, list(full)), "weights")
        return Loc(name, off or None)

    def constant(self, op: T.ConstantOp, hint: str) -> Loc:
        name = f"const.{hint}"
        k = 1
        while name in self.by_name and self.by_name[name].attributes.get("value") != op.value:
            k += 1
            name = f"const.{hint}.{k}"
        ty = op.result.type
        assert isinstance(ty, TensorType)
        self.declare(name, ty, "weights", value=op.value)
        return Loc(name)


class _Function:
    """Bufferizes one tensorop function."""

    def __init__(self, mod: _Module, f: func.FuncOp):
        self.mod = mod
        self.f = f
        self.mode = f.sym_name.data
        self.locals: list[B.BufferOp] = []
        self.local_names: set[str] = set()
        self.arith: list[Operation] = []
        self.calls: list[Operation] = []
        self.loc: dict[SSAValue, Loc] = {}
        self.scalars: dict[SSAValue, int | SSAValue] = {}
        self.products: dict[tuple, SSAValue] = {}

    # -- scalars -----------------------------------------------------------

    def const(self, value: int) -> SSAValue:
        key = ("const", value)
        if key not in self.products:
            c = arith.ConstantOp(IntegerAttr(value, IndexType()))
            c.result.name_hint = f"c{value}"
            self.arith.append(c)
            self.products[key] = c.result
        return self.products[key]

    def rows(self, value: SSAValue) -> int | SSAValue:
        """The row count of a 2-D (or 1-D) activation: static, or %n."""
        d = _shape(value)[0]
        if d != DYN:
            return d
        if self.n is None:
            _fail(None, f"@{self.mode} has a dynamic tensor but no token count")
        return self.n

    def mul(self, a: int | SSAValue, b: int) -> int | SSAValue:
        if isinstance(a, int):
            return a * b
        if b == 1:
            return a
        key = ("mul", a, b)
        if key not in self.products:
            op = arith.MuliOp(a, self.const(b))
            op.result.name_hint = f"n_x{b}"
            self.arith.append(op)
            self.products[key] = op.result
        return self.products[key]

    def sub(self, a: int | SSAValue, b: int) -> int | SSAValue:
        if isinstance(a, int):
            return a - b
        key = ("sub", a, b)
        if key not in self.products:
            op = arith.SubiOp(a, self.const(b))
            op.result.name_hint = f"n_minus{b}"
            self.arith.append(op)
            self.products[key] = op.result
        return self.products[key]

    def seq_len(self, op: Operation) -> int:
        """`op`'s ``seq_len`` (0: one sequence); a batch of sequences must tile
        the ``max_tokens`` rows and be the same for the whole module."""
        S = op.prop_values()["seq_len"]
        if S:
            if self.mod.max_tokens % S:
                _fail(op, f"seq_len {S} does not divide max_tokens {self.mod.max_tokens} (a whole number of "
                          "sequences per call)")
            if self.mod.seq_len not in (0, S):
                _fail(op, f"seq_len {S} differs from the module's {self.mod.seq_len}")
            self.mod.seq_len = S
        return S

    def positions(self, rows: int | SSAValue, pos: int | SSAValue, S: int, op: Operation) -> Loc:
        """An i32 activation ``positions`` [rows] = pos + i mod S (`seq_positions`),
        written once per function, by its first call: the positions of a batch
        of sequences, for ``rope_ids`` and learned-position embeddings."""
        key = ("positions", rows, pos, S)
        if key not in self.products:
            loc = self.fresh_named("positions", TensorType(IntegerType(32), [DYN]))
            self.call("seq_positions", [], [loc], dict(rows=rows, seq_len=S, pos=pos), op)
            # first, not inside layer 0 (its first rope): every layer's calls stay alike, so
            # roll-layers rolls all of them (it reads only %n and pos, both known at entry)
            self.calls.insert(0, self.calls.pop())
            self.products[key] = loc
        return self.products[key]

    # -- buffers -----------------------------------------------------------

    def fresh(self, value: SSAValue, hint: str) -> Loc:
        base = _NAME_OK.sub("_", value.name_hint or hint) or hint
        name, k = base, 1
        while name in self.local_names or name in self.mod.by_name:
            k += 1
            name = f"{base}.{k}"
        self.local_names.add(name)
        ty = value.type
        assert isinstance(ty, TensorType)
        self.locals.append(B.BufferOp(name, ty, "activations", _nbytes(ty, self.mod.max_tokens), ALIGN))
        return Loc(name)

    def bind_loss_io(self, block: Block, what: str, extra: int = 0) -> Block:
        """For @train_step / @eval_loss: (tokens, targets) become the io buffers
        @tokens and @targets, per-row losses go to @losses; returns the new body
        block, whose one argument is the token count n. ``extra``: arguments
        after the targets (add-optimizer's gradient accumulators) the caller places."""
        args = list(block.args)
        if len(args) != 2 + extra:
            _fail(None, f"@{self.mode}: {what} takes (tokens, targets), got {len(args)} arguments")
        tok, tgt = args[:2]
        if _shape(tok) != (DYN,) or _shape(tgt) != (DYN,):
            _fail(None, f"@{self.mode}: tokens and targets must be tensor<?xi32>")
        new_block = Block(arg_types=[IndexType()])
        self.n = new_block.args[0]
        self.n.name_hint = "n"
        self.loc[tok] = Loc(self.mod.declare("tokens", TensorType(IntegerType(32), [DYN]), "io"))
        self.loc[tgt] = Loc(self.mod.declare("targets", TensorType(IntegerType(32), [DYN]), "io"))
        self.losses = Loc(self.mod.declare("losses", TensorType(f32, [DYN]), "io"))
        return new_block

    def fresh_named(self, base: str, ty: TensorType) -> Loc:
        """A new local activation buffer of type ty named base (made unique)."""
        base = _NAME_OK.sub("_", base) or "tmp"
        name, k = base, 1
        while name in self.local_names or name in self.mod.by_name:
            k += 1
            name = f"{base}.{k}"
        self.local_names.add(name)
        self.locals.append(B.BufferOp(name, ty, "activations", _nbytes(ty, self.mod.max_tokens), ALIGN))
        return Loc(name)

    def out(self, value: SSAValue, hint: str) -> Loc:
        """The location of an op's result: pre-assigned (cache rows, io) or a new local."""
        if value not in self.loc:
            self.loc[value] = self.fresh(value, hint)
        return self.loc[value]

    def src(self, value: SSAValue, op: Operation) -> Loc:
        if value not in self.loc:
            _fail(op, "reads a value bufferize did not place")
        return self.loc[value]

    # -- calls -------------------------------------------------------------

    def call(self, kernel: str, ins: list[Loc | None], outs: list[Loc], params: dict, op: Operation) -> None:
        abi = kernel_abi.kernel(kernel)
        p = dict(params)
        in_names = []
        for i, l in enumerate(ins):
            if l is None:
                continue
            in_names.append(l.buffer)
            if l.row is not None:
                p[kernel_abi.row_param("in", i)] = l.row
        out_names = []
        for i, l in enumerate(outs):
            out_names.append(l.buffer)
            if l.row is not None:
                p[kernel_abi.row_param("out", i)] = l.row
        missing = abi.params - set(p)
        if missing:
            _fail(op, f"call {kernel} lacks params {sorted(missing)}")
        lo, hi = abi.n_ins
        if not lo <= len(in_names) <= hi or len(out_names) != abi.n_outs:
            _fail(op, f"call {kernel} has {len(in_names)} ins / {len(out_names)} outs")
        self.calls.append(B.CallOp(kernel, in_names, out_names, p))

    # -- entry -------------------------------------------------------------

    def run(self) -> func.FuncOp:
        block = self.f.body.block
        args = list(block.args)
        mode = self.mode
        # arguments: tokens [targets] [pos caches...]
        tok = args[0]
        dynamic = _shape(tok)[0] == DYN
        arg_types = ([IndexType()] if dynamic else [])
        has_pos = len(args) >= 2 and isinstance(args[1].type, IndexType)
        if has_pos:
            arg_types.append(IndexType())
        new_block = Block(arg_types=arg_types)
        nargs = list(new_block.args)
        self.n = nargs[0] if dynamic else None
        if self.n is not None:
            self.n.name_hint = "n"
        if has_pos:
            nargs[-1].name_hint = "pos"
            self.scalars[args[1]] = nargs[-1]
        self.loc[tok] = Loc(self.mod.declare("tokens", TensorType(IntegerType(32), [DYN]), "io"))
        rest = args[2:] if has_pos else args[1:]
        if not has_pos and rest:
            # train_step: targets
            self.loc[rest[0]] = Loc(self.mod.declare("targets", TensorType(IntegerType(32), [DYN]), "io"))
            rest = rest[1:]
        cfg = self.mod.cfg
        for i, a in enumerate(rest):
            if not isinstance(a.type, TensorType) or len(_shape(a)) != 2:
                _fail(None, f"@{mode} argument #{i} is not a KV cache")
            layer, kind = divmod(i, 2)
            name = f"blk.{layer}.{'kv'[kind]}_cache"
            self.loc[a] = self.mod.cache(name, a.type)

        self.lower_body(block, mode)
        new_block.add_ops([*self.locals, *self.arith, *self.calls, func.ReturnOp()])
        return func.FuncOp(mode, (arg_types, []), Region(new_block))

    def lower_body(self, block: Block, mode: str) -> None:
        """Lowers every op of ``block`` before its return, whose results must
        then be where :meth:`result_loc` puts them (the first, the logits /
        loss, in an io buffer; the rest, the caches)."""
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        self.plan_outputs(block, ret)
        for op in block.ops:
            if op is ret:
                break
            self.lower(op)
        for i, v in enumerate(ret.arguments):
            l = self.loc.get(v)
            want = self.result_loc(i, v)
            if l is None or l.buffer != want.buffer or l.row is not None:
                _fail(ret, f"result #{i} of @{mode} is not in @{want.buffer}")

    def result_loc(self, i: int, v: SSAValue) -> Loc:
        if i == 0:
            ty = v.type
            assert isinstance(ty, TensorType)
            if ty.get_shape() == ():
                return Loc(self.mod.declare("loss", ty, "io"))
            V = _shape(v)[-1]
            return Loc(self.mod.declare("logits", TensorType(f32, [DYN, V]), "io"))
        layer, kind = divmod(i - 1, 2)
        return Loc(f"blk.{layer}.{'kv'[kind]}_cache")

    def plan_outputs(self, block: Block, ret: func.ReturnOp) -> None:
        """Pre-assigns results written in place: the returned logits go to
        @logits; new K/V rows go straight into their cache at row pos."""
        if ret.arguments:
            v = ret.arguments[0]
            if isinstance(v.owner, T.TensorOp) and not isinstance(v.owner, (T.ReshapeOp, T.LastRowsOp)):
                self.loc[v] = self.result_loc(0, v)
        for op in block.ops:
            if isinstance(op, T.KVWriteOp):
                x = op.x
                producer = x.owner
                if (
                    isinstance(producer, T.TensorOp)
                    and not isinstance(producer, (T.ReshapeOp, T.LastRowsOp, T.KVWriteOp))
                    and x.has_one_use()
                    and x not in self.loc
                    and _kv_format(op.cache) == "f32"  # else kv_write converts the rows
                ):
                    self.loc[x] = Loc(self.cache_of(op.cache, op).buffer, self.scalar_pre(op.pos, op))

    def cache_of(self, v: SSAValue, op: Operation) -> Loc:
        while isinstance(v.owner, T.KVWriteOp):
            v = v.owner.cache
        if v not in self.loc:
            _fail(op, "writes a cache that is not a function argument")
        return self.loc[v]

    def scalar_pre(self, v: SSAValue, op: Operation) -> int | SSAValue:
        if v in self.scalars:
            return self.scalars[v]
        if isinstance(v.owner, arith.ConstantOp) and isinstance(v.owner.value, IntegerAttr):
            return v.owner.value.value.data
        _fail(op, "takes a position that is neither an argument nor a constant")

    # -- ops ---------------------------------------------------------------

    def lower(self, op: Operation) -> None:
        if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr):
            self.scalars[op.result] = op.value.value.data
            return
        if isinstance(op, T.WeightOp):
            self.loc[op.result] = self.mod.weight(op)
            return
        if isinstance(op, T.ConstantOp):
            self.loc[op.result] = self.mod.constant(op, op.result.name_hint or "c")
            return
        method = getattr(self, "op_" + op.name.split(".")[-1], None) if op.name.startswith("tensorop.") else None
        if method is not None:
            method(op)  # a hand-written rule (views, KV writes, saved statistics, ...)
        elif op.name in self.mod.generic:
            self.generic(op)
        else:
            _fail(op, "is not supported by bufferize")

    def rc(self, v: SSAValue) -> tuple[int | SSAValue, int]:
        shape = _shape(v)
        if len(shape) != 2:
            raise BufferizeError(f"bufferize: expected a 2-D tensor, got {v.type}")
        return self.rows(v), shape[1]

    # -- the generic rule: one kernel-ABI entry (kernel_abi.OpMap) per op ----

    def generic(self, op: Operation, kernel: str | None = None) -> None:
        """Lowers `op` to one call of the kernel whose ABI entry maps it
        (``kernel_abi.by_op``): operands -> ins, results -> outs, params from
        the op's shapes, scalar operands and properties. ``kernel``: call that
        ABI entry instead, with the op's mapping (a variant of the mapped
        kernel taking the same params: qgemm_<fmt> for gemm)."""
        k = self.mod.generic.get(op.name)
        if k is None:
            _fail(op, "has no kernel in the ABI table")
        m = k.map
        if kernel is not None:
            k = kernel_abi.kernel(kernel)
        props = op.prop_values() if hasattr(op, "prop_values") else {}
        for name, want in m.require:
            if props.get(name) != want:
                _fail(op, m.unsupported or f"needs {name} = {want} (kernel {k.name})")
        shape = getattr(op, m.shape) if m.shape else op.results[0]
        explicit = dict(m.params)

        def lookup(name: str):
            if name in explicit:
                return self.expr(explicit[name], lookup_plain, op)
            return lookup_plain(name)

        def lookup_plain(name: str):
            if name in ("rows", "cols"):
                return self.rc(shape)[name == "cols"]
            value, _, dim = name.partition(".")
            if dim:
                return _shape(getattr(op, value))[int(dim)]
            v = getattr(op, name, None) if name not in props else None
            if isinstance(v, SSAValue) and not isinstance(v.type, TensorType):
                return self.scalar_pre(v, op)
            if name in props:
                return props[name]
            _fail(op, f"gives kernel {k.name} no value for its param '{name}'")

        params = {}
        for name in k.param_order:
            v = lookup(name)
            ctype = k.param_ctype(name)
            if not isinstance(v, SSAValue) and ctype is not None:
                v = float(v) if ctype in ("float", "double") else int(v)
            params[name] = v
        ins = [self.src(v, op) for v in (getattr(op, n) for n in m.ins) if v is not None]
        hints = m.hints or (k.name,) * len(m.outs)
        outs = [self.out(getattr(op, n), h) for n, h in zip(m.outs, hints)]
        self.call(k.name, ins, outs, params, op)

    def expr(self, e, lookup, op: Operation):
        """A kernel_abi expression over `lookup`'s names; a product or a
        difference with the dynamic row count becomes an ``arith`` op."""
        if isinstance(e, str):
            return lookup(e)
        if not isinstance(e, tuple):
            return e
        if e[0] == "enum":
            value, table = self.expr(e[1], lookup, op), dict(e[2])
            if value not in table:
                _fail(op, f"has {e[1]} = {value!r}; its kernel takes {', '.join(map(repr, table))}")
            return table[value]
        o, a, b = e[0], self.expr(e[1], lookup, op), self.expr(e[2], lookup, op)
        if isinstance(a, SSAValue) or isinstance(b, SSAValue):
            if o == "*" and isinstance(b, int):
                return self.mul(a, b)
            if o == "*" and isinstance(a, int):
                return self.mul(b, a)
            if o == "-" and isinstance(b, int):
                return self.sub(a, b)
            _fail(op, f"needs {e} at run time, which bufferize cannot compute")
        return kernel_abi.eval_expr((o, a, b), {})

    # -- hand-written rules ------------------------------------------------

    def op_matmul(self, op: T.MatmulOp) -> None:
        """gemm (the generic rule) for an f32 weight; for a stored weight type
        (``!quant.*``, f16, bf16) the quantized GEMM of its format, one ABI
        entry per format (kernel_abi.QUANT_FORMATS), with gemm's mapping."""
        fmt = _stored_format(op.b)
        return self.generic(op, None if fmt == "f32" else kernel_abi.qgemm_kernel(fmt))

    def op_embedding(self, op: T.EmbeddingOp) -> None:
        ids = op.tokens
        if not isinstance(ids.owner, T.PositionsOp):
            fmt = _stored_format(op.table)   # a stored table: qembedding_<fmt>
            return self.generic(op, None if fmt == "f32" else kernel_abi.qembedding_kernel(fmt))
        # learned positions: rows pos .. pos+T-1 of the table, a view
        if op.prop_values()["scale"] not in (None, 1.0):
            _fail(op, "scaled position embeddings are not supported")
        table = self.src(op.table, op)
        if table.row is not None:
            _fail(op, "reads a sliced table")
        S = self.seq_len(ids.owner)
        if S:  # a batch: positions restart per sequence, a gather instead of a view
            if S > _shape(op.table)[0]:
                _fail(op, f"seq_len {S} exceeds the {_shape(op.table)[0]} rows of the position table")
            rows, cols = self.rc(op.result)
            ids_loc = self.positions(rows, self.scalar_pre(ids.owner.pos, op), S, op)
            self.call("embedding", [ids_loc, table], [self.out(op.result, "pos_emb")],
                      dict(rows=rows, vocab=_shape(op.table)[0], cols=cols, scale=1.0), op)
            return
        self.loc[op.result] = Loc(table.buffer, self.scalar_pre(ids.owner.pos, op))

    def op_positions(self, op: T.PositionsOp) -> None:
        for use in op.result.uses:
            if not isinstance(use.operation, T.EmbeddingOp) or use.index != 1:
                _fail(op, "is only supported as the ids of an embedding")

    def op_rope(self, op: T.RopeOp) -> None:
        if not self.seq_len(op):
            return self.generic(op)
        self.rope_ids("rope_ids", op, op.x, self.out(op.result, "rope"))

    def rope_ids(self, kernel: str, op: T.RopeOp | T.RopeGradOp, x: SSAValue, out: Loc) -> None:
        """rope / rope_grad of a batch of sequences (``seq_len``): the rows'
        positions come from the batch's positions buffer (``rope_ids`` /
        ``rope_grad_ids``), not ``pos + t`` as in the generic rule's ``rope``."""
        p = op.prop_values()
        rows, _ = self.rc(x)
        ins = [self.src(x, op), self.positions(rows, self.scalar_pre(op.pos, op), self.seq_len(op), op)]
        if op.inv_freq is not None:
            ins.append(self.src(op.inv_freq, op))
        rd = p["rotary_dim"] if p["rotary_dim"] is not None else p["head_dim"]
        self.call(kernel, ins, [out], dict(rows=rows, heads=p["heads"], head_dim=p["head_dim"], rotary_dim=rd,
                                           theta=float(p["theta"]), style=0 if p["style"] == "neox" else 1), op)

    def op_rmsnorm_qkv_rope(self, op: T.RMSNormQKVRopeOp) -> None:
        p = op.prop_values()
        rows, c = self.rc(op.x)
        bias = op.bq is not None
        ins = [self.src(v, op) for v in (op.x, op.norm_w, op.wq, op.wk, op.wv)]
        if bias:
            ins += [self.src(v, op) for v in (op.bq, op.bk, op.bv)]
        if op.inv_freq is not None:
            ins.append(self.src(op.inv_freq, op))
        # h: the normalized rows, scratch the kernel reuses for the three GEMMs
        # (named as the unfused norm output was: l0_q_rot -> l0_attn_norm)
        hint = op.q.name_hint or ""
        h = self.fresh_named(hint[: -len("_q_rot")] + "_attn_norm" if hint.endswith("_q_rot") else "qkv_norm",
                             op.x.type)
        rd = p["rotary_dim"] if p["rotary_dim"] is not None else p["head_dim"]
        self.call("rmsnorm_qkv_rope_bias" if bias else "rmsnorm_qkv_rope", ins,
                  [self.out(op.q, "q"), self.out(op.k, "k"), self.out(op.v, "v"), h],
                  dict(rows=rows, cols=c, heads=p["heads"], kv_heads=p["kv_heads"], head_dim=p["head_dim"],
                       rotary_dim=rd, pos=self.scalar_pre(op.pos, op), theta=float(p["theta"]),
                       style=0 if p["style"] == "neox" else 1, eps=float(p["eps"]), w_offset=float(p["offset"]),
                       packed=0), op)

    def op_kv_write(self, op: T.KVWriteOp) -> None:
        cache = self.cache_of(op.cache, op)
        self.loc[op.result] = cache
        pos = self.scalar_pre(op.pos, op)
        src = self.src(op.x, op)
        if src.buffer == cache.buffer and src.row is not None and (
            src.row is pos or (isinstance(src.row, int) and src.row == pos)
        ):
            return  # written in place by its producer
        rows, cols = self.rc(op.x)
        fmt = _kv_format(op.cache)
        kernel = "copy" if fmt == "f32" else f"kv_write_{fmt}"  # f16 / q8_0: convert the fp32 rows
        self.call(kernel, [src], [Loc(cache.buffer, pos)], dict(rows=rows, cols=cols), op)

    def op_causal_attention(self, op: T.CausalAttentionOp) -> None:
        p = op.prop_values()
        if p["head_dim"] > ATTN_MAX_HEAD_DIM:
            # The kernels keep a head's tiles on the stack; refuse here rather
            # than compile a model whose first call fails.
            _fail(op, f"head_dim {p['head_dim']} exceeds the attention kernels' limit of "
                      f"{ATTN_MAX_HEAD_DIM} (CK_ATTN_MAX_HEAD_DIM in kernels/include/ckernels.h)")
        rows, _ = self.rc(op.q)
        attrs = dict(heads=p["heads"], kv_heads=p["kv_heads"], head_dim=p["head_dim"], window=p["window"],
                     scale=float(p["scale"]), softcap=float(p["softcap"]))
        ins = [self.src(op.q, op), self.src(op.k, op), self.src(op.v, op)]
        for l in ins[1:]:
            if l.row is not None:
                _fail(op, "reads K/V at a row offset")
        out = [self.out(op.result, "attn")]
        # a cache stored in f16 / q8_0 has its own kernels (attention_kvf16, ...)
        kv = "" if op.pos is None or _kv_format(op.k) == "f32" else "_kv" + _kv_format(op.k)
        S = self.seq_len(op)
        if S:
            self.call("attention_seq", ins, out, dict(rows=rows, seq_len=S, **attrs), op)
        elif op.pos is None:
            self.call("attention", ins, out, dict(rows=rows, pos=0, **attrs), op)
        elif rows == 1:
            self.call("attention_decode" + kv, ins, out, dict(pos=self.scalar_pre(op.pos, op), **attrs), op)
        else:
            self.call("attention" + kv, ins, out, dict(rows=rows, pos=self.scalar_pre(op.pos, op), **attrs), op)

    def op_reshape(self, op: T.ReshapeOp) -> None:
        src = self.src(op.x, op)
        if src.row is not None:
            _fail(op, "reshapes a row view")
        self.loc[op.result] = src

    def op_last_rows(self, op: T.LastRowsOp) -> None:
        src = self.src(op.x, op)
        if src.row is not None:
            _fail(op, "takes rows of a row view")
        count = op.prop_values()["count"]
        rows = self.rows(op.x)
        self.loc[op.result] = Loc(src.buffer, self.sub(rows, count) if rows != count else None)


# ---------------------------------------------------------------------------
# slot-batched decode: @decode_batch (lower-transformer{modes=decode_batch slots=N})
# ---------------------------------------------------------------------------

BATCH_FUNCTION = "decode_batch"


class _BatchFunction(_Function):
    """Bufferizes ``@decode_batch(%tokens, %slots, %positions, %out_rows, slot
    caches...)`` into ``@decode_batch(%n: index, %m: index)``: n rows of
    different sequences, row i in cache slot ``slots[i]`` at position
    ``positions[i]``; the logits of the m rows ``out_rows`` go to ``@logits``.
    ``slots``, ``positions`` and ``out_rows`` become the ``io`` buffers
    ``@slots`` / ``@positions`` / ``@out_rows`` (``tensor<?xi32>``, the
    caller's memory like ``@tokens``); each slot cache ``[S, context, W]`` is
    the layer's one cache buffer ``[S * context, W]`` (``_Module.cache``), so
    the single-sequence functions work on slot 0. Values after
    ``gather_rows`` have m rows, all others n."""

    def run(self) -> func.FuncOp:
        block = self.f.body.block
        args = list(block.args)
        if len(args) < 4 or any(_shape(a) != (DYN,) for a in args[:4]):
            _fail(None, f"@{self.mode} must take (tokens, slots, positions, out_rows: tensor<?xi32>, caches...)")
        new_block = Block(arg_types=[IndexType(), IndexType()])
        self.n, self.m = new_block.args
        self.n.name_hint, self.m.name_hint = "n", "m"
        self.m_values: set[SSAValue] = set()
        ids = TensorType(IntegerType(32), [DYN])
        for a, name in zip(args[:4], ("tokens", "slots", "positions", "out_rows")):
            self.loc[a] = Loc(self.mod.declare(name, ids, "io"))
        for op in block.ops:  # the rows after the gather: m of them
            if isinstance(op, T.GatherRowsOp) or (
                not isinstance(op, func.ReturnOp) and any(o in self.m_values for o in op.operands)
            ):
                self.m_values.update(op.results)
        for i, a in enumerate(args[4:]):
            if not isinstance(a.type, TensorType) or len(_shape(a)) != 3:
                _fail(None, f"@{self.mode} argument #{i + 4} is not a slot cache [slots, context, W]")
            layer, kind = divmod(i, 2)
            self.loc[a] = self.mod.cache(f"blk.{layer}.{'kv'[kind]}_cache", a.type)
        self.lower_body(block, self.mode)
        new_block.add_ops([*self.locals, *self.arith, *self.calls, func.ReturnOp()])
        return func.FuncOp(self.mode, ([IndexType(), IndexType()], []), Region(new_block))

    def rows(self, value: SSAValue) -> int | SSAValue:
        if _shape(value)[0] == DYN and value in self.m_values:
            return self.m
        return super().rows(value)

    def op_gather_rows(self, op: T.GatherRowsOp) -> None:
        """A row gather is the embedding kernel with x as the table (n rows)."""
        rows, cols = self.rc(op.result)
        self.call("embedding", [self.src(op.rows, op), self.src(op.x, op)], [self.out(op.result, "rows")],
                  dict(rows=rows, vocab=self.rows(op.x), cols=cols, scale=1.0), op)

    def slot_cache(self, v: SSAValue, op: Operation) -> Loc:
        while isinstance(v.owner, T.KVScatterOp):
            v = v.owner.cache
        if v not in self.loc:
            _fail(op, "writes a cache that is not a function argument")
        return self.loc[v]

    def op_rope_rows(self, op: T.RopeRowsOp) -> None:
        p = op.prop_values()
        rows, _ = self.rc(op.x)
        ins = [self.src(op.x, op), self.src(op.positions, op)]
        if op.inv_freq is not None:
            ins.append(self.src(op.inv_freq, op))
        rd = p["rotary_dim"] if p["rotary_dim"] is not None else p["head_dim"]
        self.call("rope_rows", ins, [self.out(op.result, "rope")],
                  dict(rows=rows, heads=p["heads"], head_dim=p["head_dim"], rotary_dim=rd,
                       theta=float(p["theta"]), style=0 if p["style"] == "neox" else 1), op)

    def op_kv_scatter(self, op: T.KVScatterOp) -> None:
        cache = self.slot_cache(op.cache, op)
        self.loc[op.result] = cache
        S, ctx, W = _shape(op.cache)
        rows, _ = self.rc(op.x)
        self.call("kv_scatter", [self.src(op.x, op), self.src(op.slots, op), self.src(op.positions, op)],
                  [cache], dict(rows=rows, cols=W, slots=S, context=ctx), op)

    def op_slot_attention(self, op: T.SlotAttentionOp) -> None:
        p = op.prop_values()
        if p["head_dim"] > ATTN_MAX_HEAD_DIM:
            _fail(op, f"head_dim {p['head_dim']} exceeds the attention kernels' limit of "
                      f"{ATTN_MAX_HEAD_DIM} (CK_ATTN_MAX_HEAD_DIM in kernels/include/ckernels.h)")
        S, ctx, _ = _shape(op.k)
        rows, _ = self.rc(op.q)
        ins = [self.src(v, op) for v in (op.q, op.k, op.v, op.slots, op.positions)]
        self.call("slot_attention", ins, [self.out(op.result, "attn")],
                  dict(rows=rows, slots=S, context=ctx, heads=p["heads"], kv_heads=p["kv_heads"],
                       head_dim=p["head_dim"], window=p["window"], scale=float(p["scale"]),
                       softcap=float(p["softcap"])), op)


# ---------------------------------------------------------------------------
# training: a differentiated @train_step (the output of `autodiff`)
# ---------------------------------------------------------------------------

GRAD_PREFIX = "grad."
ACC_DW, ACC_DB = 2, 4  # CK_GEMM_ACC_DW, CK_GEMM_ACC_DB


def _is_differentiated(f: func.FuncOp) -> bool:
    from ckc.passes.autodiff import GRAD_ATTR

    attrs = f.res_attrs.data if f.res_attrs is not None else ()
    return any(GRAD_ATTR in d.data for d in attrs)


class _TrainFunction(_Function):
    """Bufferizes a differentiated ``@train_step(%tokens, %targets) -> (loss,
    grads...)`` into ``@train_step(%n: index)``:

    - every gradient result goes to the module-level ``grads`` buffer
      ``@"grad.<tensor>"`` (the stored tensor's shape; a row slice of a fused
      tensor at its row offset). Parameter-gradient kernels ACCUMULATE (+=)
      into it, so a `tensorop.accumulate` of two contributions to the same
      gradient is no call at all, and calling @train_step k times sums k
      micro-batches: the runtime zeroes ``grads`` once per optimizer step;
    - the loss: `cross_entropy_fused` writes per-row losses to the ``io``
      buffer ``@losses`` (``tensor<?xf32>``) and ``dlogits`` (in place over
      the logits when nothing else reads them) scaled by the
      compute function's runtime ``grad_scale`` parameter (kernel_abi role
      ``func``; 1/k for k micro-batches); the runtime averages
      the losses over the valid targets;
    - forward `rmsnorm` / `layernorm` / `causal_attention` whose gradient op
      follows save what the backward kernel reads (rstd; mean and rstd; lse)
      in activation buffers ``<result>.rstd`` / ``.mean`` / ``.lse`` (their
      ``*_train`` kernels); the grad op reads them and the forward result;
    - activation gradients are fresh activation buffers (plan-memory reuses
      their memory by lifetime), an accumulate of two of them adds the second
      into the first in place (`axpy`) when the first has no other use.
    """

    def run(self) -> func.FuncOp:
        from ckc.passes.autodiff import grad_units

        from ckc.passes.autodiff import GRAD_ATTR

        block = self.f.body.block
        # add-optimizer's accumulators: (tokens, targets, acc...) with tensorop.grad argument
        # attributes; each is its gradient's grads buffer (updated in place)
        arg_attrs = [a.data for a in self.f.arg_attrs.data] if self.f.arg_attrs is not None else []
        accs = [(a, d) for a, d in zip(list(block.args)[2:], arg_attrs[2:]) if GRAD_ATTR in d]
        new_block = self.bind_loss_io(block, "a differentiated function", extra=len(accs))
        self.saved: dict[Operation, dict[str, Loc]] = {}
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        units = grad_units(self.f)
        if len(units) != len(ret.arguments) - 1:
            _fail(ret, f"@{self.mode}: {len(ret.arguments) - 1} gradient results but {len(units)} grad attributes")
        # gradient results -> grads buffers (through accumulate chains)
        self.grad_loc: dict[SSAValue, Loc] = {}
        fallback: dict[str, tuple[int, ...]] = {}  # without a config: rows covered by the units
        for (name, off), v in zip(units, ret.arguments[1:]):
            sh = _shape(v)
            prev = fallback.get(name)
            if prev is not None and prev[1:] != sh[1:]:
                _fail(ret, f"gradients of '{name}' with shapes {list(prev)} and {list(sh)}")
            fallback[name] = (max(off + sh[0], prev[0] if prev else 0), *sh[1:])
        for (name, off), v in zip(units, ret.arguments[1:]):
            full = self.mod.known_shapes.get(name) or fallback[name]
            gname = self.mod.declare(GRAD_PREFIX + name, TensorType(f32, list(full)), "grads")
            self.place_grad(v, Loc(gname, off or None), ret)
        for a, _ in accs:
            if a not in self.loc or self.loc[a].buffer not in self.mod.by_name:
                _fail(ret, f"@{self.mode}: gradient accumulator argument #{a.index} is not accumulated "
                           "into a returned gradient")
        for op in block.ops:
            if op is ret:
                break
            self.lower(op)
        loss = ret.arguments[0]
        if not isinstance(loss.owner, T.CrossEntropyFusedOp) or loss is not loss.owner.loss:
            _fail(ret, f"@{self.mode}: the loss must come from cross_entropy_fused")
        new_block.add_ops([*self.locals, *self.arith, *self.calls, func.ReturnOp()])
        return func.FuncOp(self.mode, ([IndexType()], []), Region(new_block))

    def place_grad(self, v: SSAValue, loc: Loc, where: Operation) -> None:
        if v in self.grad_loc:
            old = self.grad_loc[v]
            if (old.buffer, old.row) != (loc.buffer, loc.row):
                _fail(where, f"a gradient is returned as @{old.buffer} and as @{loc.buffer}")
            return
        self.grad_loc[v] = loc
        self.loc[v] = loc
        if isinstance(v.owner, T.AccumulateOp):
            self.place_grad(v.owner.acc, loc, where)
            self.place_grad(v.owner.x, loc, where)

    def in_grads(self, v: SSAValue) -> bool:
        return v in self.grad_loc

    def forward_of(self, op: Operation, cls, operands: tuple[SSAValue, ...]) -> Operation:
        first = operands[0]
        for use in first.uses:
            f = use.operation
            if isinstance(f, cls) and tuple(f.operands[: len(operands)]) == operands:
                return f
        _fail(op, f"finds no forward {cls.name} with the same operands (recompute clones are not supported yet)")

    def needs_grad(self, op: Operation, grad_cls, operands: tuple[SSAValue, ...]) -> bool:
        for use in operands[0].uses:
            g = use.operation
            if isinstance(g, grad_cls) and tuple(g.operands[1 : 1 + len(operands)]) == operands:
                return True
        return False

    def saved_buf(self, op: Operation, what: str, cols: int) -> Loc:
        """A [rows, cols] activation buffer ``<result>.<what>`` the forward
        `op` saves for its gradient op."""
        base = f"{_NAME_OK.sub('_', op.results[0].name_hint or 'saved')}.{what}"
        name, k = base, 1
        while name in self.local_names or name in self.mod.by_name:
            k += 1
            name = f"{base}{k}"
        self.local_names.add(name)
        ty = TensorType(f32, [DYN, cols])
        self.locals.append(B.BufferOp(name, ty, "activations", _nbytes(ty, self.mod.max_tokens), ALIGN))
        return Loc(name)

    # -- forward ops that save for the backward -------------------------------

    def op_rmsnorm(self, op: T.RMSNormOp) -> None:
        if not self.needs_grad(op, T.RMSNormGradOp, (op.x, op.w)):
            return self.generic(op)
        p = op.prop_values()
        rows, c = self.rc(op.x)
        (d,) = _shape(op.w)
        rstd = self.saved_buf(op, "rstd", c // d)
        self.saved[op] = {"rstd": rstd}
        self.call("rmsnorm_train", [self.src(op.x, op), self.src(op.w, op)], [self.out(op.result, "norm"), rstd],
                  dict(rows=self.mul(rows, c // d), cols=d, eps=float(p["eps"]), w_offset=float(p["offset"])), op)

    def op_layernorm(self, op: T.LayerNormOp) -> None:
        if not self.needs_grad(op, T.LayerNormGradOp, (op.x, op.w)):
            return self.generic(op)
        p = op.prop_values()
        rows, c = self.rc(op.x)
        ins = [self.src(op.x, op), self.src(op.w, op)]
        if op.bias is not None:
            ins.append(self.src(op.bias, op))
        mean, rstd = self.saved_buf(op, "mean", 1), self.saved_buf(op, "rstd", 1)
        self.saved[op] = {"mean": mean, "rstd": rstd}
        self.call("layernorm_train", ins, [self.out(op.result, "norm"), mean, rstd],
                  dict(rows=rows, cols=c, eps=float(p["eps"]), w_offset=float(p["offset"])), op)

    def _attn_attrs(self, p) -> dict:
        return dict(heads=p["heads"], kv_heads=p["kv_heads"], head_dim=p["head_dim"], window=p["window"],
                    scale=float(p["scale"]), softcap=float(p["softcap"]))

    def op_causal_attention(self, op: T.CausalAttentionOp) -> None:
        if op.pos is not None or not self.needs_grad(op, T.CausalAttentionGradOp, (op.q, op.k, op.v)):
            return super().op_causal_attention(op)
        p = op.prop_values()
        rows, _ = self.rc(op.q)
        lse = self.saved_buf(op, "lse", p["heads"])
        self.saved[op] = {"lse": lse}
        ins = [self.src(op.q, op), self.src(op.k, op), self.src(op.v, op)]
        S = self.seq_len(op)
        self.call("attention_train_seq" if S else "attention_train", ins, [self.out(op.result, "attn"), lse],
                  dict(rows=rows, **(dict(seq_len=S) if S else dict(pos=0)), **self._attn_attrs(p)), op)

    def op_cross_entropy_fused(self, op: T.CrossEntropyFusedOp) -> None:
        rows, cols = self.rc(op.logits)
        p = op.prop_values()
        if float(p["grad_scale"]) != 1.0:
            _fail(op, "has a compile-time grad_scale; the compiled train step scales at run time")
        self.loc[op.loss] = self.losses
        logits = self.src(op.logits, op)
        if (op.dlogits not in self.loc and op.logits.has_one_use() and logits.row is None
                and logits.buffer not in self.mod.by_name):
            # the logits die here: dlogits overwrite them in place (the kernel
            # allows dlogits == logits), one [T, vocab] activation fewer
            self.loc[op.dlogits] = logits
        self.call("cross_entropy_fused", [logits, self.src(op.targets, op)],
                  [self.out(op.dlogits, "dlogits"), self.losses],
                  dict(rows=rows, cols=cols, ignore_index=p["ignore_index"]), op)

    # -- backward ops -------------------------------------------------------

    def op_matmul_grad(self, op: T.MatmulGradOp) -> None:
        p = op.prop_values()
        if p["transpose_a"] or not p["transpose_b"]:
            _fail(op, "only the gradient of x . W^T (transpose_b) is supported")
        rows, k = self.rc(op.a)
        n = _shape(op.b)[0]
        flags = ACC_DW if self.in_grads(op.db) else 0
        outs = [self.out(op.da, "dx"), self.out(op.db, "dw")]
        kern = "gemm_grad"
        if op.dbias is not None:
            kern = "gemm_grad_bias"
            outs.append(self.out(op.dbias, "db"))
            flags |= ACC_DB if self.in_grads(op.dbias) else 0
            if self.in_grads(op.db) != self.in_grads(op.dbias):
                _fail(op, "weight and bias gradients must both be returned")
        elif not self.in_grads(op.db):
            _fail(op, "computes a weight gradient that is not returned")
        self.call(kern, [self.src(op.dy, op), self.src(op.a, op), self.src(op.b, op)], outs,
                  dict(rows=rows, n=n, k=k, flags=flags), op)

    def op_rmsnorm_grad(self, op: T.RMSNormGradOp) -> None:
        fwd = self.forward_of(op, T.RMSNormOp, (op.x, op.w))
        p = fwd.prop_values()
        rows, c = self.rc(op.x)
        (d,) = _shape(op.w)
        if not self.in_grads(op.dw):
            _fail(op, "computes a weight gradient that is not returned")
        self.call("rmsnorm_grad",
                  [self.src(op.dy, op), self.src(op.x, op), self.src(op.w, op), self.saved[fwd]["rstd"]],
                  [self.out(op.dx, "dx"), self.out(op.dw, "dw")],
                  dict(rows=self.mul(rows, c // d), cols=d, w_offset=float(p["offset"])), op)

    def op_layernorm_grad(self, op: T.LayerNormGradOp) -> None:
        fwd = self.forward_of(op, T.LayerNormOp, (op.x, op.w))
        p = fwd.prop_values()
        rows, c = self.rc(op.x)
        if not self.in_grads(op.dw):
            _fail(op, "computes a weight gradient that is not returned")
        if fwd.bias is not None and not self.in_grads(op.db):
            _fail(op, "computes a bias gradient that is not returned")
        sv = self.saved[fwd]
        self.call("layernorm_grad",
                  [self.src(op.dy, op), self.src(op.x, op), self.src(op.w, op), sv["mean"], sv["rstd"]],
                  [self.out(op.dx, "dx"), self.out(op.dw, "dw"), self.out(op.db, "db")],
                  dict(rows=rows, cols=c, w_offset=float(p["offset"])), op)

    def op_rope_grad(self, op: T.RopeGradOp) -> None:
        if not self.seq_len(op):
            return self.generic(op)
        self.rope_ids("rope_grad_ids", op, op.dy, self.out(op.result, "drope"))

    def op_causal_attention_grad(self, op: T.CausalAttentionGradOp) -> None:
        fwd = self.forward_of(op, T.CausalAttentionOp, (op.q, op.k, op.v))
        p = op.prop_values()
        rows, _ = self.rc(op.q)
        ins = [self.src(op.q, op), self.src(op.k, op), self.src(op.v, op), self.src(fwd.result, op),
               self.src(op.dout, op), self.saved[fwd]["lse"]]
        S = self.seq_len(op)
        self.call("attention_grad_seq" if S else "attention_grad", ins,
                  [self.out(op.dq, "dq"), self.out(op.dk, "dk"), self.out(op.dv, "dv")],
                  dict(rows=rows, **(dict(seq_len=S) if S else dict(pos=0)), **self._attn_attrs(p)), op)

    def op_positions(self, op: T.PositionsOp) -> None:
        for use in op.result.uses:
            ok = isinstance(use.operation, T.EmbeddingOp) and use.index == 1
            ok = ok or (isinstance(use.operation, T.EmbeddingGradOp) and use.index == 1)
            if not ok:
                _fail(op, "is only supported as the ids of an embedding or its gradient")

    def op_embedding_grad(self, op: T.EmbeddingGradOp) -> None:
        p = op.prop_values()
        scale = float(p["scale"] if p["scale"] is not None else 1.0)
        if not self.in_grads(op.result):
            _fail(op, "computes a table gradient that is not returned")
        dst = self.loc[op.result]
        rows, cols = self.rc(op.dy)
        ids = op.tokens
        if isinstance(ids.owner, T.PositionsOp):
            # learned positions: rows pos.. of the table get dy (a view, as the forward)
            if dst.row is not None:
                _fail(op, "writes a sliced position table")
            S = self.seq_len(ids.owner)
            if S:  # a batch: every sequence's rows scatter-add into positions 0..S-1
                ids_loc = self.positions(rows, self.scalar_pre(ids.owner.pos, op), S, op)
                self.call("embedding_grad", [ids_loc, self.src(op.dy, op)], [dst],
                          dict(rows=rows, vocab=p["vocab"], cols=cols, scale=scale), op)
                return
            self.call("axpy", [self.src(op.dy, op)], [Loc(dst.buffer, self.scalar_pre(ids.owner.pos, op))],
                      dict(rows=rows, cols=cols, a=scale), op)
            return
        self.call("embedding_grad", [self.src(ids, op), self.src(op.dy, op)], [dst],
                  dict(rows=rows, vocab=p["vocab"], cols=cols, scale=scale), op)

    def op_accumulate(self, op: T.AccumulateOp) -> None:
        if self.in_grads(op.result):
            for v in (op.acc, op.x):
                l = self.loc.get(v)
                r = self.grad_loc[op.result]
                if l is None or (l.buffer, l.row) != (r.buffer, r.row):
                    _fail(op, "accumulates a gradient that is not in its grads buffer")
            return  # both contributions were accumulated (+=) into the grads buffer
        acc, x = self.src(op.acc, op), self.src(op.x, op)
        rows, cols = self.rc(op.result)
        if op.acc.has_one_use() and acc.row is None and acc.buffer not in self.mod.by_name:
            self.loc[op.result] = acc
            self.call("axpy", [x], [acc], dict(rows=rows, cols=cols, a=1.0), op)
        else:
            self.call("add", [acc, x], [self.out(op.result, "acc")], dict(rows=rows, cols=cols), op)


# ---------------------------------------------------------------------------
# training: add-optimizer's @optimizer_step and @zero_grads
# ---------------------------------------------------------------------------

OPTIMIZER_FUNCTION, ZERO_FUNCTION = "optimizer_step", "zero_grads"
ADAM_PREFIX = {"adam_m": "adam_m.", "adam_v": "adam_v."}
COVERS_ATTR = B.COVERS_ATTR


def _flat(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of a parameter tensor: dim 0, and the rest flattened (1 for a vector)."""
    cols = 1
    for d in shape[1:]:
        cols *= d
    return shape[0], cols


class _OptLayout:
    """The llm.c-style layout of the trained tensors, read from @optimizer_step
    before any function is bufferized (every function uses it).

    Each `adamw_update` names a parameter unit (tensor, row offset). Tensors
    whose units tile them whole and share the update's hyperparameters form a
    *group* (matrices with weight decay, vectors without: two groups with
    add-optimizer's one decay rule); a group's tensors are laid out one after
    another, in the same order, in the weights, grads, adam_m and adam_v
    regions, and four alias buffers (``params.<group>``, ``grads.<group>``,
    ``adam_m.<group>``, ``adam_v.<group>``; attribute ``covers`` = their first
    and last member) span them, so one `adamw_coef` call updates the group.
    ``grads.all`` spans every gradient (one `clip_norm` call, one `zero`
    call). Tensors whose units do not tile them come after the groups and get
    one call per unit."""

    def __init__(self, mod: _Module, f: func.FuncOp):
        self.full: dict[str, tuple[int, ...]] = {}
        units: dict[str, list[tuple[int, int, tuple]]] = {}
        for op in f.walk():
            if not isinstance(op, T.AdamWUpdateOp):
                continue
            w = op.param.owner
            if not isinstance(w, T.WeightOp):
                _fail(op, "updates a value that is not a tensorop.weight")
            name, off = w.tensor_name.data, w.offset.value.data
            shape = _shape(op.param)
            p = op.prop_values()
            key = (float(p["weight_decay"]), float(p["beta1"]), float(p["beta2"]), float(p["eps"]),
                   isinstance(op.grad.owner, T.ClipByNormOp))
            units.setdefault(name, []).append((off, shape[0], key))
            full = mod.known_shapes.get(name)
            if full is None:
                prev = self.full.get(name)
                full = (max(off + shape[0], prev[0] if prev else 0), *shape[1:])
            self.full[name] = tuple(full)
        self.groups: list[tuple[tuple, list[str]]] = []  # (key, tensors)
        self.rest: list[str] = []
        for name, us in units.items():
            keys = {k for _, _, k in us}
            spans = sorted((o, o + r) for o, r, _ in us)
            tiles = spans[0][0] == 0 and spans[-1][1] == self.full[name][0] and all(
                a[1] == b[0] for a, b in zip(spans, spans[1:]))
            if len(keys) != 1 or not tiles:
                self.rest.append(name)
                continue
            key = keys.pop()
            for k, names in self.groups:
                if k == key:
                    names.append(name)
                    break
            else:
                self.groups.append((key, [name]))
        # matrices (decayed) first, then the rest, each in the order of the units
        self.groups.sort(key=lambda g: -g[0][0])
        self.order = [n for _, names in self.groups for n in names] + self.rest
        self.grouped = {n for _, names in self.groups for n in names}

    def group_tag(self, i: int) -> str:
        wds = [k[0] for k, _ in self.groups]
        if len(set(wds)) == len(wds):
            return "decay" if wds[i] > 0 else "no_decay"
        return f"group{i}"

    def floats(self, names: list[str]) -> int:
        """Floats spanned by these tensors laid out one after another, each 64-byte aligned
        (plan-memory checks the alias it sizes)."""
        n = 0
        for i, name in enumerate(names):
            size = 4
            for d in self.full[name]:
                size *= d
            n += size if i == len(names) - 1 else (size + ALIGN - 1) // ALIGN * ALIGN
        return n // 4


class _OptFunction(_Function):
    """Bufferizes ``@optimizer_step(%lr: f32, %step: index, g..., m..., v...)``
    into ``@optimizer_step(%lr: f32, %step: index)`` (both reach the kernels as
    the C function's parameters, kernel_abi role ``func``):

    - the ``tensorop.grad`` operands are the ``grads`` buffers, ``tensorop.adam_m``
      / ``adam_v`` the module-level ``@"adam_m.<tensor>"`` / ``@"adam_v.<tensor>"``
      in the regions of the same names, ``tensorop.weight`` the weights: every
      result is written in place (checked against the result attributes);
    - `scale` (micro-batch mean) scales a gradient in place;
    - `global_norm` of every gradient is one `clip_norm` call over ``@grads.all``
      writing the norm to the ``io`` buffer ``@grad_norm`` (the caller's float)
      and the clip coefficient (min(1, max_norm/(norm+1e-6)) of the
      `clip_by_norm` ops reading it, 1 without) to a local ``@clip_coef``;
    - `clip_by_norm` is no call: the coefficient scales the gradient inside AdamW;
    - `adamw_update`s become one `adamw_coef` call per group of the layout
      (_OptLayout) over the four aliases, and one per unit for the rest.
    """

    def run(self) -> func.FuncOp:
        from ckc.passes.add_optimizer import ADAM_M_ATTR, ADAM_V_ATTR, NORM_ATTR, PARAM_ATTR
        from ckc.passes.autodiff import GRAD_ATTR, OFFSET_ATTR

        block = self.f.body.block
        args = list(block.args)
        if len(args) < 2 or not isinstance(args[1].type, IndexType):
            _fail(None, f"@{self.mode}: expected (%lr: f32, %step: index, gradients, m, v)")
        new_block = Block(arg_types=[f32, IndexType()])
        new_block.args[0].name_hint, new_block.args[1].name_hint = "lr", "step"
        attrs = [a.data for a in self.f.arg_attrs.data] if self.f.arg_attrs is not None else [{}] * len(args)
        region_of = {GRAD_ATTR: "grads", ADAM_M_ATTR: "adam_m", ADAM_V_ATTR: "adam_v"}
        for a, d in zip(args[2:], attrs[2:]):
            kind = next((k for k in region_of if k in d), None)
            if kind is None:
                _fail(None, f"@{self.mode}: argument #{a.index} carries no tensorop.grad / adam_m / adam_v")
            name = d[kind].data
            off = d[OFFSET_ATTR].value.data if OFFSET_ATTR in d else 0
            self.loc[a] = self.state_loc(region_of[kind], name, off)
        self.coef: Loc | None = None
        self.clipped: set[SSAValue] = set()
        self.updates: list[T.AdamWUpdateOp] = []
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        for op in block.ops:
            if op is ret:
                break
            self.lower(op)
        self.emit_updates()
        res_attrs = [a.data for a in self.f.res_attrs.data] if self.f.res_attrs is not None else []
        for i, (v, d) in enumerate(zip(ret.arguments, res_attrs)):
            if NORM_ATTR in d:
                want = Loc("grad_norm")
            else:
                kind = next((k for k in (PARAM_ATTR, ADAM_M_ATTR, ADAM_V_ATTR) if k in d), None)
                if kind is None:
                    _fail(ret, f"@{self.mode}: result #{i} carries no tensorop.param / adam_m / adam_v / grad_norm")
                off = d[OFFSET_ATTR].value.data if OFFSET_ATTR in d else 0
                name = d[kind].data
                want = Loc(name, off or None) if kind == PARAM_ATTR else self.state_loc(
                    "adam_m" if kind == ADAM_M_ATTR else "adam_v", name, off)
            got = self.loc.get(v)
            if got is None or (got.buffer, got.row) != (want.buffer, want.row):
                _fail(ret, f"result #{i} of @{self.mode} is not written in place into @{want.buffer}")
        new_block.add_ops([*self.locals, *self.arith, *self.calls, func.ReturnOp()])
        return func.FuncOp(self.mode, ([f32, IndexType()], []), Region(new_block))

    def state_loc(self, region: str, name: str, off: int) -> Loc:
        full = self.mod.layout.full.get(name) if self.mod.layout is not None else None
        if full is None:
            _fail(None, f"@{self.mode}: optimizer state of '{name}', a tensor no adamw_update updates")
        prefix = GRAD_PREFIX if region == "grads" else ADAM_PREFIX[region]
        return Loc(self.mod.declare(prefix + name, TensorType(f32, list(full)), region), off or None)

    def unit(self, v: SSAValue, op: Operation) -> tuple[Loc, int, int]:
        """(location, rows, cols) of a parameter-shaped value."""
        rows, cols = _flat(_shape(v))
        return self.src(v, op), rows, cols

    def op_scale(self, op: T.ScaleOp) -> None:
        loc, rows, cols = self.unit(op.x, op)
        if loc.buffer not in self.mod.by_name or self.mod.by_name[loc.buffer].region.data != "grads":
            _fail(op, "scales a value that is not a gradient")
        self.loc[op.result] = loc
        self.call("scale", [loc], [loc], dict(rows=rows, cols=cols, factor=float(op.prop_values()["factor"])), op)

    def op_global_norm(self, op: T.GlobalNormOp) -> None:
        names = set()
        for g in op.grads:
            loc = self.src(g, op)
            names.add(loc.buffer)
        grads = {b.buffer_name for b in self.mod.ops if b.region.data == "grads" and COVERS_ATTR not in b.attributes}
        if names != grads:
            _fail(op, "must take every gradient (the norm is one call over the gradient block)")
        max_norms = {float(u.operation.prop_values()["max_norm"]) for u in op.result.uses
                     if isinstance(u.operation, T.ClipByNormOp)}
        if len(max_norms) > 1:
            _fail(op, f"is clipped with different max_norm values {sorted(max_norms)}")
        self.loc[op.result] = Loc(self.mod.declare("grad_norm", TensorType(f32, []), "io"))
        self.coef = self.fresh_named("clip_coef", TensorType(f32, [1]))
        self.call("clip_norm", [Loc(self.mod.grads_all())], [self.loc[op.result], self.coef],
                  dict(n=self.mod.layout.floats(self.mod.layout.order), max_norm=max_norms.pop() if max_norms else 0.0),
                  op)

    def op_clip_by_norm(self, op: T.ClipByNormOp) -> None:
        if self.coef is None or self.loc.get(op.norm) != Loc("grad_norm"):
            _fail(op, "clips by a norm that is not the global_norm of the gradients")
        self.loc[op.result] = self.src(op.g, op)
        self.clipped.add(op.result)

    def op_adamw_update(self, op: T.AdamWUpdateOp) -> None:
        if op.lr is not self.f.body.block.args[0] or op.step is not self.f.body.block.args[1]:
            _fail(op, "takes an lr or step that is not the function's %lr / %step argument")
        for v in (op.param, op.grad, op.m, op.v):
            self.src(v, op)
        self.loc[op.new_param] = self.loc[op.param]
        self.loc[op.new_m] = self.loc[op.m]
        self.loc[op.new_v] = self.loc[op.v]
        self.updates.append(op)

    def emit_updates(self) -> None:
        lay = self.mod.layout
        done: set[str] = set()
        for i, (key, names) in enumerate(lay.groups):
            wd, b1, b2, eps, clipped = key
            tag = lay.group_tag(i)
            n = lay.floats(names)
            ins = [Loc(self.mod.alias("grads", "grads." + tag, names, n))]
            if clipped:
                ins.append(self.coef)
            outs = [Loc(self.mod.alias("weights", "params." + tag, names, n)),
                    Loc(self.mod.alias("adam_m", "adam_m." + tag, names, n)),
                    Loc(self.mod.alias("adam_v", "adam_v." + tag, names, n))]
            self.call("adamw_coef", ins, outs, dict(n=n, beta1=b1, beta2=b2, eps=eps, weight_decay=wd), None)
            done |= set(names)
        for op in self.updates:
            name = op.param.owner.tensor_name.data
            if name in done:
                continue
            p = op.prop_values()
            loc_w, rows, cols = self.unit(op.param, op)
            ins = [self.src(op.grad, op)]
            if op.grad in self.clipped:
                ins.append(self.coef)
            self.call("adamw_coef", ins, [loc_w, self.src(op.m, op), self.src(op.v, op)],
                      dict(n=rows * cols, beta1=float(p["beta1"]), beta2=float(p["beta2"]), eps=float(p["eps"]),
                           weight_decay=float(p["weight_decay"])), op)


class _ZeroFunction(_Function):
    """Bufferizes ``@zero_grads() -> (zeros... {tensorop.grad})``: the results
    are the ``grads`` buffers; when they cover every gradient whole, one `zero`
    call over ``@grads.all``, else one per unit."""

    def run(self) -> func.FuncOp:
        from ckc.passes.autodiff import grad_units

        block = self.f.body.block
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        units = grad_units(self.f)
        if len(units) != len(ret.arguments):
            _fail(ret, f"@{self.mode}: every result must carry tensorop.grad")
        lay = self.mod.layout
        zeros = []
        for (name, off), v in zip(units, ret.arguments):
            if not isinstance(v.owner, T.ZerosOp):
                _fail(ret, f"@{self.mode}: result for '{name}' is not a tensorop.zeros")
            if GRAD_PREFIX + name not in self.mod.by_name:
                _fail(ret, f"@{self.mode}: '{name}' has no gradient buffer (no differentiated @train_step)")
            self.loc[v] = Loc(GRAD_PREFIX + name, off or None)
            zeros.append((name, off, v))
        whole = lay is not None and {n for n, _, _ in zeros} == set(lay.order) and all(
            n in lay.grouped for n, _, _ in zeros)
        if whole:
            n = lay.floats(lay.order)
            self.call("zero", [], [Loc(self.mod.grads_all())], dict(n=n), ret)
        else:
            for name, off, v in zeros:
                rows, cols = _flat(_shape(v))
                self.call("zero", [], [self.loc[v]], dict(n=rows * cols), v.owner)
        new_block = Block()
        new_block.add_ops([*self.locals, *self.arith, *self.calls, func.ReturnOp()])
        return func.FuncOp(self.mode, ([], []), Region(new_block))


# ---------------------------------------------------------------------------
# training: the forward-only loss of the training library (@eval_loss)
# ---------------------------------------------------------------------------

LOSS_FUNCTION = "eval_loss"


class _LossFunction(_Function):
    """Bufferizes the undifferentiated ``@eval_loss(%tokens, %targets) ->
    loss`` (`lower-transformer{modes=train_step,eval_loss}`) into
    ``@eval_loss(%n: index)``, the compiled training library's forward-only
    evaluation: the forward with the inference kernels (nothing saved for a
    backward), then `cross_entropy_fused` writing the per-row losses to the
    same ``io`` buffer ``@losses`` as ``@train_step`` and its ``dlogits``
    over the logits in place (the runtime passes ``grad_scale`` 0; the
    logits are dead after the loss). It touches no ``grads`` buffer, and its
    activations are locals planned into the same ``activations`` region as
    ``@train_step``'s (functions never run together), so it adds no memory.
    """

    def run(self) -> func.FuncOp:
        block = self.f.body.block
        new_block = self.bind_loss_io(block, "a loss function")
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        if len(ret.arguments) != 1 or not isinstance(ret.arguments[0].owner, T.CrossEntropyOp):
            _fail(ret, f"@{self.mode}: must return one value, a cross_entropy loss")
        for op in block.ops:
            if op is ret:
                break
            self.lower(op)
        new_block.add_ops([*self.locals, *self.arith, *self.calls, func.ReturnOp()])
        return func.FuncOp(self.mode, ([IndexType()], []), Region(new_block))

    def op_cross_entropy(self, op: T.CrossEntropyOp) -> None:
        rows, cols = self.rc(op.logits)
        logits = self.src(op.logits, op)
        # dlogits in place over the logits when they are a plain local
        # activation; otherwise a fresh one
        if logits.row is None and logits.buffer not in self.mod.by_name and op.logits.has_one_use():
            dlogits = logits
        else:
            dlogits = self.fresh(op.logits, "dlogits")
        self.loc[op.result] = self.losses
        self.call("cross_entropy_fused", [logits, self.src(op.targets, op)], [dlogits, self.losses],
                  dict(rows=rows, cols=cols, ignore_index=op.prop_values()["ignore_index"]), op)


@dataclass(frozen=True)
class Bufferize(ModulePass):
    """tensorop -> buffer: kernel calls on named buffers (see the module
    docstring)."""

    name = "bufferize"

    max_tokens: int = 64

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.max_tokens <= 0:
            raise BufferizeError(f"bufferize: max_tokens must be positive, got {self.max_tokens}")
        funcs = [f for f in op.ops if isinstance(f, func.FuncOp)]
        if not funcs:
            raise BufferizeError("bufferize: the module has no function")
        mod = _Module(op, self.max_tokens)
        opt = next((f for f in funcs if f.sym_name.data == OPTIMIZER_FUNCTION and f.body.blocks), None)
        if opt is not None:
            mod.layout = _OptLayout(mod, opt)
        new = []
        for f in funcs:
            if not f.body.blocks:
                continue
            if any(o.dialect_name() == "transformer" for o in f.walk()):
                raise BufferizeError(
                    f"bufferize: @{f.sym_name.data} still holds transformer ops (run lower-transformer first)"
                )
            if f.sym_name.data == OPTIMIZER_FUNCTION:
                cls = _OptFunction
            elif f.sym_name.data == ZERO_FUNCTION:
                cls = _ZeroFunction
            elif _is_differentiated(f):
                cls = _TrainFunction
            elif f.sym_name.data == LOSS_FUNCTION:
                cls = _LossFunction
            elif f.sym_name.data == BATCH_FUNCTION:
                cls = _BatchFunction
            else:
                cls = _Function
            new.append((f, cls(mod, f).run()))
        if mod.seq_len:  # lower-to-c's ckc_gen_seq_len: the runtime's batch shape
            op.attributes[SEQ_LEN_KEY] = IntegerAttr(mod.seq_len, 64)
        block = op.body.block
        first = block.first_op
        order = {k: i for i, k in enumerate(("weights", "kv_cache", "io", "grads", "adam_m", "adam_v"))}
        rank = {}
        if mod.layout is not None:
            # the trained tensors first, in the layout's order, in all four regions (parallel blocks)
            for i, name in enumerate(mod.layout.order):
                for prefix in ("", GRAD_PREFIX, *ADAM_PREFIX.values()):
                    rank[prefix + name] = i
        big = len(rank) + 1
        for b in sorted(mod.ops, key=lambda b: (order.get(b.region.data, 9), rank.get(b.buffer_name, big))):
            block.insert_op_before(b, first) if first is not None else block.add_op(b)
        for old, f in new:
            block.insert_op_before(f, old)
            block.erase_op(old)
