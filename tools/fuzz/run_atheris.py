"""Coverage-guided fuzzing of one Python target with atheris (libFuzzer's engine).

    python tools/fuzz/run_atheris.py TARGET [libFuzzer flags and corpus folders]

The modules the target reads files with are instrumented; an input the loader
mishandles (see targets.py) is raised as a crash, so libFuzzer saves it.
"""

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import atheris  # noqa: E402

import targets  # noqa: E402

target = targets.TARGETS[sys.argv[1]]
with atheris.instrument_imports(include=["ckc", "dialects"]):
    for m in target.modules:
        importlib.import_module(m)
# libFuzzer exits from C, so nothing would clean a temporary folder: reuse one in the cache
work = HERE.parents[1] / ".cache" / "fuzz" / "work" / target.name


def one(data: bytes) -> None:
    bad = targets.check_one(target, data, work)
    if bad:
        raise RuntimeError(f"{target.name}: {bad}")


atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
atheris.Fuzz()
