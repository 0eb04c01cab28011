"""Bits per pixel: the coded rate (from real bytes) and the estimated rate (from likelihoods).

The two are always reported side by side and never confused: ``bpp_from_bytes`` counts
every byte the encoder sends (container header and CRC included; side information that
only the decoder holds costs nothing), ``bpp_from_likelihoods`` is the model's ideal code
length ``Σ −log2 p`` -- an ESTIMATE that a real arithmetic coder approaches from above.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bpp_from_bytes", "bpp_from_likelihoods", "bits_from_likelihoods"]


def _check_pixels(num_pixels) -> int:
    if isinstance(num_pixels, bool) or not isinstance(num_pixels, (int, np.integer)) or num_pixels <= 0:
        raise ValueError(f"num_pixels must be a positive int (H*W of the coded image), got {num_pixels!r}")
    return int(num_pixels)


def bpp_from_bytes(data: bytes, num_pixels: int) -> float:
    """CODED rate: ``8 · len(data) / num_pixels`` bits per pixel.

    ``data`` is everything the encoder transmits for the image (the whole container).

    >>> bpp_from_bytes(b"x" * 64, 128 * 256)
    0.015625
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return 8.0 * len(data) / _check_pixels(num_pixels)


def bits_from_likelihoods(likelihoods) -> float:
    """ESTIMATED code length ``Σ −log2 p`` in bits over a list of likelihood tensors/arrays."""
    if not isinstance(likelihoods, (list, tuple)):
        likelihoods = [likelihoods]
    total = 0.0
    for i, lk in enumerate(likelihoods):
        if hasattr(lk, "detach"):
            lk = lk.detach().cpu().double().numpy()
        a = np.asarray(lk, dtype=np.float64)
        if not np.all(np.isfinite(a)) or (a.size and (a.min() <= 0 or a.max() > 1 + 1e-6)):
            raise ValueError(f"likelihoods[{i}] must lie in (0, 1] and be finite")
        total += float(-np.log2(a).sum())
    return total


def bpp_from_likelihoods(likelihoods, num_pixels: int) -> float:
    """ESTIMATED rate ``Σ −log2 p / num_pixels`` from model likelihoods (no bitstream written).

    This is the training-time rate term (Eq. 6 of the MDIC paper, the bpp_x of Fig. 4),
    not a coded rate: the real bytes of :func:`bpp_from_bytes` are larger by the coder
    overhead and the container header.

    >>> bpp_from_likelihoods([np.full(8, 0.5)], 4)
    2.0
    """
    n = _check_pixels(num_pixels)
    bits = bits_from_likelihoods(likelihoods)
    if not math.isfinite(bits):
        raise ValueError("likelihoods give an infinite code length")
    return bits / n
