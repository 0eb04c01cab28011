"""benchmarks/slepian_wolf.py end to end on a tiny run: the rows and fields it promises."""

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "slepian_wolf.py"


def _run(monkeypatch, *args) -> int:
    """Run the benchmark as a script with these arguments; its exit code."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    return done.value.code


def test_quick_benchmark_rows_have_error_bars_and_finite_length_bounds(capsys, monkeypatch):
    assert _run(monkeypatch, "--quick", "--decoders", "ours", "--p", "0.1", "--bits", "1e4",
                "--fixed-at", "mean") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finite = [r for r in rows if r.get("kind") == "finite_length"]
    adaptive = [r for r in rows if r.get("mode") == "adaptive"]
    fixed = [r for r in rows if r.get("mode") == "fixed_operating_point"]
    assert len(finite) == len(adaptive) == len(fixed) == 1
    f, a, x = finite[0], adaptive[0], fixed[0]
    # a smaller block error costs rate; achievability never below the converse
    assert 1.0 < f["converse_ratio"][0] < f["converse_ratio"][1] < f["converse_ratio"][2]
    assert all(c <= r for c, r in zip(f["converse_ratio"], f["random_linear_ratio"]))
    assert a["crc_bits"] == 16 and 0 < a["ratio_ci95"] < 0.5 and a["crc_rejections"] >= 0
    # every block's BP iterations include those of its last (decoding) attempt
    assert a["iterations"] >= a["final_iterations"] > 0 and a["us_per_iteration"] > 0
    assert a["cpu_seconds"] == pytest.approx(
        a["us_per_iteration"] * 1e-6 * a["iterations"] * a["bits"] / a["n"])
    # the oracle decodes once per block at the level the ladder stopped at, from scratch
    assert 0.0 <= a["oracle_success_rate"] <= 1.0 and a["oracle_iterations"] > 0
    assert a["oracle_mbit_per_cpu_s"] > 0
    targets = [r for r in rows if r.get("kind") == "targets"][0]
    assert targets["max_oracle_mbit_per_cpu_s"] == a["oracle_mbit_per_cpu_s"]
    assert 0.0 <= x["block_error_rate"] <= 1.0 and x["block_errors"] >= x["failures"]
    assert 0.0 <= x["converse_block_error"] <= 1.0
    if 0 < x["block_error_rate"] < 1:  # no code beats the converse at the error rate it had
        assert x["converse_ratio_at_block_error"] <= x["ratio"]


def test_crc_bits_are_counted_in_the_rate_and_checked(capsys, monkeypatch):
    rates, rejected = {}, {}
    for bits in (0, 32):
        _run(monkeypatch, "--quick", "--decoders", "ours", "--p", "0.1", "--bits", "4e3", "--no-fixed",
             "--crc-bits", str(bits))
        row = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if json.loads(line).get("mode") == "adaptive"][0]
        assert row["crc_bits"] == bits
        rates[bits], rejected[bits] = row["rate"] * row["n"], row["crc_rejections"]
    # same blocks, same ladder: every block pays its CRC once; a 0-bit CRC catches no false
    # convergence (it may stop a block early), so the difference is 32 bits or more
    assert rejected[0] == 0
    assert rates[32] - rates[0] >= 32 - 1e-9
    if rejected[32] == 0:
        assert rates[32] - rates[0] == pytest.approx(32)
    assert _run(monkeypatch, "--quick", "--crc-bits", "40") == 2
    assert "--crc-bits must be in [0, 32]" in capsys.readouterr().err


def test_substeps_option_reaches_the_code_and_bad_values_are_refused(capsys, monkeypatch):
    assert _run(monkeypatch, "--quick", "--decoders", "ours", "--p", "0.1", "--bits", "4e3",
                "--no-fixed", "--substeps", "2") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["substeps"] for m in rows[0]["members"]] == [2]
    assert [r["substeps"] for r in rows if r.get("mode") == "adaptive"] == [2]
    for bad in ("0", "1000"):
        assert _run(monkeypatch, "--quick", "--substeps", bad) == 2
        assert "substeps must be an int" in capsys.readouterr().err
