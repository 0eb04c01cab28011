"""Scene graphs of the synthetic stereo street world.

A scene is a small 3-D street: a ground plane (road with lane markings, sidewalks,
grass), building facades along the road, a far skyline, and upright objects (cars,
trucks, buses, people, bicycles, trees, bushes, poles, signs, traffic lights, benches,
fences) standing on the ground at a depth ``Z``. Two pinhole cameras at the same height
look down the road: the *left* camera (the main view ``I_x``, at ``X = 0``) and the
*right* camera (the side view ``I_y``, at ``X = baseline``). A world point at depth
``Z`` is seen ``d = f B / Z`` pixels further left in the right view (the stereo
disparity, rectified cameras), so near objects shift more than far ones and parallax
changes occlusions.

World coordinates: ``X`` to the right, ``Y`` up (ground at ``Y = 0``), ``Z`` forward.
Defaults follow KITTI at 128x256 after NDIC's crop (370x740 → 128x256): focal length
``f ≈ 0.974 W`` pixels (721 px · 256/740), baseline 0.54 m, camera height 1.65 m.

The scene also records what makes the side view *partly irrelevant or misleading* for
the main view — the regions the MDIC visual mask ``m_v`` should learn to suppress
(MDIC Sec. 3.2–3.3, Eqs. 8, 13–14):

* **border content** — the strip of width ``d`` at the right border of the right view
  shows world the left camera never saw; ``border_intruder`` objects are placed there on
  purpose (a person, pole, sign or bicycle close to the cameras);
* **movers** — one person/bicycle/car moved sideways between the two exposures
  (``Obj.dx_right`` metres), so its right-view position disagrees with the disparity;
* **appearance changes** — one object has another colour in the right view
  (``Obj.colour_right``; e.g. a reflection or a different object), and the caption,
  which describes the right view, names that colour;
* **light patch** — a glare or shadow patch only in the right view (``LightPatch``);
* occlusion changes from parallax (always present, not scripted).

Everything is drawn from one ``numpy.random.Generator`` so a scene is a pure function
of the generator state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "CLASS_ID",
    "COLOURS",
    "PLURALS",
    "Camera",
    "Obj",
    "Facade",
    "Fence",
    "LightPatch",
    "Scene",
    "sample_scene",
]

#: Semantic classes of the label maps (index = class id). Every one is an object noun of
#: the captions, so the vocabulary of a split can reach the paper's N = 14 nouns.
CLASS_NAMES: tuple[str, ...] = (
    "sky", "road", "sidewalk", "grass", "building", "tree", "bush", "car", "truck",
    "bus", "person", "bicycle", "pole", "sign", "traffic light", "fence", "bench",
)
CLASS_ID: dict[str, int] = {n: i for i, n in enumerate(CLASS_NAMES)}

#: Plural forms used by the captions (and recognised by the vocabulary).
PLURALS: dict[str, str] = {
    "person": "people", "bus": "buses", "bush": "bushes", "bench": "benches",
}

#: Named colours (linear-ish RGB in [0, 1]); captions use these names.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.78, 0.10, 0.09),
    "blue": (0.12, 0.27, 0.72),
    "white": (0.93, 0.93, 0.91),
    "black": (0.07, 0.07, 0.08),
    "grey": (0.52, 0.53, 0.55),
    "silver": (0.74, 0.75, 0.78),
    "yellow": (0.96, 0.80, 0.12),
    "green": (0.14, 0.52, 0.18),
    "orange": (0.95, 0.48, 0.08),
    "brown": (0.45, 0.27, 0.13),
    "beige": (0.86, 0.78, 0.60),
    "pink": (0.92, 0.55, 0.66),
    "purple": (0.44, 0.20, 0.60),
}

CAR_COLOURS = ("red", "blue", "white", "black", "grey", "silver", "yellow", "green", "orange", "brown")
TRUCK_COLOURS = ("white", "red", "blue", "yellow", "green", "grey")
BUS_COLOURS = ("yellow", "red", "blue", "white", "green")
BUILDING_COLOURS = ("grey", "white", "beige", "brown", "red", "yellow", "pink", "blue")
SHIRT_COLOURS = ("red", "blue", "white", "black", "yellow", "green", "orange", "pink", "purple", "grey")
TROUSER_COLOURS = ("blue", "black", "grey", "brown", "beige")
SIGN_COLOURS = ("red", "blue", "yellow", "green")
FENCE_COLOURS = ("white", "brown", "grey", "green", "black")
BENCH_COLOURS = ("brown", "green", "grey", "black")
BIKE_COLOURS = ("red", "blue", "black", "green", "white", "yellow")
POLE_COLOURS = ("grey", "black", "green")
HOUSING_COLOURS = ("black", "yellow", "grey")


@dataclass(frozen=True)
class Camera:
    """Rectified pinhole stereo pair looking along ``+Z``.

    Projection (left camera at ``X = 0``, right camera at ``X = baseline``)::

        u = cx + f (X - X_cam) / Z,    v = horizon + f (cam_height - Y) / Z,

    so the disparity of a point at depth ``Z`` is ``d = u_left - u_right = f B / Z``.

    Examples
    --------
    >>> cam = Camera(height=128, width=256, focal=250.0, cx=128.0, horizon=56.0)
    >>> float(cam.disparity(5.0))   # 250 px * 0.54 m / 5 m
    27.0
    """

    height: int
    width: int
    focal: float  # focal length, pixels (square pixels)
    cx: float  # principal point column, pixels
    horizon: float  # row of the horizon (principal point row, zero pitch), pixels
    cam_height: float = 1.65  # metres above the ground
    baseline: float = 0.54  # metres between the two camera centres (KITTI)

    def disparity(self, depth):
        """Stereo disparity ``f B / Z`` in pixels of a point at depth ``Z`` (metres)."""
        return self.focal * self.baseline / np.asarray(depth, dtype=np.float64)


@dataclass
class Obj:
    """An upright object facing the cameras (a fronto-parallel 'billboard' at depth Z).

    ``x`` is the centre in metres, ``z`` the depth of its front face, ``w``/``h`` its
    size in metres. ``colour`` names the main colour (a key of :data:`COLOURS`);
    ``colour_right`` differs from it for an *appearance change*; ``dx_right`` is the
    sideways motion (metres) between the left and right exposures for a *mover*.
    """

    uid: int
    noun: str
    x: float
    z: float
    w: float
    h: float
    colour: str
    params: dict = field(default_factory=dict)
    colour_right: str | None = None
    dx_right: float = 0.0
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> int:
        return CLASS_ID[self.noun]

    def colour_in(self, view: str) -> str:
        """Colour name of the object as seen in ``view`` ('left' or 'right')."""
        if view == "right" and self.colour_right is not None:
            return self.colour_right
        return self.colour


class _StaticColour:
    """Static scene parts (facades, fences) look the same in both views."""

    def colour_in(self, view: str) -> str:
        """Colour name in ``view`` (the same in both views)."""
        return self.colour


@dataclass
class Facade(_StaticColour):
    """A building front: the vertical plane ``X = x`` for ``z0 <= Z <= z1``, ``0 <= Y <= h``.

    ``side`` is -1 (left of the road) or +1 (right); ``depth`` is how far the building
    extends away from the road (its front end wall at ``Z = z0`` is drawn too).
    """

    uid: int
    x: float
    z0: float
    z1: float
    h: float
    side: int
    colour: str
    window_colour: tuple[float, float, float]
    floor_h: float = 3.2
    window_spacing: float = 3.0
    window_w: float = 1.3
    depth: float = 12.0
    noun: str = "building"


@dataclass
class Fence(_StaticColour):
    """A fence along the road: the plane ``X = x`` for ``z0 <= Z <= z1``, height ``h``."""

    uid: int
    x: float
    z0: float
    z1: float
    h: float
    colour: str
    style: str  # "rails" or "pickets"
    noun: str = "fence"


@dataclass
class LightPatch:
    """A glare (gain > 1) or shadow (gain < 1) ellipse present only in the right view."""

    u: float
    v: float
    ru: float
    rv: float
    gain: tuple[float, float, float]


@dataclass
class Scene:
    """Everything needed to render both views and caption the right one."""

    camera: Camera
    lighting: str  # "sunny" | "overcast" | "dusk"
    road_centre: float
    road_width: float
    lane_width: float
    centre_line: str  # "dashed" | "yellow"
    sidewalk: tuple[float, float]  # widths left, right (m)
    side_type: tuple[str, str]  # "buildings" | "green" for left, right
    outer_ground: tuple[str, str]  # "sidewalk" | "grass" beyond the sidewalk
    road_tone: float
    sidewalk_colour: tuple[float, float, float]
    skyline: list  # [(x0, x1, h, rgb)] at depth skyline_z, label building
    skyline_z: float
    treeline: bool
    clouds: list  # [(u, v, ru, rv)] screen-space ellipses (at infinity)
    facades: list[Facade]
    fences: list[Fence]
    objects: list[Obj]
    light_patch: LightPatch | None
    right_gain: tuple[float, float, float]  # global exposure of the right camera
    phenomena: dict  # documented side-view discrepancies: kind -> list of uids / info

    def all_parts(self):
        """Facades, fences and objects (everything with a ``uid``)."""
        return [*self.facades, *self.fences, *self.objects]


def _between(rng: np.random.Generator, a: float, b: float) -> float:
    """Uniform draw between ``a`` and ``b`` in either order."""
    return float(a + (b - a) * rng.random())


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def default_camera(size=(128, 256), rng: np.random.Generator | None = None) -> Camera:
    """KITTI-like camera for an ``(H, W)`` image; the horizon row jitters with ``rng``."""
    h, w = int(size[0]), int(size[1])
    jitter = 0.0 if rng is None else float(rng.uniform(-0.03, 0.03))
    return Camera(height=h, width=w, focal=0.974 * w, cx=w / 2.0, horizon=h * (0.43 + jitter))


class _Placer:
    """Keeps upright objects apart on the ground (a crude collision check)."""

    def __init__(self):
        self.items: list[tuple[float, float, float, float]] = []  # x, z, half-width, half-length

    def free(self, x, z, hw, hl):
        for a, c, b, d in self.items:
            if abs(x - a) < hw + b and abs(z - c) < hl + d:
                return False
        return True

    def add(self, x, z, hw, hl):
        self.items.append((x, z, hw, hl))


def sample_scene(rng: np.random.Generator, size=(128, 256)) -> Scene:
    """Draw a random street scene (the scene graph) from ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    size : (int, int)
        Image height and width in pixels.

    Returns
    -------
    Scene
    """
    cam = default_camera(size, rng)
    lighting = str(rng.choice(["sunny", "overcast", "dusk"], p=[0.5, 0.32, 0.18]))
    n_lanes = int(rng.choice([2, 3, 4], p=[0.5, 0.3, 0.2]))
    lane_w = float(rng.uniform(3.2, 3.7))
    road_w = n_lanes * lane_w
    # the camera drives in one of the lanes
    lane_idx = int(rng.integers(n_lanes))
    road_centre = -((lane_idx + 0.5) * lane_w - road_w / 2) + float(rng.uniform(-0.4, 0.4))
    sidewalk = (float(rng.uniform(1.8, 4.0)), float(rng.uniform(1.8, 4.0)))
    side_type = tuple(str(rng.choice(["buildings", "green"], p=[0.62, 0.38])) for _ in range(2))
    outer = tuple("sidewalk" if t == "buildings" else "grass" for t in side_type)
    tone = float(rng.uniform(0.28, 0.42))
    sw_base = float(rng.uniform(0.55, 0.72))
    sidewalk_colour = (sw_base, sw_base * float(rng.uniform(0.95, 1.0)), sw_base * float(rng.uniform(0.88, 0.98)))

    uid = iter(range(3, 10_000))  # 0 sky, 1 ground, 2 skyline/treeline
    curb = (road_centre - road_w / 2, road_centre + road_w / 2)  # left, right curb X
    outer_edge = (curb[0] - sidewalk[0], curb[1] + sidewalk[1])

    # --- far skyline (label building) or tree line (label tree) -----------------------
    skyline_z = float(rng.uniform(160.0, 260.0))
    treeline = bool(rng.random() < 0.35)
    skyline = []
    x = -skyline_z * 0.75
    while x < skyline_z * 0.75:
        wdt = float(rng.uniform(8, 30)) * skyline_z / 150
        hgt = float(rng.uniform(6, 40)) * (0.5 if treeline else 1.0)
        g = float(rng.uniform(0.45, 0.7))
        skyline.append((x, x + wdt, hgt, (g * 0.9, g * 0.95, g * 1.05)))
        x += wdt * float(rng.uniform(0.7, 1.1))

    clouds = []
    if lighting != "overcast":
        for _ in range(int(rng.integers(0, 5))):
            clouds.append((float(rng.uniform(0, cam.width)), float(rng.uniform(0, cam.horizon * 0.7)),
                           float(rng.uniform(10, 40)) * cam.width / 256, float(rng.uniform(3, 9)) * cam.height / 128))

    facades: list[Facade] = []
    fences: list[Fence] = []
    objects: list[Obj] = []
    placer = _Placer()

    def add_obj(noun, x, z, w, h, colour, **params):
        o = Obj(next(uid), noun, float(x), float(z), float(w), float(h), colour, dict(params))
        objects.append(o)
        return o

    for si, sgn in ((0, -1), (1, +1)):
        kind = side_type[si]
        if kind == "buildings":
            z = float(rng.uniform(-2.0, 8.0))
            x_face = outer_edge[si] + sgn * float(rng.uniform(0.0, 1.0))
            while z < 150:
                length = float(rng.uniform(10, 32))
                setback = sgn * float(rng.uniform(0.0, 1.5))
                facades.append(Facade(
                    next(uid), x_face + setback, max(z, 0.5), z + length, float(rng.uniform(6, 24)), sgn,
                    _pick(rng, BUILDING_COLOURS),
                    tuple(float(c) for c in rng.uniform([0.05, 0.08, 0.12], [0.25, 0.32, 0.45])),
                    floor_h=float(rng.uniform(2.9, 3.6)), window_spacing=float(rng.uniform(2.4, 4.0)),
                    window_w=float(rng.uniform(0.9, 1.6)), depth=float(rng.uniform(8, 20))))
                z += length + (float(rng.uniform(3, 12)) if rng.random() < 0.3 else 0.0)
            if rng.random() < 0.5:  # street trees on the sidewalk
                z = float(rng.uniform(3, 12))
                while z < 70:
                    x = curb[si] + sgn * float(rng.uniform(0.6, 1.2))
                    if placer.free(x, z, 1.0, 1.0):
                        _add_tree(rng, add_obj, x, z, autumn=lighting == "dusk" and rng.random() < 0.3)
                        placer.add(x, z, 0.5, 1.0)
                    z += float(rng.uniform(8, 18))
        else:  # green side: grass, trees, bushes, perhaps a fence, buildings far back
            if rng.random() < 0.45:
                fx = outer_edge[si] + sgn * 0.15
                z0 = float(rng.uniform(1, 10))
                fences.append(Fence(next(uid), fx, z0, z0 + float(rng.uniform(15, 80)),
                                    float(rng.uniform(0.9, 1.4)), _pick(rng, FENCE_COLOURS),
                                    str(rng.choice(["rails", "pickets"]))))
            z = float(rng.uniform(2, 8))
            while z < 90:
                x = outer_edge[si] + sgn * float(rng.uniform(1.0, 9.0))
                if placer.free(x, z, 1.5, 1.5):
                    if rng.random() < 0.7:
                        _add_tree(rng, add_obj, x, z, autumn=rng.random() < 0.2)
                    else:
                        add_obj("bush", x, z, float(rng.uniform(1.4, 3.0)), float(rng.uniform(0.8, 1.5)),
                                "green", tone=float(rng.uniform(0.7, 1.1)), blobs=int(rng.integers(2, 4)),
                                seed=float(rng.uniform(0, 100)))
                    placer.add(x, z, 1.0, 1.5)
                z += float(rng.uniform(5, 14))
            if rng.random() < 0.5:
                z = float(rng.uniform(15, 40))
                x_face = outer_edge[si] + sgn * float(rng.uniform(12, 25))
                while z < 150:
                    length = float(rng.uniform(12, 30))
                    facades.append(Facade(
                        next(uid), x_face, z, z + length, float(rng.uniform(6, 18)), sgn,
                        _pick(rng, BUILDING_COLOURS),
                        tuple(float(c) for c in rng.uniform([0.05, 0.08, 0.12], [0.25, 0.32, 0.45])),
                        floor_h=float(rng.uniform(2.9, 3.6)), window_spacing=float(rng.uniform(2.4, 4.0)),
                        window_w=float(rng.uniform(0.9, 1.6)), depth=float(rng.uniform(8, 20))))
                    z += length + float(rng.uniform(4, 15))

        # street furniture along the curb
        z = float(rng.uniform(6, 25))
        pole_colour = _pick(rng, POLE_COLOURS)
        while z < 110:
            x = curb[si] + sgn * 0.45
            if placer.free(x, z, 0.3, 0.3):
                add_obj("pole", x, z, 0.25, float(rng.uniform(6.5, 8.5)), pole_colour, arm=-sgn)
                placer.add(x, z, 0.2, 0.3)
            z += float(rng.uniform(18, 35))
        for _ in range(int(rng.poisson(0.7))):
            x = curb[si] + sgn * float(rng.uniform(0.3, 0.8))
            z = float(rng.uniform(5, 45))
            if placer.free(x, z, 0.5, 0.5):
                add_obj("sign", x, z, 0.75, float(rng.uniform(2.6, 3.2)), _pick(rng, SIGN_COLOURS),
                        shape=str(rng.choice(["disc", "triangle", "square"])))
                placer.add(x, z, 0.4, 0.4)
        # people on the sidewalk
        for _ in range(int(rng.poisson(1.3))):
            x = _between(rng, curb[si] + sgn * 0.4, outer_edge[si] - sgn * 0.3)
            z = float(rng.uniform(4, 40))
            if placer.free(x, z, 0.35, 0.35):
                _add_person(rng, add_obj, x, z)
                placer.add(x, z, 0.3, 0.3)
        if rng.random() < 0.25:
            x = outer_edge[si] - sgn * 0.6
            z = float(rng.uniform(5, 30))
            if placer.free(x, z, 1.0, 0.6):
                add_obj("bench", x, z, 1.7, 0.9, _pick(rng, BENCH_COLOURS))
                placer.add(x, z, 0.9, 0.5)
        if rng.random() < 0.25:
            x = _between(rng, curb[si] + sgn * 0.5, outer_edge[si] - sgn * 0.5)
            z = float(rng.uniform(4, 30))
            if placer.free(x, z, 0.9, 0.5):
                add_obj("bicycle", x, z, 1.7, 1.05, _pick(rng, BIKE_COLOURS))
                placer.add(x, z, 0.9, 0.5)
        # parked cars inside the road along the curb
        z = float(rng.uniform(4, 20))
        while z < 70:
            if rng.random() < 0.55:
                x = curb[si] - sgn * float(rng.uniform(1.0, 1.3))
                if placer.free(x, z, 1.0, 2.5):
                    _add_vehicle(rng, add_obj, "car", x, z, facing="rear")
                    placer.add(x, z, 1.0, 2.5)
            z += float(rng.uniform(5.5, 14))

    # traffic lights at an intersection
    if rng.random() < 0.35:
        zi = float(rng.uniform(12, 45))
        housing = _pick(rng, HOUSING_COLOURS)
        lit = int(rng.integers(3))
        for si, sgn in ((0, -1), (1, +1)):
            x = curb[si] + sgn * 0.5
            if placer.free(x, zi, 0.3, 0.3):
                add_obj("traffic light", x, zi, 0.5, float(rng.uniform(3.4, 4.4)), housing, lit=lit)
                placer.add(x, zi, 0.3, 0.3)

    # moving traffic in the lanes (same direction: rear view; opposite: front view)
    for _ in range(int(rng.poisson(1.6))):
        lane = int(rng.integers(n_lanes))
        x = curb[0] + (lane + 0.5) * lane_w + float(rng.uniform(-0.3, 0.3))
        z = float(rng.uniform(7, 70))
        r = rng.random()
        noun = "car" if r < 0.72 else ("truck" if r < 0.87 else "bus")
        hl = 2.5 if noun == "car" else 5.0
        if abs(x) < 1.5 and z < 9:
            continue
        if placer.free(x, z, 1.2, hl):
            facing = "rear" if x > road_centre - 0.5 * lane_w or n_lanes < 3 else "front"
            _add_vehicle(rng, add_obj, noun, x, z, facing=facing)
            placer.add(x, z, 1.2, hl)
    if rng.random() < 0.2:  # a cyclist in the road
        x = curb[1] - float(rng.uniform(0.6, 1.2))
        z = float(rng.uniform(6, 30))
        if placer.free(x, z, 0.9, 1.0):
            bike = add_obj("bicycle", x, z, 1.7, 1.05, _pick(rng, BIKE_COLOURS))
            rider = _add_person(rng, add_obj, x + 0.15, z - 0.05, riding=True)
            bike.params["rider"] = rider.uid
            placer.add(x, z, 0.9, 1.0)

    phenomena: dict = {"border_intruder": [], "mover": [], "appearance_change": [], "light_patch": []}

    # --- side-view discrepancies (the mask's job) ---------------------------------------
    if rng.random() < 0.5:  # an object entering the right view at its right border
        zb = float(rng.uniform(3.5, 9.0))
        d = float(cam.disparity(zb))
        u_left = cam.width + float(rng.uniform(0.35, 0.85)) * d
        xb = (u_left - cam.cx) * zb / cam.focal
        if xb > curb[1] + 0.2:
            noun = str(rng.choice(["person", "pole", "sign"]))
        else:
            noun = str(rng.choice(["person", "bicycle"]))
        if noun == "person":
            o = _add_person(rng, add_obj, xb, zb)
        elif noun == "pole":
            o = add_obj("pole", xb, zb, 0.25, float(rng.uniform(6.5, 8.5)), pole_colour, arm=-1)
        elif noun == "sign":
            o = add_obj("sign", xb, zb, 0.75, 2.8, _pick(rng, SIGN_COLOURS),
                        shape=str(rng.choice(["disc", "triangle", "square"])))
        else:
            o = add_obj("bicycle", xb, zb, 1.7, 1.05, _pick(rng, BIKE_COLOURS))
        o.tags = (*o.tags, "border_intruder")
        phenomena["border_intruder"].append(o.uid)

    movable = [o for o in objects if o.noun in ("person", "bicycle", "car") and o.z < 35
               and "border_intruder" not in o.tags and "rider" not in o.params
               and "rider" not in o.tags]
    if movable and rng.random() < 0.5:
        o = movable[int(rng.integers(len(movable)))]
        o.dx_right = float(rng.choice([-1, 1]) * rng.uniform(0.4, 1.1))
        o.tags = (*o.tags, "mover")
        phenomena["mover"].append(o.uid)
    recolourable = [o for o in objects if o.noun in ("car", "person", "truck", "bus") and o.z < 40]
    if recolourable and rng.random() < 0.35:
        o = recolourable[int(rng.integers(len(recolourable)))]
        palette = SHIRT_COLOURS if o.noun == "person" else CAR_COLOURS
        choices = [c for c in palette if c != o.colour]
        o.colour_right = choices[int(rng.integers(len(choices)))]
        o.tags = (*o.tags, "appearance_change")
        phenomena["appearance_change"].append(o.uid)

    light_patch = None
    if rng.random() < 0.4:
        glare = rng.random() < 0.5
        gain = (1.55, 1.45, 1.25) if glare else (0.55, 0.57, 0.62)
        light_patch = LightPatch(float(rng.uniform(0.1, 0.9) * cam.width), float(rng.uniform(0.2, 0.9) * cam.height),
                                 float(rng.uniform(14, 45)) * cam.width / 256,
                                 float(rng.uniform(10, 30)) * cam.height / 128, gain)
        phenomena["light_patch"].append("glare" if glare else "shadow")

    right_gain = tuple(float(g) for g in rng.uniform(0.96, 1.04, size=3))
    return Scene(cam, lighting, float(road_centre), float(road_w), lane_w,
                 str(rng.choice(["dashed", "yellow"], p=[0.7, 0.3])), sidewalk, side_type, outer,
                 tone, sidewalk_colour, skyline, skyline_z, treeline, clouds, facades, fences, objects,
                 light_patch, right_gain, phenomena)


def _add_tree(rng, add_obj, x, z, autumn=False):
    colour = str(rng.choice(["orange", "yellow"])) if autumn else "green"
    h = float(rng.uniform(4.5, 9.0))
    w = float(rng.uniform(0.45, 0.7)) * h
    return add_obj("tree", x, z, w, h, colour, trunk=float(rng.uniform(0.18, 0.3)),
                   blobs=int(rng.integers(3, 6)), seed=float(rng.uniform(0, 100)),
                   tone=float(rng.uniform(0.7, 1.15)))


def _add_person(rng, add_obj, x, z, riding=False):
    h = float(rng.uniform(1.6, 1.9)) * (0.85 if riding else 1.0)
    skin = float(rng.uniform(0.35, 0.9))
    o = add_obj("person", x, z, 0.6, h, _pick(rng, SHIRT_COLOURS),
                trousers=_pick(rng, TROUSER_COLOURS), skin=skin,
                hair=float(rng.uniform(0.05, 0.5)), stride=float(rng.uniform(-0.08, 0.08)))
    if riding:
        o.params["riding"] = True
        o.tags = (*o.tags, "rider")
    return o


def _add_vehicle(rng, add_obj, noun, x, z, facing="rear"):
    if noun == "car":
        w, h, palette = float(rng.uniform(1.65, 1.9)), float(rng.uniform(1.35, 1.6)), CAR_COLOURS
        if rng.random() < 0.15:  # a van-like tall car
            h = float(rng.uniform(1.8, 2.0))
    elif noun == "truck":
        w, h, palette = 2.45, float(rng.uniform(2.8, 3.5)), TRUCK_COLOURS
    else:
        w, h, palette = 2.5, float(rng.uniform(3.0, 3.3)), BUS_COLOURS
    return add_obj(noun, x, z, w, h, _pick(rng, palette), facing=facing)
