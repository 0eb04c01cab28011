"""Closed forms for jointly Gaussian vectors (all in bits).

Variables are addressed by index (or lists of indices) into a covariance matrix. The
measures follow the same entropy bookkeeping as :mod:`toy_sources.pmf`, with
differential entropy ``h``:

* ``h(X) = ½ log2((2πe)^k det Σ)``
* ``I(A; B | G) = ½ log2(det Σ_{A|G} det Σ_{B|G} / det Σ_{AB|G})``, with the
  conditional covariance ``Σ_{A|G} = Σ_AA − Σ_AG Σ_GG⁻¹ Σ_GA`` (Schur complement).

The lossy extension of the MDIC supplement (Eqs. 34–36) has a closed form for a Gaussian
source under squared error: the conditional rate-distortion function is
``R(D | V) = max(0, ½ log2(Var(X|V) / D))``, hence ``R(D | V, T) ≤ R(D | V)`` (Eq. 35) and,
for ``D`` below both conditional variances, ``ΔR(D) = ½ log2(Var(X|V)/Var(X|V,T)) =
I(X; T | V)`` (Eq. 36).

Examples
--------
>>> import numpy as np
>>> cov = np.array([[1.0, 0.6], [0.6, 1.0]])
>>> round(float(mutual_information_gaussian(cov, 0, 1)), 6)   # −½ log2(1 − 0.6²)
0.321928
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_covariance",
    "entropy_gaussian",
    "conditional_covariance",
    "conditional_variance",
    "mutual_information_gaussian",
    "conditional_rd_gaussian",
    "conditional_rd_side_information",
    "rate_reduction_gaussian",
    "correlation_to_mi",
]

_PSD_TOL = 1e-10


def check_covariance(cov, name: str = "cov") -> np.ndarray:
    """Validate a covariance matrix: square, finite, symmetric, positive semidefinite."""
    c = np.array(cov, dtype=float)
    if c.ndim == 0:
        c = c.reshape(1, 1)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError(f"{name} contains NaN or inf")
    if not np.allclose(c, c.T, atol=1e-12, rtol=1e-9):
        raise ValueError(f"{name} must be symmetric")
    w = np.linalg.eigvalsh(c)
    if w.min() < -_PSD_TOL * max(1.0, abs(w).max()):
        raise ValueError(f"{name} must be positive semidefinite (min eigenvalue {w.min():.3g})")
    return c


def _idx(index, k: int, what: str) -> list[int]:
    if index is None:
        return []
    if isinstance(index, (int, np.integer)):
        index = [int(index)]
    out = [int(i) for i in index]
    for i in out:
        if not 0 <= i < k:
            raise IndexError(f"{what}: index {i} out of range for a {k}-dimensional vector")
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: repeated index in {out}")
    return out


def _logdet2(c: np.ndarray) -> float:
    """log2 det, −inf for a singular matrix; 0 for an empty one."""
    if c.size == 0:
        return 0.0
    sign, ld = np.linalg.slogdet(c)
    if sign <= 0 or np.linalg.eigvalsh(c).min() <= _PSD_TOL * max(1.0, np.abs(c).max()):
        return -np.inf
    return float(ld / np.log(2.0))


def entropy_gaussian(cov) -> float:
    """Differential entropy ``h = ½ log2((2πe)^k det Σ)`` in bits (−inf if singular).

    >>> round(float(entropy_gaussian([[1.0]])), 4)   # ½ log2(2πe)
    2.0471
    """
    c = check_covariance(cov)
    k = c.shape[0]
    return 0.5 * (k * np.log2(2 * np.pi * np.e) + _logdet2(c))


def conditional_covariance(cov, a, given=()) -> np.ndarray:
    """Schur complement ``Σ_{A|G} = Σ_AA − Σ_AG Σ_GG⁺ Σ_GA`` (pseudo-inverse if singular).

    >>> conditional_covariance([[1.0, 0.5], [0.5, 1.0]], [0], [1]).tolist()
    [[0.75]]
    """
    c = check_covariance(cov)
    k = c.shape[0]
    a_ = _idx(a, k, "a")
    g = _idx(given, k, "given")
    saa = c[np.ix_(a_, a_)]
    if not g:
        return saa
    sag = c[np.ix_(a_, g)]
    sgg = c[np.ix_(g, g)]
    out = saa - sag @ np.linalg.pinv(sgg, hermitian=True) @ sag.T
    return 0.5 * (out + out.T)


def conditional_variance(cov, i: int, given=()) -> float:
    """``Var(X_i | X_given)`` (a scalar Schur complement), clipped at 0.

    >>> round(conditional_variance([[1.0, 0.8], [0.8, 1.0]], 0, [1]), 12)
    0.36
    """
    return max(0.0, float(conditional_covariance(cov, [i], given)[0, 0]))


def mutual_information_gaussian(cov, a, b, given=()) -> float:
    """``I(A; B | G) = ½ log2(det Σ_{A|G} det Σ_{B|G} / det Σ_{AB|G})`` in bits.

    Equivalently ``h(A,G) + h(B,G) − h(A,B,G) − h(G)``. Returns ``inf`` when ``A`` and
    ``B`` share a variable not determined by ``G`` (e.g. ``I(X; X)``).

    >>> round(float(mutual_information_gaussian([[1.0, 0.5], [0.5, 1.0]], 0, 1)), 6)
    0.207519
    """
    c = check_covariance(cov)
    k = c.shape[0]
    a_ = _idx(a, k, "a")
    b_ = _idx(b, k, "b")
    g = _idx(given, k, "given")
    if not a_ or not b_:
        raise ValueError("a and b must each name at least one index")
    ab = list(dict.fromkeys(a_ + b_))
    la = _logdet2(conditional_covariance(c, a_, g))
    lb = _logdet2(conditional_covariance(c, b_, g))
    lab = _logdet2(conditional_covariance(c, ab, g))
    if np.isinf(la) or np.isinf(lb):
        return 0.0  # A or B deterministic given G: no information to share
    if np.isinf(lab):
        return np.inf
    return max(0.0, 0.5 * (la + lb - lab))


def correlation_to_mi(rho) -> np.ndarray:
    """``I(X;Y) = −½ log2(1 − ρ²)`` for a Gaussian pair with correlation ``ρ``.

    >>> round(float(correlation_to_mi(0.8)), 6)
    0.736966
    """
    r = np.asarray(rho, dtype=float)
    if np.any(np.abs(r) > 1) or np.isnan(r).any():
        raise ValueError(f"rho must lie in [-1, 1], got {rho}")
    with np.errstate(divide="ignore"):
        return np.abs(-0.5 * np.log2(1.0 - r**2))


def conditional_rd_gaussian(var, D):
    """Conditional rate–distortion of a Gaussian under squared error, in bits/sample.

    ``R(D) = max(0, ½ log2(var / D))``, where ``var`` is the (conditional) variance of the
    source given the decoder's side information. Vectorised over ``var`` and ``D``.

    >>> float(conditional_rd_gaussian(1.0, 0.25))
    1.0
    >>> float(conditional_rd_gaussian(1.0, 2.0))
    0.0
    """
    v = np.asarray(var, dtype=float)
    d = np.asarray(D, dtype=float)
    if np.isnan(v).any() or (v < 0).any():
        raise ValueError(f"var must be >= 0, got {var}")
    if np.isnan(d).any() or (d <= 0).any():
        raise ValueError(f"distortion D must be > 0, got {D}")
    with np.errstate(divide="ignore"):
        return np.maximum(0.0, 0.5 * np.log2(np.where(v > 0, v, 0.0) / d))


def conditional_rd_side_information(cov, x: int, side, D):
    """``R(D | side)`` of Eq. 34 for a jointly Gaussian ``(X, side)`` under squared error.

    ``= max(0, ½ log2(Var(X | side) / D))``.
    """
    return conditional_rd_gaussian(conditional_variance(cov, x, side), D)


def rate_reduction_gaussian(cov, x: int, v, t, D):
    """``ΔR(D) = R(D | V) − R(D | V, T) ≥ 0`` (Eq. 36) for a Gaussian ``(X, V, T)``.

    For ``D ≤ Var(X|V,T)`` this equals ``½ log2(Var(X|V)/Var(X|V,T)) = I(X; T | V)``;
    for ``Var(X|V,T) < D < Var(X|V)`` it equals ``R(D|V)``; above ``Var(X|V)`` it is 0
    even when ``T`` is informative.

    >>> cov = [[1.0, 0.6, 0.6], [0.6, 1.0, 0.36], [0.6, 0.36, 1.0]]
    >>> dr = float(rate_reduction_gaussian(cov, 0, [1], [2], 0.01))
    >>> abs(dr - mutual_information_gaussian(cov, 0, 2, [1])) < 1e-12
    True
    """
    v_ = [v] if isinstance(v, (int, np.integer)) else list(v)
    t_ = [t] if isinstance(t, (int, np.integer)) else list(t)
    return conditional_rd_side_information(cov, x, v_, D) - conditional_rd_side_information(
        cov, x, v_ + t_, D
    )
