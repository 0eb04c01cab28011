"""``mdic-lab``: train, evaluate, compress, decompress and sweep any registered codec.

::

    mdic-lab codecs                                         # what is registered
    mdic-lab train --codec ndic --preset lab --lmbda 0.0018 --out runs/ndic_l0018
    mdic-lab train --codec mdic --preset lab --variant no_ts --rate-point 1 --out runs/mdic_no_ts
    mdic-lab eval RUN_DIR --split test --limit 100 --csv out.csv
    mdic-lab compress RUN_DIR left.png -o left.mdic
    mdic-lab compress TACO_RUN left.png --caption "a red car on the left" -o left.taco  # encoder reads text
    mdic-lab decompress RUN_DIR left.mdic --side right.png -o left_hat.png
    mdic-lab sweep ablations/specs/smoke.toml --executor local --workers 2

    # paper scale: real stereo pairs, BLIP-2 captions of the side views (cached once)
    mdic-lab train --codec mdic --preset paper --data kitti:/data/kitti \
        --captioner Salesforce/blip2-opt-2.7b --out runs/mdic_kitti
    mdic-lab eval runs/mdic_kitti --split test --csv kitti_test.csv   # same data + captioner as training

Every command dispatches through :mod:`mdic_lab.registry`; nothing here names a codec.
``--data`` is ``synthetic`` (default), ``kitti:ROOT`` or ``cityscapes:ROOT``
(:mod:`mdic_lab.data.sources`); it and ``--captioner`` are recorded in the run's
``config.json`` and ``eval`` / ``decompress`` use them unless told otherwise.

Bad input (missing file, wrong image size, corrupted bitstream, stream of another model,
unknown codec, preset, variant, rate point or field) prints ONE line ``mdic-lab: error: …``
on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["main", "build_parser"]


class CLIError(Exception):
    """A user error reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise CLIError(f"{message} (see `mdic-lab {self.prog.split()[-1]} --help`)" if " " in self.prog else message)


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_sets(items):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise CLIError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def load_image(path) -> "torch.Tensor":
    """RGB image file → float tensor (1, 3, H, W) in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image file not found: {p}")
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {p}: {exc}") from None
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def save_image(x, path) -> None:
    """Float tensor (1, 3, H, W) in [0, 1] → PNG (written atomically)."""
    import numpy as np
    from PIL import Image

    arr = (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
    from mdic_lab.atomic import atomic_write

    atomic_write(path, lambda fh: Image.fromarray(arr).save(fh, format="PNG"), binary=True)


def _json(obj) -> str:
    """One line of strict JSON (NaN / inf as null)."""
    from mdic_lab.atomic import strict_json

    return strict_json(obj)


def _need_file(path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def _check_limit(value, flag: str):
    if value is not None and value <= 0:
        raise CLIError(f"{flag} must be a positive int, got {value}")


def _codecs_with(*flags: str) -> str:
    from mdic_lab.registry import CODECS

    return ", ".join(c.name for c in CODECS.values() if any(getattr(c, f) for f in flags))


#: which registry flags make a codec read the caption options, per command (a caption of the side view
#: at the decoder: needs_caption; a caption of the image at the encoder: encoder_caption)
_CAPTION_READERS = {"train": ("needs_caption", "encoder_caption"), "eval": ("needs_caption", "encoder_caption"),
                    "decompress": ("needs_caption",), "compress": ("encoder_caption",)}


def _check_decoder_flags(codec, args, command: str = "decompress") -> None:
    """Flags that only some codecs read are refused for the others (the registry says which)."""
    readers = _CAPTION_READERS[command]
    for name, needs in (("captioner", readers), ("caption_cache", readers), ("caption", readers),
                        ("num_inference_steps", ("decoder_steps",))):
        if getattr(args, name, None) is not None and not any(getattr(codec, f) for f in needs):
            raise CLIError(f"--{name.replace('_', '-')} does not apply to {codec.name} (it applies to: "
                           f"{_codecs_with(*needs)})")


def _run_codec(run_dir):
    """The registry entry of a run folder, read before torch is imported."""
    from mdic_lab.registry import get_codec
    from mdic_lab.runs import RunDir

    rd = RunDir(run_dir)
    if not rd.has_checkpoint():
        raise FileNotFoundError(f"no checkpoint at {rd.checkpoint_path} (expected a run folder written by "
                                "`mdic-lab train`)")
    return get_codec(rd.read_record()["codec"])


def _train_data(args) -> None:
    """Fill ``--data`` (and, unset, ``--captioner`` / ``--data-limit``): on ``--resume`` from the run's record."""
    if args.data is not None:
        return
    rec = {}
    if args.resume:
        from mdic_lab.runs import RunDir

        try:
            rec = RunDir(args.out).data_record()
        except (OSError, ValueError):
            rec = {}
    if not rec.get("spec") or rec["spec"] == "custom":
        args.data = "synthetic"
        return
    args.data = rec["spec"]
    if args.captioner is None and rec.get("captioner") not in (None, "oracle"):
        args.captioner = rec["captioner"]
    if args.data_limit is None and isinstance(rec.get("length"), int):
        args.data_limit = rec["length"]


#: train flags that are shortcuts of ``--set FIELD=VALUE``
_SHORTCUTS = ("lmbda", "alpha", "beta", "prior", "steps", "seed")


def _cmd_train(args) -> int:
    from mdic_lab.registry import get_codec

    _check_limit(args.data_limit, "--data-limit")
    codec = get_codec(args.codec)
    _check_decoder_flags(codec, args, "train")
    overrides = _parse_sets(args.set)
    for k in _SHORTCUTS:
        if getattr(args, k) is not None:
            overrides[k] = getattr(args, k)
    run = codec.resolve(args.preset, variant=args.variant, rate_point=args.rate_point, overrides=overrides)
    _train_data(args)
    from mdic_lab.data.sources import parse_data_spec

    parse_data_spec(args.data)  # a bad spec fails before torch is imported
    from mdic_lab.runs.train import train_run

    summary = train_run(run, args.out, data=args.data, captioner=args.captioner, caption_cache=args.caption_cache,
                        data_limit=args.data_limit, resume=args.resume, max_steps=args.max_steps,
                        verbose=args.verbose, backbone_root=args.backbone_root)
    print(_json(summary))
    return 0


def _cmd_eval(args) -> int:
    _check_limit(args.limit, "--limit")
    _check_limit(args.batch_size, "--batch-size")
    codec = _run_codec(args.model_dir)
    _check_decoder_flags(codec, args, "eval")
    if args.data is not None:
        from mdic_lab.data.sources import parse_data_spec

        parse_data_spec(args.data)  # a bad spec fails before the model is loaded
    from mdic_lab.runs.evaluate import evaluate_run

    print(_json(evaluate_run(args.model_dir, split=args.split, limit=args.limit, data=args.data,
                             captioner=args.captioner, caption_cache=args.caption_cache,
                             num_inference_steps=args.num_inference_steps, use_lpips=not args.no_lpips,
                             tag=args.tag, csv_path=args.csv, batch_size=args.batch_size)))
    return 0


def _cmd_compress(args) -> int:
    codec = _run_codec(args.model_dir)
    _check_decoder_flags(codec, args, "compress")
    _need_file(args.image, "image file")
    from mdic_lab.coding.container import write_bitstream
    from mdic_lab.runs.coding import compress_image

    data, info = compress_image(args.model_dir, load_image(args.image), caption=args.caption,
                                captioner=args.captioner, caption_cache=args.caption_cache)
    write_bitstream(args.output, data)
    print(json.dumps({"output": str(args.output), **info}))
    return 0


def _cmd_decompress(args) -> int:
    from mdic_lab.coding.container import read_bitstream, unpack

    codec = _run_codec(args.model_dir)
    _check_decoder_flags(codec, args, "decompress")
    data = read_bitstream(_need_file(args.file, "bitstream file"))
    unpack(data)  # structure and CRC32 are checked before any model is loaded
    if codec.needs_side and args.side is None:
        hint = " (and --caption TEXT or --captioner BLIP2_DIR)" if codec.needs_caption else ""
        raise CLIError(f"this {codec.name} model decodes with side information: pass --side SIDE_IMAGE{hint}")
    side = load_image(_need_file(args.side, "side image")) if args.side is not None else None
    from mdic_lab.runs.coding import decompress_stream

    x_hat, caption = decompress_stream(args.model_dir, data, side, caption=args.caption, captioner=args.captioner,
                                       caption_cache=args.caption_cache, seed=args.seed,
                                       num_inference_steps=args.num_inference_steps)
    save_image(x_hat, args.output)
    out = {"output": str(args.output), "size": list(x_hat.shape[-2:])}
    if caption is not None:
        out["caption"] = caption
    print(json.dumps(out))
    return 0


def _cmd_sweep(args) -> int:
    from mdic_lab.experiments.sweep import load_spec, run_sweep

    spec = load_spec(_need_file(args.spec, "sweep spec"))
    result = run_sweep(spec, out=args.out, executor=args.executor, workers=args.workers, add=args.add,
                       backbone_root=args.backbone_root)
    print(_json({"out": str(result.out), "cells": len(result.cells), "done": len(result.done),
                 "skipped": len(result.skipped), "failed": list(result.failed), "wall_s": result.wall_s}))
    return 1 if result.failed else 0


def _cmd_pretrain(args) -> int:
    from mdic_lab.models.mdic.config import MDICConfig
    from mdic_lab.models.mdic.pretrain import (
        SHIP_DTYPES, ensure_pretrained, export_backbone, pretrain_report,
    )

    cfg = MDICConfig.preset(args.preset)
    folder, source = ensure_pretrained(cfg, args.preset, root=args.root, progress=not args.no_progress, verbose=True)
    rep = pretrain_report(folder)
    print(_json({"folder": str(folder), "source": source, "vae_psnr_db": rep.get("vae_psnr_db"),
                 "text_retrieval_top1": rep.get("text_retrieval_top1"), "total_s": rep.get("total_s")}), flush=True)
    if args.export:
        extra = json.loads(_need_file(args.training_provenance, "training provenance").read_text()) \
            if args.training_provenance else None
        prov = export_backbone(folder, args.export, SHIP_DTYPES[args.dtype], config=cfg, training_provenance=extra)
        print(_json({**{k: prov.get(k) for k in ("key", "dtype", "vae_psnr_db_fp32", "vae_psnr_db_shipped",
                                                  "weights_bytes")}, "exported_to": str(args.export)}))
    return 0


def _cmd_codecs(args) -> int:
    from mdic_lab.registry import CODECS

    for c in CODECS.values():
        needs = [n for n, f in (("side image", c.needs_side), ("caption", c.needs_caption)) if f]
        print(f"{c.name}: {c.summary}")
        print(f"  decoder needs: {', '.join(needs) or 'the bitstream only'}")
        if c.encoder_caption:
            print("  encoder needs: the image and a caption of it (the caption is sent: it costs bits)")
        print(f"  presets: {', '.join(c.presets)}; {c.rate_knob}")
        for p, pts in c.rate_points.items():
            print(f"    {p}: rate points " + "; ".join(f"{i}: {pt}" for i, pt in enumerate(pts)))
        print(f"  variants: {', '.join(c.variants)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mdic_lab.registry import CODECS

    p = _Parser(prog="mdic-lab", description="Learned distributed image compression: train, evaluate, code, sweep.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    data_help = ("stereo pairs: synthetic (default; the embedded world) | kitti:ROOT (ROOT holds "
                 "data_scene_flow_multiview/ and data_stereo_flow_multiview/, NDIC's split lists) | "
                 "cityscapes:ROOT (ROOT holds leftImg8bit/, rightImg8bit/, optional gtFine/)")
    cap_help = (f"codecs whose decoder reads a caption ({_codecs_with('needs_caption')}): BLIP-2 captioning the "
                "side views, a local folder or a hub id in the local Hugging Face cache (paper: "
                "Salesforce/blip2-opt-2.7b); codecs whose encoder reads one "
                f"({_codecs_with('encoder_caption')}): BLIP-2 captioning the main images; required with real "
                "--data, cached per image")
    cache_help = "caption cache folder (default $MDIC_LAB_CACHE/captions or ~/.cache/mdic_lab/captions)"
    steps_help = f"denoising steps of the decoder ({_codecs_with('decoder_steps')}; default: the model's)"

    t = sub.add_parser("train", help="train a codec on stereo pairs (synthetic world, KITTI or Cityscapes)")
    t.add_argument("--codec", "--model", dest="codec", required=True, choices=list(CODECS),
                   help="registered codec (`mdic-lab codecs` lists them)")
    t.add_argument("--preset", default="lab", help="smoke | lab | paper (aliases: tiny, laptop)")
    t.add_argument("--variant", help="ablation variant of the codec (default: full)")
    t.add_argument("--rate-point", type=int, help="index of the preset's rate points (λ or codebook size)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any model or training config field")
    for k, kind, h in (("lmbda", float, "λ of R + λ·255²·MSE"), ("alpha", float, "NDIC α (Eq. 4)"),
                       ("beta", float, "NDIC β (Eq. 4)"), ("prior", str, "NDIC entropy model: factorized | hyperprior"),
                       ("steps", int, "total optimiser steps"), ("seed", int, "training seed")):
        t.add_argument(f"--{k}", type=kind, help=f"{h} (= --set {k}=VALUE)")
    t.add_argument("--out", required=True, help="run folder (config.json, metrics.csv, checkpoint.pt)")
    t.add_argument("--max-steps", type=int, help="stop at this step (the schedule still follows --steps); "
                   "--resume continues")
    t.add_argument("--data", metavar="SPEC", help=data_help + "; with --resume: the run's recorded data, "
                   "captioner and pair count")
    t.add_argument("--data-limit", type=int, metavar="N", help="train on the first N pairs of the train split "
                   "(default: all of a real split; synthetic: the preset's train_length)")
    t.add_argument("--captioner", metavar="PATH_OR_ID", help=cap_help)
    t.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    t.add_argument("--backbone-root", metavar="DIR", help="cache folder of pretrained small backbones (MDIC "
                   "smoke/lab; default ~/.cache/mdic_lab/backbones)")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    t.add_argument("--verbose", action="store_true")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="code a split with real bitstreams; per-image CSV and summary in RUN/eval/")
    e.add_argument("model_dir")
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=int, help="code the first N pairs (default: the whole split; MDIC on the "
                   "synthetic world: 8)")
    e.add_argument("--csv", help="also write the per-image CSV here")
    e.add_argument("--tag", help="name of this evaluation: RUN/eval/<split>-<tag>.{csv,json}")
    e.add_argument("--batch-size", type=int, default=1, help="images coded together (each decodes as it "
                   "would alone; times are per image)")
    e.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    e.add_argument("--data", metavar="SPEC", help="pairs to code (default: the run's training data, from its "
                   "config.json): synthetic | kitti:ROOT | cityscapes:ROOT")
    e.add_argument("--captioner", metavar="PATH_OR_ID", help=cap_help + " (default: the run's captioner)")
    e.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    e.add_argument("--num-inference-steps", type=int, help=steps_help)
    e.set_defaults(func=_cmd_eval)

    c = sub.add_parser("compress", help="compress one image (the encoder sees only this image, and a caption "
                       "of it where the codec's encoder reads one)")
    c.add_argument("model_dir")
    c.add_argument("image")
    c.add_argument("--caption", help=f"caption of the image, read by the encoder and sent in the stream "
                   f"({_codecs_with('encoder_caption')}; else --captioner computes it)")
    c.add_argument("--captioner", metavar="PATH_OR_ID", help="local BLIP-2 folder (or cached hub id) captioning "
                   "the image at the encoder (default: the run's captioner)")
    c.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(func=_cmd_compress)

    d = sub.add_parser("decompress", help="decompress a bitstream with the side image at the decoder")
    d.add_argument("model_dir")
    d.add_argument("file")
    d.add_argument("--side", help=f"side image (required by: {_codecs_with('needs_side')})")
    d.add_argument("--caption", help="caption of the side image (else --captioner computes it)")
    d.add_argument("--captioner", help="local BLIP-2 folder (or cached hub id) captioning the side image "
                   "(default: the run's captioner)")
    d.add_argument("--seed", type=int, default=0, help="the decoder's start-noise seed (diffusion decoders)")
    d.add_argument("--num-inference-steps", type=int, help=steps_help)
    d.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    d.add_argument("-o", "--output", required=True)
    d.set_defaults(func=_cmd_decompress)

    w = sub.add_parser("sweep", help="train + evaluate every cell of a TOML grid, resumable, on local / dask / "
                       "submitit executors")
    w.add_argument("spec", help="sweep spec (TOML), e.g. ablations/specs/smoke.toml")
    w.add_argument("--out", help="output folder (default: the spec's `out`)")
    w.add_argument("--executor", default="local", help="local (processes, default) | dask | submitit")
    w.add_argument("--workers", type=int, help="cells run at once (default: fill the machine's cores)")
    w.add_argument("--add", action="store_true", help="add this spec's cells to a folder holding another spec")
    w.add_argument("--backbone-root", metavar="DIR", help="cache folder of pretrained small backbones")
    w.set_defaults(func=_cmd_sweep)

    r = sub.add_parser("pretrain", help="pretrain (or reuse the cached) small MDIC backbone of a preset; "
                       "--export writes the compact copy the package ships")
    r.add_argument("--preset", default="lab", help="smoke | lab (paper loads Stable Diffusion instead)")
    r.add_argument("--root", metavar="DIR", help="backbone cache root (default $MDIC_LAB_CACHE/backbones or "
                   "~/.cache/mdic_lab/backbones); an empty folder forces pretraining from scratch")
    r.add_argument("--export", metavar="DIR", help="write the half-precision shipped copy here, e.g. "
                   "mdic_lab/models/mdic/shipped/lab (refused over 10 MB)")
    r.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16", help="storage of the shipped weights")
    r.add_argument("--training-provenance", metavar="JSON", help="command, git commit, machine … of the run that "
                   "made a cache folder whose pretrain.json does not record them")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=_cmd_pretrain)

    k = sub.add_parser("codecs", help="list the registered codecs: presets, rate points, variants, decoder needs")
    k.set_defaults(func=_cmd_codecs)
    return p


def _one_line(exc: BaseException) -> str:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    msg = " ".join(str(msg).split())
    return msg or type(exc).__name__


def main(argv=None) -> int:
    """Entry point of the ``mdic-lab`` script; returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("mdic-lab: interrupted", file=sys.stderr)
        return 130
    except (CLIError, FileNotFoundError, IsADirectoryError, PermissionError, ValueError, KeyError, TypeError,
            RuntimeError, OSError) as exc:
        print(f"mdic-lab: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
