"""Time and peak memory of OmniParallax attention against full 2-D attention as the map grows (JSON lines).

ParaHydra's Appendix B counts O(N³) multiply-accumulates for OPAM on an N×N map (Eqs. 6, 8,
11 per stage: ``B·H·W²·C``) against O(N⁴) for full 2-D attention.  This script measures both on
one CPU thread, inference (``torch.no_grad``; ``--grad`` adds the backward pass):

* ``core``: the attention alone on given Q, K, V of ``C`` channels -- OPAM's two stages
  (:func:`~mdic_lab.models.baselines.opam.parallax_attention` horizontal, then vertical on the
  aligned map, Eqs. 21–22, with both cycle consistencies and Eq. 23) against
  :func:`~mdic_lab.models.baselines.opam.full_attention_2d` (the same outputs over all H·W
  positions).  This is what the O(N³) / O(N⁴) claim is about.
* ``module``: :class:`OmniParallaxAttention` against :class:`FullAttention2D`, i.e. with the
  selective-kernel convolutions that make Q and K (O(N²·C²), what a model also pays).

Time: the fastest and the median of at least ``--repeats`` calls (and at least ``--min-time``
seconds) after one warm-up call; the fits use the fastest (the machine may be shared).  By default
glibc is told (``mallopt``) to keep freed memory instead of returning blocks over 128 KiB to the
system, so repeated calls do not page-fault fresh memory each time (on this machine that alone
made OPAM at N = 48 four times slower); ``--malloc default`` leaves glibc as it is.

Memory: the peak of bytes held by torch's CPU allocator during one call, above the level before
it, read from the allocation records of ``torch.profiler`` (``profile_memory``: every allocation
reports the allocator's running total).  ``tracemalloc`` is not used: it sees Python's allocator
only, not tensor storage.  Inputs are allocated before the call and not counted.

The last line fits ``log(value) = a + k·log N`` by least squares over the sizes ``N ≥ --fit-min``
and also gives the local exponent between the two largest sizes of each method.

Usage::

    python benchmarks/parallax.py                      # about 30–60 s on one core
    python benchmarks/parallax.py --sizes 8,16,32 --opam-sizes 64 --channels 16
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mdic_lab.models.baselines.opam import (  # noqa: E402
    FullAttention2D, OmniParallaxAttention, full_attention_2d, parallax_attention,
)


def opam_core(q1, k1, q2, k2, v):
    """OPAM's two stages on given queries / keys: HPA(q1, k1, v) then VPA(q2, k2, f^hor), C = C^hor ⊙ C^ver."""
    hor = parallax_attention(q1, k1, v, "horizontal")  # Eq. 21
    ver = parallax_attention(q2, k2, hor.aligned, "vertical")  # Eq. 22
    return ver.aligned, hor.consistency * ver.consistency  # Eq. 23


def full_core(q1, k1, q2, k2, v):
    """Full 2-D attention on the same inputs (the second query / key pair is unused)."""
    out = full_attention_2d(q1, k1, v)
    return out.aligned, out.consistency


def peak_allocated_bytes(fn) -> int:
    """Peak bytes held by torch's CPU allocator while ``fn()`` runs, above the level before it."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    del out

    def walk(events):
        for e in events:
            yield e
            yield from walk(e.children)

    allocs = sorted((e for e in walk(prof.profiler.kineto_results.experimental_event_tree())
                     if e.tag == _EventType.Allocation), key=lambda e: e.start_time_ns)
    if not allocs:
        raise RuntimeError("torch.profiler recorded no CPU allocation: cannot measure memory with this torch build")
    base = allocs[0].extra_fields.total_allocated - allocs[0].extra_fields.alloc_size  # level before the call
    return int(max(e.extra_fields.total_allocated for e in allocs) - base)


def keep_freed_memory() -> str:
    """Ask glibc not to hand freed blocks back to the system (mmap and trim thresholds 1 GiB); what was done."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError, TypeError):
        ok = False
    return "glibc mallopt: mmap and trim thresholds 1 GiB" if ok else "default (mallopt not available)"


def time_call(fn, repeats: int, min_time: float) -> tuple[float, float]:
    """(fastest, median) seconds of ``fn()`` over at least ``repeats`` calls and ``min_time`` s, after a warm-up."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def make_call(kind: str, method: str, n: int, channels: int, batch: int, grad: bool, seed: int):
    """A zero-argument callable running one method on an N×N map (inputs made once, outside the call)."""
    g = torch.Generator().manual_seed(seed)
    maps = [torch.randn(batch, channels, n, n, generator=g, requires_grad=grad) for _ in range(5)]
    if kind == "core":
        fn = opam_core if method == "opam" else full_core

        def call():
            return fn(*maps)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            mod = (OmniParallaxAttention if method == "opam" else FullAttention2D)(channels)

        def call():
            return mod(maps[0], maps[1])[:2]  # (aligned, consistency)
    if not grad:
        def run():
            with torch.no_grad():
                return call()
    else:
        def run():
            aligned, cons = call()
            (aligned.square().mean() + cons.mean()).backward()
            return aligned
    return run


def attention_macs(method: str, n: int, channels: int, batch: int) -> int:
    """The appendix's count of attention MACs: per stage ``B·H·W²·C`` for M (Eq. 6) and as many for Eq. 11.

    OPAM has two stages on an N×N map: ``4·B·N³·C``; full 2-D attention: ``2·B·N⁴·C``.  The cycle
    consistency (``B·H·W²`` per stage) and the SKM convolutions are not counted.
    """
    return 4 * batch * n**3 * channels if method == "opam" else 2 * batch * n**4 * channels


def fit_exponent(ns, values) -> float | None:
    """Least-squares slope of log(value) against log(N) (None with fewer than two sizes)."""
    if len(set(ns)) < 2:
        return None
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="8,16,24,32,48,64", help="N of the N×N maps, both methods")
    ap.add_argument("--opam-sizes", default="96,128", help="further N for OPAM only (full 2-D attention would "
                    "need GBs: its (HW)² maps are 0.34 GB each at N = 96)")
    ap.add_argument("--channels", type=int, default=32, help="C of Q, K and V")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--kinds", default="core,module", help="core (attention only) and/or module (with the SKM)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds of timed calls per point, at least")
    ap.add_argument("--fit-min", type=int, default=16, help="smallest N used in the exponent fit")
    ap.add_argument("--grad", action="store_true", help="time forward + backward instead of inference")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--malloc", choices=("keep", "default"), default="keep",
                    help="keep: glibc keeps freed memory (no page faults per call); default: leave glibc as it is")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    malloc = keep_freed_memory() if args.malloc == "keep" else "default"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    extra = [int(s) for s in args.opam_sizes.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in ("core", "module"):
            ap.error(f"unknown kind {k!r} (expected one of: core, module)")
    common = {"benchmark": "parallax", "channels": args.channels, "batch": args.batch, "threads": args.threads,
              "grad": args.grad, "malloc": malloc,
              "memory": "torch.profiler CPU allocator records (peak above the start)"}
    results = {}
    t_start = time.perf_counter()
    for kind in kinds:
        for method, ns in (("opam", sizes + extra), ("full2d", sizes)):
            for n in ns:
                run = make_call(kind, method, n, args.channels, args.batch, args.grad, seed=n)
                sec, med = time_call(run, args.repeats, args.min_time)
                mem = peak_allocated_bytes(run)
                results.setdefault((kind, method), []).append((n, sec, mem))
                print(json.dumps({**common, "kind": kind, "method": method, "N": n, "time_ms": 1e3 * sec,
                                  "time_ms_median": 1e3 * med, "peak_mib": mem / 2**20,
                                  "attention_macs": (macs := attention_macs(method, n, args.channels, args.batch)),
                                  "ns_per_attention_mac": 1e9 * sec / macs,
                                  "load_avg_1m": os.getloadavg()[0]}), flush=True)
    fits = {}
    for (kind, method), rows in results.items():
        used = [r for r in rows if r[0] >= args.fit_min]
        ns = [r[0] for r in used]
        (n1, t1, m1), (n2, t2, m2) = rows[-2], rows[-1]
        fits[f"{kind}/{method}"] = {
            "fit_N": ns,
            "time_exponent": fit_exponent(ns, [r[1] for r in used]),
            "memory_exponent": fit_exponent(ns, [r[2] for r in used]),
            "time_exponent_last_pair": math.log(t2 / t1) / math.log(n2 / n1),
            "memory_exponent_last_pair": math.log(m2 / m1) / math.log(n2 / n1),
        }
    print(json.dumps({**common, "summary": "fitted log-log exponents (appendix: OPAM 3, full 2-D 4)", "fits": fits,
                      "wall_s": time.perf_counter() - t_start, "load_avg_1m": os.getloadavg()[0]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
