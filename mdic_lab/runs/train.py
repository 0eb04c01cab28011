"""One training loop for every codec, through Hugging Face ``accelerate``.

The codec supplies its data bank, model, optimiser, learning-rate schedule and the loss of
one step's batch (:mod:`.codecs`); this loop does the rest the same way for all of them:
seeded weight initialisation, resume, logging, atomic checkpoints, DDP.

Determinism.  Weights are initialised under ``torch.random.fork_rng`` from the training
seed; batches and training noise come from the codec's ``torch.Generator`` objects.  Those
generators and the global torch / numpy / python RNG states go into every checkpoint, so a
run stopped (``max_steps``, or killed) and resumed ends, on CPU, bit-identical to an
uninterrupted one (``tests/test_runs.py``).  The learning-rate schedule always follows the
configured ``steps``.

Distributed.  ``batch_size`` is the global batch: every process draws the same global
index list and takes its slice, DDP averages the gradients, process 0 writes the folder.
Every codec gets this: ``accelerate launch --multi_gpu --num_processes N -m mdic_lab.cli
train --codec ndic --preset paper --out runs/x`` on GPUs, ``torchrun --standalone
--nproc_per_node N -m mdic_lab.cli train ...`` on CPUs (gloo).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from mdic_lab import __version__
from mdic_lab.progress import progress_bar

from .rundir import RunDir, RunError, git_commit

__all__ = ["train_run", "training_dataset"]


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


def training_dataset(run, data="synthetic", *, captioner=None, caption_cache=None, data_limit: int | None = None):
    """The train split of the data spec ``data`` for ``run`` (synthetic: ``train_length`` pairs unless limited)."""
    from mdic_lab.data.sources import parse_data_spec
    from mdic_lab.registry import get_codec

    spec = parse_data_spec(data)
    if data_limit is not None and (isinstance(data_limit, bool) or not isinstance(data_limit, int) or data_limit < 1):
        raise ValueError(f"data_limit must be a positive int, got {data_limit!r}")
    length = data_limit if data_limit is not None else (None if spec.is_real else run.train.train_length)
    hooks = get_codec(run.codec).load_hooks()
    return hooks.open_data(run, spec, "train", length=length, captioner=captioner, caption_cache=caption_cache)


def _record(run, bank, hooks, context, world: int) -> dict:
    return {"format": 1, **run.to_dict(), "data": bank.source, **hooks.record(context), "num_processes": world,
            "package_version": __version__, "git_commit": git_commit()}


_MUST_MATCH = ("codec", "model_config", "train_config", "data", "num_processes")


def _check_same_run(out: Path, old: dict, new: dict) -> None:
    for key in _MUST_MATCH:
        a, b = old.get(key), new.get(key)
        if key == "train_config":  # the step budget may grow on resume
            a = {k: v for k, v in (a or {}).items() if k != "steps"}
            b = {k: v for k, v in (b or {}).items() if k != "steps"}
        if a != b:
            raise RunError(f"{out} holds a run with another {key}: {old.get(key)} (requested {new.get(key)})")


def train_run(run, out_dir, *, dataset=None, data="synthetic", captioner=None, caption_cache=None,
              data_limit: int | None = None, resume: bool = True, max_steps: int | None = None,
              progress: bool = True, verbose: bool = False, backbone_root=None, accelerator=None) -> dict:
    """Train (or resume) ``run`` (a :class:`mdic_lab.registry.RunConfig`) in the folder ``out_dir``.

    Parameters
    ----------
    run : RunConfig
        From :func:`mdic_lab.registry.resolve`.
    out_dir : path
        The run folder (:class:`.RunDir`).  A checkpoint there is resumed when ``resume``
        (codec, configs, data and process count must match; ``steps`` may grow), else it is
        an error.
    dataset : optional
        Ready pairs (e.g. :func:`mdic_lab.data.sources.open_pairs`); default: the train split
        of the data spec ``data`` (``"synthetic"``, ``"kitti:ROOT"``, ``"cityscapes:ROOT"``)
        with ``captioner`` (BLIP-2 folder / hub id, for codecs that read captions) and
        ``data_limit`` pairs.  Its description goes into ``config.json``.
    max_steps : int, optional
        Stop (after a checkpoint) at this absolute step; the schedule still follows
        ``run.train.steps``, so calling again continues exactly.
    progress, verbose : bool
        A progress bar (notebook widget / terminal / log lines) and every logged row printed.
    backbone_root : path, optional
        MDIC smoke/lab: where pretrained small backbones are cached.
    accelerator : accelerate.Accelerator, optional
        Default ``Accelerator(cpu=...)`` from the training config (``cpu`` field, default CPU);
        under ``accelerate launch`` / ``torchrun`` it joins the process group.

    Returns the last logged row with ``out_dir``, ``step``, ``elapsed_s``, ``num_processes``,
    one parameter checksum per process (equal under DDP), this process's ``rank`` and the
    caption-cache ``captions`` counts of ``dataset`` (``hits`` / ``misses``; ``None`` for ready banks).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    from mdic_lab.registry import RunConfig, get_codec

    if not isinstance(run, RunConfig):
        raise TypeError(f"run must be a RunConfig (mdic_lab.registry.resolve), got {type(run).__name__}")
    codec = get_codec(run.codec)
    hooks = codec.load_hooks()
    if accelerator is None:
        accelerator = Accelerator(cpu=getattr(run.train, "cpu", True),
                                  kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if run.train.batch_size % world:
        raise ValueError(f"batch_size {run.train.batch_size} must be divisible by the number of processes {world}")
    rd = RunDir(out_dir)
    if rd.has_checkpoint() and not resume:
        raise RunError(f"{rd.path} already holds a checkpoint; pass resume=True (CLI: --resume) or use another --out")
    if dataset is None:
        dataset = training_dataset(run, data, captioner=captioner, caption_cache=caption_cache, data_limit=data_limit)
    if main:
        rd.path.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(run.train.num_threads)
    try:
        context = hooks.context(run, accelerator=accelerator, backbone_root=backbone_root, progress=progress)
        if world > 1 and hasattr(dataset, "prepare_captions"):  # process 0 captions once, the others read its cache
            if main:
                dataset.prepare_captions()
            accelerator.wait_for_everyone()
            dataset.reload_captions()
        bank = hooks.bank(run, dataset, context)
        with torch.random.fork_rng():
            torch.manual_seed(run.train.seed)  # weight init only; the global state is restored on exit
            model = hooks.build(run, bank, context)
        record = _record(run, bank, hooks, context, world)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = hooks.optimizer(params, run)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, hooks.lr_lambda(run))
        gens = hooks.generators(run, rank, world)
        step, elapsed = 0, 0.0
        if rd.has_checkpoint():
            _check_same_run(rd.path, rd.read_record(), record)
            ckpt = rd.load_checkpoint()
            model.load_state_dict(ckpt["model"]["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            _set_rng_state(ckpt["rng"][rank], gens)
            step, elapsed = int(ckpt["step"]), float(ckpt["elapsed_s"])
        if main:
            rd.write_record(record)
        model, opt = accelerator.prepare(model, opt)  # DDP when launched with several processes
        core = accelerator.unwrap_model(model)
        fields = ["step", "loss", *hooks.log_fields, "lr", "elapsed_s"]
        rows = rd.read_metrics(step) if main else []

        def save():
            states = [_rng_state(gens)]
            if world > 1:  # every process's RNG state goes into the one checkpoint
                from accelerate.utils import gather_object

                states = gather_object(states)
            if main:  # metrics first: a kill between the two leaves rows past the checkpoint, which a resume drops
                rd.write_metrics(rows, fields)
                rd.save_checkpoint({"codec": run.codec, "model": hooks.model_state(core), "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "step": step, "elapsed_s": elapsed,
                                    "rng": states})

        accelerator.wait_for_everyone()
        had_checkpoint = rd.has_checkpoint()  # decided before any save, identically on every process
        start_step = step
        stop_at = run.train.steps if max_steps is None else min(run.train.steps, int(max_steps))
        model.train()
        t_start = time.perf_counter() - elapsed
        bar = progress_bar(stop_at, f"train {run.codec} ({run.preset}, {run.variant})", progress and main,
                           initial=step)
        while step < stop_at:
            hooks.begin_step(core, step, run)  # e.g. MDIC's τ schedule: a function of the step, so resumes match
            terms = hooks.loss(model, core, bank, gens, run, rank=rank, world=world, device=accelerator.device)
            opt.zero_grad(set_to_none=True)
            accelerator.backward(terms["loss"])
            if run.train.clip_grad > 0:
                accelerator.clip_grad_norm_(params, run.train.clip_grad)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            step += 1
            elapsed = time.perf_counter() - t_start
            bar.update(1)
            if step % run.train.log_every == 0 or step == stop_at:
                row = {"step": step, "loss": f"{float(terms['loss'].detach()):.6g}", **hooks.log_values(terms),
                       "lr": f"{lr:.4g}", "elapsed_s": f"{elapsed:.2f}"}
                rows.append(row)
                bar.set_postfix(loss=row["loss"], refresh=False)
                if verbose and main:
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            if step % run.train.ckpt_every == 0 or step == stop_at:
                save()
        bar.close()
        if step == start_step and not had_checkpoint:  # nothing to run: still leave a checkpoint
            save()
        checksum = torch.tensor([float(sum(p.detach().double().sum() for p in core.parameters()))],
                                dtype=torch.float64, device=accelerator.device)
        checksums = accelerator.gather(checksum).tolist()
        accelerator.wait_for_everyone()
    finally:
        torch.set_num_threads(prev_threads)
    last = rows[-1] if rows else {}
    return {"out_dir": str(rd.path), "codec": run.codec, "preset": run.preset, "variant": run.variant,
            "rate_point": run.rate_point, "step": step, "elapsed_s": elapsed, "num_processes": world,
            "train_pairs": len(bank), "data": bank.source.get("spec"), "param_checksums": checksums,
            "rank": rank, "captions": getattr(dataset, "caption_stats", None),
            **{k: v for k, v in last.items() if k not in ("step", "elapsed_s")}}
