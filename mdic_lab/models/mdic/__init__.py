"""MDIC: distributed image compression with multimodal side information (paper 000).

One small module per part of the paper's Fig. 4:

==================  ===========================================================
``config``          :class:`MDICConfig`, :class:`MDICTrainConfig`, presets, rate points, variants
``tokenizer``       offline CLIP BPE tokenizer with a checked vocabulary
``backbone``        frozen VAE + CLIP text encoder, UNet ε_θ, DDIM (diffusers)
``hyperalign``      H_ax / H_ay (Eqs. 1–2)
``vq``              vector quantiser, straight-through, L_VQ (Eq. 21)
``entropy_model``   autoregressive transformer, estimated and coded rate
``vmgm_ts``         mask generator (Eqs. 4–8) + text supervision (Eqs. 9–12, 20)
``mgsism``          G1 fusion and G2 gate (Eqs. 13–14)
``conditioning``    Z_cond per ablation variant
``decoder``         conditional diffusion loss (Eq. 19) and DDIM sampling (Eqs. 15–18)
``model``           :class:`MDIC` assembly, losses (Eqs. 22–23), compress/decompress
``pretrain``        the small backbone of smoke/lab: VAE + contrastive text encoder, cached
``tour``            every intermediate of one pair (notebook 08)
==================  ===========================================================

Training, evaluation and the command line are the same for every codec
(:mod:`mdic_lab.runs`, :mod:`mdic_lab.cli`); this package knows nothing of them.
"""

from .config import PRESET_ALIASES, PRESETS, RATE_POINTS, SD21_BASE_HUB_ID, VARIANTS, MDICConfig, MDICTrainConfig

__all__ = ["MDICConfig", "MDICTrainConfig", "VARIANTS", "PRESETS", "PRESET_ALIASES", "RATE_POINTS", "SD21_BASE_HUB_ID", "MDIC", "Backbone", "load_clip_tokenizer"]


def __getattr__(name):  # lazy: importing the config must not import torch/diffusers
    if name == "MDIC":
        from .model import MDIC

        return MDIC
    if name == "Backbone":
        from .backbone import Backbone

        return Backbone
    if name == "load_clip_tokenizer":
        from .tokenizer import load_clip_tokenizer

        return load_clip_tokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
