"""Write a simulated scenario as a DeepSense 6G scenario folder that the real-data reader reads as is,
or as an array store site (``write_store_folder``, ``wmlm data synth --format arrays``).

Layout (paths in the CSV are relative to the folder, as in the official files)::

    <folder>/<folder name>.csv                      index,unit1_pwr_60ghz,unit1_loc,unit2_loc,unit1_beam,
                                                    unit1_blockage,seq_index
    <folder>/unit1/mmWave_data/mmWave_power_K.txt   64 linear powers, one per line, REVERSED like the
                                                    official files: beam b is line 65 - b
    <folder>/unit1/GPS_data/gps_location.txt        BS latitude and longitude, one per line
    <folder>/unit2/GPS_data/gps_location_K.txt      the vehicle's GPS fix of row K
    <folder>/simulation.json                        the preset, seed, counts and sensor settings (and, for
                                                    a procedural site, its draw: ``random_site``)
    <folder>/.wmlm-output.json                      marker: written by ``wmlm data synth`` (``wmlm.outputs``)

Opt-in sensors (``sensors=("camera", "lidar", "csi")``) add one file per row and one CSV column each,
after ``seq_index`` in this order (the base header stays a prefix)::

    unit1_rgb    <folder>/unit1/camera_data/image_K.png   RGB frame, 128x72 by default (``camera``)
    unit1_lidar  <folder>/unit1/lidar_data/lidar_K.npy    float32 [M, 3] point cloud, local frame (``lidar``)
    unit1_csi    <folder>/unit1/csi_data/csi_K.npy        complex64 [16, 32] channel (``csi``)
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from wmlm.data.deepsense import STORE_FILE, ScenarioData
from wmlm.data.readers import MAX_PEAK_RATIO, latlon_to_enu_m
from wmlm.data.sim.camera import CameraConfig, CameraRenderer, save_png
from wmlm.data.sim.csi import CsiConfig, simulate_csi
from wmlm.data.sim.lidar import LidarConfig, LidarScanner
from wmlm.data.sim.scenario import SimulatedScenario
from wmlm.data.store import write_store
from wmlm.outputs import atomic_write_text, prepare_output_dir, write_marker

HEADER = "index,unit1_pwr_60ghz,unit1_loc,unit2_loc,unit1_beam,unit1_blockage,seq_index"
POWER_DIR = Path("unit1") / "mmWave_data"
BS_GPS_FILE = Path("unit1") / "GPS_data" / "gps_location.txt"
VEHICLE_GPS_DIR = Path("unit2") / "GPS_data"
INFO_FILE = "simulation.json"
VERB = "data synth"  # the verb named in the folder's marker
# what the writer makes, per folder (relative path patterns); overwrite removes exactly these
_POWER_FILE = re.compile(r"mmWave_power_\d+\.txt")
_VEHICLE_GPS_FILE = re.compile(r"gps_location_\d+\.txt")
# opt-in sensors in column order: CSV column, folder, and file name of row K (stem + K + suffix)
SENSORS = ("camera", "lidar", "csi")
STORE_SENSORS = ("camera",)  # the sensors ``write_store_folder`` writes into the array store itself
SENSOR_COLUMNS = {"camera": "unit1_rgb", "lidar": "unit1_lidar", "csi": "unit1_csi"}
SENSOR_DIRS = {name: Path("unit1") / f"{name}_data" for name in SENSORS}
_SENSOR_NAME = {"camera": ("image_", ".png"), "lidar": ("lidar_", ".npy"), "csi": ("csi_", ".npy")}
_SENSOR_PATTERN = {name: re.compile(rf"{a}\d+{re.escape(b)}") for name, (a, b) in _SENSOR_NAME.items()}


def sensor_file(sensor: str, index: int) -> Path:
    """Path of ``sensor``'s file of row ``index`` (1-based), relative to the scenario folder."""
    stem, suffix = _SENSOR_NAME[sensor]
    return SENSOR_DIRS[sensor] / f"{stem}{index}{suffix}"


def _written_files(folder: Path) -> list[Path]:
    """Files in ``folder`` that this writer creates (possibly from an earlier, larger run)."""
    found = [folder / f"{folder.name}.csv", folder / BS_GPS_FILE, folder / INFO_FILE]
    owned = [(POWER_DIR, _POWER_FILE), (VEHICLE_GPS_DIR, _VEHICLE_GPS_FILE)]
    owned += [(SENSOR_DIRS[name], _SENSOR_PATTERN[name]) for name in SENSORS]
    for directory, pattern in owned:
        if (folder / directory).is_dir():
            found += [p for p in (folder / directory).iterdir() if p.is_file() and pattern.fullmatch(p.name)]
    return [p for p in found if p.is_file()]


def _clear(folder: Path) -> None:
    """Remove the writer's files from ``folder`` and the sub-folders left empty; nothing else."""
    for path in _written_files(folder):
        path.unlink()
    made = (
        POWER_DIR,
        BS_GPS_FILE.parent,
        VEHICLE_GPS_DIR,
        *SENSOR_DIRS.values(),
        Path("unit1"),
        Path("unit2"),
    )
    for directory in made:
        path = folder / directory
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _legacy_marker(folder: Path) -> bool:
    """Whether ``folder`` was written by this writer before marker files existed (its ``simulation.json``)."""
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("simulator") == "wmlm.data.sim"


def check_output_folder(folder: Path | str, overwrite: bool) -> bool:
    """``wmlm.outputs.prepare_output_dir`` for a scenario folder: True when it replaces an earlier one.

    Replaced may be only a folder this writer wrote (marker, or an older ``simulation.json``); anything else
    that is not empty, a real DeepSense scenario above all, raises ``OutputError`` naming the folder.
    """
    return prepare_output_dir(folder, VERB, overwrite, legacy=_legacy_marker)


def check_sensors(sensors: Iterable[str]) -> tuple[str, ...]:
    """The requested sensors in column order (``SENSORS``); an unknown name fails listing the known ones."""
    requested = list(sensors)
    unknown = [name for name in requested if name not in SENSORS]
    if unknown:
        raise ValueError(f"unknown sensor(s) {unknown}; available: {', '.join(SENSORS)}")
    return tuple(name for name in SENSORS if name in requested)


def unstorable_sensors(sensors: Iterable[str]) -> list[str]:
    """The names in ``sensors`` that the array store cannot hold (not in ``STORE_SENSORS``), in order."""
    return [name for name in sensors if name not in STORE_SENSORS]


def write_scenario_folder(
    sim: SimulatedScenario,
    folder: Path | str,
    overwrite: bool = False,
    sensors: Iterable[str] = (),
    on_sample: Callable[[int], None] | None = None,
    record: dict | None = None,
    camera_frames: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """Write ``sim`` into ``folder`` (DeepSense layout); returns the folder.

    Raises ``OutputError`` if ``folder`` is not empty, unless ``overwrite`` and the folder is one this writer
    wrote (``check_output_folder``): then the files a previous write left there (sensor files included) are
    removed first and anything else is kept. The marker is written first, so a folder whose writing was
    interrupted can be overwritten too; the CSV and ``simulation.json`` are written last, atomically. The
    same ``sim`` gives the same bytes. ``sensors`` (any of ``SENSORS``) adds camera frames, LiDAR scans and CSI with
    their default settings (see the module docstring); ``on_sample(row)`` is called after each row.
    ``record`` (JSON-ready) is kept in ``simulation.json`` under ``random_site``: how a procedural site was
    drawn (``wmlm.data.sim.random_sites``). ``camera_frames(row) -> rgb [H, W, 3] uint8`` replaces the
    built-in camera's frames (another renderer, e.g. a ray tracer's), when ``camera`` is among ``sensors``.
    """
    sensors = check_sensors(sensors)
    folder = Path(folder)
    if check_output_folder(folder, overwrite):
        _clear(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(
        folder, VERB, timestamp=False, preset=sim.preset.name, seed=int(sim.seed)
    )  # same sim, same bytes
    for directory in (POWER_DIR, BS_GPS_FILE.parent, VEHICLE_GPS_DIR, *(SENSOR_DIRS[s] for s in sensors)):
        (folder / directory).mkdir(parents=True, exist_ok=True)
    camera = (camera_frames or _builtin_camera(sim)) if "camera" in sensors else None
    lidar = LidarScanner(sim) if "lidar" in sensors else None
    csi = simulate_csi(sim) if "csi" in sensors else None

    bs_lat, bs_lon = sim.bs_lat_lon
    (folder / BS_GPS_FILE).write_text(f"{bs_lat:.10f}\n{bs_lon:.10f}\n")
    lines = [HEADER + "".join(f",{SENSOR_COLUMNS[name]}" for name in sensors)]
    for row in range(len(sim)):
        index = row + 1
        power_name = POWER_DIR / f"mmWave_power_{index}.txt"
        gps_name = VEHICLE_GPS_DIR / f"gps_location_{index}.txt"
        # %.9g round-trips float32 exactly; the file lists beam 64 first, as the official files do
        (folder / power_name).write_text("".join(f"{value:.9g}\n" for value in sim.power_linear[row, ::-1]))
        lat, lon = sim.lat_lon[row]
        (folder / gps_name).write_text(f"{lat:.10f}\n{lon:.10f}\n")
        files = {name: sensor_file(name, index) for name in sensors}
        if camera is not None:
            save_png(camera(row), folder / files["camera"])
        if lidar is not None:
            np.save(folder / files["lidar"], lidar.scan(row))
        if csi is not None:
            np.save(folder / files["csi"], csi[row])
        lines.append(
            f"{index},./{power_name.as_posix()},./{BS_GPS_FILE.as_posix()},./{gps_name.as_posix()},"
            f"{sim.beam[row]},{int(sim.blocked[row])},{sim.seq_index[row]}"
            + "".join(f",./{f.as_posix()}" for f in files.values())
        )
        if on_sample is not None:
            on_sample(row)
    # the CSV makes the folder a scenario for the reader: it appears whole, after every file it names
    atomic_write_text(folder / f"{folder.name}.csv", "\n".join(lines) + "\n")
    info = _provenance(sim, sensors)
    if record is not None:
        info["random_site"] = record
    _write_info(folder, info)
    return folder


def _builtin_camera(sim: SimulatedScenario) -> Callable[[int], np.ndarray]:
    """``row -> rgb [H, W, 3] uint8`` of the built-in camera (``wmlm.data.sim.camera``)."""
    renderer = CameraRenderer(sim)
    return lambda row: renderer.render(row).rgb


def scenario_arrays(sim: SimulatedScenario, name: str) -> ScenarioData:
    """``sim`` as the readers would return it from the DeepSense folder ``write_scenario_folder`` writes.

    Same conventions and the same numbers: power float32 by beam (NaN on silent or off-unit rows, as
    ``BeamPowerReader``), 0-based labels, blockage, and positions in ENU metres from the lat/lon the text
    files round to 10 decimals (``PositionReader``). Fields: ``beam_power``, ``beam_label``, ``position``,
    ``position_raw``, ``blockage``.
    """
    power = np.asarray(sim.power_linear, dtype=np.float32).copy()
    peak = power.max(axis=1)
    silent = peak <= 0
    median = float(np.median(peak[~silent])) if (~silent).any() else 0.0
    off = ~silent & ((peak > MAX_PEAK_RATIO * median) | (peak < median / MAX_PEAK_RATIO))
    power[silent | off] = np.nan
    text_rounded = np.vectorize(lambda x: float(f"{x:.10f}"))  # what the GPS text files hold
    vehicle = text_rounded(np.asarray(sim.lat_lon, dtype=np.float64)).reshape(-1, 2)
    origin = text_rounded(np.asarray(sim.bs_lat_lon, dtype=np.float64)).reshape(2)
    position = latlon_to_enu_m(vehicle, np.broadcast_to(origin, vehicle.shape)).astype(np.float32)
    position[(vehicle == 0).all(axis=1)] = np.nan
    fields = {
        "beam_power": power,
        "beam_label": np.asarray(sim.beam, dtype=np.int64) - 1,
        "position": position,
        "position_raw": position.copy(),
        "blockage": np.asarray(sim.blocked).astype(np.int64),
    }
    index = np.arange(1, len(sim) + 1, dtype=np.int64)
    return ScenarioData(name, index, np.asarray(sim.seq_index, dtype=np.int64), fields)


def write_store_folder(
    sim: SimulatedScenario,
    folder: Path | str,
    overwrite: bool = False,
    record: dict | None = None,
    simulator: str = "wmlm.data.sim",
    sensors: Iterable[str] = (),
    camera_frames: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """Write ``sim`` into ``folder`` as an array store site (``wmlm.data.store``); returns the folder.

    The overwrite policy, marker and ``simulation.json`` are those of ``write_scenario_folder``; the
    store's ``store.json`` and then ``simulation.json`` are written last, so an interrupted folder is never
    read as data and ``--resume`` rebuilds it. Same ``sim``, same bytes. ``simulator`` names what simulated
    ``sim`` in the store's provenance (a data engine's own name).

    ``sensors`` may hold ``camera`` (``STORE_SENSORS``): the frames (the built-in camera's, or
    ``camera_frames(row) -> rgb [H, W, 3] uint8``) are stored as the ``image`` field, ``uint8 [N, 3, 64, 64]``,
    resized exactly as the ``image`` reader resizes a PNG, so the store holds what writing the DeepSense
    layout and ``wmlm data pack``-ing it would. LiDAR and CSI: write the DeepSense layout and pack it.
    """
    sensors = check_sensors(sensors)
    unstorable = unstorable_sensors(sensors)
    if unstorable:
        raise ValueError(
            f"sensors {unstorable}: the array store is written with {', '.join(STORE_SENSORS)} only; write the "
            "DeepSense layout and convert it with `wmlm data pack` for LiDAR or CSI"
        )
    folder = Path(folder)
    if check_output_folder(folder, overwrite):
        for path in [*folder.glob("*.npy"), folder / STORE_FILE, folder / INFO_FILE]:
            path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, VERB, timestamp=False, preset=sim.preset.name, seed=int(sim.seed))
    info = _provenance(sim, sensors)
    if record is not None:
        info["random_site"] = record
    data = scenario_arrays(sim, folder.name)
    if "camera" in sensors:
        from wmlm.modalities.image import IMAGE_SIZE_HW, ImageReader, resized_frame

        camera = camera_frames or _builtin_camera(sim)
        frames = np.empty((len(sim), 3, *IMAGE_SIZE_HW), dtype=np.uint8)
        for row in range(len(sim)):
            frames[row] = resized_frame(camera(row))
        data.fields[ImageReader.name] = frames
    write_store(data, folder, provenance={"simulator": simulator, "seed": int(sim.seed)})
    _write_info(folder, info)
    return folder


def _write_info(folder: Path, info: dict) -> None:
    """``simulation.json``, atomically but not forced to disk: the data files beside it are not either, and
    a site is reproducible from its options; ``--resume`` judges a site by this file's content (and the
    store by its file sizes), so a file lost to a crash means a rebuild, never a half-read site. The fsync
    cost up to 85 ms per site on a busy disk, more than simulating a 400-sample site."""
    atomic_write_text(folder / INFO_FILE, json.dumps(info, indent=2) + "\n", fsync=False)


def sensor_settings(sensors: Iterable[str]) -> dict:
    """The default settings of each of ``sensors`` (JSON-ready), as ``simulation.json`` records them."""
    configs = {"camera": CameraConfig(), "lidar": LidarConfig(), "csi": CsiConfig()}
    return {name: dataclasses.asdict(configs[name]) for name in check_sensors(sensors)}


def _provenance(sim: SimulatedScenario, sensors: tuple[str, ...]) -> dict:
    """The preset and seed a folder was simulated from, some counts and the sensors' settings (JSON-ready)."""
    return {
        "simulator": "wmlm.data.sim",
        "seed": int(sim.seed),
        "samples": len(sim),
        "sequences": int(sim.seq_index.max()),
        "blocked_fraction": round(float(np.mean(sim.blocked)), 6),
        "preset": dataclasses.asdict(sim.preset),
        "sensors": sensor_settings(sensors),
    }
