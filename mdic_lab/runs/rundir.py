"""One run folder, the same for every codec, and the only code that parses its ``config.json``.

::

    run/
      config.json     codec, preset, variant, rate point, overrides, model and training config
                      (class-tagged), data record, codec extras (e.g. the backbone used),
                      package version, git commit, number of processes
      metrics.csv     one row per logged step (step, loss, the codec's terms, lr, elapsed_s)
      checkpoint.pt   model state, optimiser, scheduler, step, every RNG state (atomic)
      eval/<split>.csv   one row per coded image (eval/<split>-<tag>.csv with a tag)
      eval/<split>.json  the summary: coded and estimated bpp apart, means, n, timings

Every file is written atomically (:mod:`mdic_lab.atomic`).
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

from mdic_lab.atomic import atomic_torch_save, atomic_write, atomic_write_text, strict_json

__all__ = ["RunDir", "RunError", "git_commit", "write_rows_csv"]

FORMAT = 1  # version of the config.json / checkpoint layout


class RunError(ValueError):
    """A run folder that cannot be used (missing, foreign, or holding another run)."""


def git_commit(path=None) -> str | None:
    """The commit of the checkout holding the package (``None`` outside a git checkout)."""
    root = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class RunDir:
    """A run folder (see the module docstring); nothing is created until something is written."""

    CONFIG, METRICS, CHECKPOINT, EVAL = "config.json", "metrics.csv", "checkpoint.pt", "eval"

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ config.json
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    def read_record(self) -> dict:
        """The raw ``config.json`` (a clear :class:`RunError` if missing, unreadable or foreign)."""
        p = self.config_path
        if not p.is_file():
            raise FileNotFoundError(f"no {self.CONFIG} in {self.path} (expected a run folder written by "
                                    "`mdic-lab train`)")
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read {p}: {exc}") from None
        if not isinstance(rec, dict) or "codec" not in rec:
            raise RunError(f"{p} is not an mdic-lab run record (no 'codec' field; runs written before the "
                           "run stack of issue #12 must be trained again)")
        return rec

    def run_config(self):
        """The :class:`mdic_lab.registry.RunConfig` recorded in ``config.json``."""
        from mdic_lab.config import config_from_dict
        from mdic_lab.registry import RunConfig, get_codec

        rec = self.read_record()
        codec = get_codec(rec["codec"])
        model, train = config_from_dict(rec["model_config"]), config_from_dict(rec["train_config"])
        if not isinstance(model, codec.config_class) or not isinstance(train, codec.train_config_class):
            raise RunError(f"{self.config_path}: configs {type(model).__name__}/{type(train).__name__} do not "
                           f"belong to codec {codec.name!r}")
        return RunConfig(codec.name, rec["preset"], rec.get("variant", "full"), rec.get("rate_point"), model, train,
                         rec.get("overrides") or {})

    def data_record(self) -> dict:
        """The ``data`` record (spec, split, captioner, length …) of ``config.json``; ``{}`` if none."""
        rec = self.read_record().get("data")
        return rec if isinstance(rec, dict) else {}

    def write_record(self, record: dict) -> None:
        atomic_write_text(self.config_path, strict_json(record, indent=2))

    # ------------------------------------------------------------------ metrics.csv
    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    def read_metrics(self, max_step: int | None = None) -> list[dict]:
        """Logged rows (``step <= max_step``), as strings."""
        if not self.metrics_path.is_file():
            return []
        with open(self.metrics_path, newline="") as f:
            return [r for r in csv.DictReader(f) if max_step is None or int(r["step"]) <= max_step]

    def write_metrics(self, rows: list[dict], fields) -> None:
        lines = [",".join(fields)] + [",".join(str(r.get(k, "")) for k in fields) for r in rows]
        atomic_write_text(self.metrics_path, "\n".join(lines) + "\n")

    # ------------------------------------------------------------------ checkpoint.pt
    @property
    def checkpoint_path(self) -> Path:
        return self.path / self.CHECKPOINT

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def save_checkpoint(self, blob: dict) -> None:
        atomic_torch_save({"format": FORMAT, **blob}, self.checkpoint_path)

    def load_checkpoint(self) -> dict:
        """The checkpoint dict (tensors on the CPU); clear errors for a missing or foreign file."""
        import torch

        p = self.checkpoint_path
        if not p.is_file():
            raise FileNotFoundError(f"no checkpoint at {p} (expected a run folder written by `mdic-lab train`)")
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: torch raises many types
            raise RunError(f"cannot read checkpoint {p}: {type(exc).__name__}: {exc}") from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT or "model" not in blob:
            raise RunError(f"{p} is not an mdic-lab checkpoint of format {FORMAT}")
        return blob

    # ------------------------------------------------------------------ eval/
    def eval_stem(self, split: str, tag: str | None = None) -> Path:
        if not isinstance(split, str) or not split or "/" in split:
            raise ValueError(f"split must be a plain name such as 'test', got {split!r}")
        return self.path / self.EVAL / (split if not tag else f"{split}-{tag}")

    def write_eval(self, split: str, rows: list[dict], fields, summary: dict, tag: str | None = None) -> Path:
        """Per-image CSV, then the summary JSON (the summary's presence marks a finished evaluation)."""
        stem = self.eval_stem(split, tag)
        write_rows_csv(stem.with_suffix(".csv"), rows, fields)
        atomic_write_text(stem.with_suffix(".json"), strict_json(summary, indent=2))
        return stem

    def read_eval_summary(self, split: str, tag: str | None = None) -> dict | None:
        p = self.eval_stem(split, tag).with_suffix(".json")
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None

    def read_eval_rows(self, split: str, tag: str | None = None) -> list[dict]:
        p = self.eval_stem(split, tag).with_suffix(".csv")
        if not p.is_file():
            raise FileNotFoundError(f"no evaluation of split {split!r} in {self.path} (run `mdic-lab eval` first)")
        with open(p, newline="") as f:
            return list(csv.DictReader(f))


def write_rows_csv(path, rows: list[dict], fields) -> Path:
    """Rows to CSV atomically; floats with 6 significant digits, NaN as ``nan``."""

    def write(fh):
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k)) for k in fields})

    return atomic_write(path, write, newline="")
