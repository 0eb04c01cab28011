"""benchmarks/slepian_wolf.py end to end on a tiny run: the rows and fields it promises."""

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "slepian_wolf.py"


def test_quick_benchmark_rows_have_error_bars_and_finite_length_bounds(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--quick", "--decoders", "ours", "--p", "0.1",
                                      "--bits", "1e4", "--fixed-at", "mean"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert done.value.code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finite = [r for r in rows if r.get("kind") == "finite_length"]
    adaptive = [r for r in rows if r.get("mode") == "adaptive"]
    fixed = [r for r in rows if r.get("mode") == "fixed_operating_point"]
    assert len(finite) == len(adaptive) == len(fixed) == 1
    f, a, x = finite[0], adaptive[0], fixed[0]
    # a smaller block error costs rate; achievability never below the converse
    assert 1.0 < f["converse_ratio"][0] < f["converse_ratio"][1] < f["converse_ratio"][2]
    assert all(c <= r for c, r in zip(f["converse_ratio"], f["random_linear_ratio"]))
    assert a["crc_bits"] == 16 and 0 < a["ratio_ci95"] < 0.5
    assert 0.0 <= x["block_error_rate"] <= 1.0 and x["block_errors"] >= x["failures"]
    assert 0.0 <= x["converse_block_error"] <= 1.0
    if 0 < x["block_error_rate"] < 1:  # no code beats the converse at the error rate it had
        assert x["converse_ratio_at_block_error"] <= x["ratio"]
