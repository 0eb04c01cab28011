"""Measure the synthetic stereo world: generation speed, cache speed, caption statistics.

Prints one JSON object per line:

* ``generation``: pairs per second for ``--n`` pairs, by wall clock and by CPU time of
  this process (the per-core figure; the wall figure drops when the machine is shared);
* ``cache``: items per second when reading a split back from the on-disk cache;
* ``captions``: mean words per caption, distinct object nouns, the 14-noun vocabulary,
  and how often each side-view discrepancy (mover, appearance change, light patch,
  border intruder) occurs, plus the mean fraction of side-view pixels marked consistent.

Usage: ``python benchmarks/data_generation.py [--n 200] [--size 128 256] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mdic_lab.data.synthetic import SyntheticStereo, generate_sample  # noqa: E402
from mdic_lab.data.vocabulary import build_vocabulary, extract_nouns  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="pairs to generate")
    ap.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be positive")
    size = tuple(args.size)

    t0 = time.perf_counter()
    generate_sample("train", args.seed, 0, size)  # loads (or compiles) the raster kernels
    warmup = time.perf_counter() - t0

    wall, cpu = time.perf_counter(), time.process_time()
    samples = [generate_sample("train", args.seed, i, size) for i in range(args.n)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"benchmark": "generation", "pairs": args.n, "size": list(size),
                      "pairs_per_s_wall": round(args.n / wall, 1), "pairs_per_s_cpu": round(args.n / cpu, 1),
                      "warmup_s": round(warmup, 2), "load_avg_1min": round(os.getloadavg()[0], 2)}))

    with tempfile.TemporaryDirectory() as d:
        n = min(args.n, 128)
        ds = SyntheticStereo("train", seed=args.seed, size=size, length=n, cache_dir=d)
        t = time.perf_counter()
        ds[0]  # generates and writes the chunk
        write = time.perf_counter() - t
        ds2 = SyntheticStereo("train", seed=args.seed, size=size, length=n, cache_dir=d)
        t = time.perf_counter()
        for i in range(n):
            ds2[i]
        read = time.perf_counter() - t
        nbytes = sum(f.stat().st_size for f in Path(d).rglob("*.npz"))
        print(json.dumps({"benchmark": "cache", "items": n, "chunk_write_s": round(write, 2),
                          "items_per_s_read": round(n / read, 1), "bytes_per_pair": int(nbytes / n)}))

    caps = [s.caption for s in samples]
    vocab = build_vocabulary(caps, n=14)
    ph = {k: float(np.mean([bool(s.scene.phenomena[k]) for s in samples]))
          for k in ("mover", "appearance_change", "light_patch", "border_intruder")}
    print(json.dumps({"benchmark": "captions", "pairs": args.n,
                      "mean_words": round(float(np.mean([len(c.split()) for c in caps])), 1),
                      "distinct_nouns": len({n for c in caps for n in extract_nouns(c)}),
                      "vocabulary_14": list(vocab.nouns), "vocabulary_counts": list(vocab.counts),
                      "phenomenon_rate": ph,
                      "side_valid_mean": round(float(np.mean([s.side_valid.mean() for s in samples])), 3)}))


if __name__ == "__main__":
    main()
