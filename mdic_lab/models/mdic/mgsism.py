"""MG-SISM: mask-gated side-information supplementary module (MDIC Eqs. 13–14).

* G1 (Eq. 13) ``ẑ_xc = G1(ẑ_x, ẑ_y ⊙ m_v)``: visual-transformer blocks over the joint
  token sequence ``[ẑ_x tokens; (ẑ_y ⊙ m_v) tokens]`` (so an object may be found at a
  different position in the other view -- stereo disparity); the ẑ_x tokens are read out
  and added to ẑ_x (residual), so ẑ_xc has ẑ_x's shape (``g1_residual=False``, the authors'
  code: they replace ẑ_x).  The side tokens may lie on a finer grid than ẑ_x's
  (``hyper_downsample_y``; they get their own position embedding).  With ``g1_fusion="opam"``
  (:class:`G1OPAMFusion`) OmniParallax attention takes the transformer's place:
  ``ẑ_xc = ẑ_x + OPAMFusion(ẑ_x, ẑ_y ⊙ m_v)`` (ParaHydra Appendix B, Eqs. 5–23).
* G2 (Eq. 14) ``z_d = z_y + G2(z_y) ⊙ F_m(m_v)``: G2 is a small conv net extracting
  detail features from the lossless side latent z_y, F_m embeds the mask into a
  per-channel gate in (0, 1) (1×1 conv + sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn

from mdic_lab.models.baselines.opam import OPAMFusion

__all__ = ["G1Fusion", "G1OPAMFusion", "G2Gate", "build_g1"]


def _check_latents(zx_hat: torch.Tensor, zy_hat: torch.Tensor, channels: int, same_grid: bool = True) -> None:
    ok = (zx_hat.ndim == 4 and zy_hat.ndim == 4 and zx_hat.shape[:2] == zy_hat.shape[:2]
          and zx_hat.shape[1] == channels and (not same_grid or zx_hat.shape == zy_hat.shape))
    if not ok:
        grid = "h, w" if same_grid else "h, w each"
        raise ValueError(f"zx_hat and zy_hat must both be (B, {channels}, {grid}), got "
                         f"{tuple(zx_hat.shape)} and {tuple(zy_hat.shape)}")


class G1Fusion(nn.Module):
    """Eq. 13: fuse ẑ_x with the masked side latent ẑ_y ⊙ m_v into ẑ_xc ``(B, C, h, w)``.

    Examples
    --------
    >>> g1 = G1Fusion(channels=4, num_tokens=8, d_model=16, layers=1, heads=2)
    >>> zx = torch.randn(2, 4, 2, 4); zy = torch.randn(2, 4, 2, 4); m = torch.ones(2, 1, 2, 4)
    >>> tuple(g1(zx, zy, m).shape)
    (2, 4, 2, 4)
    """

    def __init__(self, channels: int, num_tokens: int, d_model: int = 64, layers: int = 2, heads: int = 4,
                 residual: bool = True, num_tokens_y: int | None = None):
        super().__init__()
        self.channels, self.residual = channels, bool(residual)
        self.in_x = nn.Linear(channels, d_model)
        self.in_y = nn.Linear(channels, d_model)
        self.pos = nn.Parameter(torch.zeros(1, num_tokens, d_model))
        self.type_emb = nn.Parameter(torch.zeros(2, d_model))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.type_emb, std=0.02)
        if num_tokens_y is not None and num_tokens_y != num_tokens:  # side tokens on their own (finer) grid
            self.pos_y = nn.Parameter(torch.zeros(1, num_tokens_y, d_model))
            nn.init.normal_(self.pos_y, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, channels))

    def forward(self, zx_hat: torch.Tensor, zy_hat: torch.Tensor, m_v: torch.Tensor) -> torch.Tensor:
        pos_y = getattr(self, "pos_y", self.pos)
        _check_latents(zx_hat, zy_hat, self.channels, same_grid=pos_y is self.pos)
        b, c, h, w = zx_hat.shape
        n_y = zy_hat.shape[-2] * zy_hat.shape[-1]
        tx = self.in_x(zx_hat.flatten(2).transpose(1, 2)) + self.pos[:, : h * w] + self.type_emb[0]  # (B, hw, d)
        ty = self.in_y((zy_hat * m_v).flatten(2).transpose(1, 2)) + pos_y[:, :n_y] + self.type_emb[1]  # (B, n_y, d)
        hx = self.blocks(torch.cat([tx, ty], 1))[:, : h * w]  # (B, hw, d): the ẑ_x tokens after fusion
        delta = self.out(hx).transpose(1, 2).reshape(b, c, h, w)
        return zx_hat + delta if self.residual else delta  # Eq. 13 (residual) or the authors' replacement


class G1OPAMFusion(nn.Module):
    """Eq. 13 with OmniParallax attention: ``ẑ_xc = ẑ_x + OPAMFusion(ẑ_x, ẑ_y ⊙ m_v)``.

    The masked side latent is aligned to ẑ_x row by row, then column by column (Eqs. 21–22),
    weighted by its cycle consistency (Eq. 23) and fused into ẑ_x (residual, as :class:`G1Fusion`).

    Examples
    --------
    >>> g1 = G1OPAMFusion(channels=4, d_model=16)
    >>> zx = torch.randn(2, 4, 2, 4); zy = torch.randn(2, 4, 2, 4); m = torch.ones(2, 1, 2, 4)
    >>> tuple(g1(zx, zy, m).shape)
    (2, 4, 2, 4)
    """

    def __init__(self, channels: int, d_model: int = 64, residual: bool = True):
        super().__init__()
        self.channels, self.residual = channels, bool(residual)
        self.fusion = OPAMFusion(channels, channels, channels, channels=d_model)

    def forward(self, zx_hat: torch.Tensor, zy_hat: torch.Tensor, m_v: torch.Tensor) -> torch.Tensor:
        _check_latents(zx_hat, zy_hat, self.channels)
        delta = self.fusion(zx_hat, zy_hat * m_v)  # (B, C, h, w)
        return zx_hat + delta if self.residual else delta


def build_g1(config, channels: int, num_tokens: int, num_tokens_y: int | None = None) -> nn.Module:
    """G1 of ``config.g1_fusion``: :class:`G1Fusion` (``"transformer"``) or :class:`G1OPAMFusion` (``"opam"``).

    ``num_tokens_y``: side tokens when ẑ_y lies on another grid than ẑ_x (``hyper_downsample_y``).
    """
    if config.g1_fusion == "opam":
        return G1OPAMFusion(channels, config.g1_d_model, residual=config.g1_residual)
    return G1Fusion(channels, num_tokens, config.g1_d_model, config.g1_layers, config.g1_heads,
                    residual=config.g1_residual, num_tokens_y=num_tokens_y)


class G2Gate(nn.Module):
    """Eq. 14: ``z_d = z_y + G2(z_y) ⊙ F_m(m_v)``.

    Examples
    --------
    With an all-zero mask the gate F_m is σ(bias) and z_d differs from z_y only through G2:

    >>> g2 = G2Gate(channels=4, hidden=8)
    >>> zy = torch.randn(1, 4, 2, 3)
    >>> tuple(g2(zy, torch.zeros(1, 1, 2, 3)).shape)
    (1, 4, 2, 3)
    """

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.g2 = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.SiLU(),
                                nn.Conv2d(hidden, channels, 3, padding=1))
        self.f_m = nn.Sequential(nn.Conv2d(1, hidden, 3, padding=1), nn.SiLU(), nn.Conv2d(hidden, channels, 1),
                                 nn.Sigmoid())

    def forward(self, z_y: torch.Tensor, m_v: torch.Tensor) -> torch.Tensor:
        if m_v.ndim != 4 or m_v.shape[1] != 1 or m_v.shape[-2:] != z_y.shape[-2:]:
            raise ValueError(f"m_v must be (B, 1, h, w) matching z_y {tuple(z_y.shape)}, got {tuple(m_v.shape)}")
        return z_y + self.g2(z_y) * self.f_m(m_v)
