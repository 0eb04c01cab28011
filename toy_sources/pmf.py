"""Joint probability mass functions with named variables, and Shannon measures on them.

A :class:`JointPMF` is an ``ndarray`` of probabilities with one *name* per axis
(``JointPMF(p, ("X", "Y"))`` means ``p[x, y] = P(X=x, Y=y)``). Every information measure
is a plain function of ``(pmf, variables, conditioning variables)`` built from joint
entropies, so that the formula reads in the code (the style of ``dit.shannon``):

* ``H(X | Z)       = H(X, Z) - H(Z)``
* ``I(X ; Y | Z)   = H(X, Z) + H(Y, Z) - H(X, Y, Z) - H(Z)``

The methods :meth:`JointPMF.H` and :meth:`JointPMF.I` are thin wrappers over
:func:`entropy` and :func:`mutual_information`. All quantities are in bits.

Examples
--------
A fair coin carries one bit:

>>> coin = JointPMF([0.5, 0.5], ["X"])
>>> float(coin.H())
1.0

XOR: ``Z = X xor Y`` with ``X, Y`` independent fair bits. ``X`` and ``Y`` are independent,
but given ``Z`` one determines the other:

>>> xor = JointPMF.from_function(lambda x, y: (x, y, x ^ y), (2, 2), (2, 2, 2), ["X", "Y", "Z"])
>>> float(xor.I("X", "Y"))
0.0
>>> float(xor.I("X", "Y", given="Z"))
1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "JointPMF",
    "entropy",
    "conditional_entropy",
    "mutual_information",
    "random_pmf",
    "is_conditionally_independent",
    "as_generator",
]

#: Absolute tolerance on ``sum(p) == 1`` when a pmf is built.
SUM_TOLERANCE = 1e-9


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from a Generator or an integer seed.

    ``None`` is refused: every random result of the library is reproducible from an
    explicit seed.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name} must be a numpy.random.Generator or an integer seed, got {type(rng).__name__}"
    )


class JointPMF:
    """A joint pmf over named discrete variables (one name per array axis).

    Parameters
    ----------
    array : array_like
        Non-negative probabilities summing to 1 (within ``SUM_TOLERANCE``);
        ``array[i, j, ...] = P(names[0]=i, names[1]=j, ...)``.
    names : sequence of str
        One distinct name per axis of ``array``.
    normalize : bool, default False
        Divide by the sum instead of requiring it to be 1 (the entries must still be
        non-negative with a positive sum).

    Attributes
    ----------
    p : ndarray
        The probabilities (read-only view).
    names : tuple of str
        Variable names, in axis order.

    Examples
    --------
    >>> pmf = JointPMF([[0.4, 0.1], [0.1, 0.4]], ["X", "Y"])
    >>> pmf.names, pmf.shape
    (('X', 'Y'), (2, 2))
    >>> float(pmf.H("X"))
    1.0
    >>> JointPMF([0.5, 0.6], ["X"])
    Traceback (most recent call last):
    ...
    ValueError: pmf entries must sum to 1 (got sum 1.1); pass normalize=True to rescale
    """

    def __init__(self, array, names: Sequence[str], *, normalize: bool = False):
        try:
            p = np.array(array, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"pmf array must be numeric, got {type(array).__name__}: {exc}") from exc
        if isinstance(names, str):
            names = (names,)
        names = tuple(names)
        for n in names:
            if not isinstance(n, str) or not n:
                raise TypeError(f"variable names must be non-empty strings, got {n!r}")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"repeated variable names {dup} in names={names}")
        if p.ndim != len(names):
            raise ValueError(
                f"pmf array has {p.ndim} axes (shape {p.shape}) but {len(names)} names {names} "
                "were given (expected one name per axis)"
            )
        if p.size == 0:
            raise ValueError(f"pmf array is empty (shape {p.shape})")
        if np.isnan(p).any():
            raise ValueError("pmf array contains NaN")
        if not np.isfinite(p).all():
            raise ValueError("pmf array contains inf")
        if (p < 0).any():
            raise ValueError(f"pmf entries must be non-negative (min entry {p.min():.3g})")
        total = p.sum()
        if normalize:
            if total <= 0:
                raise ValueError("pmf array sums to 0; cannot normalize")
            p = p / total
        elif abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(
                f"pmf entries must sum to 1 (got sum {total:.6g}); pass normalize=True to rescale"
            )
        p.setflags(write=False)
        self._p = p
        self._names = names

    # ------------------------------------------------------------------ basics
    @property
    def p(self) -> np.ndarray:
        """The probability array (read-only)."""
        return self._p

    @property
    def names(self) -> tuple[str, ...]:
        """Variable names in axis order."""
        return self._names

    @property
    def shape(self) -> tuple[int, ...]:
        """Alphabet sizes in axis order."""
        return self._p.shape

    def alphabet_size(self, name: str) -> int:
        """Alphabet size of variable ``name``."""
        return self._p.shape[self.axis(name)]

    def axis(self, name: str) -> int:
        """Axis index of variable ``name`` (clear error if unknown)."""
        if name not in self._names:
            raise KeyError(f"unknown variable {name!r} (expected one of: {', '.join(self._names)})")
        return self._names.index(name)

    def __repr__(self) -> str:
        return f"JointPMF(names={self._names}, shape={self.shape})"

    # ------------------------------------------------------------ operations
    def marginal(self, *names: str) -> JointPMF:
        """Marginal pmf of ``names`` (axes in the order given).

        >>> pmf = JointPMF([[0.4, 0.1], [0.1, 0.4]], ["X", "Y"])
        >>> pmf.marginal("Y").p.tolist()
        [0.5, 0.5]
        """
        names = _normalize(self, names, "names")
        if not names:
            raise ValueError("marginal() needs at least one variable name")
        return JointPMF(_marginal_array(self, names), names)

    def condition(self, **values: int) -> JointPMF:
        """The pmf of the other variables given fixed values, e.g. ``pmf.condition(Y=1)``.

        >>> pmf = JointPMF([[0.4, 0.1], [0.1, 0.4]], ["X", "Y"])
        >>> pmf.condition(Y=0).p.tolist()
        [0.8, 0.2]
        """
        if not values:
            return self
        index: list = [slice(None)] * len(self._names)
        for name, v in values.items():
            ax = self.axis(name)
            size = self._p.shape[ax]
            if not isinstance(v, (int, np.integer)) or not 0 <= v < size:
                raise ValueError(f"value {v!r} for {name!r} outside its alphabet 0..{size - 1}")
            index[ax] = int(v)
        rest = tuple(n for n in self._names if n not in values)
        if not rest:
            raise ValueError("condition() must leave at least one variable free")
        sub = self._p[tuple(index)]
        mass = sub.sum()
        if mass <= 0:
            raise ValueError(f"conditioning event {values} has probability 0")
        return JointPMF(sub / mass, rest, normalize=True)

    def conditional(self, names, given) -> np.ndarray:
        """The conditional pmf ``p(names | given)`` as an array of shape ``given + names``.

        Rows where ``p(given) = 0`` are all zero.

        >>> pmf = JointPMF([[0.4, 0.1], [0.1, 0.4]], ["X", "Y"])
        >>> pmf.conditional("X", given="Y").round(3).tolist()   # [y, x]
        [[0.8, 0.2], [0.2, 0.8]]
        """
        names = _normalize(self, names, "names")
        given = _normalize(self, given, "given")
        if set(names) & set(given):
            raise ValueError(f"variables {sorted(set(names) & set(given))} are both target and given")
        joint = _marginal_array(self, given + names)
        if not given:
            return joint
        pg = _marginal_array(self, given)
        pg = pg.reshape(pg.shape + (1,) * len(names))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(pg > 0, joint / np.where(pg > 0, pg, 1.0), 0.0)
        return out

    def add_variable(self, name: str, channel, parents) -> JointPMF:
        """Append a variable drawn from ``p(name | parents)`` (a channel).

        Parameters
        ----------
        name : str
            New variable name.
        channel : array_like
            Shape ``(|parent_1|, ..., |parent_k|, |name|)``; each row a pmf.
        parents : str or sequence of str
            Existing variables the new one depends on (it is conditionally independent
            of all other variables given them).

        >>> pmf = JointPMF([0.5, 0.5], ["X"])
        >>> bsc = [[0.9, 0.1], [0.1, 0.9]]
        >>> round(float(pmf.add_variable("Y", bsc, "X").I("X", "Y")), 4)
        0.531
        """
        parents = _normalize(self, parents, "parents")
        if name in self._names:
            raise ValueError(f"variable {name!r} already exists (names: {self._names})")
        ch = np.asarray(channel, dtype=float)
        expected = tuple(self._p.shape[self.axis(q)] for q in parents)
        if ch.ndim != len(parents) + 1 or ch.shape[:-1] != expected:
            raise ValueError(
                f"channel for {name!r} has shape {ch.shape}; expected {expected} + (alphabet,)"
            )
        if np.isnan(ch).any() or (ch < 0).any():
            raise ValueError(f"channel for {name!r} has NaN or negative entries")
        if not np.allclose(ch.sum(axis=-1), 1.0, atol=1e-9):
            raise ValueError(f"channel rows for {name!r} must each sum to 1")
        # broadcast channel over the existing axes: move parent axes into place
        k = len(self._names)
        shape = [1] * k + [ch.shape[-1]]
        src = list(range(len(parents)))
        dst = [self.axis(q) for q in parents]
        order = sorted(range(len(parents)), key=lambda i: dst[i])
        ch_sorted = np.transpose(ch, [src[i] for i in order] + [len(parents)])
        for i in order:
            shape[dst[i]] = ch.shape[i]
        new = self._p[..., None] * ch_sorted.reshape(shape)
        return JointPMF(new, self._names + (name,), normalize=True)

    def sample(self, n: int, rng) -> np.ndarray:
        """Draw ``n`` i.i.d. samples: integer array of shape ``(n, len(names))``."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        rng = as_generator(rng)
        flat = rng.choice(self._p.size, size=int(n), p=self._p.ravel())
        return np.stack(np.unravel_index(flat, self._p.shape), axis=1).astype(np.int64)

    @classmethod
    def from_samples(cls, samples, names: Sequence[str], shape: Sequence[int] | None = None) -> JointPMF:
        """Empirical pmf of integer samples (rows = draws, columns = variables)."""
        s = np.asarray(samples)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2 or s.shape[1] != len(tuple(names)):
            raise ValueError(f"samples must have shape (n, {len(tuple(names))}), got {s.shape}")
        if s.shape[0] == 0:
            raise ValueError("samples are empty")
        if not np.issubdtype(s.dtype, np.integer) or (s < 0).any():
            raise ValueError("samples must be non-negative integers")
        if shape is None:
            shape = tuple(int(c) for c in s.max(axis=0) + 1)
        elif len(tuple(shape)) != s.shape[1] or np.any(s.max(axis=0) >= np.asarray(shape)):
            raise ValueError(f"samples (max symbols {s.max(axis=0).tolist()}) do not fit shape {tuple(shape)}")
        counts = np.zeros(tuple(shape), dtype=float)
        np.add.at(counts, tuple(s.T), 1.0)
        return cls(counts, names, normalize=True)

    @classmethod
    def from_function(
        cls,
        f: Callable[..., Sequence[int]],
        input_shape: Sequence[int],
        shape: Sequence[int],
        names: Sequence[str],
        input_pmf: JointPMF | None = None,
    ) -> JointPMF:
        """The pmf of ``f(*u)`` for ``u`` uniform on a grid (or distributed as ``input_pmf``).

        ``f`` maps the input indices ``u`` (a point of the grid ``input_shape``) to an
        output index tuple in a grid of ``shape``.
        """
        grid = tuple(int(g) for g in input_shape)
        if input_pmf is not None and input_pmf.shape != grid:
            raise ValueError(f"input_pmf shape {input_pmf.shape} differs from input grid {grid}")
        out = np.zeros(tuple(shape))
        w = 1.0 / int(np.prod(grid))
        for u in itertools.product(*(range(g) for g in grid)):
            out[tuple(f(*u))] += input_pmf.p[u] if input_pmf is not None else w
        return cls(out, names, normalize=True)

    # ---------------------------------------------------------------- measures
    def H(self, *names, given=()) -> float:
        """Entropy ``H(names | given)`` in bits (``names`` default: all variables)."""
        return conditional_entropy(self, names if names else None, given)

    def I(self, a, b, given=()) -> float:  # noqa: E743 - the standard symbol
        """Mutual information ``I(a ; b | given)`` in bits; each argument a name or list."""
        return mutual_information(self, a, b, given)


# ---------------------------------------------------------------------- helpers
def _normalize(pmf: JointPMF, names, what: str) -> tuple[str, ...]:
    """Names argument → tuple of known, distinct names (a str means one name)."""
    if names is None:
        return pmf.names
    if isinstance(names, str):
        names = (names,)
    elif isinstance(names, Iterable):
        flat: list[str] = []
        for n in names:
            if isinstance(n, str):
                flat.append(n)
            elif isinstance(n, Iterable):
                flat.extend(n)
            else:
                raise TypeError(f"{what}: expected variable names, got {n!r}")
        names = tuple(flat)
    else:
        raise TypeError(f"{what}: expected a name or a list of names, got {names!r}")
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{what}: expected variable names, got {n!r}")
        if n not in pmf.names:
            raise KeyError(f"unknown variable {n!r} in {what} (expected one of: {', '.join(pmf.names)})")
    if len(set(names)) != len(names):
        raise ValueError(f"repeated variable in {what}: {names}")
    return tuple(names)


def _marginal_array(pmf: JointPMF, names: tuple[str, ...]) -> np.ndarray:
    keep = [pmf.axis(n) for n in names]
    drop = tuple(i for i in range(len(pmf.names)) if i not in keep)
    m = pmf.p.sum(axis=drop) if drop else pmf.p
    # remaining axes are in increasing original order; permute into requested order
    remaining = sorted(keep)
    return np.transpose(m, [remaining.index(k) for k in keep])


def _joint_entropy(pmf: JointPMF, names: Iterable[str]) -> float:
    """``H(names)`` of the marginal; ``H(∅) = 0``."""
    names = tuple(dict.fromkeys(names))  # union, order kept, duplicates dropped
    if not names:
        return 0.0
    m = _marginal_array(pmf, names).ravel()
    m = m[m > 0]
    return float(-(m * np.log2(m)).sum())


# ---------------------------------------------------------------------- measures
def entropy(pmf: JointPMF, variables=None) -> float:
    """Joint entropy ``H(variables) = -Σ p log2 p`` in bits.

    >>> float(entropy(JointPMF([0.25] * 4, ["X"])))
    2.0
    """
    return _joint_entropy(pmf, _normalize(pmf, variables, "variables"))


def conditional_entropy(pmf: JointPMF, variables=None, given=()) -> float:
    """``H(X | Z) = H(X, Z) - H(Z)`` in bits (Eq. 25–27 of the MDIC supplement use this).

    >>> pmf = JointPMF([[0.5, 0.0], [0.0, 0.5]], ["X", "Y"])
    >>> float(conditional_entropy(pmf, "X", given="Y"))
    0.0
    """
    x = _normalize(pmf, variables, "variables")
    z = _normalize(pmf, given, "given")
    return _joint_entropy(pmf, x + z) - _joint_entropy(pmf, z)


def mutual_information(pmf: JointPMF, a, b, given=()) -> float:
    """``I(A ; B | Z) = H(A, Z) + H(B, Z) - H(A, B, Z) - H(Z)`` in bits.

    ``a``, ``b`` and ``given`` are each a name or a list of names. ``I(X; X) = H(X)``.

    >>> pmf = JointPMF([[0.5, 0.0], [0.0, 0.5]], ["X", "Y"])
    >>> float(mutual_information(pmf, "X", "Y")), float(mutual_information(pmf, "X", "X"))
    (1.0, 1.0)
    """
    x = _normalize(pmf, a, "a")
    y = _normalize(pmf, b, "b")
    z = _normalize(pmf, given, "given")
    return (
        _joint_entropy(pmf, x + z)
        + _joint_entropy(pmf, y + z)
        - _joint_entropy(pmf, x + y + z)
        - _joint_entropy(pmf, z)
    )


def is_conditionally_independent(pmf: JointPMF, a, b, given=(), atol: float = 1e-12) -> bool:
    """Whether ``A ⊥ B | G`` by checking the factorisation ``p(a,b,g) p(g) = p(a,g) p(b,g)``
    cell by cell (directly on probabilities, not via entropies).

    >>> xor = JointPMF.from_function(lambda x, y: (x, y, x ^ y), (2, 2), (2, 2, 2), ["X", "Y", "Z"])
    >>> is_conditionally_independent(xor, "X", "Y"), is_conditionally_independent(xor, "X", "Y", "Z")
    (True, False)
    """
    x = _normalize(pmf, a, "a")
    y = _normalize(pmf, b, "b")
    z = _normalize(pmf, given, "given")
    if set(x) & set(y) or (set(x) | set(y)) & set(z):
        raise ValueError("a, b and given must be disjoint")
    pxyz = _marginal_array(pmf, x + y + z)
    kx, ky, kz = len(x), len(y), len(z)
    pxz = _marginal_array(pmf, x + z).reshape(pxyz.shape[:kx] + (1,) * ky + pxyz.shape[kx + ky :])
    pyz = _marginal_array(pmf, y + z).reshape((1,) * kx + pxyz.shape[kx:])
    pz = _marginal_array(pmf, z).reshape((1,) * (kx + ky) + pxyz.shape[kx + ky :]) if z else 1.0
    return bool(np.all(np.abs(pxyz * pz - pxz * pyz) <= atol))


def random_pmf(shape: Sequence[int], names: Sequence[str], rng, concentration: float = 1.0) -> JointPMF:
    """A random joint pmf drawn from a symmetric Dirichlet(``concentration``) over all cells.

    >>> pmf = random_pmf((2, 3), ["X", "Y"], rng=0)
    >>> pmf.shape, bool(abs(pmf.p.sum() - 1) < 1e-12)
    ((2, 3), True)
    """
    shape = tuple(int(s) for s in shape)
    if any(s < 1 for s in shape):
        raise ValueError(f"shape entries must be >= 1, got {shape}")
    if concentration <= 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    g = as_generator(rng)
    p = g.dirichlet(np.full(int(np.prod(shape)), float(concentration))).reshape(shape)
    return JointPMF(p, names, normalize=True)
