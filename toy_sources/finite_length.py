r"""Slepian–Wolf coding of the DSBS at a finite block length ``n``: what any code can do.

The Slepian–Wolf bound :math:`R \ge H(X\mid Y) = h(p)` (seed paper 003, eq. (2)) is a
statement about :math:`n \to \infty`.  For the doubly symmetric binary source (DSBS,
:math:`Y = X \oplus Z`, :math:`Z_i` i.i.d. Bernoulli(``p``), ``p < 1/2``) the finite-``n``
question has exact answers, because every quantity depends on the error pattern
:math:`z = x \oplus y` only through its weight :math:`W \sim \mathrm{Binomial}(n, p)`.
Write :math:`N_{\le w} = \sum_{j \le w} \binom{n}{j}` (patterns of weight at most ``w``)
and :math:`P_1(w) = p^w (1-p)^{n-w}` (the probability of one pattern of weight ``w``).

**Fixed-length codes** (``M = 2^{nR}`` bins, one decoding attempt; block error
probability ``ε``):

* *Converse* (:func:`fixed_length_converse_rate`, :func:`fixed_length_converse_error`).
  For each ``y`` the decoder can output at most one ``x`` per bin, so it is right on at most
  ``M`` of the :math:`2^n` candidates :math:`x = y \oplus z`; the best it can do is to be
  right on the ``M`` most likely patterns,

  .. math::  1 - \varepsilon \le \sum_{\text{the } M \text{ most likely } z} P(z),

  i.e. all patterns of weight below :math:`w^*` and part of weight :math:`w^*`.  This
  holds for every encoder and decoder, linear or not (it is the converse of fixed-length
  source coding of :math:`Z`; Strassen 1962, Kontoyiannis & Verdú 2014).
* *Achievability* (:func:`random_linear_error`, :func:`random_linear_rate`). The syndrome
  :math:`s = Hx` of a uniformly random :math:`H \in \{0,1\}^{nR \times n}` with a
  maximum-likelihood (minimum-weight) decoder fails only if another pattern at least as
  likely has the same syndrome, which happens for each one with probability
  :math:`2^{-nR}` (random coding union bound, Polyanskiy, Poor & Verdú 2010):

  .. math::  \bar\varepsilon \le \sum_{w} P(W = w)\,
     \min\{1,\ (N_{\le w} - 1)\, 2^{-nR}\},

  so some linear code of that rate has block error at most that.
* *Normal approximation* (:func:`normal_approximation_rate`), the first terms of both:

  .. math::  R^*(n, \varepsilon) \approx h(p) + \sqrt{V/n}\;Q^{-1}(\varepsilon)
     - \frac{\log_2 n}{2n}, \qquad V = p(1-p)\log_2^2\frac{1-p}{p},

  with the varentropy ``V`` of :math:`-\log_2 P(Z_i)`.

**Rate-adaptive codes with feedback** (the LDPCA ladder) have no such penalty.  The
decoder decides when to stop, so for each ``y`` the bit strings after which it stops form
a prefix-free set, one per correctly decoded ``x``; by Kraft's inequality a zero-error
scheme sends on average at least :math:`H(X^n \mid Y^n = y) = n h(p)` bits, and there is
no :math:`\sqrt{V/n}` term: an ML decoder fed random syndrome bits until its candidate is
unique needs about :math:`\log_2 N_{\le W}` bits plus :math:`\log_2(1/\varepsilon)` to
confirm, which averages to :math:`n h(p)` plus a few bits.  So at ``n = 10^4`` a fixed-length code pays
:math:`\sqrt{V/n}\,Q^{-1}(\varepsilon)` for its block error rate, while a rate-adaptive
code pays only what its decoder loses.

All rates are in bits per source bit; block lengths are integers ``n >= 1``.

Examples
--------
At ``n = 10^4``, ``p = 0.1`` (``h(p) = 0.4690``) and block error 1 %, no code does better
than 0.4902 bits, a random linear code with ML decoding needs at most 0.4905, and the
normal approximation says 0.4905:

>>> round(fixed_length_converse_rate(10_000, 0.1, 1e-2), 4)
0.4902
>>> round(random_linear_rate(10_000, 0.1, 1e-2), 4)
0.4905
>>> round(normal_approximation_rate(10_000, 0.1, 1e-2), 4)
0.4905
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp, ndtri
from scipy.stats import binom

from toy_sources.bounds import binary_entropy

__all__ = [
    "varentropy_bits",
    "fixed_length_converse_rate",
    "fixed_length_converse_error",
    "random_linear_error",
    "random_linear_rate",
    "normal_approximation_rate",
]

_LN2 = np.log(2.0)


def _check(n, p, eps=None):
    if isinstance(n, bool) or not float(n).is_integer() or int(n) < 1:
        raise ValueError(f"block length n must be an integer >= 1, got {n!r}")
    p = float(p)
    if not 0.0 < p < 0.5:
        raise ValueError(f"crossover p must be in (0, 0.5), got {p!r}")
    if eps is not None:
        eps = float(eps)
        if not 0.0 < eps < 1.0:
            raise ValueError(f"block error probability eps must be in (0, 1), got {eps!r}")
    return int(n), p, eps


def _check_rate(rate) -> float:
    rate = float(rate)
    if not np.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be a finite non-negative number of bits per source bit, "
                         f"got {rate!r}")
    return rate


def _log_counts(n: int, p: float):
    """Natural logs of ``C(n, w)``, ``N_{<=w}`` and ``P_1(w)`` for ``w = 0..n``."""
    w = np.arange(n + 1)
    log_binom = gammaln(n + 1) - gammaln(w + 1) - gammaln(n - w + 1)
    log_cum = np.logaddexp.accumulate(log_binom)
    log_p1 = w * np.log(p) + (n - w) * np.log1p(-p)
    return w, log_binom, log_cum, log_p1


def varentropy_bits(p: float) -> float:
    r"""Varentropy :math:`V = \mathrm{Var}[-\log_2 P(Z)] = p(1-p)\log_2^2((1-p)/p)` of one
    Bernoulli(``p``) bit."""
    p = float(p)
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    return p * (1 - p) * np.log2((1 - p) / p) ** 2


def fixed_length_converse_rate(n: int, p: float, eps: float) -> float:
    r"""Smallest rate ``log2(M)/n`` at which *any* fixed-length SW code of the DSBS can have
    block error probability ``<= eps`` (the "M most likely patterns" converse above).

    The minimal ``M`` covers every pattern of weight below :math:`w^*` and
    :math:`\lceil (P(W \ge w^*) - \varepsilon) / P_1(w^*)\rceil` of weight :math:`w^*`,
    where :math:`w^*` is the smallest weight with :math:`P(W > w^*) \le \varepsilon`.
    """
    n, p, eps = _check(n, p, eps)
    w, _, log_cum, log_p1 = _log_counts(n, p)
    sf = binom.sf(w, n, p)  # P(W > w)
    w_star = int(np.argmax(sf <= eps))
    need = binom.sf(w_star - 1, n, p) - eps  # P(W >= w*) - eps > 0: mass still to cover
    log_extra = np.log(need) - log_p1[w_star]
    log_extra = np.log(np.ceil(np.exp(log_extra))) if log_extra < 30 else log_extra
    log_m = np.logaddexp(log_cum[w_star - 1], log_extra) if w_star > 0 else log_extra
    return float(log_m / _LN2 / n)


def fixed_length_converse_error(n: int, p: float, rate: float) -> float:
    r"""Smallest block error probability any fixed-length SW code with ``2^{n·rate}`` bins
    can have: :math:`1 -` (probability of the ``M`` most likely patterns)."""
    n, p, _ = _check(n, p)
    rate = _check_rate(rate)
    if rate >= 1.0:
        return 0.0
    w, _, log_cum, log_p1 = _log_counts(n, p)
    log_m = rate * n * _LN2
    w_star = int(np.argmax(log_cum >= log_m))  # first weight class not fully covered
    log_prev = log_cum[w_star - 1] if w_star > 0 else -np.inf
    log_rest = log_m + np.log1p(-np.exp(log_prev - log_m))  # M - N_{<w*}
    covered_at_w = np.exp(log_rest + log_p1[w_star])
    return float(max(0.0, binom.sf(w_star - 1, n, p) - covered_at_w))


def _rcu_terms(n: int, p: float):
    """``log P(W = w)`` and ``log(N_{<=w} - 1)`` (the other patterns at least as likely as
    one of weight ``w``) for ``w = 0..n``: the rate-free parts of the RCU bound."""
    w, _, log_cum, _ = _log_counts(n, p)
    with np.errstate(divide="ignore"):
        log_others = np.where(w == 0, -np.inf, log_cum + np.log1p(-np.exp(-log_cum)))
    return binom.logpmf(w, n, p), log_others


def _rcu_error(log_pmf, log_others, n: int, rate: float) -> float:
    log_pair = np.minimum(0.0, log_others - rate * n * _LN2)
    return float(np.exp(logsumexp(log_pmf + log_pair)))


def random_linear_error(n: int, p: float, rate: float) -> float:
    r"""Random coding union bound on the block error of a random linear syndrome code with
    ML decoding, ``k = n·rate`` syndrome bits: :math:`\sum_w P(W=w)\min\{1, (N_{\le w}-1)2^{-k}\}`."""
    n, p, _ = _check(n, p)
    rate = _check_rate(rate)
    return _rcu_error(*_rcu_terms(n, p), n, rate)


def random_linear_rate(n: int, p: float, eps: float, tol: float = 1e-6) -> float:
    """Smallest rate at which :func:`random_linear_error` is ``<= eps`` (bisection)."""
    n, p, eps = _check(n, p, eps)
    terms = _rcu_terms(n, p)
    lo, hi = 0.0, 1.0 + 1.0 / n
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if _rcu_error(*terms, n, mid) <= eps:
            hi = mid
        else:
            lo = mid
    return hi


def normal_approximation_rate(n: int, p: float, eps: float) -> float:
    r""":math:`h(p) + \sqrt{V/n}\,Q^{-1}(\varepsilon) - \log_2(n)/(2n)` (Strassen's expansion)."""
    n, p, eps = _check(n, p, eps)
    dispersion_term = np.sqrt(varentropy_bits(p) / n) * -ndtri(eps)
    return float(binary_entropy(p) + dispersion_term - np.log2(n) / (2 * n))

