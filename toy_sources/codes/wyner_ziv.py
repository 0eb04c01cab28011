r"""Wyner–Ziv coding of the quadratic Gaussian source by nested (coset) scalar quantisation.

Source model
------------
``X ~ N(0, var_x)`` and side information ``Y ~ N(0, var_x)`` with correlation ``rho``;
the decoder sees ``Y``, the encoder does not. Given ``Y = y``,

.. math:: X \mid Y=y \;\sim\; \mathcal N(\mu(y), s^2),\qquad
          \mu(y) = \rho y,\quad s^2 = \sigma^2 (1-\rho^2).

The Wyner–Ziv function (seed 003, Eq. (4): :math:`R^{WZ}_{X|Y}(d)=\inf I(X;V|Y)`) equals the
conditional rate–distortion function here (Wyner & Ziv 1976, Sec. III), so in distortion
form :math:`D_{WZ}(R) = \sigma^2(1-\rho^2)\,2^{-2R}`, against :math:`\sigma^2 2^{-2R}`
without side information.

Quantize-and-bin
----------------
A uniform (mid-tread) quantiser of step ``Δ`` gives the *fine* index
``q = round(x / Δ)`` (cell ``[(q-1/2)Δ, (q+1/2)Δ)``); the *coset* index ``c = q mod M``
is what is sent (``M = None`` sends ``q`` itself). Cells of one coset are ``MΔ`` apart;
the decoder picks among them with ``y``. The MMSE reconstruction is exact:

.. math:: \hat x(c, y) = E[X \mid C=c, Y=y]
          = \frac{\sum_{q \equiv c} \int_{cell(q)} x\,p(x|y)\,dx}
                 {\sum_{q \equiv c} P(q \mid y)},

with Gaussian cell masses and partial first moments in closed form (standard normal cdf
``Φ`` and pdf ``φ``). Everything in this module (rates, MSE) is computed either exactly
by numerical integration (:func:`exact_performance`) or on samples
(:meth:`NestedScalarQuantizer.encode` / :meth:`~NestedScalarQuantizer.decode`).

Rates of a nested quantiser (bits/sample)
-----------------------------------------
* ``H(C)`` — coset index coded with its *marginal* pmf: what an encoder without ``y`` can
  do with an arithmetic coder (a real WZ code, coded by
  :mod:`toy_sources.codes.entropy_coding`).
* ``H(C|Y)`` (``= H(Q|Y)`` for ``M = None``) — the Slepian–Wolf limit for the index. It is
  an *entropy*; conditional arithmetic coding with ``P(c|y)`` reaches it but needs ``y``
  at the encoder (an oracle check), and a real syndrome code (LDPC, see
  :mod:`toy_sources.codes.wz_ldpc`) pays more.

At high rate the ideal-SW scheme loses the scalar-quantiser space-filling gap
``10 log10(πe/6) ≈ 1.53 dB`` to :math:`D_{WZ}`.

Examples
--------
>>> round(wz_distortion_gaussian(1.0, 0.0, 1.0), 4)     # no correlation: σ² 2^{-2R}
0.25
>>> round(float(scalar_quantizer_gap_db()), 3)
1.533
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = [
    "GaussianSideInfoSource",
    "NestedScalarQuantizer",
    "wz_distortion_gaussian",
    "no_side_info_distortion_gaussian",
    "scalar_quantizer_gap_db",
    "gap_db",
    "exact_performance",
    "optimise_nested",
    "pareto_front",
]

#: cells further than TAIL conditional standard deviations from μ(y) carry < 1e-19 mass
TAIL = 9.0
_SQRT2PI = np.sqrt(2.0 * np.pi)


# --------------------------------------------------------------------------------------
# bounds in distortion form
# --------------------------------------------------------------------------------------
def _check_var_rho(var_x, rho):
    if not np.isfinite(var_x) or var_x <= 0:
        raise ValueError(f"var_x must be a finite positive variance, got {var_x}")
    if not np.isfinite(rho) or not -1.0 < rho < 1.0:
        raise ValueError(f"rho must be a correlation in the open interval (-1, 1), got {rho}")


def wz_distortion_gaussian(var_x, rho, rate):
    r"""Wyner–Ziv distortion–rate function of the quadratic Gaussian source.

    :math:`D_{WZ}(R) = \sigma^2 (1-\rho^2) 2^{-2R}` (Wyner & Ziv 1976; the inverse of
    seed 003 Eq. (4) for jointly Gaussian ``(X, Y)`` and squared error).

    Parameters
    ----------
    var_x : float
        Variance ``σ²`` of ``X``.
    rho : float
        Correlation of ``X`` and ``Y``, in (-1, 1).
    rate : float or array_like
        Rate in bits/sample (>= 0).

    Examples
    --------
    >>> round(wz_distortion_gaussian(1.0, 0.6, 1.0), 4)   # 0.64 / 4
    0.16
    """
    _check_var_rho(var_x, rho)
    r = np.asarray(rate, dtype=float)
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"rate must be finite and >= 0, got {rate}")
    out = var_x * (1.0 - rho**2) * 2.0 ** (-2.0 * r)
    return float(out) if out.ndim == 0 else out


def no_side_info_distortion_gaussian(var_x, rate):
    r"""Distortion–rate function without side information, :math:`\sigma^2 2^{-2R}`.

    >>> no_side_info_distortion_gaussian(1.0, 1.0)
    0.25
    """
    return wz_distortion_gaussian(var_x, 0.0, rate)


def scalar_quantizer_gap_db():
    r"""High-rate loss of entropy-coded uniform scalar quantisation, ``10 log10(πe/6)`` dB.

    (Gish & Pierce 1968: ``D ≈ Δ²/12`` at rate ``h - log2 Δ``, versus ``2^{2h}/(2πe)``.)

    >>> round(scalar_quantizer_gap_db(), 4)
    1.5329
    """
    return float(10.0 * np.log10(np.pi * np.e / 6.0))


def gap_db(mse, bound):
    """Gap in dB of a distortion above a bound: ``10 log10(mse / bound)``.

    >>> gap_db(2.0, 1.0) > 3.0
    True
    """
    return float(10.0 * np.log10(np.asarray(mse, float) / np.asarray(bound, float)))


# --------------------------------------------------------------------------------------
# source
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianSideInfoSource:
    """Jointly Gaussian ``(X, Y)``, zero mean, equal variances ``var_x``, correlation ``rho``.

    Examples
    --------
    >>> src = GaussianSideInfoSource(var_x=1.0, rho=0.6)
    >>> round(src.cond_std, 4)     # sqrt(1 - 0.36)
    0.8
    """

    var_x: float = 1.0  # variance σ² of X (and of Y)
    rho: float = 0.9  # correlation coefficient of X and Y

    def __post_init__(self):
        _check_var_rho(self.var_x, self.rho)

    @property
    def cond_std(self):
        """Standard deviation ``s = σ sqrt(1 - ρ²)`` of ``X`` given ``Y``."""
        return float(np.sqrt(self.var_x * (1.0 - self.rho**2)))

    def cond_mean(self, y):
        """``E[X | Y=y] = ρ y``."""
        return self.rho * np.asarray(y, dtype=float)

    def sample(self, n, seed=None):
        """Draw ``n`` pairs; returns ``(x, y)``, each shape ``(n,)``.

        ``seed`` is an int or a :class:`numpy.random.Generator`.
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        sd = np.sqrt(self.var_x)
        y = sd * rng.standard_normal(int(n))
        x = self.rho * y + self.cond_std * rng.standard_normal(int(n))
        return x, y

    def d_wz(self, rate):
        """:func:`wz_distortion_gaussian` for this source."""
        return wz_distortion_gaussian(self.var_x, self.rho, rate)

    def d_no_si(self, rate):
        """:func:`no_side_info_distortion_gaussian` for this source."""
        return no_side_info_distortion_gaussian(self.var_x, rate)


# --------------------------------------------------------------------------------------
# Gaussian cell integrals (standardised, centred on the conditional mean)
# --------------------------------------------------------------------------------------
def _cell_moments(a, b):
    """Mass and partial moments of N(0,1) on [a, b]: (P, ∫zφ, ∫z²φ).

    ``P = Φ(b) - Φ(a)`` is computed on the tail side that keeps it accurate;
    ``∫_a^b zφ = φ(a) - φ(b)``, ``∫_a^b z²φ = P + aφ(a) - bφ(b)``.
    """
    upper = a > 0
    P = np.where(upper, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
    P = np.maximum(P, 0.0)
    pa = np.exp(-0.5 * a * a) / _SQRT2PI
    pb = np.exp(-0.5 * b * b) / _SQRT2PI
    m1 = pa - pb
    # a*φ(a) with a = ±inf is 0
    apa = np.where(np.isfinite(a), a * pa, 0.0)
    bpb = np.where(np.isfinite(b), b * pb, 0.0)
    m2 = np.maximum(P + apa - bpb, 0.0)
    return P, m1, m2


def _check_1d(name, v):
    v = np.asarray(v, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return v


# --------------------------------------------------------------------------------------
# the nested quantiser
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NestedScalarQuantizer:
    """Uniform scalar quantiser of step ``step`` nested in a coarse lattice ``M·step``.

    Parameters
    ----------
    step : float
        Fine step ``Δ > 0``.
    n_cosets : int or None
        Number of cosets ``M >= 1`` (``c = q mod M``); ``None`` sends the fine index.

    Examples
    --------
    >>> nq = NestedScalarQuantizer(step=1.0, n_cosets=4)
    >>> nq.quantize(np.array([-2.2, 0.4, 5.6])).tolist()
    [-2, 0, 6]
    >>> nq.encode(np.array([-2.2, 0.4, 5.6])).tolist()
    [2, 0, 2]
    """

    step: float
    n_cosets: int | None = None

    def __post_init__(self):
        if not np.isfinite(self.step) or self.step <= 0:
            raise ValueError(f"step must be a finite positive number, got {self.step}")
        if self.n_cosets is not None and (int(self.n_cosets) != self.n_cosets or self.n_cosets < 1):
            raise ValueError(f"n_cosets must be a positive integer or None, got {self.n_cosets}")

    # -- encoder -------------------------------------------------------------------
    def quantize(self, x):
        """Fine index ``q = round(x / Δ)`` (int64)."""
        x = _check_1d("x", x)
        return np.floor(x / self.step + 0.5).astype(np.int64)

    def coset(self, q):
        """Coset index ``c = q mod M`` (``q`` itself if ``n_cosets`` is None)."""
        q = np.asarray(q, dtype=np.int64)
        return q if self.n_cosets is None else np.mod(q, self.n_cosets)

    def encode(self, x):
        """What the encoder sends: ``c = round(x/Δ) mod M`` (needs no side information)."""
        return self.coset(self.quantize(x))

    # -- decoder -------------------------------------------------------------------
    def _window(self, s):
        return int(np.ceil(TAIL * s / self.step)) + 1

    def _coset_sums(self, c, mu, s, chunk=65536):
        """Per sample: mass P_c, Σ∫(x-μ)p and Σ∫(x-μ)²p over the cells of coset c."""
        J = self._window(s)
        n = mu.size
        P = np.zeros(n)
        T1 = np.zeros(n)
        T2 = np.zeros(n)
        j = np.arange(-J, J + 1)
        for lo in range(0, n, chunk):
            sl = slice(lo, min(n, lo + chunk))
            q0 = np.floor(mu[sl] / self.step + 0.5).astype(np.int64)
            q = q0[:, None] + j[None, :]  # (n, W)
            if self.n_cosets is None:
                mask = q == c[sl, None]
            else:
                mask = np.mod(q, self.n_cosets) == c[sl, None]
            a = ((q - 0.5) * self.step - mu[sl, None]) / s
            b = ((q + 0.5) * self.step - mu[sl, None]) / s
            p, m1, m2 = _cell_moments(a, b)
            P[sl] = np.sum(p * mask, axis=1)
            T1[sl] = s * np.sum(m1 * mask, axis=1)
            T2[sl] = s * s * np.sum(m2 * mask, axis=1)
        return P, T1, T2

    def decode(self, c, y, source):
        """MMSE reconstruction ``x̂ = E[X | C=c, Y=y]`` (exact sum over the coset's cells).

        Parameters
        ----------
        c : array_like of int, shape (N,)
            Received coset indices.
        y : array_like, shape (N,)
            Side information.
        source : GaussianSideInfoSource
            The joint statistics the decoder knows.

        Returns
        -------
        numpy.ndarray, shape (N,)
        """
        c, y = self._check_cy(c, y)
        mu = source.cond_mean(y)
        s = source.cond_std
        if s == 0:
            raise ValueError("rho must be < 1 in magnitude for a non-degenerate decoder")
        P, T1, _ = self._coset_sums(c, mu, s)
        out = mu + T1 / np.where(P > 0, P, 1.0)
        # a coset with no mass within TAIL·s of μ: fall back to its cell nearest to μ
        bad = P <= 0
        if np.any(bad):
            out[bad] = self._nearest_cell_centre(c[bad], mu[bad])
        return out

    def _nearest_cell_centre(self, c, mu):
        if self.n_cosets is None:
            return c * self.step
        M = self.n_cosets
        q0 = np.floor(mu / self.step + 0.5).astype(np.int64)
        k = np.round((q0 - c) / M)
        return (c + k * M) * self.step

    def _check_cy(self, c, y):
        y = _check_1d("y", y)
        c_arr = np.asarray(c)
        if c_arr.ndim != 1 or c_arr.shape != y.shape:
            raise ValueError(f"c must be 1-D with the shape of y {y.shape}, got {c_arr.shape}")
        if c_arr.size and not np.issubdtype(c_arr.dtype, np.integer):
            if not np.all(np.isfinite(c_arr)) or np.any(c_arr != np.round(c_arr)):
                raise ValueError("c must hold integer coset indices")
        c_arr = c_arr.astype(np.int64)
        if self.n_cosets is not None and c_arr.size and (c_arr.min() < 0 or c_arr.max() >= self.n_cosets):
            raise ValueError(f"c must lie in [0, {self.n_cosets - 1}], got [{c_arr.min()}, {c_arr.max()}]")
        return c_arr, y

    # -- probability models --------------------------------------------------------
    def _require_finite_m(self, what):
        if self.n_cosets is None:
            raise ValueError(f"{what} needs a finite n_cosets (got None)")

    def marginal_pmf(self, source):
        """``P(C = c)``, shape ``(M,)``: the pmf a ``y``-blind encoder can code with.

        Examples
        --------
        >>> nq = NestedScalarQuantizer(step=0.01, n_cosets=4)
        >>> np.round(nq.marginal_pmf(GaussianSideInfoSource(1.0, 0.5)), 4).tolist()
        [0.25, 0.25, 0.25, 0.25]
        """
        self._require_finite_m("marginal_pmf")
        sd = np.sqrt(source.var_x)
        Q = int(np.ceil(TAIL * sd / self.step)) + 1
        q = np.arange(-Q, Q + 1)
        p, _, _ = _cell_moments((q - 0.5) * self.step / sd, (q + 0.5) * self.step / sd)
        pm = np.bincount(np.mod(q, self.n_cosets), weights=p, minlength=self.n_cosets)
        return pm / pm.sum()

    def conditional_pmf(self, y, source):
        """``P(C = c | Y = y_i)``, shape ``(N, M)``: the decoder's belief about ``c``."""
        self._require_finite_m("conditional_pmf")
        y = _check_1d("y", y)
        mu = source.cond_mean(y)
        s = source.cond_std
        J = self._window(s)
        M = self.n_cosets
        q0 = np.floor(mu / self.step + 0.5).astype(np.int64)
        out = np.zeros((y.size, M))
        rows = np.arange(y.size)
        for j in range(-J, J + 1):
            q = q0 + j
            p, _, _ = _cell_moments(((q - 0.5) * self.step - mu) / s, ((q + 0.5) * self.step - mu) / s)
            np.add.at(out, (rows, np.mod(q, M)), p)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def fine_offset_pmf(self, y, source):
        """Pmf of ``q - round(μ(y)/Δ) + J`` over ``[0, 2J]`` given ``y``, shape ``(N, 2J+1)``.

        Used to code the *fine* index conditionally on ``y`` (``n_cosets=None``).
        """
        y = _check_1d("y", y)
        mu = source.cond_mean(y)
        s = source.cond_std
        J = self._window(s)
        q0 = np.floor(mu / self.step + 0.5).astype(np.int64)
        q = q0[:, None] + np.arange(-J, J + 1)[None, :]
        p, _, _ = _cell_moments(((q - 0.5) * self.step - mu[:, None]) / s, ((q + 0.5) * self.step - mu[:, None]) / s)
        return p / p.sum(axis=1, keepdims=True)

    # -- coded rates on samples ----------------------------------------------------
    def code_marginal(self, x, source):
        """Encode ``x`` without ``y``: coset indices range-coded with ``P(C)``.

        Returns ``(bytes, c)``. A real Wyner–Ziv bitstream: the decoder needs only the
        bytes, ``n`` and ``y`` (for reconstruction).
        """
        from .entropy_coding import encode_categorical

        c = self.encode(x)
        return encode_categorical(c, self.marginal_pmf(source)), c

    def decode_marginal(self, data, n, y, source):
        """Inverse of :meth:`code_marginal` followed by the MMSE decoder."""
        from .entropy_coding import decode_categorical

        c = decode_categorical(data, self.marginal_pmf(source), n=n)
        return self.decode(c, y, source)

    def code_conditional(self, x, y, source):
        """Range-code the index with ``P(index | y)`` — an ORACLE (the encoder sees ``y``).

        Its length checks the conditional entropy ``H(C|Y)`` (``H(Q|Y)`` for
        ``n_cosets=None``) that Slepian–Wolf coding achieves without ``y`` at the encoder;
        it is not itself a Wyner–Ziv code. Returns ``(bytes, symbols)``.
        """
        from .entropy_coding import encode_categorical

        q = self.quantize(x)
        y = _check_1d("y", y)
        if self.n_cosets is None:
            probs = self.fine_offset_pmf(y, source)
            J = (probs.shape[1] - 1) // 2
            sym = q - np.floor(source.cond_mean(y) / self.step + 0.5).astype(np.int64) + J
            if np.any((sym < 0) | (sym > 2 * J)):
                raise ValueError(f"a sample lies more than {TAIL} conditional std from E[X|Y]")
        else:
            probs = self.conditional_pmf(y, source)
            sym = self.coset(q)
        return encode_categorical(sym, probs), sym

    def decode_conditional(self, data, y, source):
        """Inverse of :meth:`code_conditional` followed by the MMSE decoder."""
        from .entropy_coding import decode_categorical

        y = _check_1d("y", y)
        if self.n_cosets is None:
            probs = self.fine_offset_pmf(y, source)
            J = (probs.shape[1] - 1) // 2
            sym = decode_categorical(data, probs)
            q = sym + np.floor(source.cond_mean(y) / self.step + 0.5).astype(np.int64) - J
            return self.decode(q, y, source)
        sym = decode_categorical(data, self.conditional_pmf(y, source))
        return self.decode(sym, y, source)


# --------------------------------------------------------------------------------------
# exact performance by numerical integration
# --------------------------------------------------------------------------------------
def _entropy_bits(p, axis=-1):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, -p * np.log2(p), 0.0)
    return t.sum(axis=axis)


def exact_performance(quantizer, source, n_grid=256):
    r"""Exact rates and MSE of nested quantisation + MMSE decoding, by numerical integration.

    Given ``Y = y`` the problem depends on ``μ = ρy`` only through ``μ mod Δ`` (shifting
    ``μ`` by ``Δ`` shifts every fine index by one), so

    .. math:: E_Y[f(\mu(Y))] = \int_{-Δ/2}^{Δ/2} f(u)\, \textstyle\sum_k p_\mu(u + kΔ)\,du,

    with ``μ ~ N(0, ρ²σ²)`` wrapped onto one cell (``n_grid`` bins, each weighted by its
    exact wrapped probability). Per ``u``: cell masses ``P_q``, coset masses ``P_c``, and
    ``MSE(u) = Σ_c [T2_c - T1_c²/P_c]`` with ``T1_c, T2_c`` the first/second partial
    moments of ``X - μ`` over the cells of coset ``c``.

    Parameters
    ----------
    quantizer : NestedScalarQuantizer
    source : GaussianSideInfoSource
    n_grid : int
        Number of offset bins in one cell.

    Returns
    -------
    dict
        ``h_index_given_y`` (H(C|Y), bits), ``h_fine_given_y`` (H(Q|Y)), ``h_index``
        (H(C), marginal; H(Q) for ``n_cosets=None``), ``mse``, ``p_coset_error`` (the
        probability that the decoded cell is not the transmitted one, i.e. MAP coset
        error; 0 for ``n_cosets=None``).

    Examples
    --------
    High-rate check of ``D ≈ Δ²/12`` with the fine index:

    >>> src = GaussianSideInfoSource(1.0, 0.9)
    >>> r = exact_performance(NestedScalarQuantizer(0.01), src)
    >>> round(r["mse"] / (0.01**2 / 12), 3)
    1.0
    """
    if int(n_grid) != n_grid or n_grid < 4:
        raise ValueError(f"n_grid must be an integer >= 4, got {n_grid}")
    d, M = quantizer.step, quantizer.n_cosets
    s = source.cond_std
    J = quantizer._window(s)
    j = np.arange(-J, J + 1)  # fine indices relative to the cell holding μ
    h = d / n_grid
    u = -d / 2 + h * (np.arange(n_grid) + 0.5)  # μ offsets within cell 0
    # exact wrapped-normal mass of each offset bin
    sd_mu = abs(source.rho) * np.sqrt(source.var_x)
    if sd_mu == 0:
        w = np.zeros(n_grid)
        w[np.argmin(np.abs(u))] = 1.0
    else:
        K = int(np.ceil(TAIL * sd_mu / d)) + 1
        k = np.arange(-K, K + 1)[:, None] * d
        lo = (u[None, :] - h / 2 + k) / sd_mu
        hi = (u[None, :] + h / 2 + k) / sd_mu
        w = (ndtr(hi) - ndtr(lo)).sum(axis=0)
        w /= w.sum()
    a = ((j[None, :] - 0.5) * d - u[:, None]) / s  # (G, W)
    b = ((j[None, :] + 0.5) * d - u[:, None]) / s
    P, m1, m2 = _cell_moments(a, b)
    T1q, T2q = s * m1, s * s * m2
    Pn = P / P.sum(axis=1, keepdims=True)
    h_fine = float(w @ _entropy_bits(Pn))
    if M is None:
        mse_u = np.sum(T2q - np.where(P > 0, T1q**2 / np.where(P > 0, P, 1), 0.0), axis=1)
        h_idx_y = h_fine
        p_err = 0.0
    else:
        G = np.zeros((j.size, M))
        G[np.arange(j.size), np.mod(j, M)] = 1.0  # fine index -> coset one-hot
        Pc, T1c, T2c = P @ G, T1q @ G, T2q @ G
        mse_u = np.sum(T2c - np.where(Pc > 0, T1c**2 / np.where(Pc > 0, Pc, 1), 0.0), axis=1)
        h_idx_y = float(w @ _entropy_bits(Pc / Pc.sum(axis=1, keepdims=True)))
        # MAP cell within the coset vs the true cell: error if another cell of the coset
        # is more likely than the one containing x
        best = np.zeros_like(Pc)
        for col in range(j.size):
            best[:, j[col] % M] = np.maximum(best[:, j[col] % M], P[:, col])
        p_err = float(w @ (1.0 - best.sum(axis=1) / P.sum(axis=1)))
    mse = float(w @ np.maximum(mse_u, 0.0))
    if M is None:
        h_idx = _marginal_entropy_fine(d, source)
    else:
        h_idx = float(_entropy_bits(quantizer.marginal_pmf(source)))
    return {
        "step": d,
        "n_cosets": M,
        "h_index_given_y": h_idx_y,
        "h_fine_given_y": h_fine,
        "h_index": h_idx,
        "mse": mse,
        "p_coset_error": max(p_err, 0.0),
    }


def _marginal_entropy_fine(d, source):
    sd = np.sqrt(source.var_x)
    Q = int(np.ceil(TAIL * sd / d)) + 1
    q = np.arange(-Q, Q + 1)
    p, _, _ = _cell_moments((q - 0.5) * d / sd, (q + 0.5) * d / sd)
    return float(_entropy_bits(p / p.sum()))


def pareto_front(rates, mses):
    """Indices of the lower-left (rate, mse) front, sorted by rate.

    >>> pareto_front([1, 2, 3, 2.5], [4, 3, 1, 3.5]).tolist()
    [0, 1, 2]
    """
    r = np.asarray(rates, float)
    m = np.asarray(mses, float)
    order = np.lexsort((m, r))
    keep, best = [], np.inf
    for i in order:
        if m[i] < best:
            keep.append(i)
            best = m[i]
    return np.asarray(keep, dtype=int)


def optimise_nested(source, rate="ideal_sw", step_grid=None, coset_grid=None, n_grid=128):
    """Operational D(R) front of nested scalar quantisation, optimised over (Δ, M).

    Parameters
    ----------
    source : GaussianSideInfoSource
    rate : {"ideal_sw", "sw_coset", "marginal"}
        ``"ideal_sw"``: fine index, rate ``H(Q|Y)`` (an entropy; ``M`` = None).
        ``"sw_coset"``: coset index, rate ``H(C|Y)`` (an entropy).
        ``"marginal"``: coset index coded with ``P(C)``, rate ``H(C)`` (codable without y).
    step_grid : array_like, optional
        Steps Δ to try, in units of the conditional std ``s`` (default 60 log-spaced
        values in [0.1, 40]).
    coset_grid : sequence of int, optional
        Numbers of cosets ``M`` to try (default 2..16, 20, 24, 32, 48, 64).
    n_grid : int
        Integration bins for :func:`exact_performance`.

    Returns
    -------
    list of dict
        The Pareto-optimal points (each the dict of :func:`exact_performance` plus
        ``rate``), sorted by rate.
    """
    kinds = ("ideal_sw", "sw_coset", "marginal")
    if rate not in kinds:
        raise ValueError(f"unknown rate {rate!r} (expected one of: {', '.join(kinds)})")
    s = source.cond_std
    steps = s * (np.geomspace(0.1, 40.0, 60) if step_grid is None else np.asarray(step_grid, float))
    if rate == "ideal_sw":
        cosets = [None]
    else:
        cosets = list(range(2, 17)) + [20, 24, 32, 48, 64] if coset_grid is None else list(coset_grid)
    pts = []
    for M in cosets:
        for d in steps:
            r = exact_performance(NestedScalarQuantizer(float(d), M), source, n_grid=n_grid)
            r["rate"] = r["h_index"] if rate == "marginal" else r["h_index_given_y"]
            pts.append(r)
    keep = pareto_front([p["rate"] for p in pts], [p["mse"] for p in pts])
    return [pts[i] for i in keep]
