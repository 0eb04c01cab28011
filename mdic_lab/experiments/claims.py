"""The claims table every notebook ends with, and the one writer of its ``metrics.json``.

A claim compares a statement of the theory (or a paper, or an engineering target) with
what the notebook measured: four fields, ``claim`` (the statement), ``theory`` (what it
predicts), ``measured`` (what this run got; both as text) and ``holds`` (a ``bool``).
Notebooks collect them in a :class:`Claims`, print :meth:`Claims.table` and write them
with :func:`write_metrics`, which puts the claims, ``all_claims_hold`` and the notebook's
other results into ``<output_dir>/metrics.json`` atomically (through
:func:`mdic_lab.atomic.atomic_write_text`) and as strict JSON (NaN and ±inf become
``null``; NumPy scalars and arrays become plain numbers and lists).

>>> import json, math, tempfile
>>> claims = Claims()
>>> claims.add("H(X|Y) <= H(X)", "<=", f"{0.469:.3f} <= {1.0:.3f}", 0.469 <= 1.0)
>>> claims.add("fair coin: H = 1 bit", "1", "1.000000", abs(1.0 - 1) < 1e-12)
>>> print(claims.table())
claim                | theory | measured       | holds?
---------------------+--------+----------------+-------
H(X|Y) <= H(X)       | <=     | 0.469 <= 1.000 | yes
fair coin: H = 1 bit | 1      | 1.000000       | yes
>>> claims.all_hold, claims.summary()
(True, '2/2 claims hold')
>>> out = tempfile.mkdtemp()
>>> path = write_metrics(out, claims, notebook="00_example", estimate=math.nan)
>>> m = json.loads(path.read_text())
>>> m["notebook"], m["all_claims_hold"], m["estimate"], m["claims"][1]["holds"]
('00_example', True, None, True)
"""

from __future__ import annotations

import numbers
from pathlib import Path

from mdic_lab.atomic import atomic_write_text, plain_json, strict_json

__all__ = ["Claims", "write_metrics", "to_json"]

#: the keys every claim row has, in this order
FIELDS = ("claim", "theory", "measured", "holds")
#: the keys ``write_metrics`` writes itself; ``extra`` may not use them
RESERVED = ("notebook", "claims", "all_claims_hold")


def _text(value) -> str:
    """``theory`` / ``measured`` as text: strings as they are, numbers with 6 significant
    digits, anything else through ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.6g}"
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # NumPy / torch scalar
        return _text(value.item())
    return str(value)


class Claims:
    """An ordered claims table: ``add`` rows, print ``table()``, check ``all_hold``.

    Each row is a dict with the keys ``claim, theory, measured, holds`` (plus any extra
    keyword fields given to :meth:`add`, e.g. ``gap_db``). ``holds`` is coerced to
    ``bool`` (NumPy booleans included); ``theory`` and ``measured`` to text.
    """

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, claim: str, theory, measured, holds, **fields) -> None:
        """Append one claim; refuses an empty claim text and a ``holds`` that is no single
        truth value (an array of several booleans)."""
        if not isinstance(claim, str) or not claim.strip():
            raise ValueError(f"claim text must be a non-empty string (got {claim!r})")
        try:
            held = bool(holds)
        except (TypeError, ValueError) as e:  # e.g. a NumPy array of several booleans
            raise TypeError(f"claim {claim!r}: holds must be one truth value, got "
                            f"{type(holds).__name__} ({e}); reduce it with all() / any()") from None
        self.rows.append({"claim": claim, "theory": _text(theory),
                          "measured": _text(measured), "holds": held, **fields})

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    @property
    def n_hold(self) -> int:
        """How many claims hold."""
        return sum(r["holds"] for r in self.rows)

    @property
    def all_hold(self) -> bool:
        """True when there is at least one claim and every claim holds (an empty table is
        not evidence of anything, so it is False)."""
        return bool(self.rows) and all(r["holds"] for r in self.rows)

    def to_list(self) -> list[dict]:
        """The rows as plain dicts (copies), as written to ``metrics.json``."""
        return [dict(r) for r in self.rows]

    def summary(self) -> str:
        """``'12/13 claims hold'``."""
        return f"{self.n_hold}/{len(self)} claims hold"

    def table(self, title: str | None = None, max_width: int = 48) -> str:
        """The claims as a text table: ``claim | theory | measured | holds?``.

        Columns are as wide as their longest entry; the theory and measured columns at most
        ``max_width`` characters (a longer entry is printed whole and shifts the rest of its
        row). ``holds?`` reads ``yes`` or ``NO``. ``title``, when given, is the first line.
        """
        header = ("claim", "theory", "measured", "holds?")
        rows = [(r["claim"], r["theory"], r["measured"], "yes" if r["holds"] else "NO") for r in self.rows]
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
        widths[1] = min(widths[1], max(max_width, len(header[1])))
        widths[2] = min(widths[2], max(max_width, len(header[2])))

        def line(cells):
            return " | ".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()

        lines = [title] if title else []
        lines += [line(header), "-+-".join("-" * w for w in widths)]
        lines += [line(row) for row in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Claims({self.summary()})"


def to_json(value, where: str = "metrics"):
    """``value`` as plain JSON data (:func:`mdic_lab.atomic.plain_json`); a ``Claims`` becomes its rows.

    >>> import numpy as np
    >>> to_json({"a": np.float32(0.5), 1: [np.int64(2), float("inf")], "b": np.array([1.0, np.nan])})
    {'a': 0.5, '1': [2, None], 'b': [1.0, None]}
    """
    return plain_json(value, where)


def write_metrics(output_dir, claims: Claims, *, notebook: str, **extra) -> Path:
    """Write ``<output_dir>/metrics.json`` atomically and return its path.

    The file holds ``{"notebook": notebook, "claims": [...], "all_claims_hold": ...,
    **extra}`` as strict JSON (see :func:`to_json`). ``extra`` may not use the reserved
    keys ``notebook``, ``claims``, ``all_claims_hold``.
    """
    if not isinstance(claims, Claims):
        raise TypeError(f"claims must be a Claims table, got {type(claims).__name__}")
    if not isinstance(notebook, str) or not notebook:
        raise ValueError(f"notebook must be the notebook's name, got {notebook!r}")
    clash = set(extra) & set(RESERVED)
    if clash:
        raise ValueError(f"extra metrics key(s) {sorted(clash)} are written by write_metrics itself")
    metrics = {"notebook": notebook, "claims": claims.to_list(), "all_claims_hold": claims.all_hold, **extra}
    text = strict_json(to_json(metrics), indent=1)
    return atomic_write_text(Path(output_dir) / "metrics.json", text + "\n")
