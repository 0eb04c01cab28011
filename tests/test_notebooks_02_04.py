"""Notebooks 02 (Wyner–Ziv, Berger–Tung) and 04 (Wyner common information, NDIC's argument)
run with small parameters and every claim of their claims tables holds."""

import pytest

from toy_sources.bounds import binary_entropy, wyner_common_information_dsbs

from tests.notebook_claims import assert_all_claims_hold

SMALL_02 = dict(n_D=5, n_restarts=4, gauss_grid=21, n_D_gauss=2, p_values=[0.1, 0.3])
SMALL_04 = dict(n_grid=15, n_D=4, n_restarts=4)


def test_notebook_02_wyner_ziv(notebook_runner):
    m = notebook_runner("notebooks/02_wyner_ziv.ipynb", **SMALL_02)
    assert_all_claims_hold(m)
    assert len(m["claims"]) >= 15
    b = m["binary"]
    assert len(b["D"]) == SMALL_02["n_D"] and b["max_abs_error"] < 1e-3
    assert all(r > c for r, c in zip(b["wz_solver"], b["cond_closed"]))  # the rate loss
    assert m["berger_tung"]["r1_min"] == pytest.approx(0.46299970927811135, abs=1e-12)  # 1/2 log2(0.19/0.1)


def test_notebook_04_common_information(notebook_runner):
    m = notebook_runner("notebooks/04_common_information.ipynb", **SMALL_04)
    assert_all_claims_hold(m)
    assert len(m["claims"]) >= 15
    ci = m["common_information"]
    assert ci["dsbs"] == pytest.approx(wyner_common_information_dsbs(0.1), abs=1e-12)
    assert ci["dsbs_built"] == pytest.approx(ci["dsbs"], abs=1e-9)
    assert ci["dsbs"] > 1 - binary_entropy(0.1)  # C > I
    wz = m["wyner_ziv"]
    assert len(wz["D"]) == SMALL_04["n_D"]
    assert all(y >= w - 1e-3 for y, w in zip(wz["X|Y"], wz["X|W"]))
