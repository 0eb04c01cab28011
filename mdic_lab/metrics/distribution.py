"""Distribution metrics over image sets: FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018).

Features are the 2048-d pool3 activations of the TF-FID InceptionV3 (``piq``'s
``InceptionV3`` with the pytorch-fid weights), loaded from a local file
(``pt_inception-2015-12-05-6726825d.pth``, see :mod:`mdic_lab.metrics.weights`);
a missing file raises :class:`MetricUnavailable`.  The statistics themselves
(:func:`fid_from_features`, :func:`kid_from_features`) are plain NumPy/SciPy and work on any
feature vectors.
"""

from __future__ import annotations

import warnings
from unittest import mock

import numpy as np
import torch

from ._images import as_batch
from .errors import MetricUnavailable
from .weights import find_weights

__all__ = ["build_inception", "inception_features", "fid_from_features", "kid_from_features", "fid", "kid"]

_CACHE: dict = {}


def build_inception(weights_dir=None):
    """piq's FID InceptionV3 (pool3 output, input resized to 299, [0,1] -> [-1,1]) from a local file."""
    path = find_weights("inception_fid", weights_dir)
    if str(path) in _CACHE:
        return _CACHE[str(path)]
    from piq.feature_extractors import fid_inception as fi

    def _local(url, *args, **kwargs):  # piq's only download, redirected to the local file
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise MetricUnavailable(f"cannot read weight file {path}: {err}") from err

    with mock.patch.object(fi, "load_state_dict_from_url", _local), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # piq passes torchvision's deprecated `pretrained`
        warnings.simplefilter("ignore", FutureWarning)
        try:
            net = fi.InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True,
                                 use_fid_inception=True)
        except RuntimeError as err:
            raise MetricUnavailable(f"{path} is not the FID InceptionV3 checkpoint: {err}") from err
    net.eval()
    _CACHE[str(path)] = net
    return net


@torch.no_grad()
def inception_features(images, weights_dir=None, batch_size: int = 16) -> np.ndarray:
    """``(N, 2048)`` float64 pool3 features of ``(N, 3, H, W)`` images in ``[0, 1]``."""
    net = build_inception(weights_dir)
    x = as_batch(images, "images", dtype=torch.float32, value_range=(0.0, 1.0))
    if x.shape[1] != 3:
        raise ValueError(f"Inception features need RGB images (C = 3), got C = {x.shape[1]}")
    out = [net(x[i:i + batch_size])[0].flatten(1) for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).double().numpy()


def _features(f, name):
    a = np.asarray(f, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a (N, D) feature array with N >= 2, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def fid_from_features(f1, f2) -> float:
    """Fréchet distance ``‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`` between feature sets.

    Gaussian fits with unbiased covariances (as pytorch-fid).

    >>> import numpy as np
    >>> f = np.random.default_rng(0).normal(size=(50, 3))
    >>> round(fid_from_features(f, f), 6), round(fid_from_features(f, f + 2.0), 6)  # shift: 3·2²
    (0.0, 12.0)
    """
    from scipy import linalg

    a, b = _features(f1, "f1"), _features(f2, "f2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.all(np.isfinite(covmean)):  # singular product: regularise as pytorch-fid does
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    val = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(val, 0.0) if abs(val) < 1e-9 * max(1.0, np.trace(s1) + np.trace(s2)) else val


def kid_from_features(f1, f2, degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
                      subset_size: int | None = None, n_subsets: int = 1, seed: int = 0) -> float:
    """Kernel Inception Distance: unbiased MMD² with ``k(x, y) = (γ xᵀy + c)^d``, ``γ = 1/D``.

    With ``subset_size`` the estimate is averaged over ``n_subsets`` random subsets (drawn
    with ``numpy.random.default_rng(seed)``), as in Bińkowski et al. (2018).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> same = kid_from_features(rng.normal(size=(500, 4)), rng.normal(size=(500, 4)))
    >>> shifted = kid_from_features(rng.normal(size=(500, 4)), rng.normal(1.0, size=(500, 4)))
    >>> abs(same) < 0.01 < shifted   # unbiased: ≈ 0 for equal distributions
    True
    """
    a, b = _features(f1, "f1"), _features(f2, "f2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    g = 1.0 / a.shape[1] if gamma is None else gamma
    m = min(a.shape[0], b.shape[0]) if subset_size is None else subset_size
    if not 2 <= m <= min(a.shape[0], b.shape[0]):
        raise ValueError(f"subset_size must be in [2, {min(a.shape[0], b.shape[0])}], got {m}")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_subsets if subset_size is not None else 1):
        x = a[rng.choice(a.shape[0], m, replace=False)] if subset_size is not None else a[:m]
        y = b[rng.choice(b.shape[0], m, replace=False)] if subset_size is not None else b[:m]
        kxx = (g * x @ x.T + coef0) ** degree
        kyy = (g * y @ y.T + coef0) ** degree
        kxy = (g * x @ y.T + coef0) ** degree
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2.0 * kxy.mean())
    return float(np.mean(vals))


def fid(x_images, y_images, weights_dir=None) -> float:
    """FID between two image sets (``(N, 3, H, W)`` in ``[0, 1]``); needs the Inception weights."""
    return fid_from_features(inception_features(x_images, weights_dir), inception_features(y_images, weights_dir))


def kid(x_images, y_images, weights_dir=None, **kwargs) -> float:
    """KID between two image sets; needs the Inception weights. ``kwargs`` go to :func:`kid_from_features`."""
    return kid_from_features(inception_features(x_images, weights_dir),
                             inception_features(y_images, weights_dir), **kwargs)
