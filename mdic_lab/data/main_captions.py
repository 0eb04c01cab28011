"""Captions of the MAIN view ``I_x``, for codecs whose encoder reads one (TACO).

The data sets caption the side view ``I_y`` (what MDIC's decoder reads, MDIC Eq. 3).  An
encoder-side text codec such as TACO needs the caption of the image it codes instead:

* synthetic world, no captioner -- the oracle caption of the LEFT view, written from the
  scene graph and the left view's instance map exactly as the side-view captions are
  (:func:`oracle_main_caption`; the views differ: border strip, movers, appearance changes);
  computing one means regenerating its pair (~50 ms at 128×256), so they are kept in a JSON
  cache keyed by generator version, split, seed, size and index;
* any data with a captioner (BLIP-2 folder / hub id) -- the captioner on ``I_x``, through the
  same content-keyed caption cache as the side views.

:class:`MainCaptioned` wraps an opened :class:`~.sources.PairSource` and adds ``caption_x``
to its items; everything else of the item is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mdic_lab.atomic import atomic_write

__all__ = ["oracle_main_caption", "OracleMainCaptions", "MainCaptioned"]


def oracle_main_caption(split: str, seed: int, index: int, size=(128, 256)) -> str:
    """The synthetic world's caption of the left (main) view of pair ``index``."""
    from .describe import describe_view
    from .synthetic import generate_sample

    s = generate_sample(split, seed, index, size)
    return describe_view(s.scene, s.instances_left, s.labels, "left")[0]


class OracleMainCaptions:
    """Oracle main-view captions of one synthetic split, cached in a JSON file (index -> caption).

    New captions are written every ``flush_every`` misses and by :meth:`flush` (merged with
    what another process wrote meanwhile, then replaced atomically); writing the file (a few
    ms) is cheap next to computing a caption (~50 ms), so by default every miss is written.
    """

    def __init__(self, split: str, seed: int, size, cache_dir=None, flush_every: int = 1):
        from .sources import default_caption_cache_dir
        from .synthetic import GENERATOR_ID

        self.split, self.seed, self.size = split, int(seed), tuple(size)
        self.identity = f"oracle-main|synthetic-v{GENERATOR_ID}|{split}|seed{self.seed}|{self.size[0]}x{self.size[1]}"
        root = Path(cache_dir) if cache_dir is not None else default_caption_cache_dir()
        self.path = root / f"oracle-main-{hashlib.sha256(self.identity.encode()).hexdigest()[:16]}.json"
        self.flush_every = int(flush_every)
        self._data = self._read()
        self._new = 0
        self.hits = self.misses = 0

    def _read(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # a damaged cache is rebuilt
        return data if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()) else {}

    def __call__(self, index: int) -> str:
        key = str(int(index))
        if key in self._data:
            self.hits += 1
            return self._data[key]
        self.misses += 1
        caption = oracle_main_caption(self.split, self.seed, int(index), self.size)
        self._data[key] = caption
        self._new += 1
        if self._new >= self.flush_every:
            self.flush()
        return caption

    def flush(self) -> None:
        """Write the captions computed since the last flush (merged with the file's)."""
        if not self._new:
            return
        merged = {**self._read(), **self._data}
        atomic_write(self.path, lambda fh: json.dump(merged, fh, indent=0, sort_keys=True))
        self._data, self._new = merged, 0


class MainCaptioned:
    """A :class:`~.sources.PairSource` whose items also carry ``caption_x``, a caption of ``left`` (``I_x``).

    ``captioner`` is a cached captioner (:func:`~.sources.make_captioner`) or ``None`` (synthetic
    world only: the oracle main-view captions).  ``len``, ``[i]``, ``describe()``,
    ``caption_stats``, ``prepare_captions()`` and ``reload_captions()`` work as on the wrapped source.
    """

    def __init__(self, base, captioner=None, captioner_arg=None, cache_dir=None):
        self.base, self.captioner, self.captioner_arg = base, captioner, captioner_arg
        self.oracle = None
        if captioner is None:
            if base.spec.kind != "synthetic":
                raise ValueError(f"{base.spec.kind} has no captions: this codec's encoder reads a caption of every "
                                 "main image; pass --captioner Salesforce/blip2-opt-2.7b (a hub id in the local "
                                 "Hugging Face cache) or --captioner /path/to/blip2")
            w = base.base  # the SyntheticStereo
            self.oracle = OracleMainCaptions(w.split, w.seed, w.size, cache_dir)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index) -> dict:
        item = self.base[index]
        if self.oracle is not None:
            item["caption_x"] = self.oracle(item["index"])
        else:
            item["caption_x"] = self.captioner(item["left"])
        return item

    @property
    def spec(self):
        return self.base.spec

    @property
    def caption_stats(self) -> dict:
        """Main-view caption-cache ``hits`` / ``misses`` so far (misses = captions actually computed)."""
        c = self.oracle if self.oracle is not None else self.captioner
        return {"hits": c.hits, "misses": c.misses}

    def prepare_captions(self) -> dict:
        """Caption every main view now (filling the cache); returns :attr:`caption_stats`."""
        for i in range(len(self)):
            self[i]
        self.flush()
        return self.caption_stats

    def flush(self) -> None:
        if self.oracle is not None:
            self.oracle.flush()

    def reload_captions(self) -> None:
        """Re-read the caption cache (after another process filled it)."""
        if self.oracle is not None:
            self.oracle._data = {**self.oracle._read(), **self.oracle._data}
        else:
            from .captioners import CaptionCache

            self.captioner.cache = CaptionCache(self.captioner.cache.path)

    def describe(self) -> dict:
        """The wrapped source's record with the main-view captioner (``"oracle"`` on the synthetic world)."""
        out = dict(self.base.describe())
        out["captioner"] = "oracle" if self.oracle is not None else self.captioner_arg
        out["captioner_identity"] = self.oracle.identity if self.oracle is not None else self.captioner.identity
        out["captions_of"] = "main view I_x (read by the encoder)"
        return out

    @property
    def source(self) -> dict:
        return self.describe()

    def __repr__(self) -> str:
        return f"MainCaptioned({self.base!r})"
