"""The kernel ABI table: for every kernel of libckernels the compiler calls,
the op it implements, how that op becomes a ``buffer.call`` (operands, results,
properties -> params), and the exact C parameter list of its prototype in
``ckernels.h`` next to this file, each parameter with the role saying where
its argument comes from. The schema (roles, expressions, return conventions,
row offsets) is documented in ``ckc/kernel_abi.py``, which loads this module
as ``kernel_abi.KERNELS``; ``test/py/test_kernel_abi.py`` checks every entry
against the header's prototypes.

Why a Python module next to the header, rather than a data file or comments
in the header: the table is the contract between the compiler and the
kernels, so it sits where a kernel author edits the prototype, and a change to
one shows next to the other in a diff. Its entries are expressions (``n =
rows * cols``, ``approx = {none: 0, tanh: 1}[approximate]``) that a data file
would need its own little language and parser for, and that annotated C
comments would hide from the C compiler's checks anyway. As Python the
entries are checked as they load (roles, one generic kernel per op) and any
Python tool reads them with one import. The file holds only declarations; it
is not compiled into the library (ckc/kernels.py hashes only .c/.h files).

To add a kernel: declare it in ``ckernels.h``, add one entry here (with
``op=`` and ``map=`` when bufferize's generic rule can lower its op), and run
``test/py/test_kernel_abi.py``. README "Adding an op" walks through an op end
to end.
"""

from __future__ import annotations

from ckc.kernel_abi import POOL_ARGS as _POOL
from ckc.kernel_abi import N_ELEMENTS as _N
from ckc.kernel_abi import Arg, Kernel, OpMap
from ckc.kernel_abi import arg_in as _in
from ckc.kernel_abi import arg_null as _null
from ckc.kernel_abi import arg_opt as _opt
from ckc.kernel_abi import arg_out as _out
from ckc.kernel_abi import arg_param as _p

# Common property -> param mappings.
APPROX = ("approx", ("enum", "approximate", (("none", 0), ("tanh", 1))))  # gelu's form: 0 erf, 1 tanh
STYLE = ("style", ("enum", "style", (("neox", 0), ("interleaved", 1))))
ROTARY_DIM = ("rotary_dim", ("or", "rotary_dim", "head_dim"))  # unset: the whole head rotates
UNARY = OpMap(ins=("x",))
UNARY_GRAD = OpMap(ins=("x", "dy"), hints=("dx",))  # the kernels take x first, the op dy first
GATED = OpMap(ins=("gate", "up"))
GATED_GRAD = OpMap(ins=("gate", "up", "dy"), outs=("dgate", "dup"), shape="dy", hints=("dgate", "dup"))


# rope and rope_grad: after the input and output pointers
_ROPE_ARGS = (_null("pos", "const int32_t *"), _opt("inv_freq", 1),
              _p("T", "int", "rows"), _p("heads", "int"), _p("head_dim", "int"),
              _p("rotary_dim", "int"), _p("pos0", "int", "pos"), _p("theta", "float"),
              _p("style", "int"), *_POOL)


_k = Kernel


KERNELS: tuple[Kernel, ...] = (
    _k("gemm", "ck_gemm_f32", (
        _in("x", 0), _in("W", 1), _opt("b", 2), _out("y", 0),
        _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"),
        _p("accumulate", "int", 0),
        Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
        c_return="int", ret="status", ins=("x [rows, k]", "W [n, k]", "bias [n] (optional)"),
        outs=("y [rows, n]",), doc="y = x . W^T + b (linear layer, weights [out, in])",
        op="tensorop.matmul", map=OpMap(ins=("a", "b", "bias"), shape="a", hints=("mm",),
                                        params=(("n", "b.0"), ("k", "cols")),
                                        require=(("transpose_a", False), ("transpose_b", True)),
                                        unsupported="only x . W^T (transpose_b) is supported")),
    _k("gemm_packed", "ck_gemm_packed_f32", (
        _in("x", 0), _in("Wp", 1), _opt("b", 2), _out("y", 0),
        _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"),
        _p("accumulate", "int", 0),
        Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
        c_return="int", ret="status",
        ins=("x [rows, k]", "W [n, k] in layout p32 (prepacked by pack-weights)", "bias [n] (optional)"),
        outs=("y [rows, n]",), doc="y = x . W^T + b with W stored prepacked (no per-call packing)",
        op="tensorop.matmul"),  # pack-weights rewrites gemm calls
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
        + ", rope on q and k; packed = 1: W* in layout p32", op="tensorop.rmsnorm_qkv_rope")
      for name, bias in (("rmsnorm_qkv_rope", False), ("rmsnorm_qkv_rope_bias", True))),
    _k("rmsnorm", "ck_rmsnorm_f32", (
        _in("x", 0), _in("w", 1), _out("y", 0), _null("rstd"),
        _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
        _p("w_offset", "float"), *_POOL),
        ins=("x [rows, cols]", "w [cols]"), outs=("y [rows, cols]",),
        doc="RMSNorm of each row (QK-norm: rows = tokens*heads, cols = head_dim)",
        # one row per group of size(w) elements: [T, heads*head_dim] with a [head_dim] weight is T*heads rows
        op="tensorop.rmsnorm", map=OpMap(ins=("x", "w"), shape="x", hints=("norm",), params=(
            ("rows", ("*", "rows", ("//", "x.1", "w.0"))), ("cols", "w.0"), ("w_offset", "offset")))),
    _k("layernorm", "ck_layernorm_f32", (
        _in("x", 0), _in("w", 1), _opt("b", 2), _out("y", 0), _null("mean"), _null("rstd"),
        _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
        _p("w_offset", "float"), *_POOL),
        ins=("x [rows, cols]", "w [cols]", "b [cols] (optional)"), outs=("y [rows, cols]",),
        op="tensorop.layernorm", map=OpMap(ins=("x", "w", "bias"), shape="x", hints=("norm",),
                                           params=(("w_offset", "offset"),))),
    _k("rope", "ck_rope_f32", (
        _in("x", 0), _out("y", 0), *_ROPE_ARGS),
        c_return="int", ret="status", ins=("x [rows, heads*head_dim]", "inv_freq [rotary_dim/2] (optional)"),
        outs=("y [rows, heads*head_dim]",), doc="style: 0 neox, 1 interleaved; row t at position pos + t",
        op="tensorop.rope", map=OpMap(ins=("x", "inv_freq"), shape="x", params=(ROTARY_DIM, STYLE))),
    _k("attention", "ck_attention_f32", (
        _in("q", 0), _in("k", 1), _in("v", 2), _out("out", 0), _null("lse"),
        _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
        _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
        _p("scale", "float"), _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q [rows, heads*head_dim]", "k cache [context, kv_heads*head_dim]", "v cache"),
        outs=("out [rows, heads*head_dim]",), doc="causal GQA attention of rows new tokens at pos..",
        op="tensorop.causal_attention"),  # bufferize picks attention / _decode / _train
    _k("attention_decode", "ck_attention_decode_f32", (
        _in("q", 0), _in("k_cache", 1), _in("v_cache", 2), _out("out", 0),
        _p("n_past", "int", "pos"), _p("H", "int", "heads"), _p("KV", "int", "kv_heads"),
        _p("D", "int", "head_dim"), _p("window", "int"), _p("scale", "float"),
        _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q [1, heads*head_dim]", "k cache", "v cache"), outs=("out [1, heads*head_dim]",),
        op="tensorop.causal_attention"),
    # KV caches stored in f16 / Q8_0 (ckc --kv-type): bufferize picks these by the
    # caches' element type; kv_write_* converts the new fp32 rows at out0_row = pos.
    *(entry for fmt, ptr in (("f16", "void *"), ("q8_0", "void *")) for entry in (
        _k(f"attention_kv{fmt}", f"ck_attention_kv{fmt}", (
            _in("q", 0), _in("k", 1, "const " + ptr), _in("v", 2, "const " + ptr), _out("out", 0),
            _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
            _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
            _p("scale", "float"), _p("softcap", "float"), *_POOL),
            c_return="int", ret="status",
            ins=("q [rows, heads*head_dim]", f"k cache [context, kv_heads*head_dim] ({fmt})", f"v cache ({fmt})"),
            outs=("out [rows, heads*head_dim]",), doc=f"attention over a {fmt} KV cache (prefill chunk)",
            op="tensorop.causal_attention"),
        _k(f"attention_decode_kv{fmt}", f"ck_attention_decode_kv{fmt}", (
            _in("q", 0), _in("k_cache", 1, "const " + ptr), _in("v_cache", 2, "const " + ptr), _out("out", 0),
            _p("n_past", "int", "pos"), _p("H", "int", "heads"), _p("KV", "int", "kv_heads"),
            _p("D", "int", "head_dim"), _p("window", "int"), _p("scale", "float"),
            _p("softcap", "float"), *_POOL),
            c_return="int", ret="status",
            ins=("q [1, heads*head_dim]", f"k cache ({fmt})", f"v cache ({fmt})"), outs=("out [1, heads*head_dim]",),
            op="tensorop.causal_attention"),
        _k(f"kv_write_{fmt}", f"ck_kv_write_{fmt}", (
            _in("x", 0), _out("cache", 0, ptr), _p("T", "int", "rows"), _p("C", "int", "cols"), *_POOL),
            c_return="int", ret="status", ins=("x [rows, cols] (fp32 K or V rows)",),
            outs=(f"cache rows pos.. [context, cols] ({fmt})",), doc=f"KV cache append, fp32 -> {fmt}",
            op="tensorop.kv_write"),
    )),
    _k("add", "ck_add_f32", (_in("a", 0), _in("b", 1), _out("y", 0), _N, *_POOL),
       ins=("a [rows, cols]", "b [rows, cols]"), outs=("y",), op="tensorop.add", map=OpMap(ins=("a", "b"))),
    _k("mul", "ck_mul_f32", (_in("a", 0), _in("b", 1), _out("y", 0), _N, *_POOL),
       ins=("a [rows, cols]", "b [rows, cols]"), outs=("y",), op="tensorop.mul", map=OpMap(ins=("a", "b"))),
    _k("scale", "ck_scale_f32", (_in("x", 0), _out("y", 0), _N, _p("s", "float", "factor"), *_POOL),
       ins=("x [rows, cols]",), outs=("y",), op="tensorop.scale", map=UNARY),
    _k("copy", "ck_scale_f32", (_in("x", 0), _out("y", 0), _N, _p("s", "float", 1.0), *_POOL),
       ins=("x [rows, cols]",), outs=("y",), doc="y = x (ck_scale_f32 with s = 1: exact)",
       op="tensorop.kv_write"),  # only when the new rows cannot be written in place
    _k("silu", "ck_silu_f32", (_in("x", 0), _out("y", 0), _N, *_POOL), ins=("x",), outs=("y",),
       op="tensorop.silu", map=UNARY),
    _k("gelu", "ck_gelu_f32", (_in("x", 0), _out("y", 0), _N, _p("approx", "int"), *_POOL),
       ins=("x",), outs=("y",), doc="approx 0: erf, 1: tanh",
       op="tensorop.gelu", map=OpMap(ins=("x",), params=(APPROX,))),
    _k("softcap", "ck_softcap_f32", (_in("x", 0), _out("y", 0), _N, _p("cap", "float"), *_POOL),
       ins=("x",), outs=("y",), op="tensorop.softcap", map=UNARY),
    _k("swiglu", "ck_swiglu_f32", (
        _in("gate", 0), _in("up", 1), _out("y", 0), _p("T", "int", "rows"), _p("F", "int", "cols"),
        _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"), *_POOL),
        ins=("gate [rows, cols]", "up [rows, cols]"), outs=("y [rows, cols]",), op="tensorop.swiglu", map=GATED),
    _k("geglu", "ck_geglu_f32", (
        _in("gate", 0), _in("up", 1), _out("y", 0), _p("T", "int", "rows"), _p("F", "int", "cols"),
        _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"), _p("approx", "int"), *_POOL),
        ins=("gate [rows, cols]", "up [rows, cols]"), outs=("y [rows, cols]",),
        op="tensorop.geglu", map=OpMap(ins=("gate", "up"), params=(APPROX,))),
    _k("softmax", "ck_softmax_f32", (
        _in("x", 0), _out("y", 0), _p("T", "int", "rows"), _p("C", "int", "cols"), *_POOL),
        ins=("x [rows, cols]",), outs=("y",), op="tensorop.softmax", map=UNARY),
    _k("embedding", "ck_embedding_f32", (
        _in("ids", 0, "const int32_t *"), _in("table", 1), _out("out", 0),
        _p("T", "int", "rows"), _p("vocab", "int"), _p("C", "int", "cols"), _p("scale", "float"), *_POOL),
        c_return="int", ret="count", ins=("ids [rows] (i32)", "table [vocab, cols]"),
        outs=("out [rows, cols]",), op="tensorop.embedding",  # learned positions are a view instead
        map=OpMap(ins=("tokens", "table"), hints=("emb",), params=(("vocab", "table.0"), ("scale", ("or", "scale", 1.0))))),
    _k("cross_entropy", "ck_cross_entropy_f32", (
        _in("logits", 0), _in("targets", 1, "const int32_t *"), _null("dlogits"), _null("losses"),
        _p("T", "int", "rows"), _p("V", "int", "cols"), _p("ignore_index", "int"),
        _p("grad_scale", "float", 1.0), *_POOL),
        c_return="float", ret="out", ret_index=0,
        ins=("logits [rows, cols]", "targets [rows] (i32)"), outs=("loss [] (f32)",),
        doc="mean cross-entropy, stored in element 0 of outs[0]",
        op="tensorop.cross_entropy", map=OpMap(ins=("logits", "targets"), shape="logits", hints=("loss",))),
    # ---- training: forward kernels that also save what the backward reads ----
    _k("rmsnorm_train", "ck_rmsnorm_f32", (
        _in("x", 0), _in("w", 1), _out("y", 0), _out("rstd", 1),
        _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
        _p("w_offset", "float"), *_POOL),
        ins=("x [rows, cols]", "w [cols]"), outs=("y [rows, cols]", "rstd [rows] (saved)"),
        doc="rmsnorm that saves rstd for rmsnorm_grad", op="tensorop.rmsnorm"),
    _k("layernorm_train", "ck_layernorm_f32", (
        _in("x", 0), _in("w", 1), _opt("b", 2), _out("y", 0), _out("mean", 1), _out("rstd", 2),
        _p("T", "int", "rows"), _p("C", "int", "cols"), _p("eps", "float"),
        _p("w_offset", "float"), *_POOL),
        ins=("x [rows, cols]", "w [cols]", "b [cols] (optional)"),
        outs=("y [rows, cols]", "mean [rows] (saved)", "rstd [rows] (saved)"), op="tensorop.layernorm"),
    _k("attention_train", "ck_attention_f32", (
        _in("q", 0), _in("k", 1), _in("v", 2), _out("out", 0), _out("lse", 1),
        _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
        _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
        _p("scale", "float"), _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q [rows, heads*head_dim]", "k [rows, kv_heads*head_dim]", "v"),
        outs=("out [rows, heads*head_dim]", "lse [rows, heads] (saved)"), op="tensorop.causal_attention"),
    _k("cross_entropy_fused", "ck_cross_entropy_f32", (
        _in("logits", 0), _in("targets", 1, "const int32_t *"), _out("dlogits", 0), _out("losses", 1),
        _p("T", "int", "rows"), _p("V", "int", "cols"), _p("ignore_index", "int"),
        Arg("grad_scale", "float", "func", expr="grad_scale"), *_POOL),
        c_return="float", ret="void",
        ins=("logits [rows, cols]", "targets [rows] (i32)"),
        outs=("dlogits [rows, cols]", "losses [rows] (per-row loss, 0 for ignored rows)"),
        doc="loss and dlogits in one pass; the returned mean is not used (the runtime averages "
        "outs[1] over the valid targets)", op="tensorop.cross_entropy_fused"),
    # ---- backward: activation gradients are overwritten, parameter gradients accumulate (+=) ----
    _k("gemm_grad", "ck_gemm_grad_f32", (
        _in("dy", 0), _in("x", 1), _in("W", 2), _out("dx", 0), _out("dW", 1), _null("db"),
        _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"), _p("flags", "int"),
        Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
        c_return="int", ret="status", ins=("dy [rows, n]", "x [rows, k]", "W [n, k]"),
        outs=("dx [rows, k]", "dW [n, k]"), doc="flags: CK_GEMM_ACC_DX 1 | _DW 2 | _DB 4 (+= instead of =)",
        op="tensorop.matmul_grad"),
    _k("gemm_grad_bias", "ck_gemm_grad_f32", (
        _in("dy", 0), _in("x", 1), _in("W", 2), _out("dx", 0), _out("dW", 1), _out("db", 2),
        _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"), _p("flags", "int"),
        Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
        c_return="int", ret="status", ins=("dy [rows, n]", "x [rows, k]", "W [n, k]"),
        outs=("dx [rows, k]", "dW [n, k]", "db [n]"), op="tensorop.matmul_grad"),
    _k("rmsnorm_grad", "ck_rmsnorm_grad_f32", (
        _in("dy", 0), _in("x", 1), _in("w", 2), _in("rstd", 3), _out("dx", 0), _out("dw", 1),
        _p("T", "int", "rows"), _p("C", "int", "cols"), _p("w_offset", "float"), *_POOL),
        ins=("dy [rows, cols]", "x", "w [cols]", "rstd [rows]"), outs=("dx [rows, cols]", "dw [cols] (+=)"),
        op="tensorop.rmsnorm_grad"),
    _k("layernorm_grad", "ck_layernorm_grad_f32", (
        _in("dy", 0), _in("x", 1), _in("w", 2), _in("mean", 3), _in("rstd", 4),
        _out("dx", 0), _out("dw", 1), _out("db", 2),
        _p("T", "int", "rows"), _p("C", "int", "cols"), _p("w_offset", "float"), *_POOL),
        ins=("dy [rows, cols]", "x", "w [cols]", "mean [rows]", "rstd [rows]"),
        outs=("dx [rows, cols]", "dw [cols] (+=)", "db [cols] (+=)"), op="tensorop.layernorm_grad"),
    _k("rope_grad", "ck_rope_grad_f32", (
        _in("dy", 0), _out("dx", 0), *_ROPE_ARGS),
        c_return="int", ret="status", ins=("dy [rows, heads*head_dim]", "inv_freq (optional)"),
        outs=("dx [rows, heads*head_dim]",),
        op="tensorop.rope_grad", map=OpMap(ins=("dy", "inv_freq"), shape="dy", hints=("drope",),
                                           params=(ROTARY_DIM, STYLE))),
    _k("attention_grad", "ck_attention_grad_f32", (
        _in("q", 0), _in("k", 1), _in("v", 2), _in("out", 3), _in("dout", 4), _in("lse", 5),
        _out("dq", 0), _out("dk", 1), _out("dv", 2),
        _p("T", "int", "rows"), _p("n_past", "int", "pos"), _p("H", "int", "heads"),
        _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
        _p("scale", "float"), _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q", "k", "v", "out (forward)", "dout", "lse (saved by attention_train)"),
        outs=("dq [rows, heads*head_dim]", "dk [rows, kv_heads*head_dim]", "dv"), op="tensorop.causal_attention_grad"),
    # ---- a batch of sequences (`seq_len` > 0: rows = B * seq_len, attention and positions per sequence;
    # lower-transformer{seq_len} for a batched train step). Lowered by bufferize's hand-written rules (no map).
    *(_k(name, "ck_attention_seq_f32", (
        _in("q", 0), _in("k", 1), _in("v", 2), _out("out", 0), lse,
        _p("rows", "int"), _p("S", "int", "seq_len"), _p("H", "int", "heads"),
        _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
        _p("scale", "float"), _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q [rows, heads*head_dim]", "k [rows, kv_heads*head_dim]", "v"),
        outs=("out [rows, heads*head_dim]", *(("lse [rows, heads] (saved)",) if lse.role == "out" else ())),
        doc="causal attention within each sequence of seq_len rows", op="tensorop.causal_attention")
      for name, lse in (("attention_seq", _null("lse")), ("attention_train_seq", _out("lse", 1)))),
    _k("attention_grad_seq", "ck_attention_grad_seq_f32", (
        _in("q", 0), _in("k", 1), _in("v", 2), _in("out", 3), _in("dout", 4), _in("lse", 5),
        _out("dq", 0), _out("dk", 1), _out("dv", 2),
        _p("rows", "int"), _p("S", "int", "seq_len"), _p("H", "int", "heads"),
        _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"), _p("window", "int"),
        _p("scale", "float"), _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q", "k", "v", "out (forward)", "dout", "lse (saved by attention_train_seq)"),
        outs=("dq [rows, heads*head_dim]", "dk [rows, kv_heads*head_dim]", "dv"),
        op="tensorop.causal_attention_grad"),
    _k("seq_positions", "ck_seq_positions_i32", (
        _out("pos", 0, "int32_t *"), _p("rows", "int"), _p("S", "int", "seq_len"), _p("pos0", "int", "pos"),
        *_POOL), ins=(), outs=("positions [rows] (i32): pos + i mod seq_len",),
        op="tensorop.positions"),
    *(_k(name, base, (
        _in(x, 0), _out(y, 0), _in("pos", 1, "const int32_t *"), _opt("inv_freq", 2),
        _p("T", "int", "rows"), _p("heads", "int"), _p("head_dim", "int"),
        _p("rotary_dim", "int"), _p("pos0", "int", 0), _p("theta", "float"),
        _p("style", "int"), *_POOL),
        c_return="int", ret="status",
        ins=(f"{x} [rows, heads*head_dim]", "positions [rows] (i32, seq_positions)", "inv_freq (optional)"),
        outs=(f"{y} [rows, heads*head_dim]",), doc="row t at position positions[t]", op=op)
      for name, base, x, y, op in (("rope_ids", "ck_rope_f32", "x", "y", "tensorop.rope"),
                                   ("rope_grad_ids", "ck_rope_grad_f32", "dy", "dx", "tensorop.rope_grad"))),
    _k("silu_grad", "ck_silu_grad_f32", (_in("x", 0), _in("dy", 1), _out("dx", 0), _N, *_POOL),
       ins=("x", "dy"), outs=("dx",), op="tensorop.silu_grad", map=UNARY_GRAD),
    _k("gelu_grad", "ck_gelu_grad_f32", (_in("x", 0), _in("dy", 1), _out("dx", 0), _N, _p("approx", "int"),
                                          *_POOL), ins=("x", "dy"), outs=("dx",),
       op="tensorop.gelu_grad", map=OpMap(ins=("x", "dy"), hints=("dx",), params=(APPROX,))),
    _k("softcap_grad", "ck_softcap_grad_f32", (_in("x", 0), _in("dy", 1), _out("dx", 0), _N,
                                                _p("cap", "float"), *_POOL), ins=("x", "dy"), outs=("dx",),
       op="tensorop.softcap_grad", map=UNARY_GRAD),
    _k("swiglu_grad", "ck_swiglu_grad_f32", (
        _in("gate", 0), _in("up", 1), _in("dy", 2), _out("dgate", 0), _out("dup", 1),
        _p("T", "int", "rows"), _p("F", "int", "cols"), _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"),
        *_POOL), ins=("gate [rows, cols]", "up", "dy"), outs=("dgate", "dup"), op="tensorop.swiglu_grad", map=GATED_GRAD),
    _k("geglu_grad", "ck_geglu_grad_f32", (
        _in("gate", 0), _in("up", 1), _in("dy", 2), _out("dgate", 0), _out("dup", 1),
        _p("T", "int", "rows"), _p("F", "int", "cols"), _p("ld_in", "int", "cols"), _p("ld_out", "int", "cols"),
        _p("approx", "int"), *_POOL), ins=("gate [rows, cols]", "up", "dy"), outs=("dgate", "dup"),
        op="tensorop.geglu_grad", map=OpMap(ins=GATED_GRAD.ins, outs=GATED_GRAD.outs, shape="dy",
                                            hints=GATED_GRAD.hints, params=(APPROX,))),
    _k("softmax_grad", "ck_softmax_grad_f32", (
        _in("y", 0), _in("dy", 1), _out("dx", 0), _p("T", "int", "rows"), _p("C", "int", "cols"), *_POOL),
        ins=("y (forward output)", "dy"), outs=("dx",),
        op="tensorop.softmax_grad", map=OpMap(ins=("y", "dy"), shape="dy", hints=("dx",))),
    _k("embedding_grad", "ck_embedding_grad_f32", (
        _in("ids", 0, "const int32_t *"), _in("dout", 1), _out("dtable", 0),
        _p("T", "int", "rows"), _p("vocab", "int"), _p("C", "int", "cols"), _p("scale", "float"), *_POOL),
        ins=("ids [rows] (i32)", "dout [rows, cols]"), outs=("dtable [vocab, cols] (scatter-add +=)",),
        op="tensorop.embedding_grad"),
    _k("axpy", "ck_axpy_f32", (_out("y", 0), _in("x", 0), _N, _p("a", "float"), *_POOL),
       ins=("x [rows, cols]",), outs=("y [rows, cols] (read and written: y += a*x)",),
       doc="gradient accumulation (tensorop.accumulate), learned-position gradients", op="tensorop.accumulate"),
    # ---- optimizer: one tensor per call ----
    _k("adamw", "ck_adamw_f32", (
        _out("param", 0), _in("grad", 0), _out("m", 1), _out("v", 2), _N, _p("lr", "float"),
        _p("beta1", "float"), _p("beta2", "float"), _p("eps", "float"), _p("weight_decay", "float"),
        _p("step", "int"), _p("grad_scale", "float"), *_POOL),
        ins=("grad",), outs=("param (updated)", "m (updated)", "v (updated)"),
        doc="torch.optim.AdamW on one tensor; grad_scale = the clip coefficient", op="tensorop.adamw_update"),
    _k("sumsq", "ck_sumsq_f32", (_in("x", 0), _N, *_POOL), c_return="double", ret="void",
       ins=("x",), doc="sum of squares (double), phase 1 of global-norm clipping (no buffer.call emits it: "
       "ck_clip_norm_f32 calls it)"),
    # ---- the compiled @optimizer_step / @zero_grads (add-optimizer; bufferize's _OptFunction rules,
    # no generic map), over flat parallel blocks ----
    _k("clip_norm", "ck_clip_norm_f32", (
        _in("g", 0), _p("n", "int64_t"), _p("max_norm", "float"), _out("norm", 0), _out("coef", 1), *_POOL),
        ins=("g [n] (all gradients, one flat block)",), outs=("norm [1] (global L2 norm)",
                                                               "coef [1] (clip coefficient, 1 = none)"),
        doc="global gradient norm and clip_grad_norm_'s coefficient min(1, max_norm/(norm+1e-6))",
        op="tensorop.global_norm"),
    _k("adamw_coef", "ck_adamw_coef_f32", (
        _out("param", 0), _in("grad", 0), _out("m", 1), _out("v", 2), _opt("coef", 1), _p("n", "int64_t"),
        Arg("lr", "float", "func", expr="lr"), _p("beta1", "float"), _p("beta2", "float"), _p("eps", "float"),
        _p("weight_decay", "float"), Arg("step", "int", "func", expr="step"), *_POOL),
        ins=("grad [n]", "coef [1] (clip coefficient; optional)"),
        outs=("param [n] (updated)", "m [n] (updated)", "v [n] (updated)"),
        doc="torch.optim.AdamW over n floats (many tensors of one parameter group when flat); lr and step "
        "are @optimizer_step's runtime parameters", op="tensorop.adamw_update"),
    _k("zero", "ck_zero_f32", (_out("x", 0), _p("n", "int64_t"), *_POOL), outs=("x [n] (zeroed)",),
       doc="x = 0 (@zero_grads over the gradient block)", op="tensorop.zeros"),
    # ---- slot-batched decode (@decode_batch, kernels/slot_attention.c): row i of a call is in KV-cache
    # slot slots[i] at position positions[i] (the io buffers @slots / @positions); caches [slots, context, W].
    # Lowered by bufferize's _BatchFunction rules (no generic map).
    _k("rope_rows", "ck_rope_f32", (
        _in("x", 0), _out("y", 0), _in("pos", 1, "const int32_t *"), _opt("inv_freq", 2),
        _p("T", "int", "rows"), _p("heads", "int"), _p("head_dim", "int"),
        _p("rotary_dim", "int"), _p("pos0", "int", 0), _p("theta", "float"),
        _p("style", "int"), *_POOL),
        c_return="int", ret="status",
        ins=("x [rows, heads*head_dim]", "positions [rows] (i32)", "inv_freq [rotary_dim/2] (optional)"),
        outs=("y [rows, heads*head_dim]",), doc="rope with row t at position positions[t]",
        op="tensorop.rope_rows"),
    _k("kv_scatter", "ck_kv_scatter_f32", (
        _in("x", 0), _out("cache", 0), _in("slots", 1, "const int32_t *"), _in("pos", 2, "const int32_t *"),
        _p("T", "int", "rows"), _p("W", "int", "cols"), _p("nslots", "int", "slots"),
        _p("context", "int"), *_POOL),
        c_return="int", ret="status",
        ins=("x [rows, cols]", "slots [rows] (i32)", "positions [rows] (i32)"),
        outs=("cache [slots, context, cols]",), doc="row t into slot slots[t] at position positions[t]",
        op="tensorop.kv_scatter"),
    _k("slot_attention", "ck_slot_attention_f32", (
        _in("q", 0), _in("k_cache", 1), _in("v_cache", 2), _out("out", 0),
        _in("slots", 3, "const int32_t *"), _in("pos", 4, "const int32_t *"),
        _p("T", "int", "rows"), _p("nslots", "int", "slots"), _p("context", "int"),
        _p("H", "int", "heads"), _p("KV", "int", "kv_heads"), _p("D", "int", "head_dim"),
        _p("window", "int"), _p("scale", "float"), _p("softcap", "float"), *_POOL),
        c_return="int", ret="status",
        ins=("q [rows, heads*head_dim]", "k cache [slots, context, kv_heads*head_dim]", "v cache",
             "slots [rows] (i32)", "positions [rows] (i32)"),
        outs=("out [rows, heads*head_dim]",), doc="row t attends to rows 0..positions[t] of slot slots[t]",
        op="tensorop.slot_attention"),
)



def _quant_kernels() -> list[Kernel]:
    """A GGUF weight format's kernels (kernel_abi.QUANT_FORMATS): qgemm_<fmt>
    (the Linear layer, same params as gemm), qgemm_packed_<fmt> (its weight
    repacked r8 by pack-quant) and qembedding_<fmt>. No map: bufferize's matmul
    and embedding rules choose them by the weight's element type and lower
    them with gemm's / embedding's mapping."""
    from ckc.kernel_abi import QUANT_FORMATS, qembedding_kernel, qgemm_kernel

    out = []
    for fmt, (_, _, packed) in QUANT_FORMATS.items():
        for pk in (False, True) if packed else (False,):
            out.append(_k(qgemm_kernel(fmt, pk), f"ck_qgemm_packed_{fmt}" if pk else f"ck_qgemm_{fmt}", (
                _in("x", 0), _in("Wp" if pk else "W", 1, "const void *"), _opt("b", 2), _out("y", 0),
                _p("M", "int", "rows"), _p("N", "int", "n"), _p("K", "int", "k"),
                _p("accumulate", "int", 0),
                Arg("ws", "void *", "scratch"), Arg("ws_size", "size_t", "scratch_size"), *_POOL),
                c_return="int", ret="status",
                ins=("x [rows, k]", f"W [n, k] in {fmt}" + (" layout r8 (repacked by pack-quant)" if pk else ""),
                     "bias [n] (optional)"),
                outs=("y [rows, n]",),
                doc=f"y = x . dequant(W)^T + b, W stored {fmt}"
                + ("" if fmt in ("f16", "bf16") else ", x quantized on the fly to 8-bit blocks"),
                op="tensorop.matmul"))
        out.append(_k(qembedding_kernel(fmt), f"ck_qembedding_{fmt}", (
            _in("ids", 0, "const int32_t *"), _in("table", 1, "const void *"), _out("out", 0),
            _p("T", "int", "rows"), _p("vocab", "int"), _p("C", "int", "cols"), _p("scale", "float"), *_POOL),
            c_return="int", ret="count", ins=("ids [rows] (i32)", f"table [vocab, cols] in {fmt}"),
            outs=("out [rows, cols]",), doc=f"embedding rows dequantized from {fmt}", op="tensorop.embedding"))
    return out


KERNELS = KERNELS + tuple(_quant_kernels())

MISSING: dict[str, str] = {
    "kv_write": "no row-copy kernel for an f32 cache; bufferize makes the producer of the new K/V rows write "
    "them into the cache in place (out0_row = pos), or falls back to `copy` (ck_scale_f32 with s = 1); "
    "f16 / q8_0 caches convert with kv_write_f16 / kv_write_q8_0",
    "last_rows": "no kernel needed: a view (in0_row = rows - 1)",
    "positions": "no kernel needed for one sequence: learned positions read position_embd.weight at "
    "in1_row = pos (a batch of sequences: seq_positions writes the ids, embedding gathers)",
    "rmsnorm with bias": "ck_rmsnorm_f32 has no bias; no supported family needs it (bufferize rejects it)",
    "matmul without transpose_b": "ck_gemm_f32 only computes x . W^T; inference never needs another form",
}
