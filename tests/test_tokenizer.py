"""The offline CLIP tokenizer: real BPE ids, loud failure on placeholder vocabularies."""

import os

import pytest

from mdic_lab.models.mdic.tokenizer import (
    CLIP_VOCAB_SIZE, EOT_ID, SOT_ID, check_tokenizer, load_clip_tokenizer, write_clip_tokenizer_files,
)

SENTENCES = [
    "a photo of a cat",
    "A red car parked next to two trees, on the road!",
    "three pedestrians cross the street near a traffic light",
]


@pytest.fixture(scope="module")
def tok():
    return load_clip_tokenizer(None)


def test_vocabulary_size_and_specials(tok):
    assert len(tok) == CLIP_VOCAB_SIZE == 49408
    assert tok.bos_token_id == SOT_ID == 49406
    assert tok.eos_token_id == EOT_ID == 49407
    assert tok.convert_ids_to_tokens([SOT_ID, EOT_ID]) == ["<|startoftext|>", "<|endoftext|>"]


def test_known_ids(tok):
    # the well-known CLIP ids of "a photo of a cat" (a=320, photo=1125, of=539, cat=2368)
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_ids_match_open_clip(tok, sentence):
    from open_clip.tokenizer import SimpleTokenizer

    st = SimpleTokenizer()
    assert tok(sentence).input_ids == [st.sot_token_id] + st.encode(sentence) + [st.eot_token_id]


def test_padding_to_max_length(tok):
    ids = tok("a cat", padding="max_length", max_length=8, truncation=True).input_ids
    assert ids == [49406, 320, 2368, 49407, 49407, 49407, 49407, 49407]


def test_files_and_local_directory_round_trip(tmp_path, tok):
    d = write_clip_tokenizer_files(tmp_path / "raw")
    assert sorted(os.listdir(d)) == ["merges.txt", "vocab.json"]
    from_files = load_clip_tokenizer(d)
    tok.save_pretrained(str(tmp_path / "saved"))
    from_saved = load_clip_tokenizer(tmp_path / "saved")
    for s in SENTENCES:
        assert from_files(s).input_ids == from_saved(s).input_ids == tok(s).input_ids


def test_two_token_placeholder_raises(tmp_path):
    from transformers import CLIPTokenizer

    placeholder = CLIPTokenizer(vocab={"<|startoftext|>": 0, "<|endoftext|>": 1}, merges=[])
    assert len(placeholder) == 2
    with pytest.raises(ValueError, match="unusable vocabulary of 2 tokens"):
        check_tokenizer(placeholder, "a test placeholder")


def test_offline_hub_id_fails_loudly():
    """Offline, CLIPTokenizer.from_pretrained(hub id) returns a 2-token vocabulary: must raise."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    from transformers import CLIPTokenizer

    try:
        raw = CLIPTokenizer.from_pretrained("openai/clip-vit-base-patch32")
    except OSError:
        raw = None
    if raw is not None and len(raw) >= 1000:
        pytest.skip("the hub tokenizer is in the local cache: nothing to guard against here")
    with pytest.raises((ValueError, OSError)) as err:
        load_clip_tokenizer("openai/clip-vit-base-patch32")
    if raw is not None:  # the silent 2-token case must become a clear ValueError
        assert err.type is ValueError and "unusable vocabulary" in str(err.value)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer directory not found"):
        load_clip_tokenizer(tmp_path / "nope")
