"""Closed-form bounds of toy_sources.bounds against literature values and independent
computations (numerical convex envelopes, explicit common-information constructions)."""

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from toy_sources.bounds import (berger_tung_gaussian, binary_convolution, binary_entropy,
                                conditional_rd_binary, slepian_wolf_region,
                                wyner_common_information_dsbs, wyner_common_information_gaussian,
                                wyner_ziv_binary, wyner_ziv_binary_critical_distortion,
                                wyner_ziv_gaussian)
from toy_sources.gaussian import correlation_to_mi, mutual_information_gaussian
from toy_sources.pmf import JointPMF, random_pmf
from toy_sources.sources import dsbs, gaussian_markov_triple


# ------------------------------------------------------------------ binary entropy
def test_binary_entropy_known_values():
    assert binary_entropy(0.5) == 1.0
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    assert binary_entropy(0.11) == pytest.approx(0.49991596, abs=1e-8)
    assert binary_entropy(0.25) == pytest.approx(0.75 * np.log2(4 / 3) + 0.25 * 2, abs=1e-15)


def test_binary_entropy_vectorised_and_symmetric():
    p = np.linspace(0, 1, 101)
    h = binary_entropy(p)
    assert h.shape == p.shape
    np.testing.assert_allclose(h, binary_entropy(1 - p), atol=1e-15)
    assert np.all(h >= 0) and np.all(h <= 1)
    assert binary_entropy(np.array([[0.5]])).shape == (1, 1)


@pytest.mark.parametrize("bad", [-0.1, 1.1, np.nan, [0.2, 1.5]])
def test_binary_entropy_rejects_bad_input(bad):
    with pytest.raises(ValueError, match=r"binary_entropy: p must lie in \[0, 1\]"):
        binary_entropy(bad)


def test_binary_convolution():
    assert binary_convolution(0.1, 0.2) == pytest.approx(0.26)
    assert binary_convolution(0.0, 0.3) == pytest.approx(0.3)
    assert binary_convolution(0.5, 0.3) == pytest.approx(0.5)


# ------------------------------------------------------------------- Slepian–Wolf
def test_slepian_wolf_dsbs():
    sw = slepian_wolf_region(dsbs(0.11))
    assert sw.h_x_given_y == pytest.approx(binary_entropy(0.11), abs=1e-12)
    assert sw.sum_rate == pytest.approx(1 + binary_entropy(0.11), abs=1e-12)
    for x, y in sw.corner_points:
        assert x + y == pytest.approx(sw.sum_rate, abs=1e-12)
        assert sw.contains(x, y) and not sw.contains(x - 1e-3, y)
    assert list(sw.contains([0.5, 0.4], [1.0, 1.2])) == [True, False]


def test_slepian_wolf_random_pmf_against_numpy():
    pmf = random_pmf((3, 4), ["A", "B"], rng=3)
    p = pmf.p
    H = lambda q: float(-(q[q > 0] * np.log2(q[q > 0])).sum())
    sw = slepian_wolf_region(pmf)
    assert sw.h_xy == pytest.approx(H(p.ravel()), abs=1e-12)
    assert sw.h_x_given_y == pytest.approx(H(p.ravel()) - H(p.sum(0)), abs=1e-12)
    assert sw.h_y_given_x == pytest.approx(H(p.ravel()) - H(p.sum(1)), abs=1e-12)
    assert sw.names == ("A", "B")


def test_slepian_wolf_rejects_bad_input():
    with pytest.raises(ValueError, match="2 variables"):
        slepian_wolf_region(JointPMF(np.full((2, 2, 2), 1 / 8), ["X", "Y", "Z"]))
    with pytest.raises(TypeError, match="JointPMF"):
        slepian_wolf_region(np.eye(2) / 2)


# ---------------------------------------------------------------- binary RD / WZ
def test_conditional_rd_binary():
    D = np.array([0.0, 0.05, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(conditional_rd_binary(0.2, D),
                               [binary_entropy(0.2), binary_entropy(0.2) - binary_entropy(0.05),
                                binary_entropy(0.2) - binary_entropy(0.1), 0.0, 0.0], atol=1e-15)
    assert conditional_rd_binary(0.8, 0.1) == pytest.approx(conditional_rd_binary(0.2, 0.1))
    with pytest.raises(ValueError, match="non-negative distortion"):
        conditional_rd_binary(0.2, -0.1)


def _numerical_envelope(p, D):
    """Lower convex envelope of {(d, g(d)): d in [0, p)} ∪ {(p, 0)} by scipy's ConvexHull."""
    d = np.linspace(0.0, p, 20001)[:-1]
    g = binary_entropy(p * (1 - d) + d * (1 - p)) - binary_entropy(d)
    pts = np.c_[np.r_[d, p, p], np.r_[g, 0.0, 2.0]]  # (p, 2): closes the hull above
    hull = ConvexHull(pts)
    # lower hull: facets with outward normal pointing down (negative R component)
    lower = [s for s, eq in zip(hull.simplices, hull.equations) if eq[1] < 0]
    xs = np.unique(np.concatenate([pts[s, 0] for s in lower]))
    ys = np.array([min(pts[pts[:, 0] == x, 1]) for x in xs])
    return np.interp(D, xs, ys)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.25, 0.4])
def test_wyner_ziv_binary_is_the_convex_envelope(p):
    D = np.linspace(0.0, p, 57)
    np.testing.assert_allclose(wyner_ziv_binary(p, D), _numerical_envelope(p, D), atol=2e-6)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.25, 0.4])
def test_wyner_ziv_binary_tangency_and_rate_loss(p):
    dc = wyner_ziv_binary_critical_distortion(p)
    assert 0 < dc < p
    g = lambda d: binary_entropy(p * (1 - d) + d * (1 - p)) - binary_entropy(d)
    eps = 1e-7
    slope = (g(dc + eps) - g(dc - eps)) / (2 * eps)
    assert slope == pytest.approx(g(dc) / (dc - p), rel=1e-5)  # tangent from (p, 0)
    D = np.linspace(1e-4, p - 1e-4, 50)
    r = wyner_ziv_binary(p, D)
    assert np.all(r > conditional_rd_binary(p, D))  # strict rate loss inside (0, p)
    assert np.all(r <= g(D) + 1e-12)  # the envelope lies below g
    assert np.all(np.diff(r) < 0)  # decreasing
    assert np.all(np.diff(r, 2) >= -1e-9)  # convex
    assert wyner_ziv_binary(p, 0.0) == pytest.approx(binary_entropy(p), abs=1e-15)
    assert wyner_ziv_binary(p, [p, 0.6]).tolist() == [0.0, 0.0]


def test_wyner_ziv_binary_edge_cases():
    assert np.all(wyner_ziv_binary(0.0, [0.0, 0.1]) == 0.0)  # X = Y
    D = np.linspace(0, 0.5, 11)
    np.testing.assert_allclose(wyner_ziv_binary(0.5, D), 1 - binary_entropy(D), atol=1e-12)  # no SI
    np.testing.assert_allclose(wyner_ziv_binary(0.9, D), wyner_ziv_binary(0.1, D), atol=1e-15)
    with pytest.raises(ValueError, match="p must lie"):
        wyner_ziv_binary(1.2, 0.1)


# -------------------------------------------------------------------- Gaussian WZ
def test_wyner_ziv_gaussian():
    assert wyner_ziv_gaussian(1.0, 0.0, 0.25) == 1.0
    assert wyner_ziv_gaussian(4.0, 0.6, 0.64) == pytest.approx(1.0, abs=1e-15)
    D = np.array([0.01, 0.1, 0.19, 0.5])
    np.testing.assert_allclose(wyner_ziv_gaussian(1.0, 0.9, D),
                               np.maximum(0, 0.5 * np.log2(0.19 / D)), atol=1e-15)
    assert wyner_ziv_gaussian(1.0, 0.9, 0.0) == np.inf
    with pytest.raises(ValueError, match="rho"):
        wyner_ziv_gaussian(1.0, 1.5, 0.1)
    with pytest.raises(ValueError, match="var_x"):
        wyner_ziv_gaussian(-1.0, 0.5, 0.1)


# --------------------------------------------------------------- common information
def test_common_information_dsbs_known_values():
    assert wyner_common_information_dsbs(0.0) == 1.0
    assert wyner_common_information_dsbs(0.5) == pytest.approx(0.0, abs=1e-15)
    p = np.linspace(0, 0.5, 51)
    ci = wyner_common_information_dsbs(p)
    assert np.all(ci >= 1 - binary_entropy(p) - 1e-12)  # C >= I
    assert np.all(np.diff(ci) < 0)


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3, 0.45])
def test_common_information_dsbs_by_construction(p):
    """Wyner's W: X = W xor Bern(a1), Y = W xor Bern(a1); I(X,Y;W) must equal the closed form."""
    a1 = (1 - np.sqrt(1 - 2 * p)) / 2
    bsc = [[1 - a1, a1], [a1, 1 - a1]]
    t = JointPMF([0.5, 0.5], ["W"]).add_variable("X", bsc, "W").add_variable("Y", bsc, "W")
    np.testing.assert_allclose(t.marginal("X", "Y").p, dsbs(p).p, atol=1e-15)
    assert abs(t.I("X", "Y", given="W")) < 1e-12
    assert t.I(["X", "Y"], "W") == pytest.approx(wyner_common_information_dsbs(p), abs=1e-12)


def test_common_information_gaussian():
    assert wyner_common_information_gaussian(0.0) == 0.0
    assert wyner_common_information_gaussian(0.6) == pytest.approx(1.0, abs=1e-15)
    assert wyner_common_information_gaussian(-0.6) == pytest.approx(1.0, abs=1e-15)
    assert wyner_common_information_gaussian(1.0) == np.inf
    rho = np.linspace(0, 0.99, 50)
    assert np.all(wyner_common_information_gaussian(rho) >= correlation_to_mi(rho) - 1e-12)
    for r in (0.3, 0.8):  # W with rho_XW = rho_WY = sqrt(rho) attains it
        g = gaussian_markov_triple(np.sqrt(r), np.sqrt(r))
        assert mutual_information_gaussian(g.cov, [0, 2], [1]) == pytest.approx(
            wyner_common_information_gaussian(r), abs=1e-12)


# --------------------------------------------------------------------- Berger–Tung
def test_berger_tung_independent_sources_is_a_product():
    bt = berger_tung_gaussian(0.0, 0.25, 0.0625)
    assert bt.sum_rate == pytest.approx(3.0, abs=1e-12)
    assert bt.contains(1.0, 2.0) and not bt.contains(0.99, 2.5) and not bt.contains(1.5, 1.99)
    (a, b), (c, d) = bt.corner_points
    assert (a, b) == pytest.approx((1.0, 2.0), abs=1e-6) and (c, d) == pytest.approx((1.0, 2.0), abs=1e-6)


@pytest.mark.parametrize("rho,D1,D2,active", [(0.9, 0.1, 0.1, True), (0.5, 0.2, 0.05, True),
                                              (0.8, 0.3, 0.1, True), (0.95, 0.05, 0.2, False)])
def test_berger_tung_corners_boundary_and_bounds(rho, D1, D2, active):
    """``active``: the sum-rate bound is tight. For (0.95, 0.05, 0.2) it is not: describing X
    to D1 = 0.05 already estimates Y to MSE 1 - rho^2 (1 - D1) = 0.143 < D2, so R2 = 0 and
    the cheapest point is (1/2 log2(1/D1), 0), above the sum-rate bound."""
    bt = berger_tung_gaussian(rho, D1, D2)
    r1, r2 = bt.boundary(4000, r_max=bt.corner_points[1][0] + 2.0)
    min_sum = np.nanmin(r1[1:] + r2[1:])
    for x, y in bt.corner_points:
        assert x + y >= bt.sum_rate - 1e-9
        assert x + y == pytest.approx(min_sum, abs=1e-4)  # the corners minimise R1 + R2
        assert bt.contains(x, y) and not bt.contains(x - 1e-6, y - 1e-6)
    (a, b), (c, d) = bt.corner_points
    assert a <= c
    if active:
        assert a + b == pytest.approx(bt.sum_rate, abs=1e-6) and c + d == pytest.approx(bt.sum_rate, abs=1e-6)
        assert bt.min_sum_rate == pytest.approx(bt.sum_rate, abs=1e-6)
    else:
        assert (a, b) == pytest.approx((0.5 * np.log2(1 / D1), 0.0), abs=1e-6)
        assert bt.min_sum_rate > bt.sum_rate + 0.1
    # the segment between the corners is achievable (dominant face), beyond it is not
    for t in np.linspace(0, 1, 7):
        assert bt.contains(a + t * (c - a), b + t * (d - b))
    # smallest sum rate >= joint RD lower bounds: Shannon lower bound and each single source
    assert bt.min_sum_rate >= 0.5 * np.log2((1 - rho**2) / (D1 * D2)) - 1e-12
    assert bt.min_sum_rate >= 0.5 * np.log2(1 / min(D1, D2)) - 1e-9
    # separate coding (ignoring correlation) is achievable, and the WZ asymptote is R1's floor
    assert bt.contains(0.5 * np.log2(1 / D1), 0.5 * np.log2(1 / D2))
    assert bt.r1_min == pytest.approx(wyner_ziv_gaussian(1.0, rho, D1), abs=1e-15)
    assert not bt.contains(bt.r1_min - 1e-3, 50.0) and bt.contains(bt.r1_min + 1e-3, 50.0)
    r1, r2 = bt.boundary(100)
    assert np.all(bt.contains(r1[1:], r2[1:] + 1e-9))
    assert not np.any(bt.contains(r1[1:], r2[1:] - 1e-3))
    # convexity of the region: midpoints of boundary points are inside
    assert np.all(bt.contains(0.5 * (r1[1:-1] + r1[2:]), 0.5 * (r2[1:-1] + r2[2:]) + 1e-9))


def test_berger_tung_symmetry_and_high_resolution_limit():
    bt, tb = berger_tung_gaussian(0.7, 0.1, 0.3), berger_tung_gaussian(0.7, 0.3, 0.1)
    (a, b), (c, d) = bt.corner_points
    (e, f), (g, h) = tb.corner_points
    assert (a, b, c, d) == pytest.approx((h, g, f, e), abs=1e-6)
    # D1 = D2 = D <= 1 - rho: the joint (cooperative) RD is 1/2 log((1-rho^2)/D^2); the BT
    # sum rate exceeds it, and the gap vanishes as D -> 0
    rho = 0.9
    gaps = []
    for D in (0.08, 0.02, 0.005, 1e-4):
        s = berger_tung_gaussian(rho, D, D).sum_rate
        joint = 0.5 * np.log2((1 - rho**2) / D**2)
        assert s > joint
        gaps.append(s - joint)
    assert np.all(np.diff(gaps) < 0) and gaps[-1] < 1e-3


@pytest.mark.parametrize("kw,msg", [(dict(rho=1.0, D1=0.1, D2=0.1), "rho"),
                                    (dict(rho=0.5, D1=0.0, D2=0.1), "D1"),
                                    (dict(rho=0.5, D1=0.1, D2=np.nan), "D2")])
def test_berger_tung_rejects_bad_input(kw, msg):
    with pytest.raises(ValueError, match=msg):
        berger_tung_gaussian(**kw)
