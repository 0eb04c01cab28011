"""Learned image codecs used as baselines: the single-image scale hyperprior and NDIC."""

from mdic_lab.models.baselines.hyperprior import ScaleHyperprior
from mdic_lab.models.baselines.ndic import NDIC

__all__ = ["ScaleHyperprior", "NDIC", "MODEL_CLASSES", "build_model"]

#: CLI model name -> class.
MODEL_CLASSES = {"hyperprior": ScaleHyperprior, "ndic": NDIC}


def build_model(name: str, config):
    """Build ``"hyperprior"`` or ``"ndic"`` from its config."""
    if name not in MODEL_CLASSES:
        raise KeyError(f"unknown model {name!r} (expected one of: {', '.join(MODEL_CLASSES)})")
    return MODEL_CLASSES[name](config)
