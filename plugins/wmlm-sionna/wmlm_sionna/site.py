"""Where the BS stands and where the vehicle drives: a ``Site`` on a street of a ray-traced scene.

The site is expressed as a ``wmlm.data.sim.ScenarioPreset`` so that wmlm's own traffic model
(``traffic.draw_pass``: speeds, pass extent, lane wander, ~10 Hz sampling), GPS error and writer are used
unchanged. The preset's local frame (BS at the origin, ``x`` along the road, ``y`` across it towards the
lanes) maps to the scene frame by ``Site.to_scene``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from wmlm.data.sim.geometry import enu_to_latlon_deg, local_to_enu
from wmlm.data.sim.preset import PRESETS, ScenarioPreset
from wmlm.errors import ConfigError

from wmlm_sionna.scene import HeightMap, Street

# radio, speeds, GPS error and pass extent of the built-in kerbside small cell (``suburban``, calibrated on
# DeepSense site F, whose lanes are as close to the BS as a street of a ray-traced scene puts them); no
# moving traffic (the ray-traced scene is static), no crosswalk, and a 10 Hz sample clock
TEMPLATE = dataclasses.replace(
    PRESETS["suburban"],
    traffic_density_per_km=0.0,
    walls=(),
    num_scatterers=0,
    slowdown_share=0.0,
    sample_rate_hz=10.0,
    # the scene's specular paths leave a cleaner beam pattern than the preset's scatterers: 0 dBm puts the
    # median peak-to-median beam power of simple_street_canyon at the real data's (docs/results/sionna.md)
    tx_power_dbm=0.0,
)
UE_HEIGHT_M = 1.5  # the transmitter on the car's roof
BS_HEIGHT_RANGE_M = (4.0, 7.0)  # a random BS: lamp post to first-floor facade
PAVEMENT_M = 2.0  # lanes keep this far from a street's edge
BS_INSET_M = 0.5  # a random BS stands this far inside the street's edge (on the pavement, at the facade)
LANE_WIDTH_M = 3.5
# lanes at least this far across from the BS: nearer ones sweep the best beam faster than at any DeepSense
# site (ScenarioPreset itself needs 3 m)
MIN_LANE_OFFSET_M = 6.0
MAX_BS_DISTANCE_M = 20.0  # a --bs-position must be this close to a street
MAX_LANES = 6  # an open square is no street: the vehicle keeps to the 6 lanes nearest the BS


@dataclass(frozen=True)
class Site:
    """A BS beside ``street``: ``bs_xyz`` (scene frame), the array axes (rows: along the road, broadside,
    up; scene frame), the ground level, and the ``preset`` describing it for wmlm's traffic and writer."""

    street: Street
    bs_xyz: np.ndarray
    axes: np.ndarray
    ground_m: float
    preset: ScenarioPreset

    def to_scene(self, local_xyz: np.ndarray) -> np.ndarray:
        """Scene-frame points ``[N, 3]`` of local-frame points ``[N, 3]`` (local ``z`` is above the ground)."""
        xy = self.bs_xyz[:2] + local_to_enu(self.preset, local_xyz[:, :2])
        return np.concatenate([xy, self.ground_m + local_xyz[:, 2:3]], axis=1)


def parse_triple(option: str, text: str) -> np.ndarray:
    """``"x,y,z"`` as a float array ``[3]``; ``ConfigError`` naming ``option`` otherwise."""
    try:
        values = np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError:
        values = np.empty(0)
    if values.shape != (3,) or not np.isfinite(values).all():
        raise ConfigError(f"{option}: expected three numbers x,y,z in metres (scene frame), got {text!r}")
    return values


def parse_lat_lon(option: str, text: str) -> tuple[float, float]:
    """``"lat,lon"`` in degrees; ``ConfigError`` naming ``option`` otherwise."""
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option}: expected latitude,longitude in degrees, got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConfigError(f"{option}: expected latitude,longitude in degrees, got {text!r}")
    return lat, lon


def _lanes(street: Street, bs_across: float, side: int) -> list[float]:
    """Lane centres (across coordinate) on the ``side`` (+1: towards larger across values) of the BS."""
    first, last = street.low_m + PAVEMENT_M + LANE_WIDTH_M / 2, street.high_m - PAVEMENT_M - LANE_WIDTH_M / 2
    centres = list(np.arange(first, last + 1e-6, LANE_WIDTH_M)) or [(street.low_m + street.high_m) / 2]
    usable = [c for c in centres if side * (c - bs_across) >= MIN_LANE_OFFSET_M]
    return sorted(usable, key=lambda c: abs(c - bs_across))[:MAX_LANES]


def _distance(street: Street, xy: np.ndarray) -> float:
    along, across = (xy[0], xy[1]) if street.axis == 0 else (xy[1], xy[0])
    d_along = max(street.start_m - along, 0.0, along - street.end_m)
    d_across = max(street.low_m - across, 0.0, across - street.high_m)
    return float(np.hypot(d_along, d_across))


def make_site(
    streets: list[Street],
    heights: HeightMap,
    origin_lat_lon: tuple[float, float],
    name: str,
    rng: np.random.Generator,
    bs_position: np.ndarray | None = None,
    street_index: int | None = None,
) -> Site:
    """The site: the BS at ``bs_position`` beside its nearest street, or on a seeded street side.

    Without ``street_index`` a random street is drawn from the canyons (the best-ranked ones); the BS then
    stands on a random side, 0.5 m inside the street's edge, at a random height and along-street position
    that leaves room for a whole pass. ``ConfigError`` for a position far from every street or with no lane
    at least ``MIN_LANE_OFFSET_M`` across from it.
    """
    if not streets:
        raise ConfigError(
            "--scene: found no straight street to drive in this scene (see the README: Streets)"
        )
    if street_index is not None and not 1 <= street_index <= len(streets):
        listed = "; ".join(f"{k}: {s.describe()}" for k, s in enumerate(streets[:10], start=1))
        raise ConfigError(f"--street: expected 1..{len(streets)}, got {street_index}; streets: {listed}")
    if bs_position is not None:
        chosen = (
            streets[street_index - 1]
            if street_index
            else min(streets, key=lambda s: _distance(s, bs_position[:2]))
        )
        if _distance(chosen, bs_position[:2]) > MAX_BS_DISTANCE_M:
            raise ConfigError(
                f"--bs-position: {','.join(f'{v:g}' for v in bs_position)} is more than {MAX_BS_DISTANCE_M:g} m "
                f"from every street of the scene; the nearest is {chosen.describe()}"
            )
        bs = bs_position.astype(np.float64)
        across = bs[1] if chosen.axis == 0 else bs[0]
        side = 1 if len(_lanes(chosen, across, 1)) >= len(_lanes(chosen, across, -1)) else -1
        if bs[2] - heights.ground_m <= 0.5:
            raise ConfigError(
                f"--bs-position: z must be above the ground ({heights.ground_m:.2f} m), got {bs[2]:g}"
            )
    else:
        # a street wide enough for a lane MIN_LANE_OFFSET_M across from a BS at its edge; the canyons first
        wide = [
            s for s in streets if s.width_m >= BS_INSET_M + MIN_LANE_OFFSET_M + LANE_WIDTH_M / 2 + PAVEMENT_M
        ]
        if street_index is None and not wide:
            raise ConfigError(
                f"--scene: no street of the scene is wide enough for a lane {MIN_LANE_OFFSET_M:g} m across from "
                "a BS at its edge; give --bs-position and --street"
            )
        best = wide[0].canyon if wide else 0.0
        candidates = [s for s in wide if s.canyon >= best - 0.1]
        chosen = streets[street_index - 1] if street_index else candidates[int(rng.integers(len(candidates)))]
        side = 1 if rng.random() < 0.5 else -1  # the lanes' side: the BS stands at the opposite edge
        across = chosen.low_m + BS_INSET_M if side > 0 else chosen.high_m - BS_INSET_M
        margin = min(40.0, chosen.length_m / 2)
        along = (
            float(rng.uniform(chosen.start_m + margin, chosen.end_m - margin))
            if margin < chosen.length_m / 2
            else (chosen.start_m + chosen.end_m) / 2
        )
        height = float(rng.uniform(*BS_HEIGHT_RANGE_M))
        xy = (along, across) if chosen.axis == 0 else (across, along)
        bs = np.array([xy[0], xy[1], heights.ground_m + height])
    lanes = _lanes(chosen, across, side)
    if not lanes:
        option = "--bs-position" if bs_position is not None else "--street"
        raise ConfigError(
            f"{option}: no lane of the street {chosen.describe()} is at least {MIN_LANE_OFFSET_M:g} m across "
            "from the BS; stand it beside the street instead"
        )
    # broadside points across the street towards the lanes; the road axis is broadside turned clockwise, so
    # that (axis, broadside, up) is right-handed as the preset's local frame is
    broadside = np.zeros(3)
    broadside[1 - chosen.axis] = side
    road = np.array([broadside[1], -broadside[0], 0.0])
    bearing = float(np.degrees(np.arctan2(road[0], road[1])) % 360.0)
    offsets = sorted(abs(c - across) for c in lanes)
    directions = tuple(1 if k < (len(offsets) + 1) // 2 else -1 for k in range(len(offsets)))
    bs_lat_lon = enu_to_latlon_deg(bs[None, :2], np.asarray(origin_lat_lon))[0]
    preset = dataclasses.replace(
        TEMPLATE,
        name=name,
        origin_lat_lon_deg=(float(bs_lat_lon[0]), float(bs_lat_lon[1])),
        road_bearing_deg=bearing,
        bs_height_m=float(bs[2] - heights.ground_m),
        ue_height_m=UE_HEIGHT_M,
        lane_offsets_m=tuple(round(o, 3) for o in offsets),
        lane_directions=directions,
    )
    axes = np.stack([road, broadside, np.array([0.0, 0.0, 1.0])])
    return Site(chosen, bs, axes, heights.ground_m, preset)
