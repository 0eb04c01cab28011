"""Input normalisation shared by the image metrics: one checked (N, C, H, W) tensor."""

from __future__ import annotations

import numpy as np
import torch


def as_batch(x, name: str, dtype=torch.float64, value_range=None) -> torch.Tensor:
    """``x`` as a finite ``(N, C, H, W)`` tensor; ``(C, H, W)`` and ``(H, W)`` get leading axes."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    x = x.detach().to("cpu", dtype)
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), (C, H, W) or (H, W), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    if value_range is not None:
        lo, hi = value_range
        if x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
            raise ValueError(f"{name} must lie in [{lo}, {hi}], got [{x.min():.4g}, {x.max():.4g}]")
    return x


def as_pair(x, y, dtype=torch.float64, value_range=None):
    """Two batches of equal shape."""
    x = as_batch(x, "x", dtype, value_range)
    y = as_batch(y, "y", dtype, value_range)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y
