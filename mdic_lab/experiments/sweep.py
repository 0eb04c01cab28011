"""Sweeps: a TOML grid of training + evaluation runs, each cell a run folder named by its config hash.

``python -m mdic_lab.experiments.sweep ablations/specs/smoke.toml --workers 2`` (or
``mdic-lab sweep ...``), or from Python::

    from mdic_lab.experiments.sweep import load_spec, run_sweep
    result = run_sweep(load_spec("ablations/specs/smoke.toml"), executor="local", workers=2)
    result.failed       # cell ids whose traceback is in <out>/cells/<cell>/error.txt

A spec (``docs/sweeps.md`` has the whole format)::

    name = "smoke-ablation"
    out = "sweeps/smoke"            # default output folder
    data = "synthetic"              # data spec of mdic_lab.data.sources
    [grid]
    codec = ["mdic"]
    preset = "smoke"
    variant = ["full", "no_text"]   # default ["full"]; "all": every variant of the codec
    rate_point = [0, 1]             # default: the preset as is; "all": every rate point of the preset
    seed = [0]                      # sets the training config's `seed`
    [grid.overrides]                # config fields (model or training); a list is an axis
    steps = [6]
    [eval]
    split = "test"
    limit = 2

Every grid key may instead be a table keyed by codec (``variant = {mdic = ["full", "no_text"]}``;
codecs not named get the default), and ``[grid.overrides.<codec>]`` holds overrides of one
codec.  Everything is checked when the spec is loaded, by resolving every cell through
:func:`mdic_lab.registry.resolve`; executor, workers and the output folder are checked by
:func:`run_sweep` before any cell starts.

A cell is ``train_run`` then ``evaluate_run`` in ``<out>/cells/<codec>-<preset>-<variant>-rp<k>-s<seed>-<hash>``
(the hash: :meth:`RunConfig.hash` with the data and evaluation spec), with its own
``log.txt`` and, if it fails, ``error.txt``.  A cell whose evaluation summary exists is
skipped; a cell with a checkpoint resumes from it.  A cell is claimed by an atomically
created ``claim.lock`` (pid, host, time; refreshed every ``heartbeat`` seconds) so that two
sweeps on one folder never run a cell twice; a claim whose local pid is dead, or that was
not refreshed for ``claim_timeout`` seconds, is taken over.  The folder gets
``manifest.json`` (specs and their hashes, package versions, git commit, machine, executor),
``spec.json``, ``cells.csv`` (one row per cell) and ``images.csv`` (one row per evaluated
image of every cell), all written atomically and sorted deterministically.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import itertools
import json
import os
import platform
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mdic_lab.atomic import atomic_write_text
from mdic_lab.config import ConfigError

from mdic_lab.progress import in_notebook

from .executors import EXECUTORS, check_executor, make_executor

__all__ = ["SweepSpecError", "SweepSpec", "Cell", "SweepResult", "load_spec", "run_sweep", "run_cell",
           "CELL_COLUMNS", "RESULT_COLUMNS", "TIMING_COLUMNS", "claim_status", "acquire_claim", "main"]

SPEC_KEYS = ("name", "description", "out", "data", "captioner", "grid", "eval", "executor")
GRID_KEYS = ("codec", "preset", "variant", "rate_point", "seed", "overrides")
EVAL_DEFAULTS = {"split": "test", "limit": None, "num_inference_steps": None, "seed": 0, "use_lpips": False,
                 "tag": None, "batch_size": 1, "use_miou": False, "reuse_latents": False}
#: [eval] keys that change how a cell is evaluated, not its results: left out of the spec's identity
#: (``reuse_latents``: the frozen VAE's latents of test pairs a worker met before come from its memo,
#: and the per-image times are then NaN; see :func:`mdic_lab.runs.evaluate.evaluate_model`)
EVAL_RUN_OPTIONS = ("reuse_latents",)
CLAIM, ERROR, LOG, CELL_JSON = "claim.lock", "error.txt", "log.txt", "cell.json"
HOST = socket.gethostname()

#: columns of cells.csv and images.csv that name the cell
CELL_COLUMNS = ["cell_id", "codec", "preset", "variant", "rate_point", "seed", "overrides"]
#: columns of cells.csv after the cell columns
RESULT_COLUMNS = ["status", "error", "bpp_coded", "bpp_payload", "bpp_estimated", "psnr", "ms_ssim", "lpips",
                  "encode_s", "decode_s", "n", "train_elapsed_s", "step", "dir"]
#: wall-clock columns: they differ from run to run (leave them out when comparing two sweeps)
TIMING_COLUMNS = ("encode_s", "decode_s", "train_elapsed_s")


class SweepSpecError(ConfigError):
    """A sweep spec (or run_sweep argument, or output folder) that cannot be run; the message names the
    bad value and what is accepted."""


def _utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ============================================================================ the spec
@dataclass(frozen=True)
class Cell:
    """One grid point: a run folder ``<out>/cells/<name>``."""

    cell_id: str  # RunConfig.hash(extra={"data", "eval"}): 12 hex digits
    codec: str
    preset: str
    variant: str
    rate_point: int | None
    seed: int
    overrides: dict  # the cell's config overrides (without the seed)

    @property
    def name(self) -> str:
        rp = "x" if self.rate_point is None else self.rate_point
        return f"{self.codec}-{self.preset}-{self.variant}-rp{rp}-s{self.seed}-{self.cell_id}"

    def resolve(self):
        """The cell's :class:`mdic_lab.registry.RunConfig` (as hashed: the preset's ``num_threads``)."""
        from mdic_lab.registry import resolve

        return resolve(self.codec, self.preset, variant=self.variant, rate_point=self.rate_point,
                       overrides={**self.overrides, "seed": self.seed})

    def identity(self) -> dict:
        return {"cell_id": self.cell_id, "codec": self.codec, "preset": self.preset, "variant": self.variant,
                "rate_point": self.rate_point, "seed": self.seed, "overrides": dict(self.overrides)}

    def sort_key(self):
        return (self.codec, self.preset, self.variant, -1 if self.rate_point is None else self.rate_point,
                self.seed, _overrides_text(self.overrides), self.cell_id)


def _overrides_text(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True, separators=(",", ":"))


@dataclass
class SweepSpec:
    """A checked, normalised sweep spec (:func:`load_spec`); :attr:`cells` are its grid points."""

    name: str
    data: str
    grid: dict | list  # normalised: codec list; per-codec lists of presets, variants, rate points, seeds;
    # overrides (a list of such grids: the cells are their union)
    eval: dict
    out: str | None = None
    description: str = ""
    executor: dict = field(default_factory=dict)  # executor name -> options (not part of the identity)
    source: str | None = None
    cells: list = field(default_factory=list, repr=False)
    captioner: str | None = None  # BLIP-2 folder / hub id captioning real data's side views (MDIC)

    def to_dict(self) -> dict:
        """The identity of the spec: what decides its cells (name, data, captioner if any, grid, eval)."""
        d = {"name": self.name, "data": self.data, "grid": self.grid, "eval": _identity_eval(self.eval)}
        if self.captioner is not None:
            d["captioner"] = self.captioner
        return d

    @property
    def hash(self) -> str:
        """12 hex digits over :meth:`to_dict` (the output folder and executor options are not part of it)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _identity_eval(ev: dict) -> dict:
    """The [eval] table as part of an identity (spec hash, cell ids): without :data:`EVAL_RUN_OPTIONS`."""
    return {k: v for k, v in ev.items() if k not in EVAL_RUN_OPTIONS}


def _err(spec_name, msg) -> SweepSpecError:
    return SweepSpecError(f"sweep spec {spec_name!r}: {msg}")


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SweepSpecError(f"sweep spec {str(path)!r} is not valid TOML: {exc}") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _per_codec(name, key, value, codecs, default):
    """A grid value → {codec: list}; a table keyed by codec sets codecs one by one."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in codecs]
        if unknown:
            raise _err(name, f"grid.{key} has a table for {unknown[0]!r}, which is not a codec of the grid "
                             f"(expected one of: {', '.join(codecs)})")
        out = {c: value.get(c, default) for c in codecs}
    else:
        out = {c: value for c in codecs}
    for c, v in out.items():
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        if not v:
            raise _err(name, f"grid.{key} of codec {c!r} is an empty list (give at least one value)")
        out[c] = v
    return out


def _field_default(codec, key):
    for cls in (codec.config_class, codec.train_config_class):
        if key in cls.field_names():
            return getattr(cls(), key)
    return None


def _override_axis(name, codec, key, value) -> list:
    """An override value → the list of values it takes (a list is an axis; a tuple field takes a list
    of lists as an axis and a flat list as one value)."""
    if isinstance(value, dict):
        raise _err(name, f"override {key!r} must be a value or a list of values, got a table "
                         f"(a table under [grid.overrides] must be named after a codec of the grid)")
    if not isinstance(value, list):
        return [value]
    if not value:
        raise _err(name, f"override {key!r} is an empty list (give at least one value)")
    if isinstance(_field_default(codec, key), tuple) and not any(isinstance(v, list) for v in value):
        return [value]  # crop = [64, 64]: one value of a tuple field
    return value


def _normalise_grid(name, grid) -> dict:
    from mdic_lab.registry import CODECS, get_codec

    if not isinstance(grid, dict):
        raise _err(name, "[grid] must be a table")
    for key in grid:
        if key not in GRID_KEYS:
            raise _err(name, f"unknown key {key!r} in [grid] (expected one of: {', '.join(GRID_KEYS)})")
    if "codec" not in grid:
        raise _err(name, f"[grid] has no codec (expected some of: {', '.join(CODECS)})")
    codecs = grid["codec"] if isinstance(grid["codec"], list) else [grid["codec"]]
    if not codecs:
        raise _err(name, f"grid.codec is empty (expected some of: {', '.join(CODECS)})")
    for c in codecs:
        if not isinstance(c, str):
            raise _err(name, f"grid.codec must hold codec names, got {c!r} (expected one of: {', '.join(CODECS)})")
        try:
            get_codec(c)
        except ConfigError as exc:
            raise _err(name, str(exc)) from None
    codecs = list(dict.fromkeys(codecs))
    if "preset" not in grid:
        raise _err(name, "[grid] has no preset (expected e.g. preset = \"smoke\")")
    out = {"codec": codecs}
    presets = _per_codec(name, "preset", grid["preset"], codecs, None)
    for c, ps in presets.items():
        entry = get_codec(c)
        try:
            presets[c] = list(dict.fromkeys(entry.canonical_preset(p) for p in ps))
        except (ConfigError, TypeError) as exc:
            raise _err(name, str(exc)) from None
    out["preset"] = presets
    variants = _per_codec(name, "variant", grid.get("variant", "full"), codecs, "full")
    for c, vs in variants.items():
        entry = get_codec(c)
        if vs == ["all"]:
            vs = list(entry.variants)
        for v in vs:
            try:
                entry.check_variant(v)
            except ConfigError as exc:
                raise _err(name, str(exc)) from None
        variants[c] = list(dict.fromkeys(vs))
    out["variant"] = variants
    rps = _per_codec(name, "rate_point", grid.get("rate_point", "preset"), codecs, "preset")
    for c, rs in rps.items():
        entry = get_codec(c)
        if rs in (["all"], ["preset"]):
            rps[c] = rs
            continue
        for p in out["preset"][c]:
            for r in rs:
                try:
                    entry.check_rate_point(p, r)
                except ConfigError as exc:
                    raise _err(name, str(exc) + ' ("all": every rate point; leave rate_point out for the preset '
                                                "as is)") from None
        rps[c] = list(dict.fromkeys(rs))
    out["rate_point"] = rps
    seeds = _per_codec(name, "seed", grid.get("seed", 0), codecs, 0)
    for c, ss in seeds.items():
        for s in ss:
            if not _is_int(s) or s < 0:
                raise _err(name, f"grid.seed must hold ints >= 0, got {s!r}")
        seeds[c] = list(dict.fromkeys(ss))
    out["seed"] = seeds
    ov = grid.get("overrides", {})
    if not isinstance(ov, dict):
        raise _err(name, "[grid.overrides] must be a table of config fields")
    common = {k: v for k, v in ov.items() if not (k in CODECS and isinstance(v, dict))}
    per = {k: v for k, v in ov.items() if k in CODECS and isinstance(v, dict)}
    for k in per:
        if k not in codecs:
            raise _err(name, f"[grid.overrides.{k}] names a codec that is not in the grid "
                             f"(expected one of: {', '.join(codecs)})")
    overrides = {}
    for c in codecs:
        merged = {**common, **per.get(c, {})}
        for key in ("seed", "variant"):
            if key in merged:
                raise _err(name, f"set {key} with grid.{key}, not as an override")
        entry = get_codec(c)
        try:
            entry.split_overrides({k: None for k in merged})
        except ConfigError as exc:
            raise _err(name, f"override of codec {c!r}: {exc}") from None
        overrides[c] = {k: _override_axis(name, entry, k, merged[k]) for k in sorted(merged)}
    out["overrides"] = overrides
    return out


def _normalise_eval(name, ev) -> dict:
    if ev is None:
        ev = {}
    if not isinstance(ev, dict):
        raise _err(name, "[eval] must be a table")
    for key in ev:
        if key not in EVAL_DEFAULTS:
            raise _err(name, f"unknown key {key!r} in [eval] (expected one of: {', '.join(EVAL_DEFAULTS)})")
    out = {**EVAL_DEFAULTS, **ev}
    if not isinstance(out["split"], str) or not out["split"] or "/" in out["split"]:
        raise _err(name, f"eval.split must be a split name such as 'test', got {out['split']!r}")
    for key in ("limit", "num_inference_steps", "batch_size"):
        v = out[key]
        if v is not None and (not _is_int(v) or v < 1):
            raise _err(name, f"eval.{key} must be a positive int, got {v!r}")
    if not _is_int(out["seed"]):
        raise _err(name, f"eval.seed must be an int, got {out['seed']!r}")
    for key in ("use_lpips", "use_miou", "reuse_latents"):
        if not isinstance(out[key], bool):
            raise _err(name, f"eval.{key} must be true or false, got {out[key]!r}")
    tag = out["tag"]
    if tag is not None and (not isinstance(tag, str) or not tag or "/" in tag):
        raise _err(name, f"eval.tag must be a plain name, got {tag!r}")
    return out


def _expand(spec: SweepSpec) -> list[Cell]:
    """Every grid point of every grid, resolved through the registry (errors name the cell), duplicates dropped."""
    cells, seen = [], set()
    extra = {"data": spec.data, "eval": _identity_eval(spec.eval),
             **({"captioner": spec.captioner} if spec.captioner else {})}
    for g in (spec.grid if isinstance(spec.grid, list) else [spec.grid]):
        _expand_grid(spec, g, extra, cells, seen)
    return cells


def _expand_grid(spec: SweepSpec, g: dict, extra: dict, cells: list, seen: set) -> None:
    """The cells of one normalised grid appended to ``cells`` (those already in ``seen`` left out)."""
    from mdic_lab.registry import get_codec

    for codec in g["codec"]:
        entry = get_codec(codec)
        ov = g["overrides"][codec]
        keys = list(ov)
        for preset in g["preset"][codec]:
            rps = g["rate_point"][codec]
            if rps == ["all"]:
                rps = list(range(len(entry.rate_points[preset])))
            elif rps == ["preset"]:
                rps = [None]
            for variant, rp, seed in itertools.product(g["variant"][codec], rps, g["seed"][codec]):
                for combo in itertools.product(*(ov[k] for k in keys)):
                    overrides = dict(zip(keys, combo))
                    where = (f"cell codec={codec} preset={preset} variant={variant} rate_point={rp} seed={seed}"
                             + (f" overrides={_overrides_text(overrides)}" if overrides else ""))
                    try:
                        run = entry.resolve(preset, variant=variant, rate_point=rp,
                                            overrides={**overrides, "seed": seed})
                    except (ConfigError, TypeError, ValueError) as exc:
                        raise _err(spec.name, f"{where}: {exc}") from None
                    cell = Cell(run.hash(extra), codec, preset, variant, rp, seed, overrides)
                    if cell.cell_id not in seen:
                        seen.add(cell.cell_id)
                        cells.append(cell)


def load_spec(path_or_dict) -> SweepSpec:
    """A TOML file (or the dict it holds) → a checked :class:`SweepSpec` whose ``cells`` are resolved.

    Raises :class:`SweepSpecError` (a :class:`mdic_lab.config.ConfigError`) naming the first
    bad value and what is accepted: unknown keys, codecs, presets, variants, rate points,
    override fields, seeds, data spec, evaluation options, executor tables.
    """
    source = None
    if isinstance(path_or_dict, SweepSpec):
        return path_or_dict
    if isinstance(path_or_dict, dict):
        raw = dict(path_or_dict)
    elif isinstance(path_or_dict, (str, os.PathLike)):
        path = Path(path_or_dict)
        if not path.is_file():
            raise FileNotFoundError(f"no sweep spec at {str(path)!r} (expected a TOML file such as "
                                    "ablations/specs/smoke.toml)")
        raw = _read_toml(path)
        source = str(path)
        raw.setdefault("name", path.stem)
    else:
        raise TypeError(f"a sweep spec is a TOML path or a dict, got {type(path_or_dict).__name__}")
    name = raw.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise SweepSpecError(f"sweep spec name must be a non-empty str, got {name!r}")
    for key in raw:
        if key not in SPEC_KEYS:
            raise _err(name, f"unknown key {key!r} (expected one of: {', '.join(SPEC_KEYS)})")
    if "grid" not in raw:
        raise _err(name, "no [grid] table (expected codec, preset and optionally variant, rate_point, seed, "
                         "overrides)")
    from mdic_lab.data.sources import parse_data_spec

    data = raw.get("data", "synthetic")
    try:
        data = str(parse_data_spec(data))
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise _err(name, f"data: {exc}") from None
    captioner = raw.get("captioner")
    if captioner is not None and (not isinstance(captioner, str) or not captioner):
        raise _err(name, f"captioner must be a BLIP-2 folder or hub id, got {captioner!r}")
    out = raw.get("out")
    if out is not None and (not isinstance(out, str) or not out):
        raise _err(name, f"out must be a folder name, got {out!r}")
    executor = raw.get("executor", {})
    if not isinstance(executor, dict):
        raise _err(name, "[executor] must be a table of executor tables ([executor.dask], ...)")
    for ex_name, options in executor.items():
        if not isinstance(options, dict):
            raise _err(name, f"[executor.{ex_name}] must be a table of options")
        try:
            check_executor(ex_name, options, imports=False)  # packages: checked when the executor is chosen
        except ConfigError as exc:
            raise _err(name, f"[executor.{ex_name}]: {exc}") from None
    desc = raw.get("description", "")
    grid = raw["grid"]
    if isinstance(grid, list):  # several grids: the spec's cells are their union ([[grid]] in TOML)
        if not grid:
            raise _err(name, "grid is an empty list (give one [grid] table or several [[grid]] tables)")
        grid = [_normalise_grid(f"{name}, grid {i}", g) for i, g in enumerate(grid)]
        grid = grid[0] if len(grid) == 1 else grid
    else:
        grid = _normalise_grid(name, grid)
    spec = SweepSpec(name=name, data=data, grid=grid,
                     eval=_normalise_eval(name, raw.get("eval")), out=out, description=str(desc),
                     executor=executor, source=source, captioner=captioner)
    spec.cells = _expand(spec)
    return spec


# ============================================================================ claims
def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True
    return True


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written: treated as a live claim until it is old


def claim_status(path, claim_timeout: float) -> tuple[str, dict | None]:
    """``("free" | "live" | "stale", holder)`` of a claim file.

    Stale: held by a pid of this host that is dead, or not refreshed for ``claim_timeout`` s.
    """
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return "free", None
    holder = _read_json(path)
    if holder is None:
        return "free", None
    if holder.get("host") == HOST and "pid" in holder and not _pid_alive(holder["pid"]):
        return "stale", holder
    if time.time() - mtime > claim_timeout:
        return "stale", holder
    return "live", holder


class Claim:
    """A held claim on a cell; a daemon thread refreshes its mtime every ``heartbeat`` seconds."""

    def __init__(self, path: Path, info: dict, heartbeat: float):
        self.path, self.info = path, info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True, name="claim-heartbeat")
        self._thread.start()

    def _ours(self) -> bool:
        cur = _read_json(self.path)
        return bool(cur) and cur.get("token") == self.info["token"]

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            if self._ours():
                with contextlib.suppress(OSError):
                    os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._ours():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _take_over(path: Path, seen: dict | None, claim_timeout: float) -> bool:
    """Remove a stale claim, under a short-lived ``.takeover`` lock so that two takers never both win."""
    lock = path.with_name(path.name + ".takeover")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - lock.stat().st_mtime > 60:  # a taker died inside this tiny window
                os.unlink(lock)
        return False
    os.close(fd)
    try:
        state, holder = claim_status(path, claim_timeout)
        if state == "free":
            return True
        if state == "stale" and (holder or {}).get("token") == (seen or {}).get("token"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return True
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


def acquire_claim(cell_dir, claim_timeout: float = 300.0, heartbeat: float = 30.0):
    """A :class:`Claim` on ``cell_dir``, or the holder's info (a dict) if another live process holds it."""
    path = Path(cell_dir) / CLAIM
    info = {"pid": os.getpid(), "host": HOST, "time": time.time(), "utc": _utc(), "token": uuid.uuid4().hex}
    holder: dict = {}
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            state, holder = claim_status(path, claim_timeout)
            if state == "live":
                return holder or {}
            if state == "stale" and not _take_over(path, holder, claim_timeout):
                return holder or {}
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info))
            f.flush()
            os.fsync(f.fileno())
        return Claim(path, info, heartbeat)
    return holder or {}


# ============================================================================ one cell
class _Router(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` that write to the current thread's cell log, else to the original."""

    def __init__(self, original):
        self.original = original

    def _target(self):
        return getattr(_TLS, "log", None) or self.original

    def write(self, s):
        return self._target().write(s)

    def flush(self):
        self._target().flush()

    def isatty(self):
        t = self._target()
        return t.isatty() if hasattr(t, "isatty") else False

    def fileno(self):
        return self._target().fileno()

    @property
    def encoding(self):
        return getattr(self._target(), "encoding", "utf-8")


_TLS = threading.local()
_ROUTE_LOCK = threading.Lock()
_ROUTE_USERS = [0]


@contextlib.contextmanager
def _capture(log_path: Path, mode: str):
    """Send this cell's stdout/stderr to ``log_path`` (``"fd"``: the process's fds 1 and 2; ``"python"``:
    this thread's ``sys.stdout`` / ``sys.stderr``)."""
    f = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    if mode == "fd":
        sys.stdout.flush()
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield f
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            f.close()
        return
    with _ROUTE_LOCK:
        if _ROUTE_USERS[0] == 0:
            sys.stdout, sys.stderr = _Router(sys.stdout), _Router(sys.stderr)
        _ROUTE_USERS[0] += 1
    _TLS.log = f
    try:
        yield f
    finally:
        _TLS.log = None
        f.close()
        with _ROUTE_LOCK:
            _ROUTE_USERS[0] -= 1
            if _ROUTE_USERS[0] == 0:
                if isinstance(sys.stdout, _Router):
                    sys.stdout = sys.stdout.original
                if isinstance(sys.stderr, _Router):
                    sys.stderr = sys.stderr.original


def _cell_run(task: dict):
    """The cell's RunConfig as it trains: checked against the cell id, ``num_threads`` = the thread budget."""
    from mdic_lab.runs import RunDir

    cell, cell_dir = Cell(**task["cell"]), Path(task["dir"])
    run = cell.resolve()
    extra = {"data": task["data"], "eval": _identity_eval(task["eval"]),
             **({"captioner": task["captioner"]} if task.get("captioner") else {})}
    if run.hash(extra) != cell.cell_id:  # the code's presets changed between planning and running
        raise RuntimeError(f"cell {cell.cell_id} resolves to config hash {run.hash(extra)} with this code "
                           f"(planned with another version of the presets); start the sweep again")
    threads = run.train.num_threads
    if "num_threads" not in cell.overrides:  # not part of the hash: the executor's thread budget
        threads = task["threads"]
        rd = RunDir(cell_dir)
        if rd.has_checkpoint():  # a resumed run keeps its recorded count (train_run refuses a change)
            with contextlib.suppress(Exception):
                threads = int(rd.read_record()["train_config"]["num_threads"])
        run = dataclasses.replace(run, train=run.train.replace(num_threads=threads))
    return run, threads


def _train(task: dict) -> dict:
    """``train_run`` of the cell in this process (under a launcher: in each of its processes)."""
    import torch

    from mdic_lab.runs import train_run

    run, threads = _cell_run(task)
    torch.set_num_threads(threads)
    print(f"threads={threads} torch={torch.__version__}", flush=True)
    tr = train_run(run, task["dir"], data=task["data"], captioner=task.get("captioner"), resume=True,
                   progress=True, backbone_root=task["backbone_root"])
    return {"step": tr["step"], "elapsed_s": tr["elapsed_s"], "num_processes": tr["num_processes"]}


def _train_launched(task: dict) -> dict:
    """Training as ``<launcher> -m mdic_lab.experiments.sweep --train-cell <cell>/task.json`` (e.g.
    ``accelerate launch --multi_gpu --num_processes 4``, ``torchrun --standalone --nproc_per_node 2``):
    one cell on several devices; its output goes to the cell's log."""
    import shlex
    import subprocess

    cell_dir = Path(task["dir"])
    atomic_write_text(cell_dir / "task.json", json.dumps(task, indent=2))
    cmd = [*shlex.split(task["launcher"]), "-m", "mdic_lab.experiments.sweep", "--train-cell",
           str(cell_dir / "task.json")]
    print(f"launch: {shlex.join(cmd)}", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(cell_dir / LOG, "a") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"the launched training exited with status {code} ({shlex.join(cmd)}); see log.txt")
    from mdic_lab.runs import RunDir

    rows = RunDir(cell_dir).read_metrics()
    last = rows[-1] if rows else {}
    return {"step": int(last.get("step", 0)), "elapsed_s": float(last.get("elapsed_s", "nan"))}


def _evaluation_must_wait(ev: dict) -> bool:
    """The evaluation needs the synthetic world's segmentation net (mIoU) and another process is training it."""
    if not ev.get("use_miou"):
        return False
    from mdic_lab.metrics.segnet import segnet_is_training

    return segnet_is_training()


def _train_and_evaluate(task: dict) -> dict:
    from mdic_lab.runs import evaluate_run

    ev = task["eval"]
    train = _train_launched(task) if task.get("launcher") else _train(task)
    if task.get("may_defer") and _evaluation_must_wait(ev):
        # the first cells of a fresh cache finish training before the segmentation net: rather than
        # leave a core idle, the sweep trains other cells and evaluates this one later (resubmitted)
        return {"train": train, "deferred": True}
    summary = evaluate_run(task["dir"], split=ev["split"], limit=ev["limit"], data=task["data"],
                           num_inference_steps=ev["num_inference_steps"], seed=ev["seed"],
                           use_lpips=ev["use_lpips"], tag=ev["tag"], batch_size=ev.get("batch_size", 1),
                           use_miou=ev.get("use_miou", False), reuse_latents=ev.get("reuse_latents", False))
    return {"train": train, "summary": summary}


def _summary_path(cell_dir: Path, ev: dict) -> Path:
    stem = ev["split"] if not ev.get("tag") else f"{ev['split']}-{ev['tag']}"
    return Path(cell_dir) / "eval" / f"{stem}.json"


def run_cell(task: dict) -> dict:
    """Train and evaluate one cell in its folder (what every executor runs).

    ``task``: ``cell`` (:meth:`Cell.identity`), ``dir``, ``data``, ``eval``, ``threads``,
    ``backbone_root``, ``capture``, ``parent_pid``, ``claim_timeout``, ``heartbeat``.
    Returns ``{"status": "done" | "failed" | "busy" | "deferred", ...}``; it raises only on interrupts.
    ``deferred`` (only when ``task["may_defer"]``): trained, but the evaluation would wait for the
    segmentation net another process is training; the sweep submits the cell again after the others.
    """
    cell_dir = Path(task["dir"])
    cell_dir.mkdir(parents=True, exist_ok=True)
    cid = task["cell"]["cell_id"]
    if _summary_path(cell_dir, task["eval"]).is_file():
        return {"cell_id": cid, "status": "done", "ran": False}
    claim = acquire_claim(cell_dir, task["claim_timeout"], task["heartbeat"])
    if not isinstance(claim, Claim):
        return {"cell_id": cid, "status": "busy", "holder": claim}
    t0 = time.perf_counter()
    try:
        if _summary_path(cell_dir, task["eval"]).is_file():  # finished between our look and our claim
            return {"cell_id": cid, "status": "done", "ran": False}
        err = cell_dir / ERROR
        with contextlib.suppress(FileNotFoundError):
            err.unlink()
        mode = task["capture"] if os.getpid() != task["parent_pid"] else "python"
        with _capture(cell_dir / LOG, mode):
            print(f"=== cell {cid} start {_utc()} host={HOST} pid={os.getpid()} "
                  f"thread={threading.current_thread().name}", flush=True)
            try:
                out = _train_and_evaluate(task)
                if out.get("deferred"):
                    print(f"=== cell {cid} trained; evaluation deferred (the segmentation net is still "
                          f"training) {_utc()}", flush=True)
                    return {"cell_id": cid, "status": "deferred", "ran": True, "wall_s": time.perf_counter() - t0}
            except Exception:  # the cell's failure, kept in its folder; the sweep goes on
                tb = traceback.format_exc()
                print(tb, file=sys.stderr, flush=True)
                atomic_write_text(err, f"cell {cid} failed at {_utc()} on {HOST} (pid {os.getpid()})\n\n{tb}")
                print(f"=== cell {cid} failed {_utc()}", flush=True)
                return {"cell_id": cid, "status": "failed", "ran": True, "error": tb.strip().splitlines()[-1],
                        "wall_s": time.perf_counter() - t0}
            print(f"=== cell {cid} done {_utc()} wall_s={time.perf_counter() - t0:.2f}", flush=True)
        return {"cell_id": cid, "status": "done", "ran": True, "wall_s": time.perf_counter() - t0, **out}
    finally:
        claim.release()


# ============================================================================ outputs
def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("mdic-lab", "torch", "accelerate", "diffusers", "transformers", "numpy", "dask", "distributed",
                "dask-jobqueue", "submitit"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _machine(plan_info: dict | None) -> dict:
    from .executors import usable_cores

    return {"hostname": HOST, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "usable_cores": usable_cores(), "executor": plan_info}


@contextlib.contextmanager
def _folder_lock(out: Path, timeout: float = 60.0):
    """A short lock on the folder's manifest (read-modify-write by concurrent sweeps)."""
    lock = out / ".manifest.lock"
    t0 = time.time()
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > timeout:  # its holder died mid-write
                    os.unlink(lock)
            if time.time() - t0 > 2 * timeout:
                raise TimeoutError(f"could not lock {lock} for {2 * timeout:.0f} s") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


def _write_json(path: Path, obj) -> None:
    from mdic_lab.atomic import strict_json

    atomic_write_text(path, strict_json(obj, indent=2, sort_keys=True) + "\n")


def _prepare_folder(out: Path, spec: SweepSpec, add: bool) -> None:
    """Refuse a folder of another spec (unless ``add``); record this spec in ``manifest.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out):
        mpath = out / "manifest.json"
        manifest = _read_json(mpath) if mpath.is_file() else None
        if manifest is None:
            cells_dir = out / "cells"
            if cells_dir.is_dir() and any(cells_dir.iterdir()):
                raise SweepSpecError(f"output folder {str(out)!r} holds cells but no manifest.json (not a sweep "
                                     "folder of mdic-lab); use another --out")
            manifest = {"format": 1, "specs": []}
        if not isinstance(manifest, dict) or not isinstance(manifest.get("specs"), list):
            raise SweepSpecError(f"{mpath} is not a sweep manifest; use another --out")
        hashes = [s.get("hash") for s in manifest["specs"]]
        if spec.hash in hashes:
            return
        if hashes and not add:
            names = ", ".join(f"{s.get('name')!r} ({s.get('hash')})" for s in manifest["specs"])
            raise SweepSpecError(f"output folder {str(out)!r} holds the cells of another spec: {names}; this spec "
                                 f"{spec.name!r} has hash {spec.hash} (pass add=True / --add to add its cells to "
                                 "the folder, or use another --out)")
        fname = "spec.json" if not hashes else f"spec-{spec.hash}.json"
        _write_json(out / fname, spec.to_dict())
        manifest["specs"].append({"hash": spec.hash, "name": spec.name, "file": fname, "source": spec.source,
                                  "cells": len(spec.cells), "added_utc": _utc(), "spec": spec.to_dict()})
        manifest.setdefault("spec_hash", spec.hash)
        _write_json(mpath, manifest)


def _cell_status(out: Path, cell: Cell, ev: dict, claim_timeout: float) -> str:
    d = out / "cells" / cell.name
    if _summary_path(d, ev).is_file():
        return "done"
    if (d / ERROR).is_file():
        return "failed"
    state, _ = claim_status(d / CLAIM, claim_timeout)
    return "running" if state == "live" else "pending"


def _error_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text().strip().splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def write_tables(out, claim_timeout: float = 300.0) -> tuple[Path, Path]:
    """``cells.csv`` and ``images.csv`` of every cell of every spec recorded in ``<out>/manifest.json``."""
    from mdic_lab.runs.rundir import RunDir, write_rows_csv  # (no torch: the sweep process stays light)

    out = Path(out)
    manifest = _read_json(out / "manifest.json") or {}
    rows, images, seen = [], [], set()
    entries = []
    for s in manifest.get("specs", []):
        spec = load_spec(s["spec"])
        for cell in spec.cells:
            if cell.cell_id not in seen:
                seen.add(cell.cell_id)
                entries.append((cell, spec.eval))
    entries.sort(key=lambda e: e[0].sort_key())
    for cell, ev in entries:
        d = out / "cells" / cell.name
        base = {**cell.identity(), "rate_point": "" if cell.rate_point is None else cell.rate_point,
                "overrides": _overrides_text(cell.overrides)}
        status = _cell_status(out, cell, ev, claim_timeout)
        row = {**base, "status": status, "dir": f"cells/{cell.name}",
               "error": _error_line(d / ERROR) if status == "failed" else ""}
        rd = RunDir(d)
        if status == "done":
            summary = rd.read_eval_summary(ev["split"], ev["tag"]) or {}
            for k in ("bpp_coded", "bpp_payload", "bpp_estimated", "psnr", "ms_ssim", "lpips", "encode_s",
                      "decode_s", "n"):
                row[k] = summary.get(k)
            metrics = rd.read_metrics()
            if metrics:
                row["step"] = int(metrics[-1]["step"])
                row["train_elapsed_s"] = float(metrics[-1]["elapsed_s"])
            with contextlib.suppress(FileNotFoundError):
                for r in rd.read_eval_rows(ev["split"], ev["tag"]):
                    images.append({**base, **r})
        rows.append(row)
    image_fields = list(dict.fromkeys(k for r in images for k in r if k not in CELL_COLUMNS))
    a = write_rows_csv(out / "cells.csv", rows, CELL_COLUMNS + RESULT_COLUMNS)
    b = write_rows_csv(out / "images.csv", images, CELL_COLUMNS + (image_fields or ["name"]))
    return a, b


# ============================================================================ progress
class _Progress:
    """Cells done / running / failed with an ETA: a tqdm bar in a terminal or notebook, plain lines
    every ``interval`` seconds in a log (stderr not a tty)."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool, interval: float, workers: int):
        self.total, self.initial, self.desc, self.interval, self.workers = total, initial, desc, interval, workers
        self.t0 = time.time()
        self.last = 0.0
        self.bar = None
        self.mode = "off"
        if enabled:
            if sys.stderr.isatty() or in_notebook():
                from tqdm.auto import tqdm

                self.mode = "bar"
                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="cell", file=sys.stderr,
                                dynamic_ncols=True)
            else:
                self.mode = "lines"

    def update(self, finished: int, running: int, failed: int, final: bool = False) -> None:
        n = self.initial + finished
        if self.mode == "bar":
            self.bar.set_postfix_str(f"running {running}, failed {failed}", refresh=False)
            self.bar.update(n - self.bar.n)
        elif self.mode == "lines" and (final or time.time() - self.last >= self.interval):
            self.last = time.time()
            el = time.time() - self.t0
            left = self.total - n
            eta = f"{left * el / finished:.0f}s" if finished and left else ("0s" if not left else "?")
            print(f"[sweep {self.desc}] {n}/{self.total} cells finished ({self.initial} skipped, "
                  f"{failed} failed), {running} running, elapsed {el:.0f}s, ETA {eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ============================================================================ the sweep
@dataclass
class SweepResult:
    """What :func:`run_sweep` did: cell ids of the spec, and which were skipped, done or failed."""

    out: Path
    cells: list  # every cell id of the spec, in grid order
    failed: list  # cell ids whose traceback is in <cell>/error.txt
    skipped: list  # finished before this sweep started (summary present)
    done: list  # finished during this sweep (by this sweep, or by a concurrent one: see `ran`)
    wall_s: float
    ran: list = field(default_factory=list)  # cells this sweep trained/evaluated itself (done or failed)
    errors: dict = field(default_factory=dict)  # cell id -> last line of its traceback
    cells_csv: Path | None = None
    images_csv: Path | None = None
    executor: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _task(cell: Cell, out: Path, spec: SweepSpec, plan, backbone_root, claim_timeout, heartbeat,
          launcher=None, may_defer: bool = False) -> dict:
    return {"cell": cell.identity(), "dir": str(out / "cells" / cell.name), "data": spec.data, "eval": spec.eval,
            "captioner": spec.captioner, "launcher": launcher, "may_defer": may_defer,
            "threads": plan.threads, "backbone_root": None if backbone_root is None else str(backbone_root),
            "capture": plan.capture, "parent_pid": os.getpid(), "claim_timeout": claim_timeout,
            "heartbeat": heartbeat}


def run_sweep(spec, *, out=None, executor: str = "local", workers: int | None = None, add: bool = False,
              progress: bool = True, backbone_root=None, claim_timeout: float = 300.0, heartbeat: float | None = None,
              log_interval: float = 30.0, **executor_kwargs) -> SweepResult:
    """Run every cell of ``spec`` (a :class:`SweepSpec`, a TOML path or a dict) that is not finished yet.

    Parameters
    ----------
    out : path, optional
        Output folder (default: the spec's ``out``).  A folder holding another spec's cells is
        refused unless ``add``.
    executor : {"local", "dask", "submitit"}
        Where cells run (:mod:`mdic_lab.experiments.executors`); options come from the spec's
        ``[executor.<name>]`` table, updated by ``executor_kwargs``.
    workers : int, optional
        Cells at once (default: ``min(cells to run, cores)``; torch threads per cell
        ``max(1, cores // workers)``).
    progress : bool
        Progress over cells (tqdm bar in a terminal / notebook, a line every ``log_interval``
        seconds otherwise).
    backbone_root : path, optional
        Cache of MDIC's pretrained small backbones (shared by the cells).
    claim_timeout, heartbeat : float
        A claim not refreshed for ``claim_timeout`` seconds is stale (taken over); holders refresh
        it every ``heartbeat`` seconds (default ``min(30, claim_timeout / 4)``).

    Everything (spec, executor and its options, workers, folder) is checked before the first
    cell starts.  Returns a :class:`SweepResult`; a failing cell does not stop the others.
    """
    t0 = time.perf_counter()
    spec = load_spec(spec)
    out = out if out is not None else spec.out
    if out is None:
        raise SweepSpecError(f"sweep spec {spec.name!r} has no `out` and no out= was given")
    out = Path(out).absolute()
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise SweepSpecError(f"unknown executor {executor!r} (expected one of: {', '.join(EXECUTORS)})")
    options = {**spec.executor.get(executor, {}), **executor_kwargs}
    launcher = options.pop("launcher", None)
    if launcher is not None and (not isinstance(launcher, str) or not launcher.strip()):
        raise SweepSpecError(f"launcher must be a command such as 'torchrun --standalone --nproc_per_node 2', "
                             f"got {launcher!r}")
    check_executor(executor, options, workers)
    if not claim_timeout > 0:
        raise SweepSpecError(f"claim_timeout must be > 0 seconds, got {claim_timeout!r}")
    heartbeat = min(30.0, claim_timeout / 4) if heartbeat is None else float(heartbeat)
    if not 0 < heartbeat < claim_timeout:
        raise SweepSpecError(f"heartbeat must be > 0 and below claim_timeout ({claim_timeout} s), got {heartbeat!r}")
    _prepare_folder(out, spec, add)
    from mdic_lab.atomic import strict_json

    for cell in spec.cells:
        d = out / "cells" / cell.name
        if not (d / CELL_JSON).is_file():
            record = {**cell.identity(), "name": cell.name, "data": spec.data, "eval": spec.eval,
                      "spec_hash": spec.hash, "run": cell.resolve().to_dict()}
            atomic_write_text(d / CELL_JSON, strict_json(record, indent=2, sort_keys=True) + "\n")
    skipped = [c.cell_id for c in spec.cells if _summary_path(out / "cells" / c.name, spec.eval).is_file()]
    todo = [c for c in spec.cells if c.cell_id not in set(skipped)]
    started = _utc()
    results: dict = {}
    plan = None
    interrupted = False
    prog = None
    try:
        if todo:
            folder = Path(options.pop("folder", out / ".submitit"))  # where an executor may keep job files

            def make(n_cells):
                return make_executor(executor, n_cells=n_cells, workers=workers, folder=folder, **options)

            plan = make(len(todo))
            prog = _Progress(len(spec.cells), len(skipped), spec.name, progress, log_interval, plan.workers)
            results = _drive(plan, make, todo, out, spec, backbone_root, claim_timeout, heartbeat, prog, executor,
                             launcher)
    except BaseException:  # Ctrl-C, or the executor itself broke: stop what still runs
        interrupted = True
        raise
    finally:
        if prog is not None:
            prog.close()
        if plan is not None:
            plan.close(cancel=interrupted)
        info = plan.info if plan is not None else {"executor": executor, "workers": 0}
        cells_csv, images_csv = write_tables(out, claim_timeout)
        failed = [c.cell_id for c in todo if results.get(c.cell_id, {}).get("status") == "failed"]
        done = [c.cell_id for c in todo if results.get(c.cell_id, {}).get("status") == "done"]
        ran = [c.cell_id for c in todo if results.get(c.cell_id, {}).get("ran")]
        wall = time.perf_counter() - t0
        record = {"spec_hash": spec.hash, "name": spec.name, "started_utc": started, "finished_utc": _utc(),
                  "interrupted": interrupted, "executor": info, "cells": len(spec.cells), "skipped": len(skipped),
                  "done": len(done), "failed": failed, "ran": len(ran), "wall_s": round(wall, 3)}
        with _folder_lock(out):
            manifest = _read_json(out / "manifest.json") or {"format": 1, "specs": []}
            manifest.update(package_versions=_versions(), git_commit=_git_commit(), machine=_machine(info))
            manifest["runs"] = [*manifest.get("runs", []), record]
            _write_json(out / "manifest.json", manifest)
    errors = {cid: results[cid].get("error", "") for cid in failed}
    return SweepResult(out=out, cells=[c.cell_id for c in spec.cells], failed=failed, skipped=skipped, done=done,
                       wall_s=wall, ran=ran, errors=errors, cells_csv=cells_csv, images_csv=images_csv,
                       executor=info)


def _git_commit():
    from mdic_lab.runs.rundir import git_commit

    return git_commit()


def _drive(plan, make, todo, out, spec, backbone_root, claim_timeout, heartbeat, prog, executor, launcher=None):
    """Submit the cells, collect their results, wait on cells another sweep holds; returns id -> result."""
    from concurrent.futures import BrokenExecutor

    results: dict = {}
    futures: dict = {}  # Future -> Cell
    busy: dict = {}  # cell id -> (Cell, since)
    attempts: dict = {}
    by_id = {c.cell_id: c for c in todo}

    def submit(cell, may_defer=False, count=True):
        if count:
            attempts[cell.cell_id] = attempts.get(cell.cell_id, 0) + 1
        futures[plan.executor.submit(run_cell, _task(cell, out, spec, plan, backbone_root, claim_timeout,
                                                     heartbeat, launcher, may_defer))] = cell

    for cell in todo:  # a cell may put off its evaluation once (run_cell's "deferred"), not twice
        submit(cell, may_defer=True)
    last_poll = 0.0
    while futures or busy:
        broken = []
        for fut in [f for f in futures if f.done()]:
            cell = futures.pop(fut)
            try:
                res = fut.result()
            except BrokenExecutor:  # a worker process died (killed, out of memory): the pool is gone
                broken.append(cell)
                continue
            except Exception as exc:  # noqa: BLE001 -- the executor lost the cell (dask KilledWorker, Slurm ...)
                res = {"cell_id": cell.cell_id, "status": "failed", "ran": True,
                       "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
                err = out / "cells" / cell.name / ERROR
                if not err.is_file():
                    atomic_write_text(err, f"cell {cell.cell_id}: the {executor} executor reported "
                                           f"{type(exc).__name__}\n\n{''.join(traceback.format_exception(exc))}")
            if res.get("status") == "busy":
                busy[cell.cell_id] = (cell, time.time())
            elif res.get("status") == "deferred":  # trained: evaluated after the cells already queued
                submit(cell, count=False)
            else:
                results[cell.cell_id] = res
        if broken:
            plan.close(cancel=True)
            new = make(len(broken) + len(futures))
            plan.executor, plan._close = new.executor, new._close
            again = broken + list(futures.values())
            futures.clear()
            for cell in again:
                if attempts.get(cell.cell_id, 0) >= 3:
                    results[cell.cell_id] = {"cell_id": cell.cell_id, "status": "failed", "ran": True,
                                             "error": "its worker process died three times"}
                    err = out / "cells" / cell.name / ERROR
                    if not err.is_file():
                        atomic_write_text(err, f"cell {cell.cell_id}: its worker process died three times "
                                               "(killed or out of memory); see log.txt\n")
                else:
                    submit(cell)
        now = time.time()
        if now - last_poll >= 1.0:
            last_poll = now
            for cid, (cell, since) in list(busy.items()):
                d = out / "cells" / cell.name
                if _summary_path(d, spec.eval).is_file():
                    results[cid] = {"cell_id": cid, "status": "done", "ran": False}
                    del busy[cid]
                    continue
                state, _ = claim_status(d / CLAIM, claim_timeout)
                if state == "live":
                    continue
                del busy[cid]
                if state == "free" and (d / ERROR).is_file():  # the other sweep's try failed
                    results[cid] = {"cell_id": cid, "status": "failed", "ran": False,
                                    "error": _error_line(d / ERROR)}
                else:
                    submit(cell)
            running = sum(claim_status(out / "cells" / by_id[cid].name / CLAIM, claim_timeout)[0] == "live"
                          for cid in by_id if cid not in results)
            failed = sum(r.get("status") == "failed" for r in results.values())
            prog.update(len(results), running, failed)
        time.sleep(0.1)
    prog.update(len(results), 0, sum(r.get("status") == "failed" for r in results.values()), final=True)
    return results


# ============================================================================ command line
def main(argv=None) -> int:
    """``python -m mdic_lab.experiments.sweep SPEC [--out DIR] [--executor local|dask|submitit] [--workers N]
    [--add]``: exit status 1 if a cell failed, 2 if the spec or folder was refused."""
    p = argparse.ArgumentParser(prog="python -m mdic_lab.experiments.sweep", description=__doc__.splitlines()[0])
    p.add_argument("spec", help="sweep spec (TOML), e.g. ablations/specs/smoke.toml")
    p.add_argument("--out", help="output folder (default: the spec's `out`)")
    p.add_argument("--executor", default="local", help=f"{' | '.join(EXECUTORS)} (default local)")
    p.add_argument("--workers", type=int, help="cells at once (default: fill the machine's cores)")
    p.add_argument("--add", action="store_true", help="add this spec's cells to a folder of another spec")
    p.add_argument("--backbone-root", help="cache folder of pretrained small MDIC backbones")
    p.add_argument("--claim-timeout", type=float, default=300.0, help="seconds without heartbeat before a claim "
                                                                      "is stale (default 300)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--train-cell"]:  # one process of a launched cell (see _train_launched)
        if len(argv) != 2:
            p.error("--train-cell takes the path of a cell's task.json")
        _train(json.loads(Path(argv[1]).read_text()))
        return 0
    a = p.parse_args(argv)
    try:
        result = run_sweep(load_spec(a.spec), out=a.out, executor=a.executor, workers=a.workers, add=a.add,
                           progress=not a.no_progress, backbone_root=a.backbone_root, claim_timeout=a.claim_timeout)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(result.out), "cells": len(result.cells), "skipped": len(result.skipped),
                      "done": len(result.done), "ran": len(result.ran), "failed": result.failed,
                      "wall_s": round(result.wall_s, 2)}))
    return 1 if result.failed else 0


if __name__ == "__main__":
    from mdic_lab.experiments.sweep import main as _main  # the importable module, not __main__ (pickling)

    sys.exit(_main())
