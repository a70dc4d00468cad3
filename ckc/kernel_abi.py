"""The kernel ABI: how a ``buffer.call`` becomes a C call into libckernels.

`bufferize` writes calls like::

    buffer.call rmsnorm ins(@x, @"blk.0.attn_norm.weight") outs(@h)
        params(rows = %n : index, cols = 64 : i64, eps = 1.0e-05 : f32, w_offset = 0.0 : f32)

and `lower-to-c` turns each one into ``ck_rmsnorm_f32_<variant>(...)`` using
the table :data:`KERNELS` below: for every kernel name, the C base name, the
variants the library has, the return convention and the exact ordered C
parameter list, each parameter with its C type (as the prototype in
``kernels/include/ckernels.h`` spells it) and a *role* saying where the
argument comes from. ``tests/test_kernel_abi.py`` parses the header and checks
every entry against the real prototypes, so drift fails a test.

Roles (``Arg.role``):

- ``in`` / ``out`` (``Arg.index`` = i): pointer to the i-th buffer of the
  call's ``ins`` / ``outs`` (see *pointers* below);
- ``opt_in`` (index i): the i-th ``ins`` buffer if the call has more than i
  ins, else ``NULL`` (optional biases, rope's ``inv_freq``);
- ``param`` (``Arg.expr``): a scalar computed from the call's params:
  ``expr`` is a param name (static attribute or dynamic SSA value of the
  call), an int/float literal, or a tuple ``(op, lhs, rhs)`` with op one of
  ``"*" "+" "-"`` over such expressions (e.g. ``("*", "rows", "cols")`` for an
  elementwise kernel's ``int64_t n``). Evaluate with :func:`eval_expr` or walk
  it to build C. Cast to ``Arg.ctype``.
- ``func`` (``Arg.expr`` = a name): a scalar parameter of the compute
  function itself rather than of the call (the training step's runtime
  ``grad_scale``, see ``passes/lower_to_c.py`` TRAIN_PARAMS): buffer-dialect
  dynamic params are integers, so a runtime float travels this way;
- ``null``: the literal ``NULL`` (an output the forward pass does not need,
  e.g. rmsnorm's ``rstd``; attention's ``lse``);
- ``pool`` / ``nth``: the thread pool pointer and thread count of the
  compute function (last two parameters of every parallel kernel);
- ``scratch`` / ``scratch_size``: the GEMM workspace (``void *`` and its size
  in bytes) the runtime allocates once, 64-byte aligned, with
  ``ck_gemm_workspace_size(max_tokens, N, K, nth)`` bytes (the size depends only
  on nth, about 0.7 MiB per thread) and passes to the compute functions.

Return conventions (``Kernel.returns`` / ``Kernel.ret``): ``"void"``;
``"status"`` (``int``: ``CK_OK`` = 0 on success; the generated code should
turn anything else into a runtime error); ``"count"`` (``int``: embedding's
count of out-of-range token ids, 0 when all are valid; the runtime checks
token ids before calling, so a non-zero count is an error); ``"out"``
(``float``: the value is stored in element 0 of the call's ``outs[ret_index]``,
e.g. cross_entropy's mean loss). ``ret = "void"`` with a non-void ``c_return``
means the value is not used (``cross_entropy_fused``: the training runtime
averages the per-row losses itself; ``sumsq`` is called by
``ck_clip_norm_f32``, not through ``buffer.call``, as is ``ck_clip_coef_f32``,
which has no buffers and no pool and so no entry here).

Training (``@train_step`` after `autodiff`): ``*_train`` entries are the
forward kernels writing what the backward reads (rmsnorm's rstd, layernorm's
mean and rstd, attention's lse) into extra outs; ``*_grad`` entries are the
backward kernels (activation gradients overwritten, parameter gradients
accumulated ``+=`` into the ``grads`` buffers, so micro-batches accumulate
by calling ``@train_step`` again); ``axpy`` accumulates; ``clip_norm``,
``adamw_coef`` and ``zero`` are the compiled ``@optimizer_step`` and
``@zero_grads`` (`add-optimizer`), each one call over a flat block of many
tensors; ``adamw`` is the per-tensor update (grad_scale a static param).

Pointers. A buffer operand's pointer is the buffer's address (arena base +
offset, plus ``layer * stride`` for ``@name[%l]``) advanced by a *row offset*
when the call has a param named ``in<i>_row`` / ``out<i>_row`` (static int or
dynamic index): the pointer then starts at that row of the buffer, i.e.
``row * prod(type.shape[1:])`` elements further (``row`` elements for a 1-D
buffer). Views are expressed this way, never as copies: a KV-cache append
writes the new K/V rows at ``out0_row = %pos`` of the cache, GPT-2's fused
``attn_qkv`` weight is read at ``in1_row = 64`` (its K rows), the last row of
a prefill chunk is ``in0_row = %last``, learned positions read
``position_embd.weight`` at ``in1_row = %pos``. See :func:`row_param`.

Kernels the forward lowering uses but the library does not have are listed
in :data:`MISSING` (with how bufferize works around them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

Expr = Union[str, int, float, tuple]

VARIANTS_ALL = ("scalar", "avx2", "avx512")

ROLES = ("in", "opt_in", "out", "param", "null", "pool", "nth", "scratch", "scratch_size", "func")


@dataclass(frozen=True)
class Arg:
    """One C parameter: its name in the header, its C type, and its role."""

    name: str
    ctype: str
    role: str
    index: int | None = None
    expr: Expr | None = None

    def __post_init__(self) -> None:
        assert self.role in ROLES, self.role
        if self.role in ("in", "opt_in", "out"):
            assert isinstance(self.index, int), self
        if self.role in ("param", "func"):
            assert self.expr is not None, self


@dataclass(frozen=True)
class Kernel:
    """One kernel family as `buffer.call` names it."""

    name: str                 # buffer.call kernel name
    c_base: str               # C symbol without the variant: ck_<op>_f32
    args: tuple[Arg, ...]
    c_return: str = "void"    # C return type as in the header
    ret: str = "void"         # void | status | count | out
    ret_index: int = 0        # with ret == "out": which outs buffer gets the value
    variants: tuple[str, ...] = VARIANTS_ALL
    doc: str = ""
    ins: tuple[str, ...] = field(default=())   # meaning of each ins buffer
    outs: tuple[str, ...] = field(default=())  # meaning of each outs buffer

    def symbol(self, variant: str) -> str:
        if variant not in self.variants:
            raise KeyError(f"kernel {self.name} has no variant {variant}")
        return f"{self.c_base}_{variant}"

    @property
    def params(self) -> set[str]:
        """Names of the call params this kernel's arguments read."""
        out: set[str] = set()
        for a in self.args:
            if a.role == "param":
                out |= expr_names(a.expr)
        return out

    @property
    def n_ins(self) -> tuple[int, int]:
        """(required, maximum) number of ins buffers."""
        req = [a.index for a in self.args if a.role == "in"]
        opt = [a.index for a in self.args if a.role == "opt_in"]
        return (max(req) + 1 if req else 0, max(req + opt) + 1 if req + opt else 0)

    @property
    def n_outs(self) -> int:
        idx = [a.index for a in self.args if a.role == "out"]
        n = max(idx) + 1 if idx else 0
        if self.ret == "out":
            n = max(n, self.ret_index + 1)
        return n


def _in(name: str, i: int, ctype: str = "const float *") -> Arg:
    return Arg(name, ctype, "in", i)


def _opt(name: str, i: int, ctype: str = "const float *") -> Arg:
    return Arg(name, ctype, "opt_in", i)


def _out(name: str, i: int, ctype: str = "float *") -> Arg:
    return Arg(name, ctype, "out", i)


def _p(name: str, ctype: str, expr: Expr | None = None) -> Arg:
    return Arg(name, ctype, "param", expr=name if expr is None else expr)


def _null(name: str, ctype: str = "float *") -> Arg:
    return Arg(name, ctype, "null")


_POOL = (Arg("pool", "ck_pool *", "pool"), Arg("nth", "int", "nth"))
_N = _p("n", "int64_t", ("*", "rows", "cols"))


def _k(*args, **kw) -> Kernel:
    return Kernel(*args, **kw)


KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in (
        _k("gemm", "ck_gemm_f32", (
            _in("x", 0), _in("W", 1), _opt("b", 2), _out("y", 0),
            _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"),
            _p("accumulate", "int", 0),
            Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
            c_return="int", ret="status", ins=("x [rows, k]", "W [n, k]", "bias [n] (optional)"),
            outs=("y [rows, n]",), doc="y = x . W^T + b (linear layer, weights [out, in])"),
        _k("gemm_packed", "ck_gemm_packed_f32", (
            _in("x", 0), _in("Wp", 1), _opt("b", 2), _out("y", 0),
            _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"),
            _p("accumulate", "int", 0),
            Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
            c_return="int", ret="status",
            ins=("x [rows, k]", "W [n, k] in layout p32 (prepacked by pack-weights)", "bias [n] (optional)"),
            outs=("y [rows, n]",), doc="y = x . W^T + b with W stored prepacked (no per-call packing)"),
        *(_k(name, "ck_rmsnorm_qkv_rope_f32", (
            _in("x", 0), _in("nw", 1), _in("wq", 2), _in("wk", 3), _in("wv", 4),
            *((_in("bq", 5), _in("bk", 6), _in("bv", 7)) if bias else
              (_null("bq", "const float *"), _null("bk", "const float *"), _null("bv", "const float *"))),
            _opt("inv_freq", 8 if bias else 5),
            _out("q", 0), _out("k", 1), _out("v", 2), _out("h", 3),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("heads", "int"), _p("kv_heads", "int"),
            _p("head_dim", "int"), _p("rotary_dim", "int"), _p("pos0", "int", "pos"), _p("theta", "float"),
            _p("style", "int"), _p("eps", "float"), _p("w_offset", "float"), _p("packed", "int"),
            Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
            c_return="int", ret="status",
            ins=("x [rows, cols]", "norm w [cols]", "Wq [heads*head_dim, cols]", "Wk [kv_heads*head_dim, cols]",
                 "Wv [kv_heads*head_dim, cols]")
            + (("bq", "bk", "bv") if bias else ()) + ("inv_freq [rotary_dim/2] (optional)",),
            outs=("q [rows, heads*head_dim]", "k [rows, kv_heads*head_dim]", "v [rows, kv_heads*head_dim]",
                  "h [rows, cols] (scratch: the normalized x)"),
            doc="fused attention input: rmsnorm, q/k/v projections" + (" with biases" if bias else "")
            + ", rope on q and k; packed = 1: W* in layout p32")
          for name, bias in (("rmsnorm_qkv_rope", False), ("rmsnorm_qkv_rope_bias", True))),
        _k("rmsnorm", "ck_rmsnorm_f32", (
            _in("x", 0), _in("w", 1), _out("y", 0), _null("rstd"),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
            _p("w_offset", "float"), *_POOL),
            ins=("x [rows, cols]", "w [cols]"), outs=("y [rows, cols]",),
            doc="RMSNorm of each row (QK-norm: rows = tokens*heads, cols = head_dim)"),
        _k("layernorm", "ck_layernorm_f32", (
            _in("x", 0), _in("w", 1), _opt("b", 2), _out("y", 0), _null("mean"), _null("rstd"),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
            _p("w_offset", "float"), *_POOL),
            ins=("x [rows, cols]", "w [cols]", "b [cols] (optional)"), outs=("y [rows, cols]",)),
        _k("rope", "ck_rope_f32", (
            _in("x", 0), _out("y", 0), _null("pos", "const int32_t *"), _opt("inv_freq", 1),
            _p("T", "int", "rows"), _p("heads", "int"), _p("head_dim", "int"),
            _p("rotary_dim", "int"), _p("pos0", "int", "pos"), _p("theta", "float"),
            _p("style", "int"), *_POOL),
            c_return="int", ret="status", ins=("x [rows, heads*head_dim]", "inv_freq [rotary_dim/2] (optional)"),
            outs=("y [rows, heads*head_dim]",), doc="style: 0 neox, 1 interleaved; row t at position pos + t"),
        _k("attention", "ck_attention_f32", (
            _in("q", 0), _in("k", 1), _in("v", 2), _out("out", 0), _null("lse"),
            _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
            _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
            _p("scale", "float"), _p("softcap", "float"), *_POOL),
            c_return="int", ret="status",
            ins=("q [rows, heads*head_dim]", "k cache [context, kv_heads*head_dim]", "v cache"),
            outs=("out [rows, heads*head_dim]",), doc="causal GQA attention of rows new tokens at pos.."),
        _k("attention_decode", "ck_attention_decode_f32", (
            _in("q", 0), _in("k_cache", 1), _in("v_cache", 2), _out("out", 0),
            _p("n_past", "int", "pos"), _p("H", "int", "heads"), _p("KV", "int", "kv_heads"),
            _p("D", "int", "head_dim"), _p("window", "int"), _p("scale", "float"),
            _p("softcap", "float"), *_POOL),
            c_return="int", ret="status",
            ins=("q [1, heads*head_dim]", "k cache", "v cache"), outs=("out [1, heads*head_dim]",)),
        _k("add", "ck_add_f32", (_in("a", 0), _in("b", 1), _out("y", 0), _N, *_POOL),
           ins=("a [rows, cols]", "b [rows, cols]"), outs=("y",)),
        _k("mul", "ck_mul_f32", (_in("a", 0), _in("b", 1), _out("y", 0), _N, *_POOL),
           ins=("a [rows, cols]", "b [rows, cols]"), outs=("y",)),
        _k("scale", "ck_scale_f32", (_in("x", 0), _out("y", 0), _N, _p("s", "float", "factor"), *_POOL),
           ins=("x [rows, cols]",), outs=("y",)),
        _k("copy", "ck_scale_f32", (_in("x", 0), _out("y", 0), _N, _p("s", "float", 1.0), *_POOL),
           ins=("x [rows, cols]",), outs=("y",), doc="y = x (ck_scale_f32 with s = 1: exact)"),
        _k("silu", "ck_silu_f32", (_in("x", 0), _out("y", 0), _N, *_POOL), ins=("x",), outs=("y",)),
        _k("gelu", "ck_gelu_f32", (_in("x", 0), _out("y", 0), _N, _p("approx", "int"), *_POOL),
           ins=("x",), outs=("y",), doc="approx 0: erf, 1: tanh"),
        _k("softcap", "ck_softcap_f32", (_in("x", 0), _out("y", 0), _N, _p("cap", "float"), *_POOL),
           ins=("x",), outs=("y",)),
        _k("swiglu", "ck_swiglu_f32", (
            _in("gate", 0), _in("up", 1), _out("y", 0), _p("T", "int", "rows"), _p("F", "int", "cols"),
            _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"), *_POOL),
            ins=("gate [rows, cols]", "up [rows, cols]"), outs=("y [rows, cols]",)),
        _k("geglu", "ck_geglu_f32", (
            _in("gate", 0), _in("up", 1), _out("y", 0), _p("T", "int", "rows"), _p("F", "int", "cols"),
            _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"), _p("approx", "int"), *_POOL),
            ins=("gate [rows, cols]", "up [rows, cols]"), outs=("y [rows, cols]",)),
        _k("softmax", "ck_softmax_f32", (
            _in("x", 0), _out("y", 0), _p("T", "int", "rows"), _p("C", "int", "cols"), *_POOL),
            ins=("x [rows, cols]",), outs=("y",)),
        _k("embedding", "ck_embedding_f32", (
            _in("ids", 0, "const int32_t *"), _in("table", 1), _out("out", 0),
            _p("T", "int", "rows"), _p("vocab", "int"), _p("C", "int", "cols"), _p("scale", "float"), *_POOL),
            c_return="int", ret="count", ins=("ids [rows] (i32)", "table [vocab, cols]"),
            outs=("out [rows, cols]",)),
        _k("cross_entropy", "ck_cross_entropy_f32", (
            _in("logits", 0), _in("targets", 1, "const int32_t *"), _null("dlogits"), _null("losses"),
            _p("T", "int", "rows"), _p("V", "int", "cols"), _p("ignore_index", "int"),
            _p("grad_scale", "float", 1.0), *_POOL),
            c_return="float", ret="out", ret_index=0,
            ins=("logits [rows, cols]", "targets [rows] (i32)"), outs=("loss [] (f32)",),
            doc="mean cross-entropy, stored in element 0 of outs[0]"),
        # ---- training: forward kernels that also save what the backward reads ----
        _k("rmsnorm_train", "ck_rmsnorm_f32", (
            _in("x", 0), _in("w", 1), _out("y", 0), _out("rstd", 1),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
            _p("w_offset", "float"), *_POOL),
            ins=("x [rows, cols]", "w [cols]"), outs=("y [rows, cols]", "rstd [rows] (saved)"),
            doc="rmsnorm that saves rstd for rmsnorm_grad"),
        _k("layernorm_train", "ck_layernorm_f32", (
            _in("x", 0), _in("w", 1), _opt("b", 2), _out("y", 0), _out("mean", 1), _out("rstd", 2),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
            _p("w_offset", "float"), *_POOL),
            ins=("x [rows, cols]", "w [cols]", "b [cols] (optional)"),
            outs=("y [rows, cols]", "mean [rows] (saved)", "rstd [rows] (saved)")),
        _k("attention_train", "ck_attention_f32", (
            _in("q", 0), _in("k", 1), _in("v", 2), _out("out", 0), _out("lse", 1),
            _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
            _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
            _p("scale", "float"), _p("softcap", "float"), *_POOL),
            c_return="int", ret="status",
            ins=("q [rows, heads*head_dim]", "k [rows, kv_heads*head_dim]", "v"),
            outs=("out [rows, heads*head_dim]", "lse [rows, heads] (saved)")),
        _k("cross_entropy_fused", "ck_cross_entropy_f32", (
            _in("logits", 0), _in("targets", 1, "const int32_t *"), _out("dlogits", 0), _out("losses", 1),
            _p("T", "int", "rows"), _p("V", "int", "cols"), _p("ignore_index", "int"),
            Arg("grad_scale", "float", "func", expr="grad_scale"), *_POOL),
            c_return="float", ret="void",
            ins=("logits [rows, cols]", "targets [rows] (i32)"),
            outs=("dlogits [rows, cols]", "losses [rows] (per-row loss, 0 for ignored rows)"),
            doc="loss and dlogits in one pass; the returned mean is not used (the runtime averages "
            "outs[1] over the valid targets)"),
        # ---- backward: activation gradients are overwritten, parameter gradients accumulate (+=) ----
        _k("gemm_grad", "ck_gemm_grad_f32", (
            _in("dy", 0), _in("x", 1), _in("W", 2), _out("dx", 0), _out("dW", 1), _null("db"),
            _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"), _p("flags", "int"),
            Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
            c_return="int", ret="status", ins=("dy [rows, n]", "x [rows, k]", "W [n, k]"),
            outs=("dx [rows, k]", "dW [n, k]"), doc="flags: CK_GEMM_ACC_DX 1 | _DW 2 | _DB 4 (+= instead of =)"),
        _k("gemm_grad_bias", "ck_gemm_grad_f32", (
            _in("dy", 0), _in("x", 1), _in("W", 2), _out("dx", 0), _out("dW", 1), _out("db", 2),
            _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"), _p("flags", "int"),
            Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
            c_return="int", ret="status", ins=("dy [rows, n]", "x [rows, k]", "W [n, k]"),
            outs=("dx [rows, k]", "dW [n, k]", "db [n]")),
        _k("rmsnorm_grad", "ck_rmsnorm_grad_f32", (
            _in("dy", 0), _in("x", 1), _in("w", 2), _in("rstd", 3), _out("dx", 0), _out("dw", 1),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("w_offset", "float"), *_POOL),
            ins=("dy [rows, cols]", "x", "w [cols]", "rstd [rows]"), outs=("dx [rows, cols]", "dw [cols] (+=)")),
        _k("layernorm_grad", "ck_layernorm_grad_f32", (
            _in("dy", 0), _in("x", 1), _in("w", 2), _in("mean", 3), _in("rstd", 4),
            _out("dx", 0), _out("dw", 1), _out("db", 2),
            _p("T", "int", "rows"), _p("C", "int", "cols"), _p("w_offset", "float"), *_POOL),
            ins=("dy [rows, cols]", "x", "w [cols]", "mean [rows]", "rstd [rows]"),
            outs=("dx [rows, cols]", "dw [cols] (+=)", "db [cols] (+=)")),
        _k("rope_grad", "ck_rope_grad_f32", (
            _in("dy", 0), _out("dx", 0), _null("pos", "const int32_t *"), _opt("inv_freq", 1),
            _p("T", "int", "rows"), _p("heads", "int"), _p("head_dim", "int"),
            _p("rotary_dim", "int"), _p("pos0", "int", "pos"), _p("theta", "float"),
            _p("style", "int"), *_POOL),
            c_return="int", ret="status", ins=("dy [rows, heads*head_dim]", "inv_freq (optional)"),
            outs=("dx [rows, heads*head_dim]",)),
        _k("attention_grad", "ck_attention_grad_f32", (
            _in("q", 0), _in("k", 1), _in("v", 2), _in("out", 3), _in("dout", 4), _in("lse", 5),
            _out("dq", 0), _out("dk", 1), _out("dv", 2),
            _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
            _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
            _p("scale", "float"), _p("softcap", "float"), *_POOL),
            c_return="int", ret="status",
            ins=("q", "k", "v", "out (forward)", "dout", "lse (saved by attention_train)"),
            outs=("dq [rows, heads*head_dim]", "dk [rows, kv_heads*head_dim]", "dv")),
        _k("silu_grad", "ck_silu_grad_f32", (_in("x", 0), _in("dy", 1), _out("dx", 0), _N, *_POOL),
           ins=("x", "dy"), outs=("dx",)),
        _k("gelu_grad", "ck_gelu_grad_f32", (_in("x", 0), _in("dy", 1), _out("dx", 0), _N, _p("approx", "int"),
                                              *_POOL), ins=("x", "dy"), outs=("dx",)),
        _k("softcap_grad", "ck_softcap_grad_f32", (_in("x", 0), _in("dy", 1), _out("dx", 0), _N,
                                                    _p("cap", "float"), *_POOL), ins=("x", "dy"), outs=("dx",)),
        _k("swiglu_grad", "ck_swiglu_grad_f32", (
            _in("gate", 0), _in("up", 1), _in("dy", 2), _out("dgate", 0), _out("dup", 1),
            _p("T", "int", "rows"), _p("F", "int", "cols"), _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"),
            *_POOL), ins=("gate [rows, cols]", "up", "dy"), outs=("dgate", "dup")),
        _k("geglu_grad", "ck_geglu_grad_f32", (
            _in("gate", 0), _in("up", 1), _in("dy", 2), _out("dgate", 0), _out("dup", 1),
            _p("T", "int", "rows"), _p("F", "int", "cols"), _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"),
            _p("approx", "int"), *_POOL), ins=("gate [rows, cols]", "up", "dy"), outs=("dgate", "dup")),
        _k("softmax_grad", "ck_softmax_grad_f32", (
            _in("y", 0), _in("dy", 1), _out("dx", 0), _p("T", "int", "rows"), _p("C", "int", "cols"), *_POOL),
            ins=("y (forward output)", "dy"), outs=("dx",)),
        _k("embedding_grad", "ck_embedding_grad_f32", (
            _in("ids", 0, "const int32_t *"), _in("dout", 1), _out("dtable", 0),
            _p("T", "int", "rows"), _p("vocab", "int"), _p("C", "int", "cols"), _p("scale", "float"), *_POOL),
            ins=("ids [rows] (i32)", "dout [rows, cols]"), outs=("dtable [vocab, cols] (scatter-add +=)",)),
        _k("axpy", "ck_axpy_f32", (_out("y", 0), _in("x", 0), _N, _p("a", "float"), *_POOL),
           ins=("x [rows, cols]",), outs=("y [rows, cols] (read and written: y += a*x)",),
           doc="gradient accumulation (tensorop.accumulate), learned-position gradients"),
        # ---- optimizer: one tensor per call ----
        _k("adamw", "ck_adamw_f32", (
            _out("param", 0), _in("grad", 0), _out("m", 1), _out("v", 2), _N, _p("lr", "float"),
            _p("beta1", "float"), _p("beta2", "float"), _p("eps", "float"), _p("weight_decay", "float"),
            _p("step", "int"), _p("grad_scale", "float"), *_POOL),
            ins=("grad",), outs=("param (updated)", "m (updated)", "v (updated)"),
            doc="torch.optim.AdamW on one tensor; grad_scale = the clip coefficient"),
        _k("sumsq", "ck_sumsq_f32", (_in("x", 0), _N, *_POOL), c_return="double", ret="void",
           ins=("x",), doc="sum of squares (double), phase 1 of global-norm clipping (no buffer.call emits it: "
           "ck_clip_norm_f32 calls it)"),
        # ---- the compiled @optimizer_step / @zero_grads (bufferize), over flat parallel blocks ----
        _k("clip_norm", "ck_clip_norm_f32", (
            _in("g", 0), _p("n", "int64_t"), _p("max_norm", "float"), _out("norm", 0), _out("coef", 1), *_POOL),
            ins=("g [n] (all gradients, one flat block)",), outs=("norm [1] (global L2 norm)",
                                                                   "coef [1] (clip coefficient, 1 = none)"),
            doc="global gradient norm and clip_grad_norm_'s coefficient min(1, max_norm/(norm+1e-6))"),
        _k("adamw_coef", "ck_adamw_coef_f32", (
            _out("param", 0), _in("grad", 0), _out("m", 1), _out("v", 2), _opt("coef", 1), _p("n", "int64_t"),
            Arg("lr", "float", "func", expr="lr"), _p("beta1", "float"), _p("beta2", "float"), _p("eps", "float"),
            _p("weight_decay", "float"), Arg("step", "int", "func", expr="step"), *_POOL),
            ins=("grad [n]", "coef [1] (clip coefficient; optional)"),
            outs=("param [n] (updated)", "m [n] (updated)", "v [n] (updated)"),
            doc="torch.optim.AdamW over n floats (many tensors of one parameter group when flat); lr and step "
            "are @optimizer_step's runtime parameters"),
        _k("zero", "ck_zero_f32", (_out("x", 0), _p("n", "int64_t"), *_POOL), outs=("x [n] (zeroed)",),
           doc="x = 0 (@zero_grads over the gradient block)"),
    )
}

MISSING: dict[str, str] = {
    "kv_write": "no row-copy kernel; bufferize makes the producer of the new K/V rows write them into the "
    "cache in place (out0_row = pos), or falls back to `copy` (ck_scale_f32 with s = 1)",
    "last_rows": "no kernel needed: a view (in0_row = rows - 1)",
    "positions": "no kernel needed: learned positions read position_embd.weight at in1_row = pos",
    "rmsnorm with bias": "ck_rmsnorm_f32 has no bias; no supported family needs it (bufferize rejects it)",
    "matmul without transpose_b": "ck_gemm_f32 only computes x . W^T; inference never needs another form",
}


def row_param(kind: str, index: int) -> str:
    """The call param naming the row offset of a buffer operand: ``in0_row``."""
    assert kind in ("in", "out")
    return f"{kind}{index}_row"


def kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise KeyError(f"unknown kernel '{name}' (known: {', '.join(sorted(KERNELS))})") from None


def expr_names(expr: Expr) -> set[str]:
    if isinstance(expr, str):
        return {expr}
    if isinstance(expr, tuple):
        _, a, b = expr
        return expr_names(a) | expr_names(b)
    return set()


def eval_expr(expr: Expr, env: dict[str, Any]) -> Any:
    """Evaluates a param expression with `env` giving the call's param values
    (Python numbers; any objects supporting * + - work, e.g. sympy or a C
    expression builder)."""
    if isinstance(expr, str):
        return env[expr]
    if isinstance(expr, tuple):
        op, a, b = expr
        x, y = eval_expr(a, env), eval_expr(b, env)
        if op == "*":
            return x * y
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        raise ValueError(f"unknown operator {op!r}")
    return expr


# ---------------------------------------------------------------------------
# reading the header
# ---------------------------------------------------------------------------


def header_path() -> Path:
    return Path(__file__).resolve().parent.parent / "kernels" / "include" / "ckernels.h"


@dataclass(frozen=True)
class Prototype:
    name: str
    returns: str
    params: tuple[tuple[str, str], ...]  # (C type, name)


def _norm_type(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip())
    text = re.sub(r"\s*\*\s*", " *", text)
    return text.replace("* *", "**").strip()


def _split_param(text: str) -> tuple[str, str]:
    m = re.match(r"^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*$", text.strip(), re.S)
    if not m:
        raise ValueError(f"cannot parse C parameter '{text}'")
    return _norm_type(m.group(1)), m.group(2)


def _params(text: str) -> tuple[tuple[str, str], ...]:
    text = text.strip()
    if text in ("", "void"):
        return ()
    return tuple(_split_param(p) for p in text.split(","))


def parse_header(path: str | Path | None = None) -> dict[str, Prototype]:
    """Every function prototype of ckernels.h by symbol, ``CK_DECLARE_VARIANTS``
    expanded (one prototype per variant)."""
    src = Path(path or header_path()).read_text()
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    src = re.sub(r"//[^\n]*", " ", src)
    src = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", src, flags=re.M)  # preprocessor lines
    out: dict[str, Prototype] = {}
    # CK_DECLARE_VARIANTS(ret, op, (params))
    for m in re.finditer(r"CK_DECLARE_VARIANTS\s*\(\s*([^,]+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*\(([^()]*)\)\s*\)", src):
        ret, op, params = _norm_type(m.group(1)), m.group(2), _params(m.group(3))
        for v in VARIANTS_ALL:
            out[f"{op}_{v}"] = Prototype(f"{op}_{v}", ret, params)
    rest = re.sub(r"CK_DECLARE_VARIANTS\s*\([^;]*?\)\s*\)", " ", src, flags=re.S)
    for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_ \t\n*]*?)\b([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)\s*;", rest):
        ret, name = _norm_type(m.group(1)), m.group(2)
        if ret.startswith("typedef") or not ret:
            continue
        out[name] = Prototype(name, ret, _params(m.group(3)))
    return out


def check_against_header(protos: dict[str, Prototype] | None = None) -> list[str]:
    """Problems of the table against the header (empty when it agrees)."""
    protos = protos if protos is not None else parse_header()
    problems: list[str] = []
    for k in KERNELS.values():
        for v in k.variants:
            sym = k.symbol(v)
            p = protos.get(sym)
            if p is None:
                problems.append(f"{k.name}: {sym} is not declared in ckernels.h")
                continue
            if p.returns != _norm_type(k.c_return):
                problems.append(f"{k.name}: {sym} returns {p.returns}, table says {k.c_return}")
            if len(p.params) != len(k.args):
                problems.append(f"{k.name}: {sym} has {len(p.params)} parameters, table lists {len(k.args)}")
                continue
            for (ctype, cname), a in zip(p.params, k.args):
                if cname != a.name or ctype != _norm_type(a.ctype):
                    problems.append(
                        f"{k.name}: {sym} parameter '{ctype} {cname}', table says '{a.ctype} {a.name}'"
                    )
    return problems
