"""A reference interpreter for the inference buffer dialect, so that
``ckc parity --stages`` can follow the IR past ``bufferize`` (through
``pack-weights``, ``plan-memory``, ``select-simd`` and any pass of one's own
in between) without C.

Every buffer is a flat fp32 (or int32) torch tensor of its planned size;
weights are the logical tensors (a ``layout p32`` weight is stored packed for
the GEMM micro-kernel, but means the same matrix); a call reads and writes
through the pointers ``lower-to-c`` would give it (``in<i>_row`` /
``out<i>_row``: ``row * prod(shape[1:])`` elements in). Each kernel's
semantics are the tensorop reference's (ckc/interpreters/tensorop.py), with the
parameters the kernel ABI names (ckc/kernel_abi.py). A kernel it does not
know makes the stage "not evaluated".
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, ModuleOp

from ckc.dialects import buffer as B

KNOWN = {"embedding", "add", "mul", "rmsnorm", "layernorm", "gemm", "gemm_packed", "rope", "attention",
         "attention_decode", "swiglu", "geglu", "gelu", "rmsnorm_qkv_rope", "rmsnorm_qkv_rope_bias", "softcap",
         "scale", "kv_write_f16", "kv_write_q8_0", "attention_kvf16", "attention_decode_kvf16",
         "attention_kvq8_0", "attention_decode_kvq8_0"}


class Unsupported(Exception):
    pass


def evaluable(module: ModuleOp) -> str | None:
    """None when every call of every function is interpretable, else why not."""
    for f in module.ops:
        if isinstance(f, func.FuncOp):
            for op in f.walk():
                if isinstance(op, B.CallOp) and op.kernel.data not in KNOWN:
                    return f"kernel {op.kernel.data} has no reference here"
                if isinstance(op, B.LoopOp):
                    return "buffer.loop is not interpreted"
    return None


class BufferReference:
    """Runs the functions of a buffer-dialect module; KV caches persist between runs."""

    def __init__(self, module: ModuleOp, store):
        self.funcs = {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}
        self.store = store
        self.mem: dict = {}  # BufferOp -> flat tensor (function-local buffers are their own)

    def _buffer(self, call, name: str):
        """(flat tensor, row size) of the buffer `name` as seen from `call`."""
        import torch

        from ckc.artifacts import _const_array

        b = B.lookup_buffer(call, name)
        if b is None:
            raise Unsupported(f"unknown buffer @{name}")
        if b not in self.mem:
            shape = b.type.get_shape()
            if b.region.data == "weights":
                v = b.attributes.get("value")
                arr = _const_array(v, shape) if v is not None else np.array(self.store.get(name), np.float32)
                t = torch.from_numpy(np.ascontiguousarray(arr, np.float32)).reshape(-1)
            else:
                is_int = "i32" in str(b.type.element_type)
                n = b.size.data // 4
                if b.region.data == "kv_cache":  # an f16 / q8_0 cache: held as its values, in fp32
                    n = max(n, int(np.prod(shape)))
                t = torch.zeros(n, dtype=torch.int32 if is_int else torch.float32)
            self.mem[b] = t
        shape = b.type.get_shape()
        return self.mem[b], (int(np.prod(shape[1:])) if len(shape) > 1 else 1), b

    def capture(self, runs) -> list[dict]:
        """Per run, {value name: what each call wrote} (as the record build names them)."""
        from ckc.parity.calls import value_name

        out = []
        for run in runs:
            f = self.funcs.get(run.function)
            if f is None:
                raise Unsupported(f"no @{run.function}")
            if run.pos == 0:
                for b, t in self.mem.items():
                    if b.region.data == "kv_cache":
                        t.zero_()
            keep: dict = {}
            self._run(f, run, keep, value_name)
            out.append(keep)
        return out

    def _run(self, f, run, keep, value_name) -> None:
        import torch

        self._tokens = torch.tensor(run.tokens, dtype=torch.int32)
        vals = {}
        args = list(f.body.block.args)
        names = [a.name_hint for a in args]
        for a, nm in zip(args, names):
            vals[a] = run.n if nm == "n" else run.pos if nm == "pos" else None
        if len(args) == 1 and names[0] not in ("n", "pos"):
            vals[args[0]] = run.pos if f.sym_name.data == "decode" else run.n
        for op in f.body.block.ops:
            if isinstance(op, arith.ConstantOp):
                vals[op.result] = op.value.value.data
            elif isinstance(op, (arith.AddiOp, arith.SubiOp, arith.MuliOp)):
                a, b = vals[op.lhs], vals[op.rhs]
                vals[op.result] = a + b if isinstance(op, arith.AddiOp) else a - b if isinstance(op, arith.SubiOp) \
                    else a * b
            elif isinstance(op, B.CallOp):
                env = {}
                for k, a in op.params.data.items():
                    env[k] = a.value.data if isinstance(a, (IntegerAttr, FloatAttr)) else None
                for k, v in zip(op.dyn_names.data, op.dyn_params):
                    env[k.data] = vals[v]
                outs = self._call(op, env)
                for i, (ref, data) in enumerate(zip(op.out_refs, outs)):
                    if data is not None:
                        keep[value_name(ref.buffer_name)] = data.detach().numpy().copy()

    # -- pointers ------------------------------------------------------------------

    def _in(self, op, i, env, count: int | None = None):
        name = op.in_refs[i].buffer_name
        if name == "tokens":
            return self._tokens if count is None else self._tokens[:count]
        t, row, _ = self._buffer(op, name)
        off = int(env.get(f"in{i}_row", 0) or 0) * row
        return t[off:] if count is None else t[off:off + count]

    def _write(self, op, i, env, value):
        name = op.out_refs[i].buffer_name
        flat = value.reshape(-1)
        if name == "logits":  # io: the caller's memory
            return value
        t, row, _ = self._buffer(op, name)
        off = int(env.get(f"out{i}_row", 0) or 0) * row
        t[off:off + flat.numel()] = flat
        return value

    # -- kernels -------------------------------------------------------------------

    def _call(self, op, env):
        import torch

        from ckc.interpreters import tensorop as R

        k = op.kernel.data
        rows = env.get("rows")
        if rows is None and k.startswith("attention_decode"):
            rows = 1
        if k == "embedding":
            ids = self._in(op, 0, env, rows).long()
            table = self._in(op, 1, env).reshape(-1, env["cols"])
            return [self._write(op, 0, env, table[ids] * env["scale"])]
        if k in ("add", "mul"):
            n = rows * env["cols"]
            a, b = self._in(op, 0, env, n), self._in(op, 1, env, n)
            return [self._write(op, 0, env, a + b if k == "add" else a * b)]
        if k == "scale":
            n = rows * env["cols"]
            return [self._write(op, 0, env, self._in(op, 0, env, n) * env["factor"])]
        if k == "softcap":
            n = rows * env["cols"]
            x = self._in(op, 0, env, n)
            return [self._write(op, 0, env, env["cap"] * torch.tanh(x / env["cap"]))]
        if k in ("rmsnorm", "layernorm"):
            C = env["cols"]
            x = self._in(op, 0, env, rows * C).reshape(rows, C)
            w = self._in(op, 1, env, C)
            if k == "rmsnorm":
                y = R.rmsnorm(x, w, env["eps"], env["w_offset"])
            else:
                b = self._in(op, 2, env, C) if len(op.in_refs) > 2 else None
                y = torch.nn.functional.layer_norm(x, (C,), env["w_offset"] + w, b, env["eps"])
            return [self._write(op, 0, env, y)]
        if k in ("gemm", "gemm_packed"):
            N, K = env["n"], env["k"]
            x = self._in(op, 0, env, rows * K).reshape(rows, K)
            W = self._in(op, 1, env, N * K).reshape(N, K)
            y = x @ W.T
            if len(op.in_refs) > 2:
                y = y + self._in(op, 2, env, N)
            return [self._write(op, 0, env, y)]
        if k in ("swiglu", "geglu", "gelu"):
            n = rows * env["cols"]
            g = self._in(op, 0, env, n)
            if k == "gelu":
                return [self._write(op, 0, env, R.gelu(g, "tanh" if env["approx"] else "none"))]
            u = self._in(op, 1, env, n)
            a = torch.nn.functional.silu(g) if k == "swiglu" else R.gelu(g, "tanh" if env["approx"] else "none")
            return [self._write(op, 0, env, a * u)]
        if k == "rope":
            H, D = env["heads"], env["head_dim"]
            x = self._in(op, 0, env, rows * H * D).reshape(rows, H * D)
            inv = self._in(op, 1, env) if len(op.in_refs) > 1 else None
            p = {"heads": H, "head_dim": D, "rotary_dim": env["rotary_dim"], "theta": env["theta"],
                 "style": "neox" if env["style"] == 0 else "norm"}
            inv = inv[: (env["rotary_dim"] or D) // 2] if inv is not None else None
            return [self._write(op, 0, env, R.rope_apply(x, int(env["pos"]), p, inv_freq=inv))]
        if k.startswith("kv_write_"):  # fp32 rows rounded as the cache stores them
            x = self._in(op, 0, env, rows * env["cols"])
            return [self._write(op, 0, env, R.kv_round(x.reshape(rows, env["cols"]), k[len("kv_write_"):]))]
        if k in ("attention", "attention_decode") or k.startswith(("attention_kv", "attention_decode_kv")):
            H, KV, D = env["heads"], env["kv_heads"], env["head_dim"]
            pos = int(env["pos"])
            S = pos + rows
            q = self._in(op, 0, env, rows * H * D).reshape(rows, H * D)
            kk = self._in(op, 1, env, S * KV * D).reshape(S, KV * D)
            vv = self._in(op, 2, env, S * KV * D).reshape(S, KV * D)
            p = {"heads": H, "kv_heads": KV, "head_dim": D, "scale": env["scale"], "softcap": env["softcap"],
                 "window": env["window"]}
            return [self._write(op, 0, env, R.causal_attention(q, kk, vv, p, pos))]
        if k.startswith("rmsnorm_qkv_rope"):
            C, H, KV, D = env["cols"], env["heads"], env["kv_heads"], env["head_dim"]
            x = self._in(op, 0, env, rows * C).reshape(rows, C)
            nw = self._in(op, 1, env, C)
            wq = self._in(op, 2, env, H * D * C).reshape(H * D, C)
            wk = self._in(op, 3, env, KV * D * C).reshape(KV * D, C)
            wv = self._in(op, 4, env, KV * D * C).reshape(KV * D, C)
            bias = k.endswith("_bias")
            h = R.rmsnorm(x, nw, env["eps"], env["w_offset"])
            q, kx, v = h @ wq.T, h @ wk.T, h @ wv.T
            if bias:
                q, kx, v = q + self._in(op, 5, env, H * D), kx + self._in(op, 6, env, KV * D), \
                    v + self._in(op, 7, env, KV * D)
            ii = 8 if bias else 5
            inv = self._in(op, ii, env, (env["rotary_dim"] or D) // 2) if len(op.in_refs) > ii else None
            p = {"heads": H, "kv_heads": KV, "head_dim": D, "rotary_dim": env["rotary_dim"], "theta": env["theta"],
                 "style": "neox" if env["style"] == 0 else "norm"}
            q = R.rope_apply(q, int(env["pos"]), p, "heads", inv)
            kx = R.rope_apply(kx, int(env["pos"]), p, "kv_heads", inv)
            return [self._write(op, 0, env, q), self._write(op, 1, env, kx), self._write(op, 2, env, v),
                    self._write(op, 3, env, h)]
        raise Unsupported(f"kernel {k}")


