"""VMGM-TS: visual mask generation (Eqs. 4–8) with text supervision (Eqs. 9–12, 20).

Mask generator (decoder side, needs no text at inference):

* Eq. 4  ``F_diff = |ẑ_x − ẑ_y|``, ``F_prod = ẑ_x ⊙ ẑ_y``
* Eq. 5  ``logits = Conv(concat(ẑ_x, ẑ_y, F_diff, F_prod))`` -- three 3×3 convs with ReLU,
  one output channel: a spatial mask over the token grid
* Eq. 6–7 training: ``m = σ((logits + g)/τ)``, ``g = −log(−log(U + ε) + ε)``, ``U ~ U(0, 1)``
* Eq. 8  ``m_v = 1(m > θ)`` in the forward pass with the straight-through gradient of ``m``.
  (The paper prints ``1(m > θ) + sg(m − 1(m > θ))``, whose gradient would vanish; we use
  the standard straight-through form ``m + sg(1(m > θ) − m)``: same value, gradient of m.)
* inference: no Gumbel noise, ``m = σ(logits/τ)``, deterministic -- or, with
  ``MDICConfig.mask_inference_noise`` (the authors' code), Eq. 7 with noise ``g`` the decoder
  draws from its seed, then Eq. 8.
* τ: constant (the paper states none), or annealed per training step (the authors' code:
  5.0 × 0.99 per epoch, floor 0.5) by :func:`gumbel_tau_at`; the τ of the last trained step
  is kept in the state dict and used at inference (σ(logits/τ) > θ depends on τ).

Text supervision (training only): object nouns of the caption are replaced by a mask
token (Eq. 9), the frozen CLIP text encoder gives the token features ``T`` (Eq. 10),
``P_token`` turns ``m_v ⊙ z_y`` into visual tokens ``V`` (Eq. 11), a self-attention
predictor ``P_MSA`` over ``[T; V]`` predicts the masked nouns (Eq. 12) -- ``V`` is the k
tokens of the grid (``ts_predictor="spatial"``) or one globally pooled token (``"pooled"``, the
authors' code) --, and
``L_mask = (1/n) Σ CE(P_i, T_i)`` (Eq. 20).  Its gradient reaches the mask generator
through ``m_v`` (straight-through), which is how the text supervises the mask.

Masked captions: the frozen CLIP vocabulary has no mask token, so each masked noun is
represented by one fixed CLIP token (``mask_token_text``, default ``"*"``); the positions of
those tokens are recorded and the predictor reads its outputs there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["gumbel_noise", "gumbel_sigmoid", "gumbel_tau_at", "straight_through_threshold", "MaskOutput",
           "MaskGenerator", "MaskedText", "tokenize_masked_captions", "TextSupervision", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # target of text positions that are not masked nouns


def gumbel_noise(shape, generator: torch.Generator | None = None, eps: float = 1e-10, device=None) -> torch.Tensor:
    """``g = −log(−log(U + ε) + ε)``, ``U ~ U(0, 1)`` (Eq. 6), from an explicit generator."""
    u = torch.rand(shape, generator=generator, device=device)
    return -torch.log(-torch.log(u + eps) + eps)


def gumbel_sigmoid(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None,
                   noise: bool = True) -> torch.Tensor:
    """``m = σ((logits + g)/τ)`` (Eq. 7); ``noise=False`` gives ``σ(logits/τ)`` (inference).

    >>> float(gumbel_sigmoid(torch.tensor(0.0), tau=1.0, noise=False))
    0.5
    """
    if noise:
        logits = logits + gumbel_noise(logits.shape, generator, device=logits.device)
    return torch.sigmoid(logits / tau)


def gumbel_tau_at(step: int, total_steps: int, tau: float, decay: float = 1.0, final: float = 0.0,
                  epochs: int = 200) -> float:
    """τ of training step ``step`` of ``total_steps``: ``max(final, τ · decay^(epochs · step / total_steps))``.

    The authors anneal τ per epoch (× 0.99 from 5.0, floor 0.5) over about 200 epochs; here the
    run's ``total_steps`` stand for ``epochs`` epochs, so the same curve is walked whatever the
    run's length (the lab's 150 steps: × 0.98669 per step, 5.0 → 0.670 at the end).

    >>> gumbel_tau_at(0, 150, 5.0, 0.99, 0.5), round(gumbel_tau_at(150, 150, 5.0, 0.99, 0.5), 3)
    (5.0, 0.67)
    >>> gumbel_tau_at(10_000, 150, 5.0, 0.99, 0.5), gumbel_tau_at(7, 150, 1.0)
    (0.5, 1.0)
    """
    if total_steps < 1 or step < 0:
        raise ValueError(f"need step >= 0 and total_steps >= 1, got {step}, {total_steps}")
    return max(float(final), float(tau) * float(decay) ** (epochs * step / total_steps))


def straight_through_threshold(m: torch.Tensor, theta: float) -> torch.Tensor:
    """``m_v = 1(m > θ)`` with the gradient of ``m`` (Eq. 8, straight-through).

    >>> m = torch.tensor([0.1, 0.3], requires_grad=True)
    >>> mv = straight_through_threshold(m, 0.2)
    >>> mv.tolist()
    [0.0, 1.0]
    >>> mv.sum().backward(); m.grad.tolist()
    [1.0, 1.0]
    """
    hard = (m > theta).to(m.dtype)
    return m + (hard - m).detach()


@dataclass
class MaskOutput:
    """Output of :class:`MaskGenerator`."""

    m_v: torch.Tensor  # (B, 1, h, w) binary mask (straight-through gradient)
    m: torch.Tensor  # (B, 1, h, w) soft mask σ((logits + g)/τ)
    logits: torch.Tensor  # (B, 1, h, w)


class MaskGenerator(nn.Module):
    """Eqs. 4–8: ``(ẑ_x, ẑ_y)`` → binary visual mask ``m_v`` on the token grid.

    ``tau_decay < 1`` anneals τ (:meth:`set_training_progress`, :func:`gumbel_tau_at`); the
    current τ is then a buffer ``tau_now`` of the state dict, so a trained model decodes with
    the τ it was last trained at.
    """

    def __init__(self, channels: int, hidden: int = 32, tau: float = 1.0, theta: float = 0.2,
                 soft_training: bool = False, tau_decay: float = 1.0, tau_final: float = 0.0, tau_epochs: int = 200):
        super().__init__()
        self.channels, self.theta = channels, float(theta)
        self.tau0, self.tau_decay, self.tau_final = float(tau), float(tau_decay), float(tau_final)
        self.tau_epochs = int(tau_epochs)
        if self.tau_decay < 1.0:  # annealed: τ is state (checkpointed), absent otherwise so old checkpoints load
            self.register_buffer("tau_now", torch.tensor(self.tau0, dtype=torch.float64))
        self.soft_training = bool(soft_training)  # True: m_v = m while stochastic (the authors' code), hard at inference
        self.conv = nn.Sequential(  # Eq. 5: three-layer conv with ReLU
            nn.Conv2d(4 * channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 1, 3, padding=1),
        )

    @property
    def tau(self) -> float:
        """The τ of Eq. 7 now (the annealed one's last value, else the constant)."""
        return float(self.tau_now) if hasattr(self, "tau_now") else self.tau0

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Set τ to :func:`gumbel_tau_at` of ``step`` (a no-op for a constant τ)."""
        if hasattr(self, "tau_now"):
            self.tau_now.fill_(gumbel_tau_at(step, total_steps, self.tau0, self.tau_decay, self.tau_final,
                                             self.tau_epochs))

    def forward(self, zx_hat: torch.Tensor, zy_hat: torch.Tensor, stochastic: bool | None = None,
                generator: torch.Generator | None = None, gumbel: torch.Tensor | None = None) -> MaskOutput:
        """Mask of the two quantised latents ``(B, C, h, w)``.

        ``stochastic`` (default: ``self.training``) adds the Gumbel noise of Eq. 6–7; at
        inference the mask is a deterministic function of ``(ẑ_x, ẑ_y)``.  With
        ``soft_training`` the stochastic mask is the soft ``m`` itself (no threshold), as the
        authors' code trains it; the hard ``1(m > θ)`` of Eq. 8 then applies at inference only.
        ``gumbel`` ``(B, 1, h, w)``: given Gumbel noise ``g`` (the decoder's seeded draw of
        ``mask_inference_noise``), added before the hard Eq. 8 whatever ``stochastic`` says.
        """
        if zx_hat.shape != zy_hat.shape or zx_hat.ndim != 4 or zx_hat.shape[1] != self.channels:
            raise ValueError(
                f"zx_hat and zy_hat must both have shape (B, {self.channels}, h, w), "
                f"got {tuple(zx_hat.shape)} and {tuple(zy_hat.shape)}"
            )
        if stochastic is None:
            stochastic = self.training
        f_diff = (zx_hat - zy_hat).abs()  # Eq. 4
        f_prod = zx_hat * zy_hat
        logits = self.conv(torch.cat([zx_hat, zy_hat, f_diff, f_prod], dim=1))  # Eq. 5, (B, 1, h, w)
        if gumbel is not None:  # inference with the decoder's noise (Eqs. 6–8, hard)
            if gumbel.shape != logits.shape:
                raise ValueError(f"gumbel noise must have shape {tuple(logits.shape)}, got {tuple(gumbel.shape)}")
            m = torch.sigmoid((logits + gumbel.to(logits)) / self.tau)
            return MaskOutput(straight_through_threshold(m, self.theta), m, logits)
        m = gumbel_sigmoid(logits, self.tau, generator, noise=stochastic)  # Eqs. 6–7
        if stochastic and self.soft_training:  # soft-then-hard: the soft mask in training, Eq. 8 only at inference
            return MaskOutput(m, m, logits)
        return MaskOutput(straight_through_threshold(m, self.theta), m, logits)  # Eq. 8


@dataclass
class MaskedText:
    """CLIP ids of masked captions with the positions and classes of the masked nouns."""

    input_ids: torch.Tensor  # (B, L) CLIP ids, mask slots hold the mask token
    attention_mask: torch.Tensor  # (B, L) 1 for real tokens
    targets: torch.Tensor  # (B, L) noun class at mask slots, IGNORE_INDEX elsewhere


def tokenize_masked_captions(tokenizer, masked_captions, targets, marker: str, mask_token_text: str = "*",
                             max_length: int = 77) -> MaskedText:
    """Tokenise captions in which every masked noun is written as ``marker`` (Eq. 9).

    Parameters
    ----------
    tokenizer : CLIPTokenizer
    masked_captions : list of str
        e.g. ``"a red <mask> next to two <mask>"``.
    targets : list of list of int
        Noun classes in order of appearance, one per marker.
    marker : str
        The mask string used in ``masked_captions``.
    mask_token_text : str
        A word of the CLIP vocabulary that encodes to one token; it replaces each marker.
    max_length : int
        Padding/truncation length (start and end tokens included); masks truncated away are dropped.
    """
    if len(masked_captions) != len(targets):
        raise ValueError(f"got {len(masked_captions)} masked captions but {len(targets)} target lists")
    mask_ids = tokenizer(mask_token_text, add_special_tokens=False).input_ids
    if len(mask_ids) != 1:
        raise ValueError(f"mask_token_text {mask_token_text!r} must encode to one CLIP token, got {mask_ids}")
    mask_id = mask_ids[0]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ids_out, att_out, tgt_out = [], [], []
    for cap, tg in zip(masked_captions, targets):
        parts = cap.split(marker)
        if len(parts) - 1 != len(tg):
            raise ValueError(f"caption {cap!r} has {len(parts) - 1} markers {marker!r} but {len(tg)} targets")
        ids, tgt = [bos], [IGNORE_INDEX]
        for j, part in enumerate(parts):
            if part.strip():
                seg = tokenizer(part, add_special_tokens=False).input_ids
                ids += seg
                tgt += [IGNORE_INDEX] * len(seg)
            if j < len(tg):
                ids.append(mask_id)
                tgt.append(int(tg[j]))
        ids, tgt = ids[: max_length - 1] + [eos], tgt[: max_length - 1] + [IGNORE_INDEX]
        n = len(ids)
        ids_out.append(ids + [pad] * (max_length - n))
        att_out.append([1] * n + [0] * (max_length - n))
        tgt_out.append(tgt + [IGNORE_INDEX] * (max_length - n))
    return MaskedText(torch.tensor(ids_out), torch.tensor(att_out), torch.tensor(tgt_out))


class TextSupervision(nn.Module):
    """Eqs. 10–12 and 20: predict the masked nouns from text context and masked visual tokens.

    Parameters
    ----------
    text_dim : int
        Width of the text-encoder features ``T`` (Eq. 10).
    visual_channels : int
        Channels of ``z_y``.
    num_tokens : int
        Number of visual tokens ``k`` (token grid positions).
    num_classes : int
        Vocabulary size ``N`` of object nouns.
    d_model, layers, heads : int
        Size of ``P_MSA``.
    pooled : bool
        ``P_MSA`` sees ONE visual token, the mean of ``P_token(m_v ⊙ z_y)`` over the grid (the
        authors' code), instead of the k tokens of Eq. 11.
    """

    def __init__(self, text_dim: int, visual_channels: int, num_tokens: int, num_classes: int,
                 d_model: int = 64, layers: int = 2, heads: int = 4, max_text_length: int = 77,
                 pooled: bool = False):
        super().__init__()
        self.num_classes, self.pooled = num_classes, bool(pooled)
        self.text_proj = nn.Linear(text_dim, d_model)
        self.p_token = nn.Conv2d(visual_channels, d_model, 1)  # P_token of Eq. 11
        self.vis_pos = nn.Parameter(torch.zeros(1, 1 if pooled else num_tokens, d_model))
        self.txt_pos = nn.Parameter(torch.zeros(1, max_text_length, d_model))
        self.type_emb = nn.Parameter(torch.zeros(2, d_model))
        for p in (self.vis_pos, self.txt_pos, self.type_emb):
            nn.init.normal_(p, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.p_msa = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)  # P_MSA of Eq. 12
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, num_classes))

    def forward(self, text_features: torch.Tensor, attention_mask: torch.Tensor, targets: torch.Tensor,
                m_v: torch.Tensor, z_y: torch.Tensor):
        """``(L_mask, logits)``: Eq. 20 over the masked positions; ``logits (B, L, N)``.

        If no caption of the batch contains a masked noun, ``L_mask`` is ``0`` (still
        attached to the graph).
        """
        b, length, _ = text_features.shape
        if targets.shape != (b, length) or attention_mask.shape != (b, length):
            raise ValueError(f"targets and attention_mask must have shape {(b, length)}, got "
                             f"{tuple(targets.shape)} and {tuple(attention_mask.shape)}")
        if targets.numel() and targets.max() >= self.num_classes:
            raise ValueError(f"noun targets must lie in [0, {self.num_classes - 1}], got max {int(targets.max())}")
        t = self.text_proj(text_features) + self.txt_pos[:, :length] + self.type_emb[0]  # (B, L, d)
        v = self.p_token(m_v * z_y).flatten(2).transpose(1, 2)  # Eq. 11, (B, k, d)
        if self.pooled:  # one globally pooled visual vector (the authors' code)
            v = v.mean(1, keepdim=True)  # (B, 1, d)
        v = v + self.vis_pos[:, : v.shape[1]] + self.type_emb[1]
        pad = torch.cat([attention_mask == 0, torch.zeros(b, v.shape[1], dtype=torch.bool, device=v.device)], 1)
        h = self.p_msa(torch.cat([t, v], 1), src_key_padding_mask=pad)  # Eq. 12, (B, L + k, d)
        logits = self.head(h[:, :length])  # (B, L, N)
        sel = targets != IGNORE_INDEX
        if not sel.any():
            return logits.sum() * 0.0, logits
        return F.cross_entropy(logits[sel], targets[sel]), logits  # Eq. 20
