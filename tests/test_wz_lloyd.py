"""One-shot scalar Wyner–Ziv codes by entropy-constrained Lloyd: closed forms and bounds."""

import numpy as np
import pytest

from toy_sources.codes.wyner_ziv import (
    GaussianSideInfoSource,
    NestedScalarQuantizer,
    exact_performance,
    scalar_quantizer_gap_db,
)
from toy_sources.codes.wz_lloyd import (
    WZGrid,
    hull_distortion,
    lloyd_wz,
    lower_convex_hull,
    one_shot_curve,
    periodic_inits,
    uniform_threshold_ecsq,
)


@pytest.fixture(scope="module")
def grid0():
    return WZGrid(rho=0.0, n_x=801, y_per_s=4)


@pytest.fixture(scope="module")
def grid9():
    return WZGrid(rho=0.9, n_x=801, y_per_s=10)


def test_rho0_sign_quantiser_is_one_bit_at_1_minus_2_over_pi(grid0):
    res = lloyd_wz(grid0, (grid0.x >= 0).astype(int), lam=10.0)
    assert res["converged"]
    assert res["rate"] == pytest.approx(1.0, abs=1e-3)
    assert res["mse"] == pytest.approx(1 - 2 / np.pi, abs=1e-3)  # 2-level Lloyd–Max quantiser of N(0,1)
    # no side information: the SW rate is the marginal rate
    assert res["h_m_given_y"] == pytest.approx(res["h_m"], abs=1e-6)


def test_rho0_curve_is_entropy_constrained_scalar_quantisation(grid0):
    inits = [(lab, a) for lab, a in periodic_inits(grid0) if lab == "sign" or lab.startswith("K=1,")]
    c = one_shot_curve(rate="marginal", grid=grid0, lams=[1.0, 2.0, 3.0, 5.0], inits=inits, refine=0)
    d1 = hull_distortion(c["hull"], 1.0)
    # ECSQ at 1 bit is at least as good as the 2-level quantiser, and above D(R) = 2^{-2R}
    assert 0.25 < d1 <= 1 - 2 / np.pi + 1e-4
    assert all(p["mse"] > 2.0 ** (-2 * p["rate"]) for p in c["points"])


def test_rho0_lloyd_matches_closed_form_uniform_threshold_ecsq(grid0):
    """Two independent computations of the ρ = 0 one-shot optimum (an ECSQ of N(0, 1)) agree."""
    inits = [(lab, a) for lab, a in periodic_inits(grid0) if lab == "sign" or lab.startswith("K=1,")]
    lams = 1 / (2 * np.log(2) * 1.4 * 2.0 ** (-2 * np.array([0.75, 1.0, 1.25, 1.5, 1.75])))
    c = one_shot_curve(rate="marginal", grid=grid0, lams=lams, inits=inits, refine=0)
    # at 1 bit the hull time-shares between sparse points, hence the wider tolerance
    for R, tol in ((1.0, 0.1), (1.25, 0.02), (1.5, 0.02)):
        lloyd = 10 * np.log10(hull_distortion(c["hull"], R) / 2.0 ** (-2 * R))
        utq = uniform_threshold_ecsq(R)["gap_db"]
        assert utq - 0.02 <= lloyd <= utq + tol, (R, lloyd, utq)


def test_uniform_threshold_ecsq_gap_rises_to_the_scalar_quantisation_loss():
    gaps = [uniform_threshold_ecsq(R)["gap_db"] for R in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)]
    assert all(b >= a - 1e-3 for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[1] < 1.0 < gaps[2]  # within 1 dB of D(R) at 0.5 bit, not at 1 bit
    assert gaps[-1] == pytest.approx(scalar_quantizer_gap_db(), abs=0.01)  # Gish–Pierce 1.53 dB
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            uniform_threshold_ecsq(bad)


def test_lloyd_lagrangian_never_increases(grid9):
    for rate in ("marginal", "sw"):
        for lab, a0 in periodic_inits(grid9, n_cosets=(1, 3, 6), steps_in_s=(1.0,), phases=(0.0,)):
            J = [h["J"] for h in lloyd_wz(grid9, a0, 20.0, rate)["history"]]
            assert all(b <= a + 1e-9 for a, b in zip(J, J[1:])), (rate, lab, J)


def test_distortion_falls_with_lambda(grid0):
    q = np.floor(grid0.x / 0.3).astype(int)
    a0 = q - q.min()  # a fine uniform quantiser
    res = [lloyd_wz(grid0, a0, lam) for lam in (1.0, 2.0, 4.0, 8.0, 16.0)]
    mse = [r["mse"] for r in res]
    rate = [r["rate"] for r in res]
    assert all(b < a for a, b in zip(mse, mse[1:])), mse
    assert all(b > a for a, b in zip(rate, rate[1:])), rate


def test_grid_matches_exact_nested_quantiser_integrals(grid9):
    """Iteration 0 of a uniform / coset map equals wyner_ziv.exact_performance (an independent code)."""
    src = GaussianSideInfoSource(1.0, 0.9)
    step = 0.25
    q = np.floor(grid9.x / step + 0.5).astype(int)  # mid-tread cells, as NestedScalarQuantizer
    h0 = lloyd_wz(grid9, q - q.min(), 1.0, "sw", max_iter=1)["history"][0]
    ex = exact_performance(NestedScalarQuantizer(step), src, n_grid=128)
    assert h0["h_m_given_y"] == pytest.approx(ex["h_index_given_y"], abs=0.02)
    assert h0["mse"] == pytest.approx(ex["mse"], rel=0.03)
    h1 = lloyd_wz(grid9, np.mod(q, 4), 1.0, "marginal", max_iter=1)["history"][0]
    ex4 = exact_performance(NestedScalarQuantizer(step, 4), src, n_grid=128)
    assert h1["h_m"] == pytest.approx(ex4["h_index"], abs=0.01)
    assert h1["mse"] == pytest.approx(ex4["mse"], rel=0.03)


def test_one_shot_curves_lie_above_wyner_ziv_and_sw_below_marginal(grid9):
    src = GaussianSideInfoSource(1.0, 0.9)
    inits = periodic_inits(grid9, n_cosets=(1, 2, 4, 8), steps_in_s=(0.75, 1.5), phases=(0.0,))
    lams = [5.0, 15.0, 40.0]
    cm = one_shot_curve(rate="marginal", grid=grid9, lams=lams, inits=inits, refine=0)
    cs = one_shot_curve(rate="sw", grid=grid9, lams=lams, inits=inits, refine=0)
    for c in (cm, cs):
        assert all(p["mse"] > src.d_wz(p["rate"]) for p in c["points"])  # WZ converse
        assert all(p["h_m_given_y"] <= p["h_m"] + 1e-9 for p in c["points"])  # conditioning
    # the ideal-SW curve is at least as good as the marginal one where both are defined
    for R in (0.5, 1.0, 1.5):
        dm, ds = hull_distortion(cm["hull"], R), hull_distortion(cs["hull"], R)
        if np.isfinite(dm) and np.isfinite(ds):
            assert ds <= dm * 1.001
    # and the marginal (real) one-shot curve beats no side information
    assert all(d < src.d_no_si(r) for r, d in cm["hull"] if r > 0.2)


def test_lower_convex_hull():
    pts = [(0.0, 1.0), (1.0, 0.7), (1.0, 0.4), (2.0, 0.2), (1.5, 0.5), (3.0, 0.19)]
    assert lower_convex_hull(pts) == [(0.0, 1.0), (1.0, 0.4), (2.0, 0.2), (3.0, 0.19)]
    assert hull_distortion(lower_convex_hull(pts), 1.5) == pytest.approx(0.3)
    assert np.isnan(hull_distortion(lower_convex_hull(pts), 3.5))


def test_bad_input(grid0):
    with pytest.raises(ValueError, match="unknown rate 'joint'"):
        lloyd_wz(grid0, np.zeros(grid0.n_x, int), 1.0, rate="joint")
    with pytest.raises(ValueError, match="assign must be"):
        lloyd_wz(grid0, np.zeros(5, int), 1.0)
    with pytest.raises(ValueError, match="lam"):
        lloyd_wz(grid0, np.zeros(grid0.n_x, int), float("nan"))
    with pytest.raises(ValueError, match="rho"):
        WZGrid(rho=1.0)
    with pytest.raises(ValueError, match="n_x"):
        WZGrid(n_x=2)
