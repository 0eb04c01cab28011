"""Vector quantisation with a learned codebook (VQ-VAE; MDIC Eqs. 1–2 and 21).

Two variants (``MDICConfig.vq_variant``), one interface (``forward`` → :class:`VQOutput`,
``quantize_indices``, ``lookup``):

* :class:`VectorQuantizer` (``"paper"``): ``ẑ = e_k`` with ``k = argmin_j ||z − e_j||²`` per
  spatial position; the gradient passes straight through (``ẑ = z + sg(e_k − z)``), and the
  loss of Eq. 21 trains the codebook (embedding term ``||sg(z) − ẑ||²``) and commits the
  encoder (``||sg(ẑ) − z||²``).
* :class:`CosineEMAQuantizer` (``"authors"``): what the authors' code gets from the
  ``vector-quantize-pytorch`` defaults it uses -- ``k = argmax_j cos(z, e_j)`` over unit-norm
  codewords, the codebook an exponential moving average of the (normalised) inputs assigned
  to each code (no gradient), the rotation-trick gradient (Fifty et al., 2024) and no
  commitment term in the loss.  Written here (about 60 lines) rather than taken from that
  library: it needs no new dependency, its randomness stays in the caller's seeded RNG, and
  its buffers are plain state-dict entries that the bitstream's model id hashes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CosineEMAQuantizer", "VQOutput", "VectorQuantizer", "build_quantizer", "rotation_trick"]


@dataclass
class VQOutput:
    """Result of :meth:`VectorQuantizer.forward`."""

    z_q: torch.Tensor  # (B, C, h, w) quantised latent ẑ, straight-through gradient to z
    indices: torch.Tensor  # (B, h, w) int64 codeword indices (what is transmitted)
    loss: torch.Tensor  # scalar L_VQ of Eq. 21
    codebook_loss: torch.Tensor  # scalar ||sg(z) − ẑ||²
    commitment_loss: torch.Tensor  # scalar ||sg(ẑ) − z||²


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantiser of ``(B, C, h, w)`` latents with ``K`` codewords.

    Examples
    --------
    >>> vq = VectorQuantizer(num_codes=2, dim=1)
    >>> with torch.no_grad():
    ...     _ = vq.codebook.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    >>> out = vq(torch.tensor([[[[0.5, -3.0]]]]))
    >>> out.indices.tolist(), out.z_q.tolist()
    ([[[1, 0]]], [[[[1.0, -1.0]]]])
    >>> round(float(out.codebook_loss.detach()), 4)  # ((1 - 0.5)**2 + (-1 + 3)**2) / 2
    2.125
    """

    def __init__(self, num_codes: int, dim: int, commitment_weight: float = 1.0):
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f"need num_codes >= 2 and dim >= 1, got {num_codes}, {dim}")
        self.num_codes, self.dim, self.commitment_weight = num_codes, dim, float(commitment_weight)
        self.codebook = nn.Embedding(num_codes, dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)

    def _check(self, z):
        if z.ndim != 4 or z.shape[1] != self.dim:
            raise ValueError(f"z must have shape (B, {self.dim}, h, w), got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("z contains NaN or inf")

    def quantize_indices(self, z: torch.Tensor) -> torch.Tensor:
        """``argmin_j ||z − e_j||²`` per position: ``(B, C, h, w)`` → ``(B, h, w)`` int64."""
        self._check(z)
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)  # (B·h·w, C)
        e = self.codebook.weight  # (K, C)
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]  # (B·h·w, K)
        return d.argmin(1).reshape(b, h, w)

    def _check_indices(self, indices):
        if indices.ndim != 3 or indices.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"indices must be a (B, h, w) integer tensor, got {tuple(indices.shape)} {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"indices must lie in [0, {self.num_codes - 1}]")

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords of ``indices (B, h, w)`` as a ``(B, C, h, w)`` latent."""
        self._check_indices(indices)
        return self.codebook(indices.long()).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> VQOutput:
        """Quantise with the straight-through estimator and the Eq. 21 loss."""
        idx = self.quantize_indices(z)
        e = self.lookup(idx)  # (B, C, h, w)
        codebook_loss = F.mse_loss(e, z.detach())  # ||sg(z_x) − ẑ_x||²: moves the codewords
        commitment_loss = F.mse_loss(z, e.detach())  # ||sg(ẑ_x) − z_x||²: commits the encoder
        loss = codebook_loss + self.commitment_weight * commitment_loss
        z_q = z + (e - z).detach()  # forward value e, gradient identity to z
        return VQOutput(z_q, idx, loss, codebook_loss, commitment_loss)


def rotation_trick(z: torch.Tensor, e: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rows ``e`` in the forward pass; the gradient reaches ``z`` through a fixed rotation-and-scale.

    With ``u = z/|z|``, ``q = e/|e|``, ``w = (u + q)/|u + q|`` (all held constant), the rotation
    ``R = I − 2wwᵀ + 2quᵀ`` maps ``u`` to ``q``, so ``(|e|/|z|) R z = e`` (Fifty et al., 2024,
    "Restructuring vector quantization with the rotation trick").  The value returned is ``e``
    exactly (``e + (r − sg(r))``); ``r = (|e|/|z|) R z`` carries the gradient.  ``z``, ``e``: ``(N, C)``.

    >>> z = torch.tensor([[3.0, 4.0]], requires_grad=True); e = torch.tensor([[0.0, 2.0]])
    >>> out = rotation_trick(z, e); out.tolist()
    [[0.0, 2.0]]
    >>> out.sum().backward(); [round(v, 3) for v in z.grad[0].tolist()]  # (|e|/|z|) Rᵀ 1, not the identity's [1, 1]
    [0.56, 0.08]
    """
    nz, ne = z.norm(dim=1, keepdim=True).clamp_min(eps), e.norm(dim=1, keepdim=True).clamp_min(eps)
    u, q = (z / nz).detach(), (e / ne).detach()
    w = F.normalize(u + q, dim=1, eps=eps).detach()
    rz = z - 2 * (z * w).sum(1, keepdim=True) * w + 2 * (z * u).sum(1, keepdim=True) * q  # R z, (N, C)
    r = rz * (ne / nz).detach()
    return e.detach() + (r - r.detach())  # r − sg(r) is exactly 0: the value is e bit for bit


class CosineEMAQuantizer(nn.Module):
    """Cosine-similarity quantiser with an EMA codebook and the rotation-trick gradient (the authors' VQ).

    Codewords ``e_j`` are unit vectors (buffer ``embed``); ``k = argmax_j ⟨z/|z|, e_j⟩``.  In
    training mode every call updates, without gradient, the counts ``N_j ← d N_j + (1 − d) n_j``
    and sums ``S_j ← d S_j + (1 − d) Σ_{i→j} z_i/|z_i|`` and sets ``e_j = normalise(S_j / N_j)``
    (Laplace-smoothed counts), ``d`` = ``decay``.  The loss is 0: no commitment term (Eq. 21 is
    not used); ``commitment_loss`` is still measured (detached) for the logs.

    Examples
    --------
    >>> vq = CosineEMAQuantizer(num_codes=2, dim=2)
    >>> with torch.no_grad():
    ...     _ = vq.embed.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> out = vq.eval()(torch.tensor([[[[5.0]], [[1.0]]], [[[0.1]], [[3.0]]]]))  # two (2, 1, 1) latents
    >>> out.indices.flatten().tolist(), out.z_q.flatten().tolist(), float(out.loss)
    ([0, 1], [1.0, 0.0, 0.0, 1.0], 0.0)
    """

    def __init__(self, num_codes: int, dim: int, decay: float = 0.8, eps: float = 1e-5):
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f"need num_codes >= 2 and dim >= 1, got {num_codes}, {dim}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.num_codes, self.dim, self.decay, self.eps = num_codes, dim, float(decay), float(eps)
        embed = F.normalize(torch.randn(num_codes, dim), dim=1)  # the caller's seeded global RNG
        self.register_buffer("embed", embed)  # (K, C) unit codewords
        self.register_buffer("embed_avg", embed.clone())  # (K, C) EMA of the assigned inputs' sums
        self.register_buffer("cluster_size", torch.ones(num_codes))  # (K,) EMA of the assignment counts

    _check = VectorQuantizer._check

    def quantize_indices(self, z: torch.Tensor) -> torch.Tensor:
        """``argmax_j cos(z, e_j)`` per position: ``(B, C, h, w)`` → ``(B, h, w)`` int64."""
        self._check(z)
        b, c, h, w = z.shape
        flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, c), dim=1)  # (B·h·w, C)
        return (flat @ self.embed.t()).argmax(1).reshape(b, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Unit codewords of ``indices (B, h, w)`` as a ``(B, C, h, w)`` latent."""
        VectorQuantizer._check_indices(self, indices)
        return F.embedding(indices.long(), self.embed).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def _ema_update(self, flat_unit: torch.Tensor, idx: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.num_codes).to(flat_unit.dtype)  # (N, K)
        d = self.decay
        self.cluster_size.mul_(d).add_(onehot.sum(0), alpha=1 - d)
        self.embed_avg.mul_(d).add_(onehot.t() @ flat_unit, alpha=1 - d)
        n = self.cluster_size.sum()
        size = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace smoothing
        self.embed.copy_(F.normalize(self.embed_avg / size[:, None], dim=1))

    def forward(self, z: torch.Tensor) -> VQOutput:
        """Quantise (rotation-trick gradient); in training mode also move the codebook by EMA."""
        idx = self.quantize_indices(z)
        e = self.lookup(idx)  # (B, C, h, w), the codebook before this call's update
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        e_flat = e.permute(0, 2, 3, 1).reshape(-1, c)
        z_q = rotation_trick(flat, e_flat).reshape(b, h, w, c).permute(0, 3, 1, 2)  # value e, gradient via R
        if self.training:
            self._ema_update(F.normalize(flat.detach(), dim=1), idx.flatten())
        zero = z.new_zeros(())
        commitment = F.mse_loss(z.detach(), e)  # measured only: the authors never add it to the loss
        return VQOutput(z_q, idx, zero, zero, commitment)


def build_quantizer(config) -> nn.Module:
    """The quantiser of ``config.vq_variant``: :class:`VectorQuantizer` or :class:`CosineEMAQuantizer`."""
    if config.vq_variant == "authors":
        return CosineEMAQuantizer(config.codebook_size, config.z_channels, config.vq_ema_decay)
    return VectorQuantizer(config.codebook_size, config.z_channels, config.vq_commitment_weight)
