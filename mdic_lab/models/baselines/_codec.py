"""What every learned image codec of the package shares: input checks, ``update()``, the container.

A codec is built from its config dataclass (:mod:`mdic_lab.config`).  Its bitstream is the
container of :mod:`mdic_lab.coding.container`, tagged with the model identity
``"<ClassName>@<sha256 of config and weights>"`` so that a stream decoded by another model
(another class, config or set of weights) raises :class:`~mdic_lab.coding.errors.BitstreamError`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mdic_lab.coding import container
from mdic_lab.coding.errors import BitstreamError
from mdic_lab.config import config_to_dict
from mdic_lab.models.entropy_models import EntropyModel, TablesNotReady

__all__ = ["ImageCodec", "check_image"]


def check_image(x, name: str, multiple: int) -> torch.Tensor:
    """Check a batch of RGB images: float tensor (B, 3, H, W), finite, H and W multiples of ``multiple``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, 3, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor with values in [0, 1], got dtype {x.dtype}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(f"{name} has size {h}x{w}; expected height and width that are positive multiples of {multiple}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


class ImageCodec(nn.Module):
    """Base class: config, ``update()``, model identity, packing and checked unpacking."""

    #: Total down-sampling factor of the analysis transforms (image size must be a multiple).
    multiple = 16

    def __init__(self, config):
        super().__init__()
        self.config = config
        self._model_id: str | None = None
        self._id_version: int | None = None

    def entropy_models(self):
        return [m for m in self.modules() if isinstance(m, EntropyModel)]

    def _weights_version(self) -> int:
        return sum(int(p._version) for p in self.parameters())

    @torch.no_grad()
    def update(self) -> "ImageCodec":
        """Build every entropy model's coding tables and fix the model identity; call before coding."""
        for m in self.entropy_models():
            m.update()
        self._model_id = container.model_fingerprint(type(self).__name__, config_to_dict(self.config), self.state_dict())
        self._id_version = self._weights_version()
        return self

    @property
    def model_id(self) -> str:
        """``"<ClassName>@<hash of config and weights>"`` (requires :meth:`update`)."""
        if self._model_id is None or self._id_version != self._weights_version():
            raise TablesNotReady(f"{type(self).__name__}: call model.update() before compress()/decompress()")
        return self._model_id

    def _pack(self, shapes: dict, payloads: list) -> bytes:
        return container.pack(self.model_id, shapes, payloads)

    def _unpack(self, data: bytes, n_payloads: int, shape_names: tuple) -> container.Container:
        c = container.unpack(data, expected_model_id=self.model_id)
        if len(c.payloads) != n_payloads:
            raise BitstreamError(f"{type(self).__name__} expects {n_payloads} payloads, the stream has {len(c.payloads)}")
        for name in shape_names:
            if name not in c.shapes:
                raise BitstreamError(f"stream lacks the shape {name!r} that {type(self).__name__} needs")
        return c

    @staticmethod
    def num_pixels(x: torch.Tensor) -> int:
        return int(x.shape[-2] * x.shape[-1])

    def rd_terms(self, out: dict, x: torch.Tensor) -> dict:
        """Estimated rate of x in bits/pixel (Σ −log2 p over the transmitted latents) and MSE."""
        n = x.shape[0] * self.num_pixels(x)
        bpp = sum(torch.log(lk).sum() for lk in out["likelihoods"].values()) / (-math.log(2) * n)
        mse = torch.mean((out["x_hat"] - x) ** 2)
        return {"bpp": bpp, "mse": mse}
