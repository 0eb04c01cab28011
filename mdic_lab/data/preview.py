"""A picture of stereo pairs with their side-view captions (for notebooks and checks)."""

from __future__ import annotations

import textwrap

import numpy as np

from .captioners import as_uint8_image

__all__ = ["pair_grid"]


def pair_grid(items, path=None, wrap: int = 120, show_valid: bool = False):
    """Plot items (dataset dicts with ``left``, ``right``, ``caption``) as rows of pairs.

    Parameters
    ----------
    items : sequence of dict
        e.g. ``[ds[i] for i in range(6)]`` of any mdic_lab image data set.
    path : path, optional
        Also save the figure there (PNG).
    wrap : int
        Caption line width in characters.
    show_valid : bool
        Darken right-view pixels whose ``side_valid`` is False (synthetic world only).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    items = list(items)
    if not items:
        raise ValueError("pair_grid needs at least one item")
    fig, axes = plt.subplots(len(items), 2, figsize=(11, 3.1 * len(items)), squeeze=False)
    for r, it in enumerate(items):
        right = as_uint8_image(it["right"])
        if show_valid and "side_valid" in it:
            valid = np.asarray(it["side_valid"])
            right = np.where(valid[..., None], right, (right * 0.35).astype(np.uint8))
        axes[r, 0].imshow(as_uint8_image(it["left"]))
        axes[r, 1].imshow(right)
        axes[r, 0].set_title(f"main view I_x (left) #{it.get('index', r)}", fontsize=8)
        axes[r, 1].set_title("side view I_y (right)" + (", inconsistent pixels darkened" if show_valid else ""),
                             fontsize=8)
        for a in axes[r]:
            a.set_xticks([])
            a.set_yticks([])
        text = "\n".join(textwrap.wrap("caption of I_y: " + it.get("caption", ""), wrap))
        axes[r, 0].text(0.0, -0.04, text, transform=axes[r, 0].transAxes, va="top", ha="left", fontsize=7.5,
                        clip_on=False)
    fig.subplots_adjust(hspace=0.55, wspace=0.03, left=0.02, right=0.98, top=0.97, bottom=0.04)
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig
