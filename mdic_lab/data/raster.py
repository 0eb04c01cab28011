"""Numba-compiled rasteriser of the synthetic stereo world (per-pixel loops, z-buffer).

The scene is turned into *display lists* by :mod:`mdic_lab.data.render`; these kernels
draw them into one view's buffers (``img`` (H, W, 3) float32, ``lab`` uint8, ``inst``
int32, ``depth`` float32, ``inf`` = sky). Every write is z-tested (nearer wins), and the
painter's order (far to near) is kept for objects so sub-parts of one object layer
correctly.

Geometry (pinhole, horizon row ``v_h``, focal ``f``, camera at ``(X_cam, h_cam, 0)``):

* ground pixel ``(u, v)``, ``v > v_h``: ``Z = f h_cam / (v - v_h)``, ``X = X_cam + (u - c_x) Z / f``;
* vertical plane ``X = x_p``: column ``u`` hits it at ``Z = f (x_p - X_cam) / (u - c_x)``,
  height ``Y = h_cam - (v - v_h) Z / f``;
* billboard at depth ``z``: pixel ``(u, v)`` is the object point
  ``p = (u - c_x) z / f + X_cam - x`` metres right of its centre, ``Y`` metres up.

Textures are hashes of surface coordinates (metres), so they agree between views.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["hash2", "sky", "draw_ground", "draw_planes", "draw_objects", "finish", "consistency"]

# primitive kinds of the object display list
RECT, ELLIPSE, RING, SEG, POLY, ELLIPSE_ABOVE = 0, 1, 2, 3, 4, 5
# columns of a primitive row: kind, 14 geometry params, r, g, b, tex mode, tex cell, tex seed
PRIM_COLS = 21
# plane kinds
FACADE, FENCE_RAILS, FENCE_PICKETS, END_WALL = 0, 1, 2, 3


@numba.njit(cache=True, inline="always")
def hash2(i, j, seed):
    """Pseudo-random value in [0, 1) of the integer lattice point ``(i, j)``."""
    a = np.int64(i) & 0xFFFFFFFF
    b = np.int64(j) & 0xFFFFFFFF
    h = ((a * 73856093) ^ (b * 19349663) ^ (np.int64(seed) & 0xFFFFFFFF)) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 1274126177) & 0xFFFFFFFF
    h ^= h >> 16
    return (h & 0xFFFF) / 65536.0


@numba.njit(cache=True, inline="always")
def _fmod(x, m):
    """Floor modulo for m > 0 (as Python's ``%``)."""
    return x - math.floor(x / m) * m


@numba.njit(cache=True, inline="always")
def _put(img, lab, inst, depth, v, u, r, g, b, label, uid, z):
    """Write one pixel of every render buffer: colour, class label, instance id, depth."""
    img[v, u, 0] = r
    img[v, u, 1] = g
    img[v, u, 2] = b
    lab[v, u] = label
    inst[v, u] = uid
    depth[v, u] = z


@numba.njit(cache=True)
def draw_ground(img, lab, inst, depth, g0, f, cx, vh, hc, xcam, road, palette, labels, shadows, shadow_k):
    """Ray-cast the ground plane into rows ``g0..H``.

    ``road`` = (centre, width, lane width, n lanes, yellow-line lane index or -1,
    sidewalk left, sidewalk right, grass-left flag, grass-right flag);
    ``palette`` (5, 3) and ``labels`` (5,) for road, sidewalk, curb, plaza, grass;
    ``shadows`` (k, 4) rectangles ``(x0, x1, z0, z1)`` on the ground darkened by ``shadow_k``.
    """
    H, W = lab.shape
    rc, rw, lw, nl, yk = road[0], road[1], road[2], int(road[3]), int(road[4])
    half = rw / 2.0
    for v in range(g0, H):
        dv = v + 0.5 - vh
        if dv <= 1e-3:
            continue
        Z = min(f * hc / dv, 1e4)
        px = Z / f
        for u in range(W):
            if not Z < depth[v, u]:
                continue
            X = xcam + (u + 0.5 - cx) * px
            rel = X - rc
            a = abs(rel)
            left = rel < 0
            sw = road[5] if left else road[6]
            grass = road[7] > 0.5 if left else road[8] > 0.5
            if a < half:
                s = 0
            elif a < half + 0.22:
                s = 2
            elif a < half + sw:
                s = 1
            else:
                s = 4 if grass else 3
            noise = hash2(math.floor(X * 11.0), math.floor(Z * 11.0), 0)
            if s == 4:
                mult = 0.8 + 0.35 * hash2(math.floor(X * 3.3), math.floor(Z * 3.3), 3000)
            elif s == 0:
                mult = 0.93 + 0.12 * noise
            else:
                mult = 0.93 + 0.09 * noise
                if s == 1:
                    fx = abs(_fmod(X, 1.2) - 0.6)
                    fz = abs(_fmod(Z, 1.2) - 0.6)
                    joint = max(min(max((fx - 0.56) / px, 0.0), 1.0), min(max((fz - 0.56) / (6 * px), 0.0), 1.0))
                    mult *= 1.0 - 0.18 * joint
            for k in range(shadows.shape[0]):
                if shadows[k, 0] <= X <= shadows[k, 1] and shadows[k, 2] <= Z <= shadows[k, 3]:
                    mult *= shadow_k
                    break
            r = palette[s, 0] * mult
            g = palette[s, 1] * mult
            b = palette[s, 2] * mult
            if s == 0:  # lane markings with coverage anti-aliasing
                paint = 0.0
                yel = 0.0
                dash = _fmod(Z, 9.0) < 3.5
                for k in range(1, nl):
                    xb = rc - half + k * lw
                    if k == yk:
                        for off in (-0.12, 0.12):
                            yel = max(yel, min(max((0.06 + px / 2 - abs(X - xb - off)) / px, 0.0), 1.0))
                    elif dash:
                        paint = max(paint, min(max((0.08 + px / 2 - abs(X - xb)) / px, 0.0), 1.0))
                for e in (-1.0, 1.0):
                    xe = rc + e * (half - 0.3)
                    paint = max(paint, min(max((0.08 + px / 2 - abs(X - xe)) / px, 0.0), 1.0))
                paint *= mult
                yel *= mult
                r += (0.88 - r) * paint
                g += (0.88 - g) * paint
                b += (0.88 - b) * paint
                r += (0.92 - r) * yel
                g += (0.75 - g) * yel
                b += (0.10 - b) * yel
            _put(img, lab, inst, depth, v, u, r, g, b, labels[s], 1, Z)


@numba.njit(cache=True)
def draw_planes(img, lab, inst, depth, f, cx, vh, hc, xcam, planes):
    """Draw building fronts, fences (planes ``X = x``) and end walls (planes ``Z = z``).

    ``planes`` rows: kind, x, z0, z1, h, r, g, b, wr, wg, wb, floor_h, spacing, win_w,
    uid, label, x_ref (end walls: ``x`` range is [x, z1] at depth z0).
    """
    H, W = lab.shape
    for k in range(planes.shape[0]):
        kind = int(planes[k, 0])
        xp, z0, z1, hgt = planes[k, 1], planes[k, 2], planes[k, 3], planes[k, 4]
        uid, label = int(planes[k, 14]), int(planes[k, 15])
        floor_h, spacing, win_w = planes[k, 11], planes[k, 12], planes[k, 13]
        base = (planes[k, 5], planes[k, 6], planes[k, 7])
        win = (planes[k, 8], planes[k, 9], planes[k, 10])
        xref = planes[k, 16]
        if kind == END_WALL:  # fronto-parallel wall at depth z0 spanning X in [xp, z1]
            z = z0
            u0 = int(max(math.floor(cx + f * (xp - xcam) / z), 0))
            u1 = int(min(math.ceil(cx + f * (z1 - xcam) / z), W))
            v0 = int(max(math.floor(vh + f * (hc - hgt) / z), 0))
            v1 = int(min(math.ceil(vh + f * hc / z), H))
            for v in range(v0, v1):
                yb = hc - (v + 0.5 - vh) * z / f
                if yb < 0 or yb >= hgt:
                    continue
                for u in range(u0, u1):
                    X = (u + 0.5 - cx) * z / f + xcam
                    if X < xp or X >= z1 or not z < depth[v, u]:
                        continue
                    _facade_pixel(img, lab, inst, depth, v, u, abs(X - xref), yb, z, hgt, floor_h, spacing, win_w,
                                  base, win, uid, label, 0.72)
            continue
        for u in range(W):
            du = u + 0.5 - cx
            if du == 0.0:
                continue
            Z = f * (xp - xcam) / du
            if Z < max(z0, 0.3) or Z > z1:
                continue
            vt = vh + f * (hc - hgt) / Z
            vb = vh + f * hc / Z
            for v in range(int(max(math.floor(vt), 0)), int(min(math.ceil(vb), H))):
                vc = v + 0.5
                if vc < vt or vc >= vb or not Z < depth[v, u]:
                    continue
                yb = hc - (vc - vh) * Z / f
                a = Z - z0
                if kind == FACADE:
                    _facade_pixel(img, lab, inst, depth, v, u, a, yb, Z, hgt, floor_h, spacing, win_w,
                                  base, win, uid, label, 1.0)
                else:
                    post = _fmod(a, 2.4) < 0.12
                    if kind == FENCE_PICKETS:
                        hit = (_fmod(a, 0.24) < 0.13) or (0.25 < yb < 0.33) or (hgt - 0.35 < yb < hgt - 0.27) or post
                    else:
                        hit = (yb > hgt - 0.1) or (0.45 * hgt < yb < 0.45 * hgt + 0.08) or post
                    if hit:
                        m = 0.8 if post else 1.0
                        _put(img, lab, inst, depth, v, u, base[0] * m, base[1] * m, base[2] * m, label, uid, Z)


@numba.njit(cache=True, inline="always")
def _facade_pixel(img, lab, inst, depth, v, u, a, b, Z, hgt, floor_h, spacing, win_w, base, win, uid, label, gain):
    fb = _fmod(b, floor_h)
    fa = _fmod(a, spacing)
    window = (b > floor_h * 0.9) and (b < hgt - 0.7) and (0.9 < fb < 2.3) and (0.5 < fa < 0.5 + win_w)
    shop = (0.4 < b < floor_h * 0.8) and (_fmod(a / spacing, 2.0) < 1.5) and (fa > 0.3)
    if window or shop:
        refl = min(0.25 * fb / 2.3, 0.3) if window else 0.12
        _put(img, lab, inst, depth, v, u, (win[0] + refl) * gain, (win[1] + refl) * gain, (win[2] + refl) * gain,
             label, uid, Z)
    else:
        m = gain * (0.92 + 0.12 * hash2(math.floor(a * 8.0), math.floor(b * 8.0), 7000 + uid))
        if (b > hgt - 0.45) or (b < 0.35):
            m *= 0.7
        _put(img, lab, inst, depth, v, u, base[0] * m, base[1] * m, base[2] * m, label, uid, Z)


@numba.njit(cache=True, inline="always")
def _hit(pr, p, y):
    kind = int(pr[0])
    if kind == RECT:
        return pr[1] <= p < pr[2] and pr[3] <= y < pr[4]
    if kind == ELLIPSE or kind == ELLIPSE_ABOVE:
        dp = (p - pr[1]) / pr[3]
        dy = (y - pr[2]) / pr[4]
        return dp * dp + dy * dy <= 1.0 and (kind == ELLIPSE or y > pr[5])
    if kind == RING:
        d2 = (p - pr[1]) ** 2 + (y - pr[2]) ** 2
        return pr[4] * pr[4] <= d2 <= pr[3] * pr[3]
    if kind == SEG:
        dp, dy = pr[3] - pr[1], pr[4] - pr[2]
        t = ((p - pr[1]) * dp + (y - pr[2]) * dy) / (dp * dp + dy * dy + 1e-12)
        t = min(max(t, 0.0), 1.0)
        ex, ey = p - pr[1] - t * dp, y - pr[2] - t * dy
        return ex * ex + ey * ey <= pr[5] * pr[5]
    # POLY: even-odd rule over n vertices stored from pr[2]
    n = int(pr[1])
    inside = False
    for k in range(n):
        pa, ya = pr[2 + 2 * k], pr[3 + 2 * k]
        kk = (k + 1) % n
        pb, yb = pr[2 + 2 * kk], pr[3 + 2 * kk]
        if ya == yb:
            continue
        if min(ya, yb) <= y < max(ya, yb):
            if p < pa + (y - ya) * (pb - pa) / (yb - ya):
                inside = not inside
    return inside


@numba.njit(cache=True, inline="always")
def _prim_box(pr):
    """Bounding box (p0, p1, y0, y1) of a primitive in object coordinates."""
    kind = int(pr[0])
    if kind == RECT:
        return pr[1], pr[2], pr[3], pr[4]
    if kind == ELLIPSE or kind == ELLIPSE_ABOVE:
        return pr[1] - pr[3], pr[1] + pr[3], pr[2] - pr[4], pr[2] + pr[4]
    if kind == RING:
        return pr[1] - pr[3], pr[1] + pr[3], pr[2] - pr[3], pr[2] + pr[3]
    if kind == SEG:
        return (min(pr[1], pr[3]) - pr[5], max(pr[1], pr[3]) + pr[5],
                min(pr[2], pr[4]) - pr[5], max(pr[2], pr[4]) + pr[5])
    n = int(pr[1])
    p0, p1, y0, y1 = pr[2], pr[2], pr[3], pr[3]
    for k in range(1, n):
        p0 = min(p0, pr[2 + 2 * k])
        p1 = max(p1, pr[2 + 2 * k])
        y0 = min(y0, pr[3 + 2 * k])
        y1 = max(y1, pr[3 + 2 * k])
    return p0, p1, y0, y1


@numba.njit(cache=True)
def draw_objects(img, lab, inst, depth, f, cx, vh, hc, xcam, objs, prims):
    """Draw upright billboard objects in the given (far-to-near) order.

    ``objs`` rows: x, z, e0, e1, ytop, label, uid, first prim, end prim, y offset,
    height (for shading). ``prims`` rows: see :data:`PRIM_COLS`. Each primitive is
    rasterised over its own bounding box; a pixel is written if the object is nearer
    than what is there, or if it already belongs to the same object (later primitives
    cover earlier ones: the painter's algorithm inside an object).
    """
    H, W = lab.shape
    for k in range(objs.shape[0]):
        x, z = objs[k, 0], objs[k, 1]
        if z < 0.5:
            continue
        label, uid = int(objs[k, 5]), int(objs[k, 6])
        yoff, oh = objs[k, 9], objs[k, 10]
        s = f / z  # pixels per metre at this depth
        for q in range(int(objs[k, 7]), int(objs[k, 8])):
            pr = prims[q]
            bp0, bp1, by0, by1 = _prim_box(pr)
            u0 = int(max(math.floor(cx + (x + bp0 - xcam) * s), 0))
            u1 = int(min(math.ceil(cx + (x + bp1 - xcam) * s) + 1, W))
            v0 = int(max(math.floor(vh + (hc - by1 - yoff) * s), 0))
            v1 = int(min(math.ceil(vh + (hc - by0 - yoff) * s) + 1, H))
            for v in range(v0, v1):
                y = hc - (v + 0.5 - vh) / s - yoff
                for u in range(u0, u1):
                    if not (z < depth[v, u] or inst[v, u] == uid):
                        continue
                    p = (u + 0.5 - cx) / s + xcam - x
                    if not _hit(pr, p, y):
                        continue
                    m = 1.0
                    if pr[18] > 0.5:  # leafy clumps
                        cell = pr[19]
                        m = 0.72 + 0.45 * hash2(math.floor(p / cell), math.floor(y / cell), int(pr[20]))
                    ys = min(max((y + yoff) / max(oh, 1e-3), 0.0), 1.0)
                    m *= (0.9 + 0.12 * ys) * (0.96 + 0.06 * hash2(math.floor(p * 20.0), math.floor(y * 20.0), uid))
                    _put(img, lab, inst, depth, v, u, pr[15] * m, pr[16] * m, pr[17] * m, label, uid, z)


@numba.njit(cache=True)
def sky(img, vh, top, hor):
    """Vertical sky gradient from ``top`` (row 0) to ``hor`` (the horizon row and below)."""
    H, W = img.shape[0], img.shape[1]
    for v in range(H):
        t = min(max((v + 0.5) / max(vh, 1.0), 0.0), 1.0)
        for c in range(3):
            val = top[c] * (1.0 - t) + hor[c] * t
            for u in range(W):
                img[v, u, c] = val


@numba.njit(cache=True)
def finish(img, out8, depth, gain, sky_hor, haze_d, view_gain, patch, ellipse, patch_gain):
    """Surface lighting gain, aerial haze ``1 - exp(-Z / haze_d)``, camera gain, light patch.

    ``ellipse`` = (u, v, ru, rv) of the light patch (ru <= 0: none); its weight
    ``clip(1.5 - r², 0, 1)`` (flat core, soft rim) is written to ``patch``. The result is
    clipped to [0, 1] in ``img`` and rounded to uint8 in ``out8``.
    """
    H, W = depth.shape
    g0, g1, g2 = gain[0], gain[1], gain[2]
    s0, s1, s2 = sky_hor[0], sky_hor[1], sky_hor[2]
    inv = -1.0 / haze_d
    has_patch = ellipse[2] > 0.0
    for v in range(H):
        for u in range(W):
            Z = depth[v, u]
            r, g, b = img[v, u, 0], img[v, u, 1], img[v, u, 2]
            if Z < 1e30:
                hz = 1.0 - math.exp(Z * inv)
                k = 1.0 - hz
                r = r * g0 * k + s0 * hz
                g = g * g1 * k + s1 * hz
                b = b * g2 * k + s2 * hz
            pw = 0.0
            if has_patch:
                du = (u + 0.5 - ellipse[0]) / ellipse[2]
                dv = (v + 0.5 - ellipse[1]) / ellipse[3]
                pw = min(max(1.5 - du * du - dv * dv, 0.0), 1.0)
                patch[v, u] = pw
            r = min(max(r * view_gain[0] * (1.0 + (patch_gain[0] - 1.0) * pw), 0.0), 1.0)
            g = min(max(g * view_gain[1] * (1.0 + (patch_gain[1] - 1.0) * pw), 0.0), 1.0)
            b = min(max(b * view_gain[2] * (1.0 + (patch_gain[2] - 1.0) * pw), 0.0), 1.0)
            img[v, u, 0], img[v, u, 1], img[v, u, 2] = r, g, b
            out8[v, u, 0] = np.uint8(math.floor(r * 255.0 + 0.5))
            out8[v, u, 1] = np.uint8(math.floor(g * 255.0 + 0.5))
            out8[v, u, 2] = np.uint8(math.floor(b * 255.0 + 0.5))


@numba.njit(cache=True)
def consistency(depth_r, inst_r, inst_l, patch, focal_baseline, changed):
    """Right-view pixels matching the left view at their disparity ``d = f B / Z``.

    True where ``(v, u + d)`` lies in the left frame and shows the same instance, the
    instance is not in ``changed`` (movers, appearance changes) and the light-patch
    weight is at most 0.05.
    """
    H, W = inst_r.shape
    out = np.zeros((H, W), np.bool_)
    for v in range(H):
        for u in range(W):
            z = depth_r[v, u]
            d = focal_baseline / z if z < 1e30 else 0.0
            ul = int(math.floor(u + 0.5 + d))
            if ul >= W or inst_l[v, ul] != inst_r[v, u] or patch[v, u] > 0.05:
                continue
            ok = True
            for c in changed:
                if inst_r[v, u] == c:
                    ok = False
            out[v, u] = ok
    return out
