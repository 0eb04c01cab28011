"""NDIC: neural distributed image compression with common information (Mital et al.).

The encoder sees only x; the decoder holds the correlated image y (side information).
Following the paper's Sec. 2 and Fig. 1/3::

    encoder:  v_x = g_ax(x)  → quantized v̂_x → range coder                (only x is used)
    decoder:  w   = f(y)           common information, computed from y at the decoder
              x̂   = g_sx([v̂_x, w])  the marginal decoder p_θ(x | v_x, w)
    training: v_y = g_ay(y) (not quantized),  ŷ = g_sy([v_y, w])        (regulariser)

g_ax / g_sx are the Ballé (2017) analysis / synthesis transforms with GDN / IGDN; v̂_x has
either a factorized prior ("ours + Ballé2017") or a scale hyperprior ("ours + Ballé2018").
v_y and w get their own factorized densities (Eq. 1).  The loss is Eq. 4:

.. math:: L = (R_x + λ D_x) + α (R_y + λ D_y) + β R_w

with ``D = 255²·MSE`` and every rate in bits per pixel.  Only ``R_x`` is transmitted;
``R_y`` and ``R_w`` are regularisers (no bits are sent for y or w).

``NDICConfig.fusion = "opam"`` replaces the concatenation ``[v̂_x, w]`` in front of g_sx by
:class:`~mdic_lab.models.baselines.opam.OPAMFusion` (OmniParallax attention, ParaHydra
Appendix B, Eqs. 5–23): w, computed in y's view, is aligned to v̂_x's before it is fused.
"""

from __future__ import annotations

import math

import torch

from mdic_lab.config import NDICConfig
from mdic_lab.models.baselines._codec import ImageCodec, check_image
from mdic_lab.models.baselines.hyperprior import HyperCoder, analysis, synthesis
from mdic_lab.models.baselines.opam import OPAMFusion
from mdic_lab.models.entropy_models import EntropyBottleneck
from mdic_lab.coding.errors import BitstreamError

__all__ = ["NDIC"]


class NDIC(ImageCodec):
    """NDIC codec: ``forward(x, side)``, ``compress(x)``, ``decompress(strings, shape, side)``.

    Examples
    --------
    >>> from mdic_lab.config import NDICConfig
    >>> m = NDIC(NDICConfig(N=8, M=8, C_w=4, prior="factorized"))
    >>> out = m(torch.rand(1, 3, 32, 64), torch.rand(1, 3, 32, 64))
    >>> out["x_hat"].shape, out["likelihoods"]["y"].shape, out["w"].shape
    (torch.Size([1, 3, 32, 64]), torch.Size([1, 8, 2, 4]), torch.Size([1, 4, 2, 4]))
    """

    def __init__(self, config: NDICConfig):
        if not isinstance(config, NDICConfig):
            raise TypeError(f"NDIC needs an NDICConfig, got {type(config).__name__}")
        super().__init__(config)
        n, m, cw = config.N, config.M, config.C_w
        self.multiple = 64 if config.prior == "hyperprior" else 16
        self.g_ax = analysis(3, n, m)  # x → v_x (encoder)
        self.f = analysis(3, n, cw)  # y → w (decoder: common information)
        self.g_ay = analysis(3, n, m)  # y → v_y (decoder, training regulariser)
        self.g_sx = synthesis(m + cw, n)  # fuse(v̂_x, w) → x̂ (fuse: [v̂_x, w] or OPAM, M + C_w channels)
        self.g_sy = synthesis(m + cw, n)  # [v_y, w] → ŷ
        if config.prior == "hyperprior":
            self.hyper = HyperCoder(n, m)
        else:
            self.entropy_bottleneck = EntropyBottleneck(m)
        self.density_w = EntropyBottleneck(cw)  # p(w) of Eq. 1, gives R_w
        self.density_vy = EntropyBottleneck(m)  # p(v_y) of Eq. 1, gives R_y
        # built last, so that a concat model's weights are drawn as they always were
        self.fusion = OPAMFusion(m, cw, m + cw) if config.fusion == "opam" else None

    # ------------------------------------------------------------------ helpers
    def _check_pair(self, x, side):
        check_image(x, "x", self.multiple)
        if side is None:
            raise ValueError("NDIC needs the side image at the decoder: side must be a (B, 3, H, W) tensor, got None")
        check_image(side, "side", self.multiple)
        if side.shape != x.shape:
            raise ValueError(f"side must have the shape of x {tuple(x.shape)}, got {tuple(side.shape)}")

    def _code_latent(self, v, mode, generator):
        if self.config.prior == "hyperprior":
            return self.hyper(v, mode, generator)
        v_hat, lik = self.entropy_bottleneck(v, mode, generator)
        return v_hat, {"y": lik}

    def fuse(self, v_hat: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The input of g_sx: ``[v̂_x, w]`` (concat) or ``OPAMFusion(v̂_x, w)`` (opam), ``(B, M + C_w, h, w)``."""
        if self.fusion is None:
            return torch.cat([v_hat, w], dim=1)
        return self.fusion(v_hat, w)

    def common_information(self, side: torch.Tensor) -> torch.Tensor:
        """``w = f(y)``, computed at the decoder from the side image only."""
        return self.f(side)  # (B, C_w, H/16, W/16)

    # ------------------------------------------------------------------ training / evaluation
    def forward(self, x, side=None, mode="noise", generator=None) -> dict:
        """All terms of Eq. 4.

        Returns ``{"x_hat", "likelihoods"}`` (the transmitted latents, for R_x) plus
        ``"side_hat"`` (ŷ), ``"aux_likelihoods"`` (``"w"``, ``"v_y"``: for R_w, R_y), ``"w"``.
        """
        self._check_pair(x, side)
        v_x = self.g_ax(x)  # (B, M, H/16, W/16)
        v_hat, likelihoods = self._code_latent(v_x, mode, generator)
        w = self.common_information(side)  # (B, C_w, H/16, W/16)
        x_hat = self.g_sx(self.fuse(v_hat, w))  # (B, 3, H, W)
        v_y = self.g_ay(side)  # (B, M, H/16, W/16), neither quantized nor noisy
        side_hat = self.g_sy(torch.cat([v_y, w], dim=1))
        aux = {"w": self.density_w.likelihood(w), "v_y": self.density_vy.likelihood(v_y)}
        if mode == "dequantize":
            x_hat = x_hat.clamp(0.0, 1.0)
        return {"x_hat": x_hat, "likelihoods": likelihoods, "side_hat": side_hat, "aux_likelihoods": aux, "w": w}

    def loss(self, out: dict, x, side, lmbda: float = 0.0018) -> dict:
        """Eq. 4: ``(R_x + λD_x) + α(R_y + λD_y) + βR_w`` with ``D = 255²·MSE``, rates in bpp."""
        terms = self.rd_terms(out, x)
        n = x.shape[0] * self.num_pixels(x)
        r_y = torch.log(out["aux_likelihoods"]["v_y"]).sum() / (-math.log(2) * n)
        r_w = torch.log(out["aux_likelihoods"]["w"]).sum() / (-math.log(2) * n)
        mse_y = torch.mean((out["side_hat"] - side) ** 2)
        d = 255.0**2
        a, b = self.config.alpha, self.config.beta
        loss = (terms["bpp"] + lmbda * d * terms["mse"]) + a * (r_y + lmbda * d * mse_y) + b * r_w
        terms.update({"loss": loss, "r_y": r_y, "r_w": r_w, "mse_side": mse_y})
        return terms

    @torch.no_grad()
    def decompose(self, x, side) -> dict:
        """Fig. 7: the common part ``g_sx(fuse(0, w))``, the private part ``g_sx(fuse(v̂_x, 0))`` and x̂."""
        self._check_pair(x, side)
        v_hat, _ = self._code_latent(self.g_ax(x), "dequantize", None)
        w = self.common_information(side)
        return {
            "common": self.g_sx(self.fuse(torch.zeros_like(v_hat), w)).clamp(0, 1),
            "private": self.g_sx(self.fuse(v_hat, torch.zeros_like(w))).clamp(0, 1),
            "x_hat": self.g_sx(self.fuse(v_hat, w)).clamp(0, 1),
        }

    # ------------------------------------------------------------------ coding
    @torch.no_grad()
    def compress(self, x) -> dict:
        """Code x alone (the encoder never sees y): ``{"strings": [container bytes], "shape"}``."""
        check_image(x, "x", self.multiple)
        strings, shape = [], None
        for xi in x.split(1):
            v = self.g_ax(xi)
            shapes = {"x": tuple(xi.shape[-2:]), "v": tuple(v.shape[-2:])}
            if self.config.prior == "hyperprior":
                payloads, zshape = self.hyper.compress(v)
                shapes["z"] = zshape
            else:
                payloads = self.entropy_bottleneck.compress(v)
            shape = shapes["v"]
            strings.append(self._pack(shapes, payloads))
        return {"strings": strings, "shape": shape}

    @torch.no_grad()
    def decompress(self, strings, shape=None, side=None) -> torch.Tensor:
        """Decode with the side image: v̂_x from the bytes, ``w = f(side)``, ``x̂ = g_sx([v̂_x, w])``.

        A stream that cannot be decoded raises :class:`BitstreamError` naming the problem: its
        image size must be the side image's, its latent sizes those implied by it (checked
        before decoding), and its payloads must decode (``"payload 0 (v): range decoder failed …"``).
        """
        from mdic_lab.coding.container import declared_image_size, require_shape
        from mdic_lab.coding.errors import payload_context

        if side is None:
            raise ValueError("NDIC.decompress needs side=(B, 3, H, W) side image(s) at the decoder, got None")
        check_image(side, "side", self.multiple)
        if side.shape[0] != len(strings):
            raise ValueError(f"got {len(strings)} strings but {side.shape[0]} side images")
        hyper = self.config.prior == "hyperprior"
        out = []
        for s, yi in zip(strings, side.split(1)):
            c = self._unpack(s, 2 if hyper else 1, ("x", "v") + (("z",) if hyper else ()))
            h, w = declared_image_size(c, "x", self.multiple)
            if (h, w) != tuple(yi.shape[-2:]):
                raise BitstreamError(f"side image is {tuple(yi.shape[-2:])} but the coded image is {(h, w)}")
            v_shape = require_shape(c, "v", (h // 16, w // 16))
            if hyper:
                v_hat = self.hyper.decompress(c.payloads[0], c.payloads[1], require_shape(c, "z", (h // 64, w // 64)),
                                              names=("v", "z"))
            else:
                with payload_context(0, "v"):
                    v_hat = self.entropy_bottleneck.decompress(c.payloads, v_shape)
            if tuple(v_hat.shape[-2:]) != v_shape:
                raise BitstreamError(f"decoded latent is {tuple(v_hat.shape[-2:])}, the stream declares {v_shape}")
            w_common = self.common_information(yi)
            x_hat = self.g_sx(self.fuse(v_hat, w_common)).clamp(0.0, 1.0)
            if not bool(torch.isfinite(x_hat).all()):
                raise BitstreamError(f"the decoded latents (max |v̂| = {float(v_hat.abs().max()):.3g}) give a "
                                     "non-finite reconstruction: the payloads are corrupted")
            out.append(x_hat)
        return torch.cat(out)
