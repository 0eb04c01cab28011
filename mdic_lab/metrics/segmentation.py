"""Semantic consistency: mean intersection over union from a confusion matrix."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "miou", "per_class_iou"]


def _labels(x, name):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer label array, got dtype {a.dtype}")
    return a.astype(np.int64)


def confusion_matrix(pred_labels, true_labels, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """``(K, K)`` counts, rows = true class, columns = predicted class; ``ignore_index`` pixels dropped.

    >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
    [[1, 1], [0, 1]]
    """
    p, t = _labels(pred_labels, "pred_labels"), _labels(true_labels, "true_labels")
    if p.shape != t.shape:
        raise ValueError(f"pred_labels and true_labels must have the same shape, got {p.shape} and {t.shape}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    keep = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    p, t = p[keep], t[keep]
    for a, name in ((t, "true_labels"), (p, "pred_labels")):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes - 1}] "
                             f"(found [{a.min()}, {a.max()}]; ignore_index={ignore_index})")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """``IoU_c = TP / (TP + FP + FN)`` per class; NaN for a class absent from both maps."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def miou(pred_labels, true_labels, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean IoU over the classes that occur in the prediction or the ground truth.

    ``mIoU = (1/|C'|) Σ_{c ∈ C'} TP_c / (TP_c + FP_c + FN_c)`` with ``C'`` the classes whose
    union is nonempty (absent classes are skipped, as in mmsegmentation's ``nanmean``),
    pooled over all images passed.  Pixels whose true label is ``ignore_index`` are dropped.

    >>> miou([0, 1, 1, 2], [0, 1, 1, 2], 3)
    1.0
    >>> miou([0, 0, 1, 1], [0, 1, 1, 1], 2)   # IoU_0 = 1/2, IoU_1 = 2/3
    0.5833333333333333
    """
    iou = per_class_iou(confusion_matrix(pred_labels, true_labels, num_classes, ignore_index))
    if np.all(np.isnan(iou)):
        raise ValueError("no labelled pixels: every pixel is ignore_index or the maps are empty")
    return float(np.nanmean(iou))
