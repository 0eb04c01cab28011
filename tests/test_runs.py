"""The run stack: every registered codec trains, resumes and evaluates through the same functions."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mdic_lab.config import ConfigError
from mdic_lab.registry import CODECS, get_codec, resolve
from mdic_lab.runs import RunDir, RunError
from mdic_lab.runs.evaluate import EVAL_FIELDS, evaluate_run
from mdic_lab.runs.train import train_run

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def backbone_root(tmp_path_factory):
    return tmp_path_factory.mktemp("backbones")


def _weights(run_dir) -> dict:
    return RunDir(run_dir).load_checkpoint()["model"]["state_dict"]


def _same_weights(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("codec", list(CODECS))
def test_every_codec_trains_resumes_and_evaluates(tmp_path, backbone_root, codec):
    run = resolve(codec, "smoke", rate_point=0, overrides={"steps": 4, "log_every": 1, "ckpt_every": 10})
    hooks = get_codec(codec).load_hooks()
    full = train_run(run, tmp_path / "full", progress=False, backbone_root=backbone_root)
    assert full["step"] == 4 and full["codec"] == codec
    half = train_run(run, tmp_path / "sliced", max_steps=2, progress=False, backbone_root=backbone_root)
    assert half["step"] == 2 and RunDir(tmp_path / "sliced").load_checkpoint()["step"] == 2
    rest = train_run(run, tmp_path / "sliced", progress=False, backbone_root=backbone_root)
    assert rest["step"] == 4
    assert _same_weights(tmp_path / "full", tmp_path / "sliced")  # stopped + resumed = uninterrupted
    rd = RunDir(tmp_path / "sliced")
    rows = rd.read_metrics()
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert list(rows[0]) == ["step", "loss", *hooks.log_fields, "lr", "elapsed_s"]
    assert rows == [{**r, "elapsed_s": r2["elapsed_s"]} for r, r2 in zip(RunDir(tmp_path / "full").read_metrics(), rows)]
    rec = rd.read_record()
    assert rec["codec"] == codec and rec["preset"] == "smoke" and rec["rate_point"] == 0
    assert rec["model_config"]["_class"] == type(run.model).__name__ and rec["data"]["spec"] == "synthetic"
    assert rec["package_version"] and "git_commit" in rec
    assert rd.run_config() == run

    summary = evaluate_run(tmp_path / "sliced", limit=2, use_lpips=False, num_inference_steps=2)
    assert summary["n"] == 2 and summary["all_round_trip"] and summary["codec"] == codec
    saved = rd.read_eval_summary("test")
    assert saved["n"] == 2 and saved["bpp_coded"] == pytest.approx(summary["bpp_coded"])
    erows = rd.read_eval_rows("test")
    assert list(erows[0]) == EVAL_FIELDS and len(erows) == 2
    for r in erows:  # the coded rate counts every byte of the container: above the payload and the estimate
        assert float(r["bpp_coded"]) > float(r["bpp_payload"]) > 0 and float(r["bpp_estimated"]) > 0
        assert 0 < float(r["psnr"]) < 100 and r["round_trip"] == "True"
    assert not [p for p in rd.path.rglob("*.tmp*")]


def test_run_folder_errors(tmp_path):
    run = resolve("hyperprior", "smoke", overrides={"steps": 1})
    train_run(run, tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="already holds a checkpoint"):
        train_run(run, tmp_path / "run", resume=False, progress=False)
    with pytest.raises(RunError, match="another model_config"):
        train_run(resolve("hyperprior", "smoke", overrides={"steps": 1, "N": 4}), tmp_path / "run", progress=False)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        RunDir(tmp_path / "nothing").run_config()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot read checkpoint"):
        RunDir(tmp_path / "bad").load_checkpoint()
    (tmp_path / "bad" / "config.json").write_text('{"model_name": "ndic"}')
    with pytest.raises(RunError, match="no 'codec' field"):
        RunDir(tmp_path / "bad").read_record()


def test_registry_refuses_bad_names_with_the_accepted_list():
    with pytest.raises(ConfigError, match=r"unknown codec 'dsin' \(expected one of: hyperprior, ndic, mdic, taco\)"):
        get_codec("dsin")
    with pytest.raises(ConfigError, match=r"unknown preset 'huge' of codec 'ndic' \(expected one of: smoke, lab, paper"):
        resolve("ndic", "huge")
    with pytest.raises(ConfigError, match=r"unknown variant 'no_txt' of codec 'mdic' \(expected one of: full, no_text"):
        resolve("mdic", "smoke", variant="no_txt")
    with pytest.raises(ConfigError, match=r"unknown rate point 3 of codec 'mdic' at preset 'lab' \(expected one of: 0, 1, 2"):
        resolve("mdic", "lab", rate_point=3)
    with pytest.raises(ConfigError, match="unknown field 'gamma' of NDICConfig or TrainConfig"):
        resolve("ndic", "smoke", overrides={"gamma": 1})
    with pytest.raises(TypeError, match="TrainConfig.steps expects an int"):
        resolve("ndic", "smoke", overrides={"steps": "10"})
    # aliases work for every codec, and rate points set the codec's rate knob
    assert resolve("ndic", "tiny").preset == "smoke" and resolve("hyperprior", "laptop").preset == "lab"
    assert resolve("ndic", "lab", rate_point=3).train.lmbda == 0.0016
    assert resolve("mdic", "lab", rate_point=2).model.codebook_size == 8
    assert resolve("mdic", "smoke", variant="no_ts").model.variant == "no_ts"


def test_checked_config_base_is_shared():
    from mdic_lab.config import CheckedConfig, config_from_dict, config_to_dict

    for c in CODECS.values():
        for cls in (c.config_class, c.train_config_class):
            cfg = cls()
            assert isinstance(cfg, CheckedConfig)
            assert cls.from_dict(cfg.to_dict()) == cfg and config_from_dict(config_to_dict(cfg)) == cfg
            assert len(cfg.hash()) == 8 and cfg.hash() == cls().hash()
            with pytest.raises(ConfigError, match=f"unknown field 'zz' of {cls.__name__} \\(expected one of: "):
                cfg.replace(zz=1)


def _cli_train(args, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "mdic_lab.cli", "train", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _checkpoint_step(run_dir) -> int:
    try:
        return int(torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=True)["step"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0


@pytest.mark.parametrize("codec,steps,every", [("ndic", 120, 20), ("mdic", 12, 2)])
def test_sigkill_then_resume_is_bit_identical(tmp_path, backbone_root, codec, steps, every):
    """A run killed with SIGKILL mid-training and started again ends with the uninterrupted run's weights."""
    common = ["--codec", codec, "--preset", "smoke", "--steps", steps, "--set", f"ckpt_every={every}",
              "--set", f"log_every={every // 2}", "--backbone-root", backbone_root]
    proc = _cli_train([*common, "--out", tmp_path / "killed"])
    deadline = time.time() + 240
    while _checkpoint_step(tmp_path / "killed") < 2 * every and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    killed_at = _checkpoint_step(tmp_path / "killed")
    assert proc.returncode == -signal.SIGKILL and 0 < killed_at < steps
    resumed = _cli_train([*common, "--out", tmp_path / "killed", "--resume"])
    straight = train_run(resolve(codec, "smoke", overrides={"steps": steps, "ckpt_every": every,
                                                           "log_every": every // 2}),
                         tmp_path / "straight", progress=False, backbone_root=backbone_root)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
    assert straight["step"] == steps == _checkpoint_step(tmp_path / "killed")
    assert _same_weights(tmp_path / "straight", tmp_path / "killed")
    with open(tmp_path / "killed" / "metrics.csv") as f:  # no duplicated or lost log rows after the kill
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(every // 2, steps + 1, every // 2))


def test_death_between_metrics_and_checkpoint_loses_no_log_row(tmp_path, backbone_root, monkeypatch):
    """The window the SIGKILL test hits only by chance: the process dies between the two writes
    of a save (metrics.csv and checkpoint.pt); the resumed run still logs every step once."""
    run = resolve("ndic", "smoke", overrides={"steps": 6, "ckpt_every": 2, "log_every": 1})
    real = {"save_checkpoint": RunDir.save_checkpoint, "write_metrics": RunDir.write_metrics}
    done = []

    def dying(name):
        def write(self, *args):
            if len(done) == 3:  # the second save has made its first write: die before its second
                raise KeyboardInterrupt("killed")
            real[name](self, *args)
            done.append(name)
        return write

    for name in real:
        monkeypatch.setattr(RunDir, name, dying(name))
    with pytest.raises(KeyboardInterrupt):
        train_run(run, tmp_path / "r", progress=False, backbone_root=backbone_root)
    for name, fn in real.items():
        monkeypatch.setattr(RunDir, name, fn)
    assert 0 < _checkpoint_step(tmp_path / "r") < 6
    train_run(run, tmp_path / "r", progress=False, backbone_root=backbone_root)
    with open(tmp_path / "r" / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 7))


@pytest.mark.parametrize("codec", list(CODECS))
def test_batched_evaluation_decodes_each_image_as_alone(tmp_path, backbone_root, codec):
    run = resolve(codec, "smoke", overrides={"steps": 2})
    train_run(run, tmp_path / "r", progress=False, backbone_root=backbone_root)
    one = evaluate_run(tmp_path / "r", limit=3, use_lpips=False, num_inference_steps=2, tag="b1")
    three = evaluate_run(tmp_path / "r", limit=3, use_lpips=False, num_inference_steps=2, batch_size=2, tag="b2")
    a, b = RunDir(tmp_path / "r").read_eval_rows("test", "b1"), RunDir(tmp_path / "r").read_eval_rows("test", "b2")
    assert [r["name"] for r in a] == [r["name"] for r in b] and len(a) == 3
    for ra, rb in zip(a, b):
        assert ra["bpp_coded"] == rb["bpp_coded"] and ra["round_trip"] == rb["round_trip"] == "True"
        assert float(ra["psnr"]) == pytest.approx(float(rb["psnr"]), abs=1e-3)  # equal up to float rounding
    assert one["batch_size"] == 1 and three["batch_size"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["ndic", "hyperprior"])
def test_two_cpu_processes_ddp_for_a_baseline_codec(tmp_path, codec):
    """The one training loop gives DDP to every codec: two gloo processes keep identical replicas."""
    import json

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mdic_lab.cli", "train", "--codec", codec, "--preset", "smoke", "--steps", "3",
           "--out", str(tmp_path / "ddp")]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    outs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(outs) == 2 and all(o["num_processes"] == 2 and o["step"] == 3 for o in outs)
    c = outs[0]["param_checksums"]
    assert len(c) == 2 and c[0] == c[1]
    assert len(RunDir(tmp_path / "ddp").load_checkpoint()["rng"]) == 2


def test_semantic_column_is_the_segmentation_miou_of_each_reconstruction(tmp_path, backbone_root):
    from mdic_lab.metrics.segnet import SegNet, SegNetConfig, reconstruction_miou
    from mdic_lab.runs.coding import load_run
    from mdic_lab.runs.evaluate import evaluate_model

    run = resolve("ndic", "smoke", overrides={"steps": 2})
    train_run(run, tmp_path / "r", progress=False, backbone_root=backbone_root)
    model, run, hooks = load_run(tmp_path / "r")
    data = hooks.open_data(run, "synthetic", "test", length=2)
    torch.manual_seed(0)
    net = SegNet(SegNetConfig(width=4, levels=2, max_width=8))  # any net: this checks the plumbing, not a score
    rows = evaluate_model(model, hooks, data, limit=2, use_lpips=False, segnet=net)
    for i, r in enumerate(rows):
        it = data[i]
        x_hat = hooks.decompress(model, hooks.compress(model, it["left"][None].float()), it["right"][None].float(), None)
        assert r["miou"] == pytest.approx(reconstruction_miou(net, x_hat, torch.as_tensor(it["labels"])[None]))
        assert 0.0 <= r["miou"] <= 1.0
    plain = evaluate_model(model, hooks, data, limit=1, use_lpips=False)
    assert plain[0]["miou"] != plain[0]["miou"]  # NaN without a net: never a number from nothing
