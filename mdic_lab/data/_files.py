"""Atomic file writes (temp file in the target folder + ``os.replace``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, IO

__all__ = ["atomic_write"]


def atomic_write(path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call ``write(fh)`` on a temp file next to ``path``, then move it onto ``path``.

    Readers never see a half-written file; the temp file is removed if ``write`` fails.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> atomic_write(p, lambda fh: fh.write("hi")); p.read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
