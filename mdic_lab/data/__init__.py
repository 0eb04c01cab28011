"""mdic_lab.data: stereo pairs with captions for distributed image compression.

* :mod:`~mdic_lab.data.synthetic` — the embedded synthetic stereo street world (default;
  no download): :class:`SyntheticStereo`.
* :mod:`~mdic_lab.data.kitti`, :mod:`~mdic_lab.data.cityscapes` — readers of the real
  data sets (:class:`KittiStereo` with NDIC's split lists, :class:`CityscapesStereo`).
* :mod:`~mdic_lab.data.captioners` — oracle and BLIP-2 captioners, caption cache.
* :mod:`~mdic_lab.data.vocabulary` — the N most frequent object nouns and the
  object-masked captions of MDIC's text-supervision task.

Items of every image data set are dicts with ``left`` (main view ``I_x``) and ``right``
(side view ``I_y``) float32 tensors (3, H, W) in [0, 1], ``caption`` (of ``I_y``),
``nouns``, and ``labels`` (int64 (H, W)) where semantic labels exist; batch them with
:func:`collate`.

Names are imported lazily, so ``import mdic_lab.data`` stays cheap.
"""

from importlib import import_module

_EXPORTS = {
    "SyntheticStereo": "synthetic", "generate_sample": "synthetic", "collate": "synthetic",
    "CLASS_NAMES": "scene", "KittiStereo": "kitti", "read_split_list": "kitti",
    "CityscapesStereo": "cityscapes", "OracleCaptioner": "captioners", "Blip2Captioner": "captioners",
    "CachedCaptioner": "captioners", "CaptionCache": "captioners", "Vocabulary": "vocabulary",
    "build_vocabulary": "vocabulary", "extract_nouns": "vocabulary", "pair_grid": "preview",
    "open_pairs": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
