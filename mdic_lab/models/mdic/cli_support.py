"""What ``mdic-lab train/eval/compress/decompress`` do for MDIC runs (the CLI only dispatches here).

The decoder of MDIC needs the side image I_y **and its caption** (Eq. 3).  At the command
line the caption is either given (``--caption TEXT``) or computed from the side image by
BLIP-2 (``--captioner PATH_OR_HUB_ID``, weights must be present locally; the paper's
captioner), through the content-keyed caption cache.

``train`` and ``eval`` read the pairs of a data spec (``--data synthetic | kitti:ROOT |
cityscapes:ROOT``, :func:`mdic_lab.data.sources.open_pairs`); real data sets are captioned
by ``--captioner`` (BLIP-2), the synthetic world has its oracle captions.  The spec and the
captioner are recorded in the run's ``config.json`` (``data``), and ``eval`` defaults to them.
"""

from __future__ import annotations

from pathlib import Path

from .config import MDICConfig
from .training import MDICTrainConfig

__all__ = ["is_mdic_run", "run_data", "train_from_cli", "compress_file", "decompress_file", "evaluate_run", "side_caption"]


def is_mdic_run(meta: dict) -> bool:
    """True if a run folder's ``config.json`` describes an MDIC run."""
    return isinstance(meta, dict) and meta.get("model_name") == "mdic"


def run_data(run_dir) -> dict:
    """The ``data`` record of a run folder's ``config.json`` (``{}`` if absent: a synthetic run)."""
    import json

    try:
        rec = json.loads((Path(run_dir) / "config.json").read_text()).get("data")
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _recorded_captioner(rec: dict):
    cap = rec.get("captioner")
    return None if cap in (None, "oracle") else cap


def train_from_cli(preset: str, out, *, variant: str = "full", rate_point: int | None = None,
                   steps: int | None = None, seed: int | None = None, sets: dict | None = None,
                   resume: bool = False, verbose: bool = False, data: str = "synthetic", captioner: str | None = None,
                   caption_cache=None, data_limit: int | None = None, backbone_root=None) -> dict:
    """Split ``sets`` between MDICConfig and MDICTrainConfig fields, open ``data``, then :func:`train_mdic`.

    ``data``: a data spec (``synthetic``, ``kitti:ROOT``, ``cityscapes:ROOT``); its train
    split, the first ``data_limit`` pairs (default: all of a real split; synthetic:
    ``train_length``), captioned by ``captioner`` (required for real data).
    """
    from mdic_lab.data.sources import open_pairs, parse_data_spec

    from .training import train_mdic

    model_keys = set(MDICConfig.__dataclass_fields__)
    train_keys = set(MDICTrainConfig.__dataclass_fields__)
    m_over, t_over = {"variant": variant}, {}
    for k, v in (sets or {}).items():
        if k in model_keys:
            m_over[k] = tuple(v) if isinstance(v, list) else v
        elif k in train_keys:
            t_over[k] = v
        else:
            raise ValueError(f"unknown --set key {k!r} for MDIC (model fields: {', '.join(sorted(model_keys))}; "
                             f"train fields: {', '.join(sorted(train_keys))})")
    if steps is not None:
        t_over["steps"] = steps
    if seed is not None:
        t_over["seed"] = seed
    cfg = (MDICConfig.rate_point(preset, rate_point, **m_over) if rate_point is not None
           else MDICConfig.preset(preset, **m_over))
    tcfg = MDICTrainConfig.preset(preset, **t_over)
    out = Path(out)
    if (out / "checkpoint.pt").exists() and not resume:
        raise ValueError(f"{out} already holds a checkpoint; pass --resume or use another --out")
    spec = parse_data_spec(data)
    if data_limit is not None and (isinstance(data_limit, bool) or not isinstance(data_limit, int) or data_limit < 1):
        raise ValueError(f"--data-limit must be a positive int, got {data_limit!r}")
    length = data_limit if data_limit is not None else (None if spec.is_real else tcfg.train_length)
    source = open_pairs(spec, "train", size=cfg.image_size, captioner=captioner, length=length, seed=tcfg.data_seed,
                        caption_cache=caption_cache)
    summary = train_mdic(cfg, tcfg, out, preset=preset, dataset=source, backbone_root=backbone_root, verbose=verbose)
    return {**summary, "data": str(spec), "train_pairs": len(source), "captions": source.caption_stats}


def compress_file(run_dir, image) -> tuple[bytes, dict]:
    """``(container bytes, info)`` of one image ``(1, 3, H, W)`` in [0, 1] (encoder: I_x only)."""
    from .training import load_trained

    model, _ = load_trained(run_dir)
    h, w = model.config.image_size
    if tuple(image.shape[-2:]) != (h, w):
        raise ValueError(f"image is {tuple(image.shape[-2:])} (H, W) but this MDIC model codes {(h, w)} images")
    s = model.compress(image)["strings"][0]
    return s, {"bytes": len(s), "bpp_coded": model.bpp([s])[0], "model_id": model.model_id}


def side_caption(side, caption: str | None = None, captioner: str | None = None, caption_cache=None) -> str:
    """The caption of the side image: ``caption`` if given, else BLIP-2 from ``captioner`` (a local folder or cached hub id).

    BLIP-2 captions go through the content-keyed caption cache (``caption_cache`` folder,
    default ``~/.cache/mdic_lab/captions``): the same side pixels get the same caption as in
    ``eval``, and BLIP-2 is loaded only on a cache miss.
    """
    if caption is not None:
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError("--caption must be a non-empty text")
        return caption
    if captioner is None:
        raise ValueError("MDIC decodes with a caption of the side image: pass --caption TEXT or "
                         "--captioner BLIP2_DIR (a local BLIP-2 folder, e.g. Salesforce/blip2-opt-2.7b saved offline)")
    from mdic_lab.data.sources import make_captioner

    return make_captioner(captioner, caption_cache)(side[0])


def decompress_file(run_dir, data: bytes, side, caption: str | None = None, captioner: str | None = None,
                    seed: int = 0, num_inference_steps: int | None = None, caption_cache=None):
    """``(Î_x (1, 3, H, W), caption used)`` from a stream, the side image and its caption.

    Without ``caption`` and ``captioner``, the captioner recorded in the run's ``config.json``
    (a run trained on BLIP-2 captions) captions the side image.
    """
    from .training import load_trained

    model, _ = load_trained(run_dir)
    h, w = model.config.image_size
    if tuple(side.shape[-2:]) != (h, w):
        raise ValueError(f"side image is {tuple(side.shape[-2:])} (H, W) but this MDIC model decodes {(h, w)} images")
    if caption is None and captioner is None:
        captioner = _recorded_captioner(run_data(run_dir))
    text = side_caption(side, caption, captioner, caption_cache)
    return model.decompress([data], side, [text], seed=seed, num_inference_steps=num_inference_steps), text


def evaluate_run(run_dir, split: str = "test", limit: int | None = None, csv_path=None, use_lpips: bool = True,
                 num_inference_steps: int | None = None, data: str | None = None, captioner: str | None = None,
                 caption_cache=None) -> dict:
    """Code the first ``limit`` pairs of ``split`` with real bitstreams; summary (+ per-pair CSV, atomic).

    ``data`` / ``captioner`` default to what the run was trained with (its ``config.json``);
    ``limit`` defaults to all pairs of a real split and to 8 synthetic pairs.
    """
    import csv

    from mdic_lab.atomic import atomic_write
    from mdic_lab.data.sources import open_pairs, parse_data_spec

    from .evaluation import EVAL_FIELDS, evaluate_mdic, summarize_mdic
    from .training import load_trained

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"--limit must be a positive int, got {limit!r}")
    rec = run_data(run_dir)
    spec = parse_data_spec(data if data is not None else rec.get("spec", "synthetic"))
    if captioner is None:  # the captions the model was trained on come from this captioner
        captioner = _recorded_captioner(rec)
    model, ckpt = load_trained(run_dir)
    n = limit if limit is not None else (None if spec.is_real else 8)
    ds = open_pairs(spec, split, size=tuple(model.config.image_size), captioner=captioner, length=n,
                    seed=ckpt["train_config"]["data_seed"], caption_cache=caption_cache)
    rows = evaluate_mdic(model, ds, limit=n, use_lpips=use_lpips, num_inference_steps=num_inference_steps)
    if csv_path is not None:
        def write(f):
            wr = csv.DictWriter(f, fieldnames=EVAL_FIELDS)
            wr.writeheader()
            wr.writerows(rows)

        atomic_write(csv_path, write, newline="")
    return {"model": "mdic", "run": str(run_dir), "split": split, "data": str(spec),
            "captioner": ds.describe()["captioner"], "captions": ds.caption_stats, **summarize_mdic(rows)}
