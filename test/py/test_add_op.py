"""README "Adding an op", done for a toy op: ``cube`` (y = x³), elementwise.

The five places, each with its check, as the README lists them; here they
live in this test (and test/py/data/toy_op/ for the C) instead of the tree,
and are registered into copies of the tables for the test's duration:

1. the dialect class (dialects/tensorop.py): one line on the unary family;
2. the reference function (ckc/interpreters/tensorop.py): checked against numpy;
3. the autodiff rule (passes/autodiff.py): its gradient checked against
   torch.autograd of the reference;
4. the kernel (kernels/, here test/py/data/toy_op/cube.c);
5. the ABI entry (kernels/include/ckernels_abi.py): checked against the
   kernel's prototype like every entry.

No bufferize rule: the generic rule lowers it from the ABI entry. The end to
end test takes a function using it through bufferize, plan-memory,
select-simd, lower-to-c and the C emitter, compiles the C with the kernel
and libckernels, runs it, and compares with numpy (float32, rtol 1e-6).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DYNAMIC_INDEX, IntegerType, ModuleOp, TensorType, f32

from ckc import kernel_abi
from ckc.interpreters import tensorop as ref
from ckc.dialects import tensorop as T
from ckc.passes import autodiff

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "test" / "py" / "data" / "toy_op"

# 1. the dialect class: a member of the unary family (shape rule, syntax,
#    constructor and verifier come from the base class)
CubeOp = T._op(T._Unary, "cube", "Elementwise cube `x³` (the toy op of test/py/test_add_op.py).",
               "%y = tensorop.cube %x : (tensor<?x8xf32>) -> tensor<?x8xf32>")


# 2. the reference function
def _cube_ref(op, ins, ctx):
    return ins[0] ** 3


# 3. the autodiff rule: dx = 3 x² dy, from ops that exist already (so no new
#    gradient op or kernel)
def _cube_grad(ad, op, dy):
    x = ad.fwd(op.x)
    x2 = ad.emit(T.MulOp(x, x)).result
    return [ad.emit(T.ScaleOp(ad.emit(T.MulOp(x2, dy)).result, 3.0)).result]


# 5. the ABI entry (4, the kernel, is test/py/data/toy_op/cube.c)
CUBE = kernel_abi.Kernel(
    "cube", "ck_cube_f32",
    (kernel_abi.arg_in("x", 0), kernel_abi.arg_out("y", 0), kernel_abi.N_ELEMENTS, *kernel_abi.POOL_ARGS),
    variants=("scalar",), ins=("x [rows, cols]",), outs=("y",),
    op=CubeOp.name, map=kernel_abi.OpMap(ins=("x",)),
)


@pytest.fixture
def toy(monkeypatch):
    """The toy op registered in copies of the reference, autodiff and ABI tables."""
    monkeypatch.setattr(kernel_abi, "KERNELS", dict(kernel_abi.KERNELS))
    kernel_abi.register(CUBE)
    monkeypatch.setitem(ref._RULES, CubeOp.name, _cube_ref)
    monkeypatch.setitem(autodiff.RULES, CubeOp.name, _cube_grad)


def _forward(rows: int | None = None) -> func.FuncOp:
    """@prefill(tokens) -> x³ + x, x = embedding(table, tokens): [?, 8]."""
    tok_t = TensorType(IntegerType(32), [DYNAMIC_INDEX if rows is None else rows])
    f = func.FuncOp("prefill", ([tok_t], [TensorType(f32, [DYNAMIC_INDEX if rows is None else rows, 8])]))
    tokens = f.body.block.args[0]
    w = T.WeightOp("tok.weight", [16, 8])
    x = T.EmbeddingOp(w.result, tokens)
    y = CubeOp(x.result)
    s = T.AddOp(y.result, x.result)
    x.result.name_hint, y.result.name_hint = "x", "cubed"
    f.body.block.add_ops([w, x, y, s, func.ReturnOp(s.result)])
    return f


def test_dialect_class_infers_and_verifies():
    from xdsl.utils.exceptions import VerifyException

    op = CubeOp(T.ZerosOp(TensorType(f32, [4, 8])).result)
    assert op.result.type == TensorType(f32, [4, 8])
    op.verify()
    with pytest.raises(VerifyException, match="tensorop.cube: operand 'x' must have element type f32"):
        CubeOp(T.ZerosOp(TensorType(IntegerType(32), [4])).result)


def test_reference_matches_numpy(toy):
    import torch

    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    (got,) = ref.eval_op(CubeOp(T.ZerosOp(TensorType(f32, [3, 8])).result), [torch.from_numpy(x)])
    np.testing.assert_allclose(got.numpy(), x ** 3, rtol=1e-6)


def test_autodiff_rule_matches_autograd(toy):
    """The differentiated function, run by the reference interpreter, against
    torch.autograd of the forward (rtol 1e-5)."""
    import torch

    from ckc.passes.autodiff import Autodiff

    x_t, tgt_t = TensorType(f32, [3, 8]), TensorType(IntegerType(32), [3])
    f = func.FuncOp("train_step", ([x_t, tgt_t], [TensorType(f32, [])]))
    x, targets = f.body.block.args
    w = T.WeightOp("w", [3, 8])
    xw = T.MulOp(x, w.result)
    c = CubeOp(xw.result)
    loss = T.CrossEntropyOp(c.result, targets)
    f.body.block.add_ops([w, xw, c, loss, func.ReturnOp(loss.result)])
    module = ModuleOp([f])
    Autodiff().apply(Context(), module)
    fn = next(o for o in module.ops if isinstance(o, func.FuncOp))
    assert any(o.name == "tensorop.scale" for o in fn.walk())  # the rule's backward ops are there
    rng = np.random.default_rng(1)
    xv = torch.from_numpy(rng.standard_normal((3, 8)).astype(np.float32))
    wv = torch.from_numpy(rng.standard_normal((3, 8)).astype(np.float32)).requires_grad_()
    tv = torch.tensor([1, 7, 0], dtype=torch.int32)
    loss_ir, dw_ir = ref.evaluate(fn, [xv, tv], weights={"w": wv.detach()})
    logits = (xv * wv) ** 3
    want = torch.nn.functional.cross_entropy(logits, tv.long())
    want.backward()
    torch.testing.assert_close(loss_ir, want.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dw_ir, wv.grad, rtol=1e-5, atol=1e-6)


def test_abi_entry_matches_the_kernel_prototype(toy):
    protos = kernel_abi.parse_header(TOY / "cube.h")
    assert kernel_abi.check_against_header(protos, {"cube": CUBE}) == []
    assert kernel_abi.by_op()[CubeOp.name] is CUBE
    with pytest.raises(ValueError, match="already"):
        kernel_abi.register(CUBE)


def _lower_to_c(f: func.FuncOp) -> tuple[ModuleOp, str]:
    from ckc.emit_c import emit_c
    from ckc.passes.bufferize import Bufferize
    from ckc.passes.lower_to_c import LowerToC
    from ckc.passes.plan_memory import PlanMemory
    from ckc.passes.select_simd import SelectSimd

    module = ModuleOp([f])
    ctx = Context()
    Bufferize(max_tokens=4).apply(ctx, module)
    buffered = module.clone()
    for p in (PlanMemory(), SelectSimd(target="scalar"), LowerToC()):
        p.apply(ctx, module)
    return buffered, emit_c(module)


def test_end_to_end_to_c(toy, tmp_path):
    """No bufferize rule was written: the generic rule calls the kernel the
    ABI entry names, and the compiled C computes x³ + x."""
    from ckc import kernels
    from ckc.build import cc, run_checked
    from ckc.dialects import buffer as B

    buffered, model_c = _lower_to_c(_forward())
    calls = [o for o in buffered.walk() if isinstance(o, B.CallOp)]
    assert [c.kernel.data for c in calls] == ["embedding", "cube", "add"]
    assert "buffer.call cube ins(@x) outs(@cubed) params(rows = %n : index, cols = 8 : i64)" in str(buffered)
    assert "ck_cube_f32_scalar(" in model_c

    src = tmp_path / "model.c"
    src.write_text(model_c)
    so = tmp_path / "toy.so"
    inc = [f"-I{p}" for p in (*kernels.include_dirs(), TOY)]
    run_checked([cc(), "-std=c11", "-O2", "-fPIC", "-shared", "-Wall", "-Werror", *inc, "-include", "cube.h",
                 "-o", str(so), str(src), str(TOY / "cube.c"), str(kernels.static_library_path()),
                 "-lpthread", "-lm"], "toy model.so")
    lib = ctypes.CDLL(str(so))
    arena_size = ctypes.c_size_t.in_dll(lib, "ckc_gen_arena_size").value
    assert ctypes.c_int.in_dll(lib, "ckc_gen_n_weights").value == 1

    rng = np.random.default_rng(2)
    table = rng.standard_normal((16, 8)).astype(np.float32)
    tokens = np.array([3, 0, 15], dtype=np.int32)
    arena = np.zeros(arena_size + 64, dtype=np.uint8)
    logits = np.full((len(tokens), 8), np.nan, dtype=np.float32)
    fn = lib.ckc_gen_prefill
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                           ctypes.c_void_p, ctypes.c_int]
    lib.ck_pool_create.restype, lib.ck_pool_create.argtypes = ctypes.c_void_p, [ctypes.c_int]
    lib.ck_pool_destroy.argtypes = [ctypes.c_void_p]
    pool = lib.ck_pool_create(2)
    try:
        for pool_handle, nth in ((None, 1), (pool, 2)):
            logits[:] = np.nan
            status = fn(arena.ctypes.data, table.ctypes.data, tokens.ctypes.data, logits.ctypes.data,
                        len(tokens), 0, None, 0, pool_handle, nth)
            assert status == 0
            x = table[tokens]
            np.testing.assert_allclose(logits, x ** 3 + x, rtol=1e-6, atol=0)
    finally:
        lib.ck_pool_destroy(pool)


def test_without_its_abi_entry_bufferize_names_the_op():
    from ckc.passes.bufferize import BufferizeError

    with pytest.raises(BufferizeError, match="'tensorop.cube' is not supported by bufferize"):
        _lower_to_c(_forward())
