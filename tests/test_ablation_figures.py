"""The ablation's figures (mdic_lab.experiments.ablation_figures), the one-cell inspection helpers, and
`ablations/inspect_run.ipynb`, on real smoke runs trained here in-process (three cells, ~10 s)."""

import math

import numpy as np
import pytest

from mdic_lab.experiments import ablation_figures as AF
from mdic_lab.experiments import run_inspection as RI
from mdic_lab.runs import RunDir

N = 2  # test pairs the runs are evaluated on


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as each sweep cell runs (several threads on tiny smoke tensors only contend)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """full (rate points 0, 1) and w/o TS (rate point 1), smoke preset, seed 0; evaluated on N test pairs
    like the sweep's cells; the full model at rate point 1 also at 2 and 4 denoising steps (Table 4's passes)."""
    from mdic_lab.registry import resolve
    from mdic_lab.runs.evaluate import evaluate_run
    from mdic_lab.runs.train import train_run

    root = tmp_path_factory.mktemp("figure_runs")
    bb = tmp_path_factory.mktemp("bb")
    for variant, rp in (("full", 0), ("full", 1), ("no_ts", 1)):
        d = root / "cells" / f"{variant}-rp{rp}"
        train_run(resolve("mdic", "smoke", variant=variant, rate_point=rp), d, backbone_root=bb, progress=False)
        evaluate_run(d, limit=N, batch_size=N, use_lpips=False)
    for steps in (2, 4):  # Table 4's passes (ablation.steps_rows): batched quality, one-at-a-time timing
        evaluate_run(root / "cells" / "full-rp1", limit=N, num_inference_steps=steps, tag=f"quality-steps{steps}",
                     batch_size=N, use_lpips=False)
        evaluate_run(root / "cells" / "full-rp1", limit=1, num_inference_steps=steps, tag=f"timing-steps{steps}",
                     batch_size=1, use_lpips=False)
    return root


@pytest.fixture(scope="module")
def runs(runs_root):
    return AF.find_runs(runs_root)


def test_find_and_pick_runs(runs, runs_root, tmp_path):
    assert [(r["variant"], r["rate_point"], r["seed"]) for r in runs] == [("full", 0, 0), ("full", 1, 0), ("no_ts", 1, 0)]
    picked = AF.pick_runs(runs, ["full", "no_ts"])  # default: the highest rate point, the lowest seed
    assert picked == {"full": runs_root / "cells" / "full-rp1", "no_ts": runs_root / "cells" / "no_ts-rp1"}
    assert AF.pick_runs(runs, ["full", "no_ts"], rate_point=0, skip_missing=True) == {"full": runs[0]["path"]}
    with pytest.raises(KeyError, match="no run of variant 'no_ts' at rate point 0"):
        AF.pick_runs(runs, ["full", "no_ts"], rate_point=0)
    with pytest.raises(KeyError, match="no run of variant 'no_zd'"):
        AF.pick_runs(runs, ["no_zd"])
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        AF.find_runs(tmp_path / "missing")
    with pytest.raises(ValueError, match="n_pairs must be a positive int"):
        AF.open_test_pairs(runs[0]["path"], 0)


def test_masks_are_binary_on_the_token_grid_and_agree_with_mask_agreement(runs):
    from mdic_lab.experiments.ablation import mask_agreement
    from mdic_lab.runs.coding import load_run

    chosen = AF.pick_runs(runs, ["full", "no_ts"])
    maps = AF.mask_maps(chosen, 2)
    model, _, _ = load_run(chosen["full"])
    h, w = model.token_grid
    H, W = model.config.image_size
    assert maps["token_grid"] == (h, w) and maps["main"].shape == maps["side"].shape == (2, 3, H, W)
    for v in ("full", "no_ts"):
        m = maps["masks"][v]
        assert m.shape == (2, h, w) and set(np.unique(m).tolist()) <= {0.0, 1.0}
        assert maps["keep_fraction"][v] == pytest.approx(m.mean())
        assert ((maps["mask_prob"][v] >= 0) & (maps["mask_prob"][v] <= 1)).all()
    assert maps["side_valid"].shape == (2, H, W) and maps["side_valid"].dtype == bool
    assert maps["misleading"].shape == (2, h, w)
    ref = mask_agreement(model, AF.open_test_pairs(chosen["full"], 2), limit=2)  # the encoder-side z_q
    assert maps["keep_fraction"]["full"] == pytest.approx(ref["keep_fraction"])
    assert maps["misleading"].mean() == pytest.approx(ref["misleading_fraction"])
    assert len(AF.plot_masks(maps).axes) == 2 * (2 + 1 + 2 * 2)  # pairs × (main, side, side_valid, 2 × (m_v, soft))
    assert len(AF.plot_masks(maps, soft=False).axes) == 2 * (2 + 1 + 2)


def test_token_misleading_counts_pixel_majorities():
    valid = np.ones((4, 8), bool)
    valid[:2, :2] = False  # the whole top-left token of a 2×4 grid
    valid[2:, 4] = False  # a quarter of one token: not misleading
    bad = AF.token_misleading(valid, (2, 4))
    assert bad.shape == (2, 4) and bad.sum() == 1 and bad[0, 0]


def test_mask_agreement_rows_and_bar_chart(runs):
    rows = AF.mask_agreement_rows(runs, ["no_ts", "full"], n_pairs=1)
    assert [(r["variant"], r["rate_point"], r["seed"]) for r in rows] == [("no_ts", 1, 0), ("full", 0, 0), ("full", 1, 0)]
    for r in rows:
        assert r["pairs"] == 1 and 0 <= r["keep_fraction"] <= 1
        assert math.isnan(r["precision"]) or 0 <= r["precision"] <= 1
    fig = AF.plot_mask_agreement(rows)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][1] == "MDIC (Ours)\nrp 0"


def test_reconstructions_carry_the_coded_rate_and_the_evaluations_psnr(runs):
    chosen = AF.pick_runs(runs, ["full", "no_ts"])
    rec = AF.reconstructions(chosen, 2)
    H, W = rec["original"].shape[-2:]
    for v, d in chosen.items():
        assert rec["recon"][v].shape == (2, 3, H, W)
        np.testing.assert_allclose(rec["bpp_coded"][v], 8.0 * np.array(rec["bytes"][v]) / (H * W))
        ev = {r["name"]: r for r in RunDir(d).read_eval_rows("test")}  # the sweep's evaluation, batched
        for i, name in enumerate(rec["names"]):
            assert rec["bpp_coded"][v][i] == pytest.approx(float(ev[name]["bpp_coded"]), rel=1e-5)
            assert abs(rec["psnr"][v][i] - float(ev[name]["psnr"])) < 0.01
    fig = AF.plot_reconstructions(rec)
    assert "bpp" in fig.axes[2].get_title() and "dB" in fig.axes[2].get_title()


def test_caption_nouns_equal_a_direct_count_and_the_vocabulary(runs):
    from mdic_lab.data.synthetic import SyntheticStereo
    from mdic_lab.data.vocabulary import extract_nouns

    d = runs[0]["path"]
    nouns = AF.caption_nouns(d)
    rec = RunDir(d).data_record()
    captions = [SyntheticStereo("train", size=tuple(rec["size"]), length=rec["length"])[i]["caption"]
                for i in range(rec["length"])]
    direct = {}
    for c in captions:
        for w in extract_nouns(c):
            direct[w] = direct.get(w, 0) + 1
    assert nouns["n_captions"] == len(captions) and dict(nouns["counts"]) == direct
    assert [c for _, c in nouns["ranked"]] == sorted(direct.values(), reverse=True)
    # the checkpoint's vocabulary is the N most frequent of these same captions
    assert list(nouns["vocabulary"]) == [w for w, _ in nouns["ranked"][:len(nouns["vocabulary"])]]
    assert list(nouns["vocabulary_counts"]) == [direct[w] for w in nouns["vocabulary"]]
    assert len(AF.plot_nouns(nouns).axes[0].patches) == len(direct)
    assert nouns["ranked"][0][0] in AF.noun_table(nouns)


def test_steps_quality_averages_the_table4_rows(runs):
    from mdic_lab.experiments import ablation

    assert [AF.STEPS_TAGS["quality"] + "5", AF.STEPS_TAGS["timing"] + "5"] == [ablation._quality_tag(5),
                                                                            ablation._timing_tag(5)]
    quality, timing = AF.read_steps_rows(runs), AF.read_steps_rows(runs, kind="timing")
    assert sorted({r["num_inference_steps"] for r in quality}) == [2, 4] and {r["rate_point"] for r in quality} == {1}
    summary = AF.steps_quality(quality, timing)
    assert [(s["rate_point"], s["num_inference_steps"], s["n"], s["n_timing"]) for s in summary] == [
        ("1", 2, N, 1), ("1", 4, N, 1)]
    for s in summary:
        k = s["num_inference_steps"]
        assert s["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in quality if r["num_inference_steps"] == k]))
        assert s["decode_s"] == pytest.approx(float(next(r for r in timing if r["num_inference_steps"] == k)["decode_s"]))
        assert math.isnan(s["lpips"])  # no weights asked for: NaN, never a number
    fig = AF.plot_steps(summary)
    assert [a.get_xlabel() for a in fig.axes] == ["DDIM steps", "DDIM steps"]  # PSNR (MS-SSIM NaN at 32×64), time
    assert math.isnan(AF.steps_quality(quality)[0]["decode_s"])  # no timing rows: no time, not the batched one
    with pytest.raises(ValueError, match="unknown kind 'timings'"):
        AF.read_steps_rows(runs, kind="timings")


def test_training_curves_and_stream_report(runs):
    d = runs[0]["path"]
    curves = RI.training_curves(d)
    logged = RunDir(d).read_metrics()
    assert len(curves["step"]) == len(logged) and curves["loss"][-1] == pytest.approx(float(logged[-1]["loss"]))
    assert len(RI.plot_training_curves(curves).axes) == 6  # loss, vq, diff, mask, rate, mask_fraction
    rows = RI.stream_report(d, 2)
    ev = {r["name"]: r for r in RunDir(d).read_eval_rows("test")}
    for r in rows:
        assert r["indices_equal"] and r["header_bytes"] + r["payload_bytes"] + r["crc_bytes"] == r["bytes"]
        assert r["header_bytes"] > 0 and r["bpp_coded"] > r["bpp_payload"]
        assert r["bpp_payload"] == pytest.approx(float(ev[r["name"]]["bpp_payload"]), rel=1e-5)
        assert 8 * r["payload_bytes"] <= r["max_payload_bpp"] * np.prod(RunDir(d).run_config().model.image_size) + 64
    assert "header_bytes" in RI.format_rows(rows).splitlines()[0]
    with pytest.raises(FileNotFoundError, match="no training rows"):
        RI.training_curves(d.parent)


def test_inspect_run_notebook_on_a_cell(runs, tmp_path):
    from mdic_lab.experiments.notebooks import run_notebook

    d = runs[0]["path"]
    metrics = run_notebook("ablations/inspect_run.ipynb", tmp_path, run_dir=str(d), n_pairs=2)
    assert metrics["notebook"] == "inspect_run" and metrics["run_dir"] == str(d)
    by_claim = {c["claim"]: c["holds"] for c in metrics["claims"]}
    assert len(by_claim) == 7
    assert all(h for c, h in by_claim.items() if not c.startswith("training lowered")), metrics["claims"]
    assert len(metrics["streams"]) == 2
    for name in ("training.png", "reconstructions.png", "masks.png", "streams.png"):
        assert (tmp_path / name).is_file(), name


@pytest.mark.slow
def test_inspect_run_default_makes_a_smoke_cell_through_the_sweep(tmp_path):
    from mdic_lab.experiments.notebooks import run_notebook

    metrics = run_notebook("ablations/inspect_run.ipynb", tmp_path, n_pairs=2)
    assert "sweep" in metrics["run_dir"] and all(c["holds"] for c in metrics["claims"][:6])
    assert (tmp_path / "sweep" / "cells.csv").is_file()
