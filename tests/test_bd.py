"""BD-rate / BD-quality: closed forms, agreement with the `bjontegaard` package, input checks."""

import warnings

import bjontegaard
import numpy as np
import pytest

from mdic_lab.metrics import bd_quality, bd_rate

R_REF = [0.02, 0.035, 0.06, 0.1, 0.16]
Q_REF = [26.1, 28.0, 29.9, 31.5, 32.8]
R_TEST = [0.025, 0.04, 0.07, 0.11, 0.19]
Q_TEST = [26.9, 28.4, 30.1, 31.9, 33.6]
# perceptual curve where lower is better (LPIPS-like)
L_REF = [0.42, 0.35, 0.28, 0.22, 0.18]
L_TEST = [0.39, 0.33, 0.27, 0.21, 0.16]


def _curves(seed):
    rng = np.random.default_rng(seed)
    r1 = np.sort(rng.uniform(0.01, 0.3, 6))
    r2 = np.sort(rng.uniform(0.01, 0.3, 6))
    a, b = rng.uniform(3, 6, 2)
    return r1, 35 + a * np.log10(r1) + rng.normal(0, 0.05, 6), r2, 35.5 + b * np.log10(r2)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_bjontegaard_package(method, seed):
    r1, q1, r2, q2 = _curves(seed)
    q1, q2 = np.maximum.accumulate(q1) + np.arange(6) * 1e-3, q2  # monotone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns on small overlaps
        ref_rate = bjontegaard.bd_rate(r1, q1, r2, q2, method=method, min_overlap=0)
        ref_psnr = bjontegaard.bd_psnr(r1, q1, r2, q2, method=method, min_overlap=0)
    assert bd_rate(r1, q1, r2, q2, method=method) == pytest.approx(ref_rate, rel=1e-9, abs=1e-9)
    assert bd_quality(r1, q1, r2, q2, method=method) == pytest.approx(ref_psnr, rel=1e-9, abs=1e-12)
    assert bd_quality(r1, q1, r2, q2, method=method, lower_is_better=True) == pytest.approx(-ref_psnr, abs=1e-12)


def test_lower_is_better_metric_against_package():
    # the package needs quality rising with rate; -LPIPS is such a quality, and the
    # averages over [a, b] and over [-b, -a] are the same
    neg_ref, neg_test = [-v for v in L_REF], [-v for v in L_TEST]
    for method in ("cubic", "pchip"):
        expect = bjontegaard.bd_rate(R_REF, neg_ref, R_TEST, neg_test, method=method)
        assert bd_rate(R_REF, L_REF, R_TEST, L_TEST, method=method, lower_is_better=True) == pytest.approx(expect)
        d = bjontegaard.bd_psnr(R_REF, neg_ref, R_TEST, neg_test, method=method)
        assert bd_quality(R_REF, L_REF, R_TEST, L_TEST, lower_is_better=True, method=method) == pytest.approx(d)


def test_closed_forms():
    r = np.array(R_REF)
    # same quality at 1.5x the rate: exactly +50 %, for any fit (log-rate shifts by a constant)
    for method in ("cubic", "pchip"):
        assert bd_rate(r, Q_REF, 1.5 * r, Q_REF, method=method) == pytest.approx(50.0, abs=1e-9)
        assert bd_rate(r, Q_REF, r, Q_REF, method=method) == pytest.approx(0.0, abs=1e-12)
        assert bd_quality(r, Q_REF, r, np.array(Q_REF) - 0.7, method=method) == pytest.approx(-0.7, abs=1e-12)
        assert bd_quality(r, Q_REF, r, np.array(Q_REF) - 0.7, log_rate=False, method=method) == pytest.approx(
            -0.7, abs=1e-12)
    # log vs linear rate: a gap growing linearly in log10(rate) has a closed-form mean on a log axis
    r = np.logspace(-2, 0, 5)  # log10 r from -2 to 0
    q_ref = 30 + 5 * np.log10(r)
    q_test = q_ref + (np.log10(r) + 2)  # gap 0 at r = 0.01, 2 at r = 1
    assert bd_quality(r, q_ref, r, q_test) == pytest.approx(1.0, abs=1e-9)  # mean of gap over log r
    # over linear rate: (1/(1-0.01)) ∫ (log10 r + 2) dr on [0.01, 1]
    lin = (1 / 0.99) * ((1 * np.log10(1) - 1 / np.log(10)) - (0.01 * np.log10(0.01) - 0.01 / np.log(10)) + 2 * 0.99)
    approx = bd_quality(r, q_ref, r, q_test, log_rate=False, method="pchip")
    assert approx > 1.5  # linear-rate averaging weights the high rates, where the gap is large
    assert approx == pytest.approx(lin, abs=0.1)


def test_input_validation_messages():
    with pytest.raises(ValueError, match="at least 4 points"):
        bd_rate(R_REF[:3], Q_REF[:3], R_TEST, Q_TEST)
    assert np.isfinite(bd_rate(R_REF[:3], Q_REF[:3], R_TEST, Q_TEST, method="pchip"))
    with pytest.raises(ValueError, match="equal length"):
        bd_quality(R_REF, Q_REF[:4], R_TEST, Q_TEST)
    with pytest.raises(ValueError, match="NaN"):
        bd_quality(R_REF, [np.nan] + Q_REF[1:], R_TEST, Q_TEST)
    with pytest.raises(ValueError, match="positive"):
        bd_rate([0.0] + R_REF[1:], Q_REF, R_TEST, Q_TEST)
    with pytest.raises(ValueError, match="distinct"):
        bd_quality([0.1, 0.1, 0.2, 0.3, 0.4], Q_REF, R_TEST, Q_TEST)
    with pytest.raises(ValueError, match="strictly monotone"):
        bd_rate(R_REF, [26, 28, 27, 30, 31], R_TEST, Q_TEST)
    with pytest.raises(ValueError, match="lower_is_better=True"):
        bd_rate(R_REF, Q_REF, R_TEST, Q_TEST, lower_is_better=True)
    with pytest.raises(ValueError, match="do not overlap"):
        bd_quality(R_REF, Q_REF, [1, 2, 3, 4], [40, 41, 42, 43])
    with pytest.raises(ValueError, match="unknown method 'akima'"):
        bd_rate(R_REF, Q_REF, R_TEST, Q_TEST, method="akima")
