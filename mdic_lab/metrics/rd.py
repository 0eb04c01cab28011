"""Operational rate–distortion curves: interpolation, the Pareto front, the gain of one curve over another.

Rates are CODED bits per pixel (``bpp_coded`` rows of :mod:`mdic_lab.runs.evaluate`); the
Bjøntegaard numbers come from :mod:`mdic_lab.metrics.bd`.
"""

from __future__ import annotations

import math

__all__ = ["quality_at_rate", "pareto_front", "side_information_gain"]


def quality_at_rate(bpp, quality, at) -> float:
    """Quality of an R-D curve at rate ``at``, linear interpolation in log(bpp) (NaN outside the curve).

    >>> quality_at_rate([0.1, 0.4], [20.0, 30.0], 0.2)
    25.0
    """
    import numpy as np

    b = np.log(np.asarray(bpp, dtype=float))
    q = np.asarray(quality, dtype=float)
    order = np.argsort(b)
    b, q = b[order], q[order]
    a = math.log(at)
    if a < b[0] - 1e-12 or a > b[-1] + 1e-12:
        return float("nan")
    return float(np.interp(a, b, q))


def pareto_front(rows: list[dict], key: str = "psnr") -> list[dict]:
    """The operating points not dominated by another one (lower-or-equal rate AND higher quality).

    An operational R-D curve is the envelope of the achievable points: a point with more bits
    and less quality than another one is never used.  Returned sorted by coded bpp.

    >>> pts = [{"bpp_coded": 0.08, "psnr": 18.2}, {"bpp_coded": 0.083, "psnr": 17.9}, {"bpp_coded": 0.1, "psnr": 19.0}]
    >>> [p["bpp_coded"] for p in pareto_front(pts)]
    [0.08, 0.1]
    """
    out, best = [], -math.inf
    for r in sorted(rows, key=lambda r: (r["bpp_coded"], -r[key])):
        if r[key] > best:
            out.append(r)
            best = r[key]
    return out


def side_information_gain(anchor: list[dict], test: list[dict], key: str = "psnr", pareto: bool = True,
                          method: str = "pchip") -> dict:
    """How much the test curve (NDIC) beats the anchor (single-image) at equal coded bpp.

    Returns ``bd_rate`` (percent, Bjøntegaard, coded bpp vs ``key``; negative = fewer bits for
    the same quality), ``bd_quality``, and the quality gains at the lowest and highest rates
    both curves cover (``gain_low``, ``gain_high``, in the unit of ``key``).  With ``pareto``
    (default) dominated points are dropped first (:func:`pareto_front`; BD needs quality
    strictly increasing with rate) and listed under ``dropped`` as ``(curve, λ)``.
    ``method``: the Bjøntegaard fit of :mod:`mdic_lab.metrics.bd` -- ``"pchip"`` (piecewise
    cubic Hermite, later VCEG/JVET practice, ≥ 2 points per curve; default, since a Pareto
    front of a short sweep can have fewer than the 4 points ``"cubic"`` needs) or ``"cubic"``.
    """
    from mdic_lab.metrics.bd import bd_quality, bd_rate

    dropped = []
    if pareto:
        fa, ft = pareto_front(anchor, key), pareto_front(test, key)
        dropped = [("anchor", r.get("lmbda")) for r in anchor if r not in fa] + \
                  [("test", r.get("lmbda")) for r in test if r not in ft]
        anchor, test = fa, ft
    ra = [r["bpp_coded"] for r in anchor]
    qa = [r[key] for r in anchor]
    rt = [r["bpp_coded"] for r in test]
    qt = [r[key] for r in test]
    lo, hi = max(min(ra), min(rt)), min(max(ra), max(rt))
    res = {"common_bpp_range": [lo, hi], "bd_error": None, "dropped": dropped, "method": method,
           "points": [len(anchor), len(test)]}
    try:
        res["bd_rate"] = float(bd_rate(ra, qa, rt, qt, method=method))
        res["bd_quality"] = float(bd_quality(ra, qa, rt, qt, method=method))
    except ValueError as exc:  # non-monotone or non-overlapping curves: no Bjøntegaard number
        res["bd_rate"] = res["bd_quality"] = float("nan")
        res["bd_error"] = str(exc)
    if lo < hi:
        res["gain_low"] = quality_at_rate(rt, qt, lo) - quality_at_rate(ra, qa, lo)
        res["gain_high"] = quality_at_rate(rt, qt, hi) - quality_at_rate(ra, qa, hi)
    else:
        res["gain_low"] = res["gain_high"] = float("nan")
    return res
