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
