"""NDIC and the hyperprior baseline: shapes, gradients, exact coding round trips, model identity."""

import dataclasses

import pytest
import torch

from mdic_lab.coding.errors import BitstreamError
from mdic_lab.config import HyperpriorConfig, NDICConfig
from mdic_lab.models.baselines import NDIC, ScaleHyperprior, build_model
from mdic_lab.models.entropy_models import TablesNotReady

TINY_NDIC = NDICConfig(N=8, M=8, C_w=4)
TINY_HP = HyperpriorConfig(N=8, M=8)


def _build(cls, cfg, seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return cls(cfg)


def _pair(seed=0, size=(64, 128), b=1):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 3, *size, generator=g)
    side = (torch.roll(base, shifts=3, dims=-1) + 0.05 * torch.rand(b, 3, *size, generator=g)).clamp(0, 1)
    return base, side


@pytest.mark.parametrize("prior", ["factorized", "hyperprior"])
def test_ndic_shapes_and_gradients(prior):
    m = _build(NDIC, dataclasses.replace(TINY_NDIC, prior=prior))
    x, y = _pair(b=2)
    out = m(x, y, generator=torch.Generator().manual_seed(0))
    assert out["x_hat"].shape == x.shape and out["side_hat"].shape == y.shape
    assert out["likelihoods"]["y"].shape == (2, 8, 4, 8)
    assert out["w"].shape == (2, 4, 4, 8)
    terms = m.loss(out, x, y, lmbda=0.01)
    terms["loss"].backward()
    # every part of Eq. 4 trains: encoder, common-information transform f, both decoders
    for name in ("g_ax", "f", "g_ay", "g_sx", "g_sy", "density_w", "density_vy"):
        grads = [p.grad for p in getattr(m, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
    assert terms["bpp"].item() > 0 and terms["r_w"].item() > 0


def test_ndic_loss_is_eq4():
    m = _build(NDIC, NDICConfig(N=8, M=8, C_w=4, alpha=0.5, beta=2.0, prior="factorized"))
    x, y = _pair()
    out = m(x, y, mode="dequantize")
    t = m.loss(out, x, y, lmbda=0.01)
    d = 255.0**2
    expected = (t["bpp"] + 0.01 * d * t["mse"]) + 0.5 * (t["r_y"] + 0.01 * d * t["mse_side"]) + 2.0 * t["r_w"]
    assert torch.allclose(t["loss"], expected)


def test_hyperprior_shapes_and_gradients():
    m = _build(ScaleHyperprior, TINY_HP)
    x, _ = _pair(b=2)
    out = m(x, generator=torch.Generator().manual_seed(0))
    assert out["x_hat"].shape == x.shape
    assert set(out["likelihoods"]) == {"y", "z"}
    m.loss(out, x, lmbda=0.01)["loss"].backward()
    assert all(p.grad is not None for p in m.g_a.parameters())


@pytest.mark.parametrize("cls,cfg", [
    (NDIC, dataclasses.replace(TINY_NDIC, prior="factorized")),
    (NDIC, TINY_NDIC),
    (ScaleHyperprior, TINY_HP),
])
def test_round_trip_equals_dequantize_forward(cls, cfg):
    m = _build(cls, cfg).eval()
    x, y = _pair(seed=1)
    with pytest.raises(TablesNotReady, match="update"):
        m.compress(x)
    m.update()
    enc = m.compress(x)
    assert len(enc["strings"]) == 1 and isinstance(enc["strings"][0], bytes)
    x_dec = m.decompress(enc["strings"], enc["shape"], side=y)
    with torch.no_grad():
        ref = m(x, y, mode="dequantize")["x_hat"]
    assert torch.equal(x_dec, ref)


def test_side_information_is_used_only_at_the_decoder():
    m = _build(NDIC, dataclasses.replace(TINY_NDIC, prior="factorized")).eval().update()
    x, y = _pair(seed=2)
    _, y2 = _pair(seed=3)
    enc = m.compress(x)  # the encoder has no side argument at all
    a = m.decompress(enc["strings"], enc["shape"], side=y)
    b = m.decompress(enc["strings"], enc["shape"], side=y2)
    assert not torch.equal(a, b)  # w = f(y) enters the reconstruction
    with pytest.raises(ValueError, match="side"):
        m.decompress(enc["strings"], enc["shape"], side=None)
    with pytest.raises(ValueError, match="side"):
        m.decompress(enc["strings"], enc["shape"], side=y[..., :64])


def test_bitstream_of_another_model_is_rejected():
    a = _build(NDIC, TINY_NDIC, seed=0).eval().update()
    b = _build(NDIC, TINY_NDIC, seed=1).eval().update()  # same config, other weights
    c = _build(ScaleHyperprior, TINY_HP).eval().update()
    x, y = _pair()
    s = a.compress(x)["strings"]
    with pytest.raises(BitstreamError, match="model"):
        b.decompress(s, None, side=y)
    with pytest.raises(BitstreamError, match="model"):
        c.decompress(s, None)
    corrupted = bytearray(s[0])
    corrupted[len(corrupted) // 2] ^= 0xFF
    with pytest.raises(BitstreamError):
        a.decompress([bytes(corrupted)], None, side=y)


def test_bad_inputs():
    m = _build(NDIC, TINY_NDIC)
    with pytest.raises(ValueError, match="multiples of 64"):
        m(torch.rand(1, 3, 50, 64), torch.rand(1, 3, 50, 64))
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((1, 3, 64, 64), float("nan")), torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        m(torch.rand(3, 64, 64), torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="prior"):
        NDICConfig(prior="laplace")
    with pytest.raises(KeyError, match="unknown model"):
        build_model("dsin", TINY_NDIC)


def test_decompose_fig7():
    m = _build(NDIC, TINY_NDIC).eval()
    x, y = _pair()
    parts = m.decompose(x, y)
    assert set(parts) == {"common", "private", "x_hat"}
    assert all(p.shape == x.shape for p in parts.values())
    with torch.no_grad():
        assert torch.equal(parts["x_hat"], m(x, y, mode="dequantize")["x_hat"])
