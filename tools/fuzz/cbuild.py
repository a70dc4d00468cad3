"""Build the C fuzz targets: with clang's libFuzzer (``make fuzz``) or with gcc
and replay_main.c (``make test``: replays the corpus, no clang needed).

Both builds use ASan + UBSan with recovery off, so an out-of-bounds read or an
overflow in the reader is a crash, not a quiet wrong answer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAN = ["-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def sources(target: str) -> tuple[list[Path], list[str]]:
    """(C files, extra flags) of one C target."""
    if target == "bump_c":
        return [HERE / "fuzz_bump.c", ROOT / "runtime" / "weights.c"], ["-I", str(ROOT / "runtime")]
    if target == "ctok":
        sys.path.insert(0, str(ROOT))
        from ckc.build import cache_dir
        from ckc.tokenizer.gen_unicode import ensure_table

        table = ensure_table(cache_dir("gen", "tokenizer"))
        return [HERE / "fuzz_ctok.c", ROOT / "ckc" / "tokenizer" / "ctok.c", table], ["-std=gnu11", "-DCACHE_SLOTS=64u"]
    raise KeyError(target)


C_TARGETS = ("bump_c", "ctok")


def ensure_clang() -> str:
    """clang, installed from Debian's packages when missing (make fuzz only)."""
    if not shutil.which("clang"):
        subprocess.run(["apt-get", "install", "-y", "-q", "clang"], check=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return "clang"


def build(target: str, kind: str) -> Path:
    """The fuzzer (kind "libfuzzer") or the replayer (kind "replay") of ``target``."""
    sys.path.insert(0, str(ROOT))
    from ckc.build import cache_dir, cc_atomic, source_hash

    srcs, extra = sources(target)
    if kind == "libfuzzer":
        cc, flags = ensure_clang(), ["-fsanitize=fuzzer", *SAN]
    else:
        cc, flags = "gcc", SAN
        srcs = srcs + [HERE / "replay_main.c"]
    headers = [ROOT / "runtime" / "weights.h"]
    key = source_hash(srcs + headers, " ".join([cc, *flags, *extra]))
    out = cache_dir("fuzz", f"{target}-{kind}-{key}") / target
    if out.exists():
        return out
    return cc_atomic(out, lambda tmp: [cc, "-o", str(tmp), *flags, *extra, *map(str, srcs)], f"fuzz target {target}")


if __name__ == "__main__":
    print(build(sys.argv[1], sys.argv[2]))
