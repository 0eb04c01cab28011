"""Shared test setup: offline hub, headless matplotlib, a papermill notebook runner."""

import os
from pathlib import Path

# Without these every Hugging Face hub look-up retries for minutes on a machine without
# internet; tests never download anything.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from mdic_lab.experiments.notebooks import run_notebook


@pytest.fixture
def notebook_runner(tmp_path):
    """``notebook_runner("notebooks/01_slepian_wolf.ipynb", n_max=8)`` → metrics dict."""

    def _run(path, **parameters):
        return run_notebook(path, tmp_path / Path(path).stem, **parameters)

    return _run
