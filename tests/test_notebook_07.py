"""Notebook 07 (neural DIC) runs headless with tiny parameters and writes honest metrics; its
defaults (the course command's run: 8 runs, about 4.5 CPU-minutes, 2.3 min on 2 free cores) make
every claim hold (slow)."""

import math

import pytest

from tests.notebook_claims import assert_all_claims_hold

TINY = {"lambdas": [0.001, 0.004], "steps": 2, "batch_size": 2, "crop": [64, 64], "N": 8, "M": 8, "C_w": 4,
        "train_length": 4, "n_eval": 2}


def test_notebook_07_tiny(notebook_runner):
    m = notebook_runner("notebooks/07_neural_dic.ipynb", **TINY)
    claims = {c["claim"]: c for c in m["claims"]}
    assert len(claims) == 6 and all(isinstance(c["holds"], bool) for c in claims.values())
    # claims that must hold whatever the training length
    assert claims["Gaussian WZ saving equals I(X;Y) at every D (no rate loss)"]["holds"]
    assert claims["decoding the real bitstream reproduces forward(mode='dequantize') exactly"]["holds"]
    assert claims["coded rate >= estimated rate (header + coder overhead)"]["holds"]
    assert math.isclose(m["wyner_ziv_saving_bits"], -0.5 * math.log2(1 - 0.9**2), rel_tol=1e-9)
    assert set(m["rd"]) == {"hyperprior", "ndic"}
    for rows in m["rd"].values():
        assert len(rows) == 2 and all(r["bpp_coded"] > r["bpp_estimated"] > 0 for r in rows)
        assert all(r["step"] == 2 for r in rows)
    assert len(m["motorcycle"]) == 4


@pytest.mark.slow
def test_notebook_07_defaults_all_claims_hold(notebook_runner):
    """The README's course command runs this notebook on its defaults: no claim may fail there."""
    m = notebook_runner("notebooks/07_neural_dic.ipynb")
    assert_all_claims_hold(m)
    assert len(m["claims"]) == 6
    assert m["bd_rate_psnr_percent"] < 0 and m["gain_low_db"] > m["gain_high_db"]
    for rows in m["rd"].values():
        assert len(rows) == 4 and all(r["step"] == 300 and r["n"] == 16 for r in rows)
