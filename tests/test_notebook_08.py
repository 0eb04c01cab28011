"""Notebook 08 (MDIC tour) runs headless with a smoke model and its codec claims hold; its default
(a lab model trained once, about 70 s on a free 2-core machine, then reused) holds every claim (slow)."""

import pytest

from tests.notebook_claims import assert_all_claims_hold


def test_notebook_08_smoke(notebook_runner, tmp_path):
    m = notebook_runner("notebooks/08_mdic_tour.ipynb", preset="smoke", train_steps=2, train_length=4,
                        num_inference_steps=2)
    claims = {c["claim"]: c for c in m["claims"]}
    assert len(claims) == 5 and all(c["holds"] is True for c in claims.values()), claims
    assert m["num_inference_steps"] == 2 and m["variant"] == "full" and m["preset"] == "smoke"
    # the coded rate comes from the bytes: 8 · bytes / (H · W) for the 32×64 smoke images
    assert m["image_size"] == [32, 64] and m["bpp_coded"] == 8 * m["coded_bytes"] / (32 * 64)
    assert 0 < m["bpp_payload"] < m["bpp_coded"] and 0 <= m["mask_fraction"] <= 1
    assert 0 <= m["mask_agreement"]["keep_fraction"] <= 1 and m["psnr_vae"] > 0 and m["psnr_side_view"] > 0
    # the model was trained into a cache folder under output_dir, named by its config
    run_dir = tmp_path / "08_mdic_tour" / "runs"
    assert [p.parent for p in run_dir.glob("mdic-smoke-*/checkpoint.pt")] == [run_dir / m["run_dir"].split("/")[-1]]


@pytest.mark.slow
def test_notebook_08_defaults_lab_model(notebook_runner, tmp_path):
    """The README's course command runs this notebook on its defaults: a lab model at 128×256, trained
    once; the next run (another pair) reuses it."""
    m = notebook_runner("notebooks/08_mdic_tour.ipynb")
    assert_all_claims_hold(m)
    assert m["preset"] == "lab" and m["image_size"] == [128, 256] and m["num_inference_steps"] == 10
    assert m["ms_ssim"] is not None and m["psnr"] > m["psnr_side_view"]  # the bits move I_y's view to I_x's
    checkpoint = next((tmp_path / "08_mdic_tour" / "runs").glob("mdic-lab-*/checkpoint.pt"))
    stamp = checkpoint.stat().st_mtime_ns
    again = notebook_runner("notebooks/08_mdic_tour.ipynb", pair_index=1)
    assert checkpoint.stat().st_mtime_ns == stamp and again["run_dir"] == m["run_dir"]
    assert_all_claims_hold(again)
