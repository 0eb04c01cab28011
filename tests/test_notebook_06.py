"""Notebook 06 (practical Wyner–Ziv) runs with small parameters; every claim holds."""

from tests.notebook_claims import assert_all_claims_hold

SMALL_06 = dict(
    target_rates=[0.5, 1.0, 2.0],
    coset_grid=[2, 4, 8],
    n_grid=32,
    n_samples=5000,
    high_rate=3.0,
    ldpc_targets=[1.0],
    ldpc_block=1000,
    ldpc_levels=50,
    ldpc_n=1000,
    lams_marginal=[40.0],
    lams_conditional=[100.0],
    train_steps=120,
    n_indices=8,
    n_features=32,
    learned_restarts=1,
    n_test=5000,
    lloyd_n_x=201,
    lloyd_y_per_s=3,
    lloyd_n_lams=4,
    lloyd_cosets=[1, 2, 4],
    lloyd_steps_in_s=[1.0, 2.0],
    gap_table_rhos=[0.0, 0.95],
    gap_table_n_x=201,
    gap_table_y_per_s=3,
    gap_table_n_lams=4,
    gap_table_rates=[1.0],
)


def test_notebook_06_practical_wyner_ziv(notebook_runner):
    m = notebook_runner("notebooks/06_practical_wyner_ziv.ipynb", **SMALL_06)
    assert len(m["claims"]) >= 10
    assert_all_claims_hold(m)
    assert abs(m["high_rate_gap_db"] - m["scalar_quantizer_gap_db"]) < 0.05
    methods = {r["method"] for r in m["rows"]}
    assert {"nested_ideal_sw", "nested_marginal", "nested_ldpc_sw", "learned_marginal",
            "learned_conditional"} <= methods
    # every row carries a coded rate next to its entropy
    assert all(r["rate_coded"] is not None for r in m["rows"])
    assert m["targets"], "targets table missing"
    # the one-shot optimum: a gap-vs-rho table, and the learned points measured against it
    assert {(r["rho"], r["rate"]) for r in m["gap_table"]} == {(0.0, 1.0), (0.95, 1.0)}
    g = {r["rho"]: r["gap_marginal_db"] for r in m["gap_table"]}
    assert g[0.0] < g[0.95]  # stronger side information, larger one-shot loss
    assert any(r.get("lloyd_gap_db") is not None for r in m["rows"] if r["method"] == "learned_marginal")
