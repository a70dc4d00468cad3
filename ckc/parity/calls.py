"""The call table of a record build (``record.json``): every ``buffer.call`` in
``lower-to-c``'s numbering (``ckc_gen_call_names``: functions in module order,
calls in walk order) with what the parity report needs to name it: function,
kernel, variant, layer, and each output's buffer name, shape and region."""

from __future__ import annotations

import re

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from ckc.dialects import quant
from ckc.dialects import buffer as B

_LAYER = (re.compile(r"^l(\d+)_"), re.compile(r"^blk\.(\d+)\."), re.compile(r"^d_l(\d+)_"))


def layer_of(name: str) -> int | None:
    """The layer a buffer name belongs to (``l3_q_rot``, ``blk.3.k_cache``), or None."""
    for r in _LAYER:
        m = r.match(name)
        if m:
            return int(m.group(1))
    return None


def value_name(buffer: str) -> str:
    """The name a reference knows an output by: the buffer's, except a KV cache
    (``blk.3.k_cache``), whose written rows are layer 3's new k (``l3_k_cache``)."""
    m = re.match(r"^blk\.(\d+)\.([kv])_cache$", buffer)
    return f"l{m.group(1)}_{m.group(2)}_cache" if m else buffer


def op_label(buffer: str) -> str:
    """The op column: the output's name without its layer prefix (a gradient
    keeps its ``d_`` / ``grad.``)."""
    m = re.match(r"^(d_|grad\.)?(?:l\d+_|blk\.\d+\.)(.*)$", buffer)
    return (m.group(1) or "") + m.group(2) if m else buffer


def call_table(module: ModuleOp) -> list[dict]:
    out: list[dict] = []
    for f in module.ops:
        if not isinstance(f, func.FuncOp):
            continue
        for op in f.walk():
            if not isinstance(op, B.CallOp):
                continue
            outs = []
            for ref in op.out_refs:
                buf = B.lookup_buffer(op, ref.buffer_name)
                t = buf.type
                outs.append({
                    "name": ref.buffer_name,
                    "shape": [d if d >= 0 else -1 for d in t.get_shape()],
                    # f16 / q8_0: a KV cache in that format (the recorder decodes it to fp32)
                    "dtype": "i32" if "i32" in str(t.element_type) else (quant.format_name(t.element_type) or "f32"),
                    "region": buf.region.data,
                })
            # the layer the outputs name, else the layer weights read (not an input activation's:
            # the final norm reads the last layer's residual)
            names = [o["name"] for o in outs] + [r.buffer_name for r in op.in_refs if r.buffer_name.startswith("blk.")]
            layer = next((lay for lay in map(layer_of, names) if lay is not None), None)
            out.append({
                "index": len(out),
                "function": f.sym_name.data,
                "kernel": op.kernel.data,
                "variant": op.variant.data if op.variant is not None else None,
                "ins": [r.buffer_name for r in op.in_refs],
                "outs": outs,
                "layer": layer,
                "looped": op.layer is not None,
            })
    return out
