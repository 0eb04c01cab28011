"""One stereo pair through every stage of MDIC, for teaching (notebook 08).

:func:`trace_pair` runs the encoder and the decoder of a trained :class:`MDIC` on one pair
and returns every intermediate the paper's Fig. 4 names, as plain tensors: the latents
``z_Lx``, ``z_Ly`` (Eqs. 1–2), the transmitted indices and ẑ_x, the mask ``m_v`` (Eq. 8,
inference: no text; Gumbel noise only with ``mask_inference_noise``), ``ẑ_xc`` (Eq. 13),
``z_d`` (Eq. 14), the trajectory of decoded x̂_0 predictions (Eq. 17; the model's sampler,
DDIM or DDPM, with classifier-free guidance where its profile has it) and the reconstruction (Eq. 18), plus the
bitstream and its coded size, and the main view through the frozen VAE alone,
D_vae(E_vae(I_x)) (Eqs. 1 and 18 without coding: the best the decoder's latent space can draw).
"""

from __future__ import annotations

import torch

from .decoder import sample_latent, sampling_scheduler
from .vmgm_ts import gumbel_noise

__all__ = ["trace_pair"]


@torch.no_grad()
def trace_pair(model, left: torch.Tensor, right: torch.Tensor, caption: str, seed: int = 0,
               num_inference_steps: int | None = None) -> dict:
    """All stages of MDIC for one pair ``left``/``right`` ``(3, H, W)`` in [0, 1].

    Returns a dict: ``strings`` (the container bytes), ``coded_bytes``, ``bpp_coded``,
    ``bpp_payload``, ``bpp_estimated``, ``indices`` ``(h, w)``, ``decoded_indices``,
    ``z_lx``, ``z_ly`` ``(C_L, H/f, W/f)``, ``zx_hat``, ``zy_hat``, ``z_y``, ``mask`` ``(h, w)``,
    ``mask_prob`` (the soft mask σ(logits / τ), Eq. 7 without noise), ``zxc``, ``z_d`` ``(C, h, w)``,
    ``trajectory`` (list of decoded x̂_0 images ``(3, H, W)``, one per step), ``timesteps``,
    ``reconstruction`` ``(3, H, W)`` -- identical to ``model.decompress`` with the same seed --
    and ``vae_reconstruction`` ``(3, H, W)``: D_vae(z_Lx), the main view through the frozen VAE.
    """
    if left.ndim != 3 or right.ndim != 3:
        raise ValueError(f"left and right must be (3, H, W) images, got {tuple(left.shape)} and {tuple(right.shape)}")
    model.eval()
    x, y = left[None].float(), right[None].float()
    h, w = model.config.image_size
    # ---- encoder (sees I_x only) ----
    z_lx, _, vq_x = model.encode_x(x)
    strings = model.compress(x)["strings"]
    # ---- decoder ----
    idx = model.decode_indices(strings)
    cfg = model.config
    # the decoder as model.decompress runs it (same seeded stream: z_T, then any mask / DDPM noise),
    # with the trajectory kept: the profile's sampler, guidance and mask noise included
    g = torch.Generator().manual_seed(int(seed))
    shape = (1, model.backbone.vae.config.latent_channels) + tuple(model.latent_grid)
    noise = torch.randn(shape, generator=g)
    mask_noise = gumbel_noise((1, 1) + tuple(model.side_grid), g) if cfg.mask_inference_noise else None
    parts = model.decoder_side(model.vq.lookup(idx), y, [caption], stochastic=False, mask_noise=mask_noise)
    visual, text = model.condition(parts)
    uncond = (model.empty_text().expand_as(text)
              if cfg.guidance_scale != 1.0 and cfg.use_text_condition else None)
    steps = cfg.num_inference_steps if num_inference_steps is None else int(num_inference_steps)
    z0, traj = sample_latent(model.backbone.unet, model.backbone.scheduler, visual, text, shape, steps,
                             sampler=cfg.sampler, generator=[g], noise=noise, return_trajectory=True,
                             anchor=model.anchor(visual), uncond_text=uncond, guidance_scale=cfg.guidance_scale)
    dec = lambda z: ((model.backbone.decode_latent(z) + 1.0) / 2.0).clamp(0.0, 1.0)[0]
    sched_steps = sampling_scheduler(model.backbone.scheduler, cfg.sampler)
    sched_steps.set_timesteps(steps)
    mask = parts["mask"]
    return {
        "strings": strings,
        "coded_bytes": len(strings[0]),
        "bpp_coded": model.bpp(strings)[0],
        "bpp_payload": model.payload_bpp(strings)[0],
        "bpp_estimated": float(model.entropy_model.rate_bits(vq_x.indices)[0]) / (h * w),
        "max_payload_bpp": model.max_bpp,
        "indices": vq_x.indices[0],
        "decoded_indices": idx[0],
        "z_lx": z_lx[0],
        "z_ly": model.backbone.encode_image(y * 2.0 - 1.0)[0],
        "zx_hat": parts["zx_hat"][0],
        "zy_hat": parts["zy_hat"][0],
        "z_y": parts["z_y"][0],
        "mask": mask.m_v[0, 0],
        "mask_prob": mask.m[0, 0],
        "zxc": parts["zxc"][0],
        "z_d": parts["z_d"][0],
        "trajectory": [dec(p) for p in traj],
        "timesteps": [int(t) for t in sched_steps.timesteps],
        "reconstruction": dec(z0),
        "vae_reconstruction": dec(z_lx),  # no coding, no diffusion: the VAE's own ceiling
    }
