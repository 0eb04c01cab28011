r"""The operational rate–distortion curve of one-shot scalar Wyner–Ziv codes, by an
entropy-constrained Lloyd iteration.

What is optimised
-----------------
``X ~ N(0, σ²)``, side information ``Y`` with correlation ``ρ`` at the decoder only. A
*one-shot deterministic scalar* WZ code is

* an index map ``a: x ↦ k ∈ {0, …, K-1}`` (the encoder never sees ``y``; ``a`` may use
  one index on many disjoint intervals — binning);
* a reconstruction ``x̂(k, y)``;
* an entropy code of the index, with one of two rates:

  - ``rate="marginal"``: ``R = H(M)``, the index range-coded with its marginal ``p(k)`` —
    what a real encoder without ``y`` achieves (the learned compressor's rate);
  - ``rate="sw"``: ``R = H(M | Y)``, an *ideal* Slepian–Wolf rate (needs long SW codes
    over many samples; a lower, oracle curve).

For a Lagrange multiplier ``λ`` the iteration (Lloyd 1982; entropy-constrained form of
Chou, Lookabaugh & Gray 1989; the WZ decoder of Rebollo-Monedero, Zhang & Girod 2003)
alternates

.. math::
   :label: wzl-dec

   \hat x(k, y) = E[X \mid a(X) = k,\, Y = y]
   = \frac{\int_{a(x)=k} x\, p(x)\, p(y|x)\, dx}{\int_{a(x)=k} p(x)\, p(y|x)\, dx}

.. math::
   :label: wzl-enc

   a(x) = \arg\min_k\; \lambda\, E\big[(x - \hat x(k, Y))^2 \,\big|\, X = x\big] + \ell(k, x),
   \qquad \ell = -\log_2 p(k) \;\text{or}\; -E[\log_2 p(k \mid Y) \mid X = x]

with ``p(k)``, ``p(k|y)`` those of the current ``a``. Each step does not increase
``J = R + λ D``, so ``J`` decreases monotonically to a local optimum; many initial maps
(periodic binnings ``floor(x/Δ + φ) mod K`` over ``K, Δ``, and plain uniform quantisers)
are run and the **lower convex hull** of all ``(R, D)`` points is kept (time-sharing
between two codes is itself a one-shot code, at the averaged rate and distortion).

Discretisation (what "exact" means here)
----------------------------------------
``x`` is cut into ``n_x`` cells on ``[-x_max σ, x_max σ]`` (outer cells run to ``±∞``),
each represented by its conditional mean, with its probability and within-cell variance
(added to ``D``); ``y`` is cut into bins of width ``s/y_per_s`` (``s = σ sqrt(1-ρ²)``), and
the decoder sees the bin of ``y``, ``P(bin j | x_i)`` from the normal cdf. A decoder that
sees only the bin of ``y`` is a valid decoder, so up to the (small) within-cell
approximation of ``P(bin|x)`` every point is *achievable*: the curve is an upper bound on
the true one-shot optimum, tight as far as the local search is.

This is a search, not a converse: it finds the best one-shot codes from many starts but
cannot prove that no better one exists. It is the reference the learned compressor
(:mod:`toy_sources.codes.learned_wz`) is measured against.

Examples
--------
At ``ρ = 0`` a one-shot WZ code is an entropy-coded scalar quantiser; the sign quantiser
(1 bit) has ``D = 1 - 2/π``:

>>> g = WZGrid(rho=0.0, n_x=801)
>>> res = lloyd_wz(g, (np.asarray(g.x) >= 0).astype(int), lam=10.0)
>>> round(res["rate"], 4), round(res["mse"], 3), round(1 - 2 / np.pi, 3)
(1.0, 0.363, 0.363)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

from .wyner_ziv import GaussianSideInfoSource, gap_db

__all__ = [
    "WZGrid",
    "lloyd_wz",
    "periodic_inits",
    "lower_convex_hull",
    "hull_distortion",
    "one_shot_curve",
    "one_shot_gap_table",
    "merge_into_sw",
    "uniform_threshold_ecsq",
]

RATES = ("marginal", "sw")
_TINY = 1e-300


def _check_rate(rate):
    if rate not in RATES:
        raise ValueError(f"unknown rate {rate!r} (expected one of: {', '.join(RATES)})")


class WZGrid:
    r"""The Gaussian pair on grids: cells of ``x``, bins of ``y``, ``P(y bin | x)``.

    Parameters
    ----------
    var_x : float
        ``σ²`` (all distortions are returned in units of ``x²``).
    rho : float
        Correlation of ``X`` and ``Y``, in ``(-1, 1)``.
    n_x : int
        Number of ``x`` cells on ``[-x_max σ, x_max σ]``.
    x_max : float
        Half-width of the ``x`` grid in units of ``σ``.
    y_per_s : float
        ``y`` bins per conditional standard deviation ``s`` (finer: better decoder).
    y_max : float
        Half-width of the ``y`` grid in units of ``σ``.

    Attributes (standardised units, ``σ = 1``)
    ------------------------------------------
    x, px, vx : (n_x,) cell means, probabilities, within-cell variances;
    y, py : (n_y,) bin centres and probabilities; P : (n_x, n_y) ``P(bin j | x_i)``;
    W : (n_x, n_y) joint weights ``px_i P_ij``; CW, CWx : cumulative sums over ``i`` of
    ``W`` and ``x W`` (interval sums in O(1) per run).
    """

    def __init__(self, var_x=1.0, rho=0.95, n_x=1001, x_max=5.0, y_per_s=12.0, y_max=5.0):
        src = GaussianSideInfoSource(var_x, rho)  # validates var_x, rho
        if int(n_x) != n_x or n_x < 3:
            raise ValueError(f"n_x must be an integer >= 3, got {n_x}")
        for name, v in (("x_max", x_max), ("y_per_s", y_per_s), ("y_max", y_max)):
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite positive number, got {v}")
        self.var_x, self.rho, self.source = float(var_x), float(rho), src
        self.s = float(np.sqrt(1.0 - rho**2))  # conditional std in units of σ
        n_x = int(n_x)
        e = np.linspace(-x_max, x_max, n_x + 1)
        e[0], e[-1] = -np.inf, np.inf
        phi = lambda t: np.exp(-0.5 * np.where(np.isfinite(t), t, 0.0) ** 2) / np.sqrt(2 * np.pi) * np.isfinite(t)
        m0 = ndtr(e[1:]) - ndtr(e[:-1])  # cell probability
        m1 = phi(e[:-1]) - phi(e[1:])  # ∫ x φ over the cell
        et = lambda t: np.where(np.isfinite(t), t, 0.0)
        m2 = m0 + et(e[:-1]) * phi(e[:-1]) - et(e[1:]) * phi(e[1:])  # ∫ x² φ
        self.px = m0
        self.x = m1 / m0
        self.vx = np.maximum(m2 / m0 - self.x**2, 0.0)
        h = self.s / float(y_per_s)
        n_half = int(np.ceil(y_max / h))
        ye = h * np.arange(-n_half, n_half + 1, dtype=float)
        ye[0], ye[-1] = -np.inf, np.inf
        self.y = np.r_[ye[1] - h / 2, 0.5 * (ye[1:-2] + ye[2:-1]), ye[-2] + h / 2]
        z = (ye[None, :] - rho * self.x[:, None]) / self.s  # (n_x, n_y+1)
        self.P = np.diff(ndtr(z), axis=1)  # (n_x, n_y)
        self.P /= self.P.sum(1, keepdims=True)
        self.W = self.px[:, None] * self.P  # (n_x, n_y)
        self.py = self.W.sum(0)
        zero = np.zeros((1, self.W.shape[1]))
        self.CW = np.vstack([zero, np.cumsum(self.W, 0)])
        self.CWx = np.vstack([zero, np.cumsum(self.x[:, None] * self.W, 0)])

    @property
    def n_x(self):
        return self.x.size

    @property
    def n_y(self):
        return self.y.size

    def __repr__(self):
        return f"WZGrid(var_x={self.var_x}, rho={self.rho}, n_x={self.n_x}, n_y={self.n_y})"


def _compact(a):
    """Relabel indices to 0..K-1 in order of first use (drops empty indices)."""
    _, inv = np.unique(a, return_inverse=True)
    return inv.astype(np.int64)


def _decoder(grid, a, K):
    """Eq. (wzl-dec) on the grid: den (K, n_y) = P(k, y bin), x̂ (K, n_y)."""
    cut = np.flatnonzero(np.diff(a)) + 1
    starts = np.r_[0, cut]
    ends = np.r_[cut, a.size]
    k = a[starts]
    den = np.zeros((K, grid.n_y))
    num = np.zeros((K, grid.n_y))
    np.add.at(den, k, grid.CW[ends] - grid.CW[starts])
    np.add.at(num, k, grid.CWx[ends] - grid.CWx[starts])
    ok = den > _TINY
    xh = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    if not ok.all():
        # an index with (numerically) no mass at this y: nearest point of its support to ρy
        lo = np.array([grid.x[a == j].min() for j in range(K)])
        hi = np.array([grid.x[a == j].max() for j in range(K)])
        fb = np.clip(grid.rho * grid.y[None, :], lo[:, None], hi[:, None])
        xh = np.where(ok, xh, fb)
    return den, xh


def _evaluate(grid, a, K, lam, rate):
    """Decoder, per-cell costs (n_x, K) and the code's H(M), H(M|Y), D (σ = 1 units)."""
    den, xh = _decoder(grid, a, K)
    pk = den.sum(1)
    G = grid.P @ np.hstack([xh.T, (xh**2).T])  # (n_x, 2K): E[x̂(k,Y)|x], E[x̂²(k,Y)|x]
    sq = grid.x[:, None] ** 2 - 2 * grid.x[:, None] * G[:, :K] + G[:, K:]  # E[(x - x̂(k,Y))² | x]
    sq = np.maximum(sq, 0.0)
    q = den / np.maximum(grid.py[None, :], _TINY)  # p(k | y bin)
    with np.errstate(divide="ignore"):
        logq = np.where(den > 0, np.log2(np.maximum(q, _TINY)), -1e3)
    if rate == "marginal":
        ell = -np.log2(pk)[None, :]  # (1, K)
    else:
        ell = -(grid.P @ logq.T)  # (n_x, K): -E[log2 p(k|Y) | x]
    cost = lam * sq + ell
    h_m = float(-(pk * np.log2(pk)).sum())
    h_my = float(-(den[den > 0] * logq[den > 0]).sum())
    idx = np.arange(a.size)
    mse = float(grid.px @ (grid.vx + sq[idx, a]))
    return cost, h_m, h_my, mse, pk


def lloyd_wz(grid: WZGrid, assign, lam, rate="marginal", max_iter=300):
    r"""Entropy-constrained Lloyd iteration for one WZ index map (Eqs. wzl-dec, wzl-enc).

    Parameters
    ----------
    grid : WZGrid
    assign : array_like of int, shape (n_x,)
        Initial index of every ``x`` cell.
    lam : float
        ``λ`` in ``J = R + λ D`` (``R`` bits, ``D`` in units of ``x²``).
    rate : {"marginal", "sw"}
        ``H(M)`` (real, index coded with its marginal) or ``H(M|Y)`` (ideal SW).
    max_iter : int

    Returns
    -------
    dict
        ``rate`` (the chosen one), ``h_m`` = ``H(M)``, ``h_m_given_y`` = ``H(M|Y)``,
        ``mse`` (units of ``x²``), ``J``, ``assign`` (n_x,), ``pk``, ``n_indices`` (used),
        ``n_iter``, ``converged``, ``lam``, ``history`` (per iteration: ``h_m``,
        ``h_m_given_y``, ``mse`` and ``J`` of the map before its encoder update; the first
        entry is the initial map with its optimal decoder).
    """
    _check_rate(rate)
    a = np.asarray(assign)
    if a.shape != (grid.n_x,) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"assign must be an integer array of shape ({grid.n_x},), got {a.dtype} {a.shape}")
    if not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"lam must be a finite positive number, got {lam}")
    lam_std = float(lam) * grid.var_x  # J = R + λ σ² D_std
    a = _compact(a)
    converged = False
    it = 0
    history = []
    for it in range(1, int(max_iter) + 1):
        K = int(a.max()) + 1
        cost, h_m, h_my, mse, pk = _evaluate(grid, a, K, lam_std, rate)
        history.append({"h_m": h_m, "h_m_given_y": h_my, "mse": mse * grid.var_x,
                        "J": (h_m if rate == "marginal" else h_my) + lam_std * mse})
        new = np.argmin(cost, axis=1)
        # keep the current index on ties (monotone J, no cycling)
        keep = cost[np.arange(a.size), a] <= cost[np.arange(a.size), new] + 1e-12
        new = np.where(keep, a, new)
        if np.array_equal(new, a):
            converged = True
            break
        a = _compact(new)
    K = int(a.max()) + 1
    _, h_m, h_my, mse, pk = _evaluate(grid, a, K, lam_std, rate)
    r = h_m if rate == "marginal" else h_my
    return {
        "rate": r, "h_m": h_m, "h_m_given_y": h_my, "mse": mse * grid.var_x, "J": r + lam * mse * grid.var_x,
        "assign": a, "pk": pk, "n_indices": K, "n_iter": it, "converged": converged, "lam": float(lam),
        "history": history,
    }


def periodic_inits(grid: WZGrid, n_cosets=(1, 2, 3, 4, 6, 8, 12, 16), steps_in_s=(0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
                   phases=(0.0, 0.5)):
    """Initial index maps: periodic binnings ``floor(x/Δ + φ) mod K`` with ``Δ`` in units of ``s``.

    ``K = 1`` is read as "no binning": a uniform quantiser of step ``Δ`` (every cell its
    own index). A sign quantiser (``x >= 0``) is always included.

    Returns
    -------
    list of (label, assign)
    """
    x = grid.x / 1.0  # standardised
    out = [("sign", (x >= 0).astype(np.int64))]
    for K in n_cosets:
        for d in steps_in_s:
            step = float(d) * grid.s
            for ph in phases:
                q = np.floor(x / step + ph).astype(np.int64)
                a = q - q.min() if K == 1 else np.mod(q, int(K))
                out.append((f"K={K},step={d}s,phase={ph}", a))
                if K >= 3 and ph == 0.0:  # sparse binning: index 1 on every K-th cell (rate h(1/K) < 1)
                    out.append((f"sparse K={K},step={d}s", (np.mod(q, int(K)) == 0).astype(np.int64)))
    return out


def lower_convex_hull(points):
    """Lower convex hull of ``(rate, mse)`` points, sorted by rate; only the decreasing part.

    >>> lower_convex_hull([(0, 1.0), (1, 0.6), (1, 0.4), (2, 0.2), (3, 0.19)])
    [(0.0, 1.0), (1.0, 0.4), (2.0, 0.2), (3.0, 0.19)]
    """
    pts = sorted({(max(round(float(r), 12), 0.0) + 0.0, float(d)) for r, d in points})  # -0.0 and 1e-17 are rate 0
    hull = []
    for p in pts:
        while hull and hull[-1][0] == p[0]:
            if hull[-1][1] <= p[1]:
                break
            hull.pop()
        else:
            while len(hull) >= 2:
                (r1, d1), (r2, d2) = hull[-2], hull[-1]
                if (d2 - d1) * (p[0] - r1) >= (p[1] - d1) * (r2 - r1):  # hull[-1] on or above the chord
                    hull.pop()
                else:
                    break
            if not hull or p[1] < hull[-1][1]:
                hull.append(p)
    return hull


def hull_distortion(hull, rate):
    """``D`` of the hull at ``rate`` (time-sharing: linear between hull points); NaN outside."""
    r = np.array([p[0] for p in hull])
    d = np.array([p[1] for p in hull])
    rate = float(rate)
    if rate < r[0] - 1e-12 or rate > r[-1] + 1e-12:
        return float("nan")
    return float(np.interp(rate, r, d))


def _lams(grid, r_lo, r_hi, n):
    src = grid.source
    d_hi = float(src.d_no_si(r_lo))  # slope of D ∝ 2^{-2R}: λ = 1/(2 ln2 D)
    d_lo = float(src.d_wz(r_hi))
    return np.geomspace(1 / (2 * np.log(2) * d_hi), 1 / (2 * np.log(2) * d_lo), int(n))


def one_shot_curve(var_x=1.0, rho=0.95, rate="marginal", lams=None, n_lams=16, rate_range=(0.2, 2.6),
                   inits=None, grid=None, max_iter=300, refine=1, init_kw=None, **grid_kw):
    """The one-shot operational D(R) curve: Lloyd from every init at every λ, lower hull.

    ``refine`` rounds of continuation restart every hull code at every ``λ``. ``inits``
    (list of (label, map)) defaults to :func:`periodic_inits` with ``init_kw``; ``grid_kw``
    build the :class:`WZGrid` unless ``grid`` is given; ``lams`` default to ``n_lams``
    values spread over the slopes ``λ = 1/(2 ln2 D)`` of ``rate_range``.

    Returns
    -------
    dict
        ``hull`` (list of (rate, mse)), ``points`` (every run: rate, mse, lam, init,
        n_indices, h_m, h_m_given_y), ``rho``, ``var_x``, ``rate``, ``grid`` (repr).
    """
    _check_rate(rate)
    grid = grid if grid is not None else WZGrid(var_x, rho, **grid_kw)
    lams = _lams(grid, *rate_range, n_lams) if lams is None else np.asarray(lams, float)
    inits = periodic_inits(grid, **(init_kw or {})) if inits is None else inits
    points, maps = [], []

    def run(a0, lam, label):
        res = lloyd_wz(grid, a0, float(lam), rate, max_iter=max_iter)
        points.append({"rate": res["rate"], "mse": res["mse"], "lam": float(lam), "init": label,
                       "n_indices": res["n_indices"], "h_m": res["h_m"], "h_m_given_y": res["h_m_given_y"]})
        maps.append(res["assign"])

    for lam in lams:
        for label, a0 in inits:
            run(a0, lam, label)
    # continuation: every code on the hull restarts at every λ (walks local optima along the curve)
    for _ in range(int(refine)):
        hull = set(lower_convex_hull([(p["rate"], p["mse"]) for p in points]))
        seeds = {}
        for p, a in zip(points, maps):
            if (p["rate"], p["mse"]) in hull and p["rate"] > 0:
                seeds[(p["rate"], p["mse"])] = (a, p["init"])
        for a0, label in seeds.values():
            for lam in lams:
                run(a0, lam, "refined " + label)
    hull = lower_convex_hull([(p["rate"], p["mse"]) for p in points])
    return {"hull": hull, "points": points, "rho": grid.rho, "var_x": grid.var_x, "rate": rate, "grid": repr(grid)}


def merge_into_sw(marginal_curve, sw_curve):
    """Add every marginal-designed code, at its rate ``H(M|Y)``, to the ideal-SW hull.

    A code designed for ``H(M)`` is also a code with an ideal-SW rate ``H(M|Y) <= H(M)``,
    so the SW hull is taken over both searches; then ``D_sw(R) <= D_marginal(R)`` holds
    by construction (as it does for the true optima). Returns the updated ``sw_curve``.
    """
    pts = [(p["rate"], p["mse"]) for p in sw_curve["points"]]
    pts += [(p["h_m_given_y"], p["mse"]) for p in marginal_curve["points"]]
    return {**sw_curve, "hull": lower_convex_hull(pts)}


def one_shot_gap_table(rhos=(0.5, 0.8, 0.9, 0.95, 0.99), rates=(0.5, 1.0, 1.5, 2.0), var_x=1.0, **kw):
    """Gap (dB) of the one-shot optimum to ``D_WZ`` at each ``(ρ, R)``, both rate kinds.

    ``kw`` go to :func:`one_shot_curve`; the SW hull includes the marginal-designed codes
    (:func:`merge_into_sw`).

    Returns a list of rows ``{rho, rate, d_wz, d_one_shot_marginal, gap_marginal_db,
    d_one_shot_sw, gap_sw_db}``.
    """
    rows = []
    for rho in rhos:
        src = GaussianSideInfoSource(var_x, rho)
        curves = {k: one_shot_curve(var_x, rho, k, **kw) for k in RATES}
        curves["sw"] = merge_into_sw(curves["marginal"], curves["sw"])
        for R in rates:
            dwz = src.d_wz(R)
            row = {"rho": float(rho), "rate": float(R), "d_wz": dwz}
            for k in RATES:
                d = hull_distortion(curves[k]["hull"], R)
                row[f"d_one_shot_{k}"] = d
                row[f"gap_{k}_db"] = gap_db(d, dwz) if np.isfinite(d) else float("nan")
            rows.append(row)
    return rows


def _utq_performance(step, zero_half, var_x=1.0):
    """``(H, D)`` of the symmetric uniform-threshold quantiser of a ``N(0, var_x)`` source.

    Thresholds at ``±(zero_half + k step)``, ``k = 0, 1, …`` (in units of ``σ``), centroid
    reconstruction; ``zero_half = 0`` is the mid-rise quantiser (a threshold at 0).
    """
    k = np.arange(0, int(np.ceil(12.0 / step)) + 2)
    pos = zero_half + k * step
    pos = pos[pos < 40.0]
    edges = np.unique(np.concatenate([[-np.inf], -pos, pos, [np.inf]]))  # zero_half = 0: one at 0
    a, b = edges[:-1], edges[1:]
    P = ndtr(b) - ndtr(a)

    def pdf(t):  # standard normal density, 0 at ±inf
        return np.where(np.isfinite(t), np.exp(-0.5 * np.minimum(t * t, 1e4)) / np.sqrt(2 * np.pi), 0.0)

    ta = np.where(np.isfinite(a), a, 0.0)
    tb = np.where(np.isfinite(b), b, 0.0)
    m1 = pdf(a) - pdf(b)                      # ∫ x φ(x) dx over the cell
    m2 = P + ta * pdf(a) - tb * pdf(b)        # ∫ x² φ(x) dx over the cell
    ok = P > 1e-15
    D = float(np.sum((m2 - m1 * m1 / np.where(ok, P, 1.0))[ok]))
    H = float(-np.sum((P * np.log2(np.where(ok, P, 1.0)))[ok]))
    return H, D * var_x


def uniform_threshold_ecsq(rate, var_x=1.0, n_zero=41):
    r"""Distortion of the best entropy-coded uniform-threshold scalar quantiser at ``H = rate``.

    The reference at ``ρ = 0``, where a one-shot Wyner–Ziv code is an entropy-coded
    scalar quantiser (ECSQ) of ``X ~ N(0, σ²)``: symmetric thresholds ``±(z + kΔ)``
    (zero cell of half-width ``z``, then cells of width ``Δ``), centroid reconstruction,
    the index coded at its entropy. For every ``z/Δ`` in ``[0, 1]`` (mid-rise, mid-tread,
    dead zone) the step ``Δ`` that gives ``H = rate`` is solved for, and the lowest ``D``
    kept. Uniform-threshold quantisers are within a few hundredths of a dB of the optimal
    ECSQ of a Gaussian (Farvardin & Modestino 1984), and as ``rate → ∞`` the gap to
    ``σ² 2^{-2R}`` tends to ``10 log10(πe/6) = 1.53`` dB (Gish & Pierce 1968;
    :func:`toy_sources.codes.wyner_ziv.scalar_quantizer_gap_db`): no scalar
    code, however designed, closes it. Computed in closed form (normal cdf and pdf), so it
    is an independent check of the Lloyd search (:func:`one_shot_curve` at ``ρ = 0``).

    Returns
    -------
    dict
        ``rate, mse, step, zero_half`` (in units of ``σ``) and ``gap_db`` (to ``σ² 2^{-2R}``).

    Examples
    --------
    >>> r = uniform_threshold_ecsq(1.0)
    >>> 1.3 < r["gap_db"] < 1.5
    True
    >>> from toy_sources.codes.wyner_ziv import scalar_quantizer_gap_db
    >>> round(uniform_threshold_ecsq(4.0)["gap_db"], 2), round(scalar_quantizer_gap_db(), 2)
    (1.53, 1.53)
    """
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0.0:
        raise ValueError(f"rate must be a positive number of bits, got {rate}")
    best = None
    for frac in np.linspace(0.0, 1.0, int(n_zero)):
        f = lambda step: _utq_performance(step, frac * step)[0] - rate
        lo, hi = 1e-3, 30.0
        if f(lo) < 0 or f(hi) > 0:
            continue
        step = brentq(f, lo, hi, xtol=1e-10)
        H, D = _utq_performance(step, frac * step, var_x)
        if best is None or D < best["mse"]:
            best = {"rate": H, "mse": D, "step": step, "zero_half": frac * step}
    if best is None:
        raise ValueError(f"no uniform-threshold quantiser found with entropy {rate} bits")
    best["gap_db"] = gap_db(best["mse"], var_x * 2.0 ** (-2.0 * rate))
    return best
