"""Notebook 05 (practical Slepian–Wolf coding) runs with small parameters; its claims hold."""

import pytest


def test_notebook_05_claims_hold(notebook_runner, tmp_path, monkeypatch):
    monkeypatch.setenv("MDIC_LAB_CACHE", str(tmp_path / "cache"))  # PEG matrices built fresh
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    m = notebook_runner(
        "notebooks/05_practical_slepian_wolf.ipynb",
        n=500,
        levels=25,
        ps=[0.02, 0.08, 0.15],
        bits_per_p=3000,
        fixed_rate_level=13,
        waterfall_ps=[0.03, 0.08, 0.14],
        waterfall_bits=3000,
        block_lengths=[250, 2000],
        block_p=0.1,
        block_bits=4000,
        cycle_n=1000,
        cycle_levels=25,
        cycle_peg_level=5,
    )
    claims = {c["claim"]: c["holds"] for c in m["claims"]}
    assert len(claims) == 10
    failed = [c for c, ok in claims.items() if not ok]
    assert not failed, f"claims that do not hold: {failed}"
    # Hamming by hand: all 1024 cases, rate 3/7 = H(X|Y)
    assert m["hamming"]["errors"] == 0 and m["hamming"]["cases"] == 1024
    assert m["hamming"]["rate"] == pytest.approx(3 / 7)
    # the sweep is the real simulation: rates between the bound and 1, bits counted
    for r in m["rate_sweep"]:
        assert r["h_x_given_y"] < r["rate"] < 1.0
        assert r["bits"] >= 3000
    assert m["waterfall_rate"] == pytest.approx(13 / 25)
    assert [r["n"] for r in m["block_lengths"]] == [250, 2000]
    assert {t["target"][:14] for t in m["targets"]} == {"rate/H(X|Y) <="}
    # degree-2 cycles: counted per level for both constructions; none left where they were kept long
    cyc = m["degree2_cycles"]
    assert cyc["levels"][0] == 5 and sum(cyc["degree-2 cycles kept long"]) == 0
    assert len(cyc["plain PEG"]) == len(cyc["levels"])
    four = m["four_cycles"]
    assert four["levels"] == cyc["levels"] and len(four["every variable on merged checks"]) == len(four["levels"])
    assert four["every variable on merged checks"][0] < four["plain PEG"][0]
    # finite length: exact bounds for every (n, eps); a smaller block error costs rate at every n
    fl = m["finite_length"]
    assert fl["p"] == 0.02 and len(fl["table"]) == 7 * 3
    for nn in {r["n"] for r in fl["table"]}:
        ratios = [r["converse_ratio"] for r in fl["table"] if r["n"] == nn]
        assert 1.0 < ratios[0] < ratios[1] < ratios[2]
    assert all(r["converse_ratio"] <= r["random_linear_ratio"] for r in fl["table"])
    assert fl["waterfall_vs_converse"], "the waterfall should have points with 0 < block error < 1"
