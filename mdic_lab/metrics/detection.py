"""How well a score detects a binary label: the area under the ROC curve."""

from __future__ import annotations

import numpy as np

__all__ = ["roc_auc"]


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` as a detector of ``labels`` (Mann–Whitney U, ties averaged).

    0.5 is chance; NaN when one class is absent.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    >>> roc_auc([1, 1, 1], [0, 1, 0]), roc_auc([0.3, 0.1], [1, 1])
    (0.5, nan)
    """
    from scipy.stats import rankdata

    s, y = np.asarray(scores, float).ravel(), np.asarray(labels, bool).ravel()
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
