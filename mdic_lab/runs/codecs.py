"""Run hooks: what the one training loop and the one evaluation loop ask of a codec.

The registry names a hooks class per codec (:attr:`mdic_lab.registry.Codec.hooks`).  The
loops in :mod:`.train` and :mod:`.evaluate` call only the methods of :class:`CodecHooks`;
they never look at a codec's name.

* :class:`ImageCodecHooks` -- the single-image hyperprior and NDIC: random crops, the
  Lagrangian ``R + λ·255²·MSE`` (NDIC: Eq. 4 of its paper), AdamW with a cosine decay.
* :class:`MDICHooks` -- MDIC: frozen backbone (shipped / cached / Stable Diffusion), latents
  cached once, Eqs. 19–23, AdamW with linear warm-up (paper Sec. 4.1).
* :class:`TACOHooks` -- TACO: the hyperprior's training with a caption of x at the encoder
  (items carry ``caption_x``, :mod:`mdic_lab.data.main_captions`), Eqs. 6–7; the stream
  carries the caption, and :meth:`CodecHooks.caption_bytes` reports its bytes apart.

Codecs whose encoder reads a caption of x (``Codec.encoder_caption``) get it as
``x_captions`` in :meth:`CodecHooks.compress`, :meth:`~CodecHooks.estimated_bpp` and
:meth:`~CodecHooks.round_trip`; the loops take it from :meth:`CodecHooks.encoder_captions`.
"""

from __future__ import annotations

import abc
import math
import threading

import torch

__all__ = ["CodecHooks", "ImageCodecHooks", "MDICHooks", "TACOHooks", "cosine_lr_lambda", "warmup_lr_lambda"]


def cosine_lr_lambda(steps: int, lr: float, lr_final: float):
    """Multiplier of ``lr`` at step ``s``: cosine decay from ``lr`` (step 0) to ``lr_final`` (last step).

    >>> f = cosine_lr_lambda(11, 1e-3, 1e-4)
    >>> round(f(0) * 1e-3, 7), round(f(5) * 1e-3, 7), round(f(10) * 1e-3, 7)
    (0.001, 0.00055, 0.0001)
    """

    def f(step: int) -> float:
        t = min(step / max(steps - 1, 1), 1.0)
        return (lr_final + 0.5 * (lr - lr_final) * (1.0 + math.cos(math.pi * t))) / lr

    return f


def warmup_lr_lambda(warmup_steps: int):
    """Multiplier of the peak lr at step ``s``: ``min(1, (s + 1) / warmup)`` (constant after warm-up).

    >>> f = warmup_lr_lambda(4)
    >>> [f(s) for s in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    >>> warmup_lr_lambda(0)(0)
    1.0
    """
    w = int(warmup_steps)
    return lambda step: 1.0 if w == 0 else min(1.0, (step + 1) / w)


def _fmt(v: float, digits: int = 6) -> str:
    return f"{v:.{digits}g}"


class CodecHooks(abc.ABC):
    """The interface; subclasses implement every abstract method.  ``self.codec`` is the registry entry."""

    #: codec-specific columns of metrics.csv (between ``loss`` and ``lr``)
    log_fields: tuple = ()
    #: images evaluated when no limit is given on the synthetic world (None: the whole split)
    default_synthetic_eval_limit: int | None = None
    #: the model codes images of any size its transforms accept (else only :meth:`image_size`)
    codes_any_size: bool = False

    def __init__(self, codec):
        self.codec = codec

    # ---- data ------------------------------------------------------------------------
    @abc.abstractmethod
    def image_size(self, run) -> tuple:
        """(H, W) of the images this run codes."""

    def open_data(self, run, spec, split: str, *, length=None, captioner=None, caption_cache=None):
        """``split`` of the data spec at the run's image size (captions only for codecs that read them)."""
        from mdic_lab.data.sources import open_pairs

        return open_pairs(spec, split, size=self.image_size(run), seed=run.train.data_seed, length=length,
                          captions=self.codec.needs_caption, captioner=captioner, caption_cache=caption_cache)

    # ---- training --------------------------------------------------------------------
    def context(self, run, *, accelerator, backbone_root=None, progress: bool = True) -> dict:
        """Frozen parts shared by data preparation and the model (MDIC: the backbone); ``{}`` by default."""
        return {}

    def record(self, context: dict) -> dict:
        """Extra entries of ``config.json`` describing the context (e.g. which backbone)."""
        return {}

    @abc.abstractmethod
    def bank(self, run, dataset, context: dict):
        """The training pairs held in memory (what :meth:`loss` draws batches from)."""

    @abc.abstractmethod
    def build(self, run, bank, context: dict):
        """A fresh model (the loop seeds the weight initialisation)."""

    @abc.abstractmethod
    def generators(self, run, rank: int, world: int) -> dict:
        """Named ``torch.Generator`` objects of batches and noise (saved in every checkpoint)."""

    @abc.abstractmethod
    def optimizer(self, params, run) -> torch.optim.Optimizer:
        """The optimiser of the trainable parameters."""

    @abc.abstractmethod
    def lr_lambda(self, run):
        """Multiplier of the peak learning rate at step ``s`` (``LambdaLR``)."""

    @abc.abstractmethod
    def loss(self, model, core, bank, gens: dict, run, *, rank: int, world: int, device) -> dict:
        """Loss terms of one step's batch (tensors; ``"loss"`` is minimised)."""

    def begin_step(self, core, step: int, run) -> None:
        """Called before the step ``step`` (0-based) with the unwrapped model; a no-op by default."""

    @abc.abstractmethod
    def log_values(self, terms: dict) -> dict:
        """The :attr:`log_fields` of one logged step, formatted."""

    @abc.abstractmethod
    def model_state(self, core) -> dict:
        """What a checkpoint keeps of the model (``"state_dict"`` at least); :meth:`load` reads it."""

    # ---- coding ----------------------------------------------------------------------
    @abc.abstractmethod
    def load(self, run, state: dict, context: dict | None = None):
        """The trained model in eval mode, ready to code."""

    @abc.abstractmethod
    def compress(self, model, x: torch.Tensor, x_captions=None) -> list[bytes]:
        """Images ``(B, 3, H, W)`` → one container per image (the encoder sees x only, and
        ``x_captions``, captions of x, where the registry's ``encoder_caption`` says it reads them)."""

    @abc.abstractmethod
    def decompress(self, model, streams: list, side, captions, *, seed: int = 0, num_inference_steps=None):
        """Containers (+ side images / captions where the decoder needs them) → ``(B, 3, H, W)``.

        Each image decodes as it would alone (a batch only shares the work).
        """

    @abc.abstractmethod
    def estimated_bpp(self, model, x: torch.Tensor, side, x_captions=None) -> list[float]:
        """The entropy model's ESTIMATE of the bits per pixel of each image (never called coded)."""

    @abc.abstractmethod
    def round_trip(self, model, x, side, streams: list, x_hat, x_captions=None) -> list[bool]:
        """Per image, whether the decoder reproduced what the encoder meant exactly (codec-specific check)."""

    def encoder_captions(self, items: list) -> list | None:
        """Captions of the main images of ``items`` for an encoder that reads them; ``None`` for the others."""
        return None

    def caption_bytes(self, model, stream: bytes) -> int:
        """Bytes of ``stream`` that carry a caption (0: no caption is sent)."""
        return 0

    def sent_caption(self, model, stream: bytes) -> str | None:
        """The caption ``stream`` carries, decoded (``None``: it carries none)."""
        return None


class ImageCodecHooks(CodecHooks):
    """Hyperprior and NDIC (models of :mod:`mdic_lab.models.baselines`)."""

    log_fields = ("bpp_estimated", "mse", "psnr", "r_y", "r_w", "mse_side")
    codes_any_size = True  # fully convolutional: any multiple of its down-sampling

    def image_size(self, run) -> tuple:
        return tuple(run.train.image_size)

    def bank(self, run, dataset, context):
        from .data import PairBank

        return dataset if isinstance(dataset, PairBank) else PairBank(dataset)

    def build(self, run, bank, context):
        return self.codec.load_model_class()(run.model)

    def generators(self, run, rank, world):
        gens = {"data": torch.Generator().manual_seed(run.train.seed)}  # batch order, crops (and noise, 1 process)
        if world > 1:  # each process its own quantisation noise; every process draws the same batch
            gens["noise"] = torch.Generator().manual_seed(run.train.seed * 1_000_003 + 7919 * (rank + 1))
        return gens

    def optimizer(self, params, run):
        t = run.train
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, amsgrad=t.amsgrad)

    def lr_lambda(self, run):
        return cosine_lr_lambda(run.train.steps, run.train.lr, run.train.lr_final)

    def loss(self, model, core, bank, gens, run, *, rank, world, device):
        from .data import crop_pairs

        t = run.train
        idx = torch.randint(0, len(bank), (t.batch_size,), generator=gens["data"])
        x, y = crop_pairs(bank, idx, t.crop, gens["data"])
        per = t.batch_size // world
        x, y = x[rank * per:(rank + 1) * per].to(device), y[rank * per:(rank + 1) * per].to(device)
        res = model(x, y, mode="noise", generator=gens.get("noise", gens["data"]))
        return core.loss(res, x, y, lmbda=t.lmbda)

    def log_values(self, terms):
        t = {k: float(v.detach()) for k, v in terms.items()}
        nan = float("nan")
        return {"bpp_estimated": _fmt(t["bpp"]), "mse": _fmt(t["mse"]),
                "psnr": f"{10 * math.log10(1.0 / max(t['mse'], 1e-12)):.4f}",
                "r_y": _fmt(t.get("r_y", nan)), "r_w": _fmt(t.get("r_w", nan)),
                "mse_side": _fmt(t.get("mse_side", nan))}

    def model_state(self, core):
        return {"state_dict": core.state_dict()}

    def load(self, run, state, context=None):
        model = self.codec.load_model_class()(run.model)
        model.load_state_dict(state["state_dict"])
        return model.eval().update()

    def compress(self, model, x, x_captions=None):
        return list(model.compress(x)["strings"])

    def decompress(self, model, streams, side, captions, *, seed=0, num_inference_steps=None):
        return model.decompress(list(streams), None, side=side if self.codec.needs_side else None)

    @torch.no_grad()
    def _reference(self, model, x, side):
        return model(x, side if self.codec.needs_side else None, mode="dequantize")

    def estimated_bpp(self, model, x, side, x_captions=None):
        from mdic_lab.coding.bpp import bpp_from_likelihoods

        npix = int(x.shape[-2] * x.shape[-1])
        out = []
        for i in range(x.shape[0]):  # the likelihoods of one image at a time
            ref = self._reference(model, x[i:i + 1], None if side is None else side[i:i + 1])
            out.append(bpp_from_likelihoods(list(ref["likelihoods"].values()), npix))
        return out

    def round_trip(self, model, x, side, streams, x_hat, x_captions=None):
        return [bool(torch.equal(x_hat[i:i + 1], self._reference(model, x[i:i + 1], None if side is None
                                                                   else side[i:i + 1])["x_hat"]))
                for i in range(x.shape[0])]


def _same_key(a, b) -> bool:
    """Streams (tuples of bytes) or image batches (tensors): the same values."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and bool(torch.equal(a, b)))
    return a == b


class MDICHooks(CodecHooks):
    """MDIC (:mod:`mdic_lab.models.mdic`)."""

    log_fields = ("vq", "diff", "mask", "rate_bpp_estimated", "mask_fraction")
    default_synthetic_eval_limit = 8

    def image_size(self, run) -> tuple:
        return tuple(run.model.image_size)

    def context(self, run, *, accelerator, backbone_root=None, progress=True):
        from mdic_lab.models.mdic.backbone import Backbone

        cfg = run.model
        if cfg.pretrained:
            return {"backbone": Backbone.from_pretrained(cfg.pretrained, max_text_length=cfg.max_text_length),
                    "backbone_record": {"source": "from_pretrained", "path": cfg.pretrained}}
        from mdic_lab.models.mdic.pretrain import load_or_pretrain_backbone

        bb = None
        if accelerator.is_main_process:  # one process pretrains / caches, the others then load its copy
            bb = load_or_pretrain_backbone(cfg, run.preset, root=backbone_root, progress=progress)
        accelerator.wait_for_everyone()
        if bb is None:
            bb = load_or_pretrain_backbone(cfg, run.preset, root=backbone_root, progress=False)
        return {"backbone": bb, "backbone_record": dict(getattr(bb, "provenance", None) or {"preset": run.preset})}

    def record(self, context):
        return {"backbone": context.get("backbone_record")}

    def bank(self, run, dataset, context):
        from .data import LatentBank

        if isinstance(dataset, LatentBank):
            return dataset
        return LatentBank(dataset, context["backbone"] if run.train.cache_latents else None)

    def build(self, run, bank, context):
        from mdic_lab.data.vocabulary import build_vocabulary
        from mdic_lab.models.mdic.model import MDIC

        vocab = build_vocabulary(bank.captions, n=run.model.num_nouns)
        return MDIC(run.model, backbone=context["backbone"], vocabulary=vocab)

    def generators(self, run, rank, world):
        seed = run.train.seed
        return {"data": torch.Generator().manual_seed(seed),
                "noise": torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (rank + 1))}

    def optimizer(self, params, run):
        return torch.optim.AdamW(params, lr=run.train.lr, weight_decay=run.train.weight_decay)

    def lr_lambda(self, run):
        return warmup_lr_lambda(run.train.warmup_steps)

    def begin_step(self, core, step, run):
        core.set_training_progress(step, run.train.steps)  # the annealed τ of Eq. 7 (MDICConfig.gumbel_tau_decay)

    def loss(self, model, core, bank, gens, run, *, rank, world, device):
        per = run.train.batch_size // world
        idx = torch.randint(0, len(bank), (run.train.batch_size,), generator=gens["data"])
        batch = bank.batch(idx[rank * per:(rank + 1) * per])
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        return model(batch, generator=gens["noise"])

    def log_values(self, terms):
        t = {k: float(v.detach().mean()) for k, v in terms.items() if torch.is_tensor(v)}
        return {"vq": _fmt(t["vq"]), "diff": _fmt(t["diff"]), "mask": _fmt(t.get("mask", float("nan"))),
                "rate_bpp_estimated": _fmt(t["rate_bpp"]), "mask_fraction": f"{t['mask_fraction']:.4f}"}

    def model_state(self, core):
        return core.checkpoint_blob()

    def load(self, run, state, context=None):
        from mdic_lab.models.mdic.model import MDIC

        backbone = (context or {}).get("backbone")
        return MDIC.from_blob(state, backbone=backbone, source="checkpoint").eval()

    # The evaluation calls compress, decompress, estimated_bpp and round_trip on the same batch: the
    # encoder's indices and the decoder's decoded indices of the last batch are kept (per thread, keyed
    # by the model and the exact streams / images), so that the autoregressive range coder and the
    # VAE encoder run once per image, not three times.  A lookup that misses recomputes.
    _memo = threading.local()

    def _remember(self, kind, model, key, value):
        self._memo.__dict__[kind] = (id(model), key, value)

    def _recall(self, kind, model, key):
        hit = self._memo.__dict__.get(kind)
        return hit[2] if hit is not None and hit[0] == id(model) and _same_key(hit[1], key) else None

    def compress(self, model, x, x_captions=None):
        if model.training:
            raise RuntimeError("call .eval() before compress()")
        with torch.no_grad():
            indices = model.encode_x(x)[2].indices
        strings = model.compress_indices(indices)
        self._remember("sent", model, x, indices)
        return list(strings)

    def decompress(self, model, streams, side, captions, *, seed=0, num_inference_steps=None):
        if model.training:
            raise RuntimeError("call .eval() before decompress()")
        indices = model.decode_indices(list(streams)).to(model.device)
        self._remember("received", model, tuple(streams), indices)
        return model.reconstruct_from_indices(indices, side, list(captions), seed, num_inference_steps)

    def _sent_indices(self, model, x):
        idx = self._recall("sent", model, x)
        if idx is None:
            with torch.no_grad():
                idx = model.encode_x(x)[2].indices
        return idx

    @torch.no_grad()
    def estimated_bpp(self, model, x, side, x_captions=None):
        h, w = model.config.image_size
        return [float(b) / (h * w) for b in model.entropy_model.rate_bits(self._sent_indices(model, x))]

    @torch.no_grad()
    def round_trip(self, model, x, side, streams, x_hat, x_captions=None):
        """The indices the decoder decoded (those x_hat was drawn from) equal the encoder's, image by image."""
        idx = self._sent_indices(model, x)
        dec = self._recall("received", model, tuple(streams))
        if dec is None:
            dec = model.decode_indices(list(streams))
        dec = dec.to(idx.device)
        return [bool(torch.equal(dec[i], idx[i])) for i in range(idx.shape[0])]


class CaptionedPairBank:
    """Training pairs of a TACO run: 8-bit main / side images plus ``captions_x``, a caption of each main image.

    Reads ``dataset`` once, in order, like :class:`~.data.PairBank` (whose items and crops it shares).
    """

    def __init__(self, dataset):
        from mdic_lab.data.sources import describe_dataset

        from .data import _to_uint8

        self.source = describe_dataset(dataset)  # the run's ``data`` record (config.json)
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            raise ValueError("the training dataset is empty")
        if any("caption_x" not in it for it in items):
            raise KeyError("TACO trains on pairs with 'caption_x', a caption of the main image x (open the data "
                           "with the codec's hooks.open_data)")
        if hasattr(dataset, "flush"):
            dataset.flush()  # keep the captions computed for this bank
        self.left = torch.stack([_to_uint8(it["left"]) for it in items])  # (n, 3, H, W) uint8
        self.right = torch.stack([_to_uint8(it["right"]) for it in items])
        self.captions_x = [it["caption_x"] for it in items]
        self.captions = [it.get("caption") for it in items]

    def __len__(self) -> int:
        return self.left.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"left": self.left[i].float() / 255.0, "right": self.right[i].float() / 255.0}


class TACOHooks(ImageCodecHooks):
    """TACO (:mod:`mdic_lab.models.baselines.taco`): the hyperprior's training, a caption of x at the encoder."""

    log_fields = ("bpp_estimated", "mse", "psnr", "lpips", "joint", "con", "dist", "gamma")

    def open_data(self, run, spec, split, *, length=None, captioner=None, caption_cache=None):
        """The pairs of ``split`` with ``caption_x``: oracle main-view captions (synthetic) or ``captioner`` on x."""
        from mdic_lab.data.main_captions import MainCaptioned
        from mdic_lab.data.sources import _captioner_arg, make_captioner, open_pairs

        base = open_pairs(spec, split, size=self.image_size(run), seed=run.train.data_seed, length=length,
                          captions=False)
        return MainCaptioned(base, make_captioner(captioner, caption_cache), _captioner_arg(captioner),
                             cache_dir=caption_cache)

    def context(self, run, *, accelerator, backbone_root=None, progress=True):
        from mdic_lab.models.baselines.taco import load_text_side

        return {"text": load_text_side(run.model.clip)}

    def record(self, context):
        return {"text_encoder": context["text"].record, "image_tower": context.get("image_tower")}

    def bank(self, run, dataset, context):
        return dataset if isinstance(dataset, CaptionedPairBank) else CaptionedPairBank(dataset)

    def build(self, run, bank, context):
        from mdic_lab.models.baselines.taco import TACO, align_image_tower

        cfg = run.model
        model = TACO(cfg, text=context.get("text"))
        if cfg.k_p > 0:
            model.lpips_net()  # missing LPIPS weights stop the run before it starts
        if model.tower is None:
            context["image_tower"] = {"fitted": False, "why": "f_I is the CLIPModel's own image tower"}
        elif cfg.k_j == 0:
            context["image_tower"] = {"fitted": False, "why": "k_j = 0: Eq. 7 is off"}
        else:  # the lab stand-in of CLIP's image side, fitted to the frozen text encoder (then frozen)
            gen = torch.Generator().manual_seed(run.train.seed + 1)
            rep = align_image_tower(model.tower, model.text, bank.left, bank.captions_x, m=cfg.max_text_length,
                                    steps=cfg.align_steps, batch=cfg.align_batch, crop=run.train.crop, generator=gen)
            context["image_tower"] = {"fitted": True, **rep}
        return model

    def loss(self, model, core, bank, gens, run, *, rank, world, device):
        from .data import crop_pairs

        t = run.train
        idx = torch.randint(0, len(bank), (t.batch_size,), generator=gens["data"])
        x, _ = crop_pairs(bank, idx, t.crop, gens["data"])  # the hyperprior's crops for the same seed
        caps = [bank.captions_x[int(i)] for i in idx]
        per = t.batch_size // world
        x, caps = x[rank * per:(rank + 1) * per].to(device), caps[rank * per:(rank + 1) * per]
        res = model(x, caps, mode="noise", generator=gens.get("noise", gens["data"]))
        terms = core.loss(res, x, lmbda=t.lmbda)
        a = core.adapter
        terms["gamma"] = torch.cat([a.ca1.gamma, a.ca3.gamma]).detach().abs().mean()  # how open the text path is
        return terms

    def log_values(self, terms):
        t = {k: float(v.detach()) for k, v in terms.items() if torch.is_tensor(v)}
        return {"bpp_estimated": _fmt(t["bpp"]), "mse": _fmt(t["mse"]),
                "psnr": f"{10 * math.log10(1.0 / max(t['mse'], 1e-12)):.4f}",
                **{k: _fmt(t[k]) for k in ("lpips", "joint", "con", "dist", "gamma")}}

    def load(self, run, state, context=None):
        from mdic_lab.models.baselines.taco import TACO

        model = TACO(run.model, text=(context or {}).get("text"))
        model.load_state_dict(state["state_dict"])
        return model.eval().update()

    def encoder_captions(self, items):
        if any("caption_x" not in it for it in items):
            raise KeyError(f"{self.codec.name}'s encoder reads a caption of each main image: the pairs need "
                           "'caption_x' (open them with the codec's hooks.open_data)")
        return [it["caption_x"] for it in items]

    def compress(self, model, x, x_captions=None):
        if x_captions is None:
            raise ValueError(f"{self.codec.name}'s encoder reads a caption of each image: pass x_captions")
        return list(model.compress(x, list(x_captions))["strings"])

    def decompress(self, model, streams, side, captions, *, seed=0, num_inference_steps=None):
        return model.decompress(list(streams))

    @torch.no_grad()
    def _reference(self, model, x, side, x_captions=None):
        return model(x, list(x_captions), mode="dequantize")

    def estimated_bpp(self, model, x, side, x_captions=None):
        """The entropy model's estimate of the image latents (y, z); the caption has no likelihood model."""
        from mdic_lab.coding.bpp import bpp_from_likelihoods

        npix = int(x.shape[-2] * x.shape[-1])
        return [bpp_from_likelihoods(list(self._reference(model, x[i:i + 1], None, x_captions[i:i + 1])
                                          ["likelihoods"].values()), npix) for i in range(x.shape[0])]

    def round_trip(self, model, x, side, streams, x_hat, x_captions=None):
        """x̂ equals the "dequantize" forward pass bit for bit, and the stream's caption is the encoder's."""
        out = []
        for i in range(x.shape[0]):
            same = torch.equal(x_hat[i:i + 1], self._reference(model, x[i:i + 1], None, x_captions[i:i + 1])["x_hat"])
            sent = model.caption_of(streams[i])
            out.append(bool(same and (sent is None or sent == x_captions[i])))
        return out

    def caption_bytes(self, model, stream):
        return model.caption_bytes(stream)

    def sent_caption(self, model, stream):
        return model.caption_of(stream)
