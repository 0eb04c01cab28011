"""Finite-block-length Slepian–Wolf bounds of the DSBS (toy_sources.finite_length)."""

import itertools

import numpy as np
import pytest

from toy_sources.bounds import binary_entropy
from toy_sources.finite_length import (
    fixed_length_converse_error,
    fixed_length_converse_rate,
    normal_approximation_rate,
    random_linear_error,
    random_linear_rate,
    varentropy_bits,
)


def _pattern_probs(n, p):
    w = np.array([sum(b) for b in itertools.product((0, 1), repeat=n)])
    return p ** w * (1 - p) ** (n - w)


@pytest.mark.parametrize("n,p", [(10, 0.1), (12, 0.3)])
def test_converse_error_is_one_minus_the_m_most_likely_patterns(n, p):
    probs = np.sort(_pattern_probs(n, p))[::-1]
    for m in (1, 3, 11, 40, 100, 2 ** (n - 1), 2 ** n - 5):
        brute = 1.0 - probs[:m].sum()
        assert fixed_length_converse_error(n, p, np.log2(m) / n) == pytest.approx(brute, abs=1e-12)


@pytest.mark.parametrize("n,p,eps", [(10, 0.1, 0.2), (12, 0.3, 0.05), (12, 0.05, 1e-3)])
def test_converse_rate_is_the_smallest_number_of_bins(n, p, eps):
    probs = np.sort(_pattern_probs(n, p))[::-1]
    m_min = int(np.argmax(np.cumsum(probs) >= 1 - eps)) + 1
    assert fixed_length_converse_rate(n, p, eps) == pytest.approx(np.log2(m_min) / n, abs=1e-9)


def _ml_block_error(H, p):
    """Exact block error of syndrome decoding with minimum-weight coset leaders."""
    k, n = H.shape
    leader = {}
    for z in itertools.product((0, 1), repeat=n):
        z = np.array(z)
        s = tuple(H @ z % 2)
        if s not in leader or z.sum() < leader[s]:
            leader[s] = z.sum()
    return 1.0 - sum(p ** w * (1 - p) ** (n - w) for w in leader.values())


def test_random_linear_codes_meet_the_rcu_bound_and_not_the_converse():
    n, k, p = 12, 6, 0.08
    rng = np.random.default_rng(0)
    errs = [_ml_block_error(rng.integers(0, 2, size=(k, n)), p) for _ in range(60)]
    mean, se = np.mean(errs), np.std(errs, ddof=1) / np.sqrt(len(errs))
    assert mean <= random_linear_error(n, p, k / n) + 3 * se
    assert min(errs) >= fixed_length_converse_error(n, p, k / n) - 1e-12


@pytest.mark.parametrize("p", [0.02, 0.05, 0.1, 0.15])
@pytest.mark.parametrize("eps", [1e-1, 1e-2, 1e-4])
def test_converse_below_achievability_and_normal_approximation_between_at_n_1e4(p, eps):
    n = 10_000
    lo, hi = fixed_length_converse_rate(n, p, eps), random_linear_rate(n, p, eps)
    assert binary_entropy(p) < lo <= hi < lo * 1.003  # both exact, 0.3 % apart at n = 10^4
    assert normal_approximation_rate(n, p, eps) == pytest.approx(lo, rel=3e-3)
    assert fixed_length_converse_error(n, p, lo) == pytest.approx(eps, rel=1e-6)
    assert random_linear_error(n, p, hi) <= eps


def test_fixed_length_penalty_shrinks_like_one_over_sqrt_n():
    p, eps = 0.1, 1e-2
    gaps = [fixed_length_converse_rate(n, p, eps) - binary_entropy(p) for n in (10_000, 40_000, 160_000)]
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.08)
    assert gaps[1] / gaps[2] == pytest.approx(2.0, rel=0.08)


def test_p_0_02_at_n_1e4_no_fixed_length_code_is_within_15_percent_at_block_error_1e_3():
    assert fixed_length_converse_rate(10_000, 0.02, 1e-3) / binary_entropy(0.02) > 1.15


def test_varentropy_closed_form_against_its_definition():
    p = 0.1
    info = -np.log2(np.array([1 - p, p]))
    mean = (1 - p) * info[0] + p * info[1]
    var = (1 - p) * (info[0] - mean) ** 2 + p * (info[1] - mean) ** 2
    assert varentropy_bits(p) == pytest.approx(var)


@pytest.mark.parametrize("call,match", [
    (lambda: fixed_length_converse_rate(0, 0.1, 0.01), "block length n"),
    (lambda: fixed_length_converse_rate(100.5, 0.1, 0.01), "block length n"),
    (lambda: fixed_length_converse_rate(100, 0.6, 0.01), "crossover p"),
    (lambda: fixed_length_converse_rate(100, float("nan"), 0.01), "crossover p"),
    (lambda: random_linear_rate(100, 0.1, 0.0), "eps"),
    (lambda: normal_approximation_rate(100, 0.1, 1.0), "eps"),
    (lambda: fixed_length_converse_error(100, 0.1, float("nan")), "rate"),
    (lambda: random_linear_error(100, 0.1, -0.1), "rate"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
