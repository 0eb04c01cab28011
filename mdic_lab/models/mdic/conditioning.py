"""Assemble the diffusion condition ``Z_cond = {z_d, ẑ_xc, z_text}`` (MDIC Sec. 3.4) per variant.

The visual part is a channel stack on the latent grid (see :mod:`.decoder` for the
choice), the text part the cross-attention states.  The ablation variants of
:data:`~mdic_lab.models.mdic.config.VARIANTS` act here, each removing one thing:

==========  ===========================================  ==========================
variant     visual channels                              cross-attention states
==========  ===========================================  ==========================
full        [z_d, ẑ_xc]                                  z_text
no_text     [z_d, ẑ_xc]                                  E_clip("") (caption-free)
no_ts       [z_d, ẑ_xc]                                  z_text
no_g1g2     [z_y, ẑ_x]   (built by the model)            z_text
no_g2       [z_y, ẑ_xc]  (built by the model)            z_text
no_zd       [ẑ_xc]                                       z_text
no_zd_zxc   [ẑ_x]                                        z_text
==========  ===========================================  ==========================
"""

from __future__ import annotations

import torch

from .decoder import upsample_condition

__all__ = ["build_condition"]


def build_condition(config, parts: dict, latent_grid: tuple, empty_text: torch.Tensor | None = None):
    """``(visual (B, C_cond, H, W), text (B, L, D))`` from the decoder-side ``parts``.

    Parameters
    ----------
    config : MDICConfig
        Its ``variant`` selects what enters.
    parts : dict
        ``zx_hat``, ``zxc``, ``z_d``, ``z_text`` (as computed by :meth:`MDIC.decoder_side`).
    latent_grid : tuple
        ``(H, W)`` of the diffusion latent.
    empty_text : tensor, optional
        ``(1, L, D)`` embedding of the empty caption, used when z_text is removed (``no_text``).
    """
    if config.variant == "no_zd_zxc":
        maps = [parts["zx_hat"]]  # the transmitted latent only: no side information fused
    else:
        maps = ([parts["z_d"]] if config.use_zd else []) + [parts["zxc"]]
    visual = torch.cat([upsample_condition(m, latent_grid, config.condition_upsample) for m in maps], dim=1)
    if config.use_text_condition:
        text = parts["z_text"]
    else:
        if empty_text is None:
            raise ValueError("variant 'no_text' needs empty_text, the embedding of the empty caption")
        text = empty_text.expand(visual.shape[0], -1, -1)
    return visual, text
