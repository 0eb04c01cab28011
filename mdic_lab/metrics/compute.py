"""One call for a set of metrics, skipping (and reporting) those that cannot run here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .errors import MetricUnavailable

__all__ = ["METRICS", "DEFAULT_METRICS", "HIGHER_IS_BETTER", "MetricReport", "compute_metrics"]

log = logging.getLogger(__name__)

#: name -> what it compares.
METRICS = {
    "psnr": "pair", "ms_ssim": "pair", "lpips": "pair", "dists": "pair",
    "fid": "set", "kid": "set", "niqe": "no-reference", "miou": "labels",
}
DEFAULT_METRICS = ("psnr", "ms_ssim", "lpips", "dists")
#: direction of each metric (for BD-quality's ``lower_is_better``).
HIGHER_IS_BETTER = {"psnr": True, "ms_ssim": True, "lpips": False, "dists": False,
                    "fid": False, "kid": False, "niqe": False, "miou": True}


@dataclass
class MetricReport:
    """Computed values, and the metrics that could not be computed with the reason."""

    values: dict = field(default_factory=dict)   # name -> float
    missing: dict = field(default_factory=dict)  # name -> message naming what is missing

    def to_dict(self) -> dict:
        """Plain JSON-ready dict ``{"values": ..., "missing": ...}``."""
        return {"values": dict(self.values), "missing": dict(self.missing)}


def compute_metrics(x, y, names=DEFAULT_METRICS, *, weights_dir=None, data_range: float = 1.0,
                    lpips_net: str = "alex", ms_ssim_win_size: int | None = None, kid_kwargs=None,
                    niqe_model_path=None, labels=None, segnet=None) -> MetricReport:
    """Compute ``names`` for reconstructions ``x`` against originals ``y`` (``(N, 3, H, W)`` in [0, 1]).

    Pair metrics (PSNR, MS-SSIM, LPIPS, DISTS) are means over image pairs; FID and KID
    compare the two sets; NIQE scores ``x`` alone; mIoU segments ``x`` with the synthetic
    world's segmentation net (``segnet``, default the cached one of
    :func:`mdic_lab.metrics.segnet.load_segnet`) and scores it against ``labels``
    ``(N, H, W)``, the class ids of the originals (skipped when ``labels`` is None or the
    net was never trained).  A metric whose weights are not on disk is skipped with a
    logged warning and listed in ``report.missing`` -- never returned as NaN and never
    computed on random weights.  Bad inputs still raise.

    >>> import torch
    >>> x = torch.rand(2, 3, 128, 256, generator=torch.Generator().manual_seed(0))
    >>> r = compute_metrics(x, x, ["psnr", "ms_ssim"])
    >>> r.values, r.missing
    ({'psnr': inf, 'ms_ssim': 1.0}, {})
    """
    from .distortion import MS_SSIM_WIN_SIZE, ms_ssim, psnr
    from .distribution import fid, kid
    from .niqe import niqe
    from .perceptual import dists_distance, lpips_distance

    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r} (expected one of: {', '.join(METRICS)})")
    fns = {
        "psnr": lambda: psnr(x, y, data_range=data_range),
        "ms_ssim": lambda: ms_ssim(x, y, data_range=data_range, win_size=ms_ssim_win_size or MS_SSIM_WIN_SIZE),
        "lpips": lambda: lpips_distance(x, y, net=lpips_net, weights_dir=weights_dir),
        "dists": lambda: dists_distance(x, y, weights_dir=weights_dir),
        "fid": lambda: fid(x, y, weights_dir=weights_dir),
        "kid": lambda: kid(x, y, weights_dir=weights_dir, **(kid_kwargs or {})),
        "niqe": lambda: niqe(x, model_path=niqe_model_path, weights_dir=weights_dir),
        "miou": lambda: _miou(x, labels, segnet),
    }
    report = MetricReport()
    for name in names:
        try:
            report.values[name] = float(fns[name]())
        except MetricUnavailable as err:
            log.warning("metric %s skipped: %s", name, err)
            report.missing[name] = str(err)
    return report


def _miou(x, labels, segnet):
    """mIoU of the segmentation of ``x`` against ``labels`` (see :mod:`mdic_lab.metrics.segnet`)."""
    from .segnet import load_segnet, reconstruction_miou

    if labels is None:
        raise MetricUnavailable("miou needs the ground-truth label maps of the originals "
                                "(compute_metrics(..., labels=(N, H, W) class ids)); "
                                "only the synthetic world provides them")
    return reconstruction_miou(segnet if segnet is not None else load_segnet(), x, labels)
