"""The main job: `ablations/run_all.ipynb` on the smoke preset, its resume, and its refusals of bad input."""

import csv
import json
from pathlib import Path

import pytest

from mdic_lab.config import ConfigError
from mdic_lab.experiments.ablation import AblationParams, check_params, sweep_spec
from mdic_lab.experiments.notebooks import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "ablations" / "run_all.ipynb"


def _summary_mtimes(out: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in sorted((out / "sweep" / "cells").glob("*/eval/*.json"))}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    params = {"preset": "smoke", "variants": "full,no_text,no_zd", "backbone_root": str(tmp_path_factory.mktemp("bb"))}
    first = run_notebook(NOTEBOOK, out, **params)
    return out, params, first


def test_smoke_run_writes_the_four_tables_and_claims(smoke_run):
    out, _, metrics = smoke_run
    for name in ("table1.csv", "table2.csv", "table3.csv", "table4.csv", "tables.md", "rd_curves.png"):
        assert (out / name).is_file(), name
    with open(out / "table1.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["w/o (z_d + ẑ_xc)", "w/o z_d", "MDIC (Ours)"]
    for col in ("psnr", "psnr_ci_low", "psnr_ci_high", "psnr_paper", "psnr_sign_agrees", "lpips_paper"):
        assert col in rows[0]
    no_zd = rows[1]  # trained in the smoke run: a number with its interval; LPIPS without weights: n/a
    assert float(no_zd["psnr_ci_low"]) <= float(no_zd["psnr"]) <= float(no_zd["psnr_ci_high"])
    assert no_zd["lpips"].startswith("n/a")
    assert rows[0]["psnr"].startswith("n/a")  # w/o (z_d + ẑ_xc) was not in this run's variants
    md = (out / "tables.md").read_text()
    assert "4 test images × 1 training seed" in md and "pchip" in md
    assert metrics["notebook"] == "run_all" and metrics["claims"] and metrics["cells"] == 6
    assert metrics["failed_cells"] == []
    assert [(r["variant"], r["rate_point"]) for r in metrics["mask_agreement"]] == [("full", 0), ("full", 1)]
    assert any(c["claim"].startswith("w/o z_d: BD-quality sign agrees with the paper (PSNR)") for c in metrics["claims"])


def test_second_run_redoes_no_cell_and_reproduces_the_tables(smoke_run):
    out, params, first = smoke_run
    before = _summary_mtimes(out)
    tables = {n: (out / n).read_text() for n in ("table1.csv", "table2.csv", "table3.csv")}
    second = run_notebook(NOTEBOOK, out, **params)
    # 6 cells + the full model's 2 rate points × 2 step counts × (quality batched, timing one at a time)
    assert _summary_mtimes(out) == before and len(before) == 6 + 2 * 2 * 2
    assert {n: (out / n).read_text() for n in tables} == tables
    assert second["claims"] == first["claims"]
    assert json.loads((out / "sweep" / "manifest.json").read_text())


def test_an_interrupted_run_resumes_only_the_unfinished_cell(smoke_run):
    out, params, first = smoke_run
    tables = {n: (out / n).read_text() for n in ("table1.csv", "table2.csv", "table3.csv")}
    victim = sorted((out / "sweep" / "cells").glob("mdic-smoke-no_text-*"))[0]
    for p in (victim / "eval").glob("test.*"):  # as if killed after training, before its evaluation was written
        p.unlink()
    others = {p: t for p, t in _summary_mtimes(out).items() if victim not in p.parents}
    again = run_notebook(NOTEBOOK, out, **params)
    after = _summary_mtimes(out)
    assert {p: after[p] for p in others} == others  # every finished cell read back, not redone
    assert (victim / "eval" / "test.json").is_file()
    assert {n: (out / n).read_text() for n in tables} == tables  # the same tables as before the interruption
    assert again["claims"] == first["claims"]


def test_bad_parameters_stop_before_any_training(tmp_path):
    def params(**kw):
        return AblationParams.for_preset("smoke", output_dir=str(tmp_path / "o"), **kw)

    with pytest.raises(ConfigError, match="unknown variant 'no_txt' of codec 'mdic'"):
        check_params(params(variants="full,no_txt"))
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        AblationParams.for_preset("huge")
    with pytest.raises(ConfigError, match="unknown rate point 5"):
        check_params(params(rate_points=[0, 5]))
    with pytest.raises(ConfigError, match="at least 2 rate points"):
        check_params(params(rate_points=[0]))
    with pytest.raises(ConfigError, match="unknown metric 'fid'"):
        check_params(params(metrics=("psnr", "fid")))
    with pytest.raises(ConfigError, match="unknown profile 'author' .*paper, authors"):
        check_params(params(profile="author"))
    with pytest.raises(ConfigError, match="unknown executor 'mpi'"):
        check_params(params(executor="mpi"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_params(params(data=f"kitti:{tmp_path / 'no_kitti'}"))
    (tmp_path / "file").write_text("")
    with pytest.raises(PermissionError, match="cannot be written"):
        check_params(AblationParams.for_preset("smoke", output_dir=str(tmp_path / "file" / "sub")))
    assert not (tmp_path / "o" / "sweep").exists()  # nothing was started


def test_an_output_folder_of_other_parameters_is_refused(smoke_run, tmp_path):
    out, params, _ = smoke_run
    with pytest.raises(Exception, match="(?i)another spec|different spec|other spec|--add"):
        run_notebook(NOTEBOOK, out, **{**params, "seeds": "[1]"})


def test_the_authors_profile_reaches_every_cell():
    spec = sweep_spec(AblationParams.for_preset("smoke", profile="authors", overrides={"mask_threshold": 0.5}))
    assert spec["grid"]["overrides"] == {"profile": ["authors"], "mask_threshold": [0.5]}
    assert "overrides" not in sweep_spec(AblationParams.for_preset("smoke"))["grid"]


def test_sweep_spec_always_holds_the_reference():
    spec = sweep_spec(AblationParams.for_preset("smoke", variants="no_ts", rate_points="[0, 1]"))
    assert spec["grid"]["variant"] == ["full", "no_ts"] and spec["grid"]["rate_point"] == [0, 1]
    assert spec["eval"]["limit"] == 4 and spec["eval"]["batch_size"] == 4


def test_mask_agreement_counts_dropped_and_misleading_tokens(smoke_run):
    from mdic_lab.data.sources import open_pairs
    from mdic_lab.experiments.ablation import mask_agreement
    from mdic_lab.runs.coding import load_run

    out, _, _ = smoke_run
    cell = next((out / "sweep" / "cells").glob("mdic-smoke-full-rp0-*"))
    model, run, _ = load_run(cell)
    ds = open_pairs("synthetic", "test", size=run.model.image_size, length=3)
    res = mask_agreement(model, ds, limit=3)
    h, w = model.token_grid
    assert res["pairs"] == 3 and res["tokens"] == 3 * h * w
    assert 0 <= res["keep_fraction"] <= 1 and 0 <= res["misleading_fraction"] <= 1
    for k in ("precision", "recall"):
        assert res[k] != res[k] or 0 <= res[k] <= 1  # NaN when nothing is dropped / misleading


def test_table4_reuses_the_sweep_evaluation_at_the_models_own_steps(smoke_run, tmp_path):
    """At the model's own number of denoising steps, Table 4's quality pass is the sweep's evaluation
    of the cell (same pairs, batch, seed): copied, not decoded again; other step counts are decoded."""
    import shutil

    from mdic_lab.experiments.ablation import steps_rows
    from mdic_lab.experiments.ablation_tables import read_images_csv
    from mdic_lab.runs import RunDir

    out, params, _ = smoke_run
    sweep = tmp_path / "sweep"
    shutil.copytree(out / "sweep", sweep)
    cells = read_images_csv(sweep / "cells.csv")
    full = [c for c in cells if c["variant"] == "full"]
    own = RunDir(sweep / "cells" / Path(full[0]["dir"]).name).run_config().model.num_inference_steps
    p = AblationParams.for_preset("smoke", output_dir=str(tmp_path), timing_steps=(own, own + 1), workers=1)
    quality, timing = steps_rows(sweep, cells, p, progress=False)
    for c in full:
        rd = RunDir(sweep / "cells" / Path(c["dir"]).name)
        assert rd.read_eval_rows("test", f"quality-steps{own}") == rd.read_eval_rows("test")
        assert rd.read_eval_summary("test", f"quality-steps{own}")["reused_from"] == "eval/test.json"
        decoded = rd.read_eval_summary("test", f"quality-steps{own + 1}")
        assert decoded["num_inference_steps"] == own + 1 and "reused_from" not in decoded
    assert len(quality) == 2 * len(full) * p.n_test and len(timing) == 2 * len(full) * p.n_timing
    assert {r["num_inference_steps"] for r in quality} == {own, own + 1}


def test_choices_add_their_own_cells_and_table_without_touching_tables_1_to_3(smoke_run, tmp_path):
    """`choices`: the full model with one authors' choice switched at a time, a spec of its own added to
    the run's folder; the "paper vs authors' choices" tables; Tables 1–3 and the figures' runs unchanged."""
    import shutil

    from mdic_lab.experiments.ablation import choice_overrides, choices_spec, run_ablation
    from mdic_lab.experiments.sweep import load_spec

    out, params, first = smoke_run
    shutil.copytree(out / "sweep", tmp_path / "sweep")
    p = AblationParams.for_preset("smoke", variants=params["variants"], backbone_root=params["backbone_root"],
                                  output_dir=str(tmp_path), choices="g1_residual,sampler")
    assert p.choices == ("g1_residual", "sampler")
    res = run_ablation(p, progress=False)
    assert len(res.sweep.done) == 0 and len(res.choices_sweep.done) == 4  # 2 choices × 2 rate points × 1 seed
    for n in ("table1.csv", "table2.csv", "table3.csv"):  # the choices' "full" cells stay out of the ablation
        assert (tmp_path / n).read_text() == (out / n).read_text(), n
    assert len(res.claims) == len(first["claims"])  # the choices are findings: no claims
    assert len(res.runs) == 6 and all(r["path"].name.split("-")[-1] in set(res.sweep.cells) for r in res.runs)
    for kind in ("quality", "rate"):
        t = res.tables[f"choices_{kind}"]
        assert [r["method"] for r in t["rows"]] == ["MDIC as the run's profile", "+ g1_residual", "+ sampler"]
        sampler = t["rows"][2]
        assert isinstance(sampler["psnr"], float) or sampler["psnr"].startswith("n/a")
        assert sampler["psnr_paper"] is None and "DDPM" in sampler["what"]
    md = (tmp_path / "tables.md").read_text()
    assert "Paper vs the authors' choices, one at a time (BD-quality)" in md and (tmp_path / "choices_rate.csv").is_file()
    cells = [c for c in load_spec(choices_spec(p)).cells if c.overrides.get("sampler") == "ddpm"]
    assert len(cells) == 2 and all(c.resolve().model.sampler == "ddpm" for c in cells)
    # under the authors' profile a choice switches back to the paper's value
    authors = AblationParams.for_preset("smoke", profile="authors", choices="all")
    assert choice_overrides("g1_residual", authors) == {"g1_residual": True}
    assert choice_overrides("g1_residual", p) == {"g1_residual": False}
    with pytest.raises(ConfigError, match=r"unknown choice 'samplr'.*g1_residual"):
        check_params(AblationParams.for_preset("smoke", output_dir=str(tmp_path / "x"), choices="samplr"))


def test_signs_by_profile_puts_runs_side_by_side(smoke_run):
    from mdic_lab.experiments.ablation_tables import read_table_csv, signs_by_profile

    out, _, _ = smoke_run
    md = signs_by_profile({"paper profile": out, "again": out})
    lines = md.splitlines()
    assert lines[0] == "| table | method | metric | paper | paper profile | again |"
    t1 = read_table_csv(out / "table1.csv")
    no_zd = next(r for r in t1 if r["method"] == "w/o z_d")
    row = next(ln for ln in lines if "| T1 | w/o z_d | PSNR |" in ln)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == no_zd["psnr_paper"] and cells[4] == cells[5] and cells[4][-1] in "✓✗–"
    assert len(lines) == 2 + 6 * 2  # 6 ablation rows (T1–T3) × PSNR, MS-SSIM; the references left out
    assert "| T1 | w/o (z_d + ẑ_xc) | PSNR | -8.6358 | n/a | n/a |" in lines  # not trained in this run


def test_a_choice_that_builds_the_reference_model_gets_no_cells():
    """At lab, H_ax already keeps the full latent grid: side_full_grid would only repeat the reference."""
    from mdic_lab.experiments.ablation import choice_is_noop, choices_spec
    from mdic_lab.experiments.sweep import load_spec

    lab = AblationParams.for_preset("lab", choices="side_full_grid,sampler", seeds=(0,))
    assert choice_is_noop("side_full_grid", lab) and not choice_is_noop("sampler", lab)
    assert not choice_is_noop("side_full_grid", AblationParams.for_preset("smoke"))
    cells = load_spec(choices_spec(lab)).cells
    assert len(cells) == 3 and all(c.overrides == {"sampler": "ddpm"} for c in cells)
    assert choices_spec(AblationParams.for_preset("lab", choices="side_full_grid")) is None
