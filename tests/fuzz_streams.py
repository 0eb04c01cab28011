"""Fuzzing decoders with corrupted streams that still carry a valid CRC.

A stream damaged in transit fails the container's CRC32 and never reaches a decoder; what
does reach it is a stream whose payload bytes are wrong but whose CRC was computed over
them (a buggy or hostile writer, a damaged file re-packed by a tool).  :func:`mutate` makes
such streams: it unpacks a valid stream, changes its payloads (bit flips, byte
substitutions, truncations, extensions, swapped or dropped payloads) or a size in its
header, and packs it again with :func:`mdic_lab.coding.container.pack`, which recomputes
the CRC, so the container layer accepts it.  :func:`run_fuzz` decodes many of them and
sorts the outcomes: a decoded image of the right shape with finite values, or a
:class:`BitstreamError`; anything else -- another exception, NaN/inf in the output, a
wrong shape, or a decode slower than the time limit -- is a failure, reported with the seed
that reproduces it (``mutate(stream, model_id, seed)``).

>>> from mdic_lab.coding.container import pack, unpack
>>> s = pack("toy@0", {"x": (2, 3)}, [b"abcdefgh", b"ijkl"])
>>> m = mutate(s, "toy@0", seed=7)
>>> unpack(m.data, expected_model_id="toy@0").model_id  # the CRC is valid: the container accepts it
'toy@0'
>>> m == mutate(s, "toy@0", seed=7)  # the seed alone reproduces a mutant
True
"""

from __future__ import annotations

import collections
import contextlib
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import torch

from mdic_lab.coding.container import MAX_DIM, MAX_ELEMENTS, pack, unpack
from mdic_lab.coding.errors import BitstreamError

__all__ = ["Mutant", "FuzzReport", "mutate", "mutants", "run_fuzz", "check_image_output", "DecodeTimeout"]

#: Mutation kinds and their weights.  Payload-content mutations dominate; the payloads of
#: the range coder are whole 32-bit words, so truncations and extensions come both as
#: whole words (which reach the range decoder) and as odd byte counts (refused at once).
KINDS = {
    "flip": 4,  # 1-3 bit flips in one payload
    "byte": 3,  # 1-3 bytes of one payload replaced by random bytes
    "fill": 1,  # a run of one payload set to 0x00 or 0xFF
    "truncate_words": 2,  # one payload cut to fewer whole words (possibly none)
    "truncate": 1,  # one payload cut to any shorter length
    "extend_words": 2,  # 1-4 random words appended to one payload
    "extend": 1,  # 1-7 random bytes appended
    "splice": 1,  # a chunk of one payload copied over another place of one payload
    "random": 1,  # one payload replaced by random bytes of the same length
    "swap": 2,  # two payloads exchanged (streams with several payloads)
    "payload_count": 1,  # a payload dropped, duplicated or an empty one added
    "shape": 2,  # one size in the header changed (or one added to a stream without shapes)
}


@dataclass(frozen=True)
class Mutant:
    """A corrupted stream with a valid CRC, and how it was made (``seed`` reproduces it)."""

    seed: int
    kind: str
    detail: str
    data: bytes


def _pick_payload(rng, payloads, nonempty=False):
    choices = [i for i, p in enumerate(payloads) if p or not nonempty]
    return rng.choice(choices) if choices else None


def _mutate_shape(rng, shapes):
    if not shapes:  # a stream without shapes (MDIC) gets one
        shapes["x"] = (rng.choice([1, 32, 64]), rng.choice([1, 64, 128]))
        return f"shape 'x' added: {shapes['x']}"
    name = rng.choice(sorted(shapes))
    dims = list(shapes[name])
    if not dims or rng.random() < 0.15:  # change the number of dimensions
        if dims and rng.random() < 0.5:
            dims.pop(rng.randrange(len(dims)))
            how = "dropped a dim"
        else:
            dims.insert(rng.randrange(len(dims) + 1), rng.choice([1, 2, 64]))
            how = "added a dim"
    else:
        k = rng.randrange(len(dims))
        d = dims[k]
        new = rng.choice([d + 1, max(d - 1, 0), 2 * d, d // 2, 0, d + 16, d + 64, rng.randint(0, MAX_DIM)])
        if new == d:
            new = d + 1
        dims[k] = new
        how = f"dim {k}: {d} -> {new}"
    p = 1
    for v in dims:
        p *= v
    if p > MAX_ELEMENTS or any(v > MAX_DIM for v in dims):  # pack() would refuse it: keep it packable
        dims = [min(v, 1 << 12) for v in dims]
        how += " (clipped)"
    shapes[name] = tuple(dims)
    return f"shape {name!r}: {how} -> {tuple(dims)}"


def mutate(stream: bytes, model_id: str, seed: int) -> Mutant:
    """One corrupted copy of ``stream`` (written by the model ``model_id``) with a valid CRC.

    The mutation is drawn from :data:`KINDS` by ``random.Random(seed)``, so ``seed`` alone
    reproduces it.
    """
    c = unpack(stream, expected_model_id=model_id)
    rng = random.Random(seed)
    payloads = [bytearray(p) for p in c.payloads]
    shapes = dict(c.shapes)
    kinds = dict(KINDS)
    if len(payloads) < 2:
        kinds.pop("swap")
    if not any(payloads):
        for k in ("flip", "byte", "fill", "splice", "random"):
            kinds.pop(k)
    if not payloads:
        for k in ("truncate_words", "truncate", "extend_words", "extend"):
            kinds.pop(k)
    kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
    nonempty = kind in ("flip", "byte", "fill", "splice", "random")
    i = _pick_payload(rng, payloads, nonempty)
    p = payloads[i] if i is not None else None
    if kind == "flip":
        where = []
        for _ in range(rng.randint(1, 3)):
            pos, bit = rng.randrange(len(p)), rng.randrange(8)
            p[pos] ^= 1 << bit
            where.append(f"{pos}.{bit}")
        detail = f"payload {i}: flipped bits {', '.join(where)}"
    elif kind == "byte":
        where = []
        for _ in range(rng.randint(1, 3)):
            pos, val = rng.randrange(len(p)), rng.randrange(256)
            p[pos] = val
            where.append(f"[{pos}]={val:#04x}")
        detail = f"payload {i}: bytes {', '.join(where)}"
    elif kind == "fill":
        a = rng.randrange(len(p))
        b = min(len(p), a + rng.randint(1, 16))
        val = rng.choice([0x00, 0xFF])
        p[a:b] = bytes([val]) * (b - a)
        detail = f"payload {i}: bytes {a}:{b} set to {val:#04x}"
    elif kind == "truncate_words":
        n = rng.randrange(len(p) // 4) * 4 if len(p) >= 4 else 0
        del p[n:]
        detail = f"payload {i}: cut to {n} bytes"
    elif kind == "truncate":
        n = rng.randrange(len(p)) if p else 0
        del p[n:]
        detail = f"payload {i}: cut to {n} bytes"
    elif kind in ("extend_words", "extend"):
        n = 4 * rng.randint(1, 4) if kind == "extend_words" else rng.randint(1, 7)
        p += bytes(rng.randrange(256) for _ in range(n))
        detail = f"payload {i}: {n} random bytes appended"
    elif kind == "splice":
        n = rng.randint(1, max(1, len(p) // 2))
        a, b = rng.randrange(len(p) - n + 1), rng.randrange(len(p) - n + 1)
        p[b:b + n] = p[a:a + n]
        detail = f"payload {i}: {n} bytes copied from {a} to {b}"
    elif kind == "random":
        payloads[i] = bytearray(rng.randrange(256) for _ in range(len(p)))
        detail = f"payload {i}: replaced by {len(p)} random bytes"
    elif kind == "swap":
        a, b = rng.sample(range(len(payloads)), 2)
        payloads[a], payloads[b] = payloads[b], payloads[a]
        detail = f"payloads {a} and {b} swapped"
    elif kind == "payload_count":
        how = rng.choice(["drop", "duplicate", "add empty"] if payloads else ["add empty"])
        if how == "drop":
            payloads.pop(i)
        elif how == "duplicate":
            payloads.insert(i, bytearray(p))
        else:
            payloads.append(bytearray())
        detail = f"payload count: {how} (now {len(payloads)})"
    elif kind == "shape":
        detail = _mutate_shape(rng, shapes)
    else:  # pragma: no cover - KINDS and this function are kept in step
        raise AssertionError(kind)
    data = pack(model_id, shapes, [bytes(q) for q in payloads])
    return Mutant(seed=seed, kind=kind, detail=detail, data=data)


def mutants(stream: bytes, model_id: str, n: int, seed: int = 0):
    """``n`` mutants of ``stream``; mutant ``j`` uses seed ``seed * 1_000_003 + j``."""
    for j in range(n):
        yield mutate(stream, model_id, seed * 1_000_003 + j)


# ----------------------------------------------------------------------------- running
class DecodeTimeout(BaseException):
    """Raised inside a decode that runs past the time limit (a BaseException: ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def _deadline(seconds: float):
    """Interrupt the block after ``seconds`` (SIGALRM; only in the main thread, else just measured)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _alarm(signum, frame):
        raise DecodeTimeout(f"decode still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_image_output(shape):
    """A check for :func:`run_fuzz`: a float tensor of exactly ``shape`` with finite values."""
    shape = tuple(shape)

    def check(out):
        if not isinstance(out, torch.Tensor):
            return f"decoder returned {type(out).__name__}, not a tensor"
        if tuple(out.shape) != shape:
            return f"decoded shape {tuple(out.shape)}, expected {shape}"
        if not out.is_floating_point():
            return f"decoded dtype {out.dtype}, expected a float tensor"
        if not bool(torch.isfinite(out).all()):
            return f"decoded image holds {int((~torch.isfinite(out)).sum())} NaN/inf values"
        return None

    return check


_CAUSES = (  # BitstreamError message fragment -> cause, for the outcome counts
    ("range decoder failed", "range decoder"),
    ("expected a multiple of 4", "payload length"),
    ("payloads, the stream has", "payload count"),
    ("payloads and shapes", "payloads or shapes of an MDIC stream"),
    ("is outside [", "decoded value out of range"),
    ("non-finite", "non-finite reconstruction"),
    ("shape", "header shapes"),
    ("image size", "header shapes"),
    ("side image is", "header shapes"),
)


def _cause(msg: str) -> str:
    for frag, cause in _CAUSES:
        if frag in msg:
            return cause
    return "other: " + msg[:60]


@dataclass
class FuzzReport:
    """Outcome counts of a fuzz run, and the failures (with the seed and mutation that made each)."""

    name: str
    n: int = 0
    outcomes: collections.Counter = field(default_factory=collections.Counter)  # decoded / BitstreamError
    causes: collections.Counter = field(default_factory=collections.Counter)  # why BitstreamError
    by_kind: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    failures: list = field(default_factory=list)  # (Mutant, what went wrong)
    seconds: float = 0.0
    slowest: float = 0.0

    def summary(self) -> str:
        causes = ", ".join(f"{k} {v}" for k, v in self.causes.most_common())
        return (f"{self.name}: {self.n} mutants with a valid CRC in {self.seconds:.1f} s "
                f"(slowest decode {1000 * self.slowest:.0f} ms): decoded {self.outcomes['decoded']}, "
                f"BitstreamError {self.outcomes['BitstreamError']} ({causes}), "
                f"failures {len(self.failures)}")

    def describe_failures(self, limit: int = 10) -> str:
        lines = [self.summary()]
        for m, what in self.failures[:limit]:
            lines.append(f"  seed {m.seed} [{m.kind}: {m.detail}]: {what}")
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        lines.append("  reproduce with tests.fuzz_streams.mutate(stream, model_id, seed)")
        return "\n".join(lines)


def run_fuzz(name: str, decode, stream: bytes, model_id: str, n: int, check, *, seed: int = 0,
             time_limit: float = 10.0, max_failures: int = 50) -> FuzzReport:
    """Decode ``n`` mutants of ``stream`` with ``decode(bytes)`` and sort the outcomes.

    ``check(output)`` returns ``None`` for an acceptable decoded output, else what is wrong
    (:func:`check_image_output`).  A decode is a failure if it raises anything but
    :class:`BitstreamError`, returns an output ``check`` rejects, or takes longer than
    ``time_limit`` seconds (it is interrupted there).  Stops early after ``max_failures``.
    """
    rep = FuzzReport(name)
    t0 = time.perf_counter()
    for m in mutants(stream, model_id, n, seed):
        rep.n += 1
        start = time.perf_counter()
        outcome = problem = None
        try:
            with _deadline(time_limit):
                out = decode(m.data)
        except BitstreamError as err:
            outcome, cause = "BitstreamError", _cause(str(err))
        except DecodeTimeout as err:
            problem = f"hang: {err}"
        except Exception as err:  # noqa: BLE001 - every other exception is what this test looks for
            problem = f"{type(err).__name__}: {err}"
        else:
            problem = check(out)
            outcome = "decoded" if problem is None else None
        elapsed = time.perf_counter() - start
        rep.slowest = max(rep.slowest, elapsed)
        if problem is None and elapsed > time_limit:
            problem = f"{outcome} after {elapsed:.2f} s (limit {time_limit} s)"
        if problem is not None:
            rep.failures.append((m, problem))
            if len(rep.failures) >= max_failures:
                break
            continue
        rep.outcomes[outcome] += 1
        rep.by_kind[m.kind][outcome] += 1
        if outcome == "BitstreamError":
            rep.causes[cause] += 1
    rep.seconds = time.perf_counter() - t0
    return rep
