"""What ``mdic-lab train/eval/compress/decompress`` do for MDIC runs (the CLI only dispatches here).

The decoder of MDIC needs the side image I_y **and its caption** (Eq. 3).  At the command
line the caption is either given (``--caption TEXT``) or computed from the side image by
BLIP-2 (``--captioner PATH_OR_HUB_ID``, weights must be present locally; the paper's
captioner).  The synthetic world's oracle captions are used by ``eval`` (the dataset knows
what the side view shows).
"""

from __future__ import annotations

from pathlib import Path

from .config import MDICConfig
from .training import MDICTrainConfig

__all__ = ["is_mdic_run", "train_from_cli", "compress_file", "decompress_file", "evaluate_run", "side_caption"]


def is_mdic_run(meta: dict) -> bool:
    """True if a run folder's ``config.json`` describes an MDIC run."""
    return isinstance(meta, dict) and meta.get("model_name") == "mdic"


def train_from_cli(preset: str, out, *, variant: str = "full", rate_point: int | None = None,
                   steps: int | None = None, seed: int | None = None, sets: dict | None = None,
                   resume: bool = False, verbose: bool = False) -> dict:
    """Split ``sets`` between MDICConfig and MDICTrainConfig fields, then :func:`train_mdic`."""
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
    return train_mdic(cfg, tcfg, out, preset=preset, verbose=verbose)


def compress_file(run_dir, image) -> tuple[bytes, dict]:
    """``(container bytes, info)`` of one image ``(1, 3, H, W)`` in [0, 1] (encoder: I_x only)."""
    from .training import load_trained

    model, _ = load_trained(run_dir)
    h, w = model.config.image_size
    if tuple(image.shape[-2:]) != (h, w):
        raise ValueError(f"image is {tuple(image.shape[-2:])} (H, W) but this MDIC model codes {(h, w)} images")
    s = model.compress(image)["strings"][0]
    return s, {"bytes": len(s), "bpp_coded": model.bpp([s])[0], "model_id": model.model_id}


def side_caption(side, caption: str | None = None, captioner: str | None = None) -> str:
    """The caption of the side image: ``caption`` if given, else BLIP-2 from ``captioner`` (a local folder or cached hub id)."""
    if caption is not None:
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError("--caption must be a non-empty text")
        return caption
    if captioner is None:
        raise ValueError("MDIC decodes with a caption of the side image: pass --caption TEXT or "
                         "--captioner BLIP2_DIR (a local BLIP-2 folder, e.g. Salesforce/blip2-opt-2.7b saved offline)")
    from mdic_lab.data.captioners import Blip2Captioner

    return Blip2Captioner(captioner)(side[0])


def decompress_file(run_dir, data: bytes, side, caption: str | None = None, captioner: str | None = None,
                    seed: int = 0, num_inference_steps: int | None = None):
    """``(Î_x (1, 3, H, W), caption used)`` from a stream, the side image and its caption."""
    from .training import load_trained

    model, _ = load_trained(run_dir)
    h, w = model.config.image_size
    if tuple(side.shape[-2:]) != (h, w):
        raise ValueError(f"side image is {tuple(side.shape[-2:])} (H, W) but this MDIC model decodes {(h, w)} images")
    text = side_caption(side, caption, captioner)
    return model.decompress([data], side, [text], seed=seed, num_inference_steps=num_inference_steps), text


def evaluate_run(run_dir, split: str = "test", limit: int | None = None, csv_path=None, use_lpips: bool = True,
                 num_inference_steps: int | None = None) -> dict:
    """Code ``limit`` pairs of the synthetic ``split`` with real bitstreams; summary (+ per-pair CSV)."""
    import csv

    from mdic_lab.data.synthetic import SyntheticStereo

    from .evaluation import EVAL_FIELDS, evaluate_mdic, summarize_mdic
    from .training import load_trained

    model, ckpt = load_trained(run_dir)
    n = 8 if limit is None else int(limit)
    ds = SyntheticStereo(split, seed=ckpt["train_config"]["data_seed"], size=tuple(model.config.image_size), length=n)
    rows = evaluate_mdic(model, ds, limit=n, use_lpips=use_lpips, num_inference_steps=num_inference_steps)
    if csv_path is not None:
        p = Path(csv_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=EVAL_FIELDS)
            wr.writeheader()
            wr.writerows(rows)
    return {"model": "mdic", "run": str(run_dir), "split": split, **summarize_mdic(rows)}
