"""The latent-diffusion backbone: tiny from config, save → load identical, frozen parts."""

import pytest
import torch

from mdic_lab.models.mdic import MDICConfig
from mdic_lab.models.mdic.backbone import Backbone, make_scheduler
from mdic_lab.models.mdic.decoder import widen_conv_in

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cfg():
    return MDICConfig.preset("tiny")


@pytest.fixture(scope="module")
def backbone(cfg):
    torch.manual_seed(0)  # parameter init of the random tiny backbone only
    return Backbone.from_config(cfg)


def _outputs(bb, cfg):
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, *cfg.image_size, generator=g) * 2 - 1
    with torch.no_grad():
        z = bb.encode_image(img)
        rec = bb.decode_latent(z)
        txt = bb.encode_text(["a car on a road", "two trees"])
        eps = bb.unet(torch.randn(z.shape, generator=g), torch.tensor([3, 700]), encoder_hidden_states=txt).sample
    return z, rec, txt, eps


def test_shapes(backbone, cfg):
    z, rec, txt, eps = _outputs(backbone, cfg)
    assert z.shape == (2, cfg.vae_latent_channels) + cfg.latent_grid
    assert rec.shape == (2, 3) + cfg.image_size
    assert txt.shape == (2, cfg.max_text_length, cfg.text_hidden_size)
    assert eps.shape == z.shape
    assert backbone.vae_downsample == cfg.vae_downsample


def test_save_load_identical(tmp_path, backbone, cfg):
    backbone.save_pretrained(tmp_path / "bb")
    for sub in ("vae", "unet", "text_encoder", "tokenizer", "scheduler"):
        assert (tmp_path / "bb" / sub).is_dir()
    loaded = Backbone.from_pretrained(tmp_path / "bb", max_text_length=cfg.max_text_length)
    for a, b in zip(_outputs(backbone, cfg), _outputs(loaded, cfg)):
        assert torch.equal(a, b)
    assert loaded.tokenize(["a red car"]).tolist() == backbone.tokenize(["a red car"]).tolist()
    public = lambda c: {k: v for k, v in dict(c).items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.scheduler.config) == public(backbone.scheduler.config)


def test_frozen_parts(backbone):
    assert not any(p.requires_grad for p in backbone.vae.parameters())
    assert not any(p.requires_grad for p in backbone.text_encoder.parameters())
    assert all(p.requires_grad for p in backbone.unet.parameters())
    backbone.train()
    assert not backbone.vae.training and not backbone.text_encoder.training and backbone.unet.training
    backbone.eval()


def test_missing_directory_and_bad_component(tmp_path):
    with pytest.raises(FileNotFoundError, match="backbone directory not found"):
        Backbone.from_pretrained(str(tmp_path / "missing"))
    (tmp_path / "partial" / "vae").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="component 'unet' not found"):
        Backbone.from_pretrained(tmp_path / "partial")
    with pytest.raises(ValueError, match="unknown backbone component 'vea'"):
        Backbone.from_pretrained(tmp_path / "partial", subfolders={"vea": "x"})


def test_bad_images(backbone):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        backbone.encode_image(torch.zeros(3, 32, 64))
    with pytest.raises(ValueError, match="NaN"):
        backbone.encode_image(torch.full((1, 3, 32, 64), float("nan")))


def test_widen_conv_in_keeps_pretrained_behaviour(cfg):
    """Zero-initialised new input channels: ε_θ(cat(z, c)) = ε_θ(z) for any condition c."""
    torch.manual_seed(0)
    bb = Backbone.from_config(cfg)
    g = torch.Generator().manual_seed(2)
    z = torch.randn((1, 4) + cfg.latent_grid, generator=g)
    txt = torch.randn(1, 5, cfg.text_hidden_size, generator=g)
    t = torch.tensor([500])
    with torch.no_grad():
        before = bb.unet(z, t, encoder_hidden_states=txt).sample
        widen_conv_in(bb.unet, 6)
        after = bb.unet(torch.cat([z, torch.randn((1, 6) + cfg.latent_grid, generator=g)], 1), t,
                        encoder_hidden_states=txt).sample
    assert bb.unet.config.in_channels == 10
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_ddim_scheduler_closed_form():
    """ᾱ_t of the scaled-linear schedule: Π(1 − β_i), β = linspace(√0.00085, √0.012)²."""
    s = make_scheduler(1000)
    beta = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(s.alphas_cumprod.double(), torch.cumprod(1 - beta, 0), rtol=1e-5, atol=1e-7)
    s.set_timesteps(10)
    assert s.timesteps.tolist() == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]


def test_pretrain_config_schedule_and_validation():
    """The VAE schedule: linear warm-up, cosine to the final fraction; bad values are refused."""
    import math

    from mdic_lab.models.mdic.pretrain import PRETRAIN_PRESETS, PretrainConfig, vae_lr_lambda

    f = vae_lr_lambda(PretrainConfig(vae_steps=202, vae_warmup_steps=1, vae_final_lr_fraction=0.05))
    assert f(0) == 1.0 and math.isclose(f(201), 0.05) and math.isclose(f(101), 0.05 + 0.95 * 0.5)
    assert all(f(s) >= f(s + 1) for s in range(1, 201))  # non-increasing after warm-up
    lab = PRETRAIN_PRESETS["lab"]
    assert lab.vae_hflip and lab.vae_crop == (64, 128) and lab.vae_steps > lab.vae_warmup_steps
    with pytest.raises(ValueError, match="vae_final_lr_fraction must lie in"):
        PretrainConfig(vae_final_lr_fraction=0.0)
    with pytest.raises(ValueError, match="vae_warmup_steps must be a non-negative int"):
        PretrainConfig(vae_warmup_steps=-1)


# ----------------------------------------------------------------------------- progress in logs
def test_progress_writes_plain_lines_when_stderr_is_not_a_tty():
    import io

    from mdic_lab.models.mdic.pretrain import _progress

    stream = io.StringIO()  # a log file / pipe: isatty() is False
    bar = _progress(5, "pretrain VAE", True, stream=stream, interval=0)
    for _ in range(5):
        bar.update(1)
        bar.set_postfix(loss="0.1000")
    bar.close()
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and lines[0].startswith("pretrain VAE: 0/5 (0%)")
    assert lines[-1].startswith("pretrain VAE: 5/5 (100%) loss=0.1000 elapsed")
    assert len(lines) == 6 and "eta" in lines[2]  # interval 0: start, steps 1-4, the close
    throttled = io.StringIO()
    bar = _progress(100, "x", True, stream=throttled, interval=3600)
    bar.update(50)
    bar.close()
    assert len(throttled.getvalue().splitlines()) == 2  # start and end only
    silent = io.StringIO()
    bar = _progress(5, "x", False, stream=silent)
    bar.update(5)
    bar.close()
    assert silent.getvalue() == ""


def test_pretraining_reports_progress_to_a_captured_stderr(capsys):
    from mdic_lab.models.mdic.pretrain import PRETRAIN_PRESETS, pretrain_backbone

    smoke = MDICConfig.preset("smoke")
    pretrain_backbone(smoke, PRETRAIN_PRESETS["smoke"], progress=True)
    err = capsys.readouterr().err
    assert "pretrain VAE: 0/4" in err and "pretrain VAE: 4/4 (100%) loss=" in err
    assert "pretrain text encoder: 4/4 (100%)" in err
    pretrain_backbone(smoke, PRETRAIN_PRESETS["smoke"], progress=False)
    assert "pretrain" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- shipped lab backbone
LAB = MDICConfig.preset("lab")
SHIPPED_FILES = ("pretrain.json", "provenance.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/config.json", "text_encoder/model.safetensors")


def _safetensors_dtypes(path):
    import json
    import struct

    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return {v["dtype"] for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}


def test_shipped_lab_files_exist_fit_and_match_their_record():
    import hashlib

    from mdic_lab.models.mdic.pretrain import MAX_SHIPPED_BYTES, SHIPPED_ROOT, shipped_provenance

    d = SHIPPED_ROOT / "lab"
    for f in SHIPPED_FILES:
        assert (d / f).is_file(), f
    assert not (d / "unet").exists() and not (d / "tokenizer").exists()  # UNet fresh, tokenizer from open_clip
    total = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    assert total <= MAX_SHIPPED_BYTES == 10_000_000
    prov = shipped_provenance(d)
    for rel, rec in prov["files"].items():
        data = (d / rel).read_bytes()
        assert len(data) == rec["bytes"] and hashlib.sha256(data).hexdigest() == rec["sha256"], rel
    want = {"float16": "F16", "bfloat16": "BF16"}[prov["dtype"]]
    for f in ("vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        assert _safetensors_dtypes(d / f) == {want}


def test_shipped_lab_provenance_has_the_required_fields():
    from mdic_lab.models.mdic.pretrain import PRETRAIN_PRESETS, backbone_key, shipped_provenance

    prov = shipped_provenance()
    for k in ("command", "remake_command", "seed", "data_seed", "vae_steps", "text_steps", "pretrain_config",
              "git_commit", "machine", "time_taken_s", "vae_psnr_db_fp32", "vae_psnr_db_shipped",
              "vae_psnr_db_by_dtype", "text_retrieval_top1", "dtype", "key"):
        assert prov.get(k) is not None, k
    assert prov["key"] == backbone_key(LAB, "lab")
    pcfg = PRETRAIN_PRESETS["lab"]
    assert prov["pretrain_config"] == pcfg.to_dict()
    assert (prov["seed"], prov["vae_steps"], prov["text_steps"]) == (pcfg.seed, pcfg.vae_steps, pcfg.text_steps)
    assert len(prov["git_commit"]) == 40 and prov["time_taken_s"] > 0
    assert prov["remake_command"] == "mdic-lab pretrain --preset lab --export mdic_lab/models/mdic/shipped/lab"
    # the half-precision copy keeps the VAE: under 0.1 dB from float32 on the same held-out pairs
    assert abs(prov["vae_psnr_db_fp32"] - prov["vae_psnr_db_shipped"]) < 0.1
    assert prov["text_retrieval_top1"] > prov["chance_top1"]


def test_shipped_lab_backbone_is_used_without_pretraining(tmp_path):
    import json
    import time

    from mdic_lab.models.mdic.backbone import unet_from_config
    from mdic_lab.models.mdic.pretrain import PRETRAIN_PRESETS, SHIPPED_ROOT, load_or_pretrain_backbone

    t0 = time.perf_counter()
    bb = load_or_pretrain_backbone(LAB, "lab", root=tmp_path, progress=False)  # an empty cache
    assert time.perf_counter() - t0 < 30  # pretraining it takes 20+ minutes
    assert bb.provenance["source"] == "shipped" and bb.provenance["path"] == str(SHIPPED_ROOT / "lab")
    assert not any(tmp_path.iterdir())  # nothing pretrained or cached
    for part in (bb.vae, bb.text_encoder):
        assert not part.training
        assert all(p.dtype == torch.float32 and not p.requires_grad for p in part.parameters())
    rep = json.loads((SHIPPED_ROOT / "lab" / "pretrain.json").read_text())
    assert bb.latent_scale == pytest.approx(1.0 / rep["latent_std"])
    assert len(bb.tokenizer) == 49408 and bb.max_text_length == LAB.max_text_length
    with torch.random.fork_rng():  # the UNet is not shipped: fresh from the config, seeded as the cache path does
        torch.manual_seed(PRETRAIN_PRESETS["lab"].seed)
        unet = unet_from_config(LAB)
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), bb.unet.state_dict().values()))


def test_shipped_copy_is_not_used_for_another_key(tmp_path):
    from mdic_lab.models.mdic.pretrain import (
        PretrainConfig, backbone_key, find_shipped_backbone, load_or_pretrain_backbone,
    )

    assert find_shipped_backbone(backbone_key(LAB, "lab")) is not None
    assert find_shipped_backbone(backbone_key(LAB.replace(vae_latent_channels=4), "lab")) is None
    assert find_shipped_backbone(backbone_key(MDICConfig.preset("smoke"), "smoke")) is None
    quick = PretrainConfig(vae_steps=1, vae_batch_size=1, vae_crop=(32, 64), text_steps=1, text_batch_size=2,
                           train_length=2, eval_length=2)
    assert find_shipped_backbone(backbone_key(LAB, "lab", quick)) is None
    bb = load_or_pretrain_backbone(LAB, "lab", pcfg=quick, root=tmp_path, progress=False)
    assert bb.provenance["source"] == "pretrained" and bb.provenance["path"].startswith(str(tmp_path))
    assert load_or_pretrain_backbone(LAB, "lab", pcfg=quick, root=tmp_path, progress=False).provenance["source"] == "cache"


def test_shipped_vae_psnr_on_heldout_pairs():
    """The shipped (half-precision, upcast) VAE on 8 pairs of the test split, never seen in pretraining."""
    from mdic_lab.models.mdic.pretrain import SHIPPED_ROOT, _load_pairs, load_shipped_backbone, vae_psnr

    bb = load_shipped_backbone(SHIPPED_ROOT / "lab", LAB)
    left, right, _ = _load_pairs("test", LAB.image_size, 8, 0)
    assert vae_psnr(bb.vae, torch.cat([left, right])) >= 22.5


def test_remake_command_pretrains_and_exports_smoke(tmp_path, capsys):
    """``mdic-lab pretrain --export`` on the smoke preset: pretrain, export, load back."""
    import json

    from mdic_lab.cli import main
    from mdic_lab.models.mdic.pretrain import backbone_key, find_shipped_backbone, load_shipped_backbone

    smoke = MDICConfig.preset("smoke")
    assert main(["pretrain", "--preset", "smoke", "--root", str(tmp_path / "cache"), "--export", str(tmp_path / "ship" / "smoke"),
                 "--dtype", "bfloat16", "--no-progress"]) == 0
    assert "\"exported_to\"" in capsys.readouterr().out
    d = find_shipped_backbone(backbone_key(smoke, "smoke"), root=tmp_path / "ship")
    assert d == tmp_path / "ship" / "smoke"
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["dtype"] == "bfloat16" and prov["provenance_recorded_by"] == "pretraining run"
    assert "--preset smoke" in prov["command"] or "pytest" in prov["command"]
    assert _safetensors_dtypes(d / "vae" / "diffusion_pytorch_model.safetensors") == {"BF16"}
    bb = load_shipped_backbone(d, smoke)
    assert all(p.dtype == torch.float32 for p in bb.vae.parameters())
    with pytest.raises(ValueError, match="pretrain again"):  # a folder made for another config is refused
        from mdic_lab.models.mdic.pretrain import export_backbone

        export_backbone(tmp_path / "cache" / backbone_key(smoke, "smoke"), tmp_path / "x",
                        config=smoke.replace(vae_latent_channels=8))


def _count_vae_encodes(bb, monkeypatch, calls):
    real = bb.vae.encode
    monkeypatch.setattr(bb.vae, "encode", lambda x: calls.append(len(x)) or real(x))
    return bb


def test_latent_bank_encodes_a_training_set_once_per_process(tmp_path, monkeypatch):
    """A sweep worker's next cell reuses the frozen VAE's latents of the same pairs (bit-identical);
    another VAE, other pairs or another thread count encode again."""
    from mdic_lab.models.mdic import backbone as bb_mod
    from mdic_lab.models.mdic.pretrain import load_or_pretrain_backbone
    from mdic_lab.runs import data as bank_data

    g = torch.Generator().manual_seed(0)
    pairs = [{"left": torch.rand(3, 128, 256, generator=g), "right": torch.rand(3, 128, 256, generator=g),
              "caption": "a car"} for _ in range(3)]
    calls = []
    monkeypatch.setattr(bb_mod, "_ENCODE_MEMO", type(bb_mod._ENCODE_MEMO)())

    def load():
        return _count_vae_encodes(load_or_pretrain_backbone(LAB, "lab", root=tmp_path, progress=False),
                                  monkeypatch, calls)

    first = bank_data.LatentBank(pairs, load())
    n_first = len(calls)
    again = bank_data.LatentBank(pairs, load())
    assert n_first == 2 and len(calls) == n_first  # a freshly loaded copy of the same VAE: no encoding
    assert torch.equal(first.z_left, again.z_left) and torch.equal(first.z_right, again.z_right)
    other = load()
    with torch.no_grad():
        next(other.vae.parameters()).add_(1e-3)
    bank_data.LatentBank(pairs, other)
    assert len(calls) == n_first + 2
    bank_data.LatentBank(pairs[:2], other)
    assert len(calls) == n_first + 4
    monkeypatch.setattr(torch, "get_num_threads", lambda: 97)  # another thread count: other rounding possible
    bank_data.LatentBank(pairs[:2], other)
    assert len(calls) == n_first + 6


def test_encode_image_memo_is_exact_bounded_and_follows_the_weights(tmp_path, monkeypatch):
    """Inside encode_memo(), E_vae of a batch met before is answered from the memo with the same values;
    an in-place edit of the same VAE object, another batch or a full memo encodes again;
    ENCODE_MEMO_BYTES = 0 turns it off, and outside encode_memo() the VAE always runs."""
    from mdic_lab.models.mdic import backbone as bb_mod
    from mdic_lab.models.mdic.pretrain import load_or_pretrain_backbone

    monkeypatch.setattr(bb_mod, "_ENCODE_MEMO", type(bb_mod._ENCODE_MEMO)())
    calls = []
    bb = _count_vae_encodes(load_or_pretrain_backbone(LAB, "lab", root=tmp_path, progress=False), monkeypatch, calls)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.rand(2, 3, 128, 256, generator=g) * 2 - 1 for _ in range(2))
    for _ in range(2):  # the memo is off unless asked for: the VAE runs each time, nothing is kept
        bb.encode_image(a)
    assert len(calls) == 2 and not bb_mod._ENCODE_MEMO
    calls.clear()
    with bb_mod.encode_memo():
        za = bb.encode_image(a)
        za2 = bb.encode_image(a.clone())
        assert len(calls) == 1 and torch.equal(za, za2) and za2.data_ptr() != za.data_ptr()
        za2.add_(1.0)  # the caller owns what it gets: the memo is not changed through it
        assert torch.equal(bb.encode_image(a), za) and len(calls) == 1
        bb.encode_image(b)
        assert len(calls) == 2
        with torch.no_grad():
            bb.vae.encoder.conv_in.weight.mul_(1.5)  # the same object, edited in place
        assert not torch.equal(bb.encode_image(a), za) and len(calls) == 3
        one = za.numel() * za.element_size()
        monkeypatch.setattr(bb_mod, "ENCODE_MEMO_BYTES", one)  # room for one batch: the least recent goes
        bb.encode_image(b)  # b under the edited weights: new; a's entry is the least recent and goes
        assert len(calls) == 4 and len(bb_mod._ENCODE_MEMO) == 1
        bb.encode_image(b)
        assert len(calls) == 4
        bb.encode_image(a)
        assert len(calls) == 5
        monkeypatch.setattr(bb_mod, "ENCODE_MEMO_BYTES", 0)
        bb.encode_image(a)
        assert len(calls) == 6
