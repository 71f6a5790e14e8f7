"""Ray-traced scenes: which scene, its radio materials at 60 GHz, and the streets a vehicle can drive.

Scene frame: Sionna RT's, metres, ``z`` up. This plugin reads scene ``x`` as east and ``y`` as north (the
built-in scenes carry no geo-reference), so GPS fixes are the scene position around ``--origin``.

Streets are found from the geometry itself (``find_streets``): a height map cast from above tells the
drivable ground (the lowest surface, where nothing stands) from buildings and parked cars; a street is a
straight corridor of drivable ground along the scene's ``x`` or ``y`` axis, at least ``MIN_STREET_LENGTH_M``
long and ``MIN_STREET_WIDTH_M`` wide. Streets with buildings on both sides (canyons) rank first.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from wmlm.errors import ConfigError, DataError

CELL_M = 1.0  # height-map resolution
GROUND_TOLERANCE_M = 0.3  # a cell this close to the ground level is drivable
BUILDING_MIN_HEIGHT_M = 2.5  # a cell this far above the ground is a building (for the canyon score)
LANE_HALF_WIDTH_M = 1.0  # a lane line needs this much clear ground either side (a car is 1.85 m wide)
MIN_STREET_LENGTH_M = 50.0
MIN_STREET_WIDTH_M = 7.5  # a 3.5 m lane with 2 m of pavement either side
CANYON_REACH_M = 15.0
KEEP_SHARE = 0.8  # a street widens by a lane line only while it keeps this share of its length  # buildings within this distance beyond a street's edge make it a canyon


def builtin_scenes() -> list[str]:
    """Names of the scenes shipped in the sionna-rt wheel (``sionna.rt.scene.<name>``), found on disk so that
    a bad ``--scene`` is reported without loading drjit."""
    spec = importlib.util.find_spec("sionna")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "rt" / "scenes"
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if (d / f"{d.name}.xml").is_file())


def scene_file(scene: str) -> Path:
    """The Mitsuba XML file of ``scene``: a built-in scene name or the path of a ``.xml`` file.

    ``ConfigError`` naming ``--scene`` and the built-in scenes otherwise.
    """
    names = builtin_scenes()
    if scene in names:
        spec = importlib.util.find_spec("sionna")
        assert spec is not None and spec.submodule_search_locations
        return Path(next(iter(spec.submodule_search_locations))) / "rt" / "scenes" / scene / f"{scene}.xml"
    path = Path(scene)
    if path.suffix == ".xml" and path.is_file():
        return path
    raise ConfigError(
        f"--scene: unknown scene {scene!r}; expected one of Sionna RT's built-in scenes "
        f"({', '.join(names) or 'none found: is sionna-rt installed?'}) or the path of a Mitsuba .xml scene file"
    )


def _itu_bands(itu_type: str) -> dict[tuple[float, float], tuple[float, float, float, float]]:
    from sionna.rt.radio_materials.itu import ITU_MATERIALS_PROPERTIES

    return ITU_MATERIALS_PROPERTIES[itu_type]


def _defined_at(itu_type: str, carrier_ghz: float) -> bool:
    return any(low <= carrier_ghz <= high for low, high in _itu_bands(itu_type))


def _extrapolated_callback(itu_type: str, carrier_ghz: float) -> Any:
    """Permittivity and conductivity of ``itu_type`` from ITU-R P.2040's ``a f^b``, ``c f^d`` of the band
    nearest the carrier, evaluated at the carrier: brick is tabulated to 40 GHz and marble to 60 GHz only."""
    import drjit as dr

    bands = _itu_bands(itu_type)
    (_, (a, b, c, d)) = min(
        bands.items(), key=lambda kv: max(kv[0][0] - carrier_ghz, carrier_ghz - kv[0][1], 0)
    )

    def callback(frequency_hz: Any) -> tuple[Any, Any]:
        f_ghz = frequency_hz / 1e9
        return a * dr.power(f_ghz, b), c * dr.power(f_ghz, d)

    return callback


def load_scene(rt: ModuleType, scene: str, carrier_hz: float) -> tuple[Any, list[str]]:
    """Sionna scene ``scene`` (``scene_file``) at ``carrier_hz``; returns it and the materials extrapolated.

    ITU materials that P.2040 does not tabulate at the carrier (Sionna refuses them) get the same material's
    formula of the nearest band, evaluated at the carrier (``_extrapolated_callback``).
    """
    path = scene_file(scene)
    try:
        loaded = rt.load_scene(str(path), merge_shapes=False)
    except Exception as error:  # a broken or foreign XML file: Mitsuba's own message, one line
        raise DataError(f"--scene: Sionna RT could not load {path}: {str(error).splitlines()[0]}") from None
    carrier_ghz = float(np.float32(carrier_hz)) / 1e9  # what drjit's float32 frequency will be
    replaced: dict[str, Any] = {}
    for obj in loaded.objects.values():
        material = obj.radio_material
        if isinstance(material, rt.ITURadioMaterial) and not _defined_at(material.itu_type, carrier_ghz):
            if material.name not in replaced:
                replaced[material.name] = rt.RadioMaterial(
                    f"{material.name}-extrapolated",
                    thickness=material.thickness,
                    frequency_update_callback=_extrapolated_callback(material.itu_type, carrier_ghz),
                )
            obj.radio_material = replaced[material.name]
    for name in replaced:
        loaded.remove(name)
    loaded.frequency = carrier_hz
    return loaded, sorted(replaced)


@dataclass(frozen=True)
class HeightMap:
    """Top surface of the scene on a grid: ``height_m [nx, ny]`` (-inf where a ray hits nothing), cell
    ``(i, j)`` centred at ``(x0_m + i * CELL_M, y0_m + j * CELL_M)``, and the ground level."""

    height_m: np.ndarray
    x0_m: float
    y0_m: float
    ground_m: float

    def drivable(self) -> np.ndarray:
        """``[nx, ny]`` bool: ground with nothing on it."""
        return np.abs(self.height_m - self.ground_m) <= GROUND_TOLERANCE_M

    def cell(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid indices of points ``[..., 2]`` (clipped to the grid)."""
        i = np.clip(np.rint((xy[..., 0] - self.x0_m) / CELL_M).astype(int), 0, self.height_m.shape[0] - 1)
        j = np.clip(np.rint((xy[..., 1] - self.y0_m) / CELL_M).astype(int), 0, self.height_m.shape[1] - 1)
        return i, j


def height_map(scene: Any) -> HeightMap:
    """Cast one ray straight down per cell over the scene's bounding box; the ground level is the lowest
    surface that at least a tenth of the hit cells share (robust to a few dips below the street)."""
    import mitsuba as mi

    box = scene.mi_scene.bbox()
    low, high = np.array(box.min, dtype=np.float64), np.array(box.max, dtype=np.float64)
    xs = np.arange(low[0] + CELL_M / 2, high[0], CELL_M)
    ys = np.arange(low[1] + CELL_M / 2, high[1], CELL_M)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    top = float(high[2] + 10.0)
    rays = mi.Ray3f(
        o=mi.Point3f(
            gx.ravel().astype(np.float32), gy.ravel().astype(np.float32), np.full(gx.size, top, np.float32)
        ),
        d=mi.Vector3f(0.0, 0.0, -1.0),
    )
    hit = scene.mi_scene.ray_intersect(rays)
    valid = np.array(hit.is_valid(), dtype=bool)
    z = np.where(valid, np.array(hit.p.z, dtype=np.float64), -np.inf).reshape(gx.shape)
    if not valid.any():
        raise DataError("--scene: the scene has no surface to drive on (no ray from above hits anything)")
    ground = float(np.quantile(z[np.isfinite(z)], 0.1))
    return HeightMap(z, float(xs[0]), float(ys[0]), ground)


@dataclass(frozen=True)
class Street:
    """A straight drivable corridor along scene axis ``axis`` (0: x, 1: y).

    ``start_m, end_m``: its extent along the axis; ``low_m, high_m``: across it (lane lines between them keep
    ``LANE_HALF_WIDTH_M`` of clear ground); ``canyon``: share of its length with buildings on both sides.
    """

    axis: int
    start_m: float
    end_m: float
    low_m: float
    high_m: float
    canyon: float

    @property
    def length_m(self) -> float:
        return self.end_m - self.start_m

    @property
    def width_m(self) -> float:
        return self.high_m - self.low_m

    def describe(self) -> str:
        along, across = ("x", "y") if self.axis == 0 else ("y", "x")
        return (
            f"{along} {self.start_m:.0f}..{self.end_m:.0f} m at {across} {self.low_m:.0f}..{self.high_m:.0f} m "
            f"({self.canyon:.0%} canyon)"
        )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _corridors(clear: np.ndarray, min_length: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Corridors of ``clear [along, across]``: ``((start, stop), (low, high))`` index ranges such that every
    across-line ``low .. high - 1`` is clear over ``start .. stop - 1``, at least ``min_length`` long.

    Sweeps the across-lines in order; a run of line ``j`` extends the open corridor it overlaps by at least
    ``min_length`` and ``KEEP_SHARE`` of the corridor's length (the extent becomes the overlap), else it
    opens a new one.
    """
    done: list[tuple[tuple[int, int], tuple[int, int]]] = []
    open_: list[tuple[int, int, int]] = []  # (start, stop, low)
    for j in range(clear.shape[1]):
        runs = [(a, b) for a, b in _runs(clear[:, j]) if b - a >= min_length]
        extended: list[tuple[int, int, int]] = []
        used = set()
        for a, b in runs:
            for k, (start, stop, low) in enumerate(open_):
                overlap = min(b, stop) - max(a, start)
                # extend only while the corridor keeps most of its length: a line that is clear over a
                # short stretch only (a side street's mouth) would cut a long street down
                if k not in used and overlap >= max(min_length, KEEP_SHARE * (stop - start)):
                    extended.append((max(a, start), min(b, stop), low))
                    used.add(k)
                    break
            else:
                extended.append((a, b, j))
        done += [((start, stop), (low, j)) for k, (start, stop, low) in enumerate(open_) if k not in used]
        open_ = extended
    done += [((start, stop), (low, clear.shape[1])) for start, stop, low in open_]
    return done


def find_streets(heights: HeightMap) -> list[Street]:
    """Every street of the scene, canyons first, then the longer and wider ones (see the module docstring)."""
    streets: list[Street] = []
    drivable = heights.drivable()
    building = heights.height_m > heights.ground_m + BUILDING_MIN_HEIGHT_M
    half = int(round(LANE_HALF_WIDTH_M / CELL_M))
    reach = int(round(CANYON_REACH_M / CELL_M))
    min_length = int(np.ceil(MIN_STREET_LENGTH_M / CELL_M))
    for axis in (0, 1):
        free = drivable if axis == 0 else drivable.T  # [along, across]
        walls = building if axis == 0 else building.T
        origin_along, origin_across = (
            (heights.x0_m, heights.y0_m) if axis == 0 else (heights.y0_m, heights.x0_m)
        )
        # a lane line at across-index j is clear where the cells j - half .. j + half are all drivable
        clear = np.ones_like(free)
        for shift in range(-half, half + 1):
            clear &= np.roll(free, shift, axis=1)
        clear[:, :half] = clear[:, free.shape[1] - half :] = False
        # a street: adjacent lane lines whose clear runs along the axis overlap by at least min_length
        for (start, stop), (low, high) in _corridors(clear, min_length):
            if (high - low + 2 * half) * CELL_M < MIN_STREET_WIDTH_M:
                continue
            side_a = walls[start:stop, max(low - half - reach, 0) : max(low - half, 0)].any(axis=1)
            side_b = walls[start:stop, high + half : high + half + reach].any(axis=1)
            streets.append(
                Street(
                    axis=axis,
                    start_m=origin_along + (start - 0.5) * CELL_M,
                    end_m=origin_along + (stop - 0.5) * CELL_M,
                    low_m=origin_across + (low - half - 0.5) * CELL_M,
                    high_m=origin_across + (high + half - 0.5) * CELL_M,
                    canyon=float(np.mean(side_a & side_b)),
                )
            )
    return sorted(streets, key=lambda s: (-round(s.canyon, 2), -s.length_m, -s.width_m, s.axis, s.low_m))
