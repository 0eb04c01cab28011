"""A real CLIP BPE tokenizer that works offline.

``transformers.CLIPTokenizer.from_pretrained("openai/clip-vit-base-patch32")`` without
internet and without a cached copy silently returns a tokenizer with a 2-token
vocabulary -- every caption then becomes ``<|endoftext|>`` noise.  The CLIP byte-pair
vocabulary itself ships inside the ``open_clip_torch`` wheel
(``open_clip/bpe_simple_vocab_16e6.txt.gz``); :func:`write_clip_tokenizer_files` rebuilds
``vocab.json`` + ``merges.txt`` from it exactly as CLIP does (256 byte symbols, their
``</w>`` variants, 48 894 merges, ``<|startoftext|>`` = 49406, ``<|endoftext|>`` = 49407:
49 408 tokens), and :func:`load_clip_tokenizer` builds a ``transformers.CLIPTokenizer``
from them.  Every tokenizer this module returns is checked by :func:`check_tokenizer`.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import tempfile
from pathlib import Path

__all__ = [
    "CLIP_VOCAB_SIZE",
    "SOT_ID",
    "EOT_ID",
    "MIN_VOCAB_SIZE",
    "clip_bpe_path",
    "write_clip_tokenizer_files",
    "load_clip_tokenizer",
    "check_tokenizer",
]

CLIP_VOCAB_SIZE = 49408  # 2·256 byte symbols + 48894 merges + 2 specials
SOT_ID = 49406  # <|startoftext|>
EOT_ID = 49407  # <|endoftext|>
MIN_VOCAB_SIZE = 1000  # anything smaller is a degenerate tokenizer, not CLIP
_N_MERGES = 49152 - 256 - 2  # as in CLIP's simple_tokenizer.py


def clip_bpe_path() -> Path:
    """Path of the CLIP BPE merges file shipped in the ``open_clip_torch`` wheel."""
    try:
        import open_clip.tokenizer as oct
    except ImportError as err:  # pragma: no cover - dependency missing
        raise ImportError(
            "the offline CLIP tokenizer needs the CLIP BPE file from open_clip_torch "
            "(pip install 'mdic-lab[text]' or pip install open_clip_torch)"
        ) from err
    path = Path(oct.default_bpe())
    if not path.is_file():
        raise FileNotFoundError(f"CLIP BPE vocabulary not found at {path} (broken open_clip_torch install?)")
    return path


def write_clip_tokenizer_files(directory) -> Path:
    """Write CLIP's ``vocab.json`` and ``merges.txt`` (HF layout) into ``directory``.

    The construction follows CLIP's ``SimpleTokenizer``: byte symbols, byte symbols with
    the end-of-word marker ``</w>``, one token per merge, then the two specials.
    """
    from open_clip.tokenizer import bytes_to_unicode

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:_N_MERGES + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab) != CLIP_VOCAB_SIZE:
        raise ValueError(f"rebuilt CLIP vocabulary has {len(vocab)} tokens, expected {CLIP_VOCAB_SIZE}")
    with open(directory / "vocab.json", "w", encoding="utf-8") as f:
        json.dump({tok: i for i, tok in enumerate(vocab)}, f, ensure_ascii=False)
    with open(directory / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return directory


def check_tokenizer(tokenizer, source="tokenizer"):
    """Raise ``ValueError`` unless ``tokenizer`` has a usable CLIP-sized vocabulary.

    Returns the tokenizer unchanged.  ``source`` names where it came from in the message.
    """
    n = len(tokenizer)
    if n < MIN_VOCAB_SIZE:
        raise ValueError(
            f"tokenizer from {source} has an unusable vocabulary of {n} tokens "
            f"(expected a CLIP BPE vocabulary of ~{CLIP_VOCAB_SIZE}); offline, "
            "CLIPTokenizer.from_pretrained(<hub id>) returns such a degenerate tokenizer -- pass a local "
            "directory with vocab.json/merges.txt, or path_or_hub_id=None for the bundled CLIP vocabulary"
        )
    for name in ("bos_token_id", "eos_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise ValueError(f"tokenizer from {source} has no {name}")
    return tokenizer


@functools.lru_cache(maxsize=4)
def _bundled_tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="mdic_clip_tok_") as d:
        write_clip_tokenizer_files(d)
        tok = CLIPTokenizer(vocab=os.path.join(d, "vocab.json"), merges=os.path.join(d, "merges.txt"))
    return tok


def load_clip_tokenizer(path_or_hub_id=None, subfolder: str | None = None):
    """A ``transformers.CLIPTokenizer`` with a checked vocabulary.

    Parameters
    ----------
    path_or_hub_id : str or path, optional
        ``None`` → the CLIP BPE vocabulary bundled with open_clip (49 408 tokens, offline).
        Otherwise a local directory (a saved tokenizer or one holding ``vocab.json`` +
        ``merges.txt``) or a hub id (served from the local cache only when offline).
    subfolder : str, optional
        Sub-folder inside ``path_or_hub_id`` (Stable Diffusion layouts use ``tokenizer``).

    Raises
    ------
    ValueError
        If the tokenizer that comes back has fewer than :data:`MIN_VOCAB_SIZE` tokens.
    FileNotFoundError
        If a local path is given but does not exist.
    """
    from transformers import CLIPTokenizer

    if path_or_hub_id is None:
        return check_tokenizer(_bundled_tokenizer(), "the bundled open_clip BPE vocabulary")
    src = str(path_or_hub_id)
    looks_local = os.path.isabs(src) or src.startswith((".", "~")) or os.path.exists(src)
    if looks_local:
        p = Path(src).expanduser()
        if subfolder:
            p = p / subfolder
        if not p.is_dir():
            raise FileNotFoundError(f"tokenizer directory not found: {p}")
        tok = CLIPTokenizer.from_pretrained(str(p))
    else:
        kw = {"subfolder": subfolder} if subfolder else {}
        tok = CLIPTokenizer.from_pretrained(src, **kw)
    return check_tokenizer(tok, src + (f"/{subfolder}" if subfolder else ""))
