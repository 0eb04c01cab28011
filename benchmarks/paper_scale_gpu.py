"""The `paper` preset's architecture at full size, random weights: step time and peak memory.

Issue #13 asks, where a GPU is available, for the paper-scale MDIC (Stable Diffusion 2.1-base
backbone: VAE, 865 M-parameter UNet, OpenCLIP ViT-H text encoder) to run a few training
steps and one 10-step decode, recording the step time and the peak GPU memory.  Nothing is
downloaded: the five components are built from SD 2.1-base's published configurations with
RANDOM weights and written as a local Stable Diffusion layout, which the real loading path
(``Backbone.from_pretrained(folder)``, exactly what ``pretrained=<hub id>`` does with a
downloaded copy) then reads.  Timings and memory do not depend on the weights' values; the
images it decodes are noise and no quality is reported.

Usage::

    python benchmarks/paper_scale_gpu.py                  # full size (a GPU; minutes)
    python benchmarks/paper_scale_gpu.py --scale tiny     # the same path with tiny widths (CPU check)

Prints one JSON object: device, parameter counts, ``train_step_s`` (median after the first
step), ``peak_memory_gib`` (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak RSS),
``decode_s_10_steps`` (one image at a time, after a warm-up), ``bpp_coded`` of the decoded pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Stable Diffusion 2.1-base component configurations (as published with the weights).
SD21_BASE = {
    "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
                 cross_attention_dim=1024, use_linear_projection=True, norm_num_groups=32,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3),
    "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.18215),
    "text": dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                 num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
                 bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
}

#: The same layout with tiny widths: checks the script end to end on a CPU in seconds.
TINY = {
    "unet": {**SD21_BASE["unet"], "block_out_channels": (32, 32, 64, 64), "attention_head_dim": (2, 2, 4, 4),
             "cross_attention_dim": 32, "layers_per_block": 1, "norm_num_groups": 8},
    "vae": {**SD21_BASE["vae"], "block_out_channels": (16, 16, 32, 32), "layers_per_block": 1, "norm_num_groups": 8},
    "text": {**SD21_BASE["text"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2, "projection_dim": 32},
}


def write_random_sd_layout(folder: Path, scale: str = "full") -> dict:
    """Random-weight SD 2.1-base components in the Stable Diffusion folder layout; returns parameter counts."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from mdic_lab.models.mdic.backbone import Backbone, make_scheduler
    from mdic_lab.models.mdic.tokenizer import load_clip_tokenizer

    cfg = SD21_BASE if scale == "full" else TINY
    torch.manual_seed(0)
    bb = Backbone(AutoencoderKL(**cfg["vae"]), UNet2DConditionModel(**cfg["unet"]),
                  CLIPTextModel(CLIPTextConfig(**cfg["text"])), load_clip_tokenizer(None), make_scheduler(1000))
    bb.save_pretrained(folder)
    return {name: sum(p.numel() for p in part.parameters())
            for name, part in (("vae", bb.vae), ("unet", bb.unet), ("text_encoder", bb.text_encoder))}


def _peak_memory_gib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB → GiB


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=("full", "tiny"), default="full")
    ap.add_argument("--steps", type=int, default=6, help="training steps (the first is not timed)")
    ap.add_argument("--batch-size", type=int, default=8, help="global batch (the paper: 8)")
    ap.add_argument("--pairs", type=int, default=16, help="synthetic training pairs")
    ap.add_argument("--decode-pairs", type=int, default=2, help="test pairs decoded at 10 steps")
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is not timed)")

    import torch

    from mdic_lab.registry import resolve
    from mdic_lab.runs import RunDir
    from mdic_lab.runs.evaluate import evaluate_run
    from mdic_lab.runs.train import train_run

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.out or tempfile.mkdtemp(prefix="paper_scale_"))
    sd = work / "sd21-base-random"
    params = write_random_sd_layout(sd, args.scale)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    over = {"pretrained": str(sd), "steps": args.steps, "batch_size": args.batch_size, "train_length": args.pairs,
            "warmup_steps": 1, "log_every": 1, "ckpt_every": args.steps, "cpu": not cuda}
    if args.scale == "tiny":
        over.update(hyper_channels=32, em_d_model=32, ts_d_model=32, g1_d_model=32, mask_hidden=16, g2_hidden=16,
                    em_heads=4, ts_heads=4, g1_heads=4, num_threads=2)
    run = resolve("mdic", "paper", rate_point=1, overrides=over)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    train_run(run, work / "run", progress=False)
    train_wall = time.perf_counter() - t0
    elapsed = [float(r["elapsed_s"]) for r in RunDir(work / "run").read_metrics()]
    steps_s = [b - a for a, b in zip(elapsed, elapsed[1:])]  # per step after the first
    summary = evaluate_run(work / "run", limit=args.decode_pairs, num_inference_steps=10, use_lpips=False,
                           batch_size=1, warmup=True, tag="paper-scale")
    out = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "scale": args.scale, "weights": "random (SD 2.1-base configurations; nothing downloaded)",
        "parameters": params, "image_size": list(run.model.image_size), "batch_size": args.batch_size,
        "train_steps": args.steps, "train_wall_s": round(train_wall, 2),
        "train_step_s": round(statistics.median(steps_s), 4) if steps_s else None,
        "peak_memory_gib": round(_peak_memory_gib(device), 3),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if cuda else "peak RSS of the process",
        "decode_s_10_steps": round(summary["decode_s"], 4), "encode_s": round(summary["encode_s"], 4),
        "bpp_coded": summary["bpp_coded"], "all_round_trip": summary["all_round_trip"],
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
