"""Density evolution of sum-product BP on the binary symmetric channel (Monte Carlo).

For an LDPC ensemble with edge-perspective degree distributions :math:`\\lambda(x) =
\\sum_i \\lambda_i x^{i-1}` (variables) and :math:`\\rho(x) = \\sum_j \\rho_j x^{j-1}`
(checks), density evolution tracks the distribution of the BP messages of an infinitely
long, cycle-free code under the all-zero codeword (Richardson & Urbanke, *Modern Coding
Theory*, 2008, Sec. 4.6; the BSC channel LLR is :math:`L_0 = \\pm\\log((1-p)/p)`, negative
with probability :math:`p`):

.. math::  L^{(\\ell)}_{c\\to v} = 2\\,\\mathrm{atanh}\\prod_{k=1}^{d_c-1}
   \\tanh\\big(L^{(\\ell)}_{v_k\\to c}/2\\big), \\qquad
   L^{(\\ell+1)}_{v\\to c} = L_0 + \\sum_{k=1}^{d_v-1} L^{(\\ell)}_{c_k\\to v},

with :math:`d_c \\sim \\rho`, :math:`d_v \\sim \\lambda` and every incoming message an
independent draw from the current density.  Here each density is represented by a
population of ``population`` samples ("population dynamics"/sampled density evolution);
the BP *threshold* :math:`p^*` is the largest crossover for which the fraction of
negative messages goes to zero, found by bisection.

Slepian–Wolf coding of the DSBS with syndromes of an LDPC code is exactly channel
decoding on the BSC(p) (the error pattern :math:`z = x\\oplus y` is the "noise"), so a
code of syndrome rate :math:`R = m/n` reaches at best :math:`R / h(p^*)` times the bound
:math:`H(X\\mid Y) = h(p)` (seed paper 003, eq. (2)).

Known value (test): the (3,6)-regular ensemble has BP threshold :math:`p^* \\approx
0.084` on the BSC (Richardson & Urbanke 2001, "The capacity of low-density parity-check
codes under message-passing decoding", Table I: 0.084).

The random draws use a private xorshift generator seeded by ``seed`` (no global state).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toy_sources.codes.ldpc_matrix import resolve_degree_distribution

__all__ = [
    "check_distribution_for_rate",
    "design_rate",
    "bsc_bp_converges",
    "bsc_threshold",
    "stability_bound_lambda2",
]

_CLIP = 40.0
_STRONG = 10.0  # success needs every message above this LLR, not merely positive


def _node_mean(lam: dict[int, float]) -> float:
    """Mean node degree :math:`1/\\sum_i \\lambda_i / i` of an edge-perspective distribution."""
    return 1.0 / sum(f / d for d, f in lam.items())


def design_rate(lam, rho) -> float:
    """Syndrome (Slepian–Wolf) rate :math:`m/n = \\int\\rho / \\int\\lambda`.

    (The channel-code design rate is :math:`1 - m/n`, Richardson & Urbanke eq. 3.19.)

    Examples
    --------
    >>> design_rate({3: 1.0}, {6: 1.0})
    0.5
    """
    lam = resolve_degree_distribution(lam)
    rho = resolve_degree_distribution(rho)
    return float(sum(f / d for d, f in rho.items()) / sum(f / d for d, f in lam.items()))


def check_distribution_for_rate(lam, rate: float) -> dict[int, float]:
    """Concentrated check distribution (two consecutive degrees) giving syndrome rate ``rate``.

    The mean check degree is :math:`\\bar d_c = \\bar d_v / R` (edges counted from both
    sides); the node-perspective fractions of :math:`\\lfloor\\bar d_c\\rfloor` and
    :math:`\\lceil\\bar d_c\\rceil` are chosen to match it exactly — the check degrees a PEG
    graph (or a merged LDPCA level, whose checks differ by a few edges) realises.

    Examples
    --------
    >>> check_distribution_for_rate({3: 1.0}, 0.5)
    {6: 1.0}
    >>> rho = check_distribution_for_rate({3: 1.0}, 0.4)   # mean check degree 7.5
    >>> sorted(rho), round(design_rate({3: 1.0}, rho), 12)
    ([7, 8], 0.4)
    """
    lam = resolve_degree_distribution(lam)
    rate = float(rate)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    dc = _node_mean(lam) / rate
    lo = int(np.floor(dc))
    if lo < 2:
        raise ValueError(f"rate {rate} needs a mean check degree {dc:.2f} < 2")
    frac_hi = dc - lo  # node fraction of degree lo + 1
    if frac_hi < 1e-12:
        return {lo: 1.0}
    w_lo, w_hi = (1 - frac_hi) * lo, frac_hi * (lo + 1)
    return {lo: w_lo / (w_lo + w_hi), lo + 1: w_hi / (w_lo + w_hi)}


def stability_bound_lambda2(rho, p: float) -> float:
    """Largest :math:`\\lambda_2` allowed by the BP stability condition on the BSC(p).

    :math:`\\lambda_2\\,\\rho'(1) < 1 / (2\\sqrt{p(1-p)})` (Richardson, Shokrollahi and
    Urbanke 2001, Theorem 5), with :math:`\\rho'(1) = \\sum_j \\rho_j (j-1)`.

    Examples
    --------
    >>> round(stability_bound_lambda2({6: 1.0}, 0.1), 4)   # 1 / (5 * 0.6)
    0.3333
    """
    rho = resolve_degree_distribution(rho)
    rho1 = sum(f * (d - 1) for d, f in rho.items())
    return float(1.0 / (2.0 * np.sqrt(p * (1 - p))) / rho1)


def _arrays(dist):
    d = resolve_degree_distribution(dist)
    deg = np.array(list(d), dtype=np.int64)
    cdf = np.cumsum([d[k] for k in d])
    cdf[-1] = 1.0
    return deg, cdf


@njit(cache=True)
def _rand(state):  # pragma: no cover - compiled; xorshift64*, returns (u in [0,1), state)
    state ^= state >> np.uint64(12)
    state ^= state << np.uint64(25)
    state ^= state >> np.uint64(27)
    out = state * np.uint64(2685821657736338717)
    return (out >> np.uint64(11)) * (1.0 / 9007199254740992.0), state


@njit(cache=True)
def _pick(cdf, u):  # pragma: no cover - compiled
    k = 0
    while k < cdf.shape[0] - 1 and u >= cdf[k]:
        k += 1
    return k


@njit(cache=True)
def _de_core(p, lam_deg, lam_cdf, rho_deg, rho_cdf, n_pop, max_iter, seed, target):  # pragma: no cover
    state = np.uint64(seed) * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
    if state == 0:
        state = np.uint64(88172645463325252)
    l0 = np.log((1.0 - p) / p)
    v = np.empty(n_pop)
    t = np.empty(n_pop)
    c = np.empty(n_pop)
    for i in range(n_pop):
        u, state = _rand(state)
        v[i] = -l0 if u < p else l0
    qmax = 1.0 - 2e-15  # 2 atanh(qmax) ~ 35 (tanh(20) rounds to 1 in float64)
    pe = 1.0
    for it in range(max_iter):
        for i in range(n_pop):
            t[i] = np.tanh(0.5 * v[i])
        for i in range(n_pop):
            u, state = _rand(state)
            d = rho_deg[_pick(rho_cdf, u)]
            prod = 1.0
            for k in range(d - 1):
                u, state = _rand(state)
                prod *= t[int(u * n_pop)]
            if prod > qmax:
                prod = qmax
            elif prod < -qmax:
                prod = -qmax
            c[i] = np.log((1.0 + prod) / (1.0 - prod))
        neg = 0.0
        weak = 0
        for i in range(n_pop):
            u, state = _rand(state)
            d = lam_deg[_pick(lam_cdf, u)]
            u, state = _rand(state)
            s = -l0 if u < p else l0
            for k in range(d - 1):
                u, state = _rand(state)
                s += c[int(u * n_pop)]
            if s > _CLIP:
                s = _CLIP
            elif s < -_CLIP:
                s = -_CLIP
            v[i] = s
            if s < _STRONG:
                weak += 1
            if s < 0:
                neg += 1.0
            elif s == 0:
                neg += 0.5
        pe = neg / n_pop
        if pe <= target and weak == 0:
            return True, it + 1, pe
    return False, max_iter, pe


def bsc_bp_converges(lam, rho, p: float, *, population: int = 20_000, max_iter: int = 400,
                     seed: int = 0, target: float = 0.0) -> bool:
    """Whether sum-product density evolution on the BSC(p) drives the error fraction to zero.

    Success means the fraction of negative variable-to-check messages in the population
    reaches ``target`` (default 0: none of the ``population`` samples) within
    ``max_iter`` iterations.

    Examples
    --------
    >>> bsc_bp_converges({3: 1.0}, {6: 1.0}, 0.06), bsc_bp_converges({3: 1.0}, {6: 1.0}, 0.10)
    (True, False)
    """
    p = float(p)
    if not 0.0 < p < 0.5:
        raise ValueError(f"crossover p must be in (0, 0.5), got {p}")
    ld, lc = _arrays(lam)
    rd, rc = _arrays(rho)
    if ld.min() < 1 or rd.min() < 2:
        raise ValueError("degrees: variables need degree >= 1 and checks degree >= 2")
    ok, _, _ = _de_core(p, ld, lc, rd, rc, int(population), int(max_iter), int(seed), float(target))
    return bool(ok)


def bsc_threshold(lam, rho=None, *, rate=None, lo: float = 1e-3, hi: float = 0.5,
                  tol: float = 5e-4, population: int = 20_000, max_iter: int = 400,
                  seed: int = 0) -> float:
    """BP threshold :math:`p^*` of an LDPC ensemble on the BSC (bisection on :func:`bsc_bp_converges`).

    Parameters
    ----------
    lam : str or dict
        Edge-perspective variable degree distribution.
    rho : dict, optional
        Edge-perspective check degree distribution; if omitted, the concentrated one of
        :func:`check_distribution_for_rate` for syndrome rate ``rate``.
    rate : float, optional
        Syndrome rate :math:`m/n` (needed when ``rho`` is omitted).
    lo, hi, tol : float
        Bisection bracket and final width.
    population, max_iter, seed
        See :func:`bsc_bp_converges`.  Larger populations resolve the threshold more
        finely (about ±0.001 at 20 000 for the (3,6) ensemble).

    Returns
    -------
    float
        The midpoint of the final bracket.
    """
    if rho is None:
        if rate is None:
            raise ValueError("give either rho or rate")
        rho = check_distribution_for_rate(lam, rate)
    ld, lc = _arrays(lam)
    rd, rc = _arrays(rho)
    lo, hi = float(lo), min(float(hi), 0.4999)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        ok, _, _ = _de_core(mid, ld, lc, rd, rc, int(population), int(max_iter), int(seed), 0.0)
        if ok:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
