"""Scene geometry of the simulator: the local street frame, walls, scatterers and vehicle boxes.

Local frame (metres): the base station (BS) array centre is at ``(0, 0, bs_height_m)``; ``x`` runs along
the road (the array axis), ``y`` points from the BS across the road (the array broadside), ``z`` is up.
The frame is right-handed, so it maps to east/north by a rotation only: local ``+x`` points along
``road_bearing_deg`` (clockwise from north) and local ``+y`` 90 degrees counter-clockwise from it.

Vehicle boxes in the local frame are ``(centre x, centre y, length, width, height)``, axis-aligned
(vehicles drive along ``x``), resting on the ground. In ENU they are
``(east, north, length, width, height, heading)`` with the heading in radians counter-clockwise from east.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmlm.data.readers import EARTH_RADIUS_M
from wmlm.data.sim.preset import ScenarioPreset


@dataclass(frozen=True, eq=False)
class Scenery:
    """Diffuse point scatterers of a site (lamp posts, signs, trees, parked bikes).

    Attributes:
        positions_m: ``[S, 3]`` local-frame positions.
        rcs_m2: ``[S]`` bistatic radar cross-section in square metres.
        phase_rad: ``[S]`` scattering phase, fixed per object.
    An empty scenery (``S = 0``) means no diffuse scattering.
    """

    positions_m: np.ndarray
    rcs_m2: np.ndarray
    phase_rad: np.ndarray

    def __post_init__(self) -> None:
        count = len(self.positions_m)
        if np.shape(self.positions_m) != (count, 3):
            raise ValueError(f"Scenery: positions_m must be [S, 3], got {np.shape(self.positions_m)}")
        if np.shape(self.rcs_m2) != (count,) or np.shape(self.phase_rad) != (count,):
            raise ValueError(
                f"Scenery: rcs_m2 and phase_rad must be [{count}], got "
                f"{np.shape(self.rcs_m2)} and {np.shape(self.phase_rad)}"
            )
        if (np.asarray(self.rcs_m2) < 0).any():
            raise ValueError("Scenery: rcs_m2 must be non-negative")

    def __len__(self) -> int:
        return len(self.positions_m)


def make_scenery(preset: ScenarioPreset, rng: np.random.Generator) -> Scenery:
    """Draw ``preset.num_scatterers`` roadside scatterers on both pavements of the street.

    Objects stand on the near pavement (between the BS and the first lane) or the far one (beyond the
    last lane, in front of any facade there), within the stretch of road a pass covers.
    """
    count = preset.num_scatterers
    near_lane_m, far_lane_m = min(preset.lane_offsets_m), max(preset.lane_offsets_m)
    far_walls = [w.y_m for w in preset.walls if w.y_m > far_lane_m]
    far_limit_m = min(far_walls) - 0.5 if far_walls else far_lane_m + 8.0
    near_side = rng.random(count) < 0.5
    y_near = rng.uniform(2.5, max(near_lane_m - 2.5, 2.6), count)
    y_far = rng.uniform(far_lane_m + 2.5, max(far_limit_m, far_lane_m + 2.6), count)
    positions = np.stack(
        [
            rng.uniform(-45.0, 45.0, count),
            np.where(near_side, y_near, y_far),
            rng.uniform(0.5, 6.0, count),
        ],
        axis=-1,
    )
    # log-uniform: a few strong reflectors (signs, metal poles) among many weak ones
    rcs_m2 = 10 ** rng.uniform(np.log10(0.3), np.log10(15.0), count)
    return Scenery(positions.reshape(count, 3), rcs_m2, rng.uniform(-np.pi, np.pi, count))


# frames --------------------------------------------------------------------------------------------------


def _road_axes(preset: ScenarioPreset) -> tuple[np.ndarray, np.ndarray]:
    """ENU unit vectors ``[2]`` of local ``+x`` (along the road bearing) and local ``+y``."""
    bearing = np.radians(preset.road_bearing_deg)
    x_axis = np.array([np.sin(bearing), np.cos(bearing)])
    y_axis = np.array([-np.cos(bearing), np.sin(bearing)])  # x_axis turned 90 degrees counter-clockwise
    return x_axis, y_axis


def local_to_enu(preset: ScenarioPreset, xy_local: np.ndarray) -> np.ndarray:
    """East/north metres ``[..., 2]`` of local-frame points ``[..., 2]`` (the BS is the origin of both)."""
    x_axis, y_axis = _road_axes(preset)
    xy_local = np.asarray(xy_local, dtype=np.float64)
    return xy_local[..., :1] * x_axis + xy_local[..., 1:2] * y_axis


def heading_local_to_enu(preset: ScenarioPreset, heading_local_rad: np.ndarray) -> np.ndarray:
    """ENU heading (radians counter-clockwise from east, in ``(-pi, pi]``) of local headings (from +x)."""
    road_rad = np.radians(90.0 - preset.road_bearing_deg)
    return np.angle(np.exp(1j * (np.asarray(heading_local_rad) + road_rad)))


def enu_to_local(preset: ScenarioPreset, enu_m: np.ndarray) -> np.ndarray:
    """Local-frame ``[..., 2]`` of east/north metres ``[..., 2]``; the inverse of ``local_to_enu``."""
    x_axis, y_axis = _road_axes(preset)
    enu_m = np.asarray(enu_m, dtype=np.float64)
    return np.stack([enu_m @ x_axis, enu_m @ y_axis], axis=-1)


def boxes_enu_to_local(preset: ScenarioPreset, boxes_enu: np.ndarray) -> np.ndarray:
    """Local boxes with heading ``[..., 6]`` (x, y, length, width, height, heading rad from local +x) of
    ENU boxes ``[..., 6]``; NaN padding stays NaN. The inverse of ``boxes_local_to_enu``."""
    boxes_enu = np.asarray(boxes_enu, dtype=np.float64)
    road_rad = np.radians(90.0 - preset.road_bearing_deg)
    heading = np.angle(np.exp(1j * (boxes_enu[..., 5] - road_rad)))
    centre = enu_to_local(preset, boxes_enu[..., :2])
    return np.concatenate([centre, boxes_enu[..., 2:5], heading[..., None]], axis=-1)


def enu_to_latlon_deg(enu_m: np.ndarray, origin_lat_lon_deg: np.ndarray) -> np.ndarray:
    """Latitude/longitude ``[N, 2]`` of east/north metres ``[N, 2]``; the inverse of ``latlon_to_enu_m``."""
    origin = np.asarray(origin_lat_lon_deg, dtype=np.float64)
    lat0 = np.radians(origin[0])
    d_lat = np.degrees(enu_m[:, 1] / EARTH_RADIUS_M)
    d_lon = np.degrees(enu_m[:, 0] / (EARTH_RADIUS_M * np.cos(lat0)))
    return np.stack([origin[0] + d_lat, origin[1] + d_lon], axis=-1)


def boxes_local_to_enu(
    preset: ScenarioPreset, boxes_local: np.ndarray, heading_local_rad: np.ndarray
) -> np.ndarray:
    """ENU boxes ``[..., 6]`` (east, north, length, width, height, heading) of local boxes ``[..., 5]``."""
    centre = local_to_enu(preset, boxes_local[..., :2])
    heading = heading_local_to_enu(preset, heading_local_rad)
    return np.concatenate([centre, boxes_local[..., 2:5], heading[..., None]], axis=-1)


# rays against boxes ---------------------------------------------------------------------------------------


def segment_box_interval(
    start: np.ndarray, end: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where segments cross box footprints, in the plan view.

    Args:
        start, end: ``[..., 3]`` segment end points (local frame), broadcastable against ``boxes``.
        boxes: ``[..., 5]`` local boxes; rows holding NaN (padding) are never crossed.

    Returns:
        ``t_in, t_out`` (fractions of the segment, clipped to ``[0, 1]``) and ``hit`` (bool), all of the
        broadcast shape: the segment's plan-view projection is inside the footprint for ``t_in <= t <= t_out``.
    """
    t_in = np.zeros(np.broadcast_shapes(start.shape[:-1], boxes.shape[:-1]))
    t_out = np.ones_like(t_in)
    for axis, size in ((0, 2), (1, 3)):
        delta = end[..., axis] - start[..., axis]
        # a segment parallel to a slab: a tiny step keeps the slab test well defined without branches
        delta = np.where(np.abs(delta) < 1e-12, 1e-12, delta)
        low = (boxes[..., axis] - boxes[..., size] / 2 - start[..., axis]) / delta
        high = (boxes[..., axis] + boxes[..., size] / 2 - start[..., axis]) / delta
        t_in = np.maximum(t_in, np.minimum(low, high))
        t_out = np.minimum(t_out, np.maximum(low, high))
    hit = (t_in < t_out) & np.isfinite(boxes).all(axis=-1)
    return t_in, t_out, hit
