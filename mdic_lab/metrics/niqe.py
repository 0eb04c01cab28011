"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan & Bovik, IEEE SPL 2013).

A no-reference score: the distance between a multivariate Gaussian (MVG) fitted to
natural-scene-statistics features of the test image's patches and the MVG of a
*pristine* model fitted by the authors on 125 pristine images::

    NIQE = sqrt( (μ_p − μ_d)ᵀ ((Σ_p + Σ_d)/2)⁺ (μ_p − μ_d) )          (Eq. 10 of the paper)

Features (following the authors' MATLAB ``computequality.m``): the grey image (0–255) is
normalised to MSCN coefficients ``(I − μ)/(σ + 1)`` with a 7×7 Gaussian window
(σ = 7/6, replicate borders); in each 96×96 patch (48×48 at the second scale, after a
MATLAB-style bicubic ``imresize(·, 0.5)``) an asymmetric generalised Gaussian (AGGD) is fitted
by moment matching to the MSCN values (α, (β_l+β_r)/2) and to the four neighbour products
(horizontal, vertical, two diagonals: α, η, β_l, β_r) -- 18 features per scale, 36 in all.

**The pristine model is not shipped**: it is fitted on the authors' image collection,
which is not available here, and refitting it on other images would give numbers that are
not NIQE.  Put the authors' ``modelparameters.mat`` (keys ``mu_prisparam``,
``cov_prisparam``) or an ``.npz`` with the same keys where
:func:`mdic_lab.metrics.weights.find_weights` looks (file name ``niqe_pristine_params.npz``
or ``modelparameters.mat``) or pass ``model_path``; without it :func:`niqe` raises
:class:`MetricUnavailable`.  The feature extraction is tested on its own (AGGD fit against
closed forms, MATLAB ``imresize`` identities).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import gamma as G

from ._images import as_batch
from .errors import MetricUnavailable
from .weights import find_weights

__all__ = ["niqe", "niqe_features", "fit_aggd", "matlab_imresize_half", "load_pristine_model"]

_GAM = np.arange(0.2, 10.0 + 1e-9, 0.001)
_R_GAM = G(2.0 / _GAM) ** 2 / (G(1.0 / _GAM) * G(3.0 / _GAM))
_BLOCK = 96


def fit_aggd(vec) -> tuple[float, float, float]:
    """Moment-matching AGGD fit ``(α, β_l, β_r)`` (``estimateaggdparam.m``, grid step 0.001).

    >>> import numpy as np
    >>> from scipy.stats import gennorm
    >>> x = gennorm.rvs(1.5, scale=2.0, size=200_000, random_state=0)
    >>> [round(v, 1) for v in fit_aggd(x)]
    [1.5, 2.0, 2.0]
    """
    v = np.asarray(vec, dtype=np.float64).ravel()
    neg, pos = v[v < 0], v[v > 0]
    if neg.size == 0 or pos.size == 0:
        raise ValueError("AGGD fit needs both negative and positive values")
    left, right = np.sqrt(np.mean(neg**2)), np.sqrt(np.mean(pos**2))
    g = left / right
    rhat = np.mean(np.abs(v)) ** 2 / np.mean(v**2)
    rnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = float(_GAM[np.argmin((_R_GAM - rnorm) ** 2)])
    f = np.sqrt(G(1.0 / alpha) / G(3.0 / alpha))
    return alpha, float(left * f), float(right * f)


def _block_features(block: np.ndarray) -> list[float]:
    a, bl, br = fit_aggd(block)
    feat = [a, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):  # circshift within the block, as the MATLAB code
        pair = block * np.roll(block, shift, axis=(0, 1))
        a, bl, br = fit_aggd(pair)
        eta = (br - bl) * (G(2.0 / a) / G(1.0 / a))
        feat += [a, eta, bl, br]
    return feat


def _cubic(x):
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_axis_half(img: np.ndarray, axis: int) -> np.ndarray:
    n = img.shape[axis]
    out_n = int(np.ceil(n * 0.5))
    scale, width = 0.5, 4.0 / 0.5  # antialiasing widens the cubic kernel by 1/scale
    u = np.arange(1, out_n + 1, dtype=np.float64)
    x = u / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(x - width / 2)
    p = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]  # 1-based
    w = scale * _cubic(scale * (x[:, None] - idx))
    w /= w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, n + 1), np.arange(n, 0, -1)])  # symmetric borders
    idx = aux[np.mod(idx.astype(np.int64) - 1, aux.size)] - 1
    moved = np.moveaxis(img, axis, 0)
    res = np.einsum("op,op...->o...", w, moved[idx])
    return np.moveaxis(res, 0, axis)


def matlab_imresize_half(img: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(img, 0.5)`` (bicubic, antialiasing on, symmetric borders), float64.

    >>> import numpy as np
    >>> matlab_imresize_half(np.full((8, 6), 3.0)).round(12).tolist() == np.full((4, 3), 3.0).tolist()
    True
    """
    img = np.asarray(img, dtype=np.float64)
    return _resize_axis_half(_resize_axis_half(img, 0), 1)


def _gauss_window():
    ax = np.arange(-3, 4, dtype=np.float64)
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


def niqe_features(gray: np.ndarray) -> np.ndarray:
    """``(n_patches, 36)`` NIQE features of a grey image with values in 0–255 (min side ≥ 96)."""
    im = np.asarray(gray, dtype=np.float64)
    if im.ndim != 2:
        raise ValueError(f"gray must be a 2-D image, got shape {im.shape}")
    rows, cols = (im.shape[0] // _BLOCK) * _BLOCK, (im.shape[1] // _BLOCK) * _BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs an image of at least {_BLOCK}×{_BLOCK} pixels, got {im.shape}")
    im = im[:rows, :cols]
    win = _gauss_window()
    feats = []
    for scale in (1, 2):
        mu = ndimage.correlate(im, win, mode="nearest")
        sigma = np.sqrt(np.abs(ndimage.correlate(im * im, win, mode="nearest") - mu * mu))
        mscn = (im - mu) / (sigma + 1)
        b = _BLOCK // scale
        feats.append(np.array([_block_features(mscn[r:r + b, c:c + b])
                               for r in range(0, mscn.shape[0] - b + 1, b)
                               for c in range(0, mscn.shape[1] - b + 1, b)]))
        if scale == 1:
            im = matlab_imresize_half(im)
    return np.concatenate(feats, axis=1)


def load_pristine_model(path) -> tuple[np.ndarray, np.ndarray]:
    """``(μ_p (36,), Σ_p (36, 36))`` from the authors' ``.mat`` or an ``.npz`` with the same keys."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise MetricUnavailable(f"NIQE pristine model file not found: {path}")
    try:
        if path.suffix == ".mat":
            from scipy.io import loadmat

            d = loadmat(path)
        else:
            d = dict(np.load(path))
        mu, cov = np.asarray(d["mu_prisparam"], float).ravel(), np.asarray(d["cov_prisparam"], float)
    except Exception as err:
        raise MetricUnavailable(f"cannot read NIQE pristine model {path} (needs keys mu_prisparam, "
                                f"cov_prisparam): {err}") from err
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise MetricUnavailable(f"{path}: expected mu_prisparam (36,) and cov_prisparam (36, 36), "
                                f"got {mu.shape} and {cov.shape}")
    return mu, cov


def _to_gray255(x) -> np.ndarray:
    """MATLAB ``rgb2gray`` of the uint8 image: rounded luminance of round(255·x)."""
    t = as_batch(x, "images", value_range=(0.0, 1.0)).numpy()
    u8 = np.round(t * 255.0)
    if t.shape[1] == 3:
        return np.round(0.298936021293775 * u8[:, 0] + 0.587043074451121 * u8[:, 1] + 0.114020904255103 * u8[:, 2])
    if t.shape[1] == 1:
        return u8[:, 0]
    raise ValueError(f"NIQE needs grey (C = 1) or RGB (C = 3) images, got C = {t.shape[1]}")


def niqe(images, model_path=None, weights_dir=None) -> float:
    """Mean NIQE over a batch of images in ``[0, 1]`` (lower = more natural).

    Raises :class:`MetricUnavailable` when no pristine model file is available.
    """
    if model_path is None:
        model_path = find_weights("niqe", weights_dir, alternatives=("modelparameters.mat",))
    mu_p, cov_p = load_pristine_model(model_path)
    scores = []
    for gray in _to_gray255(images):
        f = niqe_features(gray)
        mu_d = f.mean(0)
        cov_d = np.cov(f, rowvar=False) if f.shape[0] > 1 else np.zeros((36, 36))
        d = mu_p - mu_d
        scores.append(float(np.sqrt(d @ np.linalg.pinv((cov_p + cov_d) / 2) @ d)))
    return float(np.mean(scores))
