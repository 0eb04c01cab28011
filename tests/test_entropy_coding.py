"""Range coding of indices (constriction): exact round trips, coded length vs entropy, errors."""

import numpy as np
import pytest

from toy_sources.codes.entropy_coding import (
    check_pmf,
    coded_bits,
    decode_categorical,
    encode_categorical,
    ideal_code_length_bits,
)


def _random_pmfs(rng, n, k):
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    return p


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_shared_pmf(seed):
    rng = np.random.default_rng(seed)
    p = _random_pmfs(rng, 1, 7)[0]
    s = rng.choice(7, size=5000, p=p)
    data = encode_categorical(s, p)
    assert isinstance(data, bytes)
    np.testing.assert_array_equal(decode_categorical(data, p, n=s.size), s)


def test_round_trip_per_symbol_pmfs():
    rng = np.random.default_rng(2)
    P = _random_pmfs(rng, 3000, 5)
    s = np.array([rng.choice(5, p=row) for row in P])
    data = encode_categorical(s, P)
    np.testing.assert_array_equal(decode_categorical(data, P), s)


def test_round_trip_rare_symbols_and_empty():
    p = np.array([1 - 2e-9, 1e-9, 1e-9])
    s = np.array([0, 1, 2, 0, 0, 2])
    np.testing.assert_array_equal(decode_categorical(encode_categorical(s, p), p, n=6), s)
    assert decode_categorical(encode_categorical(np.array([], dtype=int), p), p, n=0).size == 0


def test_coded_bits_within_one_percent_of_entropy_shared():
    rng = np.random.default_rng(3)
    p = np.array([0.6, 0.2, 0.1, 0.05, 0.05])
    s = rng.choice(5, size=200_000, p=p)
    ideal = ideal_code_length_bits(s, p)
    coded = coded_bits(encode_categorical(s, p))
    assert ideal <= coded <= 1.01 * ideal
    # and the ideal length matches the entropy of p (law of large numbers)
    H = -(p * np.log2(p)).sum()
    assert abs(ideal / s.size - H) < 0.01


def test_coded_bits_within_one_percent_of_entropy_conditional():
    rng = np.random.default_rng(4)
    P = _random_pmfs(rng, 50_000, 8)
    s = (P.cumsum(1) > rng.random((P.shape[0], 1))).argmax(1)
    ideal = ideal_code_length_bits(s, P)
    coded = coded_bits(encode_categorical(s, P))
    assert ideal <= coded <= 1.01 * ideal


def test_doctest_values():
    assert ideal_code_length_bits([0, 1], [0.5, 0.5]) == 2.0


@pytest.mark.parametrize(
    "probs, match",
    [
        ([0.5, np.nan, 0.5], "NaN"),
        ([0.5, 0.6], "sum to one"),
        ([0.5, -0.1, 0.6], "negative"),
        (np.ones((2, 2, 2)) / 2, "shape"),
    ],
)
def test_bad_pmf(probs, match):
    with pytest.raises(ValueError, match=match):
        encode_categorical([0, 1], probs)


def test_bad_symbols():
    p = [0.5, 0.5]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_categorical([0, 2], p)
    with pytest.raises(ValueError, match="1-D"):
        encode_categorical([[0, 1]], p)
    with pytest.raises(ValueError, match="NaN"):
        encode_categorical([0.0, np.nan], p)
    with pytest.raises(ValueError, match="rows"):
        encode_categorical([0, 1, 1], np.full((2, 2), 0.5))


def test_bad_stream():
    p = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="32-bit words"):
        decode_categorical(b"abc", p, n=3)
    with pytest.raises(ValueError, match="n"):
        decode_categorical(b"", p)
    with pytest.raises(TypeError, match="bytes"):
        decode_categorical([1, 2], p, n=2)


def test_check_pmf_returns_float64():
    assert check_pmf([0.25, 0.75]).dtype == np.float64
