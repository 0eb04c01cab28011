r"""Wyner–Ziv coding with a real Slepian–Wolf code: nested quantisation + LDPCA bit planes.

The coset index ``c = round(x/Δ) mod 2^L`` (:class:`~toy_sources.codes.wyner_ziv.NestedScalarQuantizer`
with ``M = 2^L``) is split into ``L`` bit planes ``b_0`` (LSB) … ``b_{L-1}``. Each plane of
a block of ``n`` samples is sent as an accumulated LDPC syndrome with the rate-adaptive
LDPCA codes of :mod:`toy_sources.codes.ldpc_accumulate` (the decoder asks for more
syndrome bits until belief propagation succeeds and a CRC matches). The decoder decodes
the planes from the LSB up; the prior LLR of plane ``l`` uses ``y`` *and* the planes
already decoded (multilevel coding, chain rule
``H(C|Y) = Σ_l H(b_l | Y, b_0 … b_{l-1})``):

.. math:: \mathrm{LLR}_l = \log \frac{\sum_{c:\, c \bmod 2^l = r,\ c_l = 0} P(c\mid y)}
                                   {\sum_{c:\, c \bmod 2^l = r,\ c_l = 1} P(c\mid y)},
          \qquad r = \text{decoded } b_0 \dots b_{l-1}.

The encoder never uses ``y``. The rate is the syndrome and CRC bits actually sent
(over ``n``), a *coded* rate; it is compared with the entropy ``H(C|Y)`` it approaches.
If a plane still fails at the top level, it is counted as sent uncoded (1 bit/sample
plus CRC) and its true bits are used — the feedback channel tells the encoder so.
"""

from __future__ import annotations

import numpy as np

from .wyner_ziv import GaussianSideInfoSource, NestedScalarQuantizer

__all__ = ["bitplane_llr", "LDPCWynerZiv"]


def bitplane_llr(cond_pmf, plane, lower_bits):
    """Prior LLR ``log P(b_l=0 | y, lower) / P(b_l=1 | y, lower)`` of bit plane ``plane``.

    Parameters
    ----------
    cond_pmf : array_like, shape (N, M)
        ``P(C = c | y_i)`` with ``M = 2^L``.
    plane : int
        Bit plane ``l`` (0 = least significant).
    lower_bits : array_like of int, shape (N,)
        The decoded value of planes ``0 … l-1``, i.e. ``c mod 2^l``.

    Returns
    -------
    numpy.ndarray, shape (N,), clipped to ±30.

    Examples
    --------
    >>> p = np.array([[0.7, 0.1, 0.1, 0.1]])     # c = 0 likely
    >>> round(float(bitplane_llr(p, 0, [0])[0]), 4)   # log(0.8/0.2)
    1.3863
    >>> round(float(bitplane_llr(p, 1, [0])[0]), 4)   # given b0 = 0: log(0.7/0.1)
    1.9459
    """
    P = np.asarray(cond_pmf, dtype=float)
    if P.ndim != 2:
        raise ValueError(f"cond_pmf must have shape (N, M), got {P.shape}")
    M = P.shape[1]
    L = int(round(np.log2(M)))
    if 2**L != M:
        raise ValueError(f"cond_pmf needs M = 2^L columns, got M={M}")
    if not 0 <= plane < L:
        raise ValueError(f"plane must lie in [0, {L - 1}], got {plane}")
    r = np.asarray(lower_bits, dtype=np.int64)
    if r.shape != (P.shape[0],):
        raise ValueError(f"lower_bits must have shape ({P.shape[0]},), got {r.shape}")
    c = np.arange(M)
    match = (c[None, :] % (2**plane)) == (r[:, None] % (2**plane))  # (N, M)
    bit = (c >> plane) & 1
    p0 = np.sum(P * match * (bit == 0)[None, :], axis=1)
    p1 = np.sum(P * match * (bit == 1)[None, :], axis=1)
    tiny = 1e-300
    return np.clip(np.log(p0 + tiny) - np.log(p1 + tiny), -30.0, 30.0)


class LDPCWynerZiv:
    """Nested quantiser (``M = 2^L``) + LDPCA-coded bit planes + MMSE decoder.

    Parameters
    ----------
    step : float
        Quantiser step ``Δ``.
    n_planes : int
        ``L``; ``M = 2^L`` cosets.
    source : GaussianSideInfoSource
    block : int
        LDPCA block length (samples per block); a multiple of ``levels``.
    levels : int
        Rate granularity of the LDPCA code (``1/levels`` bits per sample per plane).
    seed : int
        Seed of the PEG construction.
    """

    def __init__(self, step, n_planes, source: GaussianSideInfoSource, block=2000, levels=50, seed=0):
        from .ldpc_experiments import cached_ldpca_code

        if int(n_planes) != n_planes or not 1 <= n_planes <= 12:
            raise ValueError(f"n_planes must be an integer in [1, 12], got {n_planes}")
        self.L = int(n_planes)
        self.quantizer = NestedScalarQuantizer(float(step), 2**self.L)
        self.source = source
        # PEG base matrix cached on disk ($MDIC_LAB_CACHE): built once per (block, levels, seed)
        self.code = cached_ldpca_code(int(block), int(levels), seed=seed)
        self.block = int(block)

    def run(self, x, y, max_iter=100):
        """Encode and decode whole blocks of ``(x, y)`` (length a multiple of ``block``).

        Returns
        -------
        dict
            ``rate_coded`` (syndrome + CRC bits per sample, all planes), ``rate_per_plane``,
            ``h_index_given_y`` (exact entropy the code approaches), ``mse`` (of the MMSE
            reconstruction from the decoded cosets), ``plane_failures`` (block-planes sent
            uncoded after the top level failed), ``planes_uncoded`` (block-planes the
            decoder asked for uncoded because its entropy estimate was ~1 bit), ``index_errors`` (samples whose decoded
            coset differs from the sent one; 0 unless a CRC collision slipped through),
            ``x_hat``.
        """
        from .wyner_ziv import exact_performance

        q = self.quantizer
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"x and y must be 1-D arrays of one shape, got {x.shape} and {y.shape}")
        if x.size == 0 or x.size % self.block:
            raise ValueError(f"length {x.size} must be a positive multiple of block={self.block}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("x and y must be finite (no NaN or inf)")
        c = q.encode(x)  # encoder: no y
        P = q.conditional_pmf(y, self.source)  # decoder: P(c | y)
        n, L = self.block, self.L
        bits_per_plane = np.zeros(L)
        failures = uncoded = 0
        c_hat = np.zeros_like(c)
        for start in range(0, x.size, n):
            sl = slice(start, start + n)
            lower = np.zeros(n, dtype=np.int64)
            for plane in range(L):
                b = ((c[sl] >> plane) & 1).astype(np.uint8)
                llr = bitplane_llr(P[sl], plane, lower)
                if self.code.start_level_for(llr) >= self.code.levels:
                    # the decoder's own estimate of H(b_l | y, lower) is ~1 bit: it asks
                    # for the plane uncoded (n bits, no syndrome code can do better)
                    uncoded += 1
                    bits_per_plane[plane] += n
                    lower = lower + (b.astype(np.int64) << plane)
                    continue
                feed = self.code.encode(b)
                res = self.code.decode(feed, llr, max_iter=max_iter)
                if res.success:
                    bits_per_plane[plane] += res.bits_sent
                    b_hat = res.x_hat.astype(np.int64)
                else:  # sent uncoded on request
                    failures += 1
                    bits_per_plane[plane] += n + self.code.crc_bits
                    b_hat = b.astype(np.int64)
                lower = lower + (b_hat << plane)
            c_hat[sl] = lower
        x_hat = q.decode(c_hat, y, self.source)
        exact = exact_performance(q, self.source)
        return {
            "step": q.step,
            "n_cosets": q.n_cosets,
            "rate_coded": float(bits_per_plane.sum() / x.size),
            "rate_per_plane": (bits_per_plane / x.size).tolist(),
            "h_index_given_y": exact["h_index_given_y"],
            "mse": float(np.mean((x - x_hat) ** 2)),
            "mse_exact_if_lossless": exact["mse"],
            "plane_failures": failures,
            "planes_uncoded": uncoded,
            "index_errors": int(np.sum(c_hat != c)),
            "x_hat": x_hat,
        }
