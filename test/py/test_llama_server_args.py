"""The llama-server peer of bench/serve.py, checked against the cached llama.cpp
source without building it (the build takes 10+ minutes; make test never does it):

- every command-line option bench/serve.py gives llama-server is one its argument
  table (common/arg.cpp) defines, with values it accepts (f32 among its KV cache
  types, on/off for flash attention), and the slot/context/thread values are
  ckc serve's;
- every -D in ckc.llamacpp.SERVER_CMAKE_FLAGS names a variable the source's CMake
  files read (CMake ignores a misspelt one silently, which would e.g. leave the
  web UI download on), the server build stays offline (no OpenSSL, no prebuilt UI)
  and keeps the library build's ISA/no-AMX flags.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from ckc import llamacpp
from ckc.assets import llama_cpp_dir

# bench/serve.py by its path: bench/ on sys.path would shadow modules named like its files
_spec = importlib.util.spec_from_file_location("bench_serve", Path(__file__).resolve().parents[2] / "bench" / "serve.py")
serve_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_bench)


@pytest.fixture(scope="module")
def tree() -> Path:
    return llama_cpp_dir()


def test_server_options_exist_in_llama_cpp(tree):
    arg_cpp = (tree / "common" / "arg.cpp").read_text()
    args = serve_bench.llama_server_args("/x/llama-server", Path("/m.gguf"), 8123, slots=4, ctx=512, threads=3)
    opts = {a: args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") else None
            for i, a in enumerate(args[1:], 1) if a.startswith("-")}
    for opt in opts:
        assert f'"{opt}"' in arg_cpp, f"llama-server has no option {opt}"
    assert opts["-np"] == "4" and opts["-c"] == str(4 * 512) and opts["-t"] == opts["-tb"] == "3"
    assert opts["-m"] == "/m.gguf" and opts["--port"] == "8123" and opts["--host"] == "127.0.0.1"
    assert opts["-ctk"] == opts["-ctv"] == "f32" and opts["-fa"] == "off" and "-no-kvu" in opts
    m = re.search(r"kv_cache_types\s*=\s*\{(.*?)\};", arg_cpp, re.S)
    assert m and "GGML_TYPE_F32" in m.group(1) and "GGML_TYPE_Q8_0" in m.group(1)
    q8 = serve_bench.llama_server_args("s", Path("m"), 1, 1, 16, 1, kv_type="q8_0")
    assert q8[q8.index("-fa") + 1] == "on"  # a quantized V cache needs flash attention


def test_server_cmake_flags_are_read_and_offline(tree):
    cmake_text = "\n".join(p.read_text(errors="replace") for p in tree.rglob("CMakeLists.txt")
                           if "vendor" not in p.relative_to(tree).parts[:1])
    cmake_text += "\n".join(p.read_text(errors="replace") for p in (tree / "cmake").glob("*.cmake"))
    flags = dict(f[2:].split("=", 1) for f in llamacpp.SERVER_CMAKE_FLAGS)
    for name in flags:
        assert re.search(rf"\b{re.escape(name)}\b", cmake_text), f"{name}: no CMake file of llama.cpp reads it"
    assert flags["LLAMA_OPENSSL"] == "OFF" and flags["LLAMA_USE_PREBUILT_UI"] == "OFF"
    assert flags["LLAMA_BUILD_UI"] == "OFF" and flags["LLAMA_BUILD_SERVER"] == "ON"
    lib = dict(f[2:].split("=", 1) for f in llamacpp.CMAKE_FLAGS)
    for k in ("GGML_NATIVE", "CMAKE_C_FLAGS", "CMAKE_CXX_FLAGS", "CMAKE_BUILD_TYPE", "BUILD_SHARED_LIBS"):
        assert flags[k] == lib[k]
    assert llamacpp.server_key(tree) != llamacpp.build_key(tree)
