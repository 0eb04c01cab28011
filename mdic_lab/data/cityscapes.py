"""Cityscapes stereo pairs (left = ``I_x``, right = ``I_y``), resized to 128x256 (MDIC Sec. 4.1).

Layout expected under ``root``::

    root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    root/rightImg8bit/{split}/{city}/{city}_{seq}_{frame}_rightImg8bit.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png     (optional)

Full splits hold train 2975, val 500, test 1525 pairs. Images are resized directly
(no crop). If ``gtFine`` is present the item has ``labels``: the 19 Cityscapes training
classes (:data:`CITYSCAPES_CLASSES`, ids 0..18) with 255 = ignore, resized with
nearest-neighbour sampling — the map the mIoU of MDIC Sec. 4.1 is computed on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .imageio import load_label, load_rgb, resize_labels, resize_rgb, to_chw_float
from .vocabulary import extract_nouns

__all__ = ["CITYSCAPES_SPLITS", "CITYSCAPES_CLASSES", "IGNORE_INDEX", "label_ids_to_train_ids", "CityscapesStereo"]

CITYSCAPES_SPLITS = {"train": 2975, "val": 500, "test": 1525}
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
IGNORE_INDEX = 255
# labelIds of the 19 training classes, in trainId order (cityscapesScripts labels.py)
_TRAIN_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
_LUT = np.full(256, IGNORE_INDEX, np.int64)
_LUT[list(_TRAIN_LABEL_IDS)] = np.arange(19)
_LAYOUT = ("root/leftImg8bit/{split}/{city}/*_leftImg8bit.png and "
           "root/rightImg8bit/{split}/{city}/*_rightImg8bit.png (optional root/gtFine/{split}/{city}/*_gtFine_labelIds.png)")


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes ``labelIds`` to the 19 ``trainIds`` (others → 255).

    >>> label_ids_to_train_ids(np.array([7, 26, 0, 33])).tolist()
    [0, 13, 255, 18]
    """
    a = np.asarray(label_ids)
    if a.size and (a.min() < 0 or a.max() > 255):
        raise ValueError(f"labelIds must lie in 0..255, got range {a.min()}..{a.max()}")
    return _LUT[a.astype(np.int64)]


class CityscapesStereo:
    """Cityscapes stereo pairs as a torch ``Dataset`` (see the module docstring).

    Parameters
    ----------
    root : path
    split : {'train', 'val', 'test'}
    size : (int, int)
        Output ``(H, W)``; default ``(128, 256)``.
    captioner : callable, optional
        ``uint8 (H, W, 3) → str`` applied to the resized right view (``""`` without one).
    labels : bool or None
        ``None`` (default): load ``gtFine`` labels if that folder exists; ``True``:
        require them; ``False``: never load them.
    """

    class_names = CITYSCAPES_CLASSES
    ignore_index = IGNORE_INDEX

    def __init__(self, root, split: str = "train", size=(128, 256), captioner: Callable | None = None,
                 labels: bool | None = None):
        if split not in CITYSCAPES_SPLITS:
            raise ValueError(f"unknown split {split!r} (expected one of: {', '.join(CITYSCAPES_SPLITS)})")
        self.root, self.split, self.size = Path(root), split, tuple(size)
        left_dir = self.root / "leftImg8bit" / split
        if not left_dir.is_dir():
            raise FileNotFoundError(f"Cityscapes folder {str(left_dir)!r} does not exist (expected {_LAYOUT})")
        lefts = sorted(left_dir.glob("*/*_leftImg8bit.png"))
        if not lefts:
            raise FileNotFoundError(f"no *_leftImg8bit.png files under {str(left_dir)!r} (expected {_LAYOUT})")
        gt_dir = self.root / "gtFine" / split
        self.has_labels = gt_dir.is_dir() if labels is None else bool(labels)
        if labels and not gt_dir.is_dir():
            raise FileNotFoundError(f"labels=True but {str(gt_dir)!r} does not exist (expected {_LAYOUT})")
        self.items = []
        missing = []
        for lp in lefts:
            city, stem = lp.parent.name, lp.name[: -len("_leftImg8bit.png")]
            rp = self.root / "rightImg8bit" / split / city / f"{stem}_rightImg8bit.png"
            gp = gt_dir / city / f"{stem}_gtFine_labelIds.png"
            if not rp.is_file():
                missing.append(rp)
            if self.has_labels and not gp.is_file():
                missing.append(gp)
            self.items.append((lp, rp, gp))
        if missing:
            raise FileNotFoundError(f"{len(missing)} Cityscapes files are missing, e.g. {str(missing[0])!r} "
                                    f"(expected {_LAYOUT})")
        self.captioner = captioner

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= int(index) < len(self):
            raise IndexError(f"index {index} out of range for Cityscapes {self.split!r} of length {len(self)}")
        lp, rp, gp = self.items[int(index)]
        x, y = resize_rgb(load_rgb(lp), self.size), resize_rgb(load_rgb(rp), self.size)
        caption = self.captioner(y) if self.captioner is not None else ""
        item = {"left": to_chw_float(x), "right": to_chw_float(y), "caption": caption,
                "nouns": list(dict.fromkeys(extract_nouns(caption))), "index": int(index) % len(self),
                "paths": (str(lp.relative_to(self.root)), str(rp.relative_to(self.root)))}
        if self.has_labels:
            import torch

            lab = label_ids_to_train_ids(resize_labels(load_label(gp), self.size))
            item["labels"] = torch.from_numpy(np.ascontiguousarray(lab))
        return item
