"""MDIC modules: shapes, gradients, straight-through, bitstream round trip, ablation switches."""

import math

import numpy as np
import pytest
import torch

from mdic_lab.coding.errors import BitstreamError
from mdic_lab.models.mdic import VARIANTS, MDICConfig
from mdic_lab.models.mdic.entropy_model import AREntropyModel
from mdic_lab.models.mdic.hyperalign import HyperAlign
from mdic_lab.models.mdic.mgsism import G1Fusion, G2Gate
from mdic_lab.models.mdic.vmgm_ts import (
    IGNORE_INDEX, MaskGenerator, TextSupervision, gumbel_noise, straight_through_threshold, tokenize_masked_captions,
)
from mdic_lab.models.mdic.vq import VectorQuantizer

torch.set_num_threads(1)
TINY = MDICConfig.preset("tiny")


# ----------------------------------------------------------------------------- helpers
def make_model(variant="full", seed=0):
    """A tiny MDIC whose new conv_in filters are random (a trained model's are not zero)."""
    from mdic_lab.models.mdic.model import MDIC

    torch.manual_seed(seed)  # parameter init only
    m = MDIC(TINY.replace(variant=variant))
    with torch.no_grad():
        torch.nn.init.normal_(m.backbone.unet.conv_in.weight, std=0.3)
    return m


def make_batch(seed=0, b=2):
    g = torch.Generator().manual_seed(seed)
    h, w = TINY.image_size
    return dict(left=torch.rand(b, 3, h, w, generator=g), right=torch.rand(b, 3, h, w, generator=g),
                caption=["a red car next to a tree", "two people on a road"][:b],
                masked_caption=["a red [MASK] next to a [MASK]", "two [MASK] on a road"][:b],
                noun_targets=[[1, 3], [2]][:b])


@pytest.fixture(scope="module")
def full_model():
    return make_model("full").eval()


@pytest.fixture(scope="module")
def coded(full_model):
    batch = make_batch(1)
    return batch, full_model.compress(batch["left"])


# ----------------------------------------------------------------------------- config
def test_config_variants_and_errors():
    assert set(VARIANTS) == {"full", "no_text", "no_ts", "no_g1g2", "no_g2", "no_zd", "no_zd_zxc"}
    with pytest.raises(ValueError, match=r"unknown variant 'no_txt' \(expected one of: full, no_text"):
        MDICConfig(variant="no_txt")
    with pytest.raises(ValueError, match="unknown field 'codebok_size' of MDICConfig"):
        TINY.replace(codebok_size=3)
    with pytest.raises(TypeError, match="codebook_size expects an int"):
        TINY.replace(codebook_size="64")
    with pytest.raises(ValueError, match="mask_threshold"):
        TINY.replace(mask_threshold=1.5)
    with pytest.raises(ValueError, match="unknown preset"):
        MDICConfig.preset("huge")
    assert MDICConfig.from_dict(TINY.to_dict()) == TINY
    assert MDICConfig.preset("paper").mask_threshold == 0.2 and MDICConfig.preset("paper").lambda_mask == 0.1
    assert MDICConfig.preset("paper").num_inference_steps == 10


# ----------------------------------------------------------------------------- parts
def test_hyperalign_shape_and_grad():
    h = HyperAlign(4, 8, hidden=16, downsample=4, heads=2)
    z = torch.randn(2, 4, 16, 32, requires_grad=True)
    out = h(z)
    assert out.shape == (2, 8, 4, 8)
    out.square().mean().backward()
    assert z.grad.abs().sum() > 0 and all(p.grad is not None for p in h.parameters())
    with pytest.raises(ValueError, match="divisible"):
        h(torch.randn(1, 4, 6, 32))


def test_vq_nearest_codeword_and_loss():
    vq = VectorQuantizer(16, 3)
    z = torch.randn(2, 3, 4, 5)
    out = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    brute = torch.cdist(flat, vq.codebook.weight).argmin(1).reshape(2, 4, 5)
    assert torch.equal(out.indices, brute)
    e = vq.lookup(out.indices)
    torch.testing.assert_close(out.z_q, e)
    mse = ((z - e) ** 2).mean()  # Eq. 21: both terms have the same value, 2 × mse with weight 1
    torch.testing.assert_close(out.loss, 2 * mse)


def test_vq_straight_through_and_codebook_gradient():
    vq = VectorQuantizer(8, 2)
    z = torch.randn(1, 2, 3, 3, requires_grad=True)
    w = torch.randn(1, 2, 3, 3)
    out = vq(z)
    (out.z_q * w).sum().backward(retain_graph=True)
    torch.testing.assert_close(z.grad, w)  # straight-through: d ẑ / d z = identity
    z.grad = None
    vq.codebook.weight.grad = None
    out.loss.backward()
    assert vq.codebook.weight.grad.abs().sum() > 0  # the embedding term trains the codebook
    # commitment term: gradient of ||sg(e) − z||² wrt z is 2 (z − e)/n (codebook term has no z-gradient)
    torch.testing.assert_close(z.grad, 2 * (z - vq.lookup(out.indices)).detach() / z.numel())


def test_gumbel_noise_mean_is_euler_gamma():
    g = gumbel_noise((200_000,), torch.Generator().manual_seed(0))
    assert abs(float(g.mean()) - 0.5772156649) < 0.01  # E[Gumbel(0, 1)] = γ
    assert abs(float(g.var()) - math.pi ** 2 / 6) < 0.03  # Var = π²/6


def test_straight_through_threshold():
    m = torch.tensor([0.05, 0.2, 0.21, 0.9], requires_grad=True)
    mv = straight_through_threshold(m, 0.2)
    assert mv.tolist() == [0.0, 0.0, 1.0, 1.0]
    (mv * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert m.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_mask_generator_train_vs_inference():
    gen = MaskGenerator(4, hidden=8, tau=0.5, theta=0.2)
    zx, zy = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    a = gen(zx, zy, stochastic=True, generator=torch.Generator().manual_seed(0))
    b = gen(zx, zy, stochastic=True, generator=torch.Generator().manual_seed(0))
    c = gen(zx, zy, stochastic=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.m, b.m) and not torch.equal(a.m, c.m)
    gen.eval()
    d1, d2 = gen(zx, zy), gen(zx, zy)
    assert torch.equal(d1.m_v, d2.m_v)
    torch.testing.assert_close(d1.m, torch.sigmoid(d1.logits / 0.5))  # no noise at inference
    assert set(d1.m_v.unique().tolist()) <= {0.0, 1.0} and d1.m_v.shape == (2, 1, 3, 5)
    torch.testing.assert_close(d1.m_v, (d1.m > 0.2).float())


def test_soft_mask_training_keeps_m_in_training_and_thresholds_at_inference():
    hard = MaskGenerator(4, hidden=8, tau=1.0, theta=0.2)
    soft = MaskGenerator(4, hidden=8, tau=1.0, theta=0.2, soft_training=True)
    soft.load_state_dict(hard.state_dict())
    zx, zy = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    a = soft(zx, zy, stochastic=True, generator=torch.Generator().manual_seed(0))
    b = hard(zx, zy, stochastic=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.m_v, a.m) and torch.equal(a.m, b.m)  # soft: the mask is m itself
    assert not torch.equal(a.m_v, b.m_v) and set(b.m_v.unique().tolist()) <= {0.0, 1.0}
    soft.eval(), hard.eval()
    assert torch.equal(soft(zx, zy).m_v, hard(zx, zy).m_v)  # at inference both apply Eq. 8


def test_mask_choices_change_only_what_they_name():
    from mdic_lab.models.mdic.model import MDIC

    assert set(TINY.to_dict()) == set(TINY.replace(mask_sparsity=0.0).to_dict())
    for field, value in (("mask_sparsity", 0.5), ("mask_gates_zd", True), ("mask_training", "soft")):
        assert field not in TINY.to_dict() and TINY.replace(**{field: value}).to_dict()[field] == value
    batch = make_batch(0)
    base, sparse = make_model(), make_model()
    sparse.config = sparse.config.replace(mask_sparsity=0.5)
    lb = base(batch, generator=torch.Generator().manual_seed(3))
    ls = sparse(batch, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # the same draw of the mask: the prior adds exactly λ_s · mean(m)
        m = base.mask_generator(base.encode_x(batch["left"])[2].z_q, base.vq(base.h_ay(
            base.backbone.encode_image(batch["right"]))).z_q, stochastic=True,
            generator=torch.Generator().manual_seed(3)).m
    torch.testing.assert_close(ls["loss"] - lb["loss"], 0.5 * m.mean(), atol=1e-5, rtol=1e-4)
    gated = make_model()
    gated.config = gated.config.replace(mask_gates_zd=True)
    base.eval(), gated.eval()
    zx_hat = base.encode_x(batch["left"])[2].z_q
    pb = base.decoder_side(zx_hat, batch["right"], batch["caption"])
    pg = gated.decoder_side(zx_hat, batch["right"], batch["caption"])
    torch.testing.assert_close(pg["z_d"], pb["z_d"] * pb["mask"].m_v)
    torch.testing.assert_close(pg["zxc"], pb["zxc"])
    with pytest.raises(Exception, match="mask_training"):
        TINY.replace(mask_training="medium")


def test_masked_caption_tokenization():
    from mdic_lab.models.mdic.tokenizer import load_clip_tokenizer

    tok = load_clip_tokenizer()
    mt = tokenize_masked_captions(tok, ["a red [MASK] next to a [MASK]", "no nouns here"], [[1, 3], []],
                                  "[MASK]", "*", max_length=12)
    star = tok("*", add_special_tokens=False).input_ids[0]
    ids0 = mt.input_ids[0].tolist()
    assert ids0[0] == 49406 and ids0.count(star) == 2
    assert mt.targets[0][mt.input_ids[0] == star].tolist() == [1, 3]
    assert (mt.targets[1] == IGNORE_INDEX).all()
    assert mt.input_ids.shape == mt.targets.shape == mt.attention_mask.shape == (2, 12)
    # the unmasked words keep their ordinary CLIP ids
    assert ids0[1:3] == tok("a red", add_special_tokens=False).input_ids
    with pytest.raises(ValueError, match="2 markers"):
        tokenize_masked_captions(tok, ["a [MASK] and a [MASK]"], [[1]], "[MASK]")


def test_text_supervision_loss_reaches_mask_generator():
    gen = MaskGenerator(4, hidden=8)
    ts = TextSupervision(text_dim=16, visual_channels=4, num_tokens=15, num_classes=5, d_model=16, layers=1,
                         heads=2, max_text_length=6)
    zx, zy = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    mask = gen(zx, zy, stochastic=True, generator=torch.Generator().manual_seed(0))
    tgt = torch.full((2, 6), IGNORE_INDEX)
    tgt[0, 2], tgt[1, 4] = 3, 0
    loss, logits = ts(torch.randn(2, 6, 16), torch.ones(2, 6, dtype=torch.long), tgt, mask.m_v, zy)
    assert logits.shape == (2, 6, 5) and loss.ndim == 0 and torch.isfinite(loss)
    assert 0.5 * math.log(5) < float(loss.detach()) < 3 * math.log(5)  # near the uniform CE log N at init
    loss.backward()
    assert gen.conv[0].weight.grad.abs().sum() > 0  # text supervision trains the mask generator (Eq. 8 ST)


def test_g1_g2_shapes_and_g2_identity_when_gate_closed():
    g1 = G1Fusion(4, num_tokens=15, d_model=16, layers=1, heads=2)
    zx, zy = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    assert g1(zx, zy, torch.ones(2, 1, 3, 5)).shape == zx.shape
    g2 = G2Gate(4, hidden=8)
    with torch.no_grad():
        g2.f_m[-2].bias.fill_(-1e4)  # F_m ≈ 0: the gate is closed, so z_d = z_y (Eq. 14)
    torch.testing.assert_close(g2(zy, torch.ones(2, 1, 3, 5)), zy)


# ----------------------------------------------------------------------------- entropy model
def test_entropy_model_round_trip_and_rate():
    torch.manual_seed(0)
    em = AREntropyModel(num_codes=32, num_tokens=24, d_model=16, layers=2, heads=2).eval()
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 32, (3, 4, 6), generator=g)
    strings = em.compress(idx)
    assert torch.equal(em.decompress(strings, (4, 6)), idx)
    est = em.rate_bits(idx).detach()
    for s, bits in zip(strings, est.tolist()):
        assert 8 * len(s) >= bits - 1e-3  # no code beats the model's ideal length
        assert 8 * len(s) <= bits + 64  # range coder overhead: at most two 32-bit words
    # the coding probabilities equal the teacher-forced ones (same model)
    flat = idx[0].reshape(-1).tolist()
    lk = em(idx[:1]).reshape(-1)
    step = torch.tensor([em.step_probs(flat, i)[0, flat[i]] for i in range(24)], dtype=torch.float32)
    torch.testing.assert_close(step, lk, rtol=1e-5, atol=1e-7)
    # the KV-cache stepper both coder ends use gives the same distribution as the full pass
    from mdic_lab.models.mdic.entropy_model import ARStepper

    st = ARStepper(em)
    inc = []
    for i, k in enumerate(flat):
        inc.append(st.probs(i)[0, k])
        st.feed(k)
    torch.testing.assert_close(torch.tensor(inc, dtype=torch.float32), lk, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="in order"):
        ARStepper(em).probs(3)


def test_entropy_model_is_causal():
    torch.manual_seed(1)
    em = AREntropyModel(num_codes=8, num_tokens=12, d_model=16, layers=2, heads=2).eval()
    a = torch.randint(0, 8, (1, 3, 4))
    b = a.clone()
    b[0, 1, 2] = (a[0, 1, 2] + 1) % 8  # raster position 6
    la, lb = em(a).reshape(-1), em(b).reshape(-1)
    assert torch.equal(la[:6], lb[:6])  # p(k_i | k_<i) for i <= 6 cannot see position 6's value
    assert not torch.equal(la[7:], lb[7:])


def _busy_entropy_model(seed=4, num_tokens=40):
    """A lab-sized (d = 64, 2 layers, 4 heads) entropy model with weights far from uniform output."""
    torch.manual_seed(seed)
    em = AREntropyModel(num_codes=16, num_tokens=num_tokens, d_model=64, layers=2, heads=4).eval()
    with torch.no_grad():
        for p in em.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return em


def test_batched_stepper_rows_do_not_depend_on_the_batch():
    """The coder's determinism across batches: a row's probabilities are bit-identical alone and in any batch."""
    from mdic_lab.models.mdic.entropy_model import ARStepper

    em = _busy_entropy_model()
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 16, size=(7, em.num_tokens))

    def run(rows):
        st, out = ARStepper(em, batch=len(rows)), []
        for i in range(em.num_tokens):
            out.append(st.probs(i))
            st.feed(toks[rows, i])
        return np.stack(out, axis=1)  # (B, N, K)

    together = run(np.arange(7))
    assert together.shape == (7, em.num_tokens, 16)
    assert np.allclose(together.sum(-1), 1.0)
    for r in (0, 3, 6):
        assert np.array_equal(run(np.array([r]))[0], together[r])  # alone
    mixed = run(np.array([6, 6, 2, 0]))  # other neighbours, repeated rows, another batch size
    for k, r in enumerate((6, 6, 2, 0)):
        assert np.array_equal(mixed[k], together[r])
    st = ARStepper(em, batch=2)
    with pytest.raises(ValueError, match="2 token"):
        st.feed([1, 2, 3])
    with pytest.raises(ValueError, match="batch"):
        ARStepper(em, batch=0)


def test_compress_in_batches_gives_the_bytes_of_each_image_alone(monkeypatch):
    em = _busy_entropy_model(num_tokens=24)
    idx = torch.randint(0, 16, (5, 4, 6), generator=torch.Generator().manual_seed(2))
    alone = [em.compress(idx[i:i + 1])[0] for i in range(5)]
    assert em.compress(idx) == alone
    monkeypatch.setattr(AREntropyModel, "CODING_BATCH", 2)  # chunks of 2, 2, 1
    assert em.compress(idx) == alone
    assert torch.equal(em.decompress(alone, (4, 6)), idx)
    assert torch.equal(em.decompress(alone[3], (4, 6)), idx[3:4])  # one stream of a batch decodes alone


def test_entropy_model_refuses_train_mode_and_bad_indices():
    em = AREntropyModel(num_codes=8, num_tokens=4, d_model=8, layers=1, heads=2)
    with pytest.raises(RuntimeError, match="eval"):
        em.compress(torch.zeros(1, 2, 2, dtype=torch.long))
    em.eval()
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        em.compress(torch.full((1, 2, 2), 8))
    with pytest.raises(ValueError, match="positions"):
        em.compress(torch.zeros(1, 3, 2, dtype=torch.long))


# ----------------------------------------------------------------------------- the assembly
def test_forward_losses_and_gradients():
    m = make_model("full").train()
    out = m(make_batch(0), generator=torch.Generator().manual_seed(0))
    assert {"loss", "vq", "diff", "rate_bpp", "rate_bits", "mask", "mask_fraction"} <= set(out)
    c = TINY
    expected = out["vq"] + c.lambda_mask * out["mask"] + c.lambda_rate * out["rate_bpp"] + out["diff"]  # Eq. 23
    torch.testing.assert_close(out["loss"], expected)
    h, w = c.image_size
    torch.testing.assert_close(out["rate_bpp"], out["rate_bits"].mean() / (h * w))
    out["loss"].backward()
    for name in ("h_ax", "h_ay", "vq", "entropy_model", "mask_generator", "text_supervision", "g1", "g2"):
        grads = [p.grad for p in getattr(m, name).parameters()]
        assert all(gr is not None for gr in grads) and sum(float(gr.abs().sum()) for gr in grads) > 0, name
    assert m.backbone.unet.conv_in.weight.grad is not None
    for frozen in (m.backbone.vae, m.backbone.text_encoder):
        assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())


def test_bitstream_round_trip_and_coded_bpp(full_model, coded):
    batch, c = coded
    _, _, vq_x = full_model.encode_x(batch["left"])
    assert torch.equal(full_model.decode_indices(c["strings"]), vq_x.indices)
    assert c["shape"] == full_model.token_grid == TINY.token_grid
    bpp = full_model.bpp(c["strings"])
    h, w = TINY.image_size
    assert bpp == [8 * len(s) / (h * w) for s in c["strings"]]
    est_bits = full_model.entropy_model.rate_bits(vq_x.indices).tolist()
    for payload, full, est in zip(full_model.payload_bpp(c["strings"]), bpp, est_bits):
        assert est / (h * w) - 1e-9 <= payload <= (est + 64) / (h * w)  # coded ≥ ideal, ≤ ideal + 2 words
        assert full > payload  # the container header costs bits too


def test_checkpoint_round_trip(tmp_path, full_model, coded):
    from mdic_lab.models.mdic.model import MDIC

    batch, c = coded
    torch.save(full_model.checkpoint_blob(), tmp_path / "mdic.pt")
    loaded = MDIC.from_blob(torch.load(tmp_path / "mdic.pt", weights_only=True)).eval()
    assert loaded.model_id == full_model.model_id
    assert loaded.compress(batch["left"])["strings"] == c["strings"]
    a = full_model.decompress(c["strings"], batch["right"], batch["caption"], seed=3)
    assert torch.equal(loaded.decompress(c["strings"], batch["right"], batch["caption"], seed=3), a)
    with pytest.raises(ValueError, match="is not an MDIC checkpoint"):
        MDIC.from_blob({"model_name": "ndic"})


def test_mdic_from_local_pretrained_directory(tmp_path):
    """config.pretrained = a saved backbone directory: the same code path as the paper preset."""
    from mdic_lab.models.mdic.backbone import Backbone
    from mdic_lab.models.mdic.model import MDIC

    torch.manual_seed(0)
    bb = Backbone.from_config(TINY)
    bb.save_pretrained(tmp_path / "sd")
    m = MDIC(TINY.replace(pretrained=str(tmp_path / "sd")))
    for k, v in bb.vae.state_dict().items():
        assert torch.equal(m.backbone.vae.state_dict()[k], v)
    assert m.latent_grid == TINY.latent_grid and m.backbone.unet.config.in_channels == 4 + 2 * TINY.z_channels
    out = m.train()(make_batch(0), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])


def test_corrupted_or_foreign_stream_raises(full_model, coded):
    _, c = coded
    s = bytearray(c["strings"][0])
    s[len(s) // 2] ^= 0xFF
    with pytest.raises(BitstreamError):
        full_model.decode_indices(bytes(s))
    other = make_model("full", seed=5).eval()  # different weights → different model id
    with pytest.raises(BitstreamError, match="wrong model"):
        other.decode_indices(c["strings"][0])


def test_decompress_deterministic_given_seed(full_model, coded):
    batch, c = coded
    a = full_model.decompress(c["strings"], batch["right"], batch["caption"], seed=0)
    b = full_model.decompress(c["strings"], batch["right"], batch["caption"], seed=0)
    d = full_model.decompress(c["strings"], batch["right"], batch["caption"], seed=1)
    assert a.shape == batch["left"].shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, d)


def test_bad_inputs(full_model):
    batch = make_batch(0)
    with pytest.raises(ValueError, match="the model expects"):
        full_model.compress(torch.rand(1, 3, 16, 64))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        full_model.compress(batch["left"] * 2 + 1)
    with pytest.raises(ValueError, match="NaN"):
        full_model.compress(torch.full_like(batch["left"], float("nan")))
    c = full_model.compress(batch["left"])
    with pytest.raises(ValueError, match="list of 2 str"):
        full_model.decompress(c["strings"], batch["right"], ["only one caption"])
    from mdic_lab.models.mdic.model import MDIC

    with pytest.raises(ValueError, match="already widened"):  # a UNet widened for another variant
        MDIC(TINY.replace(variant="no_zd"), backbone=full_model.backbone)
    with pytest.raises(KeyError, match="noun_targets"):
        make_model("full").train()({k: v for k, v in batch.items() if k != "noun_targets"})


# ----------------------------------------------------------------------------- ablation switches
def _decode(m, strings, right, captions):
    return m.decompress(strings, right, captions, seed=0)


@pytest.mark.parametrize("variant", ["full", "no_text"])
def test_no_text_ignores_caption(variant):
    m = make_model(variant).eval()
    batch = make_batch(2)
    s = m.compress(batch["left"])["strings"]
    a = _decode(m, s, batch["right"], ["a red car", "a tree"])
    b = _decode(m, s, batch["right"], ["three buses and a bicycle", "a person on a bench"])
    assert torch.equal(a, b) == (variant == "no_text")


def test_vocabulary_builds_the_masked_captions():
    """With F's vocabulary the model masks the captions itself: same loss as given explicitly."""
    from mdic_lab.data.vocabulary import build_vocabulary

    from mdic_lab.models.mdic.model import MDIC

    vocab = build_vocabulary(["a car and a tree", "two people", "a road"], n=4)
    batch = make_batch(0)
    masked = [vocab.mask_caption(c) for c in batch["caption"]]
    torch.manual_seed(0)
    m = MDIC(TINY, vocabulary=vocab).train()
    explicit = dict(batch, masked_caption=[p[0] for p in masked], noun_targets=[p[1] for p in masked])
    implicit = {k: v for k, v in batch.items() if k not in ("masked_caption", "noun_targets")}
    a = m(explicit, generator=torch.Generator().manual_seed(0))["mask"]
    b = m(implicit, generator=torch.Generator().manual_seed(0))["mask"]
    assert sum(len(p[1]) for p in masked) > 0 and torch.equal(a, b)
    with pytest.raises(ValueError, match="num_nouns"):
        MDIC(TINY.replace(num_nouns=2), vocabulary=vocab)


def test_no_ts_has_no_mask_loss_and_ignores_targets():
    m = make_model("no_ts").train()
    assert m.text_supervision is None
    batch = make_batch(0)
    out1 = m(batch, generator=torch.Generator().manual_seed(0))
    batch2 = dict(batch, noun_targets=[[9, 9], [0]], masked_caption=["[MASK] [MASK]", "[MASK]"])
    out2 = m(batch2, generator=torch.Generator().manual_seed(0))
    assert "mask" not in out1 and torch.equal(out1["loss"], out2["loss"])
    full = make_model("full").train()
    f1 = full(batch, generator=torch.Generator().manual_seed(0))
    f2 = full(batch2, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(f1["loss"], f2["loss"])  # control: with TS the targets matter


@pytest.mark.parametrize("variant", ["full", "no_g1g2"])
def test_no_g1g2_makes_the_mask_irrelevant_to_the_reconstruction(variant):
    m = make_model(variant).eval()
    batch = make_batch(3)
    s = m.compress(batch["left"])["strings"]
    with torch.no_grad():
        m.mask_generator.conv[-1].bias.fill_(10.0)  # mask all ones
    a = _decode(m, s, batch["right"], batch["caption"])
    with torch.no_grad():
        m.mask_generator.conv[-1].bias.fill_(-10.0)  # mask all zeros
    b = _decode(m, s, batch["right"], batch["caption"])
    assert (m.g1 is None and m.g2 is None) == (variant == "no_g1g2")
    assert torch.equal(a, b) == (variant == "no_g1g2")


def test_no_g2_passes_z_y_ungated():
    m = make_model("no_g2").eval()
    assert m.g2 is None and m.g1 is not None
    batch = make_batch(0)
    with torch.no_grad():
        _, _, vq_x = m.encode_x(batch["left"])
        parts = m.decoder_side(vq_x.z_q, batch["right"], batch["caption"])
    assert torch.equal(parts["z_d"], parts["z_y"])
    full = make_model("full").eval()
    with torch.no_grad():
        _, _, vq_x = full.encode_x(batch["left"])
        fp = full.decoder_side(vq_x.z_q, batch["right"], batch["caption"])
    assert not torch.equal(fp["z_d"], fp["z_y"])


@pytest.mark.parametrize("variant", ["full", "no_zd"])
def test_no_zd_condition_ignores_z_d(variant):
    m = make_model(variant).eval()
    batch = make_batch(0)
    with torch.no_grad():
        _, _, vq_x = m.encode_x(batch["left"])
        parts = m.decoder_side(vq_x.z_q, batch["right"], batch["caption"])
        v1, t1 = m.condition(parts)
        v2, t2 = m.condition(dict(parts, z_d=torch.randn_like(parts["z_d"])))
    c_lat = m.backbone.vae.config.latent_channels
    n_cond = TINY.z_channels * (1 if variant == "no_zd" else 2)
    assert m.backbone.unet.config.in_channels == c_lat + n_cond == c_lat + v1.shape[1]
    assert torch.equal(v1, v2) == (variant == "no_zd") and torch.equal(t1, t2)


@pytest.mark.parametrize("variant", ["full", "no_zd_zxc"])
def test_no_zd_zxc_ignores_the_side_image(variant):
    m = make_model(variant).eval()
    batch = make_batch(4)
    s = m.compress(batch["left"])["strings"]
    a = _decode(m, s, batch["right"], batch["caption"])
    b = _decode(m, s, torch.rand(batch["right"].shape, generator=torch.Generator().manual_seed(9)), batch["caption"])
    assert torch.equal(a, b) == (variant == "no_zd_zxc")


def test_overfit_one_batch_loss_goes_down():
    """20 AdamW steps on one batch with fixed noise/timesteps: the total loss must drop."""
    m = make_model("full").train()
    batch = make_batch(0)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(20):
        out = m(batch, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses


def test_frozen_unet_keeps_condition_filters_trainable():
    from mdic_lab.models.mdic.model import MDIC

    torch.manual_seed(0)
    m = MDIC(TINY.replace(train_unet=False)).train()
    m(make_batch(0), generator=torch.Generator().manual_seed(0))["loss"].backward()
    unet = m.backbone.unet
    assert unet.conv_in.weight.grad is not None and unet.conv_in.weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in unet.named_parameters() if not n.startswith("conv_in."))


def test_synthetic_stereo_batch_with_vocabulary():
    """A collated batch of the synthetic stereo world trains with the vocabulary's masked captions."""
    from mdic_lab.data.synthetic import SyntheticStereo, collate
    from mdic_lab.data.vocabulary import build_vocabulary
    from mdic_lab.models.mdic.model import MDIC

    ds = SyntheticStereo("train", size=TINY.image_size, length=2, cache=False)
    batch = collate([ds[i] for i in range(2)])
    vocab = build_vocabulary(batch["caption"], n=TINY.num_nouns)
    torch.manual_seed(0)
    m = MDIC(TINY, vocabulary=vocab).train()
    out = m(batch, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"]) and float(out["mask"].detach()) > 0
    out["loss"].backward()
    assert m.mask_generator.conv[0].weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- anchored decoder
ANCHORED = dict(prediction_type="sample", decoder_anchor=True, train_timesteps="inference")


def make_anchored(variant="full", seed=0):
    from mdic_lab.models.mdic.model import MDIC

    torch.manual_seed(seed)  # parameter init only
    m = MDIC(TINY.replace(variant=variant, **ANCHORED))
    with torch.no_grad():
        torch.nn.init.normal_(m.backbone.unet.conv_in.weight, std=0.3)
    return m


def test_anchored_config_errors():
    with pytest.raises(ValueError, match="prediction_type='sample'"):
        TINY.replace(decoder_anchor=True)
    with pytest.raises(ValueError, match="unknown train_timesteps 'all'"):
        TINY.replace(train_timesteps="all")
    assert MDICConfig.preset("lab").decoder_anchor == (MDICConfig.preset("lab").prediction_type == "sample")


@pytest.mark.parametrize("variant", ["full", "no_zd", "no_zd_zxc"])
def test_anchor_respects_the_zd_switches(variant):
    """The anchor reads the variant's visual channels only: no z_d for no_zd, no side info for no_zd_zxc."""
    m = make_anchored(variant).eval()
    batch = make_batch(0)
    with torch.no_grad():
        _, _, vq_x = m.encode_x(batch["left"])
        parts = m.decoder_side(vq_x.z_q, batch["right"], batch["caption"])
        a1 = m.anchor(m.condition(parts)[0])
        a2 = m.anchor(m.condition(dict(parts, z_d=torch.randn_like(parts["z_d"])))[0])
        a3 = m.anchor(m.condition(dict(parts, z_d=torch.randn_like(parts["z_d"]),
                                       zxc=torch.randn_like(parts["zxc"])))[0])
    assert a1.shape == (2, m.backbone.vae.config.latent_channels) + tuple(m.latent_grid)
    assert torch.equal(a1, a2) == (variant != "full")
    assert torch.equal(a1, a3) == (variant == "no_zd_zxc")
    s = m.compress(batch["left"])["strings"]
    other = torch.rand(batch["right"].shape, generator=torch.Generator().manual_seed(9))
    assert torch.equal(_decode(m, s, batch["right"], batch["caption"]),
                       _decode(m, s, other, batch["caption"])) == (variant == "no_zd_zxc")


def test_anchored_ddim_returns_the_anchor_when_the_correction_is_zero():
    """x̂_0 = anchor + 0 at every step; DDIM (η = 0, ᾱ_prev = 1 at the end) then lands exactly on the anchor."""
    from diffusers import DDIMScheduler

    from mdic_lab.models.mdic.decoder import ddim_sample

    m = make_anchored().eval()
    unet = m.backbone.unet
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.zero_()
    sched = DDIMScheduler(num_train_timesteps=1000, prediction_type="sample", set_alpha_to_one=True, clip_sample=False)
    c, (h, w) = m.backbone.vae.config.latent_channels, m.latent_grid
    anchor = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(1))
    visual = torch.randn(2, TINY.condition_channels, h, w)
    text = torch.randn(2, 5, unet.config.cross_attention_dim)
    z0 = ddim_sample(unet, sched, visual, text, (2, c, h, w), 4, torch.Generator().manual_seed(0), anchor=anchor)
    torch.testing.assert_close(z0, anchor, atol=1e-5, rtol=1e-5)


def test_anchored_forward_trains_the_anchor_head():
    m = make_anchored().train()
    out = m(make_batch(0), generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["diff"])
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.anchor_head.parameters())
