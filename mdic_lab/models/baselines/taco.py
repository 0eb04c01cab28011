"""TACO (Lee et al., ICML 2024): text-adaptive encoding on the single-image scale hyperprior.

TACO keeps a PSNR-oriented codec and gives only its ENCODER a caption ``c`` of the image:
``(x, c) → y`` (Eq. 2).  The decoder is the backbone's own synthesis ``x̂ = g_s(ŷ)``; it never
reads text.  Here the backbone is this package's scale hyperprior
(:mod:`.hyperprior`; the paper's is ELIC, whose grouped context model the package lacks).

Text adapter (Sec. 3.2, Fig. 4), inside the analysis transform g_a::

    e = E_clip(c)                        (B, m, d)   frozen CLIP text tokens, Eq. 3
    h = conv GDN conv GDN (x)            (B, N, H/4,  W/4)
    h = CA1(h, Lin_1(e))                             text → image, Eq. 5 (tokens v_i of Eq. 4)
    h = conv GDN (h)                     (B, N, H/8,  W/8)
    e' = CA2(e, Lin_2(h))                            image → text: the text tokens read the image
    h = CA3(h, Lin_3(e'))                            text → image at the downsampled scale
    y = conv (h)                         (B, M, H/16, W/16)

with ``CA(v, e) = LN(v) + γ ⊙ Attention(LN(v), LN(Lin(e)))`` (Eq. 5, γ a learnable vector,
initialised to 0 as in the authors' code); CA2 is the same with queries from the text and
``γ = 1``.  With ``γ = 0`` the text has no effect and g_a is the hyperprior's analysis with a
per-position LayerNorm at the CA1 and CA3 positions (Eq. 5's ``LN(v_i)`` term).

Loss (Eqs. 6–7)::

    L = R(ŷ) + λ·255²·MSE(x, x̂) + k_p·LPIPS(x, x̂) + k_j·L_j(x, x̂, c)
    L_j = L_con(f_I(x̂), f_T(c)) + β·‖f_I(x) − f_I(x̂)‖₂

``L_con`` is CLIP's symmetric InfoNCE over the batch; ``f_I``, ``f_T`` are CLIP's image and
text embeddings (L2-normalised).  What stands in for what (``TACOConfig.clip``):

* a CLIPModel folder / hub id (preset ``paper``: ``openai/clip-vit-base-patch32``) -- the real
  thing: e = its text tower's last hidden states, f_T = text projection of the pooled text,
  f_I = visual projection of its vision tower (224×224, CLIP's normalisation), all frozen;
* ``"lab"`` (presets smoke, lab) -- e and the pooled text come from MDIC's shipped lab text
  encoder (``mdic_lab/models/mdic/shipped/lab``: a 2-layer, 64-wide CLIPTextModel with CLIP's
  BPE vocabulary, pretrained contrastively on synthetic side views), frozen; it is NOT OpenAI
  CLIP.  There is no pretrained image tower to go with it, so f_I is a small conv tower and
  f_T a linear projection of the pooled text, fitted once by InfoNCE on the training pairs
  (main images and their captions) before the codec trains, then frozen
  (:func:`align_image_tower`): a lab-scale CLIP image encoder in role, not in quality;
* ``"random"`` -- a tiny randomly initialised text encoder for tests of the plumbing only.

LPIPS needs the AlexNet weights on disk (:mod:`mdic_lab.metrics.perceptual`); without them a
config with ``k_p > 0`` is refused, never run with a random network (smoke/lab: ``k_p = 0``).

Bits.  The caption is at the encoder; TACO's stream carries it as its third payload (raw
DEFLATE of the UTF-8 bytes, :mod:`mdic_lab.coding.caption`), so the coded bpp counts it.  The
decoder does not need it to reconstruct -- the paper's bpp leaves it out -- and
``send_caption=False`` writes that image-only stream; the evaluation reports the caption's
bytes apart either way.  Contrast MDIC, whose caption is computed from the side view at the
decoder and costs no bits.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mdic_lab.coding import container
from mdic_lab.coding.caption import decode_caption, encode_caption
from mdic_lab.coding.errors import BitstreamError, payload_context
from mdic_lab.config import TACO_TEXT_SOURCES, TACOConfig
from mdic_lab.models.baselines._codec import ImageCodec, check_image
from mdic_lab.models.baselines.hyperprior import HyperCoder, analysis, decode_image, synthesis
from mdic_lab.models.layers import info_nce

__all__ = ["TACO", "TextToImage", "ImageToText", "TextAdapter", "TextSide", "load_text_side", "ImageTower",
           "joint_image_text_loss", "align_image_tower", "LAB_TEXT_ENCODER", "CLIP_MEAN", "CLIP_STD"]

#: The shipped lab text encoder (MDIC's lab backbone) that "lab" loads.
LAB_TEXT_ENCODER = Path(__file__).resolve().parents[1] / "mdic" / "shipped" / "lab" / "text_encoder"
#: CLIP's image normalisation (openai/clip-vit-base-patch32 preprocessor).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# ============================================================================ the frozen text side (Eq. 3)
class TextSide:
    """A frozen CLIP text encoder and its tokenizer (plus, for a real CLIPModel, its image tower).

    Held outside the model's ``state_dict`` (it is loaded from ``TACOConfig.clip``, not trained).
    ``record`` says what it is; ``is_clip`` is True only for a real CLIPModel.
    """

    def __init__(self, text_model, tokenizer, *, record: dict, clip_model=None):
        self.text_model = text_model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.record = dict(record)
        self.clip_model = None if clip_model is None else clip_model.eval().requires_grad_(False)
        self.device = torch.device("cpu")

    @property
    def dim(self) -> int:
        """Width d of the text tokens e (Eq. 3)."""
        return int(self.text_model.config.hidden_size)

    @property
    def is_clip(self) -> bool:
        return self.clip_model is not None

    @property
    def max_positions(self) -> int:
        return int(self.text_model.config.max_position_embeddings)

    def to(self, device) -> "TextSide":
        device = torch.device(device)
        if device != self.device:
            self.text_model.to(device)
            if self.clip_model is not None:
                self.clip_model.to(device)
            self.device = device
        return self

    def tokenize(self, captions, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions → ``(ids, attention mask)``, each ``(B, m)``: padded / truncated to m tokens."""
        if isinstance(captions, str) or not all(isinstance(c, str) and c.strip() for c in captions):
            raise ValueError("TACO's encoder needs a list of non-empty caption strings, one per image")
        out = self.tokenizer(list(captions), padding="max_length", max_length=m, truncation=True,
                             return_tensors="pt")
        return out.input_ids.to(self.device), out.attention_mask.to(self.device)

    @torch.no_grad()
    def encode(self, ids, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """``(e, pooled)``: the last hidden states ``(B, m, d)`` (Eq. 3) and the pooled text ``(B, d)``."""
        model = self.text_model if self.clip_model is None else self.clip_model.text_model
        out = model(input_ids=ids, attention_mask=mask)
        return out.last_hidden_state, out.pooler_output

    @torch.no_grad()
    def clip_text_embed(self, pooled) -> torch.Tensor:
        """f_T of Eq. 7 for a real CLIPModel: its text projection of the pooled text."""
        return self.clip_model.text_projection(pooled)

    def clip_image_embed(self, images) -> torch.Tensor:
        """f_I of Eq. 7 for a real CLIPModel (differentiable in ``images`` ``(B, 3, H, W)`` in [0, 1]).

        CLIP's preprocessing in torch: bicubic resize of the short side, centre crop to the
        vision tower's size, CLIP's mean / std.
        """
        size = int(self.clip_model.config.vision_config.image_size)
        h, w = images.shape[-2:]
        s = size / min(h, w)
        x = F.interpolate(images, size=(max(size, round(h * s)), max(size, round(w * s))), mode="bicubic",
                          align_corners=False, antialias=True)
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        x = x[..., top:top + size, left:left + size]
        mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        out = self.clip_model.vision_model(pixel_values=(x - mean) / std)
        return self.clip_model.visual_projection(out.pooler_output)


def _random_text_model():
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same tiny random encoder every time (tests)
        return CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                                            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))


def load_text_side(source: str) -> TextSide:
    """The frozen text side named by ``TACOConfig.clip``: ``"lab"``, ``"random"`` or a CLIPModel folder / hub id.

    A hub id loads from the local Hugging Face cache only (nothing is downloaded offline).
    """
    from mdic_lab.models.mdic.tokenizer import load_clip_tokenizer

    if source == "lab":
        from transformers import CLIPTextModel

        if not (LAB_TEXT_ENCODER / "config.json").is_file():
            raise FileNotFoundError(f"the shipped lab text encoder is missing: {LAB_TEXT_ENCODER} (reinstall the "
                                    "package, or remake it: mdic-lab pretrain --preset lab --export "
                                    "mdic_lab/models/mdic/shipped/lab)")
        model = CLIPTextModel.from_pretrained(LAB_TEXT_ENCODER, dtype=torch.float32).float()
        prov_file = LAB_TEXT_ENCODER.parent / "provenance.json"
        prov = json.loads(prov_file.read_text()) if prov_file.is_file() else {}
        return TextSide(model, load_clip_tokenizer(None), record={
            "source": "lab", "path": str(LAB_TEXT_ENCODER), "key": prov.get("key"), "is_clip": False,
            "what": "MDIC's shipped lab text encoder (2 layers, 64 wide, CLIP BPE vocabulary, contrastively "
                    "pretrained on synthetic side views), frozen; NOT OpenAI CLIP. f_I / f_T of Eq. 7: a small "
                    "image tower and text projection fitted to it on the training pairs, then frozen"})
    if source == "random":
        return TextSide(_random_text_model(), load_clip_tokenizer(None), record={
            "source": "random", "is_clip": False,
            "what": "a tiny randomly initialised text encoder: a plumbing check, not CLIP"})
    if source in TACO_TEXT_SOURCES:  # pragma: no cover - the tuple and the branches above agree
        raise AssertionError(source)
    from transformers import CLIPModel

    src = str(source)
    local = os.path.isdir(os.path.expanduser(src))
    if not local and (os.path.isabs(src) or src.startswith((".", "~"))):
        raise FileNotFoundError(f"CLIP folder not found: {src} (TACOConfig.clip: expected one of: "
                                f"{', '.join(TACO_TEXT_SOURCES)}, a CLIPModel folder or a hub id)")
    try:
        clip = CLIPModel.from_pretrained(os.path.expanduser(src) if local else src, dtype=torch.float32).float()
    except OSError as err:
        raise OSError(f"could not load the CLIPModel {src!r}: {err}. Offline, a hub id loads only from the local "
                      "Hugging Face cache (e.g. huggingface-cli download openai/clip-vit-base-patch32 first), or "
                      "pass a folder saved with save_pretrained (model + tokenizer)") from err
    tok = load_clip_tokenizer(os.path.expanduser(src) if local else src)
    return TextSide(clip.text_model, tok, clip_model=clip, record={
        "source": src, "is_clip": True, "what": "CLIPModel.from_pretrained: text tokens, f_T and f_I, frozen"})


# ============================================================================ the text adapter (Eqs. 4-5)
def _tokens(v: torch.Tensor) -> torch.Tensor:
    """Image features ``(B, k, h, w)`` → tokens ``(B, hw, k)``, one per position (Eq. 4)."""
    return v.flatten(2).transpose(1, 2)


class TextToImage(nn.Module):
    """CA1 / CA3: ``ṽ_i = LN(v_i) + γ ⊙ Attention(LN(v_i), LN(Lin(e)))`` (Eq. 5), γ learnable, initialised to 0."""

    def __init__(self, dim: int, text_dim: int, heads: int):
        super().__init__()
        self.lin = nn.Linear(text_dim, dim)  # Lin_1: text width d → image width k
        self.norm_v = nn.LayerNorm(dim)
        self.norm_e = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.gamma = nn.Parameter(torch.zeros(dim))

    def forward(self, v: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        b, k, h, w = v.shape
        q = self.norm_v(_tokens(v))  # (B, hw, k)
        kv = self.norm_e(self.lin(e))  # (B, m, k)
        a = self.attn(q, kv, kv, need_weights=False)[0]  # (B, hw, k)
        return (q + self.gamma * a).transpose(1, 2).reshape(b, k, h, w)  # Eq. 5


class ImageToText(nn.Module):
    """CA2: the text tokens attend to the image tokens, ``ẽ_j = LN(e_j) + Attention(LN(e_j), LN(Lin(v)))``."""

    def __init__(self, dim: int, text_dim: int, heads: int):
        super().__init__()
        self.lin = nn.Linear(dim, text_dim)  # image width k → text width d
        self.norm_v = nn.LayerNorm(text_dim)
        self.norm_e = nn.LayerNorm(text_dim)
        self.attn = nn.MultiheadAttention(text_dim, heads, batch_first=True)

    def forward(self, e: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self.norm_e(e)  # (B, m, d)
        kv = self.norm_v(self.lin(_tokens(v)))  # (B, hw, d)
        return q + self.attn(q, kv, kv, need_weights=False)[0]  # (B, m, d)


class TextAdapter(nn.Module):
    """The six layers of Fig. 4: three linear layers inside CA1, CA2, CA3."""

    def __init__(self, dim: int, text_dim: int, heads: int):
        super().__init__()
        if text_dim % heads:
            raise ValueError(f"TACOConfig.heads={heads} must divide the text width d={text_dim}")
        self.ca1 = TextToImage(dim, text_dim, heads)
        self.ca2 = ImageToText(dim, text_dim, heads)
        self.ca3 = TextToImage(dim, text_dim, heads)


# ============================================================================ Eq. 7
def joint_image_text_loss(f_hat: torch.Tensor, f_x: torch.Tensor, f_text: torch.Tensor, logit_scale: float,
                          beta: float) -> dict:
    """``L_j = L_con(f_I(x̂), f_T(c)) + β·‖f_I(x) − f_I(x̂)‖₂`` (Eq. 7), embeddings ``(B, D)`` L2-normalised here.

    ``L_con`` is CLIP's symmetric cross-entropy over the batch with the scale ``exp(logit_scale)``;
    the distance is the mean over the batch of the per-image L2 norm.  Returns ``{"joint", "con", "dist"}``.

    >>> f = torch.eye(3)
    >>> t = joint_image_text_loss(f, f, f, math.log(100.0), 40.0)
    >>> round(float(t["dist"]), 6), float(t["con"]) < 1e-3   # matched pairs, x̂ embedded like x
    (0.0, True)
    >>> one = torch.ones(4, 3)
    >>> round(float(joint_image_text_loss(one, one, one, 0.0, 40.0)["con"]), 4) == round(math.log(4), 4)
    True
    """
    a, x, t = F.normalize(f_hat, dim=-1), F.normalize(f_x, dim=-1), F.normalize(f_text, dim=-1)
    logits = math.exp(logit_scale) * t @ a.t()  # (B, B): caption i against reconstruction j
    target = torch.arange(a.shape[0], device=a.device)
    con = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    dist = (x - a).norm(dim=-1).mean()
    return {"joint": con + beta * dist, "con": con, "dist": dist}


# ============================================================================ lab stand-in of CLIP's image side
class ImageTower(nn.Module):
    """f_I and f_T of Eq. 7 at lab scale: a small conv tower on images, a projection of the pooled text.

    Fitted once by :func:`align_image_tower` to a frozen text encoder, then frozen.
    """

    def __init__(self, text_dim: int, tower_size, width: int = 32):
        super().__init__()
        self.tower_size = tuple(tower_size)
        self.net = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.GELU(), nn.Conv2d(width, 2 * width, 4, 2, 1),
                                 nn.GELU(), nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.GELU())
        self.image_proj = nn.Linear(4 * width, text_dim)
        self.text_proj = nn.Linear(text_dim, text_dim)

    def image_embed(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] → ``(B, d)`` (area-resized to ``tower_size``, scaled to [-1, 1])."""
        x = F.interpolate(images, size=self.tower_size, mode="area") * 2.0 - 1.0
        return self.image_proj(self.net(x).mean(dim=(2, 3)))

    def text_embed(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.text_proj(pooled)


def align_image_tower(tower: ImageTower, text: TextSide, images_u8: torch.Tensor, captions: list, *, m: int,
                      steps: int, batch: int, crop, generator: torch.Generator, lr: float = 1e-3) -> dict:
    """Fit ``tower`` to the frozen ``text`` by CLIP's InfoNCE on (crop of x, caption of x); freeze it.

    ``images_u8`` ``(n, 3, H, W)`` uint8, ``captions`` n strings.  Returns ``{"steps", "loss",
    "top1", "chance"}``: the last loss and the caption→image top-1 retrieval over (up to 64)
    whole training images (what InfoNCE was fitted on: an in-sample check, not a held-out score).
    """
    n = images_u8.shape[0]
    ids, mask = text.tokenize(captions, m)
    pooled = torch.cat([text.encode(ids[i:i + 64], mask[i:i + 64])[1] for i in range(0, n, 64)]).cpu()
    scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    opt = torch.optim.AdamW(list(tower.parameters()) + [scale], lr=lr, weight_decay=0.0)
    h, w = images_u8.shape[-2:]
    ch, cw = crop if crop is not None else (h, w)
    loss_v = float("nan")
    tower.train().requires_grad_(True)
    for _ in range(steps):
        idx = torch.randperm(n, generator=generator)[:min(batch, n)]
        top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
        x = images_u8[idx, :, top:top + ch, left:left + cw].float() / 255.0
        loss = info_nce(tower.text_embed(pooled[idx]), tower.image_embed(x), scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            scale.clamp_(0, math.log(100))
        loss_v = float(loss.detach())
    tower.eval().requires_grad_(False)
    k = min(n, 64)
    with torch.no_grad():
        a = F.normalize(tower.image_embed(images_u8[:k].float() / 255.0), dim=-1)
        b = F.normalize(tower.text_embed(pooled[:k]), dim=-1)
        top1 = float(((b @ a.t()).argmax(1) == torch.arange(k)).float().mean())
    return {"steps": int(steps), "loss": loss_v, "top1": top1, "chance": 1.0 / k}


# ============================================================================ the codec
class TACO(ImageCodec):
    """TACO on the scale hyperprior: text adapter in g_a (Eqs. 3–5), joint image-text loss (Eqs. 6–7).

    ``text`` is the frozen :class:`TextSide` (default: loaded from ``config.clip``, on first use).

    Examples
    --------
    >>> from mdic_lab.config import TACOConfig
    >>> m = TACO(TACOConfig(N=8, M=8, heads=2, clip="random"))
    >>> out = m(torch.rand(1, 3, 64, 64), ["a red car on the left"])
    >>> out["x_hat"].shape, out["likelihoods"]["y"].shape
    (torch.Size([1, 3, 64, 64]), torch.Size([1, 8, 4, 4]))
    """

    multiple = 64  # g_a (×1/16) then h_a (×1/4)

    def __init__(self, config: TACOConfig, text: TextSide | None = None):
        if not isinstance(config, TACOConfig):
            raise TypeError(f"TACO needs a TACOConfig, got {type(config).__name__}")
        super().__init__(config)
        n, m = config.N, config.M
        text = load_text_side(config.clip) if text is None else text
        if config.max_text_length > text.max_positions:
            raise ValueError(f"TACOConfig.max_text_length={config.max_text_length} exceeds the text encoder's "
                             f"{text.max_positions} positions")
        object.__setattr__(self, "text", text)  # frozen and loaded from config.clip: not in the state_dict
        self.g_a = analysis(3, n, m)  # the hyperprior's g_a; the adapter runs between its stages
        self.adapter = TextAdapter(n, text.dim, config.heads)
        self.g_s = synthesis(m, n)
        self.hyper = HyperCoder(n, m)
        # f_I / f_T of Eq. 7 at lab scale (fitted, then frozen); a real CLIPModel brings its own
        self.tower = None if text.is_clip else ImageTower(text.dim, config.tower_size).requires_grad_(False)
        object.__setattr__(self, "_lpips", None)

    # ---- text ----------------------------------------------------------------------------
    def encode_text(self, captions, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(e (B, m, d), pooled (B, d))`` of the captions (Eq. 3), on ``device``."""
        self.text.to(device)
        return self.text.encode(*self.text.tokenize(captions, self.config.max_text_length))

    def image_embed(self, images) -> torch.Tensor:
        """f_I (Eq. 7), differentiable in ``images``."""
        return self.text.clip_image_embed(images) if self.text.is_clip else self.tower.image_embed(images)

    def text_embed(self, pooled) -> torch.Tensor:
        """f_T (Eq. 7) of the pooled text."""
        return self.text.clip_text_embed(pooled) if self.text.is_clip else self.tower.text_embed(pooled)

    # ---- transforms ----------------------------------------------------------------------
    def analysis(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """``y = g_a(x, e)``: the hyperprior's stages with CA1, CA2, CA3 between them (Fig. 4)."""
        g, a = self.g_a, self.adapter
        h = g[3](g[2](g[1](g[0](x))))  # (B, N, H/4, W/4)
        h = a.ca1(h, e)  # text → image (Eq. 5)
        h = g[5](g[4](h))  # (B, N, H/8, W/8)
        e2 = a.ca2(e, h)  # image → text
        h = a.ca3(h, e2)  # text → image at the downsampled scale
        return g[6](h)  # (B, M, H/16, W/16)

    def forward(self, x, captions, mode="noise", generator=None) -> dict:
        """``{"x_hat", "likelihoods": {"y", "z"}, "pooled"}``; mode "dequantize" gives the decoder's output."""
        check_image(x, "x", self.multiple)
        if len(captions) != x.shape[0]:
            raise ValueError(f"TACO needs one caption per image: {x.shape[0]} images, {len(captions)} captions")
        e, pooled = self.encode_text(captions, x.device)
        y = self.analysis(x, e)
        y_hat, likelihoods = self.hyper(y, mode, generator)
        x_hat = self.g_s(y_hat)  # (B, 3, H, W)
        if mode == "dequantize":
            x_hat = x_hat.clamp(0.0, 1.0)
        return {"x_hat": x_hat, "likelihoods": likelihoods, "pooled": pooled}

    def lpips_net(self):
        """The LPIPS (AlexNet) network of Eq. 6; refused (never random) when its weights are not on disk."""
        if self._lpips is None:
            from mdic_lab.metrics.errors import MetricUnavailable
            from mdic_lab.metrics.perceptual import build_lpips

            try:
                net = build_lpips("alex")
            except MetricUnavailable as err:
                raise MetricUnavailable(f"TACOConfig.k_p={self.config.k_p} needs LPIPS: {err} (set k_p=0 to train "
                                        "without the LPIPS term of Eq. 6)") from err
            object.__setattr__(self, "_lpips", net.requires_grad_(False))
        return self._lpips

    def loss(self, out: dict, x, lmbda: float = 0.0018) -> dict:
        """Eq. 6: ``R + λ·255²·MSE + k_p·LPIPS + k_j·L_j`` (terms off at weight 0 are NaN in the log)."""
        c = self.config
        terms = self.rd_terms(out, x)
        loss = terms["bpp"] + lmbda * 255.0**2 * terms["mse"]
        nan = torch.tensor(float("nan"))
        terms.update(lpips=nan, joint=nan, con=nan, dist=nan)
        if c.k_p > 0:
            net = self.lpips_net().to(x.device)
            terms["lpips"] = net(out["x_hat"], x, normalize=True).mean()
            loss = loss + c.k_p * terms["lpips"]
        if c.k_j > 0:
            with torch.no_grad():
                f_x, f_t = self.image_embed(x), self.text_embed(out["pooled"])
            j = joint_image_text_loss(self.image_embed(out["x_hat"]), f_x, f_t, c.logit_scale, c.beta)
            terms.update(joint=j["joint"], con=j["con"], dist=j["dist"])
            loss = loss + c.k_j * j["joint"]
        terms["loss"] = loss
        return terms

    # ---- coding ------------------------------------------------------------------------------
    @property
    def n_payloads(self) -> int:
        return 3 if self.config.send_caption else 2

    @torch.no_grad()
    def compress(self, x, captions) -> dict:
        """``{"strings": [bytes per image], "shape": (h, w) of z}``; payloads y, z and (``send_caption``) the caption."""
        check_image(x, "x", self.multiple)
        if isinstance(captions, str) or len(captions) != x.shape[0]:
            raise ValueError(f"TACO's encoder needs one caption per image: {x.shape[0]} images, got {captions!r}")
        strings, shape = [], None
        for xi, cap in zip(x.split(1), captions):
            e, _ = self.encode_text([cap], xi.device)
            payloads, shape = self.hyper.compress(self.analysis(xi, e))
            if self.config.send_caption:
                payloads.append(encode_caption(cap))
            strings.append(self._pack({"x": tuple(xi.shape[-2:]), "z": shape}, payloads))
        return {"strings": strings, "shape": shape}

    def _unpack_stream(self, data: bytes) -> container.Container:
        c = container.unpack(data, expected_model_id=self.model_id)
        if len(c.payloads) != self.n_payloads:
            what = "y, z, caption" if self.config.send_caption else "y, z"
            lack = " (its caption payload is missing)" if len(c.payloads) == 2 and self.config.send_caption else ""
            raise BitstreamError(f"TACO expects {self.n_payloads} payloads ({what}), the stream has "
                                 f"{len(c.payloads)}{lack}")
        for name in ("x", "z"):
            if name not in c.shapes:
                raise BitstreamError(f"stream lacks the shape {name!r} that TACO needs")
        return c

    def caption_of(self, data: bytes) -> str | None:
        """The caption a stream carries (``None`` for image-only streams); damage raises :class:`BitstreamError`."""
        c = self._unpack_stream(data)
        if not self.config.send_caption:
            return None
        with payload_context(2, "caption"):
            return decode_caption(c.payloads[2])

    def caption_bytes(self, data: bytes) -> int:
        """Bytes of the caption payload of a stream (0 for image-only streams)."""
        c = self._unpack_stream(data)
        return len(c.payloads[2]) if self.config.send_caption else 0

    @torch.no_grad()
    def decompress(self, strings, shape=None, side=None) -> torch.Tensor:
        """Decode container strings to x̂ (B, 3, H, W) in [0, 1]; no text is needed (nor read) by g_s.

        The caption payload is decoded and checked too: a stream without it, or with a damaged
        one, raises :class:`~mdic_lab.coding.errors.BitstreamError` (one stream, one unit).
        """
        out = []
        for s in strings:
            c = self._unpack_stream(s)
            if self.config.send_caption:
                with payload_context(2, "caption"):
                    decode_caption(c.payloads[2])
            out.append(decode_image(c, self.hyper, self.g_s, self.multiple))
        return torch.cat(out)
