"""MDIC's two profiles (issue #15): the paper's choices and the authors' published code's, one field each.

Every choice changes what it names and nothing else (two smoke models with the same weights
wherever both have them), switching it back restores the other profile's behaviour, the
``authors`` profile trains / resumes / codes / evaluates through the common run stack, and bad
names or combinations are refused before anything is built.
"""

import pytest
import torch

from mdic_lab.config import ConfigError
from mdic_lab.models.mdic.backbone import Backbone
from mdic_lab.models.mdic.config import PRESETS, PROFILE_CHOICES, PROFILES, MDICConfig
from mdic_lab.models.mdic.decoder import sample_latent
from mdic_lab.models.mdic.model import MDIC
from mdic_lab.models.mdic.vmgm_ts import TextSupervision, gumbel_tau_at
from mdic_lab.models.mdic.vq import CosineEMAQuantizer, VectorQuantizer, rotation_trick
from mdic_lab.registry import resolve
from mdic_lab.runs import RunDir
from mdic_lab.runs.evaluate import evaluate_run
from mdic_lab.runs.train import train_run

torch.set_num_threads(1)
NEW_FIELDS = set(MDICConfig._RECORDED_IF_NOT) - {"g1_fusion", "mask_training", "mask_sparsity", "mask_gates_zd"}


def _batch(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"left": torch.rand(b, 3, *cfg.image_size, generator=g),
            "right": torch.rand(b, 3, *cfg.image_size, generator=g), "caption": ["a red car next to a tree", "two trees"][:b],
            "masked_caption": ["a red [MASK] next to a [MASK]", "two [MASK]"][:b], "noun_targets": [[0, 1], [1]][:b]}


def _model(**over):
    cfg = MDICConfig.preset("smoke", **over)
    torch.manual_seed(0)
    return MDIC(cfg)


def _twin(base: MDIC, **over) -> MDIC:
    """A model with ``over`` switched, holding ``base``'s weights wherever both have the same tensor."""
    other = _model(**{**base.config.to_dict(), **over})
    mine = base.state_dict()
    theirs = other.state_dict()
    other.load_state_dict({k: (mine[k] if k in mine and mine[k].shape == v.shape else v) for k, v in theirs.items()})
    return other


# ------------------------------------------------------------------------------------------ configs
def test_paper_profile_records_nothing_new_and_presets_keep_their_hashes():
    for p in PRESETS:
        cfg = MDICConfig.preset(p)
        assert cfg.profile == "paper" and not NEW_FIELDS & set(cfg.to_dict())  # same record → same hash
        assert MDICConfig.preset(p, profile="paper") == cfg
        assert resolve("mdic", p, overrides={"profile": "paper"}).model == cfg


@pytest.mark.parametrize("preset", list(PRESETS))
def test_authors_profile_sets_every_choice_and_overrides_win(preset):
    a = MDICConfig.preset(preset, profile="authors")
    assert all(getattr(a, f) == v for f, v in PROFILES["authors"].items())
    assert resolve("mdic", preset, overrides={"profile": "authors"}).model == a
    one_back = resolve("mdic", preset, overrides={"g1_residual": True, "profile": "authors"}).model  # any order
    assert one_back.g1_residual and one_back.sampler == "ddpm"
    assert MDICConfig.from_dict(one_back.to_dict()) == one_back  # every field recorded: the round trip holds
    assert MDICConfig.from_dict(a.to_dict()) == a and a.hash() != MDICConfig.preset(preset).hash()
    for fields, _ in PROFILE_CHOICES.values():  # one choice of the authors' on the paper profile
        one = MDICConfig.preset(preset, **{f: PROFILES["authors"][f] for f in fields})
        differs = {f.name for f in MDICConfig.__dataclass_fields__.values()
                   if getattr(one, f.name) != getattr(MDICConfig.preset(preset), f.name)}
        assert differs <= set(fields)


def test_paper_preset_in_both_profiles_builds_from_a_local_sd_layout(tmp_path):
    """The GPU preset, construct-only: SD 2.1's geometry (VAE ×8, 16×32 latent) from a tiny local layout."""
    tiny = MDICConfig.preset("smoke", image_size=(128, 256), vae_block_out_channels=(8, 8, 8, 8))
    torch.manual_seed(0)
    Backbone.from_config(tiny).save_pretrained(tmp_path / "sd")
    shapes = {}
    for profile in PROFILES:
        cfg = MDICConfig.preset("paper", profile=profile, pretrained=str(tmp_path / "sd"), em_layers=1, ts_layers=1,
                                g1_layers=1)
        m = MDIC(cfg).eval()
        assert m.latent_grid == (16, 32) and m.token_grid == (8, 16) == cfg.token_grid
        zy = m.decoder_side(m.vq.lookup(torch.zeros(1, 8, 16, dtype=torch.long)), torch.rand(1, 3, 128, 256),
                            ["a car"])["z_d"]
        shapes[profile] = tuple(zy.shape[-2:])
    assert shapes == {"paper": (8, 16), "authors": (16, 32)}  # the authors' side information on the full grid


def test_refusals_name_the_input_and_the_reason():
    with pytest.raises(ConfigError, match="unknown profile 'author' .*paper, authors"):
        MDICConfig.preset("lab", profile="author")
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve("mdic", "smoke", overrides={"profile": "ours"})
    for field, bad, accepted in (("vq_variant", "lucidrains", "paper, authors"),
                                 ("ts_predictor", "mean", "spatial, pooled"), ("sampler", "euler", "ddim, ddpm"),
                                 ("conv_in_init", "zero", "copy, fresh")):
        with pytest.raises(ConfigError, match=f"unknown {field} '{bad}' .*{accepted}"):
            MDICConfig.preset("smoke", **{field: bad})
    with pytest.raises(ConfigError, match="needs caption_dropout > 0: .*never learnt"):
        MDICConfig.preset("lab", guidance_scale=3.0)
    with pytest.raises(ConfigError, match="needs caption_dropout"):
        resolve("mdic", "lab", overrides={"profile": "authors", "caption_dropout": 0.0})
    with pytest.raises(ValueError, match="decoder_anchor=True .*prediction_type='sample'"):
        resolve("mdic", "lab", overrides={"prediction_type": "v_prediction"})  # the anchor predicts x_0
    with pytest.raises(ConfigError, match="opam.*one grid"):
        MDICConfig.preset("smoke", g1_fusion="opam", hyper_downsample_y=1)
    with pytest.raises(ValueError, match="hyper_downsample_y must be None or a power of two dividing"):
        MDICConfig.preset("smoke", hyper_downsample_y=4)
    with pytest.raises(ValueError, match="gumbel_tau_final"):
        MDICConfig.preset("smoke", gumbel_tau_decay=0.99, gumbel_tau_final=2.0)
    with pytest.raises(ValueError, match="caption_dropout must lie in"):
        MDICConfig.preset("smoke", caption_dropout=1.0)
    with pytest.raises(ConfigError, match="cannot switch a 'authors' config to profile 'paper'"):
        MDICConfig.preset("lab", profile="authors").replace(profile="paper")
    with pytest.raises(ConfigError, match="alone would label the paper's choices"):
        MDICConfig(profile="authors")


# ------------------------------------------------------------------------------------------ each choice
@torch.no_grad()
def test_side_grid_changes_the_side_path_only():
    base = _model().eval()
    full = _twin(base, hyper_downsample_y=1).eval()
    b = _batch(base.config)
    ix, ix_full = base.encode_x(b["left"])[2].indices, full.encode_x(b["left"])[2].indices
    assert torch.equal(ix, ix_full)  # the encoder and its bitstream do not see the choice
    p, q = (m.decoder_side(m.vq.lookup(ix), b["right"], b["caption"]) for m in (base, full))
    assert p["z_d"].shape[-2:] == base.config.token_grid == (4, 8)
    assert q["z_d"].shape[-2:] == q["mask"].m_v.shape[-2:] == full.config.latent_grid == (8, 16)
    assert q["zxc"].shape == p["zxc"].shape  # ẑ_xc keeps ẑ_x's grid


@torch.no_grad()
def test_separate_codebooks_quantise_y_with_its_own_and_sharing_it_back_restores_the_paper():
    base = _model().eval()
    sep = _twin(base, separate_codebooks=True).eval()
    b = _batch(base.config)
    zx = base.vq.lookup(base.encode_x(b["left"])[2].indices)
    p = base.decoder_side(zx, b["right"], b["caption"])
    assert not torch.equal(sep.decoder_side(zx, b["right"], b["caption"])["zy_hat"], p["zy_hat"])
    sep.vq_y.load_state_dict(sep.vq.state_dict())  # the same codebook again: the paper's behaviour
    q = sep.decoder_side(zx, b["right"], b["caption"])
    assert all(torch.equal(p[k], q[k]) for k in ("zy_hat", "zxc", "z_d"))


def test_vq_variant_cosine_ema_rotation_no_commitment():
    torch.manual_seed(0)
    paper, authors = VectorQuantizer(4, 3), CosineEMAQuantizer(4, 3, decay=0.8)
    with torch.no_grad():  # the same codebook: [1,0,0], [0,1,0], [0,0,1], [2,2,0] (authors: unit rows)
        e = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [2.0, 2.0, 0]])
        paper.codebook.weight.copy_(e)
        authors.embed.copy_(torch.nn.functional.normalize(e, dim=1))
    z = torch.tensor([0.9, 0.8, 0.0]).reshape(1, 3, 1, 1)  # nearest: e_0 (distance), most similar: e_3 (cosine)
    assert paper.quantize_indices(z).item() == 0 and authors.quantize_indices(z).item() == 3
    zg = (torch.randn(2, 3, 2, 2) * 3).requires_grad_()
    codewords = authors.lookup(authors.quantize_indices(zg.detach()))  # before this step's EMA update
    out_p, out_a = paper.train()(zg), authors.train()(zg)
    assert float(out_p.loss.detach()) > 0 and float(out_a.loss) == 0.0  # no commitment term in the authors' loss
    assert float(out_a.commitment_loss) > 0  # measured only
    assert torch.equal(out_a.z_q.detach(), codewords)  # the rotation trick's value is the codeword, bit for bit
    before = authors.embed.clone()
    authors.eval()(zg)
    assert torch.equal(authors.embed, before)  # EMA moves the codebook in training only
    authors.train()(zg.detach())
    assert not torch.equal(authors.embed, before) and torch.allclose(authors.embed.norm(dim=1), torch.ones(4))
    z2 = torch.tensor([[3.0, 4.0]], requires_grad=True)
    rotation_trick(z2, torch.tensor([[0.0, 2.0]])).sum().backward()
    assert not torch.allclose(z2.grad, torch.ones(1, 2))  # not the straight-through identity
    m = _model(vq_variant="authors").train()
    out = m(_batch(m.config), generator=torch.Generator().manual_seed(0))
    assert float(out["vq"]) == 0.0 and torch.isfinite(out["loss"])


def test_tau_anneals_per_step_is_checkpointed_and_constant_tau_has_no_state():
    assert "mask_generator.tau_now" not in _model().state_dict()  # old checkpoints still load
    m = _model(gumbel_tau=5.0, gumbel_tau_decay=0.99, gumbel_tau_final=0.5)
    m.set_training_progress(75, 150)
    assert m.mask_generator.tau == pytest.approx(5.0 * 0.99 ** 100) == gumbel_tau_at(75, 150, 5.0, 0.99, 0.5)
    assert float(m.state_dict()["mask_generator.tau_now"]) == pytest.approx(m.mask_generator.tau)
    m.set_training_progress(10**6, 150)
    assert m.mask_generator.tau == 0.5  # the floor


@torch.no_grad()
def test_mask_regime_soft_in_training_hard_at_theta_at_inference():
    base = _model().eval()
    auth = _twin(base, mask_training="soft", mask_threshold=0.9).eval()
    b = _batch(base.config)
    zx = base.vq.lookup(base.encode_x(b["left"])[2].indices)
    g = torch.Generator().manual_seed(1)
    soft = auth.train().decoder_side(zx, b["right"], b["caption"], generator=g)["mask"]
    assert torch.equal(soft.m_v, soft.m) and ((soft.m > 0) & (soft.m < 1)).all()  # soft in training
    p, q = (m.eval().decoder_side(zx, b["right"], b["caption"])["mask"] for m in (base, auth))
    assert torch.equal(p.m, q.m) and torch.equal(q.m_v, (q.m > 0.9).float()) and torch.equal(p.m_v, (p.m > 0.2).float())


@torch.no_grad()
def test_mask_inference_noise_is_seeded_by_the_decoder():
    base = _model(conv_in_init="fresh", mask_threshold=0.5).eval()  # fresh conv_in: the UNet reads the visual
    # condition from the start; θ = 0.5: at the untrained σ(logits) ≈ 0.5 the noise flips about a third of m_v
    noisy = _twin(base, mask_inference_noise=True).eval()
    b = _batch(base.config)
    idx = base.encode_x(b["left"])[2].indices
    a1, a2 = (noisy.reconstruct_from_indices(idx, b["right"], b["caption"], seed=5, num_inference_steps=2)
              for _ in range(2))
    assert torch.equal(a1, a2)  # deterministic given the seed
    zx = base.vq.lookup(idx)
    g = noisy.mask_generator
    gum = torch.cat([torch.rand(1, 1, 4, 8, generator=torch.Generator().manual_seed(5)) for _ in range(2)])
    assert g.theta == 0.5 and not torch.equal(  # noise in the decoder's mask
        noisy.decoder_side(zx, b["right"], b["caption"], mask_noise=10 * (gum - 0.5))["mask"].m_v,
        base.decoder_side(zx, b["right"], b["caption"])["mask"].m_v)
    other = noisy.reconstruct_from_indices(idx, b["right"], b["caption"], seed=6, num_inference_steps=2)
    ref5 = base.reconstruct_from_indices(idx, b["right"], b["caption"], seed=5, num_inference_steps=2)
    assert not torch.equal(a1, ref5)  # the noise moves the mask, hence the decode
    assert not torch.equal(a1, other)
    noisy.config.mask_inference_noise = False  # switched back: the paper's deterministic mask
    assert torch.equal(noisy.reconstruct_from_indices(idx, b["right"], b["caption"], seed=5, num_inference_steps=2),
                       ref5)


@torch.no_grad()
def test_pooled_predictor_sees_one_token_blind_to_where_things_are():
    torch.manual_seed(0)
    spatial = TextSupervision(16, 4, num_tokens=8, num_classes=5, d_model=16, layers=1, heads=2)
    torch.manual_seed(0)
    pooled = TextSupervision(16, 4, num_tokens=8, num_classes=5, d_model=16, layers=1, heads=2, pooled=True)
    t = torch.randn(2, 6, 16)
    att = torch.ones(2, 6, dtype=torch.long)
    tgt = torch.full((2, 6), -100)
    tgt[:, 2] = torch.tensor([1, 3])
    m, zy = (torch.rand(2, 1, 2, 4) > 0.3).float(), torch.randn(2, 4, 2, 4)
    perm = torch.randperm(8)

    def shuffle(x):  # move every token elsewhere
        return x.flatten(2)[..., perm].reshape(x.shape)

    lp, ls = pooled(t, att, tgt, m, zy)[0], spatial(t, att, tgt, m, zy)[0]
    assert float(pooled(t, att, tgt, shuffle(m), shuffle(zy))[0]) == pytest.approx(float(lp), abs=1e-5)
    assert abs(float(spatial(t, att, tgt, shuffle(m), shuffle(zy))[0]) - float(ls)) > 1e-5
    assert pooled.vis_pos.shape[1] == 1 and spatial.vis_pos.shape[1] == 8


@torch.no_grad()
def test_g1_without_residual_replaces_zx():
    base = _model().eval()
    rep = _twin(base, g1_residual=False).eval()
    zx, zy, m = torch.randn(2, 4, 4, 8), torch.randn(2, 4, 4, 8), torch.ones(2, 1, 4, 8)
    assert torch.allclose(base.g1(zx, zy, m) - zx, rep.g1(zx, zy, m), atol=1e-6)
    rep.g1.residual = True
    assert torch.equal(base.g1(zx, zy, m), rep.g1(zx, zy, m))


def _unet_text(model, batch, generator):
    """The cross-attention states the UNet received in one training forward."""
    seen = []
    h = model.backbone.unet.register_forward_pre_hook(
        lambda mod, args, kw: seen.append(kw["encoder_hidden_states"].detach().clone()), with_kwargs=True)
    try:
        model(batch, generator=generator)
    finally:
        h.remove()
    return seen[0]


def test_caption_dropout_feeds_the_empty_caption_in_training_only():
    m = _model(caption_dropout=0.999999).train()
    b = _batch(m.config)
    text = _unet_text(m, b, torch.Generator().manual_seed(0))
    assert torch.equal(text, m.empty_text().expand_as(text))
    keep = _model(caption_dropout=0.0).train()
    assert torch.equal(_unet_text(keep, b, torch.Generator().manual_seed(0)), keep.backbone.encode_text(b["caption"]))
    m.eval()
    e1 = m(b, generator=torch.Generator().manual_seed(0))["loss"]
    keep.eval()
    assert torch.equal(e1, keep(b, generator=torch.Generator().manual_seed(0))["loss"])  # no dropout at eval


@torch.no_grad()
def test_guidance_at_scale_one_is_the_unguided_decoder_and_other_scales_differ():
    m = _model(caption_dropout=0.1).eval()
    b = _batch(m.config)
    parts = m.decoder_side(m.vq.lookup(m.encode_x(b["left"])[2].indices), b["right"], b["caption"])
    visual, text = m.condition(parts)
    shape = (2, m.backbone.vae.config.latent_channels, *m.latent_grid)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    empty = m.empty_text().expand_as(text)
    args = (m.backbone.unet, m.backbone.scheduler, visual, text, shape, 3)
    plain = sample_latent(*args, noise=noise)
    assert torch.equal(sample_latent(*args, noise=noise, uncond_text=empty, guidance_scale=1.0), plain)  # exactly
    assert not torch.allclose(sample_latent(*args, noise=noise, uncond_text=empty, guidance_scale=3.0), plain)
    guided = _twin(m, guidance_scale=3.0).eval()
    idx = m.encode_x(b["left"])[2].indices
    x1 = m.reconstruct_from_indices(idx, b["right"], b["caption"], seed=0, num_inference_steps=3)
    assert not torch.allclose(guided.reconstruct_from_indices(idx, b["right"], b["caption"], seed=0,
                                                             num_inference_steps=3), x1)
    guided.config.guidance_scale = 1.0
    x_back = guided.reconstruct_from_indices(idx, b["right"], b["caption"], seed=0, num_inference_steps=3)
    assert torch.equal(x_back, x1)  # scale 1 again: the unguided decoder exactly


@torch.no_grad()
def test_ddpm_sampler_is_seeded_per_image_and_differs_from_ddim():
    base = _model().eval()
    ddpm = _twin(base, sampler="ddpm").eval()
    b = _batch(base.config)
    idx = base.encode_x(b["left"])[2].indices

    def run(m, i, seed=0):  # decode the images of slice i
        return m.reconstruct_from_indices(idx[i], b["right"][i], b["caption"][i], seed=seed, num_inference_steps=3)

    both = run(ddpm, slice(0, 2))
    assert torch.equal(both, run(ddpm, slice(0, 2)))  # deterministic given the seed
    assert torch.allclose(both[1:], run(ddpm, slice(1, 2)), atol=1e-5)  # alone = in a batch
    assert not torch.allclose(both, run(ddpm, slice(0, 2), seed=1))
    assert not torch.allclose(both, run(base, slice(0, 2)))
    ddpm.config.sampler = "ddim"
    assert torch.equal(run(ddpm, slice(0, 2)), run(base, slice(0, 2)))


def test_v_prediction_and_conv_in_init():
    v = _model(prediction_type="v_prediction")
    assert v.backbone.scheduler.config.prediction_type == "v_prediction"
    torch.manual_seed(0)
    plain = Backbone.from_config(MDICConfig.preset("smoke")).unet.conv_in.weight.detach()
    c_lat = plain.shape[1]
    copy, fresh = (_model(conv_in_init=k).backbone.unet.conv_in.weight.detach() for k in ("copy", "fresh"))
    assert copy.shape == fresh.shape and copy.shape[1] > c_lat
    assert torch.equal(copy[:, :c_lat], plain) and not copy[:, c_lat:].any()  # copied, new channels zero
    assert not torch.equal(fresh[:, :c_lat], plain) and fresh[:, c_lat:].abs().sum() > 0  # all re-initialised


# ------------------------------------------------------------------------------------------ the run stack
def test_authors_profile_trains_resumes_codes_and_evaluates(tmp_path_factory, tmp_path):
    root = tmp_path_factory.mktemp("backbones")
    run = resolve("mdic", "smoke", rate_point=0, overrides={"profile": "authors", "steps": 4, "log_every": 1,
                                                            "ckpt_every": 10})
    assert run.model.profile == "authors" and run.model.sampler == "ddpm"
    train_run(run, tmp_path / "full", progress=False, backbone_root=root)
    train_run(run, tmp_path / "sliced", max_steps=2, progress=False, backbone_root=root)
    train_run(run, tmp_path / "sliced", progress=False, backbone_root=root)
    wa, wb = (RunDir(tmp_path / d).load_checkpoint()["model"]["state_dict"] for d in ("full", "sliced"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # EMA codebooks and τ included
    assert float(wa["mask_generator.tau_now"]) == pytest.approx(gumbel_tau_at(3, 4, 5.0, 0.99, 0.5))
    assert {"vq_y.embed", "vq.embed"} <= set(wa)
    rd = RunDir(tmp_path / "sliced")
    assert rd.read_record()["model_config"]["profile"] == "authors" and rd.run_config() == run
    summary = evaluate_run(tmp_path / "sliced", limit=2, use_lpips=False, num_inference_steps=2)
    assert summary["n"] == 2 and summary["all_round_trip"]
    for r in rd.read_eval_rows("test"):  # real bytes: the container is counted, above the payload
        assert float(r["bpp_coded"]) > float(r["bpp_payload"]) > 0 and 0 < float(r["psnr"]) < 100
    again = evaluate_run(tmp_path / "sliced", limit=2, use_lpips=False, num_inference_steps=2, tag="again")
    assert again["psnr"] == summary["psnr"]  # the DDPM and mask noise come from the decoder's seed


@pytest.mark.parametrize("profile", ["paper", "authors"])
@torch.no_grad()
def test_the_tour_decodes_as_decompress_does_in_both_profiles(profile):
    """Notebook 08's trace_pair follows the model's own decoder: sampler, guidance and mask noise of the
    profile included, so its reconstruction is model.decompress's with the same seed."""
    from mdic_lab.models.mdic.tour import trace_pair

    m = _model(**({"profile": "authors"} if profile == "authors" else {})).eval()
    b = _batch(m.config, b=1)
    t = trace_pair(m, b["left"][0], b["right"][0], b["caption"][0], seed=3, num_inference_steps=3)
    x = m.decompress(m.compress(b["left"])["strings"], b["right"], b["caption"], seed=3, num_inference_steps=3)
    assert torch.equal(t["reconstruction"], x[0]) and len(t["trajectory"]) == len(t["timesteps"]) == 3
