"""Nested (coset) scalar quantisation for the quadratic Gaussian WZ problem."""

import numpy as np
import pytest

from toy_sources.codes.wyner_ziv import (
    GaussianSideInfoSource,
    NestedScalarQuantizer,
    exact_performance,
    gap_db,
    no_side_info_distortion_gaussian,
    optimise_nested,
    scalar_quantizer_gap_db,
    wz_distortion_gaussian,
)


def test_bounds_closed_forms_and_agreement_with_bounds_module():
    assert wz_distortion_gaussian(1.0, 0.6, 1.0) == pytest.approx(0.16)
    assert no_side_info_distortion_gaussian(2.0, 2.0) == pytest.approx(2.0 / 16)
    bounds = pytest.importorskip("toy_sources.bounds")
    for rho in (0.3, 0.9):
        for R in (0.5, 1.0, 2.5):
            D = wz_distortion_gaussian(1.7, rho, R)
            assert bounds.wyner_ziv_gaussian(1.7, rho, D) == pytest.approx(R)


def test_fine_quantiser_noiseless_agreement():
    # ρ -> 1 and a fine quantiser: the decoder lands in the cell of x (error < one step)
    src = GaussianSideInfoSource(1.0, 1 - 1e-9)  # s = 4.5e-5 << step
    x, y = src.sample(20_000, 0)
    for M in (None, 4):
        q = NestedScalarQuantizer(1e-3, M)
        xh = q.decode(q.encode(x), y, src)
        np.testing.assert_array_equal(q.quantize(xh), q.quantize(x))
        assert np.max(np.abs(xh - x)) <= 1e-3


def test_coset_decoding_correct_when_y_is_close():
    # coset spacing MΔ = 8Δ = 40 s: the cell nearest to E[X|y] is always the right one
    src = GaussianSideInfoSource(1.0, 0.999)
    s = src.cond_std
    q = NestedScalarQuantizer(5 * s, 8)
    x, y = src.sample(50_000, 1)
    xh = q.decode(q.encode(x), y, src)
    np.testing.assert_array_equal(q.quantize(xh), q.quantize(x))
    r = exact_performance(q, src)
    assert r["p_coset_error"] < 1e-12


@pytest.mark.parametrize("M", [None, 3, 8])
def test_exact_performance_matches_samples(M):
    src = GaussianSideInfoSource(1.0, 0.9)
    q = NestedScalarQuantizer(0.7 * src.cond_std, M)
    r = exact_performance(q, src)
    x, y = src.sample(100_000, 2)
    mse = np.mean((q.decode(q.encode(x), y, src) - x) ** 2)
    assert mse == pytest.approx(r["mse"], rel=0.04)
    # conditional range coding (oracle) length ≈ H(C|Y) within 1 %
    data, _ = q.code_conditional(x, y, src)
    assert 8 * len(data) / x.size == pytest.approx(r["h_index_given_y"], rel=0.01)
    if M is not None:
        data, c = q.code_marginal(x, src)
        assert 8 * len(data) / x.size == pytest.approx(r["h_index"], rel=0.01)
        np.testing.assert_allclose(q.decode_marginal(data, x.size, y, src), q.decode(c, y, src))


def test_high_rate_gap_is_the_scalar_quantiser_gap():
    src = GaussianSideInfoSource(1.0, 0.8)
    q = NestedScalarQuantizer(0.02 * src.cond_std)
    r = exact_performance(q, src)
    assert r["mse"] == pytest.approx(q.step**2 / 12, rel=1e-3)
    g = gap_db(r["mse"], src.d_wz(r["h_index_given_y"]))
    assert g == pytest.approx(scalar_quantizer_gap_db(), abs=0.01)


def test_binning_lowers_the_rate_and_chain_rule():
    src = GaussianSideInfoSource(1.0, 0.95)
    fine = exact_performance(NestedScalarQuantizer(0.5 * src.cond_std), src)
    binned = exact_performance(NestedScalarQuantizer(0.5 * src.cond_std, 16), src)
    assert binned["h_index_given_y"] <= fine["h_index_given_y"] + 1e-9
    assert binned["h_index"] <= 4.0 + 1e-9
    assert binned["h_fine_given_y"] == pytest.approx(fine["h_index_given_y"])


def test_pmfs_are_normalised():
    src = GaussianSideInfoSource(1.0, 0.9)
    q = NestedScalarQuantizer(0.3, 5)
    assert q.marginal_pmf(src).sum() == pytest.approx(1.0)
    P = q.conditional_pmf(np.array([-1.0, 0.0, 2.5]), src)
    np.testing.assert_allclose(P.sum(1), 1.0)


def test_optimised_front_beats_no_side_info_and_approaches_wz():
    src = GaussianSideInfoSource(1.0, 0.95)
    front = optimise_nested(src, "ideal_sw", n_grid=64)
    for p in front:
        if 0.2 < p["rate"] < 3:
            assert p["mse"] < src.d_no_si(p["rate"])
            assert 0 < gap_db(p["mse"], src.d_wz(p["rate"])) < scalar_quantizer_gap_db() + 0.02


def test_bad_input():
    with pytest.raises(ValueError, match="step"):
        NestedScalarQuantizer(-1.0)
    with pytest.raises(ValueError, match="n_cosets"):
        NestedScalarQuantizer(1.0, 0)
    with pytest.raises(ValueError, match="rho"):
        GaussianSideInfoSource(1.0, 1.0)
    q = NestedScalarQuantizer(1.0, 4)
    src = GaussianSideInfoSource()
    with pytest.raises(ValueError, match="NaN"):
        q.encode(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        q.encode(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape of y"):
        q.decode(np.array([0, 1]), np.zeros(3), src)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        q.decode(np.array([0, 4]), np.zeros(2), src)
    with pytest.raises(ValueError, match="unknown rate"):
        optimise_nested(src, "bogus")
    with pytest.raises(ValueError, match="finite n_cosets"):
        NestedScalarQuantizer(1.0).marginal_pmf(src)


def test_ldpc_bitplane_code_is_lossless_and_above_entropy():
    from toy_sources.codes.wz_ldpc import LDPCWynerZiv

    src = GaussianSideInfoSource(1.0, 0.95)
    w = LDPCWynerZiv(1.1 * src.cond_std, 3, src, block=1000, levels=50, seed=0)
    x, y = src.sample(2000, 5)
    r = w.run(x, y)
    assert r["index_errors"] == 0
    assert r["h_index_given_y"] < r["rate_coded"] < 3.0
    assert r["mse"] < src.d_no_si(r["rate_coded"])
    with pytest.raises(ValueError, match="multiple of block"):
        w.run(x[:1500], y[:1500])
