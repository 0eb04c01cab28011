"""Range coding: exact round trips, and coded bits within 1 % of −Σ log2 p on long streams."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdic_lab.coding import (
    BitstreamError,
    CategoricalDecoder,
    CategoricalEncoder,
    StreamDecoder,
    StreamEncoder,
    cdf_likelihoods,
    decode_categorical,
    decode_cdf,
    decode_gaussian_conditional,
    encode_categorical,
    encode_cdf,
    encode_gaussian_conditional,
    gaussian_conditional_likelihoods,
)


def _sample_categorical(rng, n, k, alpha=0.5):
    probs = rng.dirichlet(np.full(k, alpha), size=n).astype(np.float32)
    cum = np.cumsum(probs.astype(np.float64), axis=1)
    u = rng.random((n, 1)) * cum[:, -1:]
    symbols = np.minimum((u > cum).sum(axis=1), k - 1)
    return symbols, probs


def test_categorical_round_trip_and_rate():
    rng = np.random.default_rng(0)
    symbols, probs = _sample_categorical(rng, 50_000, 64)
    data = encode_categorical(symbols, probs)
    assert np.array_equal(decode_categorical(data, probs), symbols)
    p = probs.astype(np.float64)
    ideal = -np.log2(p[np.arange(len(symbols)), symbols] / p.sum(1)).sum()
    assert ideal <= 8 * len(data) <= 1.01 * ideal + 32


def test_categorical_zero_probability_symbol_still_codable():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    data = encode_categorical(np.array([1, 0]), probs)
    assert decode_categorical(data, probs).tolist() == [1, 0]


def test_streaming_autoregressive_decoder():
    # a toy order-1 Markov model: the row for symbol t depends on symbol t-1
    rng = np.random.default_rng(1)
    k, n = 5, 2000
    trans = rng.dirichlet(np.ones(k), size=k)
    start = np.full(k, 1.0 / k)
    x = [int(rng.integers(k))]
    for _ in range(n - 1):
        x.append(int(rng.choice(k, p=trans[x[-1]])))
    enc = CategoricalEncoder()
    enc.encode([x[0]], start[None])
    for t in range(1, n):  # same row layout as the decoder will use
        enc.encode([x[t]], trans[x[t - 1]][None])
    data = enc.finish()
    dec = CategoricalDecoder(data)
    out = [int(dec.decode(start[None])[0])]
    for _ in range(n - 1):
        out.append(int(dec.decode(trans[out[-1]][None])[0]))
    assert out == x


def test_decode_categorical_each_advances_several_streams_together():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(6), size=(4, 50))  # stream r, position t
    syms = np.array([[rng.choice(6, p=probs[r, t]) for t in range(50)] for r in range(4)])
    decs = [StreamDecoder(encode_categorical(syms[r], probs[r])) for r in range(4)]
    out = np.stack([StreamDecoder.decode_categorical_each(decs, probs[:, t]) for t in range(50)], axis=1)
    assert np.array_equal(out, syms)
    with pytest.raises(ValueError, match="one row per symbol"):
        StreamDecoder.decode_categorical_each(decs, probs[:3, 0])
    # bytes the range decoder rejects (all ones: a state beyond every symbol) name their stream
    p = np.array([[0.5, 0.25, 0.25]] * 3)
    decs = [StreamDecoder(encode_categorical(np.array([1]), p[:1])), StreamDecoder(b"\xff" * 8)]
    with pytest.raises(BitstreamError, match=r"^stream 1: range decoder failed"):
        StreamDecoder.decode_categorical_each(decs, p[:2])
    decs = [StreamDecoder(b"\xff" * 8)]
    with pytest.raises(BitstreamError, match=r"^image 7: "):
        StreamDecoder.decode_categorical_each(decs, p[:1], names=["image 7"])


def test_mixed_stream_order():
    rng = np.random.default_rng(2)
    s1, p1 = _sample_categorical(rng, 100, 7)
    s2 = rng.integers(-3, 4, 100)
    enc = StreamEncoder()
    enc.encode_categorical(s1, p1)
    enc.encode_gaussian(s2, np.zeros(100), np.full(100, 2.0))
    dec = StreamDecoder(enc.finish())
    assert np.array_equal(dec.decode_categorical(p1), s1)
    assert np.array_equal(dec.decode_gaussian(np.zeros(100), np.full(100, 2.0)), s2)


@pytest.mark.parametrize("distribution", ["gaussian", "laplace"])
def test_gaussian_conditional_round_trip_and_rate(distribution):
    rng = np.random.default_rng(3)
    n = 100_000
    means = rng.normal(0, 3, n).astype(np.float32)
    scales = rng.uniform(0.2, 10, n).astype(np.float32)
    symbols = np.round(rng.normal(means, scales)).astype(np.int64)
    data = encode_gaussian_conditional(symbols, means, scales, distribution=distribution)
    back = decode_gaussian_conditional(data, means, scales, distribution=distribution)
    assert np.array_equal(back, symbols)
    ideal = -np.log2(gaussian_conditional_likelihoods(symbols, means, scales, distribution=distribution)).sum()
    assert 8 * len(data) <= 1.01 * ideal + 32


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=40), st.integers(1, 300))
def test_gaussian_escapes_round_trip_any_int32(values, bound):
    s = np.array(values)
    means = np.linspace(-5, 5, s.size)
    scales = np.full(s.size, 1.5)
    data = encode_gaussian_conditional(s, means, scales, bound=bound)
    assert np.array_equal(decode_gaussian_conditional(data, means, scales, bound=bound), s)


def test_cdf_round_trip_with_escapes_and_rate():
    rng = np.random.default_rng(4)
    c, k, n = 8, 21, 50_000
    pmfs = rng.dirichlet(np.full(k, 2.0), size=c)
    cdfs = np.concatenate([np.zeros((c, 1)), np.cumsum(pmfs, axis=1)], axis=1)
    offsets = -np.arange(c) - 5
    idx = rng.integers(0, c, n)
    u = rng.random((n, 1))
    rel = np.minimum((u > cdfs[idx, 1:]).sum(axis=1), k - 1)  # inverse-CDF sampling
    symbols = rel + offsets[idx]
    data = encode_cdf(symbols, cdfs, idx, offsets)
    assert np.array_equal(decode_cdf(data, cdfs, idx, offsets), symbols)
    ideal = -np.log2(cdf_likelihoods(symbols, cdfs, idx, offsets)).sum()
    assert 8 * len(data) <= 1.01 * ideal + 32
    # out-of-table values escape and still round trip
    wild = np.array([-10**6, 10**6, offsets[0] - 1, offsets[0] + k])
    data = encode_cdf(wild, cdfs, np.zeros(4, int), offsets)
    assert np.array_equal(decode_cdf(data, cdfs, np.zeros(4, int), offsets), wild)


def test_bad_inputs_are_named():
    p = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"symbols\[1\] = 4 is outside"):
        encode_categorical(np.array([0, 4, 1]), p)
    with pytest.raises(ValueError, match="one row per symbol"):
        encode_categorical(np.array([0, 1]), p)
    with pytest.raises(ValueError, match="NaN"):
        encode_categorical(np.array([0, 1, 2]), np.where(p > 0, np.nan, p))
    with pytest.raises(ValueError, match="unknown distribution 'cauchy'"):
        encode_gaussian_conditional([0], [0.0], [1.0], distribution="cauchy")
    with pytest.raises(ValueError, match="int32"):
        encode_gaussian_conditional([2**40], [0.0], [1.0])
    with pytest.raises(BitstreamError, match="multiple of 4"):
        decode_categorical(b"abc", p)


def test_deterministic_bytes():
    rng = np.random.default_rng(5)
    s, p = _sample_categorical(rng, 1000, 10)
    assert encode_categorical(s, p) == encode_categorical(s.copy(), p.copy())


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]))
def test_decoding_garbage_never_crashes(garbage):
    # range coding has no redundancy: garbage decodes to *some* symbols of the right shape (the
    # container's CRC is what rejects it), or reaches a state no symbol covers and raises the one
    # documented error, BitstreamError (e.g. b"H\xdf\xceB" for the Gaussian); never another
    # exception, never a hang
    p = np.full((20, 6), 1 / 6)
    try:
        s = decode_categorical(garbage, p)
        assert s.shape == (20,) and s.min() >= 0 and s.max() < 6
    except BitstreamError as err:  # the documented failure, with a message naming it
        assert str(err)
    try:
        g = decode_gaussian_conditional(garbage, np.zeros(20), np.ones(20), bound=3)
        assert g.shape == (20,) and np.all(np.abs(g) < 2**32)
    except BitstreamError as err:
        assert str(err)


def test_decoding_known_invalid_garbage_raises_bitstream_error():
    with pytest.raises(BitstreamError, match="range decoder failed on gaussian symbols"):
        decode_gaussian_conditional(b"H\xdf\xceB", np.zeros(20), np.ones(20), bound=3)


def test_bpp_coded_versus_estimate():
    from mdic_lab.coding import bpp_from_bytes, bpp_from_likelihoods, pack

    rng = np.random.default_rng(6)
    n, pixels = 24_576, 128 * 256
    means, scales = rng.normal(0, 2, n), rng.uniform(0.3, 5, n)
    s = np.round(rng.normal(means, scales)).astype(np.int64)
    lik = gaussian_conditional_likelihoods(s, means, scales)
    stream = pack("m@0", {"image": (128, 256)}, [encode_gaussian_conditional(s, means, scales)])
    est, coded = bpp_from_likelihoods([lik], pixels), bpp_from_bytes(stream, pixels)
    assert est < coded <= 1.01 * est + 8 * 80 / pixels  # ≤ 1 % + header/CRC/flush bytes
    with pytest.raises(ValueError, match="num_pixels"):
        bpp_from_bytes(stream, 0)
    with pytest.raises(ValueError, match=r"likelihoods\[0\]"):
        bpp_from_likelihoods([np.array([0.0])], 4)
