"""Speed and rate-overhead benchmark of the learned codecs (NDIC and the hyperprior baseline).

Prints one JSON line per model: CPU encode / decode time per 128×256 image (1 thread,
median over ``--repeats`` images), and the coded rate (real container bytes) against the
estimated rate (Σ −log2 p of the same latents) with their overhead.

Usage::

    python benchmarks/ndic.py                       # fresh lab-size models (untrained weights)
    python benchmarks/ndic.py --runs /work/runs/ndic_lab_l0.0018 /work/runs/hyperprior_lab_l0.0018

With ``--runs`` the trained checkpoints are loaded and the synthetic test images are coded;
without, randomly initialised lab-size models code synthetic test images (timing is
representative, the rates are not those of a trained codec).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mdic_lab.coding.bpp import bpp_from_bytes  # noqa: E402
from mdic_lab.coding.container import header_size, unpack  # noqa: E402
from mdic_lab.data.sources import parse_data_spec  # noqa: E402
from mdic_lab.registry import get_codec, resolve  # noqa: E402
from mdic_lab.runs.coding import load_run  # noqa: E402


def synthetic_test_pairs(run, hooks, length: int):
    """The first ``length`` synthetic test pairs at the run's image size."""
    return hooks.open_data(run, parse_data_spec("synthetic"), "test", length=length)


def bench(model, hooks, name, dataset, repeats: int) -> dict:
    """Encode / decode times and coded vs estimated rate of ``repeats`` pairs, through the codec's run hooks."""
    enc_t, dec_t, coded, est, head, exact = [], [], [], [], [], True
    for i in range(repeats):
        item = dataset[i]
        x, y = item["left"].unsqueeze(0).float(), item["right"].unsqueeze(0).float()
        t0 = time.perf_counter()
        streams = hooks.compress(model, x)  # one container per image (a batch of one here)
        t1 = time.perf_counter()
        x_hat = hooks.decompress(model, streams, y, [item.get("caption")])
        t2 = time.perf_counter()
        npix = x.shape[-2] * x.shape[-1]
        enc_t.append(t1 - t0)
        dec_t.append(t2 - t1)
        coded.append(bpp_from_bytes(streams[0], npix))
        est.append(hooks.estimated_bpp(model, x, y)[0])
        c = unpack(streams[0], expected_model_id=model.model_id)
        head.append(8.0 * header_size(model.model_id, c.shapes, [len(p) for p in c.payloads]) / npix)
        # hyperprior / NDIC: the decoded image equals forward(mode="dequantize") bit for bit
        exact &= hooks.round_trip(model, x, y, streams, x_hat)[0]
    c, e = statistics.mean(coded), statistics.mean(est)
    return {"benchmark": "ndic", "model": name, "image": [int(x.shape[-2]), int(x.shape[-1])], "threads": torch.get_num_threads(),
            "images": repeats, "encode_ms_median": 1e3 * statistics.median(enc_t),
            "decode_ms_median": 1e3 * statistics.median(dec_t), "bpp_coded": c, "bpp_estimated": e,
            "overhead_bpp": c - e, "overhead_rel": (c - e) / e if e > 0 else None,
            "container_header_bpp": statistics.mean(head), "coder_overhead_bpp": c - e - statistics.mean(head),
            "decode_equals_forward": exact,
            "params": sum(p.numel() for p in model.parameters())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=None, help="trained run folders (default: fresh lab models)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.runs:
        for run_dir in args.runs:
            model, run, hooks = load_run(run_dir)
            ds = synthetic_test_pairs(run, hooks, args.repeats)
            res = bench(model, hooks, f"{run.codec}:{Path(run_dir).name}", ds, args.repeats)
            print(json.dumps(res), flush=True)
    else:
        for name in ("hyperprior", "ndic"):
            run = resolve(name, "lab")
            codec = get_codec(name)
            hooks = codec.load_hooks()
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = codec.load_model_class()(run.model).eval().update()
            ds = synthetic_test_pairs(run, hooks, args.repeats)
            print(json.dumps({**bench(model, hooks, name, ds, args.repeats), "weights": "untrained"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
