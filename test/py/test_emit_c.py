"""The C emitter (`ckc-opt -t c`): its output compiles warning-free as C11 and
is deterministic.

The input is the hand-written c-dialect module of the golden lit test
(test/lit/targets/c-emit.mlir): a two-layer step with a loop over layers
calling kernels at pointer offsets into one arena.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "test" / "lit" / "targets" / "c-emit.mlir"


def ckc_opt(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ckc-opt"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ckc.opt"]
    return subprocess.run(cmd + list(args), capture_output=True, check=False)


def emit() -> bytes:
    proc = ckc_opt(str(MODULE), "-t", "c")
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler '{cc}' on PATH")
    return cc


def test_emitted_c_compiles_warning_free(tmp_path: Path) -> None:
    src = tmp_path / "model.c"
    src.write_bytes(emit())
    proc = subprocess.run(
        [compiler(), "-std=c11", "-c", "-Wall", "-Wextra", "-Werror", "-pedantic",
         str(src), "-o", str(tmp_path / "model.o")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model.o").stat().st_size > 0


def test_emitted_c_defines_the_function_with_the_loop() -> None:
    text = emit().decode()
    assert "int prefill(uint8_t *arena, const int32_t *tokens, int n_tokens," in text
    assert "for (int l = 0; l < 2; ++l) {" in text
    assert "(const float *)(arena + 4096 + (long long)l * 6144)" in text
    assert "1.0e-05f" in text


def test_emission_is_deterministic() -> None:
    assert emit() == emit()


def test_emit_in_process_matches_cli() -> None:
    from xdsl.parser import Parser

    from ckc.emit_c import emit_c
    from ckc.universe import make_context

    module = Parser(make_context(), MODULE.read_text()).parse_module()
    assert emit_c(module).encode() == emit()


def test_unprintable_op_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text("func.func @f() {\n  func.return\n}\n")
    proc = ckc_opt(str(bad), "-t", "c")
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "cannot print 'func.func'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
