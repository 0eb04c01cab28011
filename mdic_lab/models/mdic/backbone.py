"""The latent-diffusion backbone of MDIC: E_vae / D_vae, ε_θ, the DDIM scheduler, E_clip.

One class, two ways to build it with the same code:

* :meth:`Backbone.from_pretrained` -- the paper's Stable Diffusion 2.1-base layout (sub-folders
  ``vae``, ``unet``, ``text_encoder``, ``tokenizer``, ``scheduler``) from a local directory or a
  hub id (offline: only what is in the local cache);
* :meth:`Backbone.from_config` -- a tiny random backbone of the same classes for tests and
  laptops (:class:`~mdic_lab.models.mdic.config.MDICConfig` fields ``vae_*``, ``unet_*``,
  ``text_*``).

:meth:`Backbone.save_pretrained` writes the standard layout, so ``from_pretrained(dir)`` loads
it back.  The VAE and the text encoder are frozen (``requires_grad=False``, eval mode): they
define the latent space (Eq. 1–3, 18) and the text features; the UNet is returned as is.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .tokenizer import load_clip_tokenizer

__all__ = ["Backbone", "SUBFOLDERS", "make_scheduler", "freeze", "unet_from_config", "encode_memo"]

#: Stable Diffusion sub-folder names of the five components.
SUBFOLDERS = {"vae": "vae", "unet": "unet", "text_encoder": "text_encoder",
              "tokenizer": "tokenizer", "scheduler": "scheduler"}


#: Upper bound (bytes, CPU) of :data:`_ENCODE_MEMO`; 0 turns the memo off.
ENCODE_MEMO_BYTES = 512 * 2**20

#: ``E_vae(I)`` of the last batches this process encoded inside :func:`encode_memo`, least recently
#: used first, keyed by :meth:`Backbone._encode_key`.  The VAE is frozen and deterministic, and a
#: sweep worker's cells train on the same pairs and evaluate the same test pairs with the same VAE
#: (a fresh copy loaded from the same files per cell), so each batch is encoded once per worker,
#: not once per cell (a lab cell spent 9.3 s encoding its training pairs and 11.9 s its 64 test
#: pairs, measured).
_ENCODE_MEMO: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_memo_state = threading.local()


@contextmanager
def encode_memo(enabled: bool = True):
    """Within the block (this thread), :meth:`Backbone.encode_image` answers batches met before from
    :data:`_ENCODE_MEMO` (``enabled=False``: never).  Off by default: whatever times an encoder
    (Table 4, ``benchmarks/``) must run the VAE; the training bank and a sweep's quality
    evaluations turn it on."""
    before = getattr(_memo_state, "on", False)
    _memo_state.on = bool(enabled)
    try:
        yield
    finally:
        _memo_state.on = before


#: The weights' fingerprint of each live VAE module with the (storage, version) of its tensors when
#: it was computed: an in-place edit of a weight bumps its version, a replaced tensor its storage.
_VAE_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (any dtype, any device)."""
    t = t.detach().contiguous().cpu()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter and switch to eval mode."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def make_scheduler(num_train_timesteps: int = 1000):
    """The DDIM scheduler of Stable Diffusion 2.1-base (scaled-linear β, ε-prediction).

    β_t runs from 0.00085 to 0.012 on a √-linear scale over ``num_train_timesteps`` steps
    (Eq. 16); ``ᾱ_t = Π(1 − β_i)`` (Eq. 15).
    """
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=num_train_timesteps, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                         steps_offset=1, prediction_type="epsilon")


class Backbone(nn.Module):
    """Container of the five latent-diffusion components.

    Attributes
    ----------
    vae : diffusers.AutoencoderKL (frozen)
    unet : diffusers.UNet2DConditionModel (ε_θ, Eq. 19)
    text_encoder : transformers.CLIPTextModel (frozen, E_clip of Eq. 3)
    tokenizer : transformers.CLIPTokenizer (checked vocabulary)
    scheduler : diffusers.DDIMScheduler
    """

    def __init__(self, vae, unet, text_encoder, tokenizer, scheduler, max_text_length: int = 77):
        super().__init__()
        self.vae = freeze(vae)
        self.unet = unet
        self.text_encoder = freeze(text_encoder)
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        n_pos = text_encoder.config.max_position_embeddings
        self.max_text_length = min(int(max_text_length), int(n_pos))
        if self.unet.config.cross_attention_dim != text_encoder.config.hidden_size:
            raise ValueError(
                f"unet cross_attention_dim {self.unet.config.cross_attention_dim} must equal the text "
                f"encoder hidden size {text_encoder.config.hidden_size}"
            )

    def train(self, mode: bool = True):
        """Train mode for the UNet only; the frozen VAE and text encoder stay in eval mode."""
        super().train(mode)
        self.vae.eval()
        self.text_encoder.eval()
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config) -> "Backbone":
        """A tiny random backbone from an :class:`MDICConfig` (its ``vae_*``, ``unet_*``, ``text_*`` fields).

        The UNet's ``in_channels`` is the VAE latent width; MDIC widens ``conv_in`` for the
        visual conditions itself (:func:`mdic_lab.models.mdic.decoder.widen_conv_in`).
        """
        from diffusers import AutoencoderKL
        from transformers import CLIPTextConfig, CLIPTextModel

        n = len(config.vae_block_out_channels)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(config.vae_block_out_channels), layers_per_block=config.vae_layers_per_block,
            latent_channels=config.vae_latent_channels, norm_num_groups=config.vae_norm_num_groups,
            sample_size=max(config.image_size),
        )
        unet = unet_from_config(config)
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=49408, hidden_size=config.text_hidden_size, intermediate_size=config.text_intermediate_size,
            num_hidden_layers=config.text_num_layers, num_attention_heads=config.text_num_heads,
            max_position_embeddings=max(77, config.max_text_length), bos_token_id=49406, eos_token_id=49407,
            pad_token_id=49407,
        ))
        return cls(vae, unet, text, load_clip_tokenizer(None), make_scheduler(config.num_train_timesteps),
                   max_text_length=config.max_text_length)

    @classmethod
    def from_pretrained(cls, path_or_hub_id, subfolders: dict | None = None, max_text_length: int = 77,
                        torch_dtype=torch.float32) -> "Backbone":
        """Load the five components from a Stable-Diffusion layout (local dir or hub id).

        Parameters
        ----------
        path_or_hub_id : str or path
            e.g. ``"stabilityai/stable-diffusion-2-1-base"`` (needs a cached copy offline)
            or a directory written by :meth:`save_pretrained`.
        subfolders : dict, optional
            Overrides of :data:`SUBFOLDERS` (keys ``vae``, ``unet``, ``text_encoder``,
            ``tokenizer``, ``scheduler``).
        """
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel

        sub = dict(SUBFOLDERS)
        for k, v in (subfolders or {}).items():
            if k not in SUBFOLDERS:
                raise ValueError(f"unknown backbone component {k!r} (expected one of: {', '.join(SUBFOLDERS)})")
            sub[k] = v
        src = str(path_or_hub_id)
        local = os.path.isdir(src)
        if not local and (os.path.isabs(src) or src.startswith(".")):
            raise FileNotFoundError(f"backbone directory not found: {src}")
        if local:
            for k, v in sub.items():
                if not (Path(src) / v).is_dir():
                    raise FileNotFoundError(f"backbone component {k!r} not found: {Path(src) / v}")
        try:
            vae = AutoencoderKL.from_pretrained(src, subfolder=sub["vae"], torch_dtype=torch_dtype)
            unet = UNet2DConditionModel.from_pretrained(src, subfolder=sub["unet"], torch_dtype=torch_dtype)
            text = CLIPTextModel.from_pretrained(src, subfolder=sub["text_encoder"], dtype=torch_dtype)
            sched = DDIMScheduler.from_pretrained(src, subfolder=sub["scheduler"])
        except OSError as err:
            raise OSError(
                f"could not load the backbone from {src!r}: {err}. Offline, a hub id only works if the "
                "model is in the local Hugging Face cache; otherwise pass a local directory."
            ) from err
        tok = load_clip_tokenizer(src, subfolder=sub["tokenizer"])
        return cls(vae, unet, text, tok, sched, max_text_length=max_text_length)

    def save_pretrained(self, directory) -> Path:
        """Write ``vae/ unet/ text_encoder/ tokenizer/ scheduler/`` (the Stable Diffusion layout)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.vae.save_pretrained(d / SUBFOLDERS["vae"])
        self.unet.save_pretrained(d / SUBFOLDERS["unet"])
        self.text_encoder.save_pretrained(d / SUBFOLDERS["text_encoder"])
        self.tokenizer.save_pretrained(str(d / SUBFOLDERS["tokenizer"]))
        self.scheduler.save_pretrained(d / SUBFOLDERS["scheduler"])
        return d

    # ------------------------------------------------------------------ components
    @property
    def latent_scale(self) -> float:
        """The VAE's ``scaling_factor`` (SD: 0.18215): z_L = scale · E_vae(I)."""
        return float(self.vae.config.scaling_factor)

    @property
    def vae_downsample(self) -> int:
        """Spatial factor of the VAE, 2**(number of blocks − 1)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def text_hidden_size(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    def vae_fingerprint(self) -> str:
        """Identity of ``E_vae`` as this process computes it: the weights, latent scale, device and mode.

        Two copies of the same VAE (loaded twice from the same files) have the same fingerprint;
        any changed weight gives another.  Computed once per VAE object and state of its tensors.
        """
        from mdic_lab.coding.container import model_fingerprint

        vae = self.vae
        tensors = list(vae.parameters()) + list(vae.buffers())
        state = tuple((t.untyped_storage().data_ptr(), t.storage_offset(), t._version) for t in tensors)
        hit = _VAE_FINGERPRINTS.get(vae)
        if hit is None or hit[0] != state:
            fp = model_fingerprint("vae", {"latent_scale": self.latent_scale, "training": vae.training,
                                           "device": str(tensors[0].device) if tensors else "cpu"},
                                   vae.state_dict(), digits=64)
            hit = _VAE_FINGERPRINTS[vae] = (state, fp)
        return hit[1]

    def _encode_key(self, images: torch.Tensor) -> tuple:
        """What makes ``E_vae(images)`` bit-identical: the VAE, the batch's bytes and the thread count."""
        return self.vae_fingerprint(), str(images.device), _tensor_digest(images), torch.get_num_threads()

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """z_L = E_vae(I) (Eq. 1): the posterior mean, scaled; images in [-1, 1], ``(B, 3, H, W)``.

        The mean (not a sample) keeps the encoder deterministic, so inside :func:`encode_memo` a
        batch met before is answered from :data:`_ENCODE_MEMO` (the same values, a new tensor on
        the images' device).
        """
        _check_images(images)
        use = ENCODE_MEMO_BYTES > 0 and getattr(_memo_state, "on", False)
        key = self._encode_key(images) if use else None
        if key is not None and key in _ENCODE_MEMO:
            _ENCODE_MEMO.move_to_end(key)
            return _ENCODE_MEMO[key].to(images.device, copy=True)
        z = self.vae.encode(images).latent_dist.mode() * self.latent_scale
        if key is not None:
            _ENCODE_MEMO[key] = z.detach().to("cpu", copy=True)
            held = sum(v.numel() * v.element_size() for v in _ENCODE_MEMO.values())
            while held > ENCODE_MEMO_BYTES and _ENCODE_MEMO:
                _, old = _ENCODE_MEMO.popitem(last=False)
                held -= old.numel() * old.element_size()
        return z

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """I = D_vae(z / scale) (Eq. 18); returns images in about [-1, 1]."""
        return self.vae.decode(z / self.latent_scale).sample

    def tokenize(self, captions) -> torch.Tensor:
        """Caption strings → ``(B, L)`` CLIP ids padded/truncated to ``max_text_length``."""
        if isinstance(captions, str):
            captions = [captions]
        if not all(isinstance(c, str) for c in captions):
            raise TypeError("captions must be a list of str")
        out = self.tokenizer(list(captions), padding="max_length", max_length=self.max_text_length,
                             truncation=True, return_tensors="pt")
        return out.input_ids

    @torch.no_grad()
    def encode_text(self, captions=None, input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """z_text = E_clip(caption) (Eq. 3): the last hidden states ``(B, L, D)`` (as SD and TACO use them)."""
        if input_ids is None:
            if captions is None:
                raise ValueError("encode_text needs captions or input_ids")
            input_ids = self.tokenize(captions)
        return self.text_encoder(input_ids=input_ids.to(self.text_encoder.device)).last_hidden_state


def unet_from_config(config):
    """The small random ε_θ of an :class:`MDICConfig` (``unet_*`` fields).

    The text cross-attention transformer sits at level ``unet_cross_attention_level`` of
    the down and up paths (0 = full latent resolution); the mid block always has one.
    """
    from diffusers import UNet2DConditionModel

    m = len(config.unet_block_out_channels)
    lvl = config.unet_cross_attention_level
    down = tuple("CrossAttnDownBlock2D" if i == lvl else "DownBlock2D" for i in range(m))
    up = tuple("CrossAttnUpBlock2D" if m - 1 - i == lvl else "UpBlock2D" for i in range(m))
    return UNet2DConditionModel(
        sample_size=max(config.latent_grid), in_channels=config.vae_latent_channels,
        out_channels=config.vae_latent_channels, down_block_types=down, up_block_types=up,
        block_out_channels=tuple(config.unet_block_out_channels), layers_per_block=config.unet_layers_per_block,
        cross_attention_dim=config.text_hidden_size, attention_head_dim=config.unet_attention_head_dim,
        norm_num_groups=config.unet_norm_num_groups,
    )


def _check_images(images):
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) tensor in [-1, 1], got {shape}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf")
