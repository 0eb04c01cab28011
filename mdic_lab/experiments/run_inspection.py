"""One cell of the ablation sweep in detail (``ablations/inspect_run.ipynb``): training curves, the
bitstream's bytes per image, the evaluation table, and a smoke cell to inspect when none is given.

* :func:`smoke_cell` trains and evaluates one cell (MDIC smoke, full model, rate point 0, seed 0)
  through the sweep (:mod:`.sweep`), resumable like any sweep; returns its run folder.
* :func:`training_curves` / :func:`plot_training_curves`: the columns of ``metrics.csv`` (the loss
  of Eq. 23 and its terms L_VQ, L_diff, L_mask of Eqs. 19–21, the ESTIMATED rate, the mean of m_v).
* :func:`stream_report` / :func:`plot_stream_sizes`: each test image's container split into header,
  payload (the range-coded VQ indices) and CRC bytes, the coded, payload and estimated bpp, and
  whether the decoder recovers the encoder's indices exactly.
* :func:`format_rows`: a list of dicts as a text table (the evaluation table, the stream report).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["smoke_cell", "training_curves", "plot_training_curves", "stream_report", "plot_stream_sizes",
           "eval_agreement", "format_rows", "CRC_BYTES"]

CRC_BYTES = 4  # the container's trailing crc32 (mdic_lab.coding.container)
NOT_CURVES = ("step", "lr", "elapsed_s")  # metrics.csv columns that are not training curves


def smoke_cell(out, *, n_test: int = 4, backbone_root=None, progress: bool = False) -> Path:
    """The run folder of one smoke cell of the ablation sweep (MDIC smoke, full, rate point 0, seed 0),
    trained and evaluated on ``n_test`` test pairs under ``out/sweep`` (skipped when already there)."""
    from .ablation_figures import find_runs
    from .sweep import run_sweep

    spec = {"name": "inspect-run-smoke", "data": "synthetic",
            "grid": {"codec": ["mdic"], "preset": "smoke", "variant": ["full"], "rate_point": [0], "seed": [0]},
            "eval": {"split": "test", "limit": int(n_test), "use_lpips": False, "batch_size": int(n_test)}}
    res = run_sweep(spec, out=Path(out) / "sweep", workers=1, backbone_root=backbone_root, progress=progress)
    if res.failed:
        raise RuntimeError(f"the smoke cell failed; see {Path(out) / 'sweep' / 'cells'}/*/error.txt")
    return find_runs(Path(out) / "sweep")[0]["path"]


def training_curves(run_dir) -> dict:
    """``metrics.csv`` as ``{column: float array}`` (``step`` first; empty cells are NaN).

    Raises ``FileNotFoundError`` when the run logged nothing.
    """
    from mdic_lab.runs import RunDir

    rd = RunDir(run_dir)
    rows = rd.read_metrics()
    if not rows:
        raise FileNotFoundError(f"no training rows in {rd.metrics_path} (expected a trained run folder)")

    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    return {k: np.array([num(r.get(k)) for r in rows]) for k in rows[0]}


def plot_training_curves(curves: dict):
    """One panel per logged term against the training step (log scale where a term spans decades)."""
    import matplotlib.pyplot as plt

    terms = [k for k in curves if k not in NOT_CURVES and np.isfinite(curves[k]).any()]
    fig, axes = plt.subplots(1, len(terms), figsize=(2.9 * len(terms), 2.8), squeeze=False)
    for ax, k in zip(axes[0], terms):
        ax.plot(curves["step"], curves[k], ".-")
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step")
        v = curves[k][np.isfinite(curves[k])]
        if (v > 0).all() and v.max() > 20 * v.min():  # log scale only where a term spans decades
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def stream_report(run_dir, n_pairs: int = 4, split: str = "test") -> list[dict]:
    """Per test image: the container's bytes split into header, payload and CRC; the coded bpp
    (``8·bytes/(H·W)``), payload bpp and ESTIMATED bpp (``Σ −log2 p(k_i|k_<i) / (H·W)``, Eq. 22's R);
    the payload bound ``N_tok·log2 K / (H·W)``; and ``indices_equal`` (the decoded indices equal
    the encoder's).  MDIC runs only."""
    import torch

    from mdic_lab.coding.bpp import bpp_from_bytes
    from mdic_lab.coding.container import unpack
    from mdic_lab.runs.coding import load_run

    from .ablation_figures import _batch, _names, open_test_pairs

    model, run, _ = load_run(run_dir)
    if run.codec != "mdic":
        raise ValueError(f"run {run_dir} is a {run.codec!r} run (expected an MDIC cell of the ablation sweep)")
    x, _, _, items = _batch(open_test_pairs(run_dir, n_pairs, split), n_pairs)
    h, w = model.config.image_size
    with torch.no_grad():
        vq = model.encode_x(x)[2]
        streams = model.compress(x)["strings"]
        decoded = model.decode_indices(streams)
        est_bits = model.entropy_model.rate_bits(vq.indices)
    rows = []
    for i, (name, s) in enumerate(zip(_names(items), streams)):
        payload = sum(len(p) for p in unpack(s).payloads)
        rows.append({"name": name, "bytes": len(s), "header_bytes": len(s) - payload - CRC_BYTES,
                     "payload_bytes": payload, "crc_bytes": CRC_BYTES, "bpp_coded": bpp_from_bytes(s, h * w),
                     "bpp_payload": 8.0 * payload / (h * w), "bpp_estimated": float(est_bits[i]) / (h * w),
                     "max_payload_bpp": model.max_bpp,
                     "indices_equal": bool(torch.equal(decoded[i], vq.indices[i].to(decoded.device)))})
    return rows


def plot_stream_sizes(rows: list[dict]):
    """Stacked bars of header, payload and CRC bytes per image, with the estimated payload size."""
    import matplotlib.pyplot as plt

    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(rows) + 2.5), 3.2))
    bottom = np.zeros(len(rows))
    for key, color in (("header_bytes", "tab:gray"), ("payload_bytes", "tab:blue"), ("crc_bytes", "tab:olive")):
        v = np.array([r[key] for r in rows], dtype=float)
        ax.bar(xs, v, bottom=bottom, color=color, label=key.replace("_bytes", ""))
        bottom += v
    est = [r["bpp_estimated"] / r["bpp_payload"] * r["payload_bytes"] if r["bpp_payload"] else 0.0 for r in rows]
    hdr = np.array([r["header_bytes"] for r in rows], dtype=float)
    ax.plot(xs, hdr + np.array(est), "k_", ms=16, label="header + estimated payload")
    ax.set_xticks(xs, [r["name"] for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("bytes of the stream")
    ax.set_title("bytes sent per image (coded bpp = 8·bytes / pixels)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def eval_agreement(rec: dict, variant: str, eval_rows: list[dict]) -> dict:
    """How the images of :func:`.ablation_figures.reconstructions` agree with the evaluation's rows of the
    same images (matched by name): ``common`` (their number), ``max_bpp_gap`` (|Δ coded bpp|) and
    ``max_psnr_gap`` (|Δ PSNR| in dB); NaN gaps when no image is common."""
    by_name = {r["name"]: r for r in eval_rows}
    idx = [i for i, n in enumerate(rec["names"]) if n in by_name]
    bpp = [abs(rec["bpp_coded"][variant][i] - float(by_name[rec["names"][i]]["bpp_coded"])) for i in idx]
    psnr = [abs(rec["psnr"][variant][i] - float(by_name[rec["names"][i]]["psnr"])) for i in idx]
    return {"common": len(idx), "max_bpp_gap": max(bpp, default=math.nan), "max_psnr_gap": max(psnr, default=math.nan)}


def format_rows(rows: list[dict], fields=None, digits: int = 4) -> str:
    """``rows`` as an aligned text table (floats with ``digits`` significant digits)."""
    if not rows:
        return "(no rows)"
    fields = list(fields or rows[0])

    def cell(v):
        if isinstance(v, float) or (isinstance(v, str) and _is_float(v) and not v.isdigit()):
            return f"{float(v):.{digits}g}"
        return str(v)

    table = [fields] + [[cell(r.get(k, "")) for k in fields] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(fields))]
    lines = ["  ".join(c.rjust(wd) for c, wd in zip(row, widths)) for row in table]
    return "\n".join([lines[0], "  ".join("-" * wd for wd in widths), *lines[1:]])


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
