"""JointPMF: validation, known values, and Shannon identities on random pmfs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toy_sources.pmf import (
    JointPMF,
    conditional_entropy,
    entropy,
    mutual_information,
    random_pmf,
)

TOL = 1e-10


def h2(p):
    return -p * np.log2(p) - (1 - p) * np.log2(1 - p)


# ------------------------------------------------------------------ known values
def test_fair_coin_is_one_bit():
    assert JointPMF([0.5, 0.5], ["X"]).H() == pytest.approx(1.0, abs=TOL)


def test_uniform_entropy_is_log_alphabet():
    assert JointPMF(np.full(8, 1 / 8), "X").H() == pytest.approx(3.0, abs=TOL)


def test_xor_pairwise_independent_but_conditionally_dependent():
    xor = JointPMF.from_function(lambda x, y: (x, y, x ^ y), (2, 2), (2, 2, 2), ["X", "Y", "Z"])
    assert xor.I("X", "Y") == pytest.approx(0.0, abs=TOL)
    assert xor.I("X", "Y", given="Z") == pytest.approx(1.0, abs=TOL)
    assert xor.I(["X", "Y"], "Z") == pytest.approx(1.0, abs=TOL)
    assert xor.H() == pytest.approx(2.0, abs=TOL)


def test_bsc_mutual_information_matches_one_minus_h():
    for p in (0.01, 0.11, 0.3):
        pmf = JointPMF([0.5, 0.5], ["X"]).add_variable("Y", [[1 - p, p], [p, 1 - p]], "X")
        assert pmf.I("X", "Y") == pytest.approx(1 - h2(p), abs=TOL)
        assert pmf.H("X", given="Y") == pytest.approx(h2(p), abs=TOL)


# ------------------------------------------------------------------ identities
@pytest.mark.parametrize("seed", range(10))
def test_identities_on_random_pmfs(seed):
    pmf = random_pmf((2, 3, 4), ["X", "Y", "Z"], rng=seed)
    # chain rule H(X,Y) = H(X) + H(Y|X)
    assert pmf.H("X", "Y") == pytest.approx(pmf.H("X") + pmf.H("Y", given="X"), abs=TOL)
    # chain rule in the two orders of Eqs. 25-26
    lhs = pmf.H("Z") + pmf.H("Y", given="Z") + pmf.H("X", given=["Y", "Z"])
    rhs = pmf.H("Z") + pmf.H("X", given="Z") + pmf.H("Y", given=["X", "Z"])
    assert lhs == pytest.approx(rhs, abs=TOL) and lhs == pytest.approx(pmf.H(), abs=TOL)
    # CMI >= 0, MI >= 0, symmetry
    assert pmf.I("X", "Y", given="Z") >= -TOL
    assert pmf.I("X", "Y") == pytest.approx(pmf.I("Y", "X"), abs=TOL)
    # I(X;X) = H(X), I(X;X|Z) = H(X|Z)
    assert pmf.I("X", "X") == pytest.approx(pmf.H("X"), abs=TOL)
    assert pmf.I("X", "X", given="Z") == pytest.approx(pmf.H("X", given="Z"), abs=TOL)
    # Eq. 28: H(X|Y,Z) = H(X|Y) - I(X;Z|Y)
    assert pmf.H("X", given=["Y", "Z"]) == pytest.approx(
        pmf.H("X", given="Y") - pmf.I("X", "Z", given="Y"), abs=TOL
    )
    # conditioning reduces entropy
    assert pmf.H("X", given=["Y", "Z"]) <= pmf.H("X", given="Y") + TOL <= pmf.H("X") + 2 * TOL


@pytest.mark.parametrize("seed", range(10))
def test_data_processing_on_markov_chains(seed):
    rng = np.random.default_rng(seed)
    x = random_pmf((3,), ["X"], rng=rng)
    ch1 = rng.dirichlet(np.ones(4), size=3)
    ch2 = rng.dirichlet(np.ones(3), size=4)
    pmf = x.add_variable("Y", ch1, "X").add_variable("Z", ch2, "Y")  # X - Y - Z
    assert pmf.I("X", "Z", given="Y") == pytest.approx(0.0, abs=TOL)
    assert pmf.I("X", "Z") <= pmf.I("X", "Y") + TOL
    assert pmf.I("X", "Z") <= pmf.I("Y", "Z") + TOL


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8).filter(lambda w: sum(w) > 1e-3),
)
def test_hypothesis_cmi_nonnegative_and_chain_rule(w):
    pmf = JointPMF(np.reshape(w, (2, 2, 2)), ["A", "B", "C"], normalize=True)
    assert pmf.I("A", "B", given="C") >= -1e-9
    assert pmf.H() == pytest.approx(pmf.H("A") + pmf.H("B", given="A") + pmf.H("C", given=["A", "B"]), abs=1e-9)


def test_functions_and_methods_agree():
    pmf = random_pmf((2, 2, 3), ["X", "Y", "Z"], rng=7)
    assert entropy(pmf, ["X", "Z"]) == pmf.H("X", "Z")
    assert conditional_entropy(pmf, "X", ["Y"]) == pmf.H("X", given="Y")
    assert mutual_information(pmf, "X", ["Y", "Z"]) == pmf.I("X", ["Y", "Z"])


# ------------------------------------------------------------------ operations
def test_marginal_order_and_values():
    pmf = random_pmf((2, 3, 4), ["X", "Y", "Z"], rng=1)
    m = pmf.marginal("Z", "X")
    assert m.names == ("Z", "X") and m.shape == (4, 2)
    np.testing.assert_allclose(m.p, pmf.p.sum(axis=1).T)


def test_condition_and_conditional():
    pmf = random_pmf((2, 3), ["X", "Y"], rng=2)
    c = pmf.conditional("X", given="Y")  # [y, x]
    np.testing.assert_allclose(c, (pmf.p / pmf.p.sum(axis=0)).T)
    np.testing.assert_allclose(pmf.condition(Y=1).p, c[1])
    np.testing.assert_allclose(c.sum(axis=1), 1.0)


def test_add_variable_with_reordered_parents():
    pmf = random_pmf((2, 3), ["X", "Y"], rng=3)
    rng = np.random.default_rng(0)
    ch = rng.dirichlet(np.ones(2), size=(3, 2))  # indexed [y, x, z]
    out = pmf.add_variable("Z", ch, ["Y", "X"])
    expected = pmf.p[:, :, None] * np.transpose(ch, (1, 0, 2))
    np.testing.assert_allclose(out.p, expected)


def test_sample_and_from_samples_round_trip():
    pmf = random_pmf((2, 3), ["X", "Y"], rng=4)
    s = pmf.sample(200_000, rng=5)
    emp = JointPMF.from_samples(s, ["X", "Y"], shape=(2, 3))
    np.testing.assert_allclose(emp.p, pmf.p, atol=5e-3)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "array, names, match",
    [
        ([0.5, -0.1, 0.6], ["X"], "non-negative"),
        ([0.5, 0.6], ["X"], "sum to 1"),
        ([0.5, np.nan], ["X"], "NaN"),
        ([[0.25, 0.25], [0.25, 0.25]], ["X"], "one name per axis"),
        ([[0.25, 0.25], [0.25, 0.25]], ["X", "X"], "repeated"),
    ],
)
def test_validation_errors(array, names, match):
    with pytest.raises(ValueError, match=match):
        JointPMF(array, names)


def test_unknown_names_are_reported():
    pmf = random_pmf((2, 2), ["X", "Y"], rng=0)
    with pytest.raises(KeyError, match="unknown variable 'W'.*expected one of: X, Y"):
        pmf.H("W")
    with pytest.raises(KeyError, match="unknown variable 'W'"):
        pmf.I("X", "Y", given="W")
    with pytest.raises(KeyError):
        pmf.marginal("Q")
    with pytest.raises(ValueError, match="repeated"):
        pmf.marginal("X", "X")


def test_random_pmf_requires_explicit_randomness():
    with pytest.raises(TypeError, match="rng"):
        random_pmf((2,), ["X"], rng=None)
    assert np.array_equal(random_pmf((3,), ["X"], rng=1).p, random_pmf((3,), ["X"], rng=1).p)
