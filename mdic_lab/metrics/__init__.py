"""Image-quality metrics and Bjøntegaard tools.

Distortion: :func:`psnr`, :func:`ms_ssim`; perceptual: :func:`lpips_distance`,
:func:`dists_distance`; distribution: :func:`fid`, :func:`kid`; no-reference: :func:`niqe`;
semantic: :func:`miou`; curves: :func:`bd_rate`, :func:`bd_quality`.  Learned metrics load
pretrained weights from local files only (:mod:`mdic_lab.metrics.weights`) and raise
:class:`MetricUnavailable` when they are missing; :func:`compute_metrics` skips and reports them.
"""

from .bd import bd_quality, bd_rate, fit_curve
from .compute import DEFAULT_METRICS, HIGHER_IS_BETTER, METRICS, MetricReport, compute_metrics
from .distortion import MS_SSIM_WIN_SIZE, ms_ssim, mse, psnr
from .distribution import fid, fid_from_features, inception_features, kid, kid_from_features
from .errors import MetricUnavailable
from .niqe import niqe, niqe_features
from .perceptual import dists_distance, lpips_distance
from .segmentation import confusion_matrix, miou, per_class_iou
from .weights import WEIGHT_FILES, find_weights, missing_weights

__all__ = [
    "MetricUnavailable", "compute_metrics", "MetricReport", "METRICS", "DEFAULT_METRICS", "HIGHER_IS_BETTER",
    "psnr", "mse", "ms_ssim", "MS_SSIM_WIN_SIZE", "lpips_distance", "dists_distance",
    "fid", "kid", "fid_from_features", "kid_from_features", "inception_features",
    "niqe", "niqe_features", "miou", "confusion_matrix", "per_class_iou",
    "bd_rate", "bd_quality", "fit_curve", "WEIGHT_FILES", "find_weights", "missing_weights",
]
