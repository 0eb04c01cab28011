"""The one claims helper of the notebooks: rows, table, all_claims_hold, strict atomic metrics.json."""

import json
import math
import os

import numpy as np
import pytest

from mdic_lab import atomic
from mdic_lab.experiments.claims import Claims, to_json, write_metrics


def _claims(*holds):
    c = Claims()
    for i, h in enumerate(holds):
        c.add(f"claim {i}", "theory", "measured", h)
    return c


def test_rows_coerce_holds_to_bool_and_values_to_text():
    c = Claims()
    c.add("numpy bool", np.float64(0.5), np.int64(3), np.bool_(True))
    c.add("plain numbers", 0.1 + 0.2, 7, 0)
    c.add("extra field", "0 dB", "1.2 dB", 1, gap_db=1.2)
    rows = c.to_list()
    assert [type(r["holds"]) for r in rows] == [bool, bool, bool]
    assert [r["holds"] for r in rows] == [True, False, True]
    assert rows[0]["theory"] == "0.5" and rows[0]["measured"] == "3"
    assert rows[1]["theory"] == "0.3" and rows[1]["measured"] == "7"
    assert rows[2]["gap_db"] == 1.2 and list(rows[2])[:4] == ["claim", "theory", "measured", "holds"]
    assert len(c) == 3 and [r["claim"] for r in c] == ["numpy bool", "plain numbers", "extra field"]


@pytest.mark.parametrize("text", ["", "   ", None, 3])
def test_empty_claim_text_is_refused(text):
    with pytest.raises(ValueError, match="non-empty string"):
        Claims().add(text, "t", "m", True)


def test_ambiguous_holds_is_refused():
    with pytest.raises(TypeError, match="one truth value"):
        Claims().add("array", "t", "m", np.array([True, False]))


def test_all_hold_logic():
    assert _claims(True, True).all_hold is True
    assert _claims(True, False).all_hold is False
    assert Claims().all_hold is False  # an empty table is no evidence
    assert _claims(True, False, True).summary() == "2/3 claims hold"


def test_table_format():
    c = Claims()
    c.add("short", "<=", "0.1 <= 0.2", True)
    c.add("a longer claim text", "1", "2", False)
    lines = c.table(title="CLAIMS").splitlines()
    assert lines == [
        "CLAIMS",
        "claim               | theory | measured   | holds?",
        "--------------------+--------+------------+-------",
        "short               | <=     | 0.1 <= 0.2 | yes",
        "a longer claim text | 1      | 2          | NO",
    ]
    # a long measured value is printed whole; the column stays at max_width
    c.add("long", "t", "x" * 100, True)
    table = c.table(max_width=20).splitlines()
    assert table[0].index("| holds?") == table[1].rindex("+") == table[2].rindex("|")
    assert "x" * 100 + " | yes" in table[-1]
    assert Claims().table().splitlines()[0] == "claim | theory | measured | holds?"


def test_write_metrics_is_strict_json(tmp_path):
    c = _claims(True, True)
    path = write_metrics(tmp_path / "out", c, notebook="00_test", value=math.nan, inf=-math.inf,
                         arr=np.array([1.0, np.inf]), scalar=np.float32(0.25), n=np.int64(4),
                         flag=np.bool_(False), nested={"k": [np.nan, 1]}, targets=_claims(False))
    text = path.read_text()
    m = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert path == tmp_path / "out" / "metrics.json"
    assert list(m)[:3] == ["notebook", "claims", "all_claims_hold"]
    assert m["notebook"] == "00_test" and m["all_claims_hold"] is True
    assert m["value"] is None and m["inf"] is None and m["arr"] == [1.0, None]
    assert m["scalar"] == 0.25 and m["n"] == 4 and m["flag"] is False and m["nested"] == {"k": [None, 1]}
    assert m["claims"] == c.to_list()
    assert m["targets"][0]["holds"] is False  # a second Claims table is written as its rows
    assert _claims(True, False) and json.loads(
        write_metrics(tmp_path, _claims(True, False), notebook="x").read_text())["all_claims_hold"] is False


def test_write_metrics_is_atomic_and_leaves_no_tmp_file(tmp_path, monkeypatch):
    write_metrics(tmp_path, _claims(True), notebook="first")
    assert os.listdir(tmp_path) == ["metrics.json"]
    # a write that fails half-way leaves the previous file and no temporary file behind
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError, match="disk gone"):
        write_metrics(tmp_path, _claims(False), notebook="second")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert os.listdir(tmp_path) == ["metrics.json"]
    assert json.loads((tmp_path / "metrics.json").read_text())["notebook"] == "first"
    # unserialisable values fail before anything is written
    with pytest.raises(TypeError, match=r"metrics\['bad'\]: object is not JSON data"):
        write_metrics(tmp_path, _claims(True), notebook="third", bad=object())
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_write_metrics_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="written by write_metrics itself"):
        write_metrics(tmp_path, _claims(True), notebook="x", all_claims_hold=True)
    with pytest.raises(TypeError, match="Claims table"):
        write_metrics(tmp_path, [{"claim": "a", "holds": True}], notebook="x")
    with pytest.raises(ValueError, match="notebook's name"):
        write_metrics(tmp_path, _claims(True), notebook="")


def test_to_json_keys_and_containers():
    assert to_json({np.int64(1): (1, 2), "s": {3, 1}}) == {"1": [1, 2], "s": [1, 3]}
    with pytest.raises(TypeError, match="not a JSON key"):
        to_json({(1, 2): 0})
