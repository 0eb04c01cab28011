"""Learned perceptual distances: LPIPS (Zhang et al. 2018) and DISTS (Ding et al. 2020).

Both need pretrained ImageNet backbones, which are never downloaded here: they are loaded
from files found by :func:`mdic_lab.metrics.weights.find_weights` (``weights_dir``,
``$MDIC_WEIGHTS_DIR`` or torch's hub cache) and a missing file raises
:class:`MetricUnavailable` naming it.  The ``lpips`` wheel ships its linear calibration
layers (``lpips/weights/v0.1/{alex,vgg,squeeze}.pth``); only the torchvision backbone is
needed from outside.  Networks are built once per (kind, weights folder) and cached.

Inputs are ``(N, 3, H, W)`` images in ``[0, 1]``; both functions return the mean over the
batch (lower = more similar).
"""

from __future__ import annotations

import warnings

import torch

from ._images import as_pair
from .errors import MetricUnavailable
from .weights import find_weights

__all__ = ["build_lpips", "lpips_distance", "build_dists", "dists_distance", "LPIPS_NETS"]

#: LPIPS backbone name -> key of the torchvision checkpoint in ``WEIGHT_FILES``.
LPIPS_NETS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet"}
_CACHE: dict = {}


def _load_checkpoint(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file must not look like a usable model
        raise MetricUnavailable(f"cannot read weight file {path}: {err}") from err


def build_lpips(net: str = "alex", weights_dir=None):
    """An ``lpips.LPIPS`` network whose backbone is loaded from a local torchvision checkpoint.

    The network is built with a random backbone (``pnet_rand=True``, so nothing is
    downloaded) whose every parameter is then overwritten from the checkpoint (strict
    load: a file missing any backbone tensor is refused).
    """
    if net not in LPIPS_NETS:
        raise ValueError(f"unknown LPIPS net {net!r} (expected one of: {', '.join(LPIPS_NETS)})")
    path = find_weights(LPIPS_NETS[net], weights_dir)
    key = ("lpips", net, str(path))
    if key in _CACHE:
        return _CACHE[key]
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    state = _load_checkpoint(path)
    target = model.net.state_dict()  # keys like "slice1.0.weight" -> torchvision "features.0.weight"
    new = {}
    for k in target:
        src = "features." + k.split(".", 1)[1]
        if src not in state:
            raise MetricUnavailable(f"{path} is not a torchvision {net} checkpoint: tensor {src!r} missing")
        if state[src].shape != target[k].shape:
            raise MetricUnavailable(f"{path}: tensor {src!r} has shape {tuple(state[src].shape)}, "
                                    f"expected {tuple(target[k].shape)}")
        new[k] = state[src]
    model.net.load_state_dict(new, strict=True)
    model.eval()
    _CACHE[key] = model
    return model


@torch.no_grad()
def lpips_distance(x, y, net: str = "alex", weights_dir=None) -> float:
    """LPIPS distance (Zhang et al. 2018), mean over the batch; images in ``[0, 1]``.

    Raises :class:`MetricUnavailable` if the backbone weights are not on disk.
    """
    model = build_lpips(net, weights_dir)
    x, y = as_pair(x, y, dtype=torch.float32, value_range=(0.0, 1.0))
    if x.shape[1] != 3:
        raise ValueError(f"LPIPS needs RGB images (C = 3), got C = {x.shape[1]}")
    return float(model(x, y, normalize=True).mean())


def build_dists(weights_dir=None):
    """A ``piq.DISTS`` module built from local VGG16 and DISTS (alpha, beta) weight files.

    This reproduces ``piq.DISTS.__init__`` (piq 0.8) with the two downloads replaced by
    local loads: VGG16 features (L2-pooling instead of max-pooling), layers relu1_2 …
    relu5_3, per-channel alpha/beta weights.
    """
    vgg_path = find_weights("vgg16", weights_dir)
    dists_path = find_weights("dists", weights_dir)
    key = ("dists", str(vgg_path), str(dists_path))
    if key in _CACHE:
        return _CACHE[key]
    import piq
    from piq.perceptual import IMAGENET_MEAN, IMAGENET_STD, VGG16_LAYERS, ContentLoss
    from torchvision.models import vgg16

    vgg = vgg16(weights=None)
    try:
        vgg.load_state_dict(_load_checkpoint(vgg_path), strict=True)
    except RuntimeError as err:
        raise MetricUnavailable(f"{vgg_path} is not a torchvision VGG16 checkpoint: {err}") from err
    w = _load_checkpoint(dists_path)
    if not isinstance(w, dict) or "alpha" not in w or "beta" not in w:
        raise MetricUnavailable(f"{dists_path} is not a DISTS weight file (expected keys 'alpha', 'beta')")
    channels = [3, 64, 128, 256, 512, 512]
    weights = list(torch.split(w["alpha"], channels, dim=1)) + list(torch.split(w["beta"], channels, dim=1))
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    model = piq.DISTS.__new__(piq.DISTS)
    ContentLoss.__init__(model, feature_extractor=vgg.features, layers=[VGG16_LAYERS[l] for l in layers],
                         weights=weights, replace_pooling=True, reduction="none", mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, normalize_features=False, allow_layers_weights_mismatch=True)
    model.eval()
    _CACHE[key] = model
    return model


@torch.no_grad()
def dists_distance(x, y, weights_dir=None) -> float:
    """DISTS (Ding et al. 2020) via ``piq``, mean over the batch; images in ``[0, 1]``.

    Raises :class:`MetricUnavailable` if the VGG16 or DISTS weights are not on disk.
    """
    model = build_dists(weights_dir)
    x, y = as_pair(x, y, dtype=torch.float32, value_range=(0.0, 1.0))
    if x.shape[1] != 3:
        raise ValueError(f"DISTS needs RGB images (C = 3), got C = {x.shape[1]}")
    return float(model(x, y).mean())
