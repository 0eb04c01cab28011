"""Sweep engine: overhead per cell over running the same cells in-process, and the 2-worker speed-up.

    python benchmarks/sweep.py [--cells 8] [--steps 250] [--codec ndic] [--repeats 2]

Prints one JSON object.  The cells are NDIC smoke runs with ``steps`` training steps (default
250: about 10 s of compute each on one core, so that two workers have something to share)
and a 2-image evaluation, over rate points 0/1 and seeds 0, 1, ...  Four timings, each of a
fresh Python process (so every one pays its own imports); the first three are repeated
``repeats`` times, interleaved, and the best (min) of each is used:

* ``inprocess_s``: the cells one after another through ``train_run`` + ``evaluate_run`` in
  one process, torch on 1 thread;
* ``sweep_w1_t1_s``: ``python -m mdic_lab.experiments.sweep`` with 1 worker of 1 thread;
* ``sweep_w2_t1_s``: 2 workers of 1 thread each (the threads rule on 2 cores);
* ``sweep_w1_rule_s``: 1 worker with the threads rule (``cores // workers`` threads).

``overhead_per_cell_s = (sweep_w1_t1_s - inprocess_s) / cells`` (goal <= 3 s) and
``ratio_2_vs_1_workers = sweep_w2_t1_s / sweep_w1_t1_s`` (goal <= 0.6); the ratio against
the threads rule's 1-worker run is reported beside it.  The machine's load average is
recorded: on a shared machine the figures move with the other users' load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INPROCESS = r"""
import dataclasses, sys, torch
from mdic_lab.experiments.sweep import load_spec
from mdic_lab.runs import train_run, evaluate_run
spec = load_spec(sys.argv[1])
torch.set_num_threads(1)
for cell in spec.cells:
    run = cell.resolve()
    run = dataclasses.replace(run, train=run.train.replace(num_threads=1))
    d = sys.argv[2] + "/" + cell.name
    train_run(run, d, data=spec.data, progress=False)
    ev = spec.eval
    evaluate_run(d, split=ev["split"], limit=ev["limit"], data=spec.data, seed=ev["seed"],
                 num_inference_steps=ev["num_inference_steps"], use_lpips=ev["use_lpips"], tag=ev["tag"])
"""


def _spec_text(codec: str, steps: int, cells: int, threads: int | None) -> str:
    seeds = list(range((cells + 1) // 2))
    text = (f'name = "bench"\n[grid]\ncodec = "{codec}"\npreset = "smoke"\nrate_point = [0, 1]\nseed = {seeds}\n'
            f'[grid.overrides]\nsteps = {steps}\nlog_every = {steps}\nckpt_every = {steps}\n[eval]\nlimit = 2\n')
    if threads is not None:
        text += f"[executor.local]\nthreads = {threads}\n"
    return text


def _timed(cmd, env) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-2000:]}\n"
                           f"{out.stderr[-4000:]}")
    return wall


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=8)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--codec", default="ndic", choices=["ndic", "hyperprior"])
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the best (min) of each is used")
    p.add_argument("--no-rule", action="store_true", help="skip the 1-worker run with the threads rule")
    a = p.parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    load_before = os.getloadavg()
    res = {"cells": a.cells, "codec": a.codec, "preset": "smoke", "steps": a.steps, "eval_limit": 2,
           "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
           "repeats": a.repeats}
    t1 = tmp / "t1.toml"
    t1.write_text(_spec_text(a.codec, a.steps, a.cells, 1))
    rule = tmp / "rule.toml"
    rule.write_text(_spec_text(a.codec, a.steps, a.cells, None))
    sweep = [sys.executable, "-m", "mdic_lab.experiments.sweep"]
    runs = {"inprocess_s": [], "sweep_w1_t1_s": [], "sweep_w2_t1_s": []}
    for r in range(a.repeats):  # interleaved, so that a change of the machine's load hits all three alike
        runs["inprocess_s"].append(_timed([sys.executable, "-c", INPROCESS, str(t1), str(tmp / f"inprocess{r}")],
                                          env))
        for w in (1, 2):
            runs[f"sweep_w{w}_t1_s"].append(_timed(sweep + [str(t1), "--out", str(tmp / f"w{w}-{r}"), "--workers",
                                                            str(w), "--no-progress"], env))
    for k, v in runs.items():
        res[k] = min(v)
        res[k.replace("_s", "_all_s")] = [round(x, 2) for x in v]
    res["overhead_per_cell_s"] = (res["sweep_w1_t1_s"] - res["inprocess_s"]) / a.cells
    res["ratio_2_vs_1_workers"] = res["sweep_w2_t1_s"] / res["sweep_w1_t1_s"]
    if not a.no_rule:
        res["sweep_w1_rule_s"] = _timed(sweep + [str(rule), "--out", str(tmp / "w1rule"), "--workers", "1",
                                                 "--no-progress"], env)
        res["ratio_2_vs_1_workers_threads_rule"] = res["sweep_w2_t1_s"] / res["sweep_w1_rule_s"]
    res["goals"] = {"overhead_per_cell_s<=3": res["overhead_per_cell_s"] <= 3.0,
                    "ratio_2_vs_1_workers<=0.6": res["ratio_2_vs_1_workers"] <= 0.6}
    res["loadavg_1min_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    res = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
