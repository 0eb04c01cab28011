"""Arithmetic (range) coding of discrete indices with ``constriction``.

The Wyner–Ziv codes of :mod:`toy_sources.codes.wyner_ziv` and
:mod:`toy_sources.codes.learned_wz` produce integer indices; this module turns them into
real bytes and back. Two kinds of model are supported:

* one shared categorical pmf ``p`` of shape ``(K,)`` for every symbol (a learned or exact
  *marginal* — what a Wyner–Ziv encoder, which never sees ``y``, can use);
* one pmf per symbol, shape ``(N, K)`` (e.g. the conditional pmf ``P(C = c | Y = y_i)``,
  which needs ``y`` at *both* ends).

The ideal code length of a sequence is ``-sum_i log2 p_i(s_i)`` bits (Cover & Thomas,
Thm. 5.4.1 / Sec. 13.3: arithmetic coding is within 2 bits of it for the whole
sequence); :func:`ideal_code_length_bits` gives it so that the coded length
``8 * len(bytes)`` can be reported next to it.

Examples
--------
>>> import numpy as np
>>> p = np.array([0.5, 0.25, 0.25])
>>> s = np.array([0, 1, 2, 0])
>>> ideal_code_length_bits(s, p)   # 1 + 2 + 2 + 1 bits
6.0
>>> data = encode_categorical(s, p)
>>> decode_categorical(data, p, n=4).tolist()
[0, 1, 2, 0]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_pmf",
    "encode_categorical",
    "decode_categorical",
    "ideal_code_length_bits",
    "coded_bits",
]

#: tolerance on ``|sum(p) - 1|`` for a pmf row
PMF_ATOL = 1e-6


def check_pmf(probs, name="probs", atol=PMF_ATOL):
    """Validate a pmf (shape ``(K,)``) or a stack of pmfs (shape ``(N, K)``).

    Parameters
    ----------
    probs : array_like
        Probabilities, finite, non-negative, each row summing to one within ``atol``.
    name : str
        Name used in error messages.
    atol : float
        Allowed deviation of each row sum from 1.

    Returns
    -------
    numpy.ndarray
        ``probs`` as float64.

    Examples
    --------
    >>> check_pmf([0.2, 0.8]).tolist()
    [0.2, 0.8]
    >>> check_pmf([0.2, 0.7])
    Traceback (most recent call last):
    ...
    ValueError: probs must sum to one along the last axis (got sums in [0.9, 0.9])
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (K,) or (N, K) with K >= 1, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(p < 0):
        raise ValueError(f"{name} contains negative probabilities (min {p.min():.3g})")
    sums = p.sum(axis=-1)
    if np.any(np.abs(sums - 1.0) > atol):
        raise ValueError(
            f"{name} must sum to one along the last axis "
            f"(got sums in [{sums.min():.6g}, {sums.max():.6g}])"
        )
    return p


def _check_symbols(symbols, num_symbols, n_expected=None):
    s = np.asarray(symbols)
    if s.ndim != 1:
        raise ValueError(f"symbols must be a 1-D array of indices, got shape {s.shape}")
    if s.size and not np.issubdtype(s.dtype, np.integer):
        if not np.all(np.isfinite(s)):
            raise ValueError("symbols contains NaN or infinite values")
        if np.any(s != np.round(s)):
            raise ValueError("symbols must be integers")
    s = s.astype(np.int64)
    if s.size and (s.min() < 0 or s.max() >= num_symbols):
        raise ValueError(
            f"symbols must lie in [0, {num_symbols - 1}] (alphabet of the pmf), "
            f"got range [{s.min()}, {s.max()}]"
        )
    if n_expected is not None and s.size != n_expected:
        raise ValueError(
            f"symbols has length {s.size} but probs has {n_expected} rows (one pmf per symbol)"
        )
    return s.astype(np.int32)


def ideal_code_length_bits(symbols, probs):
    """Ideal code length ``-sum_i log2 p_i(s_i)`` in bits (the entropy estimate).

    Parameters
    ----------
    symbols : array_like of int, shape (N,)
    probs : array_like, shape (K,) or (N, K)

    Returns
    -------
    float
        Total information content in bits.

    Examples
    --------
    >>> ideal_code_length_bits([1, 1], [0.5, 0.5])
    2.0
    """
    p = check_pmf(probs)
    s = _check_symbols(symbols, p.shape[-1], p.shape[0] if p.ndim == 2 else None)
    ps = p[s] if p.ndim == 1 else p[np.arange(s.size), s]
    with np.errstate(divide="ignore"):
        return float(-np.sum(np.log2(ps)))


def _model_and_args(p):
    import constriction

    if p.ndim == 1:
        return constriction.stream.model.Categorical(p, perfect=False), ()
    return constriction.stream.model.Categorical(perfect=False), (p,)


def encode_categorical(symbols, probs):
    """Range-code ``symbols`` with categorical model(s) ``probs``; return the bytes.

    Parameters
    ----------
    symbols : array_like of int, shape (N,)
        Indices in ``[0, K)``.
    probs : array_like, shape (K,) or (N, K)
        One shared pmf, or one pmf per symbol. Each row must sum to one.

    Returns
    -------
    bytes
        The compressed stream (a whole number of 32-bit words, little-endian). The
        number of symbols is *not* stored; the decoder is told ``n``.
    """
    import constriction

    p = check_pmf(probs)
    s = _check_symbols(symbols, p.shape[-1], p.shape[0] if p.ndim == 2 else None)
    model, args = _model_and_args(p)
    enc = constriction.stream.queue.RangeEncoder()
    if s.size:
        enc.encode(s, model, *args)
    return enc.get_compressed().astype("<u4").tobytes()


def decode_categorical(data, probs, n=None):
    """Inverse of :func:`encode_categorical`.

    Parameters
    ----------
    data : bytes
        Output of :func:`encode_categorical`.
    probs : array_like, shape (K,) or (N, K)
        The same model(s) the encoder used.
    n : int, optional
        Number of symbols; required for a shared pmf, implied by ``N`` otherwise.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
    """
    import constriction

    p = check_pmf(probs)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) % 4:
        raise ValueError(f"data must be a whole number of 32-bit words, got {len(data)} bytes")
    if p.ndim == 2:
        if n is not None and n != p.shape[0]:
            raise ValueError(f"n={n} disagrees with probs of shape {p.shape}")
        n = p.shape[0]
    elif n is None:
        raise ValueError("n (number of symbols) is required with a single shared pmf")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    words = np.frombuffer(bytes(data), dtype="<u4").astype(np.uint32)
    model, args = _model_and_args(p)
    dec = constriction.stream.queue.RangeDecoder(words)
    if p.ndim == 1:
        out = dec.decode(model, int(n))
    else:
        out = dec.decode(model, *args)
    return np.asarray(out, dtype=np.int64)


def coded_bits(data):
    """Length of a coded stream in bits (``8 * len(data)``).

    >>> coded_bits(b"1234")
    32
    """
    return 8 * len(data)
