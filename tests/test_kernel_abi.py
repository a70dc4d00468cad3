"""ckc/kernel_abi.py against the real prototypes in kernels/include/ckernels.h.

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
