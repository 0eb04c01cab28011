"""Oracle captions of the synthetic world: what the side view (right camera) shows.

A caption is written from the scene graph *and* the right view's instance map, as a
captioner looking at ``I_y`` would (MDIC Eq. 3 uses BLIP-2 on ``I_y``): only objects with
enough visible pixels in the right view are mentioned, with the colour they have *in the
right view* (an appearance change is therefore reported as seen, which is misleading
for the main view by design), their count and rough position ("on the left").

Example output: ``"a road in a city with a red car on the left, a grey building on the
right, two trees, a person in blue and a white fence under a cloudy sky"``.
"""

from __future__ import annotations

import numpy as np

from .scene import CLASS_ID, PLURALS, Scene

__all__ = ["describe_view", "min_visible_pixels"]

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}
# nouns whose colour the caption names (trees only when not green)
_COLOURED = {"car", "truck", "bus", "person", "bicycle", "sign", "fence", "bench", "building", "tree"}
_THINGS = ("car", "truck", "bus", "person", "bicycle", "sign", "traffic light", "bench", "pole",
           "tree", "bush", "fence", "building")
_SUBJECTS = ("car", "truck", "bus", "person", "bicycle")
_SKY_WORDS = {"sunny": "under a blue sky", "overcast": "under a cloudy sky", "dusk": "under an evening sky"}


def min_visible_pixels(height: int, width: int) -> int:
    """Pixels an object needs in the view to be mentioned (0.15 % of the image, ≥ 12)."""
    return max(12, int(round(0.0015 * height * width)))


def _plural(noun: str) -> str:
    return PLURALS.get(noun, noun + "s")


def _where(col: float, width: int) -> str:
    if col < width / 3:
        return "on the left"
    if col > 2 * width / 3:
        return "on the right"
    return "in the middle"


def _a(colour: str, noun: str) -> str:
    return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {noun}"


def _phrase(noun: str, items: list[tuple[int, str | None, float]], width: int,
            with_position: bool) -> tuple[str, list]:
    """Phrase for one noun group and the colour named for each item (None if not named).

    ``items``: (uid, colour or None, centroid column) of the visible instances, most
    visible first.
    """
    colours = [c for _, c, _ in items]
    n = len(items)
    none = [None] * n
    pos0 = f" {_where(items[0][2], width)}" if with_position else ""
    if noun == "person":
        if n == 1:
            return f"a person in {colours[0]}{pos0}", colours
        if n == 2 and colours[0] != colours[1]:
            return f"a person in {colours[0]} and a person in {colours[1]}", colours
        count = _NUMBERS.get(n, "several")
        if len(set(colours)) == 1:
            return f"{count} people in {colours[0]}", colours
        return f"{count} people", none
    if n == 1:
        c = colours[0]
        return (_a(c, noun) if c else f"a {noun}") + pos0, colours
    if n == 2 and colours[0] and colours[1] and colours[0] != colours[1]:
        return f"{_a(colours[0], noun)} and {_a(colours[1], noun)}", colours
    c = colours[0] if len(set(colours)) == 1 and colours[0] else None
    if c is None and colours[0]:  # the most visible one by its colour, then the rest
        rest = _NUMBERS.get(n - 1, "several")
        return f"{_a(colours[0], noun)}{pos0} and {rest} other {_plural(noun)}", [colours[0]] + none[1:]
    count = _NUMBERS.get(n, "several")
    mean_col = float(np.mean([it[2] for it in items]))
    pos = f" {_where(mean_col, width)}" if with_position else ""
    return f"{count} {c + ' ' if c else ''}{_plural(noun)}{pos}", (colours if c else none)


def _building_behind(instances: np.ndarray, uid: int, buildings: list, thr: int):
    """(uid, colour) of the building covering most of the columns of object ``uid`` above it."""
    rows, cols = np.nonzero(instances == uid)
    if rows.size == 0:
        return None
    region = instances[: rows.min(), cols.min(): cols.max() + 1]
    best, best_n = None, thr
    for b_uid, colour, _, _ in buildings:
        n = int((region == b_uid).sum())
        if n >= best_n and colour is not None:
            best, best_n = (b_uid, colour), n
    return best


def describe_view(scene: Scene, instances: np.ndarray, labels: np.ndarray, view: str = "right",
                  max_groups: int = 5) -> tuple[str, list[dict]]:
    """Caption of one rendered view of ``scene`` and the structured mentions behind it.

    Parameters
    ----------
    scene : Scene
    instances, labels : numpy.ndarray
        The view's instance-id and class-label maps (from :func:`~mdic_lab.data.render.render_view`).
    view : str
        Which view was rendered ('right' for the side view); selects object colours.
    max_groups : int
        At most this many object groups are mentioned (largest visible area first).

    Returns
    -------
    caption : str
    mentions : list of dict
        ``{"noun", "uids", "colours", "pixels"}`` per mentioned group (``colours[i]`` is
        the colour the caption names for ``uids[i]``, or None), so tests can check that
        each mentioned object is visible in the view with the named colour.
    """
    H, W = instances.shape
    thr = min_visible_pixels(H, W)
    flat = instances.ravel().astype(np.int64)
    n_ids = int(flat.max()) + 1 if flat.size else 1
    counts = np.bincount(flat, minlength=n_ids)
    cols = np.bincount(flat, weights=np.tile(np.arange(W, dtype=np.float64), H), minlength=n_ids)
    groups: dict[str, list[tuple[int, str | None, float, int]]] = {}
    for part in scene.all_parts():
        uid = part.uid
        if uid >= n_ids or counts[uid] < thr:
            continue
        noun = part.noun
        colour = part.colour_in(view)
        if noun not in _COLOURED or (noun == "tree" and colour == "green"):
            colour = None
        groups.setdefault(noun, []).append((uid, colour, cols[uid] / counts[uid], int(counts[uid])))
    order = sorted(groups, key=lambda k: (-sum(it[3] for it in groups[k]), k))
    order = [k for k in order if k in _THINGS][:max_groups]
    phrases, mentions = [], []
    related = False  # one "in front of a <colour> building" relation per caption at most
    for rank, noun in enumerate(order):
        items = sorted(groups[noun], key=lambda it: -it[3])
        if noun == "building" and len(items) > 3:
            items = items[:3]
        text, named = _phrase(noun, [(u, c, x) for u, c, x, _ in items], W, with_position=rank < 2)
        mentions.append({"noun": noun, "uids": [it[0] for it in items], "colours": named,
                         "pixels": [it[3] for it in items]})
        if not related and noun in _SUBJECTS and len(items) == 1 and "building" in groups:
            behind = _building_behind(instances, items[0][0], groups["building"], thr)
            if behind is not None:
                uid, colour = behind
                text += f" in front of {_a(colour, 'building')}"
                mentions.append({"noun": "building", "uids": [uid], "colours": [colour], "pixels": []})
                related = True
        phrases.append(text)
    lab_counts = np.bincount(labels.ravel(), minlength=32)
    has_buildings = lab_counts[CLASS_ID["building"]] > 0.08 * H * W
    has_grass = lab_counts[CLASS_ID["grass"]] >= thr
    has_sidewalk = lab_counts[CLASS_ID["sidewalk"]] >= thr
    lead = "a road in a city" if has_buildings else ("a road lined with trees" if "tree" in groups else "a road")
    extras = []
    if has_sidewalk and ("person" in order or "bench" in order):
        extras.append("a sidewalk")
    if has_grass:
        extras.append("green grass")
    for e in extras:
        mentions.append({"noun": e.split()[-1], "uids": [], "colours": [], "pixels": []})
    parts = phrases + extras
    body = ""
    if parts:
        body = " with " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])
    sky = ""
    if lab_counts[CLASS_ID["sky"]] >= thr:
        sky = " " + _SKY_WORDS[scene.lighting]
        mentions.append({"noun": "sky", "uids": [], "colours": [], "pixels": []})
    mentions.insert(0, {"noun": "road", "uids": [], "colours": [], "pixels": []})
    return lead + body + sky, mentions
