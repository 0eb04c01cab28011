"""Random-binning Slepian–Wolf code with exhaustive decoding, for short DSBS blocks.

The achievability proof of Slepian & Wolf (1973) (see Cover & Thomas, Thm. 15.4.1), made
runnable for small ``n``:

* **encoder** — a seeded random hash ``bin: {0,1}^n → {0, …, M−1}``, ``M = round(2^{nR})``;
  ``x`` is sent as its bin index (``log2 M`` bits, i.e. rate ``R = log2(M)/n`` bits/symbol);
* **decoder** — knows ``y`` and picks, among all ``2^n`` sequences in the received bin, the
  one closest to ``y`` in Hamming distance. For the DSBS with ``p < ½`` this is the maximum
  likelihood (= MAP, ``x`` uniform) rule; ties are broken uniformly at random.

Theory (Eq. 2 of the OmniParallax appendix): as ``n → ∞`` the error probability tends to 0
for ``R > H(X|Y) = h(p)`` and to 1 for ``R < H(X|Y)``. For ``n ≤ 16`` both trends are already
visible; :func:`binning_error_probability` measures them by Monte Carlo with a Wilson CI.
The code is *real*: :meth:`RandomBinningCode.encode` outputs the bin index that is the
entire message; :meth:`RandomBinningCode.decode` sees only that index and ``y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ..pmf import as_generator
from ..sources import sample_dsbs

__all__ = [
    "RandomBinningCode",
    "binning_error_probability",
    "wilson_interval",
    "ErrorRate",
    "MAX_N",
]

#: Largest block length for exhaustive decoding (2^n sequences are enumerated).
MAX_N = 20


def _popcount_table(n: int) -> np.ndarray:
    """``table[v]`` = number of ones in the ``n``-bit integer ``v``."""
    t = np.zeros(1 << n, dtype=np.uint8)
    for b in range(n):
        t += ((np.arange(1 << n) >> b) & 1).astype(np.uint8)
    return t


def bits_to_int(bits: np.ndarray) -> np.ndarray:
    """Rows of bits (…, n) → integers (bit ``j`` has weight ``2^j``)."""
    b = np.asarray(bits).astype(np.int64)
    return (b << np.arange(b.shape[-1], dtype=np.int64)).sum(axis=-1)


def int_to_bits(v: np.ndarray, n: int) -> np.ndarray:
    """Integers → rows of ``n`` bits (uint8)."""
    v = np.asarray(v, dtype=np.int64)
    return ((v[..., None] >> np.arange(n)) & 1).astype(np.uint8)


class RandomBinningCode:
    """A random-binning Slepian–Wolf code of block length ``n`` and rate ``rate``.

    Parameters
    ----------
    n : int
        Block length, ``1 ≤ n ≤ MAX_N``.
    rate : float
        Target rate in bits/symbol; the code uses ``M = max(1, round(2^{n·rate}))`` bins, so
        the actual rate is :attr:`actual_rate` ``= log2(M)/n``.
    rng : numpy.random.Generator or int
        Draws the random hash (the code book).

    Examples
    --------
    >>> code = RandomBinningCode(n=8, rate=1.0, rng=0)     # 256 bins for 256 sequences
    >>> code.num_bins, code.actual_rate
    (256, 1.0)
    >>> x = np.array([[1, 0, 1, 1, 0, 0, 1, 0]], dtype=np.uint8)
    >>> bool((code.decode(code.encode(x), x) == x).all())   # y = x: always decoded
    True
    """

    def __init__(self, n: int, rate: float, rng):
        if not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_N:
            raise ValueError(f"n must be an integer in 1..{MAX_N} (exhaustive decoding), got {n!r}")
        rate = float(rate)
        if not np.isfinite(rate) or rate < 0:
            raise ValueError(f"rate must be a finite number >= 0 (bits/symbol), got {rate}")
        self.n = int(n)
        self.num_bins = int(max(1, round(2.0 ** (self.n * rate))))
        g = as_generator(rng)
        size = 1 << self.n
        self.bin_of = g.integers(0, self.num_bins, size=size)  # the random hash
        # members of each bin, padded with -1: (num_bins, max_bin_size)
        order = np.argsort(self.bin_of, kind="stable")
        counts = np.bincount(self.bin_of, minlength=self.num_bins)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        width = max(1, int(counts.max()))
        members = np.full((self.num_bins, width), -1, dtype=np.int64)
        pos = np.arange(size) - np.repeat(starts, counts)
        members[self.bin_of[order], pos] = order
        self._members = members
        self._popcount = _popcount_table(self.n)
        self._tie_rng = np.random.default_rng(g.integers(2**63))

    @property
    def actual_rate(self) -> float:
        """``log2(num_bins) / n`` bits per source symbol."""
        return float(np.log2(self.num_bins) / self.n)

    def _check_bits(self, a, name) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != self.n:
            raise ValueError(f"{name} must have shape (trials, {self.n}), got {a.shape}")
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"{name} must contain only bits 0/1")
        return a.astype(np.uint8)

    def encode(self, x) -> np.ndarray:
        """Bin indices (the whole message) of bit blocks ``x`` of shape (trials, n)."""
        return self.bin_of[bits_to_int(self._check_bits(x, "x"))]

    def decode(self, bins, y) -> np.ndarray:
        """Minimum-Hamming-distance member of each bin, given side information ``y``."""
        y = self._check_bits(y, "y")
        bins = np.asarray(bins, dtype=np.int64).reshape(-1)
        if bins.size != y.shape[0]:
            raise ValueError(f"{bins.size} bin indices for {y.shape[0]} side-information blocks")
        if (bins < 0).any() or (bins >= self.num_bins).any():
            raise ValueError(f"bin indices must lie in 0..{self.num_bins - 1}")
        yi = bits_to_int(y)
        out = np.empty(bins.size, dtype=np.int64)
        chunk = max(1, 2_000_000 // self._members.shape[1])
        for s in range(0, bins.size, chunk):
            cand = self._members[bins[s : s + chunk]]  # (c, width)
            dist = self._popcount[np.where(cand >= 0, cand, 0) ^ yi[s : s + chunk, None]].astype(float)
            dist += self._tie_rng.random(dist.shape)  # uniform tie-breaking within a distance
            dist[cand < 0] = np.inf
            out[s : s + chunk] = cand[np.arange(cand.shape[0]), dist.argmin(axis=1)]
        return int_to_bits(out, self.n)


def wilson_interval(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    >>> lo, hi = wilson_interval(0, 100)
    >>> lo, round(hi, 4)
    (0.0, 0.037)
    """
    if trials <= 0:
        raise ValueError(f"trials must be > 0, got {trials}")
    if not 0 <= errors <= trials:
        raise ValueError(f"errors must lie in 0..trials, got {errors} of {trials}")
    z = norm.ppf(0.5 + confidence / 2)
    phat = errors / trials
    denom = 1 + z**2 / trials
    centre = (phat + z**2 / (2 * trials)) / denom
    half = z * np.sqrt(phat * (1 - phat) / trials + z**2 / (4 * trials**2)) / denom
    lo = 0.0 if errors == 0 else max(0.0, float(centre - half))
    hi = 1.0 if errors == trials else min(1.0, float(centre + half))
    return lo, hi


@dataclass(frozen=True)
class ErrorRate:
    """Monte-Carlo block error probability of a code ensemble."""

    p_error: float  # errors / trials
    low: float  # Wilson CI lower end
    high: float  # Wilson CI upper end
    errors: int  # number of block errors
    trials: int  # number of blocks
    n: int  # block length
    rate: float  # actual rate log2(M)/n, bits/symbol


def binning_error_probability(
    p: float, n: int, rate: float, trials: int, rng, n_codes: int = 10, confidence: float = 0.95
) -> ErrorRate:
    """Block error probability ``P(x̂ ≠ x)`` of random binning on a DSBS(p), by Monte Carlo.

    The trials are spread over ``n_codes`` independently drawn hashes (an estimate of the
    ensemble-average error probability of the random-coding argument).

    >>> e = binning_error_probability(0.05, 8, 0.9, 400, rng=0)
    >>> e.low <= e.p_error <= e.high < 0.2
    True
    """
    if not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    if not isinstance(n_codes, (int, np.integer)) or n_codes < 1:
        raise ValueError(f"n_codes must be a positive integer, got {n_codes!r}")
    g = as_generator(rng)
    n_codes = min(n_codes, trials)
    per = np.full(n_codes, trials // n_codes)
    per[: trials % n_codes] += 1
    errors = 0
    code = None
    for t in per:
        code = RandomBinningCode(n, rate, g)
        x, y = sample_dsbs(p, (int(t), n), g)
        xhat = code.decode(code.encode(x), y)
        errors += int((xhat != x).any(axis=1).sum())
    lo, hi = wilson_interval(errors, trials, confidence)
    return ErrorRate(errors / trials, lo, hi, errors, int(trials), int(n), code.actual_rate)
