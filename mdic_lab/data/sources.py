"""One door to every stereo data set: ``open_pairs("kitti:/data/kitti", "train", captioner=...)``.

A *data spec* names where the pairs come from:

* ``"synthetic"`` -- the embedded synthetic street world (:class:`~.synthetic.SyntheticStereo`;
  captions are its oracle captions of the side view, written from the scene graph);
* ``"kitti:/path/to/root"`` -- KITTI Stereo 2012 + 2015 with NDIC's split lists
  (:class:`~.kitti.KittiStereo`: centre crop 370x740, resize to 128x256; train 1576,
  val 50, test 790 pairs; MDIC Sec. 4.1);
* ``"cityscapes:/path/to/root"`` -- Cityscapes left/right (:class:`~.cityscapes.CityscapesStereo`:
  resized to 128x256; train 2975, val 500, test 1525 pairs).

MDIC conditions its decoder on a caption of the side view, ``z_text = E_clip(B_2(I_y))``
(MDIC Eq. 3).  Real data sets carry no captions, so they come from a captioner -- BLIP-2
at paper scale (``captioner="Salesforce/blip2-opt-2.7b"`` or a local folder) -- computed
once per side image and kept in a content-keyed JSON cache
(:class:`~.captioners.CachedCaptioner`: key = sha256(captioner identity | pixels)).  The
BLIP-2 weights are loaded only when a caption is missing from the cache, so a captioned
data set is re-read without loading BLIP-2 at all.

Items have the keys the trainers and evaluators use: ``left`` (``I_x``) and ``right``
(``I_y``) float32 (3, H, W) in [0, 1], ``caption`` (of ``I_y``), ``nouns``, ``index``,
``name``, plus what the reader gives (``paths``; ``labels`` for Cityscapes with gtFine
and for the synthetic world; ``side_valid`` for the synthetic world).

>>> parse_data_spec("synthetic")
DataSpec(kind='synthetic', root=None)
>>> parse_data_spec("imagenet:/x")
Traceback (most recent call last):
...
ValueError: unknown data kind 'imagenet' in data spec 'imagenet:/x' (expected one of: synthetic, kitti:/path/to/root, cityscapes:/path/to/root)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATA_KINDS", "DataSpec", "parse_data_spec", "open_pairs", "PairSource", "make_captioner",
           "LazyBlip2Captioner", "default_caption_cache_dir", "describe_dataset", "PAPER_CAPTIONER"]

#: The kinds of data spec and the layout each expects under its root.
DATA_KINDS = ("synthetic", "kitti", "cityscapes")
#: BLIP-2 checkpoint of the paper's captions (MDIC Sec. 4.1 uses BLIP-2).
PAPER_CAPTIONER = "Salesforce/blip2-opt-2.7b"
_EXPECTED = "synthetic, kitti:/path/to/root, cityscapes:/path/to/root"


def _layout(kind: str) -> str:
    if kind == "kitti":
        from .kitti import _LAYOUT
    else:
        from .cityscapes import _LAYOUT
    return _LAYOUT


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``kind`` in :data:`DATA_KINDS` and, for real data, the absolute ``root``."""

    kind: str
    root: Path | None = None

    def __str__(self) -> str:
        return self.kind if self.root is None else f"{self.kind}:{self.root}"

    @property
    def is_real(self) -> bool:
        return self.kind != "synthetic"


def parse_data_spec(spec) -> DataSpec:
    """``"synthetic"`` | ``"kitti:ROOT"`` | ``"cityscapes:ROOT"`` → :class:`DataSpec` (root made absolute).

    A missing root raises ``FileNotFoundError`` naming the layout the reader expects.

    >>> str(parse_data_spec(DataSpec("synthetic")))
    'synthetic'
    >>> parse_data_spec("kitti")
    Traceback (most recent call last):
    ...
    ValueError: data spec 'kitti' has no root (expected kitti:/path/to/root)
    """
    if isinstance(spec, DataSpec):
        spec = str(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"data spec must be a str such as 'kitti:/data/kitti', got {type(spec).__name__}")
    text = str(spec).strip()
    kind, sep, root = text.partition(":")
    kind = kind.strip().lower()
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data kind {kind!r} in data spec {text!r} (expected one of: {_EXPECTED})")
    if kind == "synthetic":
        if root.strip():
            raise ValueError(f"data spec {text!r}: the synthetic world takes no root (expected 'synthetic')")
        return DataSpec("synthetic")
    if not root.strip():
        raise ValueError(f"data spec {text!r} has no root (expected {kind}:/path/to/root)")
    path = Path(os.path.expanduser(root.strip())).absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"{kind} root {str(path)!r} of data spec {text!r} does not exist "
                                f"(expected {_layout(kind)})")
    return DataSpec(kind, path)


def default_caption_cache_dir() -> Path:
    """``$MDIC_LAB_CACHE/captions`` if set, else ``~/.cache/mdic_lab/captions``."""
    root = os.environ.get("MDIC_LAB_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "mdic_lab") / "captions"


def _check_blip2_source(model: str) -> None:
    """Fail early (before any data is read) if ``model`` is neither a saved folder nor a cached hub id."""
    p = Path(os.path.expanduser(model))
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"captioner folder {str(p)!r} has no config.json (expected a BLIP-2 saved "
                                    "with save_pretrained, model + processor)")
        return
    if p.exists() or model.count("/") != 1:
        raise FileNotFoundError(f"captioner {model!r} is neither a local BLIP-2 folder nor a hub id "
                                f"(expected e.g. {PAPER_CAPTIONER!r} or a folder saved with save_pretrained)")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(model, "config.json"), str):
        raise FileNotFoundError(f"BLIP-2 {model!r} is not in the local Hugging Face cache and nothing is downloaded "
                                f"at run time (fetch it first: `huggingface-cli download {model}`, or pass a local "
                                "folder saved with save_pretrained)")


class LazyBlip2Captioner:
    """A :class:`~.captioners.Blip2Captioner` loaded on its first caption.

    Its ``identity`` (the cache key prefix) is known without loading the weights, so a
    :class:`~.captioners.CachedCaptioner` around it answers cached images without ever
    loading BLIP-2 (``loaded`` stays False).
    """

    def __init__(self, model: str, max_new_tokens: int = 30, device: str | None = None):
        from .captioners import blip2_identity

        _check_blip2_source(str(model))
        self.model, self.max_new_tokens, self.device = str(model), int(max_new_tokens), device
        self.identity = blip2_identity(self.model, self.max_new_tokens)
        self._captioner = None

    @property
    def loaded(self) -> bool:
        return self._captioner is not None

    def __call__(self, image) -> str:
        if self._captioner is None:
            from .captioners import Blip2Captioner

            import torch

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._captioner = Blip2Captioner(self.model, max_new_tokens=self.max_new_tokens, device=device)
        return self._captioner(image)


def make_captioner(captioner, cache_dir=None, max_new_tokens: int = 30, device: str | None = None):
    """A cached captioner of side images, or ``None``.

    ``captioner`` is ``None``; a BLIP-2 folder or hub id (str / path: a
    :class:`LazyBlip2Captioner`); a :class:`~.captioners.CachedCaptioner` (used as is); or
    any ``image → str`` callable with an ``identity`` attribute.  The cache file is
    ``cache_dir/<sha256(identity)[:16]>.json`` (default :func:`default_caption_cache_dir`).
    """
    from .captioners import CachedCaptioner

    if captioner is None or isinstance(captioner, CachedCaptioner):
        return captioner
    if isinstance(captioner, (str, os.PathLike)):
        if not str(captioner).strip():
            raise ValueError("captioner is an empty string (expected a BLIP-2 folder or hub id)")
        captioner = LazyBlip2Captioner(str(captioner), max_new_tokens=max_new_tokens, device=device)
    if not callable(captioner):
        raise TypeError(f"captioner must be a BLIP-2 path / hub id or a callable image -> str, "
                        f"got {type(captioner).__name__}")
    identity = getattr(captioner, "identity", None)
    if not identity:
        raise ValueError("captioner callables need an 'identity' attribute (the caption cache key prefix)")
    root = Path(cache_dir) if cache_dir is not None else default_caption_cache_dir()
    name = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return CachedCaptioner(captioner, root / f"{name}.json")


def _captioner_arg(captioner):
    """What to record in a run's config.json for ``captioner`` (a path/hub id, or its identity)."""
    if captioner is None:
        return None
    if isinstance(captioner, (str, os.PathLike)):
        p = Path(os.path.expanduser(str(captioner)))
        return str(p.absolute()) if p.is_dir() else str(captioner)
    inner = getattr(captioner, "captioner", captioner)
    return getattr(inner, "model", None) or getattr(captioner, "identity", None) or type(captioner).__name__


class PairSource:
    """A stereo data set opened by :func:`open_pairs` (a torch ``Dataset``: ``len`` and ``[i]``).

    Attributes: ``spec`` (:class:`DataSpec`), ``split``, ``size``, ``base`` (the reader),
    ``captioner`` (a :class:`~.captioners.CachedCaptioner` or ``None``).
    """

    def __init__(self, base, spec: DataSpec, split: str, size, length: int, captioner=None,
                 captioner_arg=None, override_captions: bool = False):
        self.base, self.spec, self.split, self.size = base, spec, split, tuple(size)
        self.length = int(length)
        self.captioner, self.captioner_arg = captioner, captioner_arg
        self._override = override_captions  # synthetic world + a real captioner: replace the oracle captions

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index) -> dict:
        i = int(index)
        if not -self.length <= i < self.length:
            raise IndexError(f"index {index} out of range for {self.spec.kind} {self.split!r} of length {self.length}")
        i %= self.length
        item = dict(self.base[i])
        if self._override:
            from .vocabulary import extract_nouns

            item["caption"] = self.captioner(item["right"])
            item["nouns"] = list(dict.fromkeys(extract_nouns(item["caption"])))
        item["index"] = i
        if "paths" in item:
            item.setdefault("name", item["paths"][0])
        return item

    @property
    def caption_stats(self) -> dict:
        """Caption-cache ``hits`` / ``misses`` so far (misses = captions actually computed)."""
        c = self.captioner
        return {"hits": c.hits, "misses": c.misses} if c is not None else {"hits": 0, "misses": 0}

    def prepare_captions(self) -> dict:
        """Caption every side view now (filling the cache); returns :attr:`caption_stats`."""
        if self.captioner is not None:
            for i in range(self.length):
                self[i]
        return self.caption_stats

    def reload_captions(self) -> None:
        """Re-read the caption cache file (after another process filled it)."""
        if self.captioner is not None:
            from .captioners import CaptionCache

            self.captioner.cache = CaptionCache(self.captioner.cache.path)

    def describe(self) -> dict:
        """Plain-JSON description recorded in a run's ``config.json`` (``data``)."""
        if self.captioner is not None:
            cap = self.captioner_arg
        else:
            cap = "oracle" if self.spec.kind == "synthetic" else None
        out = {"spec": str(self.spec), "kind": self.spec.kind, "split": self.split, "size": list(self.size),
               "length": self.length, "captioner": cap,
               "captioner_identity": self.captioner.identity if self.captioner is not None else None}
        if self.spec.kind == "synthetic":
            out["seed"] = self.base.seed
        return out

    def __repr__(self) -> str:
        return f"PairSource({str(self.spec)!r}, split={self.split!r}, length={self.length})"


def open_pairs(spec, split: str, *, size=(128, 256), captioner=None, length: int | None = None, seed: int = 0,
               cache_dir=None, caption_cache=None, captions: bool = True, max_new_tokens: int = 30,
               device: str | None = None) -> PairSource:
    """Open ``split`` of the data set named by ``spec`` as a :class:`PairSource`.

    Parameters
    ----------
    spec : str or DataSpec
        ``"synthetic"``, ``"kitti:/path/to/root"`` or ``"cityscapes:/path/to/root"``.
    split : {'train', 'val', 'test'}
    size : (int, int)
        Output ``(H, W)`` of both views (paper: 128x256).
    captioner : str, callable or None
        BLIP-2 folder / hub id (e.g. ``"Salesforce/blip2-opt-2.7b"``) or an ``image → str``
        callable with an ``identity``.  Real data with ``captions=True`` requires one; the
        synthetic world uses its oracle captions unless one is given.
    length : int, optional
        Use the first ``length`` pairs (real data: of the split list / sorted file list;
        only those files need to exist for KITTI).  Default: the whole split (synthetic:
        its KITTI-like split size).
    seed : int
        World seed of the synthetic data (ignored for real data).
    cache_dir : path, optional
        Synthetic data: its chunk cache.  Real data: the caption cache folder (default
        :func:`default_caption_cache_dir`).
    caption_cache : path, optional
        The caption cache folder (overrides ``cache_dir`` for captions; synthetic data with a
        captioner: default :func:`default_caption_cache_dir`).
    captions : bool
        ``False`` for models that never read captions (NDIC, hyperprior): no captioner is
        needed and real-data captions are ``""``.
    max_new_tokens, device :
        BLIP-2 generation length and device (default: CUDA if available, else CPU; float32
        weights either way).
    """
    ds = parse_data_spec(spec)
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise ValueError(f"length must be a positive int, got {length!r}")
    if not captions:
        captioner = None
    elif ds.is_real and captioner is None:
        raise ValueError(f"{ds.kind} has no captions: MDIC needs a caption of every side view (Eq. 3); pass "
                         f"--captioner {PAPER_CAPTIONER} (the paper's BLIP-2, a hub id in the local Hugging Face "
                         "cache) or --captioner /path/to/blip2 (a folder saved with save_pretrained)")
    arg = _captioner_arg(captioner)
    if ds.kind == "synthetic":
        from .synthetic import SyntheticStereo

        cap = make_captioner(captioner, caption_cache, max_new_tokens, device)
        base = SyntheticStereo(split, seed=seed, size=size, length=length, cache_dir=cache_dir)
        return PairSource(base, ds, split, base.size, len(base), cap, arg, override_captions=cap is not None)
    cap = make_captioner(captioner, caption_cache if caption_cache is not None else cache_dir, max_new_tokens, device)
    if ds.kind == "kitti":
        from .kitti import KittiStereo, read_split_list

        pairs = None
        if length is not None:
            if split not in ("train", "val", "test"):
                raise ValueError(f"unknown split {split!r} (expected one of: train, val, test)")
            listed = read_split_list(split)
            if length > len(listed):
                raise ValueError(f"length {length} exceeds the {len(listed)} pairs of KITTI {split!r}")
            pairs = listed[:length]
        base = KittiStereo(ds.root, split=split, size=size, captioner=cap, pairs=pairs)
    else:
        from .cityscapes import CityscapesStereo

        base = CityscapesStereo(ds.root, split=split, size=size, captioner=cap)
        if length is not None and length > len(base):
            raise ValueError(f"length {length} exceeds the {len(base)} pairs found in Cityscapes {split!r} "
                             f"under {str(ds.root)!r}")
    n = len(base) if length is None else length
    return PairSource(base, ds, split, size, n, cap, arg)


def describe_dataset(dataset) -> dict:
    """The ``data`` record of a run's ``config.json`` for whatever data set a trainer got."""
    if isinstance(dataset, PairSource):
        return dataset.describe()
    source = getattr(dataset, "source", None)  # PairBank / LatentBank keep their origin's record
    if isinstance(source, dict):
        return source
    from .synthetic import SyntheticStereo

    if isinstance(dataset, SyntheticStereo):
        return {"spec": "synthetic", "kind": "synthetic", "split": dataset.split, "size": list(dataset.size),
                "length": len(dataset), "captioner": "oracle", "captioner_identity": None, "seed": dataset.seed}
    return {"spec": "custom", "kind": type(dataset).__name__, "length": len(dataset), "captioner": None,
            "captioner_identity": None}

