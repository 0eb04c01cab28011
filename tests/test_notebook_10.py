"""Notebook 10 (fusion by parallax attention, text at the encoder) runs headless with tiny parameters.

The fast run sweeps NDIC alone (concat and OPAM fusion, 4 cells of 2 steps): the whole notebook
path, the parallax section, the sweep, the BD table and the claims.  The slow run adds the
hyperprior, TACO and MDIC (12 cells).  The library behind it is tested in test_fusion_study.py.
"""

import pytest

TINY = {"codecs": ["ndic"], "steps": {"ndic": 2}, "n_eval": 2, "n_boot": 20, "workers": 1, "threads": 1,
        "pair_size": [64, 128], "probe_columns": [20, 90]}
#: claims that test the mechanism or the accounting: they hold whatever the training length
MECHANICAL = ("cycle consistency C^hor, C^ver, C lies in [0, 1]", "HPA recovers", "VPA recovers",
              "argmax of M_right→left finds the disparity of the synthetic pair",
              "cycle consistency flags the right matches", "one sweep spec holds the new arms",
              "every coded test image decodes")


def _check(m, arms, taco):
    claims = m["claims"]
    assert claims and all(isinstance(c["holds"], bool) for c in claims)
    for start in MECHANICAL + (("TACO's coded bpp includes its caption bits",) if taco else ()):
        hits = [c for c in claims if c["claim"].startswith(start)]
        assert len(hits) == 1 and hits[0]["holds"], (start, hits)
    assert set(m["curves"]) == set(arms)
    assert ("ndic+opam", "ndic+concat") in {(r["test"], r["reference"]) for r in m["bd"]}
    assert not [c for c in claims if " vs " in c["claim"]]  # BD results are findings with a verdict, not claims
    assert len(m["bd_findings"]) == 2 * len(m["bd"])  # a BD-rate and a BD-quality finding per comparison
    assert all(f["verdict"] for f in m["bd_findings"])
    assert m["trained_ndic_opam_consistency_range"][0] >= 0 and m["trained_ndic_opam_consistency_range"][1] <= 1 + 1e-6
    for key in ("synthetic", "motorcycle"):
        p = m["parallax"][key]
        assert p["accuracy"]["within_tol"] > 10 * p["accuracy"]["chance"]
        assert 0 <= p["consistency_range"][0] and p["consistency_range"][1] <= 1 + 1e-6


def test_notebook_10_tiny(notebook_runner):
    m = notebook_runner("notebooks/10_fusion_and_text.ipynb", **TINY)
    _check(m, ["ndic+concat", "ndic+opam"], taco=False)
    assert m["sweep"]["cells"] == 4 and m["caption"] is None


@pytest.mark.slow
def test_notebook_10_every_codec(notebook_runner):
    codecs = ["hyperprior", "taco", "ndic", "mdic"]
    m = notebook_runner("notebooks/10_fusion_and_text.ipynb", **{**TINY, "codecs": codecs,
                                                                  "steps": dict.fromkeys(codecs, 2)})
    _check(m, ["hyperprior", "taco", "ndic+concat", "ndic+opam", "mdic+transformer", "mdic+opam"], taco=True)
    assert {("mdic+opam", "mdic+transformer"), ("taco", "hyperprior")} <= {(r["test"], r["reference"]) for r in m["bd"]}
    assert m["caption"]["taco_rows"] > 0 and not m["caption"]["mismatches"]
