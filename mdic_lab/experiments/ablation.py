"""The main job's engine: every MDIC ablation trained and evaluated by the sweep, then Tables 1–4.

``ablations/run_all.ipynb`` sets an :class:`AblationParams` in its ``parameters`` cell and
calls :func:`run_ablation`; everything it shows comes from here, so tests reach it too.

1. :func:`check_params` refuses bad input before any training: an unknown preset, variant,
   rate point, metric or executor, a missing data root, an output folder that cannot be
   written, or one that holds a sweep of other parameters.
2. The sweep (:mod:`.sweep`): MDIC × variants × rate points × training seeds, each cell
   trained, then evaluated on ``n_test`` pairs in batches; finished cells are skipped, so an
   interrupted run resumes and a second run redoes nothing.
3. Table 4: the full model of every (rate point, seed) decoded again at each number of
   denoising steps: all test pairs in batches for the quality (``eval/test-quality-steps<k>``),
   a few pairs one at a time for the seconds per image (``eval/test-timing-steps<k>``);
   both resumable.
4. Tables 1–3 (BD-quality / BD-rate of the variants against the full model) and Table 4
   with hierarchical paired bootstrap intervals (:mod:`.ablation_tables`), written as
   ``table1.csv`` … ``table4.csv`` and ``tables.md``, and one claim per table row.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mdic_lab.config import ConfigError

__all__ = ["AblationParams", "AblationResult", "PRESET_DEFAULTS", "check_params", "sweep_spec", "run_ablation",
           "steps_rows", "curve_with_band", "mask_agreement"]

CODEC = "mdic"
METRICS = ("lpips", "dists", "psnr", "ms_ssim", "miou")  # the paper's columns, then our semantic one

#: What each preset changes in the defaults of :class:`AblationParams` (smoke: the pipeline in minutes).
PRESET_DEFAULTS = {
    # smoke leaves out mIoU: its segmentation net takes minutes to train once (tested apart)
    "smoke": {"seeds": (0,), "n_test": 4, "n_timing": 2, "n_boot": 200, "batch_size": 4,
              "metrics": ("lpips", "dists", "psnr", "ms_ssim")},
    "lab": {},
    "paper": {"n_test": 790, "n_timing": 32},
}


@dataclass(frozen=True)
class AblationParams:
    """Everything one ablation run depends on (the notebook's ``parameters`` cell)."""

    preset: str = "lab"  # smoke | lab | paper (registry presets of MDIC)
    variants: tuple = ("full", "no_text", "no_ts", "no_g1g2", "no_g2", "no_zd", "no_zd_zxc")  # "full" is always run
    rate_points: tuple | None = None  # indices into the preset's rate points; None = all of them
    seeds: tuple = (0, 1)  # training seeds (more seeds narrow the intervals; each costs a full set of cells)
    n_test: int = 64  # test pairs every cell is evaluated on (the same pairs for every cell: paired)
    data: str = "synthetic"  # data spec: synthetic | kitti:ROOT | cityscapes:ROOT
    captioner: str | None = None  # BLIP-2 folder / hub id for real data (the paper: Salesforce/blip2-opt-2.7b)
    executor: str = "local"  # local | dask | submitit (mdic_lab.experiments.executors)
    workers: int | None = None  # cells at once (default: fill the machine's cores)
    output_dir: str = "ablation_runs"  # sweep/, tables, figures and metrics.json land here
    metrics: tuple = METRICS  # columns of the tables; LPIPS / DISTS need their weight files
    timing_steps: tuple = (5, 10)  # denoising steps of Table 4
    n_timing: int = 8  # test pairs decoded one at a time per (rate point, seed) for Table 4's times
    n_boot: int = 1000  # bootstrap resamples per table cell
    batch_size: int = 8  # pairs decoded together in the evaluation (Tables 1–3)
    overrides: dict = field(default_factory=dict)  # any MDIC model / training config field, e.g. {"steps": 300}
    profile: str = "paper"  # MDIC as the paper describes it, or "authors": the published code's choices
    # (mdic_lab.models.mdic.config.PROFILES; docs/mdic_profiles.md); every cell of the run uses it
    choices: tuple = ()  # authors' choices (PROFILE_CHOICES names, or "all") each switched alone on the full
    # model: the "paper vs authors' choices" table (under profile "authors": each switched back to the paper's)
    backbone_root: str | None = None  # cache of pretrained small backbones (default ~/.cache/mdic_lab)
    boot_seed: int = 0  # seed of the bootstrap draws

    @classmethod
    def for_preset(cls, preset: str = "lab", **changes) -> "AblationParams":
        """The defaults of ``preset`` (:data:`PRESET_DEFAULTS`) with ``changes``; ``None`` values keep them."""
        from mdic_lab.registry import get_codec

        name = get_codec(CODEC).canonical_preset(preset)
        kw = {**PRESET_DEFAULTS.get(name, {}), **{k: v for k, v in changes.items() if v is not None}}
        for key in ("variants", "rate_points", "seeds", "metrics", "timing_steps", "choices"):
            if isinstance(kw.get(key), str):  # papermill -p passes text: "full,no_ts" or "[0, 1]"
                kw[key] = _parse_list(kw[key])
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        if kw.get("choices") in (("all",), ["all"], "all"):
            from mdic_lab.models.mdic.config import PROFILE_CHOICES

            kw["choices"] = tuple(PROFILE_CHOICES)
        return cls(preset=name, **kw)


def _parse_list(text: str) -> list:
    """``"a,b"`` / ``"[0, 1]"`` / ``'["a", "b"]'`` → a list (numbers become ints).

    >>> _parse_list("full, no_ts"), _parse_list("[0, 1]")
    (['full', 'no_ts'], [0, 1])
    """
    import json

    try:
        value = json.loads(text)
        return list(value) if isinstance(value, list) else [value]
    except ValueError:
        items = [t.strip() for t in text.strip("[]").split(",") if t.strip()]
        return [int(t) if t.lstrip("-").isdigit() else t.strip("'\"") for t in items]


def _check_ints(name, values, low=0):
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in values):
        raise ConfigError(f"{name} must be a non-empty list of ints >= {low}, got {values!r}")


def check_params(params: AblationParams) -> dict:
    """Refuse bad parameters before anything runs; returns the sweep spec they give (a dict)."""
    from mdic_lab.data.sources import parse_data_spec
    from mdic_lab.registry import get_codec

    from .ablation_tables import METRICS as KNOWN_METRICS
    from .executors import EXECUTORS

    codec = get_codec(CODEC)
    preset = codec.canonical_preset(params.preset)
    for v in params.variants:
        codec.check_variant(v)
    points = range(len(codec.rate_points[preset])) if params.rate_points is None else params.rate_points
    for k in points:
        codec.check_rate_point(preset, k)
    if len(list(points)) < 2:
        raise ConfigError(f"BD needs at least 2 rate points per curve, got {list(points)}")
    _check_ints("seeds", params.seeds)
    _check_ints("timing_steps", params.timing_steps, 1)
    for name in ("n_test", "n_timing", "n_boot", "batch_size"):
        _check_ints(name, [getattr(params, name)], 1)
    from mdic_lab.models.mdic.config import PROFILE_CHOICES, PROFILES

    if params.profile not in PROFILES:
        raise ConfigError(f"unknown profile {params.profile!r} (expected one of: {', '.join(PROFILES)})")
    for c in params.choices:
        if c not in PROFILE_CHOICES:
            raise ConfigError(f"unknown choice {c!r} (expected one of: {', '.join(PROFILE_CHOICES)}, or \"all\")")
    for m in params.metrics:
        if m not in KNOWN_METRICS:
            raise ConfigError(f"unknown metric {m!r} (expected one of: {', '.join(KNOWN_METRICS)})")
    if params.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {params.executor!r} (expected one of: {', '.join(EXECUTORS)})")
    spec = parse_data_spec(params.data)
    if spec.is_real and not Path(spec.root).is_dir():
        raise FileNotFoundError(f"data root {spec.root} of {params.data!r} does not exist")
    out = Path(params.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"output_dir {str(out)!r} cannot be written ({exc.strerror or exc})") from None
    spec = sweep_spec(params)
    if params.choices:  # resolves every choice cell: a choice that cannot combine with the overrides stops here
        from .sweep import load_spec

        load_spec(choices_spec(params))
    return spec


def _uses_miou(params: AblationParams) -> bool:
    """The semantic column needs the synthetic world's labels and segmentation net."""
    return "miou" in params.metrics and params.data == "synthetic"


def sweep_spec(params: AblationParams) -> dict:
    """The sweep (a spec dict for :func:`.sweep.load_spec`) that trains and evaluates every cell."""
    variants = list(dict.fromkeys(["full", *params.variants]))  # the reference is always there
    grid = {"codec": [CODEC], "preset": params.preset, "variant": variants,
            "rate_point": "all" if params.rate_points is None else list(params.rate_points),
            "seed": list(params.seeds)}
    overrides = _base_overrides(params)
    if overrides:  # the profile first: explicit overrides then change single choices of it
        grid["overrides"] = {k: (v if isinstance(v, list) else [v]) for k, v in overrides.items()}
    spec = {"name": f"mdic-ablation-{params.preset}", "data": params.data, "grid": grid,
            "eval": {"split": "test", "limit": params.n_test, "use_lpips": "lpips" in params.metrics,
                     "use_miou": _uses_miou(params), "batch_size": params.batch_size,
                     "reuse_latents": True}}  # Table 4 times the encoder and decoder in passes of its own
    if params.captioner:
        spec["captioner"] = params.captioner
    return spec


def _base_overrides(params: AblationParams) -> dict:
    """The overrides every cell of the run has: the profile first, then ``params.overrides``."""
    return {**({"profile": params.profile} if params.profile != "paper" else {}), **params.overrides}


def choice_overrides(choice: str, params: AblationParams) -> dict:
    """The fields ``choice`` switches on the run's full model: the authors' values under the ``paper``
    profile, the preset's own (the paper's) values under ``authors``
    (:data:`mdic_lab.models.mdic.config.PROFILE_CHOICES`)."""
    from mdic_lab.models.mdic.config import PROFILE_CHOICES, PROFILES, MDICConfig

    if choice not in PROFILE_CHOICES:
        raise ConfigError(f"unknown choice {choice!r} (expected one of: {', '.join(PROFILE_CHOICES)})")
    fields = PROFILE_CHOICES[choice][0]
    if params.profile == "paper":
        return {f: PROFILES["authors"][f] for f in fields}
    paper = MDICConfig.preset(params.preset)
    return {f: getattr(paper, f) for f in fields}


def choice_is_noop(choice: str, params: AblationParams) -> bool:
    """True when ``choice`` builds the run's own full model at this preset (e.g. ``side_full_grid`` at
    ``lab``, whose H_ax already keeps the full latent grid): its cells would only repeat the reference."""
    from mdic_lab.models.mdic.config import MDICConfig

    def behaviour(overrides):
        cfg = MDICConfig.preset(params.preset, **overrides)
        d = cfg.to_dict()
        d.pop("profile", None)
        d["hyper_downsample_y"] = cfg.side_downsample  # None means "as H_ax": compare the factor used
        return d

    model_fields = set(MDICConfig.field_names())
    base = {k: v for k, v in _base_overrides(params).items() if k in model_fields}
    return behaviour(base) == behaviour({**base, **choice_overrides(choice, params)})


def choices_spec(params: AblationParams) -> dict | None:
    """The sweep of the "paper vs authors' choices" table: one grid per choice (its fields switched
    together on the full model, every rate point and seed of the run), or ``None`` without choices.
    A spec of its own, added to the run's sweep folder beside the ablation's cells.  A choice that
    changes nothing at this preset (:func:`choice_is_noop`) gets no cells."""
    if not params.choices or all(choice_is_noop(c, params) for c in params.choices):
        return None
    base = _base_overrides(params)
    grids = []
    for c in params.choices:
        if choice_is_noop(c, params):
            continue
        ov = {**base, **choice_overrides(c, params)}
        grids.append({"codec": [CODEC], "preset": params.preset, "variant": ["full"],
                      "rate_point": "all" if params.rate_points is None else list(params.rate_points),
                      "seed": list(params.seeds), "overrides": {k: [v] for k, v in ov.items()}})
    main = sweep_spec(params)
    return {**main, "name": f"{main['name']}-choices", "grid": grids}


def _quality_tag(steps: int) -> str:
    return f"quality-steps{steps}"


def _timing_tag(steps: int) -> str:
    return f"timing-steps{steps}"


def _main_eval_steps(rd) -> int | None:
    """The denoising steps the sweep's own evaluation of a cell used (its model's default)."""
    summary = rd.read_eval_summary("test")
    if summary is None:
        return None
    if summary.get("num_inference_steps") is not None:
        return int(summary["num_inference_steps"])
    return int(rd.run_config().model.num_inference_steps)


def _copy_main_eval(rd, tag: str, steps: int) -> None:
    """Table 4's quality pass at the model's own steps *is* the sweep's evaluation: written under
    ``tag`` from ``eval/test.{csv,json}`` (the summary says so in ``reused_from``)."""
    from mdic_lab.runs.evaluate import EVAL_FIELDS

    summary = {**rd.read_eval_summary("test"), "num_inference_steps": steps, "reused_from": "eval/test.json"}
    rd.write_eval("test", rd.read_eval_rows("test"), EVAL_FIELDS, summary, tag=tag)


def _steps_eval(task: dict) -> str:
    """One Table 4 evaluation in a worker process (``task``: the :func:`evaluate_run` arguments)."""
    import torch

    from mdic_lab.runs.evaluate import evaluate_run

    torch.set_num_threads(task.pop("threads"))
    evaluate_run(**task)
    return task["tag"]


def steps_rows(sweep_out, cells_rows, params: AblationParams, progress: bool = True) -> tuple[list, list]:
    """Table 4's per-image rows for the full model of every finished (rate point, seed) cell.

    Returns ``(quality, timing)``.  ``quality``: all ``n_test`` pairs decoded in batches at each
    of ``params.timing_steps`` (the BD-quality of 5 vs 10 steps, paired over the same images);
    at the model's own number of steps these are the rows of the sweep's evaluation of the cell
    (same pairs, batch size, seed and decoder: decoded once, not twice).  ``timing``:
    ``n_timing`` pairs decoded one at a time after an untimed warm-up (the seconds per image).
    The evaluations still to do run on the run's executor, ``workers`` at a time with one share
    of the cores each (quality passes first, then the timing passes side by side); all are
    resumable: an evaluation whose summary exists is read back.
    """
    from mdic_lab.progress import progress_bar
    from mdic_lab.runs import RunDir

    from .executors import make_executor

    cells = [c for c in cells_rows if c["variant"] == "full" and c["status"] == "done"]
    plan, pending = [], []  # plan: (cell, run dir, steps, tag, kind) per row set; pending: evaluations to run
    for cell in cells:
        rd = RunDir(Path(sweep_out) / "cells" / Path(cell["dir"]).name)
        main_steps = _main_eval_steps(rd)
        main = rd.read_eval_summary("test") or {}
        for steps in params.timing_steps:
            for kind, limit, batch in (("quality", params.n_test, params.batch_size), ("timing", params.n_timing, 1)):
                tag = (_quality_tag if kind == "quality" else _timing_tag)(steps)
                if rd.read_eval_summary("test", tag) is not None:
                    pass
                elif kind == "quality" and steps == main_steps and main.get("n") == limit \
                        and int(main.get("batch_size", 0)) == batch:
                    _copy_main_eval(rd, tag, steps)  # the sweep's own evaluation of this cell
                else:
                    pending.append({"run_dir": str(rd.path), "split": "test", "limit": limit,
                                    "num_inference_steps": steps, "use_lpips": "lpips" in params.metrics,
                                    "tag": tag, "batch_size": batch, "warmup": batch == 1,
                                    "use_miou": _uses_miou(params) and batch > 1,
                                    "reuse_latents": batch > 1})  # the timing passes run the VAE
                plan.append((cell, rd, steps, tag, kind))
    if pending:
        pending.sort(key=lambda t: t["tag"].startswith("timing"))  # the timing passes last, beside each other
        ex = make_executor(params.executor, n_cells=len(pending), workers=params.workers,
                           folder=Path(sweep_out) / "table4-jobs")
        try:
            futures = [ex.executor.submit(_steps_eval, {**t, "threads": ex.threads}) for t in pending]
            bar = progress_bar(total=len(futures), desc="Table 4 passes", enabled=progress)
            for fut in futures:
                fut.result()
                bar.update(1)
            bar.close()
        finally:
            ex.close()
    quality, timing = [], []
    for cell, rd, steps, tag, kind in plan:
        for r in rd.read_eval_rows("test", tag):
            (quality if kind == "quality" else timing).append(
                {"codec": CODEC, "variant": "full", "rate_point": cell["rate_point"], "seed": cell["seed"],
                 "num_inference_steps": steps, **r})
    return quality, timing


@dataclass
class AblationResult:
    """What :func:`run_ablation` produced (paths, tables, claims, the rows behind them)."""

    output_dir: Path
    sweep: object  # the SweepResult
    tables: dict  # name -> table (ablation_tables.ablation_table / table4)
    claims: object  # Claims, one per table row
    images: list  # the sweep's per-image rows (Tables 1–3)
    steps_quality: list  # per-image rows of Table 4's BD-quality (all test pairs, batched, per step count)
    timing: list  # per-image rows of Table 4's times (n_timing pairs, one at a time, per step count)
    paths: list  # written files
    params: dict
    runs: list = field(default_factory=list)  # the run's finished cells (path, codec, preset, variant, rate_point,
    # seed), as ablation_figures.find_runs gives them, without the choices' cells
    choices_sweep: object = None  # the SweepResult of the choices' cells (None without choices)


def run_ablation(params: AblationParams, *, progress: bool = True) -> AblationResult:
    """Check, sweep, time, and write the tables (see the module docstring)."""
    from .ablation_tables import ablation_table, choices_table, read_images_csv, table4, table_claims, write_tables
    from .sweep import _overrides_text, load_spec, run_sweep

    spec = load_spec(check_params(params))
    extra = choices_spec(params)
    extra = load_spec(extra) if extra is not None else None
    out = Path(params.output_dir)
    sweep_kw = dict(out=out / "sweep", executor=params.executor, workers=params.workers,
                    backbone_root=params.backbone_root, progress=progress)
    segnet = _start_segnet(progress) if _uses_miou(params) else None
    try:
        res = run_sweep(spec, **sweep_kw)
        if extra is not None:  # the choices' cells, a spec of their own in the same folder
            res_choices = run_sweep(extra, add=True, **sweep_kw)
    finally:
        if segnet is not None:
            segnet.join()
    if segnet is not None and segnet.exitcode != 0:
        raise RuntimeError(f"training the segmentation net for mIoU failed (exit code {segnet.exitcode})")
    last = res_choices if extra is not None else res
    all_images = read_images_csv(last.images_csv)  # the cells of every spec of the folder
    own = {c.cell_id for c in spec.cells}  # this run's ablation cells (not the choices' "full" cells)
    images = [r for r in all_images if r["cell_id"] in own]
    cells = [r for r in read_images_csv(last.cells_csv) if r["cell_id"] in own]
    quality, timing = steps_rows(out / "sweep", cells, params, progress=progress)
    kw = dict(metrics=params.metrics, n_boot=params.n_boot, seed=params.boot_seed, where={"codec": CODEC})
    tables = {name: ablation_table(images, name, **kw) for name in ("table1", "table2", "table3")}
    tables["table4"] = table4(quality, steps=params.timing_steps, reference_steps=max(params.timing_steps),
                              timing_rows=timing, **kw)
    if params.choices:
        from mdic_lab.models.mdic.config import PROFILE_CHOICES

        chosen = [{"name": c, "what": PROFILE_CHOICES[c][1] if params.profile == "paper" else "the paper's choice",
                   "select": {"variant": "full", "overrides": _overrides_text(
                       {**_base_overrides(params), **choice_overrides(c, params)})},
                   "skip": f"n/a — builds the same model as the reference at preset {params.preset!r}"
                   if choice_is_noop(c, params) else None} for c in params.choices]
        ref = {"variant": "full", "overrides": _overrides_text(_base_overrides(params))}
        for kind in ("quality", "rate"):
            t = choices_table(all_images, chosen, ref, kind=kind, **kw)
            tables[t["name"]] = t
    paths = write_tables(out, tables)
    runs = [{"path": out / "sweep" / c["dir"], "codec": c["codec"], "preset": c["preset"], "variant": c["variant"],
             "rate_point": int(c["rate_point"]), "seed": int(c["seed"])} for c in cells if c["status"] == "done"]
    return AblationResult(out, res, tables, table_claims(tables), images, quality, timing, paths, asdict(params),
                          runs, last if extra is not None else None)


def _train_segnet_job() -> None:
    import torch

    from mdic_lab.metrics.segnet import load_or_train_segnet

    torch.set_num_threads(1)
    load_or_train_segnet()


def _start_segnet(progress: bool):
    """The synthetic world's segmentation net (mIoU column), trained once and cached: when it is not
    cached yet, a process trains it (≈ 3 min of one core) beside the sweep's first cells, whose
    evaluations wait for it (:func:`mdic_lab.metrics.segnet.load_or_train_segnet` locks the cache
    entry) instead of the whole sweep waiting before its first cell.  Returns the process or ``None``."""
    import multiprocessing
    import time

    from mdic_lab.metrics.errors import MetricUnavailable
    from mdic_lab.metrics.segnet import load_segnet, segnet_is_training

    try:
        load_segnet()
        return None
    except MetricUnavailable:
        pass
    if progress:
        print("training the segmentation net of the mIoU column once (≈ 3 min of one core) beside the first cells")
    proc = multiprocessing.get_context("spawn").Process(target=_train_segnet_job, name="segnet", daemon=True)
    proc.start()
    while proc.is_alive() and not segnet_is_training():  # until it holds the lock the evaluations wait on
        time.sleep(0.2)
    return proc


def curve_with_band(images, variant: str, metric: str, *, n_boot: int = 500, seed: int = 0, ci: float = 0.95) -> dict:
    """Mean coded bpp and mean ``metric`` per rate point of ``variant``, with a bootstrap band of the
    metric's mean (training seeds, then test images, resampled as in the tables).

    Returns ``rate``, ``quality``, ``low``, ``high`` (arrays, sorted by rate) and ``rate_point``.
    """
    import numpy as np

    from .ablation_tables import _num, rd_curve

    rows = [r for r in images if r.get("variant") == variant and r.get("codec", CODEC) == CODEC]
    base = rd_curve(rows, variant=variant, metric=metric)
    rng = np.random.default_rng(seed)
    seeds = sorted({r["seed"] for r in rows})
    by_point = {}
    for r in rows:
        by_point.setdefault(str(r["rate_point"]), {}).setdefault(r["seed"], []).append(_num(r[metric]))
    low, high = [], []
    for rp in base["rate_point"]:
        per_seed = [np.asarray(by_point[str(rp)][s], float) for s in seeds if s in by_point[str(rp)]]
        per_seed = [v[np.isfinite(v)] for v in per_seed if np.isfinite(v).any()]
        if not per_seed:
            low.append(np.nan)
            high.append(np.nan)
            continue
        means = np.empty(n_boot)
        for b in range(n_boot):
            drawn = [per_seed[i] for i in rng.integers(0, len(per_seed), len(per_seed))]
            means[b] = np.mean([v[rng.integers(0, len(v), len(v))].mean() for v in drawn])
        lo, hi = np.quantile(means, [(1 - ci) / 2, (1 + ci) / 2])
        low.append(lo)
        high.append(hi)
    return {"rate_point": base["rate_point"], "rate": base["rate"], "quality": base["quality"],
            "low": np.asarray(low), "high": np.asarray(high)}


def mask_agreement(model, dataset, *, limit: int = 16, threshold: float = 0.5) -> dict:
    """How the decoder's mask m_v (Eqs. 4–8, deterministic at decoding) agrees with the synthetic
    world's ``side_valid`` (right-view pixels consistent with the left view).

    A token of the side view is *misleading* when more than ``threshold`` of its pixels are not
    ``side_valid``; a token is *dropped* when m_v = 0 there.  Returns ``keep_fraction`` (mean of
    m_v), ``misleading_fraction``, the ``precision`` / ``recall`` of the dropped tokens as a
    detector of misleading ones (NaN when nothing is dropped / nothing is misleading), and
    ``auc``: the threshold-free area under the ROC curve of ``1 − m`` (the soft mask before
    Eq. 8's threshold) as that detector (0.5: no better than chance), over the first ``limit``
    pairs (items must carry ``side_valid``: the synthetic world does).
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from mdic_lab.metrics.detection import roc_auc

    n = min(int(limit), len(dataset))
    tp = dropped = misleading = kept = total = 0
    soft, bad_all = [], []
    model.eval()
    with torch.no_grad():
        for i in range(n):
            it = dataset[i]
            if "side_valid" not in it:
                raise KeyError("mask_agreement needs items with 'side_valid' (the synthetic world has them)")
            x, y = it["left"].float()[None], it["right"].float()[None]
            zx_hat = model.encode_x(x)[2].z_q
            mask = model.decoder_side(zx_hat, y, [it["caption"]], stochastic=False)["mask"]
            m_v = mask.m_v[0, 0]  # (h, w)
            valid = torch.as_tensor(np.asarray(it["side_valid"]), dtype=torch.float32)[None, None]
            invalid_share = 1.0 - F.adaptive_avg_pool2d(valid, tuple(m_v.shape))[0, 0]
            bad = invalid_share > threshold
            drop = m_v < 0.5
            tp += int((drop & bad).sum())
            dropped += int(drop.sum())
            misleading += int(bad.sum())
            kept += int((~drop).sum())
            total += drop.numel()
            soft.append(-mask.m[0, 0].flatten().numpy())
            bad_all.append(bad.flatten().numpy())
    return {"pairs": n, "tokens": total, "keep_fraction": kept / total, "misleading_fraction": misleading / total,
            "precision": tp / dropped if dropped else float("nan"),
            "recall": tp / misleading if misleading else float("nan"),
            "auc": roc_auc(np.concatenate(soft), np.concatenate(bad_all))}
