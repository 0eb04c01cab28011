"""Measured speed and overhead of the range coder (mdic_lab.coding), printed as JSON lines.

    python benchmarks/coding.py            # realistic sizes (~1 min on one core)
    python benchmarks/coding.py --quick    # small sizes

Each line is one measurement:
* ``throughput``: symbols/s and coded MB/s for encode and decode of categorical
  (autoregressive-token-like, one probability row per symbol) and Gaussian-conditional
  (hyperprior-latent-like) streams; best of ``--repeats`` runs.
* ``overhead``: coded payload bits against the ideal ``-Σ log2 p`` of the same model
  (the ESTIMATE a training loss reports), in percent, and the container's header + CRC
  bytes reported separately (a fixed cost per image, not a percentage).
* ``autoregressive``: MDIC's transformer entropy model at the lab size (K = 4 codes, 16×32
  tokens, d = 64, 2 layers, 4 heads; random weights: this times the coder, it codes no
  trained model's tokens) range-coding images ``batch`` at a time: milliseconds per image for
  compress and decompress, and whether every image's bytes equal those it gets coded alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mdic_lab.coding import (  # noqa: E402
    decode_categorical,
    decode_gaussian_conditional,
    encode_categorical,
    encode_gaussian_conditional,
    gaussian_conditional_likelihoods,
    pack,
)


def _best(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def categorical_case(rng, n, k, alpha=0.3):
    probs = rng.dirichlet(np.full(k, alpha), size=n).astype(np.float32)
    cum = np.cumsum(probs.astype(np.float64), axis=1)
    sym = np.minimum((rng.random((n, 1)) * cum[:, -1:] > cum).sum(1), k - 1)
    p = probs.astype(np.float64)
    ideal = float(-np.log2(p[np.arange(n), sym] / p.sum(1)).sum())
    return sym, probs, ideal


def gaussian_case(rng, n):
    means = rng.normal(0, 2, n).astype(np.float32)
    scales = np.exp(rng.uniform(np.log(0.15), np.log(8.0), n)).astype(np.float32)
    sym = np.round(rng.normal(means, scales)).astype(np.int64)
    ideal = float(-np.log2(gaussian_conditional_likelihoods(sym, means, scales)).sum())
    return sym, means, scales, ideal


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    s = 0.1 if args.quick else 1.0
    h, w = 128, 256  # the paper's image size
    pixels = h * w

    cases = [
        # MDIC-like: 16x32 VQ tokens from a 1024-entry codebook, one softmax row each
        ("categorical", "vq_tokens_16x32_K1024", lambda: categorical_case(rng, 512, 1024)),
        ("categorical", "tokens_K256_large", lambda: categorical_case(rng, int(200_000 * s), 256)),
        # hyperprior-like: y of 192 x 8 x 16 for a 128x256 image
        ("gaussian", "hyperprior_y_192x8x16", lambda: gaussian_case(rng, 192 * 8 * 16)),
        ("gaussian", "gaussian_large", lambda: gaussian_case(rng, int(2_000_000 * s))),
    ]
    for kind, name, make in cases:
        if kind == "categorical":
            sym, probs, ideal = make()
            t_enc, data = _best(lambda: encode_categorical(sym, probs), args.repeats)
            t_dec, back = _best(lambda: decode_categorical(data, probs), args.repeats)
            extra = {"alphabet": probs.shape[1]}
        else:
            sym, means, scales, ideal = make()
            t_enc, data = _best(lambda: encode_gaussian_conditional(sym, means, scales), args.repeats)
            t_dec, back = _best(lambda: decode_gaussian_conditional(data, means, scales), args.repeats)
            extra = {}
        assert np.array_equal(back, sym), f"{name}: round trip failed"
        n = sym.size
        for op, t in (("encode", t_enc), ("decode", t_dec)):
            print(json.dumps({"bench": "throughput", "coder": kind, "case": name, "op": op, "n_symbols": n,
                              **extra, "seconds": round(t, 6), "symbols_per_s": round(n / t),
                              "coded_MB_per_s": round(len(data) / t / 1e6, 4)}))
        stream = pack("bench@0", {"image": (h, w), "latent": (h // 8, w // 8)}, [data])
        header = len(stream) - len(data)
        coded_bits = 8 * len(data)
        print(json.dumps({
            "bench": "overhead", "coder": kind, "case": name, "n_symbols": n,
            "ideal_bits_estimate": round(ideal, 2), "coded_payload_bits": coded_bits,
            "overhead_percent": round(100 * (coded_bits - ideal) / ideal, 4),
            "container_header_and_crc_bytes": header,
            "bpp_estimate": round(ideal / pixels, 6) if n <= 50_000 else None,
            "bpp_coded": round(8 * len(stream) / pixels, 6) if n <= 50_000 else None,
        }))
    # one pass each: 64 images one at a time already take ~13 s per operation
    autoregressive_case((1, 8, 16) if args.quick else (1, 8, 64), 16 if args.quick else 64, 1, args.seed)


def autoregressive_case(batches, n_images, repeats, seed):
    """ms per image of AREntropyModel.compress / decompress at each batch size (one line each)."""
    import torch

    from mdic_lab.models.mdic.entropy_model import AREntropyModel

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    em = AREntropyModel(num_codes=4, num_tokens=16 * 32, d_model=64, layers=2, heads=4).eval()
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(torch.tensor([0.5, 0.3, 0.15, 0.05]), n_images * 512, replacement=True,
                            generator=g).reshape(n_images, 16, 32)
    alone = None
    for b in batches:
        def enc(b=b):
            return [s for i in range(0, n_images, b) for s in em.compress(idx[i:i + b])]

        t_enc, streams = _best(enc, repeats)
        t_dec, back = _best(lambda b=b: torch.cat([em.decompress(streams[i:i + b], (16, 32))
                                                   for i in range(0, n_images, b)]), repeats)
        assert torch.equal(back, idx), f"batch {b}: round trip failed"
        alone = streams if alone is None else alone
        print(json.dumps({"bench": "autoregressive", "coder": "AREntropyModel lab size, random weights",
                          "batch": b, "images": n_images, "compress_ms_per_image": round(1e3 * t_enc / n_images, 2),
                          "decompress_ms_per_image": round(1e3 * t_dec / n_images, 2),
                          "bytes_identical_to_batch_%d" % batches[0]: streams == alone}))


if __name__ == "__main__":
    main()
