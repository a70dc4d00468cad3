"""FLOPs and bytes moved of every kernel call, from the buffer IR's shapes.

`ckc profile` divides each call's measured time by these numbers (GFLOP/s,
GB/s, arithmetic intensity, the roofline). They are computed by the compiler,
from the planned buffer-dialect module right before ``lower-to-c``, and written
beside the model as ``calls.json`` (ckc/artifacts.py, profile builds): one
entry per ``buffer.call`` in ``lower-to-c``'s numbering (``ckc_gen_call_names``),
with the call's function, kernel, variant, how many times one run of the
function executes it (``trips``: the layer loops around it), and ``flops`` /
``bytes`` per execution as *expressions* of the function's arguments ``n``
(tokens) and ``pos`` (position), because a prefill chunk's size and an
attention's KV length are only known at run time. An expression is a number,
an argument name, or ``[op, a, b]`` with op one of ``+ - * // min max``
(:func:`evaluate`).

What is counted (per execution, fp32):

- FLOPs: multiply and add count one each (an FMA two); exp, division and
  square root count one; GEMM ``2·M·N·K``; attention ``4·H·D`` per (query,
  key) pair plus ``5·H`` per pair for the softmax; elementwise ops a small
  per-element constant (``FLOPS_PER_ELEMENT``). Backward kernels are counted
  from the same formulas (a GEMM gradient ``4·M·N·K``).
- Bytes: the compulsory traffic: every operand read or written once. A
  weight (or gradient / optimizer state) operand counts its whole planned
  size (with the p32 packing padding), except an embedding table (only the
  looked-up rows); an activation operand counts the rows the call touches
  (``rows`` x its row size); a KV cache read by attention counts the
  positions attended, written by the fused QKV kernel the new rows.

A kernel the table does not know gets ``null`` FLOPs/bytes (reported as
unknown, never guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from xdsl.dialects import arith, func
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, ModuleOp
from xdsl.ir import BlockArgument, SSAValue

from ckc import kernel_abi
from ckc.dialects import buffer as B

Expr = Union[int, float, str, list]

# Whole-buffer regions: a call reads or writes all of such an operand.
WHOLE = ("weights", "grads", "adam_m", "adam_v", "opt_state")

FLOPS_PER_ELEMENT = {
    "add": 1, "mul": 1, "scale": 1, "copy": 0, "silu": 4, "gelu": 8, "softcap": 3,
    "swiglu": 5, "geglu": 9, "softmax": 4, "axpy": 2, "sumsq": 2, "adamw": 16, "adamw_coef": 16, "clip_norm": 2, "zero": 0,
    "silu_grad": 7, "gelu_grad": 14, "softcap_grad": 5, "swiglu_grad": 10, "geglu_grad": 18,
    "softmax_grad": 4, "cross_entropy": 5, "cross_entropy_fused": 6,
}


# -- symbolic expressions ----------------------------------------------------

class Sym:
    """An integer expression of the function arguments, folded where constant."""

    __slots__ = ("e",)

    def __init__(self, e: Expr):
        self.e = e

    @staticmethod
    def of(x) -> "Sym":
        return x if isinstance(x, Sym) else Sym(x)

    def _bin(self, op: str, other, swap: bool = False) -> "Sym":
        a, b = self.e, Sym.of(other).e
        if swap:
            a, b = b, a
        return Sym(_fold(op, a, b))

    def __add__(self, o): return self._bin("+", o)
    def __radd__(self, o): return self._bin("+", o, True)
    def __sub__(self, o): return self._bin("-", o)
    def __rsub__(self, o): return self._bin("-", o, True)
    def __mul__(self, o): return self._bin("*", o)
    def __rmul__(self, o): return self._bin("*", o, True)
    def __floordiv__(self, o): return self._bin("//", o)


def smin(a, b) -> Sym:
    return Sym(_fold("min", Sym.of(a).e, Sym.of(b).e))


def _num(e) -> bool:
    return isinstance(e, (int, float)) and not isinstance(e, bool)


def _fold(op: str, a: Expr, b: Expr) -> Expr:
    if _num(a) and _num(b):
        return evaluate([op, a, b], {})
    if op == "*" and ((_num(a) and a == 0) or (_num(b) and b == 0)):
        return 0
    if op == "*" and _num(a) and a == 1:
        return b
    if op in ("*", "//") and _num(b) and b == 1:
        return a
    if op in ("+", "-") and _num(b) and b == 0:
        return a
    if op == "+" and _num(a) and a == 0:
        return b
    return [op, a, b]


_MORE_OPS = {"//": lambda x, y: x // y, "min": min, "max": max}  # beyond kernel_abi's + - *


def evaluate(e: Expr, env: dict[str, int]):
    """The value of an expression for the arguments in `env` ({"n": .., "pos": ..})."""
    if isinstance(e, list):
        op, a, b = e
        x, y = evaluate(a, env), evaluate(b, env)
        return _MORE_OPS[op](x, y) if op in _MORE_OPS else kernel_abi.eval_expr((op, x, y), {})
    return kernel_abi.eval_expr(e, env)


# -- the table ---------------------------------------------------------------

@dataclass
class _Operand:
    region: str
    size: int          # planned bytes of the buffer (one layer of a layered buffer)
    row_bytes: int
    ndim: int


def _operand(call: B.CallOp, ref: B.BufRefAttr) -> _Operand:
    buf = B.lookup_buffer(call, ref.buffer_name)
    shape = list(buf.type.get_shape())
    elem = 4  # f32 / i32: the only element types lower-to-c accepts
    row = elem
    for d in shape[1:]:
        row *= d
    return _Operand(buf.region.data, buf.size.data, row, len(shape))


def _touched(op: _Operand, rows) -> Sym:
    """Bytes of an operand a call over `rows` rows reads or writes."""
    if op.region in WHOLE:
        return Sym(op.size)
    if op.ndim <= 1:
        return smin(Sym.of(rows) * 4, op.size) if op.size else Sym(0)
    return Sym.of(rows) * op.row_bytes


def _keys(P) -> tuple[Sym, Sym]:
    """(query-key pairs, KV rows read) of a causal attention over `rows` new
    tokens after `pos` cached ones (a sliding window caps both)."""
    T, pos, w = Sym.of(P.get("rows", 1)), Sym.of(P["pos"]), P.get("window", 0)
    pairs = T * pos + (T * (T + 1)) // 2
    span = pos + T
    if isinstance(w, int) and w > 0:
        pairs = smin(pairs, T * w)
        span = smin(span, T + w)
    return pairs, span


def call_cost(kname: str, P: dict, ins: list[_Operand], outs: list[_Operand]) -> tuple[Sym, Sym] | None:
    """(flops, bytes) of one execution, or None for a kernel not modelled."""
    rows = P.get("rows", 1)
    R = Sym.of(rows)
    if kname in ("gemm", "gemm_packed"):
        flops = R * P["n"] * P["k"] * 2
        nbytes = _touched(ins[0], rows) + _touched(ins[1], rows) + _touched(outs[0], rows)
        if len(ins) > 2:
            flops = flops + R * P["n"]
            nbytes = nbytes + _touched(ins[2], rows)
        return flops, nbytes
    if kernel_abi.qgemm_format(kname) is not None:
        # a stored-format weight (GGUF blocks, f16, r8): read whole, at its planned
        # (stored) size; x and y fp32
        flops = R * P["n"] * P["k"] * 2
        nbytes = _touched(ins[0], rows) + Sym(ins[1].size) + _touched(outs[0], rows)
        if len(ins) > 2:
            flops = flops + R * P["n"]
            nbytes = nbytes + _touched(ins[2], rows)
        return flops, nbytes
    if kname.startswith("qembedding_"):   # one stored row per token, fp32 out
        return R * P["cols"] * 2, R * 4 + R * (ins[1].size // max(P["vocab"], 1)) + R * P["cols"] * 4
    if kname in ("gemm_grad", "gemm_grad_bias"):
        flops = R * P["n"] * P["k"] * 4
        return flops, sum((_touched(o, rows) for o in ins + outs), Sym(0))
    if kname in ("rmsnorm_qkv_rope", "rmsnorm_qkv_rope_bias"):
        C, H, KV, D, RD = P["cols"], P["heads"], P["kv_heads"], P["head_dim"], P["rotary_dim"]
        width = (H + 2 * KV) * D
        flops = R * C * width * 2 + R * C * 4 + R * (H + KV) * RD * 3
        weights = sum((Sym(o.size) for o in ins[1:] if o.region in WHOLE), Sym(0))
        nbytes = R * C * 4 + weights + R * width * 4 + R * C * 4
        return flops, nbytes
    if kname in ("attention", "attention_train", "attention_decode", "attention_grad"):
        H, KV, D = P["heads"], P["kv_heads"], P["head_dim"]
        if kname == "attention_decode":
            P = dict(P, rows=1)
        pairs, span = _keys(P)
        R = Sym.of(P.get("rows", 1))
        flops = pairs * (4 * H * D + 5 * H)
        nbytes = R * H * D * 8 + span * KV * D * 8
        if kname == "attention_grad":  # dq, dk, dv from q, k, v, out, dout: about twice the forward
            flops = flops * 2 + pairs * 5 * H
            nbytes = nbytes * 2 + R * H * D * 8
        return flops, nbytes
    if kname in ("rmsnorm", "rmsnorm_train", "layernorm", "layernorm_train", "rmsnorm_grad", "layernorm_grad"):
        per = {"rmsnorm": 4, "rmsnorm_train": 4, "layernorm": 7, "layernorm_train": 7,
               "rmsnorm_grad": 9, "layernorm_grad": 12}[kname]
        return R * P["cols"] * per, sum((_touched(o, rows) for o in ins + outs), Sym(0))
    if kname in ("rope", "rope_grad"):
        return (R * P["heads"] * P["rotary_dim"] * 3,
                R * P["heads"] * P["head_dim"] * 8)
    if kname in ("embedding", "embedding_grad"):
        table = R * P["cols"] * 4
        return R * P["cols"], R * 4 + table + table
    if kname in FLOPS_PER_ELEMENT:
        # the flat optimizer kernels take an element count n, the rest rows x cols
        n = Sym.of(P["n"]) if kname in ("clip_norm", "adamw_coef", "zero") else R * P.get("cols", 1)
        return n * FLOPS_PER_ELEMENT[kname], sum((_touched(o, rows) for o in ins + outs), Sym(0))
    return None


class _Calls:
    def __init__(self, module: ModuleOp):
        self.module = module
        self.out: list[dict] = []

    def value(self, v: SSAValue, env: dict) -> Expr:
        if v in env:
            return env[v]
        if isinstance(v, BlockArgument):
            return v.name_hint or f"arg{v.index}"
        op = v.owner
        if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr):
            return op.value.value.data
        if isinstance(op, (arith.AddiOp, arith.SubiOp, arith.MuliOp)):
            kind = {arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*"}[type(op)]
            return _fold(kind, self.value(op.lhs, env), self.value(op.rhs, env))
        raise ValueError(f"cannot express {v} in the function arguments")

    def walk(self, fname: str, block, trips: int, env: dict) -> None:
        for op in block.ops:
            if isinstance(op, B.LoopOp):
                self.walk(fname, op.body.block, trips * max(op.ub.data - op.lb.data, 0), env)
            elif isinstance(op, B.CallOp):
                self.call(fname, op, trips, env)

    def call(self, fname: str, call: B.CallOp, trips: int, env: dict) -> None:
        kname = call.kernel.data
        P: dict = {}
        for n, a in call.params.data.items():
            if isinstance(a, (IntegerAttr, FloatAttr)):
                P[n] = a.value.data
        for n, v in zip(call.dyn_names.data, call.dyn_params):
            P[n.data] = Sym(self.value(v, env))
        ins = [_operand(call, r) for r in call.in_refs]
        outs = [_operand(call, r) for r in call.out_refs]
        cost = call_cost(kname, P, ins, outs)
        variant = call.variant.data if call.variant is not None else None
        try:
            sym = kernel_abi.kernel(kname).symbol(variant) if variant else kname
        except KeyError:
            sym = kname
        self.out.append({
            "index": len(self.out),
            "function": fname,
            "kernel": kname,
            "variant": variant,
            "symbol": sym,
            "trips": trips,
            "ins": [r.buffer_name for r in call.in_refs],
            "outs": [r.buffer_name for r in call.out_refs],
            "flops": None if cost is None else Sym.of(cost[0]).e,
            "bytes": None if cost is None else Sym.of(cost[1]).e,
        })


def call_costs(module: ModuleOp) -> list[dict]:
    """One entry per buffer.call of a planned buffer-dialect module, in
    lower-to-c's call numbering (functions in module order, calls in program
    order, loop bodies in place). See the module docstring."""
    c = _Calls(module)
    for f in module.ops:
        if isinstance(f, func.FuncOp) and f.body.blocks:
            c.walk(f.sym_name.data, f.body.block, 1, {})
    return c.out
