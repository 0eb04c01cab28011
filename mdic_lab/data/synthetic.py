"""The synthetic stereo street world: the embedded default data set (no download).

Each sample is a stereo pair of a procedurally generated street (see
:mod:`mdic_lab.data.scene` for the world and :mod:`mdic_lab.data.render` for the
cameras): the *left* view is the main image ``I_x`` that gets coded, the *right* view is
the decoder-only side information ``I_y``, and the caption describes what the right view
shows, as MDIC's captioner looking at ``I_y`` would (Eq. 3). The world is built so that
what MDIC exploits is really there:

* colours and identities of objects are random per scene (a car can be any of ten named
  colours), so at < 0.1 bpp the coded left view cannot carry them, while the side view
  and its caption ("a red car on the left …") do;
* the views share most content through depth-dependent disparity ``d = f B / Z``
  (0.5–40 px at 128x256), but not all of it. Side-view regions that are irrelevant or
  misleading for the main view — the mask ``m_v``'s job (MDIC Eqs. 8, 13, 14) — are:
  the strip at the right border that the left camera never sees (plus a scripted
  *border intruder* object there in half of the scenes), a *mover* (a person, bicycle or
  car that moved sideways between the exposures), an *appearance change* (an object with
  another colour in the right view, named so in the caption), a glare or shadow
  *light patch* in the right view only, and parallax occlusion changes. The per-pixel map
  ``side_valid`` marks the right-view pixels whose content matches the left view at
  their disparity (False on all of the above).

Samples are a pure function of ``(split, seed, index)`` through
``numpy.random.default_rng([seed, split_id, index])``, and are cached on disk as
compressed ``.npz`` chunks written atomically (temp file + ``os.replace``), in a folder
named after :data:`GENERATOR_ID` (the version number plus a hash of the generator's
source) that is also stored in each chunk and checked on load, so a new generator
regenerates the cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdic_lab.atomic import atomic_write
from . import raster
from .describe import describe_view
from .imageio import to_chw_float
from .render import render_pair
from .scene import CLASS_NAMES, Scene, sample_scene
from .vocabulary import extract_nouns

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_ID",
    "SPLITS",
    "CLASS_NAMES",
    "SyntheticSample",
    "generate_sample",
    "side_consistency",
    "SyntheticStereo",
    "collate",
    "default_cache_dir",
]

#: Bump whenever the generator's output changes: cached chunks of other versions are ignored.
GENERATOR_VERSION = 2


def _source_fingerprint() -> str:
    """Hash of the generator's source files, so any code change also invalidates caches."""
    import hashlib

    h = hashlib.sha256()
    for name in ("scene.py", "render.py", "raster.py", "describe.py", "synthetic.py", "vocabulary.py"):
        try:
            h.update(Path(__file__).with_name(name).read_bytes())
        except OSError:  # sources unavailable (e.g. a zipped install): the version number alone decides
            h.update(name.encode())
    return h.hexdigest()[:12]


#: Identity of the generator's output written into every cache chunk: version + source hash.
GENERATOR_ID = f"{GENERATOR_VERSION}-{_source_fingerprint()}"
#: Default split sizes (KITTI Stereo as used by NDIC/MDIC: train 1576, val 50, test 790).
SPLITS: dict[str, int] = {"train": 1576, "val": 50, "test": 790}
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}
CHUNK = 128  # samples per cache file


def _check_split(split):
    if split not in _SPLIT_ID:
        raise ValueError(f"unknown split {split!r} (expected one of: {', '.join(_SPLIT_ID)})")
    return _SPLIT_ID[split]


def _check_size(size):
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width), got {size!r}") from None
    if h < 8 or w < 8 or (h, w) != tuple(size):
        raise ValueError(f"size must be two ints >= 8, got {size!r}")
    return h, w


@dataclass
class SyntheticSample:
    """Everything about one generated pair (the dataset caches only the arrays)."""

    left: np.ndarray  # uint8 (H, W, 3), main view I_x
    right: np.ndarray  # uint8 (H, W, 3), side view I_y
    labels: np.ndarray  # uint8 (H, W), class ids of the left view
    labels_right: np.ndarray  # uint8 (H, W), class ids of the right view
    side_valid: np.ndarray  # bool (H, W), right-view pixels consistent with the left view
    caption: str  # of the right view
    nouns: list  # object nouns of the caption, in order, without repeats
    mentions: list  # structured caption content (noun, uids, colours, pixels)
    scene: Scene
    depth_left: np.ndarray  # float32 (H, W), metres (inf = sky)
    depth_right: np.ndarray
    instances_left: np.ndarray  # int32 (H, W)
    instances_right: np.ndarray


def side_consistency(scene: Scene, left: dict, right: dict) -> np.ndarray:
    """Right-view pixels whose content matches the left view at their disparity.

    A right pixel ``(v, u)`` at depth ``Z`` corresponds to the left pixel
    ``(v, u + f B / Z)``; it is *consistent* if that pixel is inside the left frame and
    shows the same surface (same instance id), the surface is not a mover or an
    appearance change, and the right-view light patch does not touch it.
    """
    cam = scene.camera
    changed = np.asarray(sorted(set(scene.phenomena["mover"]) | set(scene.phenomena["appearance_change"])), np.int64)
    return raster.consistency(right["depth"], right["instances"], left["instances"], right["patch"],
                              float(cam.focal * cam.baseline), changed)


def generate_sample(split: str, seed: int, index: int, size=(128, 256)) -> SyntheticSample:
    """Generate pair ``index`` of ``split`` from ``default_rng([seed, split_id, index])``."""
    sid = _check_split(split)
    h, w = _check_size(size)
    if int(index) < 0 or int(seed) < 0:
        raise ValueError(f"index and seed must be non-negative ints, got index={index!r}, seed={seed!r}")
    rng = np.random.default_rng([int(seed), sid, int(index)])
    scene = sample_scene(rng, (h, w))
    L, R = render_pair(scene)
    caption, mentions = describe_view(scene, R["instances"], R["labels"], "right")
    nouns = list(dict.fromkeys(extract_nouns(caption)))
    return SyntheticSample(L["image_u8"], R["image_u8"], L["labels"], R["labels"],
                           side_consistency(scene, L, R), caption, nouns, mentions, scene,
                           L["depth"], R["depth"], L["instances"], R["instances"])


def default_cache_dir() -> Path:
    """``$MDIC_LAB_CACHE/synthetic`` if set, else ``~/.cache/mdic_lab/synthetic``."""
    root = os.environ.get("MDIC_LAB_CACHE")
    return Path(root) / "synthetic" if root else Path.home() / ".cache" / "mdic_lab" / "synthetic"


class SyntheticStereo:
    """Stereo pairs of the synthetic street world as a torch ``Dataset``.

    Parameters
    ----------
    split : {'train', 'val', 'test'}
    seed : int
        World seed; sample ``i`` is drawn from ``default_rng([seed, split_id, i])``.
    size : (int, int)
        ``(H, W)``, default ``(128, 256)`` (KITTI after NDIC's crop and resize).
    length : int, optional
        Number of pairs; default the KITTI-like size of the split (:data:`SPLITS`).
    cache_dir : path, optional
        Where chunks are cached; default :func:`default_cache_dir`.
    cache : bool
        ``False`` generates every item on the fly (nothing written).

    Items are dicts: ``left``, ``right`` float32 tensors (3, H, W) in [0, 1] (main view
    ``I_x`` and side view ``I_y``); ``caption`` str (of the right view); ``nouns`` list of
    str; ``labels`` int64 (H, W) class ids of the left view (:data:`CLASS_NAMES`);
    ``side_valid`` bool (H, W) (see :func:`side_consistency`); ``index`` int.
    Batch with :func:`collate` (captions and noun lists stay lists).

    Examples
    --------
    >>> ds = SyntheticStereo("val", length=2, cache=False)
    >>> item = ds[0]
    >>> tuple(item["left"].shape), item["labels"].dtype
    ((3, 128, 256), torch.int64)
    """

    class_names = CLASS_NAMES

    def __init__(self, split: str, seed: int = 0, size=(128, 256), length: int | None = None,
                 cache_dir=None, cache: bool = True):
        self.split_id = _check_split(split)
        self.split = split
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        self.size = _check_size(size)
        if length is None:
            length = SPLITS[split]
        if not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"length must be a positive int, got {length!r}")
        self.length = int(length)
        self.cache = bool(cache)
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_path = root / f"v{GENERATOR_ID}" / f"{split}-seed{self.seed}-{self.size[0]}x{self.size[1]}"
        self._chunk: tuple[int, dict] | None = None

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> SyntheticSample:
        """The full generated sample (scene graph, both label maps, depths, mentions)."""
        return generate_sample(self.split, self.seed, self._check_index(index), self.size)

    def scene(self, index: int) -> Scene:
        """The scene graph of pair ``index``."""
        return self.sample(index).scene

    def captions(self) -> list[str]:
        """Captions of all pairs (from the cache when enabled), e.g. for the vocabulary."""
        if not self.cache:
            return [generate_sample(self.split, self.seed, i, self.size).caption for i in range(self.length)]
        out: list[str] = []
        for c in range((self.length + CHUNK - 1) // CHUNK):
            need = min((c + 1) * CHUNK, self.length) - c * CHUNK
            out += json.loads(str(self._load_chunk(c, need)["captions"]))[:need]
        return out

    def _check_index(self, index):
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        i = int(index)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"index {index} out of range for {self.split!r} split of length {self.length}")
        return i

    def _chunk_file(self, c: int) -> Path:
        return self.cache_path / f"chunk{c:05d}.npz"

    def _generate_chunk(self, c: int) -> dict:
        lo, hi = c * CHUNK, min((c + 1) * CHUNK, self.length)
        samples = [generate_sample(self.split, self.seed, i, self.size) for i in range(lo, hi)]
        return {
            "version": np.asarray(GENERATOR_ID),
            "start": np.int64(lo),
            "left": np.stack([s.left for s in samples]),
            "right": np.stack([s.right for s in samples]),
            "labels": np.stack([s.labels for s in samples]),
            "side_valid": np.packbits(np.stack([s.side_valid for s in samples]), axis=-1),
            "captions": np.asarray(json.dumps([s.caption for s in samples])),
            "nouns": np.asarray(json.dumps([s.nouns for s in samples])),
        }

    def _load_chunk(self, c: int, need: int) -> dict:
        path = self._chunk_file(c)
        if path.is_file():
            try:
                with np.load(path) as z:
                    data = {k: z[k] for k in z.files}
                if str(data["version"]) == GENERATOR_ID and len(data["left"]) >= need \
                        and data["left"].shape[1:3] == self.size:
                    return data
            except (OSError, ValueError, KeyError, EOFError):
                pass  # unreadable/corrupted/old chunk: regenerate it below
        data = self._generate_chunk(c)
        atomic_write(path, lambda fh: np.savez_compressed(fh, **data), binary=True)
        return data

    def _arrays(self, i: int):
        if not self.cache:
            s = generate_sample(self.split, self.seed, i, self.size)
            return s.left, s.right, s.labels, s.side_valid, s.caption, s.nouns
        c, j = divmod(i, CHUNK)
        if self._chunk is None or self._chunk[0] != c or len(self._chunk[1]["left"]) <= j:
            need = min((c + 1) * CHUNK, self.length) - c * CHUNK
            data = self._load_chunk(c, need)
            data["caption_list"] = json.loads(str(data["captions"]))
            data["noun_lists"] = json.loads(str(data["nouns"]))
            self._chunk = (c, data)
        d = self._chunk[1]
        valid = np.unpackbits(d["side_valid"][j], axis=-1, count=self.size[1]).astype(bool)
        return d["left"][j], d["right"][j], d["labels"][j], valid, d["caption_list"][j], d["noun_lists"][j]

    def __getitem__(self, index):
        import torch

        i = self._check_index(index)
        left, right, labels, valid, caption, nouns = self._arrays(i)
        return {
            "left": to_chw_float(left),
            "right": to_chw_float(right),
            "caption": caption,
            "nouns": list(nouns),
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "side_valid": torch.from_numpy(np.ascontiguousarray(valid)),
            "index": i,
        }


def collate(batch: list[dict]) -> dict:
    """Batch items of the image datasets: stack tensors, keep strings and lists as lists."""
    import torch

    if not batch:
        raise ValueError("cannot collate an empty batch")
    out = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out
