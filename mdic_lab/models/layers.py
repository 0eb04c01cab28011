"""Layers of learned image codecs: GDN / IGDN and the strided convolutions around them.

Generalized divisive normalization (Ballé, Laparra & Simoncelli, ICLR 2016/2017):

.. math:: y_i = \\frac{x_i}{\\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2}}

and its approximate inverse (IGDN) :math:`y_i = x_i \\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2}`.
``beta`` and ``gamma`` are kept non-negative by the reparametrisation of Ballé (2018),
as in CompressAI's ``NonNegativeParametrizer``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NonNegativeParametrizer", "GDN", "conv", "deconv", "conv3x3", "info_nce"]


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows where it pushes ``x`` up (Ballé 2018)."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad_output):
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad_output < 0)
        return pass_through.type_as(grad_output) * grad_output, None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Element-wise ``max(x, bound)`` with a straight gradient where it helps.

    >>> lower_bound(torch.tensor([-1.0, 2.0]), 0.5).tolist()
    [0.5, 2.0]
    """
    return _LowerBound.apply(x, torch.tensor(float(bound), dtype=x.dtype))


class NonNegativeParametrizer(nn.Module):
    """Store ``v`` as ``sqrt(v + pedestal)`` and read it back as ``max(p, bound)^2 - pedestal``.

    Parameters
    ----------
    minimum : float
        Smallest value the parameter may take.
    reparam_offset : float
        The pedestal ``2**-18`` of Ballé (2018).

    >>> p = NonNegativeParametrizer()
    >>> round(float(p(p.init(torch.tensor(0.25)))), 6)
    0.25
    """

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18):
        super().__init__()
        self.pedestal = reparam_offset**2
        self.bound = (minimum + self.pedestal) ** 0.5

    def init(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.clamp(x + self.pedestal, min=self.pedestal))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lower_bound(x, self.bound) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalization (``inverse=True``: IGDN).

    Parameters
    ----------
    channels : int
        Number of channels C of the (B, C, H, W) input.
    inverse : bool
        Multiply instead of divide (the synthesis transform's IGDN).
    beta_min, gamma_init : float
        Lower bound of beta and initial diagonal of gamma (Ballé 2017).

    >>> g = GDN(4)
    >>> g(torch.zeros(1, 4, 3, 3)).shape
    torch.Size([1, 4, 3, 3])
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.gamma_reparam = NonNegativeParametrizer()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)  # (C,)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)  # (C, C, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))  # (B, C, H, W)
        return x * norm if self.inverse else x / norm


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """Strided convolution that divides H and W by ``stride`` ("same" padding).

    >>> conv(3, 8)(torch.zeros(1, 3, 16, 32)).shape
    torch.Size([1, 8, 8, 16])
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that multiplies H and W by ``stride``.

    >>> deconv(8, 3)(torch.zeros(1, 8, 8, 16)).shape
    torch.Size([1, 3, 16, 32])
    """
    return nn.ConvTranspose2d(
        in_channels, out_channels, kernel_size, stride=stride,
        output_padding=stride - 1, padding=kernel_size // 2,
    )


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution (hyper-synthesis output layer)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE of paired embeddings ``a``, ``b`` ``(B, D)``.

    With perfectly aligned orthogonal pairs and a large scale the loss tends to 0; with
    identical embeddings for all pairs it is ``log B``:

    >>> import math
    >>> e = torch.ones(4, 3)
    >>> round(float(info_nce(e, e, torch.tensor(0.0))), 4) == round(math.log(4), 4)
    True
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = logit_scale.exp() * a @ b.t()  # (B, B)
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
