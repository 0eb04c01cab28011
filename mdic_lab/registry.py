"""The codec registry: one entry per codec, and the one way a run's configs are resolved.

An entry names everything the run stack, the CLI and the sweep need to know about a
codec: its model class, its config classes, its presets and rate points, its ablation
variants, its run hooks (how a training batch is built, the loss of a batch, how it codes
and decodes), what its decoder needs (the side image, a caption of it) and whether its
encoder reads a caption of the image it codes (TACO; that caption then travels in the
stream and is paid for in bits, while a decoder-side caption costs none).  A new codec
adds an entry here and a hooks class in :mod:`mdic_lab.runs.codecs`; nothing else
branches on a codec's name.

>>> sorted(CODECS)
['hyperprior', 'mdic', 'ndic', 'taco']
>>> [c.name for c in CODECS.values() if c.encoder_caption]
['taco']
>>> run = resolve("ndic", "tiny", rate_point=0)   # aliases work for every codec
>>> run.preset, run.model.N, run.train.lmbda
('smoke', 8, 0.0018)
>>> resolve("mdic", "smoke", variant="no_ts", overrides={"codebook_size": 32}).model.codebook_size
32
>>> resolve("ndic", "smoke", overrides={"gamma": 1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
mdic_lab.config.ConfigError: unknown field 'gamma' of NDICConfig or TrainConfig (expected one of: N, M, C_w, prior, alpha, beta...; lmbda, steps, batch_size, crop, image_size, train_length, lr, lr_final, weight_decay, amsgrad, clip_grad, seed, num_threads, log_every, ckpt_every, data_seed)
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType

from mdic_lab import config as _base
from mdic_lab.config import PRESET_ALIASES, ConfigError, config_to_dict
from mdic_lab.models.mdic import config as _mdic

__all__ = ["Codec", "RunConfig", "CODECS", "get_codec", "resolve", "codec_of_config", "import_object"]


def import_object(path: str):
    """``"package.module:Name"`` → the object (codecs import torch only when used)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class RunConfig:
    """What one run trains: a codec at a preset, rate point and variant, with any overrides applied."""

    codec: str  # registry name
    preset: str  # canonical preset name (aliases resolved)
    variant: str  # ablation variant ("full" for codecs without ablations)
    rate_point: int | None  # index into the codec's rate points of the preset, None = the preset as is
    model: object  # the model config (a CheckedConfig)
    train: object  # the training config (a CheckedConfig)
    overrides: dict = field(default_factory=dict)  # the overrides applied after preset, rate point and variant

    def to_dict(self) -> dict:
        """Plain JSON: the names plus both configs tagged with their class."""
        return {"codec": self.codec, "preset": self.preset, "variant": self.variant, "rate_point": self.rate_point,
                "overrides": dict(self.overrides), "model_config": config_to_dict(self.model),
                "train_config": config_to_dict(self.train)}

    def hash(self, extra: dict | None = None) -> str:
        """12 hex digits over the codec and both configs (plus ``extra``, e.g. the data and evaluation spec)."""
        d = {"codec": self.codec, "model_config": config_to_dict(self.model),
             "train_config": config_to_dict(self.train), **(extra or {})}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Codec:
    """One registry entry (see the module docstring)."""

    name: str
    summary: str  # one line, shown by ``mdic-lab codecs``
    model_class: str  # "module:Class" of the model
    config_class: type  # model config (a CheckedConfig)
    train_config_class: type  # training config (a CheckedConfig)
    presets: dict  # preset -> {"model": overrides, "train": overrides}
    rate_points: dict  # preset -> list of overrides (model or train fields), lowest rate first
    rate_knob: str  # what a rate point changes, in words
    hooks: str  # "module:Class" of its run hooks (mdic_lab.runs.codecs)
    needs_side: bool  # the decoder reads the side image I_y
    needs_caption: bool  # the decoder reads a caption of I_y
    decoder_steps: bool = False  # the decoder runs a chosen number of denoising steps
    encoder_caption: bool = False  # the encoder reads a caption of I_x (sent in the stream: it costs bits)
    variants: dict = field(default_factory=lambda: {"full": "the complete model"})  # name -> what it removes
    variant_field: str | None = None  # model-config field that holds the variant (None: only "full")

    def canonical_preset(self, preset: str) -> str:
        """``preset`` with aliases resolved; unknown names raise :class:`ConfigError`."""
        name = PRESET_ALIASES.get(preset, preset)
        if name not in self.presets:
            raise ConfigError(f"unknown preset {preset!r} of codec {self.name!r} (expected one of: "
                              f"{', '.join(self.presets)}; aliases: {', '.join(PRESET_ALIASES)})")
        return name

    def check_variant(self, variant: str) -> str:
        if variant not in self.variants:
            raise ConfigError(f"unknown variant {variant!r} of codec {self.name!r} "
                              f"(expected one of: {', '.join(self.variants)})")
        return variant

    def check_rate_point(self, preset: str, rate_point) -> int:
        points = self.rate_points[self.canonical_preset(preset)]
        if isinstance(rate_point, bool) or not isinstance(rate_point, int) or not 0 <= rate_point < len(points):
            raise ConfigError(f"unknown rate point {rate_point!r} of codec {self.name!r} at preset {preset!r} "
                              f"(expected one of: {', '.join(map(str, range(len(points))))}; {self.rate_knob})")
        return rate_point

    def split_overrides(self, overrides: dict | None) -> tuple[dict, dict]:
        """``(model overrides, train overrides)``; a key of neither config raises :class:`ConfigError`."""
        m_names, t_names = self.config_class.field_names(), self.train_config_class.field_names()
        model, train = {}, {}
        for key, value in (overrides or {}).items():
            if key in m_names:
                model[key] = value
            elif key in t_names:
                train[key] = value
            else:
                raise ConfigError(f"unknown field {key!r} of {self.config_class.__name__} or "
                                  f"{self.train_config_class.__name__} (expected one of: {', '.join(m_names)}; "
                                  f"{', '.join(t_names)})")
        return model, train

    def resolve(self, preset: str, *, variant: str | None = None, rate_point: int | None = None,
                overrides: dict | None = None) -> RunConfig:
        """Preset, then rate point, then variant, then ``overrides``: the run's two checked configs."""
        name = self.canonical_preset(preset)
        variant = self.check_variant("full" if variant is None else variant)
        spec = self.presets[name]
        m_over, t_over = dict(spec["model"]), dict(spec["train"])
        if rate_point is not None:
            m, t = self.split_overrides(self.rate_points[name][self.check_rate_point(name, rate_point)])
            m_over.update(m)
            t_over.update(t)
        if self.variant_field is not None:
            m_over[self.variant_field] = variant
        m, t = self.split_overrides(overrides)
        if self.variant_field is not None and self.variant_field in m:
            raise ConfigError(f"set the variant with variant=..., not as the override {self.variant_field!r}")
        model = self.config_class().replace(**m_over).replace(**m)
        train = self.train_config_class().replace(**t_over).replace(**t)
        return RunConfig(self.name, name, variant, rate_point, model, train, dict(overrides or {}))

    def load_hooks(self):
        """The run hooks (an instance of the class named by :attr:`hooks`)."""
        return import_object(self.hooks)(self)

    def load_model_class(self):
        return import_object(self.model_class)


def _frozen(d):
    return MappingProxyType(d)


CODECS = _frozen({
    "hyperprior": Codec(
        name="hyperprior", summary="Ballé et al. (2018) scale hyperprior, single image (no side information)",
        model_class="mdic_lab.models.baselines.hyperprior:ScaleHyperprior",
        config_class=_base.HyperpriorConfig, train_config_class=_base.TrainConfig,
        presets=_base.PRESETS["hyperprior"], rate_points=_base.RATE_POINTS["hyperprior"],
        rate_knob="a rate point is a λ of R + λ·255²·MSE",
        hooks="mdic_lab.runs.codecs:ImageCodecHooks", needs_side=False, needs_caption=False),
    "ndic": Codec(
        name="ndic", summary="NDIC (Mital et al.): learned DIC with common information w = f(y) at the decoder",
        model_class="mdic_lab.models.baselines.ndic:NDIC",
        config_class=_base.NDICConfig, train_config_class=_base.TrainConfig,
        presets=_base.PRESETS["ndic"], rate_points=_base.RATE_POINTS["ndic"],
        rate_knob="a rate point is a λ of Eq. 4",
        hooks="mdic_lab.runs.codecs:ImageCodecHooks", needs_side=True, needs_caption=False),
    "mdic": Codec(
        name="mdic", summary="MDIC: latent-diffusion decoder with textual and masked visual side information",
        model_class="mdic_lab.models.mdic.model:MDIC",
        config_class=_mdic.MDICConfig, train_config_class=_mdic.MDICTrainConfig,
        presets={p: {"model": dict(_mdic.PRESETS[p]), "train": _mdic.TRAIN_PRESETS[p].to_dict()}
                 for p in _mdic.PRESETS},
        rate_points=_mdic.RATE_POINTS, rate_knob="a rate point is a codebook size K (λ cannot move a VQ rate)",
        hooks="mdic_lab.runs.codecs:MDICHooks", needs_side=True, needs_caption=True, decoder_steps=True,
        variants=dict(_mdic.VARIANTS), variant_field="variant"),
    "taco": Codec(
        name="taco", summary="TACO (Lee et al. 2024): hyperprior whose encoder reads a caption of x (text adapter, "
                             "Eqs. 3-7); the caption is sent",
        model_class="mdic_lab.models.baselines.taco:TACO",
        config_class=_base.TACOConfig, train_config_class=_base.TrainConfig,
        presets=_base.TACO_PRESETS, rate_points=_base.TACO_RATE_POINTS,
        rate_knob="a rate point is a λ of Eq. 6 (R + λ·255²·MSE + k_p·LPIPS + k_j·L_j)",
        hooks="mdic_lab.runs.codecs:TACOHooks", needs_side=False, needs_caption=False, encoder_caption=True),
})


def get_codec(name: str) -> Codec:
    """The entry of ``name``; unknown names raise :class:`ConfigError` listing the registered codecs."""
    if name not in CODECS:
        raise ConfigError(f"unknown codec {name!r} (expected one of: {', '.join(CODECS)})")
    return CODECS[name]


def resolve(codec: str, preset: str, *, variant: str | None = None, rate_point: int | None = None,
            overrides: dict | None = None) -> RunConfig:
    """:meth:`Codec.resolve` of the entry ``codec``."""
    return get_codec(codec).resolve(preset, variant=variant, rate_point=rate_point, overrides=overrides)


def codec_of_config(model_config) -> Codec:
    """The entry whose model config class is ``type(model_config)``."""
    for c in CODECS.values():
        if type(model_config) is c.config_class:
            return c
    raise ConfigError(f"no registered codec has the model config {type(model_config).__name__}")
