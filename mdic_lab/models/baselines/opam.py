"""OmniParallax attention (OPAM) and a fusion block built on it (ParaHydra, Appendix B).

OPAM aligns a side feature map f_r to a main one f_l with two one-dimensional parallax
attentions (Wang et al., PAM) run one after the other:

* HPA, horizontal parallax attention (Eqs. 5–12): every position of f_u attends to the
  positions of the *same row* of f_v.  ``M^hor = Q_b K_bᵀ`` (Eq. 6), the two softmaxes
  ``M_{v→u}``, ``M_{u→v}`` (Eq. 7), the cycle consistency ``C^hor`` (Eqs. 8–9, ≤ 1 by
  Lemma 1) and the aligned feature ``f_u^hor = M_{v→u} f_v`` (Eqs. 11–12).
* VPA, vertical parallax attention (Eqs. 13–20): the same along the *same column*;
  ``C^ver ≤ 1`` by Lemma 2.
* Two stages (Eqs. 21–23): ``f_l^hor = HPA(f_l, f_r)``, then ``f_l^ver = VPA(f_l, f_l^hor)``
  and ``C_l = C_l^hor ⊙ C_l^ver``.  Each position of f_l^ver thus reaches the whole 2-D map
  of f_r (Eq. 24) at O(N³) cost for an N×N map, against O(N⁴) for full 2-D attention
  (:func:`full_attention_2d`, the paper's "2D Attn" ablation).

Q and K come from a selective-kernel module (SKM, Li et al. 2019), Eqs. 5 and 13.
Tensors here are channels-first ``(B, C, H, W)`` (the paper writes ``B×H×W×C``); the
consistency maps are ``(B, 1, H, W)``.

The appendix does not say how the aligned feature and its consistency enter the rest of the
network (its PMIFM is not specified there).  :class:`OPAMFusion` follows PAM: the aligned
side feature is weighted by its consistency and concatenated with the main feature, then a
1×1 convolution mixes them: ``out = W [f_main, C ⊙ f^ver, C]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["AXES", "ParallaxOutput", "OPAMOutput", "parallax_attention", "full_attention_2d", "SelectiveKernel",
           "HorizontalParallaxAttention", "VerticalParallaxAttention", "OmniParallaxAttention", "FullAttention2D",
           "OPAMFusion"]

#: The two parallax directions: "horizontal" attends along rows (HPA), "vertical" along columns (VPA).
AXES = ("horizontal", "vertical")


class ParallaxOutput(NamedTuple):
    """One parallax attention: the aligned feature, its cycle consistency and both attention maps."""

    aligned: torch.Tensor  # (B, C_v, H, W): f_u^hor (Eq. 11) or f_u^ver (Eq. 19)
    consistency: torch.Tensor  # (B, 1, H, W): C_u^hor (Eq. 8) or C_u^ver (Eq. 16), in [0, 1]
    attention: torch.Tensor  # M_{v→u}: (BH, W, W) horizontal or (BW, H, H) vertical (Eqs. 7 / 15)
    attention_back: torch.Tensor  # M_{u→v}: same shape (Eqs. 7 / 15)


class OPAMOutput(NamedTuple):
    """The two stages of OPAM (Eqs. 21–23)."""

    aligned: torch.Tensor  # (B, C, H, W): f_l^ver, the side map seen from the main view (Eq. 22)
    consistency: torch.Tensor  # (B, 1, H, W): C_l = C_l^hor ⊙ C_l^ver (Eq. 23)
    horizontal: ParallaxOutput  # stage 1: HPA(f_l, f_r) (Eq. 21)
    vertical: ParallaxOutput  # stage 2: VPA(f_l, f_l^hor) (Eq. 22)


def _check_maps(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a (B, C, H, W) tensor, got {got}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[0] != q.shape[0] or v.shape[-2:] != q.shape[-2:]:
        raise ValueError(f"v must be (B, C_v, H, W) with the B, H, W of q {tuple(q.shape)}, got {tuple(v.shape)}")


def _to_lines(t: torch.Tensor, axis: str) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(BH, W, C)`` (rows into the batch) or ``(BW, H, C)`` (columns into the batch)."""
    b, c, h, w = t.shape
    if axis == "horizontal":
        return t.permute(0, 2, 3, 1).reshape(b * h, w, c)  # (BH, W, C)
    return t.permute(0, 3, 2, 1).reshape(b * w, h, c)  # (BW, H, C)


def _from_lines(t: torch.Tensor, axis: str, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_to_lines`: ``(BH, W, C)`` or ``(BW, H, C)`` → ``(B, C, H, W)``."""
    c = t.shape[-1]
    if axis == "horizontal":
        return t.reshape(b, h, w, c).permute(0, 3, 1, 2)
    return t.reshape(b, w, h, c).permute(0, 3, 2, 1)


def parallax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, axis: str) -> ParallaxOutput:
    """Parallax attention along one axis: Eqs. 6–12 (``"horizontal"``) or Eqs. 14–20 (``"vertical"``).

    Parameters
    ----------
    q, k : torch.Tensor
        ``(B, C, H, W)`` query of the main source f_u and key of the side source f_v
        (``Q = SKM(f_u)``, ``K = SKM(f_v)``, Eqs. 5 / 13).
    v : torch.Tensor
        ``(B, C_v, H, W)`` the side features that are aggregated (f_v of Eqs. 11 / 19).
    axis : str
        ``"horizontal"`` (attend within a row) or ``"vertical"`` (within a column).

    Returns
    -------
    ParallaxOutput
        ``aligned = M_{v→u} ⊗ v`` (Eq. 11 / 19), ``consistency`` with
        ``C[i] = Σ_j M_{v→u}[i, j] M_{u→v}[j, i]`` (Eqs. 8–9 / 16–17), and both maps (Eq. 7 / 15).

    Examples
    --------
    With Q = 0 every attention row is uniform, so ``C^hor = W · (1/W)² = 1/W``:

    >>> q, k, v = torch.zeros(1, 2, 3, 4), torch.randn(1, 2, 3, 4), torch.randn(1, 5, 3, 4)
    >>> out = parallax_attention(q, k, v, "horizontal")
    >>> tuple(out.aligned.shape), tuple(out.attention.shape), round(float(out.consistency.max()), 6)
    ((1, 5, 3, 4), (3, 4, 4), 0.25)
    """
    if axis not in AXES:
        raise ValueError(f"unknown parallax axis {axis!r} (expected one of: {', '.join(AXES)})")
    _check_maps(q, k, v)
    b, _, h, w = q.shape
    qb, kb, vb = _to_lines(q, axis), _to_lines(k, axis), _to_lines(v, axis)  # (BH, W, C) | (BW, H, C)
    m = torch.bmm(qb, kb.transpose(1, 2))  # Eq. 6 / 14: M, (BH, W, W) | (BW, H, H)
    m_vu = torch.softmax(m, dim=-1)  # Eq. 7 / 15: M_{v→u} = softmax(M)
    m_uv = torch.softmax(m.transpose(1, 2), dim=-1)  # Eq. 7 / 15: M_{u→v} = softmax(Mᵀ)
    cons = (m_vu * m_uv.transpose(1, 2)).sum(-1, keepdim=True)  # Eqs. 8–9 / 16–17: (BH, W, 1) | (BW, H, 1)
    aligned = torch.bmm(m_vu, vb)  # Eqs. 11–12 / 19–20: (BH, W, C_v) | (BW, H, C_v)
    return ParallaxOutput(_from_lines(aligned, axis, b, h, w), _from_lines(cons, axis, b, h, w), m_vu, m_uv)


def full_attention_2d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> ParallaxOutput:
    """Full 2-D cross attention with the same cycle consistency: every position sees all H·W others.

    The reference OPAM is compared with (the paper's "2D Attn" ablation, Appendix B.3): the
    correlation map is ``(B, HW, HW)``, so time and memory grow as O(N⁴) for an N×N map.
    Returns a :class:`ParallaxOutput` whose maps are ``(B, HW, HW)``.

    >>> out = full_attention_2d(torch.zeros(1, 2, 3, 4), torch.randn(1, 2, 3, 4), torch.randn(1, 5, 3, 4))
    >>> tuple(out.attention.shape), round(float(out.consistency.max()), 6)
    ((1, 12, 12), 0.083333)
    """
    _check_maps(q, k, v)
    b, _, h, w = q.shape
    qf, kf, vf = (t.flatten(2).transpose(1, 2) for t in (q, k, v))  # (B, HW, C)
    m = torch.bmm(qf, kf.transpose(1, 2))  # (B, HW, HW)
    m_vu = torch.softmax(m, dim=-1)
    m_uv = torch.softmax(m.transpose(1, 2), dim=-1)
    cons = (m_vu * m_uv.transpose(1, 2)).sum(-1)  # (B, HW)
    aligned = torch.bmm(m_vu, vf)  # (B, HW, C_v)
    return ParallaxOutput(aligned.transpose(1, 2).reshape(b, -1, h, w), cons.reshape(b, 1, h, w), m_vu, m_uv)


class SelectiveKernel(nn.Module):
    """Selective-kernel module (SKM) giving Q and K (Eqs. 5, 13; Li et al. 2019, SKNet).

    Split: branches of 3×3 convolutions with dilation 1, 2, … (receptive fields 3×3, 5×5, …),
    ``U_k = ReLU(conv_k(X))``; fuse: ``s = GAP(Σ_k U_k)``, ``z = ReLU(W_z s)``; select:
    ``a = softmax_k(A_k z)`` per channel and ``V = Σ_k a_k ⊙ U_k``.  As in SKNet's unit, a
    1×1 convolution follows (so Q and K may be signed).  SKNet's batch normalisation is left
    out: the codecs here train with batches of 2–8 pairs and must code deterministically.

    >>> skm = SelectiveKernel(8)
    >>> tuple(skm(torch.randn(2, 8, 5, 7)).shape)
    (2, 8, 5, 7)
    """

    def __init__(self, channels: int, branches: int = 2, reduction: int = 4, min_hidden: int = 8):
        super().__init__()
        if branches < 1:
            raise ValueError(f"branches must be >= 1, got {branches}")
        hidden = max(channels // reduction, min_hidden)
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=d, dilation=d)
                                   for d in range(1, branches + 1))  # 3×3, 5×5, … receptive fields
        self.squeeze = nn.Linear(channels, hidden)  # W_z
        self.select = nn.Linear(hidden, branches * channels)  # A_1 … A_K
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.stack([torch.relu(conv(x)) for conv in self.convs], 1)  # (B, K, C, H, W): split
        z = torch.relu(self.squeeze(u.sum(1).mean((-2, -1))))  # (B, hidden): fuse
        a = self.select(z).view(x.shape[0], len(self.convs), -1).softmax(1)  # (B, K, C): select
        return self.proj((a[..., None, None] * u).sum(1))  # (B, C, H, W)


class _ParallaxAttention(nn.Module):
    """One parallax attention with its own SKM: ``Q = SKM(f_u)``, ``K = SKM(f_v)`` (Eqs. 5 / 13)."""

    axis = "horizontal"

    def __init__(self, channels: int, branches: int = 2):
        super().__init__()
        self.channels = channels
        self.skm = SelectiveKernel(channels, branches)

    def forward(self, f_u: torch.Tensor, f_v: torch.Tensor) -> ParallaxOutput:
        if f_u.ndim != 4 or f_u.shape != f_v.shape or f_u.shape[1] != self.channels:
            raise ValueError(f"f_u and f_v must both be (B, {self.channels}, H, W), got "
                             f"{tuple(f_u.shape)} and {tuple(f_v.shape)}")
        return self._attend(self.skm(f_u), self.skm(f_v), f_v)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> ParallaxOutput:
        return parallax_attention(q, k, v, self.axis)


class HorizontalParallaxAttention(_ParallaxAttention):
    """HPA (Sec. B.1, Eqs. 5–12): each position of f_u attends to the same row of f_v.

    >>> hpa = HorizontalParallaxAttention(4)
    >>> out = hpa(torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5))
    >>> tuple(out.aligned.shape), tuple(out.attention.shape)
    ((1, 4, 3, 5), (3, 5, 5))
    """

    axis = "horizontal"


class VerticalParallaxAttention(_ParallaxAttention):
    """VPA (Sec. B.2, Eqs. 13–20): each position of f_u attends to the same column of f_v.

    >>> vpa = VerticalParallaxAttention(4)
    >>> tuple(vpa(torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)).attention.shape)
    (5, 3, 3)
    """

    axis = "vertical"


class OmniParallaxAttention(nn.Module):
    """OPAM (Sec. B.3): HPA then VPA, Eqs. 21–23.

    ``f_l^hor, C_l^hor = HPA(f_l, f_r)`` (Eq. 21); ``f_l^ver, C_l^ver = VPA(f_l, f_l^hor)``
    (Eq. 22); ``C_l = C_l^hor ⊙ C_l^ver`` (Eq. 23).  Cost O(N³) for an N×N map.

    >>> opam = OmniParallaxAttention(4)
    >>> out = opam(torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5))
    >>> tuple(out.aligned.shape), tuple(out.consistency.shape)
    ((2, 4, 3, 5), (2, 1, 3, 5))
    """

    def __init__(self, channels: int, branches: int = 2):
        super().__init__()
        self.channels = channels
        self.hpa = HorizontalParallaxAttention(channels, branches)
        self.vpa = VerticalParallaxAttention(channels, branches)

    def forward(self, f_l: torch.Tensor, f_r: torch.Tensor) -> OPAMOutput:
        hor = self.hpa(f_l, f_r)  # Eq. 21: stage 1 along the rows of f_r
        ver = self.vpa(f_l, hor.aligned)  # Eq. 22: stage 2 along the columns of f_l^hor
        return OPAMOutput(ver.aligned, hor.consistency * ver.consistency, hor, ver)  # Eq. 23


class FullAttention2D(_ParallaxAttention):
    """The "2D Attn" reference: one SKM for Q and K, then :func:`full_attention_2d` (O(N⁴)).

    Same inputs and outputs as :class:`OmniParallaxAttention` (``aligned``, ``consistency``),
    for the complexity benchmark (``benchmarks/parallax.py``).

    >>> tuple(FullAttention2D(4)(torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)).aligned.shape)
    (1, 4, 3, 5)
    """

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> ParallaxOutput:
        return full_attention_2d(q, k, v)


class OPAMFusion(nn.Module):
    """Fuse a side feature map into a main one through OPAM: ``W [f_main, C ⊙ f^ver, C]``.

    Both maps are projected to ``channels`` by 1×1 convolutions (f_l, f_r of Eqs. 21–22),
    OPAM aligns the side map to the main view (``f_l^ver``, Eq. 22) and gives the joint
    consistency ``C`` (Eq. 23); a 1×1 convolution mixes the main map, the aligned side map
    weighted by its consistency, and ``C`` itself into ``out_channels``.

    Parameters
    ----------
    main_channels, side_channels, out_channels : int
        Channels of the main map, of the side map and of the fused output.
    channels : int, optional
        Width of the attention (default: ``side_channels``).
    branches : int
        Kernels of each SKM (dilations 1 … branches).

    Examples
    --------
    >>> fuse = OPAMFusion(main_channels=12, side_channels=4, out_channels=16, channels=8)
    >>> tuple(fuse(torch.randn(2, 12, 4, 6), torch.randn(2, 4, 4, 6)).shape)
    (2, 16, 4, 6)
    """

    def __init__(self, main_channels: int, side_channels: int, out_channels: int, channels: int | None = None,
                 branches: int = 2):
        super().__init__()
        channels = side_channels if channels is None else channels
        for name, v in (("main_channels", main_channels), ("side_channels", side_channels),
                        ("out_channels", out_channels), ("channels", channels), ("branches", branches)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"OPAMFusion {name} must be a positive int, got {v!r}")
        self.main_channels, self.side_channels = main_channels, side_channels
        self.in_main = nn.Conv2d(main_channels, channels, 1)  # f_l
        self.in_side = nn.Conv2d(side_channels, channels, 1)  # f_r
        self.opam = OmniParallaxAttention(channels, branches)
        self.out = nn.Conv2d(main_channels + channels + 1, out_channels, 1)

    def attend(self, main: torch.Tensor, side: torch.Tensor) -> OPAMOutput:
        """The OPAM stages of the projected maps (aligned side map, consistencies, attention maps)."""
        for name, t, c in (("main", main, self.main_channels), ("side", side, self.side_channels)):
            if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != c:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{name} must be a (B, {c}, H, W) tensor, got {got}")
        if main.shape[0] != side.shape[0] or main.shape[-2:] != side.shape[-2:]:
            raise ValueError(f"main {tuple(main.shape)} and side {tuple(side.shape)} must share B, H and W")
        return self.opam(self.in_main(main), self.in_side(side))

    def forward(self, main: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        o = self.attend(main, side)
        return self.out(torch.cat([main, o.consistency * o.aligned, o.consistency], 1))  # (B, out, H, W)
