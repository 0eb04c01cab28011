"""A tiny train → eval run (smoke preset, seconds): CSV log, checkpoint with config, resume, real bitstreams."""

import csv
import json

import pytest
import torch

from mdic_lab.config import get_preset
from mdic_lab.evaluate import EVAL_FIELDS, evaluate
from mdic_lab.train import CSV_FIELDS, RunError, load_checkpoint, load_model, make_dataset, train


@pytest.fixture(scope="module")
def smoke_data():
    _, tcfg = get_preset("ndic", "smoke")
    return make_dataset("train", tcfg, length=tcfg.train_length), make_dataset("test", tcfg, length=3)


def _state(run):
    return load_checkpoint(run)["state_dict"]


@pytest.mark.parametrize("model_name", ["ndic", "hyperprior"])
def test_train_then_eval(tmp_path, smoke_data, model_name):
    train_ds, test_ds = smoke_data
    mcfg, tcfg = get_preset(model_name, "smoke")
    run = tmp_path / "run"
    summary = train(model_name, mcfg, tcfg, run, dataset=train_ds)
    assert summary["step"] == tcfg.steps
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_FIELDS
    assert [int(r["step"]) for r in rows] == list(range(tcfg.log_every, tcfg.steps + 1, tcfg.log_every))
    assert all(float(r["bpp_estimated"]) > 0 for r in rows)
    ckpt = load_checkpoint(run)
    assert ckpt["model_name"] == model_name and ckpt["model_config"]["_class"] == type(mcfg).__name__
    assert ckpt["train_config"]["lmbda"] == tcfg.lmbda and ckpt["step"] == tcfg.steps
    assert json.loads((run / "config.json").read_text())["model_config"] == ckpt["model_config"]

    out_csv = tmp_path / "eval.csv"
    res = evaluate(run, split="test", limit=2, csv_path=out_csv, dataset=test_ds, use_lpips=False)
    assert res["n"] == 2 and res["all_match_forward"]
    with open(out_csv) as f:
        erows = list(csv.DictReader(f))
    assert list(erows[0]) == EVAL_FIELDS and len(erows) == 2
    for r in erows:
        # the coded rate counts the real bytes (container header included): above the estimate
        assert float(r["bpp_coded"]) > float(r["bpp_estimated"]) > 0
        assert 0 < float(r["psnr"]) < 100
        assert r["matches_forward"] == "True"


def test_resume_is_bit_identical(tmp_path, smoke_data):
    train_ds, _ = smoke_data
    mcfg, tcfg = get_preset("ndic", "smoke", None, {"steps": 6, "log_every": 1, "ckpt_every": 100})
    train("ndic", mcfg, tcfg, tmp_path / "straight", dataset=train_ds)
    sliced = tmp_path / "sliced"
    first = train("ndic", mcfg, tcfg, sliced, dataset=train_ds, stop_after=4)
    assert first["step"] == 4 and load_checkpoint(sliced)["step"] == 4
    second = train("ndic", mcfg, tcfg, sliced, dataset=train_ds)
    assert second["step"] == 6
    a, b = _state(tmp_path / "straight"), _state(sliced)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with open(sliced / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5, 6]


def test_run_folder_errors(tmp_path, smoke_data):
    train_ds, _ = smoke_data
    mcfg, tcfg = get_preset("hyperprior", "smoke", None, {"steps": 1})
    run = tmp_path / "run"
    train("hyperprior", mcfg, tcfg, run, dataset=train_ds)
    with pytest.raises(RunError, match="already holds a checkpoint"):
        train("hyperprior", mcfg, tcfg, run, dataset=train_ds, resume=False)
    other, _ = get_preset("hyperprior", "smoke", {"N": 4})
    with pytest.raises(RunError, match="another model_config"):
        train("hyperprior", other, tcfg, run, dataset=train_ds)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot read checkpoint"):
        load_model(tmp_path / "bad")


def test_side_information_gain_closed_form():
    from mdic_lab.evaluate import side_information_gain

    rates = [0.05, 0.1, 0.2, 0.4]
    psnr = [18.0, 20.0, 22.5, 24.0]
    anchor = [{"bpp_coded": r, "psnr": q, "lmbda": i} for i, (r, q) in enumerate(zip(rates, psnr))]
    # the same qualities at half the rate: BD-rate = -50 %
    test = [{"bpp_coded": r / 2, "psnr": q, "lmbda": i} for i, (r, q) in enumerate(zip(rates, psnr))]
    # plus a dominated point (more bits, less quality) that the Pareto front drops
    test.append({"bpp_coded": 0.03, "psnr": 17.0, "lmbda": 9})
    g = side_information_gain(anchor, test)
    assert abs(g["bd_rate"] - (-50.0)) < 1e-6
    assert g["dropped"] == [("test", 9)] and g["points"] == [4, 4]
    assert g["gain_low"] > 0 and g["gain_high"] > 0
