"""Evaluate a trained MDIC on stereo pairs: coded bpp from the real bytes, PSNR, MS-SSIM, LPIPS.

Each pair goes through the full codec: ``compress(I_x)`` → container bytes →
``decompress(bytes, I_y, caption(I_y))``.  ``bpp_coded`` counts every byte of the stream
(container header + range-coded indices + CRC) over the pixels of I_x; ``bpp_payload``
the range-coded indices alone; ``bpp_estimated`` is the entropy model's ESTIMATE
``Σ −log2 p(k_i | k_<i) / (H·W)`` (reported apart, never as a coded rate).
LPIPS needs its pretrained weights; without them it is NaN and ``lpips_available`` False.
"""

from __future__ import annotations

import math
import time

import torch

__all__ = ["evaluate_mdic", "summarize_mdic", "EVAL_FIELDS"]

EVAL_FIELDS = ["name", "bpp_coded", "bpp_payload", "bpp_estimated", "psnr", "ms_ssim", "lpips", "encode_s",
               "decode_s", "indices_round_trip"]


def _lpips_fn():
    from mdic_lab import metrics as M

    try:
        probe = torch.rand(1, 3, 64, 64)
        M.lpips_distance(probe, probe)
        return M.lpips_distance
    except M.MetricUnavailable:
        return None


@torch.no_grad()
def evaluate_mdic(model, dataset, *, limit: int | None = None, num_inference_steps: int | None = None,
                  seed: int = 0, use_lpips: bool = True, captioner=None) -> list:
    """Per-pair rows (:data:`EVAL_FIELDS`) for the first ``limit`` pairs of ``dataset``.

    ``dataset`` is any pair source (e.g. :func:`mdic_lab.data.sources.open_pairs` of KITTI
    or Cityscapes, whose items already carry BLIP-2 captions of the side view).
    ``captioner`` maps the side image ``(3, H, W)`` in [0, 1] to a caption (a callable, or a
    BLIP-2 folder / hub id, cached by :func:`mdic_lab.data.sources.make_captioner`); default:
    the dataset's own caption of the side view (the synthetic world: its oracle captions).
    """
    from mdic_lab import metrics as M

    if isinstance(captioner, str):
        from mdic_lab.data.sources import make_captioner

        captioner = make_captioner(captioner)

    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if n <= 0:
        raise ValueError(f"nothing to evaluate: dataset has {len(dataset)} pairs, limit={limit}")
    lp = _lpips_fn() if use_lpips else None
    model.eval()
    h, w = model.config.image_size
    rows = []
    for i in range(n):
        item = dataset[i]
        x, y = item["left"].float()[None], item["right"].float()[None]
        caption = captioner(item["right"]) if captioner is not None else item["caption"]
        t0 = time.perf_counter()
        strings = model.compress(x)["strings"]
        t1 = time.perf_counter()
        x_hat = model.decompress(strings, y, [caption], seed=seed, num_inference_steps=num_inference_steps)
        t2 = time.perf_counter()
        idx = model.encode_x(x)[2].indices
        rows.append({
            "name": item.get("name", f"{item.get('index', i):05d}"),
            "bpp_coded": model.bpp(strings)[0],
            "bpp_payload": model.payload_bpp(strings)[0],
            "bpp_estimated": float(model.entropy_model.rate_bits(idx)[0]) / (h * w),
            "psnr": float(M.psnr(x_hat, x)),
            "ms_ssim": float(M.ms_ssim(x_hat, x)) if min(h, w) > 96 else float("nan"),
            "lpips": float(lp(x_hat, x)) if lp is not None else float("nan"),
            "encode_s": t1 - t0,
            "decode_s": t2 - t1,
            "indices_round_trip": bool(torch.equal(model.decode_indices(strings).to(idx.device), idx)),
        })
    return rows


def summarize_mdic(rows: list) -> dict:
    """Means of the numeric columns (NaNs skipped), ``n``, ``lpips_available``, ``all_round_trip``."""
    out = {"n": len(rows), "all_round_trip": all(r["indices_round_trip"] for r in rows),
           "lpips_available": any(not math.isnan(r["lpips"]) for r in rows)}
    from mdic_lab.evaluate import nan_means

    out.update(nan_means(rows, [k for k in EVAL_FIELDS if k not in ("name", "indices_round_trip")]))
    return out
