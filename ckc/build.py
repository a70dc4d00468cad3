"""On-demand native builds, cached by source hash.

Neither README command needs a separate build step: whatever C the Python side
needs (the kernel library, the tokenizer, a model's .so) is compiled the first
time it is asked for and cached under ``.cache/`` in the checkout (or
``$CKC_CACHE``), keyed by a hash of every source byte and flag, so an edited
source rebuilds and an unchanged one never does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ckc.atomic import replaced

# The checkout root: ckc/ sits directly below it (editable install).
ROOT = Path(__file__).resolve().parent.parent

# The runtime compiled INTO every model.so (inference and training alike) with its
# generated model.c: runtime/library/ (CMake puts only runtime/'s top level in
# libckernels). RUNTIME_FILES: every file whose bytes enter such a library
# besides model.c and libckernels (cache keys hash them).
RUNTIME_DIR = ROOT / "runtime" / "library"
RUNTIME_SOURCES = (RUNTIME_DIR / "ckc_runtime.c",)
RUNTIME_FILES = (*RUNTIME_SOURCES, RUNTIME_DIR / "ckc_gen.h", ROOT / "runtime" / "ckc_abi.h",
                 ROOT / "runtime" / "record.h")


class BuildError(RuntimeError):
    """A native build failed; the message carries the compiler's first error."""


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root, created on demand."""
    base = Path(os.environ.get("CKC_CACHE", ROOT / ".cache"))
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_hash(paths, extra: str = "") -> str:
    """Hash of the given files' names and bytes plus ``extra`` (flags, compiler)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    h.update(extra.encode())
    return h.hexdigest()[:16]


def cc() -> str:
    return os.environ.get("CC", "cc")


def run_checked(cmd: list[str], what: str, cwd: Path | None = None, env: dict | None = None) -> None:
    """Run a build command; on failure raise BuildError with its first error lines."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        # a full disk shows as "ld: final link failed: No space left on device": keep it
        errs = [line for line in out if "error" in line.lower() or "no space left" in line.lower()] or out[-3:]
        raise BuildError(f"building {what} failed: {' | '.join(errs[:4])}")


def cc_atomic(out: Path, command, what: str) -> Path:
    """Run ``command(tmp)`` (a compiler command line writing ``tmp``) and rename
    tmp to ``out``: an interrupted or failed build never leaves a half-written
    file under the final name. Errors are ``run_checked``'s one line."""
    out = Path(out)
    with replaced(out, suffix=out.suffix) as tmp:
        run_checked(command(tmp), what)
    return out


def compile_shared(
    name: str,
    sources: list[Path],
    *,
    headers: list[Path] = (),
    flags: list[str] = (),
    libs: list[str] = (),
) -> Path:
    """Compile ``sources`` into ``lib<name>.so`` once per content hash.

    The result is written to a temporary name and renamed, so an interrupted
    build never leaves a half-written library behind.
    """
    flags = list(flags)
    key = source_hash(list(sources) + list(headers), " ".join([cc(), *flags, *libs]))
    out_dir = cache_dir("build", f"{name}-{key}")
    lib = out_dir / f"lib{name}.so"
    if lib.exists():
        return lib
    return cc_atomic(lib, lambda tmp: [cc(), "-shared", "-fPIC", "-o", tmp, *flags, *map(str, sources), *libs], name)


def have_tool(name: str) -> bool:
    return shutil.which(name) is not None
