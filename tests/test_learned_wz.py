"""The learned Wyner–Ziv compressor: beats the no-side-information bound, real coding."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from toy_sources.codes.learned_wz import (  # noqa: E402
    LearnedWZ,
    LearnedWZConfig,
    evaluate_learned_wz,
    index_intervals,
    lambda_for_distortion,
    train_learned_wz,
)

FAST = dict(rho=0.95, lam=40.0, n_indices=8, n_features=32, hidden=32, steps=250, batch_size=512,
            warmup_steps=60, seed=0)


@pytest.fixture(scope="module")
def trained():
    model, log = train_learned_wz(LearnedWZConfig(**FAST))
    return model, log


def test_marginal_model_beats_no_side_information_bound(trained):
    model, log = trained
    ev = evaluate_learned_wz(model, n=20_000, seed=99)  # held-out samples (training used seed 0)
    assert ev["coded_without_y"]
    assert 0.05 < ev["rate_coded"] < 3.0
    # below σ² 2^{-2R} at the real coded rate (a bound no code without y can beat)
    assert ev["mse"] < ev["d_no_si"]
    assert ev["gap_no_si_db"] < -1.0
    # and never below the Wyner–Ziv bound
    assert ev["mse"] > ev["d_wz"]
    # coded bits vs the ideal length under the learned marginal: within 1 % (+ one word)
    assert ev["rate_coded"] <= ev["rate_entropy"] * 1.01 + 32 / 20_000


def test_compress_round_trip_exact(trained):
    model, _ = trained
    rng = np.random.default_rng(1)
    y = rng.standard_normal(3000)
    x = 0.95 * y + 0.3 * rng.standard_normal(3000)
    data, u = model.compress(x)
    np.testing.assert_array_equal(model.decompress(data, y), model.decode(u, y))


def test_intervals_partition_the_line(trained):
    model, _ = trained
    iv = index_intervals(model)
    total = sum(p for *_, p in iv["intervals"])
    assert total == pytest.approx(1.0, abs=1e-3)
    assert sum(iv["per_index"].values()) == len(iv["intervals"])
    # adjacent intervals carry different indices
    idx = [k for k, *_ in iv["intervals"]]
    assert all(a != b for a, b in zip(idx, idx[1:])) or len(idx) == 1


def test_seeded_training_is_reproducible():
    cfg = LearnedWZConfig(**{**FAST, "steps": 5})
    a, _ = train_learned_wz(cfg)
    b, _ = train_learned_wz(cfg)
    x = np.linspace(-3, 3, 101)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    np.testing.assert_allclose(a.prior(), b.prior())


def test_conditional_rate_model_round_trip():
    cfg = LearnedWZConfig(**{**FAST, "steps": 5, "rate_model": "conditional"})
    model, _ = train_learned_wz(cfg)
    rng = np.random.default_rng(2)
    y = rng.standard_normal(500)
    x = 0.95 * y + 0.3 * rng.standard_normal(500)
    assert model.prior(y).shape == (500, 8)
    data, u = model.compress(x, y)
    np.testing.assert_array_equal(model.decompress(data, y), model.decode(u, y))
    with pytest.raises(ValueError, match="needs y"):
        model.prior()


def test_lambda_for_distortion():
    assert lambda_for_distortion(1 / (2 * np.log(2))) == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown config keys"):
        LearnedWZConfig.from_dict({"lam": 1.0, "lamda": 2.0})
    with pytest.raises(ValueError, match="rate_model"):
        LearnedWZConfig(rate_model="joint")
    with pytest.raises(ValueError, match="rho"):
        LearnedWZConfig(rho=1.5)
    model = LearnedWZ(LearnedWZConfig(n_indices=4, hidden=8, n_features=8))
    with pytest.raises(ValueError, match="NaN"):
        model.encode(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        model.encode(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        model.decode(np.array([0, 7]), np.zeros(2))
