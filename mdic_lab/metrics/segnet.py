"""A small segmentation network for mIoU on the synthetic stereo world (trained once, cached).

MDIC (Sec. 4, Fig. 7) measures *object-level semantic consistency* with the mean
Intersection over Union of a segmentation of the reconstruction ``Î_x`` (mIoU, after
Long et al.'s FCN, the paper's ref. [18]) against the labels of the original ``I_x``.
The synthetic world ships exact per-pixel labels
(:data:`mdic_lab.data.synthetic.CLASS_NAMES`, 17 classes), so here the segmenter is a
tiny U-Net (0.31 M parameters, 4 levels, 8 channels at full resolution, plus a
row-position input channel) trained on the world's *train* split:

* trained once with AdamW and class-weighted cross-entropy (a few minutes on one CPU
  core), on 64x128 crops of the 128x256 left views -- half of them centred on a pixel
  of a uniformly drawn class, so that rare classes (bench, traffic light) are seen --
  with horizontal flips, and half of them blurred (2x/4x down-up) so that the net reads
  the semantics rather than the sharpness of a soft low-rate reconstruction;
* cached at ``<root>/<generator id>-<config hash>/model.pt`` (``root`` =
  ``$MDIC_LAB_CACHE/segnet`` or ``~/.cache/mdic_lab/segnet``), written atomically, with
  the config and :data:`~mdic_lab.data.synthetic.GENERATOR_ID` stored inside; a
  checkpoint made for another generator version or another config is never reused;
* its own mIoU on clean test images (``ceiling``) is measured after training and
  stored in the checkpoint: the reference a reconstruction's mIoU is read against.

``reconstruction_miou(net, x_hat, labels)`` is the metric::

    mIoU(Î_x) = (1/|C'|) Σ_{c∈C'} TP_c / (TP_c + FP_c + FN_c),   TP/FP/FN of segment(Î_x) vs labels(I_x)

(:func:`mdic_lab.metrics.segmentation.miou`, classes absent from both maps skipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import MetricUnavailable
from .segmentation import confusion_matrix, miou, per_class_iou

__all__ = [
    "NUM_CLASSES",
    "SegNetConfig",
    "SegNet",
    "default_segnet_root",
    "segnet_cache_path",
    "train_segnet",
    "load_or_train_segnet",
    "load_segnet",
    "segnet_is_training",
    "segment",
    "reconstruction_miou",
    "clean_miou",
    "majority_baseline_miou",
]

#: Number of semantic classes of the synthetic world (``len(CLASS_NAMES)``).
NUM_CLASSES = 17
_FORMAT = 1  # bump when the checkpoint layout, the architecture or the training code changes
#              (code is not hashed: an old checkpoint would otherwise be reused)


@dataclass(frozen=True)
class SegNetConfig:
    """Everything that determines the trained network (hashed into the cache folder name)."""

    width: int = 8  # channels at full resolution; level k has width * 2**k (capped by max_width)
    levels: int = 4  # number of 2x downsamplings (inputs are padded to a multiple of 2**levels)
    max_width: int = 64  # channel cap of the deepest levels
    steps: int = 1200  # AdamW steps
    batch_size: int = 8  # crops per step
    crop: tuple = (64, 128)  # training crop (H, W) taken from the 128x256 left views
    lr: float = 3e-3  # peak learning rate (linear warm-up, cosine decay to lr / 20)
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    norm: str = "batch"  # normalisation in the conv blocks: "batch" or "group" (4 groups)
    row_coord: bool = True  # add the pixel's vertical position (-1 top … 1 bottom) as a 4th input channel
    rare_crop_fraction: float = 0.5  # share of crops centred on a pixel of a uniformly drawn class
    blur_fraction: float = 0.5  # share of crops blurred (2x or 4x average-pool + bilinear up), so
    #                             the net reads semantics, not sharpness, of soft reconstructions
    class_weight_power: float = 0.5  # CE class weights ∝ freq**(-power), mean 1 (0 = unweighted)
    train_length: int = 1576  # left views of the train split used (KITTI-sized default: all)
    data_seed: int = 0  # world seed of SyntheticStereo
    size: tuple = (128, 256)  # (H, W) of the world's images
    seed: int = 0  # weight init and crop/batch sampling
    eval_length: int = 100  # clean test images on which the ceiling mIoU is measured

    def __post_init__(self):
        for name in ("width", "levels", "max_width", "steps", "batch_size", "train_length", "eval_length"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SegNetConfig.{name} must be a positive int, got {v!r}")
        for name in ("crop", "size"):
            v = tuple(getattr(self, name))
            if len(v) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 8 for s in v):
                raise ValueError(f"SegNetConfig.{name} must be (height, width) ints >= 8, got {v!r}")
            object.__setattr__(self, name, (int(v[0]), int(v[1])))
        if self.crop[0] > self.size[0] or self.crop[1] > self.size[1]:
            raise ValueError(f"SegNetConfig.crop {self.crop} is larger than the image size {self.size}")
        if self.norm not in ("batch", "group"):
            raise ValueError(f"unknown SegNetConfig.norm {self.norm!r} (expected one of: batch, group)")
        if not 0 <= self.blur_fraction <= 1:
            raise ValueError(f"SegNetConfig.blur_fraction must be in [0, 1], got {self.blur_fraction!r}")
        if not 0 <= self.rare_crop_fraction <= 1:
            raise ValueError(f"SegNetConfig.rare_crop_fraction must be in [0, 1], got {self.rare_crop_fraction!r}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.class_weight_power >= 0):
            raise ValueError("SegNetConfig needs lr > 0, weight_decay >= 0 and class_weight_power >= 0")
        if self.seed < 0 or self.data_seed < 0:
            raise ValueError(f"SegNetConfig seeds must be non-negative, got seed={self.seed}, "
                             f"data_seed={self.data_seed}")

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (tuples as lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SegNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SegNetConfig field {unknown[0]!r} (expected one of: {', '.join(sorted(known))})")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def key(self) -> str:
        """16-hex-digit hash of the config and the checkpoint format."""
        blob = json.dumps({"config": self.to_dict(), "format": _FORMAT}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# The network: a tiny U-Net
# ---------------------------------------------------------------------------------------


def _block(cin: int, cout: int, norm: str) -> nn.Sequential:
    """conv3x3 → norm → ReLU, twice."""
    def nrm():
        return nn.BatchNorm2d(cout) if norm == "batch" else nn.GroupNorm(4, cout)

    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nrm(), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nrm(), nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    """Tiny U-Net: ``levels`` max-pool downsamplings, bilinear upsampling with skip connections.

    ``forward(images)`` takes ``(B, 3, H, W)`` images in [0, 1] and returns class logits
    ``(B, NUM_CLASSES, H, W)``; ``H`` and ``W`` are padded (replicate) to a multiple of
    ``2**levels`` internally and cropped back.  ``self.report`` holds the training report
    (time, final loss, ceiling mIoU, ``source`` = ``"trained"`` or ``"cache"``).

    >>> net = SegNet(SegNetConfig(width=8, levels=2, max_width=16))
    >>> tuple(net(torch.rand(1, 3, 20, 36)).shape)
    (1, 17, 20, 36)
    """

    def __init__(self, config: SegNetConfig | None = None):
        super().__init__()
        self.config = config = config or SegNetConfig()
        w = [min(config.width * 2 ** k, config.max_width) for k in range(config.levels + 1)]
        cin = 4 if config.row_coord else 3
        self.down = nn.ModuleList([_block(cin, w[0], config.norm)]
                                  + [_block(w[k - 1], w[k], config.norm) for k in range(1, len(w))])
        self.up = nn.ModuleList([_block(w[k + 1] + w[k], w[k], config.norm) for k in range(config.levels)])
        self.head = nn.Conv2d(w[0], NUM_CLASSES, 1)
        self.report: dict = {}

    def forward(self, images: torch.Tensor, top=None, full_height: int | None = None) -> torch.Tensor:
        """Logits ``(B, K, H, W)``; ``top`` (per-sample first row) and ``full_height`` place a crop."""
        b, _, h, w = images.shape
        m = 2 ** self.config.levels
        ph, pw = (-h) % m, (-w) % m
        x = (images - 0.5) / 0.25  # (B, 3, H, W) roughly zero-mean, unit-scale
        if self.config.row_coord:
            full = h if full_height is None else full_height
            top = torch.zeros(b) if top is None else torch.as_tensor(top, dtype=torch.float32)
            rows = top.view(b, 1) + torch.arange(h, dtype=torch.float32).view(1, h)  # (B, H)
            y = rows / max(full - 1, 1) * 2 - 1
            x = torch.cat([x, y.view(b, 1, h, 1).expand(b, 1, h, w).to(x.dtype)], dim=1)  # (B, 4, H, W)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for k, blk in enumerate(self.down):
            x = blk(x if k == 0 else F.max_pool2d(x, 2))  # (B, w_k, H/2^k, W/2^k)
            skips.append(x)
        x = skips.pop()
        for k in reversed(range(self.config.levels)):
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[k](torch.cat([x, skip], dim=1))  # (B, w_k, H/2^k, W/2^k)
        return self.head(x)[..., :h, :w]  # (B, K, H, W)


# ---------------------------------------------------------------------------------------
# Inputs, inference and the metric
# ---------------------------------------------------------------------------------------


def _check_images(images, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"{name} is empty: shape {tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or inf")
    return images.detach().float()


def _check_labels(labels, b: int, h: int, w: int, name: str = "labels") -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(np.asarray(labels))
    if tuple(labels.shape) != (b, h, w):
        raise ValueError(f"{name} must have shape (B, H, W) = {(b, h, w)} to match the images, "
                         f"got {tuple(labels.shape)}")
    if torch.is_floating_point(labels) or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be integer class ids, got dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES):
        raise ValueError(f"{name} has class ids outside [0, {NUM_CLASSES - 1}] "
                         f"(found [{int(labels.min())}, {int(labels.max())}])")
    return labels.long()


@torch.no_grad()
def segment(net: SegNet, images, batch_size: int = 16) -> torch.Tensor:
    """Per-pixel class ids ``argmax_c net(images)_c``: ``(B, 3, H, W)`` in [0, 1] → int64 ``(B, H, W)``.

    Values outside [0, 1] (e.g. an unclamped decoder output) are clamped first.

    >>> net = SegNet(SegNetConfig(width=8, levels=2, max_width=16))
    >>> segment(net, torch.rand(2, 3, 16, 32)).shape
    torch.Size([2, 16, 32])
    """
    if not isinstance(net, SegNet):
        raise TypeError(f"net must be a SegNet (from load_or_train_segnet), got {type(net).__name__}")
    images = _check_images(images).clamp(0, 1)
    was_training = net.training
    net.eval()
    try:
        out = [net(images[i:i + batch_size]).argmax(1) for i in range(0, images.shape[0], batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(out)  # (B, H, W)


def _confusion(net: SegNet, images, labels) -> np.ndarray:
    images = _check_images(images, "x_hat")
    labels = _check_labels(labels, images.shape[0], images.shape[2], images.shape[3])
    return confusion_matrix(segment(net, images).numpy(), labels.numpy(), NUM_CLASSES)


def reconstruction_miou(net: SegNet, x_hat, labels) -> float:
    """mIoU of ``segment(net, x_hat)`` against the ground-truth labels of the *originals*.

    ``mIoU = (1/|C'|) Σ_{c∈C'} TP_c / (TP_c + FP_c + FN_c)``, pooled over the batch, with
    ``C'`` the classes present in the prediction or the ground truth
    (:func:`~mdic_lab.metrics.segmentation.miou`).

    Parameters
    ----------
    net : SegNet
        From :func:`load_or_train_segnet`.
    x_hat : tensor (B, 3, H, W)
        Reconstructions in [0, 1].
    labels : int tensor (B, H, W)
        Class ids of the original images (``SyntheticStereo`` items' ``labels``).
    """
    cm = _confusion(net, x_hat, labels)
    iou = per_class_iou(cm)
    return float(np.nanmean(iou))


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _load_split(split: str, length: int, config: SegNetConfig, data_cache_dir=None):
    """Left views as uint8 ``(n, 3, H, W)`` and labels as uint8 ``(n, H, W)``."""
    from mdic_lab.data.synthetic import SPLITS, SyntheticStereo

    if length > SPLITS[split]:
        raise ValueError(f"{split} length {length} exceeds the split size {SPLITS[split]}")
    ds = SyntheticStereo(split, seed=config.data_seed, size=config.size, length=length, cache_dir=data_cache_dir)
    imgs = torch.empty((length, 3) + config.size, dtype=torch.uint8)
    labs = torch.empty((length,) + config.size, dtype=torch.uint8)
    for i in range(length):
        item = ds[i]
        imgs[i] = (item["left"] * 255).round().to(torch.uint8)
        labs[i] = item["labels"].to(torch.uint8)
    return imgs, labs


def _class_weights(labels: torch.Tensor, power: float) -> torch.Tensor:
    """``w_c ∝ (freq_c + eps)**(-power)``, normalised to pixel-weighted mean 1."""
    freq = torch.bincount(labels.flatten().long(), minlength=NUM_CLASSES).double()
    freq = freq / freq.sum()
    w = (freq + 1e-4) ** (-power)
    w = w / (w * freq).sum()
    return w.float()


def _class_positions(labels: torch.Tensor, g: torch.Generator, keep: int = 20000) -> list:
    """Per present class, up to ``keep`` random ``(image, row, col)`` positions of its pixels."""
    out = []
    for c in range(NUM_CLASSES):
        pos = torch.nonzero(labels == c)  # (P, 3)
        if len(pos):
            if len(pos) > keep:
                pos = pos[torch.randperm(len(pos), generator=g)[:keep]]
            out.append(pos)
    return out


def majority_baseline_miou(train_labels, test_labels) -> float:
    """mIoU of the trivial segmenter that predicts the most frequent *train* class everywhere.

    >>> majority_baseline_miou([[0, 0, 1]], [[0, 1, 1]])   # IoU_0 = 1/3, IoU_1 = 0
    0.16666666666666666
    """
    train = torch.as_tensor(np.asarray(train_labels)).long()
    test = np.asarray(test_labels).astype(np.int64)
    c = int(torch.bincount(train.flatten()).argmax())
    return miou(np.full_like(test, c), test, max(NUM_CLASSES, c + 1, int(test.max()) + 1))


# ---------------------------------------------------------------------------------------
# Training and the cache
# ---------------------------------------------------------------------------------------


def default_segnet_root() -> Path:
    """``$MDIC_LAB_CACHE/segnet`` if set, else ``~/.cache/mdic_lab/segnet``."""
    base = os.environ.get("MDIC_LAB_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "mdic_lab") / "segnet"


def segnet_cache_path(config: SegNetConfig, cache_dir=None) -> Path:
    """``<cache_dir or default_segnet_root()>/<GENERATOR_ID>-<config.key()>/model.pt``."""
    from mdic_lab.data.synthetic import GENERATOR_ID

    root = Path(cache_dir) if cache_dir is not None else default_segnet_root()
    return root / f"{GENERATOR_ID}-{config.key()}" / "model.pt"


def _lr_at(step: int, config: SegNetConfig) -> float:
    warm = max(1, config.steps // 20)
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, config.steps - warm)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _progress(total, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def clean_miou(net: SegNet, n: int | None = None, split: str = "test", data_cache_dir=None) -> dict:
    """The ceiling: mIoU of ``net`` on ``n`` clean left views of ``split`` (default ``eval_length``).

    Returns ``{"miou", "per_class_iou" (name -> IoU or None if absent), "n", "split"}``.
    """
    from mdic_lab.data.synthetic import CLASS_NAMES

    n = net.config.eval_length if n is None else int(n)
    imgs, labs = _load_split(split, n, net.config, data_cache_dir)
    cm = _confusion(net, imgs.float() / 255, labs.long())
    iou = per_class_iou(cm)
    return {"miou": float(np.nanmean(iou)), "n": n, "split": split,
            "per_class_iou": {name: (None if np.isnan(v) else round(float(v), 4))
                              for name, v in zip(CLASS_NAMES, iou)}}


def train_segnet(config: SegNetConfig, progress: bool = False, data_cache_dir=None) -> SegNet:
    """Train a :class:`SegNet` on the train split's left views (one CPU thread); no caching.

    Minimises the class-weighted cross-entropy ``-Σ_p w_{y_p} log softmax(f(I))_{p, y_p} / Σ_p w_{y_p}``
    with AdamW over ``crop``-sized windows (a share ``rare_crop_fraction`` centred on a pixel of
    a uniformly drawn class, the rest uniform; horizontal flips; a share ``blur_fraction``
    blurred by 2x or 4x average-pooling and bilinear upsampling), then measures
    the ceiling mIoU on ``eval_length`` clean test images.  ``net.report`` holds the
    training time, the final loss, the ceiling, and the majority-class baseline mIoU.
    """
    from mdic_lab.data.synthetic import CLASS_NAMES, GENERATOR_ID

    if len(CLASS_NAMES) != NUM_CLASSES:
        raise RuntimeError(f"the synthetic world has {len(CLASS_NAMES)} classes, SegNet expects {NUM_CLASSES}")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t_data = time.perf_counter()
        imgs, labs = _load_split("train", config.train_length, config, data_cache_dir)
        t_data = time.perf_counter() - t_data
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)  # weight init only; the global RNG is restored on exit
            net = SegNet(config)
        g = torch.Generator().manual_seed(config.seed)
        weights = _class_weights(labs, config.class_weight_power)
        where = _class_positions(labs, g)
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        (H, W), (ch, cw) = config.size, config.crop
        net.train()
        t0 = time.perf_counter()
        ema = None
        bar = _progress(config.steps, "train segnet", progress)
        for step in range(config.steps):
            idx = torch.randint(0, imgs.shape[0], (config.batch_size,), generator=g)
            top = torch.randint(0, H - ch + 1, (config.batch_size,), generator=g)
            lft = torch.randint(0, W - cw + 1, (config.batch_size,), generator=g)
            centred = torch.rand(config.batch_size, generator=g) < config.rare_crop_fraction
            for b in torch.nonzero(centred).flatten().tolist():  # class-balanced crops (for mIoU)
                pos = where[int(torch.randint(0, len(where), (1,), generator=g))]
                n, r, c = pos[int(torch.randint(0, len(pos), (1,), generator=g))].tolist()
                idx[b] = n
                top[b] = min(max(r - ch // 2, 0), H - ch)
                lft[b] = min(max(c - cw // 2, 0), W - cw)
            top, lft = top.tolist(), lft.tolist()
            flip = (torch.rand(config.batch_size, generator=g) < 0.5).tolist()
            xs, ys = [], []
            for i, t, l, f in zip(idx.tolist(), top, lft, flip):
                x, y = imgs[i, :, t:t + ch, l:l + cw], labs[i, t:t + ch, l:l + cw]
                if f:
                    x, y = x.flip(-1), y.flip(-1)
                xs.append(x)
                ys.append(y)
            x = torch.stack(xs).float() / 255  # (B, 3, ch, cw)
            blur = torch.rand(config.batch_size, generator=g) < config.blur_fraction
            factor = torch.randint(1, 3, (config.batch_size,), generator=g)  # 2**1 or 2**2
            for b in torch.nonzero(blur).flatten().tolist():  # soft, low-rate-looking inputs
                f = 2 ** int(factor[b])
                x[b] = F.interpolate(F.avg_pool2d(x[b:b + 1], f, ceil_mode=True), size=(ch, cw),
                                     mode="bilinear", align_corners=False)[0]
            y = torch.stack(ys).long()  # (B, ch, cw)
            for grp in opt.param_groups:
                grp["lr"] = _lr_at(step, config)
            loss = F.cross_entropy(net(x, top=top, full_height=H), y, weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss = loss.detach()
            ema = float(loss) if ema is None else 0.95 * ema + 0.05 * float(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{ema:.3f}")
        bar.close()
        train_seconds = time.perf_counter() - t0
        net.eval()
        t1 = time.perf_counter()
        ceiling = clean_miou(net, config.eval_length, "test", data_cache_dir)
        _, test_labs = _load_split("test", config.eval_length, config, data_cache_dir)
        net.report = {
            "source": "trained",
            "generator_id": GENERATOR_ID,
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": round(train_seconds, 2),
            "data_seconds": round(t_data, 2),
            "eval_seconds": round(time.perf_counter() - t1, 2),
            "final_loss_ema": round(ema, 4),
            "clean_test_miou": ceiling["miou"],
            "clean_test_per_class_iou": ceiling["per_class_iou"],
            "clean_test_n": ceiling["n"],
            "majority_baseline_miou": majority_baseline_miou(labs, test_labs.long()),
        }
    finally:
        torch.set_num_threads(prev_threads)
    return net


def _save(net: SegNet, path: Path) -> None:
    from mdic_lab.atomic import atomic_write
    from mdic_lab.data.synthetic import GENERATOR_ID

    blob = {"format": _FORMAT, "generator_id": GENERATOR_ID, "config": net.config.to_dict(),
            "state_dict": net.state_dict(), "report": net.report}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), binary=True)


def _load(path: Path, config: SegNetConfig) -> SegNet | None:
    """The cached net at ``path`` if it was made for this generator and config, else ``None``."""
    from mdic_lab.data.synthetic import GENERATOR_ID

    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if (blob.get("format") != _FORMAT or blob.get("generator_id") != GENERATOR_ID
                or SegNetConfig.from_dict(blob["config"]) != config):
            return None
        net = SegNet(config)
        net.load_state_dict(blob["state_dict"])
    except Exception:  # unreadable / corrupted / foreign checkpoint: not reused
        return None
    net.report = dict(blob.get("report", {}), source="cache", path=str(path))
    net.eval()
    return net


def _config(seed: int, steps: int | None, config: SegNetConfig | None) -> SegNetConfig:
    config = config or SegNetConfig()
    over = {"seed": seed} if seed != config.seed else {}
    if steps is not None:
        over["steps"] = steps
    return SegNetConfig.from_dict({**config.to_dict(), **over}) if over else config


def load_segnet(cache_dir=None, seed: int = 0, steps: int | None = None,
                config: SegNetConfig | None = None, wait: bool = False) -> SegNet:
    """The cached net for this config and generator; :class:`MetricUnavailable` if not trained yet.

    ``wait``: when the net is not cached, first wait for a process that is training it now (it
    holds the cache entry's lock, see :func:`load_or_train_segnet`), then load what it saved."""
    cfg = _config(seed, steps, config)
    path = segnet_cache_path(cfg, cache_dir)
    net = _load(path, cfg)
    if net is None and wait:
        with _training_lock(path):
            net = _load(path, cfg)
    if net is None:
        raise MetricUnavailable(
            f"no trained segmentation net for the synthetic world at {path} (or it was made for "
            f"another generator version); build it once with "
            f"mdic_lab.metrics.segnet.load_or_train_segnet() (a few minutes on one CPU core)")
    return net


def load_or_train_segnet(cache_dir=None, seed: int = 0, steps: int | None = None, progress: bool = False,
                         config: SegNetConfig | None = None, data_cache_dir=None) -> SegNet:
    """Load the cached segmentation net, or train it once and cache it.

    Training the default config takes 3-6 minutes on one CPU core (measured: 350 s of
    training on a shared 2-core machine), once per generator version.

    Parameters
    ----------
    cache_dir : path, optional
        Root of the cache; default :func:`default_segnet_root`.  The checkpoint is
        ``<cache_dir>/<GENERATOR_ID>-<config hash>/model.pt``.
    seed : int
        Weight init and crop sampling seed (overrides ``config.seed``).
    steps : int, optional
        AdamW steps (overrides ``config.steps``; default :class:`SegNetConfig`'s 1200).
    progress : bool
        Show a progress bar while training.
    config : SegNetConfig, optional
        Full configuration (width, crop, train length ...).
    data_cache_dir : path, optional
        Cache folder of the synthetic world (default that of ``SyntheticStereo``).

    Returns
    -------
    SegNet
        In eval mode; ``net.report["source"]`` is ``"cache"`` or ``"trained"`` and
        ``net.report["clean_test_miou"]`` is the ceiling mIoU on clean test images.
    """
    cfg = _config(seed, steps, config)
    path = segnet_cache_path(cfg, cache_dir)
    net = _load(path, cfg)
    if net is not None:
        return net
    with _training_lock(path):  # one trainer per cache entry; the others wait for it, then load its net
        net = _load(path, cfg)
        if net is not None:
            return net
        net = train_segnet(cfg, progress=progress, data_cache_dir=data_cache_dir)
        _save(net, path)
    net.report["path"] = str(path)
    return net


def segnet_is_training(cache_dir=None, seed: int = 0, steps: int | None = None,
                       config: SegNetConfig | None = None) -> bool:
    """True while a process holds the cache entry's training lock (see :func:`load_or_train_segnet`)."""
    lock = _lock_path(segnet_cache_path(_config(seed, steps, config), cache_dir))
    fcntl = _fcntl()
    if fcntl is None or not lock.is_file():
        return False
    with open(lock) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def _fcntl():
    """The ``fcntl`` module, or ``None`` where there is none (not POSIX: no training lock at all, so at
    worst two processes train the same net, and nobody is ever seen training it)."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def _lock_path(path: Path) -> Path:
    """``<model.pt>.lock``: the file the trainer of a cache entry locks (and the probe looks at)."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _training_lock(path: Path):
    """An exclusive ``fcntl`` lock on ``<path>.lock``: processes that need the same net (the cells of a
    sweep, say) wait for the one training it instead of training it again.  The kernel frees the lock
    when its holder dies, so a killed trainer never blocks the others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fcntl = _fcntl()
    if fcntl is None:
        yield
        return
    with open(_lock_path(path), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
