"""Slepian–Wolf LDPC benchmark on the DSBS: rate vs H(X|Y), residual BER, throughput.

Prints one JSON object per line.  For every crossover ``p`` the same rate-adaptive
LDPCA code and the same source blocks are decoded by our numba BP (``"ours"``) and by
the ``ldpc`` package's ``BpDecoder`` (``"ldpc"``, product-sum, syndrome input), side by
side.  Fields: ``decoder, mode, p, n, rate`` (mean bits actually sent per source bit,
CRC included), ``h_x_given_y`` (= h(p)), ``ratio`` (rate / H(X|Y)), ``ber`` (bit errors
over all simulated source bits), ``bits``, ``failures``, ``attempts``, ``seconds`` (decoder
wall time only), ``mbit_per_s`` (source bits per second of decoder wall time, one
thread), ``cpu_seconds`` and ``mbit_per_cpu_s`` (the same over the decoder's CPU time,
which stays meaningful when the machine is shared), plus the decoder settings
(``algorithm, warm_start, max_iter, stall``, ``start_margin`` in levels of the code).
The ``ldpc`` package decoder runs through the same rate ladder (same matrices, same
blocks, same max_iter; no stall rule, no warm start); ``--ldpc-bits`` lets it decode
only the first blocks of the same data, because it is 40-85x slower on the ladder.

By default (full run) the code is the rate-adaptive *family*
(:func:`toy_sources.codes.ldpc_experiments.cached_ldpca_family`): a low-rate LDPCA member
(base graph of 0.3 n rows, ``"sw_low_l2_d20"``, rate steps 0.002) for h(p) <= 0.25, the
full-rate LDPCA code (``"ldpca_d15"``, steps 0.01) for h(p) <= 0.42, and above it
``"sw_mid_d15"`` (200 levels, steps 0.005). Each is built by PEG on the merged checks of one
rate (0.15, 0.32 and 0.45), for every variable of the low and middle members and for the
degree-2 variables of the high one, so that short cycles stay out of the graphs decoded at
that rate and above (:data:`toy_sources.codes.ldpc_experiments.DEFAULT_FAMILY`).  The member is picked from the
a-priori p that encoder and decoder share (field ``family_member``). The feedback asks for
each level in parts (``substeps`` 4, 4, 2: increments of 5, 25 and 25 bits), so a block
stops close to the rate it needs (``--substeps S`` sets S for every member).  ``--code single``
uses one LDPCA code (``--lam``, ``--levels``) for every p (the ``--quick`` default, whose
n = 2000 is too short for the family).
Every block's ladder starts at the level of the Slepian–Wolf bound (the rate the code
needs, at the price of more BP attempts); ``--start-margin-rate 0.02`` starts 0.02 bits
below the previous block's final rate instead (fewer attempts, slightly more rate).

After the rate-adaptive rows (``"mode": "adaptive"``, several BP attempts per block on
the feedback ladder) each p gets ``"mode": "fixed_operating_point"`` rows: the same
decoders, one BP run per block on the merged matrix of the level the ladder settled on
(its mean level, rounded up: ``operating_point = "mean level of the ladder"``) and on
the highest level any block needed (``"max level ..."``), cold start, ``max_iter`` 100 —
the fixed-rate throughput at those rates, each with its own BER (at the mean rate the
blocks that needed more fail; at the max rate nearly all decode, at a higher ratio).

Finite block length: before its decoder rows each p gets a ``"kind": "finite_length"``
row (:mod:`toy_sources.finite_length`): the least rate / H(X|Y) *any* fixed-length code
of length n can have at block error rates 1e-1, 1e-2, 1e-4 (``converse_ratio``), what
random linear codes with ML decoding reach (``random_linear_ratio``), and 1.0 for
rate-adaptive codes (Kraft: a decoder that chooses when to stop pays no finite-length
term).  Every fixed-rate row carries ``block_error_rate`` (blocks with any bit wrong),
``converse_block_error`` (the least block error any code of its rate and length can
have) and ``converse_ratio_at_block_error`` (the least ratio any code needs for the block
error rate it measured).  Adaptive rows carry ``ratio_ci95``, the 95 % error bar of
``ratio`` over blocks, ``crc_bits``, the CRC counted in the rate (``--crc-bits``: 8 bits for the
family, :data:`~toy_sources.codes.ldpc_experiments.FAMILY_CRC_BITS`, 16 for a single code), and
``crc_rejections``, the BP attempts whose word satisfied the syndrome but not the CRC.

Our adaptive rows also carry ``iterations`` (BP iterations per block over all attempts),
``final_iterations`` (the attempt that decoded), ``us_per_iteration``, and the *oracle*
fields: one BP decode from scratch per block at the level its ladder stopped at, as if the
decoder had been told that level (``oracle_iterations``, ``oracle_success_rate``,
``oracle_mbit_per_cpu_s``): what one BP run per block costs at the rate the ladder reached.

A last line per run summarises the targets of issue 3 (``"kind": "targets"``); it keeps
the two throughputs apart (``*_adaptive`` and ``*_fixed``) and gives the best oracle one
(``max_oracle_mbit_per_cpu_s``).

Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/slepian_wolf.py --quick     # < 1 minute
    NUMBA_NUM_THREADS=1 python benchmarks/slepian_wolf.py --ldpc-bits 2e5   # full targets
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import math  # noqa: E402

from toy_sources.codes.ldpc_experiments import (  # noqa: E402
    DEFAULT_FAMILY,
    cached_ldpca_code,
    cached_ldpca_family,
    simulate_adaptive,
    simulate_operating_point,
)
from toy_sources.bounds import binary_entropy  # noqa: E402
from toy_sources.finite_length import (  # noqa: E402
    fixed_length_converse_error,
    fixed_length_converse_rate,
    random_linear_rate,
)

FULL_P = (0.02, 0.05, 0.08, 0.10, 0.12, 0.15)


def _warm_up(algorithm: str) -> None:
    """Compile / load the numba kernels once, so no timer includes JIT work."""
    import numpy as np

    from toy_sources.codes.ldpc import decode_syndrome, syndrome

    H = np.array([[1, 0, 1, 0, 1, 0, 1], [0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]])
    x = np.array([1, 0, 1, 1, 0, 0, 1], dtype=np.uint8)
    llr = np.where(x == 0, 2.0, -2.0)
    llr[4] = -llr[4]
    decode_syndrome(H, syndrome(H, x), llr, 5, algorithm=algorithm, stall=3,
                    c2v=np.zeros(12))


FINITE_LENGTH_EPS = (1e-1, 1e-2, 1e-4)


def finite_length_row(n: int, p: float) -> dict:
    """What any fixed-length code of length n can do at p (toy_sources.finite_length)."""
    h = binary_entropy(p)
    return {"kind": "finite_length", "p": p, "n": n, "h_x_given_y": h,
            "block_error": list(FINITE_LENGTH_EPS),
            "converse_ratio": [round(fixed_length_converse_rate(n, p, e) / h, 4)
                               for e in FINITE_LENGTH_EPS],
            "random_linear_ratio": [round(random_linear_rate(n, p, e) / h, 4)
                                    for e in FINITE_LENGTH_EPS],
            "adaptive_converse_ratio": 1.0}


def add_converse(row: dict) -> dict:
    """A fixed-rate row gains the best block error any code of its rate and length could
    have, and the least rate any code needs for the block error it measured."""
    n, p, h = row["n"], row["p"], row["h_x_given_y"]
    row["converse_block_error"] = fixed_length_converse_error(n, p, row["rate"])
    fer = row["block_error_rate"]
    row["converse_ratio_at_block_error"] = (fixed_length_converse_rate(n, p, fer) / h
                                            if 0 < fer < 1 else None)
    return row


def _start_policy(args) -> dict:
    """Keyword arguments of simulate_adaptive for the ladder's start level."""
    if args.start_margin is not None:
        return {"start_margin": args.start_margin}
    return {"start_margin_rate": args.start_margin_rate}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (< 1 minute)")
    ap.add_argument("--n", type=int, help="block length (default 10000; quick 2000)")
    ap.add_argument("--levels", type=int, help="rate levels of the LDPCA code (default 100; quick 50)")
    ap.add_argument("--bits", type=float, help="source bits per p and decoder (default 1e6; quick 2e4)")
    ap.add_argument("--p", type=str, help="comma-separated crossover probabilities")
    ap.add_argument("--lam", default="ldpca_d15", help="variable degree distribution")
    ap.add_argument("--decoders", default="ours,ldpc", help="comma-separated: ours, ldpc")
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--stall", type=int, default=15,
                    help="give up a level after this many iterations without a new minimum "
                         "of unsatisfied checks")
    ap.add_argument("--algorithm", default="sum_product_table",
                    choices=["sum_product_table", "sum_product", "min_sum"],
                    help="check-node rule of our decoder (default: sum-product, phi from a table)")
    ap.add_argument("--no-warm-start", action="store_true",
                    help="restart BP from zero messages at every level (default: resume)")
    ap.add_argument("--ldpc-bits", type=float,
                    help="source bits for the ldpc package decoder (default: same as --bits); "
                         "it runs on the first blocks of the same data")
    ap.add_argument("--start-margin-rate", type=float,
                    help="start each block at max(bound level, previous block's final level minus "
                         "this many bits per source bit), e.g. 0.02: fewer BP attempts, a little "
                         "more rate (+0.3 %% at p = 0.1, +0.5 %% at p = 0.02). Default: every block "
                         "starts at the Slepian-Wolf bound's level (the rate the code needs)")
    ap.add_argument("--start-margin", type=int,
                    help="the same margin in levels of the code (overrides --start-margin-rate)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--substeps", type=int,
                    help="feedback increments per level for every code (default: the family's "
                         "4, 4, 2; 1 for --code single)")
    ap.add_argument("--crc-bits", type=int,
                    help="CRC of each block, sent once and counted in the rate (0-32; default 8 "
                         "for the family, 16 for --code single). It catches BP converging to a "
                         "wrong word that satisfies the syndrome; fewer bits cost less rate and "
                         "miss such a word with probability 2^-bits")
    ap.add_argument("--code", choices=["family", "single"],
                    help="rate-adaptive family (default for full runs) or one LDPCA code "
                         "(default with --quick)")
    ap.add_argument("--no-fixed", action="store_true",
                    help="skip the fixed-rate operating-point rows")
    ap.add_argument("--fixed-at", default="mean,max",
                    help="fixed-rate levels: 'mean' (the ladder's mean level, rounded up) "
                         "and/or 'max' (the highest level the ladder needed)")
    args = ap.parse_args(argv)
    if args.crc_bits is not None and not 0 <= args.crc_bits <= 32:
        ap.error(f"--crc-bits must be in [0, 32], got {args.crc_bits}")
    # the codes' own defaults unless --crc-bits is given (family 8, single code 16)
    crc = {} if args.crc_bits is None else {"crc_bits": args.crc_bits}
    fixed_at = [a.strip() for a in args.fixed_at.split(",") if a.strip()]
    if set(fixed_at) - {"mean", "max"}:
        ap.error(f"--fixed-at: unknown {sorted(set(fixed_at) - {'mean', 'max'})} "
                 "(expected mean and/or max)")

    n = args.n or (2000 if args.quick else 10_000)
    levels = args.levels or (50 if args.quick else 100)
    bits = args.bits or (2e4 if args.quick else 1e6)
    ps = [float(v) for v in args.p.split(",")] if args.p else ([0.05, 0.1] if args.quick else list(FULL_P))
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    n_blocks = max(1, int(round(bits / n)))

    _warm_up(args.algorithm)
    kind = args.code or ("single" if args.quick else "family")
    t0 = time.perf_counter()
    try:
        if kind == "family":
            spec = DEFAULT_FAMILY if args.substeps is None else tuple(
                member[:-1] + (args.substeps,) for member in DEFAULT_FAMILY)
            code = cached_ldpca_family(n, seed=args.seed, spec=spec, **crc)
            members = [c for _, c in code.members]
        else:
            code = cached_ldpca_code(n, levels, args.lam, seed=args.seed,
                                     substeps=1 if args.substeps is None else args.substeps, **crc)
            members = [code]
    except ValueError as err:  # e.g. --substeps larger than a member's periods
        ap.error(f"cannot build the code: {err}")
    build = time.perf_counter() - t0
    print(json.dumps({"kind": "code", "code": kind, "n": n,
                      "members": [{"h_max": h, "rows": c.rows, "levels": c.levels, "lam": c.lam,
                                   "period": c.period, "substeps": c.substeps,
                                   "rate_step": c.rate_step, "edges": int(c.H0.nnz)}
                                  for h, c in (code.members if kind == "family" else [(1.0, code)])],
                      "crc_bits": members[0].crc_bits,
                      "build_or_load_seconds": round(build, 2),
                      "numba_threads": os.environ.get("NUMBA_NUM_THREADS")}), flush=True)
    rows, fixed_rows = [], []
    ldpc_blocks = n_blocks if args.ldpc_bits is None else max(1, int(round(args.ldpc_bits / n)))
    for p in ps:
        print(json.dumps(finite_length_row(n, p)), flush=True)
        ours = None
        for dec in decoders:
            row = simulate_adaptive(code, p, n_blocks if dec == "ours" else ldpc_blocks,
                                    seed=args.seed + 1, decoder=dec,
                                    max_iter=args.max_iter, stall=args.stall,
                                    **_start_policy(args),
                                    warm_start=not args.no_warm_start, algorithm=args.algorithm,
                                    oracle_level=dec == "ours")
            rows.append(row)
            ours = row if dec == "ours" else ours
            print(json.dumps(row), flush=True)
        if args.no_fixed or ours is None:
            continue
        for at in fixed_at:
            level = math.ceil(ours["mean_level"] - 1e-9) if at == "mean" else ours["max_level"]
            for dec in decoders:
                row = simulate_operating_point(code, p, n_blocks if dec == "ours" else ldpc_blocks,
                                               level=level, seed=args.seed + 2, decoder=dec,
                                               max_iter=100, algorithm=args.algorithm)
                row["operating_point"] = f"{at} level of the ladder"
                add_converse(row)
                fixed_rows.append(row)
                print(json.dumps(row), flush=True)
    ours = [r for r in rows if r["decoder"] == "ours"]
    fixed = [r for r in fixed_rows if r["decoder"] == "ours"]
    if ours:
        at01 = [r["ratio"] for r in ours if abs(r["p"] - 0.1) < 1e-9]
        sweep = [r["ratio"] for r in ours if 0.02 - 1e-9 <= r["p"] <= 0.15 + 1e-9]
        print(json.dumps({
            "kind": "targets", "decoder": "ours", "code": kind,
            "ratio_at_p0.1": at01[0] if at01 else None, "target_at_p0.1": 1.10,
            "max_ratio_sweep": max(sweep) if sweep else None, "target_sweep": 1.15,
            "max_ber": max(r["ber"] for r in ours), "target_ber": 1e-4,
            "min_bits": min(r["bits"] for r in ours),
            "min_mbit_per_s_adaptive": min(r["mbit_per_s"] for r in ours),
            "min_mbit_per_cpu_s_adaptive": min(r["mbit_per_cpu_s"] for r in ours),
            "max_oracle_mbit_per_cpu_s": max(r["oracle_mbit_per_cpu_s"] for r in ours),
            **{f"{key}_fixed_{at}": fn((r[field] for r in fixed
                                         if r["operating_point"].startswith(at)), default=None)
               for at in fixed_at
               for key, fn, field in (("min_mbit_per_s", min, "mbit_per_s"),
                                      ("min_mbit_per_cpu_s", min, "mbit_per_cpu_s"),
                                      ("max_ber", max, "ber"), ("max_ratio", max, "ratio"))},
            "target_mbit_per_s": 1.0,
        }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
