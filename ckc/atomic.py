"""Files that appear whole or not at all.

    with replaced(path) as tmp:      # tmp: a fresh file next to path
        write(tmp)                   # any writer that takes a path
    # path now holds the result; on an exception tmp is removed and path untouched

Every writer of a result file (weights.bump, model.so, exports, plots) goes
through this, so an interrupted run never leaves a half-written file under the
final name. No dependencies beyond the standard library (ckc.weights uses it).

A full disk (ENOSPC, EDQUOT, EFBIG) while writing is re-raised as an OSError
that names ``path`` (a failed ``write()`` carries no file name), so the CLIs
can print one line naming the file that did not fit.
"""

from __future__ import annotations

import errno
import os
import re
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
    except OSError as err:
        code = err.errno
        if code is None and _short_write(err) and _full(tmp):
            code = errno.ENOSPC  # numpy's tofile reports a short write without errno
        if code in DISK_FULL and err.filename != str(path):
            raise OSError(code, os.strerror(code), str(path)) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# errno values that mean "the output does not fit" (disk full, quota, file size limit)
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` is an OSError for a full disk (or quota / size limit)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


def _short_write(err: OSError) -> bool:
    """numpy's ``ndarray.tofile``: ``OSError("N requested and M written")``."""
    return bool(re.fullmatch(r"\d+ requested and \d+ written", str(err)))


def _full(tmp: str) -> bool:
    """The filesystem holding ``tmp`` (still there, with what was written) has no block left."""
    try:
        st = os.statvfs(os.path.dirname(tmp) or ".")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024
