"""HyperAlign H_ax, H_ay: VAE latent z_L → compact latent z (MDIC Eqs. 1–2).

As in PerCo (the paper's reference for HyperAlign), a convolutional stack with
linear-attention blocks maps the VAE latent ``z_L`` of shape ``(B, C_L, h_L, w_L)`` to
``z`` of shape ``(B, C_z, h_L/s, w_L/s)`` (``s`` = ``hyper_downsample``), the grid that is
vector-quantised and transmitted.  H_ax (main view) and H_ay (side view) are two
instances of :class:`HyperAlign` with separate weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LinearAttention", "ResBlock", "HyperAlign"]


def _groups(c: int) -> int:
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm–SiLU–Conv3×3 twice, with identity skip."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(_groups(channels), channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


class LinearAttention(nn.Module):
    """Linear (kernelised) self-attention over the spatial positions, with residual.

    ``Attn(Q, K, V)_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / φ(q_i)ᵀ Σ_j φ(k_j)`` with
    ``φ(x) = elu(x) + 1`` (Katharopoulos et al., 2020): cost linear in the number of positions.
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        q, k = F.elu(q) + 1, F.elu(k) + 1  # (B, nh, hd, N), positive features φ
        kv = torch.einsum("bhdn,bhen->bhde", k, v)  # (B, nh, hd, hd)
        z = 1.0 / (torch.einsum("bhdn,bhd->bhn", q, k.sum(-1)) + 1e-6)  # (B, nh, N)
        out = torch.einsum("bhdn,bhde,bhn->bhen", q, kv, z)  # (B, nh, hd, N)
        return x + self.out(out.reshape(b, c, h, w))


class HyperAlign(nn.Module):
    """H_a: ``z_L (B, C_L, h, w)`` → ``z (B, C_z, h/s, w/s)`` (conv + linear attention).

    Parameters
    ----------
    in_channels : int
        VAE latent channels ``C_L`` (4 for Stable Diffusion).
    out_channels : int
        ``C_z``, the VQ code dimension.
    hidden : int
        Width of the stack.
    downsample : int
        Power-of-two factor ``s``; one strided convolution per factor 2.
    heads : int
        Heads of the linear attention.

    Examples
    --------
    >>> h = HyperAlign(4, 8, hidden=16, downsample=4, heads=2)
    >>> tuple(h(torch.zeros(2, 4, 16, 32)).shape)
    (2, 8, 4, 8)
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, downsample: int = 4, heads: int = 4):
        super().__init__()
        if downsample < 1 or downsample & (downsample - 1):
            raise ValueError(f"downsample must be a power of two >= 1, got {downsample}")
        self.in_channels, self.out_channels, self.downsample = in_channels, out_channels, downsample
        layers = [nn.Conv2d(in_channels, hidden, 3, padding=1)]
        for _ in range(int(math.log2(downsample))):
            layers += [ResBlock(hidden), nn.Conv2d(hidden, hidden, 3, stride=2, padding=1)]
        layers += [ResBlock(hidden), LinearAttention(hidden, heads), ResBlock(hidden), LinearAttention(hidden, heads),
                   nn.GroupNorm(_groups(hidden), hidden), nn.SiLU(), nn.Conv2d(hidden, out_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z_latent: torch.Tensor) -> torch.Tensor:
        """Map a VAE latent to the compact latent (Eq. 1: z_x = H_ax(z_Lx); Eq. 2: z_y = H_ay(E_vae(I_y)))."""
        if z_latent.ndim != 4 or z_latent.shape[1] != self.in_channels:
            raise ValueError(
                f"z_latent must have shape (B, {self.in_channels}, h, w), got {tuple(z_latent.shape)}"
            )
        h, w = z_latent.shape[-2:]
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"latent grid {(h, w)} must be divisible by downsample={self.downsample}")
        return self.net(z_latent)
