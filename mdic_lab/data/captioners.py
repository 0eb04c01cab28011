"""Captioners for the side view ``I_y`` (MDIC Eq. 3: ``z_text = E_clip(B_2(I_y))``).

* :class:`OracleCaptioner` — the synthetic world's ground-truth caption of the right
  view, written from the scene graph (what a perfect captioner would say).
* :class:`Blip2Captioner` — BLIP-2 through ``transformers``
  (``Blip2ForConditionalGeneration`` + its processor), the paper's captioner for real
  data; prompt-free captioning with ``generate(max_new_tokens=...)``. Weights are loaded
  with ``from_pretrained(path or hub id)``; nothing is downloaded when
  ``HF_HUB_OFFLINE=1`` (a hub id must then be in the local cache).
* :class:`CachedCaptioner` + :class:`CaptionCache` — an on-disk JSON cache keyed by
  ``sha256(captioner identity | shape | dtype | pixel bytes)``, written atomically, so a
  data set is captioned once.
* :func:`make_tiny_blip2` — writes a randomly initialised, tiny BLIP-2 (and a locally
  built word-level tokenizer) to a folder, for tests of the loading path. Its words are
  random: it checks the pipeline, not caption quality.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from mdic_lab.atomic import atomic_write

__all__ = [
    "OracleCaptioner",
    "Blip2Captioner",
    "CaptionCache",
    "CachedCaptioner",
    "image_key",
    "as_uint8_image",
    "make_tiny_blip2",
    "blip2_identity",
]


def as_uint8_image(image) -> np.ndarray:
    """Normalise an image to uint8 ``(H, W, 3)``.

    Accepts uint8 ``(H, W, 3)`` arrays, float arrays/tensors ``(3, H, W)`` or
    ``(H, W, 3)`` in [0, 1], and PIL images.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if hasattr(image, "detach"):  # torch tensor
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.ndim != 3:
        raise ValueError(f"image must have 3 dims (H, W, 3) or (3, H, W), got shape {a.shape}")
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.shape[-1] != 3:
        raise ValueError(f"image must have 3 colour channels, got shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"image dtype must be uint8 or float in [0, 1], got {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError("image contains NaN or inf values")
    if a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise ValueError(f"float image values must lie in [0, 1], got range {a.min():.3g}..{a.max():.3g}")
    return np.round(np.clip(a, 0, 1) * 255.0).astype(np.uint8)


def image_key(image, identity: str) -> str:
    """Cache key: ``sha256`` of the captioner identity, the shape/dtype and the pixel bytes.

    >>> a = np.zeros((2, 2, 3), np.uint8)
    >>> image_key(a, "x") == image_key(a.copy(), "x") != image_key(a, "y")
    True
    """
    a = as_uint8_image(image)
    h = hashlib.sha256()
    h.update(identity.encode("utf-8"))
    h.update(f"|{a.shape}|{a.dtype}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


class CaptionCache:
    """A JSON file mapping image keys to captions; every ``put`` rewrites it atomically."""

    def __init__(self, path):
        self.path = Path(path)
        self._data: dict[str, str] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"caption cache {str(self.path)!r} is not valid JSON ({e}); delete it to rebuild") from None
            if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
                raise ValueError(f"caption cache {str(self.path)!r} must hold a JSON object of str -> str")
            self._data = data

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def put(self, key: str, caption: str) -> None:
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        self._data[key] = caption
        self.save()

    def save(self) -> None:
        atomic_write(self.path, lambda fh: json.dump(self._data, fh, indent=0, sort_keys=True))


class CachedCaptioner:
    """Caption images through ``captioner``, remembering results in a :class:`CaptionCache`.

    Parameters
    ----------
    captioner : callable or None
        ``image → str`` with an ``identity`` attribute (or pass ``identity``). ``None``
        makes a read-only cache: a miss raises ``KeyError``.
    cache : path or CaptionCache
    identity : str, optional
        Overrides ``captioner.identity`` in the key (required when ``captioner`` is None).
    """

    def __init__(self, captioner: Callable | None, cache, identity: str | None = None):
        self.captioner = captioner
        self.cache = cache if isinstance(cache, CaptionCache) else CaptionCache(cache)
        self.identity = identity or getattr(captioner, "identity", None)
        if not self.identity:
            raise ValueError("CachedCaptioner needs an identity (captioner.identity or identity=...)")
        self.hits = 0
        self.misses = 0

    def __call__(self, image) -> str:
        key = image_key(image, self.identity)
        cached = self.cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        if self.captioner is None:
            raise KeyError(f"no cached caption for image {key[:12]}… under {self.identity!r} in "
                           f"{str(self.cache.path)!r}, and no captioner to make one")
        self.misses += 1
        caption = self.captioner(image)
        self.cache.put(key, caption)
        return caption


class OracleCaptioner:
    """Ground-truth caption of a synthetic pair's side view, from the scene graph.

    ``OracleCaptioner(dataset)(index)`` returns the caption of the right view of pair
    ``index`` (the same string the dataset item carries).
    """

    def __init__(self, dataset):
        self.dataset = dataset
        from .synthetic import GENERATOR_ID

        self.identity = f"oracle|synthetic-v{GENERATOR_ID}|{dataset.split}|seed{dataset.seed}"

    def __call__(self, index: int) -> str:
        return self.dataset.sample(index).caption


def _model_identity(model) -> str:
    """Hub id, or for a local folder its name plus a hash of its config and weights index."""
    p = Path(str(model))
    if not p.is_dir():
        return str(model)
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json", "generation_config.json"):
        if (p / name).is_file():
            h.update((p / name).read_bytes())
    if (p / "model.safetensors").is_file():
        h.update(str((p / "model.safetensors").stat().st_size).encode())
    return f"{p.name}@{h.hexdigest()[:12]}"


def blip2_identity(model, max_new_tokens: int = 30) -> str:
    """The cache identity of :class:`Blip2Captioner` ``(model, max_new_tokens)``, computed without loading it.

    >>> blip2_identity("Salesforce/blip2-opt-2.7b")
    'blip2|Salesforce/blip2-opt-2.7b|max_new_tokens=30'
    """
    return f"blip2|{_model_identity(model)}|max_new_tokens={max_new_tokens}"


class Blip2Captioner:
    """BLIP-2 captioning of side views (MDIC Eq. 3, ``B_2(I_y)``), prompt-free.

    Parameters
    ----------
    model : str
        A local directory or a hub id (e.g. ``"Salesforce/blip2-opt-2.7b"``) readable
        by ``from_pretrained`` without network when ``HF_HUB_OFFLINE=1``.
    max_new_tokens : int
        Caption length limit passed to ``generate``.
    device : str
    dtype : torch.dtype, optional
        Weights dtype (default float32 on CPU).
    """

    def __init__(self, model: str = "Salesforce/blip2-opt-2.7b", max_new_tokens: int = 30, device: str = "cpu",
                 dtype=None):
        import torch
        from transformers import AutoProcessor, Blip2ForConditionalGeneration

        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        try:
            self.processor = AutoProcessor.from_pretrained(str(model))
            self.model = Blip2ForConditionalGeneration.from_pretrained(str(model), dtype=dtype or torch.float32)
        except (OSError, ValueError) as e:
            raise OSError(f"could not load BLIP-2 from {str(model)!r} (expected a local folder saved with "
                          "save_pretrained, or a hub id already in the local Hugging Face cache; downloads are "
                          f"disabled when HF_HUB_OFFLINE=1): {e}") from None
        self.model.to(device).eval()
        self.device, self.max_new_tokens = device, max_new_tokens
        self.identity = blip2_identity(model, max_new_tokens)

    def caption_batch(self, images) -> list[str]:
        """Captions of a list of images (uint8 HWC, float CHW in [0, 1] or PIL)."""
        import torch

        imgs = [np.array(as_uint8_image(im)) for im in images]  # writable copies (torch.from_numpy inside)
        if not imgs:
            return []
        inputs = self.processor(images=imgs, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, self.model.dtype)
        with torch.no_grad():
            out = self.model.generate(pixel_values=pixel_values, max_new_tokens=self.max_new_tokens, do_sample=False)
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]

    def __call__(self, image) -> str:
        return self.caption_batch([image])[0]


# words of the tiny test tokenizer (a street vocabulary; the model's choice among them is random)
_TINY_WORDS = ("a", "the", "of", "with", "and", "on", "in", "street", "road", "car", "cars", "red", "blue", "white",
               "black", "grey", "green", "tree", "trees", "building", "buildings", "person", "people", "sign",
               "pole", "sky", "sidewalk", "bus", "truck", "bicycle", "fence", "grass", "left", "right", "city")


def make_tiny_blip2(directory, seed: int = 0, image_size: int = 30, num_query_tokens: int = 4) -> Path:
    """Save a tiny random BLIP-2 + processor to ``directory`` (no download) and return it.

    The vision tower, Q-Former and OPT language model have one layer of width 32; the
    tokenizer is a word-level ``tokenizers`` model over a few street words built locally.
    The weights are random (seeded by ``seed``), so generated captions are random words:
    this exercises ``from_pretrained`` → processor → ``generate`` → decode, not quality.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, BlipImageProcessor, OPTConfig, PreTrainedTokenizerFast)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<unk>", "</s>", "<image>"]
    vocab = {w: i for i, w in enumerate(specials + list(_TINY_WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>")
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    processor = Blip2Processor(
        image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tokenizer, num_query_tokens=num_query_tokens)
    config = Blip2Config(
        vision_config=Blip2VisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=image_size, patch_size=image_size // 2),
        qformer_config=Blip2QFormerConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=37, vocab_size=len(vocab) + 1),
        text_config=OPTConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, ffn_dim=37,
                              num_attention_heads=2, max_position_embeddings=64, word_embed_proj_dim=32,
                              bos_token_id=vocab["</s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"]),
        num_query_tokens=num_query_tokens, image_token_index=image_token_id)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG state
        torch.manual_seed(seed)
        model = Blip2ForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
