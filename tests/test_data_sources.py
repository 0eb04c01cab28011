"""Paper-scale data path: KITTI / Cityscapes pairs with BLIP-2 captions through train, eval and decompress.

Everything runs on fake KITTI and Cityscapes trees of generated PNGs and a tiny BLIP-2
with random weights built from a config (:func:`make_tiny_blip2`).  Its captions are
random street words: these tests check the data path (readers → captioner → cache →
trainer → run folder → evaluator → decoder), never caption quality.
"""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mdic_lab.cli import main
from mdic_lab.data.captioners import Blip2Captioner, make_tiny_blip2
from mdic_lab.data.kitti import read_split_list
from mdic_lab.data.sources import describe_dataset, open_pairs, parse_data_spec
from mdic_lab.data.synthetic import SyntheticStereo
from mdic_lab.runs import RunDir, RunError

torch.set_num_threads(1)
N_TRAIN, N_TEST = 4, 2


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _frame(seed, h, w, block=1):
    """A smooth random frame (waves + a few boxes): distinct per seed, quick to encode.

    ``block`` > 1 draws it at ``1/block`` resolution and repeats the pixels (PNG-friendly).
    """
    if block > 1:
        small = _frame(seed, -(-h // block), -(-w // block))
        return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = np.stack([rng.uniform(40, 215) + 40 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * xx + c * yy))
                    for c in range(3)], -1)
    for _ in range(4):
        t, l = rng.integers(0, h - h // 4), rng.integers(0, w - w // 4)
        img[t:t + h // 4, l:l + w // 4] = rng.uniform(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_blip2(tmp_path_factory):
    return make_tiny_blip2(tmp_path_factory.mktemp("tiny_blip2"), seed=0)


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory):
    """The files of the first N_TRAIN train pairs and N_TEST test pairs of NDIC's lists.

    Frames are 372x744 (just above the 370x740 centre crop; real KITTI frames are ~375x1242).
    """
    root = tmp_path_factory.mktemp("kitti")
    pairs = read_split_list("train")[:N_TRAIN] + read_split_list("test")[:N_TEST]
    for k, path in enumerate(p for pair in pairs for p in pair):
        _png(root / path, _frame(k, 372, 744, block=4))
    return root


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    for split, n in (("train", 3), ("val", 2)):
        for k in range(n):
            stem = f"frankfurt_000000_{k:06d}"
            _png(root / "leftImg8bit" / split / "frankfurt" / f"{stem}_leftImg8bit.png", _frame(10 + k, 64, 128))
            _png(root / "rightImg8bit" / split / "frankfurt" / f"{stem}_rightImg8bit.png", _frame(20 + k, 64, 128))
            lab = np.full((64, 128), 7, np.uint8)  # road
            lab[:, 64:] = 26  # car
            _png(root / "gtFine" / split / "frankfurt" / f"{stem}_gtFine_labelIds.png", lab)
    return root


def _u8(t):
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


# ----------------------------------------------------------------------------- specs and errors
def test_bad_specs_name_what_was_expected(tmp_path, kitti_root, tiny_blip2):
    with pytest.raises(ValueError, match=r"unknown data kind 'imagenet'.*expected one of: synthetic, kitti:/path"):
        parse_data_spec("imagenet:/data")
    with pytest.raises(ValueError, match=r"has no root \(expected cityscapes:/path/to/root\)"):
        parse_data_spec("cityscapes:")
    with pytest.raises(ValueError, match="takes no root"):
        parse_data_spec("synthetic:/x")
    with pytest.raises(FileNotFoundError, match="does not exist.*data_scene_flow_multiview"):
        parse_data_spec(f"kitti:{tmp_path / 'nowhere'}")
    with pytest.raises(FileNotFoundError, match="does not exist.*leftImg8bit"):
        parse_data_spec(f"cityscapes:{tmp_path / 'nowhere'}")
    # real data has no captions: MDIC must be told which captioner to run
    with pytest.raises(ValueError, match="pass --captioner Salesforce/blip2-opt-2.7b"):
        open_pairs(f"kitti:{kitti_root}", "train", length=2)
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        open_pairs(f"kitti:{kitti_root}", "train", length=2, captioner="nobody/no-such-blip2")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        open_pairs(f"kitti:{kitti_root}", "train", length=2, captioner=tmp_path)
    with pytest.raises(ValueError, match="length 791 exceeds the 790 pairs of KITTI 'test'"):
        open_pairs(f"kitti:{kitti_root}", "test", length=791, captions=False)
    # only the listed pairs that are read must exist
    with pytest.raises(FileNotFoundError, match="missing"):
        open_pairs(f"kitti:{kitti_root}", "train", length=N_TRAIN + 1, captions=False)


# ----------------------------------------------------------------------------- readers + captions
def test_kitti_source_captions_once_then_from_cache(kitti_root, tiny_blip2, tmp_path):
    spec = f"kitti:{kitti_root}"
    ds = open_pairs(spec, "train", size=(32, 64), captioner=str(tiny_blip2), length=N_TRAIN, caption_cache=tmp_path)
    assert len(ds) == N_TRAIN and ds.caption_stats == {"hits": 0, "misses": 0}
    items = [ds[i] for i in range(N_TRAIN)]
    assert {"left", "right", "caption", "nouns", "index", "name", "paths"} <= set(items[0])
    assert items[0]["left"].shape == (3, 32, 64) and items[0]["left"].dtype == torch.float32
    assert [it["name"] for it in items] == [a for a, _ in read_split_list("train")[:N_TRAIN]]
    assert ds.caption_stats == {"hits": 0, "misses": N_TRAIN}  # four distinct side views, captioned once each
    # the captions are BLIP-2's (random words of the tiny model) of the resized side view
    direct = Blip2Captioner(str(tiny_blip2))
    assert [it["caption"] for it in items] == [direct(_u8(it["right"])) for it in items]
    cache_files = list(tmp_path.glob("*.json"))
    assert len(cache_files) == 1 and len(json.loads(cache_files[0].read_text())) == N_TRAIN
    # second use: every caption comes from the cache and BLIP-2 is never loaded
    again = open_pairs(spec, "train", size=(32, 64), captioner=str(tiny_blip2), length=N_TRAIN, caption_cache=tmp_path)
    assert [again[i]["caption"] for i in range(N_TRAIN)] == [it["caption"] for it in items]
    assert again.caption_stats == {"hits": N_TRAIN, "misses": 0} and not again.captioner.captioner.loaded
    rec = describe_dataset(again)
    assert rec["spec"] == f"kitti:{kitti_root}" and rec["length"] == N_TRAIN and rec["captioner"] == str(tiny_blip2)
    assert rec["captioner_identity"].startswith("blip2|")


def test_cityscapes_and_synthetic_sources(cityscapes_root):
    ds = open_pairs(f"cityscapes:{cityscapes_root}", "val", captions=False)
    assert len(ds) == 2
    item = ds[1]
    assert item["caption"] == "" and item["labels"].shape == (128, 256) and item["right"].shape == (3, 128, 256)
    assert item["name"] == "leftImg8bit/val/frankfurt/frankfurt_000000_000001_leftImg8bit.png"
    assert len(open_pairs(f"cityscapes:{cityscapes_root}", "train", length=2, captions=False)) == 2
    with pytest.raises(ValueError, match="length 5 exceeds the 3 pairs"):
        open_pairs(f"cityscapes:{cityscapes_root}", "train", length=5, captions=False)
    # the synthetic world: the same items as SyntheticStereo, oracle captions, no captioner needed
    syn = open_pairs("synthetic", "val", size=(32, 64), length=2, cache_dir=None)
    ref = SyntheticStereo("val", size=(32, 64), length=2, cache=False)
    assert torch.equal(syn[1]["left"], ref[1]["left"]) and syn[1]["caption"] == ref[1]["caption"] != ""
    assert describe_dataset(syn)["captioner"] == "oracle"


# ----------------------------------------------------------------------------- the CLI end to end
def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_mdic_on_kitti_train_eval_decompress(tmp_path, kitti_root, tiny_blip2, capsys):
    d = tmp_path
    run, cache = d / "run", d / "captions"
    spec = f"kitti:{kitti_root}"
    args = ["train", "--codec", "mdic", "--preset", "smoke", "--data", spec, "--captioner", str(tiny_blip2),
            "--caption-cache", str(cache), "--data-limit", str(N_TRAIN), "--steps", "2", "--out", str(run)]
    assert main(args) == 0, capsys.readouterr().err
    out = _last_json(capsys)
    assert out["step"] == 2 and out["data"] == spec and out["train_pairs"] == N_TRAIN
    assert out["captions"] == {"hits": 0, "misses": N_TRAIN}
    assert {p.name for p in run.iterdir()} == {"checkpoint.pt", "config.json", "metrics.csv"}
    meta = json.loads((run / "config.json").read_text())
    assert meta["codec"] == "mdic" and meta["data"]["spec"] == spec and meta["data"]["split"] == "train"
    assert meta["data"]["captioner"] == str(tiny_blip2) and meta["data"]["length"] == N_TRAIN
    rd = RunDir(run)  # config.json is the run's one record (the checkpoint holds the state)
    ck = rd.load_checkpoint()
    assert rd.data_record() == meta["data"] and ck["codec"] == "mdic" and ck["step"] == 2
    # the vocabulary of the text supervision is built from the BLIP-2 training captions (Eq. 9)
    captions = [open_pairs(spec, "train", size=(32, 64), captioner=str(tiny_blip2), length=N_TRAIN,
                           caption_cache=cache)[i]["caption"] for i in range(N_TRAIN)]
    from mdic_lab.data.vocabulary import build_vocabulary

    assert ck["model"]["vocabulary"]["nouns"] == list(build_vocabulary(captions, n=14).nouns)

    # eval defaults to the run's data and captioner: KITTI's test list, BLIP-2 captions
    csv_path = d / "eval.csv"
    ev = ["eval", str(run), "--limit", str(N_TEST), "--csv", str(csv_path), "--no-lpips",
          "--num-inference-steps", "2", "--caption-cache", str(cache)]
    assert main(ev) == 0, capsys.readouterr().err
    summ = _last_json(capsys)
    assert summ["data"] == spec and summ["n"] == N_TEST and summ["all_round_trip"]
    assert summ["captions"] == {"hits": 0, "misses": N_TEST}
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [a for a, _ in read_split_list("test")[:N_TEST]]
    assert all(float(r["bpp_coded"]) > float(r["bpp_payload"]) > 0 for r in rows)
    assert main(ev) == 0
    assert _last_json(capsys)["captions"] == {"hits": N_TEST, "misses": 0}  # second use: all from the cache

    # compress a test pair, then decompress with BLIP-2 captioning the side image
    item = open_pairs(spec, "test", size=(32, 64), length=1, captions=False)[0]
    Image.fromarray(_u8(item["left"])).save(d / "left.png")
    Image.fromarray(_u8(item["right"])).save(d / "right.png")
    assert main(["compress", str(run), str(d / "left.png"), "-o", str(d / "x.mdic")]) == 0
    assert _last_json(capsys)["bytes"] == (d / "x.mdic").stat().st_size
    dec = ["decompress", str(run), str(d / "x.mdic"), "--side", str(d / "right.png"), "--num-inference-steps", "2",
           "--caption-cache", str(d / "fresh_cache")]
    assert main(dec + ["--captioner", str(tiny_blip2), "-o", str(d / "x_hat.png")]) == 0, capsys.readouterr().err
    res = _last_json(capsys)
    assert res["size"] == [32, 64] and Image.open(d / "x_hat.png").size == (64, 32)
    assert res["caption"] == Blip2Captioner(str(tiny_blip2))(_u8(item["right"]))
    # without --captioner the run's recorded BLIP-2 captions the side image: same caption, same pixels
    assert main(dec + ["-o", str(d / "x_hat2.png")]) == 0, capsys.readouterr().err
    assert _last_json(capsys)["caption"] == res["caption"]
    assert np.array_equal(np.asarray(Image.open(d / "x_hat.png")), np.asarray(Image.open(d / "x_hat2.png")))


def test_ndic_on_cityscapes_train_eval(tmp_path, cityscapes_root, capsys):
    spec = f"cityscapes:{cityscapes_root}"
    run = tmp_path / "ndic"
    assert main(["train", "--codec", "ndic", "--preset", "smoke", "--data", spec, "--steps", "2",
                 "--out", str(run)]) == 0, capsys.readouterr().err
    out = _last_json(capsys)
    assert out["step"] == 2 and out["train_pairs"] == 3 and out["data"] == spec
    meta = json.loads((run / "config.json").read_text())
    assert meta["data"]["spec"] == spec and meta["data"]["captioner"] is None and meta["data"]["length"] == 3
    csv_path = tmp_path / "eval.csv"
    assert main(["eval", str(run), "--split", "val", "--csv", str(csv_path), "--no-lpips"]) == 0, capsys.readouterr().err
    summ = _last_json(capsys)
    assert summ["data"] == spec and summ["n"] == 2 and summ["all_round_trip"]
    with open(csv_path) as f:
        names = [r["name"] for r in csv.DictReader(f)]
    assert names == [f"leftImg8bit/val/frankfurt/frankfurt_000000_{k:06d}_leftImg8bit.png" for k in range(2)]
    # --resume without --data continues on the recorded data; a resume on other data is refused
    assert main(["train", "--codec", "ndic", "--preset", "smoke", "--steps", "3", "--resume",
                 "--out", str(run)]) == 0, capsys.readouterr().err
    out = _last_json(capsys)
    assert out["step"] == 3 and out["data"] == spec and out["train_pairs"] == 3
    assert main(["train", "--codec", "ndic", "--preset", "smoke", "--steps", "4", "--resume", "--data", "synthetic",
                 "--out", str(run)]) == 2
    assert "holds a run with another data" in capsys.readouterr().err
    # the Python API refuses it too: the same data spec with fewer pairs is other data
    from mdic_lab.registry import resolve
    from mdic_lab.runs.train import train_run, training_dataset

    rc = resolve("ndic", "smoke", overrides={"steps": 3})
    with pytest.raises(RunError, match="another data"):
        train_run(rc, run, dataset=training_dataset(rc, spec, data_limit=2), progress=False)


def test_cli_data_errors_are_one_line(tmp_path, kitti_root, tiny_blip2, capsys):
    def err(args, *frags):
        assert main(args) == 2
        line = capsys.readouterr().err.strip()
        assert len(line.splitlines()) == 1 and line.startswith("mdic-lab: error:")
        for f in frags:
            assert f in line, line

    out = ["--out", str(tmp_path / "r")]
    err(["train", "--codec", "ndic", "--preset", "smoke", "--data", "imagenet:/x"] + out, "unknown data kind 'imagenet'")
    err(["train", "--codec", "ndic", "--preset", "smoke", "--data", f"kitti:{tmp_path / 'no'}"] + out,
        "does not exist", "data_scene_flow_multiview")
    err(["train", "--codec", "mdic", "--preset", "smoke", "--data", f"kitti:{kitti_root}"] + out,
        "--captioner Salesforce/blip2-opt-2.7b")
    err(["train", "--codec", "ndic", "--preset", "smoke", "--captioner", str(tiny_blip2)] + out,
        "--captioner does not apply to ndic (it applies to: mdic, taco)")
    err(["train", "--codec", "ndic", "--preset", "smoke", "--data-limit", "0"] + out, "--data-limit must be a positive")
    assert not (tmp_path / "r").exists()  # nothing written for a bad request


def test_mdic_train_data_flags(tmp_path, kitti_root, tiny_blip2, capsys):
    """The data flags of ``mdic-lab train --codec mdic`` (the entry point torchrun launches) reach the run record."""
    from mdic_lab.registry import resolve
    from mdic_lab.runs.train import train_run

    rc = resolve("mdic", "smoke")
    with pytest.raises(FileNotFoundError, match="data_scene_flow_multiview"):
        train_run(rc, tmp_path / "x", data=f"kitti:{tmp_path / 'no'}", progress=False)
    with pytest.raises(ValueError, match="--captioner"):
        train_run(rc, tmp_path / "x", data=f"kitti:{kitti_root}", progress=False)
    assert not (tmp_path / "x").exists()
    assert main(["train", "--codec", "mdic", "--preset", "smoke", "--out", str(tmp_path / "r"), "--steps", "1",
                 "--data", f"kitti:{kitti_root}", "--captioner", str(tiny_blip2), "--caption-cache", str(tmp_path / "c"),
                 "--data-limit", "2"]) == 0, capsys.readouterr().err
    rec = json.loads((tmp_path / "r" / "config.json").read_text())["data"]
    assert rec["spec"] == f"kitti:{kitti_root}" and rec["length"] == 2 and rec["captioner"] == str(tiny_blip2)


@pytest.mark.slow
def test_two_processes_share_one_caption_pass(tmp_path, kitti_root, tiny_blip2):
    """torchrun, 2 CPU processes (gloo): process 0 captions the side views, process 1 reads its cache."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mdic_lab.cli", "train", "--codec", "mdic", "--preset", "smoke", "--steps", "2",
           "--out", str(tmp_path / "ddp"), "--data", f"kitti:{kitti_root}", "--captioner", str(tiny_blip2),
           "--caption-cache", str(tmp_path / "c"), "--data-limit", str(N_TRAIN)]
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # the CLI prints the training summary on stdout, one line per process
    per_rank = {d["rank"]: d for d in map(json.loads, (ln for ln in r.stdout.splitlines()
                                                      if ln.startswith('{"out_dir"')))}
    assert sorted(per_rank) == [0, 1], r.stdout[-3000:]
    res = per_rank[0]
    assert res["num_processes"] == 2 and res["step"] == 2 and res["param_checksums"][0] == res["param_checksums"][1]
    # process 0 computed every caption (then re-read them from the cache); process 1 computed none
    assert per_rank[0]["captions"]["misses"] == N_TRAIN and per_rank[1]["captions"] == {"hits": N_TRAIN, "misses": 0}, \
        {k: d["captions"] for k, d in per_rank.items()}
    (cache,) = (tmp_path / "c").glob("*.json")
    assert len(json.loads(cache.read_text())) == N_TRAIN
    rec = json.loads((tmp_path / "ddp" / "config.json").read_text())["data"]
    assert rec["spec"] == f"kitti:{kitti_root}" and rec["length"] == N_TRAIN
