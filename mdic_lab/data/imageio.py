"""Image file helpers shared by the real-data readers: load, centre-crop, resize, tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_rgb", "load_label", "center_crop", "resize_rgb", "resize_labels", "to_chw_float", "fit_image",
           "stereo_motorcycle"]


def _open(path):
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"image file {str(path)!r} is not a readable image ({e})") from None
    return im


def load_rgb(path) -> np.ndarray:
    """Read an image file as uint8 RGB ``(H, W, 3)``."""
    return np.asarray(_open(path).convert("RGB"), dtype=np.uint8)


def load_label(path) -> np.ndarray:
    """Read a single-channel label PNG as an integer array ``(H, W)``."""
    im = _open(path)
    if im.mode not in ("L", "P", "I", "I;16"):
        raise ValueError(f"label file {str(path)!r} has mode {im.mode!r} (expected a single-channel PNG)")
    return np.asarray(im).astype(np.int64)


def center_crop(img: np.ndarray, crop) -> np.ndarray:
    """Centre crop ``(h, w)`` of an ``(H, W, ...)`` array (NDIC: 375x1242 → 370x740).

    >>> center_crop(np.arange(20).reshape(4, 5), (2, 3)).tolist()
    [[6, 7, 8], [11, 12, 13]]
    """
    ch, cw = int(crop[0]), int(crop[1])
    H, W = img.shape[:2]
    if ch > H or cw > W:
        raise ValueError(f"cannot centre-crop {ch}x{cw} from an image of {H}x{W}")
    top, left = (H - ch) // 2, (W - cw) // 2
    return img[top:top + ch, left:left + cw]


def resize_rgb(img: np.ndarray, size) -> np.ndarray:
    """Resize uint8 RGB to ``(h, w)`` with PIL's antialiased bicubic filter."""
    from PIL import Image

    h, w = int(size[0]), int(size[1])
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC), dtype=np.uint8)


def resize_labels(lab: np.ndarray, size) -> np.ndarray:
    """Resize a label map to ``(h, w)`` with nearest-neighbour sampling (ids unchanged)."""
    h, w = int(size[0]), int(size[1])
    H, W = lab.shape
    if (H, W) == (h, w):
        return lab
    rows = np.minimum(((np.arange(h) + 0.5) * H / h).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * W / w).astype(np.int64), W - 1)
    return lab[rows[:, None], cols[None, :]]


def to_chw_float(img: np.ndarray):
    """uint8 ``(H, W, 3)`` → float32 tensor ``(3, H, W)`` in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


def fit_image(img, size=(128, 256)):
    """Centre-crop an (H, W, 3) uint8/float image to the aspect of ``size`` and resize → (3, H, W) float in [0, 1]."""
    import torch
    from PIL import Image

    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"img must be (H, W, 3), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    h, w = a.shape[:2]
    th, tw = size
    if h * tw > w * th:  # too tall: crop rows
        nh = w * th // tw
        a = a[(h - nh) // 2:(h - nh) // 2 + nh]
    else:
        nw = h * tw // th
        a = a[:, (w - nw) // 2:(w - nw) // 2 + nw]
    im = Image.fromarray(a).resize((tw, th), Image.LANCZOS)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def stereo_motorcycle(size=(128, 256)):
    """scikit-image's Middlebury stereo pair (bundled, no download), fitted to ``size``: ``(left, right)``."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    return fit_image(left, size), fit_image(right, size)
