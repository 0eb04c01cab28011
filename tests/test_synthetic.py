"""The synthetic stereo world: determinism, shapes, stereo geometry, captions, cache, speed."""

import time

import numpy as np
import pytest
import torch

from mdic_lab.data import synthetic as syn
from mdic_lab.data.describe import min_visible_pixels
from mdic_lab.data.scene import CLASS_ID, CLASS_NAMES
from mdic_lab.data.synthetic import SyntheticStereo, collate, generate_sample


@pytest.fixture(scope="module")
def samples():
    return [generate_sample("train", 0, i) for i in range(24)]


def test_unknown_split_lists_expected():
    with pytest.raises(ValueError, match="unknown split 'training'.*train, val, test"):
        SyntheticStereo("training")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="size"):
        SyntheticStereo("val", size=(128,))
    with pytest.raises(ValueError, match="length"):
        SyntheticStereo("val", length=0)
    with pytest.raises(IndexError, match="out of range"):
        SyntheticStereo("val", length=2, cache=False)[2]


def test_default_split_sizes_match_kitti():
    assert [len(SyntheticStereo(s, cache=False)) for s in ("train", "val", "test")] == [1576, 50, 790]


def test_deterministic_from_split_seed_index():
    a, b = generate_sample("val", 3, 5), generate_sample("val", 3, 5)
    assert a.left.tobytes() == b.left.tobytes() and a.right.tobytes() == b.right.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes() and a.caption == b.caption
    for other in (generate_sample("val", 3, 6), generate_sample("val", 4, 5), generate_sample("test", 3, 5)):
        assert other.left.tobytes() != a.left.tobytes()


def test_item_shapes_dtypes_ranges(tmp_path):
    ds = SyntheticStereo("val", length=3, cache_dir=tmp_path)
    item = ds[1]
    for k in ("left", "right"):
        assert item[k].shape == (3, 128, 256) and item[k].dtype == torch.float32
        assert 0.0 <= float(item[k].min()) and float(item[k].max()) <= 1.0
    assert item["labels"].shape == (128, 256) and item["labels"].dtype == torch.int64
    assert 0 <= int(item["labels"].min()) and int(item["labels"].max()) < len(CLASS_NAMES)
    assert isinstance(item["caption"], str) and item["caption"]
    assert all(isinstance(n, str) for n in item["nouns"]) and item["nouns"]
    assert item["side_valid"].dtype == torch.bool
    small = SyntheticStereo("val", size=(64, 128), length=1, cache=False)[0]
    assert small["left"].shape == (3, 64, 128) and small["labels"].shape == (64, 128)


def test_views_share_most_content_but_not_all(samples):
    for s in samples[:8]:
        assert 0.55 < s.side_valid.mean() < 0.995
        assert np.abs(s.left.astype(int) - s.right.astype(int)).mean() > 1.0  # not identical


def test_right_view_is_left_view_shifted_by_depth_dependent_disparity(samples):
    """Warp by d = f B / Z of each right pixel: labels agree, and a single global shift cannot."""
    for s in samples[:6]:
        cam = s.scene.camera
        z = s.depth_right
        d = np.where(np.isfinite(z), cam.focal * cam.baseline / np.where(np.isfinite(z), z, 1), 0.0)
        H, W = z.shape
        ul = np.floor(np.arange(W)[None, :] + 0.5 + d).astype(int)
        ok = ul < W
        rows = np.broadcast_to(np.arange(H)[:, None], (H, W))
        agree = (s.labels[rows[ok], ul[ok]] == s.labels_right[ok]).mean()
        assert agree > 0.93
        best_global = max((s.labels[:, k:] == s.labels_right[:, : W - k]).mean() for k in range(0, 40))
        assert agree > best_global
        # pixel colours agree too where the side view is marked consistent
        diff = np.abs(s.left[rows[ok], ul[ok]].astype(float) - s.right[ok].astype(float)).mean(-1)
        assert np.median(diff[s.side_valid[ok]]) < 12


def test_object_shift_equals_f_b_over_z(samples):
    shifts, inv_z = [], []
    for s in samples:
        cam = s.scene.camera
        for o in s.scene.objects:
            if o.dx_right or o.z > 40:
                continue
            ml, mr = s.instances_left == o.uid, s.instances_right == o.uid
            if ml.sum() < 40 or ml.sum() != mr.sum():
                continue
            cl, cr = np.nonzero(ml.any(0))[0], np.nonzero(mr.any(0))[0]
            if cl[0] == 0 or cl[-1] == cam.width - 1 or cr[0] == 0:
                continue
            shifts.append(cl.mean() - cr.mean())
            inv_z.append(cam.focal * cam.baseline / o.z)
    shifts, expected = np.array(shifts), np.array(inv_z)
    assert len(shifts) > 20
    assert np.abs(shifts - expected).max() < 1.5
    assert np.corrcoef(shifts, expected)[0, 1] > 0.99 and expected.max() / expected.min() > 3


def test_captions_name_visible_right_view_objects_and_their_colours(samples):
    thr = min_visible_pixels(128, 256)
    for s in samples:
        parts = {p.uid: p for p in s.scene.all_parts()}
        counts = np.bincount(s.instances_right.ravel(), minlength=max(parts) + 1)
        for m in s.mentions:
            for uid, colour in zip(m["uids"], m["colours"]):
                assert counts[uid] >= thr, (s.caption, m)
                assert parts[uid].noun == m["noun"]
                if colour is not None:
                    assert colour == parts[uid].colour_in("right") and colour in s.caption
        label_counts = np.bincount(s.labels_right.ravel(), minlength=len(CLASS_NAMES))
        for noun in s.nouns:
            assert noun in CLASS_ID and label_counts[CLASS_ID[noun]] > 0, (noun, s.caption)


def test_caption_colours_inform_the_main_view(samples):
    """What the caption names about I_y is mostly true of I_x: the text is side information."""
    thr = min_visible_pixels(128, 256)
    true_in_left, total = 0, 0
    for s in samples:
        parts = {p.uid: p for p in s.scene.all_parts()}
        counts_left = np.bincount(s.instances_left.ravel(), minlength=max(parts) + 1)
        for m in s.mentions:
            for uid, colour in zip(m["uids"], m["colours"]):
                if colour is None:
                    continue
                total += 1
                true_in_left += counts_left[uid] >= thr and parts[uid].colour_in("left") == colour
    assert total > 50 and 0.8 < true_in_left / total < 1.0  # mostly true, not always (the mask's job)


def test_captions_method_matches_items(tmp_path):
    ds = SyntheticStereo("val", length=3, cache_dir=tmp_path)
    assert ds.captions() == [ds[i]["caption"] for i in range(3)]


def test_discrepancies_are_marked_and_documented(samples):
    seen = {"mover": 0, "appearance_change": 0, "light_patch": 0, "border_intruder": 0}
    for s in samples:
        ph = s.scene.phenomena
        for kind in seen:
            seen[kind] += bool(ph[kind])
        for uid in ph["mover"] + ph["appearance_change"]:
            assert not s.side_valid[s.instances_right == uid].any()
        for uid in ph["border_intruder"]:
            o = next(o for o in s.scene.objects if o.uid == uid)
            assert (s.instances_right == uid).sum() > (s.instances_left == uid).sum()
            assert o.z < 10
    assert all(v > 0 for v in seen.values()), seen


def test_appearance_change_differs_between_views():
    for i in range(40):
        s = generate_sample("train", 1, i)
        for uid in s.scene.phenomena["appearance_change"]:
            o = next(o for o in s.scene.objects if o.uid == uid)
            assert o.colour_right != o.colour
            ml, mr = s.instances_left == uid, s.instances_right == uid
            if ml.sum() > 200 and mr.sum() > 200:
                assert np.abs(s.left[ml].mean(0) - s.right[mr].mean(0)).max() > 15
                return
    pytest.skip("no visible appearance change in the first 40 scenes")


def test_cache_round_trip_and_version_check(tmp_path, monkeypatch):
    ds = SyntheticStereo("val", length=3, cache_dir=tmp_path)
    first = ds[2]
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1 and f"v{syn.GENERATOR_ID}" in str(files[0])
    fresh = SyntheticStereo("val", length=3, cache=False)[2]
    for k in ("left", "right", "labels", "side_valid"):
        assert torch.equal(first[k], fresh[k])
    assert first["caption"] == fresh["caption"] and first["nouns"] == fresh["nouns"]

    def boom(*a, **k):
        raise AssertionError("generated although cached")

    monkeypatch.setattr(syn, "generate_sample", boom)
    again = SyntheticStereo("val", length=3, cache_dir=tmp_path)[2]
    assert torch.equal(again["left"], first["left"])
    monkeypatch.undo()
    # an old-version chunk and a corrupted chunk are both regenerated
    with np.load(files[0]) as z:
        data = {k: z[k] for k in z.files}
    data["version"] = np.asarray("0-oldgenerator")
    np.savez_compressed(files[0], **data)
    assert torch.equal(SyntheticStereo("val", length=3, cache_dir=tmp_path)[0]["left"], fresh_left(0))
    with np.load(files[0]) as z:
        assert str(z["version"]) == syn.GENERATOR_ID
    files[0].write_bytes(b"not an npz")
    assert torch.equal(SyntheticStereo("val", length=3, cache_dir=tmp_path)[0]["left"], fresh_left(0))


def fresh_left(i):
    return SyntheticStereo("val", length=3, cache=False)[i]["left"]


def test_collate_batches_with_dataloader(tmp_path):
    ds = SyntheticStereo("val", length=4, cache_dir=tmp_path)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)))
    assert batch["left"].shape == (3, 3, 128, 256) and batch["labels"].shape == (3, 128, 256)
    assert len(batch["caption"]) == 3 and isinstance(batch["nouns"][0], list)


def test_generation_speed():
    generate_sample("test", 0, 0)  # load the compiled kernels
    n = 30
    t = time.process_time()
    for i in range(n):
        generate_sample("test", 0, i)
    rate = n / (time.process_time() - t)
    assert rate >= 50, f"{rate:.1f} pairs/s of CPU time"


def test_pair_grid_picture(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from mdic_lab.data.preview import pair_grid

    ds = SyntheticStereo("val", length=2, cache=False)
    fig = pair_grid([ds[0], ds[1]], tmp_path / "grid.png", show_valid=True)
    assert len(fig.axes) == 4 and ds[0]["caption"][:40] in fig.axes[0].texts[0].get_text().replace("\n", " ")
    assert Image.open(tmp_path / "grid.png").size[0] > 500
    with pytest.raises(ValueError, match="at least one item"):
        pair_grid([])
