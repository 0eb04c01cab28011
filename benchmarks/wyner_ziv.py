"""Practical Wyner–Ziv codes on the quadratic Gaussian source: one JSON line per point.

Methods: nested scalar quantisation with ideal Slepian–Wolf (entropy H(Q|Y), plus an
oracle conditional range coder), with marginal range coding of the coset index (real),
with LDPCA-coded bit planes (real), and the learned compressor (marginal = real code;
conditional = ideal-SW rate, oracle-coded). Every line carries rate_entropy and
rate_coded (with rate_coded_kind), mse, d_wz and gap_db.

    python benchmarks/wyner_ziv.py --quick        # < 1 minute
    python benchmarks/wyner_ziv.py --rho 0.95     # full (a few minutes)
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toy_sources.codes.wyner_ziv import GaussianSideInfoSource, scalar_quantizer_gap_db  # noqa: E402
from toy_sources.codes.wz_study import high_rate_gap_db, ldpc_rows, learned_rows, nested_rows  # noqa: E402


def _print(row):
    print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small run (< 1 minute)")
    ap.add_argument("--rho", type=float, default=0.95, help="correlation of X and Y")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-ldpc", action="store_true", help="leave out the LDPCA variant")
    ap.add_argument("--skip-learned", action="store_true", help="leave out the learned compressor")
    a = ap.parse_args(argv)
    src = GaussianSideInfoSource(1.0, a.rho)
    t0 = time.perf_counter()
    targets = [0.5, 1.0, 1.5, 2.0] if a.quick else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    n = 20_000 if a.quick else 100_000
    cosets = [2, 3, 4, 6, 8, 12, 16] if a.quick else None
    for r in nested_rows(src, targets, "ideal_sw", n=n, seed=a.seed):
        _print(r)
    for r in nested_rows(src, targets, "marginal", n=n, seed=a.seed, coset_grid=cosets):
        _print(r)
    gap, rate = high_rate_gap_db(src, 4.0)
    _print({"method": "nested_ideal_sw_high_rate", "rho": a.rho, "rate_entropy": rate, "gap_db": gap,
            "theory_gap_db": scalar_quantizer_gap_db()})
    if not a.skip_ldpc:
        kw = dict(n=2000, block=2000, levels=50) if a.quick else dict(n=8000, block=4000, levels=100)
        for r in ldpc_rows(src, [0.75, 1.5] if a.quick else [0.5, 0.75, 1.0, 1.5, 2.0, 2.5], seed=a.seed, **kw):
            _print(r)
    if not a.skip_learned:
        steps = 200 if a.quick else 400
        lams_m = [40.0] if a.quick else [15.0, 30.0, 60.0, 100.0, 200.0]
        lams_c = [100.0] if a.quick else [40.0, 100.0, 200.0, 400.0, 800.0]
        for model in ("marginal", "conditional"):
            rows, _ = learned_rows(src, lams_m if model == "marginal" else lams_c, model,
                                   n_test=20_000 if a.quick else 100_000, seed=a.seed, steps=steps)
            for r in rows:
                _print(r)
    _print({"method": "timing", "seconds": time.perf_counter() - t0, "quick": a.quick})


if __name__ == "__main__":
    main()
