"""`ckc tokenize` through the real command line."""

import subprocess
import sys


def ckc(*args):
    return subprocess.run([sys.executable, "-m", "ckc.cli", *args], capture_output=True, text=True)


def test_tokenize_smollm2_ids_match_library():
    from ckc import assets
    from ckc.tokenizer import load

    text = "Hello, world! Shakespeare's plays"
    proc = ckc("tokenize", "smollm2", text, "--ids-only")
    assert proc.returncode == 0, proc.stderr
    ids = [int(x) for x in proc.stdout.split()]
    assert ids == load(assets.smollm2_gguf()).encode(text)
    assert ids[:3] == [19556, 28, 905]  # "Hello" "," " world"


def test_tokenize_lists_pieces():
    proc = ckc("tokenize", "smollm2", "Hello, world")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and "b' world'" in lines[2]
    assert proc.stderr.strip() == "3 tokens"


def test_tokenize_missing_model_is_one_line():
    proc = ckc("tokenize", "/no/such/model.gguf", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["ckc: error: /no/such/model.gguf: no such file or directory"]
