"""Random-binning Slepian-Wolf code: a real encoder/decoder and the error trends of SW."""

import numpy as np
import pytest

from toy_sources.bounds import binary_entropy
from toy_sources.codes.random_binning import (
    RandomBinningCode,
    binning_error_probability,
    bits_to_int,
    int_to_bits,
    wilson_interval,
)


def test_bins_partition_all_sequences():
    code = RandomBinningCode(10, 0.5, rng=0)
    members = code._members[code._members >= 0]
    assert np.array_equal(np.sort(members), np.arange(1 << 10))
    assert code.num_bins == 32 and code.actual_rate == pytest.approx(0.5)


def test_bit_packing_round_trip():
    v = np.arange(1 << 8)
    assert np.array_equal(bits_to_int(int_to_bits(v, 8)), v)


def test_decoder_recovers_x_when_y_equals_x():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(200, 12)).astype(np.uint8)
    code = RandomBinningCode(12, 0.3, rng=1)
    assert np.array_equal(code.decode(code.encode(x), x), x)


def test_decoded_sequence_lies_in_the_sent_bin_and_is_closest():
    rng = np.random.default_rng(2)
    code = RandomBinningCode(10, 0.4, rng=3)
    x = rng.integers(0, 2, size=(100, 10)).astype(np.uint8)
    y = x ^ (rng.random((100, 10)) < 0.1).astype(np.uint8)
    bins = code.encode(x)
    xhat = code.decode(bins, y)
    assert np.array_equal(code.encode(xhat), bins)
    # no member of the bin is strictly closer to y than the decision (brute force)
    all_seq = int_to_bits(np.arange(1 << 10), 10)
    for i in range(20):
        cand = all_seq[code.bin_of == bins[i]]
        best = (cand != y[i]).sum(axis=1).min()
        assert (xhat[i] != y[i]).sum() == best


def test_error_falls_above_and_rises_below_conditional_entropy():
    p = 0.1
    h = binary_entropy(p)
    above = [binning_error_probability(p, n, 0.9, 1500, rng=n) for n in (4, 14)]
    below = [binning_error_probability(p, n, 0.25, 1500, rng=n) for n in (4, 14)]
    assert above[0].rate > h and below[0].rate < h
    assert above[1].high < above[0].low  # falls with n (CIs disjoint)
    assert below[1].low > below[0].high  # rises with n


def test_rate_zero_single_bin_is_pure_guessing_from_y():
    e = binning_error_probability(0.1, 6, 0.0, 2000, rng=0)
    # one bin: decoder outputs y itself (distance 0), correct iff no flips: 1 - (0.9)^6
    assert e.low <= 1 - 0.9**6 <= e.high


def test_wilson_interval():
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo)
    assert wilson_interval(100, 100)[1] == 1.0
    with pytest.raises(ValueError, match="errors must lie"):
        wilson_interval(5, 4)


def test_validation():
    with pytest.raises(ValueError, match="n must be an integer in 1..20"):
        RandomBinningCode(30, 0.5, rng=0)
    with pytest.raises(ValueError, match="rate must be"):
        RandomBinningCode(8, -1, rng=0)
    with pytest.raises(TypeError, match="rng"):
        RandomBinningCode(8, 0.5, rng=None)
    code = RandomBinningCode(8, 0.5, rng=0)
    with pytest.raises(ValueError, match=r"shape \(trials, 8\)"):
        code.encode(np.zeros((2, 7), dtype=np.uint8))
    with pytest.raises(ValueError, match="bits 0/1"):
        code.encode(np.full((1, 8), 2))
