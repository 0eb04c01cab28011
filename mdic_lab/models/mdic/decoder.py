"""The conditional latent-diffusion decoder of MDIC (Eqs. 15–19).

Condition ``Z_cond = {z_d, ẑ_xc, z_text}``:

* ``z_text`` enters through the UNet's cross-attention (``encoder_hidden_states``), as in
  Stable Diffusion;
* the visual conditions ``z_d`` and ``ẑ_xc`` live on the small token grid; they are
  upsampled (nearest by default) to the latent grid and **concatenated to the noisy latent
  along channels**, so the UNet's ``in_channels = C_L + C_zd + C_zxc``.  For a pretrained UNet
  :func:`widen_conv_in` adds zero-initialised input filters for the new channels, so at
  initialisation ε_θ behaves exactly like the pretrained model (the InstructPix2Pix /
  ControlNet-style choice); this keeps the decoder a plain UNet call.  (``conv_in_init="fresh"``,
  the authors' code: a new Kaiming-initialised input convolution, the pretrained one discarded.)

Training (Eq. 19): ``L_diff = E ||ε − ε_θ(z_t, t, Z_cond)||²`` with
``z_t = √ᾱ_t z_0 + √(1 − ᾱ_t) ε`` (Eq. 15), ``z_0 = z_Lx``.  The target follows the
scheduler's ``prediction_type``: ε (the paper, SD 2.1-base), or ``v = √ᾱ_t ε − √(1 − ᾱ_t) z_0``
(SD 2.x-v, see ``MDICConfig.prediction_type``), or ``z_0`` itself (the anchored ``lab`` preset).

Anchored parameterisation (``MDICConfig.decoder_anchor``; the ``lab`` preset).  The paper
leaves the injection of the visual conditions open; with the anchor the denoiser predicts
``x̂_0 = z_anchor + ε_θ(z_t, t, [visual], z_text)`` where ``z_anchor = A(visual)`` is a small conv
head (:class:`AnchorHead`) reading the *same* visual channel stack the UNet sees (so every
ablation switch removes its part from the anchor too: ``no_zd`` → no z_d in the anchor,
``no_zd_zxc`` → only the transmitted ẑ_x).  The UNet thus learns a correction around a
side-information estimate of ``z_Lx`` instead of the whole latent, and the scheduler is set
to ``prediction_type="sample"`` (the loss of Eq. 19 in its x_0 form, ``E||z_0 − x̂_0||²``).
Why the ``lab`` preset uses it, measured: ``docs/mdic_lab_presets.md``.

Training time steps (``MDICConfig.train_timesteps``): ``"uniform"`` draws ``t ~ U{0..T−1}``
(Eq. 19); ``"inference"`` draws ``t`` uniformly from the ``num_inference_steps`` DDIM time
steps the decoder actually visits (a short training run spends all its steps there).

Sampling (:func:`sample_latent`): DDIM (deterministic, η = 0) or DDPM (ancestral: fresh noise at
every step, from explicit generators; the authors' validation sampler) from ``z_T ~ N(0, I)``,
``num_inference_steps`` steps (paper: 10), then ``D_vae`` (Eq. 18).  Classifier-free guidance
(the authors' code, scale 3.0): the model output is ``o_c + (s − 1)(o_c − o_∅)`` with ``o_∅`` the
output for the empty caption; at ``s = 1`` the added term is exactly 0, the unguided decoder.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["widen_conv_in", "upsample_condition", "diffusion_loss", "ddim_sample", "sample_latent", "AnchorHead",
           "inference_timesteps", "sampling_scheduler"]


def widen_conv_in(unet, extra_channels: int, init: str = "copy"):
    """Give ``unet.conv_in`` ``extra_channels`` more input channels (in place).

    ``init="copy"``: the old filters are kept for the first channels and the new ones are
    zero, so the widened UNet computes what it did; ``"fresh"`` (the authors' code): every
    filter Kaiming-normal (fan-in), bias 0, from the global RNG (seeded by the caller).
    The config's ``in_channels`` is updated so ``save_pretrained`` round-trips.

    Examples
    --------
    >>> from diffusers import UNet2DConditionModel
    >>> u = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 32),
    ...     down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    ...     layers_per_block=1, cross_attention_dim=16, attention_head_dim=8, norm_num_groups=8)
    >>> _ = widen_conv_in(u, 6)
    >>> u.conv_in.in_channels, u.config.in_channels, float(u.conv_in.weight[:, 4:].detach().abs().sum())
    (10, 10, 0.0)
    """
    if init not in ("copy", "fresh"):
        raise ValueError(f"unknown conv_in init {init!r} (expected one of: copy, fresh)")
    if extra_channels <= 0:
        return unet
    old = unet.conv_in
    new = nn.Conv2d(old.in_channels + extra_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        if init == "fresh":  # the pretrained input filters are discarded
            nn.init.kaiming_normal_(new.weight)
            new.bias.zero_()
        else:
            new.weight.zero_()
            new.weight[:, : old.in_channels] = old.weight
            new.bias.copy_(old.bias)
    new = new.to(old.weight.dtype)
    unet.conv_in = new
    unet.register_to_config(in_channels=old.in_channels + extra_channels)
    return unet


def upsample_condition(cond: torch.Tensor, size: tuple, mode: str = "nearest") -> torch.Tensor:
    """Token-grid condition ``(B, C, h, w)`` → latent grid ``(B, C, H, W)``."""
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"unknown upsampling mode {mode!r} (expected one of: nearest, bilinear)")
    if tuple(cond.shape[-2:]) == tuple(size):
        return cond
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(cond, size=tuple(size), mode=mode, **kw)


class AnchorHead(nn.Module):
    """``z_anchor = A(visual)``: two 3×3 convolutions from the visual condition stack to the latent.

    The anchored denoiser predicts ``x̂_0 = z_anchor + UNet(...)`` (see the module docstring);
    ``A`` sees exactly the channels the variant feeds the UNet, nothing else.

    >>> a = AnchorHead(16, 8, hidden=32)
    >>> tuple(a(torch.zeros(2, 16, 4, 8)).shape)
    (2, 8, 4, 8)
    """

    def __init__(self, in_channels: int, latent_channels: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(hidden, latent_channels, 3, padding=1))

    def forward(self, visual: torch.Tensor) -> torch.Tensor:
        return self.net(visual)


def sampling_scheduler(scheduler, sampler: str = "ddim"):
    """A fresh copy of ``scheduler`` (the backbone's DDIM) as the ``sampler``'s scheduler: ``ddim`` | ``ddpm``.

    Both share the β schedule, ``prediction_type`` and time-step spacing of the backbone's config.
    """
    if sampler == "ddim":
        return copy.deepcopy(scheduler)
    if sampler == "ddpm":
        import inspect

        from diffusers import DDPMScheduler

        keep = set(inspect.signature(DDPMScheduler.__init__).parameters)  # DDIM-only keys are left out
        return DDPMScheduler.from_config({k: v for k, v in scheduler.config.items() if k in keep})
    raise ValueError(f"unknown sampler {sampler!r} (expected one of: ddim, ddpm)")


def inference_timesteps(scheduler, num_inference_steps: int, sampler: str = "ddim") -> torch.Tensor:
    """The time steps a ``num_inference_steps``-step run of ``sampler`` visits (a copy of the scheduler is used).

    >>> from diffusers import DDIMScheduler
    >>> inference_timesteps(DDIMScheduler(num_train_timesteps=1000), 10).tolist()
    [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    >>> inference_timesteps(DDIMScheduler(num_train_timesteps=1000), 10, "ddpm").tolist()
    [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    """
    sched = sampling_scheduler(scheduler, sampler)
    sched.set_timesteps(int(num_inference_steps))
    return sched.timesteps.clone()


def _eps(unet, z_t, t, visual, text, anchor=None):
    x = torch.cat([z_t, visual], dim=1) if visual is not None else z_t
    out = unet(x, t, encoder_hidden_states=text).sample
    return out if anchor is None else anchor + out  # anchored: x̂_0 = z_anchor + correction


def diffusion_loss(unet, scheduler, z0: torch.Tensor, visual: torch.Tensor, text: torch.Tensor,
                   generator: torch.Generator | None = None, anchor: torch.Tensor | None = None,
                   timesteps: torch.Tensor | None = None) -> torch.Tensor:
    """L_diff of Eq. 19 for one draw of ``t ~ U{0..T−1}`` and ``ε ~ N(0, I)`` per sample.

    ``visual`` is the upsampled channel condition ``(B, C_cond, H, W)``; ``text`` the
    cross-attention states ``(B, L, D)``; ``anchor`` ``(B, C_L, H, W)`` the side-information
    estimate added to the UNet output (needs ``prediction_type="sample"``); ``timesteps``, if
    given, the set ``t`` is drawn from uniformly (e.g. :func:`inference_timesteps`).
    """
    b = z0.shape[0]
    n_t = scheduler.config.num_train_timesteps
    if anchor is not None and scheduler.config.prediction_type != "sample":
        raise ValueError("an anchored denoiser predicts x_0: the scheduler's prediction_type must be 'sample', "
                         f"got {scheduler.config.prediction_type!r}")
    if timesteps is None:
        t = torch.randint(0, n_t, (b,), generator=generator).to(z0.device)
    else:
        pick = torch.randint(0, len(timesteps), (b,), generator=generator)
        t = timesteps.to(torch.long)[pick].to(z0.device)
    eps = torch.randn(z0.shape, generator=generator).to(z0.device, z0.dtype)
    z_t = scheduler.add_noise(z0, eps, t)  # Eq. 15
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = eps  # Eq. 19
    elif kind == "v_prediction":
        target = scheduler.get_velocity(z0, eps, t)  # v = √ᾱ_t ε − √(1 − ᾱ_t) z_0
    elif kind == "sample":
        target = z0
    else:
        raise ValueError(f"unknown prediction_type {kind!r} (expected one of: epsilon, v_prediction, sample)")
    return F.mse_loss(_eps(unet, z_t, t, visual, text, anchor), target)  # Eq. 19 (for ε; v / z_0 targets alike)


@torch.no_grad()
def ddim_sample(unet, scheduler, visual: torch.Tensor, text: torch.Tensor, latent_shape: tuple,
                num_inference_steps: int = 10, generator: torch.Generator | None = None,
                return_trajectory: bool = False, anchor: torch.Tensor | None = None,
                noise: torch.Tensor | None = None):
    """Denoise ``z_T ~ N(0, I)`` to ``ẑ_0`` in ``num_inference_steps`` DDIM steps (Eq. 17 with η = 0).

    ``z_T`` is ``noise`` if given (shape ``latent_shape``), else drawn from ``generator``; η = 0
    makes every later step deterministic.  The scheduler is copied, so the caller's scheduler state is not modified.  With
    ``return_trajectory`` it returns ``(ẑ_0, [x̂_0 prediction after each step])``, where the
    prediction is ``(z_t − √(1 − ᾱ_t) ε_θ) / √ᾱ_t`` (the DDIM "predicted x_0").  With ``anchor``
    the model output is ``anchor + UNet(...)`` (an x_0 prediction, see :func:`diffusion_loss`).
    """
    return sample_latent(unet, scheduler, visual, text, latent_shape, num_inference_steps, generator=generator,
                         return_trajectory=return_trajectory, anchor=anchor, noise=noise)


@torch.no_grad()
def sample_latent(unet, scheduler, visual: torch.Tensor, text: torch.Tensor, latent_shape: tuple,
                  num_inference_steps: int = 10, *, sampler: str = "ddim", generator=None,
                  return_trajectory: bool = False, anchor: torch.Tensor | None = None,
                  noise: torch.Tensor | None = None, uncond_text: torch.Tensor | None = None,
                  guidance_scale: float = 1.0):
    """Denoise ``z_T`` to ``ẑ_0`` with ``sampler`` (``"ddim"``, η = 0, or ``"ddpm"``, Eq. 17) in
    ``num_inference_steps`` steps.

    ``generator``: a ``torch.Generator`` or a list of one per image (:func:`diffusers.utils.torch_utils.randn_tensor`
    draws image ``i`` from generator ``i``, so an image decodes the same alone or in a batch); it
    draws ``z_T`` unless ``noise`` is given, and DDPM's noise at every step.  ``uncond_text``
    ``(B, L, D)`` turns on classifier-free guidance: each step runs the UNet on ``text`` (``o_c``)
    and on ``uncond_text`` (``o_∅``), two separate calls, and uses ``o_c + (s − 1)(o_c − o_∅)``,
    ``s = guidance_scale`` (exactly ``o_c`` at ``s = 1``).  ``anchor`` and ``return_trajectory``:
    see :func:`ddim_sample`.  The scheduler is copied, never modified.
    """
    from diffusers.utils.torch_utils import randn_tensor

    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    sched = sampling_scheduler(scheduler, sampler)
    sched.set_timesteps(num_inference_steps)
    if isinstance(generator, (list, tuple)) and len(generator) != latent_shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {latent_shape[0]}")
    if noise is None:  # one generator: torch.randn as before; a list: one draw per image
        noise = (randn_tensor(tuple(latent_shape), generator=list(generator)) if isinstance(generator, (list, tuple))
                 else torch.randn(tuple(latent_shape), generator=generator))
    elif tuple(noise.shape) != tuple(latent_shape):
        raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {tuple(latent_shape)}")
    device = visual.device if visual is not None else text.device
    z = noise.to(device) * sched.init_noise_sigma
    traj = []
    for t in sched.timesteps:
        z_in = sched.scale_model_input(z, t)
        out = _eps(unet, z_in, t, visual, text, anchor)  # o_c
        if uncond_text is not None:  # classifier-free guidance; the (s − 1) form is o_c exactly at s = 1
            out = out + (guidance_scale - 1.0) * (out - _eps(unet, z_in, t, visual, uncond_text, anchor))
        if sampler == "ddpm":
            step = sched.step(out, t, z, generator=generator)  # draws the step's noise (CPU generators)
        else:
            step = sched.step(out, t, z, eta=0.0)
        z = step.prev_sample
        if return_trajectory:
            traj.append(step.pred_original_sample)
    return (z, traj) if return_trajectory else z
