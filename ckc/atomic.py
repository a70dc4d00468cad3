"""Files that appear whole or not at all.

    with replaced(path) as tmp:      # tmp: a fresh file next to path
        write(tmp)                   # any writer that takes a path
    # path now holds the result; on an exception tmp is removed and path untouched

Every writer of a result file (weights.bump, model.so, exports, plots) goes
through this, so an interrupted run never leaves a half-written file under the
final name. No dependencies beyond the standard library (ckc.weights uses it).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced(path, suffix: str = ".tmp"):
    """A temporary path in path's folder; renamed onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
