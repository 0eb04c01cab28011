"""`python -m mdic_lab.cli`: train, compress, decompress, and one-line errors on bad input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mdic_lab.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


def assert_one_line_error(res, *fragments):
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert lines[0].startswith("mdic-lab: error:")
    for frag in fragments:
        assert frag in lines[0], lines[0]


def _png(path, h, w, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    res = cli("train", "--model", "ndic", "--preset", "smoke", "--steps", "2", "--out", d / "ndic")
    assert res.returncode == 0, res.stderr
    assert (d / "ndic" / "checkpoint.pt").is_file() and (d / "ndic" / "metrics.csv").is_file()
    # the second model and its stream are made in-process (the CLI train path is covered above)
    from mdic_lab.cli import load_image
    from mdic_lab.coding.container import write_bitstream
    from mdic_lab.registry import resolve
    from mdic_lab.runs.coding import compress_image
    from mdic_lab.runs.train import train_run

    train_run(resolve("hyperprior", "smoke", overrides={"steps": 1}), d / "hyperprior", progress=False)
    data, _ = compress_image(d / "hyperprior", load_image(_png(d / "x2.png", 64, 128, 2)))
    write_bitstream(d / "hp.mdic", data)
    return {"ndic": d / "ndic", "hyperprior": d / "hyperprior", "dir": d}


def test_compress_decompress_round_trip(runs):
    d = runs["dir"]
    x, y = _png(d / "x.png", 64, 128, 0), _png(d / "y.png", 64, 128, 1)
    res = cli("compress", runs["ndic"], x, "-o", d / "x.mdic")
    assert res.returncode == 0, res.stderr
    assert (d / "x.mdic").stat().st_size > 0
    res = cli("decompress", runs["ndic"], d / "x.mdic", "--side", y, "-o", d / "x_hat.png")
    assert res.returncode == 0, res.stderr
    assert Image.open(d / "x_hat.png").size == (128, 64)


def test_error_paths(runs):
    d = runs["dir"]
    x = d / "x2.png"
    # missing model folder / image
    assert_one_line_error(cli("compress", d / "nope", x, "-o", d / "a.mdic"), "no checkpoint")
    assert_one_line_error(cli("compress", runs["ndic"], d / "missing.png", "-o", d / "a.mdic"), "not found")
    assert_one_line_error(cli("decompress", runs["ndic"], d / "missing.mdic", "--side", x, "-o", d / "o.png"),
                          "bitstream file not found")
    # wrong image size (not a multiple of the model's down-sampling)
    assert_one_line_error(cli("compress", runs["ndic"], _png(d / "odd.png", 50, 70, 3), "-o", d / "a.mdic"),
                          "multiples of 64")
    # a stream of another model
    assert_one_line_error(cli("decompress", runs["ndic"], d / "hp.mdic", "--side", x, "-o", d / "o.png"), "model")
    # corrupted bytes
    data = bytearray((d / "hp.mdic").read_bytes())
    data[len(data) // 2] ^= 0x55
    (d / "bad.mdic").write_bytes(bytes(data))
    assert_one_line_error(cli("decompress", runs["hyperprior"], d / "bad.mdic", "-o", d / "o.png"), "CRC32")
    # NDIC decodes with side information only
    assert_one_line_error(cli("decompress", runs["ndic"], d / "hp.mdic", "-o", d / "o.png"), "--side")
    # unknown preset / unknown field / bad arguments
    assert_one_line_error(cli("train", "--model", "ndic", "--preset", "huge", "--out", d / "r"), "unknown preset 'huge'")
    assert_one_line_error(cli("train", "--codec", "ndic", "--preset", "smoke", "--set", "gamma=1", "--out", d / "r"),
                          "unknown field 'gamma' of NDICConfig or TrainConfig")
    assert_one_line_error(cli("train", "--model", "dsin", "--out", d / "r"), "invalid choice")
    # options the codec's decoder does not read, variants and rate points it does not have: refused by the registry
    assert_one_line_error(cli("train", "--codec", "ndic", "--preset", "smoke", "--captioner", "x", "--out", d / "r"),
                          "--captioner does not apply to ndic")
    assert_one_line_error(cli("train", "--codec", "ndic", "--preset", "smoke", "--variant", "no_ts", "--out", d / "r"),
                          "unknown variant 'no_ts' of codec 'ndic' (expected one of: full)")
    assert_one_line_error(cli("train", "--codec", "mdic", "--preset", "lab", "--rate-point", "9", "--out", d / "r"),
                          "unknown rate point 9 of codec 'mdic'")
    assert_one_line_error(cli("eval", runs["ndic"], "--num-inference-steps", "2"), "does not apply to ndic")
    assert not (d / "r").exists()  # nothing was written before the refusal


def test_codecs_lists_the_registry():
    res = cli("codecs")
    assert res.returncode == 0, res.stderr
    for name in ("hyperprior:", "ndic:", "mdic:", "no_zd_zxc", "codebook size"):
        assert name in res.stdout
