"""Writing small GGUF files for bad-input tests: a real model's tensors under
metadata the test chooses (an unknown architecture, a wrong shape, ...)."""

import numpy as np
import pytest


def write_gguf(path, arch: str, cfg, tensors: dict[str, np.ndarray], raw: dict | None = None) -> None:
    """``raw``: more tensors as ``{name: (bytes as uint8 array, GGMLQuantizationType)}``."""
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
