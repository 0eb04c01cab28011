"""MDIC: distributed image compression with multimodal side information (the assembly).

Data flow (paper Fig. 4; ``DESIGN.md``)::

    encoder   I_x ─E_vae─► z_Lx ─H_ax─► z_x ─VQ─► indices ─AR entropy model + range coder─► bits
    decoder   bits ─► indices ─► ẑ_x
              I_y ─E_vae─► z_Ly ─H_ay─► z_y ─VQ─► ẑ_y ;  caption(I_y) ─E_clip─► z_text
              (ẑ_x, ẑ_y) ─mask generator─► m_v
              ẑ_xc = G1(ẑ_x, ẑ_y ⊙ m_v) ;  z_d = z_y + G2(z_y) ⊙ F_m(m_v)
              DDIM(ε_θ | z_d, ẑ_xc, z_text) ─► ẑ_0 ─D_vae─► Î_x

Training loss (Eqs. 19–23): ``L = L_VQ + λ_mask L_mask + λ · R + L_diff`` with the
ESTIMATED rate ``R = Σ −log2 p(k_i | k_<i) / (H·W)`` (bits per pixel of I_x).  The VQ
indices are discrete, so the rate term trains the entropy model only (as in PerCo); the
encoder's rate is bounded by the grid size and codebook size (``log2 K`` bits per token).

Images enter and leave in ``[0, 1]``, shape ``(B, 3, H, W)``.

The choices where the authors' published code departs from the paper are config fields
(``MDICConfig.profile`` and :data:`~.config.PROFILE_CHOICES`; docs/mdic_profiles.md): the side
grid (``hyper_downsample_y``), the quantisers (``separate_codebooks``, ``vq_variant``), the mask
regime and its τ schedule (:meth:`MDIC.set_training_progress`), noise in the decoder's mask,
the noun predictor, G1's residual, caption dropout with classifier-free guidance, the sampler,
the prediction target and the UNet's input convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mdic_lab.coding.bpp import bpp_from_bytes
from mdic_lab.coding.container import model_fingerprint, pack, unpack
from mdic_lab.coding.errors import BitstreamError

from .backbone import Backbone, freeze
from .conditioning import build_condition
from .config import MDICConfig
from .decoder import AnchorHead, diffusion_loss, inference_timesteps, sample_latent, upsample_condition, widen_conv_in
from .entropy_model import AREntropyModel
from .hyperalign import HyperAlign
from .mgsism import G2Gate, build_g1
from .vmgm_ts import MaskGenerator, TextSupervision, gumbel_noise, tokenize_masked_captions
from .vq import build_quantizer

__all__ = ["MDIC"]


class MDIC(nn.Module):
    """The MDIC codec; built from an :class:`MDICConfig` (and optionally a ready backbone).

    Parameters
    ----------
    config : MDICConfig
    backbone : Backbone, optional
        Default: ``Backbone.from_pretrained(config.pretrained)`` if set, else
        ``Backbone.from_config(config)`` (tiny, random).
    vocabulary : mdic_lab.data.vocabulary.Vocabulary, optional
        The N object nouns of the text supervision; with it, :meth:`forward` builds the
        masked captions from ``batch["caption"]`` itself (``Vocabulary.mask_caption``).
    """

    model_name = "mdic"

    def __init__(self, config: MDICConfig, backbone: Backbone | None = None, vocabulary=None):
        super().__init__()
        if not isinstance(config, MDICConfig):
            raise TypeError(f"config must be an MDICConfig, got {type(config).__name__}")
        if vocabulary is not None:
            if len(vocabulary) > config.num_nouns:
                raise ValueError(f"vocabulary has {len(vocabulary)} nouns but config.num_nouns = {config.num_nouns}")
            if vocabulary.mask_token != config.mask_marker:
                raise ValueError(f"vocabulary mask token {vocabulary.mask_token!r} differs from "
                                 f"config.mask_marker {config.mask_marker!r}")
        self.config = config
        self.vocabulary = vocabulary
        if backbone is None:
            backbone = (Backbone.from_pretrained(config.pretrained, max_text_length=config.max_text_length)
                        if config.pretrained else Backbone.from_config(config))
        self.backbone = backbone
        c_lat = backbone.vae.config.latent_channels
        f = backbone.vae_downsample
        h, w = config.image_size
        if h % (f * config.hyper_downsample) or w % (f * config.hyper_downsample):
            raise ValueError(f"image_size {config.image_size} must be divisible by {f * config.hyper_downsample} "
                             f"(VAE {f} × HyperAlign {config.hyper_downsample})")
        self.latent_grid = (h // f, w // f)
        self.token_grid = (self.latent_grid[0] // config.hyper_downsample,
                           self.latent_grid[1] // config.hyper_downsample)
        self.side_grid = (self.latent_grid[0] // config.side_downsample,  # z_y, ẑ_y, m_v, z_d
                          self.latent_grid[1] // config.side_downsample)
        n_tok = self.token_grid[0] * self.token_grid[1]
        n_side = self.side_grid[0] * self.side_grid[1]
        c = config.z_channels

        extra = c_lat + config.condition_channels - backbone.unet.config.in_channels
        if extra < 0 or (extra and backbone.unet.config.in_channels != c_lat):
            raise ValueError(f"backbone UNet has in_channels={backbone.unet.config.in_channels}; expected {c_lat} "
                             f"(plain) or {c_lat + config.condition_channels} (already widened for this variant)")
        widen_conv_in(backbone.unet, extra, init=config.conv_in_init)  # no-op for a UNet saved already widened
        if config.prediction_type is not None and config.prediction_type != backbone.scheduler.config.prediction_type:
            backbone.scheduler.register_to_config(prediction_type=config.prediction_type)
        if not config.train_unet:  # keep the new condition filters trainable, or the UNet could never read them
            freeze(backbone.unet).train()
            backbone.unet.conv_in.requires_grad_(True)

        hyper = dict(hidden=config.hyper_channels, heads=config.hyper_attn_heads)
        self.h_ax = HyperAlign(c_lat, c, downsample=config.hyper_downsample, **hyper)  # Eq. 1
        self.h_ay = HyperAlign(c_lat, c, downsample=config.side_downsample, **hyper)  # Eq. 2
        self.vq = build_quantizer(config)  # Eqs. 1, 2, 21 (vq_variant)
        if config.separate_codebooks:  # y's own codebook (the authors' code); else self.vq quantises both
            self.vq_y = build_quantizer(config)
        self.entropy_model = AREntropyModel(config.codebook_size, n_tok, config.em_d_model, config.em_layers,
                                            config.em_heads)
        self.mask_generator = MaskGenerator(c, config.mask_hidden, config.gumbel_tau, config.mask_threshold,
                                            soft_training=config.mask_training == "soft",
                                            tau_decay=config.gumbel_tau_decay, tau_final=config.gumbel_tau_final,
                                            tau_epochs=config.gumbel_tau_epochs)
        self.text_supervision = (TextSupervision(backbone.text_hidden_size, c, n_side, config.num_nouns,
                                                 config.ts_d_model, config.ts_layers, config.ts_heads,
                                                 backbone.max_text_length, pooled=config.ts_predictor == "pooled")
                                 if config.use_text_supervision else None)
        self.g1 = build_g1(config, c, n_tok, n_side) if config.use_g1 else None  # Eq. 13: transformer or OPAM
        self.g2 = G2Gate(c, config.g2_hidden) if config.use_g2 else None
        # anchored denoiser (decoder.py): x̂_0 = A(visual) + UNet(...), A reads the variant's visual channels only
        self.anchor_head = (AnchorHead(config.condition_channels, c_lat, config.anchor_hidden)
                            if config.decoder_anchor else None)
        self._empty_text = None

    # ------------------------------------------------------------------ helpers
    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.train(mode)  # keeps the frozen parts in eval mode
        return self

    @property
    def device(self):
        return next(self.h_ax.parameters()).device

    @property
    def vq_side(self):
        """The quantiser of z_y: its own with ``separate_codebooks``, else x's (:attr:`vq`)."""
        return self.vq_y if self.config.separate_codebooks else self.vq

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Tell the model where training stands: sets the annealed τ of Eq. 7 (``gumbel_tau_decay < 1``).

        The run hooks call it before every step (:meth:`mdic_lab.runs.codecs.MDICHooks.begin_step`);
        without it τ stays ``gumbel_tau``.  A no-op for a constant τ.
        """
        self.mask_generator.set_training_progress(int(step), int(total_steps))

    def _images(self, images, name):
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"{name} must be a (B, 3, H, W) tensor in [0, 1], got {got}")
        if tuple(images.shape[-2:]) != self.config.image_size:
            raise ValueError(f"{name} has size {tuple(images.shape[-2:])}, the model expects {self.config.image_size}")
        if not torch.isfinite(images).all():
            raise ValueError(f"{name} contains NaN or inf")
        if images.min() < -1e-3 or images.max() > 1 + 1e-3:
            raise ValueError(f"{name} must lie in [0, 1], got range [{float(images.min()):.3g}, {float(images.max()):.3g}]")
        return images.to(self.device, torch.float32) * 2.0 - 1.0

    def _captions(self, captions, b):
        if isinstance(captions, str):
            captions = [captions]
        if not isinstance(captions, (list, tuple)) or len(captions) != b or not all(isinstance(s, str) for s in captions):
            raise ValueError(f"captions must be a list of {b} str (one per side image)")
        return list(captions)

    def empty_text(self) -> torch.Tensor:
        """E_clip("") ``(1, L, D)``: the caption-free condition of the ``no_text`` variant (cached)."""
        if self._empty_text is None:
            self._empty_text = self.backbone.encode_text([""]).to(self.device)
        return self._empty_text

    @property
    def model_id(self) -> str:
        """Container model id: hash of the config and of every weight that shapes the bitstream."""
        enc = {f"{n}.{k}": v for n, m in (("h_ax", self.h_ax), ("vq", self.vq), ("em", self.entropy_model))
               for k, v in m.state_dict().items()}
        return model_fingerprint(self.model_name, self.config.to_dict(), enc)

    # ------------------------------------------------------------------ the two sides
    def encode_x(self, images_x: torch.Tensor, z_lx: torch.Tensor | None = None):
        """Encoder side (Eq. 1): ``(z_Lx, z_x, VQOutput)`` for images in [0, 1].

        ``z_lx`` may hold the precomputed frozen-VAE latent ``E_vae(I_x)`` (training caches
        it; the VAE is frozen and deterministic, so it equals what would be computed here).
        """
        if z_lx is None:
            z_lx = self.backbone.encode_image(self._images(images_x, "images_x"))  # (B, C_L, H, W), frozen
        else:
            z_lx = z_lx.to(self.device)
        z_x = self.h_ax(z_lx)  # (B, C, h, w)
        return z_lx, z_x, self.vq(z_x)

    def decoder_side(self, zx_hat: torch.Tensor, images_y: torch.Tensor, captions, stochastic: bool | None = None,
                     generator: torch.Generator | None = None, z_ly: torch.Tensor | None = None,
                     mask_noise: torch.Tensor | None = None) -> dict:
        """Everything the decoder derives from ẑ_x and the side information (Eqs. 2–3, 4–8, 13–14).

        Returns a dict with ``z_y``, ``zy_hat``, ``vq_y`` (y's :class:`~.vq.VQOutput`), ``mask``
        (:class:`MaskOutput`), ``zxc``, ``z_d``, ``z_text`` (``None`` when the variant does not use
        z_text) and ``zx_hat``.  ``mask_noise`` ``(B, 1, h_y, w_y)``: Gumbel noise of the decoder's
        mask (``mask_inference_noise``).  On a finer side grid (``hyper_downsample_y``) the mask
        generator sees ẑ_x upsampled (nearest) to it.
        """
        cfg = self.config
        if z_ly is None:
            y = self._images(images_y, "images_y")
            z_ly = self.backbone.encode_image(y)
        if z_ly.shape[0] != zx_hat.shape[0]:
            raise ValueError(f"batch of images_y ({z_ly.shape[0]}) differs from the batch of ẑ_x ({zx_hat.shape[0]})")
        z_y = self.h_ay(z_ly.to(self.device))  # Eq. 2
        vq_y = self.vq_side(z_y)
        zy_hat = vq_y.z_q
        zx_m = upsample_condition(zx_hat, tuple(zy_hat.shape[-2:]))  # ẑ_x on the side grid (same grid: itself)
        mask = self.mask_generator(zx_m, zy_hat, stochastic=stochastic, generator=generator,
                                   gumbel=mask_noise)  # Eqs. 4–8
        m_v = mask.m_v
        zxc = self.g1(zx_hat, zy_hat, m_v) if cfg.use_g1 else zx_hat  # Eq. 13
        z_d = self.g2(z_y, m_v) if cfg.use_g2 else z_y  # Eq. 14
        if cfg.mask_gates_zd:  # not in the paper: the mask gates the side latent's only path to the UNet
            z_d = z_d * m_v
        z_text = (self.backbone.encode_text(self._captions(captions, z_ly.shape[0])).to(self.device)
                  if cfg.use_text_condition else None)  # Eq. 3
        return dict(zx_hat=zx_hat, z_y=z_y, zy_hat=zy_hat, vq_y=vq_y, mask=mask, zxc=zxc, z_d=z_d, z_text=z_text)

    def condition(self, parts: dict):
        """``(visual, text)`` condition of the UNet for this variant (see :mod:`.conditioning`)."""
        return build_condition(self.config, parts, self.latent_grid,
                               None if self.config.use_text_condition else self.empty_text())

    def anchor(self, visual: torch.Tensor):
        """``z_anchor = A(visual)`` of the anchored denoiser, or ``None`` (``decoder_anchor`` off).

        It is a function of the variant's visual condition alone, so ``no_zd`` keeps z_d out of
        it and ``no_zd_zxc`` all side information.
        """
        return None if self.anchor_head is None else self.anchor_head(visual)

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """All loss terms of Eqs. 19–23 for one batch.

        ``batch`` holds ``left`` (I_x) and ``right`` (I_y), ``(B, 3, H, W)`` in [0, 1], and
        ``caption`` (B captions of I_y).  Unless the variant is ``no_ts`` it also needs
        ``masked_caption`` (captions with each object noun replaced by ``config.mask_marker``)
        and ``noun_targets`` (B lists of noun class ids, in order of appearance) -- or a
        ``vocabulary`` given to the constructor, which builds both from ``caption`` (Eq. 9).

        Optional ``z_left`` / ``z_right`` hold precomputed latents ``E_vae(I)`` of the frozen
        VAE (scaled), which skips the VAE encoder (training caches them once per data set).

        Returns ``loss`` (Eq. 23), ``vq`` (Eq. 21), ``diff`` (Eq. 19), ``rate_bpp`` (ESTIMATED
        bits per pixel of I_x from the entropy model), ``rate_bits`` (per image), ``mask``
        (Eq. 20; only with text supervision) and ``mask_fraction`` (mean of m_v).
        """
        cfg = self.config
        for key in ("left", "right", "caption"):
            if key not in batch:
                raise KeyError(f"batch is missing {key!r} (expected keys: left, right, caption"
                               + ("" if not cfg.use_text_supervision else ", masked_caption, noun_targets") + ")")
        z_lx, z_x, vq_x = self.encode_x(batch["left"], z_lx=batch.get("z_left"))
        parts = self.decoder_side(vq_x.z_q, batch["right"], batch["caption"], stochastic=self.training,
                                  generator=generator, z_ly=batch.get("z_right"))
        visual, text = self.condition(parts)
        if self.training and cfg.caption_dropout > 0 and cfg.use_text_condition:  # z_text := E_clip("") at rate p
            drop = (torch.rand(text.shape[0], generator=generator) < cfg.caption_dropout).to(text.device)
            text = torch.where(drop[:, None, None], self.empty_text().expand_as(text), text)
        ts = (inference_timesteps(self.backbone.scheduler, cfg.num_inference_steps, cfg.sampler)
              if cfg.train_timesteps == "inference" else None)
        l_diff = diffusion_loss(self.backbone.unet, self.backbone.scheduler, z_lx, visual, text, generator,
                                anchor=self.anchor(visual), timesteps=ts)
        bits = self.entropy_model.rate_bits(vq_x.indices)  # (B,), estimated
        h, w = cfg.image_size
        rate_bpp = bits.mean() / (h * w)
        l_vq = vq_x.loss  # Eq. 21 (0 for the authors' VQ: no commitment term)
        if cfg.separate_codebooks:  # y's own codebook learns from its own Eq. 21 term (or its EMA: loss 0)
            l_vq = l_vq + parts["vq_y"].loss
        out = dict(vq=l_vq, diff=l_diff, rate_bpp=rate_bpp, rate_bits=bits.detach(),
                   mask_fraction=parts["mask"].m_v.detach().mean())
        loss = l_vq + cfg.lambda_rate * rate_bpp + l_diff  # Eqs. 22–23
        if cfg.mask_sparsity > 0:  # keep-rate prior on the soft mask (not in the paper; MDICConfig.mask_sparsity)
            loss = loss + cfg.mask_sparsity * parts["mask"].m.mean()
        if cfg.use_text_supervision:
            masked, targets = self._masked_captions(batch)
            mt = tokenize_masked_captions(self.backbone.tokenizer, masked, targets, cfg.mask_marker,
                                          cfg.mask_token_text, self.backbone.max_text_length)
            with torch.no_grad():  # frozen T_encoder (Eq. 10)
                t_feat = self.backbone.text_encoder(input_ids=mt.input_ids.to(self.device)).last_hidden_state
            l_mask, _ = self.text_supervision(t_feat, mt.attention_mask.to(self.device), mt.targets.to(self.device),
                                              parts["mask"].m_v, parts["z_y"])
            out["mask"] = l_mask
            loss = loss + cfg.lambda_mask * l_mask
        out["loss"] = loss
        return out

    def _masked_captions(self, batch):
        """(masked captions, noun targets) from the batch or, failing that, from the vocabulary (Eq. 9)."""
        if "masked_caption" in batch and "noun_targets" in batch:
            return list(batch["masked_caption"]), [list(t) for t in batch["noun_targets"]]
        if self.vocabulary is None:
            raise KeyError("text supervision needs batch['masked_caption'] and batch['noun_targets'], or a "
                           "vocabulary passed to MDIC(..., vocabulary=...) (or use variant 'no_ts')")
        pairs = [self.vocabulary.mask_caption(c) for c in self._captions(batch["caption"], len(batch["caption"]))]
        return [p[0] for p in pairs], [list(p[1]) for p in pairs]

    # ------------------------------------------------------------------ coding
    @torch.no_grad()
    def compress(self, images_x: torch.Tensor) -> dict:
        """Encode I_x alone: ``{"strings": [container bytes per image], "shape": token grid}``.

        Each string is a full :mod:`mdic_lab.coding.container` stream (header, range-coded
        indices, CRC); its length is the CODED rate (``bpp_from_bytes``).
        """
        if self.training:
            raise RuntimeError("call .eval() before compress()")
        _, _, vq_x = self.encode_x(images_x)
        return {"strings": self.compress_indices(vq_x.indices), "shape": self.token_grid}

    @torch.no_grad()
    def compress_indices(self, indices: torch.Tensor) -> list:
        """``(B, h, w)`` VQ indices of E(I_x) → one container string per image (range-coded, CRC)."""
        payloads = self.entropy_model.compress(indices)
        mid = self.model_id
        # no shape fields: the model id (a hash of the config) already fixes the image size and
        # token grid, and every header byte counts in the coded bpp at these extremely low rates
        return [pack(mid, {}, [p]) for p in payloads]

    @torch.no_grad()
    def decode_indices(self, strings) -> torch.Tensor:
        """Container strings → ``(B, h, w)`` VQ indices (checks the model id and CRC).

        Every failure to decode a stream raises :class:`BitstreamError` naming it; the indices
        returned lie in ``{0..K-1}`` (the range decoder checks them).
        """
        from mdic_lab.coding.errors import payload_context

        if isinstance(strings, (bytes, bytearray)):
            strings = [bytes(strings)]
        mid = self.model_id
        payloads = []
        for s in strings:  # every container is checked (CRC, model id) before any range decoding
            c = unpack(s, expected_model_id=mid)
            if len(c.payloads) != 1 or c.shapes:
                raise BitstreamError(f"stream has {len(c.payloads)} payloads and shapes {c.shapes}, expected one "
                                     "payload and no shapes (an MDIC stream)")
            payloads.append(c.payloads[0])
        with payload_context(0, "indices"):  # a payload that cannot be decoded: BitstreamError naming it
            return self.entropy_model.decompress(payloads, self.token_grid)  # the images together (batched)

    @torch.no_grad()
    def decompress(self, strings, images_y: torch.Tensor, captions, seed: int = 0,
                   num_inference_steps: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruct Î_x ``(B, 3, H, W)`` in [0, 1] from the bitstream and the side information.

        The mask is the generator's deterministic output (no text; Gumbel noise only with
        ``mask_inference_noise``); the start noise (and any mask / DDPM noise) comes from
        ``generator`` or else ``torch.Generator().manual_seed(seed)`` per image (the seed is a
        decoder constant, not transmitted), so decoding is deterministic given the seed.
        """
        if self.training:
            raise RuntimeError("call .eval() before decompress()")
        idx = self.decode_indices(strings).to(self.device)
        return self.reconstruct_from_indices(idx, images_y, captions, seed, num_inference_steps, generator)

    @torch.no_grad()
    def reconstruct_from_indices(self, indices: torch.Tensor, images_y, captions, seed: int = 0,
                                 num_inference_steps: int | None = None,
                                 generator: torch.Generator | None = None) -> torch.Tensor:
        """The decoder after entropy decoding: ẑ_x = codebook[indices] → Î_x in [0, 1] (Eqs. 13–18).

        Without ``generator``, image ``i`` of the batch draws from its own
        ``torch.Generator().manual_seed(seed)``: first ``z_T ~ N(0, I)``, then the mask's Gumbel
        noise (``mask_inference_noise``), then DDPM's step noise (``sampler="ddpm"``), so an image
        decodes the same alone or in a batch.  With ``guidance_scale ≠ 1`` the UNet also runs on
        the empty caption (classifier-free guidance, :func:`~.decoder.sample_latent`).
        """
        cfg = self.config
        zx_hat = self.vq.lookup(indices)
        c_lat = self.backbone.vae.config.latent_channels
        b = indices.shape[0]
        shape = (b, c_lat) + tuple(self.latent_grid)
        gens = ([torch.Generator().manual_seed(int(seed)) for _ in range(b)] if generator is None
                else generator)  # one stream per image from the decoder's seed: batch-invariant
        if generator is None:
            noise = torch.cat([torch.randn((1,) + shape[1:], generator=g) for g in gens])
        else:
            noise = torch.randn(shape, generator=generator)
        mask_noise = None
        if cfg.mask_inference_noise:  # Eq. 6 at inference (the authors' code), from the same seeded streams
            one = (1, 1) + tuple(self.side_grid)
            mask_noise = (torch.cat([gumbel_noise(one, g) for g in gens]) if generator is None
                          else gumbel_noise((b,) + one[1:], generator))
        parts = self.decoder_side(zx_hat, images_y, captions, stochastic=False, mask_noise=mask_noise)
        visual, text = self.condition(parts)
        uncond = (self.empty_text().expand_as(text)
                  if cfg.guidance_scale != 1.0 and cfg.use_text_condition else None)  # no_text: nothing to guide
        steps = cfg.num_inference_steps if num_inference_steps is None else int(num_inference_steps)
        z0 = sample_latent(self.backbone.unet, self.backbone.scheduler, visual, text, shape, steps,
                           sampler=cfg.sampler, generator=gens, noise=noise, anchor=self.anchor(visual),
                           uncond_text=uncond, guidance_scale=cfg.guidance_scale)
        return ((self.backbone.decode_latent(z0) + 1.0) / 2.0).clamp(0.0, 1.0)  # Eq. 18

    def bpp(self, strings) -> list:
        """CODED bits per pixel of each container string (header and CRC included).

        :meth:`payload_bpp` gives the range-coded indices alone (the container's fixed
        header -- magic, version, model id, lengths, CRC -- is about 40 bytes).
        """
        h, w = self.config.image_size
        return [bpp_from_bytes(s, h * w) for s in strings]

    def payload_bpp(self, strings) -> list:
        """CODED bits per pixel of the range-coded indices only (container header and CRC excluded)."""
        h, w = self.config.image_size
        return [bpp_from_bytes(unpack(s).payloads[0], h * w) for s in strings]

    @property
    def max_bpp(self) -> float:
        """Upper bound of the payload rate, ``N_tokens · log2 K / (H·W)`` (excluding the container)."""
        h, w = self.config.image_size
        return self.token_grid[0] * self.token_grid[1] * math.log2(self.config.codebook_size) / (h * w)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_blob(self) -> dict:
        """``{model_name, config, vocabulary, vae_scaling_factor, state_dict}`` (what a checkpoint holds).

        The VAE's ``scaling_factor`` is a config value, not a weight, so it is stored apart
        (a pretrained small VAE sets its own, see :mod:`.pretrain`).
        """
        return {"model_name": self.model_name, "config": self.config.to_dict(),
                "vocabulary": None if self.vocabulary is None else self.vocabulary.to_dict(),
                "vae_scaling_factor": self.backbone.latent_scale, "state_dict": self.state_dict()}

    @classmethod
    def from_blob(cls, blob: dict, backbone: Backbone | None = None, source: str = "checkpoint") -> "MDIC":
        """Rebuild a model from :meth:`checkpoint_blob` output (strict weight loading)."""
        if not isinstance(blob, dict) or blob.get("model_name") != cls.model_name:
            got = blob.get("model_name") if isinstance(blob, dict) else type(blob).__name__
            raise ValueError(f"{source} is not an MDIC checkpoint (model_name {got!r}, expected {cls.model_name!r})")
        vocab = None
        if blob.get("vocabulary") is not None:
            from mdic_lab.data.vocabulary import Vocabulary

            vocab = Vocabulary.from_dict(blob["vocabulary"])
        config = MDICConfig.from_dict(blob["config"])
        if backbone is None and config.pretrained is None:
            backbone = Backbone.from_config(config)  # every weight comes from the state dict below
        if backbone is not None and blob.get("vae_scaling_factor") is not None:
            backbone.vae.register_to_config(scaling_factor=float(blob["vae_scaling_factor"]))
        model = cls(config, backbone=backbone, vocabulary=vocab)
        model.load_state_dict(blob["state_dict"])
        return model

