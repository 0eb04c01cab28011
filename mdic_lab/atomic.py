"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

Readers never see a half-written file, and a run killed mid-write leaves the previous
version in place; the temporary file is removed if writing fails. Every checkpoint, cache
entry, CSV, bitstream and image the project writes goes through here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save"]


def atomic_write(path, write: Callable[[IO], None], binary: bool = False, newline: str | None = None) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, then move it onto ``path``.

    The file gets mode 0644 (``mkstemp`` creates it 0600) and is flushed to disk before
    the move.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "sub" / "x.txt"
    >>> _ = atomic_write(p, lambda fh: fh.write("hi")); p.read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": newline})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(bytes(data)), binary=True)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text))


def atomic_torch_save(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh), binary=True)
