"""`add-optimizer`: AdamW, gradient clipping and micro-batch accumulation as
tensorop functions next to a differentiated ``@train_step``.

    ckc-opt model.mlir -p 'lower-transformer{modes=train_step},autodiff,add-optimizer{micro_batches=2 max_norm=1.0 weight_decay=0.1}'

Input: a module whose ``@train_step`` went through `autodiff` (results: the
loss, then one gradient per weight unit with result attributes
``tensorop.grad = "<tensor>"`` [``tensorop.offset = <row>``]). Output, for
those units (same order, same attributes):

- ``@optimizer_step(%lr: f32, %step: index, %g... {tensorop.grad}, %m...
  {tensorop.adam_m}, %v... {tensorop.adam_v}) -> (params..., m..., v...,
  grad_norm)``: with ``micro_batches`` = k > 1 the accumulated gradients are
  first scaled by 1/k (`scale`; the mean over micro-batches, as PyTorch's
  ``(loss / k).backward()`` per micro-batch); then ``n = global_norm(g...)``
  (returned last, ``{tensorop.grad_norm}``: the norm before clipping, what
  ``clip_grad_norm_`` returns); with ``max_norm`` > 0 every gradient becomes
  ``clip_by_norm(g, n)`` (PyTorch's clip_grad_norm_: factor ``min(1,
  max_norm / (n + 1e-6))``); then one `adamw_update` per unit (bias-corrected
  AdamW with decoupled weight decay, exactly torch.optim.AdamW) on the
  parameter read by ``tensorop.weight`` (name, offset). Results: the new
  parameters ``{tensorop.param = "<tensor>" [, tensorop.offset]}`` (written
  back in place: `adamw_update` updates its param, m and v operands' storage),
  the new m ``{tensorop.adam_m}`` and v ``{tensorop.adam_v}``.
  ``lr`` and ``step`` (1-based, for the bias correction) are runtime operands:
  schedules change the learning rate every step. betas, eps, weight decay,
  the clipping norm and the micro-batch count are options (compile-time).
  m and v start as zeros (bufferize places them in the ``adam_m`` /
  ``adam_v`` regions of the arena, which starts zero; checkpoints restore them).
- gradient accumulation: ``@train_step`` takes the running gradients as
  extra operands (after tokens and targets, attributes ``{tensorop.grad
  ...}``) and returns ``accumulate(acc, g)`` for each (one buffer per
  gradient, updated in place across the k calls: the backward kernels
  accumulate ``+=`` into the ``grads`` buffers, see ckc/kernel_abi.py), and
  ``@zero_grads() -> (zeros... {tensorop.grad})`` resets them before the
  first micro-batch of a step. One calling convention for every micro-batch
  count: a step is ``zero_grads``, k x ``train_step``, ``optimizer_step``.

How this maps to memory (for bufferize / plan-memory): an operand or result
attribute names a module-level buffer: ``tensorop.grad = N`` the ``grads``
region tensor of weight N, ``tensorop.adam_m``/``adam_v = N`` its two
tensors in the ``adam_m`` / ``adam_v`` regions, ``tensorop.param = N`` the weight itself; with
``tensorop.offset = R`` the value is rows ``[R, R + rows)`` of that tensor
(a fused tensor's slice). An operand and a result with the same attribute are
the same buffer (updated in place).

Options: ``beta1`` (0.9), ``beta2`` (0.999), ``eps`` (1e-8),
``weight_decay`` (0.0), ``max_norm`` (1.0; 0 disables clipping),
``micro_batches`` (1).

Weight decay has one rule, the same in the PyTorch peer
(ckc/train/trainer.py) and the tests: matrices (parameters of 2 or more
dims: linear weights, embedding tables) decay, 1-D parameters (norm
weights, biases) do not -- torch.optim.AdamW with the usual two parameter
groups (GPT-2 / nanoGPT). Errors (no differentiated @train_step, an
``@optimizer_step`` already there, a bad option) are one-line
``AddOptimizerError``s.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FunctionType,
    IndexType,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    UnitAttr,
    f32,
    i64,
)
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import DiagnosticException

from ckc.dialects import tensorop as T
from ckc.passes.autodiff import GRAD_ATTR, OFFSET_ATTR, grad_units

PARAM_ATTR = "tensorop.param"
ADAM_M_ATTR = "tensorop.adam_m"
ADAM_V_ATTR = "tensorop.adam_v"
NORM_ATTR = "tensorop.grad_norm"


class AddOptimizerError(DiagnosticException):
    """A module add-optimizer cannot handle (one line)."""


def _fail(msg: str):
    raise AddOptimizerError(f"add-optimizer: {msg}")


def _attrs(kind: str, name: str, off: int) -> DictionaryAttr:
    d: dict[str, Attribute] = {kind: StringAttr(name)}
    if off:
        d[OFFSET_ATTR] = IntegerAttr(off, i64)
    return DictionaryAttr(d)


def short_name(name: str, off: int) -> str:
    """An SSA name from a tensor name: blk.3.attn_q.weight (offset 64) -> l3_attn_q_off64."""
    parts = name.split(".")
    prefix = ""
    if parts and parts[-1] in ("weight", "bias"):
        prefix = "b_" if parts[-1] == "bias" else ""
        parts = parts[:-1]
    if len(parts) >= 2 and parts[0] == "blk":
        base = f"l{parts[1]}_" + "_".join(parts[2:])
    else:
        base = "_".join(parts)
    return prefix + base + (f"_off{off}" if off else "")


@dataclass(frozen=True)
class AddOptimizer(ModulePass):
    """@optimizer_step (AdamW + global-norm clipping, lr and step as runtime
    operands), gradient accumulation in @train_step, and @zero_grads. See the
    module docstring."""

    name = "add-optimizer"

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    max_norm: float = 1.0
    micro_batches: int = 1

    def _check_options(self) -> None:
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                _fail(f"{name} must be in [0, 1), got {v}")
        if not self.eps > 0:
            _fail(f"eps must be positive, got {self.eps}")
        if not self.weight_decay >= 0:
            _fail(f"weight_decay must be non-negative, got {self.weight_decay}")
        if not self.max_norm >= 0:
            _fail(f"max_norm must be non-negative (0 disables clipping), got {self.max_norm}")
        if self.micro_batches < 1:
            _fail(f"micro_batches must be at least 1, got {self.micro_batches}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self._check_options()
        funcs = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        train = funcs.get("train_step")
        if train is None:
            _fail("the module has no func.func @train_step")
        units = grad_units(train)
        if not units:
            _fail("@train_step returns no gradients (run autodiff first)")
        for name in ("optimizer_step", "zero_grads"):
            if name in funcs:
                _fail(f"the module already has a function @{name}")
        types = list(train.function_type.outputs.data[1:])
        if len(types) != len(units):
            _fail("@train_step: every result after the loss must carry tensorop.grad")
        self._accumulate(train, units, types)
        op.body.block.add_op(self._zero_grads(units, types))
        op.body.block.add_op(self._optimizer_step(units, types))

    # -- @train_step accumulating into its operands ---------------------------

    def _accumulate(self, train: func.FuncOp, units, types) -> None:
        block = train.body.block
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        n_in = len(block.args)
        arg_attrs = list(train.arg_attrs.data) if train.arg_attrs is not None else [
            DictionaryAttr({}) for _ in range(n_in)
        ]
        new_rets = [ret.arguments[0]]
        for (name, off), ty, g in zip(units, types, list(ret.arguments[1:]), strict=True):
            acc = block.insert_arg(ty, len(block.args))
            acc.name_hint = "acc_" + short_name(name, off)
            arg_attrs.append(_attrs(GRAD_ATTR, name, off))
            s = T.AccumulateOp(acc, g)
            s.result.name_hint = "acc_" + short_name(name, off) + "_new"
            block.insert_op_before(s, ret)
            new_rets.append(s.result)
        block.insert_op_before(func.ReturnOp(*new_rets), ret)
        ret.detach()
        ret.erase()
        train.function_type = FunctionType.from_lists(
            [a.type for a in block.args], list(train.function_type.outputs.data)
        )
        train.arg_attrs = ArrayAttr(arg_attrs)

    # -- @zero_grads ------------------------------------------------------------

    def _zero_grads(self, units, types) -> func.FuncOp:
        block = Block()
        outs = []
        for (name, off), ty in zip(units, types):
            z = T.ZerosOp(ty)
            z.result.name_hint = "g_" + short_name(name, off)
            block.add_op(z)
            outs.append(z.result)
        block.add_op(func.ReturnOp(*outs))
        f = func.FuncOp("zero_grads", ([], types), Region(block))
        f.res_attrs = ArrayAttr([_attrs(GRAD_ATTR, n, o) for n, o in units])
        return f

    # -- @optimizer_step ------------------------------------------------------

    def _optimizer_step(self, units, types) -> func.FuncOp:
        n = len(units)
        arg_types: list[Attribute] = [f32, IndexType()] + list(types) * 3
        block = Block(arg_types=arg_types)
        lr, step = block.args[0], block.args[1]
        lr.name_hint, step.name_hint = "lr", "step"
        gs = list(block.args[2 : 2 + n])
        ms = list(block.args[2 + n : 2 + 2 * n])
        vs = list(block.args[2 + 2 * n :])
        for (name, off), g, m, v in zip(units, gs, ms, vs):
            s = short_name(name, off)
            g.name_hint, m.name_hint, v.name_hint = "g_" + s, "m_" + s, "v_" + s

        def add(o):
            block.add_op(o)
            return o

        if self.micro_batches > 1:
            factor = 1.0 / self.micro_batches
            scaled = []
            for (name, off), g in zip(units, gs):
                o = add(T.ScaleOp(g, factor))
                o.result.name_hint = "g_" + short_name(name, off) + "_mean"
                scaled.append(o.result)
            gs = scaled
        norm = add(T.GlobalNormOp(gs)).result
        norm.name_hint = "grad_norm"
        if self.max_norm > 0:
            clipped = []
            for (name, off), g in zip(units, gs):
                o = add(T.ClipByNormOp(g, norm, max_norm=self.max_norm))
                o.result.name_hint = "g_" + short_name(name, off) + "_clipped"
                clipped.append(o.result)
            gs = clipped
        new_p: list[SSAValue] = []
        new_m: list[SSAValue] = []
        new_v: list[SSAValue] = []
        for (name, off), ty, g, m, v in zip(units, types, gs, ms, vs):
            s = short_name(name, off)
            w = add(T.WeightOp(name, ty, offset=off))
            w.result.name_hint = "w_" + s
            wd = self.weight_decay if len(ty.get_shape()) >= 2 else 0.0  # matrices only
            u = add(T.AdamWUpdateOp(w.result, g, m, v, lr, step, beta1=self.beta1, beta2=self.beta2,
                                    eps=self.eps, weight_decay=wd))
            u.new_param.name_hint = "w_" + s + "_new"
            u.new_m.name_hint = "m_" + s + "_new"
            u.new_v.name_hint = "v_" + s + "_new"
            new_p.append(u.new_param)
            new_m.append(u.new_m)
            new_v.append(u.new_v)
        outs = new_p + new_m + new_v + [norm]
        block.add_op(func.ReturnOp(*outs))
        f = func.FuncOp("optimizer_step", (arg_types, [o.type for o in outs]), Region(block))
        empty = DictionaryAttr({})
        f.arg_attrs = ArrayAttr(
            [empty, empty]
            + [_attrs(GRAD_ATTR, nm, o) for nm, o in units]
            + [_attrs(ADAM_M_ATTR, nm, o) for nm, o in units]
            + [_attrs(ADAM_V_ATTR, nm, o) for nm, o in units]
        )
        f.res_attrs = ArrayAttr(
            [_attrs(PARAM_ATTR, nm, o) for nm, o in units]
            + [_attrs(ADAM_M_ATTR, nm, o) for nm, o in units]
            + [_attrs(ADAM_V_ATTR, nm, o) for nm, o in units]
            + [DictionaryAttr({NORM_ATTR: UnitAttr()})]
        )
        return f


__all__ = ["AddOptimizer", "AddOptimizerError", "PARAM_ATTR", "ADAM_M_ATTR", "ADAM_V_ATTR",
           "NORM_ATTR", "short_name"]
