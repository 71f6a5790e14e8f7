"""Scenario presets (sites) and ``simulate_scenario``: vehicle passes measured by a 60 GHz BS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from wmlm.data.sim.channel import measure_beams
from wmlm.data.sim.geometry import (
    Scenery,
    Wall,
    boxes_local_to_enu,
    enu_to_latlon_deg,
    heading_local_to_enu,
    local_to_enu,
    make_scenery,
)
from wmlm.data.sim.traffic import CLASS_NAMES, draw_pass


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
        if int(self.site_seed) != self.site_seed or self.site_seed < 0:
            fail("site_seed", "must be a non-negative integer")


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


@dataclass(frozen=True, eq=False)
class SimulatedScenario:
    """A simulated scenario, one row per sample, sequences (vehicle passes) one after another.

    Attributes (N samples, K = most other vehicles in any sequence):
        preset, seed: what was simulated.
        power_linear: ``[N, 64] float32`` measured beam power (element ``i`` = beam ``i + 1``).
        beam: ``[N] int64`` 1-based optimal beam, the argmax of ``power_linear``.
        seq_index: ``[N] int64`` 1-based sequence number.
        time_s: ``[N]`` time since the start of the sample's sequence.
        lat_lon: ``[N, 2]`` the vehicle's GPS fix (true position plus GPS error), degrees.
        bs_lat_lon: ``[2]`` the BS position, degrees.
        position_enu_m: ``[N, 2]`` true vehicle position east/north of the BS.
        target_xyz_local_m: ``[N, 3]`` true transmitter position in the local frame.
        los_aod_deg: ``[N]`` line-of-sight angle off broadside, ``degrees(arcsin(dx / |d|))``.
        blocked, los_loss_db: ``[N]`` line-of-sight blockage label and vehicle diffraction loss.
        target_box_enu: ``[N, 6]`` (east, north, length, width, height, heading rad from east).
        blocker_boxes_enu: ``[N, K, 6]`` the other vehicles, NaN where ``blocker_class < 0``.
        blocker_class: ``[N, K] int64`` index into ``CLASS_NAMES``, -1 for padding.
        scenery: the site's diffuse scatterers (local frame).
    """

    preset: ScenarioPreset
    seed: int
    power_linear: np.ndarray
    beam: np.ndarray
    seq_index: np.ndarray
    time_s: np.ndarray
    lat_lon: np.ndarray
    bs_lat_lon: np.ndarray
    position_enu_m: np.ndarray
    target_xyz_local_m: np.ndarray
    los_aod_deg: np.ndarray
    blocked: np.ndarray
    los_loss_db: np.ndarray
    target_box_enu: np.ndarray
    blocker_boxes_enu: np.ndarray
    blocker_class: np.ndarray
    scenery: Scenery = field(repr=False)

    def __len__(self) -> int:
        return len(self.beam)


def _gps_error_m(preset: ScenarioPreset, time_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """East/north GPS error ``[T, 2]``: a first-order Gauss-Markov drift with std ``gps_error_m`` per axis."""
    error = np.empty((len(time_s), 2))
    error[0] = rng.normal(0.0, preset.gps_error_m, 2)
    steps = rng.normal(0.0, 1.0, (len(time_s), 2))
    for i in range(1, len(time_s)):
        keep = np.exp(-(time_s[i] - time_s[i - 1]) / preset.gps_correlation_s)
        error[i] = keep * error[i - 1] + np.sqrt(1 - keep**2) * preset.gps_error_m * steps[i]
    return error


def _simulate_sequence(
    preset: ScenarioPreset, scenery: Scenery, seed: int, number: int
) -> dict[str, np.ndarray]:
    """Arrays of sequence ``number`` (1-based); its random streams depend on (site, seed, number) only."""
    streams = np.random.SeedSequence([preset.site_seed, seed, number]).spawn(4)
    target_rng, traffic_rng, noise_rng, gps_rng = (np.random.default_rng(s) for s in streams)
    drive = draw_pass(preset, target_rng, traffic_rng)
    measured = measure_beams(preset, drive.target_xyz_m, drive.blocker_boxes, scenery, noise_rng)
    position = local_to_enu(preset, drive.target_xyz_m[:, :2])
    bs = np.array([0.0, 0.0, preset.bs_height_m])
    delta = drive.target_xyz_m - bs
    heading = heading_local_to_enu(preset, drive.target_heading_rad)
    return {
        "power_linear": measured.power_linear,
        "time_s": drive.time_s,
        "lat_lon": enu_to_latlon_deg(
            position + _gps_error_m(preset, drive.time_s, gps_rng), preset.origin_lat_lon_deg
        ),
        "position_enu_m": position,
        "target_xyz_local_m": drive.target_xyz_m,
        "los_aod_deg": np.degrees(np.arcsin(delta[:, 0] / np.linalg.norm(delta, axis=1))),
        "blocked": measured.blocked,
        "los_loss_db": measured.los_loss_db,
        "target_box_enu": np.concatenate([position, drive.target_box[:, 2:], heading[:, None]], axis=1),
        "blocker_boxes_enu": boxes_local_to_enu(preset, drive.blocker_boxes, drive.blocker_heading_rad),
        "blocker_class": np.broadcast_to(drive.blocker_class, drive.blocker_boxes.shape[:2]),
    }


def _pad(arrays: list[np.ndarray], fill: float | int) -> np.ndarray:
    """Concatenate ``[T_i, K_i, ...]`` arrays along samples, padding the vehicle axis to the largest K."""
    width = max(a.shape[1] for a in arrays)
    padded = [
        np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=fill)
        for a in arrays
    ]
    return np.concatenate(padded)


def simulate_scenario(
    preset: ScenarioPreset,
    num_sequences: int,
    seed: int,
    on_sequence: Callable[[int], None] | None = None,
) -> SimulatedScenario:
    """Simulate ``num_sequences`` vehicle passes at ``preset``'s site.

    Deterministic in ``(preset, seed)``; sequence ``k`` is the same whatever ``num_sequences`` is.
    ``on_sequence(k)`` is called after each sequence (progress bars).
    """
    if int(num_sequences) != num_sequences or num_sequences < 1:
        raise ValueError(f"num_sequences must be a positive integer, got {num_sequences!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    scenery = make_scenery(preset, np.random.default_rng(np.random.SeedSequence([preset.site_seed])))
    parts = []
    for number in range(1, int(num_sequences) + 1):
        parts.append(_simulate_sequence(preset, scenery, seed, number))
        if on_sequence is not None:
            on_sequence(number)
    joined = {
        key: np.concatenate([p[key] for p in parts])
        for key in parts[0]
        if key not in ("blocker_boxes_enu", "blocker_class")
    }
    power = joined["power_linear"]
    return SimulatedScenario(
        preset=preset,
        seed=seed,
        power_linear=power,
        beam=np.argmax(power, axis=1).astype(np.int64) + 1,
        seq_index=np.concatenate(
            [np.full(len(p["time_s"]), i + 1, dtype=np.int64) for i, p in enumerate(parts)]
        ),
        time_s=joined["time_s"],
        lat_lon=joined["lat_lon"],
        bs_lat_lon=np.asarray(preset.origin_lat_lon_deg, dtype=np.float64),
        position_enu_m=joined["position_enu_m"],
        target_xyz_local_m=joined["target_xyz_local_m"],
        los_aod_deg=joined["los_aod_deg"],
        blocked=joined["blocked"],
        los_loss_db=joined["los_loss_db"],
        target_box_enu=joined["target_box_enu"],
        blocker_boxes_enu=_pad([p["blocker_boxes_enu"] for p in parts], np.nan),
        blocker_class=_pad([p["blocker_class"] for p in parts], -1),
        scenery=scenery,
    )
