"""Train a learned image codec (NDIC or the single-image hyperprior) on stereo pairs.

One run lives in one folder::

    out_dir/
      config.json      model name, model config, train config (written before step 1)
      metrics.csv      step, loss, bpp_estimated, mse, psnr, r_y, r_w, mse_side, lr, elapsed_s
      checkpoint.pt    weights, optimiser, step, generator state, both configs (atomic)

The loss is the model's rate–distortion Lagrangian (Eq. 4 of NDIC for NDIC; ``R + λD``
for the hyperprior) with ``D = 255²·MSE``.  AdamW with a cosine learning-rate decay.
All randomness (weight init, batch order, crop offsets, quantization noise) derives from
``TrainConfig.seed``; the global torch RNG is only touched inside ``torch.random.fork_rng``
(so it is restored).  Calling :func:`train` on a folder with a checkpoint resumes it.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import torch

from mdic_lab.atomic import atomic_torch_save, atomic_write_text
from mdic_lab.config import (
    MODEL_CONFIGS,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from mdic_lab.models.baselines import MODEL_CLASSES, build_model

__all__ = ["PairBank", "train", "train_sweep", "run_name", "load_checkpoint", "load_model", "make_dataset", "CSV_FIELDS", "CHECKPOINT", "RunError"]

CHECKPOINT = "checkpoint.pt"
CSV_FIELDS = ["step", "loss", "bpp_estimated", "mse", "psnr", "r_y", "r_w", "mse_side", "lr", "elapsed_s"]


class RunError(ValueError):
    """A run folder that cannot be used (missing, foreign or mismatching checkpoint)."""


def make_dataset(split: str, train_cfg: TrainConfig, length: int | None = None, cache_dir=None,
                 data: str = "synthetic"):
    """``split`` of the data set ``data`` at ``train_cfg.image_size``, without captions (NDIC reads none).

    ``data`` is a data spec of :func:`mdic_lab.data.sources.open_pairs`: ``"synthetic"``
    (default; world seed ``train_cfg.data_seed``), ``"kitti:/path/to/kitti"`` or
    ``"cityscapes:/path/to/cityscapes"``.  ``length``: the first ``length`` pairs (default:
    the whole split).
    """
    from mdic_lab.data.sources import open_pairs

    return open_pairs(data, split, size=tuple(train_cfg.image_size), seed=train_cfg.data_seed, length=length,
                      cache_dir=cache_dir, captions=False)


class PairBank:
    """All training pairs held in memory as 8-bit images (read once, in order: chunk-cache friendly).

    Images are 8-bit by nature (the synthetic world stores uint8), so ``round(255·v)/255``
    gives the dataset's values back exactly.
    """

    def __init__(self, dataset):
        from mdic_lab.data.sources import describe_dataset

        self.source = describe_dataset(dataset)  # the run's ``data`` record (config.json)
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            raise ValueError("the training dataset is empty")
        to8 = lambda t: (t.float().clamp(0, 1) * 255.0).round().to(torch.uint8)  # noqa: E731
        self.left = torch.stack([to8(it["left"]) for it in items])  # (n, 3, H, W) uint8
        self.right = torch.stack([to8(it["right"]) for it in items])
        self.captions = [it.get("caption") for it in items]  # captions of the side views (None if the source has none)

    def __len__(self) -> int:
        return self.left.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"left": self.left[i].float() / 255.0, "right": self.right[i].float() / 255.0}




def _batch(dataset, idx, crop, gen: torch.Generator):
    """Stack x (left) and y (right) of the pairs ``idx``, cropped at the same random place."""
    xs, ys = [], []
    for i in idx:
        item = dataset[int(i)]
        x, y = item["left"], item["right"]  # (3, H, W) float in [0, 1]
        if crop is not None:
            h, w = x.shape[-2:]
            top = int(torch.randint(0, h - crop[0] + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - crop[1] + 1, (1,), generator=gen))
            x = x[:, top:top + crop[0], left:left + crop[1]]
            y = y[:, top:top + crop[0], left:left + crop[1]]
        xs.append(x)
        ys.append(y)
    return torch.stack(xs).float(), torch.stack(ys).float()


def _lr_at(step: int, cfg: TrainConfig) -> float:
    """Cosine decay from ``lr`` (step 0) to ``lr_final`` (last step)."""
    t = min(step / max(cfg.steps - 1, 1), 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` (``path`` is the file or its run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path} (expected a run folder written by `mdic-lab train`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise RunError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(ckpt, dict) or ckpt.get("model_name") not in MODEL_CLASSES:
        raise RunError(f"{path} is not an mdic-lab checkpoint (no known model_name)")
    return ckpt


def load_model(path, update: bool = True):
    """``(model, checkpoint)`` from a run folder; ``update()`` is called so it can code."""
    ckpt = load_checkpoint(path)
    mcfg = config_from_dict(ckpt["model_config"])
    model = build_model(ckpt["model_name"], mcfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    if update:
        model.update()
    return model, ckpt


def _read_rows(csv_path: Path, max_step: int) -> list[dict]:
    if not csv_path.exists():
        return []
    with open(csv_path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= max_step]


def train(model_name: str, model_cfg, train_cfg: TrainConfig, out_dir, *, dataset=None,
          resume: bool = True, verbose: bool = False, stop_after: int | None = None) -> dict:
    """Train (or resume) a run in ``out_dir``; returns a summary dict of the last logged row.

    Parameters
    ----------
    model_name : {"hyperprior", "ndic"}
    model_cfg : HyperpriorConfig or NDICConfig
    train_cfg : TrainConfig
    out_dir : path
        Run folder (created).  If it holds a checkpoint and ``resume``, training continues
        from it (the configs must match); otherwise an existing checkpoint is an error.
    dataset : torch Dataset or str, optional
        Items with ``"left"`` and ``"right"`` (3, H, W) tensors (e.g. from
        :func:`mdic_lab.data.sources.open_pairs`), or a data spec string (``"synthetic"``,
        ``"kitti:/root"``, ``"cityscapes:/root"``: the whole train split; synthetic:
        ``train_cfg.train_length`` pairs); default: the synthetic stereo world, train split,
        ``train_cfg.train_length`` pairs.  Its description goes into ``config.json`` (``data``).
    resume : bool
        Continue an existing checkpoint (else an existing checkpoint is an error).
    verbose : bool
        Print every logged row.
    stop_after : int, optional
        Stop (after checkpointing) once this call has run that many steps; calling again
        resumes.  The learning-rate schedule always follows ``train_cfg.steps``, so a run
        cut in slices ends bit-identical to an uninterrupted one.
    """
    if model_name not in MODEL_CLASSES:
        raise KeyError(f"unknown model {model_name!r} (expected one of: {', '.join(MODEL_CLASSES)})")
    if not isinstance(model_cfg, MODEL_CONFIGS[model_name]):
        raise TypeError(f"model {model_name!r} needs a {MODEL_CONFIGS[model_name].__name__}, got {type(model_cfg).__name__}")
    if dataset is None or isinstance(dataset, str):
        from mdic_lab.data.sources import parse_data_spec

        spec = parse_data_spec(dataset or "synthetic")
        dataset = make_dataset("train", train_cfg, length=None if spec.is_real else train_cfg.train_length,
                               data=spec)
    if not isinstance(dataset, PairBank):
        dataset = PairBank(dataset)  # read once, before anything is written
    meta = {"model_name": model_name, "model_config": config_to_dict(model_cfg), "train_config": config_to_dict(train_cfg),
            "data": dataset.source}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, csv_path = out / CHECKPOINT, out / "metrics.csv"

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(train_cfg.num_threads)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(train_cfg.seed)  # weight init only; the global state is restored on exit
            model = build_model(model_name, model_cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                                amsgrad=train_cfg.amsgrad)
        gen = torch.Generator().manual_seed(train_cfg.seed)
        step, elapsed = 0, 0.0
        if ckpt_path.exists():
            if not resume:
                raise RunError(f"{out} already holds a checkpoint; pass resume=True (CLI: --resume) or use another --out")
            ckpt = load_checkpoint(ckpt_path)
            for key in ("model_name", "model_config", "train_config", "data"):
                old, new = ckpt.get(key), meta[key]
                if key == "data" and old is None:  # a run written before data records existed
                    continue
                if key == "train_config":  # the step budget may be extended on resume
                    old = {k: v for k, v in old.items() if k != "steps"}
                    new = {k: v for k, v in new.items() if k != "steps"}
                if old != new:
                    raise RunError(f"{out} holds a run with another {key}: {old} (requested {new})")
            model.load_state_dict(ckpt["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            gen.set_state(ckpt["generator_state"])
            step, elapsed = int(ckpt["step"]), float(ckpt["elapsed_s"])
        atomic_write_text(out / "config.json", json.dumps(meta, indent=2))
        n_data = len(dataset)
        rows = _read_rows(csv_path, step)

        def save():
            atomic_torch_save({**meta, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                                "generator_state": gen.get_state(), "step": step, "elapsed_s": elapsed}, ckpt_path)
            lines = [",".join(CSV_FIELDS)] + [",".join(str(r[k]) for k in CSV_FIELDS) for r in rows]
            atomic_write_text(csv_path, "\n".join(lines) + "\n")

        model.train()
        t_start = time.perf_counter() - elapsed
        stop_at = train_cfg.steps if stop_after is None else min(train_cfg.steps, step + int(stop_after))
        while step < stop_at:
            lr = _lr_at(step, train_cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = torch.randint(0, n_data, (train_cfg.batch_size,), generator=gen)
            x, y = _batch(dataset, idx, train_cfg.crop, gen)
            res = model(x, y, mode="noise", generator=gen)
            terms = model.loss(res, x, y, lmbda=train_cfg.lmbda)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if train_cfg.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.clip_grad)
            opt.step()
            step += 1
            elapsed = time.perf_counter() - t_start
            if step % train_cfg.log_every == 0 or step == stop_at:
                t = {k: float(v.detach()) for k, v in terms.items()}
                mse = t["mse"]
                row = {"step": step, "loss": f"{t['loss']:.6g}", "bpp_estimated": f"{t['bpp']:.6g}",
                       "mse": f"{mse:.6g}", "psnr": f"{10 * math.log10(1.0 / max(mse, 1e-12)):.4f}",
                       "r_y": f"{t.get('r_y', float('nan')):.6g}", "r_w": f"{t.get('r_w', float('nan')):.6g}",
                       "mse_side": f"{t.get('mse_side', float('nan')):.6g}",
                       "lr": f"{lr:.3g}", "elapsed_s": f"{elapsed:.2f}"}
                rows.append(row)
                if verbose:
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            if step % train_cfg.ckpt_every == 0 or step == stop_at:
                save()
        if not ckpt_path.exists():
            save()
    finally:
        torch.set_num_threads(prev_threads)
    return {"out_dir": str(out), "step": step, "elapsed_s": elapsed, **(rows[-1] if rows else {})}


def run_name(model_name: str, preset: str, lmbda: float) -> str:
    """Folder name of a sweep run, e.g. ``ndic_lab_l0.002``.

    >>> run_name("ndic", "lab", 0.002)
    'ndic_lab_l0.002'
    """
    return f"{model_name}_{preset}_l{lmbda:g}"


def train_sweep(model_names, lambdas, out_root, *, preset: str = "lab", model_overrides: dict | None = None,
                train_overrides: dict | None = None, dataset=None, verbose: bool = False) -> dict:
    """Train every ``(model, λ)`` of a rate–distortion sweep into ``out_root/<run_name>``.

    Existing finished runs are reused (resumed to the requested step count).  Returns
    ``{model_name: [run folders ordered by λ]}``.
    """
    out = {}
    for name in model_names:
        out[name] = []
        for lm in sorted(lambdas):
            over = {**(train_overrides or {}), "lmbda": float(lm)}
            m_over = {k: v for k, v in (model_overrides or {}).items() if k in MODEL_CONFIGS[name].__dataclass_fields__}
            from mdic_lab.config import get_preset

            mcfg, tcfg = get_preset(name, preset, m_over, over)
            run = Path(out_root) / run_name(name, preset, lm)
            if dataset is not None and not isinstance(dataset, (PairBank, str)):
                dataset = PairBank(dataset)  # read once for the whole sweep
            train(name, mcfg, tcfg, run, dataset=dataset, verbose=verbose)
            out[name].append(run)
    return out
