"""Sweeps (mdic_lab.experiments.sweep): same table under every executor, resume after SIGKILL,
failure isolation, specs refused before any training, two sweeps on one folder.

Cells are hyperprior / NDIC smoke runs (a few seconds each): the engine does not depend on the
codec; the MDIC example specs are checked down to the resolved run configs (variants, rate points).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mdic_lab.config import ConfigError
from mdic_lab.experiments.sweep import (TIMING_COLUMNS, SweepSpecError, acquire_claim, claim_status, load_spec,
                                        run_sweep)

ROOT = Path(__file__).resolve().parents[1]


def _grid(**over):
    spec = {"name": "t", "grid": {"codec": ["hyperprior", "ndic"], "preset": "smoke", "rate_point": [0, 1]},
            "eval": {"limit": 2}}
    spec["grid"].update(over)
    return spec


def _rows(path, drop=TIMING_COLUMNS):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def _start_lines(cell_dir) -> int:
    log = Path(cell_dir) / "log.txt"
    return sum(" start " in ln for ln in log.read_text().splitlines() if ln.startswith("=== cell ")) \
        if log.is_file() else 0


def _children(pid) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")  # zombie: exited


def _toml(path, spec_text):
    path.write_text(spec_text)
    return path


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


HP_SPEC = """
name = "hp"
[grid]
codec = ["hyperprior"]
preset = "smoke"
rate_point = [0, 1]
seed = [0, 1]
[grid.overrides]
steps = [{steps}]
[eval]
limit = 2
[executor.local]
threads = 1  # two sweeps (or a sweep and pytest) share the cores: no oversubscription
"""


# ----------------------------------------------------------------------------- 1. executors agree
def test_same_cells_table_under_local_dask_and_submitit(tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra (pip install -e .[cluster])")
    pytest.importorskip("submitit", reason="the cluster extra (pip install -e .[cluster])")
    spec = load_spec(_grid())
    assert len(spec.cells) == 4
    tables, images = {}, {}
    for ex, kw in (("local", {}), ("dask", {"processes": True}), ("submitit", {"cluster": "local"})):
        res = run_sweep(spec, out=tmp_path / ex, executor=ex, workers=2, progress=False, **kw)
        assert res.failed == [] and sorted(res.done) == sorted(res.cells) and sorted(res.ran) == sorted(res.cells)
        assert res.executor["workers"] == 2
        tables[ex] = _rows(res.cells_csv)
        images[ex] = _rows(res.images_csv)
        manifest = json.loads((tmp_path / ex / "manifest.json").read_text())
        assert manifest["package_versions"]["torch"] and manifest["machine"]["hostname"]
        assert manifest["runs"][-1]["executor"]["executor"] == ex and manifest["specs"][0]["hash"] == spec.hash
        for cell in spec.cells:  # every cell: its own log, run folder, threads from the executor
            d = tmp_path / ex / "cells" / cell.name
            assert _start_lines(d) == 1 and (d / "checkpoint.pt").is_file() and not (d / "claim.lock").exists()
            rec = json.loads((d / "config.json").read_text())
            assert rec["train_config"]["num_threads"] == res.executor["threads"]
    assert [r["status"] for r in tables["local"]] == ["done"] * 4
    assert all(r["psnr"] and r["bpp_coded"] and r["step"] == "4" for r in tables["local"])
    assert tables["local"] == tables["dask"] == tables["submitit"]
    assert images["local"] == images["dask"] == images["submitit"] and len(images["local"]) == 8
    # a second run of the same spec skips every cell and rewrites the same tables
    again = run_sweep(spec, out=tmp_path / "local", workers=2, progress=False)
    assert sorted(again.skipped) == sorted(c.cell_id for c in spec.cells)
    assert again.ran == [] and _rows(again.cells_csv) == tables["local"]


# ----------------------------------------------------------------------------- 2. resume after SIGKILL
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the worker processes through /proc")
def test_killed_sweep_resumes_without_redoing_finished_cells(tmp_path):
    spec_path = _toml(tmp_path / "hp.toml", HP_SPEC.format(steps=12))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mdic_lab.experiments.sweep", str(spec_path), "--out", str(out),
                             "--workers", "1", "--no-progress"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not list(out.glob("cells/*/eval/test.json")):
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "no cell finished in time"
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the workers of the killed sweep notice within a second and exit; their claims are then stale (dead pid)
    assert workers
    t0 = time.time()
    while any(_alive(pid) for pid in workers):
        assert time.time() - t0 < 15, f"workers {workers} of the killed sweep still run"
        time.sleep(0.1)
    finished = {p.parent.parent: p.stat().st_mtime_ns for p in out.glob("cells/*/eval/test.json")}
    assert 1 <= len(finished) < 4
    res = run_sweep(load_spec(spec_path), out=out, workers=2, progress=False)
    assert res.failed == [] and len(res.skipped) == len(finished) and len(res.done) == 4 - len(finished)
    for d, mtime in finished.items():  # finished cells were not touched
        assert (d / "eval" / "test.json").stat().st_mtime_ns == mtime and _start_lines(d) == 1
    rows = _rows(res.cells_csv)
    assert [r["status"] for r in rows] == ["done"] * 4 and {r["step"] for r in rows} == {"12"}


# ----------------------------------------------------------------------------- 3. failure isolation
def test_failing_cell_is_isolated_listed_and_retried(tmp_path, capfd):
    # crop 40x40 passes the config checks but the hyperprior needs multiples of 64: it fails in training
    spec = load_spec({"name": "fail", "grid": {"codec": "hyperprior", "preset": "smoke",
                                               "overrides": {"crop": [[64, 64], [40, 40]]}}, "eval": {"limit": 2}})
    bad = next(c for c in spec.cells if c.overrides["crop"] == [40, 40])
    good = next(c for c in spec.cells if c.overrides["crop"] == [64, 64])
    out = tmp_path / "out"
    res = run_sweep(spec, out=out, workers=2, progress=True, log_interval=0.0)
    assert res.failed == [bad.cell_id] and res.done == [good.cell_id]
    assert "multiples of 64" in res.errors[bad.cell_id]
    err = (out / "cells" / bad.name / "error.txt").read_text()
    assert "Traceback" in err and "ValueError" in err
    assert "Traceback" in (out / "cells" / bad.name / "log.txt").read_text()
    assert (out / "cells" / good.name / "eval" / "test.json").is_file()
    rows = {r["cell_id"]: r for r in _rows(res.cells_csv)}
    assert rows[bad.cell_id]["status"] == "failed" and "multiples of 64" in rows[bad.cell_id]["error"]
    assert rows[good.cell_id]["status"] == "done"
    assert "cells finished" in capfd.readouterr().err  # plain progress lines: stderr is not a tty
    # the command line: exit status 1, the good cell skipped, the bad one tried again
    from mdic_lab.experiments.sweep import main

    spec_path = tmp_path / "fail.toml"
    spec_path.write_text('name = "fail"\n[grid]\ncodec = "hyperprior"\npreset = "smoke"\n'
                         '[grid.overrides]\ncrop = [[64, 64], [40, 40]]\n[eval]\nlimit = 2\n')
    assert main([str(spec_path), "--out", str(out), "--workers", "1", "--no-progress"]) == 1
    summary = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped"] == 1 and summary["ran"] == 1 and summary["failed"] == [bad.cell_id]
    assert _start_lines(out / "cells" / bad.name) == 2 and _start_lines(out / "cells" / good.name) == 1
    # another spec in the same folder is refused unless added (here: the good cell alone, already done)
    other = {"name": "good-only", "grid": {"codec": "hyperprior", "preset": "smoke",
                                           "overrides": {"crop": [[64, 64]]}}, "eval": {"limit": 2}}
    with pytest.raises(SweepSpecError, match="holds the cells of another spec.*--add"):
        run_sweep(other, out=out, progress=False)
    res2 = run_sweep(other, out=out, add=True, progress=False)
    assert res2.skipped == [good.cell_id] and res2.ran == [] and res2.failed == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["specs"]] == ["fail", "good-only"]
    assert (out / "spec.json").is_file() and (out / f"spec-{manifest['specs'][1]['hash']}.json").is_file()
    assert len(_rows(out / "cells.csv")) == 2


def test_launcher_trains_a_cell_on_two_processes(tmp_path):
    # what `launcher = "accelerate launch --multi_gpu --num_processes 4"` does on GPUs, here torchrun on CPUs (gloo)
    spec = load_spec({"name": "ddp", "grid": {"codec": "hyperprior", "preset": "smoke"}, "eval": {"limit": 1}})
    launcher = f"{sys.executable} -m torch.distributed.run --standalone --nproc_per_node 2"
    res = run_sweep(spec, out=tmp_path, workers=1, threads=1, launcher=launcher, progress=False)
    assert res.failed == [] and res.done == res.cells
    d = tmp_path / "cells" / spec.cells[0].name
    assert json.loads((d / "config.json").read_text())["num_processes"] == 2
    assert (d / "log.txt").read_text().count("threads=1 ") == 2 and (d / "eval" / "test.json").is_file()


# ----------------------------------------------------------------------------- 4. refused before training
@pytest.mark.parametrize("grid, match", [
    ({"codec": "jpeg"}, r"unknown codec 'jpeg' \(expected one of: hyperprior, ndic, mdic, taco\)"),
    ({"codec": "mdic", "variant": ["full", "no_txt"]}, r"unknown variant 'no_txt'.*no_text"),
    ({"preset": "huge"}, r"unknown preset 'huge'.*smoke, lab, paper"),
    ({"codec": "mdic", "rate_point": [0, 5]}, r"unknown rate point 5.*expected one of: 0, 1"),
    ({"overrides": {"gamma": [1, 2]}}, r"unknown field 'gamma'.*lmbda"),
    ({"overrides": {"steps": "many"}}, r"expects an int"),
    ({"seed": ["a"]}, r"grid.seed must hold ints"),
    ({"overrides": {"seed": [1]}}, r"set seed with grid.seed"),
    ({"colour": "red"}, r"unknown key 'colour' in \[grid\]"),
    ({"variant": {"mdic": ["full"]}}, r"not a codec of the grid"),
])
def test_bad_spec_is_refused_before_anything_runs(tmp_path, grid, match):
    spec = _grid(**grid)
    with pytest.raises(ConfigError, match=match):
        run_sweep(spec, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_bad_spec_keys_executor_and_workers_are_refused(tmp_path):
    with pytest.raises(SweepSpecError, match=r"unknown key 'evaluation'.*expected one of: name"):
        load_spec({**_grid(), "evaluation": {}})
    with pytest.raises(SweepSpecError, match=r"unknown key 'limits' in \[eval\]"):
        load_spec({**_grid(), "eval": {"limits": 2}})
    with pytest.raises(SweepSpecError, match=r"unknown data kind 'imagenet'"):
        load_spec({**_grid(), "data": "imagenet:/x"})
    with pytest.raises(SweepSpecError, match=r"\[executor.slurm\].*unknown executor 'slurm'"):
        load_spec({**_grid(), "executor": {"slurm": {}}})
    spec = load_spec(_grid())
    assert load_spec(spec.to_dict()).hash == spec.hash  # the normalised spec (manifest.json) reads back
    assert [c.cell_id for c in load_spec(spec.to_dict()).cells] == [c.cell_id for c in spec.cells]
    # reuse_latents changes how cells are evaluated, not what: not part of the spec or the cells' identity
    reuse = load_spec({**_grid(), "eval": {**_grid().get("eval", {}), "reuse_latents": True}})
    assert reuse.eval["reuse_latents"] and reuse.hash == spec.hash
    assert [c.cell_id for c in reuse.cells] == [c.cell_id for c in spec.cells]
    with pytest.raises(SweepSpecError, match=r"eval.reuse_latents must be true or false"):
        load_spec({**_grid(), "eval": {"reuse_latents": "yes"}})
    with pytest.raises(ConfigError, match=r"unknown executor 'slurm' \(expected one of: local, dask, submitit\)"):
        run_sweep(spec, out=tmp_path / "out", executor="slurm")
    with pytest.raises(ConfigError, match=r"unknown option 'nodes' of the dask executor"):
        run_sweep(spec, out=tmp_path / "out", executor="dask", nodes=2)
    with pytest.raises(ConfigError, match=r"workers must be a positive int"):
        run_sweep(spec, out=tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()
    # the example specs load: 4 MDIC smoke cells, 42 lab cells
    smoke, lab = load_spec(ROOT / "ablations/specs/smoke.toml"), load_spec(ROOT / "ablations/specs/lab.toml")
    assert len(smoke.cells) == 4 and {c.variant for c in smoke.cells} == {"full", "no_text"}
    for c in smoke.cells:  # variant, rate point (codebook size), seed and overrides reach the run config
        run = c.resolve()
        assert run.model.variant == c.variant and run.train.steps == 6 and run.train.seed == 0
        assert run.model.codebook_size == (16, 64)[c.rate_point]
    assert len(lab.cells) == 42 and len({c.cell_id for c in lab.cells}) == 42


# ----------------------------------------------------------------------------- 5. two sweeps, one folder
def test_claims_live_stale_and_taken_over(tmp_path):
    d = tmp_path / "cell"
    d.mkdir()
    first = acquire_claim(d, claim_timeout=60, heartbeat=60)
    assert claim_status(d / "claim.lock", 60)[0] == "live"
    assert isinstance(acquire_claim(d, claim_timeout=60), dict)  # held by a live process: refused
    first.release()
    assert claim_status(d / "claim.lock", 60)[0] == "free"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid of this host that is gone
    (d / "claim.lock").write_text(json.dumps({"pid": dead.pid, "host": __import__("socket").gethostname(),
                                              "token": "x"}))
    assert claim_status(d / "claim.lock", 60)[0] == "stale"
    taken = acquire_claim(d, claim_timeout=60, heartbeat=60)
    assert not isinstance(taken, dict) and json.loads((d / "claim.lock").read_text())["pid"] == os.getpid()
    taken.release()
    (d / "claim.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "token": "y"}))
    assert claim_status(d / "claim.lock", 60)[0] == "live"
    old = time.time() - 120
    os.utime(d / "claim.lock", (old, old))
    assert claim_status(d / "claim.lock", 60)[0] == "stale"  # not refreshed for longer than the timeout


def test_two_concurrent_sweeps_on_one_folder_run_each_cell_once(tmp_path):
    spec_path = _toml(tmp_path / "hp.toml", HP_SPEC.format(steps=4))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mdic_lab.experiments.sweep", str(spec_path), "--out", str(out), "--workers", "1",
           "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    summaries = [json.loads(o[0].decode().strip().splitlines()[-1]) for o in outs]
    assert sum(s["ran"] for s in summaries) == 4  # every cell run by exactly one of the two
    assert all(s["done"] + s["skipped"] == 4 and s["failed"] == [] for s in summaries)
    spec = load_spec(spec_path)
    for cell in spec.cells:
        d = out / "cells" / cell.name
        assert _start_lines(d) == 1 and (d / "eval" / "test.json").is_file() and not (d / "claim.lock").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["specs"]) == 1 and len(manifest["runs"]) == 2
    assert [r["status"] for r in _rows(out / "cells.csv")] == ["done"] * 4


def test_a_list_of_grids_unites_their_cells_and_reads_back(tmp_path):
    """Several grids ([[grid]] in TOML): the spec's cells are the union, duplicates dropped, in grid order;
    the normalised spec reads back to the same cells; a bad grid is named by its index."""
    one = {"codec": "ndic", "preset": "smoke", "rate_point": [0, 1], "overrides": {"steps": 3}}
    bundle = {"codec": "ndic", "preset": "smoke", "rate_point": [0], "overrides": {"steps": 3, "lr": 0.002, "lmbda": 0.01}}
    spec = load_spec({"name": "u", "grid": [one, bundle, one], "eval": {"limit": 2}})
    singles = [load_spec({"name": "u", "grid": g, "eval": {"limit": 2}}).cells for g in (one, bundle)]
    assert [c.cell_id for c in spec.cells] == [c.cell_id for c in singles[0] + singles[1]]
    assert spec.cells[-1].overrides == {"lmbda": 0.01, "lr": 0.002, "steps": 3}  # the bundle: both fields at once
    back = load_spec(spec.to_dict())
    assert back.hash == spec.hash and [c.cell_id for c in back.cells] == [c.cell_id for c in spec.cells]
    assert load_spec({"name": "u", "grid": [one], "eval": {"limit": 2}}).hash == \
        load_spec({"name": "u", "grid": one, "eval": {"limit": 2}}).hash  # a list of one grid is that grid
    toml = _toml(tmp_path / "u.toml", '[[grid]]\ncodec = "ndic"\npreset = "smoke"\n'
                                      '[[grid]]\ncodec = "hyperprior"\npreset = "smoke"\n')
    assert [c.codec for c in load_spec(toml).cells] == ["ndic", "hyperprior"]
    with pytest.raises(SweepSpecError, match=r"'u, grid 1'.*unknown codec 'jpeg'"):
        load_spec({"name": "u", "grid": [one, {"codec": "jpeg", "preset": "smoke"}]})
    with pytest.raises(SweepSpecError, match="grid is an empty list"):
        load_spec({"name": "u", "grid": []})


# ----------------------------------------------------------------------------- 7. a net still training
def test_a_cell_whose_evaluation_would_wait_for_the_segnet_is_evaluated_after_the_others(tmp_path, monkeypatch):
    """While another process trains the segmentation net (it holds the net's lock), a trained cell puts off
    its mIoU evaluation once instead of leaving its core idle: the next cell trains meanwhile, and the first
    is evaluated afterwards without being trained again."""
    import threading

    import torch

    from mdic_lab.data.synthetic import default_cache_dir
    from mdic_lab.metrics.segnet import SegNet, SegNetConfig, _save, _training_lock, segnet_cache_path
    from mdic_lab.runs import RunDir

    world = default_cache_dir()  # the synthetic world already generated, under a fresh segnet cache
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / world.name).symlink_to(world, target_is_directory=True)
    monkeypatch.setenv("MDIC_LAB_CACHE", str(cache))  # the spawned workers inherit it
    assert default_cache_dir() == cache / world.name
    spec = load_spec({"name": "miou", "grid": {"codec": "hyperprior", "preset": "smoke", "rate_point": [0, 1]},
                      "eval": {"limit": 2, "use_miou": True}})
    first, second = (tmp_path / "out" / "cells" / c.name for c in spec.cells)  # run in this order (1 worker)
    net_path = segnet_cache_path(SegNetConfig())
    held, done = threading.Event(), threading.Event()

    def trainer():  # "another process" training the net: holds its lock, saves a net, lets go
        with _training_lock(net_path):
            held.set()
            deadline = time.time() + 300
            while time.time() < deadline and "evaluation deferred" not in _log(first):
                time.sleep(0.2)
            torch.manual_seed(0)
            _save(SegNet(SegNetConfig()), net_path)  # an untrained net: this checks the scheduling, not a score
        done.set()

    t = threading.Thread(target=trainer, daemon=True)
    t.start()
    assert held.wait(30)
    res = run_sweep(spec, out=tmp_path / "out", workers=1, progress=False)
    t.join(30)
    assert done.is_set() and res.done == [c.cell_id for c in spec.cells] and not res.failed
    log = _log(first)
    assert log.count("=== cell") == 4 and log.count("start") == 2 and "evaluation deferred" in log
    assert _log(second).count("start") == 1 and "deferred" not in _log(second)
    # the first cell was evaluated after the second one finished, from its one training
    assert (first / "eval" / "test.json").stat().st_mtime > (second / "eval" / "test.json").stat().st_mtime
    assert len(RunDir(first).read_metrics()) == len(RunDir(second).read_metrics())
    rows = json.loads((first / "eval" / "test.json").read_text())
    assert 0.0 <= rows["miou"] <= 1.0


def _log(cell_dir):
    p = Path(cell_dir) / "log.txt"
    return p.read_text() if p.is_file() else ""
