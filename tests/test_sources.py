"""Toy sources: DSBS, Gaussian sources, and the multimodal toy against closed forms."""

import numpy as np
import pytest

from toy_sources.bounds import binary_entropy
from toy_sources.sources import (
    MultimodalToy,
    dsbs,
    gaussian_markov_triple,
    gaussian_pair,
    gaussian_side_information,
    multimodal_toy,
    sample_dsbs,
)

TOL = 1e-10


@pytest.mark.parametrize("p", [0.0, 0.05, 0.11, 0.5])
def test_dsbs_conditional_entropy_is_binary_entropy(p):
    pmf = dsbs(p)
    assert pmf.H("X", given="Y") == pytest.approx(binary_entropy(p), abs=TOL)
    assert pmf.H("X", "Y") == pytest.approx(1 + binary_entropy(p), abs=TOL)
    assert pmf.I("X", "Y") == pytest.approx(1 - binary_entropy(p), abs=TOL)


def test_sample_dsbs_flip_rate_and_shape():
    x, y = sample_dsbs(0.2, (50, 2000), rng=0)
    assert x.shape == y.shape == (50, 2000) and x.dtype == np.uint8
    assert np.mean(x ^ y) == pytest.approx(0.2, abs=0.01)
    assert np.mean(x) == pytest.approx(0.5, abs=0.01)


def test_dsbs_rejects_bad_p():
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p must lie in"):
            dsbs(bad)


def test_gaussian_pair_mi_and_sampler():
    src = gaussian_pair(0.6, var_x=2.0, var_y=0.5)
    assert src.I("X", "Y") == pytest.approx(-0.5 * np.log2(1 - 0.36), abs=TOL)
    s = src.sample(100_000, rng=1)
    np.testing.assert_allclose(np.cov(s.T), src.cov, atol=0.03)


def test_gaussian_markov_triple():
    src = gaussian_markov_triple(0.9, 0.7)
    assert src.I("X", "Y", given="W") == pytest.approx(0.0, abs=1e-9)
    assert src.I("X", "Y") == pytest.approx(-0.5 * np.log2(1 - 0.63**2), abs=TOL)
    assert src.I("X", "Y") <= min(src.I("X", "W"), src.I("W", "Y"))


def test_gaussian_side_information_text_off_gives_no_gain():
    src = gaussian_side_information(0.8, 0.0)
    assert src.I("X", "T", given="V") == pytest.approx(0.0, abs=1e-12)
    assert src.conditional_variance("X", "V") == pytest.approx(0.36, abs=TOL)
    with pytest.raises(KeyError, match="unknown variable 'Q'"):
        src.I("X", "Q")


# --------------------------------------------------------------------- multimodal toy
GRID = [(r, eps, nu) for r in (0.0, 0.3, 1.0) for eps in (0.0, 0.1, 0.25) for nu in (0.0, 0.2)]


@pytest.mark.parametrize("r, eps, nu", GRID)
def test_multimodal_toy_matches_closed_forms(r, eps, nu):
    toy = MultimodalToy(text_informativeness=r, view_noise=eps, vision_noise=nu)
    pmf, th = toy.pmf(), toy.theory()
    assert pmf.H("X", given=["V_X", "V_Y"]) == pytest.approx(th["H(X|V_X,V_Y)"], abs=TOL)
    assert pmf.I("X", "T", given="V_X") == pytest.approx(th["I(X;T|V_X)"], abs=TOL)
    assert pmf.H("X", given=["V_X", "V_Y", "T"]) == pytest.approx(th["H(X|V_X,V_Y,T)"], abs=TOL)


@pytest.mark.parametrize("r, eps, nu", GRID)
def test_theorem_6_1_and_remarks(r, eps, nu):
    pmf = multimodal_toy(r, eps, nu)
    v = ["V_X", "V_Y"]
    # Eq. 28: H(X|V,T) = H(X|V) - I(X;T|V) ; Eq. 29: <=
    assert pmf.H("X", given=v + ["T"]) == pytest.approx(pmf.H("X", given=v) - pmf.I("X", "T", given=v), abs=TOL)
    assert pmf.H("X", given=v + ["T"]) <= pmf.H("X", given=v) + TOL
    # Eq. 31: V_Y specific to Y does not help
    assert pmf.H("X", given=v + ["T"]) == pytest.approx(pmf.H("X", given=["V_X", "T"]), abs=TOL)
    # Eq. 33: equality iff X independent of T given V
    gain = pmf.I("X", "T", given="V_X")
    assert (gain < 1e-12) == (r == 0 or eps == 0.5)


def test_nuisance_leak_breaks_eq_31():
    pmf = multimodal_toy(0.5, 0.1, 0.1, nuisance_leak=0.5)
    assert pmf.H("X", given=["V_X", "V_Y", "T"]) < pmf.H("X", given=["V_X", "T"]) - 1e-3
    with pytest.raises(ValueError, match="nuisance_leak"):
        MultimodalToy(nuisance_leak=0.5).theory()


@pytest.mark.parametrize("r", [0.2, 1.0])
def test_data_processing_full_y_vs_lossy_v(r):
    toy = MultimodalToy(text_informativeness=r)
    full = toy.pmf(include_y=True)
    assert full.I("X", "T", given="Y") == pytest.approx(0.0, abs=TOL)
    assert full.I("X", "T", given="V_X") > 0.05
    variant = multimodal_toy(r, decoder_has_full_y=True)
    assert variant.I("X", "T", given=["V_X", "V_Y"]) == pytest.approx(0.0, abs=TOL)


def test_multimodal_toy_validation_and_sampling():
    with pytest.raises(ValueError, match="text_informativeness"):
        MultimodalToy(text_informativeness=1.5)
    s = MultimodalToy().sample(1000, rng=0, include_y=True)
    assert s.shape == (1000, 5) and s[:, 0].max() <= 3 and s[:, 3].max() <= 2
