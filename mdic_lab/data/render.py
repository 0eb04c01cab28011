"""Rendering of a :class:`~mdic_lab.data.scene.Scene` from the left or the right camera.

The scene is turned into display lists — ground parameters, vertical planes (building
fronts, fences, end walls) and upright billboard objects made of primitives (rectangles,
ellipses, rings, thick segments, polygons) in the object's own metric coordinates — and
drawn by the compiled kernels of :mod:`mdic_lab.data.raster`. Objects are composited
far to near (painter's algorithm) with a z-test, so parallax (each object shifts by its
own disparity ``d = f B / Z``) and the occlusion changes between the views come out of
the geometry; nothing is warped in image space.
"""

from __future__ import annotations

import numpy as np

from . import raster
from .scene import CLASS_ID, COLOURS, Obj, Scene

__all__ = ["render_view", "render_pair", "VIEWS"]

VIEWS = ("left", "right")

_SKY = {  # top colour, horizon colour, surface gain (rgb), shadow factor, haze distance (m)
    "sunny": ((0.30, 0.52, 0.92), (0.72, 0.83, 0.97), (1.05, 1.02, 0.97), 0.50, 260.0),
    "overcast": ((0.60, 0.63, 0.68), (0.84, 0.85, 0.87), (0.88, 0.89, 0.92), 0.78, 140.0),
    "dusk": ((0.22, 0.22, 0.45), (0.96, 0.62, 0.38), (0.78, 0.64, 0.55), 0.62, 200.0),
}
_DARK = (0.06, 0.06, 0.07)
_GLASS = (0.10, 0.13, 0.18)
_WHITE = (0.94, 0.94, 0.92)


def _rgb(c):
    return COLOURS[c] if isinstance(c, str) else c


def _scale(rgb, k):
    return (k * rgb[0], k * rgb[1], k * rgb[2])


_NOTEX = (0.0, 1.0, 0.0)


class _Prims:
    """Collects primitive rows (see :data:`mdic_lab.data.raster.PRIM_COLS`)."""

    def __init__(self):
        self.rows: list[list[float]] = []

    def _add(self, kind, geo, rgb, tex=_NOTEX):
        row = [0.0] * raster.PRIM_COLS
        row[0] = kind
        row[1:1 + len(geo)] = geo
        row[15:18] = _rgb(rgb)
        row[18:21] = tex
        self.rows.append(row)

    def rect(self, p0, p1, y0, y1, rgb, tex=_NOTEX):
        self._add(raster.RECT, (p0, p1, y0, y1), rgb, tex)

    def ellipse(self, pc, yc, rp, ry, rgb, tex=_NOTEX):
        self._add(raster.ELLIPSE, (pc, yc, rp, ry), rgb, tex)

    def ellipse_above(self, pc, yc, rp, ry, ymin, rgb):
        self._add(raster.ELLIPSE_ABOVE, (pc, yc, rp, ry, ymin), rgb)

    def ring(self, pc, yc, r_out, r_in, rgb):
        self._add(raster.RING, (pc, yc, r_out, r_in), rgb)

    def seg(self, a, b, r, rgb):
        self._add(raster.SEG, (a[0], a[1], b[0], b[1], r), rgb)

    def poly(self, pts, rgb):
        if len(pts) > 6:
            raise ValueError(f"polygon with {len(pts)} vertices (expected at most 6)")
        self._add(raster.POLY, (len(pts), *[c for pt in pts for c in pt]), rgb)


# ------------------------------- object painters ---------------------------------------
# Each painter emits primitives in object coordinates: p metres right of the centre,
# y metres above the ground. Later primitives cover earlier ones.

def _car(d, o, colour, facing):
    w, h = o.w, o.h
    body = _rgb(colour)
    d.rect(-w / 2 + 0.12, -w / 2 + 0.38, 0, 0.36, _DARK)
    d.rect(w / 2 - 0.38, w / 2 - 0.12, 0, 0.36, _DARK)
    d.poly([(-w / 2, 0.2), (w / 2, 0.2), (w / 2, 0.56 * h), (w / 2 - 0.1, 0.62 * h),
            (-w / 2 + 0.1, 0.62 * h), (-w / 2, 0.56 * h)], body)
    d.poly([(-w / 2 + 0.12, 0.6 * h), (w / 2 - 0.12, 0.6 * h), (w / 2 - 0.32, h), (-w / 2 + 0.32, h)],
           _scale(body, 0.92))
    glass = tuple(g + 0.12 * c for g, c in zip(_GLASS, body))
    d.poly([(-w / 2 + 0.24, 0.65 * h), (w / 2 - 0.24, 0.65 * h), (w / 2 - 0.38, 0.95 * h),
            (-w / 2 + 0.38, 0.95 * h)], glass)
    d.rect(-w / 2, w / 2, 0.18, 0.3, _scale(_DARK, 2.2))
    if facing == "rear":
        d.rect(-w / 2 + 0.04, -w / 2 + 0.3, 0.44 * h, 0.53 * h, (0.85, 0.08, 0.06))
        d.rect(w / 2 - 0.3, w / 2 - 0.04, 0.44 * h, 0.53 * h, (0.85, 0.08, 0.06))
    else:
        d.rect(-0.35, 0.35, 0.3, 0.45 * h, _scale(_DARK, 2.5))
        d.ellipse(-w / 2 + 0.25, 0.42 * h, 0.16, 0.06, (0.95, 0.93, 0.80))
        d.ellipse(w / 2 - 0.25, 0.42 * h, 0.16, 0.06, (0.95, 0.93, 0.80))
    d.rect(-0.24, 0.24, 0.32, 0.44, (0.92, 0.92, 0.88))


def _truck(d, o, colour, facing):
    w, h = o.w, o.h
    body = _rgb(colour)
    d.rect(-w / 2 + 0.1, -w / 2 + 0.5, 0, 0.5, _DARK)
    d.rect(w / 2 - 0.5, w / 2 - 0.1, 0, 0.5, _DARK)
    d.rect(-w / 2, w / 2, 0.45, h, body)
    d.rect(-w / 2, w / 2, 0.35, 0.55, _scale(_DARK, 2.5))
    if facing == "rear":
        d.rect(-0.03, 0.03, 0.6, h - 0.1, _scale(body, 0.6))
        d.rect(-w / 2 + 0.05, -w / 2 + 0.3, 0.6, 0.75, (0.85, 0.08, 0.06))
        d.rect(w / 2 - 0.3, w / 2 - 0.05, 0.6, 0.75, (0.85, 0.08, 0.06))
    else:
        d.rect(-w / 2 + 0.15, w / 2 - 0.15, 0.62 * h, 0.9 * h, (0.12, 0.16, 0.22))
        d.rect(-w / 2 + 0.1, -w / 2 + 0.45, 0.62, 0.78, (0.95, 0.93, 0.8))
        d.rect(w / 2 - 0.45, w / 2 - 0.1, 0.62, 0.78, (0.95, 0.93, 0.8))


def _bus(d, o, colour, facing):
    w, h = o.w, o.h
    d.rect(-w / 2 + 0.1, -w / 2 + 0.5, 0, 0.45, _DARK)
    d.rect(w / 2 - 0.5, w / 2 - 0.1, 0, 0.45, _DARK)
    d.rect(-w / 2, w / 2, 0.3, h, _rgb(colour))
    lo, hi = (0.62, 0.9) if facing == "rear" else (0.45, 0.9)
    d.rect(-w / 2 + 0.12, w / 2 - 0.12, lo * h, hi * h, (0.1, 0.13, 0.18))
    d.rect(-0.7, 0.7, 0.92 * h, 0.98 * h, (0.95, 0.55, 0.1))
    lamp = (0.85, 0.08, 0.06) if facing == "rear" else (0.95, 0.93, 0.8)
    d.rect(-w / 2 + 0.05, -w / 2 + 0.3, 0.5, 0.75, lamp)
    d.rect(w / 2 - 0.3, w / 2 - 0.05, 0.5, 0.75, lamp)


def _person(d, o, colour, _facing):
    h = o.h
    st = o.params.get("stride", 0.0)
    skin = o.params.get("skin", 0.7)
    skin_rgb = (0.95 * skin + 0.25 * (1 - skin), 0.76 * skin + 0.15 * (1 - skin), 0.62 * skin + 0.1 * (1 - skin))
    trousers = _rgb(o.params.get("trousers", "blue"))
    shirt = _rgb(colour)
    d.rect(-0.16 + st, -0.015 + st, 0.0, 0.48 * h, trousers)
    d.rect(0.015 - st, 0.16 - st, 0.0, 0.48 * h, trousers)
    d.rect(-0.18 + st, -0.01 + st, 0.0, 0.035 * h, (0.1, 0.08, 0.07))
    d.rect(0.01 - st, 0.18 - st, 0.0, 0.035 * h, (0.1, 0.08, 0.07))
    d.poly([(-0.19, 0.46 * h), (0.19, 0.46 * h), (0.22, 0.8 * h), (-0.22, 0.8 * h)], shirt)
    d.rect(-0.29, -0.2, 0.5 * h, 0.79 * h, _scale(shirt, 0.85))
    d.rect(0.2, 0.29, 0.5 * h, 0.79 * h, _scale(shirt, 0.85))
    d.ellipse(-0.245, 0.48 * h, 0.05, 0.04, skin_rgb)
    d.ellipse(0.245, 0.48 * h, 0.05, 0.04, skin_rgb)
    d.rect(-0.05, 0.05, 0.79 * h, 0.84 * h, _scale(skin_rgb, 0.9))
    d.ellipse(0.0, h - 0.115, 0.1, 0.115, skin_rgb)
    hair = _scale((0.25, 0.17, 0.1), 0.3 + 2 * o.params.get("hair", 0.2))
    d.ellipse_above(0.0, h - 0.09, 0.105, 0.09, h - 0.1, hair)


def _bicycle(d, o, colour, _facing):
    r = 0.33
    for pc in (-0.52, 0.52):
        d.ring(pc, r, r, r - 0.05, (0.05, 0.05, 0.05))
        d.seg((pc - r, r), (pc + r, r), 0.012, (0.3, 0.3, 0.3))
        d.seg((pc, 0.0), (pc, 2 * r), 0.012, (0.3, 0.3, 0.3))
    A, B, S, Hd, F = (-0.52, r), (0.0, 0.3), (-0.12, 0.78), (0.38, 0.8), (0.52, r)
    for a, b in ((A, B), (A, S), (S, B), (S, Hd), (B, Hd), (Hd, F)):
        d.seg(a, b, 0.035, _rgb(colour))
    d.seg(Hd, (0.3, 0.98), 0.03, (0.05, 0.05, 0.05))
    d.seg((-0.24, 0.83), (-0.02, 0.83), 0.035, (0.05, 0.05, 0.05))


def _tree(d, o, colour, _facing):
    w, h = o.w, o.h
    t = o.params.get("trunk", 0.25)
    n, seed = o.params.get("blobs", 4), o.params.get("seed", 0.0)
    d.rect(-t / 2, t / 2, 0.0, 0.55 * h, (0.33, 0.22, 0.13))
    leaf = _scale(_rgb(colour), 0.75 * o.params.get("tone", 1.0))
    tex = (1.0, 0.22, float(int(seed * 100)))
    for k in range(n):
        pc = (k - (n - 1) / 2) / max(n, 1) * 0.75 * w + 0.08 * w * np.sin(seed + 1.7 * k)
        yc = 0.66 * h + 0.12 * h * np.cos(seed * 1.3 + 2.1 * k)
        d.ellipse(pc, yc, 0.2 * w, 0.18 * h, leaf, tex)
    d.ellipse(0.0, 0.74 * h, 0.3 * w, 0.24 * h, leaf, tex)


def _bush(d, o, colour, _facing):
    w, h = o.w, o.h
    n, seed = o.params.get("blobs", 3), o.params.get("seed", 0.0)
    leaf = _scale(_rgb(colour), 0.6 * o.params.get("tone", 1.0))
    for k in range(n):
        pc = (k - (n - 1) / 2) / max(n, 1) * 0.8 * w
        d.ellipse(pc, 0.45 * h + 0.1 * h * np.sin(seed + k), 0.32 * w, 0.5 * h, leaf, (1.0, 0.25, float(int(seed * 100))))


def _pole(d, o, colour, _facing):
    h, arm = o.h, o.params.get("arm", 1)
    c = _scale(_rgb(colour), 0.8)
    d.rect(-0.09, 0.09, 0.0, h, c)
    d.seg((0.0, h - 0.35), (arm * 1.4, h - 0.1), 0.05, c)
    d.ellipse(arm * 1.5, h - 0.18, 0.28, 0.09, (0.88, 0.87, 0.78))


def _sign(d, o, colour, _facing):
    h = o.h
    c = _rgb(colour)
    d.rect(-0.035, 0.035, 0.0, h - 0.3, (0.55, 0.56, 0.58))
    shape, yc = o.params.get("shape", "disc"), h - 0.35
    if shape == "disc":
        d.ellipse(0.0, yc, 0.34, 0.34, c)
        if colour == "red":
            d.ellipse(0.0, yc, 0.24, 0.24, _WHITE)
    elif shape == "triangle":
        d.poly([(-0.37, yc - 0.3), (0.37, yc - 0.3), (0.0, yc + 0.34)], c)
        d.poly([(-0.24, yc - 0.22), (0.24, yc - 0.22), (0.0, yc + 0.18)], _WHITE)
    else:
        d.rect(-0.33, 0.33, yc - 0.33, yc + 0.33, _WHITE)
        d.rect(-0.29, 0.29, yc - 0.29, yc + 0.29, c)


def _traffic_light(d, o, colour, _facing):
    h = o.h
    d.rect(-0.06, 0.06, 0.0, h - 0.9, (0.25, 0.26, 0.27))
    d.rect(-0.19, 0.19, h - 1.0, h, _scale(_rgb(colour), 0.8))
    lit = o.params.get("lit", 0)
    for k, lamp in enumerate(((0.95, 0.12, 0.1), (0.98, 0.75, 0.1), (0.15, 0.9, 0.3))):
        d.ellipse(0.0, h - 0.17 - 0.32 * k, 0.11, 0.11, _scale(lamp, 1.0 if k == lit else 0.3))


def _bench(d, o, colour, _facing):
    w = o.w
    c = _rgb(colour)
    dark = (0.15, 0.15, 0.16)
    d.rect(-w / 2 + 0.1, -w / 2 + 0.18, 0, 0.45, dark)
    d.rect(w / 2 - 0.18, w / 2 - 0.1, 0, 0.45, dark)
    d.rect(-w / 2, w / 2, 0.4, 0.48, c)
    d.rect(-w / 2, w / 2, 0.58, 0.66, _scale(c, 0.9))
    d.rect(-w / 2, w / 2, 0.74, 0.82, _scale(c, 0.9))
    d.rect(-w / 2 + 0.1, -w / 2 + 0.16, 0.45, 0.85, dark)
    d.rect(w / 2 - 0.16, w / 2 - 0.1, 0.45, 0.85, dark)


_PAINTERS = {
    "car": _car, "truck": _truck, "bus": _bus, "person": _person, "bicycle": _bicycle,
    "tree": _tree, "bush": _bush, "pole": _pole, "sign": _sign, "traffic light": _traffic_light,
    "bench": _bench,
}


def _extent(o: Obj):
    """Horizontal extent (metres, relative to the centre) of an object's drawing."""
    if o.noun == "pole":
        return -1.85, 1.85
    return -o.w / 2, o.w / 2


def _visible(o: Obj, cam, x):
    """Does the object's drawing box overlap the frame of a camera at ``X = x``?"""
    e0, e1 = _extent(o)
    s = cam.focal / o.z
    if o.z <= 0.5:
        return False
    margin = cam.focal * cam.baseline / o.z + abs(o.dx_right) * s + 1  # either view, either position
    return (cam.cx + (o.x + e0 - x) * s < cam.width + margin and cam.cx + (o.x + e1 - x) * s > -margin
            and cam.focal * o.h / o.z > 0.7)


def _object_lists(scene: Scene):
    """Objects (skyline first, then far to near) as ``objs_left``, ``objs_right``, ``prims``.

    Both views share the primitive array; only objects with a right-view colour change
    get a second set of primitives.
    """
    d = _Prims()
    left, right = [], []
    zs = scene.skyline_z
    lab_sky = CLASS_ID["tree"] if scene.treeline else CLASS_ID["building"]
    for (x0, x1, hgt, rgb) in scene.skyline:
        start = len(d.rows)
        col = tuple(c * k for c, k in zip(rgb, (0.55, 0.8, 0.55))) if scene.treeline else rgb
        if scene.treeline:
            for k in range(3):
                d.ellipse((k - 1) * (x1 - x0) / 3, 0.55 * hgt, (x1 - x0) / 3, 0.5 * hgt, col)
        else:
            d.rect(-(x1 - x0) / 2, (x1 - x0) / 2, 0.0, hgt, col)
        row = [(x0 + x1) / 2, zs, -(x1 - x0) / 2 - 1, (x1 - x0) / 2 + 1, hgt + 1, lab_sky, 2,
               start, len(d.rows), 0.0, hgt]
        left.append(row)
        right.append(row)
    cam = scene.camera
    for o in sorted(scene.objects, key=lambda q: -q.z):
        if not _visible(o, cam, 0.0):
            continue
        e0, e1 = _extent(o)
        yoff = 0.38 if o.params.get("riding") else 0.0
        start = len(d.rows)
        _PAINTERS[o.noun](d, o, o.colour, o.params.get("facing", "rear"))
        row = [o.x, o.z, e0, e1, o.h + yoff, o.label, o.uid, start, len(d.rows), yoff, o.h]
        left.append(row)
        row = list(row)
        row[0] = o.x + o.dx_right
        if o.colour_right is not None:
            row[7] = len(d.rows)
            _PAINTERS[o.noun](d, o, o.colour_right, o.params.get("facing", "rear"))
            row[8] = len(d.rows)
        right.append(row)
    prims = np.asarray(d.rows, np.float64).reshape(-1, raster.PRIM_COLS)
    return np.asarray(left, np.float64).reshape(-1, 11), np.asarray(right, np.float64).reshape(-1, 11), prims


def _plane_list(scene: Scene):
    rows = []
    sunny = scene.lighting == "sunny"
    for fa in sorted(scene.facades, key=lambda q: q.z0):  # near first: the z-test culls the rest
        shade = (1.0 if fa.side < 0 else 0.82) if sunny else (0.95 if fa.side < 0 else 0.9)
        base = _scale(_rgb(fa.colour), shade)
        win = _scale(fa.window_colour, shade)
        rows.append([raster.FACADE, fa.x, fa.z0, fa.z1, fa.h, *base, *win, fa.floor_h, fa.window_spacing,
                     fa.window_w, fa.uid, CLASS_ID["building"], fa.x])
        if fa.z0 > 0.8:  # front end wall at Z = z0, from the facade away from the road
            xa, xb = sorted((fa.x, fa.x + fa.side * fa.depth))
            rows.append([raster.END_WALL, xa, fa.z0, xb, fa.h, *base, *win, fa.floor_h, fa.window_spacing,
                         fa.window_w, fa.uid, CLASS_ID["building"], fa.x])
    for fe in scene.fences:
        kind = raster.FENCE_PICKETS if fe.style == "pickets" else raster.FENCE_RAILS
        rows.append([kind, fe.x, fe.z0, fe.z1, fe.h, *_rgb(fe.colour), 0, 0, 0, 1, 1, 1, fe.uid,
                     CLASS_ID["fence"], fe.x])
    return np.asarray(rows, np.float64).reshape(-1, 17)


def render_view(scene: Scene, view: str, _lists=None):
    """Render ``scene`` from the ``'left'`` (main, ``I_x``) or ``'right'`` (side, ``I_y``) camera.

    Returns
    -------
    dict
        ``image`` float32 (H, W, 3) in [0, 1] and ``image_u8`` (the same rounded to
        uint8); ``labels`` uint8 (H, W) class ids of
        :data:`~mdic_lab.data.scene.CLASS_NAMES`; ``instances`` int32 (H, W) (0 sky,
        1 ground, 2 skyline, else the part's ``uid``); ``depth`` float32 (H, W) in metres
        (``inf`` for the sky); ``patch`` float32 (H, W) weight of the right-view light
        patch (zeros in the left view).
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r} (expected one of: {', '.join(VIEWS)})")
    cam = scene.camera
    H, W, f, cx, vh, hc = cam.height, cam.width, float(cam.focal), float(cam.cx), float(cam.horizon), float(cam.cam_height)
    xcam = 0.0 if view == "left" else float(cam.baseline)
    uu = np.arange(W, dtype=np.float32) + 0.5
    vv = np.arange(H, dtype=np.float32) + 0.5
    sky_top, sky_hor, gain, shadow_k, haze_d = _SKY[scene.lighting]
    sky_top, sky_hor = np.asarray(sky_top, np.float32), np.asarray(sky_hor, np.float32)

    img = np.empty((H, W, 3), np.float32)
    lab = np.zeros((H, W), np.uint8)
    inst = np.zeros((H, W), np.int32)
    depth = np.full((H, W), np.inf, np.float32)

    # 1. sky (at infinity: identical in both views) with clouds
    raster.sky(img, vh, sky_top.astype(np.float64), sky_hor.astype(np.float64))
    for (cu, cvv, ru, rv) in scene.clouds:
        r0, r1 = max(0, int(cvv - rv)), min(H, int(cvv + rv) + 1)
        c0, c1 = max(0, int(cu - ru)), min(W, int(cu + ru) + 1)
        if r0 < r1 and c0 < c1:
            u, v = uu[None, c0:c1], vv[r0:r1, None]
            m = ((u - cu) / ru) ** 2 + ((v - cvv) / rv) ** 2 <= 1
            m |= ((u - cu + 0.4 * ru) / (0.6 * ru)) ** 2 + ((v - cvv - 0.3 * rv) / (0.7 * rv)) ** 2 <= 1
            img[r0:r1, c0:c1][m] = 0.55 * img[r0:r1, c0:c1][m] + 0.45 * 0.97

    # 2. ground plane (road, lane markings, sidewalks, grass, shadows)
    g0 = max(int(np.floor(vh + 0.5)), 0)
    t_ = scene.road_tone
    swc = np.asarray(scene.sidewalk_colour, np.float64)
    palette = np.stack([np.array([t_, t_, t_ * 1.04]), swc, np.minimum(swc * 1.2, 1.0), swc * 0.9,
                        np.array([0.24, 0.44, 0.14])])
    labels = np.array([CLASS_ID["road"], CLASS_ID["sidewalk"], CLASS_ID["sidewalk"], CLASS_ID["sidewalk"],
                       CLASS_ID["grass"]], np.uint8)
    n_lanes = int(round(scene.road_width / scene.lane_width))
    road = np.array([scene.road_centre, scene.road_width, scene.lane_width, n_lanes,
                     n_lanes // 2 if scene.centre_line == "yellow" else -1, scene.sidewalk[0], scene.sidewalk[1],
                     scene.outer_ground[0] == "grass", scene.outer_ground[1] == "grass"], np.float64)
    shadows = []
    for o in scene.objects:
        if o.noun in ("car", "truck", "bus", "person", "bench"):
            ox = o.x + (o.dx_right if view == "right" else 0.0)
            length = 0.4 if o.noun == "person" else 1.2
            shadows.append([ox - o.w / 2 - 0.1, ox + o.w / 2 + 0.1, o.z - 0.15, o.z + length])
    shadows = np.asarray(shadows, np.float64).reshape(-1, 4)
    raster.draw_ground(img, lab, inst, depth, g0, f, cx, vh, hc, xcam, road, palette, labels, shadows,
                       float(shadow_k))

    # 3. building fronts, end walls, fences; 4. objects far to near (painter + z-test)
    planes, objs_l, objs_r, prims = _lists if _lists is not None else _display_lists(scene)
    objs = objs_l if view == "left" else objs_r
    raster.draw_planes(img, lab, inst, depth, f, cx, vh, hc, xcam, planes)
    raster.draw_objects(img, lab, inst, depth, f, cx, vh, hc, xcam, objs, prims)

    # 5. lighting gain, haze, right-camera exposure and its light patch
    patch = np.zeros((H, W), np.float32)
    ellipse, patch_gain, view_gain = np.zeros(4), np.ones(3), np.ones(3)
    if view == "right":
        view_gain = np.asarray(scene.right_gain, np.float64)
        lp = scene.light_patch
        if lp is not None:
            ellipse = np.array([lp.u, lp.v, lp.ru, lp.rv], np.float64)
            patch_gain = np.asarray(lp.gain, np.float64)
    out8 = np.empty((H, W, 3), np.uint8)
    raster.finish(img, out8, depth, np.asarray(gain, np.float64), sky_hor.astype(np.float64), float(haze_d),
                  view_gain, patch, ellipse, patch_gain)
    return {"image": img, "image_u8": out8, "labels": lab, "instances": inst, "depth": depth, "patch": patch}


def _display_lists(scene: Scene):
    return (_plane_list(scene), *_object_lists(scene))


def render_pair(scene: Scene):
    """Render both views; returns ``(left, right)`` dicts as :func:`render_view`."""
    lists = _display_lists(scene)
    return render_view(scene, "left", lists), render_view(scene, "right", lists)
