"""Arithmetic (range) coding of integer symbols, wrapping ``constriction``.

Every function turns integer symbols plus an entropy model into ``bytes`` and back.  The
coder is constriction's range coder (``constriction.stream.queue``, a FIFO: symbols are
decoded in the order they were encoded) with 32-bit words and 24-bit probability
precision.  A symbol of model probability ``p`` costs ``-log2 p`` bits up to a small,
measured overhead (the quantisation of ``p`` to 24-bit fixed point, at most one flushed
32-bit word per stream); ``tests/test_arithmetic.py`` checks that long streams stay within
1 % of ``-Σ log2 p``.

Three kinds of model are offered, each as a one-shot function pair and as a method of the
streaming :class:`StreamEncoder` / :class:`StreamDecoder` (for autoregressive models, where
the decoder learns the next probabilities only after decoding the previous symbols):

* **categorical** -- one probability row per symbol (``probs`` of shape ``(N, K)``); the
  transformer/autoregressive entropy model of MDIC (Eq. 5 of the MDIC paper) and any
  other model that outputs a softmax.
* **Gaussian conditional** -- integer symbols with a per-symbol mean and scale, the
  quantised Gaussian (or Laplace) of the hyperprior family (Ballé et al. 2018; CompressAI's
  ``GaussianConditional``): ``P(s) = Φ((s + ½ − μ)/σ) − Φ((s − ½ − μ)/σ)`` on a bounded
  support ``[-bound, bound]`` with an escape for values outside it.
* **CDF tables** (factorised prior) -- one cumulative table per channel plus an index
  per symbol, as produced by an ``EntropyBottleneck``-style factorised density, with
  the same escape mechanism.

Escape mechanism
----------------
Values outside the modelled support are not an error: they are coded as an *escape
symbol* (one just below / just above the support) followed by the excess magnitude
``e ≥ 0`` in an exponential-Golomb code (``n = bit_length(e + 1)``: ``n − 1`` uniformly in
5 bits, then the ``n − 1`` low bits of ``e + 1`` uniformly).  Symbols must fit in int32.

Determinism (read this before using the coder in a model)
---------------------------------------------------------
Encoder and decoder must pass **bit-identical** model parameters (``probs``, ``means``,
``scales``, ``cdfs``): constriction quantises them to fixed point deterministically, but a
probability that differs in its last float bit can round to a different fixed-point
value, and then decoding silently desynchronises.  Compute them on the CPU, in float32 (or
float64), with the same operations in the same order on both sides -- in particular an
autoregressive model must evaluate its probabilities at the encoder in the same batch
layout as the decoder will (step by step), not with a parallel teacher-forced pass whose
floating-point reductions differ.  The coder itself cannot reliably detect a
desynchronised or corrupted stream (range coding has no redundancy); integrity is the job
of the container (:mod:`mdic_lab.coding.container`, CRC32 + model hash).

Corrupted input
---------------
A payload that passed the container's CRC can still be wrong (a forged stream, a buggy
writer).  Decoding such bytes yields either some symbols (garbage, but of the right count)
or a :class:`~mdic_lab.coding.errors.BitstreamError` -- never another exception: every
failure of constriction's decoder (an ``AssertionError`` when the coder reaches a state
that no symbol of the model covers) is re-raised as a ``BitstreamError`` naming what was
being decoded, chained from the original, and decoded values the encoder cannot have
written (escape lengths beyond 31 bits, symbols beyond int32) are refused.  The number of
symbols decoded is fixed by the caller's model, never read from the bytes, so decoding
cannot run away.

Examples
--------
>>> import numpy as np
>>> probs = np.tile([0.5, 0.25, 0.25], (4, 1))
>>> data = encode_categorical(np.array([0, 1, 2, 0]), probs)
>>> decode_categorical(data, probs).tolist()
[0, 1, 2, 0]
"""

from __future__ import annotations

import numpy as np

import constriction

from .errors import BitstreamError

__all__ = [
    "DEFAULT_BOUND",
    "DEFAULT_SCALE_MIN",
    "DEFAULT_ESCAPE_PROB",
    "StreamEncoder",
    "StreamDecoder",
    "CategoricalEncoder",
    "CategoricalDecoder",
    "encode_categorical",
    "decode_categorical",
    "encode_gaussian_conditional",
    "decode_gaussian_conditional",
    "gaussian_conditional_likelihoods",
    "encode_cdf",
    "decode_cdf",
    "cdf_likelihoods",
    "words_to_bytes",
    "bytes_to_words",
]

_model = constriction.stream.model
_queue = constriction.stream.queue

#: Largest |symbol| coded directly by the Gaussian conditional; larger values escape.
DEFAULT_BOUND = 255
#: Lower bound applied to scales (as CompressAI's ``scale_bound``), identically at both ends.
DEFAULT_SCALE_MIN = 0.11
#: Probability mass given to each of the two escape symbols of a CDF table.
DEFAULT_ESCAPE_PROB = 2.0**-16
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_DISTRIBUTIONS = ("gaussian", "laplace")
#: What constriction raises when the compressed words do not fit the model: ``AssertionError``
#: ("compressed data that is invalid for the employed entropy model"); the others are caught
#: too, at the decode call only, so that no failure caused by the bytes escapes as another type.
_DECODER_FAILURES = (AssertionError, ValueError, RuntimeError, OverflowError, IndexError)


# --------------------------------------------------------------------------- bytes <-> words
def words_to_bytes(words: np.ndarray) -> bytes:
    """Serialise constriction's uint32 words as little-endian bytes."""
    return np.ascontiguousarray(words, dtype="<u4").tobytes()


def bytes_to_words(data: bytes) -> np.ndarray:
    """Parse little-endian bytes into uint32 words; the length must be a multiple of 4."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) % 4:
        raise BitstreamError(
            f"range-coded payload has {len(data)} bytes, expected a multiple of 4 "
            "(truncated or corrupted)"
        )
    return np.frombuffer(bytes(data), dtype="<u4").astype(np.uint32)


# --------------------------------------------------------------------------- validation
def _symbols(symbols, name="symbols") -> np.ndarray:
    s = np.asarray(symbols)
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D integer array, got shape {s.shape}")
    if s.size and not np.issubdtype(s.dtype, np.integer):
        if not np.all(np.isfinite(s)) or not np.all(s == np.round(s)):
            raise ValueError(f"{name} must hold integers, got dtype {s.dtype} with non-integer values")
    s = s.astype(np.int64)
    if s.size and (s.min() < _INT32_MIN or s.max() > _INT32_MAX):
        raise ValueError(f"{name} must fit in int32, got range [{s.min()}, {s.max()}]")
    return s


def _float_array(x, name, shape=None, ndim=None) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a float array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)  # float32/64 are passed as they are (no copy), others widened
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(a)


def _probs(probs, n: int | None) -> np.ndarray:
    p = _float_array(probs, "probs", ndim=2)
    if n is not None and p.shape[0] != n:
        raise ValueError(f"probs must have one row per symbol: got {p.shape[0]} rows for {n} symbols")
    if p.shape[1] < 1:
        raise ValueError("probs must have at least one column (alphabet size K >= 1)")
    if p.size and p.min() < 0:
        raise ValueError("probs must be nonnegative")
    if p.shape[0] and p.sum(axis=1).min() <= 0:
        raise ValueError("every row of probs must have a positive sum")
    return p


def _distribution(distribution: str):
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r} (expected one of: {', '.join(_DISTRIBUTIONS)})")
    return _model.QuantizedGaussian if distribution == "gaussian" else _model.QuantizedLaplace


def _check_bound(bound):
    if not isinstance(bound, (int, np.integer)) or not 1 <= int(bound) <= 2**20:
        raise ValueError(f"bound must be an int in [1, 2**20], got {bound!r}")
    return int(bound)


# --------------------------------------------------------------------------- encoder / decoder
class StreamEncoder:
    """A range encoder to which symbols are appended in decoding order.

    Call the ``encode_*`` methods in exactly the order (and with exactly the model
    parameters) that the decoder will use, then :meth:`finish` for the bytes.
    """

    def __init__(self) -> None:
        self._enc = _queue.RangeEncoder()
        self._finished = False

    @property
    def num_bits(self) -> int:
        """Bits written so far, including the partially filled last word."""
        return int(self._enc.num_bits())

    def _check_open(self):
        if self._finished:
            raise RuntimeError("this StreamEncoder was already finished; create a new one")

    def encode_categorical(self, symbols, probs) -> None:
        """Encode ``symbols[i] ∈ {0..K-1}`` with probability row ``probs[i]`` (rows are renormalised)."""
        self._check_open()
        s = _symbols(symbols)
        p = _probs(probs, s.size)
        if s.size == 0:
            return
        k = p.shape[1]
        if s.min() < 0 or s.max() >= k:
            bad = int(np.flatnonzero((s < 0) | (s >= k))[0])
            raise ValueError(f"symbols[{bad}] = {s[bad]} is outside the alphabet {{0..{k - 1}}} of probs")
        if k == 1:
            return  # a certain symbol costs no bits
        self._enc.encode(s.astype(np.int32), _model.Categorical(perfect=False), p)

    def encode_gaussian(self, symbols, means, scales, *, bound=DEFAULT_BOUND,
                        distribution="gaussian", scale_min=DEFAULT_SCALE_MIN) -> None:
        """Encode integer symbols with a quantised Gaussian/Laplace of given means and scales.

        ``P(s) = F((s + ½ − μ)/σ) − F((s − ½ − μ)/σ)`` renormalised on ``[-bound-1, bound+1]``;
        ``±(bound+1)`` are escape symbols followed by the excess (module docstring).
        ``σ`` is clamped to ``scale_min`` from below.
        """
        self._check_open()
        if not scale_min > 0:
            raise ValueError(f"scale_min must be positive, got {scale_min}")
        s = _symbols(symbols)
        mu = _float_array(means, "means", shape=s.shape)
        sigma = np.maximum(_float_array(scales, "scales", shape=s.shape), float(scale_min))
        b = _check_bound(bound)
        family = _distribution(distribution)(-b - 1, b + 1)
        if s.size == 0:
            return
        coded = np.clip(s, -b - 1, b + 1)
        self._enc.encode(coded.astype(np.int32), family, mu, sigma)
        esc = np.abs(s) > b
        if esc.any():
            self._encode_excess(np.abs(s[esc]) - (b + 1))

    def encode_cdf(self, symbols, cdfs, indexes, offsets=None, *,
                   escape_prob=DEFAULT_ESCAPE_PROB) -> None:
        """Encode ``symbols[i]`` with the table ``cdfs[indexes[i]]`` (factorised prior).

        ``cdfs`` has shape ``(C, K+1)``, each row nondecreasing from ``cdf[0]`` to ``cdf[K]``
        (normalised here); row ``c`` models the values ``offsets[c] + {0..K-1}``.  Values
        outside get escape symbols of mass ``escape_prob`` each.
        """
        self._check_open()
        s = _symbols(symbols)
        idx, off, pm = _cdf_setup(cdfs, indexes, offsets, s.size, escape_prob)
        if s.size == 0:
            return
        rel = s - off[idx]
        k = pm.shape[1] - 2
        coded = np.clip(rel, -1, k) + 1  # 0 = low escape, 1..K = in range, K+1 = high escape
        self._enc.encode(coded.astype(np.int32), _model.Categorical(perfect=False), pm[idx])
        low, high = rel < 0, rel >= k
        esc = low | high
        if esc.any():
            excess = np.where(low, -rel - 1, rel - k)[esc]
            self._encode_excess(excess)

    def _encode_excess(self, excess: np.ndarray) -> None:
        """Exp-Golomb code of excess magnitudes ``e >= 0`` with uniform models."""
        v = excess.astype(np.int64) + 1
        nbits = np.floor(np.log2(v.astype(np.float64))).astype(np.int64)  # n - 1
        nbits = _fix_bitlength(v, nbits)
        uni = _model.Uniform()
        self._enc.encode(nbits.astype(np.int32), uni, np.full(v.size, 32, dtype=np.int32))
        low_bits = np.minimum(nbits, 16)
        high_bits = nbits - low_bits
        payload = v & ((np.int64(1) << nbits) - 1)
        m = low_bits > 0
        if m.any():
            self._enc.encode((payload[m] & ((1 << low_bits[m]) - 1)).astype(np.int32), uni,
                             (np.int64(1) << low_bits[m]).astype(np.int32))
        m = high_bits > 0
        if m.any():
            self._enc.encode((payload[m] >> 16).astype(np.int32), uni,
                             (np.int64(1) << high_bits[m]).astype(np.int32))

    def finish(self) -> bytes:
        """Flush and return the compressed bytes (a multiple of 4 bytes)."""
        self._check_open()
        self._finished = True
        return words_to_bytes(self._enc.get_compressed())


class StreamDecoder:
    """The mirror of :class:`StreamEncoder`: call the ``decode_*`` methods in the same order."""

    def __init__(self, data: bytes) -> None:
        words = bytes_to_words(data)
        try:
            self._dec = _queue.RangeDecoder(words)
        except _DECODER_FAILURES as exc:  # not seen in practice; kept in the one error type
            raise BitstreamError(f"range decoder cannot start on {len(words)} words: "
                                 f"{type(exc).__name__}: {exc}") from exc
        self.symbols_decoded = 0

    def _decode(self, what: str, model, *params) -> np.ndarray:
        """The one call into constriction: decode ``len(params[0])`` symbols, failures as BitstreamError.

        A corrupted payload that reaches a state no symbol of the model covers makes
        constriction raise ``AssertionError`` ("compressed data that is invalid for the
        employed entropy model"); the arguments were validated before this call, so any
        failure here comes from the bytes, and is reported as a :class:`BitstreamError`
        naming what was being decoded and how many symbols had been decoded before.
        """
        try:
            out = np.asarray(self._dec.decode(model, *params), dtype=np.int64)
        except _DECODER_FAILURES as exc:
            n = len(params[0]) if params else 1
            raise BitstreamError(
                f"range decoder failed on {what} ({n} symbols after {self.symbols_decoded} decoded): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.symbols_decoded += out.size
        return out

    def decode_categorical(self, probs) -> np.ndarray:
        """Decode one symbol per row of ``probs`` (shape ``(N, K)``); returns int64 ``(N,)``."""
        p = _probs(probs, None)
        n, k = p.shape
        if n == 0 or k == 1:
            return np.zeros(n, dtype=np.int64)
        s = self._decode("categorical symbols", _model.Categorical(perfect=False), p)
        _check_decoded(s, 0, k - 1, "categorical symbol")
        return s

    @staticmethod
    def decode_categorical_each(decoders, probs, names=None) -> np.ndarray:
        """One symbol from each stream: ``decoders[r]`` decodes with row ``r`` of ``probs (R, K)``.

        The same as ``[d.decode_categorical(probs[r:r + 1])[0] for r, d in enumerate(decoders)]``
        with the rows checked once (a batched autoregressive decoder advancing R streams one
        position together).  A stream that cannot be decoded raises :class:`BitstreamError`
        prefixed with its name (``names[r]``, default ``"stream r"``).  Returns int64 ``(R,)``.
        """
        p = _probs(probs, len(decoders))
        k = p.shape[1]
        out = np.zeros(len(decoders), dtype=np.int64)
        if k == 1:
            return out
        model = _model.Categorical(perfect=False)
        for r, dec in enumerate(decoders):
            try:
                out[r] = dec._decode("categorical symbols", model, p[r:r + 1])[0]
                _check_decoded(out[r:r + 1], 0, k - 1, "categorical symbol")
            except BitstreamError as err:
                name = names[r] if names is not None else f"stream {r}"
                raise BitstreamError(f"{name}: {err}") from (err.__cause__ or err)
        return out

    def decode_gaussian(self, means, scales, *, bound=DEFAULT_BOUND,
                        distribution="gaussian", scale_min=DEFAULT_SCALE_MIN) -> np.ndarray:
        """Decode symbols written by :meth:`StreamEncoder.encode_gaussian` (same arguments)."""
        mu = _float_array(means, "means", ndim=1)
        sigma = np.maximum(_float_array(scales, "scales", shape=mu.shape), float(scale_min))
        b = _check_bound(bound)
        family = _distribution(distribution)(-b - 1, b + 1)
        if mu.size == 0:
            return np.zeros(0, dtype=np.int64)
        s = self._decode(f"{distribution} symbols", family, mu, sigma)
        _check_decoded(s, -b - 1, b + 1, f"{distribution} symbol")
        esc = np.abs(s) > b
        if esc.any():
            s[esc] = np.sign(s[esc]) * (self._decode_excess(int(esc.sum())) + b + 1)
            _check_decoded(s, _INT32_MIN, _INT32_MAX, "escaped symbol")
        return s

    def decode_cdf(self, cdfs, indexes, offsets=None, *, escape_prob=DEFAULT_ESCAPE_PROB) -> np.ndarray:
        """Decode symbols written by :meth:`StreamEncoder.encode_cdf` (same arguments)."""
        n = np.asarray(indexes).size
        idx, off, pm = _cdf_setup(cdfs, indexes, offsets, n, escape_prob)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        k = pm.shape[1] - 2
        coded = self._decode("CDF-table symbols", _model.Categorical(perfect=False), pm[idx])
        _check_decoded(coded, 0, k + 1, "CDF-table symbol")
        rel = coded - 1
        low, high = coded == 0, coded == k + 1
        esc = low | high
        if esc.any():
            excess = self._decode_excess(int(esc.sum()))
            rel[esc] = np.where(low[esc], -excess - 1, k + excess)
        out = rel + off[idx]
        if esc.any():
            _check_decoded(out, _INT32_MIN, _INT32_MAX, "escaped symbol")
        return out

    def _decode_excess(self, count: int) -> np.ndarray:
        uni = _model.Uniform()
        nbits = self._decode("escape lengths", uni, np.full(count, 32, dtype=np.int32))
        _check_decoded(nbits, 0, 31, "escape length")
        low_bits = np.minimum(nbits, 16)
        high_bits = nbits - low_bits
        payload = np.zeros(count, dtype=np.int64)
        m = low_bits > 0
        if m.any():
            payload[m] = self._decode("escape low bits", uni, (np.int64(1) << low_bits[m]).astype(np.int32))
        m = high_bits > 0
        if m.any():
            hi = self._decode("escape high bits", uni, (np.int64(1) << high_bits[m]).astype(np.int32))
            payload[m] |= hi << 16
        v = (np.int64(1) << nbits) | payload
        return v - 1

    def maybe_exhausted(self) -> bool:
        """True if all data may have been consumed (range coding cannot always tell)."""
        return bool(self._dec.maybe_exhausted())


def _check_decoded(values: np.ndarray, lo: int, hi: int, what: str) -> None:
    """Refuse decoded values outside ``[lo, hi]`` (what the encoder can have written) as a BitstreamError."""
    if values.size and (values.min() < lo or values.max() > hi):
        bad = int(np.flatnonzero((values < lo) | (values > hi))[0])
        raise BitstreamError(f"decoded {what} {int(values[bad])} at position {bad} is outside [{lo}, {hi}]")


def _fix_bitlength(v: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Exact ``bit_length(v) - 1`` (correcting float log2 rounding near powers of two)."""
    g = guess.copy()
    g[(np.int64(1) << g) > v] -= 1
    g[(np.int64(1) << (g + 1)) <= v] += 1
    return g


class CategoricalEncoder(StreamEncoder):
    """Streaming categorical encoder: ``enc.encode(symbols, probs)`` ... ``enc.finish()``."""

    def encode(self, symbols, probs) -> None:
        """Alias of :meth:`StreamEncoder.encode_categorical`."""
        self.encode_categorical(symbols, probs)


class CategoricalDecoder(StreamDecoder):
    """Streaming categorical decoder for autoregressive models.

    ``dec.decode(probs_rows)`` decodes one symbol per row; the caller computes the next
    rows from the symbols decoded so far.

    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> data = encode_categorical(np.array([1, 1]), p)
    >>> dec = CategoricalDecoder(data)
    >>> int(dec.decode(p[:1])[0]), int(dec.decode(p[1:])[0])
    (1, 1)
    """

    def decode(self, probs) -> np.ndarray:
        """Alias of :meth:`StreamDecoder.decode_categorical`."""
        return self.decode_categorical(probs)


# --------------------------------------------------------------------------- one-shot functions
def encode_categorical(symbols, probs) -> bytes:
    """Range-code ``symbols (N,)`` with per-symbol probability rows ``probs (N, K)``.

    Ideal cost: ``-Σ_i log2 probs[i, symbols[i]]`` bits (rows renormalised); the coded
    length exceeds it by the fixed-point quantisation of ``probs`` and the final flushed word.

    Parameters
    ----------
    symbols : int array, shape (N,)
        Values in ``{0, ..., K-1}``.
    probs : float array, shape (N, K)
        Nonnegative, finite rows with positive sums (zeros are allowed: constriction's leaky
        quantisation still gives every symbol a tiny probability).  Must be bit-identical
        at the decoder.

    Returns
    -------
    bytes
        The range-coded payload (a multiple of 4 bytes; no header -- wrap it with
        :func:`mdic_lab.coding.container.pack`).
    """
    enc = StreamEncoder()
    enc.encode_categorical(symbols, probs)
    return enc.finish()


def decode_categorical(data: bytes, probs) -> np.ndarray:
    """Inverse of :func:`encode_categorical` given the same ``probs``; returns int64 ``(N,)``."""
    return StreamDecoder(data).decode_categorical(probs)


def encode_gaussian_conditional(symbols, means, scales, *, bound=DEFAULT_BOUND,
                                distribution="gaussian", scale_min=DEFAULT_SCALE_MIN) -> bytes:
    """Range-code integer ``symbols`` under quantised Gaussian/Laplace ``N(means, scales²)``.

    The ideal cost is ``-Σ log2 P(s)`` with ``P(s) = F((s+½−μ)/σ) − F((s−½−μ)/σ)``, the
    likelihood of the Gaussian conditional (Ballé et al. 2018, Eq. 5/7 of the hyperprior
    paper); :func:`gaussian_conditional_likelihoods` computes it.

    Parameters
    ----------
    symbols : int array, shape (N,)
        Any int32 values; ``|s| > bound`` are escaped (module docstring).
    means, scales : float arrays, shape (N,)
        Per-symbol location and scale (``scales`` clamped below at ``scale_min``); must be
        bit-identical at the decoder.
    bound : int
        Largest magnitude coded directly (support ``[-bound-1, bound+1]`` incl. escapes).
    distribution : {"gaussian", "laplace"}
        The quantised density ``F``.
    scale_min : float
        Lower bound on scales, applied identically by the decoder.

    Returns
    -------
    bytes
        The range-coded payload.

    >>> import numpy as np
    >>> s = np.array([0, 3, -400, 1000])
    >>> data = encode_gaussian_conditional(s, np.zeros(4), np.ones(4))
    >>> decode_gaussian_conditional(data, np.zeros(4), np.ones(4)).tolist()
    [0, 3, -400, 1000]
    """
    enc = StreamEncoder()
    enc.encode_gaussian(symbols, means, scales, bound=bound, distribution=distribution, scale_min=scale_min)
    return enc.finish()


def decode_gaussian_conditional(data: bytes, means, scales, *, bound=DEFAULT_BOUND,
                                distribution="gaussian", scale_min=DEFAULT_SCALE_MIN) -> np.ndarray:
    """Inverse of :func:`encode_gaussian_conditional` given the same means/scales/options."""
    return StreamDecoder(data).decode_gaussian(means, scales, bound=bound, distribution=distribution,
                                               scale_min=scale_min)


def gaussian_conditional_likelihoods(symbols, means, scales, *, distribution="gaussian",
                                     scale_min=DEFAULT_SCALE_MIN) -> np.ndarray:
    """Continuous-model likelihoods ``P(s) = F((s+½−μ)/σ) − F((s−½−μ)/σ)`` (float64).

    This is the model whose ``-Σ log2 P`` an ESTIMATED rate uses; the coded rate of
    :func:`encode_gaussian_conditional` is within a small overhead of it (tested).

    >>> float(gaussian_conditional_likelihoods([0], [0.0], [1e-3], scale_min=1e-9)[0])
    1.0
    """
    from scipy import stats

    s = _symbols(symbols).astype(np.float64)
    mu = _float_array(means, "means", shape=s.shape)
    sigma = np.maximum(_float_array(scales, "scales", shape=s.shape), float(scale_min))
    dist = stats.norm if _distribution(distribution) is _model.QuantizedGaussian else stats.laplace
    # use the upper tail for positive arguments (less cancellation)
    z_hi, z_lo = (s + 0.5 - mu) / sigma, (s - 0.5 - mu) / sigma
    upper = dist.sf(z_lo) - dist.sf(z_hi)
    lower = dist.cdf(z_hi) - dist.cdf(z_lo)
    return np.where(z_lo > 0, upper, lower)


def _cdf_setup(cdfs, indexes, offsets, n, escape_prob):
    c = _float_array(cdfs, "cdfs", ndim=2)
    if c.shape[1] < 2:
        raise ValueError(f"cdfs must have shape (C, K+1) with K >= 1, got {c.shape}")
    pmf = np.diff(c, axis=1)
    if pmf.size and pmf.min() < 0:
        raise ValueError("every row of cdfs must be nondecreasing")
    tot = pmf.sum(axis=1, keepdims=True)
    if tot.size and tot.min() <= 0:
        raise ValueError("every row of cdfs must increase somewhere (positive total mass)")
    if not 0 < escape_prob < 0.25:
        raise ValueError(f"escape_prob must be in (0, 0.25), got {escape_prob}")
    pmf = pmf / tot * (1.0 - 2.0 * escape_prob)
    esc = np.full((pmf.shape[0], 1), escape_prob)
    pm = np.concatenate([esc, pmf, esc], axis=1)
    idx = np.asarray(indexes)
    if idx.ndim != 1 or idx.size != n or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indexes must be a 1-D integer array of length {n}, got shape {idx.shape} dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= c.shape[0]):
        raise ValueError(f"indexes must be in [0, {c.shape[0] - 1}] (one per cdf row)")
    if offsets is None:
        off = np.zeros(c.shape[0], dtype=np.int64)
    else:
        off = np.asarray(offsets)
        if off.shape != (c.shape[0],) or not np.issubdtype(off.dtype, np.integer):
            raise ValueError(f"offsets must be an integer array of shape ({c.shape[0]},), got {off.shape} {off.dtype}")
        off = off.astype(np.int64)
    return idx, off, pm


def encode_cdf(symbols, cdfs, indexes, offsets=None, *, escape_prob=DEFAULT_ESCAPE_PROB) -> bytes:
    """Range-code ``symbols`` with factorised CDF tables (see :meth:`StreamEncoder.encode_cdf`).

    >>> import numpy as np
    >>> cdfs = np.array([[0.0, 0.5, 0.75, 1.0]])          # pmf (1/2, 1/4, 1/4) on {-1, 0, 1}
    >>> s = np.array([-1, 0, 1, 7])                         # 7 escapes
    >>> data = encode_cdf(s, cdfs, np.zeros(4, int), offsets=np.array([-1]))
    >>> decode_cdf(data, cdfs, np.zeros(4, int), offsets=np.array([-1])).tolist()
    [-1, 0, 1, 7]
    """
    enc = StreamEncoder()
    enc.encode_cdf(symbols, cdfs, indexes, offsets, escape_prob=escape_prob)
    return enc.finish()


def decode_cdf(data: bytes, cdfs, indexes, offsets=None, *, escape_prob=DEFAULT_ESCAPE_PROB) -> np.ndarray:
    """Inverse of :func:`encode_cdf` given the same tables, indexes and offsets."""
    return StreamDecoder(data).decode_cdf(cdfs, indexes, offsets, escape_prob=escape_prob)


def cdf_likelihoods(symbols, cdfs, indexes, offsets=None) -> np.ndarray:
    """Likelihood of each in-range symbol under its (normalised) CDF table row; 0 if outside."""
    s = _symbols(symbols)
    idx, off, pm = _cdf_setup(cdfs, indexes, offsets, s.size, DEFAULT_ESCAPE_PROB)
    c = _float_array(cdfs, "cdfs", ndim=2)
    pmf = np.diff(c, axis=1)
    pmf = pmf / pmf.sum(axis=1, keepdims=True)
    rel = s - off[idx]
    ok = (rel >= 0) & (rel < pmf.shape[1])
    out = np.zeros(s.size)
    out[ok] = pmf[idx[ok], rel[ok]]
    return out
