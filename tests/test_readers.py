"""KITTI Stereo and Cityscapes readers on fake directory trees of generated PNGs."""

import numpy as np
import pytest
from PIL import Image

from mdic_lab.data.cityscapes import CityscapesStereo, label_ids_to_train_ids
from mdic_lab.data.kitti import KittiStereo, read_split_list
from mdic_lab.data.synthetic import collate


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _kitti_image(colour):
    """375x1242 frame: a red border outside the centre 370x740 crop, ``colour`` inside."""
    img = np.zeros((375, 1242, 3), np.uint8)
    img[...] = (255, 0, 0)
    top, left = (375 - 370) // 2, (1242 - 740) // 2
    img[top:top + 370, left:left + 740] = colour
    return img


@pytest.fixture
def kitti_root(tmp_path):
    pairs = read_split_list("train")[:2] + [p for p in read_split_list("train") if "image_3" in p[0]][:1]
    for a, b in pairs:
        for path in (a, b):  # camera 2 frames are blue 100, camera 3 frames blue 10
            _png(tmp_path / path, _kitti_image((0, 0, 100 if "image_2" in path else 10)))
    return tmp_path, pairs


def test_packaged_split_lists():
    sizes = {s: len(read_split_list(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 1576, "val": 50, "test": 790}
    train = read_split_list("train")
    # every physical pair appears in both directions (x = image_2 and x = image_3)
    assert len({tuple(sorted(p)) for p in train}) == 788
    assert sum("image_3" in a for a, _ in train) == 788
    assert all("image_2" in a for a, _ in read_split_list("val"))
    assert not {p for pr in read_split_list("val") for p in pr} & {p for pr in read_split_list("test") for p in pr}


def test_split_list_errors(tmp_path):
    with pytest.raises(ValueError, match="expected pairs"):
        read_split_list(["x/image_2/000000_10.png"])
    with pytest.raises(ValueError, match="not the image_2/image_3 views of one frame"):
        read_split_list(["x/image_2/000000_10.png", "x/image_3/000001_10.png"])
    with pytest.raises(ValueError, match="image_2 or image_3"):
        read_split_list(["x/image_0/000000_10.png", "x/image_3/000000_10.png"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_split_list(tmp_path / "nope.txt")


def test_kitti_crop_resize_and_items(kitti_root):
    root, pairs = kitti_root
    ds = KittiStereo(root, split="train", pairs=pairs, captioner=lambda img: "a red car near two trees")
    assert len(ds) == 3
    item = ds[0]
    assert item["left"].shape == (3, 128, 256) and item["right"].shape == (3, 128, 256)
    assert "labels" not in item
    # the centre crop removed the red border entirely: only the blue centre is left
    x = (item["left"].numpy() * 255).round()
    assert x[0].max() <= 1 and abs(x[2].mean() - 100) < 1
    assert abs((item["right"].numpy() * 255)[2].mean() - 10) < 1
    assert item["caption"] == "a red car near two trees" and item["nouns"] == ["car", "tree"]
    # an (image_3, image_2) pair of the list is returned as listed, or swapped with order='left_right'
    assert "image_3" in ds[2]["paths"][0]
    lr = KittiStereo(root, split="train", pairs=pairs, order="left_right")
    assert len(lr) == 2 and all("image_2" in lr[i]["paths"][0] for i in range(2))  # duplicate pair dropped
    batch = collate([ds[0], ds[1]])
    assert batch["left"].shape == (2, 3, 128, 256) and len(batch["caption"]) == 2
    small = KittiStereo(root, pairs=pairs, size=(64, 128))[0]
    assert small["left"].shape == (3, 64, 128)


def test_kitti_errors_name_missing_paths(kitti_root, tmp_path):
    root, pairs = kitti_root
    with pytest.raises(FileNotFoundError, match="does not exist.*data_scene_flow_multiview"):
        KittiStereo(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="missing.*000000_11.png.*data_stereo_flow_multiview"):
        KittiStereo(root, split="val")
    with pytest.raises(ValueError, match="unknown order"):
        KittiStereo(root, pairs=pairs, order="random")
    with pytest.raises(ValueError, match="unknown split"):
        KittiStereo(root, split="training")
    (root / pairs[0][0]).write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        KittiStereo(root, pairs=pairs)[0]


def _cityscapes_tree(root, split="val", n=2, labels=True):
    rng = np.random.default_rng(0)
    for k in range(n):
        city, stem = "frankfurt", f"frankfurt_000000_{k:06d}"
        _png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
             rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
        _png(root / "rightImg8bit" / split / city / f"{stem}_rightImg8bit.png",
             rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
        if labels:
            lab = np.zeros((64, 128), np.uint8)
            lab[:, :64] = 26  # car
            lab[:, 64:] = 7  # road
            lab[:8] = 0  # unlabeled
            _png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", lab)


def test_cityscapes_items_and_labels(tmp_path):
    _cityscapes_tree(tmp_path)
    ds = CityscapesStereo(tmp_path, split="val")
    assert len(ds) == 2 and ds.has_labels
    item = ds[1]
    assert item["left"].shape == (3, 128, 256) and item["right"].shape == (3, 128, 256)
    lab = item["labels"].numpy()
    assert lab.shape == (128, 256) and lab.dtype == np.int64
    assert (lab[20:, :120] == 13).all() and (lab[20:, 136:] == 0).all() and (lab[:16] == 255).all()
    assert label_ids_to_train_ids(np.array([33, 4])).tolist() == [18, 255]


def test_cityscapes_without_gtfine_and_errors(tmp_path):
    _cityscapes_tree(tmp_path, split="train", labels=False)
    ds = CityscapesStereo(tmp_path, split="train")
    assert "labels" not in ds[0] and ds[0]["caption"] == ""
    with pytest.raises(FileNotFoundError, match="gtFine"):
        CityscapesStereo(tmp_path, split="train", labels=True)
    with pytest.raises(FileNotFoundError, match="leftImg8bit/val.*expected"):
        CityscapesStereo(tmp_path, split="val")
    with pytest.raises(ValueError, match="unknown split"):
        CityscapesStereo(tmp_path, split="extra")
    next((tmp_path / "rightImg8bit").rglob("*.png")).unlink()
    with pytest.raises(FileNotFoundError, match="missing.*rightImg8bit"):
        CityscapesStereo(tmp_path, split="train")
