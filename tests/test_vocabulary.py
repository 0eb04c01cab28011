"""Object-noun vocabulary (MDIC Sec. 3.2, N = 14) and object-masked captions (Eq. 9)."""

import json

import pytest

from mdic_lab.data.synthetic import generate_sample
from mdic_lab.data.vocabulary import (MASK_TOKEN, OBJECT_LEXICON, Vocabulary, build_vocabulary, extract_nouns,
                                      noun_counts)


def test_plurals_synonyms_and_multiword_nouns():
    cap = "Two Trees, three people and a man near traffic lights, a street sign and the street"
    assert extract_nouns(cap) == ["tree", "person", "person", "traffic light", "sign", "street"]
    assert extract_nouns("buses and bicycles, bikes") == ["bus", "bicycle", "bicycle"]
    assert extract_nouns("carpet and scarf") == []  # word boundaries: no 'car' inside words


def test_every_lexicon_form_maps_to_its_noun():
    for form, noun in OBJECT_LEXICON.items():
        assert extract_nouns(f"look: {form}.") == [noun]


def test_most_frequent_nouns_with_alphabetical_ties():
    caps = ["a car and a bus", "two cars", "a tree", "a bus", "a sign"]
    v = build_vocabulary(caps, n=3)
    assert v.nouns == ("bus", "car", "sign") and v.counts == (2, 2, 1)
    assert build_vocabulary(caps, n=10).nouns == ("bus", "car", "sign", "tree")
    assert noun_counts(["a car, a car"], per_caption=True)["car"] == 1
    with pytest.raises(ValueError, match="positive int"):
        build_vocabulary(caps, n=0)


def test_masked_caption_and_targets_in_order():
    v = Vocabulary(("car", "person", "traffic light"))
    masked, targets = v.mask_caption("A red car, two people and a traffic light near a tree")
    assert masked == f"A red {MASK_TOKEN}, two {MASK_TOKEN} and a {MASK_TOKEN} near a tree"
    assert targets == [0, 1, 2]
    assert v.mask_caption("only a tree") == ("only a tree", [])
    assert v.index("person") == 1
    with pytest.raises(KeyError, match="unknown noun 'bus'"):
        v.index("bus")


def test_vocabulary_validation_and_json_round_trip(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(("car", "car"))
    with pytest.raises(ValueError, match="not in the object lexicon"):
        Vocabulary(("car", "spaceship"))
    v = build_vocabulary(["a car and a tree", "a car"], n=2)
    v.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == v
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocabulary.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        Vocabulary.load(tmp_path / "missing.json")
    assert json.loads((tmp_path / "vocab.json").read_text())["nouns"] == ["car", "tree"]


def test_synthetic_training_split_reaches_fourteen_nouns():
    caps = [generate_sample("train", 0, i).caption for i in range(120)]
    v = build_vocabulary(caps, n=14)
    assert len(v) == 14
    for cap in caps[:20]:
        masked, targets = v.mask_caption(cap)
        assert masked.count(MASK_TOKEN) == len(targets) > 0
        # nothing of the vocabulary is left unmasked, and unmasking restores the nouns
        assert not set(extract_nouns(masked)) & set(v.nouns)
        assert [v.nouns[t] for t in targets] == [n for n in extract_nouns(cap) if n in v.nouns]
