"""MDIC next to NDIC on the lab preset: training speed, coding speed, memory, coded rate, quality.

Prints one JSON object per model with ``model``, ``train_steps_per_s``, ``encode_s``,
``decode_s_5_steps``, ``decode_s_10_steps`` (MDIC's DDIM steps, one pair at a time; NDIC has none
and reports ``decode_s`` under both keys' place as ``null`` plus ``decode_s``),
``decode_s_{5,10}_steps_batched`` (MDIC: the same pairs decoded as one batch, time per image;
``batched_max_abs_diff``: how far those images are from the unbatched ones), ``peak_mem_mb`` (peak
resident memory of the process that trained and coded that model, so each model runs in its
own child process), ``bpp`` (CODED: container bytes × 8 / pixels), ``bpp_estimated``,
``psnr``, ``ms_ssim`` (means over ``--n-eval`` synthetic test pairs at 128×256).

Usage::

    python benchmarks/mdic.py --quick                    # a few training steps per model (minutes)
    python benchmarks/mdic.py --mdic-run RUN --ndic-run RUN   # trained runs: measure speed and quality

Training speed is measured on fresh steps either way (``--train-steps``; with a run folder the
steps are taken in a scratch folder, the run is not modified).  Times are wall-clock seconds
on this machine with ``--threads`` torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _mean(v):
    v = [float(x) for x in v if x == x]
    return sum(v) / len(v) if v else float("nan")


def bench_mdic(args) -> dict:
    import torch

    from mdic_lab import metrics as M
    from mdic_lab.data.synthetic import SyntheticStereo
    from mdic_lab.models.mdic.pretrain import load_or_pretrain_backbone
    from mdic_lab.registry import resolve
    from mdic_lab.runs.coding import load_run
    from mdic_lab.runs.data import LatentBank
    from mdic_lab.runs.train import train_run

    run = resolve("mdic", "lab", overrides={"steps": args.train_steps, "train_length": args.train_length,
                                            "ckpt_every": 10 ** 6, "log_every": 10 ** 6,
                                            "num_threads": args.threads})
    cfg = run.model
    with tempfile.TemporaryDirectory() as tmp:
        bb = load_or_pretrain_backbone(cfg, "lab", progress=False)  # cached after the first run
        ds_train = SyntheticStereo("train", size=cfg.image_size, length=args.train_length)
        bank = LatentBank(ds_train, bb)  # latents computed once, outside the timed steps
        t0 = time.perf_counter()
        train_run(run, Path(tmp) / "run", dataset=bank, progress=False)
        steps_per_s = args.train_steps / (time.perf_counter() - t0)
        model, _, _ = load_run(args.mdic_run if args.mdic_run else Path(tmp) / "run")
    torch.set_num_threads(args.threads)
    ds = SyntheticStereo("test", size=tuple(model.config.image_size), length=args.n_eval)
    enc, d5, d10, bpp, psnr, ms = [], [], [], [], [], []
    for i in range(args.n_eval):
        it = ds[i]
        x, y = it["left"][None], it["right"][None]
        t0 = time.perf_counter()
        s = model.compress(x)["strings"]
        t1 = time.perf_counter()
        model.decompress(s, y, [it["caption"]], seed=0, num_inference_steps=5)
        t2 = time.perf_counter()
        xh = model.decompress(s, y, [it["caption"]], seed=0, num_inference_steps=10)
        t3 = time.perf_counter()
        enc.append(t1 - t0), d5.append(t2 - t1), d10.append(t3 - t2)
        bpp.append(model.bpp(s)[0]), psnr.append(float(M.psnr(xh, x))), ms.append(float(M.ms_ssim(xh, x)))
    # the same pairs decoded as one batch: time per image, and the images equal the unbatched ones
    items = [ds[i] for i in range(args.n_eval)]
    xb, yb = torch.stack([it["left"] for it in items]), torch.stack([it["right"] for it in items])
    caps = [it["caption"] for it in items]
    sb = model.compress(xb)["strings"]
    batched = {}
    for steps in (5, 10):
        t0 = time.perf_counter()
        xhb = model.decompress(sb, yb, caps, seed=0, num_inference_steps=steps)
        batched[steps] = (time.perf_counter() - t0) / args.n_eval
    gap = float((xhb - torch.cat([model.decompress(model.compress(it["left"][None])["strings"], it["right"][None],
                                                   [it["caption"]], seed=0, num_inference_steps=10)
                                  for it in items])).abs().max())
    return {"model": "mdic", "preset": "lab", "weights": args.mdic_run or f"{args.train_steps} fresh steps",
            "train_steps_per_s": steps_per_s, "train_batch": run.train.batch_size, "encode_s": _mean(enc),
            "decode_s_5_steps": _mean(d5), "decode_s_10_steps": _mean(d10),
            "decode_s_5_steps_batched": batched[5], "decode_s_10_steps_batched": batched[10],
            "batch": args.n_eval, "batched_max_abs_diff": gap, "peak_mem_mb": _peak_mb(),
            "bpp": _mean(bpp), "psnr": _mean(psnr), "ms_ssim": _mean(ms), "n_eval": args.n_eval,
            "threads": args.threads}


def bench_ndic(args) -> dict:
    import torch

    from mdic_lab.data.sources import parse_data_spec
    from mdic_lab.registry import resolve
    from mdic_lab.runs.coding import load_run
    from mdic_lab.runs.evaluate import evaluate_model, summarize
    from mdic_lab.runs.train import train_run, training_dataset

    run = resolve("ndic", "lab", overrides={"steps": args.train_steps, "train_length": args.train_length,
                                            "ckpt_every": 10 ** 6, "log_every": 10 ** 6,
                                            "num_threads": args.threads})
    with tempfile.TemporaryDirectory() as tmp:
        ds_train = training_dataset(run)  # the first train_length synthetic train pairs
        t0 = time.perf_counter()
        train_run(run, Path(tmp) / "run", dataset=ds_train, progress=False)
        steps_per_s = args.train_steps / (time.perf_counter() - t0)
        model, trained, hooks = load_run(args.ndic_run if args.ndic_run else Path(tmp) / "run")
    torch.set_num_threads(args.threads)
    ds = hooks.open_data(run, parse_data_spec("synthetic"), "test", length=args.n_eval)
    s = summarize(evaluate_model(model, hooks, ds, limit=args.n_eval, use_lpips=False))
    return {"model": "ndic", "preset": "lab", "weights": args.ndic_run or f"{args.train_steps} fresh steps",
            "train_steps_per_s": steps_per_s, "train_batch": run.train.batch_size, "encode_s": s["encode_s"],
            "decode_s_5_steps": None, "decode_s_10_steps": None, "decode_s": s["decode_s"],
            "peak_mem_mb": _peak_mb(), "bpp": s["bpp_coded"], "bpp_estimated": s["bpp_estimated"],
            "psnr": s["psnr"], "ms_ssim": s["ms_ssim"], "n_eval": args.n_eval, "threads": args.threads,
            "lmbda": trained.train.lmbda}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps and pairs (a smoke check of the benchmark)")
    ap.add_argument("--mdic-run", help="trained MDIC run folder (else: the freshly trained weights)")
    ap.add_argument("--ndic-run", help="trained NDIC run folder (else: the freshly trained weights)")
    ap.add_argument("--train-steps", type=int, default=None, help="steps timed per model (default 20; quick 4)")
    ap.add_argument("--train-length", type=int, default=None, help="training pairs (default 128; quick 16)")
    ap.add_argument("--n-eval", type=int, default=None, help="test pairs coded (default 8; quick 2)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["mdic", "ndic"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.train_steps = args.train_steps or (4 if args.quick else 20)
    args.train_length = args.train_length or (16 if args.quick else 128)
    args.n_eval = args.n_eval or (2 if args.quick else 8)
    if args.only:
        res = bench_mdic(args) if args.only == "mdic" else bench_ndic(args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    base = [sys.executable, str(Path(__file__).resolve())] + [a for a in (argv if argv is not None else sys.argv[1:])]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    for name in ("mdic", "ndic"):  # one process per model: peak memory is that model's
        r = subprocess.run(base + ["--only", name], capture_output=True, text=True, env=env, cwd=ROOT)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        if r.returncode != 0 or not lines:
            print(json.dumps({"model": name, "error": (r.stderr or r.stdout).strip().splitlines()[-1:]}), flush=True)
            continue
        print(lines[-1][len("RESULT "):], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
