"""The buffer and c dialects from Python: the constructors passes use, the
helpers plan-memory uses (lifetimes, overlap check), and exact float literals.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import DYNAMIC_INDEX, IndexType, ModuleOp, TensorType, f32, i32
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from ckc.dialects import buffer as B
from ckc.passes import plan_memory as PM
from ckc.dialects import c as C
from ckc.emit_c import emit_c
from ckc.universe import make_context

ROOT = Path(__file__).resolve().parents[2]
BUFFER_OPS = ROOT / "test" / "lit" / "dialects" / "buffer" / "ops.mlir"


def parse(text: str) -> ModuleOp:
    return Parser(make_context(), text).parse_module()


def text_of(op) -> str:
    from io import StringIO

    out = StringIO()
    Printer(stream=out).print_op(op)
    return out.getvalue()


def prefill(module: ModuleOp) -> func.FuncOp:
    return next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "prefill")


# -- buffer dialect ---------------------------------------------------------


def build_buffer_module() -> ModuleOp:
    t = TensorType(f32, [DYNAMIC_INDEX, 16])
    arena = B.ArenaOp("arena", 4096 + 64 + 4096, [("weights", 0, 4096), ("activations", 4160, 4096)], canaries=[4096])
    w = B.BufferOp("blk.w", TensorType(f32, [16]), "weights", 64, offset=0, layers=2, stride=64)
    f = func.FuncOp("prefill", ([IndexType()], []))
    n = f.body.block.args[0]
    x = B.BufferOp("x", t, "activations", 1024, offset=4160)
    h = B.BufferOp("h", t, "activations", 1024, offset=5184)
    loop = B.LoopOp(0, 2)
    loop.body.block.add_op(
        B.CallOp("rmsnorm", ["x", ("blk.w", True)], ["h"], {"rows": n, "cols": 16, "eps": 1e-5}, layer=loop.index)
    )
    loop.body.block.add_op(B.CallOp("add", ["x", "h"], ["x"], {"rows": n, "cols": 16}))
    f.body.block.add_ops([x, h, loop, func.ReturnOp()])
    return ModuleOp([arena, w, f])


def test_buffer_constructors_verify_and_round_trip() -> None:
    module = build_buffer_module()
    module.verify()
    text = text_of(module)
    assert "buffer.call rmsnorm ins(@x, @blk.w[%" in text
    assert "params(rows = %" in text and "cols = 16 : i64, eps = 1.000000e-05 : f32)" in text
    again = parse(text)
    again.verify()
    assert text_of(again) == text


def test_pass_style_mutation_setters() -> None:
    module = build_buffer_module()
    f = prefill(module)
    calls = PM.call_sequence(f)
    for cl in calls:
        cl.set_variant("avx512")
    for name, (a, b) in PM.compute_lifetimes(f).items():
        B.lookup_buffer(f, name).set_live(a, b)
    module.verify()
    assert [cl.variant.data for cl in calls] == ["avx512", "avx512"]
    assert B.lookup_buffer(f, "x").live == (0, 1)
    assert calls[0].param("cols").value.data == 16
    assert calls[0].param("rows") is f.body.block.args[0]
    assert calls[0].param("nope") is None
    calls[0].set_variant("sse9")
    with pytest.raises(VerifyException, match="unknown variant 'sse9'"):
        module.verify()


def test_lifetimes_widen_over_the_layer_loop() -> None:
    module = parse(BUFFER_OPS.read_text())
    f = prefill(module)
    assert [cl.kernel.data for cl in PM.call_sequence(f)] == [
        "embedding", "rmsnorm", "matmul", "kv_append", "add", "lm_head",
    ]
    lifetimes = PM.compute_lifetimes(f)
    # h is only used by calls 1 and 2, but inside the loop: live for calls 1..4.
    assert lifetimes == {"tokens": (0, 0), "x": (0, 5), "h": (1, 4), "q": (1, 4), "logits": (5, 5)}
    # The hand-planned lit module states exactly these lifetimes.
    for name, span in lifetimes.items():
        assert B.lookup_buffer(f, name).live == span


def test_overlap_check() -> None:
    module = parse(BUFFER_OPS.read_text())
    f = prefill(module)
    # @logits shares bytes with @h and @q, but their lifetimes are disjoint.
    assert PM.find_overlaps(module) == []
    B.lookup_buffer(f, "h").set_offset(4288)  # onto @x, both live at calls 1..4
    found = PM.find_overlaps(module)
    assert [str(o) for o in found] == [
        "buffers @x and @h overlap in memory while both are live (prefill)"
    ]
    module2 = parse(BUFFER_OPS.read_text())
    top = B.lookup_buffer(module2, "output_norm.weight")
    top.set_offset(2112)  # onto layer 0 of blk.attn_q.weight: module buffers are always live
    assert [(o.a, o.b, o.scope) for o in PM.find_overlaps(module2)] == [
        ("blk.attn_q.weight", "output_norm.weight", "module")
    ]


# -- c dialect ----------------------------------------------------------------


def build_c_module() -> ModuleOp:
    byte_ptr = C.PtrType(C.IntegerType(8, C.Signedness.UNSIGNED))
    fptr = C.PtrType(f32)
    decl = C.DeclOp("ck_scale_f32_scalar", [fptr, C.IntType(), f32], C.VoidType())
    fn = C.FuncOp("run", [("arena", byte_ptr), ("n", C.IntType())], C.VoidType())
    arena, n = fn.args
    c0 = C.ConstantOp(0, C.IntType())
    c3 = C.ConstantOp(3, C.IntType())
    alpha = C.ConstantOp(0.1, f32)
    loop = C.ForOp(c0, c3, "l")
    p = C.PtrOp(arena, 64, fptr, index=loop.induction_var, stride=256)
    call = C.CallOp("ck_scale_f32_scalar", [p, n, alpha])
    loop.body.block.add_ops([p, call])
    fn.body.block.add_ops([c0, c3, alpha, loop, C.ReturnOp()])
    return ModuleOp([C.IncludeOp("stdint.h", system=True), decl, C.GlobalOp("ck_n", i32, [1, 2]), fn])


def test_c_constructors_emit_expected_source() -> None:
    module = build_c_module()
    module.verify()
    assert emit_c(module) == (
        "/* Generated by ckc: do not edit. */\n"
        "\n"
        "#include <stdint.h>\n"
        "\n"
        "void ck_scale_f32_scalar(float *, int, float);\n"
        "\n"
        "const int32_t ck_n[2] = {1, 2};\n"
        "\n"
        "void run(uint8_t *arena, int n) {\n"
        "  for (int l = 0; l < 3; ++l) {\n"
        "    ck_scale_f32_scalar((float *)(arena + 64 + (long long)l * 256), n, 0.1f);\n"
        "  }\n"
        "  return;\n"
        "}\n"
    )
    # The textual form round-trips and emits the same bytes.
    assert emit_c(parse(text_of(module))) == emit_c(module)


@pytest.mark.parametrize("kind", ["f32", "f64"])
def test_float_literals_are_exact(kind: str) -> None:
    """Every printed float reads back (as C and MLIR would) to the same bits."""
    rng = random.Random(1234)
    fmt, t = ("f", f32) if kind == "f32" else ("d", C.f64)
    values = [0.0, -0.0, 1.0, 0.1, 1e-5, 3.4028234663852886e38, 1.401298464324817e-45, 123456792.0]
    values += [struct.unpack(fmt, rng.randbytes(struct.calcsize(fmt)))[0] for _ in range(3000)]
    checked = 0
    for v in values:
        if v != v or v in (float("inf"), float("-inf")):
            continue
        s = C.format_float(v, t)
        assert "." in s.split("e")[0], s
        want = struct.unpack(fmt, struct.pack(fmt, v))[0]
        got = struct.unpack(fmt, struct.pack(fmt, float(s)))[0]
        assert struct.pack(fmt, got) == struct.pack(fmt, want), (v, s)
        checked += 1
    assert checked > 2500


def test_int_literals_cover_the_extremes() -> None:
    from ckc.emit_c import c_int_literal

    assert c_int_literal(-(2**31)) == "(-2147483647 - 1)"
    assert c_int_literal(-(2**63)) == "(-9223372036854775807LL - 1)"
    assert c_int_literal(2**64 - 1) == "18446744073709551615ULL"
    assert c_int_literal(42) == "42"


def test_verifier_sees_ir_mutations_after_a_verify() -> None:
    """Buffer lookups are indexed per block; mutations between verifies
    (what passes do) must still be seen."""
    t = TensorType(f32, [4])
    module = build_buffer_module()
    module.verify()
    f = prefill(module)
    first = f.body.block.first_op
    # A second local @x: a duplicate.
    f.body.block.insert_op_before(B.BufferOp("x", TensorType(f32, [DYNAMIC_INDEX, 16]), "activations", 1024), first)
    with pytest.raises(VerifyException, match="buffer @x is declared twice"):
        module.verify()
    f.body.block.erase_op(f.body.block.first_op)
    module.verify()
    # Renaming @h leaves the calls' @h dangling.
    h = B.lookup_buffer(f, "h")
    h.properties["sym_name"] = C.StringAttr("h2")
    with pytest.raises(VerifyException, match="unknown buffer @h"):
        module.verify()
    h.properties["sym_name"] = C.StringAttr("h")
    module.verify()
    # A new module-level buffer named like a local one.
    module.body.block.add_op(B.BufferOp("x", t, "weights", 16))
    with pytest.raises(VerifyException, match="buffer @x"):
        module.verify()
    module.body.block.erase_op(module.body.block.last_op)
    module.verify()
    # Erasing a buffer that calls use.
    f.body.block.erase_op(B.lookup_buffer(f, "h"), safe_erase=False)
    with pytest.raises(VerifyException, match="unknown buffer @h"):
        module.verify()


def test_verify_scales_to_a_30_layer_model(monkeypatch) -> None:
    """Verification stays linear: ~600 calls and ~900 buffers verify with a
    bounded number of name-index builds (a rebuild per lookup made it
    quadratic). Counted, not timed, so machine load cannot flip it."""
    L, K = 30, 20
    t = TensorType(f32, [DYNAMIC_INDEX, 576])
    weights = [B.BufferOp(f"blk.{l}.w{k}", TensorType(f32, [576]), "weights", 2304) for l in range(L) for k in range(9)]
    f = func.FuncOp("prefill", ([IndexType()], []))
    n = f.body.block.args[0]
    local = [B.BufferOp(f"a{l}_{k}", t, "activations", 2304 * 64) for l in range(L) for k in range(K)]
    calls = [
        B.CallOp("matmul", [f"a{l}_{k}", f"blk.{l}.w{k % 9}"], [f"a{l}_{k + 1}"], {"rows": n, "cols": 576})
        for l in range(L)
        for k in range(K - 1)
    ]
    f.body.block.add_ops(local + calls + [func.ReturnOp()])
    module = ModuleOp(weights + [f])

    builds = []
    real = B._block_index

    def counting(block, refresh=False):
        if refresh or block not in B._INDEX:
            builds.append(block)
        return real(block, refresh)

    monkeypatch.setattr(B, "_block_index", counting)
    module.verify()
    ops = len(weights) + len(local) + len(calls)
    assert ops > 1400
    # Each block's index is built a handful of times, not once per op.
    assert len(builds) <= 10, len(builds)


@pytest.mark.parametrize("module_name", ["buffer", "c"])
def test_module_docstring_example_parses_verifies_and_round_trips(module_name: str) -> None:
    import importlib
    import textwrap

    doc = importlib.import_module(f"ckc.dialects.{module_name}").__doc__
    example = doc.split("Example", 1)[1].split("::", 1)[1]
    module = parse(textwrap.dedent(example))
    module.verify()
    assert text_of(parse(text_of(module))) == text_of(module)
    if module_name == "c":
        assert "for (int l = 0; l < 4; ++l) {" in emit_c(module)
    else:
        assert PM.find_overlaps(module) == []
        assert PM.compute_lifetimes(prefill(module)) == {"x": (0, 1), "h": (0, 1)}
