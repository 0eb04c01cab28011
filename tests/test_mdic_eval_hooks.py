"""MDIC's evaluation hooks code each image once: the encoder's indices and the decoder's decoded
indices of a batch are kept for the estimate and the round-trip check, which still compare the
indices the decoder really decoded with the encoder's."""

import torch

from mdic_lab.models.mdic.config import MDICConfig
from mdic_lab.models.mdic.model import MDIC
from mdic_lab.registry import get_codec

torch.set_num_threads(1)


def _setup():
    torch.manual_seed(0)
    model = MDIC(MDICConfig.preset("smoke")).eval()
    hooks = get_codec("mdic").load_hooks()
    g = torch.Generator().manual_seed(1)
    h, w = model.config.image_size
    x, y = torch.rand(3, 3, h, w, generator=g), torch.rand(3, 3, h, w, generator=g)
    return model, hooks, x, y, ["a car", "a tree", "two trees"]


@torch.no_grad()
def test_each_image_is_range_coded_and_decoded_once_and_matches_the_model():
    model, hooks, x, y, caps = _setup()
    calls = {"compress": 0, "decompress": 0}
    em = model.entropy_model
    for name in calls:  # count the real coder's calls (they still run)
        real = getattr(em, name)

        def counted(*a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(*a, **k)
        setattr(em, name, counted)
    streams = hooks.compress(model, x)
    x_hat = hooks.decompress(model, streams, y, caps, seed=0, num_inference_steps=2)
    est = hooks.estimated_bpp(model, x, y)
    ok = hooks.round_trip(model, x, y, streams, x_hat)
    assert calls == {"compress": 1, "decompress": 1}  # one batched encode, one batched decode: nothing repeated
    assert ok == [True, True, True]
    # the same as the model's own calls
    assert streams == model.compress(x)["strings"]
    assert torch.equal(x_hat, model.decompress(streams, y, caps, seed=0, num_inference_steps=2))
    h, w = model.config.image_size
    assert est == [float(b) / (h * w) for b in model.entropy_model.rate_bits(model.encode_x(x)[2].indices)]


@torch.no_grad()
def test_round_trip_still_catches_streams_that_decode_to_other_indices():
    model, hooks, x, y, caps = _setup()
    streams = hooks.compress(model, x)
    swapped = [streams[1], streams[0], streams[2]]  # the decoder receives another image's stream
    x_hat = hooks.decompress(model, swapped, y, caps, seed=0, num_inference_steps=2)
    same = torch.equal(model.encode_x(x[:1])[2].indices, model.encode_x(x[1:2])[2].indices)
    assert hooks.round_trip(model, x, y, swapped, x_hat) == [same, same, True]
    # another model's memo is never used for this one
    other = MDIC(MDICConfig.preset("smoke")).eval()
    assert hooks._recall("received", other, tuple(swapped)) is None


def test_evaluation_reuses_vae_latents_only_when_asked_and_then_reports_no_times(monkeypatch):
    """reuse_latents: a second evaluation of the same pairs runs no VAE encoder and gives the same rows,
    with NaN times; the default runs the VAE every time (times honest), even inside an outer memo."""
    from mdic_lab.models.mdic import backbone as bb_mod
    from mdic_lab.runs.evaluate import evaluate_model

    model, hooks, x, y, caps = _setup()
    pairs = [{"left": x[i], "right": y[i], "caption": caps[i], "index": i} for i in range(3)]
    monkeypatch.setattr(bb_mod, "_ENCODE_MEMO", type(bb_mod._ENCODE_MEMO)())
    runs = []
    real = model.backbone.vae.encode
    monkeypatch.setattr(model.backbone.vae, "encode", lambda t: runs.append(len(t)) or real(t))
    kw = dict(use_lpips=False, num_inference_steps=2, batch_size=3)
    timed = evaluate_model(model, hooks, pairs, **kw)
    n_timed = len(runs)
    with bb_mod.encode_memo():  # an outer memo does not leak into a timed evaluation
        again = evaluate_model(model, hooks, pairs, **kw)
    assert n_timed == 2 and len(runs) == 2 * n_timed
    first = evaluate_model(model, hooks, pairs, reuse_latents=True, **kw)
    assert len(runs) == 3 * n_timed  # nothing met inside a memo yet: the VAE runs
    second = evaluate_model(model, hooks, pairs, reuse_latents=True, **kw)
    assert len(runs) == 3 * n_timed  # the same pairs: no VAE encoding at all
    timing = ("encode_s", "decode_s")
    for rows in (first, second):
        assert all(r[k] != r[k] for r in rows for k in timing)  # NaN: the VAE's time is not in them
    assert all(r[k] > 0 for r in timed + again for k in timing)
    strip = [[{k: (None if v != v else v) for k, v in r.items() if k not in timing} for r in rows]
             for rows in (timed, again, first, second)]  # NaN (no MS-SSIM at this size) compared as None
    assert strip[0] == strip[1] == strip[2] == strip[3]
