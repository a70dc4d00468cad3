"""The `llama.cpp` reference: the same GGUF run by llama.cpp (the harness
ckc builds, tools/llamacpp/ckc_llama.c ``tensors``), one batch of the whole
token sequence, every named f32 node seen through llama.cpp's graph callback
(``cb_eval``). Causal attention makes row p of that batch equal to the
compiled model's run at position p.

The mapping (:data:`LAYER`, :data:`GLOBAL`) takes an IR value name to
llama.cpp's node names (``<name>-<layer>``); candidates are tried in order,
and a name llama.cpp gives several nodes (``Qcur`` after the projection, the
reshape and RoPE) means its last one unless marked ``#0`` (the first). A call reading a weight the GGUF stores quantized, and every op after it, is
judged by cosine similarity (:meth:`LlamaCppReference.loosen`). Nodes
llama.cpp leaves unnamed have no counterpart, except the attention output
projection most architectures leave unnamed, found by its sources (the
node multiplying by ``blk.L.attn_output.weight``, then the one adding
``blk.L.attn_output.bias``: ``wo_out-L``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ckc.errors import CkcError

LAYER = {
    "attn_norm": ("attn_norm",),
    "q": ("Qcur#0",), "k": ("Kcur#0",), "v": ("Vcur#0",),
    "q_normed": ("Qcur_normed",), "k_normed": ("Kcur_normed",),
    "q_rot": ("Qcur",), "k_rot": ("Kcur",), "k_cache": ("Kcur",), "v_cache": ("Vcur",),
    "attn": ("kqv_out",),
    "attn_out": ("attn_out", "wo_out"),
    "post_attention_norm": ("attn_post_norm",),
    "resid": ("ffn_inp", "sa_out"),
    "ffn_norm": ("ffn_norm",),
    "ffn_up": ("ffn_up_b", "ffn_up"),
    "ffn_gate": ("ffn_gate_b", "ffn_gate"),
    "ffn_act": ("ffn_swiglu", "ffn_geglu", "ffn_gelu"),
    "ffn_out": ("ffn_out",),
    "post_ffw_norm": ("ffn_post_norm",),
    "resid_v2": ("l_out",),
}
GLOBAL = {"x_emb": ("inp_scaled", "embd"), "x_pos": ("inpL",), "output_norm": ("result_norm",),
          "logits": ("result_output",)}


class LlamaCppReference:
    name = "llama.cpp"
    full_sequence = True

    def __init__(self, gguf: Path):
        import mmap

        from gguf import GGMLQuantizationType

        from ckc.importers.gguf import read_header

        self.gguf = Path(gguf)
        with open(self.gguf, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            _, infos, _ = read_header(self.gguf, buf)
        floats = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16}
        # the tensors llama.cpp multiplies in a quantized type (ckc: dequantized to fp32)
        self.quantized = {name: GGMLQuantizationType(t).name for name, _, t, _ in infos
                          if GGMLQuantizationType(t) not in floats}

    def loosen(self, call: dict) -> bool:
        """llama.cpp multiplies a quantized weight with its activations quantized to
        8 bits (ggml's vec_dot), ckc with the weight dequantized to fp32: such a call,
        and every op after it, is judged by cosine similarity (compare.py)."""
        return any(n in self.quantized for n in call["ins"])

    @classmethod
    def load(cls, path):
        path = Path(path)
        if path.suffix != ".gguf":
            raise CkcError(f"{path}: --against llama.cpp needs a .gguf model (llama.cpp reads only GGUF)")
        return cls(path)

    def mapping(self, value: str) -> str | None:
        m = re.match(r"^l(\d+)_(.*)$", value)
        if m:
            c = LAYER.get(m.group(2))
            return ",".join(f"{x.split('#')[0]}-{m.group(1)}" + ("#0" if x.endswith("#0") else "")
                            for x in c) if c else None
        c = GLOBAL.get(value)
        return ",".join(c) if c else None

    def capture(self, runs, seq: list[int]) -> list[dict]:
        from ckc import llamacpp
        from ckc.parity.calls import value_name

        try:
            nodes = llamacpp.tensors(self.gguf, seq)
        except Exception as e:  # noqa: BLE001 - the harness's refusal, as one line
            raise CkcError(f"{self.gguf}: {str(e).splitlines()[0]}") from None
        first: dict[str, np.ndarray] = {}
        last: dict[str, np.ndarray] = {}
        wo: dict[str, str] = {}  # node name -> layer, for the output projection's nodes
        for name, a, src in nodes:
            while a.ndim > 2 and a.shape[0] == 1:
                a = a[0]
            first.setdefault(name, a)
            last[name] = a
            # Most architectures leave the attention output projection unnamed: it is the
            # node that multiplies by blk.L.attn_output.weight (then adds its bias).
            m = re.match(r"^blk\.(\d+)\.attn_output\.weight$", src[0])
            if m is None and src[0] in wo and src[1].endswith(".attn_output.bias"):
                m = re.match(r"^(\d+)$", wo[src[0]])
            if m is not None:
                wo[name] = m.group(1)
                last[f"wo_out-{m.group(1)}"] = a
        full: dict[str, np.ndarray] = {}
        for r in runs:
            for o in r.outputs:
                key = self.mapping(value_name(o.name))
                if key is None or key in full:
                    continue
                for cand in key.split(","):
                    src = first if cand.endswith("#0") else last
                    a = src.get(cand.split("#")[0])
                    if a is not None and a.shape[0] == len(seq):
                        full[key] = a
                        break
        return [{k: v[r.pos:r.pos + r.n] for k, v in full.items()} for r in runs]
