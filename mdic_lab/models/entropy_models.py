"""Entropy models of learned image codecs, in torch, after Ballé et al. (2018) and CompressAI.

Two models turn a latent tensor into likelihoods (for the training rate term) and into
bytes (through :mod:`mdic_lab.coding.arithmetic`):

* :class:`EntropyBottleneck` -- the factorized prior: one learned univariate density per
  channel (Ballé et al. 2018, "Variational image compression with a scale hyperprior",
  appendix 6.1), the likelihood of a quantized value being the mass of the unit bin,
  ``p(ŷ) = c(ŷ + ½) − c(ŷ − ½)`` (Eq. 3 there, with ``c`` the learned cumulative).
* :class:`GaussianConditional` -- a zero-mean Gaussian with a per-element scale
  predicted by the hyperprior, convolved with the unit box:
  ``p(ŷ | σ) = Φ((ŷ + ½)/σ) − Φ((ŷ − ½)/σ)`` (Eq. 7 of the same paper).

As in CompressAI, there is one :func:`quantize` with a checked ``mode``
("noise" | "dequantize" | "symbols"), and coding requires an explicit :meth:`update`
that builds the tables both ends share; :meth:`compress` before :meth:`update` (or after
the parameters changed) raises instead of silently coding with stale tables.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdic_lab.coding import arithmetic
from mdic_lab.coding.errors import BitstreamError
from mdic_lab.models.layers import lower_bound

__all__ = [
    "QUANTIZE_MODES",
    "quantize",
    "EntropyModel",
    "EntropyBottleneck",
    "GaussianConditional",
    "TablesNotReady",
]

#: The three quantization modes (CompressAI's naming).
QUANTIZE_MODES = ("noise", "dequantize", "symbols")
#: Smallest likelihood returned by the models (as CompressAI's ``likelihood_bound``).
LIKELIHOOD_BOUND = 1e-9


class TablesNotReady(RuntimeError):
    """``compress``/``decompress`` called before ``update()`` or after the parameters changed."""


def quantize(x: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Quantize a latent tensor.

    Parameters
    ----------
    x : torch.Tensor
        Continuous latents.
    mode : {"noise", "dequantize", "symbols"}
        ``"noise"``: ``x + u`` with ``u ~ U(-½, ½)`` (the training proxy of Ballé 2017);
        ``"dequantize"``: ``round(x)`` as float (what the decoder sees);
        ``"symbols"``: ``round(x)`` as int32 (what the arithmetic coder codes).
    generator : torch.Generator, optional
        Source of the uniform noise (mode "noise").

    >>> quantize(torch.tensor([0.4, -1.6]), "dequantize").tolist()
    [0.0, -2.0]
    >>> quantize(torch.tensor([2.5]), "symbols").dtype
    torch.int32
    >>> quantize(torch.zeros(1), "round")
    Traceback (most recent call last):
    ...
    ValueError: unknown quantize mode 'round' (expected one of: noise, dequantize, symbols)
    """
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantize mode {mode!r} (expected one of: {', '.join(QUANTIZE_MODES)})")
    if mode == "noise":
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) - 0.5
        return x + noise
    rounded = torch.round(x)
    return rounded if mode == "dequantize" else rounded.to(torch.int32)


def _check_forward_mode(mode: str) -> None:
    if mode not in ("noise", "dequantize"):
        raise ValueError(f"unknown forward mode {mode!r} (expected one of: noise, dequantize)")


class EntropyModel(nn.Module):
    """Shared plumbing: the ``update()`` bookkeeping that guards coding."""

    def __init__(self) -> None:
        super().__init__()
        self._tables_version: int | None = None

    def _param_version(self) -> int:
        # Tensor._version counts in-place updates (optimizer steps, load_state_dict).
        return sum(int(p._version) for p in self.parameters()) + sum(int(b._version) for b in self.buffers())

    def _mark_updated(self) -> None:
        self._tables_version = self._param_version()

    def _check_tables(self) -> None:
        name = type(self).__name__
        if self._tables_version is None:
            raise TablesNotReady(f"{name}: coding tables are not built; call model.update() before compress()/decompress()")
        if self._tables_version != self._param_version():
            raise TablesNotReady(f"{name}: parameters changed since update(); call model.update() again before coding")


class EntropyBottleneck(EntropyModel):
    """Factorized prior: a learned non-parametric density per channel (Ballé et al. 2018, App. 6.1).

    The cumulative ``c(v)`` of each channel is ``sigmoid`` of a small monotone network
    ``f_K ∘ … ∘ f_1`` with ``f_k(x) = g_k(H^(k) x + b^(k))``, ``H^(k) = softplus(·)`` ≥ 0 and
    ``g_k(x) = x + tanh(a^(k)) ⊙ tanh(x)`` (Eqs. 11–13 of the appendix).

    Parameters
    ----------
    channels : int
        Number of channels C of the (B, C, H, W) latents.
    filters : tuple of int
        Hidden widths of the density network (CompressAI default ``(3, 3, 3, 3)``).
    init_scale : float
        Initial scale of the density (its width in quantization bins).
    tail_mass : float
        Mass left outside the coded support of each channel (coded through escapes).
    max_support : int
        Largest |value| scanned when building the tables in :meth:`update`.

    Examples
    --------
    >>> eb = EntropyBottleneck(2)
    >>> v = torch.arange(-400.0, 401.0).reshape(1, 1, -1, 1).expand(1, 2, -1, 1)
    >>> lik = eb.likelihood(v)                  # mass of every unit bin: sums to c(+inf) - c(-inf) = 1
    >>> [round(t, 4) for t in lik.sum(dim=(0, 2, 3)).tolist()]
    [1.0, 1.0]
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3), init_scale: float = 10.0,
                 tail_mass: float = 1e-9, max_support: int = 255):
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.tail_mass = float(tail_mass)
        self.max_support = int(max_support)
        dims = (1,) + self.filters + (1,)
        scale = init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((self.channels, dims[i + 1], dims[i]), init)))
            bias = torch.empty(self.channels, dims[i + 1], 1)
            # deterministic initialisation (no global RNG): evenly spread in [-½, ½]
            bias.copy_(torch.linspace(-0.5, 0.5, bias.numel()).reshape(bias.shape))
            self.biases.append(nn.Parameter(bias))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(self.channels, dims[i + 1], 1)))
        self._cdfs: np.ndarray | None = None
        self._offsets: np.ndarray | None = None

    def _logits_cumulative(self, inputs: torch.Tensor) -> torch.Tensor:
        """``logit c(v)`` for ``inputs`` of shape (C, 1, N) → (C, 1, N)."""
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix = F.softplus(self.matrices[i].to(inputs.dtype))  # (C, d_{i+1}, d_i)
            logits = torch.matmul(matrix, logits) + self.biases[i].to(inputs.dtype)  # (C, d_{i+1}, N)
            if i < len(self.filters):
                logits = logits + torch.tanh(self.factors[i].to(inputs.dtype)) * torch.tanh(logits)
        return logits

    def _bin_mass(self, values: torch.Tensor) -> torch.Tensor:
        """``c(v + ½) − c(v − ½)`` for (C, 1, N) values, computed on the far side of the median."""
        lower = self._logits_cumulative(values - 0.5)
        upper = self._logits_cumulative(values + 0.5)
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def likelihood(self, values: torch.Tensor) -> torch.Tensor:
        """Mass of the unit bin centred on every element of ``values`` (B, C, H, W), bounded below by 1e-9."""
        if values.dim() != 4 or values.shape[1] != self.channels:
            raise ValueError(f"values must have shape (B, {self.channels}, H, W), got {tuple(values.shape)}")
        b, c, h, w = values.shape
        v = values.permute(1, 0, 2, 3).reshape(c, 1, -1)  # (C, 1, B*H*W)
        lik = self._bin_mass(v).reshape(c, b, h, w).permute(1, 0, 2, 3)  # (B, C, H, W)
        return lower_bound(lik, LIKELIHOOD_BOUND)

    def forward(self, y: torch.Tensor, mode: str = "noise", generator: torch.Generator | None = None):
        """Quantize (``mode`` "noise" or "dequantize") and return ``(y_hat, likelihoods)``."""
        _check_forward_mode(mode)
        y_hat = quantize(y, mode, generator)
        return y_hat, self.likelihood(y_hat)

    @torch.no_grad()
    def update(self) -> None:
        """Build the per-channel CDF tables used by :meth:`compress` / :meth:`decompress`.

        The support of channel ``c`` is the smallest integer interval ``[lo_c, hi_c]`` outside
        which the density has at most ``tail_mass / 2`` on each side; every table row holds
        ``c(lo_c + j − ½)`` for ``j = 0..K`` (float64), values outside escape.
        """
        r = self.max_support
        grid = torch.arange(-r - 1, r + 2, dtype=torch.float64) - 0.5  # edges k - ½ for k in [-r-1, r+1]
        logits = self._logits_cumulative(grid.reshape(1, 1, -1).expand(self.channels, 1, -1).contiguous())
        logits = logits.reshape(self.channels, -1)  # (C, G)
        cdf_low = torch.sigmoid(logits).numpy()  # c(edge)
        sf_high = torch.sigmoid(-logits).numpy()  # 1 - c(edge), accurate in the upper tail
        ks = np.arange(-r - 1, r + 2)
        lo = np.empty(self.channels, dtype=np.int64)
        hi = np.empty(self.channels, dtype=np.int64)
        half = self.tail_mass / 2
        for c in range(self.channels):
            # lo: largest k with c(k - ½) <= tail/2 ; hi: smallest k with 1 - c(k + ½) <= tail/2
            below = np.flatnonzero(cdf_low[c] <= half)
            lo[c] = ks[below[-1]] if below.size else -r
            above = np.flatnonzero(sf_high[c] <= half)
            hi[c] = ks[above[0]] - 1 if above.size else r
            lo[c] = max(min(lo[c], hi[c]), -r)
            hi[c] = min(max(hi[c], lo[c]), r)
        k = int((hi - lo).max()) + 1
        edges = (lo[:, None] + np.arange(k + 1)[None, :] - 0.5).astype(np.float64)  # (C, K+1)
        edge_t = torch.from_numpy(edges).reshape(self.channels, 1, -1)
        self._cdfs = torch.sigmoid(self._logits_cumulative(edge_t)).reshape(self.channels, -1).numpy().copy()
        self._cdfs = np.maximum.accumulate(self._cdfs, axis=1)  # guard monotonicity against round-off
        self._offsets = lo
        self._mark_updated()

    def _indexes(self, shape: tuple[int, int, int]) -> np.ndarray:
        c, h, w = shape
        return np.repeat(np.arange(c, dtype=np.int64), h * w)

    def compress(self, y: torch.Tensor) -> list[bytes]:
        """Range-code ``round(y)`` of (B, C, H, W) latents; one byte string per batch item."""
        self._check_tables()
        symbols = quantize(y, "symbols").cpu().numpy().astype(np.int64)
        idx = self._indexes(tuple(y.shape[1:]))
        return [arithmetic.encode_cdf(s.reshape(-1), self._cdfs, idx, self._offsets) for s in symbols]

    def decompress(self, strings: list[bytes], size: tuple[int, int]) -> torch.Tensor:
        """Decode byte strings to the dequantized latents (B, C, H, W) (float32).

        ``size`` usually comes from a stream's header: anything but two positive ints raises
        :class:`BitstreamError`, as does a payload the range decoder cannot decode.
        """
        self._check_tables()
        try:
            h, w = (operator.index(v) for v in size)
        except (TypeError, ValueError):
            raise BitstreamError(f"latent size {size!r} must be two positive ints") from None
        if h <= 0 or w <= 0:
            raise BitstreamError(f"latent size {(h, w)} must be two positive ints")
        idx = self._indexes((self.channels, h, w))
        out = [arithmetic.decode_cdf(s, self._cdfs, idx, self._offsets) for s in strings]
        return torch.from_numpy(np.stack(out).reshape(len(strings), self.channels, h, w).astype(np.float32))


def _standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


class GaussianConditional(EntropyModel):
    """Zero-mean Gaussian with per-element scales, convolved with U(-½, ½) (Ballé et al. 2018, Eq. 7).

    Parameters
    ----------
    scale_table : sequence of float, optional
        Scales the coder may use; a predicted scale is rounded down to the nearest entry
        (CompressAI's ``build_indexes``).  Default: 64 values log-spaced in [0.11, 256].
    scale_bound : float
        Lower bound of the scales in the likelihood (CompressAI: 0.11).

    Examples
    --------
    >>> gc = GaussianConditional()
    >>> v = torch.arange(-40.0, 41.0).reshape(1, 1, -1, 1)
    >>> round(gc.likelihood(v, torch.full_like(v, 3.0)).sum().item(), 6)
    1.0
    """

    def __init__(self, scale_table: tuple[float, ...] | None = None, scale_bound: float = 0.11):
        super().__init__()
        if scale_table is None:
            scale_table = tuple(np.exp(np.linspace(np.log(0.11), np.log(256.0), 64)).tolist())
        table = torch.tensor(scale_table, dtype=torch.float64)
        if table.numel() < 1 or bool((table[1:] <= table[:-1]).any()) or bool((table <= 0).any()):
            raise ValueError("scale_table must be a strictly increasing sequence of positive scales")
        self.register_buffer("scale_table", table)
        self.scale_bound = float(scale_bound)
        self._table_np: np.ndarray | None = None

    def likelihood(self, values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """``Φ((½ − |v|)/σ) − Φ((−½ − |v|)/σ)``, the symmetric form of Eq. 7 (bounded below by 1e-9)."""
        if values.shape != scales.shape:
            raise ValueError(f"values and scales must have the same shape, got {tuple(values.shape)} and {tuple(scales.shape)}")
        s = lower_bound(scales, self.scale_bound)
        v = torch.abs(values)
        lik = _standard_normal_cdf((0.5 - v) / s) - _standard_normal_cdf((-0.5 - v) / s)
        return lower_bound(lik, LIKELIHOOD_BOUND)

    def forward(self, y: torch.Tensor, scales: torch.Tensor, mode: str = "noise",
                generator: torch.Generator | None = None):
        """Quantize (``mode`` "noise" or "dequantize") and return ``(y_hat, likelihoods)``."""
        _check_forward_mode(mode)
        y_hat = quantize(y, mode, generator)
        return y_hat, self.likelihood(y_hat, scales)

    @torch.no_grad()
    def update(self) -> None:
        """Freeze the scale table the coder uses (float64, identical at both ends)."""
        self._table_np = self.scale_table.cpu().numpy().astype(np.float64).copy()
        self._mark_updated()

    def build_indexes(self, scales: torch.Tensor) -> np.ndarray:
        """Index of the largest table scale ``<=`` each (bounded) scale, as int64 numpy."""
        self._check_tables()
        s = np.maximum(scales.detach().cpu().numpy().astype(np.float64), self._table_np[0])
        return np.searchsorted(self._table_np, s, side="right") - 1

    def compress(self, y: torch.Tensor, scales: torch.Tensor) -> list[bytes]:
        """Range-code ``round(y)`` with the table scales of ``scales``; one string per batch item."""
        self._check_tables()
        symbols = quantize(y, "symbols").cpu().numpy().astype(np.int64)
        idx = self.build_indexes(scales)
        out = []
        for s, i in zip(symbols, idx):
            sc = self._table_np[i.reshape(-1)]
            out.append(arithmetic.encode_gaussian_conditional(s.reshape(-1), np.zeros_like(sc), sc,
                                                              scale_min=self._table_np[0]))
        return out

    def decompress(self, strings: list[bytes], scales: torch.Tensor) -> torch.Tensor:
        """Decode strings given the same predicted ``scales`` (B, C, H, W) the encoder used.

        A payload the range decoder cannot decode raises :class:`BitstreamError` (from
        :mod:`mdic_lab.coding.arithmetic`); the number of symbols is that of ``scales``.
        """
        self._check_tables()
        if len(strings) != scales.shape[0]:
            raise ValueError(f"got {len(strings)} strings for a batch of {scales.shape[0]} scale maps")
        idx = self.build_indexes(scales)
        out = []
        for s, i in zip(strings, idx):
            sc = self._table_np[i.reshape(-1)]
            out.append(arithmetic.decode_gaussian_conditional(s, np.zeros_like(sc), sc, scale_min=self._table_np[0]))
        return torch.from_numpy(np.stack(out).reshape(tuple(scales.shape)).astype(np.float32))
