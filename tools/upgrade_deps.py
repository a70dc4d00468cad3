"""Refresh the dependency lock: the newest release of every direct dependency.

`make upgrade-deps` runs this, then `make test`. It installs the direct
dependencies named in pyproject.toml (unpinned, but torch, which must stay
on the local CPU build) into a scratch venv under .cache/, then rewrites the
pins in pyproject.toml and the whole set in requirements.lock from what pip
resolved there. Moving to a new xDSL is therefore one deliberate commit whose
diff shows every version that changed, and the tests it must pass.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
SCRATCH = ROOT / ".cache" / "upgrade-venv"
# Held where they are: any other torch spec pulls the CUDA build (see pyproject.toml).
HELD = {"torch"}
TOOLS = ("pip", "setuptools", "wheel")
REQ = re.compile(r'^(\s*")([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(==|>=|~=)?\s*([^";]*)(".*)$')


def _name(req: str) -> str:
    return re.split(r"[\[=<>~!; ]", req, maxsplit=1)[0]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_requirements() -> list[str]:
    meta = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return reqs


def resolve(reqs: list[str]) -> dict[str, str]:
    """Install the newest allowed versions into a scratch venv; return name -> version."""
    if SCRATCH.exists():
        subprocess.run(["rm", "-rf", str(SCRATCH)], check=True)
    venv.EnvBuilder(with_pip=True).create(SCRATCH)
    py = str(SCRATCH / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--upgrade", *TOOLS], check=True)
    wanted = [r if _norm(_name(r)) in HELD else _name(r) for r in reqs]
    subprocess.run([py, "-m", "pip", "install", "-q", "--upgrade", *wanted], check=True)
    out = subprocess.run([py, "-m", "pip", "list", "--format=freeze"],
                         check=True, capture_output=True, text=True).stdout
    versions = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            versions[_norm(name)] = version.split("+", 1)[0]   # 2.13.0+cpu -> 2.13.0
    return versions


def rewrite_pyproject(versions: dict[str, str]) -> list[str]:
    changed, lines = [], []
    for line in PYPROJECT.read_text().splitlines(keepends=True):
        m = REQ.match(line)
        if m and _norm(m.group(2)) in versions and m.group(4) == "==":
            new = versions[_norm(m.group(2))]
            if new != m.group(5):
                changed.append(f"{m.group(2)} {m.group(5)} -> {new}")
            line = f'{m.group(1)}{m.group(2)}{m.group(3) or ""}=={new}{m.group(6)}\n'
        lines.append(line)
    PYPROJECT.write_text("".join(lines))
    return changed


def write_lock(versions: dict[str, str]) -> None:
    head = [l for l in LOCK.read_text().splitlines() if l.startswith("#")] if LOCK.exists() else []
    body = [f"{n}=={versions[n]}" for n in TOOLS if n in versions]
    body += sorted(f"{n}=={v}" for n, v in versions.items() if n not in TOOLS)
    LOCK.write_text("\n".join(head + body) + "\n")


def main() -> int:
    versions = resolve(direct_requirements())
    changed = rewrite_pyproject(versions)
    write_lock(versions)
    print("upgrade-deps: " + ("; ".join(changed) if changed else "every direct dependency already newest"))
    print(f"upgrade-deps: {LOCK.name} holds {len(versions)} packages; now running make test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
