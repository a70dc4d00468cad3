"""llama.cpp as a built peer: its library, our small harness, logits and timings.

    from ckc import llamacpp
    llamacpp.logits("m.gguf", [1, 5, 9], threads=2)          # [vocab] float32, last position
    llamacpp.logits("m.gguf", ids, all_positions=True)        # [T, vocab]
    llamacpp.logits("m.gguf", ids, kv_type="f16")             # its default KV cache type
    llamacpp.perplexity(fn, ids, n_ctx=128)                   # llama-perplexity's windows over logits fn
    llamacpp.quantize("q4.gguf", "f32.gguf", "F32")           # llama_model_quantize (requantize allowed)
    llamacpp.bench("m.gguf", prompt_ids, decode=32, reps=3, threads=1)  # (prefill tok/s, decode tok/s)

Three cached native builds, all offline:

1. ``library_dir()``: llama.cpp's static libraries (``libllama.a``,
   ``libggml*.a``) and headers, built with CMake from the cached source tree
   (``ckc.assets.llama_cpp_dir()``, the ``llama-cpp-python`` sdist's
   ``vendor/llama.cpp``): Release, ``GGML_NATIVE`` (this CPU's ISA), OpenMP
   as llama.cpp's default, no AMX (see CMAKE_FLAGS), no common/tools/examples/tests/server, no HTTPS,
   only the ``llama`` target, ``-j2``. Cached under
   ``.cache/build/llama.cpp-<key>``, the key hashing the source package's
   version, its public headers, the CMake flags, the compiler and the CPU
   model, so it is built once per machine (a cold build takes minutes).
2. ``harness()``: ``tools/llamacpp/ckc_llama.c`` (ours, C, against
   ``llama.h``) linked statically with (1); cached by its source hash and (1)'s
   key. It is run as a subprocess per call: see that file for its commands and
   binary protocol.
3. ``server_binary()``: llama.cpp's ``llama-server`` (the peer of
   bench/serve.py), a separate CMake build of the same source with
   common/tools/server on (SERVER_CMAKE_FLAGS: the same ISA and no-AMX flags;
   its HTTP and JSON libraries are vendored in the tree; no OpenSSL, no web UI
   download), niced, cached under ``.cache/build/llama-server-<key>``. Only
   bench/serve.py asks for it: a cold build takes 10+ minutes on two cores.

All builds go to a temporary folder and are renamed into place, so an
interrupted build leaves nothing half-made; a failure raises
``ckc.build.BuildError`` (``LlamaCppError`` for the server) with one line (the
compiler's first errors).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ckc.atomic import replaced
from ckc.build import ROOT, BuildError, cache_dir, cc, run_checked

HARNESS_SRC = ROOT / "tools" / "llamacpp" / "ckc_llama.c"

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DGGML_CCACHE=OFF",
    "-DLLAMA_BUILD_COMMON=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_ALL_WARNINGS=OFF",
    # No AMX: with GGML_NATIVE on an AMX CPU, ggml puts quantized weights in its AMX
    # buffer type, and ggml_backend_amx_mul_mat segfaults here (this VM's Xeon; every
    # Q8_0 and Q4_1 file tried). The AVX-512 VNNI paths and the CPU_REPACK buffer type
    # (interleaved Q4_0/Q4_K rows) stay. An explicit -mno-* wins over -march=native.
    "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
    "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
)
JOBS = 2

# Static libraries in link order (llama first, ggml's base last).
_LIBS = ("src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a")

# enum llama_ftype (llama.h): a file type is a recipe, the K-quant mixes (_S/_M) choosing a
# type per tensor (e.g. Q4_K_M: Q6_K for the output and half the attn_v/ffn_down, Q4_K else).
FTYPES = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
          "Q3_K_M": 12, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "BF16": 32}

KV_TYPES = ("f32", "f16", "q8_0")


class LlamaCppError(RuntimeError):
    """The harness failed at run time (a model llama.cpp refuses, a decode error); one line."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _source_version(tree: Path) -> str:
    """What identifies the source tree: its package's version and public headers."""
    h = hashlib.sha256()
    pkg_info = tree.parent.parent / "PKG-INFO"
    if pkg_info.is_file():
        m = re.search(r"^Version:\s*(\S+)", pkg_info.read_text(errors="replace"), re.M)
        h.update((m.group(1) if m else "").encode())
    for rel in ("include/llama.h", "ggml/include/ggml.h", "CMakeLists.txt", "src/CMakeLists.txt"):
        p = tree / rel
        if p.is_file():
            h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def build_key(tree: Path | None = None) -> str:
    from ckc.assets import llama_cpp_dir

    tree = tree or llama_cpp_dir()
    blob = "\n".join([_source_version(tree), *CMAKE_FLAGS, cc(), _cpu_model()])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_library_dir() -> Path | None:
    """The built library folder if it is already cached (no build), else None."""
    from ckc.assets import llama_cpp_dir

    d = cache_dir("build") / f"llama.cpp-{build_key(llama_cpp_dir())}"
    return d if (d / "lib" / "libllama.a").is_file() else None


def library_dir() -> Path:
    """Folder with ``lib/*.a``, ``include/`` and ``link.txt`` (extra link flags); built once."""
    from ckc.assets import llama_cpp_dir

    tree = llama_cpp_dir()
    final = cache_dir("build") / f"llama.cpp-{build_key(tree)}"
    if (final / "lib" / "libllama.a").is_file():
        return final
    if not shutil.which("cmake"):
        raise BuildError("building llama.cpp failed: cmake not found on PATH")
    # One build at a time per machine (several test runs may ask at once).
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "lib" / "libllama.a").is_file():
            return final
        _build_library(tree, final)
    return final


def _cmake_build(tree: Path, tmp: Path, flags, target: str, what: str, prefix=()) -> Path:
    """Configure ``tree`` into ``tmp/cmake`` with ``flags`` and build ``target``
    (each command behind ``prefix``, e.g. nice); returns the build folder."""
    bdir = tmp / "cmake"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    env = dict(os.environ, CC=cc())
    run_checked([*prefix, "cmake", "-S", str(tree), "-B", str(bdir), *gen, *flags], f"{what} (configure)", env=env)
    run_checked([*prefix, "cmake", "--build", str(bdir), "--target", target, "-j", str(JOBS)], what, env=env)
    return bdir


def _build_library(tree: Path, final: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    os.chmod(tmp, 0o755)
    try:
        bdir = _cmake_build(tree, tmp, CMAKE_FLAGS, "llama", "llama.cpp")
        (tmp / "lib").mkdir()
        for rel in _LIBS:
            shutil.copy2(bdir / rel, tmp / "lib" / Path(rel).name)
        (tmp / "include").mkdir()
        for inc in (tree / "include", tree / "ggml" / "include"):
            for h in inc.glob("*.h"):
                shutil.copy2(h, tmp / "include" / h.name)
        cache = (bdir / "CMakeCache.txt").read_text(errors="replace")
        m = re.search(r"^OpenMP_C_FLAGS:STRING=(.*)$", cache, re.M)
        omp = m.group(1).strip() if m and "GGML_OPENMP:BOOL=ON" in cache else ""
        (tmp / "link.txt").write_text(" ".join(filter(None, [omp, "-lstdc++", "-lm", "-lpthread"])) + "\n")
        shutil.rmtree(bdir)
        if final.exists():  # a leftover without its libraries
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# llama-server: the same source, ISA and no-AMX flags, with common/tools/server on. Offline:
# its HTTP library (cpp-httplib) and JSON are vendored under vendor/; no OpenSSL, no web UI
# (the UI step would otherwise try a download; without assets it embeds an empty table).
SERVER_CMAKE_FLAGS = (
    *(f for f in CMAKE_FLAGS if not f.startswith(("-DLLAMA_BUILD_COMMON", "-DLLAMA_BUILD_TOOLS",
                                                    "-DLLAMA_BUILD_SERVER"))),
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_LLGUIDANCE=OFF",
)
SERVER_NICE = 10


def server_key(tree: Path | None = None) -> str:
    from ckc.assets import llama_cpp_dir

    tree = tree or llama_cpp_dir()
    srv = tree / "tools" / "server" / "CMakeLists.txt"
    blob = "\n".join([_source_version(tree), srv.read_text() if srv.is_file() else "", *SERVER_CMAKE_FLAGS, cc(),
                      _cpu_model()])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_server_binary() -> Path | None:
    """The ``llama-server`` executable if it is already cached (no build), else None."""
    exe = cache_dir("build") / f"llama-server-{server_key()}" / "llama-server"
    return exe if exe.is_file() else None


def server_binary() -> Path:
    """llama.cpp's ``llama-server`` built from the cached source (once per machine, niced,
    ``-j2``; a cold build takes 10+ minutes on two cores). Raises LlamaCppError (one line)."""
    from ckc.assets import llama_cpp_dir

    tree = llama_cpp_dir()
    final = cache_dir("build") / f"llama-server-{server_key(tree)}"
    exe = final / "llama-server"
    if exe.is_file():
        return exe
    if not shutil.which("cmake"):
        raise LlamaCppError("building llama-server failed: cmake not found on PATH")
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.is_file():
            return exe
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
        os.chmod(tmp, 0o755)
        try:
            bdir = _cmake_build(tree, tmp, SERVER_CMAKE_FLAGS, "llama-server", "llama-server",
                                prefix=["nice", "-n", str(SERVER_NICE)])
            shutil.copy2(bdir / "bin" / "llama-server", tmp / "llama-server")
            shutil.rmtree(bdir)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except (BuildError, OSError) as e:
            raise LlamaCppError(str(e).splitlines()[0] if str(e) else f"building llama-server failed: {e!r}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return exe


def harness() -> Path:
    """The ``ckc-llama`` executable (tools/llamacpp/ckc_llama.c linked with llama.cpp)."""
    lib = library_dir()
    link = (lib / "link.txt").read_text().split()
    h = hashlib.sha256(HARNESS_SRC.read_bytes() + lib.name.encode() + cc().encode()).hexdigest()[:16]
    out_dir = cache_dir("build", f"ckc-llama-{h}")
    exe = out_dir / "ckc-llama"
    if exe.exists():
        return exe
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".ckc-llama-")
    os.close(fd)
    try:
        cmd = [cc(), "-std=c11", "-O2", "-Wall", "-o", tmp, str(HARNESS_SRC), f"-I{lib / 'include'}",
               *[str(lib / "lib" / Path(r).name) for r in _LIBS], *link]
        run_checked(cmd, "ckc-llama harness")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe


def _run(args: list[str], stdin: bytes = b"", *, nice: int = 0) -> bytes:
    # nice: a long build (quantizing a 1B model) runs behind other work on a shared machine
    pre = ["nice", "-n", str(int(nice))] if nice else []
    proc = subprocess.run([*pre, str(harness()), *args], input=stdin, capture_output=True)
    if proc.returncode != 0:
        err = [l for l in proc.stderr.decode(errors="replace").splitlines() if l.strip()]
        raise LlamaCppError(f"llama.cpp ({args[0]}) failed: {' | '.join(err[-3:]) or f'exit {proc.returncode}'}")
    return proc.stdout


def _tokens(ids) -> bytes:
    a = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype="<i4")
    if a.size == 0:
        raise ValueError("no tokens")
    return a.tobytes()


def logits(gguf, tokens, *, threads: int = 1, all_positions: bool = False, kv_type: str = "f32") -> np.ndarray:
    """llama.cpp's logits for ``tokens`` (one sequence, from an empty cache).

    KV cache of ``kv_type`` (f32, f16: plain attention, llama.cpp's non-flash
    path; q8_0: flash attention, which a quantized V cache needs), one batch.
    Returns ``[vocab]`` (last position) or ``[T, vocab]``."""
    if kv_type not in KV_TYPES:
        raise ValueError(f"kv_type '{kv_type}' unknown (have: {', '.join(KV_TYPES)})")
    raw = _run(["logits", str(gguf), str(int(threads)), "1" if all_positions else "0", kv_type], _tokens(tokens))
    rows, vocab = struct.unpack("<ii", raw[:8])
    out = np.frombuffer(raw, dtype="<f4", offset=8).reshape(rows, vocab).copy()
    return out if all_positions else out[-1]


def tensors(gguf, tokens, *, threads: int = 1) -> list[tuple[str, np.ndarray, tuple[str, str]]]:
    """Every named f32 node llama.cpp computes for one batch of ``tokens``
    (empty cache, logits at every position, fp32 KV cache, flash attention
    off), in execution order, seen through its graph callback (``cb_eval``):
    (name, array, names of its first two sources) with the array in ggml's
    order reversed (``ne[3], ne[2], ne[1], ne[0]``; a ``[n_embd, T]`` node is
    ``[T, n_embd]``). A name can repeat (Qcur before and after RoPE)."""
    raw = _run(["tensors", str(gguf), str(int(threads))], _tokens(tokens))
    out, off = [], 0
    while off < len(raw):
        names = []
        for _ in range(3):
            (n,) = struct.unpack_from("<i", raw, off)
            names.append(raw[off + 4:off + 4 + n].decode())
            off += 4 + n
        name = names[0]
        ne = struct.unpack_from("<4i", raw, off)
        off += 16
        count = ne[0] * ne[1] * ne[2] * ne[3]
        a = np.frombuffer(raw, dtype="<f4", count=count, offset=off).reshape(ne[::-1]).copy()
        off += 4 * count
        out.append((name, a, (names[1], names[2])))
    return out


def quantize(src, dst, ftype: str = "F32", *, threads: int = 2, nice: int = 0) -> Path:
    """``llama_model_quantize`` ``src`` -> ``dst`` as ``ftype`` (requantizing allowed, every
    tensor that type where llama.cpp allows; F32 dequantizes). Atomic."""
    if ftype not in FTYPES:
        raise ValueError(f"ftype '{ftype}' unknown (have: {', '.join(FTYPES)})")
    dst = Path(dst)
    with replaced(dst) as tmp:
        _run(["quantize", str(src), tmp, str(FTYPES[ftype]), str(int(threads))], nice=nice)
    return dst


def bench(gguf, prompt, *, decode: int = 32, reps: int = 3, threads: int = 1,
          kv_f32: bool = True) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s), best of ``reps``, model load excluded.

    Prefill: the whole prompt in one batch from an empty cache; decode: ``decode``
    single-token greedy steps after it. ``kv_f32``: fp32 KV cache and plain
    attention (ckc's arithmetic); else llama.cpp's defaults (f16 KV, flash
    attention auto)."""
    prompt = np.asarray(prompt)
    out = _run(["bench", str(gguf), str(int(threads)), str(int(decode)), str(int(reps)), "1" if kv_f32 else "0"],
               _tokens(prompt)).decode().split()
    prefill_s, decode_s = float(out[0]), float(out[1])
    return prompt.size / prefill_s, decode / decode_s if decode else 0.0


QUANTIZE_SRC = ROOT / "tools" / "llamacpp" / "ggml_quantize.c"


def quantize_tool() -> Path:
    """``ggml_quantize`` (tools/llamacpp/ggml_quantize.c, ggml's ggml_quantize_chunk as
    a filter), linked with llama.cpp's static ggml; cached by its source hash."""
    lib = library_dir()
    link = (lib / "link.txt").read_text().split()
    h = hashlib.sha256(QUANTIZE_SRC.read_bytes() + lib.name.encode() + cc().encode()).hexdigest()[:16]
    exe = cache_dir("build", f"ggml-quantize-{h}") / "ggml_quantize"
    if not exe.exists():
        cmd = [cc(), "-std=c11", "-D_POSIX_C_SOURCE=199309L", "-O2", "-Wall", str(QUANTIZE_SRC),
               f"-I{lib / 'include'}", str(lib / "lib" / "libggml-base.a"), *link]
        with replaced(exe) as tmp:
            run_checked([*cmd, "-o", str(tmp)], "ggml_quantize")
            os.chmod(tmp, 0o755)
    return exe


def ggml_quantize(x: np.ndarray, ggml_type: int, *, timed: bool = False):
    """llama.cpp's bytes for the fp32 rows ``x`` [rows, K] in ``ggml_type``
    (uint8 [rows, row bytes]); with ``timed``, (bytes, seconds ggml took, one thread)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    args = [str(quantize_tool()), str(int(ggml_type)), str(x.shape[0]), str(x.shape[1]), *(["-t"] if timed else [])]
    proc = subprocess.run(args, input=x.tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise LlamaCppError(f"ggml_quantize failed: {proc.stderr.decode(errors='replace').strip() or proc.returncode}")
    out = np.frombuffer(proc.stdout, np.uint8).reshape(x.shape[0], -1)
    return (out, float(proc.stderr.split()[-1])) if timed else out


def perplexity_windows(n_tokens: int, n_ctx: int) -> list[tuple[int, int]]:
    """llama-perplexity's windows over ``n_tokens`` tokens: consecutive,
    non-overlapping chunks of ``n_ctx`` tokens (a shorter tail is dropped), as
    (start, end) pairs."""
    if n_ctx < 4:
        raise ValueError(f"perplexity n_ctx must be >= 4, got {n_ctx}")
    if n_tokens < n_ctx:
        raise ValueError(f"perplexity needs at least n_ctx = {n_ctx} tokens, got {n_tokens}")
    return [(s, s + n_ctx) for s in range(0, n_tokens - n_ctx + 1, n_ctx)]


def window_nll(chunk_logits: np.ndarray, chunk: np.ndarray) -> np.ndarray:
    """llama-perplexity's scored positions of one window (tools/perplexity,
    ``perplexity()``): only the second half is scored, each token given all the
    window before it (``first = n_ctx/2``; position i predicts token i+1 for
    i in [first, n_ctx - 1)). Returns those negative log-likelihoods (float64)."""
    n = chunk.size
    first = n // 2
    lg = np.asarray(chunk_logits, dtype=np.float64)[first:n - 1]
    m = lg.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(lg - m).sum(axis=1, keepdims=True)))[:, 0]
    return lse - lg[np.arange(lg.shape[0]), chunk[first + 1:n]]


def perplexity(logits_fn, tokens, *, n_ctx: int, bos: int | None = None) -> tuple[float, np.ndarray]:
    """(perplexity, per-token NLLs) of ``tokens`` the way ``llama-perplexity -c
    n_ctx`` scores them (its default, non-KL mode), the logits of each window
    (``[n_ctx, vocab]``, from an empty cache) coming from ``logits_fn(window)``:
    ``lambda w: logits(gguf, w, all_positions=True)`` for llama.cpp, a reset
    ckc Session's ``prefill_all`` for ckc. The same windows and scored
    positions on both sides make the two numbers comparable. ``bos``: like
    llama-perplexity for a vocabulary that adds BOS, each window's first token
    is replaced by it."""
    toks = np.asarray(tokens).reshape(-1).astype(np.int32)
    parts = []
    for s, e in perplexity_windows(toks.size, n_ctx):
        w = toks[s:e].copy()
        if bos is not None:
            w[0] = bos
        parts.append(window_nll(logits_fn(w), w))
    nll = np.concatenate(parts)
    return float(np.exp(nll.mean())), nll
