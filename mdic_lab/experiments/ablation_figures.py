"""Figures of the MDIC ablation sweep (paper Fig. 9, supplement Figs. 10–15), from its run folders.

Every figure is two functions: one computes its numbers from trained run folders (tests check
them), one draws them with matplotlib and returns the ``Figure`` (``ablations/run_all.ipynb``
saves it as a PNG).

* the mask m_v of the full model and of w/o TS (supplement Figs. 12, 15): :func:`mask_maps`,
  :func:`plot_masks`;
* reconstructions of the variants side by side (paper Fig. 9, supplement Figs. 10–11):
  :func:`reconstructions`, :func:`plot_reconstructions`;
* the object nouns of the captions (supplement Fig. 14): :func:`caption_nouns`, :func:`plot_nouns`;
* m_v against the synthetic world's ``side_valid``: :func:`mask_agreement_rows`,
  :func:`plot_mask_agreement`;
* quality against the number of denoising steps (supplement Fig. 13, evaluation only):
  :func:`read_steps_rows`, :func:`steps_quality`, :func:`plot_steps`.

Run folders are found by :func:`find_runs` (any folder above them, e.g. the sweep's
``output_dir``) and one per variant is picked by :func:`pick_runs`.  Every image figure uses
the SAME test pairs for every variant (the first ``n_pairs`` of the runs' test split, opened
as the evaluation opens them), and every rate printed is CODED: bytes of the real bitstream
over the pixels of I_x (``bpp_from_bytes``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["find_runs", "pick_runs", "open_test_pairs", "run_captions", "mask_maps", "plot_masks",
           "reconstructions", "plot_reconstructions", "caption_nouns", "plot_nouns", "mask_agreement_rows",
           "plot_mask_agreement", "read_steps_rows", "steps_quality", "plot_steps", "token_misleading", "noun_table", "STEPS_TAGS"]

#: kind -> tag prefix of the Table 4 evaluations (ablation.steps_rows): eval/<split>-<prefix><k>.csv
STEPS_TAGS = {"quality": "quality-steps", "timing": "timing-steps"}
QUALITY = ("psnr", "ms_ssim", "lpips", "dists")  # metrics of Fig. 13 (when finite)
LOWER_IS_BETTER = {"lpips", "dists"}


def _label(variant: str) -> str:
    from .ablation_tables import VARIANT_METHODS

    return VARIANT_METHODS.get(variant, variant)


# ---------------------------------------------------------------------------------------------
# run folders and their test pairs
# ---------------------------------------------------------------------------------------------
def find_runs(root) -> list[dict]:
    """Every trained run folder under ``root`` (a ``config.json`` with a ``checkpoint.pt`` beside it).

    Returns dicts ``path, codec, preset, variant, rate_point, seed`` (the training seed), sorted
    by (variant, rate point, seed).  ``root`` may be the ablation's ``output_dir``, its
    ``sweep/`` or ``sweep/cells/`` folder, or one run folder.
    """
    from mdic_lab.runs import RunDir

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"run root {str(root)!r} is not a folder (expected the ablation's output_dir, "
                                "its sweep/ folder or a run folder)")
    out = []
    for cfg in sorted(root.rglob(RunDir.CONFIG)):
        rd = RunDir(cfg.parent)
        if not rd.has_checkpoint():
            continue
        try:
            run = rd.run_config()
        except (ValueError, KeyError, FileNotFoundError):  # not a run record (e.g. a sweep's own json)
            continue
        out.append({"path": rd.path, "codec": run.codec, "preset": run.preset, "variant": run.variant,
                    "rate_point": run.rate_point, "seed": int(run.train.seed)})
    return sorted(out, key=lambda r: (r["variant"], -1 if r["rate_point"] is None else r["rate_point"], r["seed"],
                                      str(r["path"])))


def pick_runs(runs: list[dict], variants, *, rate_point: int | None = None, seed: int | None = None,
              skip_missing: bool = False) -> dict:
    """``{variant: run folder}``: one run per variant at the same rate point and training seed.

    ``rate_point`` / ``seed`` default to the highest rate point and the lowest seed of the
    first variant (which must have a run).  Another variant without such a run raises
    ``KeyError`` naming what exists, or is left out with ``skip_missing``.
    """
    variants = [variants] if isinstance(variants, str) else list(variants)
    if not variants:
        raise ValueError("variants is empty (expected e.g. ['full', 'no_ts'])")
    first = [r for r in runs if r["variant"] == variants[0]]
    if not first:
        raise KeyError(f"no run of variant {variants[0]!r} (found: {sorted({r['variant'] for r in runs}) or 'none'})")
    if rate_point is None:
        rate_point = max(r["rate_point"] for r in first if r["rate_point"] is not None)
    if seed is None:
        seed = min(r["seed"] for r in first)
    out = {}
    for v in variants:
        match = [r for r in runs if r["variant"] == v and r["rate_point"] == rate_point and r["seed"] == seed]
        if not match and skip_missing:
            continue
        if not match:
            have = sorted((r["variant"], r["rate_point"], r["seed"]) for r in runs)
            raise KeyError(f"no run of variant {v!r} at rate point {rate_point}, seed {seed} "
                           f"(found (variant, rate point, seed): {have})")
        out[v] = match[0]["path"]
    return out


def open_test_pairs(run_dir, n_pairs: int, split: str = "test"):
    """The first ``n_pairs`` of ``split`` of the data a run was trained on, at its image size, with the
    captions its decoder reads (the evaluation opens the same pairs)."""
    from mdic_lab.data.sources import parse_data_spec
    from mdic_lab.registry import get_codec
    from mdic_lab.runs import RunDir
    from mdic_lab.runs.coding import recorded_captioner

    _check_count("n_pairs", n_pairs)
    rd = RunDir(run_dir)
    run = rd.run_config()
    hooks = get_codec(run.codec).load_hooks()
    spec = rd.data_record().get("spec")
    spec = parse_data_spec("synthetic" if spec in (None, "custom") else spec)
    captioner = recorded_captioner(run_dir) if hooks.codec.needs_caption else None
    return hooks.open_data(run, spec, split, length=int(n_pairs), captioner=captioner)


def run_captions(run_dir, split: str | None = None) -> list[str]:
    """The captions of the side views a run was trained on (``split`` default: its training split,
    all of its ``length`` pairs), as its vocabulary was built from them."""
    from mdic_lab.data.sources import parse_data_spec
    from mdic_lab.registry import get_codec
    from mdic_lab.runs import RunDir
    from mdic_lab.runs.coding import recorded_captioner

    rd = RunDir(run_dir)
    rec = rd.data_record()
    run = rd.run_config()
    hooks = get_codec(run.codec).load_hooks()
    if not hooks.codec.needs_caption:
        raise ValueError(f"codec {run.codec!r} reads no captions (expected an MDIC run)")
    split = split or rec.get("split") or "train"
    length = rec.get("length") if split == rec.get("split") else None
    spec = parse_data_spec("synthetic" if rec.get("spec") in (None, "custom") else rec["spec"])
    ds = hooks.open_data(run, spec, split, length=length, captioner=recorded_captioner(run_dir))
    base = getattr(ds, "base", None)
    if getattr(ds, "captioner", None) is None and hasattr(base, "captions"):  # the synthetic world: no rendering
        return list(base.captions())[:len(ds)]
    return [ds[i]["caption"] for i in range(len(ds))]


def _check_count(name, n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")


def _batch(pairs, n: int):
    """``(x, y, captions, items)`` of the first ``n`` pairs: x, y ``(n, 3, H, W)`` in [0, 1]."""
    import torch

    n = min(int(n), len(pairs))
    items = [pairs[i] for i in range(n)]
    x = torch.stack([it["left"].float() for it in items])
    y = torch.stack([it["right"].float() for it in items])
    return x, y, [it.get("caption", "") for it in items], items


def _names(items) -> list[str]:
    return [str(it.get("name", f"{it.get('index', i):05d}")) for i, it in enumerate(items)]


def _check_same_size(model_size, x, run_dir):
    if tuple(model_size) != tuple(x.shape[-2:]):
        raise ValueError(f"run {run_dir} codes {tuple(model_size)} images but the pairs are {tuple(x.shape[-2:])}: "
                         "figures compare variants on the same pairs, so every run must share one image size")


# ---------------------------------------------------------------------------------------------
# the mask m_v (supplement Figs. 12 and 15)
# ---------------------------------------------------------------------------------------------
def token_misleading(side_valid, grid, threshold: float = 0.5) -> np.ndarray:
    """Side-view tokens that are *misleading*: more than ``threshold`` of their pixels are not
    ``side_valid`` (the definition of :func:`mdic_lab.experiments.ablation.mask_agreement`).

    ``side_valid`` bool ``(n, H, W)`` (or ``(H, W)``); returns bool ``(n, h, w)`` on the token grid.
    """
    import torch
    import torch.nn.functional as F

    v = np.asarray(side_valid, dtype=np.float32)
    single = v.ndim == 2
    v = v[None] if single else v
    invalid = 1.0 - F.adaptive_avg_pool2d(torch.from_numpy(v)[:, None], tuple(grid))[:, 0].numpy()
    bad = invalid > threshold
    return bad[0] if single else bad


def mask_maps(run_dirs: dict, n_pairs: int = 4) -> dict:
    """The decoder's mask m_v (Eqs. 4–8, deterministic at decoding) of each run on the same test pairs.

    Each pair goes through the real coding path: I_x is compressed, its stream decoded to
    indices, ẑ_x looked up, and ``decoder_side`` computes m_v from ẑ_x and the side view.

    Returns ``names``, ``captions``, ``main`` and ``side`` ``(n, 3, H, W)``, ``token_grid``
    ``(h, w)``, per variant ``masks[v]`` ``(n, h, w)`` in {0, 1}, ``mask_prob[v]`` (the soft mask
    σ(logits/τ), Eq. 7 without noise) and ``keep_fraction[v]``; on the synthetic world also
    ``side_valid`` bool ``(n, H, W)`` and ``misleading`` bool ``(n, h, w)``
    (:func:`token_misleading`), else ``None``.
    """
    import torch

    from mdic_lab.runs.coding import load_run

    if not run_dirs:
        raise ValueError("run_dirs is empty (expected {variant: run folder})")
    pairs = open_test_pairs(next(iter(run_dirs.values())), n_pairs)
    x, y, captions, items = _batch(pairs, n_pairs)
    out = {"names": _names(items), "captions": captions, "main": x.numpy(), "side": y.numpy(),
           "masks": {}, "mask_prob": {}, "keep_fraction": {}, "token_grid": None, "side_valid": None,
           "misleading": None}
    for variant, d in run_dirs.items():
        model, run, _ = load_run(d)
        if run.codec != "mdic":
            raise ValueError(f"run {d} is a {run.codec!r} run; m_v exists only in MDIC")
        _check_same_size(model.config.image_size, x, d)
        with torch.no_grad():
            idx = model.decode_indices(model.compress(x)["strings"])  # what the decoder receives
            mask = model.decoder_side(model.vq.lookup(idx), y, captions, stochastic=False)["mask"]
        m = mask.m_v[:, 0].cpu().numpy().astype(np.float32)  # (n, h, w)
        out["masks"][variant] = m
        out["mask_prob"][variant] = mask.m[:, 0].cpu().numpy().astype(np.float32)
        out["keep_fraction"][variant] = float(m.mean())
        out["token_grid"] = tuple(model.token_grid)
    if all("side_valid" in it for it in items):
        sv = np.stack([np.asarray(it["side_valid"], dtype=bool) for it in items])
        out["side_valid"] = sv
        out["misleading"] = token_misleading(sv, out["token_grid"])
    return out


def _img(t) -> np.ndarray:
    return np.clip(np.transpose(np.asarray(t), (1, 2, 0)), 0.0, 1.0)


def plot_masks(maps: dict, max_pairs: int | None = None, soft: bool = True):
    """Main view, side view, (``side_valid`` with the misleading tokens), and per variant m_v over the
    side view (dark: dropped tokens) and, with ``soft``, the soft mask σ(logits/τ) before Eq. 8's
    threshold (what the threshold cuts; it shows the generator's preferences even where m_v keeps
    every token), one row per pair."""
    import matplotlib.pyplot as plt

    n = len(maps["names"]) if max_pairs is None else min(max_pairs, len(maps["names"]))
    variants = list(maps["masks"])
    has_valid = maps.get("side_valid") is not None
    cols = 2 + int(has_valid) + len(variants) * (1 + int(soft))
    H, W = maps["main"].shape[-2:]
    fig, axes = plt.subplots(n, cols, figsize=(2.9 * cols, 1.75 * n + 0.6), squeeze=False)
    for i in range(n):
        row = list(axes[i])
        row[0].imshow(_img(maps["main"][i]))
        row[1].imshow(_img(maps["side"][i]))
        c = 2
        if has_valid:
            row[c].imshow(maps["side_valid"][i], cmap="gray", vmin=0, vmax=1)
            bad = maps["misleading"][i]
            row[c].imshow(np.ma.masked_where(~bad, bad), cmap="autumn", alpha=0.45, extent=(0, W, H, 0),
                          interpolation="nearest")
            row[c].set_title(f"side_valid; misleading tokens (red) {bad.mean():.0%}", fontsize=8)
            c += 1
        for v in variants:
            m = maps["masks"][v][i]
            row[c].imshow(_img(maps["side"][i]))
            row[c].imshow(1.0 - m, cmap="gray_r", vmin=0, vmax=1, alpha=0.7 * (1.0 - m), extent=(0, W, H, 0),
                          interpolation="nearest")
            row[c].set_title(f"m_v {_label(v)}: keeps {m.mean():.0%}", fontsize=8)
            c += 1
            if soft:
                p = maps["mask_prob"][v][i]
                row[c].imshow(p, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
                row[c].set_title(f"σ(logits/τ) {_label(v)}: {p.min():.2f}–{p.max():.2f}", fontsize=8)
                c += 1
        if i == 0:
            row[0].set_title("main view I_x", fontsize=8)
            row[1].set_title("side view I_y", fontsize=8)
        row[0].set_ylabel(maps["names"][i], fontsize=7)
        for a in row:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(f"visual mask m_v on the {maps['token_grid'][0]}×{maps['token_grid'][1]} token grid "
                 "(dark: dropped side-view tokens)" + ("; soft mask: 0 dark, 1 yellow" if soft else ""), fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# reconstructions side by side (paper Fig. 9, supplement Figs. 10–11)
# ---------------------------------------------------------------------------------------------
def reconstructions(run_dirs: dict, n_pairs: int = 2, *, seed: int = 0, num_inference_steps: int | None = None) -> dict:
    """Each run's reconstruction of the same test pairs through its real bitstream.

    Returns ``names``, ``original`` and ``side`` ``(n, 3, H, W)``, and per variant ``recon[v]``
    ``(n, 3, H, W)``, ``bytes[v]`` (stream lengths), ``bpp_coded[v]`` (``8·bytes/(H·W)``, header
    and CRC included) and ``psnr[v]`` (dB, per image).
    """
    import torch

    from mdic_lab import metrics as M
    from mdic_lab.coding.bpp import bpp_from_bytes
    from mdic_lab.runs.coding import load_run

    if not run_dirs:
        raise ValueError("run_dirs is empty (expected {variant: run folder})")
    pairs = open_test_pairs(next(iter(run_dirs.values())), n_pairs)
    x, y, captions, items = _batch(pairs, n_pairs)
    npix = int(x.shape[-2] * x.shape[-1])
    out = {"names": _names(items), "original": x.numpy(), "side": y.numpy(), "recon": {}, "bytes": {},
           "bpp_coded": {}, "psnr": {}}
    for variant, d in run_dirs.items():
        model, run, hooks = load_run(d)
        _check_same_size(hooks.image_size(run), x, d)
        with torch.no_grad():
            streams = hooks.compress(model, x)
            x_hat = hooks.decompress(model, streams, y, captions if hooks.codec.needs_caption else None,
                                     seed=seed, num_inference_steps=num_inference_steps)
        out["recon"][variant] = x_hat.cpu().numpy()
        out["bytes"][variant] = [len(s) for s in streams]
        out["bpp_coded"][variant] = np.array([bpp_from_bytes(s, npix) for s in streams])
        out["psnr"][variant] = np.array([float(M.psnr(x_hat[i:i + 1], x[i:i + 1])) for i in range(x.shape[0])])
    return out


def plot_reconstructions(rec: dict):
    """Original, side view and each variant's reconstruction, labelled with coded bpp and PSNR."""
    import matplotlib.pyplot as plt

    variants = list(rec["recon"])
    n, cols = len(rec["names"]), 2 + len(variants)
    fig, axes = plt.subplots(n, cols, figsize=(2.9 * cols, 1.8 * n + 0.5), squeeze=False)
    for i in range(n):
        row = list(axes[i])
        row[0].imshow(_img(rec["original"][i]))
        row[1].imshow(_img(rec["side"][i]))
        row[0].set_title("original I_x", fontsize=8)
        row[1].set_title("side view I_y (decoder)", fontsize=8)
        for a, v in zip(row[2:], variants):
            a.imshow(_img(rec["recon"][v][i]))
            a.set_title(f"{_label(v)}\n{rec['bpp_coded'][v][i]:.4f} bpp · {rec['psnr'][v][i]:.2f} dB", fontsize=8)
        row[0].set_ylabel(rec["names"][i], fontsize=7)
        for a in row:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle("reconstructions on the same test pairs (coded bpp from the real bitstream)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# object nouns of the captions (supplement Fig. 14)
# ---------------------------------------------------------------------------------------------
def caption_nouns(run_dir, split: str | None = None) -> dict:
    """Frequencies of the object nouns in a run's training captions, and the vocabulary it kept.

    The text supervision (Sec. 3.2, Eq. 9) masks the N most frequent object nouns
    (:func:`mdic_lab.data.vocabulary.build_vocabulary`, N = 14).  Returns ``n_captions``,
    ``ranked`` (``[(noun, count)]``, most frequent first, ties alphabetical), ``counts`` (a
    ``Counter`` of every occurrence) and, from the checkpoint, ``vocabulary`` and
    ``vocabulary_counts`` (``()`` for a run trained without one).
    """
    from mdic_lab.data.vocabulary import noun_counts
    from mdic_lab.runs import RunDir

    captions = run_captions(run_dir, split)
    counts = noun_counts(captions)
    vocab = (RunDir(run_dir).load_checkpoint().get("model") or {}).get("vocabulary") or {}
    return {"n_captions": len(captions), "counts": counts,
            "ranked": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            "vocabulary": tuple(vocab.get("nouns", ())), "vocabulary_counts": tuple(vocab.get("counts", ()))}


def plot_nouns(nouns: dict, top: int | None = None):
    """Bar chart of the object nouns by frequency; the vocabulary's nouns in colour."""
    import matplotlib.pyplot as plt

    ranked = nouns["ranked"] if top is None else nouns["ranked"][:top]
    vocab = set(nouns["vocabulary"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.42 * len(ranked) + 1.5), 3.4))
    if not ranked:
        ax.text(0.5, 0.5, "no object nouns in the captions", ha="center", va="center", transform=ax.transAxes)
    else:
        labels, counts = zip(*ranked)
        colors = ["tab:blue" if w in vocab else "tab:gray" for w in labels]
        ax.bar(range(len(labels)), counts, color=colors)
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("occurrences")
    ax.set_title(f"object nouns of {nouns['n_captions']} training captions "
                 f"(blue: the vocabulary, N = {len(vocab)})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# m_v against the synthetic world's side_valid
# ---------------------------------------------------------------------------------------------
def mask_agreement_rows(runs: list[dict], variants=("full", "no_ts"), *, n_pairs: int = 16,
                        seed: int | None = None) -> list[dict]:
    """:func:`mdic_lab.experiments.ablation.mask_agreement` of every run of ``variants`` (all rate points,
    training seed ``seed``, default the lowest) on the first ``n_pairs`` test pairs.

    Rows: ``variant, rate_point, seed`` and the agreement (``keep_fraction``,
    ``misleading_fraction``, ``precision``, ``recall``, ``pairs``, ``tokens``), in the order of
    ``variants`` then rate point.
    """
    from mdic_lab.runs.coding import load_run

    from .ablation import mask_agreement

    _check_count("n_pairs", n_pairs)
    chosen = [r for r in runs if r["variant"] in set(variants)]
    if seed is None and chosen:
        seed = min(r["seed"] for r in chosen)
    rows = []
    for v in variants:
        for r in sorted((r for r in chosen if r["variant"] == v and r["seed"] == seed),
                        key=lambda r: r["rate_point"]):
            model, _, _ = load_run(r["path"])
            pairs = open_test_pairs(r["path"], n_pairs)
            rows.append({"variant": v, "rate_point": r["rate_point"], "seed": seed,
                         **mask_agreement(model, pairs, limit=len(pairs))})
    return rows


def plot_mask_agreement(rows: list[dict]):
    """Precision / recall of the dropped tokens as detectors of misleading ones, per variant and rate
    point; the dashed line is the share of misleading tokens (the precision of a random drop)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(rows) + 1.5), 3.4))
    if not rows:
        ax.text(0.5, 0.5, "no mask rows (the synthetic world's side_valid is needed)", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    xs = np.arange(len(rows))
    bars = [("precision", "tab:blue", "precision"), ("recall", "tab:orange", "recall")]
    if all("auc" in r for r in rows):  # threshold-free: the soft mask 1 − m as a detector (0.5: chance)
        bars.append(("auc", "tab:purple", "AUC of 1 − m (0.5: chance)"))
    w = 0.8 / len(bars)
    for k, (key, color, label) in enumerate(bars):
        vals = np.array([float(r[key]) for r in rows])
        off = (k - (len(bars) - 1) / 2) * w
        ax.bar(xs + off, np.nan_to_num(vals), w, color=color, label=label)
        for x, v in zip(xs, vals):  # the value on each bar; n/a where nothing is dropped / misleading
            ax.text(x + off, (v if np.isfinite(v) else 0.0) + 0.02, f"{v:.2f}" if np.isfinite(v) else "n/a",
                    ha="center", va="bottom", fontsize=7)
    ax.hlines([r["misleading_fraction"] for r in rows], xs - 0.4, xs + 0.4, colors="k", linestyles="--",
              label="misleading share (precision of a random drop)")
    ax.plot(xs, [r["keep_fraction"] for r in rows], "g^", label="kept share of m_v")
    ax.set_xticks(xs, [f"{_label(r['variant'])}\nrp {r['rate_point']}" for r in rows], fontsize=8)
    ax.set_ylim(0, 1.45)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("fraction of side-view tokens; AUC")
    ax.set_title("does m_v drop the misleading tokens? (n/a: nothing dropped)", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# quality vs denoising steps (supplement Fig. 13; evaluation only)
# ---------------------------------------------------------------------------------------------
def read_steps_rows(runs: list[dict], variant: str = "full", split: str = "test", kind: str = "quality") -> list[dict]:
    """Per-image rows of a run's evaluations at a fixed number of denoising steps, as the ablation's
    Table 4 pass writes them (:func:`mdic_lab.experiments.ablation.steps_rows`):
    ``eval/<split>-quality-steps<k>.csv`` (``kind="quality"``: every test pair, batched) or
    ``eval/<split>-timing-steps<k>.csv`` (``kind="timing"``: a few pairs, one at a time), for every
    run of ``variant``, with ``variant``, ``rate_point``, ``seed`` and ``num_inference_steps`` added."""
    from mdic_lab.runs import RunDir

    if kind not in STEPS_TAGS:
        raise ValueError(f"unknown kind {kind!r} (expected one of: {', '.join(STEPS_TAGS)})")
    prefix = STEPS_TAGS[kind]
    out = []
    for r in runs:
        if r["variant"] != variant:
            continue
        rd = RunDir(r["path"])
        for csv_path in sorted((rd.path / RunDir.EVAL).glob(f"{split}-{prefix}*.csv")):
            steps = csv_path.stem[len(f"{split}-{prefix}"):]
            if not steps.isdigit():
                continue
            for row in rd.read_eval_rows(split, f"{prefix}{steps}"):
                out.append({"variant": variant, "rate_point": r["rate_point"], "seed": r["seed"],
                            "num_inference_steps": int(steps), **row})
    return out


def _groups(rows) -> dict:
    """``{(rate point as text, steps): rows}``."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((str(r["rate_point"]), int(r["num_inference_steps"])), []).append(r)
    return groups


def _finite(rows, key) -> np.ndarray:
    from .ablation_tables import _num

    v = np.array([_num(r.get(key)) for r in rows], dtype=float)
    return v[np.isfinite(v)]


def steps_quality(quality_rows: list[dict], timing_rows: list[dict] | None = None, metrics=QUALITY) -> list[dict]:
    """Means per (rate point, denoising steps): the quality ``metrics`` and coded bpp over
    ``quality_rows``, the decode time over ``timing_rows`` (images decoded one at a time).

    Rows are per-image dicts with ``rate_point`` and ``num_inference_steps`` (the ablation's
    ``steps_quality`` / ``timing`` rows, or :func:`read_steps_rows`).  Each output row:
    ``rate_point``, ``num_inference_steps``, ``n``, ``bpp_coded``, per metric its mean and
    ``<metric>_sem`` (standard error over images; NaN where not finite), and ``n_timing``,
    ``decode_s``, ``decode_s_std`` (NaN without timing rows).
    """
    from .ablation_tables import _num

    timing = _groups(timing_rows or [])
    out = []
    for (rp, steps), rs in sorted(_groups(quality_rows).items(), key=lambda kv: (_num(kv[0][0]), kv[0][0], kv[0][1])):
        row = {"rate_point": rp, "num_inference_steps": steps, "n": len(rs)}
        bpp = _finite(rs, "bpp_coded")
        row["bpp_coded"] = float(bpp.mean()) if bpp.size else float("nan")
        for m in metrics:
            v = _finite(rs, m)
            row[m] = float(v.mean()) if v.size else float("nan")
            row[f"{m}_sem"] = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
        t = _finite(timing.get((rp, steps), []), "decode_s")
        row.update(n_timing=int(t.size), decode_s=float(t.mean()) if t.size else float("nan"),
                   decode_s_std=float(t.std(ddof=1)) if t.size > 1 else float("nan"))
        out.append(row)
    return out


def plot_steps(summary: list[dict], metrics=QUALITY):
    """One panel per metric with a finite value (and one of decode time, one image at a time): the
    metric against the number of denoising steps, one line per rate point; error bars: standard
    error over images (time: standard deviation)."""
    import matplotlib.pyplot as plt

    shown = [m for m in metrics if any(np.isfinite(r.get(m, np.nan)) for r in summary)]
    panels = shown + (["decode_s"] if any(np.isfinite(r["decode_s"]) for r in summary) else [])
    if not panels:
        raise ValueError("nothing to plot: no finite quality metric and no decode time in the summary")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.1), squeeze=False)
    points = sorted({r["rate_point"] for r in summary}, key=lambda s: (float(s) if str(s).lstrip("-").isdigit()
                                                                        else float("inf"), str(s)))
    for ax, m in zip(axes[0], panels):
        for rp in points:
            rs = sorted((r for r in summary if r["rate_point"] == rp), key=lambda r: r["num_inference_steps"])
            bpp = np.mean([r["bpp_coded"] for r in rs])
            err = [r["decode_s_std"] if m == "decode_s" else r[f"{m}_sem"] for r in rs]
            ax.errorbar([r["num_inference_steps"] for r in rs], [r[m] for r in rs], yerr=np.nan_to_num(err),
                        fmt="o-", capsize=3, label=f"rp {rp} ({bpp:.3f} bpp)")
        arrow = "" if m == "decode_s" else (" ↓" if m in LOWER_IS_BETTER else " ↑")
        ax.set_ylabel("decode s / image" if m == "decode_s" else m.upper().replace("_", "-") + arrow)
        ax.set_xlabel("DDIM steps")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("the full model at each number of denoising steps (same trained models: evaluation only)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def noun_table(nouns: dict) -> str:
    """The ranked nouns as text lines ``noun  count  (in vocabulary)``."""
    vocab = set(nouns["vocabulary"])
    return "\n".join(f"{w:16s} {c:6d}" + ("  vocabulary" if w in vocab else "") for w, c in nouns["ranked"])

