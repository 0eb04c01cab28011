"""Notebook 10's library (mdic_lab.experiments.fusion_study): parallax attention on stereo pairs with
parameter-free Q/K, the mixed fusion / text sweep spec, the arm adapter of the BD bootstrap, TACO's caption bits."""

import json
import math

import numpy as np
import pytest
import torch

from mdic_lab.experiments import fusion_study as fs
from mdic_lab.experiments.ablation_tables import bootstrap_bd
from mdic_lab.experiments.sweep import SweepSpecError, load_spec

torch.set_num_threads(1)


def _texture(h=24, w=40, seed=0):
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- parallax attention
def test_patch_descriptors_score_ncc_and_zero_flat_patches():
    img = _texture()
    q = fs.patch_descriptors(img, 5, 9.0)
    assert q.shape == (1, 75, 24, 40) and q.dtype == torch.float64
    torch.testing.assert_close((q * q).sum(1), torch.full((1, 24, 40), 9.0, dtype=torch.float64))  # τ·NCC(p, p) = τ
    flat = fs.patch_descriptors(torch.full((3, 8, 8), 0.5), 3, 9.0)
    assert float(flat[..., 1:-1, 1:-1].abs().max()) == 0.0  # no texture: a zero descriptor (the zero padding
    assert float(flat[..., 0, 0].abs().max()) > 0  # at the border is an edge)
    with pytest.raises(ValueError, match="odd int"):
        fs.patch_descriptors(img, 4)
    with pytest.raises(ValueError, match="temperature"):
        fs.patch_descriptors(img, 3, 0.0)


@pytest.mark.parametrize("axis", ["horizontal", "vertical"])
def test_shifted_copy_is_recovered_by_hpa_and_vpa(axis):
    r = fs.shift_recovery(_texture(), 4, axis, patch=5)
    assert r["recovered"] == 1.0 and r["n_scored"] > 300
    assert 0.0 <= r["consistency_min"] and r["consistency_max"] <= 1.0 + 1e-9  # Lemmas 1–2
    with pytest.raises(ValueError, match="shift must be"):
        fs.shift_recovery(_texture(), 0, axis)
    with pytest.raises(ValueError, match="unknown parallax axis"):
        fs.shift_recovery(_texture(), 2, "diagonal")


def _warp_error(pair):
    """Mean |left(v, u) − right(v, u − d)| over valid pixels, with the known d and with d = 0."""
    h, w = pair.disparity.shape
    cols = np.clip(np.round(np.arange(w)[None, :] - pair.disparity).astype(int), 0, w - 1)
    left, right = pair.left.permute(1, 2, 0).numpy(), pair.right.permute(1, 2, 0).numpy()
    warped = right[np.arange(h)[:, None], cols]
    err = np.abs(left - warped).mean(-1)[pair.valid].mean()
    return err, np.abs(left - right).mean(-1)[pair.valid].mean()


@pytest.mark.parametrize("source", ["synthetic", "motorcycle"])
def test_known_disparity_maps_left_pixels_onto_their_right_matches(source):
    pair = fs.stereo_pair(source, size=(64, 128))
    assert pair.left.shape == pair.right.shape == (3, 64, 128)
    assert pair.disparity.shape == pair.valid.shape == (64, 128) and 0.5 < pair.valid.mean() < 1.0
    with_d, without = _warp_error(pair)
    assert with_d < 0.5 * without, (with_d, without)  # the sign and the scale of d are right


def test_parameter_free_opam_finds_the_disparity_and_keeps_lemmas():
    pair = fs.synthetic_pair(0, size=(64, 128))
    out = fs.parameter_free_opam(pair.left, pair.right, patch=7, temperature=100.0)
    torch.testing.assert_close(out.consistency, out.horizontal.consistency * out.vertical.consistency)  # Eq. 23
    lo, hi = fs.consistency_range(out.horizontal.consistency, out.vertical.consistency, out.consistency)
    assert lo >= 0.0 and hi <= 1.0 + 1e-9
    d = fs.disparity_from_attention(out.horizontal.attention, 64, 128)
    acc = fs.disparity_accuracy(d, pair.disparity, pair.valid)
    assert acc["within_tol"] > 0.5 > 10 * acc["chance"]
    right = (np.abs(d - pair.disparity) <= 1)[pair.valid]
    assert fs.auc(out.consistency[0, 0].numpy()[pair.valid], right) > 0.5  # C is higher on right matches
    with pytest.raises(ValueError, match="attention must be"):
        fs.disparity_from_attention(out.vertical.attention, 64, 128)


def test_untrained_opam_is_seeded_without_touching_the_global_rng():
    pair = fs.synthetic_pair(0, size=(32, 64))
    state = torch.random.get_rng_state()
    a = fs.untrained_opam(pair.left, pair.right, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    b = fs.untrained_opam(pair.left, pair.right, seed=3)
    torch.testing.assert_close(a.consistency, b.consistency)
    assert float(a.consistency.min()) >= 0 and float(a.consistency.max()) <= 1 + 1e-6


def test_auc_and_accuracy_inputs():
    assert fs.auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0 and math.isnan(fs.auc([1, 2], [1, 1]))
    with pytest.raises(ValueError, match="shapes differ"):
        fs.disparity_accuracy(np.zeros((2, 3)), np.zeros((2, 4)), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="unknown stereo pair"):
        fs.stereo_pair("kitti")


def test_trained_model_fusion_attention_at_the_latent_grid():
    from mdic_lab.models.baselines.ndic import NDIC
    from mdic_lab.registry import resolve

    torch.manual_seed(0)
    model = NDIC(resolve("ndic", "smoke", overrides={"fusion": "opam"}).model).eval()
    out = fs.ndic_fusion_attention(model, torch.rand(3, 64, 128), torch.rand(3, 64, 128))
    assert out.consistency.shape == (1, 1, 4, 8)
    assert float(out.consistency.min()) >= 0 and float(out.consistency.max()) <= 1 + 1e-6
    with pytest.raises(ValueError, match="no OPAM fusion"):
        fs.ndic_fusion_attention(NDIC(resolve("ndic", "smoke").model), torch.rand(3, 64, 128), torch.rand(3, 64, 128))


# ----------------------------------------------------------------------------- the sweep spec
def test_mixed_spec_puts_taco_and_opam_cells_next_to_mdic_variants():
    """The ablation sweep accepts the fusion choice and the new codecs: one grid, the right cells."""
    spec = load_spec({"name": "mixed", "grid": {
        "codec": ["mdic", "ndic", "taco"], "preset": "smoke", "variant": {"mdic": ["full", "no_text"]},
        "rate_point": [0], "seed": [0],
        "overrides": {"ndic": {"fusion": ["concat", "opam"]}, "mdic": {"g1_fusion": ["transformer", "opam"]}}},
        "eval": {"limit": 2}})
    got = sorted((c.codec, c.variant, json.dumps(c.overrides, sort_keys=True)) for c in spec.cells)
    assert got == sorted([
        ("mdic", "full", '{"g1_fusion": "transformer"}'), ("mdic", "full", '{"g1_fusion": "opam"}'),
        ("mdic", "no_text", '{"g1_fusion": "transformer"}'), ("mdic", "no_text", '{"g1_fusion": "opam"}'),
        ("ndic", "full", '{"fusion": "concat"}'), ("ndic", "full", '{"fusion": "opam"}'), ("taco", "full", "{}")])
    runs = {(c.codec, c.variant, json.dumps(c.overrides, sort_keys=True)): c.resolve() for c in spec.cells}
    assert runs[("mdic", "no_text", '{"g1_fusion": "opam"}')].model.g1_fusion == "opam"
    assert runs[("ndic", "full", '{"fusion": "opam"}')].model.fusion == "opam"
    # the default fusion is the paper's model: the same cell id as a grid without the field
    plain = load_spec({"name": "mixed", "grid": {"codec": ["ndic"], "preset": "smoke", "rate_point": [0]},
                       "eval": {"limit": 2}})
    concat = next(c for c in spec.cells if c.overrides == {"fusion": "concat"})
    assert concat.cell_id == plain.cells[0].cell_id
    assert {fs.arm_of(c.codec, c.overrides) for c in spec.cells} == {
        "mdic+transformer", "mdic+opam", "ndic+concat", "ndic+opam", "taco"}


def test_unknown_fusion_and_codec_are_refused_before_training():
    with pytest.raises(SweepSpecError, match=r"unknown fusion 'sum'.*expected one of: concat, opam"):
        load_spec(fs.fusion_sweep_spec(codecs=("ndic",), ndic_fusions=("concat", "sum")))
    with pytest.raises(SweepSpecError, match=r"unknown g1_fusion 'opm'.*expected one of: transformer, opam"):
        load_spec(fs.fusion_sweep_spec(codecs=("mdic",), g1_fusions=("opm",)))
    with pytest.raises(KeyError, match="unknown codec 'tacoo'.*expected one of"):
        fs.fusion_sweep_spec(codecs=("tacoo",))
    with pytest.raises(KeyError, match="the study sets itself"):
        fs.fusion_sweep_spec(codecs=("ndic",), overrides={"ndic": {"lmbda": 0.1}})
    with pytest.raises(KeyError, match="not in codecs"):
        fs.fusion_sweep_spec(codecs=("ndic",), overrides={"taco": {"steps": 3}})


def test_study_spec_and_sample_spec_load():
    spec = load_spec(fs.fusion_sweep_spec(lambdas=(0.0001, 0.0025), codebooks=(16, 64), n_eval=2,
                                          overrides={"ndic": {"steps": 5}}))
    arms = [fs.arm_of(c.codec, c.overrides) for c in spec.cells]
    assert {a: arms.count(a) for a in fs.ARMS} == {a: 2 for a in fs.ARMS}
    assert all(c.resolve().train.steps == 5 for c in spec.cells if c.codec == "ndic")
    assert sorted(c.overrides["codebook_size"] for c in spec.cells if c.codec == "mdic") == [16, 16, 64, 64]
    sample = load_spec("ablations/specs/fusion_and_text.toml")
    arms = [fs.arm_of(c.codec, c.overrides) + ("" if c.variant == "full" else f"/{c.variant}") for c in sample.cells]
    assert len(sample.cells) == 28 and {"taco", "ndic+opam", "mdic+opam", "mdic+opam/no_text"} <= set(arms)


# ----------------------------------------------------------------------------- rows → BD
def _rows(codec, overrides, bpp, psnr, caption_bpp=0.0, variant="full"):
    """Per-image rows of one cell per rate point, as images.csv holds them (text)."""
    out = []
    for rp, (b, q) in enumerate(zip(bpp, psnr)):
        ov = {**overrides, fs.RATE_KNOBS[codec]: [0.0001, 0.001, 0.01][rp]}
        for i in range(4):
            out.append({"codec": codec, "variant": variant, "rate_point": "", "seed": "0", "name": f"{i:05d}",
                        "overrides": json.dumps(ov), "bpp_coded": str(b * (1 + 0.05 * i) + caption_bpp),
                        "caption_bpp": str(caption_bpp), "psnr": str(q + 0.3 * i)})
    return out


def test_label_rows_feed_the_ablation_bootstrap_unchanged():
    rows = (_rows("ndic", {"fusion": "concat"}, [0.02, 0.04, 0.08], [20, 22, 24])
            + _rows("ndic", {"fusion": "opam"}, [0.02, 0.04, 0.08], [20.5, 22.4, 24.6])
            + _rows("hyperprior", {}, [0.03, 0.05, 0.09], [20, 22, 24])
            + _rows("taco", {}, [0.03, 0.05, 0.09], [20, 22, 24], caption_bpp=0.02)
            + _rows("mdic", {"g1_fusion": "opam"}, [0.02, 0.04, 0.08], [20, 22, 24], variant="no_text"))
    lab = fs.label_rows(rows)
    assert {r["arm"] for r in lab} == {"ndic+concat", "ndic+opam", "hyperprior", "taco", "mdic+opam/no_text"}
    assert {r["rate_label"] for r in lab if r["codec"] == "ndic"} == {"lmbda=0.0001", "lmbda=0.001", "lmbda=0.01"}
    table = {(r["test"], r["reference"], r["rate"]): r for r in fs.bd_table(lab, n_boot=200)}
    assert len(table) == 5  # the MDIC comparison has no transformer arm here: left out
    # the same numbers as the bootstrap on rows relabelled by hand (variant = arm, rate point = λ)
    by_hand = [{**r, "variant": r["arm"], "rate_point": r["rate_label"]} for r in lab]
    ref = bootstrap_bd(by_hand, "ndic+concat", "ndic+opam", "psnr", "rate", n_boot=200)
    got = table[("ndic+opam", "ndic+concat", "bpp_coded")]
    assert got["bd_rate"] == pytest.approx(ref["value"]) and got["bd_rate_low"] == pytest.approx(ref["ci_low"])
    assert got["bd_quality"] > 0 and got["bd_rate"] < 0 and got["interpolant"] == "pchip"
    # TACO's image bits are the hyperprior's: 0 % on image bits alone, > 0 with the caption counted
    assert table[("taco", "hyperprior", "bpp_image")]["bd_rate"] == pytest.approx(0.0, abs=1e-9)
    assert table[("taco", "hyperprior", "bpp_coded")]["bd_rate"] > 10
    finding = fs.bd_finding(got, "rate")
    assert finding["verdict"] == "ndic+opam needs fewer bits at equal quality" and finding["resolved"]
    assert "%" in finding["measured"] and finding["comparison"].startswith("ndic+opam vs ndic+concat")
    unresolved = {**got, "bd_rate_low": -1.0, "bd_rate_high": 2.0}
    assert fs.bd_finding(unresolved, "rate")["verdict"].startswith("not resolved")
    assert "| verdict |" in fs.format_findings([finding, fs.bd_finding(got, "quality")])
    md = fs.format_bd_table(fs.bd_table(lab, n_boot=50))
    assert md.count("\n") == 6 and "image bits alone" in md  # header, rule, 5 rows
    with pytest.raises(ValueError, match=r"unknown arm 'ndic\+sum'.*mdic\+opam/no_text"):
        fs.bd_table(lab, [("ndic+sum", "ndic+concat", "bpp_coded")])
    with pytest.raises(ValueError, match="fusion study knows"):
        fs.label_rows([{"codec": "jpeg"}])


def test_undefined_bd_becomes_an_undefined_finding_with_its_reason():
    rows = fs.label_rows(_rows("ndic", {"fusion": "concat"}, [0.02, 0.04], [20, 19])
                         + _rows("ndic", {"fusion": "opam"}, [0.02, 0.04], [20, 22]))
    row = fs.bd_table(rows, [("ndic+opam", "ndic+concat", "bpp_coded")], n_boot=50)[0]
    assert math.isnan(row["bd_rate"]) and "not strictly rising" in row["bd_rate_note"]
    finding = fs.bd_finding(row, "rate")
    assert finding["measured"] == "n/a" and not finding["resolved"]
    assert finding["verdict"].startswith("undefined:") and "not strictly rising" in finding["verdict"]


def test_caption_accounting_recomputes_the_caption_bytes():
    from mdic_lab.coding.caption import encode_caption
    from mdic_lab.data.main_captions import oracle_main_caption

    n = len(encode_caption(oracle_main_caption("test", 0, 1, (128, 256))))
    good = {"codec": "taco", "name": "00001", "caption_bytes": str(n), "caption_bpp": str(8 * n / (128 * 256)),
            "bpp_coded": "0.1"}
    other = {"codec": "mdic", "name": "00001", "caption_bytes": "0", "caption_bpp": "0", "bpp_coded": "0.05"}
    rep = fs.caption_accounting([good, other])
    assert rep["mismatches"] == [] and rep["taco_rows"] == 1 and rep["caption_bytes_mean"] == n
    bad = fs.caption_accounting([{**good, "caption_bytes": str(n - 1)}, {**other, "caption_bytes": "7"}])
    assert len(bad["mismatches"]) == 3  # the wrong count, its bpp, and caption bytes in an MDIC stream
