"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

Readers never see a half-written file, and a run killed mid-write leaves the previous
version in place; the temporary file is removed if writing fails. Every checkpoint, cache
entry, CSV, bitstream and image the project writes goes through here.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save", "plain_json", "strict_json"]


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


def plain_json(value, where: str = "value"):
    """``value`` as plain JSON data: NumPy / torch scalars and arrays to numbers and lists,
    NaN and ±inf to ``None``, tuples and sets to lists, paths to strings, an object with a
    ``to_list()`` (a claims table) to that list, mapping keys to strings. Anything else is refused with its location (``where``).

    >>> import numpy as np
    >>> plain_json({"a": np.float32(0.5), 1: [np.int64(2), float("inf")], "b": np.array([1.0, np.nan])})
    {'a': 0.5, '1': [2, None], 'b': [1.0, None]}
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_list") and not hasattr(value, "tolist"):  # a table that knows its JSON rows (Claims)
        return plain_json(value.to_list(), where)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = k.item() if hasattr(k, "item") else k
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} is not a JSON key")
            key = key if isinstance(key, str) else json.dumps(key)
            out[key] = plain_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [plain_json(v, f"{where}[{i}]") for i, v in enumerate(items)]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars, torch tensors
        return plain_json(value.tolist(), where)
    raise TypeError(f"{where}: {type(value).__name__} is not JSON data "
                    "(expected numbers, strings, booleans, None, lists, dicts or arrays)")


def strict_json(value, **kw) -> str:
    """``json.dumps`` of :func:`plain_json` (NaN and ±inf as ``null``: strict JSON).

    >>> strict_json({"a": float("nan"), "b": (1.5,)})
    '{"a": null, "b": [1.5]}'
    """
    return json.dumps(plain_json(value), allow_nan=False, **kw)
