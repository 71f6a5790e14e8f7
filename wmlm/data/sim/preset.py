"""Simulated sites as data: ``ScenarioPreset`` (street, traffic, radio, measurement), ``Wall`` and ``PRESETS``.

The bottom of the simulator: the physics (geometry, traffic, channel, sensors) and ``simulate_scenario``
read presets, and this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

CLASS_NAMES = ("car", "van", "truck", "bus")  # vehicle classes, the order of ``ScenarioPreset.vehicle_mix``


@dataclass(frozen=True)
class Wall:
    """A building facade: a vertical plane ``y = y_m`` of the local frame, parallel to the road.

    Attributes:
        y_m: distance of the plane from the BS across the road (negative: behind the BS).
        x_min_m, x_max_m: extent along the road; gaps between buildings are separate walls.
        height_m: top of the facade above the ground.
        loss_db: specular reflection loss at 60 GHz (concrete and glass: about 5-12 dB).
    """

    y_m: float
    x_min_m: float = -150.0
    x_max_m: float = 150.0
    height_m: float = 20.0
    loss_db: float = 8.0

    def __post_init__(self) -> None:
        if not self.x_min_m < self.x_max_m:
            raise ValueError(f"Wall: x_min_m must be below x_max_m, got {self.x_min_m} >= {self.x_max_m}")
        if not self.height_m > 0:
            raise ValueError(f"Wall: height_m must be positive, got {self.height_m}")
        if not self.loss_db >= 0:
            raise ValueError(f"Wall: loss_db must be non-negative, got {self.loss_db}")


@dataclass(frozen=True)
class ScenarioPreset:
    """One simulated site: street geometry, traffic, radio and measurement settings.

    The local frame puts the BS at ``(0, 0, bs_height_m)``, the road along ``x`` and the lanes at
    ``y = lane_offsets_m`` (see ``wmlm.data.sim.geometry``). Invalid values raise ``ValueError`` naming
    the field, also from ``dataclasses.replace``.
    """

    name: str
    origin_lat_lon_deg: tuple[float, float]  # the BS position
    road_bearing_deg: float  # direction of local +x, clockwise from north
    bs_height_m: float
    ue_height_m: float  # transmitter on the target car's roof
    lane_offsets_m: tuple[float, ...]  # lane centres across the road from the BS
    lane_directions: tuple[int, ...]  # +1: traffic drives towards +x, -1: towards -x
    speed_range_mps: tuple[float, float]
    traffic_density_per_km: float  # vehicles per km per lane, besides the target
    vehicle_mix: tuple[float, float, float, float]  # probabilities of car, van, truck, bus
    walls: tuple[Wall, ...] = ()
    num_scatterers: int = 8
    ground_permittivity: float = 5.0  # relative permittivity of the road; 0 disables the ground bounce
    ground_roughness_m: float = 0.3e-3  # rms surface height for the Rayleigh roughness factor
    oxygen_db_per_km: float = 15.0  # absorption at 60 GHz, sea level
    tx_power_dbm: float = 10.0
    bandwidth_hz: float = 200e6
    noise_figure_db: float = 8.0
    blockage_loss_db: tuple[float, float] = (10.0, 25.0)  # (label threshold, largest vehicle loss)
    sample_rate_hz: float = 10.0
    gps_error_m: float = 1.2  # standard deviation per axis of the vehicle's GPS error
    gps_correlation_s: float = 2.0  # the error drifts slowly, as a real receiver's does
    pass_angle_deg: tuple[float, float] = (36.0, 54.0)  # a pass starts/ends this far off broadside
    # a crosswalk, speed bump or driveway at local x = slowdown_x_m: a share of the drivers slow down there,
    # shedding a share of their speed drawn from slowdown_depth (see ``traffic.target_timing``)
    slowdown_x_m: float = 0.0
    slowdown_share: float = 0.0
    slowdown_depth: tuple[float, float] = (0.5, 0.9)
    night: bool = False  # for camera rendering; traffic differs through the other fields
    # yaw of the array (and the camera on it) off the road normal, positive towards local +x: real sites
    # are not all mounted broadside; 0 points the array's broadside straight across the road (local +y)
    boresight_deg: float = 0.0
    site_seed: int = 0  # seeds the scenery: a site's scatterers do not change with the traffic seed

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise ValueError(f"ScenarioPreset {self.name!r}: {name} {rule}, got {getattr(self, name)!r}")

        lat, lon = self.origin_lat_lon_deg
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            fail("origin_lat_lon_deg", "must be (latitude, longitude) in degrees")
        for name in ("bs_height_m", "ue_height_m", "bandwidth_hz", "sample_rate_hz", "gps_correlation_s"):
            if not getattr(self, name) > 0:
                fail(name, "must be positive")
        for name in ("traffic_density_per_km", "ground_roughness_m", "oxygen_db_per_km", "noise_figure_db"):
            if not getattr(self, name) >= 0:
                fail(name, "must be non-negative")
        if not self.gps_error_m >= 0:
            fail("gps_error_m", "must be non-negative")
        if not self.lane_offsets_m or min(self.lane_offsets_m) < 3.0:
            fail("lane_offsets_m", "must hold at least one lane centre, each at least 3 m from the BS")
        if len(self.lane_directions) != len(self.lane_offsets_m) or set(self.lane_directions) - {1, -1}:
            fail("lane_directions", "must give +1 or -1 for each lane of lane_offsets_m")
        low, high = self.speed_range_mps
        if not 0 < low <= high:
            fail("speed_range_mps", "must be (low, high) with 0 < low <= high")
        if (
            len(self.vehicle_mix) != len(CLASS_NAMES)
            or min(self.vehicle_mix) < 0
            or sum(self.vehicle_mix) <= 0
        ):
            fail("vehicle_mix", f"must be {len(CLASS_NAMES)} non-negative weights of {CLASS_NAMES}")
        road_edge_m = max(self.lane_offsets_m) + 2.0
        if any(not (w.y_m < 0 or w.y_m > road_edge_m) for w in self.walls):
            fail("walls", f"must stand behind the BS (y < 0) or beyond the road (y > {road_edge_m} m)")
        if self.num_scatterers < 0:
            fail("num_scatterers", "must be non-negative")
        if not (self.ground_permittivity == 0 or self.ground_permittivity >= 1):
            fail("ground_permittivity", "must be 0 (no ground reflection) or at least 1")
        low, high = self.blockage_loss_db
        if not 0 < low < high:
            fail("blockage_loss_db", "must be (threshold, maximum) in dB with 0 < threshold < maximum")
        low, high = self.pass_angle_deg
        if not 0 < low <= high < 80:
            fail("pass_angle_deg", "must be (low, high) with 0 < low <= high < 80")
        if not 0 <= self.slowdown_share <= 1:
            fail("slowdown_share", "must be a share in [0, 1]")
        low, high = self.slowdown_depth
        if not 0 <= low <= high < 1:
            fail("slowdown_depth", "must be (low, high) with 0 <= low <= high < 1")
        if not -60.0 <= self.boresight_deg <= 60.0:
            fail("boresight_deg", "must be within [-60, 60] degrees of the road normal")
        if int(self.site_seed) != self.site_seed or self.site_seed < 0:
            fail("site_seed", "must be a non-negative integer")


def preset_from_dict(data: dict[str, Any]) -> ScenarioPreset:
    """The preset that ``dataclasses.asdict(preset)`` (e.g. read back from JSON) describes.

    Lists become tuples and wall dicts ``Wall``s; an unknown or missing key raises ``ValueError`` naming it,
    invalid values the preset's own ``ValueError``.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a scenario preset must be a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(ScenarioPreset)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown scenario preset key(s) {unknown}; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    try:
        for name, value in data.items():
            if name == "walls":
                value = tuple(Wall(**wall) for wall in value)
            elif isinstance(value, list):
                value = tuple(value)
            values[name] = value
        return ScenarioPreset(**values)
    except TypeError as error:  # a required key is missing, or a wall is not an object of Wall's fields
        raise ValueError(f"scenario preset: {error}") from None


PRESETS: dict[str, ScenarioPreset] = {
    preset.name: preset
    for preset in (
        # a downtown street between continuous glass/concrete facades, slow dense traffic; the BS stands
        # behind a parking lane, and most drivers brake for a crosswalk just before broadside (stop-and-go)
        ScenarioPreset(
            name="urban_canyon",
            origin_lat_lon_deg=(33.44866, -112.07402),
            road_bearing_deg=8.0,
            bs_height_m=6.0,
            ue_height_m=1.6,
            lane_offsets_m=(11.0, 14.3, 17.6, 20.9),
            lane_directions=(1, 1, -1, -1),
            speed_range_mps=(3.3, 8.5),  # 12-31 km/h
            traffic_density_per_km=30.0,
            vehicle_mix=(0.62, 0.18, 0.12, 0.08),
            walls=(Wall(y_m=27.0, height_m=40.0, loss_db=6.0), Wall(y_m=-4.0, height_m=40.0, loss_db=6.0)),
            num_scatterers=8,
            tx_power_dbm=7.0,
            blockage_loss_db=(10.0, 25.0),
            sample_rate_hz=9.3,
            pass_angle_deg=(38.0, 59.5),
            slowdown_x_m=-2.0,
            slowdown_share=0.6,
            slowdown_depth=(0.7, 0.95),  # down to a crawl: 5-30 % of the cruising speed
            gps_error_m=1.6,  # facades degrade GPS
            site_seed=11,
        ),
        # a two-lane residential road with detached houses and trees, light traffic; the BS is a small
        # cell on a short pole at the kerb, so the near lane passes a few metres from it and the best beam
        # sweeps fast near broadside (as at DeepSense site F, scenarios 8 and 9)
        ScenarioPreset(
            name="suburban",
            origin_lat_lon_deg=(33.30752, -111.84117),
            road_bearing_deg=35.0,
            bs_height_m=3.5,
            ue_height_m=1.5,
            lane_offsets_m=(3.7, 7.2),
            lane_directions=(1, -1),
            speed_range_mps=(4.2, 5.3),  # 15-19 km/h, a residential street
            traffic_density_per_km=18.0,
            vehicle_mix=(0.74, 0.16, 0.07, 0.03),
            walls=tuple(
                Wall(y_m=28.5, x_min_m=a, x_max_m=b, height_m=7.0, loss_db=10.0)
                for a, b in ((-72, -54), (-46, -27), (-18, -3), (6, 23), (32, 49), (57, 75))
            ),
            num_scatterers=14,
            ground_permittivity=4.0,
            tx_power_dbm=-4.0,  # the links are short: a weaker transmitter sees the same SNR as elsewhere
            blockage_loss_db=(10.0, 22.0),
            sample_rate_hz=9.2,
            pass_angle_deg=(50.0, 59.5),
            gps_error_m=1.0,
            site_seed=23,
        ),
        # a six-lane arterial with a far facade, fast traffic, many trucks and buses
        ScenarioPreset(
            name="wide_avenue",
            origin_lat_lon_deg=(33.41483, -111.83216),
            road_bearing_deg=102.0,
            bs_height_m=7.0,
            ue_height_m=1.6,
            lane_offsets_m=(12.0, 15.5, 19.0, 23.5, 27.0, 30.5),
            lane_directions=(1, 1, 1, -1, -1, -1),
            speed_range_mps=(9.0, 14.0),  # 32-50 km/h
            traffic_density_per_km=22.0,
            vehicle_mix=(0.58, 0.17, 0.15, 0.10),
            walls=(Wall(y_m=42.0, height_m=25.0, loss_db=7.0),),
            num_scatterers=10,
            ground_permittivity=5.5,
            tx_power_dbm=12.0,
            blockage_loss_db=(12.0, 28.0),
            sample_rate_hz=9.0,
            pass_angle_deg=(51.0, 62.5),
            gps_error_m=1.3,
            site_seed=37,
        ),
        # a three-lane road at night: sparse, free-flowing (faster) traffic, a larger share of freight,
        # shops across the road
        ScenarioPreset(
            name="night",
            origin_lat_lon_deg=(33.49402, -111.92611),
            road_bearing_deg=271.0,
            bs_height_m=5.5,
            ue_height_m=1.6,
            lane_offsets_m=(7.0, 10.5, 14.0),
            lane_directions=(1, -1, -1),
            speed_range_mps=(8.0, 12.5),  # 29-45 km/h
            traffic_density_per_km=8.0,
            vehicle_mix=(0.55, 0.15, 0.25, 0.05),
            walls=tuple(
                Wall(y_m=31.0, x_min_m=a, x_max_m=b, height_m=12.0, loss_db=8.0)
                for a, b in ((-80, -30), (-22, 18), (26, 80))
            ),
            num_scatterers=6,
            tx_power_dbm=1.0,
            blockage_loss_db=(10.0, 25.0),
            sample_rate_hz=9.7,
            pass_angle_deg=(50.0, 58.0),
            gps_error_m=1.0,
            night=True,
            site_seed=41,
        ),
    )
}


def check_presets(names: Sequence[str], key: str, allow_empty: bool = False) -> None:
    """Refuse names that are not presets, a name listed twice, or (unless ``allow_empty``: procedural sites
    only) an empty list, naming ``key`` (the option).

    Raises:
        ConfigError: with the unknown names and the available presets.
    """
    from wmlm.errors import ConfigError

    unknown = [name for name in names if name not in PRESETS]
    if unknown or not (names or allow_empty):
        raise ConfigError(
            f"{key}: unknown simulator preset(s) {', '.join(unknown) or '(none given)'}; "
            f"available: {', '.join(PRESETS)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}: simulator presets listed twice: {list(names)}")
