"""Metric sanity: closed forms, identities, and the MetricUnavailable paths (no downloads)."""

import math

import numpy as np
import pytest
import torch

from mdic_lab.metrics import (
    MetricUnavailable,
    compute_metrics,
    confusion_matrix,
    dists_distance,
    fid,
    fid_from_features,
    kid_from_features,
    lpips_distance,
    miou,
    ms_ssim,
    niqe,
    niqe_features,
    psnr,
)
from mdic_lab.metrics.niqe import fit_aggd, matlab_imresize_half


def _img(seed, n=2, h=128, w=256):
    g = torch.Generator().manual_seed(seed)
    # smooth random field: more like an image than white noise
    x = torch.rand(n, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty torch hub and no MDIC_WEIGHTS_DIR: every learned metric must be unavailable."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("MDIC_WEIGHTS_DIR", raising=False)

    def _no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    return tmp_path


# ----------------------------------------------------------------------------- PSNR / MS-SSIM
def test_psnr_identical_is_inf_and_constant_offset_closed_form():
    x = _img(0).double() * 0.8
    assert psnr(x, x) == math.inf
    for d in (0.01, 0.1, 0.2):  # MSE = d², PSNR = -20 log10 d
        assert psnr(x, x + d) == pytest.approx(-20 * math.log10(d), abs=1e-9)
    assert psnr(x * 255, x * 255 + 2.55, data_range=255.0) == pytest.approx(40.0, abs=1e-9)


def test_psnr_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="NaN"):
        psnr(torch.full((1, 1, 2, 2), float("nan")), torch.zeros(1, 1, 2, 2))


def test_ms_ssim_identity_and_monotone_in_noise():
    x = _img(1, n=1)
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
    vals = [ms_ssim(x, (x + s * noise).clamp(0, 1)) for s in (0.02, 0.08, 0.2)]
    assert all(a > b for a, b in zip(vals, vals[1:])), vals
    assert 0 < vals[-1] < 1


def test_ms_ssim_window_choice_at_128x256():
    x = _img(3)
    with pytest.raises(ValueError, match=r"needs min\(H, W\) > 160.*largest valid odd win_size: 7"):
        ms_ssim(x, x, win_size=11)
    big = _img(3, n=1, h=176, w=176)
    assert ms_ssim(big, big, win_size=11) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- mIoU
def test_miou_identity_and_closed_form():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 5, size=(2, 16, 16))
    assert miou(lab, lab, 5) == 1.0
    pred = np.array([0, 0, 1, 1, 2, 2])
    true = np.array([0, 1, 1, 1, 2, 255])
    # ignoring 255: IoU_0 = 1/2, IoU_1 = 2/3, IoU_2 = 1
    assert miou(pred, true, 3, ignore_index=255) == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert confusion_matrix(pred, true, 3, ignore_index=255).sum() == 5
    with pytest.raises(ValueError, match="outside"):
        miou(pred, true, 3)  # 255 is not ignored -> out of range
    assert miou(torch.tensor([1, 1]), torch.tensor([1, 1]), 4) == 1.0  # absent classes skipped


# ----------------------------------------------------------------------------- FID / KID statistics
def test_fid_closed_form_and_against_piq():
    import piq

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(400, 6)) * 2.0 + 1.0
    # closed form on the sample statistics
    from scipy import linalg

    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expect = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(linalg.sqrtm(s1 @ s2)))
    assert fid_from_features(a, b) == pytest.approx(expect, rel=1e-10)
    ours = fid_from_features(a, b)
    theirs = float(piq.FID().compute_metric(torch.tensor(a), torch.tensor(b)))
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_kid_against_piq():
    import piq

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(60, 5)), rng.normal(0.5, size=(60, 5))
    theirs = float(piq.KID().compute_metric(torch.tensor(a), torch.tensor(b)))
    assert kid_from_features(a, b) == pytest.approx(theirs, rel=1e-6)


# ----------------------------------------------------------------------------- NIQE parts
def test_aggd_fit_recovers_asymmetric_parameters():
    from scipy.stats import gennorm

    rng = np.random.default_rng(0)
    alpha, bl, br = 0.8, 1.0, 2.5
    mag = np.abs(gennorm.rvs(alpha, size=400_000, random_state=rng))
    left = rng.random(mag.size) < bl / (bl + br)  # AGGD: P(x < 0) = β_l / (β_l + β_r)
    x = np.where(left, -mag * bl, mag * br)
    a, l, r = fit_aggd(x)
    assert a == pytest.approx(alpha, abs=0.03)
    assert (l, r) == (pytest.approx(bl, rel=0.03), pytest.approx(br, rel=0.03))


def test_imresize_half_preserves_mean_of_smooth_image_and_shape():
    x = np.add.outer(np.arange(64.0), np.arange(48.0))
    y = matlab_imresize_half(x)
    assert y.shape == (32, 24)
    # interior of a linear ramp: the output pixel centre 2u - 0.5 (0-based) maps exactly
    assert y[5, 5] == pytest.approx(x[10, 10] + 1.0, abs=1e-9)  # (10.5 + 10.5)


def test_niqe_features_shape():
    f = niqe_features(np.asarray(_img(4, n=1)[0].mean(0) * 255))
    assert f.shape == (2, 36) and np.all(np.isfinite(f))


# ----------------------------------------------------------------------------- unavailable paths
def test_learned_metrics_unavailable_without_weights(no_weights):
    x = _img(5)
    for fn, name in ((lambda: lpips_distance(x, x), "alexnet-owt-7be5be79.pth"),
                     (lambda: lpips_distance(x, x, net="vgg"), "vgg16-397923af.pth"),
                     (lambda: dists_distance(x, x), "vgg16-397923af.pth"),
                     (lambda: fid(x, x), "pt_inception-2015-12-05-6726825d.pth"),
                     (lambda: niqe(x), "niqe_pristine_params.npz")):
        with pytest.raises(MetricUnavailable, match=name.replace(".", r"\.")) as err:
            fn()
        assert "torch_home" in str(err.value)  # names where to put it
    assert not (no_weights / "torch_home" / "hub" / "checkpoints").exists()  # nothing fetched


def test_compute_metrics_reports_missing_never_nan(no_weights, caplog):
    x = _img(6)
    y = (x + 0.03).clamp(0, 1)
    with caplog.at_level("WARNING"):
        r = compute_metrics(x, y, ["psnr", "ms_ssim", "lpips", "dists", "fid", "kid", "niqe"])
    assert set(r.values) == {"psnr", "ms_ssim"}
    assert set(r.missing) == {"lpips", "dists", "fid", "kid", "niqe"}
    assert all(math.isfinite(v) for v in r.values.values())
    assert "metric lpips skipped" in caplog.text
    with pytest.raises(ValueError, match="unknown metric 'ssim'"):
        compute_metrics(x, y, ["ssim"])


def test_lpips_loads_backbone_from_local_file_without_download(no_weights):
    """Loader mechanism, with a stand-in SqueezeNet checkpoint (random weights, test only)."""
    import torchvision

    wdir = no_weights / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    sd = torchvision.models.squeezenet1_1(weights=None).state_dict()
    torch.save(sd, wdir / "squeezenet1_1-b8a52dc0.pth")
    from mdic_lab.metrics.perceptual import build_lpips

    model = build_lpips("squeeze", weights_dir=wdir)
    assert torch.equal(model.net.slice1[0].weight, sd["features.0.weight"])
    x = _img(7, n=1)
    assert lpips_distance(x, x, net="squeeze", weights_dir=wdir) == 0.0
    assert lpips_distance(x, torch.flip(x, dims=[3]), net="squeeze", weights_dir=wdir) > 0
    other = no_weights / "bad"
    other.mkdir()
    (other / "squeezenet1_1-b8a52dc0.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MetricUnavailable, match="cannot read"):
        build_lpips("squeeze", weights_dir=other)
    wrong = no_weights / "wrong"
    wrong.mkdir()
    torch.save({"features.0.weight": torch.zeros(1)}, wrong / "squeezenet1_1-b8a52dc0.pth")
    with pytest.raises(MetricUnavailable, match=r"has shape \(1,\), expected \(64, 3, 3, 3\)"):
        build_lpips("squeeze", weights_dir=wrong)


def test_niqe_with_supplied_model_file(no_weights):
    """NIQE's distance, with a model file the user supplies (here a stand-in built in the test)."""
    x = _img(8, n=1)
    feats = niqe_features(np.round(x[0].mean(0).numpy() * 255))
    path = no_weights / "niqe_pristine_params.npz"
    np.savez(path, mu_prisparam=feats.mean(0) + 0.1, cov_prisparam=np.eye(36))
    v = niqe(x, model_path=path)
    assert math.isfinite(v) and v > 0
    np.savez(no_weights / "bad.npz", mu_prisparam=np.zeros(3), cov_prisparam=np.eye(3))
    with pytest.raises(MetricUnavailable, match=r"expected mu_prisparam \(36,\)"):
        niqe(x, model_path=no_weights / "bad.npz")


@pytest.mark.slow
def test_dists_and_fid_load_from_local_files_without_download(no_weights):
    """Loader mechanism for DISTS (VGG16 + alpha/beta) and FID/KID (Inception) with stand-in
    checkpoints of random weights written by the test (≈ 650 MB on disk; slow)."""
    import torchvision

    wdir = no_weights / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), wdir / "vgg16-397923af.pth")
    # DISTS weights are normalised: Σα + Σβ = 1, so identical images score 1 − 1 = 0
    torch.save({"alpha": torch.full((1, 1475, 1, 1), 0.5 / 1475), "beta": torch.full((1, 1475, 1, 1), 0.5 / 1475)},
               wdir / "dists_weights.pt")
    x = _img(9, n=1)
    assert dists_distance(x, x, weights_dir=wdir) == pytest.approx(0.0, abs=1e-5)
    assert dists_distance(x, torch.flip(x, dims=[2]), weights_dir=wdir) > 1e-4
    # the FID Inception layout (1008 classes, FID blocks) from piq's own builder, load skipped
    from unittest import mock

    from piq.feature_extractors import fid_inception as fi

    with mock.patch.object(fi, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, sd, *a, **k: None):
        template = fi.InceptionV3.fid_inception_v3()
    torch.save(template.state_dict(), wdir / "pt_inception-2015-12-05-6726825d.pth")
    from mdic_lab.metrics import fid, kid

    imgs = _img(10, n=4, h=64, w=64)
    assert fid(imgs, imgs, weights_dir=wdir) == pytest.approx(0.0, abs=1e-3)
    assert np.isfinite(kid(imgs, torch.flip(imgs, dims=[3]), weights_dir=wdir))
