"""Experiments: what runs notebooks and sweeps and reports their claims.

Modules (import the one you need; this package imports none of them, so importing it
is free of torch and papermill):

- ``mdic_lab.experiments.notebooks``: run the course notebooks (or any notebook with a
  ``parameters`` cell) headless with papermill:
  ``python -m mdic_lab.experiments.notebooks --out notebook_runs [--only 01 03]``.
- ``mdic_lab.experiments.claims``: the claims table every notebook ends with
  (``Claims``: claim, theory, measured, holds?) and ``write_metrics``, the one atomic
  writer of a notebook's ``metrics.json``.
- ``mdic_lab.experiments.sweep``: grids of training/evaluation runs (run folders named
  by config hash, resume, executors).
"""
