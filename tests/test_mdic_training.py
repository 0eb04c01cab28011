"""MDIC through the run stack: presets, backbone pretraining cache, resume = uninterrupted, two-process gloo DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdic_lab.models.mdic import PRESETS, RATE_POINTS, MDICConfig
from mdic_lab.models.mdic.config import MDICTrainConfig
from mdic_lab.models.mdic.pretrain import (
    backbone_cache_dir, load_or_pretrain_backbone, pretrain_report,
)
from mdic_lab.registry import resolve
from mdic_lab.runs import RunDir, RunError
from mdic_lab.runs.coding import load_run
from mdic_lab.runs.train import train_run

CHECKPOINT = "checkpoint.pt"

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
SMOKE = MDICConfig.preset("smoke")


@pytest.fixture(scope="module")
def backbone_root(tmp_path_factory):
    """A smoke backbone pretrained once into a private cache root."""
    root = tmp_path_factory.mktemp("backbones")
    load_or_pretrain_backbone(SMOKE, "smoke", root=root, progress=False)
    return root


# ----------------------------------------------------------------------------- presets
def test_presets_names_aliases_and_errors():
    assert list(PRESETS) == ["smoke", "lab", "paper"]
    assert MDICConfig.preset("tiny") == MDICConfig.preset("smoke")
    assert MDICConfig.preset("laptop") == MDICConfig.preset("lab")
    with pytest.raises(ValueError, match=r"unknown preset 'huge' \(expected one of: smoke, lab, paper\)"):
        MDICConfig.preset("huge")
    with pytest.raises(ValueError, match=r"unknown preset 'huge' \(expected one of: smoke, lab, paper\)"):
        MDICTrainConfig.preset("huge")
    lab = MDICConfig.preset("lab")
    assert lab.image_size == (128, 256) and lab.latent_grid == (16, 32) and lab.token_grid == (16, 32)
    paper, tp = MDICConfig.preset("paper"), MDICTrainConfig.preset("paper")
    assert paper.pretrained == "stabilityai/stable-diffusion-2-1-base" and paper.num_inference_steps == 10
    assert (tp.batch_size, tp.lr, tp.warmup_steps) == (8, 8e-5, 10_000)
    with pytest.raises(ValueError, match="unknown field 'lrr' of MDICTrainConfig"):
        MDICTrainConfig.preset("lab", lrr=1.0)


def test_rate_points_are_codebook_sizes_with_increasing_capacity():
    for preset in RATE_POINTS:
        if preset == "paper":
            continue
        caps = []
        for k in range(len(RATE_POINTS[preset])):
            c = MDICConfig.rate_point(preset, k)
            h, w = c.token_grid
            caps.append(h * w * torch.log2(torch.tensor(float(c.codebook_size))).item() / (c.image_size[0] * c.image_size[1]))
        assert caps == sorted(caps) and len(set(caps)) == len(caps)
    assert max(caps) < 0.1  # the lab preset stays below 0.1 bpp of payload
    with pytest.raises(ValueError, match="rate point 7 out of range"):
        MDICConfig.rate_point("lab", 7)


# ----------------------------------------------------------------------------- pretraining cache
def test_pretrained_backbone_cache_is_atomic_frozen_and_reused(backbone_root, monkeypatch):
    d = backbone_cache_dir(SMOKE, "smoke", root=backbone_root)
    assert d.name.startswith("smoke-") and (d / "pretrain.json").is_file()
    assert not [p for p in backbone_root.iterdir() if p.name.endswith(".tmp")]  # no temp folder left
    rep = pretrain_report(d)
    assert rep["vae_psnr_db"] > 0 and 0 <= rep["text_retrieval_top1"] <= 1
    # the VAE's scaling_factor makes the cached latents unit-variance (measured at pretraining)
    bb = load_or_pretrain_backbone(SMOKE, "smoke", root=backbone_root, progress=False)
    assert bb.latent_scale == pytest.approx(1.0 / rep["latent_std"])
    assert not any(p.requires_grad for p in bb.vae.parameters())
    assert not any(p.requires_grad for p in bb.text_encoder.parameters())
    # a second call must not pretrain again
    import mdic_lab.models.mdic.pretrain as pre

    monkeypatch.setattr(pre, "pretrain_backbone", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-trained")))
    bb2 = load_or_pretrain_backbone(SMOKE, "smoke", root=backbone_root, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(bb.vae.state_dict().values(), bb2.vae.state_dict().values()))
    # another config → another cache key
    assert backbone_cache_dir(SMOKE.replace(vae_latent_channels=8), "smoke", root=backbone_root) != d


def test_stale_temp_folder_is_never_loaded(tmp_path):
    """A half-written folder (a crash during save) has a temp name; the loader pretrains anew."""
    d = backbone_cache_dir(SMOKE, "smoke", root=tmp_path)
    stale = tmp_path / f".{d.name}.crash.tmp"
    stale.mkdir(parents=True)
    (stale / "vae").mkdir()
    bb = load_or_pretrain_backbone(SMOKE, "smoke", root=tmp_path, progress=False)
    assert (d / "pretrain.json").is_file() and bb.vae is not None


# ----------------------------------------------------------------------------- training
def _smoke(**overrides):
    return resolve("mdic", "smoke", overrides=overrides)


def test_resume_equals_uninterrupted(tmp_path, backbone_root):
    run = _smoke(steps=6, ckpt_every=2)
    a = train_run(run, tmp_path / "a", backbone_root=backbone_root, progress=False)
    first = train_run(run, tmp_path / "b", backbone_root=backbone_root, max_steps=3, progress=False)
    assert first["step"] == 3 and RunDir(tmp_path / "b").load_checkpoint()["step"] == 3
    b = train_run(run, tmp_path / "b", backbone_root=backbone_root, progress=False)
    assert a["step"] == b["step"] == 6
    (ma, _, _), (mb, _, _) = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    pa, pb = dict(ma.named_parameters()), dict(mb.named_parameters())
    assert pa.keys() == pb.keys()
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    sa = [r.split(",")[:-1] for r in (tmp_path / "a" / "metrics.csv").read_text().splitlines()]
    sb = [r.split(",")[:-1] for r in (tmp_path / "b" / "metrics.csv").read_text().splitlines()]
    assert sa == sb and len(sa) == 7  # header + one row per step, identical losses and lr


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, backbone_root):
    """A smoke MDIC run trained for 2 steps (checkpoint every step)."""
    run = tmp_path_factory.mktemp("runs") / "r"
    train_run(_smoke(steps=2, ckpt_every=1), run, backbone_root=backbone_root, progress=False)
    return run


def test_checkpoint_holds_the_full_training_state(smoke_run, backbone_root):
    from mdic_lab.runs.evaluate import evaluate_model, summarize

    ck = RunDir(smoke_run).load_checkpoint()
    for key in ("codec", "model", "optimizer", "scheduler", "step", "rng", "elapsed_s"):
        assert key in ck, key
    for key in ("config", "vocabulary", "state_dict", "vae_scaling_factor"):
        assert key in ck["model"], key
    assert set(ck["rng"][0]) == {"torch", "numpy", "python", "generators"}
    assert set(ck["rng"][0]["generators"]) == {"data", "noise"}
    assert ck["scheduler"]["last_epoch"] == 2
    rec = RunDir(smoke_run).read_record()
    assert rec["train_config"]["steps"] == 2 and rec["backbone"]  # which backbone the run used
    assert not [p for p in smoke_run.iterdir() if p.name.endswith(".tmp")]
    # the training checkpoint loads as a codec: code one image
    model, run, hooks = load_run(smoke_run)
    x = torch.rand(1, 3, *SMOKE.image_size, generator=torch.Generator().manual_seed(0))
    s = model.compress(x)["strings"]
    assert torch.equal(model.decode_indices(s), model.encode_x(x)[2].indices)
    # the evaluation codes real bytes: bpp_coded = 8 · bytes / pixels, indices round-trip
    from mdic_lab.data.synthetic import SyntheticStereo

    ds = SyntheticStereo("test", size=SMOKE.image_size, length=1)
    rows = evaluate_model(model, hooks, ds, limit=1, num_inference_steps=2, use_lpips=False)
    n_bytes = len(model.compress(ds[0]["left"][None])["strings"][0])
    assert rows[0]["bpp_coded"] == 8 * n_bytes / (SMOKE.image_size[0] * SMOKE.image_size[1])
    summ = summarize(rows)
    assert summ["all_round_trip"] and summ["bpp_payload"] < summ["bpp_coded"] and summ["lpips_available"] is False
    # a resume with another config is refused
    with pytest.raises(RunError, match="holds a run with another model_config"):
        train_run(resolve("mdic", "smoke", overrides={"steps": 2, "ckpt_every": 1, "codebook_size": 16}), smoke_run,
                  backbone_root=backbone_root, progress=False)


@pytest.mark.slow
def test_two_cpu_processes_gloo(tmp_path, backbone_root):
    """Two CPU processes (torchrun; ``Accelerator(cpu=True)`` joins them with gloo): DDP keeps the replicas equal.

    (``accelerate launch --cpu`` starts one process unless MPI is used; torchrun is what
    ``accelerate launch --multi_gpu`` runs underneath.)
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mdic_lab.cli", "train", "--codec", "mdic", "--preset", "smoke", "--steps", "2",
           "--out", str(tmp_path / "ddp"), "--backbone-root", str(backbone_root)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    outs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(outs) == 2 and all(o["num_processes"] == 2 and o["step"] == 2 for o in outs)
    c = outs[0]["param_checksums"]
    assert len(c) == 2 and c[0] == c[1]  # DDP: identical weights on both processes
    ck = RunDir(tmp_path / "ddp").load_checkpoint()
    assert RunDir(tmp_path / "ddp").read_record()["num_processes"] == 2 and len(ck["rng"]) == 2 and ck["step"] == 2


def test_prediction_type_switch():
    from mdic_lab.models.mdic.model import MDIC

    with pytest.raises(ValueError, match="unknown prediction_type 'x0'"):
        SMOKE.replace(prediction_type="x0")
    lab = MDICConfig.preset("lab")
    assert lab.prediction_type == "sample" and lab.decoder_anchor  # the anchored x_0 decoder (decoder.py)
    assert MDICConfig.preset("paper").prediction_type is None  # SD 2.1-base's own (ε)
    m = MDIC(SMOKE.replace(prediction_type="v_prediction"))
    assert m.backbone.scheduler.config.prediction_type == "v_prediction"
    assert MDIC(SMOKE).backbone.scheduler.config.prediction_type == "epsilon"


def test_compress_decompress_with_caption(smoke_run):
    from mdic_lab.data.synthetic import SyntheticStereo
    from mdic_lab.runs.coding import compress_image, decompress_stream
    from mdic_lab.runs.evaluate import evaluate_run

    item = SyntheticStereo("test", size=SMOKE.image_size, length=1)[0]
    data, info = compress_image(smoke_run, item["left"][None])
    assert info["bytes"] == len(data) and info["bpp_coded"] == 8 * len(data) / (32 * 64)
    x1, cap = decompress_stream(smoke_run, data, item["right"][None], caption=item["caption"], num_inference_steps=2)
    x2, _ = decompress_stream(smoke_run, data, item["right"][None], caption=item["caption"], num_inference_steps=2)
    assert cap == item["caption"] and x1.shape == (1, 3, 32, 64) and torch.equal(x1, x2)
    with pytest.raises(ValueError, match="pass --caption TEXT or --captioner"):
        decompress_stream(smoke_run, data, item["right"][None])
    with pytest.raises(ValueError, match="side image is"):
        decompress_stream(smoke_run, data, torch.rand(1, 3, 16, 16), caption="a car")
    with pytest.raises(ValueError, match="this mdic model codes"):
        compress_image(smoke_run, torch.rand(1, 3, 16, 16))
    summ = evaluate_run(smoke_run, limit=1, use_lpips=False, num_inference_steps=2)
    assert summ["n"] == 1 and summ["all_round_trip"]


def test_mdic_lab_cli_compress_decompress(smoke_run, tmp_path, capsys):
    from mdic_lab.cli import main, save_image
    from mdic_lab.data.synthetic import SyntheticStereo

    item = SyntheticStereo("test", size=SMOKE.image_size, length=1)[0]
    save_image(item["left"][None], tmp_path / "left.png")
    save_image(item["right"][None], tmp_path / "right.png")
    assert main(["compress", str(smoke_run), str(tmp_path / "left.png"), "-o", str(tmp_path / "x.mdic")]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["bytes"] == (tmp_path / "x.mdic").stat().st_size and info["bpp_coded"] == 8 * info["bytes"] / (32 * 64)
    args = ["decompress", str(smoke_run), str(tmp_path / "x.mdic"), "--side", str(tmp_path / "right.png"),
            "--caption", item["caption"], "--num-inference-steps", "2", "-o", str(tmp_path / "x_hat.png")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["size"] == [32, 64] and out["caption"] == item["caption"] and (tmp_path / "x_hat.png").is_file()
    # without the side image, or without a caption: one-line errors, status 2
    assert main(["decompress", str(smoke_run), str(tmp_path / "x.mdic"), "-o", str(tmp_path / "y.png")]) == 2
    assert "pass --side" in capsys.readouterr().err
    assert main(["decompress", str(smoke_run), str(tmp_path / "x.mdic"), "--side", str(tmp_path / "right.png"),
                 "-o", str(tmp_path / "y.png")]) == 2
    assert "--caption TEXT or --captioner" in capsys.readouterr().err
