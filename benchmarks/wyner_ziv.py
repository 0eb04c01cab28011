"""Practical Wyner–Ziv codes on the quadratic Gaussian source: one JSON line per point.

Methods: nested scalar quantisation with ideal Slepian–Wolf (entropy H(Q|Y), plus an
oracle conditional range coder), with marginal range coding of the coset index (real),
with LDPCA-coded bit planes (real), the one-shot operational optimum found by
entropy-constrained Lloyd design (``one_shot_lloyd_marginal``: rate H(M), a real WZ code;
``one_shot_lloyd_sw``: rate H(M|Y), ideal SW), and the learned compressor (marginal = real
code; conditional = ideal-SW rate, oracle-coded). Every line carries rate_entropy and
rate_coded (with rate_coded_kind), mse, d_wz and gap_db; learned lines add lloyd_gap_db
(the gap to the one-shot optimum of the same rate kind at the coded rate). ``--gap-table``
adds the one-shot gap to D_WZ for several correlations (method ``one_shot_gap_vs_rho``).

    python benchmarks/wyner_ziv.py --quick                 # about a minute
    python benchmarks/wyner_ziv.py --rho 0.95              # full (several minutes)
    python benchmarks/wyner_ziv.py --rho 0.95 --gap-table  # + gap vs rho (ten more minutes)
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
from toy_sources.codes.wz_lloyd import (  # noqa: E402
    WZGrid, one_shot_gap_table, periodic_inits, uniform_threshold_ecsq,
)
from toy_sources.codes.wz_study import (  # noqa: E402
    high_rate_gap_db,
    ldpc_rows,
    learned_rows,
    lloyd_curves,
    lloyd_rows,
    nested_rows,
)

#: settings of the learned compressor in the full run (per λ: ~15-25 s per restart on one thread)
LEARNED = dict(n_indices=16, n_features=64, steps=400, lam_start_factor=4.0, restarts=4)
#: λ of the full run: 1 / (2 ln2 D) around the hull vertices of the one-shot curve at rho = 0.95
LAMS_MARGINAL = [30.0, 45.0, 70.0]
LAMS_CONDITIONAL = [40.0, 100.0, 200.0]


def _print(row):
    def r(v):
        if isinstance(v, float):
            return round(v, 5)
        if isinstance(v, dict):
            return {str(k): r(x) for k, x in v.items()}
        return v

    print(json.dumps({k: r(v) for k, v in row.items()}), flush=True)


def lloyd_kw(rho, quick):
    """Grid and search size of the one-shot Lloyd curves."""
    n_x, y_per_s = (601, 6) if quick else (801, 8)
    grid = WZGrid(1.0, rho, n_x=n_x, y_per_s=y_per_s)
    return dict(grid=grid, n_lams=8 if quick else 10, rate_range=(0.2, 2.4),
                inits=periodic_inits(grid, phases=(0.0,)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small run (about a minute)")
    ap.add_argument("--rho", type=float, default=0.95, help="correlation of X and Y")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-ldpc", action="store_true", help="leave out the LDPCA variant")
    ap.add_argument("--skip-learned", action="store_true", help="leave out the learned compressor")
    ap.add_argument("--skip-nested", action="store_true", help="leave out nested quantisation")
    ap.add_argument("--gap-table", action="store_true", help="one-shot gap to D_WZ for rho in 0.5 .. 0.99")
    a = ap.parse_args(argv)
    src = GaussianSideInfoSource(1.0, a.rho)
    t0 = time.perf_counter()
    targets = [0.5, 1.0, 1.5, 2.0] if a.quick else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    n = 20_000 if a.quick else 100_000
    cosets = [2, 3, 4, 6, 8, 12, 16] if a.quick else None
    if not a.skip_nested:
        for r in nested_rows(src, targets, "ideal_sw", n=n, seed=a.seed):
            _print(r)
        for r in nested_rows(src, targets, "marginal", n=n, seed=a.seed, coset_grid=cosets):
            _print(r)
        gap, rate = high_rate_gap_db(src, 4.0)
        _print({"method": "nested_ideal_sw_high_rate", "rho": a.rho, "rate_entropy": rate, "gap_db": gap,
                "theory_gap_db": scalar_quantizer_gap_db()})
    curves = lloyd_curves(src, **lloyd_kw(a.rho, a.quick))
    for r in lloyd_rows(src, curves, [0.5, 1.0, 1.5, 2.0]):
        _print(r)
    for kind, c in curves.items():
        _print({"method": f"one_shot_lloyd_{kind}_hull", "rho": a.rho, "grid": c["grid"],
                "hull": [[round(r, 4), round(d, 6)] for r, d in c["hull"] if r <= 3.5]})
    if not a.skip_ldpc:
        kw = dict(n=2000, block=2000, levels=50) if a.quick else dict(n=8000, block=4000, levels=100)
        for r in ldpc_rows(src, [0.75, 1.5] if a.quick else [0.5, 0.75, 1.0, 1.5, 2.0, 2.5], seed=a.seed, **kw):
            _print(r)
    if not a.skip_learned:
        cfg = dict(LEARNED, steps=300, restarts=1) if a.quick else LEARNED
        lams_m = [45.0] if a.quick else LAMS_MARGINAL
        lams_c = [100.0] if a.quick else LAMS_CONDITIONAL
        for model, hull_kind in (("marginal", "marginal"), ("conditional", "sw")):
            rows, _ = learned_rows(src, lams_m if model == "marginal" else lams_c, model,
                                   n_test=20_000 if a.quick else 100_000, seed=a.seed,
                                   lloyd_hull=curves[hull_kind]["hull"], **cfg)
            for r in rows:
                _print(r)
    if a.gap_table:
        for R in (0.5, 1.0, 1.5, 2.0):  # rho = 0: the one-shot optimum is an ECSQ, in closed form
            u = uniform_threshold_ecsq(R)
            _print({"method": "ecsq_uniform_threshold_rho0", "rho": 0.0, "rate_entropy": R, "mse": u["mse"],
                    "gap_db": u["gap_db"], "step": u["step"], "zero_half": u["zero_half"]})
        for row in one_shot_gap_table((0.5, 0.8, 0.9, 0.95, 0.99), (0.5, 1.0, 1.5, 2.0),
                                      n_x=801, y_per_s=8, n_lams=10, rate_range=(0.2, 2.4),
                                      init_kw=dict(phases=(0.0,))):
            _print({"method": "one_shot_gap_vs_rho", **row})
    _print({"method": "timing", "seconds": time.perf_counter() - t0, "quick": a.quick})


if __name__ == "__main__":
    main()
