"""The MDIC ablation tables (paper Tables 1–2, supplement Tables 3–4) with confidence intervals.

Input: the sweep's long per-image table (``images.csv``), one row per (cell, image), read
with :func:`read_images_csv` (or any list of dicts).  The columns are named by a
:class:`Columns` (defaults: ``codec, variant, rate_point, seed, name, bpp_coded,
num_inference_steps, encode_s, decode_s``); metric columns are named directly
(``psnr``, ``ms_ssim``, ``lpips``, ``dists``; ``lower_is_better`` from :data:`METRICS`).

What a number here is
---------------------
* An R-D curve (:func:`rd_curve`) is, per rate point, the MEAN coded bpp and the mean
  metric over the test images (and over the training seeds).
* BD-quality is Eq. 37 of the supplement, ``1/(r2 − r1) ∫ [D_test(r) − D_ref(r)] dr`` over
  the common range of ``r = log10(bpp)`` (``log_rate=False``: bpp itself), sign flipped for
  LPIPS / DISTS so that positive always means "test better" (as Table 4 of the supplement
  does); BD-rate is Bjøntegaard's percent rate change at equal quality (positive: the test
  needs more bits).  The interpolant is chosen by the number of rate points: ``"cubic"``
  (least-squares cubic, Bjøntegaard) with ≥ 4 points on each curve, else ``"pchip"`` (≥ 2),
  and every result names it.
* :func:`bootstrap_bd` puts a percentile interval on the BD number by a hierarchical
  paired bootstrap: resample the training seeds with replacement, then within each drawn
  seed resample the test images with replacement; the SAME drawn images (and seeds) feed
  the reference and the test curve at every rate point, both curves' means and the BD
  are recomputed per resample (vectorised over resamples).  Resamples where the BD is
  undefined (the curves' ranges do not overlap, or for BD-rate a curve is not monotone)
  are counted, reported and left out of the interval.

:data:`PAPER` holds the paper's Tables 1–4 as printed; :func:`ablation_table` /
:func:`table4` compute ours beside them; :func:`write_tables` and :func:`table_claims`
report them.  The statistics are explained in ``docs/ablation_statistics.md``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: interpolant -> the fewest points per curve it needs; the same as ``mdic_lab.metrics.bd.METHODS``
#: (a test checks), not imported from there because ``mdic_lab.metrics`` loads torch
METHODS = {"cubic": 4, "pchip": 2}

__all__ = ["Columns", "METRICS", "METRIC_LABELS", "METRIC_WEIGHTS", "VARIANT_METHODS", "PAPER",
           "read_images_csv", "rd_curve", "choose_method", "bd_batch", "bootstrap_bd", "sign_agrees",
           "ablation_table", "choices_table", "read_table_csv", "signs_by_profile", "table4", "write_tables", "table_claims", "metric_unavailable"]

#: metric column -> lower is better (LPIPS, DISTS: the BD-quality sign is flipped)
METRICS = {"lpips": True, "dists": True, "psnr": False, "ms_ssim": False, "miou": False}
#: how the paper's tables head the metric columns (mIoU is ours: a semantic column the paper lacks)
METRIC_LABELS = {"lpips": "LPIPS", "dists": "DISTS", "psnr": "PSNR", "ms_ssim": "MS-SSIM",
                 "miou": "mIoU (synthetic world's segmentation net)"}
#: metric -> keys of :data:`mdic_lab.metrics.weights.WEIGHT_FILES` it cannot be computed without
#: (LPIPS: the AlexNet backbone, ``net="alex"``, the evaluation loop's default)
METRIC_WEIGHTS = {"lpips": ("alexnet",), "dists": ("vgg16", "dists")}
#: project variant -> the paper's row name (the full model is the reference, "MDIC (Ours)")
VARIANT_METHODS = {"full": "MDIC (Ours)", "no_zd_zxc": "w/o (z_d + ẑ_xc)", "no_zd": "w/o z_d",
                   "no_g1g2": "w/o (G1 + G2)", "no_g2": "w/o G2", "no_ts": "w/o TS", "no_text": "w/o z_text"}
_PAPER_METRICS = ("lpips", "dists", "psnr", "ms_ssim")  # the column order of all four tables


@dataclass(frozen=True)
class Columns:
    """Names of the per-image table's columns (the caller may rename any of them)."""

    variant: str = "variant"            # the MDIC variant: full, no_text, no_ts, ...
    rate_point: str = "rate_point"      # the rate point (codebook size / λ index) of the cell
    seed: str = "seed"                  # the TRAINING seed of the cell
    image: str = "name"                 # test image id, identical across cells for the same image
    rate: str = "bpp_coded"             # bits per pixel of the real bitstream
    codec: str = "codec"
    steps: str = "num_inference_steps"  # denoising steps at decoding (Table 4: 5 or 10)
    encode: str = "encode_s"            # seconds to encode one image
    decode: str = "decode_s"            # seconds to decode one image


# ---------------------------------------------------------------------------------------------
# The paper's numbers, transcribed from the MDIC paper (Tables 1-2) and its supplement
# (Tables 3-4) with their printed digits and signs.  Ambiguities in the text:
# * Tables 1, 2 ("BD-Quality ↑, higher is better") print NEGATIVE LPIPS / DISTS for the
#   ablations, so their LPIPS / DISTS signs are flipped (positive = better), the convention
#   of Table 4 and of our bd_quality(lower_is_better=True).  Which rate axis Eq. 37 uses
#   (bpp or log bpp) is not said; it is stated only in the supplement (for Table 4) and is
#   assumed to hold for Tables 1-2 too.
# * The MS-SSIM column of Tables 1, 2 and 4 (-6.5115, -3.1127, -5.8163, ...) cannot be a
#   difference of MS-SSIM values in [0, 1]: it is presumably MS-SSIM in dB
#   (-10·log10(1 − MS-SSIM)) or ×100; the unit is never stated.  Ours is in raw MS-SSIM
#   units, so only SIGNS are comparable in that column (and magnitudes are not compared
#   anywhere: our lab model is not the paper's).
# * Table 3 (BD-rate ↓) prints percents; the "MDIC (Ours)" row is "0" (the anchor).  The
#   text says w/o TS affects "the perceptual metrics particularly", yet DISTS (72.33 %) is
#   below PSNR (97.20 %); transcribed as printed.
# * Table 4: the 5-step MDIC row has LPIPS = DISTS = -0.0040 (identical values, perhaps a
#   copy error); DiffEIC's 50-step decoding time is printed with four decimals (3.4371);
#   the meaning of "±" in the timing columns (std? interval?) is not given.  The baseline
#   of the BD-quality columns is "our 10-step MDIC model".
# ---------------------------------------------------------------------------------------------
PAPER = {
    "table1": {
        "title": "Table 1. Ablation study of ẑ_xc and z_d (BD-quality vs MDIC at identical bitrates, ↑)",
        "source": "MDIC paper, Table 1", "kind": "quality",
        "rows": [
            {"method": "w/o (z_d + ẑ_xc)", "variant": "no_zd_zxc",
             "lpips": -0.3550, "dists": -0.1826, "psnr": -8.6358, "ms_ssim": -6.5115},
            {"method": "w/o z_d", "variant": "no_zd",
             "lpips": -0.1179, "dists": -0.0489, "psnr": -2.8161, "ms_ssim": -3.1127},
            {"method": "MDIC (Ours)", "variant": "full", "lpips": 0.0, "dists": 0.0, "psnr": 0.0, "ms_ssim": 0.0},
        ],
    },
    "table2": {
        "title": "Table 2. Ablation of the mask gates G1 and G2 (BD-quality vs MDIC, ↑)",
        "source": "MDIC paper, Table 2", "kind": "quality",
        "rows": [
            {"method": "w/o (G1 + G2)", "variant": "no_g1g2",
             "lpips": -0.0437, "dists": -0.0050, "psnr": -0.5979, "ms_ssim": -0.4491},
            {"method": "w/o G2", "variant": "no_g2",
             "lpips": -0.0106, "dists": -0.0045, "psnr": -0.2864, "ms_ssim": -0.2595},
            {"method": "MDIC (Ours)", "variant": "full", "lpips": 0.0, "dists": 0.0, "psnr": 0.0, "ms_ssim": 0.0},
        ],
    },
    "table3": {
        "title": "Table 3. Ablation of the text supervision TS and of z_text (BD-rate % vs MDIC, ↓)",
        "source": "MDIC supplement, Table 3", "kind": "rate",
        "rows": [
            {"method": "w/o TS", "variant": "no_ts", "lpips": 121.49, "dists": 72.33, "psnr": 97.20, "ms_ssim": 50.78},
            {"method": "w/o z_text", "variant": "no_text",
             "lpips": 104.79, "dists": 82.91, "psnr": 35.67, "ms_ssim": 37.61},
            {"method": "MDIC (Ours)", "variant": "full", "lpips": 0.0, "dists": 0.0, "psnr": 0.0, "ms_ssim": 0.0},
        ],
    },
    "table4": {
        "title": "Table 4. BD-quality vs 10-step MDIC (↑) and inference time (s) per image",
        "source": "MDIC supplement, Table 4", "kind": "quality",
        # encode_s / decode_s: (value, printed ± half-width); variant None: another codec
        "rows": [
            {"method": "Perco", "variant": None, "steps": 5, "lpips": -0.2501, "dists": -0.1147, "psnr": -5.7031,
             "ms_ssim": -5.8163, "encode_s": (0.020, 0.001), "decode_s": (0.320, 0.002)},
            {"method": "Perco", "variant": None, "steps": 20, "lpips": -0.2364, "dists": -0.1026, "psnr": -5.8774,
             "ms_ssim": -5.8308, "encode_s": (0.020, 0.001), "decode_s": (0.843, 0.002)},
            {"method": "DiffEIC", "variant": None, "steps": 20, "lpips": -0.2675, "dists": -0.1000,
             "psnr": -5.7968, "ms_ssim": -5.9150, "encode_s": (0.114, 0.005), "decode_s": (1.432, 0.016)},
            {"method": "DiffEIC", "variant": None, "steps": 50, "lpips": -0.2470, "dists": -0.0931,
             "psnr": -5.9147, "ms_ssim": -5.9622, "encode_s": (0.114, 0.005), "decode_s": (3.4371, 0.025)},
            {"method": "RDEIC", "variant": None, "steps": 2, "lpips": -0.2295, "dists": -0.1431, "psnr": -8.4241,
             "ms_ssim": -4.4578, "encode_s": (0.082, 0.001), "decode_s": (0.121, 0.001)},
            {"method": "RDEIC", "variant": None, "steps": 5, "lpips": -0.2300, "dists": -0.1417, "psnr": -8.7294,
             "ms_ssim": -4.5387, "encode_s": (0.082, 0.001), "decode_s": (0.295, 0.002)},
            {"method": "MDIC (Ours)", "variant": "full", "steps": 5, "lpips": -0.0040, "dists": -0.0040,
             "psnr": 0.1144, "ms_ssim": 0.0397, "encode_s": (0.012, 0.001), "decode_s": (0.461, 0.002)},
            {"method": "MDIC (Ours)", "variant": "full", "steps": 10, "lpips": 0.0, "dists": 0.0, "psnr": 0.0,
             "ms_ssim": 0.0, "encode_s": (0.012, 0.001), "decode_s": (0.638, 0.006)},
        ],
    },
}


# ---------------------------------------------------------------------------------------------
# reading and selecting rows
# ---------------------------------------------------------------------------------------------
def read_images_csv(path) -> list[dict]:
    """The per-image table as a list of dicts (values as the CSV holds them: text)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(v) -> float:
    """A cell as a float; empty / missing / unparsable text is NaN."""
    if v is None:
        return math.nan
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return math.nan


def _same(a, b) -> bool:
    """Cell equality across text and numbers (``"10"``, ``10``, ``"10.0"`` are the same)."""
    if str(a) == str(b):
        return True
    fa, fb = _num(a), _num(b)
    return not (math.isnan(fa) or math.isnan(fb)) and fa == fb


def _label_key(v):
    f = _num(v)
    return (0, f, "") if not math.isnan(f) else (1, 0.0, str(v))


def _as_select(sel, cols: Columns, where) -> dict:
    """A variant name or a ``{column: value}`` filter, merged with ``where``."""
    out = dict(where or {})
    if isinstance(sel, dict):
        out.update(sel)
    else:
        out[cols.variant] = sel
    return out


def _describe(sel: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sel.items())


def _select(rows, sel: dict) -> list[dict]:
    return [r for r in rows if all(k in r and _same(r[k], v) for k, v in sel.items())]


def metric_unavailable(rows, metric: str, weights_dir=None) -> str | None:
    """Why ``metric`` cannot be reported from ``rows`` (text starting "n/a — "), or None if it can.

    A metric whose column is missing or has no finite value is n/a; for the learned metrics
    the text names the missing pretrained file(s) (``WEIGHT_FILES``), else says the column
    is empty.  Never a number in its place.
    """
    if any(math.isfinite(_num(r.get(metric))) for r in rows):
        return None
    keys = METRIC_WEIGHTS.get(metric, ())
    if keys:
        from mdic_lab.metrics.weights import WEIGHT_FILES, missing_weights

        missing = missing_weights(keys, weights_dir)
        if missing:
            files = " and ".join(WEIGHT_FILES[k].filename for k in missing)
            return f"n/a — needs {files} in $TORCH_HOME/hub/checkpoints"
    if metric == "miou":
        return ("n/a — needs labelled pairs (the synthetic world) and its segmentation net "
                "(mdic_lab.metrics.segnet.load_or_train_segnet())")
    extra = " (5-scale MS-SSIM needs min(H, W) > 96)" if metric == "ms_ssim" else ""
    return f"n/a — no finite {metric!r} value in the per-image table{extra}"


# ---------------------------------------------------------------------------------------------
# R-D curves
# ---------------------------------------------------------------------------------------------
def rd_curve(rows, *, variant, metric: str, seed=None, images=None, cols: Columns = Columns(),
             where: dict | None = None) -> dict:
    """Mean coded bpp and mean ``metric`` per rate point, sorted by rate.

    ``variant``: a variant name or a ``{column: value}`` filter; ``seed``: one training seed
    (default: all seeds pooled); ``images``: the image ids to average over (default: all).
    Rows whose rate or metric is not finite are skipped.  Returns ``rate_point`` (labels),
    ``rate`` and ``quality`` (arrays), ``n`` (rows averaged per point).
    """
    sel = _as_select(variant, cols, where)
    if seed is not None:
        sel[cols.seed] = seed
    keep = None if images is None else {str(i) for i in images}
    groups: dict = {}
    for r in _select(rows, sel):
        if keep is not None and str(r.get(cols.image)) not in keep:
            continue
        b, q = _num(r.get(cols.rate)), _num(r.get(metric))
        if math.isfinite(b) and math.isfinite(q):
            groups.setdefault(str(r[cols.rate_point]), []).append((b, q))
    if not groups:
        raise ValueError(f"no rows with finite {cols.rate!r} and {metric!r} for {_describe(sel)}")
    pts = sorted(((float(np.mean([b for b, _ in v])), float(np.mean([q for _, q in v])), k, len(v))
                  for k, v in groups.items()))
    return {"rate_point": [p[2] for p in pts], "rate": np.array([p[0] for p in pts]),
            "quality": np.array([p[1] for p in pts]), "n": [p[3] for p in pts], "metric": metric}


def _cube(rows, sel: dict, metric: str, cols: Columns):
    """``{(seed, rate_point): {image: (rate, quality)}}`` of the selected rows (duplicates refused)."""
    cells: dict = {}
    for r in _select(rows, sel):
        key = (str(r[cols.seed]), str(r[cols.rate_point]))
        img = str(r[cols.image])
        cell = cells.setdefault(key, {})
        if img in cell:
            raise ValueError(f"image {img!r} appears twice in cell seed={key[0]}, rate_point={key[1]} of "
                             f"{_describe(sel)}: the table mixes cells (filter with where={{...}}, e.g. codec or "
                             f"{cols.steps})")
        cell[img] = (_num(r.get(cols.rate)), _num(r.get(metric)))
    return cells


def _paired_data(rows, ref_sel, test_sel, metric, cols, seeds=None, images=None):
    """The two curves' per-image data on common seeds and images: arrays ``(S, P, N)``."""
    cubes = [_cube(rows, s, metric, cols) for s in (ref_sel, test_sel)]
    for c, s in zip(cubes, (ref_sel, test_sel)):
        if not c:
            raise ValueError(f"no rows for {_describe(s)}")
    seed_sets = [{k[0] for k in c} for c in cubes]
    common = seed_sets[0] & seed_sets[1]
    if seeds is not None:
        common &= {str(s) for s in seeds}
    if not common:
        raise ValueError(f"no training seed in common: reference has {sorted(seed_sets[0])}, "
                         f"test has {sorted(seed_sets[1])}" + ("" if seeds is None else f", asked for {list(seeds)}"))
    seed_list = sorted(common, key=_label_key)
    notes = []
    rps = []
    for c, s in zip(cubes, (ref_sel, test_sel)):
        all_rp = {k[1] for k in c}
        rp = sorted((p for p in all_rp if all((sd, p) in c for sd in seed_list)), key=_label_key)
        if len(rp) < len(all_rp):
            notes.append(f"{_describe(s)}: rate point(s) {sorted(all_rp - set(rp))} missing for some seed, left out")
        rps.append(rp)
    # images finite (rate > 0 and metric) in every cell of both curves
    img_sets = []
    for c, rp in zip(cubes, rps):
        for sd in seed_list:
            for p in rp:
                img_sets.append({i for i, (b, q) in c[(sd, p)].items()
                                 if b > 0 and math.isfinite(b) and math.isfinite(q)})
    every = set.union(*img_sets)
    keep = set.intersection(*img_sets)
    if images is not None:
        keep &= {str(i) for i in images}
    if len(keep) < len(every) and images is None:
        notes.append(f"{len(every) - len(keep)} image(s) not finite in every cell of both curves, left out")
    if not keep:
        raise ValueError(f"no test image with finite {metric!r} in every cell of both curves")
    img_list = sorted(keep, key=_label_key)
    out = []
    for c, rp in zip(cubes, rps):
        arr = np.array([[[c[(sd, p)][i] for i in img_list] for p in rp] for sd in seed_list])  # (S, P, N, 2)
        out.append((arr[..., 0], arr[..., 1], rp))
    return out, seed_list, img_list, notes


# ---------------------------------------------------------------------------------------------
# vectorised BD (one row per resample)
# ---------------------------------------------------------------------------------------------
def choose_method(n_ref: int, n_test: int) -> str:
    """The interpolant for curves of ``n_ref`` and ``n_test`` points: "cubic" with ≥ 4 on each, else "pchip".

    >>> choose_method(4, 5), choose_method(3, 4)
    ('cubic', 'pchip')
    """
    n = min(int(n_ref), int(n_test))
    if n >= METHODS["cubic"]:
        return "cubic"
    if n >= METHODS["pchip"]:
        return "pchip"
    raise ValueError(f"a BD number needs at least {METHODS['pchip']} rate points per curve, got {n_ref} and {n_test}")


def _cubic_antiderivative(x, y):
    """Least-squares cubic of each row of ``y(x)``, ``(B, P)``; returns F with F(a) − F(b) = ∫_b^a."""
    c = x.mean(axis=1, keepdims=True)
    s = x.std(axis=1, keepdims=True)
    s = np.where(s > 0, s, 1.0)
    u = (x - c) / s  # an affine change of variable: the fitted cubic is the same function
    V = u[..., None] ** np.arange(4)  # (B, P, 4): 1, u, u², u³
    if x.shape[1] == 4:
        coef = np.linalg.solve(V, y[..., None])[..., 0]
    else:
        coef = (np.linalg.pinv(V) @ y[..., None])[..., 0]  # (B, 4)
    icoef = coef / np.arange(1, 5)  # ∫ u^k du = u^{k+1}/(k+1)

    def F(a):
        ua = (a - c[:, 0]) / s[:, 0]
        return s[:, 0] * np.sum(icoef * ua[:, None] ** np.arange(1, 5), axis=1)

    return F


def _pchip_antiderivative(x, y):
    """PCHIP of each row (scipy's ``PchipInterpolator`` derivatives), exactly integrated."""
    h = np.diff(x, axis=1)
    m = np.diff(y, axis=1) / h
    d = np.empty_like(y)
    if x.shape[1] == 2:  # two points: the straight line (as scipy)
        d[:, 0] = d[:, 1] = m[:, 0]
    else:
        sm = np.sign(m)
        flat = (sm[:, 1:] != sm[:, :-1]) | (m[:, 1:] == 0) | (m[:, :-1] == 0)
        w1 = 2 * h[:, 1:] + h[:, :-1]
        w2 = h[:, 1:] + 2 * h[:, :-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            wh = (w1 / m[:, :-1] + w2 / m[:, 1:]) / (w1 + w2)
            d[:, 1:-1] = np.where(flat, 0.0, 1.0 / wh)

        def edge(h0, h1, m0, m1):
            e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
            e = np.where(np.sign(e) != np.sign(m0), 0.0, e)
            return np.where((np.sign(m0) != np.sign(m1)) & (np.abs(e) > 3 * np.abs(m0)), 3 * m0, e)

        d[:, 0] = edge(h[:, 0], h[:, 1], m[:, 0], m[:, 1])
        d[:, -1] = edge(h[:, -1], h[:, -2], m[:, -1], m[:, -2])
    # segment k, t in [0, h_k]: y_k + d_k t + c2 t² + c3 t³
    c2 = (3 * m - 2 * d[:, :-1] - d[:, 1:]) / h
    c3 = (d[:, :-1] + d[:, 1:] - 2 * m) / h**2

    def seg_int(k_y, k_d, k_c2, k_c3, t):
        return k_y * t + k_d * t**2 / 2 + k_c2 * t**3 / 3 + k_c3 * t**4 / 4

    full = seg_int(y[:, :-1], d[:, :-1], c2, c3, h)
    cum = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(full, axis=1)], axis=1)  # ∫ from x_0 to x_k
    rows = np.arange(x.shape[0])

    def F(a):
        k = np.clip(np.sum(x[:, 1:-1] <= a[:, None], axis=1), 0, x.shape[1] - 2)
        t = a - x[rows, k]
        return cum[rows, k] + seg_int(y[rows, k], d[rows, k], c2[rows, k], c3[rows, k], t)

    return F


_ANTIDERIVATIVES = {"cubic": _cubic_antiderivative, "pchip": _pchip_antiderivative}

#: status codes of :func:`bd_batch`
OK, NO_OVERLAP, NOT_MONOTONE, INVALID = 0, 1, 2, 3


def bd_batch(rate_ref, q_ref, rate_test, q_test, *, kind: str = "quality", lower_is_better: bool = False,
             log_rate: bool = True, method: str | None = None):
    """BD-quality (Eq. 37) or BD-rate (%) of many curve pairs at once, one per row.

    ``rate_*``, ``q_*``: ``(B, P_ref)`` and ``(B, P_test)`` arrays (a 1-D input is one row).
    ``method`` None: chosen by :func:`choose_method`.  Returns ``(values, status, method)``:
    ``values`` ``(B,)`` with NaN where undefined, ``status`` ``(B,)`` — 0 ok, 1 the ranges do
    not overlap, 2 not usable as a curve (equal abscissae; for BD-rate quality not strictly
    monotone in rate, or monotone the wrong way for ``lower_is_better``), 3 non-finite or
    non-positive rate.  Agrees with :func:`mdic_lab.metrics.bd.bd_quality` / ``bd_rate`` row by row.

    >>> r = np.array([0.02, 0.04, 0.08, 0.16]); q = np.array([28.0, 30.5, 32.4, 33.9])
    >>> v, st, m = bd_batch(r, q, r, q + 0.5); round(float(v[0]), 9), int(st[0]), m
    (0.5, 0, 'cubic')
    >>> v, st, m = bd_batch(r, q, 2 * r, q, kind="rate"); round(float(v[0]), 9)
    100.0
    """
    if kind not in ("quality", "rate"):
        raise ValueError(f"kind must be 'quality' or 'rate', got {kind!r}")
    arrs = [np.atleast_2d(np.asarray(a, dtype=float)) for a in (rate_ref, q_ref, rate_test, q_test)]
    rr, qr, rt, qt = arrs
    if rr.shape != qr.shape or rt.shape != qt.shape or rr.shape[0] != rt.shape[0]:
        raise ValueError(f"shapes differ: rate_ref {rr.shape}, q_ref {qr.shape}, rate_test {rt.shape}, "
                         f"q_test {qt.shape}")
    if method is None:
        method = choose_method(rr.shape[1], rt.shape[1])
    elif method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of: {', '.join(METHODS)})")
    elif min(rr.shape[1], rt.shape[1]) < METHODS[method]:
        raise ValueError(f"method={method!r} needs at least {METHODS[method]} points per curve, "
                         f"got {rr.shape[1]} and {rt.shape[1]}")
    B = rr.shape[0]
    status = np.zeros(B, dtype=int)
    bad = ~(np.all(np.isfinite(rr), 1) & np.all(np.isfinite(qr), 1) & np.all(np.isfinite(rt), 1)
            & np.all(np.isfinite(qt), 1))
    if kind == "rate" or log_rate:
        bad |= np.any(rr <= 0, axis=1) | np.any(rt <= 0, axis=1)
    status[bad] = INVALID
    # harmless stand-ins where invalid, so the arithmetic below stays finite
    stand_r, stand_q = np.arange(1.0, rr.shape[1] + 1), np.arange(1.0, rr.shape[1] + 1)
    stand_rt, stand_qt = np.arange(1.0, rt.shape[1] + 1), np.arange(1.0, rt.shape[1] + 1)
    rr, qr = np.where(bad[:, None], stand_r, rr), np.where(bad[:, None], stand_q, qr)
    rt, qt = np.where(bad[:, None], stand_rt, rt), np.where(bad[:, None], stand_qt, qt)

    def by(key, *arrays):
        o = np.argsort(key, axis=1, kind="stable")
        return [np.take_along_axis(a, o, axis=1) for a in arrays]

    curves = []
    for r, q in ((rr, qr), (rt, qt)):
        r, q = by(r, r, q)
        lr = np.log10(r) if (kind == "rate" or log_rate) else r
        if kind == "quality":
            x, y = lr, q
            ok = np.all(np.diff(x, axis=1) > 0, axis=1)
        else:
            dq = np.diff(q, axis=1)
            up, down = np.all(dq > 0, axis=1), np.all(dq < 0, axis=1)
            ok = (down if lower_is_better else up)
            x, y = by(q, q, lr)  # log-rate as a function of quality
        curves.append((x, y, ok))
    (xr, yr, okr), (xt, yt, okt) = curves
    status[(status == OK) & ~(okr & okt)] = NOT_MONOTONE
    lo = np.maximum(xr[:, 0], xt[:, 0])
    hi = np.minimum(xr[:, -1], xt[:, -1])
    status[(status == OK) & ~(hi > lo)] = NO_OVERLAP
    good = status == OK
    values = np.full(B, np.nan)
    if np.any(good):
        xr, yr, xt, yt, lo, hi = xr[good], yr[good], xt[good], yt[good], lo[good], hi[good]
        Fr, Ft = _ANTIDERIVATIVES[method](xr, yr), _ANTIDERIVATIVES[method](xt, yt)
        delta = ((Ft(hi) - Ft(lo)) - (Fr(hi) - Fr(lo))) / (hi - lo)
        if kind == "rate":
            values[good] = (10.0**delta - 1.0) * 100.0
        else:
            values[good] = -delta if lower_is_better else delta
    return values, status, method


# ---------------------------------------------------------------------------------------------
# the hierarchical paired bootstrap
# ---------------------------------------------------------------------------------------------
def _resample_weights(rng, n_boot: int, n_seeds: int, n_images: int, hierarchical: bool, image_draws: str):
    """``W (B, S, N)``: how often resample b uses image i of seed s, over S·N (rows sum to 1)."""
    B, S, N = n_boot, n_seeds, n_images
    if hierarchical and S > 1:
        s_draw = rng.integers(0, S, size=(B, S))  # seeds with replacement
    else:
        s_draw = np.broadcast_to(np.arange(S), (B, S))
    if image_draws == "per_seed":  # new images for every drawn seed (two-stage / nested bootstrap)
        i_draw = rng.integers(0, N, size=(B, S, N))
    else:  # "shared": one image draw per resample, used for every drawn seed (crossed design)
        i_draw = np.broadcast_to(rng.integers(0, N, size=(B, 1, N)), (B, S, N))
    lin = (np.arange(B)[:, None, None] * S + s_draw[:, :, None]) * N + i_draw
    W = np.bincount(lin.ravel(), minlength=B * S * N).reshape(B, S, N)
    return W / float(S * N)


def _point_error(status: int, ref, test, kind: str, lower_is_better: bool) -> str | None:
    """Why the BD of the mean curves is undefined, in words (None if it is defined)."""
    if status == OK:
        return None
    curves = f"reference bpp {np.round(ref[0], 5).tolist()} / quality {np.round(ref[1], 5).tolist()}, " \
             f"test bpp {np.round(test[0], 5).tolist()} / quality {np.round(test[1], 5).tolist()}"
    if status == NO_OVERLAP:
        axis = "quality" if kind == "rate" else "rate"
        return f"the curves' {axis} ranges do not overlap ({curves})"
    if status == NOT_MONOTONE:
        how = "falling" if lower_is_better else "rising"
        return (f"a curve is not strictly {how} with rate, as BD-rate needs ({curves})" if kind == "rate"
                else f"a curve has equal rates at two points ({curves})")
    return f"non-finite or non-positive values ({curves})"


def _percentile_interval(vals, ci):
    ok = vals[np.isfinite(vals)]
    if ok.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(ok, [50 * (1 - ci), 50 * (1 + ci)])
    return float(lo) + 0.0, float(hi) + 0.0


def bootstrap_bd(rows, reference="full", test=None, metric: str = "psnr", kind: str = "quality", *,
                 n_boot: int = 1000, seed: int = 0, ci: float = 0.95, lower_is_better: bool | None = None,
                 log_rate: bool = True, method: str | None = None, cols: Columns = Columns(),
                 where: dict | None = None, seeds=None, images=None, hierarchical: bool = True,
                 image_draws: str = "per_seed", return_samples: bool = False) -> dict:
    """BD-quality / BD-rate of ``test`` against ``reference`` with a hierarchical paired bootstrap interval.

    ``reference`` / ``test``: variant names or ``{column: value}`` filters (Table 4:
    ``{"variant": "full", "num_inference_steps": 5}``); ``where`` filters both (e.g.
    ``{"codec": "mdic"}``).  Only training seeds and test images present (finite, rate > 0)
    in every cell of both curves are used; ``seeds`` / ``images`` restrict them further.

    Each of ``n_boot`` resamples draws the training seeds with replacement (skipped with a
    single seed, or ``hierarchical=False``), then for each drawn seed the test images with
    replacement (``image_draws="per_seed"``, a two-stage bootstrap; ``"shared"``: one image
    draw reused for every drawn seed, the crossed-design variant, more conservative), uses
    these same seeds and images for both curves at every rate point (paired), recomputes
    the mean bpp and mean metric per rate point of each curve and the BD.

    Returns a dict: ``value`` (the estimate on all data; equal to
    :mod:`mdic_lab.metrics.bd`'s, tested), ``ci_low`` / ``ci_high`` (percentile interval of the
    defined resamples), ``undefined_share`` (share of resamples with no BD, excluded) with
    ``no_overlap_share`` and ``not_monotone_share``, ``n_seeds``, ``n_images``, ``method``
    (the interpolant), ``resampling``, ``covers`` (what the interval covers, in words),
    ``notes`` (what was left out), ``samples`` if ``return_samples``.
    """
    if test is None:
        raise ValueError("test: the variant (or filter) to compare with the reference")
    if kind not in ("quality", "rate"):
        raise ValueError(f"kind must be 'quality' or 'rate', got {kind!r}")
    if image_draws not in ("per_seed", "shared"):
        raise ValueError(f"image_draws must be 'per_seed' or 'shared', got {image_draws!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if lower_is_better is None:
        if metric not in METRICS:
            raise ValueError(f"lower_is_better unknown for metric {metric!r}: pass it (known: {', '.join(METRICS)})")
        lower_is_better = METRICS[metric]
    ref_sel, test_sel = _as_select(reference, cols, where), _as_select(test, cols, where)
    (ref, tst), seed_list, img_list, notes = _paired_data(rows, ref_sel, test_sel, metric, cols, seeds, images)
    (Rr, Qr, rp_r), (Rt, Qt, rp_t) = ref, tst
    S, N = len(seed_list), len(img_list)
    if method is None:
        method = choose_method(len(rp_r), len(rp_t))
    # the estimate on all data
    mr = (Rr.mean(axis=(0, 2)), Qr.mean(axis=(0, 2)))
    mt = (Rt.mean(axis=(0, 2)), Qt.mean(axis=(0, 2)))
    v, st, _ = bd_batch(*mr, *mt, kind=kind, lower_is_better=lower_is_better, log_rate=log_rate, method=method)
    value, point_error = float(v[0]), _point_error(int(st[0]), mr, mt, kind, lower_is_better)
    # the resamples
    rng = np.random.default_rng(seed)
    single = S == 1 or not hierarchical
    W = _resample_weights(rng, int(n_boot), S, N, hierarchical, image_draws)
    curves = [np.einsum("bsi,spi->bp", W, A) for A in (Rr, Qr, Rt, Qt)]  # (B, P) means per resample
    vals, status, _ = bd_batch(*curves, kind=kind, lower_is_better=lower_is_better, log_rate=log_rate, method=method)
    lo, hi = _percentile_interval(vals, ci)
    B = float(n_boot)
    if S == 1:
        resampling = "images only (one training seed)"
    elif not hierarchical:
        resampling = f"images only (all {S} training seeds kept)"
    else:
        resampling = "training seeds, then images within each drawn seed" if image_draws == "per_seed" else \
            "training seeds and images (one image draw shared by the drawn seeds)"
    covers = f"{N} test images × {S} training seed{'s' if S != 1 else ''}"
    if single:
        covers += " (images resampled only: training-seed variation NOT covered)"
    out = {
        "reference": _describe(ref_sel), "test": _describe(test_sel), "metric": metric, "kind": kind,
        "value": float(value) + 0.0,  # + 0.0 turns -0.0 into 0.0
        "ci_low": lo, "ci_high": hi, "ci": ci, "n_boot": int(n_boot),
        "n_valid": int(np.sum(status == OK)), "undefined_share": float(np.sum(status != OK) / B),
        "no_overlap_share": float(np.sum(status == NO_OVERLAP) / B),
        "not_monotone_share": float(np.sum((status == NOT_MONOTONE) | (status == INVALID)) / B),
        "n_seeds": S, "n_images": N, "seeds": seed_list, "rate_points": [len(rp_r), len(rp_t)],
        "method": method, "log_rate": bool(log_rate), "lower_is_better": bool(lower_is_better),
        "resampling": resampling, "covers": covers, "point_error": point_error, "notes": notes,
        "unit": "%" if kind == "rate" else metric,
    }
    if return_samples:
        out["samples"] = vals
    return out


# ---------------------------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------------------------
def sign_agrees(ours, paper) -> bool | None:
    """Whether ``ours`` has the sign of ``paper``; None when either is n/a (None, text, NaN) or 0.

    >>> sign_agrees(-0.2, -8.6), sign_agrees(0.1, -8.6), sign_agrees("n/a — ...", -1.0), sign_agrees(0.0, 1.0)
    (True, False, None, None)
    """
    vals = []
    for v in (ours, paper):
        if v is None or isinstance(v, (str, bool)):
            return None
        v = float(v)
        if not math.isfinite(v) or v == 0.0:
            return None
        vals.append(v)
    return (vals[0] > 0) == (vals[1] > 0)


def _excludes_0(lo, hi) -> bool | None:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return bool(lo > 0 or hi < 0)


def _metric_cells(res: dict | str, metric: str, paper) -> dict:
    """The per-metric columns of one table row from a bootstrap result (or an n/a text)."""
    if isinstance(res, str):
        return {metric: res, f"{metric}_ci_low": None, f"{metric}_ci_high": None, f"{metric}_paper": paper,
                f"{metric}_sign_agrees": None, f"{metric}_excludes_0": None, f"{metric}_undefined_share": None}
    value = res["value"]
    if not math.isfinite(value):
        value = f"n/a — BD undefined on all data: {res['point_error']}"
    return {metric: value, f"{metric}_ci_low": res["ci_low"], f"{metric}_ci_high": res["ci_high"],
            f"{metric}_paper": paper, f"{metric}_sign_agrees": sign_agrees(value, paper),
            f"{metric}_excludes_0": _excludes_0(res["ci_low"], res["ci_high"]),
            f"{metric}_undefined_share": res["undefined_share"]}


def _bd_row(rows, paper_row, reference, test, metrics, kind, *, n_boot, seed, ci, cols, where, log_rate,
            method, weights_dir, hierarchical, image_draws, subset_rows):
    row = {"method": paper_row["method"], "variant": paper_row.get("variant"), "reference": False}
    if "steps" in paper_row:
        row["steps"] = paper_row["steps"]
    interp, covers, n_seeds, n_images = set(), set(), set(), set()
    for m in metrics:
        paper = paper_row.get(m)
        why = metric_unavailable(subset_rows, m, weights_dir)
        if why is None:
            try:
                res = bootstrap_bd(rows, reference, test, m, kind, n_boot=n_boot, seed=seed, ci=ci, cols=cols,
                                   where=where, log_rate=log_rate, method=method, hierarchical=hierarchical,
                                   image_draws=image_draws)
            except ValueError as exc:
                res = f"n/a — {exc}"
        else:
            res = why
        row.update(_metric_cells(res, m, paper))
        if isinstance(res, dict):
            interp.add(res["method"])
            covers.add(res["covers"])
            n_seeds.add(res["n_seeds"])
            n_images.add(res["n_images"])
    def one(values):  # the value if the metrics agree, else "a/b"
        return None if not values else (values.pop() if len(values) == 1 else "/".join(map(str, sorted(values))))

    row["interpolant"] = one(interp)
    row["n_seeds"], row["n_images"] = one(n_seeds), one(n_images)
    row["covers"] = "; ".join(sorted(covers)) or None
    return row


def _reference_row(paper_row, metrics) -> dict:
    row = {"method": paper_row["method"], "variant": paper_row.get("variant"), "reference": True}
    if "steps" in paper_row:
        row["steps"] = paper_row["steps"]
    for m in metrics:  # the anchor: 0 by definition, as the paper prints it
        row.update({m: 0.0, f"{m}_ci_low": None, f"{m}_ci_high": None, f"{m}_paper": paper_row.get(m),
                    f"{m}_sign_agrees": None, f"{m}_excludes_0": None, f"{m}_undefined_share": None})
    row.update({"interpolant": None, "n_seeds": None, "n_images": None, "covers": "reference (0 by definition)"})
    return row


def _intervals_text(rows_out, n_boot, ci, hierarchical) -> str:
    """What a BD table's intervals are: the bootstrap, the data they cover, the interpolant."""
    covers = sorted({r["covers"] for r in rows_out if not r["reference"] and r.get("covers")})
    interp = sorted({i for r in rows_out if r.get("interpolant") for i in str(r["interpolant"]).split("/")})
    resampling = "seeds, then images within each seed" if hierarchical else "images only"
    return (f"{int(ci * 100)} % percentile intervals of a hierarchical paired bootstrap ({n_boot} resamples; "
            f"{resampling}) over {', '.join(covers) or 'no data'}; interpolant: {', '.join(interp) or 'none'} "
            "(cubic with ≥ 4 rate points per curve, else pchip)")


def _bd_what(kind, log_rate, subject) -> str:
    """What a BD number means, ``subject`` the curve compared with the reference."""
    if kind == "rate":
        return f"BD-rate (%, log-rate Bjøntegaard; positive = {subject} needs more bits than the reference)"
    return (f"BD-quality (Eq. 37 over {'log10 bpp' if log_rate else 'bpp'}; positive = {subject} does better "
            "than the reference, LPIPS/DISTS sign flipped)")


def _caption(name, kind, rows_out, n_boot, ci, log_rate, hierarchical):
    return f"{PAPER[name]['title']}. Ours: {_bd_what(kind, log_rate, 'the method')}; " \
           f"{_intervals_text(rows_out, n_boot, ci, hierarchical)}."


def ablation_table(rows, table: str = "table1", metrics=_PAPER_METRICS, *, n_boot: int = 1000, seed: int = 0,
                   ci: float = 0.95, cols: Columns = Columns(), where: dict | None = None, log_rate: bool = True,
                   method: str | None = None, weights_dir=None, hierarchical: bool = True,
                   image_draws: str = "per_seed") -> dict:
    """One of the paper's ablation tables (``"table1"``, ``"table2"``: BD-quality; ``"table3"``: BD-rate) from our rows.

    Returns ``{"name", "kind", "title", "caption", "metrics", "rows"}``; ``rows`` has one
    dict per paper row (the ablations, then "MDIC (Ours)", the reference, 0 by definition)
    with ``method``, ``variant``, and per metric ``<m>`` (our estimate, or an "n/a — …"
    text), ``<m>_ci_low``, ``<m>_ci_high``, ``<m>_paper``, ``<m>_sign_agrees``,
    ``<m>_excludes_0``, ``<m>_undefined_share`` (resamples without a BD, left out of the
    interval); plus ``interpolant``, ``n_seeds``, ``n_images``, ``covers``.  Every BD number uses the same
    resample draws (``seed``).  ``where`` filters the rows first (e.g. ``{"codec": "mdic"}``;
    the denoising steps if the table mixes several).
    """
    if table not in ("table1", "table2", "table3"):
        raise ValueError(f"table must be 'table1', 'table2' or 'table3' (Table 4: use table4()), got {table!r}")
    spec = PAPER[table]
    rows = list(rows)
    out_rows = []
    for pr in spec["rows"]:
        if pr["variant"] == "full":
            out_rows.append(_reference_row(pr, metrics))
            continue
        subset = _select(rows, _as_select(pr["variant"], cols, where)) + _select(rows, _as_select("full", cols, where))
        out_rows.append(_bd_row(rows, pr, "full", pr["variant"], metrics, spec["kind"], n_boot=n_boot, seed=seed,
                                ci=ci, cols=cols, where=where, log_rate=log_rate, method=method,
                                weights_dir=weights_dir, hierarchical=hierarchical, image_draws=image_draws,
                                subset_rows=subset))
    return {"name": table, "kind": spec["kind"], "title": spec["title"], "metrics": list(metrics),
            "caption": _caption(table, spec["kind"], out_rows, n_boot, ci, log_rate, hierarchical), "rows": out_rows}


def choices_table(rows, choices, reference: dict, metrics=_PAPER_METRICS, *, kind: str = "quality",
                  n_boot: int = 1000, seed: int = 0, ci: float = 0.95, cols: Columns = Columns(),
                  where: dict | None = None, log_rate: bool = True, method: str | None = None, weights_dir=None,
                  hierarchical: bool = True, image_draws: str = "per_seed", title: str | None = None) -> dict:
    """The "paper vs authors' choices" table: BD of each single choice switched on the full model.

    ``choices``: dicts ``name`` (the choice), ``what`` (in words) and ``select`` (the ``{column:
    value}`` filter of its cells, e.g. ``{"variant": "full", "overrides": "<json>"}``), or ``skip``
    (an "n/a — why" text: a row without numbers);
    ``reference``: the filter of the full model's cells.  ``kind``: ``"quality"`` (Eq. 37,
    positive = the choice does better) or ``"rate"`` (BD-rate %, positive = the choice needs
    more bits).  The same hierarchical paired bootstrap as :func:`ablation_table` (same seeds and
    images for both curves); no paper values (the paper has no such table), so no sign column
    and no claims: each row is a finding, its interval says whether it is resolved.
    """
    if kind not in ("quality", "rate"):
        raise ValueError(f"kind must be 'quality' or 'rate', got {kind!r}")
    rows = list(rows)
    out_rows = [{**_reference_row({"method": "MDIC as the run's profile", "variant": "full"}, metrics),
                 "choice": "", "what": "the full model of the run (reference)"}]
    for c in choices:
        if c.get("skip"):  # e.g. a choice that builds the reference's own model at this preset
            row = {"method": f"+ {c['name']}", "variant": "full", "reference": False}
            for m in metrics:
                row.update(_metric_cells(c["skip"], m, None))
            out_rows.append({**row, "interpolant": None, "n_seeds": None, "n_images": None, "covers": None,
                             "choice": c["name"], "what": c.get("what", "")})
            continue
        subset = _select(rows, _as_select(c["select"], cols, where)) + _select(rows, _as_select(reference, cols, where))
        row = _bd_row(rows, {"method": f"+ {c['name']}", "variant": "full"}, reference, c["select"], metrics, kind,
                      n_boot=n_boot, seed=seed, ci=ci, cols=cols, where=where, log_rate=log_rate, method=method,
                      weights_dir=weights_dir, hierarchical=hierarchical, image_draws=image_draws, subset_rows=subset)
        out_rows.append({**row, "choice": c["name"], "what": c.get("what", "")})
    name = f"choices_{kind}"
    caption = (f"Each row switches one choice of the other profile on the run's full model (every rate point "
               f"and seed of the run). {_bd_what(kind, log_rate, 'the choice')}; "
               f"{_intervals_text(out_rows, n_boot, ci, hierarchical)}. No paper values: the paper has no such table.")
    return {"name": name, "kind": kind, "paper": False, "metrics": list(metrics), "caption": caption, "rows": out_rows,
            "title": title or f"Paper vs the authors' choices, one at a time ({'BD-rate' if kind == 'rate' else 'BD-quality'})"}


def _time_stats(values, ci: float = 0.95) -> dict:
    """Mean, sample std and the t-interval of the mean of per-image times."""
    from scipy import stats

    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    n = v.size
    if n == 0:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(v.mean())
    if n == 1:
        return {"mean": mean, "std": None, "ci_low": None, "ci_high": None, "n": 1}
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + ci / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "std": sd, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def table4(rows, metrics=_PAPER_METRICS, *, steps=(5, 10), reference_steps: int = 10, variant: str = "full",
           n_boot: int = 1000, seed: int = 0, ci: float = 0.95, cols: Columns = Columns(),
           where: dict | None = None, log_rate: bool = True, method: str | None = None, weights_dir=None,
           hierarchical: bool = True, image_draws: str = "per_seed", timing_rows=None) -> dict:
    """Table 4's MDIC rows: time per image and BD-quality at each number of denoising steps.

    ``rows`` give the BD-quality; ``timing_rows`` (default: ``rows``) the times, so the quality
    can come from every test image decoded in batches and the times from a few decoded one at a
    time.

    For each value of ``steps``: encode and decode seconds per image (``<t>_mean``,
    ``<t>_std``, ``<t>_ci_low`` / ``<t>_ci_high``: t-interval of the mean over every image
    row of that setting, all seeds and rate points; ``<t>_n``; ``<t>_paper`` and
    ``<t>_paper_pm``), and BD-quality against ``reference_steps`` steps with the bootstrap
    (the same images, seeds and rate points decoded twice: a strongly paired comparison).
    The reference row holds 0 by definition.  Other codecs' rows of the paper are in
    ``PAPER["table4"]`` only.
    """
    rows = list(rows)
    paper = {r["steps"]: r for r in PAPER["table4"]["rows"] if r["variant"] == "full"}
    ref_sel = {cols.variant: variant, cols.steps: reference_steps}
    out_rows = []
    for k in steps:
        pr = paper.get(int(k), {"method": VARIANT_METHODS.get(variant, variant), "variant": variant, "steps": int(k)})
        pr = {**pr, "method": f"{pr['method']}, {int(k)} steps"}
        sel = {cols.variant: variant, cols.steps: k}
        if int(k) == int(reference_steps):
            row = _reference_row(pr, metrics)
        else:
            subset = _select(rows, _as_select(sel, cols, where)) + _select(rows, _as_select(ref_sel, cols, where))
            row = _bd_row(rows, pr, ref_sel, sel, metrics, "quality", n_boot=n_boot, seed=seed, ci=ci, cols=cols,
                          where=where, log_rate=log_rate, method=method, weights_dir=weights_dir,
                          hierarchical=hierarchical, image_draws=image_draws, subset_rows=subset)
        mine = _select(rows if timing_rows is None else list(timing_rows), _as_select(sel, cols, where))
        for name, col in (("encode_s", cols.encode), ("decode_s", cols.decode)):
            st = _time_stats([_num(r.get(col)) for r in mine], ci)
            row.update({f"{name}_{k2}": v for k2, v in st.items()})
            pv = pr.get(name)
            row[f"{name}_paper"], row[f"{name}_paper_pm"] = (pv if pv is not None else (None, None))
        out_rows.append(row)
    caption = _caption("table4", "quality", out_rows, n_boot, ci, log_rate, hierarchical)
    caption += (f" Times: seconds per image on this machine, mean ± std, {int(ci * 100)} % t-interval of the mean "
                "over all image rows (seeds and rate points pooled); the paper's ± is printed beside.")
    return {"name": "table4", "kind": "quality", "title": PAPER["table4"]["title"], "metrics": list(metrics),
            "caption": caption, "rows": out_rows}


# ---------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------
def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (float, np.floating)):
        return "nan" if not math.isfinite(v) else f"{float(v):.6g}"
    return str(v)


def _columns(rows) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _csv_text(rows) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = _columns(rows)
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(k)) for k in cols])
    return buf.getvalue()


def _fmt(v, digits=4) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{float(v):.{digits}g}" if abs(float(v)) >= 1e-3 or v == 0 else f"{float(v):.3g}"


def _paper(v) -> str:
    """A paper value as printed (``-8.6358``, ``121.49``), "–" if none."""
    return "–" if v is None else (str(v) if v else "0")


def _md_table(table: dict) -> str:
    metrics = table["metrics"]
    unit = " (%)" if table["kind"] == "rate" else ""
    mark = {True: "✓", False: "✗", None: "–"}
    head = ["Method"] + (["DS"] if table["name"] == "table4" else [])
    with_paper = table.get("paper", True)
    head += [f"{METRIC_LABELS.get(m, m)}{unit}: " + ("ours [CI] · paper · sign" if with_paper else "ours [CI]")
             for m in metrics]
    if table["name"] == "table4":
        head += ["Encoding (s): ours ± std [CI] · paper", "Decoding (s): ours ± std [CI] · paper"]
    lines = [f"### {table['title']}", "", table["caption"], "",
             "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in table["rows"]:
        cells = [r["method"]] + ([str(r.get("steps", ""))] if table["name"] == "table4" else [])
        for m in metrics:
            v = r.get(m)
            if isinstance(v, str):
                ours = v
            elif r["reference"]:
                ours = "0 (reference)"
            else:
                ours = f"{_fmt(v)} [{_fmt(r[f'{m}_ci_low'])}, {_fmt(r[f'{m}_ci_high'])}]"
                if r.get(f"{m}_excludes_0"):
                    ours += "*"
                if r.get(f"{m}_undefined_share"):
                    ours += f" ({100 * r[f'{m}_undefined_share']:.1f} % of resamples undefined)"
            cells.append(f"{ours} · {_paper(r.get(f'{m}_paper'))} · {mark[r.get(f'{m}_sign_agrees')]}"
                         if with_paper else ours)
        if table["name"] == "table4":
            for t in ("encode_s", "decode_s"):
                if r.get(f"{t}_mean") is None:
                    ours = "n/a"
                else:
                    ours = f"{_fmt(r[f'{t}_mean'], 3)} ± {_fmt(r[f'{t}_std'], 2)} " \
                           f"[{_fmt(r[f'{t}_ci_low'], 3)}, {_fmt(r[f'{t}_ci_high'], 3)}]"
                pp = "–" if r.get(f"{t}_paper") is None else f"{r[f'{t}_paper']} ± {r[f'{t}_paper_pm']}"
                cells.append(f"{ours} · {pp}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", ("\\* the interval excludes 0. Sign: ✓ ours has the paper's sign, ✗ the opposite, "
                   "– not comparable (n/a or 0)." if with_paper else "\\* the interval excludes 0."), ""]
    return "\n".join(lines)


def _as_tables(tables) -> list[dict]:
    if isinstance(tables, dict) and "rows" in tables:
        return [tables]
    if isinstance(tables, dict):
        return list(tables.values())
    return list(tables)


def write_tables(out_dir, tables) -> list[Path]:
    """Write ``<name>.csv`` per table (one row per method) and ``tables.md`` (all, with captions), atomically.

    ``tables``: a dict ``{name: table}``, a list of tables, or one table (as returned by
    :func:`ablation_table` / :func:`table4`).  Returns the written paths.
    """
    from mdic_lab.atomic import atomic_write_text

    out_dir = Path(out_dir)
    tabs = _as_tables(tables)
    paths = [atomic_write_text(out_dir / f"{t['name']}.csv", _csv_text(t["rows"])) for t in tabs]
    md = ["# MDIC ablation tables: ours with bootstrap intervals, beside the paper's", ""]
    md += [_md_table(t) for t in tabs]
    paths.append(atomic_write_text(out_dir / "tables.md", "\n".join(md)))
    return paths


def read_table_csv(path) -> list[dict]:
    """A ``table<k>.csv`` / ``choices_<kind>.csv`` written by :func:`write_tables`, as rows of text."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def signs_by_profile(runs: dict, tables=("table1", "table2", "table3"), metrics=("psnr", "ms_ssim")) -> str:
    """Tables 1–3 of several runs side by side (a Markdown table): which run's signs match the paper's.

    ``runs``: ``{label: output_dir}`` of finished ablation runs (e.g. ``{"paper profile": ...,
    "authors profile": ...}``).  One line per (table row, metric): the paper's value, then per
    run our value with its interval, ``*`` where the interval excludes 0, and ✓ / ✗ whether the
    sign agrees with the paper's (– n/a).
    """
    mark = {"True": "✓", "False": "✗"}
    data = {label: {t: {r["method"]: r for r in read_table_csv(Path(d) / f"{t}.csv")} for t in tables}
            for label, d in runs.items()}
    head = ["table", "method", "metric", "paper"] + list(runs)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    first = next(iter(data.values()))
    for t in tables:
        for method, row in first[t].items():
            if row.get("reference") == "True":
                continue
            for m in metrics:
                cells = [t.replace("table", "T"), method, METRIC_LABELS.get(m, m), row.get(f"{m}_paper") or "–"]
                for label in runs:
                    r = data[label][t].get(method, {})
                    v = r.get(m, "")
                    if not v or v.startswith("n/a"):
                        cells.append("n/a")
                        continue
                    text = f"{_fmt(float(v))} [{_fmt(float(r[f'{m}_ci_low']))}, {_fmt(float(r[f'{m}_ci_high']))}]"
                    text += "*" if r.get(f"{m}_excludes_0") == "True" else ""
                    cells.append(f"{text} {mark.get(r.get(f'{m}_sign_agrees'), '–')}")
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_claims(tables):
    """A :class:`~mdic_lab.experiments.claims.Claims` with one claim per (ablation row, metric).

    "w/o TS: BD-rate sign agrees with the paper (PSNR)"; ``holds`` = the sign agrees; an
    n/a value does not hold (nothing was shown) and says why.  Reference rows (0 by
    definition) give no claim, nor do columns the paper does not print (mIoU).  Table 4
    adds "decoding at 5 steps is faster than at 10".
    """
    from mdic_lab.experiments.claims import Claims

    claims = Claims()
    for t in _as_tables(tables):
        if not t.get("paper", True):  # a table of ours alone (the choices): findings, no paper sign to agree with
            continue
        what = "BD-rate" if t["kind"] == "rate" else "BD-quality"
        unit = " %" if t["kind"] == "rate" else ""
        for r in t["rows"]:
            if r["reference"]:
                continue
            label = r["method"]
            for m in t["metrics"]:
                if m not in _PAPER_METRICS:  # our extra column: no paper value to agree with
                    continue
                v, p = r.get(m), r.get(f"{m}_paper")
                agrees = r.get(f"{m}_sign_agrees")
                if isinstance(v, str):
                    measured = v
                else:
                    measured = f"{_fmt(v)}{unit} [{_fmt(r[f'{m}_ci_low'])}, {_fmt(r[f'{m}_ci_high'])}]"
                    measured += " (CI excludes 0)" if r.get(f"{m}_excludes_0") else " (CI includes 0)"
                claims.add(f"{label}: {what} sign agrees with the paper ({METRIC_LABELS.get(m, m)})",
                           f"{_paper(p)}{unit}", measured, bool(agrees),
                           table=t["name"], metric=m, excludes_0=r.get(f"{m}_excludes_0"))
        if t["name"] == "table4":
            by_steps = {r.get("steps"): r for r in t["rows"]}
            fast, slow = by_steps.get(5), by_steps.get(10)
            if fast and slow:
                a, b = fast.get("decode_s_mean"), slow.get("decode_s_mean")
                ok = a is not None and b is not None and a < b
                claims.add("MDIC decodes faster at 5 denoising steps than at 10",
                           f"{fast.get('decode_s_paper')} s < {slow.get('decode_s_paper')} s",
                           "n/a" if not (a is not None and b is not None) else f"{a:.3g} s vs {b:.3g} s", ok,
                           table="table4", metric="decode_s")
    return claims
