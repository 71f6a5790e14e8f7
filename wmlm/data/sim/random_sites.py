"""Procedural sites: ``SITE_DISTRIBUTIONS``, one table of documented distributions over a site's parameters.

``random_site(seed, k)`` draws site ``k`` (1-based) of the population ``seed`` and turns the draws into a
``ScenarioPreset``. Every entry of the table (a *knob*) is drawn from its own random stream, keyed by
``(seed, k, knob name)``: site ``k`` does not depend on how many sites are drawn, nor on the order of the
table, and adding a knob later leaves the other knobs' draws as they were. Derived fields (lane offsets,
wall layout) are computed from the knobs in ``build_preset``; the wall layout draws its building lengths
and gaps from one more stream of its own. ``docs/simulator_sites.md`` documents the table
(``describe_distributions`` prints it as markdown).

Not drawn, fixed at the preset's defaults: bandwidth (200 MHz, the DeepSense radio), oxygen absorption
(15 dB/km, 60 GHz at sea level), ground roughness, the blockage label threshold (10 dB: the label's
definition) and everything about the codebook and the sensors.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmlm.data.sim.preset import CLASS_NAMES, ScenarioPreset, Wall

STREAM = 0x517E5  # keeps the site draws apart from every other random stream of the simulator
TABLE_VERSION = 2  # bump when a distribution changes: the same (seed, k) then gives another site


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"Uniform: low must be at most high, got ({self.low}, {self.high})")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class LogUniform(Uniform):
    """Uniform in the logarithm on ``[low, high]`` (``low > 0``): as many sites per decade."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.low > 0:
            raise ValueError(f"LogUniform: low must be positive, got {self.low}")

    def draw(self, rng: np.random.Generator) -> float:
        return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class TruncatedNormal(Uniform):
    """Normal with ``mean`` and ``std``, redrawn until inside ``[low, high]``."""

    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.std > 0 and self.low <= self.mean <= self.high):
            raise ValueError(f"TruncatedNormal: need std > 0 and low <= mean <= high, got {self}")

    def draw(self, rng: np.random.Generator) -> float:
        while True:
            value = float(rng.normal(self.mean, self.std))
            if self.low <= value <= self.high:
                return value

    def describe(self) -> str:
        return f"normal(mean {self.mean:g}, std {self.std:g}) within [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Choice:
    """One of ``options`` with probabilities proportional to ``weights`` (equal when empty)."""

    options: tuple[Any, ...]
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("Choice: needs at least one option")
        if self.weights and (len(self.weights) != len(self.options) or min(self.weights) < 0):
            raise ValueError(f"Choice: need one non-negative weight per option, got {self.weights}")
        if self.weights and sum(self.weights) <= 0:
            raise ValueError("Choice: the weights must not all be zero")

    def draw(self, rng: np.random.Generator) -> Any:
        weights = np.asarray(self.weights or [1.0] * len(self.options), dtype=np.float64)
        return self.options[int(rng.choice(len(self.options), p=weights / weights.sum()))]

    def contains(self, value: Any) -> bool:
        return value in self.options

    def describe(self) -> str:
        if not self.weights:
            return "one of " + ", ".join(map(str, self.options)) + " (equally likely)"
        total = sum(self.weights)
        return "one of " + ", ".join(f"{o} ({w / total:.0%})" for o, w in zip(self.options, self.weights))


@dataclass(frozen=True)
class Bernoulli:
    """True with probability ``p``."""

    p: float

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ValueError(f"Bernoulli: p must be a probability, got {self.p}")

    def draw(self, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.p)

    def contains(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return f"true with probability {self.p:g}"


@dataclass(frozen=True)
class Dirichlet:
    """Weights summing to 1 around ``mean``; larger ``concentration``: closer to the mean."""

    mean: tuple[float, ...]
    concentration: float

    def __post_init__(self) -> None:
        if not (
            self.mean and min(self.mean) > 0 and abs(sum(self.mean) - 1) < 1e-9 and self.concentration > 0
        ):
            raise ValueError(
                f"Dirichlet: need positive mean weights summing to 1 and concentration > 0: {self}"
            )

    def draw(self, rng: np.random.Generator) -> list[float]:  # a list: the knobs stay as JSON reads them
        return [float(v) for v in rng.dirichlet(np.asarray(self.mean) * self.concentration)]

    def contains(self, value: Any) -> bool:
        return len(value) == len(self.mean) and min(value) >= 0 and abs(sum(value) - 1) < 1e-6

    def describe(self) -> str:
        return (
            f"Dirichlet(mean {', '.join(f'{m:g}' for m in self.mean)}; concentration {self.concentration:g})"
        )


Distribution = Uniform | Choice | Bernoulli | Dirichlet

# specular reflection loss at 60 GHz per facade material (dB), drawn uniformly within each range
WALL_MATERIALS: dict[str, Uniform] = {
    "glass": Uniform(4.5, 7.0),
    "concrete": Uniform(6.5, 10.0),
    "brick": Uniform(8.5, 12.0),
}
WALL_SPAN_M = 150.0  # facades cover local x in [-150, 150], as the presets' do
MAX_SPEED_MPS = 17.0  # 61 km/h: the fastest urban traffic the sites carry
# fast roads are wide and set back, kerbside streets slow: the fastest driver passes the nearest lane centre
# at no more than this angular rate seen from the BS (40 km/h at 12 m), speeds scaled down together. Table
# version 1 allowed 1.8 rad/s (the fastest preset, night); its population then swept the beams twice as fast
# as the real DeepSense sites (passes of 40 samples against 46-87, repeat-last accuracy 0.17 against
# 0.28-0.47; docs/results/sim_population.md)
MAX_ANGULAR_RATE_RAD_S = 0.9
MAX_SLOWDOWN_DEPTH = 0.95
MAX_PASS_ANGLE_DEG = 65.0

# knob -> (distribution, what it sets). The one table of the site population; docs/simulator_sites.md
# documents it and tests check every drawn site against it.
SITE_DISTRIBUTIONS: dict[str, tuple[Distribution, str]] = {
    # street geometry
    "road_bearing_deg": (Uniform(0.0, 360.0), "road direction (local +x), clockwise from north"),
    "num_lanes": (Choice((1, 2, 3, 4, 5, 6), (0.10, 0.30, 0.20, 0.22, 0.06, 0.12)), "lanes"),
    "lane_width_m": (Uniform(3.0, 3.7), "lane width; lane centres are one width apart"),
    "one_way": (Bernoulli(0.2), "all lanes drive one way; else the near half drives one way"),
    "near_direction": (Choice((1, -1)), "direction (+1: towards local +x) of the lane nearest the BS"),
    "median_m": (Uniform(0.0, 3.0), "extra gap between the two directions of a two-way road"),
    "setback_m": (Uniform(1.5, 11.0), "BS to the near edge of the nearest lane (kerb, parking lane)"),
    "bs_height_m": (Uniform(3.0, 8.0), "array height above the road"),
    "ue_height_m": (Uniform(1.4, 1.8), "transmitter height on the target car's roof"),
    "boresight_deg": (
        TruncatedNormal(-30.0, 30.0, mean=0.0, std=12.0),
        "array (and camera) yaw off the road normal, towards +x",
    ),
    # surroundings
    "far_wall": (
        Choice(("none", "continuous", "buildings"), (0.2, 0.35, 0.45)),
        "facade across the road: none, one continuous facade, or buildings with gaps",
    ),
    "far_wall_setback_m": (Uniform(2.5, 14.0), "far lane's edge to the far facade (pavement, yards)"),
    "far_wall_height_m": (LogUniform(5.0, 40.0), "height of the far facade"),
    "far_wall_material": (Choice(tuple(WALL_MATERIALS)), "far facade material (sets its reflection loss)"),
    "building_length_m": (Uniform(12.0, 60.0), "length of each building of a 'buildings' facade"),
    "building_gap_m": (Uniform(3.0, 15.0), "gap between the buildings of a 'buildings' facade"),
    "near_wall": (Bernoulli(0.4), "a facade behind the BS (the array mounted on a building)"),
    "near_wall_offset_m": (Uniform(1.0, 6.0), "BS to the facade behind it"),
    "near_wall_height_m": (LogUniform(4.0, 40.0), "height of the facade behind the BS"),
    "near_wall_material": (Choice(tuple(WALL_MATERIALS)), "material of the facade behind the BS"),
    "num_scatterers": (Choice(tuple(range(2, 17))), "roadside posts, signs and trees (diffuse scatterers)"),
    "ground_permittivity": (Uniform(3.5, 6.5), "relative permittivity of the road (ground bounce)"),
    # traffic
    "traffic_density_per_km": (LogUniform(3.0, 40.0), "other vehicles per km per lane"),
    "speed_low_mps": (Uniform(3.0, 11.0), "lowest cruising speed"),
    "speed_ratio": (
        Uniform(1.2, 2.6),
        f"highest / lowest cruising speed (both scaled down until the highest is at most {MAX_SPEED_MPS:g} m/s "
        f"and {MAX_ANGULAR_RATE_RAD_S:g} rad/s at the nearest lane)",
    ),
    "vehicle_mix": (Dirichlet((0.62, 0.17, 0.13, 0.08), 20.0), "shares of " + ", ".join(CLASS_NAMES)),
    "slowdown": (Bernoulli(0.35), "a crosswalk, speed bump or driveway where drivers slow down"),
    "slowdown_x_m": (Uniform(-15.0, 15.0), "where along the road (local x)"),
    "slowdown_share": (Uniform(0.2, 0.8), "share of the drivers who slow down there"),
    "slowdown_depth_low": (Uniform(0.4, 0.8), "least share of the speed shed"),
    "slowdown_depth_span": (
        Uniform(0.05, 0.2),
        f"most minus least share (most capped at {MAX_SLOWDOWN_DEPTH})",
    ),
    "pass_angle_low_deg": (Uniform(36.0, 52.0), "a pass starts/ends at least this far off the road normal"),
    "pass_angle_span_deg": (
        Uniform(6.0, 16.0),
        f"and at most this much further (capped at {MAX_PASS_ANGLE_DEG})",
    ),
    # radio and measurement
    # from -2 dBm, not -4 (table version 1): below it the far lanes of a high-noise-figure site are noise
    # limited (peak-to-median under 2 dB, the best beam a noise draw), unlike every real DeepSense site (>= 3.4 dB)
    "tx_power_dbm": (Uniform(-2.0, 12.0), "transmit power"),
    "noise_figure_db": (Uniform(6.0, 10.0), "receiver noise figure"),
    "blockage_max_db": (
        Uniform(22.0, 28.0),
        "largest vehicle diffraction loss (label threshold fixed at 10 dB)",
    ),
    "sample_rate_hz": (Uniform(9.0, 10.0), "beam sweeps per second"),
    "gps_error_m": (Uniform(0.6, 2.0), "GPS error, standard deviation per axis"),
    "gps_correlation_s": (Uniform(1.0, 4.0), "time constant of the GPS error's drift"),
    "night": (Bernoulli(0.25), "night (camera lighting)"),
    "latitude_deg": (Uniform(33.2, 33.7), "BS latitude (the Phoenix metro area, as DeepSense's sites)"),
    "longitude_deg": (Uniform(-112.3, -111.6), "BS longitude"),
}
LAYOUT_STREAM = "wall_layout"  # the stream of building lengths and gaps, beside the knobs' streams


def _rng(seed: int, site: int, stream: str) -> np.random.Generator:
    """The random stream of ``stream`` (a knob name) at site ``site`` of population ``seed``."""
    key = zlib.crc32(stream.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([STREAM, TABLE_VERSION, seed, site, key]))


def site_name(seed: int, site: int) -> str:
    """Folder and scenario name of site ``site`` (1-based) of population ``seed``: ``s<seed>_site<00001>``."""
    return f"s{seed}_site{site:05d}"


def draw_knobs(seed: int, site: int) -> dict[str, Any]:
    """The drawn value of every knob of ``SITE_DISTRIBUTIONS`` for site ``site`` (JSON-ready)."""
    _check_index(seed, site)
    return {name: dist.draw(_rng(seed, site, name)) for name, (dist, _) in SITE_DISTRIBUTIONS.items()}


def _check_index(seed: int, site: int) -> None:
    if int(seed) != seed or seed < 0:
        raise ValueError(f"site seed must be a non-negative integer, got {seed!r}")
    if int(site) != site or site < 1:
        raise ValueError(f"site number must be a positive integer (1-based), got {site!r}")


def _facade(
    kind: str, y_m: float, height_m: float, loss_db: float, knobs: dict[str, Any], rng: np.random.Generator
) -> tuple[Wall, ...]:
    """One facade at ``y_m``: continuous, or buildings of ``building_length_m`` with random extra jitter
    and gaps of ``building_gap_m`` along the whole stretch."""
    if kind == "continuous":
        return (Wall(y_m=y_m, x_min_m=-WALL_SPAN_M, x_max_m=WALL_SPAN_M, height_m=height_m, loss_db=loss_db),)
    walls = []
    x = -WALL_SPAN_M + float(rng.uniform(0.0, knobs["building_gap_m"]))
    while x < WALL_SPAN_M:
        length = knobs["building_length_m"] * float(rng.uniform(0.7, 1.3))
        end = min(x + length, WALL_SPAN_M)
        walls.append(Wall(y_m=y_m, x_min_m=x, x_max_m=end, height_m=height_m, loss_db=loss_db))
        x = end + knobs["building_gap_m"] * float(rng.uniform(0.7, 1.3))
    return tuple(walls)


def build_preset(name: str, knobs: dict[str, Any], seed: int, site: int) -> ScenarioPreset:
    """The ``ScenarioPreset`` of drawn ``knobs`` (see ``SITE_DISTRIBUTIONS``) for site ``site``."""
    lanes, width = int(knobs["num_lanes"]), float(knobs["lane_width_m"])
    near_count = lanes if knobs["one_way"] or lanes == 1 else (lanes + 1) // 2
    directions = tuple(
        knobs["near_direction"] if i < near_count else -knobs["near_direction"] for i in range(lanes)
    )
    offsets, y = [], knobs["setback_m"] + width / 2
    for i in range(lanes):
        if i == near_count:  # the other direction starts beyond the median
            y += knobs["median_m"]
        offsets.append(round(y, 6))
        y += width
    road_edge_m = offsets[-1] + width / 2
    layout = _rng(seed, site, LAYOUT_STREAM)
    walls: tuple[Wall, ...] = ()
    if knobs["far_wall"] != "none":
        loss = WALL_MATERIALS[knobs["far_wall_material"]].draw(layout)
        y_far = road_edge_m + knobs["far_wall_setback_m"]
        walls += _facade(knobs["far_wall"], y_far, knobs["far_wall_height_m"], loss, knobs, layout)
    if knobs["near_wall"]:
        loss = WALL_MATERIALS[knobs["near_wall_material"]].draw(layout)
        walls += _facade(
            "continuous", -knobs["near_wall_offset_m"], knobs["near_wall_height_m"], loss, knobs, layout
        )
    speed_high = knobs["speed_low_mps"] * knobs["speed_ratio"]
    scale = min(1.0, MAX_SPEED_MPS / speed_high, MAX_ANGULAR_RATE_RAD_S * offsets[0] / speed_high)
    depth_low = knobs["slowdown_depth_low"]
    angle_low = knobs["pass_angle_low_deg"]
    site_seed = int(np.random.SeedSequence([STREAM, TABLE_VERSION, seed, site]).generate_state(1)[0])
    return ScenarioPreset(
        name=name,
        origin_lat_lon_deg=(knobs["latitude_deg"], knobs["longitude_deg"]),
        road_bearing_deg=knobs["road_bearing_deg"],
        bs_height_m=knobs["bs_height_m"],
        ue_height_m=knobs["ue_height_m"],
        lane_offsets_m=tuple(offsets),
        lane_directions=directions,
        speed_range_mps=(knobs["speed_low_mps"] * scale, speed_high * scale),
        traffic_density_per_km=knobs["traffic_density_per_km"],
        vehicle_mix=tuple(knobs["vehicle_mix"]),
        walls=walls,
        num_scatterers=int(knobs["num_scatterers"]),
        ground_permittivity=knobs["ground_permittivity"],
        tx_power_dbm=knobs["tx_power_dbm"],
        noise_figure_db=knobs["noise_figure_db"],
        blockage_loss_db=(10.0, knobs["blockage_max_db"]),
        sample_rate_hz=knobs["sample_rate_hz"],
        gps_error_m=knobs["gps_error_m"],
        gps_correlation_s=knobs["gps_correlation_s"],
        pass_angle_deg=(angle_low, min(angle_low + knobs["pass_angle_span_deg"], MAX_PASS_ANGLE_DEG)),
        slowdown_x_m=knobs["slowdown_x_m"] if knobs["slowdown"] else 0.0,
        slowdown_share=knobs["slowdown_share"] if knobs["slowdown"] else 0.0,
        slowdown_depth=(depth_low, min(depth_low + knobs["slowdown_depth_span"], MAX_SLOWDOWN_DEPTH)),
        night=bool(knobs["night"]),
        boresight_deg=knobs["boresight_deg"],
        site_seed=site_seed,
    )


@dataclass(frozen=True)
class RandomSite:
    """Site ``site`` (1-based) of the population ``seed``: its knobs and the preset built from them."""

    seed: int
    site: int
    knobs: dict[str, Any]
    preset: ScenarioPreset

    @property
    def name(self) -> str:
        return self.preset.name

    def record(self) -> dict[str, Any]:
        """What a site folder records about the draw (``simulation.json``, key ``random_site``)."""
        return {"seed": self.seed, "site": self.site, "table_version": TABLE_VERSION, "knobs": self.knobs}


def random_site(seed: int, site: int) -> RandomSite:
    """Draw site ``site`` (1-based) of population ``seed``; the same arguments give the same site."""
    knobs = draw_knobs(seed, site)
    return RandomSite(seed, site, knobs, build_preset(site_name(seed, site), knobs, seed, site))


def check_knobs(knobs: dict[str, Any]) -> list[str]:
    """Knobs outside ``SITE_DISTRIBUTIONS`` (unknown, missing, or outside the support): one line each."""
    problems = [f"unknown knob {name!r}" for name in knobs if name not in SITE_DISTRIBUTIONS]
    for name, (dist, _) in SITE_DISTRIBUTIONS.items():
        if name not in knobs:
            problems.append(f"missing knob {name!r}")
        elif not dist.contains(knobs[name]):
            problems.append(f"{name} = {knobs[name]!r} is outside {dist.describe()}")
    return problems


def describe_distributions() -> str:
    """``SITE_DISTRIBUTIONS`` as a markdown table (knob, distribution, what it sets)."""
    lines = ["| knob | distribution | what it sets |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | {dist.describe()} | {what} |" for name, (dist, what) in SITE_DISTRIBUTIONS.items()
    ]
    return "\n".join(lines) + "\n"
