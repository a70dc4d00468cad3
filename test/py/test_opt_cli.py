"""ckc-opt as a user meets it: bad input is one line and exit 1, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = """func.func @f(%a: i32) -> i32 {
  %b = arith.addi %a, %a : i32
  func.return %b : i32
}
"""


def ckc_opt(*args, stdin=None):
    cmd = [sys.executable, "-m", "ckc.opt", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=ROOT)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for frag in fragments:
        assert frag in lines[0], lines[0]


def test_good_input_round_trips():
    proc = ckc_opt(stdin=GOOD)
    assert proc.returncode == 0, proc.stderr
    again = ckc_opt(stdin=proc.stdout)
    assert again.stdout == proc.stdout


@pytest.mark.parametrize(
    "args,stdin,fragments",
    [
        (["/no/such/file.mlir"], None, ["No such file", "/no/such/file.mlir"]),
        (["-p", "no-such-pass"], GOOD, ["no-such-pass"]),
        (["-p", "canonicalize{bogus=1}"], GOOD, ["bogus"]),
        (["-p", "canonicalize{"], GOOD, ["bad pass pipeline", "pass-pipeline:1:"]),
        ([], GOOD.replace("func.return %b : i32", "func.return %b : i64"), ["stdin:3:", "error"]),
        ([], "func.func @f() {\n  %x = arith.constant 1 : i32\n", ["stdin:", "error"]),
        (["--load-plugin", "/no/such/plugin.py"], GOOD, ["plugin file not found"]),
    ],
    ids=["missing-file", "unknown-pass", "bad-option", "bad-pipeline", "type-mismatch",
         "truncated", "missing-plugin"],
)
def test_bad_input_is_one_line(args, stdin, fragments):
    assert_one_line_error(ckc_opt(*args, stdin=stdin), *fragments)


def test_verifier_failure_names_op_and_location():
    # func.return's operand count disagrees with the signature: the verifier
    # fails on a specific op, which the diagnostic must point at.
    bad = "func.func @f(%a: i32) -> i32 {\n  func.return\n}\n"
    proc = ckc_opt(stdin=bad)
    assert_one_line_error(proc, "stdin:2:3", "'func.return' op")


def test_broken_plugin_is_one_line(tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise RuntimeError('boom')\n")
    proc = ckc_opt("--load-plugin", str(plugin), stdin=GOOD)
    assert_one_line_error(proc, "broken.py", "boom")


def test_xdsl_opt_rejects_an_unterminated_string_in_linear_time():
    # The lexer fix lives in ckc.universe, which plain xdsl-opt loads through the
    # entry point: the fuzzer's input that took minutes now fails at once there too.
    src = Path(__file__).parent / "data" / "fuzz" / "mlir" / "unterminated-string-redos"
    xdsl_opt = Path(sys.executable).parent / "xdsl-opt"
    proc = subprocess.run([str(xdsl_opt)], input=src.read_text(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "closing string literal" in proc.stderr + proc.stdout
