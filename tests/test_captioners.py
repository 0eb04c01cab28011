"""Captioners: tiny local BLIP-2 end to end, the caption cache, the oracle captioner.

The tiny BLIP-2 has random weights and a locally built word-level tokenizer, so its
captions are random words: these tests check the loading and generation path and the
cache, not caption quality.
"""

import json

import numpy as np
import pytest
import torch

from mdic_lab.data.captioners import (Blip2Captioner, CachedCaptioner, CaptionCache, OracleCaptioner, as_uint8_image,
                                      image_key, make_tiny_blip2)
from mdic_lab.data.synthetic import SyntheticStereo


@pytest.fixture(scope="module")
def tiny_blip2(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_blip2(tmp_path_factory.mktemp("tiny_blip2"), seed=0)


def test_tiny_blip2_end_to_end_with_cache(tiny_blip2, tmp_path):
    cap = Blip2Captioner(str(tiny_blip2), max_new_tokens=6)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)
    text = cap(img)
    assert isinstance(text, str) and 0 < len(text.split()) <= 6
    assert cap.caption_batch([img, img[::-1].copy()])[0] == text  # greedy decoding is deterministic

    cached = CachedCaptioner(cap, tmp_path / "captions.json")
    assert cached(img) == text and (cached.hits, cached.misses) == (0, 1)
    assert cached(torch.from_numpy(img).permute(2, 0, 1).float() / 255) == text  # same pixels, same key
    assert (cached.hits, cached.misses) == (1, 1)
    stored = json.loads((tmp_path / "captions.json").read_text())
    assert list(stored.values()) == [text]
    # a read-only cache answers from disk, and refuses unknown images clearly
    ro = CachedCaptioner(None, tmp_path / "captions.json", identity=cap.identity)
    assert ro(img) == text
    with pytest.raises(KeyError, match="no cached caption"):
        ro(img[::-1].copy())


def test_missing_model_gives_clear_error(tmp_path):
    with pytest.raises(OSError, match="could not load BLIP-2 from .*nowhere"):
        Blip2Captioner(str(tmp_path / "nowhere"))


def test_image_key_and_normalisation():
    a = np.zeros((4, 5, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert image_key(a, "m") == image_key(a.copy(), "m")
    assert image_key(a, "m") != image_key(b, "m") and image_key(a, "m") != image_key(a, "n")
    assert as_uint8_image(np.full((3, 4, 5), 1.0, np.float32)).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="NaN"):
        as_uint8_image(np.full((4, 5, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_uint8_image(np.full((4, 5, 3), 2.0, np.float32))


def test_corrupted_cache_file_is_reported(tmp_path):
    (tmp_path / "c.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        CaptionCache(tmp_path / "c.json")
    with pytest.raises(ValueError, match="identity"):
        CachedCaptioner(lambda im: "x", tmp_path / "d.json")


def test_oracle_captioner_matches_dataset():
    ds = SyntheticStereo("val", length=2, cache=False)
    oracle = OracleCaptioner(ds)
    assert oracle(1) == ds[1]["caption"] and "oracle" in oracle.identity
