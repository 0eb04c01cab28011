r"""A learned one-shot Wyner–Ziv compressor (torch), after Özyılkan, Ballé & Erkip,
"Neural distributed compressor discovers binning" (2023).

The encoder never sees ``y``; the decoder does:

* encoder MLP ``f``: ``x ↦`` logits over ``K`` indices; the index is
  ``u = argmax_k f_k(x)`` at test time;
* a learned marginal ``p(u) = softmax(θ)`` — the rate is ``-log2 p(u)`` bits, and the
  indices are range-coded with exactly this pmf (:mod:`toy_sources.codes.entropy_coding`);
* decoder MLP ``g``: ``(onehot(u), y) ↦ x̂``.

Training minimises the Lagrangian of the operational rate–distortion problem,
``L = E[-log2 p(u)] + λ E[(X - g(u, Y))²]`` (``mode="hard"``, the default):

* the marginal ``p`` and the decoder ``g`` are trained on the hard (test-time) index
  ``u = argmax f(x)``;
* the encoder is trained through the expected cost of a soft encoder
  ``π(x) = softmax(β_t f(x))``,

  .. math:: \sum_k \pi_k(x)\,\big[-\log_2 p(k) + \lambda (x - g(k, y))^2\big]_{\text{fixed}},

  whose minimiser for fixed ``p, g`` is the one-hot best response (the ECVQ encoder
  rule); ``β_t`` grows geometrically from ``beta_start`` to ``beta_end``;
* every decoder head also learns ``Σ_k π_k (x - g(k,y))²`` so that an index the hard
  encoder does not use yet keeps a sensible reconstruction and can be picked up.

For the first ``warmup_steps`` the encoder is frozen at its random initial partition.

Two things make training reliable (measured against the one-shot optimum of
:mod:`toy_sources.codes.wz_lloyd`, which at ``ρ = 0.95`` consists of equiprobable periodic
binnings with ``K = 2, 3, 4, …`` indices and period ``≈ 2σ``):

* **λ annealing** (``lam_start_factor``): ``λ`` starts ``lam_start_factor`` times higher and
  falls geometrically to its target over ``lam_anneal_frac`` of the steps, so the encoder
  starts at a high rate with many indices in use and indices *merge* as the rate price
  rises, instead of dying one by one (which left 2–4 of 8 indices and collapses to rate 0);
* **decoder polish** (``decoder_steps``): the encoder frozen, the decoder and ``p(u)`` are
  fitted to the final partition (the decoder MLP otherwise lags the moving partition by up
  to 0.3 dB against the exact MMSE decoder of the same partition);
* **restarts**: ``restarts`` independent initialisations, the one with the lowest held-out
  Lagrangian ``R + λ·MSE`` is kept (the landscape has poorer local optima: non-periodic
  codes with the right number of indices).
``mode="soft"`` trains everything on the soft encoder instead. The inputs ``x`` and ``y``
enter through fixed Gaussian-bump features (a local basis; no periodicity and no ``ρ``).

``rate_model="conditional"`` replaces ``p(u)`` by a learned ``q(u | y)`` (the paper's
second variant): its rate is an ideal Slepian–Wolf rate, and coding with ``q(·|y)``
needs ``y`` at the encoder (an oracle), so only the marginal model is a real WZ code.

With side information the best encoder is *not* a quantiser of ``x`` into intervals:
it reuses each index on several disjoint intervals far apart (binning), since ``y`` tells
the decoder which one. :func:`index_intervals` counts them.

Examples
--------
>>> cfg = LearnedWZConfig(n_indices=4, hidden=8, steps=2, batch_size=64)
>>> model = LearnedWZ(cfg)
>>> model.encode(np.array([0.0, 1.0])).shape
(2,)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = [
    "LearnedWZConfig",
    "LearnedWZ",
    "train_learned_wz",
    "evaluate_learned_wz",
    "index_intervals",
    "lambda_for_distortion",
]


@dataclass
class LearnedWZConfig:
    """Configuration of the learned WZ compressor (saved with every result)."""

    var_x: float = 1.0  # variance σ² of X and Y
    rho: float = 0.95  # correlation of X and Y (training data only; the model never sees it)
    lam: float = 40.0  # λ in R + λ·MSE (R in bits, MSE in units of x²)
    n_indices: int = 16  # K, size of the index alphabet (the one-shot optimum at rho=0.95 uses 2-8 up to 3 bits)
    hidden: int = 32  # width of the hidden layers of encoder and decoder
    n_features: int = 64  # Gaussian-bump features of x and y on [-5σ, 5σ] fed to the MLPs (0: raw value)
    steps: int = 400  # optimiser steps (per restart)
    batch_size: int = 512  # samples per step (fresh samples every step)
    lr: float = 1e-2  # Adam learning rate (cosine-decayed to lr/20)
    prior_lr_factor: float = 10.0  # the marginal's logits learn this much faster
    beta_start: float = 0.5  # initial inverse temperature of the soft encoder
    beta_end: float = 5.0  # final inverse temperature (geometric schedule)
    init_scale: float = 0.3  # std of the direct feature->logit weights at initialisation
    warmup_steps: int = 60  # ("hard" mode) steps with the encoder frozen at its random initial partition
    rate_model: str = "marginal"  # "marginal": rate -log2 p(u), codable without y (a real WZ code); "conditional": -log2 q(u|y), an ideal-SW rate
    mode: str = "hard"  # "hard": decoder/prior trained on argmax indices, encoder on the soft expected cost; "soft": all on the soft encoder
    lam_start_factor: float = 4.0  # λ anneals geometrically from lam·this to lam over the first lam_anneal_frac of the steps (>1: start at high rate, merge indices as λ falls)
    lam_anneal_frac: float = 0.6  # fraction of the steps spent annealing λ
    decoder_steps: int = 300  # ("hard" mode) final steps with the encoder frozen: decoder and marginal fitted to the final partition
    restarts: int = 4  # independent initialisations trained; the one with the lowest held-out R + λ·MSE is kept
    seed: int = 0  # seed for initialisation and training samples

    def __post_init__(self):
        if not np.isfinite(self.var_x) or self.var_x <= 0:
            raise ValueError(f"var_x must be a finite positive variance, got {self.var_x}")
        if not np.isfinite(self.rho) or not -1 < self.rho < 1:
            raise ValueError(f"rho must lie in (-1, 1), got {self.rho}")
        if not np.isfinite(self.lam) or self.lam <= 0:
            raise ValueError(f"lam must be a finite positive number, got {self.lam}")
        if self.rate_model not in ("marginal", "conditional"):
            raise ValueError(f"unknown rate_model {self.rate_model!r} (expected one of: marginal, conditional)")
        if self.mode not in ("hard", "soft"):
            raise ValueError(f"unknown mode {self.mode!r} (expected one of: hard, soft)")
        if int(self.n_features) != self.n_features or self.n_features < 0 or self.n_features == 1:
            raise ValueError(f"n_features must be 0 or an integer >= 2, got {self.n_features}")
        for name in ("n_indices", "hidden", "batch_size"):
            v = getattr(self, name)
            if int(v) != v or v < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {v}")
        if int(self.decoder_steps) != self.decoder_steps or self.decoder_steps < 0:
            raise ValueError(f"decoder_steps must be a non-negative integer, got {self.decoder_steps}")
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps}")
        if int(self.restarts) != self.restarts or self.restarts < 1:
            raise ValueError(f"restarts must be an integer >= 1, got {self.restarts}")
        if not (np.isfinite(self.lam_start_factor) and self.lam_start_factor >= 1.0):
            raise ValueError(f"lam_start_factor must be >= 1, got {self.lam_start_factor}")
        if not 0.0 <= self.lam_anneal_frac <= 1.0:
            raise ValueError(f"lam_anneal_frac must lie in [0, 1], got {self.lam_anneal_frac}")
        if not (self.lr > 0 and self.beta_start > 0 and self.beta_end > 0):
            raise ValueError("lr, beta_start and beta_end must be positive")

    @classmethod
    def from_dict(cls, d):
        """Build from a dict, refusing unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)} (expected some of: {', '.join(sorted(known))})")
        return cls(**d)


def lambda_for_distortion(D):
    r"""λ whose R + λD optimum sits at distortion ``D`` on a curve ``D ∝ 2^{-2R}``.

    The slope of ``D(R) = c·2^{-2R}`` is ``dD/dR = -2 ln2 · D = -1/λ``, so
    ``λ = 1 / (2 ln 2 · D)``.

    >>> round(float(lambda_for_distortion(1 / (2 * np.log(2)))), 6)
    1.0
    """
    D = float(D)
    if not np.isfinite(D) or D <= 0:
        raise ValueError(f"D must be a finite positive distortion, got {D}")
    return float(1.0 / (2.0 * np.log(2.0) * D))


def _torch():
    import torch

    return torch


def _build(cfg):
    torch = _torch()
    nn = torch.nn
    H, K, F = cfg.hidden, cfg.n_indices, cfg.n_features

    class _Features(nn.Module):
        """Scalar -> F Gaussian bumps on a fixed grid over [-5, 5] (units of σ), or the raw value.

        A local basis lets a small MLP represent the many-interval (binned) maps that the
        optimum needs; it imposes no periodicity and knows nothing of ρ.
        """

        def __init__(self):
            super().__init__()
            self.dim = F if F > 0 else 1
            if F > 0:
                self.register_buffer("centres", torch.linspace(-5.0, 5.0, F))
                self.width = 10.0 / (F - 1)

        def forward(self, v):  # (B,) -> (B, dim)
            if F == 0:
                return v[:, None]
            return torch.exp(-0.5 * ((v[:, None] - self.centres[None, :]) / self.width) ** 2)

    class _Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.feat = _Features()
            D = self.feat.dim
            # encoder f: x -> K logits (sees x only)
            self.enc_mlp = nn.Sequential(nn.Linear(D, H), nn.GELU(), nn.Linear(H, H), nn.GELU(), nn.Linear(H, K))
            # direct path features -> logits, initialised with unit-variance weights: each
            # feature bump votes for random indices, so the initial partition is a random
            # assignment of short intervals to indices (random binning, not imposed periodicity)
            self.enc_lin = nn.Linear(D, K, bias=False)
            nn.init.normal_(self.enc_lin.weight, std=cfg.init_scale)
            # learned marginal p(u) = softmax(prior_logits)
            self.prior_logits = nn.Parameter(torch.zeros(K))
            # rate_model "conditional": q(u | y) = softmax(prior_logits + cond_prior(feat(y)))
            self.cond_prior = nn.Linear(D, K, bias=False) if cfg.rate_model == "conditional" else None
            if self.cond_prior is not None:
                nn.init.zeros_(self.cond_prior.weight)
            # decoder g: (onehot(u), y) -> x̂; the one-hot enters as an embedding row
            self.emb = nn.Embedding(K, H)
            self.dec_y = nn.Linear(D, H)
            self.dec = nn.Sequential(nn.GELU(), nn.Linear(H, H), nn.GELU(), nn.Linear(H, 1))
            self.skip = nn.Linear(1, 1)  # linear path y -> x̂ (learned, not given ρ)
            # per-index linear read-out of the y features: a fast-learning path for the
            # sharp, index-dependent functions of y that binning requires
            self.dec_lin = nn.Embedding(K, D)
            nn.init.zeros_(self.dec_lin.weight)

        def enc(self, x):
            """Logits: x (B,) -> (B, K)."""
            f = self.feat(x)  # (B, D)
            return self.enc_mlp(f) + self.enc_lin(f)  # (B, K)

        def log_prior(self, y):
            """Natural-log pmf of the rate model: (K,) marginal or (B, K) conditional on y."""
            if self.cond_prior is None:
                return torch.log_softmax(self.prior_logits, 0)  # (K,)
            return torch.log_softmax(self.prior_logits[None, :] + self.cond_prior(self.feat(y)), 1)  # (B, K)

        def decode_all(self, y):
            """x̂ for every index: y (B,) -> (B, K)."""
            fy = self.feat(y)  # (B, D)
            h = self.emb.weight[None, :, :] + self.dec_y(fy)[:, None, :]  # (B, K, H)
            return self.dec(h).squeeze(-1) + self.skip(y[:, None]) + fy @ self.dec_lin.weight.T  # (B, K)

        def decode_idx(self, u, y):
            """x̂ for given indices: u (B,), y (B,) -> (B,)."""
            h = self.emb(u) + self.dec_y(self.feat(y))  # (B, H)
            lin = (self.feat(y) * self.dec_lin(u)).sum(-1)  # (B,)
            return self.dec(h).squeeze(-1) + self.skip(y[:, None]).squeeze(-1) + lin

    return _Net()


class LearnedWZ:
    """The learned compressor: hard encoder, learned marginal, decoder; numpy in and out.

    Inputs and outputs are in the units of ``x``; internally ``x`` and ``y`` are divided
    by ``σ``.
    """

    def __init__(self, config: LearnedWZConfig | None = None, net=None):
        torch = _torch()
        self.config = config or LearnedWZConfig()
        if net is None:
            # initialisation from the config seed; fork_rng restores the global stream
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                net = _build(self.config)
        self.net = net
        self._sd = float(np.sqrt(self.config.var_x))

    # -- numpy interface -----------------------------------------------------------
    def _t(self, v, name):
        torch = _torch()
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return torch.as_tensor(v / self._sd, dtype=torch.float32)

    def prior(self, y=None):
        """Pmf of the rate model (float64, rows sum to one).

        Marginal model: ``p(u)``, shape ``(K,)`` (``y`` ignored). Conditional model:
        ``q(u | y_i)``, shape ``(N, K)`` (``y`` required).
        """
        torch = _torch()
        if self.config.rate_model == "conditional":
            if y is None:
                raise ValueError("the conditional rate model needs y")
            yt = self._t(y, "y")
        else:
            yt = torch.zeros(1)
        with torch.no_grad():
            p = torch.exp(self.net.log_prior(yt).double()).numpy()
        return p / p.sum(axis=-1, keepdims=True)

    def logits(self, x):
        """Encoder logits, shape ``(N, K)``."""
        torch = _torch()
        with torch.no_grad():
            return self.net.enc(self._t(x, "x")).double().numpy()

    def encode(self, x):
        """Hard index ``u = argmax f(x)`` (int64), shape ``(N,)``."""
        return np.argmax(self.logits(x), axis=1).astype(np.int64)

    def decode(self, u, y):
        """Reconstruction ``x̂ = g(u, y)``, shape ``(N,)``."""
        torch = _torch()
        yt = self._t(y, "y")
        u = np.asarray(u)
        if u.shape != (yt.shape[0],):
            raise ValueError(f"u must have the shape of y ({yt.shape[0]},), got {u.shape}")
        K = self.config.n_indices
        if u.size and (u.min() < 0 or u.max() >= K):
            raise ValueError(f"u must lie in [0, {K - 1}], got [{u.min()}, {u.max()}]")
        with torch.no_grad():
            out = self.net.decode_idx(torch.as_tensor(u, dtype=torch.long), yt)
        return out.double().numpy() * self._sd

    def compress(self, x, y=None):
        """Encode and range-code with the rate model; returns ``(bytes, u)``.

        Marginal model: a real Wyner–Ziv bitstream (``y`` is not used). Conditional model:
        coding with ``q(u|y)`` needs ``y`` at the encoder — an ORACLE that measures the
        rate an ideal Slepian–Wolf code of ``u`` would approach; not a WZ code.
        """
        from .entropy_coding import encode_categorical

        u = self.encode(x)
        return encode_categorical(u, self.prior(y)), u

    def decompress(self, data, y):
        """Decode ``len(y)`` indices from ``data`` and reconstruct with ``y``."""
        from .entropy_coding import decode_categorical

        yt = self._t(y, "y")
        p = self.prior(y)
        u = decode_categorical(data, p, n=int(yt.shape[0]) if p.ndim == 1 else None)
        return self.decode(u, y)

    def state(self):
        """Config and weights (for saving)."""
        return {"config": asdict(self.config), "state_dict": self.net.state_dict()}


def train_learned_wz(config: LearnedWZConfig, log_every=0):
    """Train a :class:`LearnedWZ`; with ``config.restarts > 1``, keep the best of several runs.

    Run ``r`` uses seed ``config.seed + 7919 r`` (initialisation and samples); each trained
    model is scored by the Lagrangian ``R + λ·MSE`` of its hard encoder on a validation
    set (its own seed, separate from training and from :func:`evaluate_learned_wz`'s
    default), rate measured as ``-log2 p(u)`` under its learned marginal. The returned
    model keeps the config's ``seed``; the log adds ``restart`` (the run kept), ``val_J``
    (all runs) and the total ``seconds``.
    """
    from dataclasses import replace

    if config.restarts == 1:
        return _train_once(config, log_every)
    t0 = time.perf_counter()
    best, vals = None, []
    for r in range(int(config.restarts)):
        cfg_r = replace(config, seed=int(config.seed) + 7919 * r, restarts=1)
        model, log = _train_once(cfg_r, log_every)
        J = _validation_lagrangian(model, seed=int(config.seed) + 424242)
        vals.append(J)
        if best is None or J < best[0]:
            best = (J, model, log, r)
    _, model, log, r = best
    model.config = replace(model.config, seed=config.seed, restarts=config.restarts)
    log = {**log, "restart": r, "val_J": vals, "seconds": time.perf_counter() - t0}
    return model, log


def _validation_lagrangian(model, n=20_000, seed=0):
    """``E[-log2 p(u)] + λ·MSE`` of the hard encoder on ``n`` fresh samples."""
    from .wyner_ziv import GaussianSideInfoSource

    cfg = model.config
    x, y = GaussianSideInfoSource(cfg.var_x, cfg.rho).sample(n, seed)
    u = model.encode(x)
    p = model.prior(y if cfg.rate_model == "conditional" else None)
    pu = p[u] if p.ndim == 1 else p[np.arange(n), u]
    mse = float(np.mean((x - model.decode(u, y)) ** 2))
    return float(np.mean(-np.log2(pu)) + cfg.lam * mse)


def _train_once(config: LearnedWZConfig, log_every=0):
    """Train a :class:`LearnedWZ` on fresh samples of the Gaussian pair.

    Uses one CPU thread while training (restored afterwards), a ``torch.Generator``
    seeded from ``config.seed`` for the samples, and Adam with a cosine learning rate.

    Returns
    -------
    (LearnedWZ, dict)
        The model and a training log (``seconds``, final ``loss``, ``rate`` (bits),
        ``mse``; a ``history`` list if ``log_every`` > 0).
    """
    torch = _torch()
    cfg = config
    model = LearnedWZ(cfg)
    net = model.net
    gen = torch.Generator().manual_seed(int(cfg.seed) + 1)
    s = float(np.sqrt(1.0 - cfg.rho**2))
    fast = {"prior_logits", "cond_prior.weight"}
    others = [p for n, p in net.named_parameters() if n not in fast]
    priors = [p for n, p in net.named_parameters() if n in fast]
    opt = torch.optim.Adam([{"params": others}, {"params": priors, "lr": cfg.lr * cfg.prior_lr_factor}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1), eta_min=cfg.lr / 20)
    lam_target = cfg.lam * cfg.var_x  # internal units: x/σ, so MSE_internal = MSE / σ²
    ln2 = float(np.log(2.0))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    history = []
    loss_v = rate_v = mse_v = float("nan")
    net.train()
    try:
        for step in range(cfg.steps):
            frac = step / max(cfg.steps - 1, 1)
            beta = cfg.beta_start * (cfg.beta_end / cfg.beta_start) ** frac
            a_frac = min(frac / cfg.lam_anneal_frac, 1.0) if cfg.lam_anneal_frac > 0 else 1.0
            lam = lam_target * cfg.lam_start_factor ** (1.0 - a_frac)  # λ annealing (high rate first)
            y = torch.randn(cfg.batch_size, generator=gen)
            x = cfg.rho * y + s * torch.randn(cfg.batch_size, generator=gen)
            logits = net.enc(x)  # (B, K)
            pi = torch.softmax(beta * logits, dim=1)  # (B, K)
            logp = net.log_prior(y) / ln2  # (K,) or (B, K), bits
            if logp.ndim == 1:
                logp = logp[None, :].expand(x.shape[0], -1)  # (B, K)
            sel = torch.arange(x.shape[0])
            if cfg.mode == "soft":
                xh = net.decode_all(y)  # (B, K)
                rate = -(pi * logp).sum(1).mean()
                mse = (pi * (x[:, None] - xh) ** 2).sum(1).mean()
                loss = rate + lam * mse
            else:  # "hard": prior and decoder see the test-time (argmax) indices
                u = logits.argmax(1)  # (B,)
                rate = -logp[sel, u].mean()
                mse = ((x - net.decode_idx(u, y)) ** 2).mean()
                sq = (x[:, None] - net.decode_all(y)) ** 2  # (B, K)
                cost = (-logp + lam * sq).detach()  # per-index Lagrangian cost, fixed for the encoder
                # encoder: expected cost under the soft encoder
                enc_term = (pi * cost).sum(1).mean()
                # every decoder head also learns where the soft encoder puts mass, so that
                # indices unused by the hard encoder stay usable
                dec_soft = lam * (pi.detach() * sq).sum(1).mean()
                # warm-up: the encoder (a random binning at initialisation) is held fixed
                # while the decoder and marginal learn to use it
                loss = rate + lam * mse + dec_soft + (enc_term if step >= cfg.warmup_steps else 0.0 * enc_term)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_v, rate_v, mse_v = loss.item(), rate.item(), mse.item() * cfg.var_x
            if log_every and (step % log_every == 0 or step == cfg.steps - 1):
                history.append({"step": step, "beta": beta, "loss": loss_v, "rate": rate_v, "mse": mse_v})
        # decoder polish: encoder frozen, decoder and marginal fitted to the final hard partition
        # (the MMSE decoder E[X | u, y] and p(u) of that partition are what the loss minimises)
        if cfg.decoder_steps > 0 and cfg.mode == "hard":
            enc_names = ("enc_mlp", "enc_lin")
            dec_params = [p for n, p in net.named_parameters() if not n.startswith(enc_names)]
            opt2 = torch.optim.Adam(dec_params, lr=cfg.lr / 5)
            for _ in range(int(cfg.decoder_steps)):
                y = torch.randn(cfg.batch_size, generator=gen)
                x = cfg.rho * y + s * torch.randn(cfg.batch_size, generator=gen)
                with torch.no_grad():
                    u = net.enc(x).argmax(1)  # (B,)
                logp = net.log_prior(y) / ln2
                logp = logp[None, :].expand(x.shape[0], -1) if logp.ndim == 1 else logp
                rate = -logp[torch.arange(x.shape[0]), u].mean()
                mse = ((x - net.decode_idx(u, y)) ** 2).mean()
                loss = rate + lam_target * mse
                opt2.zero_grad()
                loss.backward()
                opt2.step()
                loss_v, rate_v, mse_v = loss.item(), rate.item(), mse.item() * cfg.var_x
    finally:
        torch.set_num_threads(old_threads)
    net.eval()
    log = {"seconds": time.perf_counter() - t0, "loss": loss_v, "rate": rate_v, "mse": mse_v}
    if log_every:
        log["history"] = history
    return model, log


def evaluate_learned_wz(model: LearnedWZ, n=100_000, seed=12345):
    """Held-out evaluation with the hard encoder and real range coding.

    Fresh samples (``seed`` differs from training) are encoded, range-coded with the
    learned marginal, decoded from the bytes, and reconstructed with ``y``.

    Returns
    -------
    dict
        ``rate_coded`` (bits/sample from the bytes), ``rate_entropy`` (mean
        ``-log2 p(u)`` under the learned marginal), ``rate_empirical_entropy`` (plug-in
        ``H(U)`` of the held-out indices), ``mse``, ``d_wz``, ``d_no_si``, ``gap_db``
        (to ``D_WZ`` at the coded rate), ``gap_no_si_db``, ``n_used`` (indices used).
    """
    from .entropy_coding import coded_bits, ideal_code_length_bits
    from .wyner_ziv import GaussianSideInfoSource, gap_db

    cfg = model.config
    src = GaussianSideInfoSource(cfg.var_x, cfg.rho)
    x, y = src.sample(n, seed)
    data, u = model.compress(x, y if cfg.rate_model == "conditional" else None)
    xh = model.decompress(data, y)
    if not np.array_equal(xh, model.decode(u, y)):
        raise RuntimeError("range-coding round trip failed: decoded reconstruction differs")
    mse = float(np.mean((x - xh) ** 2))
    rate_coded = coded_bits(data) / n
    rate_ent = ideal_code_length_bits(u, model.prior(y if cfg.rate_model == "conditional" else None)) / n
    counts = np.bincount(u, minlength=cfg.n_indices) / n
    nz = counts[counts > 0]
    d_wz = src.d_wz(rate_coded)
    d_no = src.d_no_si(rate_coded)
    return {
        "lam": cfg.lam,
        "rate_model": cfg.rate_model,
        "coded_without_y": cfg.rate_model == "marginal",
        "rate_coded": rate_coded,
        "rate_entropy": rate_ent,
        "rate_empirical_entropy": float(-(nz * np.log2(nz)).sum()),
        "mse": mse,
        "d_wz": d_wz,
        "d_no_si": d_no,
        "gap_db": gap_db(mse, d_wz),
        "gap_no_si_db": gap_db(mse, d_no),
        "n_used": int((counts > 0).sum()),
        "n_test": int(n),
    }


def index_intervals(model: LearnedWZ, lo=None, hi=None, n_grid=20001, min_prob=1e-4):
    """The binning: which disjoint x-intervals each index owns.

    The hard encoder is evaluated on a fine grid over ``[lo, hi]`` (default ``±4σ``);
    runs of equal index are intervals. Runs whose Gaussian probability is below
    ``min_prob`` are dropped from the count (sub-grid slivers in the far tails).

    Returns
    -------
    dict
        ``intervals``: list of ``(index, x_start, x_end, prob)``; ``per_index``: dict
        index -> number of disjoint intervals; ``grid`` and ``u`` (the index per grid x).
    """
    from scipy.special import ndtr

    sd = np.sqrt(model.config.var_x)
    lo = -4 * sd if lo is None else float(lo)
    hi = 4 * sd if hi is None else float(hi)
    if not hi > lo:
        raise ValueError(f"need hi > lo, got lo={lo}, hi={hi}")
    g = np.linspace(lo, hi, int(n_grid))
    u = model.encode(g)
    change = np.flatnonzero(np.diff(u)) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, g.size]
    edges_lo = np.r_[lo, (g[change - 1] + g[change]) / 2]
    edges_hi = np.r_[(g[change - 1] + g[change]) / 2, hi]
    out = []
    for a, b, i0, _ in zip(edges_lo, edges_hi, starts, ends):
        a_ = -np.inf if a == lo else a
        b_ = np.inf if b == hi else b
        p = float(ndtr(b_ / sd) - ndtr(a_ / sd))
        if p >= min_prob:
            out.append((int(u[i0]), float(a), float(b), p))
    per = {}
    for k, *_ in out:
        per[k] = per.get(k, 0) + 1
    return {"intervals": out, "per_index": dict(sorted(per.items())), "grid": g, "u": u}


def config_json(cfg: LearnedWZConfig) -> str:
    """The config as JSON with the class name (saved next to results)."""
    return json.dumps({"_class": "LearnedWZConfig", **asdict(cfg)}, sort_keys=True)
