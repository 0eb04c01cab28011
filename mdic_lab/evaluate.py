"""Evaluate a trained codec with REAL bitstreams: per-image CSV and a summary.

For every test pair the left image x is compressed (the encoder sees only x), the bytes
are decoded with the right image y as side information (NDIC; the hyperprior ignores
it), and the reconstruction is scored.  Two rates are reported side by side and never
mixed up:

* ``bpp_coded`` -- ``8·len(bitstream)/(H·W)``: every byte of the container (header, CRC,
  range-coder flush) is counted;
* ``bpp_estimated`` -- ``Σ −log2 p / (H·W)`` from the model's likelihoods of the same
  quantized latents (``forward(..., mode="dequantize")``).

``matches_forward`` records that the decoded image equals the ``"dequantize"`` forward
pass bit for bit (the decoder runs the same submodules on the same integers).
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import torch

from mdic_lab.atomic import atomic_write
from mdic_lab.coding.bpp import bpp_from_bytes, bpp_from_likelihoods
from mdic_lab.train import load_model, make_dataset
from mdic_lab.config import config_from_dict

__all__ = ["evaluate", "evaluate_model", "run_data_spec", "EVAL_FIELDS", "summarize", "nan_means", "write_csv", "rd_points",
           "quality_at_rate", "pareto_front", "side_information_gain", "fit_image", "stereo_motorcycle"]

EVAL_FIELDS = ["name", "bpp_coded", "bpp_estimated", "psnr", "ms_ssim", "lpips", "encode_s", "decode_s",
               "matches_forward"]


def _metric_fns(use_lpips: bool):
    """PSNR / MS-SSIM / LPIPS from :mod:`mdic_lab.metrics` (LPIPS only if its weights are present)."""
    from mdic_lab import metrics as M

    lp = None
    if use_lpips:
        try:
            probe = torch.rand(1, 3, 64, 64)
            M.lpips_distance(probe, probe)
            lp = M.lpips_distance
        except M.MetricUnavailable:
            lp = None
    return M.psnr, M.ms_ssim, lp


def evaluate_model(model, dataset, *, limit: int | None = None, use_lpips: bool = True, names=None) -> list[dict]:
    """Per-image rows (see :data:`EVAL_FIELDS`) for the first ``limit`` pairs of ``dataset``."""
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if n <= 0:
        raise ValueError(f"nothing to evaluate: dataset has {len(dataset)} pairs, limit={limit}")
    psnr, ms_ssim, lpips_fn = _metric_fns(use_lpips)
    rows = []
    model.eval()
    for i in range(n):
        item = dataset[i]
        x = item["left"].float().unsqueeze(0)  # (1, 3, H, W)
        y = item["right"].float().unsqueeze(0)
        t0 = time.perf_counter()
        enc = model.compress(x)
        t1 = time.perf_counter()
        x_dec = model.decompress(enc["strings"], enc["shape"], side=y)
        t2 = time.perf_counter()
        with torch.no_grad():
            ref = model(x, y, mode="dequantize")
        npix = int(x.shape[-2] * x.shape[-1])
        row = {
            "name": (names[i] if names is not None else item.get("name", f"{i:05d}")),
            "bpp_coded": bpp_from_bytes(enc["strings"][0], npix),
            "bpp_estimated": bpp_from_likelihoods(list(ref["likelihoods"].values()), npix),
            "psnr": float(psnr(x_dec, x)),
            # 5-scale MS-SSIM needs min(H, W) > 96 (window 7); smaller images get NaN
            "ms_ssim": float(ms_ssim(x_dec, x)) if min(x.shape[-2:]) > 96 else float("nan"),
            "lpips": float(lpips_fn(x_dec, x)) if lpips_fn is not None else float("nan"),
            "encode_s": t1 - t0,
            "decode_s": t2 - t1,
            "matches_forward": bool(torch.equal(x_dec, ref["x_hat"])),
        }
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Means of the numeric columns (NaN-free ones) plus ``n`` and ``all_match_forward``."""
    out = {"n": len(rows), "all_match_forward": all(r["matches_forward"] for r in rows)}
    out.update(nan_means(rows, [k for k in EVAL_FIELDS if k not in ("name", "matches_forward")]))
    return out


def nan_means(rows: list[dict], fields) -> dict:
    """Mean of each numeric column in ``fields`` over ``rows``, NaNs skipped (NaN if none is left).

    >>> nan_means([{"a": 1.0}, {"a": float("nan")}, {"a": 3.0}], ["a"])
    {'a': 2.0}
    """
    out = {}
    for k in fields:
        vals = [float(r[k]) for r in rows if not math.isnan(float(r[k]))]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    return out


def write_csv(rows: list[dict], path) -> Path:
    """Write the rows atomically (temporary file + rename)."""

    def write(f):
        w = csv.DictWriter(f, fieldnames=EVAL_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in EVAL_FIELDS})

    return atomic_write(path, write, newline="")


def run_data_spec(ckpt_or_meta: dict) -> str:
    """The data spec a run was trained on (its ``data`` record), ``"synthetic"`` for older runs."""
    rec = ckpt_or_meta.get("data") if isinstance(ckpt_or_meta, dict) else None
    spec = rec.get("spec") if isinstance(rec, dict) else None
    return spec if spec and spec != "custom" else "synthetic"


def evaluate(model_dir, split: str = "test", limit: int | None = None, csv_path=None, *,
             dataset=None, data: str | None = None, use_lpips: bool = True) -> dict:
    """Evaluate the run in ``model_dir`` on ``split`` (first ``limit`` pairs) with real bitstreams.

    The pairs are ``dataset`` if given, else ``split`` of the data spec ``data`` (default:
    the spec the run was trained on, recorded in its ``config.json``; ``"synthetic"`` for
    runs without a record), e.g. ``"kitti:/data/kitti"`` → KITTI's test list.

    Returns the :func:`summarize` dict (plus ``model_dir``, ``model_id``, ``lmbda``, ``data``);
    writes the per-image CSV to ``csv_path`` if given (``name`` = the image path for real data).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    model, ckpt = load_model(model_dir)
    tcfg = config_from_dict(ckpt["train_config"])
    spec = None
    if dataset is None:
        from mdic_lab.data.sources import parse_data_spec

        spec = parse_data_spec(data if data is not None else run_data_spec(ckpt))
        # real data: read only the pairs that are coded; synthetic: the split as before (chunk cache)
        dataset = make_dataset(split, tcfg, length=limit if spec.is_real else None, data=spec)
    rows = evaluate_model(model, dataset, limit=limit, use_lpips=use_lpips)
    if csv_path is not None:
        write_csv(rows, csv_path)
    summary = summarize(rows)
    summary.update({"model_dir": str(model_dir), "model": ckpt["model_name"], "model_id": model.model_id,
                    "lmbda": tcfg.lmbda, "split": split, "step": int(ckpt["step"]),
                    "data": str(spec) if spec is not None else "custom"})
    return summary


# --------------------------------------------------------------------------- R-D curves
def rd_points(run_dirs, dataset, *, limit: int | None = None, use_lpips: bool = False, csv_dir=None) -> list[dict]:
    """One :func:`summarize` row per run (sorted by coded bpp), coding ``dataset`` with real bitstreams.

    ``csv_dir``: if given, the per-image CSV of each run is written there as ``<run name>.csv``.
    """
    out = []
    for run in run_dirs:
        model, ckpt = load_model(run)
        rows = evaluate_model(model, dataset, limit=limit, use_lpips=use_lpips)
        if csv_dir is not None:
            write_csv(rows, Path(csv_dir) / f"{Path(run).name}.csv")
        s = summarize(rows)
        s.update({"run": str(run), "model": ckpt["model_name"], "lmbda": ckpt["train_config"]["lmbda"],
                  "step": int(ckpt["step"])})
        out.append(s)
    return sorted(out, key=lambda r: r["bpp_coded"])


def quality_at_rate(bpp, quality, at) -> float:
    """Quality of an R-D curve at rate ``at``, linear interpolation in log(bpp) (NaN outside the curve).

    >>> quality_at_rate([0.1, 0.4], [20.0, 30.0], 0.2)
    25.0
    """
    import numpy as np

    b = np.log(np.asarray(bpp, dtype=float))
    q = np.asarray(quality, dtype=float)
    order = np.argsort(b)
    b, q = b[order], q[order]
    a = math.log(at)
    if a < b[0] - 1e-12 or a > b[-1] + 1e-12:
        return float("nan")
    return float(np.interp(a, b, q))


def pareto_front(rows: list[dict], key: str = "psnr") -> list[dict]:
    """The operating points not dominated by another one (lower-or-equal rate AND higher quality).

    An operational R-D curve is the envelope of the achievable points: a point with more bits
    and less quality than another one is never used.  Returned sorted by coded bpp.

    >>> pts = [{"bpp_coded": 0.08, "psnr": 18.2}, {"bpp_coded": 0.083, "psnr": 17.9}, {"bpp_coded": 0.1, "psnr": 19.0}]
    >>> [p["bpp_coded"] for p in pareto_front(pts)]
    [0.08, 0.1]
    """
    out, best = [], -math.inf
    for r in sorted(rows, key=lambda r: (r["bpp_coded"], -r[key])):
        if r[key] > best:
            out.append(r)
            best = r[key]
    return out


def side_information_gain(anchor: list[dict], test: list[dict], key: str = "psnr", pareto: bool = True,
                          method: str = "pchip") -> dict:
    """How much the test curve (NDIC) beats the anchor (single-image) at equal coded bpp.

    Returns ``bd_rate`` (percent, Bjøntegaard, coded bpp vs ``key``; negative = fewer bits for
    the same quality), ``bd_quality``, and the quality gains at the lowest and highest rates
    both curves cover (``gain_low``, ``gain_high``, in the unit of ``key``).  With ``pareto``
    (default) dominated points are dropped first (:func:`pareto_front`; BD needs quality
    strictly increasing with rate) and listed under ``dropped`` as ``(curve, λ)``.
    ``method``: the Bjøntegaard fit of :mod:`mdic_lab.metrics.bd` -- ``"pchip"`` (piecewise
    cubic Hermite, later VCEG/JVET practice, ≥ 2 points per curve; default, since a Pareto
    front of a short sweep can have fewer than the 4 points ``"cubic"`` needs) or ``"cubic"``.
    """
    from mdic_lab.metrics.bd import bd_quality, bd_rate

    dropped = []
    if pareto:
        fa, ft = pareto_front(anchor, key), pareto_front(test, key)
        dropped = [("anchor", r.get("lmbda")) for r in anchor if r not in fa] + \
                  [("test", r.get("lmbda")) for r in test if r not in ft]
        anchor, test = fa, ft
    ra = [r["bpp_coded"] for r in anchor]
    qa = [r[key] for r in anchor]
    rt = [r["bpp_coded"] for r in test]
    qt = [r[key] for r in test]
    lo, hi = max(min(ra), min(rt)), min(max(ra), max(rt))
    res = {"common_bpp_range": [lo, hi], "bd_error": None, "dropped": dropped, "method": method,
           "points": [len(anchor), len(test)]}
    try:
        res["bd_rate"] = float(bd_rate(ra, qa, rt, qt, method=method))
        res["bd_quality"] = float(bd_quality(ra, qa, rt, qt, method=method))
    except ValueError as exc:  # non-monotone or non-overlapping curves: no Bjøntegaard number
        res["bd_rate"] = res["bd_quality"] = float("nan")
        res["bd_error"] = str(exc)
    if lo < hi:
        res["gain_low"] = quality_at_rate(rt, qt, lo) - quality_at_rate(ra, qa, lo)
        res["gain_high"] = quality_at_rate(rt, qt, hi) - quality_at_rate(ra, qa, hi)
    else:
        res["gain_low"] = res["gain_high"] = float("nan")
    return res


def fit_image(img, size=(128, 256)):
    """Centre-crop an (H, W, 3) uint8/float image to the aspect of ``size`` and resize → (3, H, W) float in [0, 1]."""
    import numpy as np
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
