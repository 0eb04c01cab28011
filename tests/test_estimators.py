"""Sample estimators converge to exact values; bias correction helps; CIs are sane."""

import numpy as np
import pytest

from toy_sources import estimators as E
from toy_sources.sources import MultimodalToy, dsbs, gaussian_markov_triple, gaussian_pair, gaussian_side_information
from toy_sources.pmf import random_pmf


def test_known_small_sample_values():
    assert E.entropy([0, 1, 2, 3]) == pytest.approx(2.0)
    assert E.mutual_information([0, 0, 1, 1], [0, 0, 1, 1]) == pytest.approx(1.0)
    # Miller-Madow adds (m - 1) / (2 n ln 2)
    assert E.entropy([0, 1, 2, 3], "miller_madow") == pytest.approx(2 + 3 / (8 * np.log(2)))


def test_columns_form_a_joint_symbol():
    s = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    assert E.entropy(s) == pytest.approx(2.0)


def test_jackknife_of_entropy_matches_bruteforce_leave_one_out():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=60)
    loo = np.array([E.entropy(np.delete(x, i)) for i in range(x.size)])
    n = x.size
    want = n * E.entropy(x) - (n - 1) / n * loo.sum()
    assert E.entropy(x, "jackknife") == pytest.approx(want, abs=1e-9)


def test_jackknife_cmi_matches_bruteforce():
    s = MultimodalToy(0.5).sample(80, rng=3)
    x, t, v = s[:, 0], s[:, 3], s[:, 1]
    n = x.size
    loo = np.array([E.mutual_information(np.delete(x, i), np.delete(t, i), np.delete(v, i)) for i in range(n)])
    want = n * E.mutual_information(x, t, v) - (n - 1) / n * loo.sum()
    assert E.mutual_information(x, t, v, method="jackknife") == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("method", E.METHODS)
def test_discrete_cmi_converges_on_multimodal_toy(method):
    toy = MultimodalToy(0.6, 0.1, 0.1)
    exact = toy.pmf().I("X", "T", given="V_X")
    s = toy.sample(200_000, rng=1)
    assert E.mutual_information(s[:, 0], s[:, 3], s[:, 1], method=method) == pytest.approx(exact, abs=0.01)


def test_bias_correction_reduces_bias_on_average():
    pmf = random_pmf((6, 6), ["X", "Y"], rng=0)
    exact = pmf.H("X", "Y")
    err = {m: [] for m in E.METHODS}
    for seed in range(30):
        s = pmf.sample(100, rng=seed)
        for m in E.METHODS:
            err[m].append(E.entropy(s, m) - exact)
    bias = {m: abs(np.mean(v)) for m, v in err.items()}
    assert bias["miller_madow"] < bias["plugin"]
    assert bias["jackknife"] < bias["plugin"]
    assert np.mean(err["plugin"]) < 0  # plug-in entropy is biased low


def test_bootstrap_ci_contains_truth_and_is_reproducible():
    s = dsbs(0.1).sample(5000, rng=4)
    exact = dsbs(0.1).I("X", "Y")
    a = E.mutual_information_ci(s[:, 0], s[:, 1], method="miller_madow", n_boot=200, rng=5)
    b = E.mutual_information_ci(s[:, 0], s[:, 1], method="miller_madow", n_boot=200, rng=5)
    assert a == b
    assert a.low < a.value < a.high and a.contains(exact)
    # (not at the boundary: the percentile bootstrap of H(X) = 1 bit = max cannot cover it)
    h = E.entropy_ci(s, method="miller_madow", n_boot=200, rng=0)
    assert h.contains(dsbs(0.1).H())


def test_ci_coverage_roughly_nominal():
    toy = MultimodalToy(0.5, 0.1, 0.1)
    exact = toy.pmf().I("X", "T", given="V_X")
    hits = 0
    for seed in range(20):
        s = toy.sample(3000, rng=100 + seed)
        hits += E.mutual_information_ci(s[:, 0], s[:, 3], s[:, 1], "miller_madow", n_boot=100, rng=seed).contains(exact)
    assert hits >= 15  # nominal 95 %: P(hits < 15 | p=.95) < 1e-3


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ksg_converges_to_gaussian_mi(rho):
    s = gaussian_pair(rho).sample(20_000, rng=0)
    est = E.ksg_mutual_information(s[:, 0], s[:, 1], k=3)
    exact = -0.5 * np.log2(1 - rho**2)
    assert est.value == pytest.approx(exact, abs=0.03)
    assert est.low < est.value < est.high


def test_ksg_independent_is_near_zero():
    rng = np.random.default_rng(1)
    est = E.ksg_mutual_information(rng.standard_normal(5000), rng.standard_normal(5000))
    assert abs(est.value) < 0.02


def test_frenzel_pompe_cmi():
    src = gaussian_side_information(0.8, 0.6)
    s = src.sample(20_000, rng=2)
    est = E.ksg_conditional_mutual_information(s[:, 0], s[:, 2], s[:, 1])
    assert est.value == pytest.approx(src.I("X", "T", given="V"), abs=0.03)
    m = gaussian_markov_triple(0.9, 0.9).sample(10_000, rng=3)
    assert abs(E.ksg_conditional_mutual_information(m[:, 0], m[:, 2], m[:, 1]).value) < 0.03


def test_validation_errors():
    with pytest.raises(ValueError, match="unknown method 'mle'"):
        E.entropy([0, 1], "mle")
    with pytest.raises(TypeError, match="integer symbols"):
        E.entropy([0.5, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        E.entropy([0.0, np.nan])
    with pytest.raises(ValueError, match="same number of samples"):
        E.mutual_information([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        E.entropy(np.array([], dtype=int))
    with pytest.raises(ValueError, match="NaN or inf"):
        E.ksg_mutual_information([0.0, np.nan, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="more samples than k"):
        E.ksg_mutual_information([0.0, 1.0], [1.0, 2.0], k=3)
