"""KITTI Stereo 2012 + 2015 pairs with NDIC's split lists (as used by MDIC, Sec. 4.1).

Layout expected under ``root``::

    root/data_scene_flow_multiview/{training,testing}/image_{2,3}/NNNNNN_MM.png   (2015)
    root/data_stereo_flow_multiview/{training,testing}/image_{2,3}/NNNNNN_MM.png  (2012)

The split lists ship with the package (``mdic_lab/data/splits/KITTI_stereo_{split}.txt``,
train 1576 pairs, val 50, test 790). Each pair is two consecutive lines: the first is
the image that gets coded (``I_x``), the second the decoder's side information (``I_y``).

Note on the lists (checked on the shipped files): train and test hold every physical
stereo pair *twice*, once as (image_2, image_3) and once as (image_3, image_2) — 788
physical pairs for train, 395 for test; val holds 50 pairs in (image_2, image_3) order
only. ``order="as_listed"`` (default) reproduces NDIC's 1576/50/790 items;
``order="left_right"`` keeps each physical pair once with ``I_x`` = image_2 (left camera).

Each image is centre-cropped to 370x740 and resized to 128x256 (NDIC Sec. 4; MDIC Sec. 4.1).
Items: ``left`` = ``I_x`` and ``right`` = ``I_y`` (float32 (3, H, W) in [0, 1]),
``caption`` (of ``I_y``, from ``captioner``; ``""`` without one), ``nouns``, ``index``,
``paths``. KITTI Stereo has no semantic labels, so there is no ``labels`` key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .imageio import center_crop, load_rgb, resize_rgb, to_chw_float
from .vocabulary import extract_nouns

__all__ = ["KITTI_SPLITS", "read_split_list", "split_list_path", "KittiStereo"]

#: Pairs per split in the shipped lists.
KITTI_SPLITS = {"train": 1576, "val": 50, "test": 790}
_ORDERS = ("as_listed", "left_right")
_LAYOUT = ("root/data_scene_flow_multiview/{training,testing}/image_{2,3}/*.png and "
           "root/data_stereo_flow_multiview/{training,testing}/image_{2,3}/*.png")


def split_list_path(split: str):
    """The packaged split list of ``split`` (an importlib.resources Traversable)."""
    if split not in KITTI_SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of: {', '.join(KITTI_SPLITS)})")
    return resources.files("mdic_lab.data").joinpath("splits", f"KITTI_stereo_{split}.txt")


def _camera(path: str) -> str:
    parts = path.split("/")
    cams = [p for p in parts if p in ("image_2", "image_3")]
    if len(cams) != 1:
        raise ValueError(f"path {path!r} names no KITTI colour camera folder (expected image_2 or image_3)")
    return cams[0]


def read_split_list(source) -> list[tuple[str, str]]:
    """Parse a split list into ``(x_path, y_path)`` pairs (paths relative to the KITTI root).

    ``source`` is a split name ('train', 'val', 'test'), a path to a list file, or a
    sequence of lines. Every pair must be one frame seen by image_2 and image_3.

    >>> read_split_list(["a/training/image_2/000001_10.png", "a/training/image_3/000001_10.png"])
    [('a/training/image_2/000001_10.png', 'a/training/image_3/000001_10.png')]
    >>> len(read_split_list("train")), len(read_split_list("val")), len(read_split_list("test"))
    (1576, 50, 790)
    """
    if isinstance(source, str) and source in KITTI_SPLITS:
        text, name = split_list_path(source).read_text(), f"KITTI_stereo_{source}.txt"
        lines = text.split("\n")
    elif isinstance(source, (str, Path)):
        p = Path(source)
        if not p.is_file():
            raise FileNotFoundError(f"split list {str(p)!r} does not exist "
                                    f"(expected a split name {list(KITTI_SPLITS)} or a list file)")
        lines, name = p.read_text().split("\n"), str(p)
    else:
        lines, name = list(source), "<lines>"
    lines = [ln.strip() for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) % 2:
        raise ValueError(f"split list {name} has {len(lines)} lines (expected pairs of two lines)")
    pairs = []
    for k in range(0, len(lines), 2):
        a, b = lines[k], lines[k + 1]
        ca, cb = _camera(a), _camera(b)
        if {ca, cb} != {"image_2", "image_3"} or a.replace(ca, "CAM") != b.replace(cb, "CAM"):
            raise ValueError(f"split list {name}, lines {k + 1}-{k + 2}: {a!r} and {b!r} are not the "
                             "image_2/image_3 views of one frame")
        pairs.append((a, b))
    return pairs


class KittiStereo:
    """KITTI Stereo pairs as a torch ``Dataset`` (see the module docstring).

    Parameters
    ----------
    root : path
        Folder holding ``data_scene_flow_multiview/`` and ``data_stereo_flow_multiview/``.
    split : {'train', 'val', 'test'}
    size : (int, int)
        Output ``(H, W)``; default ``(128, 256)``.
    crop : (int, int)
        Centre crop before resizing; default ``(370, 740)``.
    order : {'as_listed', 'left_right'}
    captioner : callable, optional
        ``uint8 (H, W, 3) → str`` applied to the side view ``I_y`` after resizing (e.g. a
        :class:`~mdic_lab.data.captioners.CachedCaptioner`).
    pairs : sequence of (str, str), optional
        Use these pairs instead of the packaged list (tests, subsets).
    """

    def __init__(self, root, split: str = "train", size=(128, 256), crop=(370, 740), order: str = "as_listed",
                 captioner: Callable | None = None, pairs: Sequence[tuple[str, str]] | None = None):
        if split not in KITTI_SPLITS:
            raise ValueError(f"unknown split {split!r} (expected one of: {', '.join(KITTI_SPLITS)})")
        if order not in _ORDERS:
            raise ValueError(f"unknown order {order!r} (expected one of: {', '.join(_ORDERS)})")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"KITTI root {str(self.root)!r} does not exist (expected {_LAYOUT})")
        self.split, self.size, self.crop, self.order = split, tuple(size), tuple(crop), order
        pairs = read_split_list(split) if pairs is None else read_split_list([p for pair in pairs for p in pair])
        if order == "left_right":
            seen, kept = set(), []
            for a, b in pairs:
                left, right = (a, b) if _camera(a) == "image_2" else (b, a)
                if (left, right) not in seen:
                    seen.add((left, right))
                    kept.append((left, right))
            pairs = kept
        missing = [p for pair in pairs for p in pair if not (self.root / p).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} KITTI images of split {split!r} are missing under {str(self.root)!r}, "
                f"e.g. {str(self.root / missing[0])!r} (expected {_LAYOUT})")
        self.pairs = pairs
        self.captioner = captioner

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, path: str) -> np.ndarray:
        """Read, centre-crop and resize one image (uint8 (H, W, 3))."""
        img = load_rgb(self.root / path)
        return resize_rgb(center_crop(img, self.crop), self.size)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= int(index) < len(self):
            raise IndexError(f"index {index} out of range for KITTI {self.split!r} of length {len(self)}")
        xp, yp = self.pairs[int(index)]
        x, y = self.load(xp), self.load(yp)
        caption = self.captioner(y) if self.captioner is not None else ""
        return {"left": to_chw_float(x), "right": to_chw_float(y), "caption": caption,
                "nouns": list(dict.fromkeys(extract_nouns(caption))), "index": int(index) % len(self),
                "paths": (xp, yp)}
