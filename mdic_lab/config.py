"""The checked-config base every codec's configs share, and the hyperprior / NDIC configs.

A config is the whole recipe of a run: the model is built from its config alone, the
trainer from a training config, and both are written into every checkpoint and results
folder (nanoGPT style).  Every config class derives from :class:`CheckedConfig`, which
gives all of them the same ``replace`` / ``to_dict`` / ``from_dict`` / ``hash`` and the same
errors.  Presets and rate points of each codec live next to its config classes (here for
the hyperprior and NDIC, :mod:`mdic_lab.models.mdic.config` for MDIC) and are looked up
through :mod:`mdic_lab.registry`.

Overrides are type-checked and unknown keys are refused:

>>> cfg = NDICConfig()
>>> cfg.replace(alpha=0.5).alpha
0.5
>>> cfg.replace(gamma=1)
Traceback (most recent call last):
...
mdic_lab.config.ConfigError: unknown field 'gamma' of NDICConfig (expected one of: N, M, C_w, prior, alpha, beta, fusion)
>>> NDICConfig.from_dict(cfg.to_dict()) == cfg, len(cfg.hash())
(True, 8)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields

__all__ = [
    "CheckedConfig",
    "ConfigError",
    "HyperpriorConfig",
    "NDICConfig",
    "TrainConfig",
    "TACOConfig",
    "TACO_PRESETS",
    "TACO_RATE_POINTS",
    "PRESETS",
    "PRESET_ALIASES",
    "RATE_POINTS",
    "replace_checked",
    "config_to_dict",
    "config_from_dict",
    "config_hash",
]

PRIORS = ("factorized", "hyperprior")
#: How NDIC's decoder fuses the common information w into v̂_x (NDICConfig.fusion).
NDIC_FUSIONS = ("concat", "opam")

#: Former preset names, accepted for every codec.
PRESET_ALIASES = {"tiny": "smoke", "laptop": "lab"}


class ConfigError(KeyError, ValueError):
    """An unknown config field, preset, rate point or variant; the message lists what is accepted.

    It is both a :class:`KeyError` and a :class:`ValueError`, so callers catching either
    see it; ``str()`` gives the message without the quotes ``KeyError`` adds.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _coerce(cls, name, value, current):
    """Type-check one override against the field's current value (``None`` accepts anything)."""
    if current is None or value is None:
        return value
    kinds = ((bool, (bool,), "a bool"), (int, (int,), "an int"), (float, (int, float), "a float"),
             (str, (str,), "a str"))
    for kind, accepted, what in kinds:
        if isinstance(current, kind):
            if isinstance(value, bool) and kind is not bool or not isinstance(value, accepted):
                raise TypeError(f"{cls.__name__}.{name} expects {what}, got {value!r}")
            return float(value) if kind is float else value
    if isinstance(current, tuple):
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"{cls.__name__}.{name} expects a tuple, got {value!r}")
        return tuple(value)
    return value


class CheckedConfig:
    """Base of every config dataclass: checked ``replace``, plain-JSON ``to_dict``/``from_dict``, ``hash``.

    Subclasses are ``@dataclass`` classes with a comment on every field and a
    ``__post_init__`` that validates values; this base adds nothing to their fields.
    """

    #: class name -> class, of every subclass (what :func:`config_from_dict` can read)
    registered: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        CheckedConfig.registered[cls.__name__] = cls

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def check_keys(cls, keys) -> None:
        """Raise :class:`ConfigError` naming the first key that is not a field of ``cls``."""
        names = cls.field_names()
        for key in keys:
            if key not in names:
                raise ConfigError(f"unknown field {key!r} of {cls.__name__} (expected one of: {', '.join(names)})")

    def replace(self, **overrides):
        """A copy with ``overrides`` applied; unknown keys raise :class:`ConfigError`, wrong types ``TypeError``."""
        if not overrides:
            return self
        type(self).check_keys(overrides)
        clean = {k: _coerce(type(self), k, v, getattr(self, k)) for k, v in overrides.items()}
        return dataclasses.replace(self, **clean)

    def to_dict(self) -> dict:
        """Plain JSON-able dict of the fields (tuples become lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of :meth:`to_dict` (an optional ``"_class"`` key must name ``cls``)."""
        d = dict(d)
        name = d.pop("_class", cls.__name__)
        if name != cls.__name__:
            raise ConfigError(f"a {name} record cannot be read as {cls.__name__}")
        return cls().replace(**d)

    def hash(self) -> str:
        """Short stable hash (8 hex digits) of the class name and every field."""
        return config_hash(self)


@dataclass(frozen=True)
class HyperpriorConfig(CheckedConfig):
    """Ballé et al. (2018) scale hyperprior, single image (no side information)."""

    N: int = 64  # channels of the hidden layers of g_a, g_s, h_a, h_s and of the hyper-latent z
    M: int = 96  # channels of the latent y that is quantized and range-coded

    def __post_init__(self):
        _check_positive(self, ("N", "M"))


@dataclass(frozen=True)
class NDICConfig(CheckedConfig):
    """NDIC (Mital et al.): encoder on x only, decoder adds common information w = f(y)."""

    N: int = 64  # channels of the hidden layers of g_ax, g_sx, g_ay, g_sy and f
    M: int = 96  # channels of the transmitted latent v_x (and of the decoder-side latent v_y)
    C_w: int = 32  # channels of the common information w = f(y) (same 16x-downsampled grid as v_x)
    prior: str = "hyperprior"  # entropy model of v_x: "factorized" (ours+Ballé2017) or "hyperprior" (ours+Ballé2018)
    alpha: float = 1.0  # α of Eq. 4: weight of the side-view term (R_y + λ D_y)
    beta: float = 1.0  # β of Eq. 4: weight of the rate of the common information R_w
    fusion: str = "concat"  # how g_sx receives w: "concat" ([v̂_x, w], the paper) or "opam" (OmniParallax
    # attention aligns w to v̂_x, mdic_lab.models.baselines.opam); the y branch always concatenates

    def __post_init__(self):
        _check_positive(self, ("N", "M", "C_w"))
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r} (expected one of: {', '.join(PRIORS)})")
        for name in ("alpha", "beta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.fusion not in NDIC_FUSIONS:
            raise ConfigError(f"unknown fusion {self.fusion!r} of NDICConfig "
                              f"(expected one of: {', '.join(NDIC_FUSIONS)})")

    def to_dict(self) -> dict:
        """The fields; ``fusion`` only when it is not ``"concat"``, so concat models keep their hashes and ids."""
        d = super().to_dict()
        if d["fusion"] == NDIC_FUSIONS[0]:
            del d["fusion"]
        return d


@dataclass(frozen=True)
class TrainConfig(CheckedConfig):
    """How the hyperprior and NDIC are trained (rate–distortion Lagrangian, optimiser, data, logging)."""

    lmbda: float = 0.0018  # λ of L = R + λ·255²·MSE (Eq. 4; CompressAI's convention, R in bits/pixel)
    steps: int = 300  # optimiser steps in total (a resumed run continues up to this number)
    batch_size: int = 8  # image pairs per step
    crop: tuple = (64, 128)  # (H, W) random crop taken at the same place in x and y; None = whole image
    image_size: tuple = (128, 256)  # (H, W) of the synthetic stereo images
    train_length: int = 768  # number of synthetic training pairs (the world is procedural; 6 cache chunks)
    lr: float = 1e-3  # AdamW learning rate
    lr_final: float = 1e-4  # cosine decay target reached at the last step
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    amsgrad: bool = False  # AMSGrad variant (the NDIC paper trains with AMSGrad)
    clip_grad: float = 1.0  # max global gradient norm (0 disables clipping)
    seed: int = 0  # seeds the crop sampler, the quantization noise and the weights
    num_threads: int = 1  # torch CPU threads (the lab machine is shared)
    log_every: int = 25  # steps between two rows of the CSV metrics log
    ckpt_every: int = 200  # steps between two atomic checkpoints (one is always written at the end)
    data_seed: int = 0  # seed of the synthetic world passed to SyntheticStereo

    def __post_init__(self):
        _check_positive(self, ("steps", "batch_size", "train_length", "num_threads", "log_every", "ckpt_every"))
        if not self.lmbda > 0:
            raise ValueError(f"lmbda must be > 0, got {self.lmbda!r}")
        if not self.lr > 0 or not self.lr_final > 0:
            raise ValueError(f"lr and lr_final must be > 0, got {self.lr!r}, {self.lr_final!r}")
        for name in ("crop", "image_size"):
            v = getattr(self, name)
            if v is None and name == "crop":
                continue
            if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) and i > 0 for i in v)):
                raise ValueError(f"{name} must be a pair of positive ints (H, W), got {v!r}")
            object.__setattr__(self, name, tuple(v))
        if self.crop is not None and (self.crop[0] > self.image_size[0] or self.crop[1] > self.image_size[1]):
            raise ValueError(f"crop {self.crop} is larger than image_size {self.image_size}")


def _widths(n: int, m: int, c_w: int | None = None) -> dict:
    return {"hyperprior": {"N": n, "M": m}, "ndic": {"N": n, "M": m, **({"C_w": c_w} if c_w else {})}}


#: codec -> preset -> {"model": overrides, "train": overrides}.  ``paper``: the recipe the NDIC paper
#: states (Sec. 3: AMSGrad, lr 1e-4, batch 1, 500K iterations, whole 128×256 images) with the widths of
#: Ballé et al. (2018) at low rates (N = 128, M = 192).
PRESETS: dict[str, dict[str, dict[str, dict]]] = {
    codec: {
        "smoke": {"model": _widths(8, 12, 4)[codec],
                  "train": {"steps": 4, "batch_size": 2, "crop": (64, 64), "train_length": 8,
                            "log_every": 2, "ckpt_every": 2}},
        "lab": {"model": _widths(64, 96, 32)[codec],
                "train": {"steps": 300, "batch_size": 8, "crop": (64, 128), "train_length": 768}},
        "paper": {"model": _widths(128, 192)[codec],
                  "train": {"steps": 500_000, "batch_size": 1, "crop": None, "lr": 1e-4, "lr_final": 1e-4,
                            "amsgrad": True}},
    }
    for codec in ("hyperprior", "ndic")
}

#: codec -> preset -> rate points (lowest rate first), each a dict of overrides.  λ moves the rate of
#: these codecs; ``paper`` uses CompressAI's λ of its quality levels 1–4 (the NDIC paper states none).
RATE_POINTS: dict[str, dict[str, list[dict]]] = {
    codec: {
        "smoke": [{"lmbda": 0.0018}, {"lmbda": 0.018}],
        "lab": [{"lmbda": lm} for lm in (0.0002, 0.0004, 0.0008, 0.0016)],
        "paper": [{"lmbda": lm} for lm in (0.0018, 0.0035, 0.0067, 0.0130)],
    }
    for codec in ("hyperprior", "ndic")
}


def _check_positive(cfg, names):
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{type(cfg).__name__}.{name} must be a positive int, got {v!r}")


def replace_checked(cfg, overrides: dict | None):
    """``cfg.replace(**overrides)`` for a dict that may be ``None``."""
    return cfg.replace(**(overrides or {}))


def config_to_dict(cfg) -> dict:
    """Plain-JSON dict of a config, with its class name under ``"_class"`` (what run folders store)."""
    return {"_class": type(cfg).__name__, **cfg.to_dict()}


def config_from_dict(d: dict):
    """Inverse of :func:`config_to_dict`: the :class:`CheckedConfig` subclass named by ``"_class"``."""
    name = d.get("_class") if isinstance(d, dict) else None
    if name not in CheckedConfig.registered:
        raise ConfigError(f"unknown config class {name!r} (expected one of: {', '.join(CheckedConfig.registered)})")
    return CheckedConfig.registered[name].from_dict(d)


def config_hash(cfg) -> str:
    """Short stable hash (8 hex digits) of a config, used in bitstream model ids.

    >>> config_hash(NDICConfig()) == config_hash(NDICConfig())
    True
    """
    blob = json.dumps(config_to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


# ============================================================================ TACO (Lee et al., ICML 2024)
#: Where TACO's frozen text encoder comes from (TACOConfig.clip), besides a folder / hub id of a real CLIP.
TACO_TEXT_SOURCES = ("lab", "random")


@dataclass(frozen=True)
class TACOConfig(CheckedConfig):
    """TACO: the scale hyperprior with a text adapter in its analysis transform (text at the ENCODER only)."""

    N: int = 64  # channels of the hidden layers of g_a, g_s, h_a, h_s and of the hyper-latent z
    M: int = 96  # channels of the latent y that is quantized and range-coded
    heads: int = 4  # attention heads of CA1, CA2, CA3 (must divide N and the text width; TACO's code: 8)
    max_text_length: int = 64  # m of Eq. 3: caption tokens incl. start/end (paper: 38; synthetic captions need 62)
    clip: str = "lab"  # f_T of Eqs. 3, 7: "lab" (MDIC's shipped lab text encoder, NOT OpenAI CLIP), "random"
    # (tests only: a tiny random text encoder, never called CLIP) or a CLIPModel folder / hub id (paper)
    k_p: float = 0.0  # k_p of Eq. 6 (LPIPS weight; paper 3.5; needs the LPIPS AlexNet weights on disk)
    k_j: float = 0.0025  # k_j of Eq. 6 (weight of the joint image-text loss L_j, Eq. 7)
    beta: float = 40.0  # β of Eq. 7 (weight of ||f_I(x) − f_I(x̂)||_2)
    logit_scale: float = 2.6592  # ln of the inverse temperature of L_con (TACO's code: CLIP's initial value)
    align_steps: int = 200  # "lab"/"random" only: InfoNCE steps fitting the image tower f_I to the frozen f_T
    align_batch: int = 32  # "lab"/"random" only: pairs per alignment step
    tower_size: tuple = (32, 64)  # "lab"/"random" only: (H, W) the image tower f_I sees (area-resized)
    send_caption: bool = True  # the stream carries the caption (payload 2); False = the paper's image-only stream

    def __post_init__(self):
        _check_positive(self, ("N", "M", "heads", "max_text_length", "align_batch"))
        if not isinstance(self.align_steps, int) or isinstance(self.align_steps, bool) or self.align_steps < 0:
            raise ValueError(f"TACOConfig.align_steps must be an int >= 0, got {self.align_steps!r}")
        if self.N % self.heads:
            raise ValueError(f"TACOConfig.heads={self.heads} must divide N={self.N}")
        if not 3 <= self.max_text_length <= 77:
            raise ValueError(f"TACOConfig.max_text_length must be in [3, 77] (CLIP's positions), "
                             f"got {self.max_text_length}")
        if not isinstance(self.clip, str) or not self.clip.strip():
            raise ValueError(f"TACOConfig.clip must be one of: {', '.join(TACO_TEXT_SOURCES)}, or a CLIPModel "
                             f"folder / hub id (e.g. 'openai/clip-vit-base-patch32'), got {self.clip!r}")
        for name in ("k_p", "k_j", "beta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TACOConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        v = self.tower_size
        if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) and i >= 8 for i in v)):
            raise ValueError(f"TACOConfig.tower_size must be a pair of ints >= 8 (H, W), got {v!r}")
        object.__setattr__(self, "tower_size", tuple(v))


#: TACO presets.  smoke/lab train like the hyperprior's presets of the same name (same crops, steps and
#: pairs), so the two codecs compare at equal budgets; ``paper``: Sec. 4.1 of the TACO paper (Adam, lr 1e-4,
#: batch 4, 50 epochs of MS-COCO = 50 · ⌈82 783 / 4⌉ steps, (k_p, k_j, β) = (3.5, 0.0025, 40), m = 38,
#: openai/clip-vit-base-patch32, N = 192, M = 320 as in its ELIC) on this project's whole 128×256 images;
#: the step decay (×0.1 at epochs 45 and 48) becomes the cosine decay of the one training loop.
TACO_PRESETS = {
    "smoke": {"model": {"N": 8, "M": 12, "heads": 2, "align_steps": 4, "align_batch": 4},
              "train": {"steps": 4, "batch_size": 2, "crop": (64, 64), "train_length": 8,
                        "log_every": 2, "ckpt_every": 2}},
    "lab": {"model": {"N": 64, "M": 96, "heads": 4},
            "train": {"steps": 300, "batch_size": 8, "crop": (64, 128), "train_length": 768}},
    "paper": {"model": {"N": 192, "M": 320, "heads": 8, "max_text_length": 38,
                        "clip": "openai/clip-vit-base-patch32", "k_p": 3.5, "k_j": 0.0025, "beta": 40.0},
              "train": {"steps": 50 * 20_696, "batch_size": 4, "crop": None, "lr": 1e-4, "lr_final": 1e-5}},
}

#: TACO rate points (lowest rate first): λ of Eq. 6.  smoke/lab: the hyperprior's λ (equal-λ comparisons);
#: paper: λ ∈ {4, 8, 16, 40, 90, 150}·10⁻⁴ (Sec. 4.1).
TACO_RATE_POINTS = {
    "smoke": [{"lmbda": 0.0018}, {"lmbda": 0.018}],
    "lab": [{"lmbda": lm} for lm in (0.0002, 0.0004, 0.0008, 0.0016)],
    "paper": [{"lmbda": lm} for lm in (0.0004, 0.0008, 0.0016, 0.0040, 0.0090, 0.0150)],
}
