"""Model importers: GGUF files and Hugging Face directories -> (ModelConfig, WeightStore).

    from ckc.importers import load_model
    cfg, weights = load_model("model.gguf")          # or a directory / its config.json
    w = weights["blk.0.attn_q.weight"]               # fp32 numpy, [out, in]

Both sources give GGUF canonical tensor names and one layout (see
``ckc.importers.config`` for the conventions). Bad input raises
``ModelImportError`` whose message is one line naming the file and the
tensor/key at fault.
"""

from __future__ import annotations

from pathlib import Path

from .common import ImportError_, ModelImportError, WeightStore
from .config import ARCHS, ModelConfig

__all__ = ["load_model", "ModelConfig", "WeightStore", "ModelImportError", "ImportError_", "ARCHS"]


def load_model(path, *, rope_style: str | None = None, weights: str = "keep") -> tuple[ModelConfig, WeightStore]:
    """Import a model from a ``.gguf`` file, a HF directory, or its ``config.json``.

    ``rope_style``: None keeps the file's layout (llama GGUF: "interleaved", others
    "neox"); "neox" or "interleaved" permutes Q/K rows so the config says that style.
    ``weights``: "keep" (default): a GGUF's Linear and embedding weights keep the
    file's type in the IR (``WeightStore.format`` / ``.raw``); "f32": every tensor
    is fp32 (training). ``weights[name]`` is fp32 either way.
    """
    p = Path(path)
    if not p.exists():
        raise ModelImportError(p, "no such file or directory")
    if p.is_dir() or p.name == "config.json":
        from .hf import load_hf

        return load_hf(p, rope_style=rope_style)
    with open(p, "rb") as f:
        magic = f.read(4)
    if p.suffix == ".gguf" or magic == b"GGUF":
        from .gguf import load_gguf

        return load_gguf(p, rope_style=rope_style, weights=weights)
    if p.suffix == ".safetensors":
        from .hf import load_hf

        return load_hf(p.parent, rope_style=rope_style)
    raise ModelImportError(p, "unrecognized model file (expected .gguf, a directory, or config.json)")
