"""Bjøntegaard deltas between two rate–quality curves: BD-rate and BD-quality.

* **BD-rate** (Bjøntegaard, VCEG-M33, 2001): fit ``log10(rate)`` as a function of quality
  for each codec, average the difference over the common quality range, and report the
  equivalent rate change in percent, ``(10^{ΔlogR} − 1)·100``.  Positive: the test codec
  needs *more* bits for the same quality.  Table 3 of the MDIC supplement reports it for
  LPIPS, DISTS, PSNR and MS-SSIM.
* **BD-quality** (Eq. 37 of the MDIC supplement):
  ``BD = 1/(r2 − r1) ∫_{r1}^{r2} [D_test(r) − D_ref(r)] dr`` over the common rate range,
  each curve fitted by a cubic.  With ``log_rate=True`` (default) ``r = log10(bitrate)``,
  exactly Bjøntegaard's BD-PSNR; ``log_rate=False`` integrates over the bitrate itself,
  as Eq. 37 literally reads.  The two weight the rate axis differently (log-rate gives the
  low-rate end more weight) and can differ markedly -- notebook 09 shows an example.
  Positive = test better; for metrics where lower is better (LPIPS, DISTS, FID, …) pass
  ``lower_is_better=True`` and the sign is flipped (as in Table 4 of the supplement,
  where worse LPIPS gives negative BD-quality).

Fits: ``method="cubic"`` is Bjøntegaard's least-squares cubic polynomial (exact
interpolation for 4 points; needs ≥ 4); ``method="pchip"`` is the piecewise cubic Hermite
interpolation recommended in later VCEG/JVET practice (needs ≥ 2).  Both agree with the
``bjontegaard`` package (tested).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bd_rate", "bd_quality", "fit_curve", "common_range", "METHODS"]

METHODS = {"cubic": 4, "pchip": 2}  # method -> minimum number of points


class _Cubic:
    """Least-squares cubic ``y ≈ p(x)`` with exact integration."""

    def __init__(self, x, y):
        self.coef = np.polyfit(x, y, 3)
        self._int = np.polyint(self.coef)

    def __call__(self, x):
        return np.polyval(self.coef, x)

    def integrate(self, a, b):
        return float(np.polyval(self._int, b) - np.polyval(self._int, a))


def fit_curve(x, y, method: str = "cubic"):
    """Fit ``y(x)``; returns a callable with ``.integrate(a, b)``. ``x`` must be distinct."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of: {', '.join(METHODS)})")
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"abscissae must be distinct, got {x.tolist()}")
    if method == "cubic":
        return _Cubic(x, y)
    from scipy.interpolate import PchipInterpolator

    return PchipInterpolator(x, y)


def _curve(rate, quality, which: str, method: str, log_rate: bool):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of: {', '.join(METHODS)})")
    r = np.asarray(rate, dtype=float)
    q = np.asarray(quality, dtype=float)
    if r.ndim != 1 or q.ndim != 1 or r.shape != q.shape:
        raise ValueError(f"rate_{which} and q_{which} must be 1-D of equal length, got shapes {r.shape} and {q.shape}")
    if r.size < METHODS[method]:
        raise ValueError(f"method={method!r} needs at least {METHODS[method]} points per curve, "
                         f"got {r.size} for the {which} curve")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError(f"rate_{which} / q_{which} contain NaN or inf")
    if log_rate and np.any(r <= 0):
        raise ValueError(f"rate_{which} must be positive (its log10 is taken), got {r.tolist()}")
    order = np.argsort(r)
    r, q = r[order], q[order]
    if np.any(np.diff(r) <= 0):
        raise ValueError(f"rate_{which} must hold distinct rates, got {r.tolist()}")
    return (np.log10(r) if log_rate else r), q


def common_range(a, b):
    """``[max(min a, min b), min(max a, max b)]``; ValueError if the ranges do not overlap."""
    lo, hi = max(np.min(a), np.min(b)), min(np.max(a), np.max(b))
    if not hi > lo:
        raise ValueError(f"the curves do not overlap: [{np.min(a):.6g}, {np.max(a):.6g}] vs "
                         f"[{np.min(b):.6g}, {np.max(b):.6g}]")
    return float(lo), float(hi)


def bd_rate(rate_ref, q_ref, rate_test, q_test, method: str = "cubic", lower_is_better: bool | None = None) -> float:
    """Bjøntegaard delta rate in percent (positive: test needs more bits for equal quality).

    ``ΔlogR = 1/(q2 − q1) ∫_{q1}^{q2} [log10 R_test(q) − log10 R_ref(q)] dq``,
    ``BD-rate = (10^{ΔlogR} − 1) · 100``, over the common quality range ``[q1, q2]``.
    Quality must be strictly monotone in rate on each curve (it is the abscissa of the
    fit); with ``lower_is_better`` set, its direction is checked too (LPIPS falls as rate
    grows).

    Parameters
    ----------
    rate_ref, q_ref : 1-D arrays
        Reference (anchor) curve: bitrates (> 0, e.g. bpp) and quality values.
    rate_test, q_test : 1-D arrays
        Test curve, same conventions (numbers of points may differ).
    method : {"cubic", "pchip"}
        Fit of ``log10 R`` against quality (cubic needs ≥ 4 points per curve).
    lower_is_better : bool or None
        If given, check that quality improves with rate in that direction.

    Returns
    -------
    float
        BD-rate in percent.

    >>> r = [0.02, 0.04, 0.08, 0.16]
    >>> q = [28.0, 30.5, 32.4, 33.9]
    >>> round(bd_rate(r, q, [2 * x for x in r], q), 6)   # same quality at twice the rate
    100.0
    """
    lr_ref, q_r = _curve(rate_ref, q_ref, "ref", method, True)
    lr_test, q_t = _curve(rate_test, q_test, "test", method, True)
    for q, which in ((q_r, "ref"), (q_t, "test")):
        d = np.diff(q)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise ValueError(f"q_{which} must be strictly monotone in rate for BD-rate, got {q.tolist()}")
        if lower_is_better is not None and (d[0] < 0) != lower_is_better:
            raise ValueError(f"q_{which} {'rises' if d[0] > 0 else 'falls'} with rate, but lower_is_better="
                             f"{lower_is_better}: quality should improve as rate grows")
    lo, hi = common_range(q_r, q_t)
    f_ref, f_test = fit_curve(q_r, lr_ref, method), fit_curve(q_t, lr_test, method)
    delta = (f_test.integrate(lo, hi) - f_ref.integrate(lo, hi)) / (hi - lo)
    return float((10.0**delta - 1.0) * 100.0)


def bd_quality(rate_ref, q_ref, rate_test, q_test, lower_is_better: bool = False,
               log_rate: bool = True, method: str = "cubic") -> float:
    """BD-quality, Eq. 37 of the MDIC supplement: mean quality gain of test over ref at equal rate.

    ``BD = 1/(r2 − r1) ∫_{r1}^{r2} [D_test(r) − D_ref(r)] dr`` with ``r = log10(rate)``
    (``log_rate=True``, = BD-PSNR of Bjøntegaard) or ``r = rate`` (``log_rate=False``, Eq. 37
    read literally), over the common rate range.  The sign is flipped when
    ``lower_is_better`` so that positive always means "test better".

    Parameters
    ----------
    rate_ref, q_ref, rate_test, q_test : 1-D arrays
        The two curves (rates distinct and, for ``log_rate``, positive).
    lower_is_better : bool
        True for LPIPS, DISTS, FID, KID, NIQE: flips the sign.
    log_rate : bool
        Integrate over ``log10(rate)`` (Bjøntegaard) or over the rate itself (Eq. 37 literally).
    method : {"cubic", "pchip"}
        Fit of quality against (log-)rate.

    Returns
    -------
    float
        Mean quality difference, in the metric's unit (dB for PSNR).

    >>> r = [0.02, 0.04, 0.08, 0.16]
    >>> q = [28.0, 30.5, 32.4, 33.9]
    >>> round(bd_quality(r, q, r, [x + 0.5 for x in q]), 6)
    0.5
    >>> round(bd_quality(r, q, r, [x + 0.5 for x in q], lower_is_better=True), 6)
    -0.5
    """
    x_ref, q_r = _curve(rate_ref, q_ref, "ref", method, log_rate)
    x_test, q_t = _curve(rate_test, q_test, "test", method, log_rate)
    lo, hi = common_range(x_ref, x_test)
    f_ref, f_test = fit_curve(x_ref, q_r, method), fit_curve(x_test, q_t, method)
    delta = (f_test.integrate(lo, hi) - f_ref.integrate(lo, hi)) / (hi - lo)
    return float(-delta if lower_is_better else delta)
