"""Object-noun vocabulary and the object-masked captions of MDIC's text supervision (TS).

MDIC (Sec. 3.2) builds "a vocabulary of the N most frequent object nouns in the dataset"
(N = 14, Sec. 4.1); during training, object words of the side-view caption ``O_text`` are
replaced by mask tokens, ``M_text = M(O_text)`` (Eq. 9), and the mask predictor must
recover them from the masked text and the masked visual side information (Eqs. 10–12),
with the cross-entropy loss ``L_mask = (1/n) Σ_i CE(P_i, T_i)`` (Eq. 20). This module
gives the vocabulary and ``M``: the masked caption plus the targets ``T_i`` (noun ids in
the order the masks appear).

Nouns are recognised from a lexicon of object nouns with their surface forms (plurals,
synonyms and multi-word names: "trees" → tree, "people" → person, "traffic lights" →
traffic light), longest match first, case-insensitive, on word boundaries.

Examples
--------
>>> extract_nouns("Two trees and a red car near people on the sidewalk")
['tree', 'car', 'person', 'sidewalk']
>>> vocab = build_vocabulary(["a car and a tree", "two cars", "a person"], n=2)
>>> vocab.nouns
('car', 'person')
>>> vocab.mask_caption("a red car next to a person and a tree")
('a red [MASK] next to a [MASK] and a tree', [0, 1])
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from mdic_lab.atomic import atomic_write

__all__ = [
    "OBJECT_LEXICON",
    "MASK_TOKEN",
    "extract_nouns",
    "noun_counts",
    "build_vocabulary",
    "Vocabulary",
]

MASK_TOKEN = "[MASK]"

# canonical noun -> surface forms (singular, plural, synonyms)
_FORMS: dict[str, tuple[str, ...]] = {
    "car": ("car", "cars", "automobile", "automobiles"),
    "truck": ("truck", "trucks", "lorry", "lorries"),
    "bus": ("bus", "buses", "busses"),
    "van": ("van", "vans"),
    "motorcycle": ("motorcycle", "motorcycles", "motorbike", "motorbikes", "scooter", "scooters"),
    "bicycle": ("bicycle", "bicycles", "bike", "bikes"),
    "person": ("person", "persons", "people", "man", "men", "woman", "women", "pedestrian",
               "pedestrians", "child", "children", "boy", "boys", "girl", "girls", "cyclist", "cyclists"),
    "tree": ("tree", "trees"),
    "bush": ("bush", "bushes", "shrub", "shrubs", "hedge", "hedges"),
    "building": ("building", "buildings"),
    "house": ("house", "houses"),
    "road": ("road", "roads"),
    "street": ("street", "streets"),
    "sidewalk": ("sidewalk", "sidewalks", "pavement", "pavements"),
    "grass": ("grass", "lawn", "lawns"),
    "sky": ("sky", "skies"),
    "pole": ("pole", "poles", "lamp post", "lamp posts", "street lamp", "street lamps", "streetlight",
             "streetlights", "street light", "street lights"),
    "sign": ("sign", "signs", "street sign", "street signs", "road sign", "road signs", "traffic sign",
             "traffic signs", "stop sign", "stop signs"),
    "traffic light": ("traffic light", "traffic lights", "stop light", "stop lights", "traffic signal",
                      "traffic signals"),
    "fence": ("fence", "fences", "railing", "railings"),
    "bench": ("bench", "benches"),
    "train": ("train", "trains"),
    "tram": ("tram", "trams", "streetcar", "streetcars"),
    "wall": ("wall", "walls"),
    "window": ("window", "windows"),
    "cloud": ("cloud", "clouds"),
    "hill": ("hill", "hills"),
    "mountain": ("mountain", "mountains"),
    "bridge": ("bridge", "bridges"),
    "parking lot": ("parking lot", "parking lots", "car park", "car parks"),
    "highway": ("highway", "highways", "freeway", "freeways"),
}

#: Surface form (lower case) → canonical object noun.
OBJECT_LEXICON: dict[str, str] = {form: noun for noun, forms in _FORMS.items() for form in forms}


@lru_cache(maxsize=16)
def _pattern(forms: tuple[str, ...]) -> re.Pattern:
    alts = sorted(forms, key=lambda s: (-len(s), s))  # longest match first
    body = "|".join(r"\s+".join(re.escape(w) for w in a.split()) for a in alts)
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


def _lexicon(lexicon: Mapping[str, str] | None) -> dict[str, str]:
    lex = OBJECT_LEXICON if lexicon is None else {k.lower(): v for k, v in lexicon.items()}
    if not lex:
        raise ValueError("lexicon is empty (expected surface form -> noun entries)")
    return lex


def _check_caption(caption, name="caption"):
    if not isinstance(caption, str):
        raise TypeError(f"{name} must be a str, got {type(caption).__name__}")


def extract_nouns(caption: str, lexicon: Mapping[str, str] | None = None) -> list[str]:
    """Canonical object nouns of ``caption`` in order of appearance (repeats kept).

    >>> extract_nouns("A traffic light, two signs and a street sign")
    ['traffic light', 'sign', 'sign']
    """
    _check_caption(caption)
    lex = _lexicon(lexicon)
    pat = _pattern(tuple(sorted(lex)))
    return [lex[" ".join(m.group(0).lower().split())] for m in pat.finditer(caption)]


def noun_counts(captions: Iterable[str], lexicon: Mapping[str, str] | None = None,
                per_caption: bool = False) -> Counter:
    """Frequency of each object noun over ``captions``.

    ``per_caption=False`` counts every occurrence; ``True`` counts captions mentioning it.

    >>> noun_counts(["two cars and a car", "a tree"])["car"]
    2
    >>> noun_counts(["two cars and a car", "a tree"], per_caption=True)["car"]
    1
    """
    c: Counter = Counter()
    for cap in captions:
        nouns = extract_nouns(cap, lexicon)
        c.update(set(nouns) if per_caption else nouns)
    return c


@dataclass(frozen=True)
class Vocabulary:
    """The N object nouns of the text-supervision task (index = target id).

    ``counts`` are the frequencies the nouns were chosen by; ``lexicon`` maps surface
    forms to canonical nouns (the default :data:`OBJECT_LEXICON` if ``None``).
    """

    nouns: tuple[str, ...]
    counts: tuple[int, ...] = ()
    mask_token: str = MASK_TOKEN
    lexicon: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if len(set(self.nouns)) != len(self.nouns):
            raise ValueError(f"vocabulary nouns must be unique, got {self.nouns}")
        if self.counts and len(self.counts) != len(self.nouns):
            raise ValueError(f"counts has {len(self.counts)} entries for {len(self.nouns)} nouns")
        lex = _lexicon(self.lexicon)
        unknown = [n for n in self.nouns if n not in set(lex.values())]
        if unknown:
            raise ValueError(f"nouns {unknown} are not in the object lexicon")

    def __len__(self) -> int:
        return len(self.nouns)

    def index(self, noun: str) -> int:
        """Target id of ``noun``."""
        try:
            return self.nouns.index(noun)
        except ValueError:
            raise KeyError(f"unknown noun {noun!r} (expected one of: {', '.join(self.nouns)})") from None

    def mask_caption(self, caption: str) -> tuple[str, list[int]]:
        """``M(O_text)`` of MDIC Eq. 9: mask every vocabulary noun of ``caption``.

        Every surface form of a vocabulary noun ("trees", "people", "traffic light") is
        replaced by one :attr:`mask_token`; nouns outside the vocabulary stay. Returns the
        masked caption and the targets ``T_i`` (noun ids, in order of the masks).

        >>> v = Vocabulary(("tree", "traffic light"))
        >>> v.mask_caption("Trees near a traffic light and a car")
        ('[MASK] near a [MASK] and a car', [0, 1])
        """
        _check_caption(caption)
        lex = _lexicon(self.lexicon)
        keep = {form: noun for form, noun in lex.items() if noun in self.nouns}
        if not keep:
            return caption, []
        targets: list[int] = []

        def sub(m):
            targets.append(self.nouns.index(keep[" ".join(m.group(0).lower().split())]))
            return self.mask_token

        masked = _pattern(tuple(sorted(keep))).sub(sub, caption)
        return masked, targets

    def to_dict(self) -> dict:
        return {"nouns": list(self.nouns), "counts": list(self.counts), "mask_token": self.mask_token}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Vocabulary":
        missing = {"nouns"} - set(d)
        if missing:
            raise ValueError(f"vocabulary dict lacks {sorted(missing)} (expected keys: nouns, counts, mask_token)")
        return cls(tuple(d["nouns"]), tuple(d.get("counts", ())), d.get("mask_token", MASK_TOKEN))

    def save(self, path) -> None:
        """Write the vocabulary as JSON, atomically (temp file + ``os.replace``)."""
        atomic_write(path, lambda fh: json.dump(self.to_dict(), fh, indent=1))

    @classmethod
    def load(cls, path) -> "Vocabulary":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary file {str(path)!r} does not exist")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise ValueError(f"vocabulary file {str(path)!r} is not valid JSON: {e}") from None


def build_vocabulary(captions: Iterable[str], n: int = 14, lexicon: Mapping[str, str] | None = None,
                     per_caption: bool = False, mask_token: str = MASK_TOKEN) -> Vocabulary:
    """The ``n`` most frequent object nouns of ``captions`` (MDIC Sec. 3.2, N = 14 in Sec. 4.1).

    Ties are broken alphabetically; fewer than ``n`` nouns are returned if the captions
    hold fewer distinct object nouns.

    >>> build_vocabulary(["a bus", "a car", "a tree and a tree"], n=2).nouns
    ('tree', 'bus')
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    counts = noun_counts(captions, lexicon, per_caption)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return Vocabulary(tuple(k for k, _ in ranked), tuple(v for _, v in ranked), mask_token, lexicon)
