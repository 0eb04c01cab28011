"""Notebook 09 (BD-rate / BD-quality) runs headless and every claim holds."""

import pytest


def test_notebook_09_claims_hold(notebook_runner):
    m = notebook_runner("notebooks/09_bd_metrics.ipynb", n_points=4, rate_factor=1.3)
    assert m["claims"] and all(c["holds"] for c in m["claims"]), [c for c in m["claims"] if not c["holds"]]
    assert m["bd_rate_percent"] == pytest.approx(30.0, abs=1e-6)
    # the two readings of Eq. 37 differ on the example curves
    assert m["bd_quality_linear_rate_db"] > m["bd_quality_log_rate_db"] + 0.1
