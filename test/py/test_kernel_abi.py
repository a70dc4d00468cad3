"""The kernel ABI table (kernels/include/ckernels_abi.py, loaded by
ckc/kernel_abi.py) against the real prototypes in kernels/include/ckernels.h,
and its op side against the tensorop dialect.

Every table entry must name a declared function for each listed variant, with
the same return type, the same number of parameters, and the same C type and
name for each parameter, in order. A header edit that changes a kernel's
signature therefore fails here (and lower-to-c, generic over the table, keeps
generating correct calls once the table follows).
"""

from __future__ import annotations

import re

import pytest

from ckc import kernel_abi
from ckc.kernel_abi import KERNELS, check_against_header, eval_expr, header_path, parse_header


@pytest.fixture(scope="module")
def protos():
    return parse_header()


def test_header_parses_every_declaration(protos):
    # every ck_* identifier followed by '(' in the header (macro-declared ones
    # expanded by variant) must be a parsed prototype: the parser misses nothing
    src = header_path().read_text()
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    plain = set(re.findall(r"\b(ck_[a-z0-9_]+)\s*\(", src))
    macro = set(re.findall(r"CK_DECLARE_VARIANTS\s*\(\s*[^,]+,\s*(ck_[a-z0-9_]+)\s*,", src))
    expected = {n for n in plain if n not in macro and n != "ck_task_fn"}
    expected |= {f"{m}_{v}" for m in macro for v in ("scalar", "avx2", "avx512")}
    assert expected <= set(protos), sorted(expected - set(protos))


def test_known_prototype(protos):
    p = protos["ck_rmsnorm_f32_avx512"]
    assert p.returns == "void"
    assert p.params[0] == ("const float *", "x")
    assert [n for _, n in p.params] == ["x", "w", "y", "rstd", "T", "C", "eps", "w_offset", "pool", "nth"]
    assert protos["ck_gemm_f32_scalar"].returns == "int"
    assert protos["ck_cross_entropy_f32_avx2"].returns == "float"


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_entry_matches_header(name, protos):
    k = KERNELS[name]
    for v in k.variants:
        sym = k.symbol(v)
        assert sym in protos, f"{sym} not declared in ckernels.h"
        p = protos[sym]
        assert p.returns == kernel_abi._norm_type(k.c_return), sym
        assert len(p.params) == len(k.args), f"{sym}: arity {len(p.params)} vs table {len(k.args)}"
        for (ctype, cname), a in zip(p.params, k.args):
            assert (ctype, cname) == (kernel_abi._norm_type(a.ctype), a.name), sym
    # every parallel kernel ends with pool, nth
    assert [a.role for a in k.args[-2:]] == ["pool", "nth"]
    # pointer roles have pointer types, scalar roles scalar ones
    for a in k.args:
        if a.role in ("in", "opt_in", "out", "null", "scratch"):
            assert a.ctype.endswith("*"), (name, a)
        if a.role in ("param", "nth", "scratch_size"):
            assert not a.ctype.endswith("*"), (name, a)
        if a.role == "out":
            assert not a.ctype.startswith("const"), (name, a)


def test_whole_table_clean():
    assert check_against_header() == []


def test_drift_is_detected(tmp_path, protos):
    # a header where rmsnorm lost its eps parameter and gemm's K became long
    src = header_path().read_text()
    bad = src.replace("int T, int C, float eps, float w_offset,\n                     ck_pool *pool, int nth))",
                      "int T, int C, float w_offset,\n                     ck_pool *pool, int nth))", 1)
    bad = bad.replace("int M, int N, int K, int accumulate,\n                       void *ws, size_t ws_size, ck_pool *pool, int nth);",
                      "int M, int N, long K, int accumulate,\n                       void *ws, size_t ws_size, ck_pool *pool, int nth);", 1)
    assert bad != src
    path = tmp_path / "ckernels.h"
    path.write_text(bad)
    problems = check_against_header(parse_header(path))
    assert any(p.startswith("rmsnorm:") and "parameters" in p for p in problems), problems
    assert any(p.startswith("gemm:") and "long K" in p for p in problems), problems
    # and a missing symbol
    path.write_text(src.replace("ck_softcap_f32,", "ck_softcapx_f32,"))
    problems = check_against_header(parse_header(path))
    assert any("ck_softcap_f32_scalar is not declared" in p for p in problems), problems


def test_expressions_and_counts():
    add = KERNELS["add"]
    n = next(a for a in add.args if a.name == "n")
    assert eval_expr(n.expr, {"rows": 7, "cols": 64}) == 448
    assert add.params == {"rows", "cols"}
    assert KERNELS["gemm"].n_ins == (2, 3)
    assert KERNELS["cross_entropy"].n_outs == 1
    assert kernel_abi.row_param("out", 0) == "out0_row"
    with pytest.raises(KeyError, match="unknown kernel"):
        kernel_abi.kernel("nope")


def test_bufferize_knows_the_attention_head_dim_limit():
    import re

    from ckc.kernel_abi import header_path
    from ckc.passes.bufferize import ATTN_MAX_HEAD_DIM

    m = re.search(r"#define CK_ATTN_MAX_HEAD_DIM (\d+)", header_path().read_text())
    assert m and int(m.group(1)) == ATTN_MAX_HEAD_DIM


# -- the op side of the table: what bufferize's generic rule reads -------------


def _op_classes():
    from ckc.dialects import tensorop as T

    return {c.name: c for c in T.TENSOROP_OPS}


def test_table_lives_next_to_the_header():
    assert kernel_abi.table_path().parent == header_path().parent
    assert kernel_abi.table_path().name == "ckernels_abi.py"


@pytest.mark.parametrize("name", sorted(n for n, k in KERNELS.items() if k.op))
def test_entry_names_a_real_op_and_its_fields(name):
    """Every op an entry names exists; every operand, result and property its
    map reads is one of that op's, and every param the kernel reads gets a value."""
    k = KERNELS[name]
    ops = _op_classes()
    assert k.op in ops, f"{name}: unknown op {k.op}"
    if k.map is None:
        return
    d = ops[k.op].get_irdl_definition()
    operands = {n for n, _ in d.operands}
    results = {n for n, _ in d.results}
    props = set(d.properties)
    assert set(k.map.ins) <= operands, (name, set(k.map.ins) - operands)
    assert set(k.map.outs) <= results and len(k.map.outs) == len(d.results), name
    assert k.map.shape is None or k.map.shape in operands | results, name
    assert {p for p, _ in k.map.require} <= props, name
    assert not k.map.hints or len(k.map.hints) == len(k.map.outs), name
    lo, hi = k.n_ins
    assert len(k.map.ins) == hi and k.n_outs == len(k.map.outs), name
    explicit = dict(k.map.params)
    assert set(explicit) <= k.params, (name, set(explicit) - k.params)

    def known(n: str) -> bool:
        value, _, dim = n.partition(".")
        return n in ("rows", "cols") or (bool(dim) and value in operands | results) or n in operands | props

    for p in k.param_order:
        names = kernel_abi.expr_names(explicit[p]) if p in explicit else {p}
        assert all(known(n) for n in names), (name, p, names)


def test_every_elementwise_family_member_is_lowered_generically():
    """A new op on the unary, binary or gated families (or their gradients)
    needs no bufferize rule, only an ABI entry: each existing member has one."""
    from ckc.dialects import tensorop as T
    from ckc.passes.bufferize import _Function, _TrainFunction

    generic = kernel_abi.by_op()
    families = (T._Unary, T._UnaryGrad, T._Binary, T._Gated, T._GatedGrad)
    members = [c for c in T.TENSOROP_OPS if issubclass(c, families)]
    assert len(members) >= 13
    for c in members:
        assert c.name in generic, f"{c.name} has no generic kernel"
        short = "op_" + c.name.split(".")[-1]
        assert not hasattr(_Function, short) and not hasattr(_TrainFunction, short), f"{short} is hand-written"


def test_expression_operators_of_op_maps():
    env = {"approximate": "tanh", "rotary_dim": None, "head_dim": 64, "x": 12, "w": 4}
    assert eval_expr(("enum", "approximate", (("none", 0), ("tanh", 1))), env) == 1
    assert eval_expr(("or", "rotary_dim", "head_dim"), env) == 64
    assert eval_expr(("//", "x", "w"), env) == 3
    with pytest.raises(ValueError, match="approximate = 'tanh' is not one of 'none'"):
        eval_expr(("enum", "approximate", (("none", 0),)), env)
    assert KERNELS["rmsnorm"].param_order == ("rows", "cols", "eps", "w_offset")
    assert KERNELS["rmsnorm"].param_ctype("eps") == "float" and KERNELS["add"].param_ctype("rows") is None


def test_register_rejects_a_second_kernel_for_an_op(monkeypatch):
    monkeypatch.setattr(kernel_abi, "KERNELS", dict(KERNELS))
    silu = KERNELS["silu"]
    with pytest.raises(ValueError, match="already in the ABI table"):
        kernel_abi.register(silu)
    twin = kernel_abi.Kernel("silu2", silu.c_base, silu.args, op=silu.op, map=silu.map)
    with pytest.raises(ValueError, match="tensorop.silu is already mapped to kernel 'silu'"):
        kernel_abi.register(twin)
    with pytest.raises(ValueError, match="both map tensorop.silu"):
        kernel_abi.by_op({**KERNELS, "silu2": twin})
