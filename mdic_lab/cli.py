"""``mdic-lab``: train, evaluate, compress and decompress with the learned codecs.

::

    mdic-lab train --model ndic --preset lab --lmbda 0.0018 --out /work/runs/ndic_l0018
    mdic-lab eval RUN_DIR --split test --limit 100 --csv out.csv
    mdic-lab compress RUN_DIR left.png -o left.mdic
    mdic-lab decompress RUN_DIR left.mdic --side right.png -o left_hat.png

    # paper scale: real stereo pairs, BLIP-2 captions of the side views (cached once)
    mdic-lab train --model mdic --preset paper --data kitti:/data/kitti \
        --captioner Salesforce/blip2-opt-2.7b --out runs/mdic_kitti
    mdic-lab eval runs/mdic_kitti --split test --csv kitti_test.csv   # same data + captioner as training

``--data`` is ``synthetic`` (default), ``kitti:ROOT`` or ``cityscapes:ROOT``
(:mod:`mdic_lab.data.sources`); it and ``--captioner`` are recorded in the run's
``config.json`` (``data``) and ``eval`` uses them unless told otherwise.

Bad input (missing file, wrong image size, corrupted bitstream, stream of another model,
unknown preset or field) prints ONE line ``mdic-lab: error: …`` on stderr and exits with
status 2; no traceback.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path

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
    """JSON with NaN/inf written as null (strict JSON)."""
    import math

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj))


def _run_meta(model_dir) -> dict:
    """Check a run folder before loading torch: it must hold checkpoint.pt and config.json."""
    d = Path(model_dir)
    if not (d / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"no checkpoint at {d / 'checkpoint.pt'} (expected a run folder written by `mdic-lab train`)")
    try:
        return json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"run folder {d} has no readable config.json ({exc})") from None


def _need_file(path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def _check_limit(value, flag: str):
    if value is not None and value <= 0:
        raise CLIError(f"{flag} must be a positive int, got {value}")


def _train_data(args) -> None:
    """Fill ``--data`` (and, unset, ``--captioner`` / ``--data-limit``): on ``--resume`` from the run's record."""
    rec = {}
    if args.data is None and args.resume:
        try:
            rec = json.loads((Path(args.out) / "config.json").read_text()).get("data") or {}
        except (OSError, ValueError):
            rec = {}
    if args.data is not None:
        return
    if not (isinstance(rec, dict) and rec.get("spec") and rec["spec"] != "custom"):
        args.data = "synthetic"
        return
    args.data = rec["spec"]
    if args.captioner is None and rec.get("captioner") not in (None, "oracle"):
        args.captioner = rec["captioner"]
    if args.data_limit is None and isinstance(rec.get("length"), int):
        args.data_limit = rec["length"]


def _cmd_train(args) -> int:
    _check_limit(args.data_limit, "--data-limit")
    _train_data(args)
    if args.model == "mdic":
        return _cmd_train_mdic(args)
    for k in ("captioner", "caption_cache", "backbone_root"):
        if getattr(args, k) is not None:
            raise CLIError(f"--{k.replace('_', '-')} applies to --model mdic only ({args.model} reads no captions)")
    from mdic_lab.data.sources import parse_data_spec

    spec = parse_data_spec(args.data)  # a bad spec fails before any model is built
    from mdic_lab.config import MODEL_CONFIGS, TrainConfig, get_preset

    sets = _parse_sets(args.set)
    model_keys = set(MODEL_CONFIGS[args.model].__dataclass_fields__)
    train_keys = set(TrainConfig.__dataclass_fields__)
    m_over, t_over = {}, {}
    for k, v in sets.items():
        if k in model_keys:
            m_over[k] = v
        elif k in train_keys:
            t_over[k] = v
        else:
            raise CLIError(f"unknown --set key {k!r} (model fields: {', '.join(sorted(model_keys))}; "
                           f"train fields: {', '.join(sorted(train_keys))})")
    for k in ("alpha", "beta", "prior"):
        if getattr(args, k) is not None:
            if args.model != "ndic":
                raise CLIError(f"--{k} applies to --model ndic only")
            m_over[k] = getattr(args, k)
    for k in ("lmbda", "steps", "seed"):
        if getattr(args, k) is not None:
            t_over[k] = getattr(args, k)
    mcfg, tcfg = get_preset(args.model, args.preset, m_over, t_over)
    from mdic_lab.train import make_dataset, train  # torch is imported only once the arguments are valid

    length = args.data_limit if args.data_limit is not None else (None if spec.is_real else tcfg.train_length)
    dataset = make_dataset("train", tcfg, length=length, data=spec)
    summary = train(args.model, mcfg, tcfg, args.out, dataset=dataset, resume=args.resume, verbose=args.verbose)
    print(_json({**summary, "data": str(spec), "train_pairs": len(dataset)}))
    return 0


def _cmd_train_mdic(args) -> int:
    for k in ("lmbda", "alpha", "beta", "prior"):
        if getattr(args, k, None) is not None:
            raise CLIError(f"--{k} does not apply to --model mdic (its rate points are codebook sizes: --rate-point)")
    from mdic_lab.models.mdic.cli_support import train_from_cli

    summary = train_from_cli(args.preset, args.out, variant=args.variant, rate_point=args.rate_point,
                             steps=args.steps, seed=args.seed, sets=_parse_sets(args.set), resume=args.resume,
                             verbose=args.verbose, data=args.data, captioner=args.captioner,
                             caption_cache=args.caption_cache, data_limit=args.data_limit,
                             backbone_root=args.backbone_root)
    print(_json(summary))
    return 0


def _cmd_eval(args) -> int:
    _check_limit(args.limit, "--limit")
    if args.data is not None:
        from mdic_lab.data.sources import parse_data_spec

        parse_data_spec(args.data)  # a bad spec fails before the model is loaded
    if _is_mdic(args.model_dir):
        from mdic_lab.models.mdic.cli_support import evaluate_run

        print(_json(evaluate_run(args.model_dir, split=args.split, limit=args.limit, csv_path=args.csv,
                                 use_lpips=not args.no_lpips, num_inference_steps=args.num_inference_steps,
                                 data=args.data, captioner=args.captioner, caption_cache=args.caption_cache)))
        return 0
    for k in ("captioner", "caption_cache", "num_inference_steps"):
        if getattr(args, k) is not None:
            raise CLIError(f"--{k.replace('_', '-')} applies to MDIC runs only")
    from mdic_lab.evaluate import evaluate

    summary = evaluate(args.model_dir, split=args.split, limit=args.limit, csv_path=args.csv, data=args.data,
                       use_lpips=not args.no_lpips)
    print(_json(summary))
    return 0


def _is_mdic(model_dir) -> bool:
    d = Path(model_dir)
    try:
        return json.loads((d / "config.json").read_text()).get("model_name") == "mdic"
    except (OSError, ValueError):
        return False


def _cmd_compress(args) -> int:
    meta = _run_meta(args.model_dir)
    _need_file(args.image, "image file")
    if meta.get("model_name") == "mdic":
        from mdic_lab.coding.container import write_bitstream
        from mdic_lab.models.mdic.cli_support import compress_file

        data, info = compress_file(args.model_dir, load_image(args.image))
        write_bitstream(args.output, data)
        print(json.dumps({"output": str(args.output), **info}))
        return 0
    from mdic_lab.coding.container import write_bitstream
    from mdic_lab.train import load_model

    model, _ = load_model(args.model_dir)
    x = load_image(args.image)
    enc = model.compress(x)
    write_bitstream(args.output, enc["strings"][0])
    npix = x.shape[-2] * x.shape[-1]
    print(json.dumps({"output": str(args.output), "bytes": len(enc["strings"][0]),
                      "bpp_coded": 8.0 * len(enc["strings"][0]) / npix, "model_id": model.model_id}))
    return 0


def _cmd_decompress(args) -> int:
    from mdic_lab.coding.container import read_bitstream, unpack

    meta = _run_meta(args.model_dir)
    data = read_bitstream(_need_file(args.file, "bitstream file"))
    unpack(data)  # structure and CRC32 are checked before any model is loaded
    if meta.get("model_name") == "mdic":
        if args.side is None:
            raise CLIError("this MDIC model decodes with side information: pass --side SIDE_IMAGE "
                           "(and --caption TEXT or --captioner BLIP2_DIR)")
        _need_file(args.side, "side image")
        from mdic_lab.models.mdic.cli_support import decompress_file

        x_hat, caption = decompress_file(args.model_dir, data, load_image(args.side), caption=args.caption,
                                         captioner=args.captioner, seed=args.seed,
                                         num_inference_steps=args.num_inference_steps,
                                         caption_cache=args.caption_cache)
        save_image(x_hat, args.output)
        print(json.dumps({"output": str(args.output), "size": list(x_hat.shape[-2:]), "caption": caption}))
        return 0
    if args.side is None and meta.get("model_name") == "ndic":
        raise CLIError("this NDIC model decodes with side information: pass --side SIDE_IMAGE")
    if args.side is not None:
        _need_file(args.side, "side image")
    from mdic_lab.train import load_model

    model, _ = load_model(args.model_dir)
    side = load_image(args.side) if args.side is not None else None
    x_hat = model.decompress([data], None, side=side)
    save_image(x_hat, args.output)
    print(json.dumps({"output": str(args.output), "size": list(x_hat.shape[-2:])}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mdic-lab", description="Learned distributed image compression (NDIC) and its baseline.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    data_help = ("stereo pairs: synthetic (default; the embedded world) | kitti:ROOT (ROOT holds "
                 "data_scene_flow_multiview/ and data_stereo_flow_multiview/, NDIC's split lists) | "
                 "cityscapes:ROOT (ROOT holds leftImg8bit/, rightImg8bit/, optional gtFine/)")
    cap_help = ("MDIC: BLIP-2 captioning the side views, a local folder or a hub id in the local Hugging Face "
                "cache (paper: Salesforce/blip2-opt-2.7b); required with real --data, cached per image")
    cache_help = "MDIC: caption cache folder (default $MDIC_LAB_CACHE/captions or ~/.cache/mdic_lab/captions)"
    t = sub.add_parser("train", help="train a codec on stereo pairs (synthetic world, KITTI or Cityscapes)")
    t.add_argument("--model", required=True, choices=["ndic", "hyperprior", "mdic"])
    t.add_argument("--preset", default="lab", help="smoke | lab | paper")
    t.add_argument("--lmbda", type=float, help="λ of R + λ·255²·MSE")
    t.add_argument("--steps", type=int, help="total optimiser steps")
    t.add_argument("--seed", type=int)
    t.add_argument("--alpha", type=float, help="NDIC α (Eq. 4)")
    t.add_argument("--beta", type=float, help="NDIC β (Eq. 4)")
    t.add_argument("--prior", help="NDIC entropy model of v_x: factorized | hyperprior")
    t.add_argument("--variant", default="full", help="MDIC ablation variant: full | no_text | no_ts | no_g1g2 | "
                   "no_g2 | no_zd | no_zd_zxc")
    t.add_argument("--rate-point", type=int, help="MDIC rate point (codebook size index of the preset)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any model/train config field")
    t.add_argument("--out", required=True, help="run folder (config.json, metrics.csv, checkpoint.pt)")
    t.add_argument("--data", metavar="SPEC", help=data_help + "; with --resume: the run's recorded data, "
                   "captioner and pair count")
    t.add_argument("--data-limit", type=int, metavar="N", help="train on the first N pairs of the train split "
                   "(default: all of a real split; synthetic: the preset's train_length)")
    t.add_argument("--captioner", metavar="PATH_OR_ID", help=cap_help)
    t.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    t.add_argument("--backbone-root", metavar="DIR", help="MDIC smoke/lab: cache folder of the pretrained small "
                   "backbone (default ~/.cache/mdic_lab/backbones)")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    t.add_argument("--verbose", action="store_true")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="code a split with real bitstreams; per-image CSV")
    e.add_argument("model_dir")
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=int, help="code the first N pairs (default: the whole split; MDIC on the "
                   "synthetic world: 8)")
    e.add_argument("--csv")
    e.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    e.add_argument("--data", metavar="SPEC", help="pairs to code (default: the run's training data, from its "
                   "config.json): synthetic | kitti:ROOT | cityscapes:ROOT")
    e.add_argument("--captioner", metavar="PATH_OR_ID", help="MDIC: BLIP-2 folder or hub id captioning the side "
                   "views (default: the run's captioner, from its config.json)")
    e.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    e.add_argument("--num-inference-steps", type=int, help="MDIC: DDIM steps (default: the model's, 10)")
    e.set_defaults(func=_cmd_eval)

    c = sub.add_parser("compress", help="compress one image (the encoder sees only this image)")
    c.add_argument("model_dir")
    c.add_argument("image")
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(func=_cmd_compress)

    d = sub.add_parser("decompress", help="decompress a bitstream with the side image at the decoder")
    d.add_argument("model_dir")
    d.add_argument("file")
    d.add_argument("--side", help="side image (required by NDIC)")
    d.add_argument("--caption", help="MDIC: caption of the side image (else --captioner computes it)")
    d.add_argument("--captioner", help="MDIC: local BLIP-2 folder (or cached hub id) captioning the side image")
    d.add_argument("--seed", type=int, default=0, help="MDIC: the decoder's DDIM start-noise seed")
    d.add_argument("--num-inference-steps", type=int, help="MDIC: DDIM steps (default: the model's, 10)")
    d.add_argument("--caption-cache", metavar="DIR", help=cache_help)
    d.add_argument("-o", "--output", required=True)
    d.set_defaults(func=_cmd_decompress)
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
