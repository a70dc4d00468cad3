"""The plug-in point ckc/train/trainer.py's ``make_backend("ckc", ...)`` loads:
the compiled training backend (see ckc/train/ckc_backend.py)."""

from .ckc_backend import CkcBackend, CkcTrainError, CompiledBackend, compile_train

__all__ = ["CkcBackend", "CkcTrainError", "CompiledBackend", "compile_train"]
