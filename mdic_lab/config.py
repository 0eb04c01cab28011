"""Configuration dataclasses of the image models and of training, and the named presets.

A config is the whole recipe of a run: the model is built from its config alone, the
trainer from a :class:`TrainConfig`, and both are written into every checkpoint and
results folder (nanoGPT style).  Presets are named configs, not code paths:

* ``"smoke"`` -- tiny widths, a handful of steps; for tests (seconds).
* ``"lab"``   -- CPU-sized models trained for a few minutes on the synthetic stereo world.
* ``"paper"`` -- the training recipe stated in the NDIC paper (Sec. 3: AMSGrad, lr 1e-4,
  batch 1, 500K iterations, 128×256 images) with the widths of Ballé et al. (2018) at low
  rates (N = 128, M = 192).  Only numbers the papers state are set; MDIC presets are added
  by the MDIC model when it exists.

Overrides are type-checked and unknown keys are refused:

>>> cfg = NDICConfig()
>>> replace_checked(cfg, {"alpha": 0.5}).alpha
0.5
>>> replace_checked(cfg, {"gamma": 1})
Traceback (most recent call last):
...
KeyError: "unknown NDICConfig field 'gamma' (expected one of: N, M, C_w, prior, alpha, beta)"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields

__all__ = [
    "HyperpriorConfig",
    "NDICConfig",
    "TrainConfig",
    "MODEL_CONFIGS",
    "PRESETS",
    "get_preset",
    "replace_checked",
    "config_to_dict",
    "config_from_dict",
    "config_hash",
]

PRIORS = ("factorized", "hyperprior")


@dataclass(frozen=True)
class HyperpriorConfig:
    """Ballé et al. (2018) scale hyperprior, single image (no side information)."""

    N: int = 64  # channels of the hidden layers of g_a, g_s, h_a, h_s and of the hyper-latent z
    M: int = 96  # channels of the latent y that is quantized and range-coded

    def __post_init__(self):
        _check_positive(self, ("N", "M"))


@dataclass(frozen=True)
class NDICConfig:
    """NDIC (Mital et al.): encoder on x only, decoder adds common information w = f(y)."""

    N: int = 64  # channels of the hidden layers of g_ax, g_sx, g_ay, g_sy and f
    M: int = 96  # channels of the transmitted latent v_x (and of the decoder-side latent v_y)
    C_w: int = 32  # channels of the common information w = f(y) (same 16x-downsampled grid as v_x)
    prior: str = "hyperprior"  # entropy model of v_x: "factorized" (ours+Ballé2017) or "hyperprior" (ours+Ballé2018)
    alpha: float = 1.0  # α of Eq. 4: weight of the side-view term (R_y + λ D_y)
    beta: float = 1.0  # β of Eq. 4: weight of the rate of the common information R_w

    def __post_init__(self):
        _check_positive(self, ("N", "M", "C_w"))
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r} (expected one of: {', '.join(PRIORS)})")
        for name in ("alpha", "beta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (rate–distortion Lagrangian, optimiser, data, logging)."""

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


#: Model name (as used by the CLI) -> its config class.
MODEL_CONFIGS = {"hyperprior": HyperpriorConfig, "ndic": NDICConfig}

#: preset name -> model name -> {"model": overrides, "train": overrides}.
PRESETS: dict[str, dict[str, dict[str, dict]]] = {
    "smoke": {
        m: {"model": {"N": 8, "M": 12, **({"C_w": 4} if m == "ndic" else {})},
            "train": {"steps": 4, "batch_size": 2, "crop": (64, 64), "train_length": 8,
                      "log_every": 2, "ckpt_every": 2}}
        for m in MODEL_CONFIGS
    },
    "lab": {
        m: {"model": {"N": 64, "M": 96, **({"C_w": 32} if m == "ndic" else {})},
            "train": {"steps": 300, "batch_size": 8, "crop": (64, 128), "train_length": 768}}
        for m in MODEL_CONFIGS
    },
    "paper": {
        m: {"model": {"N": 128, "M": 192, **({"alpha": 1.0, "beta": 1.0} if m == "ndic" else {})},
            "train": {"steps": 500_000, "batch_size": 1, "crop": None, "lr": 1e-4, "lr_final": 1e-4,
                      "amsgrad": True}}
        for m in MODEL_CONFIGS
    },
}


def _check_positive(cfg, names):
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{type(cfg).__name__}.{name} must be a positive int, got {v!r}")


def _coerce(cls, name, value, current):
    """Type-check one override against the field's current value."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{cls.__name__}.{name} expects a bool, got {value!r}")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{cls.__name__}.{name} expects an int, got {value!r}")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{cls.__name__}.{name} expects a float, got {value!r}")
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise TypeError(f"{cls.__name__}.{name} expects a str, got {value!r}")
        return value
    if isinstance(current, tuple):
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"{cls.__name__}.{name} expects a pair, got {value!r}")
        return tuple(value)
    return value


def replace_checked(cfg, overrides: dict | None):
    """Return a copy of ``cfg`` with ``overrides`` applied; unknown keys and wrong types raise."""
    if not overrides:
        return cfg
    cls = type(cfg)
    names = [f.name for f in fields(cls)]
    clean = {}
    for key, value in overrides.items():
        if key not in names:
            raise KeyError(f"unknown {cls.__name__} field {key!r} (expected one of: {', '.join(names)})")
        clean[key] = _coerce(cls, key, value, getattr(cfg, key))
    return dataclasses.replace(cfg, **clean)


def get_preset(model: str, preset: str, model_overrides: dict | None = None,
               train_overrides: dict | None = None):
    """``(model_config, train_config)`` of a named preset with optional overrides.

    >>> m, t = get_preset("ndic", "smoke")
    >>> (m.N, t.steps)
    (8, 4)
    >>> get_preset("ndic", "huge")
    Traceback (most recent call last):
    ...
    KeyError: "unknown preset 'huge' (expected one of: smoke, lab, paper)"
    """
    if model not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {model!r} (expected one of: {', '.join(MODEL_CONFIGS)})")
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r} (expected one of: {', '.join(PRESETS)})")
    spec = PRESETS[preset][model]
    mcfg = replace_checked(MODEL_CONFIGS[model](), spec["model"])
    tcfg = replace_checked(TrainConfig(), spec["train"])
    return replace_checked(mcfg, model_overrides), replace_checked(tcfg, train_overrides)


def config_to_dict(cfg) -> dict:
    """Plain-JSON dict of a config, with its class name under ``"_class"``."""
    d = {"_class": type(cfg).__name__}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        d[f.name] = list(v) if isinstance(v, tuple) else v
    return d


_CLASSES = {c.__name__: c for c in (HyperpriorConfig, NDICConfig, TrainConfig)}


def config_from_dict(d: dict):
    """Inverse of :func:`config_to_dict` (unknown class or fields raise)."""
    d = dict(d)
    name = d.pop("_class", None)
    if name not in _CLASSES:
        raise KeyError(f"unknown config class {name!r} (expected one of: {', '.join(_CLASSES)})")
    return replace_checked(_CLASSES[name](), d)


def config_hash(cfg) -> str:
    """Short stable hash (8 hex digits) of a config, used in bitstream model ids.

    >>> config_hash(NDICConfig()) == config_hash(NDICConfig())
    True
    """
    blob = json.dumps(config_to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]
