"""Vector quantisation with a learned codebook (VQ-VAE; MDIC Eqs. 1–2 and 21).

``ẑ = e_k`` with ``k = argmin_j ||z − e_j||²`` per spatial position; the gradient passes
straight through (``ẑ = z + sg(e_k − z)``), and the loss of Eq. 21 trains the codebook
(embedding term ``||sg(z) − ẑ||²``) and commits the encoder (``||sg(ẑ) − z||²``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VQOutput", "VectorQuantizer"]


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

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords of ``indices (B, h, w)`` as a ``(B, C, h, w)`` latent."""
        if indices.ndim != 3 or indices.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"indices must be a (B, h, w) integer tensor, got {tuple(indices.shape)} {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"indices must lie in [0, {self.num_codes - 1}]")
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
