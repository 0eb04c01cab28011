"""Entropy, mutual information and conditional MI estimated from samples (bits).

Discrete samples (integer symbols; a 2-D array is a tuple of columns, i.e. one joint
variable) — three estimators of ``H``, all combined into ``I(X;Y|Z) = H(X,Z) + H(Y,Z) −
H(X,Y,Z) − H(Z)`` as in :mod:`toy_sources.pmf`:

* ``"plugin"`` — the entropy of the empirical pmf (biased low: ``E[Ĥ] ≈ H − (m−1)/(2n ln 2)``);
* ``"miller_madow"`` — plug-in plus ``(m̂ − 1)/(2n ln 2)``, ``m̂`` the number of observed
  symbols (Miller 1955);
* ``"jackknife"`` — ``n θ̂ − (n−1)/n Σ_i θ̂_{−i}`` over leave-one-out samples, applied to
  the whole measure (Efron & Stein 1981; Zahl 1977).

Confidence intervals: percentile bootstrap with a seeded generator; because each discrete
measure depends only on the joint count table, a bootstrap replicate is a multinomial draw
of that table (identical in law to resampling rows).

Continuous samples — the Kraskov–Stögbauer–Grassberger estimator (KSG, Kraskov et al. 2004,
algorithm 1) for ``I(X;Y)`` and its conditional version by Frenzel & Pompe (2007) for
``I(X;Y|Z)``, with the max-norm and ``scipy.spatial.cKDTree``; the CI is a normal interval
from the spread of the per-point terms (it ignores their dependence, so it is optimistic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma
from scipy.stats import norm

from .pmf import as_generator

__all__ = [
    "Estimate",
    "METHODS",
    "entropy_from_counts",
    "entropy",
    "mutual_information",
    "entropy_ci",
    "mutual_information_ci",
    "ksg_mutual_information",
    "ksg_conditional_mutual_information",
    "sample_size_study",
]

METHODS = ("plugin", "miller_madow", "jackknife")
_LN2 = np.log(2.0)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (bits)."""

    value: float  # the estimate on the full sample
    low: float  # lower end of the CI
    high: float  # upper end of the CI
    method: str  # estimator name
    n: int  # number of samples
    confidence: float = 0.95  # nominal coverage of [low, high]

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies in the interval."""
        return self.low <= x <= self.high


# ------------------------------------------------------------------------ discrete
def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of: {', '.join(METHODS)})")
    return method


def _labels(samples, name: str) -> tuple[np.ndarray, int]:
    """Integer samples (n,) or (n, k) → labels 0..m−1 of the joint symbol, and m."""
    s = np.asarray(samples)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array of integer symbols, got shape {s.shape}")
    if s.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(s.dtype, np.integer):
        if np.issubdtype(s.dtype, np.floating) and np.isnan(s).any():
            raise ValueError(f"{name} contains NaN (expected integer symbols)")
        raise TypeError(f"{name} must hold integer symbols, got dtype {s.dtype}")
    s = s.astype(np.int64) - s.min(axis=0)  # per-column symbols 0..size-1
    sizes = s.max(axis=0) + 1
    if np.prod(sizes.astype(float)) < 2**62:  # mixed-radix code of the joint symbol
        code = np.zeros(s.shape[0], dtype=np.int64)
        for j in range(s.shape[1]):
            code = code * sizes[j] + s[:, j]
    else:  # huge alphabets: lexicographic unique rows
        _, code = np.unique(s, axis=0, return_inverse=True)
        code = code.reshape(-1)
    if code.max() < 2**22:  # relabel observed symbols 0..m-1 by counting (fast)
        present = np.bincount(code) > 0
        inv = (np.cumsum(present) - 1)[code]
    else:
        _, inv = np.unique(code, return_inverse=True)
    return inv, int(inv.max()) + 1


def entropy_from_counts(counts, method: str = "plugin") -> np.ndarray:
    """Entropy estimate (bits) from a count vector; vectorised over leading axes.

    ``counts`` has shape ``(..., m)``; ``"jackknife"`` is supported for 1-D counts only.

    >>> float(entropy_from_counts([5, 5]))
    1.0
    >>> round(float(entropy_from_counts([5, 5], "miller_madow")), 4)   # 1 + 1/(20 ln 2)
    1.0721
    """
    _check_method(method)
    c = np.asarray(counts, dtype=float)
    if (c < 0).any() or np.isnan(c).any():
        raise ValueError("counts must be non-negative numbers")
    n = c.sum(axis=-1)
    if np.any(n <= 0):
        raise ValueError("counts sum to 0")
    if method == "jackknife":
        if c.ndim != 1:
            raise ValueError("jackknife entropy needs a 1-D count vector")
        return _jackknife(lambda cc: _plugin(cc), c[None, :])
    h = _plugin(c)
    if method == "miller_madow":
        m = (c > 0).sum(axis=-1)
        h = h + (m - 1) / (2.0 * n * _LN2)
    return h


def _plugin(c: np.ndarray) -> np.ndarray:
    n = c.sum(axis=-1, keepdims=True)
    p = c / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=-1)


def _table(x, y=None, z=None) -> np.ndarray:
    """Joint count table of shape (mx, my, mz) (size-1 axes for absent variables)."""
    lx, mx = _labels(x, "x")
    n = lx.size
    ly, my = (np.zeros(n, int), 1) if y is None else _labels(y, "y")
    lz, mz = (np.zeros(n, int), 1) if z is None else _labels(z, "given")
    if ly.size != n or lz.size != n:
        raise ValueError(f"x, y and given must have the same number of samples ({n}, {ly.size}, {lz.size})")
    flat = (lx * my + ly) * mz + lz
    return np.bincount(flat, minlength=mx * my * mz).reshape(mx, my, mz).astype(float)


def _cmi_from_tables(t: np.ndarray, method: str) -> np.ndarray:
    """``I(X;Y|Z) = H(X,Z) + H(Y,Z) − H(X,Y,Z) − H(Z)`` from count tables (..., mx, my, mz)."""
    lead = t.shape[:-3]
    h = lambda a: entropy_from_counts(a.reshape(lead + (-1,)), method)  # noqa: E731
    return h(t.sum(axis=-2)) + h(t.sum(axis=-3)) - h(t) - h(t.sum(axis=(-3, -2)))


def _jackknife(stat, t: np.ndarray) -> np.ndarray:
    """Jackknife of ``stat`` over the samples summarised by count table ``t`` (leading axis 1)."""
    t = t[0]
    n = t.sum()
    full = float(np.asarray(stat(t[None]), dtype=float).reshape(-1)[0])
    cells = np.argwhere(t > 0)
    reps = np.repeat(t[None], len(cells), axis=0)
    idx = (np.arange(len(cells)),) + tuple(cells.T)
    reps[idx] -= 1.0
    loo = np.asarray(stat(reps), dtype=float)  # one value per distinct left-out cell
    weights = t[tuple(cells.T)]
    return np.asarray(n * full - (n - 1) / n * float((weights * loo).sum()))


def _measure(t: np.ndarray, method: str) -> float:
    """CMI (or MI / H via size-1 axes) from one count table with the given method."""
    if method == "jackknife":
        return float(_jackknife(lambda tt: _cmi_from_tables(tt, "plugin"), t[None]))
    return float(_cmi_from_tables(t, method))


def entropy(samples, method: str = "plugin") -> float:
    """Estimate ``H(X)`` in bits from integer samples (rows; columns form one joint symbol).

    >>> float(entropy([0, 1, 0, 1]))
    1.0
    """
    _check_method(method)
    t = _table(samples)
    if method == "jackknife":
        return float(_jackknife(lambda tt: _plugin(tt.reshape(tt.shape[0], -1)), t[None]))
    return float(entropy_from_counts(t.ravel(), method))


def mutual_information(x, y, given=None, method: str = "plugin") -> float:
    """Estimate ``I(X; Y | given)`` in bits from paired integer samples.

    >>> x = [0, 0, 1, 1]
    >>> float(mutual_information(x, x)), float(mutual_information(x, [0, 1, 0, 1]))
    (1.0, 0.0)
    """
    _check_method(method)
    return _measure(_table(x, y, given), method)


CI_KINDS = ("percentile", "basic")


def _bootstrap(t: np.ndarray, stat, n_boot: int, confidence: float, rng, kind: str = "percentile"):
    """Bootstrap CI of ``stat`` (a function of the count table) by multinomial resampling.

    ``"percentile"``: the ``α/2`` and ``1−α/2`` quantiles of the replicates.
    ``"basic"``: ``(2θ̂ − q_hi, 2θ̂ − q_lo)``, which also corrects the shift of the replicates
    caused by the estimator's own bias (useful for the plug-in at small ``n``).
    """
    if kind not in CI_KINDS:
        raise ValueError(f"unknown ci {kind!r} (expected one of: {', '.join(CI_KINDS)})")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    g = as_generator(rng)
    n = int(t.sum())
    draws = g.multinomial(n, t.ravel() / n, size=n_boot).reshape((n_boot,) + t.shape).astype(float)
    vals = np.array([stat(d) for d in draws])
    a = (1 - confidence) / 2
    lo, hi = float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))
    if kind == "basic":
        theta = float(stat(t))
        lo, hi = 2 * theta - hi, 2 * theta - lo
    return lo, hi


def entropy_ci(samples, method="plugin", n_boot=200, confidence=0.95, rng=0, ci="percentile") -> Estimate:
    """``H(X)`` with a bootstrap CI (``ci``: "percentile" or "basic"; seeded by ``rng``)."""
    _check_method(method)
    t = _table(samples)
    stat = lambda tt: float(  # noqa: E731
        _jackknife(lambda u: _plugin(u.reshape(u.shape[0], -1)), tt[None])
        if method == "jackknife"
        else entropy_from_counts(tt.ravel(), method)
    )
    lo, hi = _bootstrap(t, stat, n_boot, confidence, rng, ci)
    return Estimate(stat(t), lo, hi, method, int(t.sum()), confidence)


def mutual_information_ci(
    x, y, given=None, method="plugin", n_boot=200, confidence=0.95, rng=0, ci="percentile"
) -> Estimate:
    """``I(X; Y | given)`` with a bootstrap CI (``ci``: "percentile" or "basic"; seeded).

    >>> from toy_sources.sources import dsbs
    >>> s = dsbs(0.1).sample(4000, rng=1)
    >>> est = mutual_information_ci(s[:, 0], s[:, 1], method="miller_madow", n_boot=100, rng=2)
    >>> est.low < est.value < est.high, est.contains(0.531)   # 1 − h(0.1)
    (True, True)
    """
    _check_method(method)
    t = _table(x, y, given)
    stat = lambda tt: _measure(tt, method)  # noqa: E731
    lo, hi = _bootstrap(t, stat, n_boot, confidence, rng, ci)
    return Estimate(stat(t), lo, hi, method, int(t.sum()), confidence)


# ---------------------------------------------------------------------- continuous
def _continuous(a, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (samples × dims), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} samples, expected {n}")
    return arr


def _count_within(points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Number of *other* points at max-norm distance strictly below each radius."""
    tree = cKDTree(points)
    # strict inequality: shrink the radius by one ulp-ish step
    r = np.nextafter(radii, 0)
    counts = tree.query_ball_point(points, r, p=np.inf, return_length=True)
    return np.asarray(counts) - 1


def _normal_ci(terms: np.ndarray, value: float, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    se = terms.std(ddof=1) / np.sqrt(terms.size) / _LN2
    zq = float(norm.ppf(0.5 + confidence / 2))
    return float(value - zq * se), float(value + zq * se)


def _check_k(k: int, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if n <= k:
        raise ValueError(f"need more samples than k (n={n}, k={k})")
    return int(k)


def ksg_mutual_information(x, y, k: int = 3, confidence: float = 0.95) -> Estimate:
    """KSG estimate of ``I(X;Y)`` in bits (Kraskov et al. 2004, algorithm 1, Eq. 8).

    ``Î = ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩``, where ``ε_i`` is the max-norm distance
    from point ``i`` to its ``k``-th neighbour in the joint space and ``n_x(i)``, ``n_y(i)``
    count the points strictly closer than ``ε_i`` in each marginal space.

    >>> from toy_sources.sources import gaussian_pair
    >>> s = gaussian_pair(0.8).sample(3000, rng=0)
    >>> est = ksg_mutual_information(s[:, 0], s[:, 1])
    >>> abs(est.value - 0.737) < 0.06        # −½ log2(1 − 0.64) = 0.737
    True
    """
    xa = _continuous(x, "x")
    n = xa.shape[0]
    ya = _continuous(y, "y", n)
    k = _check_k(k, n)
    joint = np.hstack([xa, ya])
    d, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    eps = d[:, -1]
    nx = _count_within(xa, eps)
    ny = _count_within(ya, eps)
    terms = digamma(k) + digamma(n) - digamma(nx + 1) - digamma(ny + 1)
    value = float(terms.mean() / _LN2)
    lo, hi = _normal_ci(terms, value, confidence)
    return Estimate(value, lo, hi, f"ksg(k={k})", n, confidence)


def ksg_conditional_mutual_information(x, y, z, k: int = 3, confidence: float = 0.95) -> Estimate:
    """Frenzel–Pompe estimate of ``I(X;Y|Z)`` in bits (Frenzel & Pompe, PRL 99, 2007).

    ``Î = ψ(k) − ⟨ψ(n_xz + 1) + ψ(n_yz + 1) − ψ(n_z + 1)⟩`` with ``ε_i`` from the joint
    ``(X, Y, Z)`` space (max-norm) and strict counts in the ``XZ``, ``YZ`` and ``Z`` spaces.

    >>> from toy_sources.sources import gaussian_markov_triple
    >>> s = gaussian_markov_triple(0.9, 0.9).sample(2000, rng=0)
    >>> abs(ksg_conditional_mutual_information(s[:, 0], s[:, 2], s[:, 1]).value) < 0.05
    True
    """
    xa = _continuous(x, "x")
    n = xa.shape[0]
    ya = _continuous(y, "y", n)
    za = _continuous(z, "z", n)
    k = _check_k(k, n)
    joint = np.hstack([xa, ya, za])
    d, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    eps = d[:, -1]
    nxz = _count_within(np.hstack([xa, za]), eps)
    nyz = _count_within(np.hstack([ya, za]), eps)
    nz = _count_within(za, eps)
    terms = digamma(k) - digamma(nxz + 1) - digamma(nyz + 1) + digamma(nz + 1)
    value = float(terms.mean() / _LN2)
    lo, hi = _normal_ci(terms, value, confidence)
    return Estimate(value, lo, hi, f"frenzel_pompe(k={k})", n, confidence)


# ---------------------------------------------------------------------- studies
def sample_size_study(
    pmf,
    a,
    b,
    given=(),
    sample_sizes=(100, 1000, 10000),
    rng=0,
    methods=METHODS,
    n_rep: int = 10,
    n_boot: int = 200,
    confidence: float = 0.95,
    ci: str = "percentile",
) -> list[dict]:
    """Estimates of ``I(a; b | given)`` from samples of a :class:`~toy_sources.pmf.JointPMF`
    against its exact value, as the sample size grows.

    For each ``n`` in ``sample_sizes``, ``n_rep`` independent samples are drawn; every method
    is applied to each, and a bootstrap CI is computed on the first replicate.

    Returns
    -------
    list of dict
        One row per ``(n, method)``: ``n``, ``method``, ``exact``, ``estimate`` and
        ``low``/``high`` (first replicate and its CI), ``mean`` (over replicates), ``bias``
        (``mean − exact``), ``mean_abs_error`` and ``covered`` (CI contains ``exact``).

    >>> from toy_sources.sources import dsbs
    >>> rows = sample_size_study(dsbs(0.1), "X", "Y", sample_sizes=[50], n_rep=3, n_boot=20)
    >>> sorted({r["method"] for r in rows}) == sorted(METHODS)
    True
    """
    g = as_generator(rng)
    for m in methods:
        _check_method(m)
    if n_rep < 1:
        raise ValueError(f"n_rep must be >= 1, got {n_rep}")
    pick = lambda names: [pmf.axis(x) for x in ([names] if isinstance(names, str) else list(names))]  # noqa: E731
    ia, ib = pick(a), pick(b)
    ig = pick(given) if given else []
    exact = float(pmf.I(a, b, given=given))
    rows = []
    for n in sample_sizes:
        samples = [pmf.sample(int(n), g) for _ in range(n_rep)]
        for m in methods:
            vals = np.array(
                [mutual_information(s[:, ia], s[:, ib], s[:, ig] if ig else None, m) for s in samples]
            )
            s0 = samples[0]
            est = mutual_information_ci(
                s0[:, ia], s0[:, ib], s0[:, ig] if ig else None, m, n_boot, confidence, g, ci
            )
            rows.append(
                {
                    "n": int(n),
                    "method": m,
                    "exact": exact,
                    "estimate": est.value,
                    "low": est.low,
                    "high": est.high,
                    "covered": bool(est.contains(exact)),
                    "mean": float(vals.mean()),
                    "bias": float(vals.mean() - exact),
                    "mean_abs_error": float(np.abs(vals - exact).mean()),
                }
            )
    return rows
