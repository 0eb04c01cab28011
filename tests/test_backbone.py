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
