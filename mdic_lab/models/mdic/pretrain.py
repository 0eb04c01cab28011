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
the contrastive retrieval accuracy, the time taken, and who made it: command, git commit,
machine).  Later calls load it with :meth:`Backbone.from_pretrained`, whose VAE and text
encoder are frozen.

Shipped copy.  The ``lab`` backbone also ships inside the package (``shipped/lab/``: the VAE
and the text encoder in half precision, their configs, ``pretrain.json`` and
``provenance.json``, see ``docs/lab_backbone.md``), so a fresh install trains MDIC without
the pretraining wait.  :func:`load_or_pretrain_backbone` looks there first and uses a shipped
folder only when its key equals the requested one (same config fields, pretraining config
and data generator); the weights are upcast to float32 on load.  The returned backbone's
``provenance`` attribute says which copy was used (``source``: ``shipped``, ``cache`` or
``pretrained``).  Remake it with::

    mdic-lab pretrain --preset lab --export mdic_lab/models/mdic/shipped/lab

Progress: a tqdm bar in a terminal or a notebook, otherwise (a log file, a pipe) a plain
line on stderr every :data:`PROGRESS_LOG_INTERVAL_S` seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mdic_lab.models.layers import info_nce
from mdic_lab.progress import progress_bar

from .backbone import Backbone
from .config import PRESET_ALIASES

__all__ = ["PretrainConfig", "PRETRAIN_PRESETS", "ImageTower", "pretrain_backbone", "backbone_cache_dir",
           "load_or_pretrain_backbone", "default_backbone_root", "vae_psnr", "info_nce", "backbone_key",
           "ensure_pretrained", "export_backbone", "find_shipped_backbone", "load_shipped_backbone",
           "shipped_provenance", "SHIPPED_ROOT", "MAX_SHIPPED_BYTES", "SHIP_DTYPES"]

#: Where the package's shipped backbones live (one folder per preset, see :func:`export_backbone`).
SHIPPED_ROOT = Path(__file__).resolve().parent / "shipped"
#: Size limit of one shipped backbone folder (bytes): it lives in the git repository.
MAX_SHIPPED_BYTES = 10_000_000
#: Half-precision formats a backbone can be shipped in.
SHIP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
#: Seconds between two plain progress lines when stderr is neither a terminal nor a notebook.
PROGRESS_LOG_INTERVAL_S = 30.0
#: Files whose edits change what pretraining produces (their git state is recorded with the weights).
_SOURCE_FILES = ("mdic_lab/models/mdic/pretrain.py", "mdic_lab/models/mdic/backbone.py",
                 "mdic_lab/models/mdic/config.py", "mdic_lab/models/mdic/tokenizer.py", "mdic_lab/data")

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
    # lab: long enough on large crops for the decoder to show colours and objects (docs/lab_backbone.md)
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


def default_backbone_root() -> Path:
    """``$MDIC_LAB_CACHE/backbones`` or ``~/.cache/mdic_lab/backbones``."""
    base = os.environ.get("MDIC_LAB_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "mdic_lab") / "backbones"


def backbone_key(config, preset: str, pcfg: PretrainConfig | None = None) -> str:
    """``<preset>-<hash>``: the name of the pretrained backbone of ``config`` (cache folder, shipped copy)."""
    preset = PRESET_ALIASES.get(preset, preset)
    pcfg = PRETRAIN_PRESETS[preset] if pcfg is None else pcfg
    return f"{preset}-{_key(config, pcfg)}"


def _key(config, pcfg: PretrainConfig) -> str:
    from mdic_lab.data.synthetic import GENERATOR_ID

    d = config.to_dict()
    blob = json.dumps({"backbone": {k: d[k] for k in BACKBONE_FIELDS}, "pretrain": pcfg.to_dict(),
                       "data": GENERATOR_ID, "format": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def backbone_cache_dir(config, preset: str, pcfg: PretrainConfig | None = None, root=None) -> Path:
    """Cache folder ``<root>/<preset>-<hash>`` of the pretrained backbone of ``config``."""
    return (Path(root) if root is not None else default_backbone_root()) / backbone_key(config, preset, pcfg)


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


def _progress(total, desc, enabled, stream=None, interval=None):
    return progress_bar(total, desc, enabled, stream=stream,
                        interval=PROGRESS_LOG_INTERVAL_S if interval is None else interval)


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


def _git_state() -> dict:
    """Commit of the source tree this module runs from, and which backbone-shaping files differ from it."""
    root = Path(__file__).resolve().parents[3]
    if not ((root / ".git").exists() and (root / "mdic_lab").is_dir()):
        return {"git_commit": None, "git_dirty_files": None}

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no", "--", *_SOURCE_FILES).splitlines()]
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty_files": None}
    return {"git_commit": commit, "git_dirty_files": dirty}


def _machine() -> dict:
    """What ran it: OS, CPU count, library versions, torch threads."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "diffusers": ver("diffusers"),
            "transformers": ver("transformers"), "torch_threads": torch.get_num_threads()}


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _command() -> str:
    import shlex

    return shlex.join(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])


def ensure_pretrained(config, preset: str = "lab", pcfg: PretrainConfig | None = None, root=None,
                      progress: bool = True, verbose: bool = False) -> tuple[Path, str]:
    """The cache folder of the pretrained backbone of ``config``, pretraining it first if it is missing.

    Returns ``(folder, source)`` with ``source`` ``"cache"`` (it was there) or ``"pretrained"``
    (made now).  The folder is written under a temporary name and renamed into place, so a
    half-written backbone is never loaded; if two processes race, the first rename wins and
    the other one's copy is discarded.  ``pretrain.json`` records the report of
    :func:`pretrain_backbone` and its provenance (command, git commit, machine, UTC times).
    """
    preset, pcfg = _resolve(preset, pcfg)
    final = backbone_cache_dir(config, preset, pcfg, root)
    if (final / "pretrain.json").is_file():
        return final, "cache"
    started = _utc_now()
    bb, report = pretrain_backbone(config, pcfg, progress=progress)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        bb.save_pretrained(tmp)
        report.update(preset=preset, pretrain_config=pcfg.to_dict(), key=final.name,
                      provenance={"command": _command(), **_git_state(), "machine": _machine(),
                                  "started_utc": started, "finished_utc": _utc_now()})
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
    return final, "pretrained"


def _resolve(preset, pcfg):
    preset = PRESET_ALIASES.get(preset, preset)
    if pcfg is None:
        if preset not in PRETRAIN_PRESETS:
            raise ValueError(f"no pretraining for preset {preset!r} (expected one of: {', '.join(PRETRAIN_PRESETS)}; "
                             "the paper preset loads Stable Diffusion with from_pretrained)")
        pcfg = PRETRAIN_PRESETS[preset]
    return preset, pcfg


def find_shipped_backbone(key: str, root=None) -> Path | None:
    """The shipped backbone folder whose ``pretrain.json`` has this ``key`` (``<preset>-<hash>``), or None."""
    root = SHIPPED_ROOT if root is None else Path(root)
    if not root.is_dir():
        return None
    for d in sorted(root.iterdir()):
        try:
            if json.loads((d / "pretrain.json").read_text()).get("key") == key:
                return d
        except (OSError, ValueError):
            continue
    return None


def shipped_provenance(directory=None) -> dict:
    """The ``provenance.json`` of a shipped backbone folder (default: the lab one)."""
    d = SHIPPED_ROOT / "lab" if directory is None else Path(directory)
    return json.loads((d / "provenance.json").read_text())


def _load_frozen_parts(directory):
    """VAE and text encoder of a saved backbone (full or shipped layout), upcast to float32."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    d = Path(directory)
    vae = AutoencoderKL.from_pretrained(d / "vae", torch_dtype=torch.float32).float()
    text = CLIPTextModel.from_pretrained(d / "text_encoder", dtype=torch.float32).float()
    return vae, text


def _assemble(vae, text, tokenizer, scheduler, config, pcfg: PretrainConfig) -> Backbone:
    from .backbone import unet_from_config

    with torch.random.fork_rng():
        torch.manual_seed(pcfg.seed)  # the (not pretrained) UNet: fresh, deterministic, from this config
        unet = unet_from_config(config)
    return Backbone(vae, unet, text, tokenizer, scheduler, max_text_length=config.max_text_length)


def load_shipped_backbone(directory, config, pcfg: PretrainConfig | None = None) -> Backbone:
    """A :class:`Backbone` from a shipped folder: its VAE and text encoder (float32, frozen), the bundled
    CLIP tokenizer and the DDIM scheduler of ``config`` (both as :meth:`Backbone.from_config` builds them),
    and a fresh UNet seeded with ``pcfg.seed`` (default: the folder's recorded pretraining config)."""
    from .backbone import make_scheduler
    from .tokenizer import load_clip_tokenizer

    d = Path(directory)
    if pcfg is None:
        pcfg = PretrainConfig(**pretrain_report(d)["pretrain_config"])
    vae, text = _load_frozen_parts(d)
    return _assemble(vae, text, load_clip_tokenizer(None), make_scheduler(config.num_train_timesteps), config, pcfg)


def load_or_pretrain_backbone(config, preset: str = "lab", pcfg: PretrainConfig | None = None, root=None,
                              progress: bool = True, verbose: bool = False, use_shipped: bool = True) -> Backbone:
    """The pretrained backbone of ``config``: the shipped copy, else the cached one, else pretrained now.

    A shipped copy (:data:`SHIPPED_ROOT`) is used only if its key equals :func:`backbone_key` of
    ``config``/``preset``/``pcfg`` (and ``use_shipped``); otherwise :func:`ensure_pretrained`
    finds or makes the cache folder under ``root``.  The UNet is built fresh from ``config``
    (seed ``pcfg.seed``) either way.  The result's ``provenance`` dict records ``source``
    (``"shipped"``, ``"cache"`` or ``"pretrained"``), ``key``, ``path`` and the recorded VAE PSNR.
    """
    preset, pcfg = _resolve(preset, pcfg)
    key = backbone_key(config, preset, pcfg)
    shipped = find_shipped_backbone(key) if use_shipped else None
    if shipped is not None:
        bb = load_shipped_backbone(shipped, config, pcfg)
        prov = shipped_provenance(shipped)
        bb.provenance = {"source": "shipped", "key": key, "path": str(shipped), "dtype": prov.get("dtype"),
                         "vae_psnr_db": prov.get("vae_psnr_db_shipped"), "git_commit": prov.get("git_commit")}
        if verbose:
            print(f"using the shipped backbone {shipped} ({key})", flush=True)
        return bb
    final, source = ensure_pretrained(config, preset, pcfg, root, progress=progress, verbose=verbose)
    loaded = Backbone.from_pretrained(final, max_text_length=config.max_text_length)
    bb = _assemble(loaded.vae, loaded.text_encoder, loaded.tokenizer, loaded.scheduler, config, pcfg)
    rep = pretrain_report(final)
    bb.provenance = {"source": source, "key": key, "path": str(final), "dtype": "float32",
                     "vae_psnr_db": rep.get("vae_psnr_db"), "git_commit": rep.get("provenance", {}).get("git_commit")}
    return bb


def pretrain_report(directory) -> dict:
    """The ``pretrain.json`` of a cached backbone folder."""
    p = Path(directory) / "pretrain.json"
    if not p.is_file():
        raise FileNotFoundError(f"no pretrain.json in {directory} (not a pretrained backbone folder)")
    return json.loads(p.read_text())


# ----------------------------------------------------------------------------- shipping
def _dtype_name(dtype) -> str:
    for name, dt in SHIP_DTYPES.items():
        if dt == dtype:
            return name
    raise ValueError(f"dtype must be one of {', '.join(f'torch.{n}' for n in SHIP_DTYPES)}, got {dtype!r}")


def _half(module, dtype):
    """A copy of ``module`` stored in ``dtype``."""
    import copy

    from diffusers.utils import logging as dlog

    prev = dlog.get_verbosity()
    dlog.set_verbosity_error()  # diffusers warns on every ``.to(dtype)`` of a model loaded without torch_dtype
    try:
        return copy.deepcopy(module).to(dtype)
    finally:
        dlog.set_verbosity(prev)


@torch.no_grad()
def _text_deviation(text_a, text_b, ids) -> dict:
    a = text_a(input_ids=ids).last_hidden_state
    b = text_b(input_ids=ids).last_hidden_state
    cos = F.cosine_similarity(a.flatten(0, 1), b.flatten(0, 1), dim=-1)
    return {"text_hidden_max_abs_diff": float((a - b).abs().max()), "text_hidden_max_abs": float(a.abs().max()),
            "text_hidden_min_cosine": float(cos.min())}


def _folder_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_backbone(src_dir, dst_dir, dtype=torch.float16, *, config, training_provenance: dict | None = None,
                    eval_length: int | None = None, remake_command: str | None = None) -> dict:
    """Write the frozen parts of a pretrained backbone folder into a compact shipped folder; measure the cast.

    ``dst_dir`` gets ``vae/`` and ``text_encoder/`` (config + safetensors in ``dtype``, float16
    or bfloat16), ``pretrain.json`` (copied: its ``key`` selects the copy at load time) and
    ``provenance.json``.  No UNet (built fresh at load), tokenizer (the bundled CLIP BPE
    vocabulary) or scheduler (built from ``config``).  The source must have been pretrained
    for ``config`` (same key).  Measured on held-out pairs of the synthetic world (``val``: the
    pairs of ``pretrain.json``'s PSNR; ``test``: never seen while choosing the recipe), the VAE
    PSNR of the float32 source, of each half-precision format, and of the written copy loaded
    back; and how far the text encoder's hidden states move.  ``training_provenance`` fills in
    command / git commit / machine / times where the source's ``pretrain.json`` has none.
    Raises ``ValueError`` if the folder would exceed :data:`MAX_SHIPPED_BYTES`.  Returns the
    provenance record.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    dtype_name = _dtype_name(dtype)
    rep = pretrain_report(src)
    pcfg = PretrainConfig(**rep["pretrain_config"])
    key = backbone_key(config, rep["preset"], pcfg)
    if rep.get("key") != key or src.name != key:
        raise ValueError(f"{src} holds backbone {rep.get('key')!r}, but this config, pretraining config and data "
                         f"generator give {key!r}: pretrain again (mdic-lab pretrain)")
    t0 = time.perf_counter()
    prev = torch.get_num_threads()
    torch.set_num_threads(pcfg.num_threads)
    try:
        from .tokenizer import load_clip_tokenizer

        vae, text = _load_frozen_parts(src)
        n = pcfg.eval_length if eval_length is None else int(eval_length)
        vl, vr, vcaps = _load_pairs("val", config.image_size, n, pcfg.data_seed)
        tl, tr, _ = _load_pairs("test", config.image_size, n, pcfg.data_seed)
        held = {"val": torch.cat([vl, vr]), "test": torch.cat([tl, tr])}
        psnr = {"float32": {s: vae_psnr(vae, x) for s, x in held.items()}}
        for name, dt in SHIP_DTYPES.items():
            vc = _half(_half(vae, dt), torch.float32)  # rounded weights, float32 arithmetic
            psnr[name] = {s: vae_psnr(vc, x) for s, x in held.items()}

        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp"))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; this folder is package data
            _half(vae, dtype).save_pretrained(tmp / "vae")
            _half(text, dtype).save_pretrained(tmp / "text_encoder")
            shutil.copyfile(src / "pretrain.json", tmp / "pretrain.json")
            vae_s, text_s = _load_frozen_parts(tmp)  # what users will load
            shipped_psnr = {s: vae_psnr(vae_s, x) for s, x in held.items()}
            tok = load_clip_tokenizer(None)
            ids = tok(list(vcaps), padding="max_length", max_length=config.max_text_length, truncation=True,
                      return_tensors="pt").input_ids
            text_dev = _text_deviation(text, text_s, ids)
            weights = sorted(f for f in tmp.rglob("*") if f.is_file())
            files = {str(f.relative_to(tmp)): {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in weights}
            trained = dict(training_provenance or {})
            trained.update(rep.get("provenance") or {})  # what the pretraining run recorded itself wins
            d = config.to_dict()
            prov = {
                "key": key, "preset": rep["preset"], "dtype": dtype_name,
                "command": trained.get("command"), "git_commit": trained.get("git_commit"),
                "git_dirty_files": trained.get("git_dirty_files"), "machine": trained.get("machine"),
                "started_utc": trained.get("started_utc"), "finished_utc": trained.get("finished_utc"),
                "provenance_recorded_by": "pretraining run" if rep.get("provenance") else "export caller",
                "provenance_note": trained.get("note"),
                "remake_command": remake_command or _remake_command(rep["preset"], dst),
                "seed": pcfg.seed, "data_seed": pcfg.data_seed, "vae_steps": pcfg.vae_steps,
                "text_steps": pcfg.text_steps, "pretrain_config": pcfg.to_dict(),
                "backbone_config": {k: d[k] for k in BACKBONE_FIELDS}, "data_generator": _generator_id(),
                "time_taken_s": rep.get("total_s"), "vae_time_s": rep.get("vae_s"), "text_time_s": rep.get("text_s"),
                "heldout_pairs": n, "heldout_images_per_split": 2 * n,
                "vae_psnr_db_fp32": psnr["float32"]["val"], "vae_psnr_db_shipped": shipped_psnr["val"],
                "vae_psnr_db_fp32_test": psnr["float32"]["test"], "vae_psnr_db_shipped_test": shipped_psnr["test"],
                "vae_psnr_db_by_dtype": psnr, "vae_psnr_db_reported_at_pretraining": rep.get("vae_psnr_db"),
                "latent_std": rep.get("latent_std"), "scaling_factor": float(vae_s.config.scaling_factor),
                "text_retrieval_top1": rep.get("text_retrieval_top1"), "chance_top1": rep.get("chance_top1"),
                **text_dev,
                "files": files, "weights_bytes": sum(v["bytes"] for v in files.values()),
                "export": {"command": _command(), **_git_state(), "machine": _machine(), "utc": _utc_now(),
                           "seconds": None},
            }
            prov["export"]["seconds"] = time.perf_counter() - t0
            (tmp / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
            for f in tmp.rglob("*"):
                f.chmod(0o755 if f.is_dir() else 0o644)
            total = _folder_bytes(tmp)
            if total > MAX_SHIPPED_BYTES:
                raise ValueError(f"shipped backbone would take {total} bytes > {MAX_SHIPPED_BYTES}")
            if dst.exists():
                shutil.rmtree(dst)
            os.rename(tmp, dst)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return prov
    finally:
        torch.set_num_threads(prev)


def _generator_id() -> str:
    from mdic_lab.data.synthetic import GENERATOR_ID

    return GENERATOR_ID


def _remake_command(preset: str, dst: Path) -> str:
    try:
        where = Path("mdic_lab/models/mdic/shipped") / dst.resolve().relative_to(SHIPPED_ROOT)
    except ValueError:
        where = dst
    return f"mdic-lab pretrain --preset {preset} --export {where}"
