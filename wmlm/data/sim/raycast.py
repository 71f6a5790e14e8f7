"""Rays against the simulated street, shared by the camera and the LiDAR (numpy, vectorised over rays).

Everything is in the local street frame of ``geometry`` (BS at ``(0, 0, bs_height_m)``, road along ``x``,
``z`` up, ground at ``z = 0``). Solid boxes here carry a heading: ``[K, 6]`` rows
``(x, y, length, width, height, heading)`` with the centre of the footprint at ``(x, y)``, the box standing
on the ground (``0 <= z <= height``) and the heading in radians counter-clockwise from local ``+x`` (the
direction of travel of a vehicle: its front). Rows holding NaN are padding and are never hit.

Box coordinates of a hit: ``u`` along the heading (front ``+``), ``v`` to the left of it, ``w`` height above
the ground. Faces are numbered ``2 * axis + (0: positive side, 1: negative side)``: 0 front, 1 back,
2 left, 3 right, 4 roof, 5 floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmlm.data.sim.geometry import Scenery, boxes_enu_to_local
from wmlm.data.sim.preset import Wall
from wmlm.data.sim.scenario import SimulatedScenario

FACE_FRONT, FACE_BACK, FACE_LEFT, FACE_RIGHT, FACE_ROOF, FACE_FLOOR = range(6)
POLE_WIDTH_M = 0.3  # roadside objects (``Scenery``) are drawn as square posts this wide
_TINY = 1e-9  # rays more nearly parallel to the ground than this never reach it


@dataclass(frozen=True, eq=False)
class BoxHits:
    """Nearest box hit of each ray.

    Attributes:
        distance: ``[R]`` metres along the (unit) ray to the hit, ``inf`` for a miss.
        box: ``[R] int64`` row of the hit box, -1 for a miss.
        face: ``[R] int64`` face number (see the module docstring), -1 for a miss.
        local: ``[R, 3]`` hit point ``(u, v, w)`` in box coordinates, NaN for a miss.
    """

    distance: np.ndarray
    box: np.ndarray
    face: np.ndarray
    local: np.ndarray


def cast_boxes(
    origins: np.ndarray,
    directions: np.ndarray,
    boxes: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> BoxHits:
    """Nearest hit of rays ``origins [R, 3] (or [3]) + t * directions [R, 3]`` (unit, ``t > 0``) on boxes
    ``[K, 6]``: the slab test in each box's own coordinates.

    ``pairs = (rays [P], boxes [P])`` tests only those ray-box pairs (from a cheap bound of what each box
    can cover); by default every ray meets every box. The test runs on flat arrays of pairs, so its cost
    is proportional to the number of pairs.
    """
    directions = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    origins = np.asarray(origins, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    count = len(directions)
    if pairs is None:
        ray, box = np.repeat(np.arange(count), len(boxes)), np.tile(np.arange(len(boxes)), count)
    else:
        ray, box = (np.asarray(a, dtype=np.int64) for a in pairs)
    keep = np.isfinite(boxes).all(axis=1)[box]
    ray, box = ray[keep], box[keep]
    # flat per-pair columns (gathers of 1-D arrays are several times faster than of rows)
    columns = boxes.T.copy()
    cos, sin = np.cos(columns[5])[box], np.sin(columns[5])[box]
    half = (columns[2][box] / 2, columns[3][box] / 2, columns[4][box] / 2)
    d = [c[ray] for c in directions.T.copy()]
    o = list(origins) if origins.ndim == 1 else [c[ray] for c in origins.reshape(-1, 3).T.copy()]
    dx, dy = o[0] - columns[0][box], o[1] - columns[1][box]
    start = (cos * dx + sin * dy, cos * dy - sin * dx, o[2] - half[2])
    step = (cos * d[0] + sin * d[1], cos * d[1] - sin * d[0], d[2])
    near, far = np.full(len(ray), -np.inf), np.full(len(ray), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a zero direction component gives +-inf (parallel to that slab: inside it or never); the NaN of
        # a ray exactly in a slab's plane makes the comparisons below false, a miss, as it should be
        for axis in range(3):
            inverse = 1.0 / step[axis]
            low, high = (-half[axis] - start[axis]) * inverse, (half[axis] - start[axis]) * inverse
            near = np.maximum(near, np.minimum(low, high))
            far = np.minimum(far, np.maximum(low, high))
    # rays starting inside a box (never at the BS) are ignored rather than hitting from within
    hit = np.flatnonzero((near <= far) & (near > 0))
    distance = np.full(count, np.inf)
    np.minimum.at(distance, ray[hit], near[hit])
    # the pair that gave each ray its nearest hit (on a tie between boxes, the later pair)
    win = hit[near[hit] == distance[ray[hit]]]
    which = np.full(count, -1)
    which[ray[win]] = win
    found = which >= 0
    winner = which[found]
    centred = np.stack([start[a][winner] + near[winner] * step[a][winner] for a in range(3)], axis=1)
    size = np.stack([h[winner] for h in half], axis=1)
    # the face hit is the one the point lies on: the axis where it is farthest out relative to the size
    axis = np.argmax(np.abs(centred) / size, axis=1)
    face = np.full(count, -1)
    face[found] = 2 * axis + (centred[np.arange(len(winner)), axis] < 0)
    local = np.full((count, 3), np.nan)
    local[found] = centred + size * [0.0, 0.0, 1.0]
    hit_box = np.full(count, -1)
    hit_box[found] = box[winner]
    return BoxHits(distance, hit_box, face, local)


def grid_pairs(rects: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-shape pairs ``(cells [P], shapes [P])`` of rectangles ``[K, 4]`` ``(row0, row1, col0, col1)``
    (half-open, already clipped) on a row-major grid ``width`` cells wide (image pixels, LiDAR rays)."""
    rects = np.asarray(rects, dtype=np.int64).reshape(-1, 4)
    rows, cols = np.maximum(rects[:, 1] - rects[:, 0], 0), np.maximum(rects[:, 3] - rects[:, 2], 0)
    counts = rows * cols
    shapes = np.repeat(np.arange(len(rects)), counts)
    inner = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # rank in own rectangle
    span = np.maximum(cols[shapes], 1)
    return (rects[shapes, 0] + inner // span) * width + rects[shapes, 2] + inner % span, shapes


def face_normals(faces: np.ndarray, headings: np.ndarray) -> np.ndarray:
    """Outward unit normals ``[R, 3]`` (local frame) of box faces ``[R]`` of boxes with headings ``[R]``."""
    axis, sign = faces // 2, 1.0 - 2.0 * (faces % 2)
    cos, sin = np.cos(headings), np.sin(headings)
    nx = np.where(axis == 0, cos, np.where(axis == 1, -sin, 0.0))
    ny = np.where(axis == 0, sin, np.where(axis == 1, cos, 0.0))
    return np.stack([nx, ny, (axis == 2).astype(np.float64)], axis=1) * sign[:, None]


def cast_ground(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Distance ``[R]`` to the ground plane ``z = 0`` along rays going down, ``inf`` otherwise."""
    origins = np.broadcast_to(np.asarray(origins, dtype=np.float64), np.shape(directions))
    dz = directions[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origins[:, 2] / dz
    return np.where((dz < -_TINY) & (t > 0), t, np.inf)


def cast_walls(
    origins: np.ndarray, directions: np.ndarray, walls: tuple[Wall, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Distance ``[R]`` to the nearest facade (``inf``: none) and which wall ``[R]`` (-1: none)."""
    origins = np.broadcast_to(np.asarray(origins, dtype=np.float64), np.shape(directions))
    best = np.full(len(directions), np.inf)
    which = np.full(len(directions), -1)
    dy = np.where(np.abs(directions[:, 1]) < _TINY, _TINY, directions[:, 1])
    for i, wall in enumerate(walls):
        t = (wall.y_m - origins[:, 1]) / dy
        x = origins[:, 0] + t * directions[:, 0]
        z = origins[:, 2] + t * directions[:, 2]
        hit = (t > 0) & (x >= wall.x_min_m) & (x <= wall.x_max_m) & (z >= 0) & (z <= wall.height_m)
        closer = hit & (t < best)
        best = np.where(closer, t, best)
        which = np.where(closer, i, which)
    return best, which


def pole_boxes(scenery: Scenery) -> np.ndarray:
    """The site's roadside objects as posts ``[S, 6]`` from the ground up to each scatterer's height."""
    count = len(scenery)
    posts = np.zeros((count, 6))
    posts[:, :2] = scenery.positions_m[:, :2]
    posts[:, 2:4] = POLE_WIDTH_M
    posts[:, 4] = scenery.positions_m[:, 2] + 0.2  # the scattering object sits just below the top
    return posts


def vehicle_boxes(sim: SimulatedScenario) -> tuple[np.ndarray, np.ndarray]:
    """Every vehicle of every sample in the local frame.

    Returns:
        boxes: ``[N, 1 + K, 6]`` with the target in column 0 and blocker ``k`` in column ``k + 1``
            (NaN where a sequence has fewer vehicles).
        classes: ``[N, 1 + K] int64`` index into ``traffic.CLASS_NAMES`` (the target is a car), -1 padding.
    """
    target = boxes_enu_to_local(sim.preset, sim.target_box_enu)[:, None, :]
    blockers = boxes_enu_to_local(sim.preset, sim.blocker_boxes_enu).reshape(len(sim), -1, 6)
    classes = np.concatenate([np.zeros((len(sim), 1), dtype=np.int64), sim.blocker_class], axis=1)
    return np.concatenate([target, blockers], axis=1), classes
