"""Rate-adaptive Slepian–Wolf coding with LDPC Accumulate (LDPCA) codes.

Construction of D. Varodayan, A. Aaron and B. Girod, "Rate-adaptive codes for
distributed source coding", Signal Processing 86(11):3123–3130, 2006 (Sec. 3):

* a base parity-check matrix :math:`H_0 \\in \\{0,1\\}^{m_0\\times n}` (:math:`m_0 = n` in the
  paper; ``rows`` here), a PEG graph with an irregular variable degree distribution
  (:mod:`toy_sources.codes.ldpc_matrix`) in which no variable node has two edges inside one period of ``levels`` rows, so no edge
  cancels when rows are merged — our addition; without it a few variables lost all
  their edges at low rates and the rate needed at p = 0.02 was 1.70 h(p) instead of 1.42);
* the encoder computes the syndrome :math:`s = H_0 x` and *accumulates* it,
  :math:`a_j = \\bigoplus_{i \\le j} s_i`; it sends the accumulated bits
  incrementally, in a fixed nested order;
* when the decoder holds :math:`a_{p_1}, \\dots, a_{p_k}` (:math:`p_1 < \\dots < p_k`),
  the differences :math:`a_{p_i} \\oplus a_{p_{i-1}}` are the syndromes of the *merged*
  checks :math:`\\bigoplus_{p_{i-1} < j \\le p_i} (H_0)_j` (sum of consecutive rows),
  so at level ``k`` it decodes an ordinary LDPC syndrome (:func:`toy_sources.codes.ldpc.
  decode_syndrome`) with the merged matrix;
* the decoder starts from a low level and, while BP fails (or the CRC of the decoded
  block does not match), requests the next increment; the rate actually used is the
  number of accumulated bits received (plus the CRC) over ``n``.

The transmission order has period ``levels``: inside every period of ``levels``
consecutive syndrome positions the first ``k`` positions of :attr:`tx_order` are sent at
level ``k``; ``tx_order[0]`` is the last position of the period and every new position
splits the currently largest group (so merged check degrees stay balanced at every
level, as the LDPCA "txSeq").  Rate at level ``k``: ``k / levels`` bits per source bit
(``k rows / (levels n)`` for a base matrix of ``rows < n`` rows: a low-rate member with
finer steps, our generalisation).

Finer feedback (our addition): ``substeps = S`` splits every level into ``S`` nested
increments, period by period (:class:`LDPCACode`), so a block stops within a fraction of a
level of the rate it needs.

:class:`LDPCAFamily` groups codes of the same length designed for different rate
ranges; the member is chosen from the a-priori crossover that both sides know.

Decoding speed: each level resumes belief propagation from the check-to-variable
messages of the previous (failed) level, carried by the identity of the ``H0`` edge
(:meth:`LDPCACode.level_decoder`, "warm start"), with a stall rule that gives up a
level once the count of unsatisfied checks has not reached a new minimum for 15
iterations (``stall``). Measured on 100 blocks of 10^4 bits (rate / H(X|Y) for stall
20 / 15 / 10): 1.1222 / 1.1240 / 1.1299 at p = 0.05, 1.1156 / 1.1158 / 1.1166 at p = 0.1,
1.1455 / 1.1455 / 1.1465 at p = 0.15; 15 keeps the rate of 20 for about 1.2–1.3× less
CPU time, 10 saves more time (up to 2× at p = 0.02) but costs up to 0.7 % of rate.
The default check-node rule reads :math:`\\phi` from a table (``algorithm="sum_product_table"`` of
:func:`toy_sources.codes.ldpc.decode_syndrome`).

A CRC-``crc_bits`` of the source block is sent with the first increment and counted
in the rate; it guards against BP converging to a wrong word that satisfies a short
merged syndrome.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from toy_sources.bounds import binary_entropy
from toy_sources.codes.ldpc import TannerGraph, _as_bits, decode_syndrome, tanner_graph
from toy_sources.codes.ldpc_matrix import (
    count_4_cycles,
    peg_matrix,
    resolve_degree_distribution,
    variable_degree_sequence,
)

__all__ = [
    "LDPCACode", "LDPCAFamily", "AdaptiveResult", "SyndromeFeed", "balanced_tx_order", "crc_of",
]


def balanced_tx_order(period: int) -> np.ndarray:
    """Nested transmission order of accumulated-syndrome positions within one period.

    ``order[0] = period - 1`` (one bit per period = the parity of the whole period);
    each later position is the one that best balances the merged group sizes (the
    middle of the currently largest group, ties to the left).

    Examples
    --------
    >>> balanced_tx_order(4).tolist()
    [3, 1, 0, 2]
    >>> sorted(balanced_tx_order(7).tolist()) == list(range(7))
    True
    """
    period = int(period)
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    chosen = [period - 1]
    while len(chosen) < period:
        cuts = sorted(chosen)
        best, best_len = None, -1
        prev = -1
        for c in cuts:
            length = c - prev  # group (prev, c]
            if length > best_len and length > 1:
                best, best_len = (prev, c), length
            prev = c
        lo, hi = best
        chosen.append(lo + (hi - lo) // 2)
    return np.array(chosen, dtype=np.int64)


def crc_of(x, bits: int) -> int:
    """CRC-32 of the packed bit vector ``x``, truncated to its low ``bits`` bits.

    Examples
    --------
    >>> crc_of(np.zeros(8, dtype=np.uint8), 32) == zlib.crc32(bytes(1))
    True
    """
    if bits <= 0:
        return 0
    return zlib.crc32(np.packbits(np.asarray(x, dtype=np.uint8)).tobytes()) & ((1 << bits) - 1)


class SyndromeFeed:
    """The feedback channel: hands the decoder accumulated-syndrome bits on request.

    The decoder never sees ``accumulated`` directly; :meth:`request` returns only the
    bits of the requested level and records the highest level requested, from which
    the rate actually used is computed.
    """

    def __init__(self, code: "LDPCACode", accumulated: np.ndarray, crc: int):
        self._code = code
        self._acc = _as_bits(accumulated, "accumulated syndrome", code.rows)
        self.crc = int(crc)
        self.max_level = 0

    def request(self, level: int) -> np.ndarray:
        """Accumulated bits known at ``level`` (positions :meth:`LDPCACode.positions`)."""
        level = self._code._check_level(level)
        self.max_level = max(self.max_level, level)
        return self._acc[self._code.positions(level)]

    @property
    def bits_sent(self) -> int:
        return self._code.bits_at(self.max_level) + self._code.crc_bits if self.max_level else 0

    def accepts(self, x_hat, syndrome_ok) -> bool:
        """The decoder's stopping rule: BP satisfied the syndrome and ``x_hat`` has the CRC sent."""
        return bool(syndrome_ok) and crc_of(x_hat, self._code.crc_bits) == self.crc


@dataclass
class AdaptiveResult:
    """Outcome of :meth:`LDPCACode.decode`.

    Attributes
    ----------
    x_hat : numpy.ndarray of uint8
    success : bool
        Syndrome satisfied and CRC matched at ``level``.
    level : int
        Highest level requested (the one that succeeded, or ``levels`` on failure).
    rate : float
        Bits actually sent per source bit, CRC included.
    bits_sent : int
    attempts : int
        BP runs (one per level tried).
    iterations : int
        BP iterations summed over attempts.
    """

    x_hat: np.ndarray
    success: bool
    level: int
    rate: float
    bits_sent: int
    attempts: int
    iterations: int
    history: list = field(default_factory=list)


class LDPCACode:
    """An LDPC Accumulate code of length ``n`` with ``levels`` nested rates.

    Parameters
    ----------
    n : int
        Block length (source bits per block).
    levels : int
        Number of nested rates ``k rows / (levels n)``, ``k = 1 … levels``; ``rows``
        must be a multiple of ``levels``. It is also the period of the transmission
        order (:attr:`period`).
    rows : int, optional
        Rows ``m0`` of the base matrix ``H0`` (default ``n``: rates up to 1, the LDPCA
        of Varodayan et al.).  ``rows < n`` gives a family restricted to rates up to
        ``rows / n`` with finer steps ``rows / (levels n)`` — used for low-rate
        (small ``p``) codes whose base graph is designed for that range.
    lam : str or dict
        Edge-perspective variable degree distribution of the base graph (see
        :data:`toy_sources.codes.ldpc_matrix.DEGREE_DISTRIBUTIONS`).  The default
        ``"ldpca_d15"`` (maximum variable degree 15) measured best at n = 10^4 for
        p in [0.05, 0.15] (see :data:`toy_sources.codes.ldpc_matrix.DEGREE_DISTRIBUTIONS`);
        ``"rsu_dl8_stable"`` (the previous default) is better only near p = 0.02.
    seed : int, optional
        Seed of the PEG construction and of the row permutation.
    crc_bits : int
        Length of the CRC sent once per block (counted in the rate).
    H0 : scipy.sparse matrix, optional
        Use this ``(rows, n)`` base matrix instead of building one.
    peg_level : int, optional
        Build ``H0`` by PEG with distances measured between the merged checks of this
        level (:func:`toy_sources.codes.ldpc_matrix.peg_matrix` ``check_groups``), so
        that cycles are long in the graphs actually decoded at this level and above
        (merged checks of a higher level split those of a lower one, so cycles there
        can only be longer). ``None``: distances between the rows of ``H0``.
    peg_level_max_degree : int, optional
        Apply ``peg_level`` only to variables of at most this degree (2: a cycle of
        degree-2 variables in a merged graph is a low-weight codeword; BP converges to
        it, only the CRC notices, and the ladder climbs far). Every other edge is placed
        by plain PEG. ``None``: every variable; this also breaks low-weight codewords that
        run through degree-3 variables, and leaves far fewer 4-cycles (:meth:`four_cycles`)
        in the merged graphs of the rates a code serves (n = 10^4: 2.5-4x fewer for the
        family's low member at rates 0.15-0.25, 50-170x fewer for ``ldpca_d15`` at
        0.32-0.7), at the price of more in the graphs of much higher levels (the low
        member's unmerged base graph at rate 0.3: 2233 instead of 110). The family's low
        and middle members use it.
    substeps : int
        Feedback increments per level (default 1). With ``substeps = S`` the decoder
        asks for the bits of a level in ``S`` parts: at increment ``j`` of level ``k``
        the first ``floor(j P / S)`` of the ``P = rows / levels`` periods already hold
        their ``(k+1)``-th position (the merged checks there are split, the others not
        yet). The ladder then has ``levels * S`` rungs (:attr:`levels`) of about
        ``P / S`` bits, all of them nested, so a block stops closer to the rate it
        needs, at the cost of more BP attempts. The base matrix does not depend on it.
        ``peg_level`` counts whole levels.

    Attributes
    ----------
    levels : int
        Rungs of the feedback ladder, ``levels * substeps`` (what every ``level``
        argument counts).
    period : int
        The ``levels`` given: rows per period of the transmission order.

    Examples
    --------
    >>> code = LDPCACode(200, levels=20, lam="regular3", seed=0)
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 2, 200); y = x ^ (rng.random(200) < 0.02)
    >>> res = code.decode(code.encode(x), code.prior_llr_dsbs(y, 0.02))
    >>> res.success, bool((res.x_hat == x).all()), res.rate < 1.0
    (True, True, True)
    """

    def __init__(self, n: int, levels: int = 100, lam="ldpca_d15", seed=0, crc_bits: int = 16,
                 H0=None, rows=None, peg_level=None, peg_level_max_degree=None, substeps: int = 1):
        if isinstance(n, bool) or int(n) != n or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if isinstance(levels, bool) or int(levels) != levels or levels <= 0:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        n, levels = int(n), int(levels)
        rows = n if rows is None else rows
        if isinstance(rows, bool) or int(rows) != rows or not 0 < rows <= n:
            raise ValueError(f"rows must be an int in [1, n={n}], got {rows!r}")
        rows = int(rows)
        if rows % levels:
            raise ValueError(f"rows={rows} (default n={n}) must be a multiple of levels={levels}")
        if not 0 <= int(crc_bits) <= 32:
            raise ValueError(f"crc_bits must be in [0, 32], got {crc_bits}")
        if (isinstance(substeps, bool) or int(substeps) != substeps
                or not 1 <= substeps <= rows // levels):
            raise ValueError(f"substeps must be an int in [1, rows/levels = {rows // levels}] "
                             f"(at least one period per increment), got {substeps!r}")
        self.n, self.rows, self.crc_bits = n, rows, int(crc_bits)
        self.period, self.substeps = levels, int(substeps)
        self.levels = levels * self.substeps
        if peg_level is not None and (isinstance(peg_level, bool) or int(peg_level) != peg_level
                                      or not 1 <= peg_level <= levels):
            raise ValueError(f"peg_level must be an int in [1, levels={levels}] or None, "
                             f"got {peg_level!r}")
        if peg_level_max_degree is not None and (isinstance(peg_level_max_degree, bool)
                                                 or int(peg_level_max_degree) != peg_level_max_degree
                                                 or peg_level_max_degree < 1):
            raise ValueError("peg_level_max_degree must be a positive int or None, "
                             f"got {peg_level_max_degree!r}")
        self.peg_level, self.peg_level_max_degree = peg_level, peg_level_max_degree
        self.lam, self.seed = lam, seed
        self.tx_order = balanced_tx_order(levels)
        if H0 is None:
            dmax = max(resolve_degree_distribution(lam))
            if rows // levels < dmax:
                raise ValueError(
                    f"rows/levels = {rows // levels} periods but the degree distribution has "
                    f"variable degree {dmax}: use rows >= {dmax} * levels"
                )
            # A PEG base graph (Hu et al. 2005) in which no variable has two edges in
            # the same period of `levels` rows: merged checks never leave a period, so
            # no edge cancels at any level (a variable losing all its edges could only
            # be decoded from its prior and would force a request up to the top level).
            groups = None
            if peg_level is not None:  # PEG distances measured on the merged checks of this level
                groups = self._row_groups(int(peg_level) * self.substeps)[1]
            H0 = peg_matrix(variable_degree_sequence(n, lam), rows, seed=seed,
                            row_blocks=np.arange(rows) // levels, check_groups=groups,
                            grouped_max_degree=peg_level_max_degree)
        H0 = sp.csr_matrix(H0, dtype=np.uint8)
        if H0.shape != (rows, n):
            raise ValueError(f"H0 must have shape ({rows}, {n}), got {H0.shape}")
        self.H0 = H0
        self._graphs: dict[int, TannerGraph] = {}
        self._bits_per_level = None  # bits_at of every level, for start_level_for

    # ------------------------------------------------------------------ structure
    def _check_level(self, level) -> int:
        if isinstance(level, bool) or int(level) != level or not 1 <= level <= self.levels:
            raise ValueError(f"level must be an int in [1, {self.levels}], got {level!r}")
        return int(level)

    def _split(self, level: int):
        """Whole levels ``k`` every period has reached at ``level``, and how many periods
        (the first ones) already hold position ``k + 1``."""
        k, j = divmod(self._check_level(level), self.substeps)
        return k, (j * (self.rows // self.period)) // self.substeps

    def positions(self, level: int) -> np.ndarray:
        """Sorted accumulated-syndrome positions known at ``level`` (nested in level)."""
        k, ahead = self._split(level)
        starts = np.arange(0, self.rows, self.period)
        pos = (starts[:, None] + np.sort(self.tx_order[:k])[None, :]).ravel()
        if ahead:
            pos = np.sort(np.concatenate([pos, starts[:ahead] + self.tx_order[k]]))
        return pos

    def _row_groups(self, level: int):
        """``(positions, group)``: the merged check of ``level`` every row of ``H0`` belongs
        to, ``positions.size`` for rows after the last known position (in no check: their
        accumulated bits are not known yet; only below the first whole level, with
        ``substeps > 1``)."""
        pos = self.positions(level)
        return pos, np.searchsorted(pos, np.arange(self.rows), side="left")

    def bits_at(self, level: int) -> int:
        """Number of accumulated syndrome bits known at ``level`` (``level * rows / levels``
        when ``substeps`` divides the number of periods)."""
        k, ahead = self._split(level)
        return k * (self.rows // self.period) + ahead

    @property
    def rate_step(self) -> float:
        """Syndrome bits per source bit added by one rung of the ladder, ``rows / (levels n)``
        (a mean when ``substeps`` does not divide the number of periods)."""
        return self.rows / (self.levels * self.n)

    def rate(self, level: int) -> float:
        """Rate in bits per source bit at ``level``, CRC included."""
        return (self.bits_at(level) + self.crc_bits) / self.n

    def degree2_cycles(self, level: int, max_len: int = 4) -> dict[int, int]:
        """Short cycles made only of degree-2 variables in the merged graph of ``level``.

        Degree-2 variables joining merged checks ``a-b, b-c, …, z-a`` sum to zero in
        every check: a codeword of weight = cycle length, which BP on the syndrome cannot
        tell from the truth (only the CRC can). For every degree-2 variable the shortest
        cycle through it (breadth-first search in the graph whose nodes are merged checks
        and whose edges are degree-2 variables) is found up to ``max_len`` variables.

        Returns
        -------
        dict
            ``{length: number of degree-2 variables whose shortest such cycle has that
            length}`` (empty: none up to ``max_len``).
        """
        if isinstance(max_len, bool) or int(max_len) != max_len or max_len < 2:
            raise ValueError(f"max_len must be an int >= 2 (variables on a cycle), got {max_len!r}")
        g = self.graph(level)
        deg = np.bincount(g.edge_var, minlength=self.n)
        chk = np.repeat(np.arange(g.m), np.diff(g.chk_ptr))
        two = deg[g.edge_var] == 2
        var, ends = g.edge_var[two], chk[two]
        order = np.argsort(var, kind="stable")
        pairs = ends[order].reshape(-1, 2)  # the two merged checks of each degree-2 variable
        adj: dict[int, list] = {}
        for i, (a, b) in enumerate(pairs):
            adj.setdefault(int(a), []).append((int(b), i))
            adj.setdefault(int(b), []).append((int(a), i))
        out: dict[int, int] = {}
        for i, (a, b) in enumerate(pairs):
            a, b = int(a), int(b)
            dist, frontier, found = {a: 0}, [a], None
            while frontier and found is None:
                nxt = []
                for c in frontier:
                    if dist[c] + 1 >= max_len:
                        continue
                    for nb, j in adj[c]:
                        if j == i:
                            continue
                        if nb == b:
                            found = dist[c] + 2  # path variables + the variable itself
                            break
                        if nb not in dist:
                            dist[nb] = dist[c] + 1
                            nxt.append(nb)
                    if found is not None:
                        break
                frontier = nxt
            if found is not None:
                out[found] = out.get(found, 0) + 1
        return dict(sorted(out.items()))

    def four_cycles(self, level: int) -> int:
        """Number of 4-cycles of the Tanner graph decoded at ``level``.

        A 4-cycle (two variables sharing two merged checks) is the shortest cycle a
        Tanner graph can have; BP's messages on it stop being independent after one
        iteration. :func:`toy_sources.codes.ldpc_matrix.count_4_cycles` of
        :meth:`merged_matrix` ``(level)``.
        """
        return count_4_cycles(self.merged_matrix(level))

    def merged_matrix(self, level: int) -> sp.csr_matrix:
        """Parity-check matrix of level ``level``: sums (mod 2) of consecutive rows of H0
        (rows in no check yet are left out, :meth:`_row_groups`)."""
        pos, group = self._row_groups(level)
        known = group < pos.size
        G = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.int64),
             (group[known], np.arange(self.rows)[known])),
            shape=(pos.size, self.rows),
        )
        M = (G @ self.H0.astype(np.int64)).tocsr()
        M.data %= 2
        M.eliminate_zeros()
        return M.astype(np.uint8)

    def graph(self, level: int) -> TannerGraph:
        """Cached :class:`TannerGraph` of :meth:`merged_matrix`."""
        return self._structure(level)[0]

    def edge_map(self, level: int):
        """Index into the edges of ``H0`` of every edge of :meth:`graph` ``(level)``.

        Merged check ``c`` of level ``k`` is the sum of consecutive rows of ``H0``; when
        no edge cancels (always true for the PEG base graph built here), each of its
        edges is exactly one edge of ``H0`` (same variable, one of the merged rows), so
        messages can be carried from one level to the next by H0-edge identity (warm
        start).  ``None`` if some edge cancels at this level (custom ``H0``).
        """
        return self._structure(level)[1]

    def _structure(self, level: int):
        level = self._check_level(level)
        if level not in self._graphs:
            H0 = self.H0
            rows = np.repeat(np.arange(self.rows, dtype=np.int64), np.diff(H0.indptr))
            cols = H0.indices.astype(np.int64)
            pos, row_group = self._row_groups(level)
            group = row_group[rows]
            known = group < pos.size  # rows after the last known position are in no check
            key = group * self.n + cols
            order = np.argsort(key, kind="stable")[: int(np.count_nonzero(known))]
            sorted_key = key[order]
            if not np.any(sorted_key[1:] == sorted_key[:-1]):  # no cancellation: H0 edges = merged
                chk_ptr = np.concatenate([[0], np.cumsum(np.bincount(group[known],
                                                                     minlength=pos.size))])
                g = TannerGraph(n=self.n, m=int(pos.size), chk_ptr=chk_ptr.astype(np.int64),
                                edge_var=cols[order])
                self._graphs[level] = (g, order)
            else:
                self._graphs[level] = (tanner_graph(self.merged_matrix(level)), None)
        return self._graphs[level]

    def level_decoder(self, llr_prior, *, max_iter: int = 200, stall: int = 15,
                      algorithm: str = "sum_product_table", warm_start: bool = True):
        """BP decoder of one block across levels: ``f(level, merged_syndrome)``.

        Returns a callable ``f(level, s) -> (x_hat, success, iterations)`` that runs
        :func:`toy_sources.codes.ldpc.decode_syndrome` on :meth:`graph` ``(level)``.
        With ``warm_start`` the check-to-variable messages of the previous (failed)
        level are kept per edge of ``H0`` (:meth:`edge_map`) and the next level resumes
        from them: an edge whose merged check did not change keeps its message, an
        edge whose check was split starts from the message of the larger check.  The
        decoder state is the decoder's own (no knowledge of ``x``). ``f.reset()`` clears
        it (:meth:`decode` calls it when BP has converged to a word the CRC rejects:
        messages that agree on a wrong codeword would hold BP there for several more
        increments).
        """
        llr = np.asarray(llr_prior, dtype=np.float64)
        state = np.zeros(self.H0.nnz, dtype=np.float64)

        def f(level, s):
            g, emap = self._structure(level)
            c2v = state[emap] if (warm_start and emap is not None) else None
            r = decode_syndrome(g, s, llr, max_iter, algorithm=algorithm, stall=stall, c2v=c2v)
            if c2v is not None:
                state[emap] = c2v
            return r.x_hat, r.success, r.iterations

        f.reset = lambda: state.fill(0.0)
        return f

    # ------------------------------------------------------------------ coding
    def encode(self, x) -> SyndromeFeed:
        """Syndrome :math:`s = H_0 x`, accumulated :math:`a_j = \\oplus_{i\\le j} s_i`.

        Returns the :class:`SyndromeFeed` the decoder will pull increments from.
        """
        xb = _as_bits(x, "x", self.n)
        s = (self.H0.astype(np.int64) @ xb.astype(np.int64)) % 2
        acc = (np.cumsum(s) % 2).astype(np.uint8)
        return SyndromeFeed(self, acc, crc_of(xb, self.crc_bits))

    @staticmethod
    def merged_syndrome(acc_bits: np.ndarray) -> np.ndarray:
        """Syndromes of the merged checks from the received accumulated bits."""
        a = np.asarray(acc_bits, dtype=np.uint8)
        out = a.copy()
        out[1:] ^= a[:-1]
        return out

    @staticmethod
    def prior_llr_dsbs(y, p: float) -> np.ndarray:
        """DSBS prior :math:`(1-2y)\\log((1-p)/p)` (see :func:`toy_sources.codes.ldpc.dsbs_llr`)."""
        from toy_sources.codes.ldpc import dsbs_llr

        return dsbs_llr(y, p)

    def start_level_for(self, llr_prior) -> int:
        """Lowest level whose rate is at least the prior's conditional entropy.

        The decoder computes :math:`\\hat H = \\frac1n \\sum_i h(1/(1+e^{|L_i|}))`, the
        conditional entropy of ``x`` under its own prior (for the DSBS, :math:`h(p)`),
        and starts at the first level with ``bits_at(level) / n >= Ĥ`` — no code can succeed
        reliably below the Slepian–Wolf bound, so this only skips hopeless attempts.
        """
        llr = np.abs(np.asarray(llr_prior, dtype=float))
        q = 1.0 / (1.0 + np.exp(np.minimum(llr, 700.0)))
        h = float(np.mean(binary_entropy(q)))
        if self._bits_per_level is None:
            self._bits_per_level = np.array([self.bits_at(k) for k in range(1, self.levels + 1)])
        first = np.searchsorted(self._bits_per_level / self.n, h - 1e-9 * self.rate_step)
        return int(min(self.levels, 1 + first))

    def decode(self, feed: SyndromeFeed, llr_prior, *, start_level=None, max_iter: int = 200,
               stall: int = 15, algorithm: str = "sum_product_table",
               level_decoder=None, warm_start: bool = True) -> AdaptiveResult:
        """Rate-adaptive decoding: request increments until BP succeeds and the CRC matches.

        Parameters
        ----------
        feed : SyndromeFeed
            From :meth:`encode`.
        llr_prior : array_like, shape (n,)
            Prior LLRs of ``x`` (side information).
        start_level : int, optional
            First level requested (default :meth:`start_level_for`).
        max_iter, stall, algorithm
            Passed to :func:`toy_sources.codes.ldpc.decode_syndrome` at every level.
        level_decoder : callable, optional
            ``level_decoder(level, merged_syndrome) -> (x_hat, success, iterations)``
            replaces the built-in BP (used to drive another decoder, e.g. the ``ldpc``
            package, through the same ladder). If it has a ``reset()`` method, it is
            called after BP satisfied the syndrome but the CRC did not match.
        warm_start : bool
            Resume each level from the previous level's messages (see
            :meth:`level_decoder`); ignored when ``level_decoder`` is given.
        """
        if not isinstance(feed, SyndromeFeed):
            raise TypeError("feed must be the SyndromeFeed returned by encode()")
        llr = np.asarray(llr_prior, dtype=np.float64)
        if llr.shape != (self.n,):
            raise ValueError(f"llr_prior must have shape ({self.n},), got {llr.shape}")
        if np.any(np.isnan(llr)):
            raise ValueError("llr_prior contains NaN")
        level = self.start_level_for(llr) if start_level is None else self._check_level(start_level)
        if level_decoder is None:
            level_decoder = self.level_decoder(llr, max_iter=max_iter, stall=stall,
                                               algorithm=algorithm, warm_start=warm_start)
        attempts = iterations = 0
        history = []
        while True:
            s = self.merged_syndrome(feed.request(level))
            x_hat, bp_ok, its = level_decoder(level, s)
            attempts += 1
            iterations += int(its)
            ok = feed.accepts(x_hat, bp_ok)
            history.append((level, bool(bp_ok), ok, int(its)))
            if ok or level == self.levels:
                break
            if bp_ok and getattr(level_decoder, "reset", None) is not None:
                level_decoder.reset()  # a wrong codeword: restart BP from the prior
            level += 1
        return AdaptiveResult(
            x_hat=np.asarray(x_hat, dtype=np.uint8), success=ok, level=level,
            rate=feed.bits_sent / self.n, bits_sent=feed.bits_sent, attempts=attempts,
            iterations=iterations, history=history,
        )


class LDPCAFamily:
    """Several LDPCA codes of the same block length, each serving a range of correlations.

    One LDPCA base graph cannot be good at every rate: its variable degrees are fixed
    while the merged check degrees grow as the rate falls (:math:`\\bar d_c = \\bar d_v /
    R`), and a distribution designed for :math:`R \\approx 0.5` is far from threshold at
    :math:`R \\approx 0.15` (density evolution, :mod:`toy_sources.codes.ldpc_density_evolution`).
    A family holds members ``(h_max, code)`` sorted by ``h_max``; the member used for a
    source with a-priori crossover ``p`` is the first one with :math:`h(p) \\le`
    ``h_max`` (the last one otherwise).

    Protocol assumption (documented, not hidden): the a-priori correlation ``p`` is a
    parameter of the source model known to *both* encoder and decoder (as in every
    DSBS experiment, where the decoder needs it for its prior LLRs anyway), so both
    pick the same member before the first bit is sent; no bit is spent on the choice.
    Within the member, the rate still adapts block by block through the feedback ladder.

    Examples
    --------
    >>> lo = LDPCACode(400, levels=10, lam="regular3", rows=100)
    >>> hi = LDPCACode(400, levels=20, lam="regular3")
    >>> fam = LDPCAFamily([(0.3, lo), (1.0, hi)])
    >>> fam.code_for(0.02) is lo, fam.code_for(0.1) is hi
    (True, True)
    """

    def __init__(self, members):
        members = [(float(h), c) for h, c in members]
        if not members:
            raise ValueError("LDPCAFamily needs at least one (h_max, code) member")
        for h, c in members:
            if not isinstance(c, LDPCACode):
                raise TypeError(f"family members must be LDPCACode, got {type(c).__name__}")
            if not 0.0 < h:
                raise ValueError(f"h_max must be positive, got {h}")
        if len({c.n for _, c in members}) != 1:
            raise ValueError("all members of a family must have the same block length n")
        if [h for h, _ in members] != sorted(h for h, _ in members):
            raise ValueError("family members must be sorted by increasing h_max")
        self.members = members
        self.n = members[0][1].n

    def index_for(self, p: float) -> int:
        """Index of the member serving a-priori crossover ``p`` (see the class docstring)."""
        p = float(p)
        if not 0.0 < p < 1.0 or not np.isfinite(p):
            raise ValueError(f"crossover p must be in (0, 1), got {p}")
        h = float(binary_entropy(p))
        for i, (h_max, _) in enumerate(self.members):
            if h <= h_max:
                return i
        return len(self.members) - 1

    def code_for(self, p: float) -> LDPCACode:
        """The member code used at a-priori crossover ``p``."""
        return self.members[self.index_for(p)][1]
