"""Entropy models: quantize modes, likelihoods that sum to one, exact coding round trips."""

import math

import pytest
import torch

from mdic_lab.models.entropy_models import (
    EntropyBottleneck,
    GaussianConditional,
    TablesNotReady,
    quantize,
)


def test_quantize_modes():
    x = torch.tensor([-1.6, -0.4, 0.4, 2.51])
    assert quantize(x, "dequantize").tolist() == [-2.0, -0.0, 0.0, 3.0]
    assert quantize(x, "symbols").tolist() == [-2, 0, 0, 3]
    g = torch.Generator().manual_seed(0)
    noisy = quantize(x, "noise", g)
    assert torch.all((noisy - x).abs() <= 0.5)
    # the noise comes from the generator: same seed, same noise
    assert torch.equal(noisy, quantize(x, "noise", torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="expected one of: noise, dequantize, symbols"):
        quantize(x, "round")


def test_noise_is_uniform_half_width():
    g = torch.Generator().manual_seed(1)
    u = quantize(torch.zeros(200_000), "noise", g)
    # U(-1/2, 1/2): mean 0, variance 1/12
    assert abs(float(u.mean())) < 0.005
    assert abs(float(u.var()) - 1 / 12) < 0.002


def test_factorized_likelihoods_sum_to_one_over_integers():
    torch.manual_seed(0)  # only for the random perturbation of the parameters below
    eb = EntropyBottleneck(3)
    with torch.no_grad():
        for p in eb.parameters():
            p.add_(0.3 * torch.randn_like(p))
    v = torch.arange(-300.0, 301.0).reshape(1, 1, -1, 1).expand(1, 3, -1, 1).contiguous()
    lik = eb.likelihood(v)
    # telescoping sum of c(k+1/2) - c(k-1/2) = c(+inf) - c(-inf) = 1
    assert torch.allclose(lik.sum(dim=2).squeeze(), torch.ones(3), atol=1e-4)


def test_factorized_density_integrates_to_one():
    eb = EntropyBottleneck(2)
    # a grid of bin centres with spacing 1 covers the line; shifting the grid by t keeps the sum 1
    for t in (0.0, 0.25, 0.5):
        v = (torch.arange(-300.0, 301.0) + t).reshape(1, 1, -1, 1).expand(1, 2, -1, 1).contiguous()
        assert torch.allclose(eb.likelihood(v).sum(dim=2).squeeze(), torch.ones(2), atol=1e-4)


def test_gaussian_conditional_closed_form():
    gc = GaussianConditional()
    s = torch.tensor([[[[1.0]]]])
    # P(0 | sigma=1) = Phi(1/2) - Phi(-1/2) = erf(1/(2 sqrt 2))
    assert math.isclose(float(gc.likelihood(torch.zeros_like(s), s)), math.erf(0.5 / math.sqrt(2)), rel_tol=1e-6)
    for scale in (0.2, 1.0, 7.5):
        v = torch.arange(-80.0, 81.0).reshape(1, 1, -1, 1)
        assert abs(float(gc.likelihood(v, torch.full_like(v, scale)).sum()) - 1.0) < 1e-5


def test_likelihood_gradients_flow():
    eb = EntropyBottleneck(4)
    y = torch.randn(2, 4, 3, 5, requires_grad=True)
    y_hat, lik = eb(y, "noise", torch.Generator().manual_seed(0))
    (-torch.log2(lik).sum()).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    assert all(p.grad is not None for p in eb.parameters())


def test_update_required_before_coding():
    eb = EntropyBottleneck(2)
    y = torch.randn(1, 2, 4, 4)
    with pytest.raises(TablesNotReady, match="call model.update"):
        eb.compress(y)
    gc = GaussianConditional()
    with pytest.raises(TablesNotReady, match="call model.update"):
        gc.compress(y, torch.ones_like(y))
    eb.update()
    eb.compress(y)
    with torch.no_grad():  # parameters change after update(): tables are stale
        eb.biases[0].add_(0.1)
    with pytest.raises(TablesNotReady, match="parameters changed"):
        eb.compress(y)


@pytest.mark.parametrize("scale", [0.5, 4.0, 40.0])
def test_factorized_round_trip_and_rate(scale):
    eb = EntropyBottleneck(4)
    eb.update()
    g = torch.Generator().manual_seed(3)
    y = torch.randn(2, 4, 8, 16, generator=g) * scale
    y[0, 0, 0, 0] = 1000.0  # outside every table: escape path
    strings = eb.compress(y)
    assert torch.equal(eb.decompress(strings, (8, 16)), torch.round(y))
    with torch.no_grad():
        _, lik = eb(y, "dequantize")
    est_bits = float(-torch.log2(lik[1]).sum())
    coded_bits = 8 * len(strings[1])
    assert coded_bits >= est_bits - 1  # a real code cannot beat the model's ideal length
    assert coded_bits <= 1.05 * est_bits + 64


def test_gaussian_round_trip_and_rate():
    gc = GaussianConditional()
    gc.update()
    g = torch.Generator().manual_seed(4)
    scales = 0.2 + 5 * torch.rand(1, 8, 8, 16, generator=g)
    y = torch.randn(1, 8, 8, 16, generator=g) * scales
    strings = gc.compress(y, scales)
    assert torch.equal(gc.decompress(strings, scales), torch.round(y))
    with torch.no_grad():
        _, lik = gc(y, scales, "dequantize")
    est_bits = float(-torch.log2(lik).sum())
    # table scales are rounded down (at most one 64-step of the log table), so allow a few %
    assert 8 * len(strings[0]) <= 1.1 * est_bits + 64


def test_build_indexes_rounds_down():
    gc = GaussianConditional(scale_table=(0.5, 1.0, 2.0))
    gc.update()
    idx = gc.build_indexes(torch.tensor([0.1, 0.5, 0.99, 1.0, 3.0]))
    assert idx.tolist() == [0, 0, 0, 1, 2]
    with pytest.raises(ValueError, match="strictly increasing"):
        GaussianConditional(scale_table=(1.0, 0.5))


def test_bitstreams_pinned_by_hash():
    """Freshly built models have deterministic tables, so their bytes are pinned (CompressAI-style).

    A change here means the coded format changed: bump the container version if intended.
    """
    import hashlib

    y = (torch.arange(60, dtype=torch.float32).reshape(1, 3, 4, 5) % 11) - 5
    eb = EntropyBottleneck(3)
    eb.update()
    s = eb.compress(y)[0]
    assert hashlib.sha256(s).hexdigest() == "50b2ca1eb30704efad8dea598ff21438a96889ca7a288c70da6badad3553668d"
    gc = GaussianConditional()
    gc.update()
    scales = 0.5 + (torch.arange(60, dtype=torch.float32).reshape(1, 3, 4, 5) % 7)
    s2 = gc.compress(y, scales)[0]
    assert hashlib.sha256(s2).hexdigest() == "5cb741cb5b6f3d788a973a817540b148befae005de8bb084d0dd2953066c41d8"
    assert torch.equal(gc.decompress([s2], scales), y)
