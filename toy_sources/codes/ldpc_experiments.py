"""Monte-Carlo Slepian–Wolf experiments with LDPC syndrome codes on the DSBS.

Shared by ``benchmarks/slepian_wolf.py``, notebook 05 and the tests, so that every
number they show comes from the same code.  The source is the doubly symmetric binary
source: :math:`X_i \\sim \\mathrm{Bern}(1/2)`, :math:`Y_i = X_i \\oplus Z_i`,
:math:`Z_i \\sim \\mathrm{Bern}(p)` i.i.d., so :math:`H(X\\mid Y) = h(p)`.

Two decoders run on the same matrices and the same blocks:

* ``"ours"`` — :func:`toy_sources.codes.ldpc.decode_syndrome` (numba, layered
  sum-product);
* ``"ldpc"`` — ``ldpc.BpDecoder`` of the `ldpc` PyPI package (v2), product-sum, fed
  with the syndrome of the error pattern :math:`z = x \\oplus y`,
  :math:`Hz = s \\oplus Hy`, and :math:`\\hat x = y \\oplus \\hat z`.

Codes: :func:`cached_ldpca_code` (one LDPCA code) and :func:`cached_ldpca_family` (the
rate-adaptive family of :data:`DEFAULT_FAMILY`: a low-rate member for small ``p`` and the
full-rate LDPCA code, the member picked from the a-priori ``p``).  Throughput is measured
both for the rate-adaptive ladder (:func:`simulate_adaptive`, several BP attempts per
block) and for one fixed-rate decode per block at a level of the ladder
(:func:`simulate_operating_point`); the rows say which (``mode``).

Only decoder calls are timed (graph/decoder construction is excluded).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from toy_sources.bounds import binary_entropy
from toy_sources.codes.ldpc import decode_syndrome, dsbs_llr, syndrome, tanner_graph
from toy_sources.codes.ldpc_accumulate import LDPCACode, LDPCAFamily
from toy_sources.codes.ldpc_matrix import resolve_degree_distribution
from toy_sources.sources import sample_dsbs  # re-exported: the notebook and tests import it from here

DECODERS = ("ours", "ldpc")


def _cache_dir() -> Path:
    return Path(os.environ.get("MDIC_LAB_CACHE", Path.home() / ".cache" / "mdic_lab")) / "ldpc"


def cached_ldpca_code(n: int, levels: int = 100, lam="ldpca_d15", seed: int = 0,
                      crc_bits: int = 16, cache: bool = True, rows=None, peg_level=None,
                      peg_level_max_degree=None, substeps: int = 1) -> LDPCACode:
    """:class:`LDPCACode` whose PEG base matrix is cached on disk (``$MDIC_LAB_CACHE``).

    PEG for ``n = 10^4`` takes 10–35 s; the cache makes re-runs start at once.  The
    cached matrix is exactly what the same arguments would build (``substeps`` and
    ``crc_bits`` do not change it).
    """
    name = lam if isinstance(lam, str) else "custom"
    if rows is None or int(rows) == int(n):
        rows = None
        path = _cache_dir() / f"ldpca_v3_H0_n{n}_L{levels}_{name}_seed{seed}.npz"
    else:
        path = _cache_dir() / f"ldpca_v4_H0_n{n}_m{int(rows)}_L{levels}_{name}_seed{seed}.npz"
    if peg_level is not None:
        path = path.with_name(path.stem + f"_peg{int(peg_level)}d{peg_level_max_degree or 'all'}.npz")
    kw = dict(seed=seed, crc_bits=crc_bits, rows=rows, peg_level=peg_level,
              peg_level_max_degree=peg_level_max_degree, substeps=substeps)
    if cache and isinstance(lam, str) and path.exists():
        return LDPCACode(n, levels, lam, H0=sp.load_npz(path), **kw)
    code = LDPCACode(n, levels, lam, **kw)
    if cache and isinstance(lam, str):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
        sp.save_npz(tmp, code.H0)
        os.replace(tmp, path)
    return code


#: The default rate-adaptive family at block length ``n`` (fractions of ``n``):
#: ``(h_max, rows / n, levels, lam, peg_rate, peg_max_degree, substeps)``.  The low member
#: serves :math:`h(p) \le 0.25` (p <= 0.041) with a base graph of ``0.3 n`` rows designed by
#: density evolution for syndrome rates near 0.16 (``"sw_low_l2_d20"``) and levels of
#: ``0.3 / 150 = 0.002``; the middle one (h <= 0.42, p <= 0.084) is the full-rate LDPCA
#: code (``"ldpca_d15"``, levels of 0.01); the high one is ``"sw_mid_d15"`` with 200 levels
#: (0.005). Every member is built by PEG with distances measured in the merged graph of
#: rate ``peg_rate`` (``LDPCACode(peg_level=peg_rate * levels * n / rows,
#: peg_level_max_degree=peg_max_degree)``), so that short cycles are avoided in the graphs
#: actually decoded at that rate and above. The high member applies it to its degree-2
#: variables only (a cycle of them is a low-weight codeword); the low and middle members to
#: every variable, which also breaks low-weight codewords through degree-3 variables (one of
#: weight 6 held BP on a wrong word for 56 increments of one block at p = 0.02) and leaves
#: 2.5-4x (low member, rates 0.15-0.25) and 50-170x (``ldpca_d15``, rates 0.32-0.7) fewer 4-cycles
#: in the merged graphs.  Measured on 400 blocks at p = 0.02 (seeds 21-24, ratio to
#: H(X|Y)): degree-2 only 1.1546, every variable 1.1472 (PEG seed 1: 1.1486; peg rate 0.13:
#: 1.1519; 0.16: about the same as 0.15).  ``ldpca_d15`` (plain PEG before) on 500 blocks
#: per p (seeds 1, 31-34): 1.1099 / 1.1016 / 1.1077 at p = 0.05 / 0.065 / 0.08 with plain
#: PEG, 1.1042 / 1.0947 / 1.1114 with peg rate 0.25, 1.1004 / 1.0952 / 1.1034 with 0.32;
#: CRC rejections 158 / 387 / 344 with plain PEG, 6 / 0 / 0 with 0.32.  For the high
#: member, every variable measured 1.086 instead of 1.095 at p = 0.1 but 1.119 instead of
#: 1.115 at p = 0.15; it stays at degree 2.  The feedback asks for each level in
#: ``substeps`` parts (:class:`LDPCACode` ``substeps``): increments of
#: 5, 25 and 25 bits at n = 10^4.  Measured on the same 100 blocks against whole levels
#: (ratio to H(X|Y)): 1.1705 -> 1.1619 at p = 0.02, 1.1236 -> 1.1084 at p = 0.05,
#: 1.1174 -> 1.1063 at p = 0.08, 1.0966 -> 1.0927 at p = 0.1, for 2-4x the BP attempts.
DEFAULT_FAMILY = (
    (0.25, 0.3, 150, "sw_low_l2_d20", 0.15, None, 4),
    (0.42, 1.0, 100, "ldpca_d15", 0.32, None, 4),
    (1.0, 1.0, 200, "sw_mid_d15", 0.45, 2, 2),
)


#: CRC length of the family's blocks (bits, counted in the rate). Its job is to catch BP
#: converging to a wrong word that satisfies the syndrome; a b-bit CRC lets each such word
#: through with probability 2^-b. On the family's PEG graphs these false convergences are
#: rare: 4 in 500 blocks at p = 0.02 and 6 in 500 at p = 0.05 (5e6 source bits each), none
#: at p = 0.08-0.15. With 8 bits about 0.012 / 256 = 5e-5 wrong blocks per block slip
#: through, each 3-6 bits off (a low-weight codeword away from x): a residual BER near
#: 3e-8, far below the 1e-4 target, for 8 bits less per block than a 16-bit CRC (0.5 % of
#: H(X|Y) at p = 0.02: 1.1471 -> 1.1414 over 5e6 bits). A single LDPCA code
#: (:func:`cached_ldpca_code`) keeps 16 bits: plain PEG converges falsely far more often
#: (158 times in 500 blocks of ``ldpca_d15`` at p = 0.05).
FAMILY_CRC_BITS = 8


def cached_ldpca_family(n: int = 10_000, seed: int = 0, crc_bits: int = FAMILY_CRC_BITS,
                        spec=DEFAULT_FAMILY, cache: bool = True) -> LDPCAFamily:
    """The :class:`LDPCAFamily` of :data:`DEFAULT_FAMILY` (or ``spec``) at block length ``n``.

    ``crc_bits`` defaults to :data:`FAMILY_CRC_BITS` (8; see there why 8 are enough).

    Every member is a :func:`cached_ldpca_code`; ``rows = round(frac * n)`` must be a
    multiple of its ``levels`` with at least max-degree periods (``n = 10^4`` works;
    building the three base graphs the first time takes about a minute and a half).
    """
    members = []
    for h_max, frac, levels, lam, peg_rate, peg_max_degree, substeps in spec:
        rows = int(round(float(frac) * n))
        # the level whose merged checks have rate peg_rate: level * rows / (levels * n)
        peg_level = None if peg_rate is None else max(1, int(round(peg_rate * levels * n / rows)))
        members.append((h_max, cached_ldpca_code(n, int(levels), lam, seed=seed,
                                                 crc_bits=crc_bits, cache=cache,
                                                 rows=None if rows == n else rows,
                                                 peg_level=peg_level,
                                                 peg_level_max_degree=peg_max_degree,
                                                 substeps=int(substeps))))
    return LDPCAFamily(members)


class PypiSyndromeBP:
    """The ``ldpc`` package's ``BpDecoder`` (product-sum) as a Slepian–Wolf decoder."""

    def __init__(self, H, p: float, max_iter: int = 100, schedule: str = "parallel"):
        try:
            from ldpc import BpDecoder
        except ImportError as err:  # pragma: no cover - optional dependency
            raise ImportError("the comparison decoder needs the 'ldpc' package (pip install ldpc)") from err
        self.H = sp.csr_matrix(H, dtype=np.uint8)
        self.graph = tanner_graph(self.H)
        self.dec = BpDecoder(self.H, error_rate=float(p), max_iter=int(max_iter),
                             bp_method="product_sum", schedule=schedule,
                             input_vector_type="syndrome")

    def __call__(self, s, y):
        syn = (np.asarray(s, dtype=np.uint8) ^ syndrome(self.graph, y)).astype(np.uint8)
        z_hat = self.dec.decode(syn)
        x_hat = (np.asarray(y, dtype=np.uint8) ^ z_hat.astype(np.uint8))
        return x_hat, bool(self.dec.converge), int(self.dec.iter)


def simulate_adaptive(code, p: float, n_blocks: int, seed: int = 0,
                      decoder: str = "ours", max_iter: int = 200, stall: int = 15,
                      start_margin=None, algorithm: str = "sum_product_table",
                      warm_start: bool = True, start_margin_rate=None,
                      oracle_level: bool = False) -> dict:
    """Rate-adaptive SW coding of ``n_blocks`` DSBS blocks; returns measured figures.

    ``code`` is an :class:`LDPCACode` or an :class:`LDPCAFamily` (then the member
    chosen by the a-priori ``p`` is used, and its index is reported as
    ``family_member``).

    Returns a dict with ``decoder, p, n, rate`` (mean bits sent per source bit, CRC
    included), ``h_x_given_y``, ``ratio``, ``ber`` (bit errors / source bits over all
    blocks), ``bits``, ``failures`` (blocks not decoded even at the top level),
    ``attempts`` (mean BP runs per block), ``seconds`` (decoder wall time),
    ``mbit_per_s``, ``cpu_seconds`` (decoder CPU time of this process, which is what a
    shared machine leaves comparable), ``mbit_per_cpu_s``, ``crc_bits`` (counted in
    the rate), ``crc_rejections`` (BP attempts whose word satisfied the syndrome but
    not the CRC: false convergences caught; each would slip through a ``b``-bit CRC
    with probability ``2^-b``) and ``ratio_ci95`` (the 95 % error bar of ``ratio`` over
    blocks, :func:`_ratio_ci95`). ``iterations`` is the mean number of BP iterations per
    block over all its attempts, ``final_iterations`` the mean of the last attempt alone
    (the one that decoded), and ``us_per_iteration`` the decoder CPU time per BP iteration
    in microseconds: at ``r`` Mbit/s a block of ``n`` bits has ``n / r`` microseconds, so
    ``n / (r * us_per_iteration)`` iterations in all.

    ``oracle_level=True`` (``decoder="ours"`` only) also times, per block, one BP decode
    from scratch at the level its ladder stopped at, as if a genie had told the decoder
    the level in advance: what one BP run per block costs at the rate the ladder reached.
    Fields ``oracle_iterations`` (mean), ``oracle_success_rate`` (blocks whose syndrome BP
    satisfied and CRC matched) and ``oracle_mbit_per_cpu_s``; these decodes are not part
    of the ladder's figures.

    ``start_margin=None`` starts every block at the level of the prior's conditional
    entropy (:meth:`LDPCACode.start_level_for`); an int ``k`` starts at
    ``max(that, previous block's final level - k)`` — a feedback protocol that saves
    hopeless attempts; the rate still counts every bit actually requested.
    ``start_margin_rate`` gives the same margin in bits per source bit instead (``k =
    ceil(start_margin_rate / rate step)`` levels of the code used), so that codes with
    fine steps look back as far in rate as coarse ones. The margin trades rate for
    time: a block that needs less than its start level overshoots. Measured at p = 0.02
    on ``sw_low_d20`` (0.3 n rows, steps 0.002, 100 blocks of 10^4 bits): 2 levels
    1.252 × H(X|Y) at 3.1 attempts per block, 10 levels (0.02 bits) 1.198 at 10.2,
    no margin (start at the bound) 1.193 at 13.6; at p = 0.1 (steps 0.01) 2 levels cost
    0.1 % of rate against no margin.
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r} (expected one of: {', '.join(DECODERS)})")
    if start_margin is not None and start_margin_rate is not None:
        raise ValueError("give start_margin (levels) or start_margin_rate (bits per source bit), not both")
    if int(n_blocks) < 1:
        raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
    if oracle_level and decoder != "ours":
        raise ValueError("oracle_level is measured for decoder='ours' only")
    member = None
    if isinstance(code, LDPCAFamily):
        member = code.index_for(p)
        code = code.code_for(p)
    if start_margin_rate is not None:
        if not np.isfinite(start_margin_rate) or start_margin_rate < 0:
            raise ValueError(f"start_margin_rate must be a non-negative rate, got {start_margin_rate}")
        start_margin = int(np.ceil(start_margin_rate / code.rate_step - 1e-9))
    rng = np.random.default_rng(seed)
    pypi = {}
    rates, errors, fails, attempts, secs, final_levels = [], 0, 0, [], 0.0, []
    block_iterations, final_iterations = [], []
    oracle = {"iterations": 0, "successes": 0, "cpu": 0.0}
    crc_rejections = 0
    prev_level = None
    cpu = 0.0
    for _ in range(int(n_blocks)):
        x, y = sample_dsbs(p, code.n, rng)
        feed = code.encode(x)
        llr = dsbs_llr(y, p)
        timer = [0.0, 0.0]
        if decoder == "ours":
            bp = code.level_decoder(llr, max_iter=max_iter, stall=stall, algorithm=algorithm,
                                    warm_start=warm_start)

            def level_decoder(level, s, bp=bp):
                code.graph(level)  # cached; built outside the timer
                t0, c0 = time.perf_counter(), time.process_time()
                out = bp(level, s)
                timer[0] += time.perf_counter() - t0
                timer[1] += time.process_time() - c0
                return out
            level_decoder.reset = bp.reset
        else:
            def level_decoder(level, s):
                if level not in pypi:
                    pypi[level] = PypiSyndromeBP(code.merged_matrix(level), p, max_iter)
                t0, c0 = time.perf_counter(), time.process_time()
                out = pypi[level](s, y)
                timer[0] += time.perf_counter() - t0
                timer[1] += time.process_time() - c0
                return out
        start = code.start_level_for(llr)
        if start_margin is not None and prev_level is not None:
            start = max(start, prev_level - int(start_margin))
        res = code.decode(feed, llr, start_level=start, level_decoder=level_decoder)
        prev_level = res.level
        final_levels.append(res.level)
        secs += timer[0]
        cpu += timer[1]
        rates.append(res.rate)
        errors += int(np.count_nonzero(res.x_hat != x))
        fails += int(not res.success)
        attempts.append(res.attempts)
        block_iterations.append(res.iterations)
        final_iterations.append(res.history[-1][3])
        if oracle_level:
            s = code.merged_syndrome(feed.request(res.level))  # already sent: no rate
            cold = code.level_decoder(llr, max_iter=max_iter, stall=stall, algorithm=algorithm,
                                      warm_start=False)
            code.graph(res.level)  # cached by the ladder; outside the timer in any case
            c0 = time.process_time()
            x_hat, bp_ok, its = cold(res.level, s)
            oracle["cpu"] += time.process_time() - c0
            oracle["iterations"] += its
            oracle["successes"] += int(feed.accepts(x_hat, bp_ok))
        crc_rejections += sum(1 for _, bp_ok, ok, _ in res.history if bp_ok and not ok)
    # both sum-product variants are "ours" (the table one is the fast default)
    name = decoder if (decoder == "ldpc" or algorithm.startswith("sum_product")) else f"{decoder}-{algorithm}"
    extra = {}
    if oracle_level:
        extra = dict(oracle_iterations=oracle["iterations"] / int(n_blocks),
                     oracle_success_rate=oracle["successes"] / int(n_blocks),
                     oracle_mbit_per_cpu_s=(int(n_blocks) * code.n / oracle["cpu"] / 1e6
                                            if oracle["cpu"] > 0 else float("inf")))
    return _summary(name, "adaptive", p, code.n, float(np.mean(rates)), errors,
                    int(n_blocks) * code.n, secs, failures=fails,
                    attempts=float(np.mean(attempts)), levels=code.levels, rows=code.rows,
                    rate_step=code.rate_step,
                    lam=code.lam if isinstance(code.lam, str) else "custom",
                    family_member=member, mean_level=float(np.mean(final_levels)),
                    max_level=int(np.max(final_levels)),
                    start_margin=start_margin, start_margin_rate=start_margin_rate,
                    warm_start=bool(warm_start) and decoder == "ours",
                    substeps=code.substeps, period=code.period,
                    max_iter=int(max_iter), stall=int(stall) if decoder == "ours" else None,
                    algorithm=algorithm if decoder == "ours" else "product_sum (ldpc.BpDecoder)",
                    crc_bits=int(code.crc_bits), crc_rejections=crc_rejections,
                    ratio_ci95=_ratio_ci95(rates, p),
                    iterations=float(np.mean(block_iterations)),
                    final_iterations=float(np.mean(final_iterations)),
                    us_per_iteration=(1e6 * cpu / sum(block_iterations)
                                      if sum(block_iterations) else None),
                    **extra,
                    cpu_seconds=cpu)


def _ratio_ci95(rates, p: float):
    """Half-width of the normal 95 % interval of the mean rate / H(X|Y) over blocks.

    ``1.96 · std(rates) / sqrt(blocks) / h(p)``: the error bar of ``ratio`` from the
    block-to-block spread of the rate (each block's error pattern needs its own rate).
    ``None`` for a single block. With ``start_margin`` the blocks are coupled through
    the start level, and the interval is then only indicative.
    """
    rates = np.asarray(rates, dtype=np.float64)
    if rates.size < 2:
        return None
    return float(1.96 * rates.std(ddof=1) / np.sqrt(rates.size) / binary_entropy(p))


def simulate_fixed(H, p: float, n_blocks: int, seed: int = 0, decoder: str = "ours",
                   max_iter: int = 100, algorithm: str = "sum_product_table") -> dict:
    """Fixed-rate SW coding with one parity-check matrix ``H`` (rate ``m/n``).

    Same fields as :func:`simulate_adaptive`; ``failures`` counts blocks whose
    decoder did not satisfy the syndrome, ``block_errors`` blocks decoded with any bit
    wrong (``block_error_rate`` their fraction: the ``ε`` of
    :mod:`toy_sources.finite_length`).
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r} (expected one of: {', '.join(DECODERS)})")
    g = tanner_graph(H)
    rng = np.random.default_rng(seed)
    dec = PypiSyndromeBP(H, p, max_iter) if decoder == "ldpc" else None
    errors, fails, block_errors, secs, cpu = 0, 0, 0, 0.0, 0.0
    for _ in range(int(n_blocks)):
        x, y = sample_dsbs(p, g.n, rng)
        s = syndrome(g, x)
        if decoder == "ours":
            llr = dsbs_llr(y, p)
            t0, c0 = time.perf_counter(), time.process_time()
            r = decode_syndrome(g, s, llr, max_iter, algorithm=algorithm)
            secs += time.perf_counter() - t0
            cpu += time.process_time() - c0
            x_hat, ok = r.x_hat, r.success
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            x_hat, ok, _ = dec(s, y)
            secs += time.perf_counter() - t0
            cpu += time.process_time() - c0
        wrong = int(np.count_nonzero(x_hat != x))
        errors += wrong
        block_errors += int(wrong > 0)
        fails += int(not ok)
    return _summary(decoder, "fixed", p, g.n, g.m / g.n, errors, int(n_blocks) * g.n, secs,
                    failures=fails, block_errors=block_errors,
                    block_error_rate=block_errors / int(n_blocks), cpu_seconds=cpu)


def simulate_operating_point(code, p: float, n_blocks: int, level=None, seed: int = 0,
                             decoder: str = "ours", max_iter: int = 100,
                             algorithm: str = "sum_product_table") -> dict:
    """Fixed-rate decoding with one level of a rate-adaptive code: one BP run per block.

    This is the throughput of the decoder at the operating point, without the
    feedback ladder (which runs several attempts per block).  ``code`` is an
    :class:`LDPCACode` or an :class:`LDPCAFamily` (member chosen by ``p``); ``level``
    is the fixed level (e.g. the mean level a :func:`simulate_adaptive` run settled
    on, rounded up).  The row is :func:`simulate_fixed` on the merged matrix of that
    level (``mode = "fixed"``, rate ``m/n`` without CRC, ``failures`` = blocks whose
    syndrome was not satisfied — at the ladder's mean rate some blocks need more,
    and their errors count in ``ber``), plus ``level``, ``lam`` and ``family_member``.
    """
    member = None
    if isinstance(code, LDPCAFamily):
        member = code.index_for(p)
        code = code.code_for(p)
    level = code._check_level(level)
    H = code.graph(level) if decoder == "ours" else code.merged_matrix(level)
    row = simulate_fixed(H, p, n_blocks, seed=seed, decoder=decoder, max_iter=max_iter,
                         algorithm=algorithm)
    row.update(mode="fixed_operating_point", level=int(level), levels=code.levels,
               lam=code.lam if isinstance(code.lam, str) else "custom", family_member=member,
               max_iter=int(max_iter),
               algorithm=algorithm if decoder == "ours" else "product_sum (ldpc.BpDecoder)")
    return row


def _summary(decoder, mode, p, n, rate, errors, bits, secs, cpu_seconds, **extra) -> dict:
    h = float(binary_entropy(p))
    return {
        "decoder": decoder,
        "mode": mode,
        "p": float(p),
        "n": int(n),
        "rate": float(rate),
        "h_x_given_y": h,
        "ratio": float(rate / h) if h > 0 else float("inf"),
        "ber": errors / bits,
        "bit_errors": int(errors),
        "bits": int(bits),
        **extra,
        "seconds": float(secs),
        "mbit_per_s": bits / secs / 1e6 if secs > 0 else float("inf"),
        "cpu_seconds": float(cpu_seconds),
        "mbit_per_cpu_s": bits / cpu_seconds / 1e6 if cpu_seconds > 0 else float("inf"),
    }


def rate_sweep(code: LDPCACode, ps, n_blocks: int, seed: int = 0, decoder: str = "ours",
               start_margin=2, **kw) -> list[dict]:
    """:func:`simulate_adaptive` for every crossover in ``ps`` (rate needed vs p)."""
    return [simulate_adaptive(code, float(p), n_blocks, seed=seed, decoder=decoder,
                              start_margin=start_margin, **kw) for p in ps]


def ber_waterfall(H, ps, n_blocks: int, seed: int = 0, decoder: str = "ours",
                  max_iter: int = 100) -> list[dict]:
    """:func:`simulate_fixed` with one matrix (fixed rate) for every crossover in ``ps``."""
    return [simulate_fixed(H, float(p), n_blocks, seed=seed, decoder=decoder,
                           max_iter=max_iter) for p in ps]


def block_length_sweep(ns, p: float, bits: float, levels: int = 50, seed: int = 0,
                       lam="ldpca_d15", start_margin=2) -> list[dict]:
    """Rate-adaptive coding at crossover ``p`` for several block lengths ``ns``.

    Every ``n`` gets its own LDPCA code with ``levels`` levels (or, for short blocks,
    the largest divisor of ``n`` below ``levels`` that leaves at least max-degree
    periods) and ``max(1, round(bits / n))`` blocks.
    """
    dmax = max(resolve_degree_distribution(lam))
    out = []
    for n in ns:
        n = int(n)
        # the largest level count <= levels that divides n and leaves >= dmax periods
        # (a variable of degree d needs d periods, see LDPCACode)
        lv = next((k for k in range(int(levels), 0, -1) if n % k == 0 and n // k >= dmax), None)
        if lv is None:
            raise ValueError(f"block length {n} is too short for variable degree {dmax}")
        code = cached_ldpca_code(n, lv, lam, seed=seed)
        out.append(simulate_adaptive(code, p, max(1, int(round(bits / n))), seed=seed + 1,
                                     start_margin=start_margin))
    return out
