"""Train MDIC (Eqs. 19–23) with Hugging Face ``accelerate``: one CPU process or DDP across devices.

One run lives in one folder::

    out_dir/
      config.json      preset, MDICConfig, MDICTrainConfig, backbone folder (written before step 1)
      metrics.csv      step, loss, vq, diff, mask, rate_bpp_estimated, mask_fraction, lr, elapsed_s
      checkpoint.pt    model (MDIC.checkpoint_blob) + optimizer, scheduler, step, data order and
                       every RNG state; written atomically (temp file + os.replace)

Optimiser and schedule follow the paper (Sec. 4.1): AdamW, learning rate rising linearly
to ``lr`` over ``warmup_steps`` iterations and constant after (paper: 8e-5 after 10 000;
the laptop presets scale both down, see :data:`TRAIN_PRESETS`).

Determinism.  Weights are initialised under ``torch.random.fork_rng`` from ``seed``; batch
indices come from one ``torch.Generator`` (``data``) and the training noise (diffusion
time step and ε, Gumbel noise) from another (``noise``, offset per process).  Both, and the
global torch / numpy / python RNG states, are saved in each checkpoint, so a run stopped
and resumed (``max_steps``, or killed and restarted) ends — on CPU, with a fixed seed —
with the same weights as an uninterrupted run (``tests/test_mdic_training.py``).

Distributed.  ``batch_size`` is the global batch: every process draws the same global
index list and takes its slice, gradients are averaged by DDP, and process 0 writes the
checkpoint and the CSV.  Launch on GPUs with ``accelerate launch --multi_gpu --num_processes N
-m mdic_lab.models.mdic.training --preset paper --out runs/x`` (add ``--num_machines``/
``--machine_rank``/``--main_process_ip`` across nodes); on CPUs with ``torchrun --standalone
--nproc_per_node N -m mdic_lab.models.mdic.training --preset lab --out runs/x`` -- with
``Accelerator(cpu=True)`` the processes join over gloo (``accelerate launch --cpu`` alone
starts a single process unless MPI is installed).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mdic_lab.atomic import atomic_torch_save, atomic_write_text

from mdic_lab.train import PairBank

from .config import PRESET_ALIASES, TRAIN_PRESETS, MDICConfig, MDICTrainConfig

__all__ = ["MDICTrainConfig", "TRAIN_PRESETS", "train_mdic", "lr_lambda", "load_trained", "CSV_FIELDS",
           "CHECKPOINT", "LatentBank", "build_backbone"]

CHECKPOINT = "checkpoint.pt"
CSV_FIELDS = ["step", "loss", "vq", "diff", "mask", "rate_bpp_estimated", "mask_fraction", "lr", "elapsed_s"]


def lr_lambda(warmup_steps: int):
    """Multiplier of the peak lr at step ``s``: ``min(1, (s + 1) / warmup)`` (constant after warm-up).

    >>> f = lr_lambda(4)
    >>> [f(s) for s in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    >>> lr_lambda(0)(0)
    1.0
    """
    w = int(warmup_steps)
    return lambda step: 1.0 if w == 0 else min(1.0, (step + 1) / w)


def build_backbone(config: MDICConfig, preset: str, backbone_root=None, progress: bool = True):
    """The frozen backbone of a preset: SD 2.1-base (``config.pretrained``) or the cached pretrained small one."""
    from .backbone import Backbone
    from .pretrain import load_or_pretrain_backbone

    if config.pretrained:
        return Backbone.from_pretrained(config.pretrained, max_text_length=config.max_text_length)
    return load_or_pretrain_backbone(config, preset, root=backbone_root, progress=progress)


class LatentBank(PairBank):
    """Training pairs in memory (:class:`mdic_lab.train.PairBank`: 8-bit images, captions) plus,
    optionally, the frozen VAE's latents of both views."""

    def __init__(self, dataset, backbone=None, batch: int = 16):
        super().__init__(dataset)
        if any(c is None for c in self.captions):
            raise KeyError("MDIC training pairs need a 'caption' of the side view (the dataset's items have none)")
        self.z_left = self.z_right = None
        if backbone is not None:  # E_vae is frozen and deterministic (posterior mode)
            with torch.no_grad():
                enc = lambda u8: torch.cat([backbone.encode_image(u8[i:i + batch].float() / 127.5 - 1.0)  # noqa: E731
                                            for i in range(0, u8.shape[0], batch)])
                self.z_left, self.z_right = enc(self.left), enc(self.right)

    def batch(self, idx: torch.Tensor) -> dict:
        out = {"left": self.left[idx].float() / 255.0, "right": self.right[idx].float() / 255.0,
               "caption": [self.captions[int(i)] for i in idx]}
        if self.z_left is not None:
            out["z_left"], out["z_right"] = self.z_left[idx], self.z_right[idx]
        return out


def _rng_state(gens: dict) -> dict:
    np_state = np.random.get_state(legacy=False)
    np_state = {**np_state, "state": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                      for k, v in np_state["state"].items()}}
    return {"torch": torch.get_rng_state(), "numpy": json.dumps(np_state), "python": random.getstate(),
            "generators": {k: g.get_state() for k, g in gens.items()}}


def _set_rng_state(state: dict, gens: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = json.loads(state["numpy"])
    np_state["state"] = {k: (np.asarray(v, dtype=np.uint32) if isinstance(v, list) else v)
                         for k, v in np_state["state"].items()}
    np.random.set_state(np_state)
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    for k, g in gens.items():
        g.set_state(state["generators"][k])


def load_trained(path, backbone=None):
    """``(MDIC in eval mode, checkpoint dict)`` from a run folder or its ``checkpoint.pt``."""
    from .model import MDIC

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no MDIC checkpoint at {path} (expected a run folder written by train_mdic)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read MDIC checkpoint {path}: {type(exc).__name__}: {exc}") from None
    return MDIC.from_blob(ckpt, backbone=backbone, source=str(path)).eval(), ckpt


def _read_rows(csv_path: Path, max_step: int) -> list:
    if not csv_path.exists():
        return []
    with open(csv_path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= max_step]


def train_mdic(config: MDICConfig, train_cfg: MDICTrainConfig, out_dir, *, preset: str = "lab", dataset=None,
               captioner=None, backbone=None, backbone_root=None, max_steps: int | None = None, resume: bool = True,
               progress: bool = True, verbose: bool = False, accelerator=None) -> dict:
    """Train (or resume) an MDIC run in ``out_dir``; returns a summary of the last logged row.

    Parameters
    ----------
    config, train_cfg : MDICConfig, MDICTrainConfig
    out_dir : path
        Run folder.  A checkpoint there is resumed (configs must match, ``steps`` may grow).
    preset : str
        Which pretrained small backbone to use (cache key), see :mod:`.pretrain`.
    dataset : optional
        Items with ``left``, ``right`` (3, H, W) in [0, 1] and ``caption`` (e.g. a
        :func:`mdic_lab.data.sources.open_pairs` source), or a data spec string
        (``"synthetic"``, ``"kitti:/root"``, ``"cityscapes:/root"``: its whole train split;
        synthetic: ``train_cfg.train_length`` pairs); default the synthetic stereo world.
        Recorded in ``config.json`` under ``data``.  Side-view captions are computed by
        process 0 first (BLIP-2, cached), the other processes then read the cache.
    captioner : str or callable, optional
        With a data spec string: the captioner of its side views (BLIP-2 folder / hub id).
    backbone : Backbone, optional
        A ready frozen backbone (default :func:`build_backbone`).
    max_steps : int, optional
        Stop (after a checkpoint) at this absolute step; the schedule still follows
        ``train_cfg.steps``, so calling again resumes exactly.
    accelerator : accelerate.Accelerator, optional
        Default ``Accelerator(cpu=train_cfg.cpu)``; under ``accelerate launch`` it joins the
        process group (DDP, gloo on CPU).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs
    from tqdm.auto import tqdm

    from mdic_lab.data.vocabulary import build_vocabulary

    from .model import MDIC

    if not isinstance(config, MDICConfig):
        raise TypeError(f"config must be an MDICConfig, got {type(config).__name__}")
    if not isinstance(train_cfg, MDICTrainConfig):
        raise TypeError(f"train_cfg must be an MDICTrainConfig, got {type(train_cfg).__name__}")
    if accelerator is None:
        accelerator = Accelerator(cpu=train_cfg.cpu,
                                  kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])
    world, rank = accelerator.num_processes, accelerator.process_index
    if train_cfg.batch_size % world:
        raise ValueError(f"batch_size {train_cfg.batch_size} must be divisible by the number of processes {world}")
    per = train_cfg.batch_size // world
    out = Path(out_dir)
    ckpt_path, csv_path = out / CHECKPOINT, out / "metrics.csv"
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(train_cfg.num_threads)
    try:
        if backbone is None:
            if accelerator.is_main_process:  # one process pretrains/caches, the others then load
                build_backbone(config, preset, backbone_root, progress)
            accelerator.wait_for_everyone()
            backbone = build_backbone(config, preset, backbone_root, progress=False)
        if dataset is None or isinstance(dataset, str):
            from mdic_lab.data.sources import open_pairs, parse_data_spec

            spec = parse_data_spec(dataset or "synthetic")
            dataset = open_pairs(spec, "train", size=config.image_size, captioner=captioner, seed=train_cfg.data_seed,
                                 length=None if spec.is_real else train_cfg.train_length)
        if world > 1 and hasattr(dataset, "prepare_captions"):  # process 0 captions every side view once, the
            # others then read its cache (single process: LatentBank's one pass captions them)
            if accelerator.is_main_process:
                dataset.prepare_captions()
            accelerator.wait_for_everyone()
            dataset.reload_captions()
        bank = dataset if isinstance(dataset, LatentBank) else LatentBank(
            dataset, backbone if train_cfg.cache_latents else None)
        vocab = build_vocabulary(bank.captions, n=config.num_nouns)
        with torch.random.fork_rng():
            torch.manual_seed(train_cfg.seed)  # weight init only
            model = MDIC(config, backbone=backbone, vocabulary=vocab)
        meta = {"model_name": MDIC.model_name, "preset": PRESET_ALIASES.get(preset, preset),
                "config": config.to_dict(), "train_config": train_cfg.to_dict(), "num_processes": world,
                "data": bank.source}
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(train_cfg.warmup_steps))
        gens = {"data": torch.Generator().manual_seed(train_cfg.seed),
                "noise": torch.Generator().manual_seed(train_cfg.seed * 1_000_003 + 7919 * (rank + 1))}
        step, elapsed = 0, 0.0
        if ckpt_path.exists():
            if not resume:
                raise ValueError(f"{out} already holds a checkpoint; pass resume=True or use another out_dir")
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            for key in ("model_name", "config", "train_config", "num_processes", "data"):
                old, new = ckpt.get(key), meta[key]
                if key == "data" and old is None:  # a run written before data records existed
                    continue
                if key == "train_config":
                    old = {k: v for k, v in old.items() if k != "steps"}
                    new = {k: v for k, v in new.items() if k != "steps"}
                if old != new:
                    raise ValueError(f"{out} holds a run with another {key}: {old} (requested {new})")
            model.load_state_dict(ckpt["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            _set_rng_state(ckpt["rng"][rank], gens)
            step, elapsed = int(ckpt["step"]), float(ckpt["elapsed_s"])
        if accelerator.is_main_process:
            atomic_write_text(out / "config.json", json.dumps(meta, indent=2))
        model, opt = accelerator.prepare(model, opt)  # DDP when launched with several processes
        core = accelerator.unwrap_model(model)
        rows = _read_rows(csv_path, step) if accelerator.is_main_process else []

        def save():
            states = [_rng_state(gens)]
            if world > 1:  # every process's RNG state goes into the one checkpoint
                from accelerate.utils import gather_object

                states = gather_object(states)
            if accelerator.is_main_process:
                blob = {**core.checkpoint_blob(), **meta, "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "step": step, "elapsed_s": elapsed, "rng": states}
                atomic_torch_save(blob, ckpt_path)
                lines = [",".join(CSV_FIELDS)] + [",".join(str(r[k]) for k in CSV_FIELDS) for r in rows]
                atomic_write_text(csv_path, "\n".join(lines) + "\n")

        accelerator.wait_for_everyone()
        had_checkpoint = ckpt_path.exists()  # decided before any save, identically on every process
        start_step = step
        model.train()
        stop_at = train_cfg.steps if max_steps is None else min(train_cfg.steps, int(max_steps))
        t_start = time.perf_counter() - elapsed
        bar = tqdm(total=stop_at, initial=step, desc="train MDIC", leave=False,
                   disable=not (progress and accelerator.is_main_process and sys.stderr.isatty()))
        while step < stop_at:
            idx = torch.randint(0, len(bank), (train_cfg.batch_size,), generator=gens["data"])
            batch = bank.batch(idx[rank * per:(rank + 1) * per])
            batch = {k: (v.to(accelerator.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            terms = model(batch, generator=gens["noise"])
            opt.zero_grad(set_to_none=True)
            accelerator.backward(terms["loss"])
            if train_cfg.clip_grad > 0:
                accelerator.clip_grad_norm_(params, train_cfg.clip_grad)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            step += 1
            elapsed = time.perf_counter() - t_start
            bar.update(1)
            if step % train_cfg.log_every == 0 or step == stop_at:
                t = {k: float(v.detach().mean()) for k, v in terms.items() if torch.is_tensor(v)}
                row = {"step": step, "loss": f"{t['loss']:.6g}", "vq": f"{t['vq']:.6g}", "diff": f"{t['diff']:.6g}",
                       "mask": f"{t.get('mask', float('nan')):.6g}", "rate_bpp_estimated": f"{t['rate_bpp']:.6g}",
                       "mask_fraction": f"{t['mask_fraction']:.4f}", "lr": f"{lr:.4g}", "elapsed_s": f"{elapsed:.2f}"}
                rows.append(row)
                bar.set_postfix(loss=row["loss"], diff=row["diff"])
                if verbose and accelerator.is_main_process:
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            if step % train_cfg.ckpt_every == 0 or step == stop_at:
                save()
        bar.close()
        if step == start_step and not had_checkpoint:  # nothing to run (max_steps reached): still leave a checkpoint
            save()
        checksum = torch.tensor([float(sum(p.detach().double().sum() for p in core.parameters()))],
                                dtype=torch.float64, device=accelerator.device)
        checksums = accelerator.gather(checksum).tolist()
        accelerator.wait_for_everyone()
    finally:
        torch.set_num_threads(prev_threads)
    return {"out_dir": str(out), "step": step, "elapsed_s": elapsed, "num_processes": world,
            "param_checksums": checksums, **(rows[-1] if rows else {})}


def main(argv=None) -> int:
    """``python -m mdic_lab.models.mdic.training --preset smoke --out DIR [--steps N] [--max-steps N]
    [--data kitti:/data/kitti --captioner Salesforce/blip2-opt-2.7b]``."""
    p = argparse.ArgumentParser(prog="mdic_lab.models.mdic.training", description="Train MDIC (accelerate).")
    p.add_argument("--preset", default="lab")
    p.add_argument("--out", required=True)
    p.add_argument("--variant", default="full")
    p.add_argument("--steps", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--rate-point", type=int)
    p.add_argument("--backbone-root")
    p.add_argument("--data", default="synthetic", help="synthetic | kitti:/path/to/kitti | cityscapes:/path/to/cityscapes")
    p.add_argument("--captioner", help="BLIP-2 folder or hub id captioning the side views (required for real data)")
    p.add_argument("--caption-cache", help="caption cache folder (default ~/.cache/mdic_lab/captions)")
    p.add_argument("--data-limit", type=int, help="train on the first N pairs of the split (default: all; "
                   "synthetic: train_length)")
    p.add_argument("--summary-json", help="write the returned summary here (process 0)")
    a = p.parse_args(argv)
    cfg = (MDICConfig.rate_point(a.preset, a.rate_point, variant=a.variant) if a.rate_point is not None
           else MDICConfig.preset(a.preset, variant=a.variant))
    tcfg = MDICTrainConfig.preset(a.preset, **({"steps": a.steps} if a.steps else {}))
    from mdic_lab.data.sources import open_pairs, parse_data_spec

    spec = parse_data_spec(a.data)
    length = a.data_limit if a.data_limit is not None else (None if spec.is_real else tcfg.train_length)
    data = open_pairs(spec, "train", size=cfg.image_size, captioner=a.captioner, length=length, seed=tcfg.data_seed,
                      caption_cache=a.caption_cache)
    res = train_mdic(cfg, tcfg, a.out, preset=a.preset, dataset=data, backbone_root=a.backbone_root,
                     max_steps=a.max_steps, verbose=True)
    res = {**res, "data": str(spec), "captions": data.caption_stats, "rank": int(os.environ.get("RANK", "0"))}
    if a.summary_json and int(os.environ.get("RANK", "0")) == 0:
        Path(a.summary_json).write_text(json.dumps(res, indent=2))
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
