"""Training pairs held in memory for the training loop.

:class:`PairBank` reads a data set once, in order (friendly to the synthetic world's chunk
cache), and keeps both views as 8-bit images; :class:`LatentBank` adds the frozen VAE's
latents of both views (MDIC), computed once.  Images are 8-bit by nature (the synthetic
world stores uint8, real data sets are PNG), so ``round(255·v)/255`` gives the values back
exactly.
"""

from __future__ import annotations

import torch

__all__ = ["PairBank", "LatentBank", "crop_pairs"]


def _to_uint8(t: torch.Tensor) -> torch.Tensor:
    return (t.float().clamp(0, 1) * 255.0).round().to(torch.uint8)


class PairBank:
    """All pairs of ``dataset`` (items with ``left``, ``right`` (3, H, W) in [0, 1], optional ``caption``)."""

    def __init__(self, dataset):
        from mdic_lab.data.sources import describe_dataset

        self.source = describe_dataset(dataset)  # the run's ``data`` record (config.json)
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            raise ValueError("the training dataset is empty")
        self.left = torch.stack([_to_uint8(it["left"]) for it in items])  # (n, 3, H, W) uint8
        self.right = torch.stack([_to_uint8(it["right"]) for it in items])
        self.captions = [it.get("caption") for it in items]  # captions of the side views (None if none)

    def __len__(self) -> int:
        return self.left.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"left": self.left[i].float() / 255.0, "right": self.right[i].float() / 255.0}


class LatentBank(PairBank):
    """A :class:`PairBank` whose items must have captions, plus (with a backbone) the VAE latents of both views."""

    def __init__(self, dataset, backbone=None, batch: int = 16):
        super().__init__(dataset)
        if any(c is None for c in self.captions):
            raise KeyError("MDIC training pairs need a 'caption' of the side view (the dataset's items have none)")
        self.z_left = self.z_right = None
        if backbone is not None:  # E_vae is frozen and deterministic (posterior mode)
            from mdic_lab.models.mdic.backbone import encode_memo

            with torch.no_grad(), encode_memo():  # a batch a sweep worker's earlier cell met: from the memo
                def enc(u8):
                    return torch.cat([backbone.encode_image(u8[i:i + batch].float() / 127.5 - 1.0)
                                      for i in range(0, u8.shape[0], batch)])

                self.z_left, self.z_right = enc(self.left), enc(self.right)

    def batch(self, idx: torch.Tensor) -> dict:
        out = {"left": self.left[idx].float() / 255.0, "right": self.right[idx].float() / 255.0,
               "caption": [self.captions[int(i)] for i in idx]}
        if self.z_left is not None:
            out["z_left"], out["z_right"] = self.z_left[idx], self.z_right[idx]
        return out


def crop_pairs(bank: PairBank, idx, crop, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x (left) and y (right) of the pairs ``idx``, each pair cropped at one random place (``crop=None``: whole)."""
    xs, ys = [], []
    for i in idx:
        item = bank[int(i)]
        x, y = item["left"], item["right"]  # (3, H, W) in [0, 1]
        if crop is not None:
            h, w = x.shape[-2:]
            top = int(torch.randint(0, h - crop[0] + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - crop[1] + 1, (1,), generator=gen))
            x = x[:, top:top + crop[0], left:left + crop[1]]
            y = y[:, top:top + crop[0], left:left + crop[1]]
        xs.append(x)
        ys.append(y)
    return torch.stack(xs).float(), torch.stack(ys).float()
