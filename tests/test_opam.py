"""OmniParallax attention (ParaHydra Appendix B, Eqs. 5–24) and the OPAM fusion in NDIC and MDIC's G1."""

import pytest
import torch

from mdic_lab.config import ConfigError, NDICConfig
from mdic_lab.models.baselines.opam import (
    HorizontalParallaxAttention,
    OmniParallaxAttention,
    OPAMFusion,
    VerticalParallaxAttention,
    full_attention_2d,
    parallax_attention,
)
from mdic_lab.registry import resolve

torch.set_num_threads(1)


def _maps(seed, b=2, c=8, h=5, w=7, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(b, c, h, w, generator=g) for _ in range(3)]


# ----------------------------------------------------------------------------- Lemmas 1–2, Eq. 7
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_cycle_consistency_lies_in_unit_interval(scale):
    """Lemma 1 (C^hor ≤ 1), Lemma 2 (C^ver ≤ 1), hence C = C^hor ⊙ C^ver ∈ [0, 1] (Eq. 23)."""
    q, k, v = _maps(0, scale=scale)
    for axis in ("horizontal", "vertical"):
        c = parallax_attention(q, k, v, axis).consistency
        assert c.shape == (2, 1, 5, 7) and float(c.min()) >= 0.0 and float(c.max()) <= 1.0 + 1e-6, axis
    torch.manual_seed(0)
    with torch.no_grad():
        out = OmniParallaxAttention(8)(q, k)
    torch.testing.assert_close(out.consistency, out.horizontal.consistency * out.vertical.consistency)
    assert float(out.consistency.min()) >= 0.0 and float(out.consistency.max()) <= 1.0 + 1e-6
    c2d = full_attention_2d(q, k, v).consistency
    assert float(c2d.min()) >= 0.0 and float(c2d.max()) <= 1.0 + 1e-6


def test_uniform_attention_gives_consistency_one_over_the_line_length():
    """Q = 0: every row of M_{v→u} and M_{u→v} is 1/W (1/H), so C = W · (1/W)² = 1/W (Eq. 9 / 17)."""
    _, k, v = _maps(1)
    q = torch.zeros_like(k)
    hor, ver = parallax_attention(q, k, v, "horizontal"), parallax_attention(q, k, v, "vertical")
    torch.testing.assert_close(hor.consistency, torch.full_like(hor.consistency, 1 / 7))
    torch.testing.assert_close(ver.consistency, torch.full_like(ver.consistency, 1 / 5))


def test_attention_rows_sum_to_one():
    """Eq. 7 / 15: both maps are softmaxes over the last axis; shapes (BH, W, W) and (BW, H, H)."""
    q, k, v = _maps(2, scale=3.0)
    for axis, shape in (("horizontal", (2 * 5, 7, 7)), ("vertical", (2 * 7, 5, 5))):
        out = parallax_attention(q, k, v, axis)
        for m in (out.attention, out.attention_back):
            assert m.shape == shape and float(m.min()) >= 0
            torch.testing.assert_close(m.sum(-1), torch.ones(shape[:2]))
    m2d = full_attention_2d(q, k, v).attention
    torch.testing.assert_close(m2d.sum(-1), torch.ones(2, 35))


# ----------------------------------------------------------------------------- recovering a shift
@pytest.mark.parametrize("axis,dim,shift", [("horizontal", -1, 3), ("vertical", -2, 2)])
def test_shifted_copy_is_recovered_along_its_axis(axis, dim, shift):
    """A copy of f_u shifted by s along the attention's axis: M_{v→u}[i] peaks at i + s, the aligned map is f_u."""
    g = torch.Generator().manual_seed(3)
    f_u = 2.0 * torch.randn(2, 32, 6, 9, generator=g)
    f_v = torch.roll(f_u, shifts=shift, dims=dim)  # f_v[j] = f_u[j - s]
    out = parallax_attention(f_u, f_v, f_v, axis)  # Q = f_u, K = V = f_v (no SKM: the raw correlation)
    n = f_u.shape[dim]
    expected = (torch.arange(n) + shift) % n
    assert torch.equal(out.attention.argmax(-1), expected.expand(out.attention.shape[:2]))
    torch.testing.assert_close(out.aligned, f_u, atol=1e-3, rtol=0)
    assert float(out.consistency.min()) > 0.999  # a clean one-to-one match is cycle-consistent
    # the other direction cannot see this shift: its lines hold other pixels of f_u
    other = parallax_attention(f_u, f_v, f_v, "vertical" if axis == "horizontal" else "horizontal")
    assert float((other.aligned - f_u).abs().mean()) > 0.5


def test_two_stages_compose_as_eq24():
    """f_l^ver[b,:,i,j] = Σ_g Σ_s M^ver[bW+j, i, g] M^hor[bH+g, j, s] f_r[b,:,g,s] (Eq. 24)."""
    torch.manual_seed(0)
    opam = OmniParallaxAttention(6)
    f_l, f_r, _ = _maps(4, b=2, c=6, h=4, w=5)
    out = opam(f_l, f_r)
    b, _, h, w = f_l.shape
    m_hor = out.horizontal.attention.reshape(b, h, w, w)  # [b, g, j, s]
    m_ver = out.vertical.attention.reshape(b, w, h, h)  # [b, j, i, g]
    expected = torch.einsum("bjig,bgjs,bcgs->bcij", m_ver, m_hor, f_r)
    torch.testing.assert_close(out.aligned, expected, atol=1e-5, rtol=1e-5)
    assert isinstance(opam.hpa, HorizontalParallaxAttention) and isinstance(opam.vpa, VerticalParallaxAttention)


# ----------------------------------------------------------------------------- the fusion block
def test_fusion_block_shape_gradients_and_bad_inputs():
    torch.manual_seed(0)
    fuse = OPAMFusion(main_channels=12, side_channels=4, out_channels=16, channels=8)
    main, side = torch.randn(2, 12, 4, 6), torch.randn(2, 4, 4, 6)
    y = fuse(main, side)
    assert y.shape == (2, 16, 4, 6)
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fuse.parameters())
    with pytest.raises(ValueError, match=r"side must be a \(B, 4, H, W\) tensor, got \(2, 5, 4, 6\)"):
        fuse(main, torch.randn(2, 5, 4, 6))
    with pytest.raises(ValueError, match="must share B, H and W"):
        fuse(main, torch.randn(2, 4, 4, 5))
    with pytest.raises(ValueError, match="unknown parallax axis 'diagonal' .expected one of: horizontal, vertical"):
        parallax_attention(main, main, main, "diagonal")
    with pytest.raises(ValueError, match="out_channels must be a positive int"):
        OPAMFusion(4, 4, 0)


# ----------------------------------------------------------------------------- configs
def test_defaults_are_unchanged_and_unknown_fusions_refused():
    from mdic_lab.models.mdic import MDICConfig
    from mdic_lab.models.mdic.mgsism import G1Fusion, G1OPAMFusion, build_g1

    # the default leaves the config record, and so every hash / model id / run folder, as it was
    assert "fusion" not in NDICConfig().to_dict() and NDICConfig().hash() == "0da0bee9"
    assert resolve("ndic", "smoke").model.hash() == "8e7faa4d"
    assert "g1_fusion" not in MDICConfig().to_dict()
    opam = NDICConfig(fusion="opam")
    assert opam.to_dict()["fusion"] == "opam" and NDICConfig.from_dict(opam.to_dict()) == opam
    assert opam.hash() != NDICConfig().hash()
    smoke = MDICConfig.preset("smoke")
    assert isinstance(build_g1(smoke, 4, 32), G1Fusion)
    assert isinstance(build_g1(smoke.replace(g1_fusion="opam"), 4, 32), G1OPAMFusion)
    with pytest.raises(ConfigError, match=r"unknown fusion 'sum' of NDICConfig \(expected one of: concat, opam\)"):
        NDICConfig(fusion="sum")
    with pytest.raises(ConfigError, match=r"unknown fusion 'attn'"):
        resolve("ndic", "smoke", overrides={"fusion": "attn"})
    with pytest.raises(ConfigError, match=r"unknown g1_fusion 'opm' \(expected one of: transformer, opam\)"):
        smoke.replace(g1_fusion="opm")


# ----------------------------------------------------------------------------- the codecs
def test_ndic_with_opam_trains_and_codes_through_the_run_stack(tmp_path):
    from mdic_lab.data.synthetic import SyntheticStereo
    from mdic_lab.runs.coding import compress_image, decompress_stream, load_run
    from mdic_lab.runs.train import train_run

    run = resolve("ndic", "smoke", overrides={"fusion": "opam", "steps": 2, "ckpt_every": 2})
    train_run(run, tmp_path / "run", progress=False)
    model, loaded, _ = load_run(tmp_path / "run")
    assert loaded.model.fusion == "opam" and isinstance(model.fusion, OPAMFusion)
    item = SyntheticStereo("test", size=(64, 128), length=1)[0]
    x, y = item["left"][None], item["right"][None]
    data, info = compress_image(tmp_path / "run", x)
    assert info["bytes"] == len(data) > 0 and info["bpp_coded"] == 8 * len(data) / (64 * 128)
    x_hat, _ = decompress_stream(tmp_path / "run", data, y)
    with torch.no_grad():
        ref = model(x, y, mode="dequantize")["x_hat"]
    assert torch.equal(x_hat, ref)  # the decoder reproduces the training graph's dequantized output exactly
    other, _ = decompress_stream(tmp_path / "run", data, torch.flip(y, dims=[-1]))
    assert not torch.equal(other, x_hat)  # the side image reaches x̂ through OPAM


def test_mdic_with_opam_g1_trains_and_codes():
    from mdic_lab.models.mdic import MDICConfig
    from mdic_lab.models.mdic.mgsism import G1OPAMFusion
    from mdic_lab.models.mdic.model import MDIC

    cfg = MDICConfig.preset("smoke", g1_fusion="opam")
    torch.manual_seed(0)
    m = MDIC(cfg).train()
    assert isinstance(m.g1, G1OPAMFusion)
    with torch.no_grad():  # the condition filters of conv_in start at zero; a trained model's are not
        torch.nn.init.normal_(m.backbone.unet.conv_in.weight, std=0.3)
    g = torch.Generator().manual_seed(0)
    h, w = cfg.image_size
    batch = {"left": torch.rand(2, 3, h, w, generator=g), "right": torch.rand(2, 3, h, w, generator=g),
             "caption": ["a red car next to a tree", "two people on a road"],
             "masked_caption": ["a red [MASK] next to a [MASK]", "two [MASK] on a road"], "noun_targets": [[1, 3], [2]]}
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    out = m(batch, generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    grads = [p.grad for p in m.g1.parameters()]
    assert all(gr is not None for gr in grads) and sum(float(gr.abs().sum()) for gr in grads) > 0
    opt.step()
    m.eval()
    c = m.compress(batch["left"][:1])
    _, _, vq_x = m.encode_x(batch["left"][:1])
    assert torch.equal(m.decode_indices(c["strings"]), vq_x.indices)  # the bits decode exactly
    a = m.decompress(c["strings"], batch["right"][:1], batch["caption"][:1], seed=0, num_inference_steps=2)
    b = m.decompress(c["strings"], batch["right"][:1], batch["caption"][:1], seed=0, num_inference_steps=2)
    assert a.shape == (1, 3, h, w) and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1
    with torch.no_grad():
        zx_hat = m.vq.lookup(m.decode_indices(c["strings"]))  # ẑ_x as the decoder has it
        p1 = m.decoder_side(zx_hat, batch["right"][:1], batch["caption"][:1], stochastic=False)
        p2 = m.decoder_side(zx_hat, batch["left"][:1], batch["caption"][:1], stochastic=False)
    assert not torch.equal(p1["zxc"], p2["zxc"])  # ẑ_xc depends on the side latent through OPAM
