"""One evaluation loop for every codec: compress → bytes → decompress → metrics, per image.

For every test pair the encoder sees only x; its container bytes are decoded with what the
codec's decoder needs (the side image y, a caption of y).  Two rates are reported side by
side and never mixed up:

* ``bpp_coded`` -- ``8·len(bytes)/(H·W)``: every byte of the container (header, CRC, the
  range coder's flush); ``bpp_payload`` -- the range-coded payloads alone;
* ``bpp_estimated`` -- the entropy model's ESTIMATE ``Σ −log2 p / (H·W)`` of the same symbols.

``caption_bytes`` / ``caption_bpp`` are the part of the coded stream that carries a caption:
0 for every codec whose caption, if any, is computed at the decoder (MDIC's costs nothing);
for a codec whose encoder reads a caption of x (TACO) the caption payload, which
``bpp_coded`` and ``bpp_payload`` include (its image alone: ``bpp_coded − caption_bpp``).

``round_trip`` is the codec's exactness check (hyperprior / NDIC: the decoded image equals
the ``"dequantize"`` forward pass bit for bit; MDIC: the decoded indices equal the encoder's).
LPIPS and DISTS need their pretrained weights: without them they are NaN and
``lpips_available`` / ``dists_available`` are False (never a number from random weights).
"""

from __future__ import annotations

import math
import time

import torch

from .rundir import RunDir

__all__ = ["EVAL_FIELDS", "evaluate_run", "evaluate_model", "summarize", "nan_means", "rd_points"]

EVAL_FIELDS = ["name", "bpp_coded", "bpp_payload", "bpp_estimated", "caption_bytes", "caption_bpp",
               "psnr", "ms_ssim", "lpips", "dists", "miou",
               "encode_s", "decode_s", "round_trip"]


def nan_means(rows: list[dict], fields) -> dict:
    """Mean of each numeric column in ``fields`` over ``rows``, NaNs skipped (NaN if none is left).

    >>> nan_means([{"a": 1.0}, {"a": float("nan")}, {"a": 3.0}], ["a"])
    {'a': 2.0}
    """
    out = {}
    for k in fields:
        vals = [float(r[k]) for r in rows if not math.isnan(float(r.get(k, "nan")))]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    return out


def summarize(rows: list[dict]) -> dict:
    """Means of the numeric columns (NaNs skipped), ``n``, ``all_round_trip``, ``lpips_available``."""
    out = {"n": len(rows), "all_round_trip": all(bool(r["round_trip"]) for r in rows),
           "lpips_available": any(not math.isnan(float(r["lpips"])) for r in rows),
           "dists_available": any(not math.isnan(float(r.get("dists", "nan"))) for r in rows)}
    out.update(nan_means(rows, [k for k in EVAL_FIELDS if k not in ("name", "round_trip")]))
    return out


def _perceptual_fn(name: str, wanted: bool):
    """``lpips_distance`` / ``dists_distance`` if wanted and its weight files are on disk, else None."""
    from mdic_lab import metrics as M

    if not wanted:
        return None
    fn = getattr(M, f"{name}_distance")
    try:
        probe = torch.rand(1, 3, 64, 64)
        fn(probe, probe)
        return fn
    except M.MetricUnavailable:
        return None


def _image_miou(segnet, x_hat, item) -> float:
    """mIoU of one reconstruction against its original's labels, NaN without a net or labels."""
    if segnet is None or item.get("labels") is None:
        return float("nan")
    from mdic_lab.metrics.segnet import reconstruction_miou

    return reconstruction_miou(segnet, x_hat, torch.as_tensor(item["labels"])[None])


def semantic_net(wanted: bool):
    """The cached segmentation net of the synthetic world if ``wanted`` and trained, else None (warned).

    A net that another process is training right now (the ablation trains it beside the sweep's
    first cells) is waited for (:func:`mdic_lab.metrics.segnet.load_segnet` with ``wait``)."""
    if not wanted:
        return None
    from mdic_lab.metrics import MetricUnavailable
    from mdic_lab.metrics.segnet import load_segnet

    try:
        return load_segnet(wait=True)
    except MetricUnavailable as err:
        import logging

        logging.getLogger(__name__).warning("miou skipped: %s", err)
        return None


@torch.no_grad()
def evaluate_model(model, hooks, dataset, *, limit: int | None = None, use_lpips: bool = True, seed: int = 0,
                   num_inference_steps: int | None = None, captioner=None, batch_size: int = 1,
                   warmup: bool = False, segnet=None, progress: bool = False,
                   reuse_latents: bool = False) -> list[dict]:
    """Per-image rows (:data:`EVAL_FIELDS`) for the first ``limit`` pairs of ``dataset``.

    ``captioner`` (a callable or a BLIP-2 folder / hub id) captions the side views of codecs
    whose decoder reads a caption; default: the dataset's own caption of the side view.  A
    codec whose encoder reads a caption of x gets it from the items (``hooks.encoder_captions``).
    ``use_lpips``: also LPIPS and DISTS, where their weight files are present.
    ``batch_size`` images go through the encoder and the decoder together (each still decodes
    as it would alone); ``encode_s`` / ``decode_s`` are then the batch's time divided by its size.
    ``warmup`` codes the first batch once, untimed, before the timed pass (first calls pay for
    lazy initialisation and would inflate the first image's times).
    ``segnet`` (the synthetic world's segmentation net, :mod:`mdic_lab.metrics.segnet`) adds a
    semantic column ``miou``: the mIoU of the reconstruction's segmentation against the
    original's ground-truth labels, per image (NaN where the items carry no ``labels``).
    ``reuse_latents``: the frozen VAE's latents of batches this process met before come from its
    memo (:func:`mdic_lab.models.mdic.backbone.encode_memo`; the same values, the VAE not run), as
    a sweep worker's cells evaluate the same test pairs; the rows' ``encode_s`` / ``decode_s``
    are then NaN (they would leave the VAE out).  Timed evaluations keep the default, ``False``.
    """
    if isinstance(captioner, str):
        from mdic_lab.data.sources import make_captioner

        captioner = make_captioner(captioner)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if n <= 0:
        raise ValueError(f"nothing to evaluate: dataset has {len(dataset)} pairs, limit={limit}")
    lp, ds = _perceptual_fn("lpips", use_lpips), _perceptual_fn("dists", use_lpips)
    needs_caption = hooks.codec.needs_caption
    with _latent_memo(reuse_latents):
        if warmup:
            items = [dataset[i] for i in range(min(batch_size, n))]
            y = torch.stack([it["right"].float() for it in items])
            caps = [it["caption"] for it in items] if needs_caption and captioner is None else (
                [captioner(it["right"]) for it in items] if needs_caption else None)
            hooks.decompress(model, hooks.compress(model, torch.stack([it["left"].float() for it in items]),
                                                   hooks.encoder_captions(items)), y, caps,
                             seed=seed, num_inference_steps=num_inference_steps)
        rows = _evaluate_batches(model, hooks, dataset, n, batch_size, seed, num_inference_steps, captioner,
                                 needs_caption, lp, ds, segnet, progress)
    if reuse_latents:
        for r in rows:
            r["encode_s"] = r["decode_s"] = float("nan")
    return rows


def _latent_memo(on: bool):
    """:func:`~mdic_lab.models.mdic.backbone.encode_memo` on or off (the backbone module is imported only if needed)."""
    import contextlib
    import sys

    if not on and "mdic_lab.models.mdic.backbone" not in sys.modules:
        return contextlib.nullcontext()  # no backbone loaded in this process: nothing to turn off
    from mdic_lab.models.mdic.backbone import encode_memo

    return encode_memo(on)


def _evaluate_batches(model, hooks, dataset, n, batch_size, seed, num_inference_steps, captioner, needs_caption,
                      lp, ds, segnet, progress) -> list[dict]:
    """The timed pass of :func:`evaluate_model`: ``n`` pairs in batches, one row per image."""
    from mdic_lab import metrics as M
    from mdic_lab.coding.bpp import bpp_from_bytes
    from mdic_lab.coding.container import unpack
    from mdic_lab.progress import progress_bar

    rows = []
    bar = progress_bar(n, f"evaluate {hooks.codec.name}", progress)
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, n))]
        x = torch.stack([it["left"].float() for it in items])  # (B, 3, H, W)
        y = torch.stack([it["right"].float() for it in items])
        captions = None
        if needs_caption:
            captions = [captioner(it["right"]) if captioner is not None else it["caption"] for it in items]
        x_caps = hooks.encoder_captions(items)  # captions of x for an encoder that reads them, else None
        npix, b = int(x.shape[-2] * x.shape[-1]), len(items)
        t0 = time.perf_counter()
        streams = hooks.compress(model, x, x_caps)
        t1 = time.perf_counter()
        x_hat = hooks.decompress(model, streams, y, captions, seed=seed, num_inference_steps=num_inference_steps)
        t2 = time.perf_counter()
        estimated = hooks.estimated_bpp(model, x, y, x_caps)
        exact = hooks.round_trip(model, x, y, streams, x_hat, x_caps)
        for j, it in enumerate(items):
            xj, hj = x[j:j + 1], x_hat[j:j + 1]
            cap_bytes = int(hooks.caption_bytes(model, streams[j]))  # 0 unless the stream carries a caption
            rows.append({
                "name": it.get("name", f"{it.get('index', start + j):05d}"),
                "bpp_coded": bpp_from_bytes(streams[j], npix),
                "bpp_payload": 8.0 * sum(len(p) for p in unpack(streams[j]).payloads) / npix,
                "bpp_estimated": float(estimated[j]),
                "caption_bytes": cap_bytes,
                "caption_bpp": 8.0 * cap_bytes / npix,
                "psnr": float(M.psnr(hj, xj)),
                # 5-scale MS-SSIM needs min(H, W) > 96 (window 7); smaller images get NaN
                "ms_ssim": float(M.ms_ssim(hj, xj)) if min(x.shape[-2:]) > 96 else float("nan"),
                "lpips": float(lp(hj, xj)) if lp is not None else float("nan"),
                "dists": float(ds(hj, xj)) if ds is not None else float("nan"),
                "miou": _image_miou(segnet, hj, it),
                "encode_s": (t1 - t0) / b,
                "decode_s": (t2 - t1) / b,
                "round_trip": bool(exact[j]),
            })
        bar.update(b)
    bar.close()
    return rows


def evaluate_run(run_dir, *, split: str = "test", limit: int | None = None, data: str | None = None,
                 captioner=None, caption_cache=None, num_inference_steps: int | None = None, seed: int = 0,
                 use_lpips: bool = True, tag: str | None = None, csv_path=None, dataset=None,
                 batch_size: int = 1, warmup: bool = False, use_miou: bool = False, progress: bool = False,
                 reuse_latents: bool = False) -> dict:
    """Evaluate a trained run on ``split`` with real bitstreams; write ``eval/<split>[-tag].{csv,json}``.

    ``data`` / ``captioner`` default to what the run was trained with (its ``config.json``);
    ``limit`` defaults to the whole split (MDIC on the synthetic world: 8 pairs); ``dataset``
    replaces the data spec with ready pairs.  ``csv_path`` also writes the per-image CSV there.
    ``batch_size`` images are coded together (see :func:`evaluate_model`).  ``use_miou``: the
    semantic column ``miou`` from the synthetic world's cached segmentation net
    (:func:`mdic_lab.metrics.segnet.load_or_train_segnet` makes it once), where pairs carry labels.
    ``reuse_latents``: see :func:`evaluate_model` (then no per-image times).
    Returns the summary (means, ``n``, coded and estimated bpp apart, run identity).
    """
    from mdic_lab.data.sources import parse_data_spec

    from .coding import load_run, recorded_captioner
    from .rundir import write_rows_csv

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    rd = RunDir(run_dir)
    rec = rd.data_record()
    spec = None
    if dataset is None:
        spec = parse_data_spec(data if data is not None else (rec.get("spec") if rec.get("spec") not in (None, "custom")
                                                                else "synthetic"))
    if captioner is None:
        captioner = recorded_captioner(run_dir)
    model, run, hooks = load_run(run_dir)
    if limit is None and spec is not None and not spec.is_real:
        limit = hooks.default_synthetic_eval_limit
    if dataset is None:
        dataset = hooks.open_data(run, spec, split, length=limit if spec.is_real or limit else None,
                                  captioner=captioner if hooks.codec.needs_caption or hooks.codec.encoder_caption
                                  else None,
                                  caption_cache=caption_cache)
        captioner = None  # the opened pairs carry the captioner's captions
    rows = evaluate_model(model, hooks, dataset, limit=limit, use_lpips=use_lpips, seed=seed,
                          num_inference_steps=num_inference_steps, captioner=captioner, batch_size=batch_size,
                          warmup=warmup, segnet=semantic_net(use_miou), progress=progress,
                          reuse_latents=reuse_latents)
    ckpt_step = int(rd.load_checkpoint()["step"])
    summary = {"run": str(rd.path), "codec": run.codec, "preset": run.preset, "variant": run.variant,
               "rate_point": run.rate_point, "split": split, "data": str(spec) if spec is not None else "custom",
               "step": ckpt_step, "model_id": model.model_id, "num_inference_steps": num_inference_steps,
               "seed": seed, "batch_size": batch_size, **summarize(rows)}
    if hasattr(dataset, "describe"):
        summary["captioner"] = dataset.describe().get("captioner")
        summary["captions"] = dataset.caption_stats
    rd.write_eval(split, rows, EVAL_FIELDS, summary, tag=tag)
    if csv_path is not None:
        write_rows_csv(csv_path, rows, EVAL_FIELDS)
    return summary


def rd_points(run_dirs, dataset, *, limit: int | None = None, use_lpips: bool = False, csv_dir=None,
              num_inference_steps: int | None = None) -> list[dict]:
    """One :func:`summarize` row per run (sorted by coded bpp), coding the same ``dataset`` with real bitstreams.

    Each row also names the run, its codec, step and training λ (``lmbda``; ``None`` for
    codecs without one).  ``csv_dir``: the per-image CSV of each run as ``<run name>.csv``.
    """
    from pathlib import Path

    from .coding import load_run
    from .rundir import write_rows_csv

    out = []
    for run_dir in run_dirs:
        model, run, hooks = load_run(run_dir)
        rows = evaluate_model(model, hooks, dataset, limit=limit, use_lpips=use_lpips,
                              num_inference_steps=num_inference_steps)
        if csv_dir is not None:
            write_rows_csv(Path(csv_dir) / f"{Path(run_dir).name}.csv", rows, EVAL_FIELDS)
        s = summarize(rows)
        s.update({"run": str(run_dir), "codec": run.codec, "lmbda": getattr(run.train, "lmbda", None),
                  "rate_point": run.rate_point, "step": int(RunDir(run_dir).load_checkpoint()["step"])})
        out.append(s)
    return sorted(out, key=lambda r: r["bpp_coded"])
