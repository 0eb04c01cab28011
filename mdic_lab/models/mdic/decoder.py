"""The conditional latent-diffusion decoder of MDIC (Eqs. 15–19).

Condition ``Z_cond = {z_d, ẑ_xc, z_text}``:

* ``z_text`` enters through the UNet's cross-attention (``encoder_hidden_states``), as in
  Stable Diffusion;
* the visual conditions ``z_d`` and ``ẑ_xc`` live on the small token grid; they are
  upsampled (nearest by default) to the latent grid and **concatenated to the noisy latent
  along channels**, so the UNet's ``in_channels = C_L + C_zd + C_zxc``.  For a pretrained UNet
  :func:`widen_conv_in` adds zero-initialised input filters for the new channels, so at
  initialisation ε_θ behaves exactly like the pretrained model (the InstructPix2Pix /
  ControlNet-style choice); this keeps the decoder a plain UNet call.

Training (Eq. 19): ``L_diff = E ||ε − ε_θ(z_t, t, Z_cond)||²`` with
``z_t = √ᾱ_t z_0 + √(1 − ᾱ_t) ε`` (Eq. 15), ``z_0 = z_Lx``.  The target follows the
scheduler's ``prediction_type``: ε (the paper, SD 2.1-base), or ``v = √ᾱ_t ε − √(1 − ᾱ_t) z_0``
(SD 2.x-v; the ``lab`` preset, see ``MDICConfig.prediction_type``), or ``z_0`` itself.

Sampling: DDIM (deterministic, η = 0) from ``z_T ~ N(0, I)`` drawn with an explicit
``torch.Generator``, ``num_inference_steps`` steps (paper: 10), then ``D_vae`` (Eq. 18).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["widen_conv_in", "upsample_condition", "diffusion_loss", "ddim_sample"]


def widen_conv_in(unet, extra_channels: int):
    """Give ``unet.conv_in`` ``extra_channels`` more input channels with zero weights (in place).

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
    if extra_channels <= 0:
        return unet
    old = unet.conv_in
    new = nn.Conv2d(old.in_channels + extra_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
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


def _eps(unet, z_t, t, visual, text):
    x = torch.cat([z_t, visual], dim=1) if visual is not None else z_t
    return unet(x, t, encoder_hidden_states=text).sample


def diffusion_loss(unet, scheduler, z0: torch.Tensor, visual: torch.Tensor, text: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """L_diff of Eq. 19 for one draw of ``t ~ U{0..T−1}`` and ``ε ~ N(0, I)`` per sample.

    ``visual`` is the upsampled channel condition ``(B, C_cond, H, W)``; ``text`` the
    cross-attention states ``(B, L, D)``.
    """
    b = z0.shape[0]
    n_t = scheduler.config.num_train_timesteps
    t = torch.randint(0, n_t, (b,), generator=generator).to(z0.device)
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
    return F.mse_loss(_eps(unet, z_t, t, visual, text), target)  # Eq. 19 (for ε; v / z_0 targets alike)


@torch.no_grad()
def ddim_sample(unet, scheduler, visual: torch.Tensor, text: torch.Tensor, latent_shape: tuple,
                num_inference_steps: int = 10, generator: torch.Generator | None = None,
                return_trajectory: bool = False):
    """Denoise ``z_T ~ N(0, I)`` to ``ẑ_0`` in ``num_inference_steps`` DDIM steps (Eq. 17 with η = 0).

    The scheduler is copied, so the caller's scheduler state is not modified.  With
    ``return_trajectory`` it returns ``(ẑ_0, [x̂_0 prediction after each step])``, where the
    prediction is ``(z_t − √(1 − ᾱ_t) ε_θ) / √ᾱ_t`` (the DDIM "predicted x_0").
    """
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    sched = copy.deepcopy(scheduler)
    sched.set_timesteps(num_inference_steps)
    z = torch.randn(tuple(latent_shape), generator=generator).to(visual.device if visual is not None else text.device)
    z = z * sched.init_noise_sigma
    traj = []
    for t in sched.timesteps:
        eps = _eps(unet, sched.scale_model_input(z, t), t, visual, text)
        out = sched.step(eps, t, z, eta=0.0)
        z = out.prev_sample
        if return_trajectory:
            traj.append(out.pred_original_sample)
    return (z, traj) if return_trajectory else z
