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
            warmup_steps=60, seed=0, lam_start_factor=1.0, restarts=1, decoder_steps=0)


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


def test_restarts_keep_the_best_validation_lagrangian():
    cfg = LearnedWZConfig(**{**FAST, "steps": 20, "warmup_steps": 5, "restarts": 2, "n_indices": 4, "hidden": 8,
                             "n_features": 8})
    model, log = train_learned_wz(cfg)
    assert len(log["val_J"]) == 2
    assert log["restart"] == int(np.argmin(log["val_J"]))
    assert model.config.seed == cfg.seed and model.config.restarts == 2


def test_lambda_annealing_config_checked():
    with pytest.raises(ValueError, match="lam_start_factor"):
        LearnedWZConfig(lam_start_factor=0.5)
    with pytest.raises(ValueError, match="restarts"):
        LearnedWZConfig(restarts=0)
    with pytest.raises(ValueError, match="lam_anneal_frac"):
        LearnedWZConfig(lam_anneal_frac=1.5)


# --- the learned compressor against the one-shot optimum (slow: ~1-2 minutes each) -------
RHO = 0.95
STRONG = dict(rho=RHO, n_indices=16, n_features=64, steps=400, lam_start_factor=4.0, restarts=4)


@pytest.fixture(scope="module")
def lloyd_hull_095():
    from toy_sources.codes.wz_lloyd import WZGrid, one_shot_curve, periodic_inits

    g = WZGrid(1.0, RHO, n_x=601, y_per_s=6)
    return one_shot_curve(rate="marginal", grid=g, n_lams=8, rate_range=(0.2, 2.4),
                          inits=periodic_inits(g, phases=(0.0,)))["hull"]


@pytest.mark.slow
@pytest.mark.parametrize("lam", [30.0, 45.0])
def test_learned_reaches_one_shot_optimum(lam, lloyd_hull_095):
    from toy_sources.codes.wz_lloyd import hull_distortion
    from toy_sources.codes.wyner_ziv import gap_db

    model, _ = train_learned_wz(LearnedWZConfig(lam=lam, seed=0, **{k: v for k, v in STRONG.items()}))
    ev = evaluate_learned_wz(model, n=50_000, seed=4321)
    d_opt = hull_distortion(lloyd_hull_095, ev["rate_coded"])
    assert gap_db(ev["mse"], d_opt) < 0.5  # within a few tenths of a dB of the best one-shot code
    assert ev["mse"] < ev["d_no_si"]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "issue 3 target 'within 1 dB of D_WZ for R in [0.5, 1.5]' is out of reach of ANY one-shot scalar code at "
    "rho = 0.95: the entropy-constrained Lloyd optimum (rate H(M), index coded without y) is 2.06 dB above "
    "D_WZ at R = 0.5, 3.83 dB at R = 1.0, 5.12 dB at 1.5 (wz_lloyd, 801x258 grid; 1.21/1.50/1.57 dB even with "
    "an ideal SW rate H(M|Y)); the learned compressor is 0.2-0.3 dB above that curve (seed 0: +0.20 dB at "
    "1.59 bits, +0.31 dB at 1.99 bits). Even at rho = 0 the best one-shot code (an ECSQ; closed form "
    "uniform_threshold_ecsq) is 1.44 dB off at 1 bit and 1.53 dB at 1.5 bits"))
def test_issue3_one_db_target_at_rho_095(lloyd_hull_095):
    from toy_sources.codes.wz_lloyd import hull_distortion
    from toy_sources.codes.wyner_ziv import GaussianSideInfoSource, gap_db

    src = GaussianSideInfoSource(1.0, RHO)
    gaps = [gap_db(hull_distortion(lloyd_hull_095, R), src.d_wz(R)) for R in (0.5, 1.0, 1.5)]
    assert max(gaps) <= 1.0, gaps


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "issue 3 target 'within 1.53 dB of D_WZ up to 2 bits' (real, marginal-coded index) is out of reach of any "
    "one-shot scalar code at rho = 0.95: the Lloyd optimum is 5.92 dB above D_WZ at 2 bits (4 equiprobable "
    "periodic bins); the learned compressor measures 6.22 dB at 1.99 bits. Only an ideal SW rate H(M|Y) "
    "(oracle) gets within ~1.6 dB"))
def test_issue3_scalar_gap_target_at_rho_095(lloyd_hull_095):
    from toy_sources.codes.wz_lloyd import hull_distortion
    from toy_sources.codes.wyner_ziv import GaussianSideInfoSource, gap_db, scalar_quantizer_gap_db

    src = GaussianSideInfoSource(1.0, RHO)
    gaps = [gap_db(hull_distortion(lloyd_hull_095, R), src.d_wz(R)) for R in (0.5, 1.0, 1.5, 2.0)]
    assert max(gaps) <= scalar_quantizer_gap_db(), gaps
