"""Notebooks 01 (Slepian-Wolf) and 03 (multimodal side information) run with small
parameters and every claim of their claims table holds."""

import pytest

from tests.notebook_claims import assert_all_claims_hold

SMALL_01 = dict(
    n_values=[4, 12],
    trials=600,
    rate_grid=[0.2, 0.5, 0.8],
    threshold_n_values=[6, 10],
)

SMALL_03 = dict(
    slider=[0.0, 0.5, 1.0],
    sample_sizes=[100, 1000, 30000],
    n_rep=10,
    n_boot=100,
    ksg_sample_sizes=[500, 5000],
)


def test_notebook_01_slepian_wolf(notebook_runner):
    m = notebook_runner("notebooks/01_slepian_wolf.ipynb", **SMALL_01)
    assert_all_claims_hold(m)
    assert len(m["claims"]) >= 10
    dsbs = next(v for k, v in m["regions"].items() if k.startswith("DSBS"))
    assert dsbs["H(X|Y)"] == pytest.approx(0.4689955935892812, abs=1e-12)  # h(0.1)
    above, below = m["binning"]["above"], m["binning"]["below"]
    assert [e["n"] for e in above] == SMALL_01["n_values"]
    assert above[-1]["p_error"] < above[0]["p_error"] and below[-1]["p_error"] > below[0]["p_error"]
    assert all(e["trials"] == SMALL_01["trials"] for e in above + below)


def test_notebook_03_multimodal_side_information(notebook_runner):
    m = notebook_runner("notebooks/03_multimodal_side_information.ipynb", **SMALL_03)
    assert_all_claims_hold(m)
    assert len(m["claims"]) >= 15
    # the slider was really swept, and dR grows linearly with r
    d_r = [s["I(X;T|V_X)"] for s in m["sweep"]]
    assert d_r[0] == pytest.approx(0.0, abs=1e-12)
    assert d_r[2] == pytest.approx(2 * d_r[1], rel=1e-9)
    assert {s["n"] for s in m["estimators"]} == set(SMALL_03["sample_sizes"])
