"""Notebook 10's computations: parallax attention on stereo pairs, and the fusion / text sweep's BD tables.

Two parts, both called by ``notebooks/10_fusion_and_text.ipynb`` and by ``tests/test_fusion_study.py``.

**Parallax attention on a stereo pair** (ParaHydra, Appendix B).  :func:`stereo_pair` gives a
pair with its known disparity: a synthetic-world pair (disparity ``d = f B / Z`` of the left
view's depth, :meth:`mdic_lab.data.scene.Camera.disparity`) or scikit-image's Middlebury
*motorcycle* pair (its ground-truth disparity, cropped and resized exactly as the images).
:func:`parameter_free_opam` runs the two OPAM stages of Eqs. 21–23 with
:func:`mdic_lab.models.baselines.opam.parallax_attention` on a **fixed, parameter-free** Q and K:
each pixel's ``patch × patch × 3`` neighbourhood, mean removed and scaled to unit norm, times
``√τ`` (:func:`patch_descriptors`).  Then ``M = Q_b K_bᵀ`` (Eq. 6) is ``τ`` times the normalised
cross-correlation (NCC) of the two patches, the classic stereo matching score, and the softmaxes
of Eq. 7 turn it into attention.  This is *not* a trained OPAM: the SKM of Eqs. 5 / 13 is replaced
by that fixed descriptor, so the maps show what parallax attention and its cycle consistency do
when Q and K are good matching features.  :func:`untrained_opam` runs the real module
(:class:`~mdic_lab.models.baselines.opam.OmniParallaxAttention`, SKM included) with random
initial weights on the RGB pair, for contrast.  :func:`disparity_from_attention` reads the
disparity ``i − argmax_j M_{r→l}[i, j]`` off the stage-1 map; :func:`disparity_accuracy` and
:func:`shift_recovery` score it.

**The sweep.**  :func:`fusion_sweep_spec` builds one spec dict for
:func:`mdic_lab.experiments.sweep.load_spec` with the hyperprior, TACO, NDIC (concat | OPAM
fusion) and MDIC (transformer | OPAM G1) side by side; the rate is an override axis (λ for the
λ codecs, the codebook size K for MDIC).  :func:`label_rows` is the thin adapter between the
sweep's ``images.csv`` and :func:`mdic_lab.experiments.ablation_tables.bootstrap_bd`: it adds an
``arm`` column (codec + fusion choice), a ``rate_label`` column (the rate knob's value) and
``bpp_image`` (``bpp_coded − caption_bpp``: TACO's image bits alone), so the unchanged
hierarchical paired bootstrap of the ablation tables compares any two arms (:func:`bd_table`).
:func:`caption_accounting` re-derives TACO's caption bytes from the captions themselves.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mdic_lab.config import ConfigError

__all__ = ["ARMS", "COMPARISONS", "RATE_KNOBS", "StereoPair", "arm_curves", "arm_of", "auc", "bd_finding", "format_findings",
           "bd_table", "caption_accounting", "consistency_range", "disparity_accuracy",
           "disparity_from_attention", "format_bd_table", "fusion_sweep_spec", "label_rows",
           "motorcycle_pair", "ndic_fusion_attention", "parameter_free_opam", "patch_descriptors",
           "shift_recovery", "stereo_pair", "synthetic_pair", "untrained_opam"]

PAIRS = ("synthetic", "motorcycle")


# ============================================================================ stereo pairs
class StereoPair(NamedTuple):
    """A rectified stereo pair with its known disparity (left pixel ``(v, u)`` ↔ right ``(v, u − d)``)."""

    name: str
    left: torch.Tensor  # (3, H, W) in [0, 1], main view
    right: torch.Tensor  # (3, H, W) in [0, 1], side view
    disparity: np.ndarray  # (H, W) float, pixels (0 where unknown)
    valid: np.ndarray  # (H, W) bool: the left pixel's match is known and visible in the right view
    note: str  # what "valid" means for this pair


def synthetic_pair(index: int = 0, *, split: str = "test", size=(128, 256), seed: int = 0) -> StereoPair:
    """Pair ``index`` of the synthetic world (through ``open_pairs``) and its true disparity.

    ``d = f B / Z`` of the left view's depth.  Valid: not sky (finite depth), the match
    ``(v, ⌊u + ½ − d⌋)`` is inside the right frame, shows the same instance, and is a
    ``side_valid`` right pixel (no mover, appearance change or light patch there).
    """
    from mdic_lab.data.sources import open_pairs
    from mdic_lab.data.synthetic import generate_sample

    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be an int >= 0, got {index!r}")
    item = open_pairs("synthetic", split, size=tuple(size), seed=seed, length=index + 1, captions=False)[index]
    s = generate_sample(split, seed, index, tuple(size))  # the same pure function of (split, seed, index)
    left = torch.from_numpy(s.left).permute(2, 0, 1).float() / 255.0
    if not torch.equal(left, item["left"]):
        raise RuntimeError("the synthetic pair from open_pairs differs from generate_sample: stale cache?")
    h, w = s.depth_left.shape
    sky = ~(s.depth_left < 1e30)
    d = np.where(sky, 0.0, s.scene.camera.disparity(np.where(sky, 1.0, s.depth_left)))
    ur = np.floor(np.arange(w)[None, :] + 0.5 - d).astype(np.int64)  # matching right column
    inside = ur >= 0
    urc = np.clip(ur, 0, w - 1)
    rows = np.arange(h)[:, None]
    same = s.instances_right[rows, urc] == s.instances_left
    valid = ~sky & inside & same & s.side_valid[rows, urc]
    return StereoPair(f"synthetic {split} #{index}", item["left"], item["right"], d, valid,
                      "not sky, match inside the right frame, same object, side_valid there")


def _fit_disparity(disp: np.ndarray, size) -> np.ndarray:
    """The disparity map under :func:`mdic_lab.data.imageio.fit_image`'s crop and resize (nearest, rescaled)."""
    h, w = disp.shape
    th, tw = int(size[0]), int(size[1])
    if h * tw > w * th:  # too tall: crop rows (as fit_image)
        nh = w * th // tw
        disp = disp[(h - nh) // 2:(h - nh) // 2 + nh]
    else:
        nw = h * tw // th
        disp = disp[:, (w - nw) // 2:(w - nw) // 2 + nw]
    H, W = disp.shape
    rows = np.minimum(((np.arange(th) + 0.5) * H / th).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(tw) + 0.5) * W / tw).astype(np.int64), W - 1)
    return disp[rows[:, None], cols[None, :]] * (tw / W)  # disparities are horizontal pixel distances


def motorcycle_pair(size=(128, 256)) -> StereoPair:
    """scikit-image's Middlebury *motorcycle* pair (:func:`~mdic_lab.data.imageio.stereo_motorcycle`)
    and its ground-truth disparity, cropped and resized like the images.  Valid: finite ground
    truth and the match inside the right frame."""
    from skimage import data

    from mdic_lab.data.imageio import stereo_motorcycle

    left, right = stereo_motorcycle(tuple(size))
    disp = _fit_disparity(np.asarray(data.stereo_motorcycle()[2], dtype=np.float64), size)
    known = np.isfinite(disp)
    d = np.where(known, disp, 0.0)
    valid = known & (np.arange(d.shape[1])[None, :] - d >= 0)
    return StereoPair("Middlebury motorcycle", left, right, d, valid,
                      "finite ground truth, match inside the right frame")


def stereo_pair(source: str, *, size=(128, 256), index: int = 0, seed: int = 0) -> StereoPair:
    """``"synthetic"`` (:func:`synthetic_pair`, test split) or ``"motorcycle"`` (:func:`motorcycle_pair`)."""
    if source == "synthetic":
        return synthetic_pair(index, size=size, seed=seed)
    if source == "motorcycle":
        return motorcycle_pair(size)
    raise ValueError(f"unknown stereo pair {source!r} (expected one of: {', '.join(PAIRS)})")


# ============================================================================ parallax attention
def patch_descriptors(image: torch.Tensor, patch: int = 7, temperature: float = 100.0) -> torch.Tensor:
    """Parameter-free Q / K: every pixel's ``patch × patch`` neighbourhood (all channels, zero padding),
    mean removed, unit L2 norm, times ``√temperature``: ``(B, C·patch², H, W)`` in float64.

    Then ``q_i · k_j = temperature · NCC(patch_i, patch_j)`` (Eq. 6 with these Q and K); a flat
    patch (no texture) gets the zero vector, hence a uniform attention row.

    >>> img = torch.rand(1, 3, 6, 8)
    >>> q = patch_descriptors(img, 3, 4.0)
    >>> tuple(q.shape), round(float((q[0, :, 2, 3] ** 2).sum()), 6)
    ((1, 27, 6, 8), 4.0)
    """
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"image must be (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be an odd int >= 1, got {patch!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    x = image.double()
    b, _, h, w = x.shape
    p = F.unfold(x, patch, padding=patch // 2)  # (B, C·patch², H·W)
    p = p - p.mean(1, keepdim=True)
    norm = p.norm(dim=1, keepdim=True)
    p = torch.where(norm > 1e-6, p / norm.clamp_min(1e-12), torch.zeros_like(p))  # flat patches → 0
    return (math.sqrt(temperature) * p).view(b, -1, h, w)


def parameter_free_opam(left: torch.Tensor, right: torch.Tensor, *, patch: int = 7, temperature: float = 100.0):
    """OPAM's two stages (Eqs. 21–23) with :func:`patch_descriptors` as Q and K (no learned weights).

    Stage 1 (HPA, Eq. 21): ``Q = desc(f_l)``, ``K = desc(f_r)``, values f_r (the right RGB image)
    → ``f_l^hor``, ``C^hor``.  Stage 2 (VPA, Eq. 22): ``Q = desc(f_l)``, ``K = desc(f_l^hor)``,
    values ``f_l^hor`` → ``f_l^ver``, ``C^ver``; ``C = C^hor ⊙ C^ver`` (Eq. 23).  Returns an
    :class:`~mdic_lab.models.baselines.opam.OPAMOutput` (float64).
    """
    from mdic_lab.models.baselines.opam import OPAMOutput, parallax_attention

    fl = (left[None] if left.ndim == 3 else left).double()
    fr = (right[None] if right.ndim == 3 else right).double()
    q = patch_descriptors(fl, patch, temperature)
    hor = parallax_attention(q, patch_descriptors(fr, patch, temperature), fr, "horizontal")  # Eq. 21
    ver = parallax_attention(q, patch_descriptors(hor.aligned, patch, temperature), hor.aligned, "vertical")  # 22
    return OPAMOutput(ver.aligned, hor.consistency * ver.consistency, hor, ver)  # Eq. 23


def untrained_opam(left: torch.Tensor, right: torch.Tensor, *, seed: int = 0):
    """The real :class:`~mdic_lab.models.baselines.opam.OmniParallaxAttention` (SKM Q / K) with its
    random initial weights (drawn from ``seed``; the global RNG is left as it was) on the RGB pair."""
    from mdic_lab.models.baselines.opam import OmniParallaxAttention

    fl = left[None] if left.ndim == 3 else left
    fr = right[None] if right.ndim == 3 else right
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = OmniParallaxAttention(fl.shape[1]).eval()
    with torch.no_grad():
        return module(fl.float(), fr.float())


def disparity_from_attention(attention: torch.Tensor, height: int, width: int) -> np.ndarray:
    """``d̂(v, i) = i − argmax_j M_{r→l}[v, i, j]`` from a stage-1 map ``(H, W, W)`` (batch 1)."""
    if tuple(attention.shape) != (height, width, width):
        raise ValueError(f"attention must be (H, W, W) = ({height}, {width}, {width}), got {tuple(attention.shape)}")
    j = attention.argmax(-1).cpu().numpy()
    return (np.arange(width)[None, :] - j).astype(np.float64)


def disparity_accuracy(estimate: np.ndarray, truth: np.ndarray, valid: np.ndarray, *, tol: float = 1.0) -> dict:
    """Share of valid pixels with ``|d̂ − d| ≤ tol``, the mean absolute error there, and the share a
    uniformly random column would get (``(2·tol + 1) / W``)."""
    estimate, truth, valid = np.asarray(estimate, float), np.asarray(truth, float), np.asarray(valid, bool)
    if not (estimate.shape == truth.shape == valid.shape):
        raise ValueError(f"shapes differ: estimate {estimate.shape}, truth {truth.shape}, valid {valid.shape}")
    if not valid.any():
        raise ValueError("no valid pixel to score")
    err = np.abs(estimate - truth)[valid]
    return {"within_tol": float(np.mean(err <= tol)), "tol_px": float(tol), "mean_abs_error_px": float(err.mean()),
            "chance": float(min(1.0, (2 * math.floor(tol) + 1) / truth.shape[1])), "n_valid": int(valid.sum()),
            "valid_share": float(valid.mean())}


def shift_recovery(image: torch.Tensor, shift: int, axis: str = "horizontal", *, patch: int = 7,
                   temperature: float = 100.0, min_texture: float = 0.05) -> dict:
    """A copy of ``image`` shifted by ``shift`` pixels, attended to by HPA / VPA with parameter-free Q, K.

    The side view is ``side(u) = image(u + s)`` (horizontal; rows for vertical), zero outside,
    so main pixel ``i`` sits at ``i − s`` in the side view.  Scored on interior pixels (half a
    patch from every border, match inside the side view) whose patch has texture (norm of the
    mean-free patch > ``min_texture``): the share where ``argmax_j M[i, j] = i − s``.
    """
    from mdic_lab.models.baselines.opam import AXES, parallax_attention

    if axis not in AXES:
        raise ValueError(f"unknown parallax axis {axis!r} (expected one of: {', '.join(AXES)})")
    x = (image[None] if image.ndim == 3 else image).double()
    _, _, h, w = x.shape
    n = w if axis == "horizontal" else h
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 < shift < n - patch:
        raise ValueError(f"shift must be an int in 1..{n - patch - 1} for a line of {n} pixels, got {shift!r}")
    side = torch.zeros_like(x)
    if axis == "horizontal":
        side[..., :w - shift] = x[..., shift:]
    else:
        side[..., :h - shift, :] = x[..., shift:, :]
    q = patch_descriptors(x, patch, temperature)
    out = parallax_attention(q, patch_descriptors(side, patch, temperature), side, axis)
    j = out.attention.argmax(-1).numpy()  # (H, W) rows of M for horizontal; (W, H) for vertical
    if axis == "vertical":
        j = j.T
    idx = np.arange(w)[None, :] if axis == "horizontal" else np.arange(h)[:, None]
    hit = j == idx - shift
    r = patch // 2
    inner = np.zeros((h, w), bool)
    if axis == "horizontal":
        inner[r:h - r, shift + r:w - r] = True
    else:
        inner[shift + r:h - r, r:w - r] = True
    centred = F.unfold(x, patch, padding=r)
    texture = (centred - centred.mean(1, keepdim=True)).norm(dim=1).view(h, w).numpy() > min_texture
    scored = inner & texture
    return {"axis": axis, "shift": shift, "recovered": float(hit[scored].mean()), "n_scored": int(scored.sum()),
            "recovered_all_interior": float(hit[inner].mean()),
            "consistency_min": float(out.consistency.min()), "consistency_max": float(out.consistency.max())}


def consistency_range(*maps) -> tuple[float, float]:
    """``(min, max)`` over every consistency map given (Lemmas 1–2: within [0, 1])."""
    if not maps:
        raise ValueError("give at least one consistency map")
    return (min(float(m.min()) for m in maps), max(float(m.max()) for m in maps))


def auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` as a detector of ``labels`` (:func:`mdic_lab.metrics.detection.roc_auc`).

    >>> auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    from mdic_lab.metrics.detection import roc_auc

    return roc_auc(scores, labels)


# ============================================================================ the sweep
#: arm -> (codec, the fusion override and its value); the default fusions name the paper's models
ARMS = {"hyperprior": ("hyperprior", None, None), "taco": ("taco", None, None),
        "ndic+concat": ("ndic", "fusion", "concat"), "ndic+opam": ("ndic", "fusion", "opam"),
        "mdic+transformer": ("mdic", "g1_fusion", "transformer"), "mdic+opam": ("mdic", "g1_fusion", "opam")}
#: codec -> the override that moves its rate (λ of the R-D Lagrangian; MDIC: the codebook size K)
RATE_KNOBS = {"hyperprior": "lmbda", "taco": "lmbda", "ndic": "lmbda", "mdic": "codebook_size"}
#: (test arm, reference arm, rate column): the BD rows of notebook 10
COMPARISONS = (
    ("ndic+opam", "ndic+concat", "bpp_coded"),
    ("ndic+concat", "hyperprior", "bpp_coded"),
    ("ndic+opam", "hyperprior", "bpp_coded"),
    ("mdic+opam", "mdic+transformer", "bpp_coded"),
    ("taco", "hyperprior", "bpp_coded"),
    ("taco", "hyperprior", "bpp_image"),
)
RATE_COLUMNS = {"bpp_coded": "coded (every byte, caption included)",
                "bpp_image": "image bits alone (coded − caption)"}
_DEFAULT_FUSION = {"ndic": "concat", "mdic": "transformer"}


def fusion_sweep_spec(*, preset: str = "smoke", lambdas=(0.0001, 0.0025), codebooks=(16, 64), seeds=(0,),
                      codecs=("hyperprior", "taco", "ndic", "mdic"), ndic_fusions=("concat", "opam"),
                      g1_fusions=("transformer", "opam"), overrides: dict | None = None, n_eval: int = 8,
                      batch_size: int = 1, data: str = "synthetic", name: str = "fusion-and-text") -> dict:
    """One sweep spec (a dict for :func:`mdic_lab.experiments.sweep.load_spec`) with every arm side by side.

    The rate is an override axis: ``lmbda`` over ``lambdas`` for the hyperprior, TACO and NDIC,
    ``codebook_size`` over ``codebooks`` for MDIC (:data:`RATE_KNOBS`); NDIC gets ``fusion`` over
    ``ndic_fusions`` and MDIC ``g1_fusion`` over ``g1_fusions``.  ``overrides``: codec → {field:
    value} fixed for that codec's cells (e.g. ``{"ndic": {"steps": 150}}``; a list is one more
    grid axis, as in any spec).  Every cell is checked when the spec is loaded.

    >>> spec = fusion_sweep_spec(codecs=("ndic",), lambdas=(0.001,))
    >>> spec["grid"]["overrides"]["ndic"]
    {'lmbda': [0.001], 'fusion': ['concat', 'opam']}
    """
    from mdic_lab.registry import get_codec

    codecs = list(dict.fromkeys(codecs))
    if not codecs:
        raise ConfigError("codecs is empty (expected some of: " + ", ".join(RATE_KNOBS) + ")")
    for c in codecs:
        if c not in RATE_KNOBS:
            raise ConfigError(f"unknown codec {c!r} for the fusion study (expected one of: {', '.join(RATE_KNOBS)})")
    overrides = dict(overrides or {})
    for c in overrides:
        if c not in codecs:
            raise ConfigError(f"overrides name codec {c!r}, which is not in codecs (expected one of: {', '.join(codecs)})")
    for label, values in (("lambdas", lambdas), ("codebooks", codebooks)):
        if not list(values):
            raise ConfigError(f"{label} is empty: give at least one rate point")
    grid_ov = {}
    for c in codecs:
        get_codec(c)  # unknown names are refused by the registry
        ov = {RATE_KNOBS[c]: list(codebooks) if c == "mdic" else [float(v) for v in lambdas]}
        if c == "ndic":
            ov["fusion"] = list(ndic_fusions)
        if c == "mdic":
            ov["g1_fusion"] = list(g1_fusions)
        for k, v in dict(overrides.get(c, {})).items():
            if k in ov:
                raise ConfigError(f"overrides of {c!r} set {k!r}, which the study sets itself "
                                  f"(use lambdas / codebooks / ndic_fusions / g1_fusions)")
            ov[k] = v
        grid_ov[c] = ov
    return {"name": name, "data": data,
            "grid": {"codec": codecs, "preset": preset, "seed": [int(s) for s in seeds], "overrides": grid_ov},
            "eval": {"split": "test", "limit": int(n_eval), "use_lpips": False, "batch_size": int(batch_size)}}


def _overrides(row) -> dict:
    ov = row.get("overrides", {})
    if isinstance(ov, str):
        ov = json.loads(ov) if ov.strip() else {}
    return dict(ov)


def arm_of(codec: str, overrides: dict) -> str:
    """The arm of a cell: its codec, plus the fusion choice for NDIC and MDIC (default when not overridden).

    >>> arm_of("ndic", {"fusion": "opam", "lmbda": 0.001}), arm_of("mdic", {}), arm_of("taco", {})
    ('ndic+opam', 'mdic+transformer', 'taco')
    """
    for arm, (c, key, value) in ARMS.items():
        if c == codec and (key is None or overrides.get(key, _DEFAULT_FUSION.get(codec)) == value):
            return arm
    raise ValueError(f"no arm for codec {codec!r} with overrides {overrides} (arms: {', '.join(ARMS)})")


def label_rows(rows) -> list[dict]:
    """The sweep's per-image rows (``images.csv``) with ``arm``, ``rate_label`` and ``bpp_image`` added.

    ``arm``: :func:`arm_of`, with ``/<variant>`` appended for an ablation variant other than
    ``full`` (``mdic+opam/no_text``).  ``rate_label``: ``"<knob>=<value>"`` when the cell
    overrides its codec's rate knob (:data:`RATE_KNOBS`), else ``"rp<k>"`` (a registry rate
    point) or ``"preset"``.
    ``bpp_image = bpp_coded − caption_bpp`` (equal to ``bpp_coded`` for every codec but TACO).
    Rows of codecs outside :data:`RATE_KNOBS` are refused.
    """
    out = []
    for r in rows:
        codec = r.get("codec")
        if codec not in RATE_KNOBS:
            raise ValueError(f"row of codec {codec!r}: the fusion study knows {', '.join(RATE_KNOBS)}")
        ov = _overrides(r)
        knob = RATE_KNOBS[codec]
        rp = r.get("rate_point")
        if knob in ov:
            label = f"{knob}={ov[knob]:g}" if isinstance(ov[knob], float) else f"{knob}={ov[knob]}"
        elif rp not in (None, ""):
            label = f"rp{rp}"
        else:
            label = "preset"
        bpp = float(r["bpp_coded"])
        cap = r.get("caption_bpp")
        cap = 0.0 if cap in (None, "") else float(cap)
        arm = arm_of(codec, ov)
        if r.get("variant") not in (None, "", "full"):
            arm += f"/{r['variant']}"
        out.append({**r, "arm": arm, "rate_label": label, "bpp_image": bpp - cap})
    return out


def arm_curves(rows, metric: str = "psnr", rate: str = "bpp_coded") -> dict:
    """arm → the mean R-D curve (:func:`~mdic_lab.experiments.ablation_tables.rd_curve`) of labelled rows."""
    from .ablation_tables import Columns, rd_curve

    cols = Columns(rate_point="rate_label", rate=rate)
    present = {r["arm"] for r in rows}
    arms = [a for a in ARMS if a in present] + sorted(present - set(ARMS))
    return {a: rd_curve(rows, variant={"arm": a}, metric=metric, cols=cols) for a in arms}


def bd_table(rows, comparisons=COMPARISONS, *, metric: str = "psnr", n_boot: int = 1000, seed: int = 0,
             ci: float = 0.95) -> list[dict]:
    """BD-rate (%) and BD-quality of each (test, reference, rate column) with the ablation tables'
    hierarchical paired bootstrap interval (:func:`~mdic_lab.experiments.ablation_tables.bootstrap_bd`).

    ``rows``: :func:`label_rows` output.  Arms are those of :data:`ARMS` or any arm of ``rows``
    (``mdic+opam/no_text``).  A comparison whose arms are not both in ``rows`` is left out; one
    whose BD cannot be computed keeps its row with the reason in ``note``.
    """
    from .ablation_tables import Columns, bootstrap_bd

    present = {r["arm"] for r in rows}
    table = []
    for test, ref, rate in comparisons:
        for arm in (test, ref):
            if arm not in ARMS and arm not in present:
                raise ValueError(f"unknown arm {arm!r} (expected one of: {', '.join(list(ARMS) + sorted(present - set(ARMS)))})")
        if rate not in RATE_COLUMNS:
            raise ValueError(f"unknown rate column {rate!r} (expected one of: {', '.join(RATE_COLUMNS)})")
        if test not in present or ref not in present:
            continue
        row = {"test": test, "reference": ref, "rate": rate, "metric": metric, "note": ""}
        cols = Columns(rate_point="rate_label", rate=rate)
        for kind, key in (("rate", "bd_rate"), ("quality", "bd_quality")):
            try:
                res = bootstrap_bd(rows, {"arm": ref}, {"arm": test}, metric, kind, n_boot=n_boot, seed=seed, ci=ci,
                                   cols=cols)
            except ValueError as exc:
                row.update({key: math.nan, f"{key}_low": math.nan, f"{key}_high": math.nan, f"{key}_note": str(exc)})
                continue
            row.update({key: res["value"], f"{key}_low": res["ci_low"], f"{key}_high": res["ci_high"],
                        f"{key}_undefined_share": res["undefined_share"], f"{key}_note": res["point_error"] or ""})
            row.update({"interpolant": res["method"], "n_images": res["n_images"], "n_seeds": res["n_seeds"],
                        "rate_points": res["rate_points"], "covers": res["covers"]})
        row["note"] = " ".join(f"{k}: {row[f'{k}_note']}." for k in ("bd_rate", "bd_quality") if row.get(f"{k}_note"))
        table.append(row)
    return table


def bd_finding(row: dict, kind: str = "rate") -> dict:
    """What one BD of :func:`bd_table` shows, as a finding with a verdict (not a claim: no theory
    fixes the sign of these comparisons at a given training budget).

    Returns ``{"comparison", "kind", "measured", "verdict", "resolved"}``.  ``verdict``:
    ``"<test> needs fewer / more bits at equal quality"`` (BD-rate) or ``"<test> has higher / lower
    quality at equal rate"`` (BD-quality) when the 95 % bootstrap interval lies on one side of 0
    (``resolved`` True); ``"not resolved at this budget (the interval holds 0)"`` when it straddles
    0; ``"undefined: <reason>"`` when the curves do not allow a BD (e.g. rate ranges that do not
    overlap).
    """
    key = "bd_rate" if kind == "rate" else "bd_quality"
    v, lo, hi = row.get(key, math.nan), row.get(f"{key}_low", math.nan), row.get(f"{key}_high", math.nan)
    rate = "caption bits counted" if row["rate"] == "bpp_coded" and row["test"] == "taco" else \
        ("image bits only" if row["rate"] == "bpp_image" else "coded bpp")
    out = {"comparison": f"{row['test']} vs {row['reference']} ({rate}, {row['metric'].upper()})",
           "kind": f"BD-{kind}", "resolved": False}
    if not (isinstance(v, float) and math.isfinite(v)):
        return {**out, "measured": "n/a", "verdict": f"undefined: {row.get(f'{key}_note') or 'no value'}"}
    if kind == "rate":
        measured = f"{v:+.1f} % [{lo:+.1f}, {hi:+.1f}]"
        side = f"{row['test']} needs {'more' if v > 0 else 'fewer'} bits at equal quality"
    else:
        measured = f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        side = f"{row['test']} has {'higher' if v > 0 else 'lower'} quality at equal rate"
    measured += f", {row.get('n_images')} images × {row.get('n_seeds')} seed(s), {row.get('interpolant')}"
    resolved = math.isfinite(lo) and math.isfinite(hi) and ((lo > 0 and hi > 0) if v > 0 else (lo < 0 and hi < 0))
    verdict = side if resolved else "not resolved at this budget (the interval holds 0)"
    return {**out, "measured": measured, "verdict": verdict, "resolved": bool(resolved)}


def format_findings(findings: list[dict]) -> str:
    """:func:`bd_finding` results as a Markdown table: comparison · BD · measured · verdict."""
    lines = ["| comparison | BD | measured [95 % CI] | verdict |", "|---|---|---|---|"]
    lines += [f"| {f['comparison']} | {f['kind']} | {f['measured']} | {f['verdict']} |" for f in findings]
    return "\n".join(lines)


def caption_accounting(rows, *, image_size=(128, 256), split: str = "test", data_seed: int = 0) -> dict:
    """Check TACO's caption bits in the per-image rows against the captions themselves.

    For every TACO row, the main-view oracle caption of its test pair is coded again with
    :func:`mdic_lab.coding.caption.encode_caption` (raw DEFLATE) and its length compared with
    the row's ``caption_bytes``; ``caption_bpp`` must be ``8·caption_bytes/(H·W)`` and the image
    part ``bpp_coded − caption_bpp`` positive.  Rows of every other codec must carry no caption
    bytes (their text, if any, is at the decoder).  Returns counts, mismatches and the mean
    caption share of TACO's coded bpp.
    """
    from mdic_lab.coding.caption import encode_caption
    from mdic_lab.data.main_captions import oracle_main_caption

    h, w = int(image_size[0]), int(image_size[1])
    cache: dict = {}
    taco, other, bad = 0, 0, []
    shares = []
    for r in rows:
        cap_bytes = int(float(r.get("caption_bytes") or 0))
        cap_bpp = float(r.get("caption_bpp") or 0.0)
        if r["codec"] != "taco":
            other += 1
            if cap_bytes != 0 or cap_bpp != 0.0:
                bad.append(f"{r['codec']} image {r['name']}: {cap_bytes} caption bytes")
            continue
        taco += 1
        index = int(r["name"])
        if index not in cache:
            cache[index] = len(encode_caption(oracle_main_caption(split, data_seed, index, (h, w))))
        bpp = float(r["bpp_coded"])
        if cap_bytes != cache[index]:
            bad.append(f"taco image {r['name']}: row says {cap_bytes} caption bytes, the caption codes to {cache[index]}")
        if not math.isclose(cap_bpp, 8.0 * cap_bytes / (h * w), rel_tol=1e-4):
            bad.append(f"taco image {r['name']}: caption_bpp {cap_bpp} ≠ 8·{cap_bytes}/({h}·{w})")
        if not bpp - cap_bpp > 0:
            bad.append(f"taco image {r['name']}: no image bits left (bpp_coded {bpp}, caption {cap_bpp})")
        shares.append(cap_bpp / bpp)
    return {"taco_rows": taco, "other_rows": other, "mismatches": bad,
            "caption_bytes_mean": float(np.mean(list(cache.values()))) if cache else math.nan,
            "caption_share_mean": float(np.mean(shares)) if shares else math.nan}


def format_bd_table(table: list[dict]) -> str:
    """:func:`bd_table` as a Markdown table (value [95 % interval]; n/a with its reason)."""

    def cell(row, key, fmt):
        v = row.get(key, math.nan)
        if not (isinstance(v, float) and math.isfinite(v)):
            return "n/a"
        lo, hi = row.get(f"{key}_low", math.nan), row.get(f"{key}_high", math.nan)
        return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"

    lines = ["| test | reference | rate | BD-rate % [95 % CI] | BD-" + (table[0]["metric"].upper() if table else "quality")
             + " [95 % CI] | images × seeds | interpolant | note |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['test']} | {r['reference']} | {RATE_COLUMNS[r['rate']]} | {cell(r, 'bd_rate', '+.1f')} | "
                     f"{cell(r, 'bd_quality', '+.3f')} | {r.get('n_images', '–')} × {r.get('n_seeds', '–')} | "
                     f"{r.get('interpolant', '–')} | {r['note'].strip()} |")
    return "\n".join(lines)


def ndic_fusion_attention(model, left: torch.Tensor, right: torch.Tensor):
    """The OPAM stages inside a trained NDIC with ``fusion="opam"``: ``OPAMFusion.attend(v_x, w)`` with
    ``v_x = g_ax(x)`` (before quantization) and ``w = f(y)``, at the latent grid (H/16 × W/16)."""
    if getattr(model, "fusion", None) is None:
        raise ValueError("the model has no OPAM fusion (NDICConfig.fusion must be 'opam')")
    x = left[None] if left.ndim == 3 else left
    y = right[None] if right.ndim == 3 else right
    with torch.no_grad():
        return model.fusion.attend(model.g_ax(x), model.common_information(y))
