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
(``algorithm, warm_start, max_iter, stall, start_margin``).  The ``ldpc`` package decoder
runs through the same rate ladder (same matrices, same blocks, same max_iter; no
stall rule, no warm start); ``--ldpc-bits`` lets it decode only the first blocks of
the same data, because it is ~20x slower.

A last line per run summarises the targets of issue 3 (``"kind": "targets"``).

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

from toy_sources.codes.ldpc_experiments import cached_ldpca_code, simulate_adaptive  # noqa: E402

FULL_P = (0.02, 0.05, 0.08, 0.10, 0.12, 0.15)


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
    ap.add_argument("--stall", type=int, default=20)
    ap.add_argument("--algorithm", default="sum_product_table",
                    choices=["sum_product_table", "sum_product", "min_sum"],
                    help="check-node rule of our decoder (default: sum-product, phi from a table)")
    ap.add_argument("--no-warm-start", action="store_true",
                    help="restart BP from zero messages at every level (default: resume)")
    ap.add_argument("--ldpc-bits", type=float,
                    help="source bits for the ldpc package decoder (default: same as --bits); "
                         "it runs on the first blocks of the same data")
    ap.add_argument("--start-margin", type=int, default=2,
                    help="start each block at max(h-level, previous level - margin); -1 = always h-level")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    n = args.n or (2000 if args.quick else 10_000)
    levels = args.levels or (50 if args.quick else 100)
    bits = args.bits or (2e4 if args.quick else 1e6)
    ps = [float(v) for v in args.p.split(",")] if args.p else ([0.05, 0.1] if args.quick else list(FULL_P))
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    n_blocks = max(1, int(round(bits / n)))

    t0 = time.perf_counter()
    code = cached_ldpca_code(n, levels, args.lam, seed=args.seed)
    build = time.perf_counter() - t0
    print(json.dumps({"kind": "code", "n": n, "levels": levels, "lam": args.lam,
                      "edges": int(code.H0.nnz), "crc_bits": code.crc_bits,
                      "build_seconds": round(build, 2),
                      "numba_threads": os.environ.get("NUMBA_NUM_THREADS")}), flush=True)
    rows = []
    ldpc_blocks = n_blocks if args.ldpc_bits is None else max(1, int(round(args.ldpc_bits / n)))
    for p in ps:
        for dec in decoders:
            row = simulate_adaptive(code, p, n_blocks if dec == "ours" else ldpc_blocks,
                                    seed=args.seed + 1, decoder=dec,
                                    max_iter=args.max_iter, stall=args.stall,
                                    start_margin=None if args.start_margin < 0 else args.start_margin,
                                    warm_start=not args.no_warm_start, algorithm=args.algorithm)
            rows.append(row)
            print(json.dumps(row), flush=True)
    ours = [r for r in rows if r["decoder"] == "ours"]
    if ours:
        at01 = [r["ratio"] for r in ours if abs(r["p"] - 0.1) < 1e-9]
        sweep = [r["ratio"] for r in ours if 0.02 - 1e-9 <= r["p"] <= 0.15 + 1e-9]
        print(json.dumps({
            "kind": "targets", "decoder": "ours",
            "ratio_at_p0.1": at01[0] if at01 else None, "target_at_p0.1": 1.10,
            "max_ratio_sweep": max(sweep) if sweep else None, "target_sweep": 1.15,
            "max_ber": max(r["ber"] for r in ours), "target_ber": 1e-4,
            "min_bits": min(r["bits"] for r in ours),
            "min_mbit_per_s": min(r["mbit_per_s"] for r in ours),
            "min_mbit_per_cpu_s": min(r["mbit_per_cpu_s"] for r in ours), "target_mbit_per_s": 1.0,
        }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
