"""Rate–distortion studies of the practical Wyner–Ziv codes (shared by notebook 06 and
``benchmarks/wyner_ziv.py``).

Every row is a plain dict with the same keys: ``method``, ``rho``, ``rate_entropy``
(an entropy, bits/sample), ``rate_coded`` (bits/sample measured on bytes or syndrome bits;
``None`` if not coded), ``rate_coded_kind`` (what produced it), ``mse``, ``d_wz``,
``d_no_si``, ``gap_db`` (to ``D_WZ`` at the *coded* rate when there is one, else at the
entropy) and ``gap_no_si_db``.
"""

from __future__ import annotations

import numpy as np

from .entropy_coding import ideal_code_length_bits
from .wyner_ziv import GaussianSideInfoSource, NestedScalarQuantizer, exact_performance, gap_db, optimise_nested

__all__ = ["nested_rows", "ldpc_rows", "learned_rows", "lloyd_curves", "lloyd_rows", "high_rate_gap_db",
           "pick_targets"]

CODED_KINDS = {
    "marginal": "range coder with the marginal pmf, P(c) or learned p(u) (encoder without y: a real WZ bitstream)",
    "conditional_oracle": "range coder with P(index|y) (ORACLE: encoder given y; checks the SW entropy)",
    "ldpc": "LDPCA syndrome + CRC bits (encoder without y: a real WZ bitstream)",
}


def _row(method, src, rate_entropy, rate_coded, kind, mse, **extra):
    r = rate_coded if rate_coded is not None else rate_entropy
    d_wz, d_no = src.d_wz(max(r, 0.0)), src.d_no_si(max(r, 0.0))
    out = {
        "method": method,
        "rho": src.rho,
        "rate_entropy": float(rate_entropy),
        "rate_coded": None if rate_coded is None else float(rate_coded),
        "rate_coded_kind": kind,
        "mse": float(mse),
        "d_wz": float(d_wz),
        "d_no_si": float(d_no),
        "gap_db": gap_db(mse, d_wz),
        "gap_no_si_db": gap_db(mse, d_no),
    }
    out.update(extra)
    return out


def pick_targets(front, targets):
    """For each target rate, the front point with the smallest MSE at rate <= target."""
    out = []
    for t in targets:
        ok = [p for p in front if p["rate"] <= t + 1e-9]
        if ok:
            out.append(min(ok, key=lambda p: p["mse"]))
    return out


def nested_rows(source: GaussianSideInfoSource, targets, kind="ideal_sw", n=50_000, seed=0,
                coset_grid=None, n_grid=128):
    """Optimised nested quantisation at the target rates, checked on held-out samples.

    ``kind="ideal_sw"``: fine index, rate ``H(Q|Y)`` (entropy), coded by the conditional
    range coder (oracle). ``kind="marginal"``: coset index coded with ``P(C)`` (real).
    MSE is exact (numerical integration); ``mse_samples`` is measured on ``n`` samples
    decoded from the bytes; ``rate_ideal_sample`` is ``-Σ log2 p(symbol)/n`` of the coded
    sample (what the coder should match), ``rate_entropy`` the exact expectation.
    """
    if kind not in ("ideal_sw", "marginal"):
        raise ValueError(f"unknown kind {kind!r} (expected one of: ideal_sw, marginal)")
    front = optimise_nested(source, kind, coset_grid=coset_grid, n_grid=n_grid)
    rows = []
    x, y = source.sample(n, seed)
    for p in pick_targets(front, targets):
        q = NestedScalarQuantizer(p["step"], p["n_cosets"])
        if kind == "ideal_sw":
            data, sym = q.code_conditional(x, y, source)
            xh = q.decode_conditional(data, y, source)
            coded_kind = CODED_KINDS["conditional_oracle"]
            probs = q.fine_offset_pmf(y, source)
        else:
            data, sym = q.code_marginal(x, source)
            xh = q.decode_marginal(data, n, y, source)
            coded_kind = CODED_KINDS["marginal"]
            probs = q.marginal_pmf(source)
        rows.append(_row(
            f"nested_{kind}", source, p["rate"], 8 * len(data) / n, coded_kind, p["mse"],
            mse_samples=float(np.mean((x - xh) ** 2)), step=p["step"], n_cosets=p["n_cosets"],
            rate_ideal_sample=ideal_code_length_bits(sym, probs) / n,
            gap_db_at_entropy=gap_db(p["mse"], source.d_wz(p["rate"])),
        ))
    return rows


def ldpc_rows(source: GaussianSideInfoSource, targets, n=4000, block=2000, levels=50, seed=0,
              planes=(1, 2, 3), n_grid=128):
    """Nested quantisation with LDPCA-coded bit planes (real SW code) at target rates.

    ``(Δ, L)`` is chosen on the exact ``H(C|Y)`` front with ``M = 2^L``; the rate reported
    is the syndrome + CRC bits actually requested, MSE is measured on the ``n`` samples.
    """
    from .wz_ldpc import LDPCWynerZiv

    front = optimise_nested(source, "sw_coset", coset_grid=[2**L for L in planes], n_grid=n_grid)
    rows = []
    x, y = source.sample(n, seed)
    for p in pick_targets(front, targets):
        L = int(round(np.log2(p["n_cosets"])))
        res = LDPCWynerZiv(p["step"], L, source, block=block, levels=levels, seed=seed).run(x, y)
        rows.append(_row(
            "nested_ldpc_sw", source, res["h_index_given_y"], res["rate_coded"], CODED_KINDS["ldpc"],
            res["mse"], step=p["step"], n_cosets=p["n_cosets"], rate_per_plane=res["rate_per_plane"],
            plane_failures=res["plane_failures"], planes_uncoded=res["planes_uncoded"],
            index_errors=res["index_errors"], mse_exact_if_lossless=res["mse_exact_if_lossless"],
            n_samples=int(n),
        ))
    return rows


def lloyd_curves(source: GaussianSideInfoSource, kinds=("marginal", "sw"), **kw):
    """The one-shot operational curves (:func:`toy_sources.codes.wz_lloyd.one_shot_curve`)
    of this source, one per rate kind; ``kw`` goes to ``one_shot_curve`` (grid size, λs).
    The SW hull also holds the marginal-designed codes at their rate ``H(M|Y)``."""
    from .wz_lloyd import merge_into_sw, one_shot_curve

    curves = {k: one_shot_curve(source.var_x, source.rho, k, **kw) for k in kinds}
    if "marginal" in curves and "sw" in curves:
        curves["sw"] = merge_into_sw(curves["marginal"], curves["sw"])
    return curves


def lloyd_rows(source: GaussianSideInfoSource, curves, targets):
    """Rows of the one-shot optimum at the target rates (hull of the Lloyd search).

    ``rate_entropy`` is the target rate (``H(M)`` for ``one_shot_lloyd_marginal``,
    ``H(M|Y)`` for ``one_shot_lloyd_sw``); ``rate_coded`` is ``None``: these are exact
    (grid-integrated) performances of designed codes, not coded samples. Targets outside
    a curve's range are skipped.
    """
    from .wz_lloyd import hull_distortion

    rows = []
    for kind, c in curves.items():
        for t in targets:
            d = hull_distortion(c["hull"], t)
            if np.isfinite(d):
                rows.append(_row(f"one_shot_lloyd_{kind}", source, t, None,
                                 "none (exact performance of the designed code on the grid)", d))
    return rows


def learned_rows(source: GaussianSideInfoSource, lams, rate_model="marginal", n_test=50_000, seed=0,
                 lloyd_hull=None, **config):
    """Train the learned compressor at each λ and evaluate it on held-out samples.

    Returns ``(rows, models)``; each row adds ``lam``, ``n_used`` (indices used),
    ``intervals_per_index`` (disjoint x-intervals each used index owns, over ±4σ),
    ``train_seconds`` and, if ``lloyd_hull`` (the one-shot hull of the same rate kind) is
    given, ``d_lloyd`` and ``lloyd_gap_db`` (gap to the one-shot optimum at the coded rate).
    """
    from .wz_lloyd import hull_distortion

    from .learned_wz import LearnedWZConfig, evaluate_learned_wz, index_intervals, train_learned_wz

    rows, models = [], []
    for lam in lams:
        cfg = LearnedWZConfig(var_x=source.var_x, rho=source.rho, lam=float(lam), rate_model=rate_model,
                              seed=seed, **config)
        model, log = train_learned_wz(cfg)
        ev = evaluate_learned_wz(model, n=n_test, seed=seed + 10_000)
        iv = index_intervals(model)
        kind = CODED_KINDS["marginal"] if rate_model == "marginal" else CODED_KINDS["conditional_oracle"]
        rows.append(_row(
            f"learned_{rate_model}", source, ev["rate_entropy"], ev["rate_coded"], kind, ev["mse"],
            lam=float(lam), n_used=ev["n_used"], intervals_per_index=iv["per_index"],
            max_intervals_per_index=max(iv["per_index"].values()) if iv["per_index"] else 0,
            train_seconds=log["seconds"], n_test=int(n_test),
        ))
        if lloyd_hull is not None:
            d = hull_distortion(lloyd_hull, ev["rate_coded"])
            rows[-1]["d_lloyd"] = d if np.isfinite(d) else None
            rows[-1]["lloyd_gap_db"] = gap_db(ev["mse"], d) if np.isfinite(d) else None
        models.append(model)
    return rows, models


def high_rate_gap_db(source: GaussianSideInfoSource, rate_bits=4.0):
    """Gap of ideal-SW scalar quantisation to ``D_WZ`` at a high rate (→ 1.53 dB).

    The step giving ``H(Q|Y) = rate_bits`` is found by bisection on the exact entropy.
    """
    s = source.cond_std
    lo, hi = np.log(1e-3 * s), np.log(10 * s)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        r = exact_performance(NestedScalarQuantizer(float(np.exp(mid))), source, n_grid=64)
        if r["h_index_given_y"] > rate_bits:
            lo = mid
        else:
            hi = mid
    r = exact_performance(NestedScalarQuantizer(float(np.exp(0.5 * (lo + hi)))), source, n_grid=64)
    return gap_db(r["mse"], source.d_wz(r["h_index_given_y"])), r["h_index_given_y"]
