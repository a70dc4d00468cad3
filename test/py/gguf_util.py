"""Writing small GGUF files for bad-input tests: a real model's tensors under
metadata the test chooses (an unknown architecture, a wrong shape, ...)."""

import numpy as np
import pytest


def write_gguf(path, arch: str, cfg, tensors: dict[str, np.ndarray], raw: dict | None = None,
               vocab: str | None = None) -> None:
    """``raw``: more tensors as ``{name: (bytes as uint8 array, GGMLQuantizationType)}``;
    ``vocab``: "gpt2" or "llama" adds a tiny tokenizer of that kind (the fuzz seeds,
    tools/fuzz/targets.py)."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(cfg.max_context)
    w.add_embedding_length(cfg.hidden)
    w.add_block_count(cfg.n_layers)
    w.add_feed_forward_length(cfg.ffn)
    w.add_head_count(cfg.n_heads)
    w.add_head_count_kv(cfg.n_kv_heads)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_rope_freq_base(cfg.rope_theta)
    if vocab == "gpt2":
        toks = [chr(c) for c in range(ord("a"), ord("a") + 12)] + ["ab", "abc", "<|endoftext|>", "Ġa"]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(toks)
        w.add_token_types([1] * 14 + [3, 1])
        w.add_token_merges(["a b", "ab c"])
        w.add_eos_token_id(14)
    elif vocab == "llama":
        toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(4)] + ["▁", "a", "b", "▁a", "ab"]
        w.add_tokenizer_model("llama")
        w.add_token_list(toks)
        w.add_token_types([2, 3, 3] + [6] * 4 + [1] * 5)
        w.add_token_scores([0.0] * 7 + [-1.0, -2.0, -3.0, -0.5, -0.7])
        w.add_bos_token_id(1)
    for name, a in tensors.items():
        w.add_tensor(name, a)
    for name, (data, qtype) in (raw or {}).items():
        w.add_tensor(name, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def llama_parts():
    """The tiny zoo Llama's config and tensors (from its GGUF), to rewrite."""
    from ckc import modelzoo
    from ckc.importers import load_model

    cfg, store = load_model(modelzoo.gguf_file("llama"))
    return cfg, {n: np.array(store[n]) for n in store.names()}


def write_tiny_llama(path, layers: int = 1) -> None:
    """A complete, tiny Llama GGUF (hidden 8, 2 heads of 4, 1 KV head, ffn 16,
    the 12-token "llama" vocab, tied embeddings), weights from a fixed seed:
    small enough to read as IR (test/lit/importers/gguf-llama.mlir)."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(max_context=32, hidden=8, n_layers=layers, ffn=16, n_heads=2, n_kv_heads=1,
                          norm_eps=1e-5, rope_theta=10000.0)
    hd, vocab = 4, 12
    shapes = {"token_embd.weight": (vocab, 8)}
    for i in range(layers):
        b = f"blk.{i}"
        shapes.update({f"{b}.attn_norm.weight": (8,), f"{b}.attn_q.weight": (2 * hd, 8),
                       f"{b}.attn_k.weight": (hd, 8), f"{b}.attn_v.weight": (hd, 8),
                       f"{b}.attn_output.weight": (8, 2 * hd), f"{b}.ffn_norm.weight": (8,),
                       f"{b}.ffn_gate.weight": (16, 8), f"{b}.ffn_up.weight": (16, 8),
                       f"{b}.ffn_down.weight": (8, 16)})
    shapes["output_norm.weight"] = (8,)
    rng = np.random.default_rng(0)
    tensors = {n: (rng.standard_normal(s) * 0.1).astype(np.float32) for n, s in shapes.items()}
    write_gguf(path, "llama", cfg, tensors, vocab="llama")


if __name__ == "__main__":
    # python test/py/gguf_util.py tiny-llama OUT.gguf [LAYERS]  (lit tests write their input this way)
    import sys

    if len(sys.argv) not in (3, 4) or sys.argv[1] != "tiny-llama":
        sys.exit("usage: gguf_util.py tiny-llama OUT.gguf [LAYERS]")
    write_tiny_llama(sys.argv[2], *(int(a) for a in sys.argv[3:]))

def requantize(src, dst, qtype, keep=None) -> None:
    """A copy of the GGUF ``src`` (every metadata key, every tensor) at ``dst``
    whose Linear and embedding weights (ckc.importers.common.KEEP_STORED) are
    stored as ``qtype`` (a gguf.GGMLQuantizationType), quantized by gguf-py's own
    ``gguf.quants.quantize``; the rest stays as it was."""
    import gguf
    import gguf.quants

    from ckc.importers.common import KEEP_STORED

    keep = keep or KEEP_STORED
    r = gguf.GGUFReader(str(src))
    w = gguf.GGUFWriter(str(dst), r.fields["general.architecture"].contents())
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vt = f.types[0]
        w.add_key_value(key, f.contents(), vt, sub_type=f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None)
    for t in r.tensors:
        arr = np.array(t.data)
        if keep.match(t.name) and t.tensor_type == gguf.GGMLQuantizationType.F32 and arr.ndim == 2:
            if qtype == gguf.GGMLQuantizationType.F16:
                w.add_tensor(t.name, arr.astype(np.float16))
            else:
                w.add_tensor(t.name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(t.name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
