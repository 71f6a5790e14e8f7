"""The BS LiDAR: a multi-beam scanning LiDAR at the base station, ray-cast against the simulated street.

Sensor: mounted at the BS array centre ``(0, 0, bs_height_m)``; by default 16 beams spread evenly in
elevation from -30 to +2 degrees (tilted down at the road, as a pole-mounted roadside unit is) times 120
azimuth steps over a 120 degree sector centred on the array broadside (local ``+y``): 1,920 rays per scan.
Each ray returns the nearest of the ground plane, the building facades, the roadside posts (the radio
channel's scatterers) and every vehicle box (oriented slab test, ``raycast``); a return farther than
``max_range_m`` (or no surface at all: sky) is dropped, as are a few random returns (dark paint, glass).
Ranges get Gaussian noise.

Format: each sample's scan is ``float32 [M, 3]``, the ``(x, y, z)`` metres of its returns in the local
street frame (``geometry``: origin on the ground below the BS, ``x`` along the road, ``y`` across it
towards the road, ``z`` up; ground returns have ``z`` near 0). ``M`` varies per sample; points are in
scan order (elevation-major, then azimuth). The writer stores it as ``unit1/lidar_data/lidar_K.npy``
(``numpy.save``) in the CSV column ``unit1_lidar``, the DeepSense 6G column name. The real DeepSense files
hold the same kind of point arrays in ``.mat`` / ``.csv`` files, in the sensor's own frame; a LiDAR reader
(plugin ``wmlm-lidar``) should accept both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmlm.data.sim.raycast import cast_boxes, cast_ground, cast_walls, grid_pairs, pole_boxes, vehicle_boxes
from wmlm.data.sim.scenario import SimulatedScenario

LIDAR_STREAM = 7311  # random stream of this module (range noise and dropouts)


@dataclass(frozen=True)
class LidarConfig:
    """Scan pattern and sensor limits.

    Attributes:
        num_beams: lasers stacked in elevation, evenly from ``elevation_deg[0]`` to ``elevation_deg[1]``.
        elevation_deg: lowest and highest beam above the horizontal.
        num_azimuth: firings per beam over the sector.
        azimuth_span_deg: width of the sector centred on the array broadside (360: a full turn).
        max_range_m: farthest return reported.
        range_noise_m: standard deviation of the range error.
        dropout: chance that a valid return is lost.
    """

    num_beams: int = 16
    elevation_deg: tuple[float, float] = (-30.0, 2.0)
    num_azimuth: int = 120
    azimuth_span_deg: float = 120.0
    max_range_m: float = 80.0
    range_noise_m: float = 0.02
    dropout: float = 0.01

    def __post_init__(self) -> None:
        if self.num_beams < 1 or self.num_azimuth < 1:
            raise ValueError(f"LidarConfig: need at least one beam and one azimuth step, got {self}")
        low, high = self.elevation_deg
        if not -90.0 < low <= high < 90.0:
            raise ValueError(
                f"LidarConfig: elevation_deg must be (low, high) within (-90, 90), got {low, high}"
            )
        if not 0.0 < self.azimuth_span_deg <= 360.0:
            raise ValueError(
                f"LidarConfig: azimuth_span_deg must be in (0, 360], got {self.azimuth_span_deg}"
            )
        if not self.max_range_m > 0 or not self.range_noise_m >= 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"LidarConfig: need max_range_m > 0, range_noise_m >= 0, 0 <= dropout < 1: {self}"
            )


def scan_angles(config: LidarConfig) -> tuple[np.ndarray, np.ndarray]:
    """Beam elevations ``[num_beams]`` and firing azimuths ``[num_azimuth]`` in radians, both increasing.

    Azimuth is measured from the broadside ``+y`` towards ``+x``; a full turn does not repeat its first ray.
    """
    elevation = np.radians(np.linspace(*config.elevation_deg, config.num_beams))
    half = np.radians(config.azimuth_span_deg) / 2
    full_turn = config.azimuth_span_deg >= 360.0
    return elevation, np.linspace(-half, half, config.num_azimuth, endpoint=not full_turn)


def beam_directions(config: LidarConfig) -> np.ndarray:
    """Unit ray directions ``[num_beams * num_azimuth, 3]`` (local frame), elevation-major."""
    el, az = np.meshgrid(*scan_angles(config), indexing="ij")
    return np.stack([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], axis=-1).reshape(-1, 3)


class LidarScanner:
    """Scans of one simulated scenario; the static street (ground, facades, posts) is cast once."""

    def __init__(self, sim: SimulatedScenario, config: LidarConfig | None = None) -> None:
        self.sim, self.config = sim, config or LidarConfig()
        self.origin = np.array([0.0, 0.0, sim.preset.bs_height_m])
        self.rays = beam_directions(self.config)
        self.elevation, self.azimuth = scan_angles(self.config)
        posts = cast_boxes(self.origin, self.rays, pole_boxes(sim.scenery)).distance
        walls, _ = cast_walls(self.origin, self.rays, sim.preset.walls)
        self.static_m = np.minimum(np.minimum(cast_ground(self.origin, self.rays), walls), posts)
        self.boxes, _ = vehicle_boxes(sim)

    def scan(self, row: int) -> np.ndarray:
        """The point cloud ``float32 [M, 3]`` (local frame, metres) of sample ``row`` (0-based)."""
        boxes = self.boxes[row]
        # only vehicles that some return can reach: finite boxes within range of the sensor
        reach = np.hypot(boxes[:, 0], boxes[:, 1]) - np.hypot(boxes[:, 2], boxes[:, 3]) / 2
        boxes = boxes[np.isfinite(boxes).all(axis=1) & (reach < self.config.max_range_m)]
        vehicles = cast_boxes(self.origin, self.rays, boxes, self._candidate_pairs(boxes))
        distance = np.minimum(self.static_m, vehicles.distance)
        rng = np.random.default_rng([self.sim.preset.site_seed, self.sim.seed, LIDAR_STREAM, int(row)])
        noisy = distance + self.config.range_noise_m * rng.standard_normal(len(distance))
        keep = (noisy <= self.config.max_range_m) & (rng.random(len(distance)) >= self.config.dropout)
        keep &= np.isfinite(distance) & (noisy > 0)
        return (self.origin + noisy[keep, None] * self.rays[keep]).astype(np.float32)

    def _candidate_pairs(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ray-box pairs ``(rays [P], boxes [P])`` worth testing: for each box, the rays within its range of
        azimuth (from its footprint corners) and elevation (from its nearest and farthest ground distance,
        bottom and roof)."""
        height = self.origin[2]
        cos, sin = np.cos(boxes[:, 5:6]), np.sin(boxes[:, 5:6])
        u = np.array([-0.5, -0.5, 0.5, 0.5]) * boxes[:, 2:3]
        v = np.array([-0.5, 0.5, -0.5, 0.5]) * boxes[:, 3:4]
        x, y = boxes[:, :1] + cos * u - sin * v, boxes[:, 1:2] + sin * u + cos * v  # [K, 4] corners
        azimuth = np.arctan2(x, y)
        # the sensor in each box's frame: how far its foot is from the footprint
        u0 = -(cos[:, 0] * boxes[:, 0] + sin[:, 0] * boxes[:, 1])
        v0 = sin[:, 0] * boxes[:, 0] - cos[:, 0] * boxes[:, 1]
        nearest = np.hypot(
            np.maximum(np.abs(u0) - boxes[:, 2] / 2, 0), np.maximum(np.abs(v0) - boxes[:, 3] / 2, 0)
        )
        farthest = np.hypot(x, y).max(axis=1)
        low = np.arctan2(-height, nearest)
        rising = boxes[:, 4] > height
        high = np.arctan2(boxes[:, 4] - height, np.where(rising, nearest, farthest))
        rects = np.stack(
            [
                np.searchsorted(self.elevation, low, side="left"),
                np.searchsorted(self.elevation, high, side="right"),
                np.searchsorted(self.azimuth, azimuth.min(axis=1), side="left"),
                np.searchsorted(self.azimuth, azimuth.max(axis=1), side="right"),
            ],
            axis=1,
        )
        # above the box, or a box across the azimuth seam behind the sensor: any ray may hit it
        anywhere = (nearest == 0) | (azimuth.max(axis=1) - azimuth.min(axis=1) > np.pi)
        rects[anywhere] = [0, len(self.elevation), 0, len(self.azimuth)]
        return grid_pairs(rects, len(self.azimuth))
