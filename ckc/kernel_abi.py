"""The kernel ABI's schema: how a tensorop op becomes a ``buffer.call``, and
the call a C call into libckernels.

The table itself, one entry per kernel, is ``kernels/include/ckernels_abi.py``,
next to the header whose prototypes it describes (see that module for why it
lives there); this module defines what an entry is (:class:`Kernel`,
:class:`Arg`, :class:`OpMap`), loads the table into :data:`KERNELS`, parses
the header and checks the table against it. ``from ckc import kernel_abi``
is how the compiler reads the contract.

`bufferize` writes calls like::

    buffer.call rmsnorm ins(@x, @"blk.0.attn_norm.weight") outs(@h)
        params(rows = %n : index, cols = 64 : i64, eps = 1.0e-05 : f32, w_offset = 0.0 : f32)

and `lower-to-c` turns each one into ``ck_rmsnorm_f32_<variant>(...)`` using
the table :data:`KERNELS`: for every kernel name, the C base name, the
variants the library has, the return convention and the exact ordered C
parameter list, each parameter with its C type (as the prototype in
``kernels/include/ckernels.h`` spells it) and a *role* saying where the
argument comes from. ``test/py/test_kernel_abi.py`` parses the header and checks
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
  on nth, about 0.7 MiB per thread), or more when the model has quantized GEMMs:
  the max with ``ck_qgemm_workspace_size`` / ``ck_qkgemm_workspace_size`` of each
  weight format they read (lower-to-c's ``ckc_gen_qgemm_*`` tables, see
  :data:`QUANT_FORMATS`), and passes it to the compute functions.

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

Ops. ``Kernel.op`` names the op a kernel implements (``tensorop.silu``).
With ``Kernel.map`` (an :class:`OpMap`) `bufferize` lowers that op with its
one generic rule: the op's operands become the call's ins, its results the
outs, and the call's params are computed from the op's properties and shapes
by :data:`Expr` expressions (below). Kernels without a map (views, KV
writes, the ``*_train`` forwards that save statistics, the gradients that
read them, the runtime-called optimizer kernels) have hand-written rules in
``passes/bufferize.py``. :func:`by_op` is the generic rule's index.

Kernels the forward lowering uses but the library does not have are listed
in :data:`MISSING` (with how bufferize works around them).
"""

from __future__ import annotations

import importlib.util
import re
import sys
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
class OpMap:
    """How bufferize's generic rule turns the op a kernel implements into a
    ``buffer.call`` of that kernel.

    - ``ins``: the op's operands, in the kernel's ``ins`` order, by name (an
      optional operand that is absent is left out, so optional ones go last);
    - ``outs``: the op's results in the kernel's ``outs`` order (default: the
      single ``result``);
    - ``params``: ``(call param, Expr)`` pairs for the params whose value is
      not the op's value of the same name. Every other param the kernel reads
      (:attr:`Kernel.param_order`) is looked up by its own name. Names in an
      expression resolve, in this order, to: ``rows`` / ``cols``, the row
      count (static, or the function's ``%n``) and the row size of the
      ``shape`` value; ``<value>.<i>``, dimension i of the operand or result
      named value (``w.0``); a scalar operand (``pos``: the function argument
      or constant); a property (``prop_values()``, defaults applied). Beyond
      ``* + -``, expressions may use ``("//", a, b)``, ``("or", a, b)`` (``b``
      when ``a`` is unset: an optional property's default) and
      ``("enum", name, ((value, number), ...))`` (a string property as the
      kernel's integer). Values go into the call cast to the C type of the
      kernel parameter that reads them (``float`` -> f32, ``int`` -> i64);
    - ``shape``: the value whose rows / cols ``rows`` / ``cols`` are (default:
      the first result);
    - ``hints``: the buffer-name hint of each result without a name of its own
      (default: the kernel's name);
    - ``require``: ``(property, value)`` pairs the op must have, else
      bufferize rejects it with ``unsupported``.
    """

    ins: tuple[str, ...]
    outs: tuple[str, ...] = ("result",)
    params: tuple[tuple[str, Expr], ...] = ()
    shape: str | None = None
    hints: tuple[str, ...] = ()
    require: tuple[tuple[str, Any], ...] = ()
    unsupported: str = ""


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
    op: str = ""              # the op it implements ("tensorop.silu"); "" = called by the runtime only
    map: OpMap | None = None  # set: bufferize's generic rule lowers `op` to this kernel

    def symbol(self, variant: str) -> str:
        if variant not in self.variants:
            raise KeyError(f"kernel {self.name} has no variant {variant}")
        return f"{self.c_base}_{variant}"

    @property
    def params(self) -> set[str]:
        """Names of the call params this kernel's arguments read."""
        return set(self.param_order)

    @property
    def param_order(self) -> tuple[str, ...]:
        """The call params this kernel's arguments read, in the order they are
        first read (the order bufferize writes them in)."""
        out: dict[str, None] = {}
        for a in self.args:
            if a.role == "param":
                out.update(dict.fromkeys(_expr_names_ordered(a.expr)))
        return tuple(out)

    def param_ctype(self, name: str) -> str | None:
        """The C type of the parameter that reads call param `name` as it is,
        None when only expressions read it."""
        for a in self.args:
            if a.role == "param" and a.expr == name:
                return a.ctype
        return None

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



# -- the vocabulary the table is written in ---------------------------------


def arg_in(name: str, i: int, ctype: str = "const float *") -> Arg:
    return Arg(name, ctype, "in", i)


def arg_opt(name: str, i: int, ctype: str = "const float *") -> Arg:
    return Arg(name, ctype, "opt_in", i)


def arg_out(name: str, i: int, ctype: str = "float *") -> Arg:
    return Arg(name, ctype, "out", i)


def arg_param(name: str, ctype: str, expr: Expr | None = None) -> Arg:
    """A scalar parameter from the call param `expr` (default: its own name)."""
    return Arg(name, ctype, "param", expr=name if expr is None else expr)


def arg_null(name: str, ctype: str = "float *") -> Arg:
    return Arg(name, ctype, "null")


POOL_ARGS = (Arg("pool", "ck_pool *", "pool"), Arg("nth", "int", "nth"))
"""The last two parameters of every parallel kernel."""
N_ELEMENTS = arg_param("n", "int64_t", ("*", "rows", "cols"))
"""An elementwise kernel's ``int64_t n``: rows * cols."""


def row_param(kind: str, index: int) -> str:
    """The call param naming the row offset of a buffer operand: ``in0_row``."""
    assert kind in ("in", "out")
    return f"{kind}{index}_row"


def kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise KeyError(f"unknown kernel '{name}' (known: {', '.join(sorted(KERNELS))})") from None


def _expr_names_ordered(expr: Expr) -> list[str]:
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, tuple):
        if expr[0] == "enum":
            return _expr_names_ordered(expr[1])
        _, a, b = expr
        return _expr_names_ordered(a) + _expr_names_ordered(b)
    return []


def expr_names(expr: Expr) -> set[str]:
    return set(_expr_names_ordered(expr))


def eval_expr(expr: Expr, env: dict[str, Any]) -> Any:
    """Evaluates a param expression with `env` giving the call's param values
    (Python numbers; any objects supporting * + - work, e.g. sympy or a C
    expression builder)."""
    if isinstance(expr, str):
        return env[expr]
    if isinstance(expr, tuple):
        if expr[0] == "enum":
            value, table = eval_expr(expr[1], env), dict(expr[2])
            if value not in table:
                raise ValueError(f"{expr[1]} = {value!r} is not one of {', '.join(map(repr, table))}")
            return table[value]
        op, a, b = expr
        x, y = eval_expr(a, env), eval_expr(b, env)
        if op == "*":
            return x * y
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "//":
            return x // y
        if op == "or":
            return y if x is None else x
        raise ValueError(f"unknown operator {op!r}")
    return expr


# ---- quantized weights (GGUF block formats kept from import to kernel) ----
# Format name (dialects/quant.py) -> (ck_qtype number, workspace query, repack kernel).
# workspace: "q" = ck_qgemm_workspace_size(fmt, M, N, K, nth) (block formats, f16,
# bf16: 0), "qk" = ck_qkgemm_workspace_size (K-quants); the runtime allocates the
# max of these and ck_gemm_workspace_size (runtime/library/ckc_runtime.c).
# packed: ck_qpack_<fmt> + ck_qgemm_packed_<fmt> exist (8-row interleave, layout r8).
# The table (kernels/include/ckernels_abi.py) has a qgemm_<fmt> [, qgemm_packed_<fmt>]
# and qembedding_<fmt> entry per row; bufferize's matmul / embedding rules pick them
# by the weight's element type.
QUANT_FORMATS: dict[str, tuple[int, str, bool]] = {
    "q8_0": (8, "q", True), "q4_0": (2, "q", True), "q4_1": (3, "q", True),
    "q5_0": (6, "q", True), "q5_1": (7, "q", True),
    "f16": (1, "q", False), "bf16": (30, "q", False),
    "q2_k": (10, "qk", False), "q3_k": (11, "qk", False), "q4_k": (12, "qk", False),
    "q5_k": (13, "qk", False), "q6_k": (14, "qk", False),
}


def qgemm_kernel(fmt: str, packed: bool = False) -> str:
    """The buffer.call kernel name of a Linear layer over a ``fmt`` weight."""
    return f"qgemm_packed_{fmt}" if packed else f"qgemm_{fmt}"


def qembedding_kernel(fmt: str) -> str:
    return f"qembedding_{fmt}"


def qgemm_format(kernel_name: str) -> tuple[str, bool] | None:
    """(format, packed) of a qgemm kernel name, or None for any other kernel."""
    for prefix, packed in (("qgemm_packed_", True), ("qgemm_", False)):
        if kernel_name.startswith(prefix) and kernel_name[len(prefix):] in QUANT_FORMATS:
            return kernel_name[len(prefix):], packed
    return None


def by_op(kernels: dict[str, Kernel] | None = None) -> dict[str, Kernel]:
    """Op name -> the kernel bufferize's generic rule lowers it to (the
    entries with a ``map``; at most one per op)."""
    out: dict[str, Kernel] = {}
    for k in (KERNELS if kernels is None else kernels).values():
        if k.map is None:
            continue
        if k.op in out:
            raise ValueError(f"kernels {out[k.op].name} and {k.name} both map {k.op}")
        out[k.op] = k
    return out


def register(k: Kernel) -> Kernel:
    """Adds an entry to :data:`KERNELS` (a plugin's kernel; tests add a toy
    op this way). Its name, and the op it maps, must be new."""
    if k.name in KERNELS:
        raise ValueError(f"kernel '{k.name}' is already in the ABI table")
    if k.map is not None and k.op in by_op():
        raise ValueError(f"{k.op} is already mapped to kernel '{by_op()[k.op].name}'")
    if k.map is not None and not k.op:
        raise ValueError(f"kernel '{k.name}' has a map but names no op")
    KERNELS[k.name] = k
    return k


# ---------------------------------------------------------------------------
# reading the header
# ---------------------------------------------------------------------------


def header_path() -> Path:
    return Path(__file__).resolve().parent.parent / "kernels" / "include" / "ckernels.h"


def table_path() -> Path:
    return header_path().with_name("ckernels_abi.py")


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
    # one-parameter declaration macros (CK_DECLARE_QGEMM(fmt): a family per format)
    macros = {m.group(1): (m.group(2), m.group(3).replace("\\\n", " "))
              for m in re.finditer(r"^\s*#\s*define\s+(CK_DECLARE_[A-Z0-9_]+)\((\w+)\)((?:[^\n]*\\\n)*[^\n]*)",
                                   src, flags=re.M)}
    src = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", src, flags=re.M)  # preprocessor lines
    for mname, (param, body) in macros.items():
        src = re.sub(rf"\b{mname}\s*\(\s*(\w+)\s*\)",
                     lambda m, b=body, p=param: b.replace(f"##{p}", m.group(1)).replace(f"{p}##", m.group(1)), src)
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


def check_against_header(protos: dict[str, Prototype] | None = None,
                         kernels: dict[str, Kernel] | None = None) -> list[str]:
    """Problems of the table (or of `kernels`) against the header (or the
    prototypes `protos`); empty when they agree."""
    protos = protos if protos is not None else parse_header()
    problems: list[str] = []
    for k in (KERNELS if kernels is None else kernels).values():
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


# ---------------------------------------------------------------------------
# the table (kernels/include/ckernels_abi.py)
# ---------------------------------------------------------------------------


def _load_table():
    """Executes the table module (it imports this module's schema, which is
    complete by now)."""
    name = "ckc._ckernels_abi"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, table_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_table = _load_table()
KERNELS: dict[str, Kernel] = {k.name: k for k in _table.KERNELS}
"""Kernel name (as ``buffer.call`` spells it) -> its entry."""
MISSING: dict[str, str] = _table.MISSING
by_op()  # at most one generic kernel per op (fails at import otherwise)
