"""Autoregressive transformer entropy model of the VQ indices of ẑ_x (MDIC Fig. 4, Eq. 22).

The indices ``k_1 … k_N`` of ẑ_x in raster order are modelled as
``p(k) = Π_i p(k_i | k_<i)`` by a causal transformer (as in neural distributed source
coding [32] of the paper).  Training uses the ESTIMATED rate ``Σ −log2 p(k_i | k_<i)``
(:meth:`AREntropyModel.forward`); :meth:`AREntropyModel.compress` writes a REAL range-coded
bitstream with :mod:`mdic_lab.coding.arithmetic` from the same probabilities, and
:meth:`AREntropyModel.decompress` reads it back.

Determinism: the coder needs bit-identical probabilities at both ends.  Both ends compute
``p(· | k_<i)`` with the same incremental procedure (:class:`ARStepper`): position by
position, float32, eval mode, with the keys and values of the earlier positions cached (a
KV cache), so coding ``N`` indices costs ``O(N²·d)`` instead of the ``O(N³·d)`` of one full
causal pass per position.  At the encoder the fed tokens are the true ones; at the decoder
the decoded ones, equal by induction; the same operations on the same values give identical
probabilities bit for bit.  Up to :attr:`AREntropyModel.CODING_BATCH` images advance together
(one row each); every operation is per row, so a row's probabilities do not depend on the
batch it was coded in (see :class:`ARStepper`).  :meth:`AREntropyModel.step_probs`
(one full causal pass) computes the same distribution up to float rounding and is kept as
the reference the stepper is tested against.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdic_lab.coding.arithmetic import StreamDecoder, StreamEncoder

__all__ = ["CausalSelfAttention", "Block", "AREntropyModel", "ARStepper"]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask (masked scores are −inf → weight exactly 0)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (u.view(b, t, self.heads, c // self.heads).transpose(1, 2) for u in (q, k, v))  # (B, nh, T, hs)
        # softmax(q kᵀ/√d + causal mask) v, fused (no (B, nh, T, T) score tensor in memory)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        return self.proj(y)


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ARStepper:
    """Incremental evaluation of :class:`AREntropyModel`: ``p(· | k_<i)`` one position at a time.

    ``probs(i)`` needs the tokens ``k_0 … k_{i−1}`` fed before with :meth:`feed`; each call runs
    one position through the blocks, attending to the cached keys/values of the earlier ones
    (causal self-attention restricted to the past, as the mask of the full pass does).  It runs
    in NumPy float32 on a copy of the weights taken at construction: one position costs a few
    small matrix-vector products, where a torch call per operation would cost more in dispatch
    than in arithmetic.

    ``batch`` sequences advance together, one row each, so the per-operation dispatch is paid
    once per position for all of them.  A row's probabilities are bit-identical whatever the
    batch size and whatever the other rows hold (tested), because every operation is computed
    per row with the same inner shapes: matrix products are *stacked* ``(B, 1, d) @ (d, n)``
    (NumPy calls BLAS once per row with the row's own shape, never one ``(B, d)`` GEMM whose
    blocking depends on ``B``), attention is ``einsum`` reducing over the head dimension or
    the past positions of the row, and reductions run along the last axis of each row.  So an
    image coded in a batch of 8 decodes alone, and the stepper is bit-identical to the
    one-sequence version earlier bitstreams were written with.

    >>> m = AREntropyModel(num_codes=4, num_tokens=6, d_model=8, layers=1, heads=2).eval()
    >>> st = ARStepper(m)
    >>> p0 = st.probs(0); st.feed(2); p1 = st.probs(1)
    >>> bool(np.allclose(p1, m.step_probs([2], 1), atol=1e-6)), p0.shape
    (True, (1, 4))
    >>> two = ARStepper(m, batch=2); _ = two.probs(0); two.feed([2, 3])
    >>> bool(np.array_equal(two.probs(1)[:1], p1))
    True
    """

    def __init__(self, model: "AREntropyModel", batch: int = 1):
        from scipy.special import erf  # the exact GELU of every position (imported once per stepper)

        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")

        def a(t):
            return t.detach().cpu().float().numpy().copy()

        self._erf = erf
        self.start = model.start
        self.batch = batch
        self.tok_emb, self.pos_emb = a(model.tok_emb.weight), a(model.pos_emb[0])
        self.blocks = []
        for blk in model.blocks:
            self.blocks.append(dict(
                heads=blk.attn.heads,
                ln1=(a(blk.ln1.weight), a(blk.ln1.bias), blk.ln1.eps), ln2=(a(blk.ln2.weight), a(blk.ln2.bias), blk.ln2.eps),
                qkv=(a(blk.attn.qkv.weight).T.copy(), a(blk.attn.qkv.bias)),
                proj=(a(blk.attn.proj.weight).T.copy(), a(blk.attn.proj.bias)),
                fc1=(a(blk.mlp[0].weight).T.copy(), a(blk.mlp[0].bias)),
                fc2=(a(blk.mlp[2].weight).T.copy(), a(blk.mlp[2].bias))))
        self.ln_f = (a(model.ln_f.weight), a(model.ln_f.bias), model.ln_f.eps)
        self.head = (a(model.head.weight).T.copy(), a(model.head.bias))
        n, d = self.pos_emb.shape
        self.keys = [np.zeros((batch, b["heads"], n, d // b["heads"]), np.float32) for b in self.blocks]
        self.values = [np.zeros_like(k) for k in self.keys]
        self.next_input = np.full(batch, model.start, dtype=np.int64)  # position 0 sees the start token
        self.position = 0

    @staticmethod
    def _ln(x, p):
        """LayerNorm of each row of ``x (B, d)``."""
        w, b, eps = p
        mu = x.mean(axis=-1, keepdims=True)
        var = np.square(x - mu).mean(axis=-1, keepdims=True)
        return ((x - mu) / np.sqrt(var + np.float32(eps))) * w + b

    @staticmethod
    def _linear(x, p):
        """``x W + b`` per row of ``x (B, d)``, as a stacked product (one BLAS call per row)."""
        return (x[:, None, :] @ p[0])[:, 0] + p[1]

    def feed(self, tokens) -> None:
        """Record ``k_{position}`` of every row (an int when ``batch == 1``); it enters the next position."""
        t = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if t.shape != (self.batch,):
            raise ValueError(f"feed expects {self.batch} token(s), one per row, got {np.shape(tokens)}")
        self.next_input = t

    def probs(self, position: int) -> np.ndarray:
        """``p(· | k_<position)`` of every row as float64 ``(batch, K)``; positions must be visited in order 0, 1, …"""
        if position != self.position:
            raise ValueError(f"ARStepper visits positions in order: expected {self.position}, got {position}")
        t, nb = position, self.batch
        x = self.tok_emb[self.next_input] + self.pos_emb[t]  # (B, d)
        for j, b in enumerate(self.blocks):
            nh = b["heads"]
            d = x.shape[1]
            hs = d // nh
            qkv = self._linear(self._ln(x, b["ln1"]), b["qkv"])  # (B, 3d)
            q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(nb, nh, hs) for i in range(3))
            self.keys[j][:, :, t] = k
            self.values[j][:, :, t] = v
            K, V = self.keys[j][:, :, :t + 1], self.values[j][:, :, :t + 1]  # (B, nh, t+1, hs)
            sc = np.einsum("bhs,bhts->bht", q, K) / np.float32(math.sqrt(hs))
            w = np.exp(sc - sc.max(axis=-1, keepdims=True))
            w /= w.sum(axis=-1, keepdims=True)
            y = np.einsum("bht,bhts->bhs", w, V).reshape(nb, d)
            x = x + self._linear(y, b["proj"])
            h = self._linear(self._ln(x, b["ln2"]), b["fc1"])
            h = np.float32(0.5) * h * (np.float32(1.0) + self._erf(h / np.float32(math.sqrt(2.0))))  # exact GELU
            x = x + self._linear(h, b["fc2"])
        logits = self._linear(self._ln(x, self.ln_f), self.head).astype(np.float64)
        self.position += 1
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


class AREntropyModel(nn.Module):
    """Causal transformer over ``N`` raster-ordered indices in ``{0..K−1}``.

    Parameters
    ----------
    num_codes : int
        Alphabet size ``K`` (codebook size).
    num_tokens : int
        Sequence length ``N = h·w``.
    d_model, layers, heads : int
        Transformer size.

    Examples
    --------
    A fresh model has logits ≈ 0 only by chance; the ESTIMATED bits are ``Σ −log2 p``:

    >>> m = AREntropyModel(num_codes=4, num_tokens=6, d_model=8, layers=1, heads=2).eval()
    >>> idx = torch.tensor([[[0, 1, 2], [3, 0, 1]]])
    >>> lk = m(idx)
    >>> tuple(lk.shape), bool(((lk > 0) & (lk <= 1)).all())
    ((1, 2, 3), True)
    >>> data = m.compress(idx)
    >>> torch.equal(m.decompress(data, (2, 3)), idx)
    True
    """

    def __init__(self, num_codes: int, num_tokens: int, d_model: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.num_codes, self.num_tokens = num_codes, num_tokens
        self.start = num_codes  # id of the start token (also fills not-yet-decoded positions)
        self.tok_emb = nn.Embedding(num_codes + 1, d_model)
        self.pos_emb = nn.Parameter(torch.zeros(1, num_tokens, d_model))
        nn.init.normal_(self.pos_emb, std=0.02)
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_codes)

    #: images range-coded together by one batched :class:`ARStepper` (bounds its KV cache)
    CODING_BATCH = 64

    # ------------------------------------------------------------------ model
    def _check(self, indices):
        if indices.ndim != 3:
            raise ValueError(f"indices must have shape (B, h, w), got {tuple(indices.shape)}")
        n = indices.shape[1] * indices.shape[2]
        if n != self.num_tokens:
            raise ValueError(f"indices grid {tuple(indices.shape[1:])} has {n} positions, model expects {self.num_tokens}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"indices must lie in [0, {self.num_codes - 1}]")

    def logits(self, seq_in: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, N, K)``; ``seq_in (B, N)`` is the shifted input ``[start, k_1, …, k_{N−1}]``."""
        x = self.tok_emb(seq_in) + self.pos_emb[:, : seq_in.shape[1]]  # (B, N, d)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))  # (B, N, K)

    def _shift(self, flat: torch.Tensor) -> torch.Tensor:
        start = torch.full_like(flat[:, :1], self.start)
        return torch.cat([start, flat[:, :-1]], dim=1)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """Likelihoods ``p(k_i | k_<i)`` of shape ``(B, h, w)`` (teacher forcing, one pass)."""
        self._check(indices)
        flat = indices.reshape(indices.shape[0], -1).long()  # (B, N)
        logp = F.log_softmax(self.logits(self._shift(flat)), dim=-1)  # (B, N, K)
        return logp.gather(-1, flat[..., None]).squeeze(-1).exp().reshape(indices.shape)

    def rate_bits(self, indices: torch.Tensor) -> torch.Tensor:
        """ESTIMATED code length ``Σ_i −log2 p(k_i | k_<i)`` per image, ``(B,)`` (the rate of Eq. 22)."""
        self._check(indices)
        flat = indices.reshape(indices.shape[0], -1).long()
        logp = F.log_softmax(self.logits(self._shift(flat)), dim=-1)
        return -(logp.gather(-1, flat[..., None]).squeeze(-1).sum(1)) / math.log(2.0)

    # ------------------------------------------------------------------ coding
    @torch.no_grad()
    def step_probs(self, prefix: list, position: int) -> np.ndarray:
        """``p(· | k_<position)`` as float64 ``(1, K)``: one causal pass over the padded prefix.

        The input sequence has length ``N``: ``[start, k_0, …, k_{position−1}, start, …]``;
        the same call at encoder and decoder gives bit-identical rows.
        """
        seq = torch.full((1, self.num_tokens), self.start, dtype=torch.long)
        if position:
            seq[0, 1:position + 1] = torch.as_tensor(prefix[:position], dtype=torch.long)
        logits = self.logits(seq)[0, position].float()  # (K,)
        return torch.softmax(logits, dim=-1).double().numpy()[None]

    @torch.no_grad()
    def compress(self, indices: torch.Tensor) -> list:
        """Range-code each image's indices; returns a list of ``bytes`` (one per batch item).

        The model must be in eval mode (dropout-free, deterministic).
        """
        self._check(indices)
        if self.training:
            raise RuntimeError("call .eval() before compress(): coding needs deterministic probabilities")
        flat = indices.reshape(indices.shape[0], -1).cpu().long().numpy()
        out = []
        for lo in range(0, len(flat), self.CODING_BATCH):
            chunk = flat[lo:lo + self.CODING_BATCH]
            stepper, rows = ARStepper(self, batch=len(chunk)), []
            for i in range(self.num_tokens):
                rows.append(stepper.probs(i))
                stepper.feed(chunk[:, i])
            probs = np.stack(rows, axis=1)  # (B, N, K)
            for syms, p in zip(chunk, probs):
                enc = StreamEncoder()  # a queue coder: one call over all rows = the symbol-by-symbol stream
                enc.encode_categorical(syms, p)
                out.append(enc.finish())
        return out

    @torch.no_grad()
    def decompress(self, strings, grid: tuple) -> torch.Tensor:
        """Inverse of :meth:`compress`: ``strings`` (list of bytes, or one bytes) → ``(B, h, w)`` indices.

        Up to :attr:`CODING_BATCH` streams are decoded together.  Bytes the range decoder cannot
        decode raise :class:`~mdic_lab.coding.errors.BitstreamError` naming the stream (its index).
        """
        if self.training:
            raise RuntimeError("call .eval() before decompress(): coding needs deterministic probabilities")
        if isinstance(strings, (bytes, bytearray)):
            strings = [bytes(strings)]
        h, w = (int(v) for v in grid)
        if h * w != self.num_tokens:
            raise ValueError(f"grid {(h, w)} has {h * w} positions, model expects {self.num_tokens}")
        rows = []
        for lo in range(0, len(strings), self.CODING_BATCH):
            # Corrupted bytes raise BitstreamError from the range decoder (arithmetic.StreamDecoder);
            # the loop runs exactly num_tokens times whatever the bytes hold, and every decoded
            # index is checked to lie in {0..K-1} there, so the stepper never sees a foreign token.
            decoders = [StreamDecoder(bytes(data)) for data in strings[lo:lo + self.CODING_BATCH]]
            stepper = ARStepper(self, batch=len(decoders))
            names = [f"stream {lo + r}" for r in range(len(decoders))]
            syms = np.zeros((len(decoders), self.num_tokens), dtype=np.int64)
            for i in range(self.num_tokens):
                syms[:, i] = StreamDecoder.decode_categorical_each(decoders, stepper.probs(i), names)
                stepper.feed(syms[:, i])
            rows.extend(syms.tolist())
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), h, w)
