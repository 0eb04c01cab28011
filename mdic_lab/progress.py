"""Progress that reaches its reader: a bar in a terminal or a notebook, plain lines in a log.

A tqdm bar written to a log file is one endless line of carriage returns; long work
(pretraining, training, evaluation, sweeps) therefore reports through :func:`progress_bar`,
which picks a tqdm bar where one can be drawn and :class:`LineProgress` elsewhere.
"""

from __future__ import annotations

import sys
import time

__all__ = ["progress_bar", "LineProgress", "in_notebook", "format_seconds", "LOG_INTERVAL_S"]

#: Seconds between two plain progress lines when stderr is neither a terminal nor a notebook.
LOG_INTERVAL_S = 30.0


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget, or a text bar the front end redraws)."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def format_seconds(seconds: float) -> str:
    """Seconds as ``1h02m05s`` / ``1m15s`` / ``7s``.

    >>> format_seconds(75.2), format_seconds(3725), format_seconds(7)
    ('1m15s', '1h02m05s', '7s')
    """
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class LineProgress:
    """Progress as plain lines for logs and pipes (where a tqdm bar is one endless ``\\r`` line).

    Same calls as tqdm (``update``, ``set_postfix``, ``close``).  Writes a line when it starts,
    then at most every ``interval`` seconds, and one when it closes::

        pretrain VAE: 120/2400 (5%) loss=0.0123 elapsed 1m02s eta 19m40s
    """

    def __init__(self, total: int, desc: str, stream=None, interval: float | None = None, initial: int = 0):
        self.total, self.desc, self.n = int(total), desc, int(initial)
        self.stream = stream
        self.interval = LOG_INTERVAL_S if interval is None else float(interval)
        self.postfix = ""
        self.t0 = self._last = time.monotonic()
        self._closed = False
        self._write()

    def _write(self):
        el = time.monotonic() - self.t0
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = f" eta {format_seconds(el / self.n * (self.total - self.n))}" if 0 < self.n < self.total else ""
        post = f" {self.postfix}" if self.postfix else ""
        stream = sys.stderr if self.stream is None else self.stream
        print(f"{self.desc}: {self.n}/{self.total}{pct}{post} elapsed {format_seconds(el)}{eta}", file=stream, flush=True)
        self._last = time.monotonic()

    def update(self, n: int = 1):
        self.n += n
        if time.monotonic() - self._last >= self.interval and self.n < self.total:
            self._write()

    def set_postfix(self, refresh: bool = True, **kw):
        self.postfix = " ".join(f"{k}={v}" for k, v in kw.items())

    def close(self):
        if not self._closed:
            self._closed = True
            self._write()


def progress_bar(total, desc: str, enabled: bool = True, *, initial: int = 0, stream=None,
                 interval: float | None = None):
    """A progress reporter with tqdm's calls: silent when not ``enabled``; a tqdm bar in a
    terminal or a notebook (``tqdm.auto``: a widget where ipywidgets is installed); otherwise
    (a log file, a pipe) a :class:`LineProgress` writing a line every ``interval`` seconds."""
    from tqdm.auto import tqdm

    if not enabled:
        return tqdm(total=total, initial=initial, desc=desc, disable=True)
    stream = sys.stderr if stream is None else stream
    if in_notebook():
        return tqdm(total=total, initial=initial, desc=desc)
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return tqdm(total=total, initial=initial, desc=desc, leave=False, file=stream)
    bar = LineProgress(total, desc, stream=stream, interval=interval, initial=initial)
    return bar
