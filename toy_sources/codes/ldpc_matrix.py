"""Sparse LDPC parity-check matrices: degree distributions and progressive edge growth.

A parity-check matrix :math:`H \\in \\{0,1\\}^{m \\times n}` is returned as a
``scipy.sparse.csr_matrix`` of ``uint8``.  Its Tanner graph has one variable node per
column and one check node per row.  Matrices are built with the progressive
edge-growth (PEG) algorithm of

    X.-Y. Hu, E. Eleftheriou and D. M. Arnold, "Regular and irregular progressive
    edge-growth Tanner graphs", IEEE Trans. Inf. Theory 51(1):386–398, 2005,

which places every new edge of a variable node on a check node as far away as
possible in the current graph (so that the local girth is as large as possible), the
check node of lowest current degree among those, ties broken at random.  A PEG graph
whose variable nodes all have degree >= 2 has no 4-cycles as long as the BFS tree at
depth 1 never covers every check node, which holds for the sparse matrices built
here; :func:`count_4_cycles` checks it.

The BFS runs in numba; for ``n = 10_000`` and about 40 000 edges it takes a few
seconds on one core.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.sparse as sp
from numba import njit

#: Edge-perspective variable-node degree distributions :math:`\lambda(x) = \sum_i
#: \lambda_i x^{i-1}` (fraction of edges attached to variable nodes of degree ``i``).
#:
#: ``"regular3"``
#:     Gallager's (3, ·)-regular ensemble (all variable nodes of degree 3).
#: ``"rsu_dl8"``
#:     :math:`\lambda(x) = 0.30013x + 0.28395x^2 + 0.41592x^7`, the rate-1/2
#:     distribution with maximum variable degree 8 of Richardson, Shokrollahi and
#:     Urbanke, "Design of capacity-approaching irregular low-density parity-check
#:     codes", IEEE Trans. Inf. Theory 47(2):619–637, 2001, Table I (optimised for the
#:     BIAWGN channel by density evolution; used here on the BSC).  Caveat: the coefficients were written down from the
#:     paper's Table I without access to it in this session (the search tools could
#:     not confirm them); check them against the original before quoting them.  What
#:     this code does on the BSC / DSBS is *measured* by ``benchmarks/slepian_wolf.py``.
#: ``"rsu_dl4"``
#:     :math:`\lambda(x) = 0.38354x + 0.04237x^2 + 0.57409x^3`, the distribution with
#:     maximum variable degree 4 from the same table (same caveat).
#: ``"rsu_dl8_stable"``
#:     ``rsu_dl8`` with :math:`\lambda_2` lowered to 0.15 (then renormalised:
#:     :math:`\lambda \approx 0.177x + 0.335x^2 + 0.489x^7`).  Our own modification,
#:     not a published ensemble: a rate-adaptive (LDPCA) code reaches check degrees of
#:     about :math:`\bar d_v / R`, and the BP stability condition on the BSC,
#:     :math:`\lambda_2\,\rho'(1) < 1/(2\sqrt{p(1-p)})` (the stability condition of RSU 2001), then
#:     forbids ``rsu_dl8``'s :math:`\lambda_2 = 0.3` below :math:`R \approx 0.4`;
#:     with 0.177 it holds down to :math:`R \approx 0.17`.
#: ``"ldpca_d15"``
#:     :math:`\lambda(x) = 0.15x + 0.25x^2 + 0.10x^5 + 0.50x^{14}` (mean variable degree
#:     4.8).  Our own, not a published ensemble: the best of a small *measured* search
#:     (no density evolution) over LDPCA base graphs at n = 10^4, 100 levels, 30 blocks
#:     per point (rate / H(X|Y) at p = 0.1 / 0.05 / 0.02): ``rsu_dl8_stable`` 1.17 /
#:     1.19 / 1.42; maximum degree 10 instead of 8: 1.16 / 1.15 / 1.36; this one
#:     1.12 / 1.13 / 1.46; max degree 25: 1.36 at p = 0.1; with :math:`\lambda_2 = 0.1`:
#:     1.14 at 0.1 but 1.31 at 0.02.  High-degree variables are what helps the merged
#:     (high-rate) LDPCA graphs; at p = 0.02 its :math:`\lambda_2` violates the
#:     stability condition (merged check degree ~30), so low p stays weak.  Full
#:     benchmark (10^6 bits per p, ``benchmarks/slepian_wolf.py``): 1.49, 1.12, 1.12,
#:     1.115, 1.12, 1.15 at p = 0.02, 0.05, 0.08, 0.10, 0.12, 0.15.
#: ``"sw_low_d20"``
#:     :math:`\lambda(x) = 0.015x + 0.311x^2 + 0.035x^3 + 0.023x^7 + 0.615x^{19}`.  Our
#:     own, designed for *low* Slepian–Wolf rates (p <= 0.04): a random search over
#:     degrees {2, 3, 4, 8, 20} maximising the BSC BP threshold computed by density
#:     evolution (:func:`toy_sources.codes.ldpc_density_evolution.bsc_threshold`,
#:     population 10^4) at syndrome rate 0.16 with concentrated checks, with the
#:     fraction of degree-2 *nodes* capped at 0.06 (degree-2 nodes outnumbering the
#:     ~1600 checks close cycles of degree-2 nodes = low-weight codewords, which
#:     density evolution cannot see; the uncapped optimum, 1.03 by DE, failed often at
#:     n = 10^4).  DE: rate / h(p*) = 1.055 at R = 0.16 (``ldpca_d15``: 1.30).
#:     Measured at n = 10^4 it is far less good than DE promises (a fixed PEG code at
#:     R = 0.17 still fails 3 of 20 blocks at p = 0.02, i.e. rate/h = 1.20): the
#:     finite-length loss at high channel-code rates is large.  As the low member of
#:     the rate-adaptive family (base graph of 0.3 n rows, 150 levels, steps 0.002;
#:     ``cached_ldpca_family``), full benchmark (10^6 bits): rate / H(X|Y) = 1.193 at
#:     p = 0.02 with every block starting at the bound, 1.252 starting two levels below
#:     the previous block's (``ldpca_d15`` on the full-rate LDPCA: 1.49).
#: ``"sw_low_l2_d20"``
#:     :math:`\lambda(x) = 0.0684x + 0.1438x^2 + 0.1479x^3 + 0.1425x^7 + 0.4974x^{19}`.
#:     The low-rate design without ``sw_low_d20``'s cap on degree-2 nodes (21 % of the
#:     nodes are of degree 2, more than the ~1700 merged checks at p = 0.02): a random
#:     search (70 draws and perturbations over degrees {2, 3, 4, 8, 20}, λ2 below the
#:     stability bound at p = 0.02) maximising the DE threshold at syndrome rate 0.16,
#:     population 10^4: rate / h(p*) = 1.042 (``sw_low_d20`` 1.055-1.067 in the same runs).
#:     With its degree-2 cycles kept long from rate 0.15 up (``peg_level``, as
#:     ``sw_mid_d15``) it measured 1.170 at p = 0.02 (benchmark, 10^6 bits, start at the
#:     bound; ``sw_low_d20``: 1.193).  Built with *every* variable placed by PEG on the
#:     merged checks of rate 0.15 (``peg_level_max_degree=None``), the family's low member
#:     measured 1.1471 +- 0.0060 over 5 * 10^6 bits at p = 0.02 (increments of 5 bits, 16-bit
#:     CRC; 1.1414 with the family's 8-bit CRC; degree-2 only: 1.1556 +- 0.0061; :data:`toy_sources.codes.ldpc_experiments.DEFAULT_FAMILY`).
#: ``"sw_mid_d15"``
#:     :math:`\lambda(x) = 0.20x + 0.20x^2 + 0.10x^5 + 0.50x^{14}`.  Our own, for
#:     Slepian–Wolf rates near 0.5–0.7 (p in [0.085, 0.15]): ``ldpca_d15`` with more
#:     degree-2 and fewer degree-3 edges, found by a grid over :math:`(\lambda_2, \lambda_3)`
#:     with density evolution at syndrome rate 0.5: p* = 0.1031, rate / h(p*) = 1.045
#:     (``ldpca_d15``: 0.0982, 1.079); :math:`\lambda_2 = 0.20` is at the stability limit
#:     at p = 0.1 (0.202).  Its ~4600 degree-2 variables outnumber the merged checks of
#:     low levels, and a cycle of degree-2 variables in a merged graph is a low-weight
#:     codeword: with plain PEG the code measured 1.34 at p = 0.1 (n = 10^4). Built with
#:     degree-2 cycles kept long in the merged graphs of rate >= 0.45
#:     (``LDPCACode(peg_level=..., peg_level_max_degree=2)``), 200 levels, every block
#:     starting at the bound (``benchmarks/slepian_wolf.py``, 10^6 bits per p): 1.097 at
#:     p = 0.1, 1.095 at 0.12, 1.116 at 0.15 (seeds 0 and 1 of the construction within
#:     0.1 % of each other at 100 levels).
DEGREE_DISTRIBUTIONS: dict[str, dict[int, float]] = {
    "regular3": {3: 1.0},
    "rsu_dl4": {2: 0.38354, 3: 0.04237, 4: 0.57409},
    "rsu_dl8": {2: 0.30013, 3: 0.28395, 8: 0.41592},
    "rsu_dl8_stable": {2: 0.15, 3: 0.28395, 8: 0.41592},
    "ldpca_d15": {2: 0.15, 3: 0.25, 6: 0.10, 15: 0.50},
    "sw_low_d20": {2: 0.015, 3: 0.311, 4: 0.035, 8: 0.023, 20: 0.615},
    "sw_low_l2_d20": {2: 0.0684, 3: 0.1438, 4: 0.1479, 8: 0.1425, 20: 0.4974},
    "sw_mid_d15": {2: 0.20, 3: 0.20, 6: 0.10, 15: 0.50},
}


def _check_positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def resolve_degree_distribution(lam) -> dict[int, float]:
    """Return an edge-perspective distribution ``{degree: lambda_i}`` summing to one.

    Parameters
    ----------
    lam : str or mapping
        A name in :data:`DEGREE_DISTRIBUTIONS` or a mapping ``{degree: fraction of
        edges}`` with degrees >= 1 and non-negative fractions.

    Examples
    --------
    >>> resolve_degree_distribution("regular3")
    {3: 1.0}
    >>> resolve_degree_distribution({2: 1, 4: 1})
    {2: 0.5, 4: 0.5}
    """
    if isinstance(lam, str):
        if lam not in DEGREE_DISTRIBUTIONS:
            raise ValueError(
                f"unknown degree distribution {lam!r} (expected one of: "
                f"{', '.join(DEGREE_DISTRIBUTIONS)} or a dict {{degree: fraction}})"
            )
        lam = DEGREE_DISTRIBUTIONS[lam]
    if not isinstance(lam, Mapping) or not lam:
        raise TypeError(f"degree distribution must be a name or a non-empty dict, got {lam!r}")
    out = {}
    for d, f in lam.items():
        if int(d) != d or d < 1:
            raise ValueError(f"degree distribution: degrees must be integers >= 1, got {d!r}")
        f = float(f)
        if not np.isfinite(f) or f < 0:
            raise ValueError(f"degree distribution: fraction for degree {d} must be >= 0, got {f}")
        out[int(d)] = f
    total = sum(out.values())
    if total <= 0:
        raise ValueError("degree distribution: fractions sum to zero")
    return {d: f / total for d, f in sorted(out.items()) if f > 0}


def variable_degree_sequence(n: int, lam) -> np.ndarray:
    """Degrees of ``n`` variable nodes realising an edge-perspective distribution.

    The node-perspective fractions are :math:`\\Lambda_i = (\\lambda_i/i) /
    \\sum_j \\lambda_j/j` (Richardson & Urbanke, *Modern Coding Theory*, eq. 3.7);
    counts are rounded by largest remainder so that they sum to ``n``.  The sequence
    is sorted by increasing degree, the order in which PEG processes nodes.

    Examples
    --------
    >>> variable_degree_sequence(4, "regular3").tolist()
    [3, 3, 3, 3]
    >>> np.bincount(variable_degree_sequence(10, {2: 0.5, 4: 0.5})).tolist()
    [0, 0, 7, 0, 3]
    """
    n = _check_positive_int("n", n)
    lam = resolve_degree_distribution(lam)
    degs = np.array(list(lam), dtype=np.int64)
    node = np.array([lam[d] / d for d in lam])
    node /= node.sum()
    raw = node * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return np.repeat(degs, counts)


@njit(cache=True, inline="always")
def _prefer(c, best, bkey, tie_e, chk_deg):  # pragma: no cover - compiled
    """``(best, bkey)`` after offering check ``c``: the lowest degree wins, ties go to the
    smaller hash of ``(c, tie_e)`` (a seeded, order-free tie-break)."""
    key = (c * 2654435761 + tie_e) & 0xFFFFFFFF
    if best < 0 or chk_deg[c] < chk_deg[best] or (chk_deg[c] == chk_deg[best] and key < bkey):
        return c, key
    return best, bkey


@njit(cache=True)
def _peg_core(var_deg, m, cmax, tie, block,  # pragma: no cover - compiled
              grp_all, grp_ptr_all, grp_rows_all, grouped_max_deg):
    # For variables of degree <= grouped_max_deg, distances are measured between check
    # *groups* (grp[c] = group of row c; the rows of group g are
    # grp_rows[grp_ptr[g]:grp_ptr[g+1]]); for the others, between rows (plain PEG).
    n = var_deg.shape[0]
    ident = np.arange(m + 1, dtype=np.int64)
    dmax = var_deg.max()
    var_adj = -np.ones((n, dmax), dtype=np.int64)
    var_cnt = np.zeros(n, dtype=np.int64)
    chk_adj = -np.ones((m, cmax), dtype=np.int64)
    chk_deg = np.zeros(m, dtype=np.int64)
    stamp_g = np.zeros(m, dtype=np.int64)  # BFS visit marks (generation stamps)
    stamp_v = np.zeros(n, dtype=np.int64)
    gen = 0
    frontier_v = np.empty(n, dtype=np.int64)
    next_v = np.empty(n, dtype=np.int64)
    layer_g = np.empty(m, dtype=np.int64)
    edge = 0
    n_blocks = block.max() + 1
    used = np.zeros(n_blocks, dtype=np.int64)  # used[b] == v + 1 <=> v has a check in block b
    for v in range(n):
        if var_deg[v] <= grouped_max_deg:
            grp, grp_ptr, grp_rows = grp_all, grp_ptr_all, grp_rows_all
        else:
            grp, grp_ptr, grp_rows = ident[:m], ident, ident[:m]
        n_grp = grp_ptr.shape[0] - 1
        for k in range(var_deg[v]):
            best = -1
            if k == 0:
                bkey = 0
                for c in range(m):
                    if used[block[c]] == v + 1:
                        continue
                    best, bkey = _prefer(c, best, bkey, tie[edge], chk_deg)
            else:
                gen += 1
                stamp_v[v] = gen
                n_front = 1
                frontier_v[0] = v
                reached = 0
                # stamp_g[g] == gen  <=> group g within the current BFS depth
                while True:
                    n_layer = 0
                    n_next = 0
                    for i in range(n_front):
                        u = frontier_v[i]
                        for j in range(var_cnt[u]):
                            g = grp[var_adj[u, j]]
                            if stamp_g[g] != gen:
                                stamp_g[g] = gen
                                layer_g[n_layer] = g
                                n_layer += 1
                    new_reached = reached + n_layer
                    if new_reached == n_grp or new_reached == reached:
                        bkey = 0
                        if new_reached == n_grp and n_layer > 0:
                            # Every group is reached at this depth: choose among the
                            # checks of groups not reached one layer earlier (Hu et al., Sec. III).
                            for t in range(n_layer):
                                g = layer_g[t]
                                for q in range(grp_ptr[g], grp_ptr[g + 1]):
                                    c = grp_rows[q]
                                    if used[block[c]] == v + 1:
                                        continue
                                    best, bkey = _prefer(c, best, bkey, tie[edge], chk_deg)
                        else:
                            # The tree stopped growing: choose among unreached checks.
                            for c in range(m):
                                if stamp_g[grp[c]] == gen or used[block[c]] == v + 1:
                                    continue
                                best, bkey = _prefer(c, best, bkey, tie[edge], chk_deg)
                        if best < 0:
                            # every admissible check is blocked at this depth: fall back
                            # to the lowest-degree admissible check anywhere
                            for c in range(m):
                                if used[block[c]] == v + 1:
                                    continue
                                is_nb = False
                                for j in range(var_cnt[v]):
                                    if var_adj[v, j] == c:
                                        is_nb = True
                                if is_nb:
                                    continue
                                best, bkey = _prefer(c, best, bkey, tie[edge], chk_deg)
                        break
                    reached = new_reached
                    for t in range(n_layer):
                        g = layer_g[t]
                        for q in range(grp_ptr[g], grp_ptr[g + 1]):
                            c = grp_rows[q]
                            for j in range(chk_deg[c]):
                                u = chk_adj[c, j]
                                if stamp_v[u] != gen:
                                    stamp_v[u] = gen
                                    next_v[n_next] = u
                                    n_next += 1
                    for i in range(n_next):
                        frontier_v[i] = next_v[i]
                    n_front = n_next
            if best < 0:
                return var_adj, var_cnt, -1  # no admissible check (degree > m)
            if chk_deg[best] >= cmax:
                return var_adj, var_cnt, -2
            var_adj[v, var_cnt[v]] = best
            var_cnt[v] += 1
            if block[best] >= 0:
                used[block[best]] = v + 1
            chk_adj[best, chk_deg[best]] = v
            chk_deg[best] += 1
            edge += 1
    return var_adj, var_cnt, 0


def peg_matrix(var_degrees, m: int, seed=None, row_blocks=None, check_groups=None,
               grouped_max_degree=None) -> sp.csr_matrix:
    """Parity-check matrix of a PEG Tanner graph with the given variable degrees.

    Parameters
    ----------
    var_degrees : array_like of int, shape (n,)
        Degree of every variable node (column weight of ``H``); each must be in
        ``[1, m]``.  Nodes are connected in order of increasing degree (Hu et al. 2005,
        Sec. III).
    m : int
        Number of check nodes (rows).
    seed : int or numpy.random.Generator, optional
        Tie-breaking among equally good check nodes.
    row_blocks : array_like of int, shape (m,), optional
        Block label of every check; no variable node gets two checks of the same
        block (used by LDPCA codes, whose merged checks never leave a block, so that
        no edge cancels when rows are summed).  ``None``: no constraint.
    check_groups : array_like of int, shape (m,), optional
        Group label of every check; PEG then measures distances (and so girth) in the
        graph whose check nodes are the *groups* — the merged checks an LDPCA code
        decodes at one level — instead of in ``H`` itself (a candidate check is any
        row of a farthest group; the lowest-degree row wins).  ``None``: every row
        its own group (plain PEG).
    grouped_max_degree : int, optional
        Apply ``check_groups`` only to variables of at most this degree (e.g. 2: keep
        cycles made of degree-2 variables long in the merged graph, where they are
        low-weight codewords, and place every other edge by plain PEG). ``None``: all.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(m, n)`` matrix of ``uint8`` with the requested column weights; row weights
        are as equal as PEG makes them (it always picks a lowest-degree check).

    Examples
    --------
    >>> H = peg_matrix([3] * 12, 6, seed=0)
    >>> H.shape, H.sum(axis=0).A1.tolist() == [3] * 12
    ((6, 12), True)
    """
    deg = np.asarray(var_degrees)
    if deg.ndim != 1 or deg.size == 0:
        raise ValueError(f"var_degrees must be a non-empty 1-D array, got shape {deg.shape}")
    if not np.issubdtype(deg.dtype, np.integer):
        if not np.all(np.isfinite(deg)) or np.any(deg != np.round(deg)):
            raise ValueError("var_degrees must be integers")
    deg = deg.astype(np.int64)
    m = _check_positive_int("m", m)
    if deg.min() < 1 or deg.max() > m:
        raise ValueError(f"var_degrees must lie in [1, m={m}], got [{deg.min()}, {deg.max()}]")
    order = np.argsort(deg, kind="stable")
    rng = np.random.default_rng(seed)
    n_edges = int(deg.sum())
    tie = rng.integers(0, 2**32, size=n_edges, dtype=np.int64)
    cmax = int(np.ceil(n_edges / m)) * 2 + 8
    if row_blocks is None:
        block = np.arange(m, dtype=np.int64)  # singleton blocks = no constraint
    else:
        block = np.asarray(row_blocks)
        if block.shape != (m,) or not np.issubdtype(block.dtype, np.integer) or block.min() < 0:
            raise ValueError(f"row_blocks must be {m} non-negative ints, got shape {block.shape}")
        block = block.astype(np.int64)
        if np.bincount(block).size < deg.max():
            raise ValueError("row_blocks: fewer blocks than the largest variable degree")
    if check_groups is None:
        grp = np.arange(m, dtype=np.int64)
    else:
        grp = np.asarray(check_groups)
        if grp.shape != (m,) or not np.issubdtype(grp.dtype, np.integer) or grp.min() < 0:
            raise ValueError(f"check_groups must be {m} non-negative ints, got shape {grp.shape}")
        grp = np.unique(grp, return_inverse=True)[1].astype(np.int64)  # labels 0..G-1
    grp_rows = np.argsort(grp, kind="stable").astype(np.int64)
    grp_ptr = np.concatenate([[0], np.cumsum(np.bincount(grp))]).astype(np.int64)
    gmax = int(deg.max()) if grouped_max_degree is None else int(grouped_max_degree)
    var_adj, var_cnt, status = _peg_core(deg[order], m, cmax, tie, block, grp, grp_ptr, grp_rows, gmax)
    if status == -1:
        raise ValueError("PEG failed: a variable degree exceeds the number of checks")
    if status == -2:
        raise RuntimeError("PEG: check degree exceeded its buffer (please report)")
    rows = var_adj[var_adj >= 0]
    cols = np.repeat(order, var_cnt)
    H = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.uint8), (rows, cols)), shape=(m, deg.size), dtype=np.uint8
    )
    H.sum_duplicates()
    return H


def peg_ldpc(n: int, rate: float, lam="rsu_dl8", seed=None) -> sp.csr_matrix:
    """PEG parity-check matrix with ``m = round((1 - rate) n)`` rows.

    For syndrome (Slepian–Wolf) coding the compression rate is ``m / n`` bits per
    source bit, i.e. ``1 - rate`` where ``rate`` is the channel-code rate.

    Parameters
    ----------
    n : int
        Block length (columns).
    rate : float
        Design channel-code rate in (0, 1).
    lam : str or dict
        Edge-perspective variable degree distribution (see
        :data:`DEGREE_DISTRIBUTIONS`).
    seed : int or numpy.random.Generator, optional

    Examples
    --------
    >>> H = peg_ldpc(200, 0.5, "regular3", seed=1)
    >>> H.shape, int(H.sum())
    ((100, 200), 600)
    """
    n = _check_positive_int("n", n)
    rate = float(rate)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    m = max(1, int(round((1.0 - rate) * n)))
    return peg_matrix(variable_degree_sequence(n, lam), m, seed=seed)


def count_4_cycles(H) -> int:
    """Number of 4-cycles of the Tanner graph of ``H``.

    A 4-cycle is a pair of rows sharing two columns; the count is
    :math:`\\sum_{r < r'} \\binom{|N(r) \\cap N(r')|}{2}`.

    Examples
    --------
    >>> count_4_cycles(np.array([[1, 1, 0], [1, 1, 1]]))
    1
    >>> count_4_cycles(np.eye(3, dtype=int))
    0
    """
    A = sp.csr_matrix(H, dtype=np.int64)
    A.data[:] = 1
    G = (A @ A.T).tocoo()
    mask = G.row < G.col
    k = G.data[mask]
    return int((k * (k - 1) // 2).sum())


def column_degrees(H) -> np.ndarray:
    """Column weights (variable-node degrees) of ``H``."""
    return np.asarray(sp.csc_matrix(H).getnnz(axis=0))


def row_degrees(H) -> np.ndarray:
    """Row weights (check-node degrees) of ``H``."""
    return np.asarray(sp.csr_matrix(H).getnnz(axis=1))
