"""One loader of trained runs, and one image through a codec's compress / decompress.

What ``mdic-lab compress`` and ``mdic-lab decompress`` do, for any registered codec: the
registry says whether the decoder needs the side image and a caption of it, and whether the
encoder reads a caption of the image; a caption is given, or computed from the image it
describes by the captioner the run was trained with (BLIP-2, through the content-keyed
caption cache).
"""

from __future__ import annotations

from .rundir import RunDir

__all__ = ["load_run", "compress_image", "decompress_stream", "side_caption", "image_caption", "recorded_captioner"]


def load_run(run_dir, context: dict | None = None):
    """``(model in eval mode, ready to code; RunConfig; hooks)`` of a trained run folder."""
    from mdic_lab.registry import get_codec

    rd = RunDir(run_dir)
    run = rd.run_config()
    ckpt = rd.load_checkpoint()  # checks the file before the (possibly large) model is built
    hooks = get_codec(run.codec).load_hooks()
    return hooks.load(run, ckpt["model"], context), run, hooks


def _check_size(image, hooks, run, what: str) -> None:
    if hooks.codes_any_size:
        return
    want = hooks.image_size(run)
    if tuple(image.shape[-2:]) != tuple(want):
        raise ValueError(f"{what} is {tuple(image.shape[-2:])} (H, W) but this {run.codec} model codes "
                         f"{tuple(want)} images")


def compress_image(run_dir, image, *, caption: str | None = None, captioner=None,
                   caption_cache=None) -> tuple[bytes, dict]:
    """``(container bytes, info)`` of one image ``(1, 3, H, W)`` in [0, 1]; the encoder sees only this image.

    A codec whose encoder reads a caption of the image (``encoder_caption``) gets ``caption``, or
    the caption ``captioner`` (default: the run's) gives the image; ``info`` then reports the
    caption's bytes (``caption_bytes``, included in ``bytes`` and ``bpp_coded``).
    """
    from mdic_lab.coding.bpp import bpp_from_bytes

    model, run, hooks = load_run(run_dir)
    _check_size(image, hooks, run, "image")
    x_caps = None
    if hooks.codec.encoder_caption:
        if caption is None and captioner is None:
            captioner = recorded_captioner(run_dir)
        x_caps = [image_caption(image, caption, captioner, caption_cache, what=f"this {run.codec} model's encoder")]
    data = hooks.compress(model, image, x_caps)[0]
    npix = int(image.shape[-2] * image.shape[-1])
    cap = int(hooks.caption_bytes(model, data))
    return data, {"bytes": len(data), "bpp_coded": bpp_from_bytes(data, npix), "caption_bytes": cap,
                  "caption_bpp": 8.0 * cap / npix, "codec": run.codec, "model_id": model.model_id}


def recorded_captioner(run_dir):
    """The captioner a run was trained with (``None`` for the synthetic world's oracle captions)."""
    cap = RunDir(run_dir).data_record().get("captioner")
    return None if cap in (None, "oracle") else cap


def side_caption(side, caption: str | None = None, captioner=None, caption_cache=None) -> str:
    """``caption`` if given, else the caption ``captioner`` (BLIP-2 folder / cached hub id) gives the side image."""
    if caption is not None:
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError("the caption must be a non-empty text")
        return caption
    if captioner is None:
        raise ValueError("this decoder needs a caption of the side image: pass --caption TEXT or --captioner "
                         "BLIP2_DIR (a local BLIP-2 folder, e.g. Salesforce/blip2-opt-2.7b saved offline)")
    from mdic_lab.data.sources import make_captioner

    return make_captioner(captioner, caption_cache)(side[0])


def image_caption(image, caption: str | None = None, captioner=None, caption_cache=None,
                  what: str = "this encoder") -> str:
    """``caption`` if given, else the caption ``captioner`` (BLIP-2 folder / cached hub id) gives ``image`` itself."""
    if caption is not None:
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError("the caption must be a non-empty text")
        return caption
    if captioner is None:
        raise ValueError(f"{what} reads a caption of the image: pass --caption TEXT or --captioner BLIP2_DIR "
                         "(a local BLIP-2 folder, e.g. Salesforce/blip2-opt-2.7b saved offline)")
    from mdic_lab.data.sources import make_captioner

    return make_captioner(captioner, caption_cache)(image[0])


def decompress_stream(run_dir, data: bytes, side=None, *, caption: str | None = None, captioner=None,
                      caption_cache=None, seed: int = 0, num_inference_steps: int | None = None):
    """``(Î_x (1, 3, H, W), caption used or None)`` from a stream and what the run's decoder needs."""
    from mdic_lab.coding.container import unpack

    unpack(data)  # structure and CRC are checked before any model is loaded
    from mdic_lab.registry import get_codec

    codec = get_codec(RunDir(run_dir).read_record()["codec"])
    if codec.needs_side and side is None:
        raise ValueError(f"this {codec.name} model decodes with side information: pass the side image (--side)")
    text = None
    if codec.needs_caption:
        if caption is None and captioner is None:
            captioner = recorded_captioner(run_dir)
        text = side_caption(side, caption, captioner, caption_cache)
    model, run, hooks = load_run(run_dir)
    if side is not None:
        _check_size(side, hooks, run, "side image")
    x_hat = hooks.decompress(model, [data], side, [text], seed=seed, num_inference_steps=num_inference_steps)
    return x_hat, text
