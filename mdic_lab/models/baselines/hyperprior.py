"""Ballé et al. (2018) scale hyperprior: the single-image baseline (no side information).

Transforms (Ballé et al. 2018, Fig. 4; CompressAI ``ScaleHyperprior``)::

    y = g_a(x)            conv5/2 GDN conv5/2 GDN conv5/2 GDN conv5/2        (B, M, H/16, W/16)
    z = h_a(|y|)          conv3/1 ReLU conv5/2 ReLU conv5/2                  (B, N, H/64, W/64)
    ẑ ~ factorized prior  (EntropyBottleneck)
    σ = h_s(ẑ)            deconv5/2 ReLU deconv5/2 ReLU conv3/1 ReLU         (B, M, H/16, W/16)
    ŷ ~ N(0, σ²) * U(-½, ½)  (GaussianConditional, Eq. 7)
    x̂ = g_s(ŷ)            deconv5/2 IGDN deconv5/2 IGDN deconv5/2 IGDN deconv5/2

The rate is ``R = E[−log2 p(ŷ|ẑ) − log2 p(ẑ)]`` (Eq. 9 there); training minimises
``R + λ·255²·MSE``.
"""

from __future__ import annotations

import torch
from torch import nn

from mdic_lab.config import HyperpriorConfig
from mdic_lab.models.baselines._codec import ImageCodec, check_image
from mdic_lab.models.entropy_models import EntropyBottleneck, GaussianConditional
from mdic_lab.models.layers import GDN, conv, conv3x3, deconv

__all__ = ["ScaleHyperprior", "analysis", "synthesis", "HyperCoder"]


def analysis(in_ch: int, n: int, out_ch: int) -> nn.Sequential:
    """Ballé (2017) analysis transform g_a: 4 strided convolutions with GDN, ×1/16."""
    return nn.Sequential(conv(in_ch, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, out_ch))


def synthesis(in_ch: int, n: int, out_ch: int = 3) -> nn.Sequential:
    """Ballé (2017) synthesis transform g_s: 4 transposed convolutions with IGDN, ×16."""
    return nn.Sequential(deconv(in_ch, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                         deconv(n, n), GDN(n, inverse=True), deconv(n, out_ch))


class HyperCoder(nn.Module):
    """The entropy model of a latent y: scale hyperprior (h_a, h_s, factorized ẑ, Gaussian ŷ).

    Shared by :class:`ScaleHyperprior` and the "hyperprior" variant of NDIC.
    """

    def __init__(self, n: int, m: int):
        super().__init__()
        self.h_a = nn.Sequential(conv3x3(m, n), nn.ReLU(inplace=True), conv(n, n), nn.ReLU(inplace=True), conv(n, n))
        self.h_s = nn.Sequential(deconv(n, n), nn.ReLU(inplace=True), deconv(n, n), nn.ReLU(inplace=True),
                                 conv3x3(n, m), nn.ReLU(inplace=True))
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianConditional()

    def forward(self, y, mode="noise", generator=None):
        """``(ŷ, {"y": p(ŷ|ẑ), "z": p(ẑ)})``."""
        z = self.h_a(torch.abs(y))  # (B, N, h/4, w/4)
        z_hat, z_lik = self.entropy_bottleneck(z, mode, generator)
        scales = self.h_s(z_hat)  # (B, M, h, w)
        y_hat, y_lik = self.gaussian_conditional(y, scales, mode, generator)
        return y_hat, {"y": y_lik, "z": z_lik}

    @torch.no_grad()
    def compress(self, y):
        """One image (batch of 1) → ``([y_string, z_string], z_shape)``; ẑ decoded first, then ŷ."""
        z = self.h_a(torch.abs(y))
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = torch.round(z)  # identical to what decompress() decodes (escapes keep every value)
        scales = self.h_s(z_hat)
        y_strings = self.gaussian_conditional.compress(y, scales)
        return [y_strings[0], z_strings[0]], tuple(z.shape[-2:])

    @torch.no_grad()
    def decompress(self, y_string: bytes, z_string: bytes, z_shape, names=("y", "z")) -> torch.Tensor:
        """``ŷ`` from the payloads ``[y_string, z_string]`` of :meth:`compress` (ẑ first, then ŷ).

        A payload that cannot be decoded raises :class:`BitstreamError` naming it by its
        index and ``names`` (``"payload 1 (z): range decoder failed …"``).
        """
        from mdic_lab.coding.errors import payload_context

        with payload_context(1, names[1]):
            z_hat = self.entropy_bottleneck.decompress([z_string], z_shape)
        scales = self.h_s(z_hat)
        with payload_context(0, names[0]):
            return self.gaussian_conditional.decompress([y_string], scales)


def decode_image(c, hyper: "HyperCoder", g_s: nn.Module, multiple: int) -> torch.Tensor:
    """x̂ ``(1, 3, H, W)`` in [0, 1] from a container whose payloads 0, 1 are ŷ, ẑ and whose shapes
    name ``x`` and ``z`` (the checked declared size first; a non-finite x̂ raises BitstreamError)."""
    from mdic_lab.coding.container import declared_image_size, require_shape
    from mdic_lab.coding.errors import BitstreamError

    h, w = declared_image_size(c, "x", multiple)
    z_shape = require_shape(c, "z", (h // 64, w // 64))
    y_hat = hyper.decompress(c.payloads[0], c.payloads[1], z_shape)
    x_hat = g_s(y_hat).clamp(0.0, 1.0)
    if not bool(torch.isfinite(x_hat).all()):
        raise BitstreamError(f"the decoded latents (max |ŷ| = {float(y_hat.abs().max()):.3g}) give a "
                             "non-finite reconstruction: the payloads are corrupted")
    return x_hat


class ScaleHyperprior(ImageCodec):
    """Single-image scale-hyperprior codec (Ballé et al. 2018); ``side`` is accepted and ignored.

    Examples
    --------
    >>> from mdic_lab.config import HyperpriorConfig
    >>> m = ScaleHyperprior(HyperpriorConfig(N=8, M=8))
    >>> out = m(torch.rand(1, 3, 64, 64))
    >>> out["x_hat"].shape, out["likelihoods"]["y"].shape
    (torch.Size([1, 3, 64, 64]), torch.Size([1, 8, 4, 4]))
    """

    multiple = 64  # g_a (×1/16) then h_a (×1/4)

    def __init__(self, config: HyperpriorConfig):
        if not isinstance(config, HyperpriorConfig):
            raise TypeError(f"ScaleHyperprior needs a HyperpriorConfig, got {type(config).__name__}")
        super().__init__(config)
        n, m = config.N, config.M
        self.g_a = analysis(3, n, m)
        self.g_s = synthesis(m, n)
        self.hyper = HyperCoder(n, m)

    def forward(self, x, side=None, mode="noise", generator=None) -> dict:
        """``{"x_hat", "likelihoods": {"y", "z"}}``; mode "dequantize" gives the decoder's output."""
        check_image(x, "x", self.multiple)
        y = self.g_a(x)  # (B, M, H/16, W/16)
        y_hat, likelihoods = self.hyper(y, mode, generator)
        x_hat = self.g_s(y_hat)  # (B, 3, H, W)
        if mode == "dequantize":
            x_hat = x_hat.clamp(0.0, 1.0)
        return {"x_hat": x_hat, "likelihoods": likelihoods}

    def loss(self, out: dict, x, side=None, lmbda: float = 0.0018) -> dict:
        """``L = R + λ·255²·MSE`` with R the estimated bits per pixel of x."""
        terms = self.rd_terms(out, x)
        terms["loss"] = terms["bpp"] + lmbda * 255.0**2 * terms["mse"]
        return terms

    @torch.no_grad()
    def compress(self, x) -> dict:
        """``{"strings": [bytes per image], "shape": (h, w) of z}``; every string is a full container."""
        check_image(x, "x", self.multiple)
        strings, shape = [], None
        for xi in x.split(1):
            y = self.g_a(xi)
            payloads, shape = self.hyper.compress(y)
            strings.append(self._pack({"x": tuple(xi.shape[-2:]), "z": shape}, payloads))
        return {"strings": strings, "shape": shape}

    @torch.no_grad()
    def decompress(self, strings, shape=None, side=None) -> torch.Tensor:
        """Decode container strings to x̂ (B, 3, H, W) in [0, 1]; ``side`` is ignored.

        A stream that cannot be decoded (damaged, forged, another model's) raises
        :class:`~mdic_lab.coding.errors.BitstreamError` naming the problem; the sizes in its
        header are checked against each other (z = x / 64) and against
        :data:`~mdic_lab.coding.container.MAX_IMAGE_PIXELS` before anything is decoded.
        """
        return torch.cat([decode_image(self._unpack(s, 2, ("x", "z")), self.hyper, self.g_s, self.multiple)
                          for s in strings])
