"""Configuration of the MDIC model (one dataclass, presets, ablation variants).

Every field carries a comment; :class:`MDICConfig` is saved next to every checkpoint
(``to_dict`` / ``from_dict``) and overrides are type-checked, unknown keys refused
(``replace``).  The ablation switches of the paper's Tables 1–3 are one field,
``variant``; each variant removes exactly one thing (see :data:`VARIANTS`).

Presets (:data:`PRESETS`): ``smoke`` (tests/CI, seconds per step), ``lab`` (the embedded
default: synthetic world at 128×256 on a laptop CPU), ``paper`` (Stable Diffusion 2.1-base).
The old names ``tiny`` and ``laptop`` are aliases of ``smoke`` and ``lab``.

Rate points.  The transmitted symbols are discrete VQ indices, so the λ of Eq. 22 trains
the entropy model only: it cannot move the *encoder's* rate (no gradient flows from the
rate estimate through the argmin of the quantiser).  The rate of a model is set by its
token grid and codebook: at most ``N_tokens · log2 K`` bits per image.  The rate points
of the ablation sweep are therefore codebook sizes (:data:`RATE_POINTS`), as in PerCo.

>>> cfg = MDICConfig.preset("smoke")
>>> cfg.variant, cfg.latent_grid, cfg.token_grid
('full', (8, 16), (4, 8))
>>> MDICConfig.preset("tiny") == cfg
True
>>> MDICConfig.preset("lab").latent_grid, MDICConfig.preset("lab").token_grid
((16, 32), (16, 32))
>>> MDICConfig(variant="no_txt")
Traceback (most recent call last):
...
mdic_lab.config.ConfigError: unknown variant 'no_txt' (expected one of: full, no_text, no_ts, no_g1g2, no_g2, no_zd, no_zd_zxc)
"""

from __future__ import annotations

from dataclasses import dataclass

from mdic_lab.config import PRESET_ALIASES, CheckedConfig, ConfigError

__all__ = ["MDICConfig", "MDICTrainConfig", "VARIANTS", "PRESETS", "TRAIN_PRESETS", "PRESET_ALIASES", "RATE_POINTS",
           "SD21_BASE_HUB_ID", "G1_FUSIONS", "PROFILES", "PROFILE_CHOICES"]

#: The paper's backbone (Stable Diffusion 2.1-base: vae, unet, text_encoder, tokenizer, scheduler).
SD21_BASE_HUB_ID = "stabilityai/stable-diffusion-2-1-base"

#: Ablation variants and what each one removes (MDIC paper, Tables 1–2 and supplement Table 3).
VARIANTS = {
    "full": "the complete model",
    "no_text": "z_text removed from the diffusion condition (the UNet cross-attends to the "
               "empty-caption embedding, which does not depend on the caption); TS still uses text",
    "no_ts": "no text supervision of the mask generator: L_mask (Eq. 20) and its predictor dropped",
    "no_g1g2": "MG-SISM removed: ẑ_xc := ẑ_x (no G1 fusion with ẑ_y ⊙ m_v) and z_d := z_y (no G2 gate)",
    "no_g2": "G2 removed: z_d := z_y (Eq. 14 without the gated term); G1 kept",
    "no_zd": "z_d removed from the diffusion condition (UNet sees ẑ_xc and z_text only)",
    "no_zd_zxc": "both visual side-information conditions removed: the UNet sees the transmitted "
                 "ẑ_x in place of ẑ_xc (no side information fused) and no z_d",
}

#: How G1 (Eq. 13) fuses ẑ_y ⊙ m_v into ẑ_x: the paper's transformer, or OmniParallax attention
#: (ParaHydra Appendix B; mdic_lab.models.baselines.opam).
G1_FUSIONS = ("transformer", "opam")

#: The authors' published code departs from the paper in these choices (``../shared/notes/mdic-authors-code.md``;
#: docs/mdic_profiles.md).  Each is its own field, so a sweep can switch one at a time; a profile sets them all.
#: choice -> (fields it sets, what the authors' code does)
PROFILE_CHOICES = {
    "side_full_grid": (("hyper_downsample_y",),
                       "H_ay never downsamples: z_y, ẑ_y, m_v, G1's side tokens and z_d on the full latent grid"),
    "separate_codebooks": (("separate_codebooks",), "x and y have their own VQ codebooks"),
    "vq_variant": (("vq_variant",), "cosine similarity, EMA codebook, rotation-trick gradient, no commitment term"),
    "mask_regime": (("mask_training", "mask_threshold", "gumbel_tau", "gumbel_tau_decay", "gumbel_tau_final"),
                    "soft Gumbel-sigmoid in training, τ from 5.0 × 0.99 per epoch (floor 0.5); hard at "
                    "inference with θ = 0.9"),
    "mask_inference_noise": (("mask_inference_noise",), "Gumbel noise kept at inference (seeded by the decoder)"),
    "ts_predictor": (("ts_predictor",), "the noun predictor sees one globally pooled m_v ⊙ z_y vector"),
    "g1_residual": (("g1_residual",), "G1's output replaces ẑ_x (no residual)"),
    "guidance": (("caption_dropout", "guidance_scale"),
                 "10 % caption dropout in training, classifier-free guidance 3.0 at inference"),
    "prediction": (("prediction_type", "decoder_anchor"),
                   "v-prediction (no anchor: the anchored decoder predicts x_0)"),
    "sampler": (("sampler",), "DDPM ancestral sampling (10 steps)"),
    "conv_in_init": (("conv_in_init",), "a new input convolution for [z_t, z_d, ẑ_xc], Kaiming-initialised"),
}

#: Profiles: field values applied on top of a preset (``MDICConfig.preset(name, profile=...)``,
#: ``cfg.replace(profile=...)``, the registry's ``overrides={"profile": ...}``), before any other override.
#: ``paper`` changes nothing (the preset as it is); ``authors`` sets every choice of :data:`PROFILE_CHOICES`.
PROFILES = {
    "paper": {},
    "authors": {"hyper_downsample_y": 1, "separate_codebooks": True, "vq_variant": "authors",
                "mask_training": "soft", "mask_threshold": 0.9, "gumbel_tau": 5.0, "gumbel_tau_decay": 0.99,
                "gumbel_tau_final": 0.5, "mask_inference_noise": True, "ts_predictor": "pooled",
                "g1_residual": False, "caption_dropout": 0.1, "guidance_scale": 3.0,
                "prediction_type": "v_prediction", "decoder_anchor": False, "sampler": "ddpm",
                "conv_in_init": "fresh"},
}
assert {f for fs, _ in PROFILE_CHOICES.values() for f in fs} == set(PROFILES["authors"])

VQ_VARIANTS = ("paper", "authors")
TS_PREDICTORS = ("spatial", "pooled")
SAMPLERS = ("ddim", "ddpm")
CONV_IN_INITS = ("copy", "fresh")


@dataclass
class MDICConfig(CheckedConfig):
    """All hyper-parameters of MDIC (paper Sec. 3 and 4.1); the presets override a few defaults."""

    # ---- ablation ----------------------------------------------------------------
    variant: str = "full"  # one of VARIANTS; each removes exactly one part of the model
    profile: str = "paper"  # one of PROFILES: whose choices the config started from ("paper": the preset as
    # is; "authors": the published code's, PROFILE_CHOICES); set through replace / preset / the registry

    # ---- backbone (frozen VAE + text encoder, trainable UNet) ----------------------
    pretrained: str | None = None  # local dir or hub id of an SD-2.1-base layout; None → tiny random backbone
    image_size: tuple = (128, 256)  # (H, W) of I_x and I_y; paper: 370×740 crops resized to 128×256
    vae_block_out_channels: tuple = (32, 64, 64)  # tiny VAE widths; n blocks → latent downsampling 2**(n-1)
    vae_layers_per_block: int = 1  # ResNet layers per VAE block (tiny backbone only)
    vae_latent_channels: int = 4  # channels of z_L (SD: 4)
    vae_norm_num_groups: int = 8  # GroupNorm groups of the tiny VAE
    unet_block_out_channels: tuple = (32, 64)  # tiny UNet widths (first block cross-attention)
    unet_layers_per_block: int = 1  # ResNet layers per UNet block (tiny backbone only)
    unet_cross_attention_level: int = 0  # UNet resolution level with the text cross-attention block
    # (0 = full latent resolution; the mid block always cross-attends)
    unet_attention_head_dim: int = 8  # attention head dim of the tiny UNet
    unet_norm_num_groups: int = 8  # GroupNorm groups of the tiny UNet
    text_hidden_size: int = 64  # tiny CLIP text model width = UNet cross_attention_dim
    text_num_layers: int = 2  # tiny CLIP text model depth
    text_num_heads: int = 4  # tiny CLIP text model heads
    text_intermediate_size: int = 128  # tiny CLIP text model MLP width
    max_text_length: int = 77  # caption tokens incl. <|startoftext|>/<|endoftext|> (CLIP: 77)
    num_train_timesteps: int = 1000  # T of the diffusion (Eqs. 15–17)
    train_unet: bool = True  # fine-tune all of ε_θ; False freezes it except conv_in (where the visual conditions enter)

    # ---- HyperAlign H_ax, H_ay (Eqs. 1–2) ------------------------------------------
    hyper_downsample: int = 4  # spatial factor latent grid → token grid (power of two)
    hyper_channels: int = 64  # width of the conv / linear-attention stack
    hyper_attn_heads: int = 4  # heads of the linear attention
    z_channels: int = 8  # channels of z_x, z_y (= VQ code dimension)
    hyper_downsample_y: int | None = None  # H_ay's factor; None = hyper_downsample (the paper: "same as H_ax");
    # 1 = the authors' code (z_y, ẑ_y, m_v, z_d on the full latent grid); must divide hyper_downsample

    # ---- VQ (Eq. 21) ---------------------------------------------------------------
    codebook_size: int = 256  # K codewords: at most log2 K bits per token
    vq_commitment_weight: float = 1.0  # weight of ||sg(ẑ_x) − z_x||² (Eq. 21 uses 1; vq_variant "paper" only)
    vq_variant: str = "paper"  # "paper": nearest codeword, straight-through, Eq. 21 in the loss; "authors":
    # cosine similarity, EMA codebook, rotation-trick gradient, no commitment term (vq.py)
    vq_ema_decay: float = 0.8  # EMA decay of the "authors" codebook (their library default)
    separate_codebooks: bool = False  # False: one codebook quantises z_x and z_y (the paper's "VQ" in Eqs. 1-2);
    # True: y has its own (the authors' code)

    # ---- autoregressive entropy model (bpp_x, Eq. 22) ------------------------------
    em_d_model: int = 64  # transformer width
    em_layers: int = 2  # causal transformer blocks
    em_heads: int = 4  # attention heads

    # ---- VMGM-TS (Eqs. 4–12, 20) ---------------------------------------------------
    mask_hidden: int = 32  # width of the 3-layer conv mask generator (Eq. 5)
    gumbel_tau: float = 1.0  # temperature τ of the Gumbel-sigmoid (Eq. 7); not stated in the paper; with
    # gumbel_tau_decay < 1 the τ of step 0 (authors: 5.0)
    gumbel_tau_decay: float = 1.0  # τ's factor per epoch (1 = constant τ; authors: 0.99); the run's steps stand
    # for gumbel_tau_epochs epochs: τ(s) = max(τ_final, τ·decay^(epochs·s/steps)) (vmgm_ts.gumbel_tau_at)
    gumbel_tau_final: float = 0.0  # floor of the annealed τ (authors: 0.5)
    gumbel_tau_epochs: int = 200  # epochs the whole run stands for in the τ schedule (paper Sec. 4.1: 200)
    mask_threshold: float = 0.2  # hard threshold θ (Eq. 8; paper Sec. 4.1 / Fig. 16)
    mask_training: str = "hard"  # "hard": Eq. 8 straight-through in training too (the paper); "soft": the soft
    # Gumbel-sigmoid m in training, Eq. 8 at inference only (the authors' code)
    mask_sparsity: float = 0.0  # λ_s of a keep-rate prior λ_s·mean(m) added to Eq. 23 (not in the paper: 0);
    # without it nothing in Eqs. 19–23 rewards dropping a side-view token (docs/ablations.md)
    mask_gates_zd: bool = False  # z_d ⊙ m_v: the mask also gates z_d (not in the paper, whose Eq. 14 passes z_y
    # to the UNet ungated, so that dropping a token costs the decoder nothing; docs/ablations.md)
    mask_inference_noise: bool = False  # Gumbel noise (Eq. 6) also at inference, drawn from the decoder's seed
    # (the authors' code); False: the mask is the deterministic σ(logits/τ) > θ
    num_nouns: int = 14  # N most frequent object nouns = classes of the masked-noun predictor
    ts_d_model: int = 64  # width of P_token / P_MSA
    ts_layers: int = 2  # self-attention layers of P_MSA (Eq. 12)
    ts_heads: int = 4  # heads of P_MSA
    ts_predictor: str = "spatial"  # "spatial": P_MSA attends to the k visual tokens of Eq. 11; "pooled": to ONE
    # globally pooled m_v ⊙ z_y token (the authors' code)
    mask_token_text: str = "*"  # CLIP-vocabulary word standing in for a masked noun (see vmgm_ts.py)
    mask_marker: str = "[MASK]"  # marks a masked noun in masked captions (= mdic_lab.data.vocabulary.MASK_TOKEN)

    # ---- MG-SISM (Eqs. 13–14) ------------------------------------------------------
    g1_fusion: str = "transformer"  # G1's fusion, one of G1_FUSIONS: "transformer" (the paper) or "opam"
    # (OmniParallax attention: ẑ_xc = ẑ_x + OPAMFusion(ẑ_x, ẑ_y ⊙ m_v); uses g1_d_model, not g1_layers/heads)
    g1_d_model: int = 64  # width of the G1 transformer blocks (opam: width of the attention)
    g1_layers: int = 2  # G1 transformer blocks
    g1_heads: int = 4  # G1 heads
    g1_residual: bool = True  # ẑ_xc = ẑ_x + G1(...) (ours); False: G1's output replaces ẑ_x (the authors' code)
    g2_hidden: int = 32  # width of the G2 conv gate and of F_m

    # ---- decoder (Eqs. 15–19) ------------------------------------------------------
    num_inference_steps: int = 10  # denoising steps (paper default 10, supplement Fig. 13)
    sampler: str = "ddim"  # "ddim" (deterministic, η = 0) or "ddpm" (ancestral, noise from the decoder's seed;
    # the authors' validation)
    caption_dropout: float = 0.0  # training probability that z_text is the empty caption's (authors: 0.1)
    guidance_scale: float = 1.0  # classifier-free guidance at inference, ε_c + (s − 1)(ε_c − ε_∅)
    # (authors: 3.0; 1 = the unguided decoder; ≠ 1 needs caption_dropout > 0)
    conv_in_init: str = "copy"  # UNet input conv for [z_t, visual]: "copy" the backbone's filters, zero the new
    # condition channels (ours); "fresh": a new Kaiming-initialised convolution (the authors' code)
    prediction_type: str | None = None  # what ε_θ predicts: None = the backbone scheduler's (SD 2.1-base:
    # "epsilon"), "v_prediction", or "sample" (x_0, what the anchored decoder predicts)
    condition_upsample: str = "nearest"  # token grid → latent grid: "nearest" or "bilinear"
    decoder_anchor: bool = False  # anchored denoiser x̂_0 = A(visual) + UNet(...) (needs prediction_type
    # "sample"; decoder.py); off = the plain channel-concatenation decoder of the paper
    anchor_hidden: int = 64  # width of the anchor head A (two 3×3 convolutions)
    train_timesteps: str = "uniform"  # "uniform": t ~ U{0..T−1} (Eq. 19); "inference": t from the
    # num_inference_steps DDIM time steps the decoder visits

    # ---- losses (Eqs. 22–23) -------------------------------------------------------
    lambda_rate: float = 0.1  # λ of Eq. 22 (paper: {0.1, 10})
    lambda_mask: float = 0.1  # λ_mask of Eq. 23 (paper: 0.1)

    # ------------------------------------------------------------------ validation
    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r} (expected one of: {', '.join(VARIANTS)})")
        if self.g1_fusion not in G1_FUSIONS:
            raise ConfigError(f"unknown g1_fusion {self.g1_fusion!r} (expected one of: {', '.join(G1_FUSIONS)})")
        for name, accepted in (("profile", tuple(PROFILES)), ("vq_variant", VQ_VARIANTS),
                               ("ts_predictor", TS_PREDICTORS), ("sampler", SAMPLERS),
                               ("conv_in_init", CONV_IN_INITS)):
            if getattr(self, name) not in accepted:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r} (expected one of: {', '.join(accepted)})")
        self._check_profile_choices()
        self.image_size = tuple(int(v) for v in self.image_size)
        for name in ("vae_block_out_channels", "unet_block_out_channels"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"image_size must be (H, W) of positive ints, got {self.image_size}")
        positive = [
            "vae_layers_per_block", "vae_latent_channels", "vae_norm_num_groups", "unet_layers_per_block",
            "unet_attention_head_dim", "unet_norm_num_groups", "text_hidden_size", "text_num_layers",
            "text_num_heads", "text_intermediate_size", "max_text_length", "num_train_timesteps",
            "hyper_downsample", "hyper_channels", "hyper_attn_heads", "z_channels", "codebook_size",
            "em_d_model", "em_layers", "em_heads", "mask_hidden", "num_nouns", "ts_d_model", "ts_layers",
            "ts_heads", "g1_d_model", "g1_layers", "g1_heads", "g2_hidden", "num_inference_steps",
            "anchor_hidden", "gumbel_tau_epochs",
        ]
        for name in positive:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(self.unet_cross_attention_level, int) or not \
                0 <= self.unet_cross_attention_level < len(self.unet_block_out_channels):
            raise ValueError(f"unet_cross_attention_level must lie in [0, {len(self.unet_block_out_channels) - 1}], "
                             f"got {self.unet_cross_attention_level!r}")
        if self.hyper_downsample & (self.hyper_downsample - 1):
            raise ValueError(f"hyper_downsample must be a power of two, got {self.hyper_downsample}")
        sy = self.hyper_downsample_y
        if sy is not None and (isinstance(sy, bool) or not isinstance(sy, int) or sy < 1 or sy & (sy - 1)
                               or self.hyper_downsample % sy):
            raise ValueError(f"hyper_downsample_y must be None or a power of two dividing hyper_downsample="
                             f"{self.hyper_downsample}, got {sy!r}")
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}")
        if not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"mask_threshold θ must lie in (0, 1), got {self.mask_threshold}")
        for name in ("gumbel_tau",):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("mask_gates_zd", "mask_inference_noise", "separate_codebooks", "g1_residual"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.mask_training not in ("hard", "soft"):
            raise ConfigError(f"unknown mask_training {self.mask_training!r} (expected one of: hard, soft)")
        for name in ("lambda_rate", "lambda_mask", "vq_commitment_weight", "mask_sparsity", "guidance_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.gumbel_tau_decay <= 1.0:
            raise ValueError(f"gumbel_tau_decay must lie in (0, 1] (1 = constant τ), got {self.gumbel_tau_decay}")
        if not 0.0 <= self.gumbel_tau_final <= self.gumbel_tau:
            raise ValueError(f"gumbel_tau_final (the floor of the annealed τ) must lie in [0, gumbel_tau="
                             f"{self.gumbel_tau}], got {self.gumbel_tau_final}")
        if not 0.0 <= self.vq_ema_decay < 1.0:
            raise ValueError(f"vq_ema_decay must lie in [0, 1), got {self.vq_ema_decay}")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError(f"caption_dropout must lie in [0, 1), got {self.caption_dropout}")
        if self.guidance_scale != 1.0 and self.caption_dropout == 0.0:
            raise ConfigError(f"guidance_scale={self.guidance_scale} needs caption_dropout > 0: classifier-free "
                              "guidance extrapolates from the empty-caption branch, which a model trained without "
                              "caption dropout never learnt (set caption_dropout, e.g. 0.1, or guidance_scale=1)")
        if self.g1_fusion == "opam" and self.side_downsample != self.hyper_downsample:
            raise ConfigError(f"g1_fusion='opam' aligns two maps of one grid: it cannot take hyper_downsample_y="
                              f"{self.hyper_downsample_y} with hyper_downsample={self.hyper_downsample} (use the "
                              "transformer G1, or hyper_downsample_y=None)")
        if self.prediction_type not in (None, "epsilon", "v_prediction", "sample"):
            raise ValueError(f"unknown prediction_type {self.prediction_type!r} "
                             "(expected one of: None, epsilon, v_prediction, sample)")
        if self.train_timesteps not in ("uniform", "inference"):
            raise ValueError(f"unknown train_timesteps {self.train_timesteps!r} (expected one of: uniform, inference)")
        if not isinstance(self.decoder_anchor, bool):
            raise TypeError(f"decoder_anchor must be a bool, got {self.decoder_anchor!r}")
        if self.decoder_anchor and self.prediction_type != "sample":
            raise ValueError("decoder_anchor=True makes the denoiser predict x_0 = anchor + correction: it needs "
                             f"prediction_type='sample', got {self.prediction_type!r}")
        if self.condition_upsample not in ("nearest", "bilinear"):
            raise ValueError(
                f"unknown condition_upsample {self.condition_upsample!r} (expected one of: nearest, bilinear)"
            )
        for name, d, h in (("em", self.em_d_model, self.em_heads), ("ts", self.ts_d_model, self.ts_heads),
                           ("g1", self.g1_d_model, self.g1_heads), ("hyper", self.hyper_channels, self.hyper_attn_heads)):
            if d % h:
                raise ValueError(f"{name} width {d} must be divisible by its number of heads {h}")
        if self.pretrained is None:
            f = self.vae_downsample * self.hyper_downsample  # the y grid's factor divides it
            if self.image_size[0] % f or self.image_size[1] % f:
                raise ValueError(
                    f"image_size {self.image_size} must be divisible by the total downsampling {f} "
                    f"(VAE {self.vae_downsample} × HyperAlign {self.hyper_downsample})"
                )

    #: fields added after models were trained: recorded only when they differ from these values,
    #: so models that do not use them keep their config hashes, model ids and run folders
    _RECORDED_IF_NOT = {"g1_fusion": G1_FUSIONS[0], "mask_training": "hard", "mask_sparsity": 0.0,
                        "mask_gates_zd": False, "profile": "paper", "hyper_downsample_y": None,
                        "separate_codebooks": False, "vq_variant": "paper", "vq_ema_decay": 0.8,
                        "gumbel_tau_decay": 1.0, "gumbel_tau_final": 0.0, "gumbel_tau_epochs": 200,
                        "mask_inference_noise": False, "ts_predictor": "spatial", "g1_residual": True,
                        "sampler": "ddim", "caption_dropout": 0.0, "guidance_scale": 1.0, "conv_in_init": "copy"}

    def to_dict(self) -> dict:
        """The fields; those of :attr:`_RECORDED_IF_NOT` only when they differ from the value there.

        A config of another profile than ``paper`` records every field: :meth:`from_dict` applies
        the profile first, so a choice set back to the paper's value must be written down.
        """
        d = super().to_dict()
        if self.profile != "paper":
            return d
        for name, value in self._RECORDED_IF_NOT.items():
            if d[name] == value:
                del d[name]
        return d

    def replace(self, **overrides) -> "MDICConfig":
        """A checked copy; ``profile=name`` first applies :data:`PROFILES` ``[name]``, then the other overrides.

        So ``cfg.replace(profile="authors", g1_residual=True)`` is the authors' profile with
        the paper's G1 residual.  Going back from another profile to ``paper`` is refused:
        the preset's own values of the choices are not known here (start from the preset).
        """
        name = overrides.get("profile", self.profile)
        if "profile" not in overrides or name == self.profile:
            return super().replace(**overrides)
        if name not in PROFILES:
            raise ConfigError(f"unknown profile {name!r} (expected one of: {', '.join(PROFILES)})")
        if self.profile != "paper":
            raise ConfigError(f"cannot switch a {self.profile!r} config to profile {name!r}: the preset's values "
                              "of the choices are lost; build it again with MDICConfig.preset(name, "
                              f"profile={name!r}) or the registry's resolve")
        return super().replace(**{**PROFILES[name], **overrides})

    def _check_profile_choices(self) -> None:
        """Refuse ``profile="authors"`` on a config where no choice was applied (built directly, not via replace)."""
        if self.profile == "paper":
            return
        own = [f for f, v in PROFILES[self.profile].items()  # choices no preset sets, where the profile differs
               if v != getattr(type(self), f) and not any(f in p for p in PRESETS.values())]
        if all(getattr(self, f) == getattr(type(self), f) for f in own):
            raise ConfigError(f"profile={self.profile!r} is applied by MDICConfig.preset(name, profile=...), "
                              f"cfg.replace(profile=...) or the registry's overrides; MDICConfig(profile="
                              f"{self.profile!r}) alone would label the paper's choices as the {self.profile}' ones")

    # ------------------------------------------------------------------ switches
    @property
    def use_text_condition(self) -> bool:
        """z_text enters the UNet cross-attention (False only for ``no_text``)."""
        return self.variant != "no_text"

    @property
    def use_text_supervision(self) -> bool:
        """The masked-noun task trains the mask generator (False only for ``no_ts``)."""
        return self.variant != "no_ts"

    @property
    def use_g1(self) -> bool:
        """G1 fuses ẑ_x with ẑ_y ⊙ m_v (Eq. 13)."""
        return self.variant not in ("no_g1g2", "no_zd_zxc")

    @property
    def use_g2(self) -> bool:
        """G2 gates z_y (Eq. 14)."""
        return self.variant not in ("no_g1g2", "no_g2", "no_zd", "no_zd_zxc")

    @property
    def use_zd(self) -> bool:
        """z_d is a channel of the UNet condition."""
        return self.variant not in ("no_zd", "no_zd_zxc")

    # ------------------------------------------------------------------ derived sizes
    @property
    def vae_downsample(self) -> int:
        """Spatial factor of the VAE; with ``pretrained`` this assumes SD's 8 (MDIC uses the loaded VAE's own factor)."""
        return 2 ** (len(self.vae_block_out_channels) - 1) if self.pretrained is None else 8

    @property
    def latent_grid(self) -> tuple:
        """(h, w) of z_L, the diffusion latent."""
        f = self.vae_downsample
        return (self.image_size[0] // f, self.image_size[1] // f)

    @property
    def token_grid(self) -> tuple:
        """(h, w) of z_x / ẑ_x, the grid of transmitted VQ indices."""
        h, w = self.latent_grid
        return (h // self.hyper_downsample, w // self.hyper_downsample)

    @property
    def side_downsample(self) -> int:
        """H_ay's factor: ``hyper_downsample_y``, or H_ax's when it is None (the paper)."""
        return self.hyper_downsample if self.hyper_downsample_y is None else self.hyper_downsample_y

    @property
    def side_grid(self) -> tuple:
        """(h, w) of z_y, ẑ_y, m_v and z_d (the token grid unless ``hyper_downsample_y`` differs)."""
        h, w = self.latent_grid
        return (h // self.side_downsample, w // self.side_downsample)

    @property
    def num_tokens(self) -> int:
        """Number of VQ indices per image (the length of the autoregressive sequence)."""
        h, w = self.token_grid
        return h * w

    @property
    def condition_channels(self) -> int:
        """Extra UNet input channels: ẑ_xc (or ẑ_x) always, z_d unless removed."""
        return self.z_channels * (2 if self.use_zd else 1)

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **overrides) -> "MDICConfig":
        """Named configuration: ``smoke`` (tests), ``lab`` (128×256 CPU), ``paper`` (SD 2.1-base).

        ``tiny`` and ``laptop`` are accepted as aliases of ``smoke`` and ``lab``; ``profile="authors"``
        among the overrides applies :data:`PROFILES` (see :meth:`replace`).

        >>> a = MDICConfig.preset("lab", profile="authors")
        >>> a.prediction_type, a.decoder_anchor, a.g1_residual, a.sampler
        ('v_prediction', False, False, 'ddpm')
        >>> MDICConfig.preset("lab", profile="authors", g1_residual=True).g1_residual
        True
        """
        name = PRESET_ALIASES.get(name, name)
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r} (expected one of: {', '.join(PRESETS)})")
        return cls(**PRESETS[name]).replace(**overrides)

    @classmethod
    def rate_point(cls, preset: str, point: int, **overrides) -> "MDICConfig":
        """The preset at rate point ``point`` (0 = lowest rate) of :data:`RATE_POINTS`.

        >>> [MDICConfig.rate_point("lab", k).codebook_size for k in range(3)]
        [2, 4, 8]
        """
        name = PRESET_ALIASES.get(preset, preset)
        points = RATE_POINTS.get(name)
        if points is None:
            raise ConfigError(f"unknown preset {preset!r} (expected one of: {', '.join(RATE_POINTS)})")
        if isinstance(point, bool) or not isinstance(point, int) or not 0 <= point < len(points):
            raise ConfigError(f"rate point {point!r} out of range (expected 0..{len(points) - 1} for preset {name!r})")
        return cls.preset(name, **{**points[point], **overrides})


PRESETS = {
    # tests/CI, seconds per step on a CPU: 32×64 images, 8×16 latent, 4×8 = 32 tokens
    "smoke": dict(image_size=(32, 64), vae_block_out_channels=(16, 32, 32), unet_block_out_channels=(32, 32),
                  text_hidden_size=32, text_intermediate_size=64, text_num_heads=2,
                  hyper_downsample=2, hyper_channels=32, z_channels=4, codebook_size=64, em_d_model=32,
                  ts_d_model=32, g1_d_model=32, g1_layers=1, ts_layers=1, em_layers=1, mask_hidden=16,
                  g2_hidden=16, num_inference_steps=4),
    # the embedded default: the paper's 128×256 on a laptop CPU.  VAE ×8 like SD → 16×32 latent with 8
    # channels; HyperAlign ×1 → 512 tokens at the latent's resolution; K = 4 → at most 0.031 bpp of
    # payload; anchored x_0-prediction decoder (decoder.py).  Why these: docs/mdic_lab_presets.md
    # The UNet attends at its 8×16 level (not 16×32) and G1 has one block: 0.59× the step time, so that
    # the ablation's 42 cells fit a laptop (docs/mdic_lab_presets.md, "Cost").
    "lab": dict(vae_block_out_channels=(16, 32, 64, 64), vae_latent_channels=8, hyper_downsample=1,
                unet_block_out_channels=(32, 64), unet_cross_attention_level=1, g1_layers=1, codebook_size=4,
                prediction_type="sample", decoder_anchor=True),
    # the paper: SD 2.1-base backbone (16×32 latent), 8×16 = 128 tokens, 10 DDIM steps
    "paper": dict(pretrained=SD21_BASE_HUB_ID, hyper_downsample=2, hyper_channels=128, z_channels=8,
                  codebook_size=256, em_d_model=256, em_layers=4, em_heads=8, ts_d_model=256, ts_heads=8,
                  g1_d_model=256, g1_heads=8, mask_hidden=64, g2_hidden=64),
}

#: Rate points per preset (lowest rate first).  λ cannot move the encoder's rate of discrete VQ
#: indices (see the module docstring), so a rate point is a codebook size K: the payload is at
#: most N_tokens · log2 K bits (lab: 512 tokens × {1, 2, 3} bits = {0.016, 0.031, 0.047} bpp).
RATE_POINTS = {
    "smoke": [dict(codebook_size=16), dict(codebook_size=64)],
    "lab": [dict(codebook_size=2), dict(codebook_size=4), dict(codebook_size=8)],
    "paper": [dict(codebook_size=64, lambda_rate=10.0), dict(codebook_size=256, lambda_rate=0.1),
              dict(codebook_size=1024, lambda_rate=0.1)],
}


@dataclass(frozen=True)
class MDICTrainConfig(CheckedConfig):
    """How MDIC is trained (defaults: the ``lab`` preset)."""

    steps: int = 150  # optimiser steps in total (the lr schedule is defined over these)
    batch_size: int = 8  # GLOBAL batch, split over processes (paper: 8 on 4 GPUs)
    lr: float = 3e-3  # peak AdamW learning rate (paper: 8e-5; small models trained from scratch take more)
    warmup_steps: int = 10  # linear warm-up length (paper: 10 000 iterations)
    weight_decay: float = 0.0  # AdamW decoupled weight decay (paper: not stated)
    clip_grad: float = 1.0  # max global gradient norm (0 disables)
    seed: int = 0  # weights, batch order, training noise
    data_seed: int = 0  # seed of the synthetic world
    train_length: int = 128  # synthetic training pairs (lab: held in memory with cached latents)
    cache_latents: bool = True  # precompute the frozen VAE's latents of the training set once
    ckpt_every: int = 100  # steps between two atomic checkpoints (one is always written at the end)
    log_every: int = 10  # steps between two CSV rows
    num_threads: int = 1  # torch CPU threads per process (the lab machine is shared)
    cpu: bool = True  # force CPU (Accelerator(cpu=True)); False uses the accelerator's devices

    def __post_init__(self):
        for name in ("steps", "batch_size", "train_length", "ckpt_every", "log_every", "num_threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"MDICTrainConfig.{name} must be a positive int, got {v!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"MDICTrainConfig.warmup_steps must be a non-negative int, got {self.warmup_steps!r}")
        if not self.lr > 0:
            raise ValueError(f"MDICTrainConfig.lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0 or not self.clip_grad >= 0:
            raise ValueError("MDICTrainConfig.weight_decay and clip_grad must be >= 0")

    @classmethod
    def preset(cls, name: str, **overrides) -> "MDICTrainConfig":
        """``smoke`` / ``lab`` / ``paper`` (``tiny``/``laptop`` are aliases)."""
        name = PRESET_ALIASES.get(name, name)
        if name not in TRAIN_PRESETS:
            raise ConfigError(f"unknown preset {name!r} (expected one of: {', '.join(TRAIN_PRESETS)})")
        return TRAIN_PRESETS[name].replace(**overrides)


#: Training per preset.  ``paper``: batch 8, AdamW, 8e-5 after 10 000 warm-up iterations
#: (Sec. 4.1); ~200 epochs of KITTI Stereo's ~1.6k pairs at batch 8 ≈ 40 000 steps.
TRAIN_PRESETS = {
    "smoke": MDICTrainConfig(steps=6, batch_size=2, lr=1e-3, warmup_steps=2, train_length=8, ckpt_every=2,
                             log_every=1),
    "lab": MDICTrainConfig(batch_size=4, num_threads=2),  # ≈ 95 s of one CPU core (docs/mdic_lab_presets.md)
    "paper": MDICTrainConfig(steps=40_000, batch_size=8, lr=8e-5, warmup_steps=10_000, train_length=1_576,
                             cache_latents=False, ckpt_every=1_000, log_every=50, num_threads=8, cpu=False),
}
