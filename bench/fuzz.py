"""Fuzz every loader that reads a user's file, and count the inputs.

    python bench/fuzz.py [--seconds S] [--targets a,b] [--out report.json]     (make fuzz)

Python loaders (GGUF header/metadata/tensor table/block data, GGUF and
tokenizer.json vocabularies, safetensors headers, config.json, .bump, .mlir
through ckc-opt's parser, training checkpoints) run under atheris; the C
.bump reader and the C tokenizer under clang's libFuzzer with ASan + UBSan
(clang is installed from Debian's packages when missing). The targets and what
counts as a finding are in tools/fuzz/targets.py.

Each target runs for its share of the time budget (C targets get less: they
run orders of magnitude more inputs per second), in one process at a time,
niced. A crash is saved under .cache/fuzz/artifacts/<target>/ and the target
restarts for the time left (at most 3 crashes a target). Found crashers belong
in test/py/data/fuzz/<target>/ once fixed: make test replays them. The report
gives inputs run and crashes per target and the total.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools" / "fuzz")]

import cbuild  # noqa: E402
import targets  # noqa: E402

C_SHARE = 0.08  # of the budget, per C target


def seed_corpus(name: str, folder: Path) -> None:
    """The target's generated seeds plus every input kept in test/py/data/fuzz."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = targets.TARGETS[name].seeds() if name in targets.TARGETS else targets.c_seeds(name)
    for i, s in enumerate(seeds):
        (folder / f"seed-{i}").write_bytes(s)
    for p in targets.corpus_files(name):
        (folder / f"kept-{p.name}").write_bytes(p.read_bytes())


def _count(out: str) -> int:
    done = re.findall(r"^Done (\d+) runs", out, re.M)
    if done:
        return int(done[-1])
    stats = re.findall(r"^#(\d+)\s", out, re.M)
    return int(stats[-1]) if stats else 0


def run_target(name: str, seconds: float, work: Path) -> dict:
    corpus = work / "corpus" / name
    art = work / "artifacts" / name
    art.mkdir(parents=True, exist_ok=True)
    seed_corpus(name, corpus)
    if name in cbuild.C_TARGETS:
        cmd = [str(cbuild.build(name, "libfuzzer"))]
    else:
        cmd = [sys.executable, str(ROOT / "tools" / "fuzz" / "run_atheris.py"), name]
    runs, crashes, t_end = 0, [], time.monotonic() + seconds
    while len(crashes) < 3:
        left = int(t_end - time.monotonic())
        if left < 2:
            break
        before = set(art.iterdir())
        proc = subprocess.run(cmd + [str(corpus), f"-max_total_time={left}", "-timeout=20", "-rss_limit_mb=4096",
                                     "-max_len=65536", f"-artifact_prefix={art}/", "-print_final_stats=1"],
                              capture_output=True, text=True, errors="replace", cwd=work)
        out = proc.stdout + proc.stderr
        runs += _count(out)
        new = sorted(set(art.iterdir()) - before)
        if proc.returncode != 0 or new:
            why = [l for l in out.splitlines() if "ERROR" in l or "RuntimeError" in l or "runtime error" in l]
            crashes.append({"input": [str(p) for p in new], "why": (why or out.splitlines()[-3:])[0][:300]})
        else:
            break
    return {"target": name, "inputs": runs, "seconds": round(seconds), "crashes": crashes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=840, help="total time budget (default 840 = 14 min)")
    ap.add_argument("--targets", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--out", default="", help="also write the report as JSON here")
    args = ap.parse_args()
    os.nice(10)
    names = [*targets.TARGETS, *cbuild.C_TARGETS]
    if args.targets:
        names = [n for n in args.targets.split(",") if n]
    n_c = sum(n in cbuild.C_TARGETS for n in names)
    c_s = args.seconds * C_SHARE if n_c < len(names) else args.seconds / max(n_c, 1)
    py_s = (args.seconds - c_s * n_c) / max(len(names) - n_c, 1)
    work = ROOT / ".cache" / "fuzz"
    work.mkdir(parents=True, exist_ok=True)
    report = []
    for name in names:
        r = run_target(name, c_s if name in cbuild.C_TARGETS else py_s, work)
        report.append(r)
        print(f"{name:16s} {r['inputs']:>10,d} inputs in {r['seconds']:>4d} s   {len(r['crashes'])} crashes",
              flush=True)
        for c in r["crashes"]:
            print(f"    {c['why']}  {' '.join(c['input'])}", flush=True)
    total = sum(r["inputs"] for r in report)
    n_crash = sum(len(r["crashes"]) for r in report)
    print(f"{'total':16s} {total:>10,d} inputs, {n_crash} crashes")
    if args.out:
        Path(args.out).write_text(json.dumps({"total": total, "crashes": n_crash, "targets": report}, indent=1))
    return 1 if n_crash else 0


if __name__ == "__main__":
    sys.exit(main())
