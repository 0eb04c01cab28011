"""Notebook 10 (fusion by parallax attention, text at the encoder) runs headless with tiny parameters."""

import pytest

TINY = dict(codecs=["hyperprior", "taco", "ndic"], steps={"hyperprior": 2, "taco": 2, "ndic": 2},
            n_eval=2, n_boot=20, workers=1, pair_size=[64, 128], probe_columns=[20, 90])
#: claims that test the mechanism or the accounting: they hold whatever the training length
MECHANICAL = ("cycle consistency C^hor, C^ver, C lies in [0, 1]", "HPA recovers", "VPA recovers",
              "argmax of M_right→left finds the disparity of the synthetic pair",
              "cycle consistency flags the right matches", "one sweep spec holds the new arms",
              "every coded test image decodes", "TACO's coded bpp includes its caption bits")


def _check(m, arms):
    claims = m["claims"]
    assert claims and all(isinstance(c["holds"], bool) for c in claims)
    for start in MECHANICAL:
        hits = [c for c in claims if c["claim"].startswith(start)]
        assert len(hits) == 1 and hits[0]["holds"], (start, hits)
    assert set(m["curves"]) == set(arms)
    assert {(r["test"], r["reference"]) for r in m["bd"]} >= {("ndic+opam", "ndic+concat"), ("taco", "hyperprior")}
    bd_claims = [c for c in claims if " vs " in c["claim"]]
    assert len(bd_claims) == 2 * len(m["bd"])  # a BD-rate and a BD-quality claim per comparison
    assert m["caption"]["taco_rows"] > 0 and not m["caption"]["mismatches"]
    for key in ("synthetic", "motorcycle"):
        p = m["parallax"][key]
        assert p["accuracy"]["within_tol"] > 10 * p["accuracy"]["chance"]
        assert 0 <= p["consistency_range"][0] and p["consistency_range"][1] <= 1 + 1e-6


def test_notebook_10_tiny(notebook_runner):
    m = notebook_runner("notebooks/10_fusion_and_text.ipynb", **TINY)
    _check(m, ["hyperprior", "taco", "ndic+concat", "ndic+opam"])
    assert m["sweep"]["cells"] == 8 and m["trained_ndic_opam_consistency_range"] is not None


@pytest.mark.slow
def test_notebook_10_with_mdic(notebook_runner):
    m = notebook_runner("notebooks/10_fusion_and_text.ipynb", **{**TINY, "codecs": ["hyperprior", "taco", "ndic", "mdic"],
                                                                  "steps": {"hyperprior": 2, "taco": 2, "ndic": 2, "mdic": 2}})
    _check(m, ["hyperprior", "taco", "ndic+concat", "ndic+opam", "mdic+transformer", "mdic+opam"])
    assert {(r["test"], r["reference"]) for r in m["bd"]} >= {("mdic+opam", "mdic+transformer")}
