"""Closed-form bounds for toy correlated sources (all rates in bits).

Binary entropy, the Slepian–Wolf region, conditional rate–distortion, the Wyner–Ziv
functions of the doubly symmetric binary source (DSBS) and of the Gaussian pair, the
quadratic Gaussian Berger–Tung (two-terminal) region and Wyner's common information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

__all__ = [
    "binary_entropy",
    "binary_convolution",
    "SlepianWolfRegion",
    "slepian_wolf_region",
    "conditional_rd_binary",
    "wyner_ziv_binary",
    "wyner_ziv_binary_critical_distortion",
    "wyner_ziv_gaussian",
    "wyner_common_information_dsbs",
    "wyner_common_information_gaussian",
    "BergerTungGaussianRegion",
    "berger_tung_gaussian",
]


def binary_entropy(p):
    r"""Binary entropy :math:`h(p) = -p\log_2 p - (1-p)\log_2(1-p)` in bits.

    Vectorised; :math:`h(0) = h(1) = 0` by continuity.

    Parameters
    ----------
    p : float or array_like
        Probabilities in :math:`[0, 1]`.

    Returns
    -------
    float or numpy.ndarray
        :math:`h(p)` with the shape of ``p`` (a Python float for scalar input).

    Raises
    ------
    ValueError
        If any entry of ``p`` is NaN or outside :math:`[0, 1]`.

    Examples
    --------
    >>> binary_entropy(0.5)
    1.0
    >>> round(binary_entropy(0.11), 4)
    0.4999
    >>> binary_entropy([0.0, 1.0]).tolist()
    [0.0, 0.0]
    """
    arr = np.asarray(p, dtype=float)
    if np.any(np.isnan(arr)) or np.any(arr < 0.0) or np.any(arr > 1.0):
        raise ValueError(f"binary_entropy: p must lie in [0, 1] (got {p!r})")
    q = 1.0 - arr
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(arr > 0, arr * np.log2(np.where(arr > 0, arr, 1.0)), 0.0) - np.where(
            q > 0, q * np.log2(np.where(q > 0, q, 1.0)), 0.0
        )
    h = h + 0.0  # turn -0.0 into 0.0
    return float(h) if h.ndim == 0 else h


# --------------------------------------------------------------------------- helpers
def _check_prob(value, name: str, *, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if np.any(np.isnan(arr)) or np.any(arr < low) or np.any(arr > high):
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}] (got {value!r})")
    return arr


def _check_distortion(D, name: str = "D") -> np.ndarray:
    arr = np.asarray(D, dtype=float)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be a non-negative distortion without NaN (got {D!r})")
    return arr


def _out(arr):
    arr = np.asarray(arr, dtype=float) + 0.0
    return float(arr) if arr.ndim == 0 else arr


def binary_convolution(a, b):
    r"""Binary convolution :math:`a \star b = a(1-b) + b(1-a)`.

    The crossover probability of two cascaded binary symmetric channels.

    >>> binary_convolution(0.1, 0.2)
    0.26
    """
    a = _check_prob(a, "a")
    b = _check_prob(b, "b")
    return _out(a * (1.0 - b) + b * (1.0 - a))


# --------------------------------------------------------------------- Slepian–Wolf
@dataclass(frozen=True)
class SlepianWolfRegion:
    """The Slepian–Wolf rate region of a pair (X, Y), Eqs. (1)–(3) of the OmniParallax
    appendix: ``R_X >= H(X|Y)``, ``R_Y >= H(Y|X)``, ``R_X + R_Y >= H(X,Y)`` (bits).

    Attributes
    ----------
    h_x_given_y, h_y_given_x, h_xy, h_x, h_y : float
        The entropies bounding the region.
    corner_points : tuple of (float, float)
        ``(H(X|Y), H(Y))`` (Y sent first, X at its conditional entropy) and
        ``(H(X), H(Y|X))``.
    sum_rate : float
        The minimum sum rate ``H(X, Y)``.
    names : tuple of str
        Names of the two variables (X first).
    """

    h_x_given_y: float
    h_y_given_x: float
    h_xy: float
    h_x: float
    h_y: float
    names: tuple = ("X", "Y")

    @property
    def sum_rate(self) -> float:
        return self.h_xy

    @property
    def corner_points(self) -> tuple:
        return ((self.h_x_given_y, self.h_y), (self.h_x, self.h_y_given_x))

    def contains(self, rx, ry, tol: float = 1e-12):
        """Whether the rate pair(s) ``(rx, ry)`` are achievable (vectorised, bits)."""
        rx = np.asarray(rx, dtype=float)
        ry = np.asarray(ry, dtype=float)
        if np.any(np.isnan(rx)) or np.any(np.isnan(ry)):
            raise ValueError("contains: rates rx, ry must not be NaN")
        ok = (
            (rx >= self.h_x_given_y - tol)
            & (ry >= self.h_y_given_x - tol)
            & (rx + ry >= self.h_xy - tol)
        )
        return bool(ok) if ok.ndim == 0 else ok


def slepian_wolf_region(pmf) -> SlepianWolfRegion:
    """Slepian–Wolf region (Eqs. 1–3 of 003, Slepian & Wolf 1973) of a 2-variable pmf.

    Parameters
    ----------
    pmf : toy_sources.pmf.JointPMF
        Joint pmf of exactly two variables (the first is called X, the second Y).

    Returns
    -------
    SlepianWolfRegion

    Examples
    --------
    >>> from toy_sources.pmf import JointPMF
    >>> sw = slepian_wolf_region(JointPMF([[0.45, 0.05], [0.05, 0.45]], ["X", "Y"]))
    >>> round(sw.h_x_given_y, 4), round(sw.sum_rate, 4)
    (0.469, 1.469)
    >>> sw.contains(0.5, 1.0), sw.contains(0.4, 1.2)
    (True, False)
    """
    names = getattr(pmf, "names", None)
    if names is None or not hasattr(pmf, "H"):
        raise TypeError(f"pmf must be a toy_sources.pmf.JointPMF, got {type(pmf).__name__}")
    if len(names) != 2:
        raise ValueError(f"slepian_wolf_region needs a pmf of 2 variables, got names {names}")
    x, y = names
    return SlepianWolfRegion(
        h_x_given_y=float(pmf.H(x, given=(y,))),
        h_y_given_x=float(pmf.H(y, given=(x,))),
        h_xy=float(pmf.H(x, y)),
        h_x=float(pmf.H(x)),
        h_y=float(pmf.H(y)),
        names=tuple(names),
    )


# ------------------------------------------------------------- binary (DSBS) closed forms
def conditional_rd_binary(p, D):
    r"""Conditional rate–distortion function of the DSBS (side information at both ends).

    :math:`R_{X|Y}(D) = h(p) - h(D)` for :math:`0 \le D < \min(p, 1-p)`, 0 beyond
    (Hamming distortion, ``Y = X xor Z``, ``Z ~ Bern(p)``; Berger 1971).

    Examples
    --------
    >>> conditional_rd_binary(0.25, 0.0) == binary_entropy(0.25)
    True
    >>> conditional_rd_binary(0.25, 0.3)
    0.0
    """
    p = float(_check_prob(p, "p"))
    D = _check_distortion(D)
    pe = min(p, 1.0 - p)
    Dc = np.minimum(D, pe)
    return _out(np.where(D < pe, binary_entropy(pe) - binary_entropy(Dc), 0.0))


def _g_binary(p: float, D):
    """g(D) = h(p * D) - h(D) of Wyner & Ziv (1976), Section II."""
    return binary_entropy(p * (1 - D) + D * (1 - p)) - binary_entropy(D)


def _g_binary_prime(p: float, D):
    """g'(D) in bits per unit distortion, for 0 < D < 1/2."""
    pd = p * (1 - D) + D * (1 - p)
    return (1 - 2 * p) * np.log2((1 - pd) / pd) - np.log2((1 - D) / D)


def wyner_ziv_binary_critical_distortion(p) -> float:
    r"""The tangency point :math:`d_c` of the DSBS Wyner–Ziv function.

    Solves :math:`g'(d_c) = g(d_c) / (d_c - p)` on :math:`(0, p)` with
    :math:`g(D) = h(p \star D) - h(D)` (Wyner & Ziv 1976, Eq. (2.7)-(2.8)).
    For ``p in {0, 1/2}`` returns ``p``.

    >>> 0.0 < wyner_ziv_binary_critical_distortion(0.25) < 0.25
    True
    """
    p = float(_check_prob(p, "p"))
    pe = min(p, 1.0 - p)
    if pe <= 0.0 or pe >= 0.5 - 1e-12:
        return pe

    def phi(d):
        return _g_binary_prime(pe, d) * (d - pe) - _g_binary(pe, d)

    lo, hi = 1e-300, pe * (1 - 1e-12)
    return float(brentq(phi, lo, hi, xtol=1e-15, rtol=1e-14, maxiter=500))


def wyner_ziv_binary(p, D):
    r"""Wyner–Ziv rate–distortion function of the DSBS(p) with Hamming distortion (bits).

    Wyner & Ziv (1976), Section II: :math:`R^{WZ}(D)` is the lower convex envelope of
    :math:`g(D) = h(p \star D) - h(D)` on :math:`[0, p)` and the point :math:`(p, 0)`:

    .. math::
        R^{WZ}(D) = \begin{cases} g(D) & 0 \le D \le d_c \\
                    g(d_c)\,\frac{p - D}{p - d_c} & d_c \le D \le p \\
                    0 & D \ge p \end{cases}

    with :math:`g'(d_c) = g(d_c)/(d_c - p)`. It exceeds the conditional RD function
    :math:`h(p) - h(D)` for :math:`0 < D < p` (the Wyner–Ziv rate loss).
    Crossovers ``p > 1/2`` are reduced to ``1 - p``.

    Parameters
    ----------
    p : float
        Crossover probability of the DSBS, in [0, 1].
    D : float or array_like
        Target Hamming distortion(s), >= 0.

    Examples
    --------
    >>> wyner_ziv_binary(0.25, 0.0) == binary_entropy(0.25)     # = H(X|Y) at D = 0
    True
    >>> wyner_ziv_binary(0.25, 0.25)
    0.0
    >>> bool(wyner_ziv_binary(0.25, 0.1) > conditional_rd_binary(0.25, 0.1))
    True
    """
    p = float(_check_prob(p, "p"))
    D = _check_distortion(D)
    pe = min(p, 1.0 - p)
    if pe <= 0.0:
        return _out(np.zeros_like(D))
    dc = wyner_ziv_binary_critical_distortion(pe)
    Dl = np.clip(D, 0.0, dc)
    curve = _g_binary(pe, Dl)
    gdc = float(_g_binary(pe, dc))
    if dc < pe:
        line = gdc * (pe - np.clip(D, dc, pe)) / (pe - dc)
    else:
        line = np.zeros_like(D)
    out = np.where(D <= dc, curve, np.where(D < pe, line, 0.0))
    return _out(np.maximum(out, 0.0))


# ------------------------------------------------------------------ Gaussian closed forms
def _check_rho(rho) -> np.ndarray:
    r = np.asarray(rho, dtype=float)
    if np.any(np.isnan(r)) or np.any(np.abs(r) > 1):
        raise ValueError(f"rho must be a correlation coefficient in [-1, 1] (got {rho!r})")
    return r


def wyner_ziv_gaussian(var_x, rho, D):
    r"""Wyner–Ziv function of a jointly Gaussian pair under MSE (Wyner 1978).

    :math:`R^{WZ}_{X|Y}(D) = \max(0, \tfrac12\log_2(\sigma_X^2(1-\rho^2)/D))`, equal to the
    conditional RD function :math:`R_{X|Y}(D)` (``toy_sources.gaussian.conditional_rd_gaussian``
    with the conditional variance): no rate loss in the quadratic Gaussian case.

    Parameters
    ----------
    var_x : float
        Variance of the source X.
    rho : float
        Correlation coefficient between X and the side information Y.
    D : float or array_like
        Mean squared error target(s).

    Examples
    --------
    >>> wyner_ziv_gaussian(1.0, 0.0, 0.25)
    1.0
    >>> wyner_ziv_gaussian(4.0, 0.6, 4.0 * 0.64 / 4)    # σ²(1-ρ²)/D = 4 → 1 bit
    1.0
    >>> wyner_ziv_gaussian(1.0, 0.9, 0.5)
    0.0
    """
    var_x = float(var_x)
    if not np.isfinite(var_x) or var_x <= 0:
        raise ValueError(f"var_x must be a positive variance (got {var_x!r})")
    rho = _check_rho(rho)
    D = _check_distortion(D)
    cond = var_x * (1.0 - rho**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # cond / D with 0/0 := 1 (|rho| = 1 and D = 0: rate 0) and c/0 := inf
        ratio = np.where(D > 0, cond / np.where(D > 0, D, 1.0), np.where(cond > 0, np.inf, 1.0))
        r = 0.5 * np.log2(ratio)
    return _out(np.maximum(r, 0.0))


# ----------------------------------------------------------------- Wyner common information
def wyner_common_information_dsbs(p):
    r"""Wyner's common information of the DSBS(p) (Wyner 1975, Eq. (1.19)).

    :math:`C(X;Y) = 1 + h(p) - 2h(a_1)`, :math:`a_1 = (1-\sqrt{1-2p})/2`, for
    :math:`p \le 1/2` (``p > 1/2`` is reduced to ``1 - p``). Always :math:`\ge I(X;Y) = 1-h(p)`.

    Examples
    --------
    >>> wyner_common_information_dsbs(0.0)      # X = Y: one common bit
    1.0
    >>> wyner_common_information_dsbs(0.5)      # independent
    0.0
    >>> bool(wyner_common_information_dsbs(0.1) > 1 - binary_entropy(0.1))
    True
    """
    p = _check_prob(p, "p")
    pe = np.minimum(p, 1.0 - p)
    a1 = (1.0 - np.sqrt(np.maximum(1.0 - 2.0 * pe, 0.0))) / 2.0
    return _out(np.maximum(1.0 + binary_entropy(pe) - 2.0 * binary_entropy(a1), 0.0))


def wyner_common_information_gaussian(rho):
    r"""Wyner's common information of a Gaussian pair with correlation :math:`\rho`.

    :math:`C(X;Y) = \tfrac12\log_2\frac{1+|\rho|}{1-|\rho|}` (Xu, Liu & Chen 2011/2016),
    always :math:`\ge I(X;Y) = -\tfrac12\log_2(1-\rho^2)`; infinite at :math:`|\rho| = 1`.

    >>> wyner_common_information_gaussian(0.0)
    0.0
    >>> wyner_common_information_gaussian(0.6)    # (1.6/0.4) = 4 → 1 bit
    1.0
    """
    r = np.abs(_check_rho(rho))
    with np.errstate(divide="ignore"):
        out = 0.5 * np.log2((1.0 + r) / np.where(r < 1, 1.0 - r, 0.0))
    return _out(out)


# -------------------------------------------------------------- Berger–Tung (quadratic Gaussian)
def _log2_plus(x):
    with np.errstate(divide="ignore"):
        return np.maximum(0.5 * np.log2(x), 0.0)


@dataclass(frozen=True)
class BergerTungGaussianRegion:
    r"""Rate region of the quadratic Gaussian two-terminal source coding problem.

    Wagner, Tavildar & Viswanath (2008), Theorem 1, for unit-variance sources with
    correlation ``rho`` and MSE targets ``D1``, ``D2`` (the Berger–Tung inner bound is tight):

    .. math::
        R_1 \ge \tfrac12\log^+\frac{1-\rho^2+\rho^2 2^{-2R_2}}{D_1},\quad
        R_2 \ge \tfrac12\log^+\frac{1-\rho^2+\rho^2 2^{-2R_1}}{D_2},\quad
        R_1+R_2 \ge \tfrac12\log^+\frac{(1-\rho^2)\,\beta(D_1D_2)}{2D_1D_2},

    :math:`\beta(D) = 1+\sqrt{1+4\rho^2D/(1-\rho^2)^2}`. All rates in bits per sample.
    """

    rho: float
    D1: float
    D2: float

    # -- the three bounds
    def r1_bound(self, R2):
        """Smallest R1 allowed by the first inequality, given R2."""
        r2 = np.asarray(R2, dtype=float)
        return _out(_log2_plus((1 - self.rho**2 + self.rho**2 * 2.0 ** (-2 * r2)) / self.D1))

    def r2_bound(self, R1):
        """Smallest R2 allowed by the second inequality, given R1."""
        r1 = np.asarray(R1, dtype=float)
        return _out(_log2_plus((1 - self.rho**2 + self.rho**2 * 2.0 ** (-2 * r1)) / self.D2))

    @property
    def sum_rate(self) -> float:
        """The sum-rate bound ½log⁺[(1−ρ²)β(D1D2)/(2D1D2)]."""
        r2 = self.rho**2
        dd = self.D1 * self.D2
        if r2 >= 1.0:
            return float(_log2_plus(1.0 / min(self.D1, self.D2)))
        beta = 1.0 + np.sqrt(1.0 + 4.0 * r2 * dd / (1.0 - r2) ** 2)
        return float(_log2_plus((1.0 - r2) * beta / (2.0 * dd)))

    @property
    def r1_min(self) -> float:
        """R1 when Y is known at the decoder (R2 → ∞): the Wyner–Ziv rate ½log⁺((1−ρ²)/D1)."""
        return float(_log2_plus((1 - self.rho**2) / self.D1))

    @property
    def r2_min(self) -> float:
        """R2 when X is known at the decoder (R1 → ∞): ½log⁺((1−ρ²)/D2)."""
        return float(_log2_plus((1 - self.rho**2) / self.D2))

    def min_r2(self, R1):
        """Smallest R2 such that ``(R1, R2)`` is in the region (``inf`` if none)."""
        r1 = np.asarray(R1, dtype=float)
        slack = self.D1 * 2.0 ** (2 * r1) - (1 - self.rho**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.rho == 0:
                from1 = np.where(slack >= 0, 0.0, np.inf)
            else:
                from1 = np.where(
                    slack > 0, np.maximum(-0.5 * np.log2(np.where(slack > 0, slack, 1.0) / self.rho**2), 0.0),
                    np.inf,
                )
        # R1 >= f1(R2) with f1 clipped at 0 is void when (1 - ρ² + ρ² 2^{-2R2}) / D1 <= 1
        from1 = np.where(self.D1 >= 1.0, 0.0, from1)
        out = np.maximum.reduce([from1, np.asarray(self.r2_bound(r1)), self.sum_rate - r1, np.zeros_like(r1)])
        return _out(out)

    def contains(self, R1, R2, tol: float = 1e-9):
        """Whether ``(R1, R2)`` is achievable (vectorised)."""
        r1 = np.asarray(R1, dtype=float)
        r2 = np.asarray(R2, dtype=float)
        if np.any(np.isnan(r1)) or np.any(np.isnan(r2)):
            raise ValueError("contains: rates R1, R2 must not be NaN")
        ok = (
            (r1 >= -tol)
            & (r2 >= -tol)
            & (r1 >= np.asarray(self.r1_bound(np.maximum(r2, 0))) - tol)
            & (r2 >= np.asarray(self.r2_bound(np.maximum(r1, 0))) - tol)
            & (r1 + r2 >= self.sum_rate - tol)
        )
        return bool(ok) if ok.ndim == 0 else ok

    def _excess(self, r1: float) -> float:
        """How far the other bounds on R2 lie above the sum-rate line at ``r1`` (convex)."""
        m = float(self.min_r2(r1))
        return m - (self.sum_rate - r1) if np.isfinite(m) else np.inf

    @property
    def corner_points(self) -> tuple:
        """The two ends ``(R1, R2)`` of the dominant face (where the sum-rate bound is
        active), first the one with the smaller R1. If the sum-rate bound is never active
        both entries are the point of the boundary with the smallest sum ``R1 + R2``."""
        s = self.sum_rate
        lo = self.r1_min
        hi = max(s, lo) + 1.0
        eps = 1e-13
        # the active set {excess <= 0} is an interval since the region is convex
        res = minimize_scalar(lambda r: min(self._excess(r), 1e6), bounds=(lo, hi),
                              method="bounded", options={"xatol": 1e-12})
        rstar = float(res.x)
        if self._excess(rstar) > 1e-9:
            pt = (rstar, float(self.min_r2(rstar)))
            return (pt, pt)

        def bisect(a, b, inside_at_b):
            # a: outside (excess > 0), b: inside; or reversed
            for _ in range(200):
                mid = 0.5 * (a + b)
                if (self._excess(mid) <= eps) == inside_at_b:
                    b = mid
                else:
                    a = mid
            return b

        r1a = lo if self._excess(lo) <= eps else bisect(lo, rstar, True)
        r1b = bisect(hi, rstar, True)
        return ((r1a, s - r1a), (r1b, s - r1b))

    @property
    def min_sum_rate(self) -> float:
        """The smallest ``R1 + R2`` in the region: the sum-rate bound when it is active,
        larger when another bound dominates (e.g. ``D2`` so loose that ``R2 = 0``)."""
        (a, b), _ = self.corner_points
        return float(a + b)

    def boundary(self, n: int = 200, r_max: float | None = None):
        """Points ``(R1, R2)`` on the lower-left boundary of the region, for plotting.

        ``R1`` runs from ``r1_min`` to ``r_max`` (default: the larger corner R1 + 1 bit).
        Returns two arrays of length ``n``. The boundary starts with a vertical ray at
        ``R1 = r1_min`` (R2 → ∞); its first point is capped at the largest finite R2 + 1.
        """
        if int(n) < 2:
            raise ValueError(f"boundary: n must be >= 2, got {n!r}")
        (a1, _), (b1, _) = self.corner_points
        if r_max is None:
            r_max = b1 + 1.0
        lo = self.r1_min
        # dense near r1_min where the first bound bends sharply
        t = np.linspace(0.0, 1.0, int(n))
        r1 = lo + (r_max - lo) * t**2
        r2 = np.asarray(self.min_r2(r1), dtype=float)
        r2 = np.where(np.isfinite(r2), r2, np.nan)
        # the vertical ray at r1_min: cap it for plotting
        if not np.isfinite(r2[0]) or np.isnan(r2[0]):
            r2[0] = np.nanmax(r2) + 1.0 if np.any(np.isfinite(r2)) else 1.0
        return r1, r2


def berger_tung_gaussian(rho, D1, D2) -> BergerTungGaussianRegion:
    r"""The quadratic Gaussian two-terminal rate region (Berger–Tung, tight by
    Wagner–Tavildar–Viswanath 2008) for unit-variance sources.

    Parameters
    ----------
    rho : float
        Correlation coefficient, ``|rho| < 1``.
    D1, D2 : float
        MSE targets for X and Y, in ``(0, inf)``.

    Examples
    --------
    >>> bt = berger_tung_gaussian(0.0, 0.25, 0.25)     # independent: 1 + 1 bit
    >>> bt.sum_rate
    2.0
    >>> bt.contains(1.0, 1.0), bt.contains(0.9, 1.2)
    (True, False)
    """
    rho = float(_check_rho(rho))
    if abs(rho) >= 1.0:
        raise ValueError(f"berger_tung_gaussian needs |rho| < 1 (got {rho!r})")
    for name, d in (("D1", D1), ("D2", D2)):
        d = float(d)
        if not np.isfinite(d) or d <= 0:
            raise ValueError(f"{name} must be a positive MSE target (got {d!r})")
    return BergerTungGaussianRegion(rho=rho, D1=float(D1), D2=float(D2))
