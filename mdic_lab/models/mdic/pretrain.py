"""Pretrain the small latent-diffusion backbone of the laptop presets once, cache it, freeze it.

The paper takes E_vae/D_vae and the CLIP text encoder pretrained (Stable Diffusion 2.1-base)
and freezes them.  The ``smoke`` and ``lab`` presets have no such weights, so this module
gives their small backbone (built by :meth:`Backbone.from_config`) the same *role* by
training it once on the synthetic stereo world:

* the VAE by reconstruction with a small KL term (the latent-diffusion autoencoder
  objective without the adversarial and perceptual terms)::

      L_vae = ||D_vae(μ(I)) − I||² + β_KL · KL(q(z | I) || N(0, I))

  decoded from the posterior mean μ (MDIC encodes with the mean, ``Backbone.encode_image``;
  decoding samples would only slow the small model down while log σ is still large),
  after which ``scaling_factor`` is set to ``1 / std(z)`` over the training images, so
  ``z_L = scaling_factor · E_vae(I)`` has unit variance like SD's latents (Eq. 15 assumes it);
* the CLIP text encoder contrastively against images (CLIP's InfoNCE): a small image tower
  ``f_img`` embeds the side view I_y, the text encoder's pooled output embeds its caption,
  and with cosine similarities ``s_ij`` and a learned temperature ``τ``::

      L_clip = ½ [CE(s / τ, diag) + CE(sᵀ / τ, diag)]

  The image tower is thrown away afterwards; only the text encoder is kept.

The result is written with :meth:`Backbone.save_pretrained` into
``~/.cache/mdic_lab/backbones/<preset>-<hash>`` (``hash`` covers the VAE and text fields of
the config, the pretraining config and the data generator; the UNet ε_θ is not pretrained and
is built fresh from the config at every load), atomically (a temporary folder is
renamed into place), together with ``pretrain.json`` (the measured VAE reconstruction PSNR,
the contrastive retrieval accuracy, the time taken).  Later calls load it with
:meth:`Backbone.from_pretrained`, whose VAE and text encoder are frozen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone
from .config import PRESET_ALIASES

__all__ = ["PretrainConfig", "PRETRAIN_PRESETS", "ImageTower", "pretrain_backbone", "backbone_cache_dir",
           "load_or_pretrain_backbone", "default_backbone_root", "vae_psnr", "info_nce"]

#: Fields of :class:`MDICConfig` that shape the pretrained parts (and hence the cache key).  The
#: UNet is not pretrained: it is built fresh from the config (seeded) whenever the backbone loads,
#: so UNet fields can change without pretraining again.
BACKBONE_FIELDS = ("image_size", "vae_block_out_channels", "vae_layers_per_block", "vae_latent_channels",
                   "vae_norm_num_groups", "text_hidden_size", "text_num_layers",
                   "text_num_heads", "text_intermediate_size", "max_text_length", "num_train_timesteps")


@dataclass(frozen=True)
class PretrainConfig:
    """How the small backbone is pretrained on the synthetic world (per preset: :data:`PRETRAIN_PRESETS`)."""

    vae_steps: int = 400  # AdamW steps of the VAE reconstruction objective (lab: 2400)
    vae_batch_size: int = 16  # images per VAE step (left and right views are both used)
    vae_crop: tuple | None = (32, 64)  # random crop (H, W) for the (fully convolutional) VAE; None = whole image
    vae_lr: float = 2e-3  # AdamW learning rate of the VAE
    vae_kl_weight: float = 1e-6  # β_KL: a small KL keeps the latent near N(0, I) without blurring
    vae_warmup_steps: int = 0  # linear lr warm-up steps of the VAE
    vae_final_lr_fraction: float = 1.0  # cosine decay of the VAE lr to this fraction of vae_lr (1.0 = constant)
    vae_hflip: bool = False  # random horizontal flips of the VAE crops (a street scene mirrored is a street scene)
    text_steps: int = 100  # AdamW steps of the contrastive text/image objective
    text_batch_size: int = 32  # caption/side-view pairs per InfoNCE batch
    text_lr: float = 1e-3  # AdamW learning rate of text encoder + image tower
    tower_size: tuple = (32, 64)  # the image tower sees the side view resized to this (H, W)
    train_length: int = 128  # synthetic training pairs
    eval_length: int = 32  # synthetic validation pairs for the reported PSNR / retrieval accuracy
    data_seed: int = 0  # seed of the synthetic world
    seed: int = 0  # weight init, batch order, crops, posterior samples
    num_threads: int = 1  # torch CPU threads (the machine is shared)

    def __post_init__(self):
        for name in ("vae_steps", "vae_batch_size", "text_steps", "text_batch_size", "train_length",
                     "eval_length", "num_threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name.endswith("steps") else 1):
                raise ValueError(f"PretrainConfig.{name} must be a {'non-negative' if name.endswith('steps') else 'positive'} int, got {v!r}")
        for name in ("vae_lr", "text_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PretrainConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if isinstance(self.vae_warmup_steps, bool) or not isinstance(self.vae_warmup_steps, int) or self.vae_warmup_steps < 0:
            raise ValueError(f"PretrainConfig.vae_warmup_steps must be a non-negative int, got {self.vae_warmup_steps!r}")
        if not 0 < self.vae_final_lr_fraction <= 1:
            raise ValueError(f"PretrainConfig.vae_final_lr_fraction must lie in (0, 1], got {self.vae_final_lr_fraction!r}")
        if self.vae_crop is not None:
            object.__setattr__(self, "vae_crop", tuple(int(v) for v in self.vae_crop))
        object.__setattr__(self, "tower_size", tuple(int(v) for v in self.tower_size))

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


#: Pretraining per preset (``paper`` loads Stable Diffusion instead and has none).
PRETRAIN_PRESETS = {
    "smoke": PretrainConfig(vae_steps=4, vae_batch_size=2, vae_crop=None, text_steps=4, text_batch_size=4,
                            tower_size=(16, 32), train_length=8, eval_length=4),
    # lab: 2400 VAE steps on 64×128 crops (batch 8, flips, warm-up + cosine decay) over 512 pairs →
    # 22.7 dB validation PSNR with colours and objects (37 min on the shared machine, ~20 CPU-minutes; once,
    # cached).  Measured history: 400 steps on 32×64 crops → 17.8 dB with washed-out colours (the decoder
    # could not show the scene); 1200 such steps → 18.7 dB; 800 constant-lr steps on 64×128 crops → 20.0 dB.
    "lab": PretrainConfig(vae_steps=2400, vae_batch_size=8, vae_crop=(64, 128), vae_warmup_steps=50,
                          vae_final_lr_fraction=0.05, vae_hflip=True, train_length=512),
}


class ImageTower(nn.Module):
    """The image side of the contrastive objective: 3 strided convs, mean pool, linear → ``dim``."""

    def __init__(self, dim: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.GELU(),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.GELU(),
        )
        self.proj = nn.Linear(4 * width, dim)

    def forward(self, images):  # (B, 3, H, W) in [-1, 1]
        return self.proj(self.net(images).mean(dim=(2, 3)))  # (B, dim)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE of paired embeddings ``a``, ``b`` ``(B, D)``.

    With perfectly aligned orthogonal pairs and a large scale the loss tends to 0; with
    identical embeddings for all pairs it is ``log B``:

    >>> e = torch.ones(4, 3)
    >>> round(float(info_nce(e, e, torch.tensor(0.0))), 4) == round(math.log(4), 4)
    True
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = logit_scale.exp() * a @ b.t()  # (B, B)
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def default_backbone_root() -> Path:
    """``$MDIC_LAB_CACHE/backbones`` or ``~/.cache/mdic_lab/backbones``."""
    base = os.environ.get("MDIC_LAB_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "mdic_lab") / "backbones"


def _key(config, pcfg: PretrainConfig) -> str:
    from mdic_lab.data.synthetic import GENERATOR_ID

    d = config.to_dict()
    blob = json.dumps({"backbone": {k: d[k] for k in BACKBONE_FIELDS}, "pretrain": pcfg.to_dict(),
                       "data": GENERATOR_ID, "format": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def backbone_cache_dir(config, preset: str, pcfg: PretrainConfig | None = None, root=None) -> Path:
    """Cache folder ``<root>/<preset>-<hash>`` of the pretrained backbone of ``config``."""
    preset = PRESET_ALIASES.get(preset, preset)
    pcfg = PRETRAIN_PRESETS[preset] if pcfg is None else pcfg
    return (Path(root) if root is not None else default_backbone_root()) / f"{preset}-{_key(config, pcfg)}"


def vae_lr_lambda(pcfg: PretrainConfig):
    """Multiplier of ``vae_lr`` at step ``s``: linear warm-up, then cosine decay to ``vae_final_lr_fraction``.

    >>> f = vae_lr_lambda(PretrainConfig(vae_steps=100, vae_warmup_steps=10, vae_final_lr_fraction=0.1))
    >>> round(f(0), 3), round(f(9), 3), round(f(99), 3)
    (0.1, 1.0, 0.1)
    >>> vae_lr_lambda(PretrainConfig())(50)  # the defaults: constant
    1.0
    """
    warm, total, low = pcfg.vae_warmup_steps, pcfg.vae_steps, pcfg.vae_final_lr_fraction

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        span = max(total - 1 - warm, 1)
        frac = min(max(step - warm, 0) / span, 1.0)
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * frac))

    return f


def _load_pairs(split, size, length, seed):
    from mdic_lab.data.synthetic import SyntheticStereo

    ds = SyntheticStereo(split, seed=seed, size=tuple(size), length=length)
    items = [ds[i] for i in range(len(ds))]
    left = torch.stack([it["left"] for it in items]) * 2 - 1  # (n, 3, H, W) in [-1, 1]
    right = torch.stack([it["right"] for it in items]) * 2 - 1
    return left, right, [it["caption"] for it in items]


@torch.no_grad()
def vae_psnr(vae, images: torch.Tensor, batch_size: int = 8) -> float:
    """PSNR (dB, peak 1 on [0, 1] images) of ``D_vae(mode(E_vae(I)))`` over ``images`` in [-1, 1]."""
    mse = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size]
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
        mse.append(((rec - x) / 2).square().flatten(1).mean(1))
    m = torch.cat(mse)
    return float((10 * torch.log10(1.0 / m.clamp_min(1e-12))).mean())


def _progress(total, desc, enabled):
    from tqdm.auto import tqdm
    import sys

    return tqdm(total=total, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False)


def pretrain_backbone(config, pcfg: PretrainConfig, progress: bool = True) -> tuple[Backbone, dict]:
    """Build ``Backbone.from_config(config)`` and pretrain its VAE and text encoder (see module doc).

    Returns the backbone (VAE and text encoder frozen again) and a report dict with
    ``vae_psnr_db`` (validation PSNR of the VAE reconstruction), ``text_retrieval_top1``
    (caption→image top-1 accuracy in validation batches), the final losses and the time.
    """
    t0 = time.perf_counter()
    prev = torch.get_num_threads()
    torch.set_num_threads(pcfg.num_threads)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(pcfg.seed)  # weight init only; the global RNG is restored on exit
            bb = Backbone.from_config(config)
            tower = ImageTower(bb.text_hidden_size)
        g = torch.Generator().manual_seed(pcfg.seed)
        left, right, captions = _load_pairs("train", config.image_size, pcfg.train_length, pcfg.data_seed)
        vleft, vright, vcaps = _load_pairs("val", config.image_size, pcfg.eval_length, pcfg.data_seed)
        images = torch.cat([left, right])
        report = {"train_pairs": pcfg.train_length, "eval_pairs": pcfg.eval_length}

        # ---- VAE: reconstruction + small KL ----------------------------------------------
        vae = bb.vae
        vae.train()
        for p in vae.parameters():
            p.requires_grad_(True)
        opt = torch.optim.AdamW(vae.parameters(), lr=pcfg.vae_lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, vae_lr_lambda(pcfg))
        h, w = images.shape[-2:]
        ch, cw = pcfg.vae_crop if pcfg.vae_crop is not None else (h, w)
        bar = _progress(pcfg.vae_steps, "pretrain VAE", progress)
        loss_v = float("nan")
        for step in range(pcfg.vae_steps):
            idx = torch.randint(0, images.shape[0], (pcfg.vae_batch_size,), generator=g)
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            lft = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            x = images[idx, :, top:top + ch, lft:lft + cw]
            if pcfg.vae_hflip:
                flip = torch.rand(x.shape[0], generator=g) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.mean).sample  # the mode: MDIC encodes with it (Backbone.encode_image)
            loss = F.mse_loss(rec, x) + pcfg.vae_kl_weight * post.kl().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            sched.step()
            loss_v = float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_v:.4f}")
        bar.close()
        vae.eval()
        with torch.no_grad():  # unit-variance latents, as SD's scaling_factor gives
            zs = torch.cat([vae.encode(images[i:i + 16]).latent_dist.mode() for i in range(0, min(64, images.shape[0]), 16)])
            std = float(zs.std())
        vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
        report.update(vae_loss=loss_v, vae_psnr_db=vae_psnr(vae, torch.cat([vleft, vright])),
                      latent_std=std, vae_s=time.perf_counter() - t0)

        # ---- text encoder: InfoNCE against the side view ---------------------------------
        text = bb.text_encoder
        text.train()
        for p in text.parameters():
            p.requires_grad_(True)
        logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        t_proj = nn.Linear(bb.text_hidden_size, bb.text_hidden_size)
        with torch.random.fork_rng():
            torch.manual_seed(pcfg.seed + 1)
            t_proj.reset_parameters()
        params = list(text.parameters()) + list(tower.parameters()) + list(t_proj.parameters()) + [logit_scale]
        opt = torch.optim.AdamW(params, lr=pcfg.text_lr, weight_decay=0.0)
        small = F.interpolate(right, size=pcfg.tower_size, mode="area")
        vsmall = F.interpolate(vright, size=pcfg.tower_size, mode="area")
        ids = bb.tokenize(captions)
        vids = bb.tokenize(vcaps)
        t1 = time.perf_counter()
        bar = _progress(pcfg.text_steps, "pretrain text encoder", progress)
        loss_t = float("nan")
        bs = min(pcfg.text_batch_size, len(captions))
        for step in range(pcfg.text_steps):
            idx = torch.randperm(len(captions), generator=g)[:bs]
            e_txt = t_proj(text(input_ids=ids[idx]).pooler_output)
            loss = info_nce(e_txt, tower(small[idx]), logit_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                logit_scale.clamp_(0, math.log(100))
            loss_t = float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_t:.3f}")
        bar.close()
        text.eval()
        with torch.no_grad():
            a = F.normalize(t_proj(text(input_ids=vids).pooler_output), dim=-1)
            b = F.normalize(tower(vsmall), dim=-1)
            top1 = float(((a @ b.t()).argmax(1) == torch.arange(a.shape[0])).float().mean())
        report.update(text_loss=loss_t, text_retrieval_top1=top1, chance_top1=1.0 / a.shape[0],
                      text_s=time.perf_counter() - t1, total_s=time.perf_counter() - t0)
        bb = Backbone(bb.vae, bb.unet, bb.text_encoder, bb.tokenizer, bb.scheduler,
                      max_text_length=config.max_text_length)  # re-freezes VAE and text encoder
        return bb, report
    finally:
        torch.set_num_threads(prev)


def load_or_pretrain_backbone(config, preset: str = "lab", pcfg: PretrainConfig | None = None, root=None,
                              progress: bool = True, verbose: bool = False) -> Backbone:
    """The cached pretrained backbone of ``config`` (pretraining and caching it on first use).

    The cache folder is written under a temporary name and renamed into place, so a
    half-written backbone is never loaded; if two processes race, the first rename wins
    and the other one's copy is discarded.
    """
    preset = PRESET_ALIASES.get(preset, preset)
    if pcfg is None:
        if preset not in PRETRAIN_PRESETS:
            raise ValueError(f"no pretraining for preset {preset!r} (expected one of: {', '.join(PRETRAIN_PRESETS)}; "
                             "the paper preset loads Stable Diffusion with from_pretrained)")
        pcfg = PRETRAIN_PRESETS[preset]
    final = backbone_cache_dir(config, preset, pcfg, root)
    if not (final / "pretrain.json").is_file():
        bb, report = pretrain_backbone(config, pcfg, progress=progress)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            bb.save_pretrained(tmp)
            report.update(preset=preset, pretrain_config=pcfg.to_dict(), key=final.name)
            (tmp / "pretrain.json").write_text(json.dumps(report, indent=2))
            try:
                os.rename(tmp, final)  # atomic; fails if another process got there first
            except OSError:
                if not (final / "pretrain.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if verbose:
            print(f"pretrained backbone saved to {final}: {json.dumps(report)}", flush=True)
    bb = Backbone.from_pretrained(final, max_text_length=config.max_text_length)
    from .backbone import unet_from_config

    with torch.random.fork_rng():
        torch.manual_seed(pcfg.seed)  # the (not pretrained) UNet: fresh, deterministic, from this config
        unet = unet_from_config(config)
    return Backbone(bb.vae, unet, bb.text_encoder, bb.tokenizer, bb.scheduler, max_text_length=config.max_text_length)


def pretrain_report(directory) -> dict:
    """The ``pretrain.json`` of a cached backbone folder."""
    p = Path(directory) / "pretrain.json"
    if not p.is_file():
        raise FileNotFoundError(f"no pretrain.json in {directory} (not a pretrained backbone folder)")
    return json.loads(p.read_text())
