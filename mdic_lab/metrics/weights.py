"""Where pretrained weights for learned metrics are looked up -- without ever downloading.

Learned metrics need pretrained backbones that this project cannot download at run time.
Each required file is looked up, in order, in

1. the ``weights_dir`` passed to the metric,
2. ``$MDIC_WEIGHTS_DIR`` if set,
3. torch's hub cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``,
   default ``~/.cache/torch/hub/checkpoints``) -- where torchvision/piq would have cached them.

A missing file raises :class:`MetricUnavailable` naming the file, its upstream source and
the folders searched.  Only the file's existence is checked here; nothing is fetched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MetricUnavailable

__all__ = ["WeightFile", "WEIGHT_FILES", "search_dirs", "find_weights", "missing_weights"]


@dataclass(frozen=True)
class WeightFile:
    """A pretrained file: its cache file name, where it comes from, what uses it."""

    filename: str
    source: str
    used_by: str


WEIGHT_FILES = {
    "alexnet": WeightFile("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                          "LPIPS (net='alex') backbone, torchvision AlexNet_Weights.IMAGENET1K_V1"),
    "vgg16": WeightFile("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
                        "LPIPS (net='vgg') and DISTS backbone, torchvision VGG16_Weights.IMAGENET1K_V1"),
    "squeezenet": WeightFile("squeezenet1_1-b8a52dc0.pth",
                             "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
                             "LPIPS (net='squeeze') backbone, torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1"),
    "dists": WeightFile("dists_weights.pt",
                        "https://github.com/photosynthesis-team/piq/releases/download/v0.4.1/dists_weights.pt",
                        "DISTS alpha/beta layer weights (piq.DISTS)"),
    "inception_fid": WeightFile("pt_inception-2015-12-05-6726825d.pth",
                                "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                                "pt_inception-2015-12-05-6726825d.pth",
                                "FID/KID InceptionV3 (the TF-FID weights used by pytorch-fid and piq)"),
    "niqe": WeightFile("niqe_pristine_params.npz",
                       "the authors' NIQE release: modelparameters.mat (keys mu_prisparam, cov_prisparam), "
                       "used as is or saved as .npz with the same keys",
                       "NIQE pristine multivariate Gaussian (Mittal et al. 2013)"),
}


def search_dirs(weights_dir=None) -> list[Path]:
    """The folders searched for weight files, in order."""
    dirs = []
    if weights_dir is not None:
        dirs.append(Path(weights_dir))
    env = os.environ.get("MDIC_WEIGHTS_DIR")
    if env:
        dirs.append(Path(env))
    try:
        import torch

        dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return dirs


def missing_weights(keys, weights_dir=None) -> list[str]:
    """The keys of ``WEIGHT_FILES`` whose file is found in none of :func:`search_dirs`."""
    missing = []
    for key in keys:
        try:
            find_weights(key, weights_dir)
        except MetricUnavailable:
            missing.append(key)
    return missing


def find_weights(key: str, weights_dir=None, alternatives=()) -> Path:
    """Path of the weight file ``WEIGHT_FILES[key]`` (or one of ``alternatives`` names).

    Raises
    ------
    MetricUnavailable
        If the file is in none of the searched folders.
    """
    if key not in WEIGHT_FILES:
        raise ValueError(f"unknown weight file {key!r} (expected one of: {', '.join(WEIGHT_FILES)})")
    wf = WEIGHT_FILES[key]
    dirs = search_dirs(weights_dir)
    for d in dirs:
        for name in (wf.filename, *alternatives):
            p = d / name
            if p.is_file():
                return p
    names = " or ".join(repr(n) for n in (wf.filename, *alternatives))
    raise MetricUnavailable(
        f"missing pretrained weights {names} for {wf.used_by}; "
        f"put the file (from {wf.source}) into one of: {', '.join(str(d) for d in dirs)} "
        "(or pass weights_dir=...). Nothing is downloaded at run time."
    )
