"""Learned image codecs used as baselines: the single-image scale hyperprior, NDIC and TACO (+ OPAM fusion)."""

from mdic_lab.models.baselines.hyperprior import ScaleHyperprior
from mdic_lab.models.baselines.ndic import NDIC
from mdic_lab.models.baselines.taco import TACO

__all__ = ["ScaleHyperprior", "NDIC", "TACO", "MODEL_CLASSES", "build_model"]

#: CLI model name -> class.
MODEL_CLASSES = {"hyperprior": ScaleHyperprior, "ndic": NDIC, "taco": TACO}


def build_model(name: str, config):
    """Build ``"hyperprior"``, ``"ndic"`` or ``"taco"`` from its config."""
    if name not in MODEL_CLASSES:
        raise KeyError(f"unknown model {name!r} (expected one of: {', '.join(MODEL_CLASSES)})")
    return MODEL_CLASSES[name](config)
