"""Toy correlated sources: the DSBS, jointly Gaussian pairs/triples, and the multimodal toy.

* :func:`dsbs` — the doubly symmetric binary source ``X ~ Bern(½)``, ``Y = X ⊕ N``,
  ``N ~ Bern(p)``; ``H(X|Y) = h(p)``.
* :func:`gaussian_pair`, :func:`gaussian_markov_triple`, :func:`gaussian_side_information`
  — :class:`GaussianSource` objects with a covariance, names and a seeded sampler.
* :class:`MultimodalToy` — a discrete joint of ``(X, V_X, V_Y, T)`` (and optionally the
  correlated image ``Y``) built so that every statement of Theorem 6.1 and Remarks 1–2 of the
  MDIC supplement (Eqs. 24–33) can be checked exactly; see its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bounds import binary_entropy
from .gaussian import check_covariance, conditional_variance, mutual_information_gaussian
from .pmf import JointPMF, as_generator

__all__ = [
    "dsbs",
    "sample_dsbs",
    "GaussianSource",
    "gaussian_pair",
    "gaussian_markov_triple",
    "gaussian_side_information",
    "MultimodalToy",
    "multimodal_toy",
]


def _check_prob(p, name: str) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number in [0, 1], got {p!r}") from exc
    if not 0.0 <= p <= 1.0:  # also catches NaN
        raise ValueError(f"{name} must lie in [0, 1], got {p}")
    return p


# ------------------------------------------------------------------------------ DSBS
def dsbs(p: float, names=("X", "Y")) -> JointPMF:
    """Doubly symmetric binary source: ``P(X=x, Y=y) = ½(1−p)`` if ``x = y`` else ``½p``.

    >>> pmf = dsbs(0.11)
    >>> round(float(pmf.H("X", given="Y")), 4)    # h(0.11)
    0.4999
    """
    p = _check_prob(p, "p")
    return JointPMF([[(1 - p) / 2, p / 2], [p / 2, (1 - p) / 2]], names)


def sample_dsbs(p: float, n, rng) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``X ~ Bern(½)`` and ``Y = X ⊕ Bern(p)`` of shape ``n`` (int or tuple); uint8.

    >>> x, y = sample_dsbs(0.0, 5, rng=0)
    >>> bool((x == y).all())
    True
    """
    p = _check_prob(p, "p")
    g = as_generator(rng)
    x = g.integers(0, 2, size=n, dtype=np.uint8)
    noise = (g.random(size=n) < p).astype(np.uint8)
    return x, x ^ noise


# -------------------------------------------------------------------------- Gaussian
class GaussianSource:
    """A zero-mean jointly Gaussian vector with named components.

    Parameters
    ----------
    cov : array_like, (k, k)
        Covariance matrix (symmetric positive semidefinite).
    names : sequence of str
        One name per component.

    Examples
    --------
    >>> src = gaussian_pair(0.6)
    >>> round(src.I("X", "Y"), 6)     # −½ log2(1 − 0.36)
    0.321928
    """

    def __init__(self, cov, names):
        self.cov = check_covariance(cov)
        names = (names,) if isinstance(names, str) else tuple(names)
        if len(names) != self.cov.shape[0]:
            raise ValueError(f"{len(names)} names {names} for a {self.cov.shape[0]}-dim covariance")
        if len(set(names)) != len(names):
            raise ValueError(f"repeated names in {names}")
        self.names = names

    def index(self, names) -> list[int]:
        """Indices of a name or list of names."""
        names = [names] if isinstance(names, str) else list(names)
        out = []
        for n in names:
            if n not in self.names:
                raise KeyError(f"unknown variable {n!r} (expected one of: {', '.join(self.names)})")
            out.append(self.names.index(n))
        return out

    def I(self, a, b, given=()) -> float:  # noqa: E743
        """``I(a; b | given)`` in bits (closed form)."""
        return float(mutual_information_gaussian(self.cov, self.index(a), self.index(b), self.index(given)))

    def conditional_variance(self, name: str, given=()) -> float:
        """``Var(name | given)`` (Schur complement)."""
        (i,) = self.index(name)
        return conditional_variance(self.cov, i, self.index(given))

    def sample(self, n: int, rng) -> np.ndarray:
        """``n`` i.i.d. draws, shape ``(n, k)`` (columns in ``names`` order)."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        g = as_generator(rng)
        w, v = np.linalg.eigh(self.cov)
        root = v * np.sqrt(np.clip(w, 0.0, None))
        return g.standard_normal((int(n), len(self.names))) @ root.T

    def __repr__(self) -> str:
        return f"GaussianSource(names={self.names}, cov={self.cov.tolist()})"


def _check_rho(rho, name="rho") -> float:
    rho = float(rho)
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"{name} must lie in [-1, 1], got {rho}")
    return rho


def gaussian_pair(rho: float, var_x: float = 1.0, var_y: float = 1.0, names=("X", "Y")) -> GaussianSource:
    """Jointly Gaussian ``(X, Y)`` with correlation ``rho``; ``I(X;Y) = −½ log2(1 − ρ²)``."""
    rho = _check_rho(rho)
    if var_x <= 0 or var_y <= 0:
        raise ValueError(f"variances must be > 0, got var_x={var_x}, var_y={var_y}")
    c = rho * np.sqrt(var_x * var_y)
    return GaussianSource([[var_x, c], [c, var_y]], names)


def gaussian_markov_triple(rho_xw: float, rho_wy: float, names=("X", "W", "Y")) -> GaussianSource:
    """Unit-variance Gaussian Markov chain ``X − W − Y``: ``ρ_XY = ρ_XW ρ_WY``, ``I(X;Y|W) = 0``.

    >>> src = gaussian_markov_triple(0.9, 0.8)
    >>> src.I("X", "Y", given="W") < 1e-12, src.I("X", "Y") <= src.I("X", "W")
    (True, True)
    """
    a, b = _check_rho(rho_xw, "rho_xw"), _check_rho(rho_wy, "rho_wy")
    return GaussianSource([[1, a, a * b], [a, 1, b], [a * b, b, 1]], names)


def gaussian_side_information(rho_v: float, rho_t: float, names=("X", "V", "T")) -> GaussianSource:
    """Gaussian ``(X, V, T)`` for the lossy extension (Eqs. 34–36).

    ``X ~ N(0,1)``, ``V = ρ_v X + √(1−ρ_v²) N_v`` (visual side information),
    ``T = ρ_t X + √(1−ρ_t²) N_t`` (text), ``N_v, N_t`` independent standard normals.
    ``rho_t = 0`` gives ``T ⊥ X`` (and ``T ⊥ X | V``); then ``R(D|V,T) = R(D|V)``.

    >>> src = gaussian_side_information(0.8, 0.0)
    >>> round(src.conditional_variance("X", ["V", "T"]), 6)
    0.36
    """
    a, b = _check_rho(rho_v, "rho_v"), _check_rho(rho_t, "rho_t")
    return GaussianSource([[1, a, b], [a, 1, a * b], [b, a * b, 1]], names)


# --------------------------------------------------------------------- multimodal toy
_MM_NAMES = ("X", "V_X", "V_Y", "T")
_T_ERASED = 2  # the caption does not mention the colour


@dataclass(frozen=True)
class MultimodalToy:
    """A discrete multimodal side-information source for Theorem 6.1 (MDIC supplement).

    Construction (all bits fair and independent unless stated):

    * ``X = 2A + B`` (4 symbols): ``A`` is the coarse "shape" of the image, ``B`` its
      "colour/semantic" part.
    * The correlated image ``Y = (A_y, B_y, C)`` (8 symbols, ``Y = 4A_y + 2B_y + C``):
      ``A_y = A ⊕ Bern(view_noise)``, ``B_y = B ⊕ Bern(view_noise)`` (a noisy view of X)
      and ``C`` a Y-specific nuisance bit independent of X.
    * ``V_X = A_y ⊕ Bern(vision_noise)``: the visual features keep only the shape part of
      Y, quantised and noisy — a *lossy* function of Y's X-correlated part.
    * ``V_Y = C`` with probability ``1 − nuisance_leak``, else ``B_y``: the Y-specific
      features. With ``nuisance_leak = 0`` (default) ``V_Y ⊥ (X, V_X, T)``, which is the
      assumption behind Eq. 31; raise it to see Eq. 31 fail.
    * ``T`` is a caption computed from Y: with probability ``text_informativeness`` it
      reports the colour ``B_y``, otherwise it is the symbol 2 ("colour not mentioned").
      ``T`` depends on ``Y`` only, so ``X − Y − T`` is a Markov chain.

    Closed forms (``h`` binary entropy, ``a ⋆ b = a(1−b) + b(1−a)``, ``r`` the text
    informativeness, ``ε`` the view noise, ``ν`` the vision noise, leak 0):

    * ``H(X | V_X, V_Y) = H(X | V_X) = 1 + h(ε ⋆ ν)``
    * ``ΔR = I(X; T | V_X) = r (1 − h(ε))`` (Eq. 33); ``0`` iff ``r = 0`` iff ``X ⊥ T | V``
    * ``H(X | V_X, V_Y, T) = H(X | V_X, T)`` (Eq. 31)
    * ``I(X; T | Y) = 0`` (data processing: the decoder holding all of Y gains nothing
      from a caption of Y), while ``I(X; T | V_X) > 0`` when ``r > 0`` and ``ε < ½``.

    Examples
    --------
    >>> toy = MultimodalToy(text_informativeness=1.0, view_noise=0.0, vision_noise=0.0)
    >>> pmf = toy.pmf()
    >>> float(pmf.H("X", given=["V_X", "V_Y"])), float(pmf.H("X", given=["V_X", "V_Y", "T"]))
    (1.0, 0.0)
    """

    text_informativeness: float = 0.5  # r: P(caption reports the colour bit of Y)
    view_noise: float = 0.1  # ε: flip probability of each X bit in the view Y
    vision_noise: float = 0.1  # ν: flip probability of the shape bit in V_X
    nuisance_leak: float = 0.0  # P(V_Y reports B_y instead of the nuisance C)

    def __post_init__(self):
        for f in ("text_informativeness", "view_noise", "vision_noise", "nuisance_leak"):
            _check_prob(getattr(self, f), f)

    # ---- construction -------------------------------------------------------
    def pmf(self, include_y: bool = False) -> JointPMF:
        """Joint pmf of ``(X, V_X, V_Y, T)`` (plus ``Y`` as the last axis if ``include_y``)."""
        r, eps, nu, leak = (
            self.text_informativeness,
            self.view_noise,
            self.vision_noise,
            self.nuisance_leak,
        )
        p = np.zeros((4, 2, 2, 3, 8))  # X, V_X, V_Y, T, Y
        bsc = lambda u, v, q: (1 - q) if u == v else q  # noqa: E731
        for a in range(2):
            for b in range(2):
                x = 2 * a + b
                for ay in range(2):
                    for by in range(2):
                        for c in range(2):
                            y = 4 * ay + 2 * by + c
                            py = 0.25 * bsc(a, ay, eps) * bsc(b, by, eps) * 0.5
                            for vx in range(2):
                                pvx = bsc(ay, vx, nu)
                                for vy in range(2):
                                    pvy = (1 - leak) * (vy == c) + leak * (vy == by)
                                    for t in range(3):
                                        pt = r * (t == by) + (1 - r) * (t == _T_ERASED)
                                        p[x, vx, vy, t, y] += py * pvx * pvy * pt
        pmf = JointPMF(p, _MM_NAMES + ("Y",), normalize=True)
        return pmf if include_y else pmf.marginal(*_MM_NAMES)

    def sample(self, n: int, rng, include_y: bool = False) -> np.ndarray:
        """``n`` i.i.d. integer draws of ``(X, V_X, V_Y, T[, Y])``, shape ``(n, 4 or 5)``."""
        return self.pmf(include_y=include_y).sample(n, rng)

    # ---- closed forms -------------------------------------------------------
    def theory(self) -> dict:
        """Closed-form values (bits) of the quantities of Theorem 6.1 / Remarks 1–2.

        Valid for ``nuisance_leak = 0`` (raises otherwise).
        """
        if self.nuisance_leak != 0:
            raise ValueError("closed forms assume nuisance_leak = 0")
        r, eps, nu = self.text_informativeness, self.view_noise, self.vision_noise
        conv = eps * (1 - nu) + nu * (1 - eps)
        h_x_v = 1.0 + binary_entropy(conv)
        delta = r * (1.0 - binary_entropy(eps))
        return {
            "H(X|V_X,V_Y)": h_x_v,
            "H(X|V_X)": h_x_v,
            "I(X;T|V_X)": delta,
            "I(X;T|V_X,V_Y)": delta,
            "H(X|V_X,V_Y,T)": h_x_v - delta,
            "H(X|V_X,T)": h_x_v - delta,
            "I(X;T|Y)": 0.0,
        }


def multimodal_toy(
    text_informativeness: float = 0.5,
    view_noise: float = 0.1,
    vision_noise: float = 0.1,
    nuisance_leak: float = 0.0,
    decoder_has_full_y: bool = False,
) -> JointPMF:
    """Joint pmf of the multimodal toy ``(X, V_X, V_Y, T)``; see :class:`MultimodalToy`.

    With ``decoder_has_full_y=True`` the visual side information is the whole image:
    ``V_X := Y`` (8 symbols), so ``I(X; T | V_X, V_Y) = I(X; T | Y) = 0`` — a caption
    computed from Y tells a decoder that already holds Y nothing about X (data processing).

    >>> full = multimodal_toy(text_informativeness=1.0, decoder_has_full_y=True)
    >>> abs(float(full.I("X", "T", given=["V_X", "V_Y"]))) < 1e-12
    True
    >>> lossy = multimodal_toy(text_informativeness=1.0)
    >>> float(lossy.I("X", "T", given=["V_X", "V_Y"])) > 0.4
    True
    """
    toy = MultimodalToy(text_informativeness, view_noise, vision_noise, nuisance_leak)
    if not decoder_has_full_y:
        return toy.pmf()
    full = toy.pmf(include_y=True)
    # replace V_X by Y: keep X, Y, V_Y, T and rename Y -> V_X
    m = full.marginal("X", "Y", "V_Y", "T")
    return JointPMF(m.p, _MM_NAMES)
