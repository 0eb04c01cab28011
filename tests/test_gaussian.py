"""Gaussian closed forms: literature values, identities, the lossy extension (Eqs. 34-36)."""

import numpy as np
import pytest

from toy_sources.gaussian import (
    conditional_covariance,
    conditional_rd_gaussian,
    conditional_rd_side_information,
    conditional_variance,
    correlation_to_mi,
    entropy_gaussian,
    mutual_information_gaussian,
    rate_reduction_gaussian,
)

TOL = 1e-10


def random_cov(k, seed):
    a = np.random.default_rng(seed).standard_normal((k, k + 2))
    return a @ a.T / (k + 2)


def test_entropy_of_standard_normal():
    assert entropy_gaussian([[1.0]]) == pytest.approx(0.5 * np.log2(2 * np.pi * np.e), abs=TOL)
    # scaling by a: h(aX) = h(X) + log2 |a|
    assert entropy_gaussian([[4.0]]) == pytest.approx(entropy_gaussian([[1.0]]) + 1.0, abs=TOL)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8, -0.95])
def test_pair_mi_is_minus_half_log_one_minus_rho2(rho):
    cov = [[1.0, rho], [rho, 1.0]]
    assert mutual_information_gaussian(cov, 0, 1) == pytest.approx(-0.5 * np.log2(1 - rho**2), abs=TOL)
    assert correlation_to_mi(rho) == pytest.approx(-0.5 * np.log2(1 - rho**2), abs=TOL)


@pytest.mark.parametrize("seed", range(5))
def test_mi_from_entropies_and_chain_rule(seed):
    c = random_cov(4, seed)
    h = lambda idx: entropy_gaussian(c[np.ix_(idx, idx)])  # noqa: E731
    # I(A;B|G) = h(A,G) + h(B,G) - h(A,B,G) - h(G)
    want = h([0, 3]) + h([1, 2, 3]) - h([0, 1, 2, 3]) - h([3])
    assert mutual_information_gaussian(c, [0], [1, 2], [3]) == pytest.approx(want, abs=1e-9)
    # chain rule I(X; Y,Z) = I(X;Y) + I(X;Z|Y)
    assert mutual_information_gaussian(c, 0, [1, 2]) == pytest.approx(
        mutual_information_gaussian(c, 0, 1) + mutual_information_gaussian(c, 0, 2, 1), abs=1e-9
    )


def test_schur_complement_matches_regression_residual():
    c = random_cov(3, 11)
    rng = np.random.default_rng(0)
    s = rng.multivariate_normal(np.zeros(3), c, size=200_000)
    beta, *_ = np.linalg.lstsq(s[:, 1:], s[:, 0], rcond=None)
    resid = s[:, 0] - s[:, 1:] @ beta
    assert conditional_variance(c, 0, [1, 2]) == pytest.approx(resid.var(), rel=0.02)
    assert conditional_covariance(c, [0], [1, 2]).shape == (1, 1)


def test_conditional_rd_closed_form():
    assert conditional_rd_gaussian(1.0, 0.25) == pytest.approx(1.0)
    assert conditional_rd_gaussian(1.0, 1.0) == 0.0
    assert conditional_rd_gaussian(0.36, 2.0) == 0.0
    np.testing.assert_allclose(conditional_rd_gaussian(1.0, [1 / 4, 1 / 16]), [1.0, 2.0])
    with pytest.raises(ValueError, match="distortion D must be > 0"):
        conditional_rd_gaussian(1.0, 0.0)


def test_lossy_extension_eqs_34_to_36():
    rv, rt = 0.7, 0.6
    cov = [[1, rv, rt], [rv, 1, rv * rt], [rt, rv * rt, 1]]
    var_v = conditional_variance(cov, 0, [1])
    var_vt = conditional_variance(cov, 0, [1, 2])
    assert var_vt < var_v
    D = np.geomspace(1e-3, 2.0, 60)
    r_v = conditional_rd_side_information(cov, 0, [1], D)
    r_vt = conditional_rd_side_information(cov, 0, [1, 2], D)
    assert np.all(r_vt <= r_v + TOL)  # Eq. 35
    dr = rate_reduction_gaussian(cov, 0, [1], [2], D)  # Eq. 36
    np.testing.assert_allclose(dr, r_v - r_vt)
    low = D < var_vt
    np.testing.assert_allclose(dr[low], 0.5 * np.log2(var_v / var_vt))
    np.testing.assert_allclose(dr[low], mutual_information_gaussian(cov, 0, 2, 1))
    assert np.all(dr[D >= var_v] == 0)


def test_validation():
    with pytest.raises(ValueError, match="symmetric"):
        entropy_gaussian([[1.0, 0.5], [0.2, 1.0]])
    with pytest.raises(ValueError, match="positive semidefinite"):
        entropy_gaussian([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        entropy_gaussian([[np.nan]])
    with pytest.raises(IndexError, match="out of range"):
        mutual_information_gaussian(np.eye(2), 0, 5)
    with pytest.raises(ValueError, match="rho must lie"):
        correlation_to_mi(1.5)
