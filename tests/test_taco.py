"""TACO: the text adapter (Eqs. 3-5), the joint loss (Eqs. 6-7), the caption in the stream and its bits, the run stack."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mdic_lab.coding import container
from mdic_lab.coding.caption import decode_caption, encode_caption
from mdic_lab.coding.errors import BitstreamError
from mdic_lab.config import ConfigError, HyperpriorConfig, TACOConfig
from mdic_lab.models.baselines.hyperprior import ScaleHyperprior
from mdic_lab.models.baselines.taco import TACO, ImageToText, TextToImage, joint_image_text_loss, load_text_side
from mdic_lab.registry import CODECS, get_codec, resolve
from mdic_lab.runs import RunDir
from mdic_lab.runs.evaluate import EVAL_FIELDS, evaluate_run
from mdic_lab.runs.train import train_run

torch.set_num_threads(1)
CAPS = ["a road in a city with a red car on the left and two trees", "a bus on the right, ünïcode, Case!"]


@pytest.fixture(scope="module")
def text():
    return load_text_side("random")  # a tiny random text encoder: these tests check plumbing, not CLIP


def _model(text, **kw):
    torch.manual_seed(0)
    return TACO(TACOConfig(N=8, M=12, heads=2, clip="random", **kw), text=text)


def _open_gates(model, value=0.5):
    with torch.no_grad():
        model.adapter.ca1.gamma.fill_(value)
        model.adapter.ca3.gamma.fill_(value)


def test_adapter_shapes(text):
    v, e = torch.rand(2, 8, 4, 6), torch.rand(2, 5, text.dim)
    assert TextToImage(8, text.dim, 2)(v, e).shape == v.shape  # CA1 / CA3 keep the image features' shape
    assert ImageToText(8, text.dim, 2)(e, v).shape == e.shape  # CA2 updates the m text tokens
    m = _model(text)
    e, pooled = m.encode_text(CAPS, "cpu")
    assert e.shape == (2, 64, text.dim) and pooled.shape == (2, text.dim)  # m = max_text_length tokens (Eq. 3)
    assert m.analysis(torch.rand(2, 3, 64, 128), e).shape == (2, 12, 4, 8)  # y at H/16 x W/16
    with pytest.raises(ValueError, match="heads=3 must divide N=8"):
        TACOConfig(N=8, heads=3)


def test_gamma_zero_is_the_hyperprior_analysis_with_eq5_layernorms(text):
    """γ = 0: the caption has no effect, and g_a is the hyperprior's with LN(v_i) at CA1 and CA3 (Eq. 5)."""
    m, hp = _model(text), ScaleHyperprior(HyperpriorConfig(N=8, M=12))
    missing, unexpected = m.load_state_dict(hp.state_dict(), strict=False)  # g_a, g_s, hyper: the same layers
    assert not unexpected and all(k.startswith(("adapter.", "tower.")) for k in missing)
    assert float((m.adapter.ca1.gamma.abs().sum() + m.adapter.ca3.gamma.abs().sum()).detach()) == 0  # init 0
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y_a = m.analysis(x, m.encode_text(CAPS, "cpu")[0])
        y_b = m.analysis(x, m.encode_text(["something else entirely", "x"], "cpu")[0])
        g = hp.g_a

        def ln(h, norm):  # Eq. 5 with γ = 0: LN over the channels of every position
            return norm(h.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(h.shape)

        h = ln(g[3](g[2](g[1](g[0](x)))), m.adapter.ca1.norm_v)
        ref = g[6](ln(g[5](g[4](h)), m.adapter.ca3.norm_v))
        _open_gates(m)
        y_open = m.analysis(x, m.encode_text(CAPS, "cpu")[0])
    assert torch.equal(y_a, y_b)
    assert torch.allclose(y_a, ref, atol=1e-6)
    assert not torch.allclose(y_open, y_a, atol=1e-4)  # γ ≠ 0: the text reaches y


def test_joint_loss_terms_and_gradient(text):
    m = _model(text, k_j=0.0025)
    x = torch.rand(2, 3, 64, 64)
    out = m(x, CAPS)
    t = m.loss(out, x, lmbda=0.01)
    assert torch.isfinite(t["loss"]) and float(t["con"].detach()) > 0 and float(t["dist"].detach()) > 0
    assert torch.isnan(t["lpips"])
    expected = t["bpp"] + 0.01 * 255**2 * t["mse"] + 0.0025 * (t["con"] + 40.0 * t["dist"])  # Eqs. 6-7
    assert float(t["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    t["loss"].backward()
    assert m.g_s[0].weight.grad is not None and m.adapter.ca1.gamma.grad is not None
    assert all(p.grad is None for p in m.tower.parameters())  # f_I / f_T stay frozen
    j = joint_image_text_loss(torch.eye(2), torch.eye(2), torch.eye(2), 0.0, 40.0)
    assert float(j["dist"]) == 0.0


def test_lpips_term_is_refused_without_its_weights(text, monkeypatch, tmp_path):
    from mdic_lab.metrics import MetricUnavailable

    monkeypatch.setenv("MDIC_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m = _model(text, k_p=3.5)
    with pytest.raises(MetricUnavailable, match="k_p=3.5 needs LPIPS"):
        m.lpips_net()


def test_caption_payload_round_trips_exactly_and_costs_its_bytes(text):
    m = _model(text).eval().update()
    _open_gates(m)
    m.update()
    x = torch.rand(2, 3, 64, 128)
    streams = m.compress(x, CAPS)["strings"]
    assert [m.caption_of(s) for s in streams] == CAPS  # the exact strings, case and accents included
    for s, cap in zip(streams, CAPS):
        c = container.unpack(s, m.model_id)
        assert len(c.payloads) == 3 and c.payloads[2] == encode_caption(cap) and m.caption_bytes(s) == len(c.payloads[2])
    x_hat = m.decompress(streams)
    assert torch.equal(x_hat, m(x, CAPS, mode="dequantize")["x_hat"])

    # the paper's image-only stream: same weights, same image payloads, minus the caption and its length varint
    paper = TACO(TACOConfig(N=8, M=12, heads=2, clip="random", send_caption=False), text=text)
    paper.load_state_dict(m.state_dict())
    paper.eval().update()
    bare = paper.compress(x, CAPS)["strings"]
    for s, b, cap in zip(streams, bare, CAPS):
        assert container.unpack(b, paper.model_id).payloads == container.unpack(s, m.model_id).payloads[:2]
        assert len(s) - len(b) == len(encode_caption(cap)) + 1  # + the payload's length byte in the header
        assert paper.caption_bytes(b) == 0 and paper.caption_of(b) is None
    assert torch.equal(paper.decompress(bare), x_hat)  # the decoder never reads the text


def test_stream_without_or_with_a_damaged_caption_payload_is_refused(text):
    m = _model(text).eval().update()
    s = m.compress(torch.rand(1, 3, 64, 64), CAPS[:1])["strings"][0]
    c = container.unpack(s, m.model_id)
    no_caption = container.pack(m.model_id, c.shapes, c.payloads[:2])
    with pytest.raises(BitstreamError, match=r"expects 3 payloads \(y, z, caption\), the stream has 2 \(its caption"):
        m.decompress([no_caption])
    cut = container.pack(m.model_id, c.shapes, [*c.payloads[:2], c.payloads[2][:-2]])
    with pytest.raises(BitstreamError, match=r"payload 2 \(caption\): caption payload is truncated"):
        m.decompress([cut])
    with pytest.raises(BitstreamError, match=r"payload 2 \(caption\)"):
        m.caption_of(container.pack(m.model_id, c.shapes, [*c.payloads[:2], b"\xff\xfe garbage"]))
    with pytest.raises(BitstreamError, match="CRC32 mismatch"):
        m.decompress([s[:-6] + s[-5:-4] + s[-6:-5] + s[-4:]])
    with pytest.raises(BitstreamError, match="empty"):
        decode_caption(b"")
    assert decode_caption(encode_caption("x" * 5000)) == "x" * 5000
    with pytest.raises(ValueError, match="caption is empty"):
        encode_caption("  ")
    with pytest.raises(ValueError, match="one caption per image"):
        m.compress(torch.rand(2, 3, 64, 64), CAPS[:1])


def test_registry_entry_and_unknown_codec():
    c = get_codec("taco")
    assert c.encoder_caption and not c.needs_side and not c.needs_caption
    assert [n for n, e in CODECS.items() if e.encoder_caption] == ["taco"]
    assert resolve("taco", "paper", rate_point=5).train.lmbda == 0.015  # λ = 150·10⁻⁴, the paper's highest
    p = resolve("taco", "paper").model
    assert (p.k_p, p.k_j, p.beta, p.max_text_length, p.clip) == (3.5, 0.0025, 40.0, 38, "openai/clip-vit-base-patch32")
    assert len(resolve("taco", "lab", rate_point=0).to_dict()["model_config"]) == len(TACOConfig.field_names()) + 1
    with pytest.raises(ConfigError, match=r"unknown codec 'tacos' \(expected one of: hyperprior, ndic, mdic, taco\)"):
        get_codec("tacos")
    with pytest.raises(ConfigError, match="unknown field 'gamma' of TACOConfig or TrainConfig"):
        resolve("taco", "smoke", overrides={"gamma": 1.0})


def test_lab_text_encoder_is_not_called_clip():
    t = load_text_side("lab")
    assert t.dim == 64 and not t.is_clip and t.record["is_clip"] is False and "NOT OpenAI CLIP" in t.record["what"]
    with pytest.raises(FileNotFoundError, match="CLIP folder not found"):
        load_text_side("/nonexistent/clip")


def test_smoke_train_resume_eval_through_the_run_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("MDIC_LAB_CACHE", str(tmp_path / "cache"))  # fresh oracle main-view captions
    run = resolve("taco", "smoke", rate_point=0, overrides={"steps": 4, "log_every": 1, "ckpt_every": 10})
    full = train_run(run, tmp_path / "full", progress=False)
    assert full["step"] == 4 and full["captions"] == {"hits": 0, "misses": 8}
    train_run(run, tmp_path / "sliced", max_steps=2, progress=False)
    train_run(run, tmp_path / "sliced", progress=False)
    a, b = (RunDir(tmp_path / d).load_checkpoint()["model"]["state_dict"] for d in ("full", "sliced"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # stopped + resumed = uninterrupted
    assert not any(k.startswith("text") for k in a)  # the frozen text encoder is loaded, not checkpointed
    rec = RunDir(tmp_path / "full").read_record()
    assert rec["text_encoder"]["source"] == "lab" and rec["text_encoder"]["is_clip"] is False
    assert rec["image_tower"]["fitted"] and rec["data"]["captions_of"].startswith("main view")
    assert list(RunDir(tmp_path / "full").read_metrics()[0])[2:10] == list(get_codec("taco").load_hooks().log_fields)

    summary = evaluate_run(tmp_path / "full", limit=2, use_lpips=False)
    assert summary["n"] == 2 and summary["all_round_trip"] and summary["caption_bytes"] > 50
    rows = RunDir(tmp_path / "full").read_eval_rows("test")
    assert list(rows[0]) == EVAL_FIELDS
    from mdic_lab.data.main_captions import oracle_main_caption
    from mdic_lab.runs.coding import load_run

    model, run2, hooks = load_run(tmp_path / "full")
    npix = 128 * 256
    for i, r in enumerate(rows):  # coded bpp = (image + caption bytes) · 8 / pixels
        cap = oracle_main_caption("test", 0, i)
        assert int(r["caption_bytes"]) == len(encode_caption(cap))
        assert float(r["caption_bpp"]) == pytest.approx(8 * int(r["caption_bytes"]) / npix, abs=1e-6)
        stream = hooks.compress(model, torch.stack([hooks.open_data(run2, "synthetic", "test", length=2)[i]["left"]]),
                                [cap])[0]
        assert float(r["bpp_coded"]) == pytest.approx(8 * len(stream) / npix, abs=1e-6)
        img = container.unpack(stream).payloads[:2]
        assert len(stream) == container.header_size(model.model_id, {"x": (128, 256), "z": (2, 4)},
                                                    [len(p) for p in container.unpack(stream).payloads]) \
            + sum(map(len, img)) + int(r["caption_bytes"]) + 4
        assert float(r["bpp_coded"]) > float(r["bpp_payload"]) > float(r["caption_bpp"]) > 0


def _png(path, h, w, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_compress_reads_the_caption_and_decompress_needs_none(tmp_path, capsys):
    from mdic_lab.cli import main

    train_run(resolve("taco", "smoke", overrides={"steps": 1}), tmp_path / "taco", progress=False)
    train_run(resolve("hyperprior", "smoke", overrides={"steps": 1}), tmp_path / "hp", progress=False)
    img = _png(tmp_path / "x.png", 64, 128, 0)
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "taco"), str(img), "--caption", CAPS[1], "-o", str(tmp_path / "x.t")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["caption_bytes"] == len(encode_caption(CAPS[1])) and info["bytes"] == (tmp_path / "x.t").stat().st_size
    assert info["bpp_coded"] == pytest.approx(8 * info["bytes"] / (64 * 128))
    assert main(["decompress", str(tmp_path / "taco"), str(tmp_path / "x.t"), "-o", str(tmp_path / "y.png")]) == 0
    assert Image.open(tmp_path / "y.png").size == (128, 64)
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "taco"), str(img), "-o", str(tmp_path / "z.t")]) == 2
    assert "encoder reads a caption of the image: pass --caption TEXT" in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "hp"), str(img), "--caption", "x", "-o", str(tmp_path / "z.t")]) == 2
    assert "--caption does not apply to hyperprior (it applies to: taco)" in capsys.readouterr().err
    assert main(["decompress", str(tmp_path / "taco"), str(tmp_path / "x.t"), "--caption", "x", "-o",
                 str(tmp_path / "z.png")]) == 2
    assert "--caption does not apply to taco (it applies to: mdic)" in capsys.readouterr().err
    assert main(["codecs"]) == 0
    out = capsys.readouterr().out
    assert "taco: TACO" in out and "encoder needs: the image and a caption of it" in out


def test_a_clipmodel_folder_is_the_paper_path(tmp_path):
    """``clip=<folder>`` loads a CLIPModel (here a tiny RANDOM one: this checks the path, not CLIP's quality)."""
    from transformers import CLIPConfig, CLIPModel

    from mdic_lab.models.mdic.tokenizer import load_clip_tokenizer

    cfg = CLIPConfig(text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406,
                                      eos_token_id=49407, pad_token_id=49407),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=16), projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(tmp_path / "clip")
    load_clip_tokenizer(None).save_pretrained(str(tmp_path / "clip"))
    m = TACO(TACOConfig(N=8, M=8, heads=2, clip=str(tmp_path / "clip"), max_text_length=38))
    assert m.text.is_clip and m.tower is None and m.text.record["is_clip"] is True
    assert {k.split(".")[0] for k in m.state_dict()} == {"g_a", "adapter", "g_s", "hyper"}  # CLIP is not trained
    x = torch.rand(2, 3, 64, 64)
    t = m.loss(m(x, CAPS), x)
    t["loss"].backward()
    assert torch.isfinite(t["joint"].detach()) and m.g_s[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.text.clip_model.parameters())
    m.eval().update()
    s = m.compress(x[:1], CAPS[:1])["strings"]
    assert m.caption_of(s[0]) == CAPS[0] and torch.equal(m.decompress(s), m(x[:1], CAPS[:1], mode="dequantize")["x_hat"])
