"""Notebook 08 (MDIC tour) runs headless with a smoke model and its codec claims hold."""


def test_notebook_08_smoke(notebook_runner):
    m = notebook_runner("notebooks/08_mdic_tour.ipynb", preset="smoke", train_steps=2, train_length=4,
                        num_inference_steps=2)
    claims = {c["claim"]: c for c in m["claims"]}
    assert len(claims) == 5 and all(c["holds"] is True for c in claims.values()), claims
    assert m["num_inference_steps"] == 2 and m["variant"] == "full"
    # the coded rate comes from the bytes: 8 · bytes / (H · W) for the 32×64 smoke images
    assert m["bpp_coded"] == 8 * m["coded_bytes"] / (32 * 64)
    assert 0 < m["bpp_payload"] < m["bpp_coded"] and 0 <= m["mask_fraction"] <= 1
