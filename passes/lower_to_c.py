"""`lower-to-c`: buffer dialect (planned, variants chosen) -> c dialect.

Input: the output of ``bufferize`` -> ``plan-memory`` -> ``select-simd``: every
buffer has an ``offset`` in its arena, every ``buffer.call`` a variant. Output:
a module holding only the `c` dialect, printed by ``ckc-opt -t c`` as the
model's ``model.c``. The hand-written runtime (``runtime/library/ckc_runtime.c``,
compiled into the same ``model.so``) implements ``runtime/ckc_abi.h`` on top
of it.

Compute functions. Each ``func.func @MODE`` becomes

    int ckc_gen_MODE(uint8_t *arena, const uint8_t *weights,
                     const int32_t *tokens, float *logits, int n, int pos,
                     void *ws, size_t ws_size, ck_pool *pool, int nth);

(one signature for every mode; a mode that has no token count ignores ``n``).
``arena`` is the base of the ``@arena`` arena (KV cache, activations),
``weights`` the base of ``@weights`` (the weight data of the mmapped ``.bump``
file: the first tensor's data), ``tokens`` / ``logits`` are the ``io``
buffers ``@tokens`` / ``@logits`` (the caller's memory: ``io`` buffers are
never addressed in the arena), ``ws`` the GEMM workspace, ``pool`` / ``nth``
the thread pool. A function returns 0, or ``k + 1`` when call ``k`` (numbered
across the module, names in ``ckc_gen_call_names``) reported a failure
(``status`` != CK_OK, or a non-zero ``count``), or with ``debug`` set
``-(k + 1)`` when an arena canary was found overwritten after call ``k``.

Training adds ``@train_step`` / ``@eval_loss`` (TRAIN_PARAMS: targets, losses,
grad_scale after the common parameters) and add-optimizer's
``@optimizer_step`` / ``@zero_grads`` (OPT_PARAMS: ``int ckc_gen_MODE(uint8_t
*arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool,
int nth)``; the only functions that may write the weights), with the tables
``ckc_gen_n_params`` and ``ckc_gen_grads_offset`` / ``_adam_m_offset`` /
``_adam_v_offset`` (the parallel blocks, checked here: the first n_params
weights are the trained tensors, tensor i's gradient and moments sit at those
offsets plus its weight's offset from the first; -1 without add-optimizer).

Calls. ``buffer.call K<V>`` becomes ``ck_K_f32_V(...)`` with the arguments in
the order the kernel ABI table gives (``kernels/include/ckernels_abi.py``, through ``ckc/kernel_abi.py``) (roles ``in``/``opt_in``/``out``:
buffer pointers; ``param``: the call's params, static ones as literals,
dynamic ones from ``arith`` index arithmetic on the function arguments;
``null``: ``0``; ``scratch``/``scratch_size``/``pool``/``nth``: the function
parameters). A buffer pointer is ``base + offset`` (``+ l * stride`` for
``@name[%l]`` in a ``buffer.loop``, which becomes a ``c.for``), advanced by
``row * row_bytes`` when the call has an ``in<i>_row`` / ``out<i>_row`` param.

Tables (``c.global``, read by the runtime): ``ckc_gen_arch``, ``ckc_gen_simd``,
``ckc_gen_vocab``, ``ckc_gen_context`` (rows per KV-cache slot), ``ckc_gen_max_tokens`` (rows per call),
``ckc_gen_seq_len`` (training libraries: rows per sequence of a batch, bufferize's
``ckc.seq_len``; 0: one sequence), ``ckc_gen_slots`` (KV-cache slots of ``@decode_batch``; only with one),
``ckc_gen_layers``, ``ckc_gen_hidden``, ``ckc_gen_arena_size``,
``ckc_gen_n_canaries`` + ``ckc_gen_canaries`` (arena offsets),
``ckc_gen_weights_size``, ``ckc_gen_n_weights`` + ``ckc_gen_weight_names`` /
``_offsets`` (bytes from the weights base) / ``_bytes`` / ``_ndim`` /
``_shapes`` (4 dims per tensor, unused 0) / ``_dtypes`` (the .bump dtype the
runtime expects: f32, f32p32 for a ``layout p32`` weight, the weight's format
(q4_1, q8_0, f16, ...) or its r8 repacking, ckc/weights.py ``dtype_code``), ``ckc_gen_gemm_max_n`` /
``_max_k`` (for the workspace size query), ``ckc_gen_n_qgemm`` + ``_qgemm_fmts`` /
``_qgemm_max_n`` / ``_qgemm_max_k`` (per weight format read by a quantized GEMM:
its ck_qtype and largest n, k; the workspace is the max over these queries and
the f32 one), ``ckc_gen_n_calls`` + ``ckc_gen_call_names``. Stored weights
(f16, bf16, ``!quant.*``) are passed as byte pointers; their row offsets count
bytes of whole rows (quant.row_bytes).

Option ``debug`` (default false): after every call, check the arena canaries
(``ckc_rt_canaries_ok(arena)``, defined by the runtime). ``ckc_gen_canary_names``
says what each canary guards: the end of which region, right after which
buffers (those whose last byte is nearest below it), for the runtime's message.

Option ``overflow`` (a buffer name; default none; for tests only): every call
that writes that buffer gets an output pointer 8 bytes past the buffer's
planned offset, so the kernel writes the buffer's last 8 bytes out of bounds,
as a kernel with an off-by-two bug would. Next to a canary (a region's last
buffer, fully written) that kills the canary; test/py/test_canaries.py proves the
debug checks name it.

Option ``profile`` (default false, ``ckc profile``): every call is timed,
``int64_t pK = ckc_rt_prof_begin();`` before it and
``ckc_rt_prof_end(K, pK, pool);`` after it (defined by the runtime when
model.so is built with ``-DCKC_PROFILE``: wall time, executions and the thread
pool's per-thread busy time per call K).

Option ``record`` (default false, ``ckc parity``): after every call, each
output the call wrote is handed to the runtime,
``ckc_rt_record(K, i, layer, out_i, bytes);`` with the very pointer the kernel
got (row offsets included) and the bytes it wrote: ``rows`` rows (of ``cols`` elements for a row-wise kernel,
``ROWWISE``, of ``n`` for a GEMM, else of the buffer's row size) when the call has a ``rows`` param (the KV-cache rows an
append wrote, the activation rows of this chunk), else the whole buffer;
``layer`` is the ``buffer.loop`` index or -1 (defined by the runtime when
model.so is built with ``-DCKC_RECORD``; it passes them to the recorder
``ckc/parity/record.py`` installs). Off, the generated C is unchanged.

Option ``roll`` (default false; the pipelines set it): first run `roll-layers`
(``passes/roll_layers.py``), which writes the unrolled per-layer calls as a
``buffer.loop`` over ``buffer.layers`` tables. A ``@T[%l]`` operand, member
``l`` of table ``@T``, becomes ``base + T_off[l]`` where ``T_off`` is a file-scope
``static const size_t T_off[L]`` of the members' planned byte offsets (one table
per distinct content, named after the IR table; a loop that is not layers
0..L-1 in order carries ``ckc.first_layer`` / ``ckc.layer_step`` for the
comments). With `overflow`, a table an out operand reads has that buffer's
entry moved by the same 8 bytes.

Option ``readable`` (default false; the pipelines set it): the C a person
reads. Every buffer a call addresses at its planned offset is a local pointer
named after the IR buffer, declared once at the top of the function
(``float *x_emb = (float *)(arena + 131136);``), and every table a call
addresses at a whole layer a local pointer at the top of the loop body
(``const float *attn_norm_weight = (const float *)(weights + attn_norm_weight_off[l]);``,
as llm.c's forward names each layer's parameters); every call gets a one-line
comment naming the layer, the kernel and the operands with their shapes
(``/* layer l: rmsnorm x[?,576], attn_norm.weight[l][576] -> ... */``), every
loop the layers it runs. Off, the C is what the tests of this pass pin.

Deterministic: the output depends only on the input IR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    f32,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc import kernel_abi
from ckc.dialects import buffer as B
from ckc.dialects import c as C
from ckc.dialects import quant

ui8 = IntegerType(8, Signedness.UNSIGNED)
INT = C.IntType()
SIZE = C.SizeType()
POOL = C.PtrType(C.NamedType("ck_pool"))
MAX_DIMS = 4
DT_F32, DT_F32P32 = 0, 6   # runtime/weights.h CK_DT_F32 / CK_DT_F32P32 (ckc/weights.py F32 / F32P32)
PREFIX = "ckc_gen_"
IO_PARAMS = {"tokens": "tokens", "logits": "logits", "targets": "targets", "losses": "losses",
             "grad_norm": "grad_norm", "slots": "slots", "positions": "positions", "out_rows": "out_rows"}
VARIANT_RANK = {"scalar": 0, "neon": 1, "avx2": 2, "avx512": 3}
# Kernels that work row by row on `rows` rows of `cols` elements (what `record` copies).
ROWWISE = ("rmsnorm", "layernorm", "add", "mul", "scale", "copy", "silu", "gelu", "swiglu", "geglu", "softcap",
           "softmax", "embedding", "axpy")

# The compute function's C parameters (name, type); io buffers by name.
PARAMS: tuple[tuple[str, Attribute], ...] = (
    ("arena", C.PtrType(ui8)),
    ("weights", C.PtrType(ui8, True)),
    ("tokens", C.PtrType(i32, True)),
    ("logits", C.PtrType(f32)),
    ("n", INT),
    ("pos", INT),
    ("ws", C.PtrType(C.VoidType())),
    ("ws_size", SIZE),
    ("pool", POOL),
    ("nth", INT),
)


# A differentiated @train_step (bufferize: `@train_step(%n: index)`) and the
# training library's forward-only @eval_loss get three more parameters after
# the common ones: the targets and per-row losses io buffers and the runtime
# gradient scale (kernel_abi role "func"; see runtime/ckc_abi.h).
TRAIN_MODES = ("train_step", "eval_loss")
TRAIN_PARAMS: tuple[tuple[str, Attribute], ...] = PARAMS + (
    ("targets", C.PtrType(i32, True)),
    ("losses", C.PtrType(f32)),
    ("grad_scale", f32),
)

# add-optimizer's @optimizer_step(%lr, %step) and @zero_grads (bufferize) write the
# weights (the training runtime's writable copy) and take the learning rate and the
# 1-based step (kernel_abi role "func"); the global gradient norm goes to *grad_norm.
OPT_MODES = ("optimizer_step", "zero_grads")
OPT_PARAMS: tuple[tuple[str, Attribute], ...] = (
    ("arena", C.PtrType(ui8)),
    ("weights", C.PtrType(ui8)),
    ("lr", f32),
    ("step", INT),
    ("grad_norm", C.PtrType(f32)),
    ("pool", POOL),
    ("nth", INT),
)


# The slot-batched @decode_batch (bufferize: `@decode_batch(%n: index, %m: index)`,
# n rows of different sequences, the logits of m of them) gets the io buffers
# @slots and @positions (one i32 per row), @out_rows (m row indices) and m after
# the common parameters; `ckc_gen_slots` says how many KV-cache slots the caches
# hold (emitted only with @decode_batch; runtime/library/ckc_runtime.c ckc_batch).
BATCH_MODES = ("decode_batch",)
BATCH_PARAMS: tuple[tuple[str, Attribute], ...] = PARAMS + (
    ("slots", C.PtrType(i32, True)),
    ("positions", C.PtrType(i32, True)),
    ("out_rows", C.PtrType(i32, True)),
    ("m", INT),
)


class LowerToCError(DiagnosticException):
    """IR lower-to-c cannot handle (one line)."""


def _fail(msg: str):
    raise LowerToCError(f"lower-to-c: {msg}")


def _ctype(name: str) -> Attribute:
    name = name.strip()
    if name == "int":
        return INT
    if name == "int64_t":
        return i64
    if name == "float":
        return f32
    if name == "size_t":
        return SIZE
    _fail(f"kernel parameter C type '{name}' is not supported")


def _elem(t: TensorType) -> tuple[Attribute, int]:
    el = t.element_type
    if isinstance(el, Float32Type):
        return f32, 4
    if isinstance(el, IntegerType) and el.width.data == 32:
        return i32, 4
    if quant.format_name(el) is not None:  # f16 / bf16 / GGUF blocks: bytes (the kernel takes const void *)
        return ui8, 1
    _fail(f"buffers of {t} are not supported (f32, i32 and weight formats only)")


def _row_bytes(t: TensorType) -> int:
    shape = t.get_shape()
    if quant.format_name(t.element_type) not in (None, "f32"):
        # a row of a stored weight: its [1:] dims in the format (blocks along the last dim)
        return quant.tensor_bytes(t.element_type, [1, *shape[1:]]) if len(shape) > 1 else 0
    _, size = _elem(t)
    n = 1
    for d in shape[1:]:
        n *= d
    return n * size


def weight_dtype(buf: B.BufferOp) -> int:
    """The .bump dtype code (ckc/weights.py, runtime/weights.h) of a weights buffer:
    its element type's format, in its layout (p32, r8)."""
    from ckc import weights as bump

    fmt = quant.format_name(buf.type.element_type)
    layout = buf.layout.data if buf.layout is not None else None
    try:
        return bump.dtype_code(fmt, layout)
    except KeyError:
        _fail(f"weight @{buf.buffer_name}: no .bump dtype for {buf.type.element_type} in layout {layout}")


class _Func:
    """Lowers one func.func to one c.func."""

    def __init__(self, lower: "_Lower", f: func.FuncOp):
        self.lower = lower
        self.f = f
        self.name = f.sym_name.data
        plist = (TRAIN_PARAMS if self.name in TRAIN_MODES else OPT_PARAMS if self.name in OPT_MODES
                 else BATCH_PARAMS if self.name in BATCH_MODES else PARAMS)
        self.cf = C.FuncOp(PREFIX + self.name, plist, INT)
        self.params = {n: a for (n, _), a in zip(plist, self.cf.body.block.args)}
        for n, a in self.params.items():
            a.name_hint = n
        self.values: dict[SSAValue, SSAValue] = {}
        self.consts: dict[tuple, SSAValue] = {}
        self.block = self.cf.body.block
        self.nloops = 0
        self.loop_layers: dict[SSAValue, str] = {}
        self.locals: dict[str, SSAValue] = {}
        self.local_ops: list[Operation] = []
        # readable: per loop, (table -> local pointer, ops declaring them at the top of its body)
        self.loop_locals: dict[SSAValue, tuple[dict[str, SSAValue], list[Operation]]] = {}
        self.loop_names: dict[str, str] = {}  # table -> its local pointer's C name (one per function)
        self.taken = set(n for n, _ in plist) | {"l", "l2", "l3", "l4"}
        args = list(f.body.block.args)
        names = [a.name_hint for a in args]
        if self.name in OPT_MODES:
            for a, nm in zip(args, names):
                if nm not in ("lr", "step"):
                    _fail(f"@{self.name}: argument %{nm} is not %lr or %step")
                self.values[a] = self.params[nm]
        elif all(n in ("n", "pos") or (n == "m" and n in self.params) for n in names) and len(set(names)) == len(names):
            for a, nm in zip(args, names):
                self.values[a] = self.params[nm]
        elif len(args) == 2:
            self.values[args[0]], self.values[args[1]] = self.params["n"], self.params["pos"]
        elif len(args) == 1:
            self.values[args[0]] = self.params["pos" if self.name == "decode" else "n"]
        elif args:
            _fail(f"@{self.name}: cannot map {len(args)} arguments to (n, pos)")

    # -- helpers -------------------------------------------------------------

    def add(self, block: Block, op: Operation) -> Operation:
        block.add_op(op)
        return op

    def const(self, block: Block, value: int | float, t: Attribute) -> SSAValue:
        return self.add(block, C.ConstantOp(value, t)).results[0]

    def scalar(self, block: Block, v, t: Attribute) -> SSAValue:
        """A C value of C type `t` for a Python number or a !c.int value."""
        if isinstance(v, SSAValue):
            return v  # !c.int; C converts to the parameter's type
        if isinstance(t, Float32Type):
            return self.const(block, float(v), f32)
        if isinstance(v, float):
            if v != int(v):
                _fail(f"@{self.name}: float value {v} for an integer parameter")
            v = int(v)
        return self.const(block, int(v), t)

    def int_value(self, block: Block, v, t: Attribute = INT) -> SSAValue:
        """v (a Python int or an integer C value) as a value of integer C type t."""
        if not isinstance(v, SSAValue):
            return self.const(block, int(v), t)
        if v.type != t:
            return self.add(block, C.CastOp(v, t)).results[0]
        return v

    def expr(self, block: Block, e, env, t: Attribute = INT):
        """kernel_abi param expression -> Python number or integer C value. Arithmetic
        is done in C type t (the kernel parameter's: an int64_t element count
        rows * cols is computed in int64_t, never in int where it could overflow)."""
        if isinstance(e, tuple):
            op, a, b = e
            x, y = self.expr(block, a, env, t), self.expr(block, b, env, t)
            if not isinstance(x, SSAValue) and not isinstance(y, SSAValue):
                return kernel_abi.eval_expr((op, x, y), {})
            if op == "*" and not isinstance(y, SSAValue) and y == 1:
                return x
            if op == "*" and not isinstance(x, SSAValue) and x == 1:
                return y
            return self.add(block, C.BinOp(op, self.int_value(block, x, t), self.int_value(block, y, t))).results[0]
        if isinstance(e, str):
            if e not in env:
                _fail(f"@{self.name}: call lacks param '{e}'")
            return env[e]
        return e

    def resolve(self, call: B.CallOp, ref: B.BufRefAttr) -> B.BufferOp:
        """The buffer a ref names; for a buffer.layers table, its first member
        (they share type, region and layout)."""
        g = B.lookup_layers(call, ref.buffer_name) if ref.is_indexed else None
        buf = B.lookup_buffer(call, g.member_names[0] if g is not None else ref.buffer_name)
        if buf is None:
            _fail(f"@{self.name}: unknown buffer @{ref.buffer_name}")
        return buf

    def table_pointer(self, block: Block, call: B.CallOp, ref: B.BufRefAttr, kind: str, row, rb: int,
                      rtype: C.PtrType, base: SSAValue, bconst: bool) -> SSAValue:
        """``base + TABLE[l] (+ row * rb)`` for member l of a buffer.layers table."""
        name = ref.buffer_name
        g = B.lookup_layers(call, name)
        offsets = []
        for m in g.member_names:
            b = B.lookup_buffer(call, m)
            if b.offset is None:
                _fail(f"buffer @{m} has no offset: run plan-memory first")
            offsets.append(b.offset.data + (OVERFLOW_BYTES if kind == "out" and m == self.lower.overflow else 0))
        index = self.values.get(call.layer)
        if index is None:
            _fail(f"@{self.name}: layer index of @{name} is not a loop variable")
        table = self.lower.layer_table(self.name, name, offsets)
        offset = 0
        if row is not None and not isinstance(row, SSAValue):
            offset, row = int(row) * rb, None
        loop = self.loop_locals.get(call.layer)
        if row is None and offset == 0 and self.lower.readable and loop is not None:
            # a local pointer at the top of the loop body, named after the IR table
            ptrs, ops = loop
            if table not in ptrs:
                if table not in self.loop_names:
                    self.loop_names[table] = self.lower.c_name(name, self.taken)
                at = C.ElemOp(table, index, SIZE)
                ptr = C.PtrOp(base, 0, C.PtrType(rtype.pointee, bconst), at.result, 1)
                var = C.VarOp(self.loop_names[table], ptr.result)
                ops += [at, ptr, var]
                ptrs[table] = var.result
            return ptrs[table]
        at = self.add(block, C.ElemOp(table, index, SIZE)).results[0]
        if row is None:
            return self.add(block, C.PtrOp(base, offset, rtype, at, 1)).results[0]
        mid = self.add(block, C.PtrOp(base, 0, C.PtrType(ui8, bconst), at, 1)).results[0]
        return self.add(block, C.PtrOp(mid, 0, rtype, row, rb)).results[0]

    def local(self, buf: B.BufferOp, ptr: SSAValue) -> SSAValue:
        """With `readable`: the buffer as a local pointer named after it,
        declared at the top of the function (once)."""
        name = buf.buffer_name
        if name not in self.locals:
            c_name = self.lower.c_name(name, self.taken)
            var = C.VarOp(c_name, ptr)
            ptr.op.detach()
            self.local_ops += [ptr.op, var]
            self.locals[name] = var.result
        return self.locals[name]

    def pointer(self, block: Block, call: B.CallOp, ref: B.BufRefAttr, kind: str, i: int, env) -> SSAValue:
        name = ref.buffer_name
        table = ref.is_indexed and B.lookup_layers(call, name) is not None
        buf = self.resolve(call, ref)
        t = buf.type
        elem, _ = _elem(t)
        row = env.get(kernel_abi.row_param(kind, i))
        const = kind == "in"
        region = buf.region.data
        if region == "io":
            if name not in IO_PARAMS or IO_PARAMS[name] not in self.params:
                _fail(f"@{self.name}: io buffer @{name} has no C parameter (known: tokens, logits; "
                      "targets, losses in train_step)")
            if row is not None and not (not isinstance(row, SSAValue) and row == 0):
                _fail(f"@{self.name}: io buffer @{name} read at a row offset")
            p = self.params[IO_PARAMS[name]]
            if kind == "out" and name == "tokens":
                _fail(f"@{self.name}: a call writes @tokens")
            return p
        if buf.offset is None:
            _fail(f"buffer @{name} has no offset: run plan-memory first")
        if region == "weights":
            base = self.params["weights"]
            bconst = self.name not in OPT_MODES  # only the optimizer writes the weights
            if kind == "out" and bconst:
                _fail(f"@{self.name}: a call writes the weight @{name}")
        else:
            arena = B.find_region(self.lower.module, region)
            if arena is None or arena.sym_name.data != self.lower.arena_name:
                _fail(f"buffer @{name}: region '{region}' is not in the arena")
            base, bconst = self.params["arena"], False
        rtype0 = C.PtrType(elem, const or bconst)
        if table:
            return self.table_pointer(block, call, ref, kind, row, _row_bytes(t), rtype0, base, bconst)
        offset = buf.offset.data
        index = stride = None
        if ref.is_indexed:
            if call.layer is None:
                _fail(f"@{self.name}: @{name}[...] without a layer index")
            index = self.values.get(call.layer)
            if index is None:
                _fail(f"@{self.name}: layer index of @{name} is not a loop variable")
            stride = buf.stride.data
        if kind == "out" and name == self.lower.overflow:
            offset += OVERFLOW_BYTES  # the test-only out-of-bounds write (option `overflow`)
        rb = _row_bytes(t)
        if row is not None and not isinstance(row, SSAValue):
            offset += int(row) * rb
            row = None
        rtype = C.PtrType(elem, const or bconst)
        if row is None and index is None and self.lower.readable and offset == buf.offset.data:
            return self.local(buf, self.add(block, C.PtrOp(base, offset, C.PtrType(elem, bconst))).results[0])
        if row is None:
            return self.add(block, C.PtrOp(base, offset, rtype, index, stride)).results[0]
        if index is None:
            return self.add(block, C.PtrOp(base, offset, rtype, row, rb)).results[0]
        mid = self.add(block, C.PtrOp(base, offset, C.PtrType(ui8, bconst), index, stride)).results[0]
        return self.add(block, C.PtrOp(mid, 0, rtype, row, rb)).results[0]

    # -- ops -----------------------------------------------------------------

    def run(self) -> C.FuncOp:
        self.body(self.f.body.block, self.block)
        if self.local_ops:
            self.block.insert_ops_before(self.local_ops, self.block.first_op)
        return self.cf

    def comment(self, block: Block, call: B.CallOp) -> None:
        """With `readable`: ``/* layer L: kernel in[shape], ... -> out[shape] */``."""
        def one(ref: B.BufRefAttr) -> str:
            t = self.resolve(call, ref).type
            dims = ",".join("?" if d < 0 else str(d) for d in t.get_shape())
            return ref.buffer_name + ("[l]" if ref.is_indexed else "") + f"[{dims}]"

        layer = self.loop_layers.get(call.layer) if call.layer is not None else None
        if layer == "":
            layer = None
        elif layer is None:
            from ckc.passes.roll_layers import call_layer

            n = call_layer(call)
            layer = str(n) if n is not None else None
        text = (f"layer {layer}: " if layer else "") + call.kernel.data + " " + ", ".join(
            one(r) for r in call.in_refs) + " -> " + ", ".join(one(r) for r in call.out_refs)
        self.add(block, C.CommentOp(text.replace("*/", "* /")))

    def body(self, src: Block, dst: Block) -> None:
        for op in src.ops:
            if isinstance(op, (B.BufferOp, B.LayersOp)):
                continue
            if isinstance(op, arith.ConstantOp):
                v = op.value
                if not isinstance(v, IntegerAttr):
                    _fail(f"@{self.name}: arith.constant {v} is not an integer")
                self.values[op.result] = self.const(dst, v.value.data, INT)
            elif isinstance(op, (arith.AddiOp, arith.SubiOp, arith.MuliOp)):
                kind = {arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*"}[type(op)]
                a, b = self.values.get(op.lhs), self.values.get(op.rhs)
                if a is None or b is None:
                    _fail(f"@{self.name}: '{op.name}' on a value lower-to-c did not map")
                self.values[op.result] = self.add(dst, C.BinOp(kind, a, b)).results[0]
            elif isinstance(op, B.LoopOp):
                lb = self.const(dst, op.lb.data, INT)
                ub = self.const(dst, op.ub.data, INT)
                self.nloops += 1
                var = "l" if self.nloops == 1 else f"l{self.nloops}"
                first, step = op.attributes.get("ckc.first_layer"), op.attributes.get("ckc.layer_step")
                what = "layers"
                if isinstance(first, IntegerAttr) and isinstance(step, IntegerAttr) and step.value.data:
                    f0, st = first.value.data, step.value.data
                    self.loop_layers[op.index] = f"{f0} {'+' if st > 0 else '-'} {var}"
                    span = (f0, f0 + st * (op.ub.data - op.lb.data - 1))
                elif isinstance(step, IntegerAttr):  # step 0: iterations that are not whole layers
                    self.loop_layers[op.index] = ""
                    what, span = "iterations", (op.lb.data, op.ub.data - 1)
                else:
                    self.loop_layers[op.index] = var
                    span = (op.lb.data, op.ub.data - 1)
                if self.lower.readable:
                    self.add(dst, C.CommentOp(f"{what} {span[0]}..{span[1]}"))
                loop = self.add(dst, C.ForOp(lb, ub, var))
                loop.induction_var.name_hint = var
                self.values[op.index] = loop.induction_var
                self.loop_locals[op.index] = ({}, [])
                self.body(op.body.block, loop.body.block)
                ops = self.loop_locals[op.index][1]
                if ops:
                    first = loop.body.block.first_op
                    if first is None:
                        loop.body.block.add_ops(ops)
                    else:
                        loop.body.block.insert_ops_before(ops, first)
            elif isinstance(op, B.CallOp):
                self.call(op, dst)
            elif isinstance(op, func.ReturnOp):
                if op.arguments:
                    _fail(f"@{self.name}: func.return with values (bufferize first)")
                self.add(dst, C.ReturnOp(self.const(dst, 0, INT)))
            else:
                _fail(f"@{self.name}: cannot lower '{op.name}'")

    def call(self, call: B.CallOp, block: Block) -> None:
        kname = call.kernel.data
        try:
            k = kernel_abi.kernel(kname)
        except KeyError as e:
            _fail(f"@{self.name}: {e.args[0]}")
        if call.variant is None:
            _fail(f"@{self.name}: call {kname} has no variant: run select-simd first")
        variant = call.variant.data
        try:
            sym = k.symbol(variant)
        except KeyError as e:
            _fail(f"@{self.name}: {e.args[0]}")
        env: dict = {}
        for n, a in call.params.data.items():
            if isinstance(a, IntegerAttr):
                env[n] = a.value.data
            elif isinstance(a, FloatAttr):
                env[n] = a.value.data
            else:
                _fail(f"@{self.name}: call {kname} param '{n}' = {a} is not a number")
        for n, v in zip(call.dyn_names.data, call.dyn_params):
            cv = self.values.get(v)
            if cv is None:
                _fail(f"@{self.name}: call {kname} param '{n.data}' is not a function argument or index arithmetic")
            env[n.data] = cv
        ins, outs = call.in_refs, call.out_refs
        args: list[SSAValue] = []
        for a in k.args:
            if a.role == "in":
                if a.index >= len(ins):
                    _fail(f"@{self.name}: call {kname} needs {a.index + 1} ins")
                args.append(self.pointer(block, call, ins[a.index], "in", a.index, env))
            elif a.role == "opt_in":
                if a.index < len(ins):
                    args.append(self.pointer(block, call, ins[a.index], "in", a.index, env))
                else:
                    args.append(self.const(block, 0, INT))  # NULL
            elif a.role == "out":
                if a.index >= len(outs):
                    _fail(f"@{self.name}: call {kname} needs {a.index + 1} outs")
                args.append(self.pointer(block, call, outs[a.index], "out", a.index, env))
            elif a.role == "null":
                args.append(self.const(block, 0, INT))
            elif a.role == "param":
                ct = _ctype(a.ctype)
                args.append(self.scalar(block, self.expr(block, a.expr, env, ct if ct == i64 else INT), ct))
            elif a.role in ("pool", "nth"):
                args.append(self.params[a.role])
            elif a.role == "func":
                if a.expr not in self.params:
                    _fail(f"@{self.name}: call {kname} needs the function parameter '{a.expr}' (train_step only)")
                args.append(self.params[a.expr])
            elif a.role == "scratch":
                args.append(self.params["ws"])
            elif a.role == "scratch_size":
                args.append(self.params["ws_size"])
            else:  # pragma: no cover - kernel_abi.ROLES
                _fail(f"unknown role {a.role}")
        if kname in ("gemm", "gemm_packed", "gemm_grad", "gemm_grad_bias"):
            nv, kv = env.get("n"), env.get("k")
            if isinstance(nv, int) and isinstance(kv, int):
                self.lower.gemm_n = max(self.lower.gemm_n, nv)
                self.lower.gemm_k = max(self.lower.gemm_k, kv)
            else:
                _fail(f"@{self.name}: gemm with dynamic n/k")
        qg = kernel_abi.qgemm_format(kname)
        if qg is not None:  # the quantized GEMMs' workspace, per format (ckc_gen_qgemm_* tables)
            nv, kv = env.get("n"), env.get("k")
            if not (isinstance(nv, int) and isinstance(kv, int)):
                _fail(f"@{self.name}: {kname} with dynamic n/k")
            n0, k0 = self.lower.qgemm.get(qg[0], (0, 0))
            self.lower.qgemm[qg[0]] = (max(n0, nv), max(k0, kv))
        idx = len(self.lower.call_names)
        if self.lower.readable:
            self.comment(block, call)
        def ref_label(r: B.BufRefAttr) -> str:
            return r.buffer_name + ("[l]" if r.is_indexed else "")

        label = f"@{self.name} #{idx}: {sym}(" + ", ".join(
            map(ref_label, ins)) + " -> " + ", ".join(map(ref_label, outs)) + ")"
        self.lower.call_names.append(label)
        if self.lower.profile:
            t0 = self.add(block, C.CallOp("ckc_rt_prof_begin", [], i64, f"p{idx}")).results[0]
        rc = None
        if k.ret == "void":
            self.add(block, C.CallOp(sym, args))
        elif k.ret in ("status", "count"):
            rc = self.add(block, C.CallOp(sym, args, INT, f"s{idx}")).results[0]
        else:
            _fail(f"@{self.name}: kernel {kname} returns its result by value ({k.ret}); not supported")
        if self.lower.profile:
            self.add(block, C.CallOp("ckc_rt_prof_end", [self.const(block, idx, INT), t0, self.params["pool"]]))
        if rc is not None:
            self.fail_if(block, rc, idx + 1)
        if self.lower.record:
            self.record(block, call, idx, args, k, env)
        if self.lower.debug:
            ok = self.add(block, C.CallOp("ckc_rt_canaries_ok", [self.params["arena"]], INT, f"c{idx}")).results[0]
            zero = self.const(block, 0, INT)
            bad = self.add(block, C.BinOp("==", ok, zero)).results[0]
            self.return_if(block, bad, -(idx + 1))

    def record(self, block: Block, call: B.CallOp, idx: int, args: list[SSAValue], k, env) -> None:
        """ckc_rt_record(idx, i, layer, out_i, bytes) for every out of the call."""
        kname = call.kernel.data
        outs = {a.index: v for a, v in zip(k.args, args) if a.role == "out"}
        layer = self.values.get(call.layer) if call.layer is not None else None
        for i, ref in enumerate(call.out_refs):
            if i not in outs:
                continue
            buf = self.resolve(call, ref)
            rows = env.get("rows")
            if rows is not None and buf.region.data not in ("weights", "grads", "adam_m", "adam_v", "opt_state"):
                # a row-wise kernel's rows can be finer than the buffer's (rmsnorm over q's
                # heads: rows = tokens * heads of `cols` each): rows x cols; a GEMM's rows x n
                _, esize = _elem(buf.type)
                cols = env.get("cols")
                row = _row_bytes(buf.type)
                if kname.startswith(ROWWISE) and "qkv" not in kname and isinstance(cols, int) and cols > 0 \
                        and (row // esize) % cols == 0:
                    row = cols * esize
                elif kname in ("gemm", "gemm_packed") and isinstance(env.get("n"), int):
                    row = env["n"] * esize
                n = self.expr(block, ("*", "rows", row), env, i64)
            else:
                n = buf.size.data
            self.add(block, C.CallOp("ckc_rt_record", [
                self.const(block, idx, INT), self.const(block, i, INT),
                layer if layer is not None else self.const(block, -1, INT),
                outs[i], self.int_value(block, n, i64) if isinstance(n, SSAValue) else self.const(block, int(n), i64)]))

    def fail_if(self, block: Block, rc: SSAValue, code: int) -> None:
        zero = self.const(block, 0, INT)
        bad = self.add(block, C.BinOp("!=", rc, zero)).results[0]
        self.return_if(block, bad, code)

    def return_if(self, block: Block, cond: SSAValue, code: int) -> None:
        iff = self.add(block, C.IfOp(cond))
        iff.then_block.add_op(c := C.ConstantOp(code, INT))
        iff.then_block.add_op(C.ReturnOp(c))


class _Lower:
    def __init__(self, module: ModuleOp, debug: bool, profile: bool = False, overflow: str = "", record: bool = False,
                 readable: bool = False):
        self.module = module
        self.debug = debug
        self.profile = profile
        self.overflow = overflow
        self.record = record
        self.readable = readable
        self.tables_c: dict[str, list[int]] = {}        # layer tables: C name -> offsets
        self.table_of: dict[tuple, str] = {}             # (table, offsets) -> C name
        self.local_names: set[str] = set()               # readable: every local pointer's C name
        self.call_names: list[str] = []
        self.gemm_n = 0
        self.gemm_k = 0
        self.qgemm: dict[str, tuple[int, int]] = {}  # format -> (max n, max k) of its qgemm calls
        arenas = [o for o in module.ops if isinstance(o, B.ArenaOp)]
        if not arenas:
            _fail("the module has no buffer.arena: run plan-memory first")
        self.weights_arena = B.find_region(module, "weights")
        others = [a for a in arenas if a is not self.weights_arena]
        if len(others) > 1:
            _fail(f"expected one arena besides @weights, found {len(others)}")
        if self.weights_arena is not None and any(
            r.kind.data != "weights" for r in self.weights_arena.arena_regions.data
        ):
            _fail(f"arena @{self.weights_arena.sym_name.data} mixes weights with other regions")
        self.arena = others[0] if others else None
        self.arena_name = self.arena.sym_name.data if self.arena is not None else ""

    def c_name(self, name: str, taken: set[str]) -> str:
        """A C identifier for an IR name (``blk.0.attn_q.weight`` -> ``blk_0_attn_q_weight``),
        unique among `taken` (which it joins), the module's globals and C's keywords."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not base or base[0].isdigit():
            base = "b_" + base
        if base in C_KEYWORDS or base.startswith(PREFIX) or re.fullmatch(r"[spc]\d+", base):
            base += "_"
        out, k = base, 1
        while out in taken or out in self.tables_c or re.fullmatch(r"l\d*", out):
            k += 1
            out = f"{base}_{k}"
        taken.add(out)
        self.local_names.add(out)
        return out

    def layer_table(self, fname: str, table: str, offsets: list[int]) -> str:
        """The C name of a static table of a buffer.layers' byte offsets (one per
        distinct content; a table of another function with the same IR name and
        other offsets gets the function's name in front)."""
        key = (table, tuple(offsets))
        if key in self.table_of:
            return self.table_of[key]
        base = re.sub(r"[^A-Za-z0-9_]", "_", table) + "_off"
        used = self.tables_c.keys() | self.local_names | C_RESERVED
        if base in used:
            base = f"{fname}_{base}"
        out, k = base, 1
        while out in used:
            k += 1
            out = f"{base}_{k}"
        self.tables_c[out] = list(offsets)
        self.table_of[key] = out
        return out

    def run(self) -> None:
        m = self.module
        funcs = [f for f in m.ops if isinstance(f, func.FuncOp)]
        if not funcs:
            _fail("the module has no functions")
        bufs = [o for o in m.ops if isinstance(o, B.BufferOp) and B.covers(o) is None]  # aliases: no table rows
        cfuncs = [_Func(self, f).run() for f in funcs]
        globals_ = self.tables(bufs)
        if self.tables_c:
            globals_.append(C.CommentOp("layer tables: byte offsets of each layer's buffer (buffer.layers)"))
            globals_ += [C.GlobalOp(n, SIZE, v, static=True) for n, v in self.tables_c.items()]
        new: list[Operation] = [
            C.CommentOp("generated by ckc lower-to-c: compute functions and tables for runtime/library/ckc_runtime.c"),
            C.IncludeOp("stddef.h", True),
            C.IncludeOp("stdint.h", True),
            C.IncludeOp("ckernels.h"),
        ]
        if self.debug:
            new.append(C.DeclOp("ckc_rt_canaries_ok", [C.PtrType(ui8)], INT))
        if self.profile:
            new.append(C.DeclOp("ckc_rt_prof_begin", [], i64))
            new.append(C.DeclOp("ckc_rt_prof_end", [INT, i64, POOL], C.VoidType()))
        if self.record:
            new.append(C.DeclOp("ckc_rt_record", [INT, INT, INT, C.PtrType(C.VoidType(), True), i64], C.VoidType()))
        new += globals_
        new += cfuncs
        for op in list(m.ops):
            op.detach()
            op.erase()
        for op in new:
            m.body.block.add_op(op)
        for k in [k for k in m.attributes if k != "transformer.config"]:
            del m.attributes[k]

    def tables(self, bufs: list[B.BufferOp]) -> list[Operation]:
        m = self.module
        cfg = m.attributes.get("transformer.config")

        def cfg_int(name: str, default: int = 0) -> int:
            v = getattr(cfg, name, None) if cfg is not None else None
            if v is None:
                return default
            v = getattr(v, "value", v)
            v = getattr(v, "data", v)
            try:
                return int(v)
            except (TypeError, ValueError):
                return default

        arch = "unknown"
        if cfg is not None:
            a = getattr(cfg, "arch", None)
            arch = getattr(a, "data", None) or str(a or "unknown")
        variants = {o.variant.data for o in m.walk() if isinstance(o, B.CallOp) and o.variant is not None}
        simd = m.attributes.get("ckc.simd")
        simd = simd.data if isinstance(simd, StringAttr) else (
            max(variants, key=lambda v: VARIANT_RANK.get(v, 0)) if variants else "scalar")
        weights = sorted((b for b in bufs if b.region.data == "weights"), key=lambda b: b.offset.data if b.offset is not None else -1)
        for w in weights:
            if w.offset is None:
                _fail(f"buffer @{w.buffer_name} has no offset: run plan-memory first")
            if w.layers is not None:
                _fail(f"layered weight @{w.buffer_name} is not supported by the weight table")
            if len(w.type.get_shape()) > MAX_DIMS:
                _fail(f"weight @{w.buffer_name} has more than {MAX_DIMS} dims")
        by_name = {b.buffer_name: b for b in bufs}
        tokens, logits = by_name.get("tokens"), by_name.get("logits")
        max_tokens = tokens.size.data // 4 if tokens is not None else 1
        # bufferize's ckc.seq_len: the functions take max_tokens / seq_len sequences of seq_len rows
        sl = m.attributes.get("ckc.seq_len")
        seq_len = sl.value.data if isinstance(sl, IntegerAttr) else 0
        training = any(isinstance(f, func.FuncOp) and f.sym_name.data in TRAIN_MODES for f in m.ops)
        vocab = cfg_int("vocab")
        if not vocab and logits is not None:
            vocab = logits.type.get_shape()[-1]
        context = slots = 0
        for b in bufs:
            if b.region.data == "kv_cache":
                n_slots = b.attributes.get("slots")
                n_slots = n_slots.value.data if isinstance(n_slots, IntegerAttr) else 1
                slots = max(slots, n_slots if "slots" in b.attributes else 0)
                context = max(context, b.type.get_shape()[0] // n_slots)  # rows per slot
        context = context or cfg_int("context")
        canaries = self.arena.canary_offsets if self.arena is not None else []
        arena_size = self.arena.size.data if self.arena is not None else 0
        wsize = self.weights_arena.size.data if self.weights_arena is not None else 0

        def g(name, t, v):
            return C.GlobalOp(PREFIX + name, t, v)

        s = C.PtrType(C.CharType(), True)
        out: list[Operation] = [
            g("arch", s, arch),
            g("simd", s, simd),
            g("vocab", INT, vocab),
            g("context", INT, context),
            g("max_tokens", INT, max_tokens),
            *([g("seq_len", INT, seq_len)] if training else []),
            g("layers", INT, cfg_int("layers")),
            g("hidden", INT, cfg_int("hidden")),
            g("arena_size", SIZE, arena_size),
            g("n_canaries", INT, len(canaries)),
            g("canaries", SIZE, canaries or [0]),
            g("canary_names", s, self.canary_names(canaries, bufs) or [""]),
            g("weights_size", SIZE, wsize),
            g("n_weights", INT, len(weights)),
        ]
        if weights:
            shapes: list[int] = []
            for w in weights:
                sh = list(w.type.get_shape())
                shapes += sh + [0] * (MAX_DIMS - len(sh))
            out += [
                g("weight_names", s, [w.buffer_name for w in weights]),
                g("weight_offsets", SIZE, [w.offset.data for w in weights]),
                g("weight_bytes", SIZE, [w.size.data for w in weights]),
                g("weight_ndim", INT, [len(w.type.get_shape()) for w in weights]),
                g("weight_shapes", i64, shapes),
                g("weight_dtypes", INT, [weight_dtype(w) for w in weights]),
            ]
        else:
            out += [
                g("weight_names", s, [""]),
                g("weight_offsets", SIZE, [0]),
                g("weight_bytes", SIZE, [0]),
                g("weight_ndim", INT, [0]),
                g("weight_shapes", i64, [0] * MAX_DIMS),
                g("weight_dtypes", INT, [DT_F32]),
            ]
        grads = sorted((b for b in bufs if b.region.data == "grads"), key=lambda b: b.offset.data)
        if grads:  # training: the parallel blocks (runtime/library/ckc_runtime.c ckc_tensor_*)
            out += self.state_tables(weights, bufs, grads)
        out += [
            g("gemm_max_n", INT, self.gemm_n),
            g("gemm_max_k", INT, self.gemm_k),
            # quantized GEMMs: the runtime sizes the workspace as the max of
            # ck_gemm_workspace_size and each format's query (ck_q[k]gemm_workspace_size)
            g("n_qgemm", INT, len(self.qgemm)),
            g("qgemm_fmts", INT, [kernel_abi.QUANT_FORMATS[f][0] for f in sorted(self.qgemm)] or [0]),
            g("qgemm_max_n", INT, [self.qgemm[f][0] for f in sorted(self.qgemm)] or [0]),
            g("qgemm_max_k", INT, [self.qgemm[f][1] for f in sorted(self.qgemm)] or [0]),
            g("n_calls", INT, len(self.call_names)),
            g("call_names", s, self.call_names or [""]),
        ]
        if slots:  # only then: a model without slots stays byte-identical (the runtime's weak symbol reads 0)
            out.append(g("slots", INT, slots))
        return out


    def state_tables(self, weights, bufs, grads) -> list[Operation]:
        """The training state as parallel blocks (plan-memory): the trained tensors are
        the first ``ckc_gen_n_params`` entries of the weight table, and tensor i's
        gradient / AdamW m / v lives at ``ckc_gen_grads_offset`` / ``_adam_m_offset`` /
        ``_adam_v_offset`` + (its weight offset - ``ckc_gen_weight_offsets[0]``) in the
        arena (-1: no such region). Checked here, so the runtime needs no names."""
        n = len(grads)
        base_w = weights[0].offset.data if weights else 0
        offsets = {}
        if not any(b.region.data == "adam_m" for b in bufs):
            # autodiff without add-optimizer: no optimizer, nothing the training runtime can train
            return [C.GlobalOp(PREFIX + "n_params", INT, 0),
                    *(C.GlobalOp(PREFIX + k, i64, -1) for k in ("grads_offset", "adam_m_offset", "adam_v_offset"))]
        for region, prefix in (("grads", "grad."), ("adam_m", "adam_m."), ("adam_v", "adam_v.")):
            blk = sorted((b for b in bufs if b.region.data == region), key=lambda b: b.offset.data)
            if not blk:
                offsets[region] = -1
                continue
            if len(blk) != n or len(weights) < n:
                _fail(f"region '{region}' holds {len(blk)} buffers for {n} gradients")
            for w, b in zip(weights, blk):
                if (b.buffer_name != prefix + w.buffer_name or b.size.data != w.size.data
                        or b.offset.data - blk[0].offset.data != w.offset.data - base_w):
                    _fail(f"@{b.buffer_name} does not parallel the weight @{w.buffer_name} "
                          f"(the trained tensors must lead the weights, laid out like '{region}')")
            offsets[region] = blk[0].offset.data

        def g(name, t, v):
            return C.GlobalOp(PREFIX + name, t, v)

        return [g("n_params", INT, n), g("grads_offset", i64, offsets["grads"]),
                g("adam_m_offset", i64, offsets["adam_m"]), g("adam_v_offset", i64, offsets["adam_v"])]

    def canary_names(self, canaries: list[int], bufs: list[B.BufferOp]) -> list[str]:
        """For each canary: "end of region 'K', after @a, @b" (the arena buffers,
        of any function, whose end is the nearest below it in that region)."""
        regions = self.arena.arena_regions.data if self.arena is not None else []
        every = [b for b in bufs if b.offset is not None]
        for f in self.module.ops:
            if isinstance(f, func.FuncOp):
                every += [b for b in f.walk() if isinstance(b, B.BufferOp) and b.offset is not None]
        out = []
        for c in canaries:
            before = [r for r in regions if r.offset.data + r.size.data <= c]
            if not before:
                out.append(f"at offset {c}")
                continue
            r = max(before, key=lambda r: r.offset.data)
            kind, lo = r.kind.data, r.offset.data
            inside = [b for b in every if b.region.data == kind and lo <= b.offset.data < c]
            end = max((b.offset.data + b.footprint for b in inside), default=None)
            last = sorted({b.buffer_name for b in inside if b.offset.data + b.footprint == end})
            names = ", ".join(f"@{n}" for n in last[:4]) + (", ..." if len(last) > 4 else "")
            out.append(f"end of region '{kind}'" + (f", after {names}" if names else ""))
        return out


OVERFLOW_BYTES = 8
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool size_t int32_t int64_t uint8_t ck_pool".split())
# Names a layer table may not take: C's keywords, the compute functions' parameters, loop variables.
C_RESERVED = C_KEYWORDS | {n for n, _ in TRAIN_PARAMS} | {"l", "l2", "l3", "l4"}


@dataclass(frozen=True)
class LowerToC(ModulePass):
    """buffer -> c: compute functions with explicit pointers and the runtime's
    tables. See the module docstring."""

    name = "lower-to-c"

    debug: bool = False
    """Check the arena canaries after every kernel call."""

    profile: bool = False
    """Time every kernel call (ckc_rt_prof_begin / ckc_rt_prof_end, see the module docstring)."""

    overflow: str = ""
    """Test only: calls writing this buffer write 8 bytes past its end (see the module docstring)."""

    record: bool = False
    """Hand every call's outputs to the runtime (ckc_rt_record, see the module docstring)."""

    readable: bool = False
    """Name buffers (local pointers) and comment every call and loop (see the module docstring)."""

    roll: bool = False
    """Run roll-layers first: the layers as loops over per-layer offset tables (see the module docstring)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.roll:
            from ckc.passes.roll_layers import RollLayers

            RollLayers().apply(ctx, op)
        _Lower(op, self.debug, self.profile, self.overflow, self.record, self.readable).run()
