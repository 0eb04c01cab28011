"""Numerical rate–distortion solvers for small discrete sources (rates in bits).

* :func:`rate_distortion` — Blahut–Arimoto (Blahut 1972) for :math:`R(D)`.
* :func:`conditional_rate_distortion` — the same with side information at both ends,
  :math:`R_{X|Y}(D) = \\min I(X;\\hat X|Y)`.
* :func:`wyner_ziv` — the Wyner–Ziv function :math:`R^{WZ}_{X|Y}(D) = \\min I(X;U|Y)`
  (Eq. (4) of the OmniParallax appendix; Wyner & Ziv 1976) of any small discrete pair.

How the Wyner–Ziv solver works
------------------------------
*Strategies.* Any decoder ``x̂ = f(u, y)`` turns each value ``u`` into a map
``t_u : y ↦ f(u, y)`` (a "Shannon strategy"). Replacing ``U`` by ``T = t_U`` keeps the
distortion and cannot increase ``I(X;U|Y)`` (``T`` is a function of ``U``), so without loss
of generality ``U`` ranges over the ``|X̂|^{|Y|}`` maps ``t : Y → X̂`` and the decoder is
``f(t, y) = t(y)``. This alphabet contains every deterministic decoder, so no search over
decoders is needed, and it contains the ``|U| <= |X| + 1`` optimal auxiliaries.

*Alternating minimisation.* With :math:`r(t|y)` any conditional pmf,

.. math::
    I(X;T|Y) = \\min_r \\sum_{x,y,t} p(x,y)\\,q(t|x)\\log\\frac{q(t|x)}{r(t|y)},

the minimum attained at :math:`r(t|y) = \\sum_x p(x|y) q(t|x)`. For fixed ``r`` the
Lagrangian :math:`I + s\\,\\mathbb E d` is convex in ``q`` with the closed-form minimiser

.. math::
    q(t|x) \\propto \\exp\\Big(\\sum_y p(y|x)\\,[\\log r(t|y) - s\\,d(x, t(y))]\\Big),

(a Blahut–Arimoto-type iteration; cf. Dupuis, Yu & Willems, ISIT 2004, for BA algorithms
with side information). Each step lowers the
Lagrangian, but the problem is not convex (``-I(Y;T)`` is concave in ``q``), so every slope is
solved from several starts (the quantize-and-bin structure, a greedy start and seeded
Dirichlet draws). The slope is bisected to hit each target distortion.

*Convex envelope.* Every solution found is an achievable (D, R) point; time-sharing makes
their lower convex envelope achievable too. The returned test channel at a target ``D`` is
the mixture of the two envelope vertices around it, which is again a channel over the same
strategies; its own rate ``I(X;T|Y)`` (reported) is at most the envelope value.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "hamming_distortion",
    "squared_error_distortion",
    "RateDistortionResult",
    "rate_distortion",
    "conditional_rate_distortion",
    "WynerZivResult",
    "wyner_ziv",
]

LN2 = np.log(2.0)
_LOG_FLOOR = -1.0e3  # log of a probability that is exactly zero (e^-1000 underflows anyway)


# ------------------------------------------------------------------------ inputs
def hamming_distortion(n: int, m: int | None = None) -> np.ndarray:
    """Hamming distortion matrix ``d[x, x̂] = [x != x̂]`` of shape ``(n, m)``.

    >>> hamming_distortion(2).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    n = int(n)
    m = n if m is None else int(m)
    if n < 1 or m < 1:
        raise ValueError(f"hamming_distortion: alphabet sizes must be >= 1, got ({n}, {m})")
    return (np.arange(n)[:, None] != np.arange(m)[None, :]).astype(float)


def squared_error_distortion(x_values, xhat_values=None) -> np.ndarray:
    """Squared-error distortion matrix ``d[i, j] = (x_i - x̂_j)^2``.

    >>> squared_error_distortion([0.0, 1.0], [0.0, 0.5, 1.0]).tolist()
    [[0.0, 0.25, 1.0], [1.0, 0.25, 0.0]]
    """
    x = np.asarray(x_values, dtype=float).ravel()
    xh = x if xhat_values is None else np.asarray(xhat_values, dtype=float).ravel()
    if x.size == 0 or xh.size == 0 or not (np.isfinite(x).all() and np.isfinite(xh).all()):
        raise ValueError("squared_error_distortion: values must be finite and non-empty")
    return (x[:, None] - xh[None, :]) ** 2


def _as_pmf_array(p, ndim: int, name: str, what: str) -> np.ndarray:
    """A float array of ``ndim`` axes from an array or a JointPMF, checked to be a pmf."""
    p = np.asarray(getattr(p, "p", p), dtype=float)
    if p.ndim != ndim or p.size == 0:
        raise ValueError(f"{name} must be {what}, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"{name} must be non-negative, without NaN, and sum to 1 (sum {p.sum():.6g})")
    return p


def _as_pmf_vector(p_x, name="p_x") -> np.ndarray:
    return _as_pmf_array(p_x, 1, name, "a 1-D pmf")


def _as_joint(p_xy, name="p_xy") -> np.ndarray:
    """A 2-D array ``p[x, y]`` from an array or a 2-variable JointPMF (first name = source)."""
    return _as_pmf_array(p_xy, 2, name, "a joint pmf of 2 variables (source, side info)")


def _as_distortion(distortion, nx: int, name="distortion") -> np.ndarray:
    if isinstance(distortion, str):
        if distortion == "hamming":
            return hamming_distortion(nx)
        raise ValueError(f"unknown distortion {distortion!r} (expected one of: hamming, or a matrix)")
    d = np.asarray(distortion, dtype=float)
    if d.ndim != 2 or d.shape[0] != nx:
        raise ValueError(f"{name} must be a matrix of shape ({nx}, |X̂|), got shape {d.shape}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    return d


def _as_targets(D, name="D") -> tuple[np.ndarray, bool]:
    arr = np.asarray(D, dtype=float)
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr).ravel()
    if arr.size == 0 or np.isnan(arr).any() or (arr < 0).any():
        raise ValueError(f"{name} must be non-negative distortion target(s) without NaN, got {D!r}")
    return arr, scalar


def _logsumexp(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))


def _xlogy_ratio(p, q):
    """Elementwise ``p * log(p / q)`` with ``0 log 0 = 0`` (natural log)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = p > 0
        return np.where(pos, p * (np.log(np.where(pos, p, 1.0)) - np.log(np.where(q > 0, q, 1.0))), 0.0)


# --------------------------------------------------------------- Blahut–Arimoto core
def _retire_converged(logq, act, new, done):
    """Write the rows of the batch that converged (``done``) into ``logq``; return the rows
    still iterating, ``(act, cur)``, and their current iterate."""
    if done.any():
        logq[act[done]] = new[done]
        return act[~done], new[~done]
    return act, new


def _ba_batch(px, w, d, s, max_iter, tol, q0=None):
    """Blahut–Arimoto for a batch of slopes and a family of sources sharing each slope.

    ``px`` (K, X) holds K sources p_k(x) with weights ``w`` (K,) (K = 1 for plain R(D),
    K = |Y| with p(x|y), p(y) for the conditional problem); ``s`` (B,) the slopes.
    Blahut (1972), Theorem 2: ``Q(x̂|x) ∝ q(x̂) exp(-s d(x, x̂))``, ``q(x̂) = Σ_x p(x) Q(x̂|x)``.
    ``q0`` (B, K, X̂), optional, is a warm start for the output marginals (it is mixed
    with 1e-6 of the uniform pmf so that no letter starts at zero).
    Returns the channels Q (B, K, X, X̂), rates (bits) and distortions.
    """
    B = s.size
    K, X = px.shape
    Xh = d.shape[1]
    if q0 is None:
        logq = np.full((B, K, Xh), -np.log(Xh))
    else:
        logq = np.log((1.0 - 1e-6) * q0 + 1e-6 / Xh)
    sd = s[:, None, None, None] * d[None, None]  # (B,1,X,Xh)
    act = np.arange(B)  # rows still iterating (converged rows are frozen)
    cur = logq.copy()
    f_prev = np.full(B, np.inf)
    for _ in range(max_iter):
        logits = cur[:, :, None, :] - sd[act]  # (b,K,X,Xh)
        logZ = _logsumexp(logits, axis=-1)
        Q = np.exp(logits - logZ)
        q = np.einsum("kx,bkxh->bkh", px, Q)
        with np.errstate(divide="ignore"):
            new = np.maximum(np.log(q), _LOG_FLOOR)
        # Blahut (1972), Thm 6: with c(x̂) = q_new(x̂) / q(x̂), the Lagrangian of the current
        # q exceeds the optimum by at most max log c - Σ q log c (nats)
        logc = new - cur
        gap = (w[None] * (logc.max(axis=-1) - (np.exp(cur) * logc).sum(axis=-1))).sum(axis=1)
        # the Lagrangian min_Q I + s E d for this q is -Σ_x p(x) log Z(x); stop also when it
        # decreases by less than tol per iteration (slowly vanishing tail letters)
        f = -(w[None] * np.einsum("kx,bkx->bk", px, logZ[..., 0])).sum(axis=1)
        done = (gap < tol) | (f_prev[act] - f < tol)
        f_prev[act] = f
        act, cur = _retire_converged(logq, act, new, done)
        if act.size == 0:
            break
    if act.size:
        logq[act] = cur
    logits = logq[:, :, None, :] - sd
    Q = np.exp(logits - _logsumexp(logits, axis=-1))
    rate, dist = _ba_eval(px, w, d, Q)
    return Q, rate, dist


def _ba_eval(px, w, d, Q):
    """Rate Σ_k w_k I_k(X; X̂) in bits and distortion of channels Q (B, K, X, X̂)."""
    q = np.einsum("kx,bkxh->bkh", px, Q)
    joint = px[None, :, :, None] * Q
    info = _xlogy_ratio(joint, px[None, :, :, None] * q[:, :, None, :]).sum(axis=(2, 3))
    rate = (info * w[None]).sum(axis=1) / LN2
    dist = (w[None, :, None, None] * joint * d[None, None]).sum(axis=(1, 2, 3))
    return rate, dist


@dataclass
class RateDistortionResult:
    """Result of :func:`rate_distortion` / :func:`conditional_rate_distortion`.

    Attributes
    ----------
    D : ndarray (n,)
        Target distortions.
    rate : ndarray (n,)
        Mutual information of the returned test channel, in bits (an achievable rate; it
        converges to the RD function as the slope bracket shrinks).
    distortion : ndarray (n,)
        Expected distortion of the returned test channel.
    channel : ndarray
        Test channel ``p(x̂|x)`` of shape (n, |X|, |X̂|), or ``p(x̂|x, y)`` of shape
        (n, |X|, |Y|, |X̂|) for the conditional problem.
    slope : ndarray (n,)
        The Lagrange multiplier ``s`` (nats per unit distortion) at the end of the bisection
        (``-s / ln 2`` is the slope ``dR/dD`` in bits).
    """

    D: np.ndarray
    rate: np.ndarray
    distortion: np.ndarray
    channel: np.ndarray
    slope: np.ndarray


def _bisect_ba(px, w, d, targets, *, s_range, n_bisect, max_iter, tol):
    """Bisection on the BA slope to hit each target; time-share the two bracket ends."""
    n = targets.size
    K, X = px.shape
    Xh = d.shape[1]
    # zero-rate point: the best constant reconstruction per source
    exp_d = np.einsum("kx,xh->kh", px, d)  # (K, Xh)
    dmax = float((w * exp_d.min(axis=1)).sum())
    dmin = float((w * (px * d.min(axis=1)[None]).sum(axis=1)).sum())
    if np.any(targets < dmin - 1e-12):
        raise ValueError(f"D must be >= {dmin:.6g} (the smallest achievable distortion), got min {targets.min():.6g}")
    Q0 = np.zeros((K, X, Xh))
    Q0[np.arange(K), :, exp_d.argmin(axis=1)] = 1.0

    active = targets < dmax - 1e-15
    rate = np.zeros(n)
    dist = np.full(n, dmax)
    chan = np.broadcast_to(Q0, (n, K, X, Xh)).copy()
    slope = np.zeros(n)
    idx = np.flatnonzero(active)
    if idx.size:
        tg = targets[idx]
        lo = np.full(idx.size, np.log(s_range[0]))  # small slope: D too large
        hi = np.full(idx.size, np.log(s_range[1]))  # large slope: D small
        # the small-slope end is the zero-rate point itself (BA is slowest there)
        Q_lo = np.broadcast_to(Q0, (idx.size, K, X, Xh)).copy()
        D_lo = np.full(idx.size, dmax)
        Q_hi, R_hi, D_hi = _ba_batch(px, w, d, np.exp(hi), max_iter, tol)
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            # warm start from the output marginals of the two bracket ends
            q0 = 0.5 * (np.einsum("kx,bkxh->bkh", px, Q_lo) + np.einsum("kx,bkxh->bkh", px, Q_hi))
            Qm, Rm, Dm = _ba_batch(px, w, d, np.exp(mid), max_iter, tol, q0=q0)
            big = Dm > tg  # still above target: raise the slope
            lo = np.where(big, mid, lo)
            hi = np.where(big, hi, mid)
            Q_lo = np.where(big[:, None, None, None], Qm, Q_lo)
            D_lo = np.where(big, Dm, D_lo)
            Q_hi = np.where(big[:, None, None, None], Q_hi, Qm)
            D_hi = np.where(big, D_hi, Dm)
        # the small-slope end may still be below the target if s_range[0] was too large:
        # time-share with the zero-rate point instead
        use0 = D_lo < tg
        Q_lo = np.where(use0[:, None, None, None], Q0[None], Q_lo)
        D_lo = np.where(use0, dmax, D_lo)
        gap = D_lo - D_hi
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(gap > 0, (tg - D_hi) / np.where(gap > 0, gap, 1.0), 0.0)
        lam = np.clip(lam, 0.0, 1.0)  # target below D_hi (s_range[1] too small): keep D_hi
        Qmix = lam[:, None, None, None] * Q_lo + (1 - lam)[:, None, None, None] * Q_hi
        R, Dd = _ba_eval(px, w, d, Qmix)
        rate[idx], dist[idx], chan[idx], slope[idx] = R, Dd, Qmix, np.exp(0.5 * (lo + hi))
    return rate, dist, chan, slope


def _slope_range(d):
    pos = d[d > 0]
    if pos.size == 0:
        return (1e-3, 1e3)
    return (1e-4 / pos.max(), 60.0 / pos.min() * 10)


def rate_distortion(p_x, distortion, D, *, n_bisect: int = 36, max_iter: int = 5000,
                    tol: float = 1e-10) -> RateDistortionResult:
    r"""Rate–distortion function :math:`R(D) = \min_{p(\hat x|x):\,\mathbb E d \le D} I(X;\hat X)`
    by the Blahut–Arimoto algorithm (Blahut 1972), vectorised over targets ``D``.

    The Lagrange slope ``s`` is bisected (in log scale) so that the BA solution's
    distortion brackets each target; the returned channel time-shares the two bracket
    solutions so that its distortion equals the target, and its rate is reported.

    Parameters
    ----------
    p_x : array_like or JointPMF
        Source pmf (1-D).
    distortion : array_like or "hamming"
        Distortion matrix ``d[x, x̂]``.
    D : float or array_like
        Target distortion(s). Targets below ``Σ_x p(x) min_x̂ d`` raise ``ValueError``;
        targets at or above ``min_x̂ Σ_x p(x) d(x, x̂)`` give rate 0.

    Returns
    -------
    RateDistortionResult

    Examples
    --------
    Bernoulli(0.2) with Hamming distortion: :math:`R(D) = h(0.2) - h(D)`.

    >>> res = rate_distortion([0.8, 0.2], "hamming", [0.05, 0.1])
    >>> from toy_sources.bounds import binary_entropy
    >>> bool(np.allclose(res.rate, binary_entropy(0.2) - binary_entropy([0.05, 0.1]), atol=1e-6))
    True
    """
    px = _as_pmf_vector(p_x)
    d = _as_distortion(distortion, px.size)
    targets, scalar = _as_targets(D)
    rate, dist, chan, slope = _bisect_ba(
        px[None], np.ones(1), d, targets, s_range=_slope_range(d), n_bisect=n_bisect,
        max_iter=max_iter, tol=tol,
    )
    return RateDistortionResult(D=targets, rate=rate, distortion=dist, channel=chan[:, 0], slope=slope)


def conditional_rate_distortion(p_xy, distortion, D, *, n_bisect: int = 36, max_iter: int = 5000,
                                tol: float = 1e-10) -> RateDistortionResult:
    r"""Conditional RD function :math:`R_{X|Y}(D) = \min I(X;\hat X|Y)` s.t. :math:`\mathbb E d \le D`
    (side information at encoder and decoder; Eq. (34) of the MDIC supplement with one
    side variable), by a conditional Blahut–Arimoto: one BA per value ``y`` with a common
    slope ``s`` (which allocates distortion optimally across ``y``).

    Parameters
    ----------
    p_xy : array_like (|X|, |Y|) or JointPMF of two variables (source first)
    distortion : array_like (|X|, |X̂|) or "hamming"
    D : float or array_like

    Examples
    --------
    DSBS(0.25): :math:`R_{X|Y}(D) = h(0.25) - h(D)`.

    >>> from toy_sources.bounds import binary_entropy
    >>> p = 0.25
    >>> res = conditional_rate_distortion([[(1 - p) / 2, p / 2], [p / 2, (1 - p) / 2]], "hamming", 0.1)
    >>> bool(abs(res.rate[0] - (binary_entropy(p) - binary_entropy(0.1))) < 1e-6)
    True
    """
    pxy = _as_joint(p_xy)
    d = _as_distortion(distortion, pxy.shape[0])
    targets, scalar = _as_targets(D)
    py = pxy.sum(axis=0)
    keep = py > 0
    px_given_y = (pxy[:, keep] / py[keep]).T  # (K, X)
    rate, dist, chan, slope = _bisect_ba(
        px_given_y, py[keep], d, targets, s_range=_slope_range(d), n_bisect=n_bisect,
        max_iter=max_iter, tol=tol,
    )
    full = np.zeros((targets.size, pxy.shape[1], pxy.shape[0], d.shape[1]))
    full[:, keep] = chan
    full[:, ~keep] = 1.0 / d.shape[1]  # p(y) = 0: any channel; uniform
    return RateDistortionResult(D=targets, rate=rate, distortion=dist,
                                channel=np.transpose(full, (0, 2, 1, 3)), slope=slope)


# ------------------------------------------------------------------------ Wyner–Ziv
@dataclass
class WynerZivResult:
    """Result of :func:`wyner_ziv`.

    Attributes
    ----------
    D : ndarray (n,)
        Target distortions.
    rate : ndarray (n,)
        ``I(X;U|Y)`` in bits of the returned test channel (achievable; an upper estimate of
        the Wyner–Ziv function that is tight when the search finds the global optima).
    distortion : ndarray (n,)
        ``E d(X, f(U, Y))`` of the returned test channel and decoder.
    channel : ndarray (n, |X|, |U|)
        Test channels ``p(u|x)`` over the strategy alphabet.
    strategies : ndarray (|U|, |Y|) of int
        The decoder: ``f(u, y) = strategies[u, y]`` (an index into X̂).
    envelope_D, envelope_rate : ndarray
        Vertices of the lower convex envelope of all (D, R) points the search found.
    n_points : int
        How many (D, R) points the search evaluated.
    elapsed : float
        Wall-clock seconds.
    """

    D: np.ndarray
    rate: np.ndarray
    distortion: np.ndarray
    channel: np.ndarray
    strategies: np.ndarray
    envelope_D: np.ndarray
    envelope_rate: np.ndarray
    n_points: int = 0
    elapsed: float = 0.0
    p_xy: np.ndarray = field(default=None, repr=False)

    def test_channel(self, i: int, atol: float = 1e-9):
        """``(p(u|x), decoder)`` at target ``i`` restricted to the used values of U.

        Returns the channel (|X|, |U_used|) and the decoder table (|U_used|, |Y|) with
        ``x̂ = decoder[u, y]``.
        """
        ch = self.channel[i]
        used = np.flatnonzero((self.p_xy.sum(axis=1) @ ch) > atol)
        return ch[:, used], self.strategies[used]


def _wz_alternate(pxy, px, py_x, px_y, cost, logq, s, max_iter, tol):
    """Alternating minimisation of I(X;T|Y) + s E d over q(t|x) for a batch (B, X, T).

    Rows whose largest change of ``q`` falls below ``tol`` are frozen (dropped from the
    batch), so slow rows do not cost time for the others.
    """
    logq = logq.copy()
    act = np.arange(logq.shape[0])
    sc = s[:, None, None] * cost[None]  # (B, X, T)
    cur = logq
    for _ in range(max_iter):
        q = np.exp(cur)
        r = np.matmul(px_y, q)  # (b, Y, T): p(t|y)
        with np.errstate(divide="ignore"):
            logr = np.maximum(np.log(r), _LOG_FLOOR)
        a = np.matmul(py_x, logr) - sc[act]  # (b, X, T)
        new = a - _logsumexp(a, axis=-1)
        delta = np.abs(np.exp(new) - q).reshape(act.size, -1).max(axis=1)
        done = delta < tol
        act, cur = _retire_converged(logq, act, new, done)
        if act.size == 0:
            break
    if act.size:
        logq[act] = cur
    return logq


def _wz_eval(pxy, px, px_y, cost, q):
    """Rate I(X;T|Y) (bits) and distortion for channels q (B, X, T)."""
    r = np.matmul(px_y, q)  # p(t|y)
    joint = pxy[None, :, :, None] * q[:, :, None, :]  # (B,X,Y,T)
    rate = _xlogy_ratio(joint, pxy[None, :, :, None] * r[:, None, :, :]).sum(axis=(1, 2, 3)) / LN2
    dist = np.einsum("x,bxt,xt->b", px, q, cost)
    return np.maximum(rate, 0.0), dist


def _lower_hull(Dp, Rp):
    """Indices of the lower convex hull vertices (increasing D) of points (D, R)."""
    order = np.lexsort((Rp, Dp))
    hull: list[int] = []
    for i in order:
        if hull and Dp[i] == Dp[hull[-1]]:
            continue  # same D, larger or equal R
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # remove b if it lies on or above the segment a -> i
            cross = (Dp[b] - Dp[a]) * (Rp[i] - Rp[a]) - (Rp[b] - Rp[a]) * (Dp[i] - Dp[a])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    # keep the non-increasing part (R_WZ is non-increasing in D)
    out = [hull[0]]
    for i in hull[1:]:
        if Rp[i] < Rp[out[-1]]:
            out.append(i)
        else:
            break
    return np.array(out)


def wyner_ziv(p_xy, distortion, D, *, n_restarts: int = 6, seed: int = 0, n_bisect: int = 24,
              max_iter: int = 600, tol: float = 1e-7) -> WynerZivResult:
    r"""Numerical Wyner–Ziv rate–distortion function of a small discrete pair (bits).

    .. math::
        R^{WZ}_{X|Y}(D) = \min_{p(u|x),\, f:\ \mathbb E\, d(X, f(U,Y)) \le D} I(X;U|Y)
                        = \min\, [I(X;U) - I(Y;U)],

    over ``U - X - Y`` (Eq. (4) of the OmniParallax appendix; Wyner & Ziv 1976). See the
    module docstring for the method (strategy alphabet, alternating minimisation with
    restarts, slope bisection, lower convex envelope).

    Parameters
    ----------
    p_xy : array_like (|X|, |Y|) or JointPMF of two variables
        Joint pmf of the source X (first axis) and the decoder side information Y.
    distortion : array_like (|X|, |X̂|) or "hamming"
        Distortion matrix.
    D : float or array_like
        Target distortion(s).
    n_restarts : int
        Starts per slope: 1 greedy, up to 3 quantize-and-bin mixtures, the rest seeded
        Dirichlet draws.
    seed : int
        Seed of the Dirichlet starts.
    n_bisect : int
        Bisection steps on the slope.
    max_iter, tol : int, float
        Iteration cap and convergence tolerance (max change of ``q``) of each run.

    Returns
    -------
    WynerZivResult

    Examples
    --------
    DSBS(0.25): the solver matches the closed form of Wyner & Ziv (1976).

    >>> from toy_sources.bounds import wyner_ziv_binary
    >>> p = 0.25
    >>> res = wyner_ziv([[(1 - p) / 2, p / 2], [p / 2, (1 - p) / 2]], "hamming", [0.05, 0.15])
    >>> bool(np.allclose(res.rate, wyner_ziv_binary(p, [0.05, 0.15]), atol=1e-3))
    True
    """
    t0 = time.perf_counter()
    pxy_full = _as_joint(p_xy)
    d = _as_distortion(distortion, pxy_full.shape[0])
    targets, scalar = _as_targets(D)
    if int(n_restarts) < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts!r}")
    rng = np.random.default_rng(seed)

    nX_full, nY_full = pxy_full.shape
    nXh = d.shape[1]
    # restrict to the supports of X and Y (zero-probability letters play no role)
    kx = pxy_full.sum(axis=1) > 0
    ky = pxy_full.sum(axis=0) > 0
    pxy = pxy_full[np.ix_(kx, ky)]
    dk = d[kx]
    px = pxy.sum(axis=1)
    py = pxy.sum(axis=0)
    py_x = pxy / px[:, None]  # (X, Y)
    px_y = (pxy / py[None, :]).T  # (Y, X)
    nX, nY = pxy.shape

    n_strat = nXh ** nY
    if n_strat > 20000:
        raise ValueError(
            f"wyner_ziv: the strategy alphabet |X̂|^|Y| = {n_strat} is too large (|X̂|={nXh}, |Y|={nY}); "
            "use smaller alphabets"
        )
    strat = np.array(list(itertools.product(range(nXh), repeat=nY)), dtype=np.int64)  # (T, Y)
    # cost[x, t] = Σ_y p(y|x) d(x, t(y))
    dxt = dk[:, strat]  # (X, T, Y)
    cost = np.einsum("xy,xty->xt", py_x, dxt)

    # anchors: the zero-rate decoder (best strategy x̂ = t*(y)) and the smallest distortion
    exp_t = px @ cost  # E d for each deterministic strategy alone
    t_star = int(np.argmin(exp_t))
    dmax = float(exp_t[t_star])
    dmin = float(px @ dk.min(axis=1))
    if np.any(targets < dmin - 1e-12):
        raise ValueError(f"D must be >= {dmin:.6g} (the smallest achievable distortion), got min {targets.min():.6g}")

    const = np.array([int(np.flatnonzero((strat == j).all(axis=1))[0]) for j in range(nXh)])

    def starts(s):
        """Initial log q for each slope in s (n,) → (n * n_restarts, X, T)."""
        n = s.size
        out = []
        # 1. greedy: q ∝ exp(-s cost)
        g = -s[:, None, None] * cost[None]
        out.append(g - _logsumexp(g, axis=-1))
        # 2. quantize-and-bin: constant strategies by an RD-like channel, mixed with t*
        rd = -s[:, None, None] * dk[None]  # (n, X, Xh)
        rd = np.exp(rd - _logsumexp(rd, axis=-1))
        for theta in (0.9, 0.5, 0.2)[: max(0, min(3, n_restarts - 1))]:
            q = np.full((n, nX, n_strat), 1e-3 / n_strat)
            q[:, :, const] += theta * rd
            q[:, :, t_star] += 1.0 - theta
            q /= q.sum(axis=-1, keepdims=True)
            out.append(np.log(q))
        # 3. seeded Dirichlet draws
        while len(out) < n_restarts:
            q = rng.dirichlet(np.ones(n_strat), size=(n, nX))
            out.append(np.log(np.maximum(q, 1e-300)))
        return np.stack(out, axis=1).reshape(n * n_restarts, nX, n_strat)

    def solve(logs):
        s = np.exp(logs)
        sr = np.repeat(s, n_restarts)
        logq = _wz_alternate(pxy, px, py_x, px_y, cost, starts(s), sr, max_iter, tol)
        q = np.exp(logq)
        R, Dd = _wz_eval(pxy, px, px_y, cost, q)
        lag = (R * LN2 + sr * Dd).reshape(s.size, n_restarts)
        best = np.argmin(lag, axis=1)
        Db = Dd.reshape(s.size, n_restarts)[np.arange(s.size), best]
        return q, R, Dd, Db

    pool_q = [np.zeros((1, nX, n_strat))]
    pool_q[0][0, :, t_star] = 1.0
    pool_R = [np.zeros(1)]
    pool_D = [np.array([dmax])]

    active = targets < dmax - 1e-15
    tg = targets[active]
    pos = dk[dk > 0]
    s_lo, s_hi = (1e-3, 1e3) if pos.size == 0 else (1e-3 / pos.max(), 1e3 / pos.min())
    if tg.size:
        # unique targets only, sorted: bisection per target on log-slope
        ut = np.unique(tg)
        lo = np.full(ut.size, np.log(s_lo))
        hi = np.full(ut.size, np.log(s_hi))
        q, R, Dd, _ = solve(np.array([np.log(s_hi)]))
        pool_q.append(q)
        pool_R.append(R)
        pool_D.append(Dd)
        for _ in range(int(n_bisect)):
            mid = 0.5 * (lo + hi)
            q, R, Dd, Db = solve(mid)
            pool_q.append(q)
            pool_R.append(R)
            pool_D.append(Dd)
            big = Db > ut
            lo = np.where(big, mid, lo)
            hi = np.where(big, hi, mid)

    Q = np.concatenate(pool_q)
    Rp = np.concatenate(pool_R)
    Dp = np.concatenate(pool_D)
    hull = _lower_hull(Dp, Rp)
    hD, hR = Dp[hull], Rp[hull]

    n = targets.size
    chan = np.zeros((n, nX, n_strat))
    for i, t in enumerate(targets):
        if t >= hD[-1]:
            chan[i] = Q[hull[-1]]
        elif t <= hD[0]:
            chan[i] = Q[hull[0]]
        else:
            j = int(np.searchsorted(hD, t, side="right"))  # hD[j-1] <= t < hD[j]
            lam = (hD[j] - t) / (hD[j] - hD[j - 1])
            chan[i] = lam * Q[hull[j - 1]] + (1 - lam) * Q[hull[j]]
    rate, dist = _wz_eval(pxy, px, px_y, cost, chan)

    full = np.zeros((n, nX_full, n_strat))
    full[:, kx] = chan
    full[:, ~kx] = 1.0 / n_strat
    # strategies over the full Y alphabet (zero-probability y decoded as x̂ = 0)
    strat_full = np.zeros((n_strat, nY_full), dtype=np.int64)
    strat_full[:, ky] = strat
    return WynerZivResult(
        D=targets, rate=rate, distortion=dist, channel=full, strategies=strat_full,
        envelope_D=hD, envelope_rate=hR, n_points=int(Dp.size),
        elapsed=time.perf_counter() - t0, p_xy=pxy_full,
    )
