"""Pixel-fidelity metrics: PSNR and MS-SSIM.

Images are ``(N, C, H, W)`` (or ``(C, H, W)``, ``(H, W)``) tensors or arrays in
``[0, data_range]``.  Both metrics are computed per image and averaged over the batch
(the convention of learned-compression papers, e.g. CompressAI's evaluation).
"""

from __future__ import annotations

import math

import torch

from ._images import as_pair

__all__ = ["psnr", "mse", "ms_ssim", "MS_SSIM_WIN_SIZE", "MS_SSIM_WEIGHTS"]

#: Gaussian window of MS-SSIM. The usual 11 needs min(H, W) > 160 for 5 scales; the paper's
#: images are 128×256, so the project uses 7 (σ = 1.5), valid for min(H, W) > 96.
MS_SSIM_WIN_SIZE = 7
#: The five scale weights of Wang, Simoncelli & Bovik (2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def mse(x, y) -> torch.Tensor:
    """Per-image mean squared error, shape ``(N,)``."""
    x, y = as_pair(x, y)
    return ((x - y) ** 2).flatten(1).mean(1)


def psnr(x, y, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB, averaged over images.

    Identical images give ``inf``.

    >>> import torch
    >>> x = torch.zeros(1, 3, 8, 8)
    >>> round(psnr(x, x + 0.1), 6)       # MSE = 0.01 -> 20 dB
    20.0
    >>> psnr(x, x)
    inf
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    m = mse(x, y)
    vals = [math.inf if v == 0 else 10.0 * math.log10(data_range**2 / v) for v in m.tolist()]
    return float(sum(vals) / len(vals))


def ms_ssim(x, y, data_range: float = 1.0, win_size: int = MS_SSIM_WIN_SIZE,
            weights=MS_SSIM_WEIGHTS) -> float:
    """Multi-scale SSIM (Wang et al. 2003) via ``pytorch_msssim``, averaged over images.

    ``MS-SSIM = Π_j cs_j^{w_j} · ssim_M^{w_M}`` over ``len(weights)`` scales (each a 2× average
    pooling).  With the default 5 scales, ``pytorch_msssim`` needs
    ``min(H, W) > (win_size − 1)·16``: the default ``win_size = 7`` works from 97 px up (the
    paper's 128×256 images); pass ``win_size=11`` for images larger than 160 px to match the
    original definition.  Values from different ``win_size`` are not comparable.

    >>> import torch
    >>> x = torch.rand(1, 3, 128, 256, generator=torch.Generator().manual_seed(0))
    >>> ms_ssim(x, x)
    1.0
    """
    from pytorch_msssim import ms_ssim as _ms_ssim

    x, y = as_pair(x, y, value_range=(0.0, data_range))
    if not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd int >= 3, got {win_size!r}")
    need = (win_size - 1) * 16
    if min(x.shape[-2:]) <= need:
        largest = (min(x.shape[-2:]) - 1) // 16 + 1
        largest -= 1 - largest % 2  # largest odd window with (w - 1)·16 < min(H, W)
        hint = f"largest valid odd win_size: {largest}" if largest >= 3 else "the image is too small for 5 scales"
        raise ValueError(
            f"MS-SSIM with win_size={win_size} needs min(H, W) > {need}, got {tuple(x.shape[-2:])}; {hint}"
        )
    val = _ms_ssim(x, y, data_range=data_range, size_average=False, win_size=win_size, weights=list(weights))
    return float(val.mean())
