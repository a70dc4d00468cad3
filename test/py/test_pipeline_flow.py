"""ckc/pipeline.py as the one place that defines both pipelines and drives the
stages: the training spec replays under ckc-opt to the training library's C,
the stage modules never import the driver back, and every stage's time is its
own (the kernel library's build is ``build-kernels``, not ``select-simd``'s)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from ckc.build import ROOT
from ckc.pipeline import TRAINING_MODES, CompileOptions, passes, training_spec


def test_training_spec_under_ckc_opt_gives_the_training_librarys_c():
    """ckc-opt -p TRAINING_SPEC -t c on the transformer module prints the
    model.c that ckc/train/compile_child.py compiled (the same library
    test/py/test_train_backend.py trains: llama:tiny, vocab 320, 16 tokens)."""
    from ckc.artifacts import ir_text
    from ckc.importers.to_ir import build_module
    from ckc.train.ckc_backend import compile_train
    from ckc.train.models import family_config

    cfg = family_config("llama:tiny", vocab_size=320)
    so, _ = compile_train(cfg, 16)
    spec = training_spec(16)
    assert spec.startswith("lower-transformer{modes=" + ",".join(TRAINING_MODES) + "},autodiff{recompute=none}")
    r = subprocess.run([sys.executable, "-m", "ckc.opt", "-p", spec, "-t", "c"], input=ir_text(build_module(cfg, None)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (so.parent / "model.c").read_text()


def _imports(path: Path) -> set[str]:
    """Every module a file imports, function-local imports included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_stages_do_not_import_the_driver():
    """import -> passes -> emit -> build: the driver (ckc/pipeline.py) imports
    the stages; no stage module imports it back."""
    stages = [ROOT / "ckc" / f for f in ("artifacts.py", "emit_c.py", "build.py", "kernels.py", "weights.py",
                                         "universe.py")]
    for d in ("ckc/importers", "ckc/reports", "passes", "dialects"):
        stages += sorted((ROOT / d).glob("*.py"))
    assert len(stages) > 20
    back = {str(p.relative_to(ROOT)) for p in stages if "ckc.pipeline" in _imports(p)}
    assert not back, f"stage modules importing ckc.pipeline: {sorted(back)}"
    assert "ckc.artifacts" in _imports(ROOT / "ckc" / "pipeline.py")


def test_kernel_library_build_is_its_own_stage(tmp_path):
    """In a fresh process (libckernels not loaded yet), every libckernels
    build/lookup happens inside the ``build-kernels`` stage or in ``cc``, never
    while select-simd (whose native target probes the CPU through the library)
    runs; the manifest times build-kernels separately. Each call is marked in
    the progress stream, so its position between the stage lines (each printed
    when its stage ends) names the stage it ran in."""
    code = textwrap.dedent(f"""
        import io, sys
        from ckc import kernels, modelzoo
        from ckc.pipeline import CompileOptions, compile_model
        out = io.StringIO()
        real = kernels.build_dir
        def marked(*a, **k):
            out.write("<build_dir>\\n")
            return real(*a, **k)
        kernels.build_dir = marked
        compile_model(modelzoo.hf_dir("llama"), {str(tmp_path)!r}, CompileOptions(max_tokens=16), out=out)
        sys.stdout.write(out.getvalue())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    stage_of_call, stages, pending = [], [], 0
    for line in r.stdout.splitlines():
        if line == "<build_dir>":
            pending += 1
        elif line.startswith("ckc: ") and not line.startswith("ckc: wrote"):
            stages.append(line.split()[1])
            stage_of_call += [stages[-1]] * pending
            pending = 0
    assert pending == 0 and stage_of_call, r.stdout
    assert set(stage_of_call) <= {"build-kernels", "cc"}, r.stdout
    names = [p.name for p in passes(CompileOptions(max_tokens=16))]
    assert stages == ["import", "to-ir", "build-kernels", *names, "emit-c", "weights", "cc"], stages
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert "build-kernels" in m["times_s"] and "libckernels" not in m["times_s"]
