"""Write a simulated scenario as a DeepSense 6G scenario folder that the real-data reader reads as is.

Layout (paths in the CSV are relative to the folder, as in the official files)::

    <folder>/<folder name>.csv                      index,unit1_pwr_60ghz,unit1_loc,unit2_loc,unit1_beam,
                                                    unit1_blockage,seq_index
    <folder>/unit1/mmWave_data/mmWave_power_K.txt   64 linear powers, one per line, REVERSED like the
                                                    official files: beam b is line 65 - b
    <folder>/unit1/GPS_data/gps_location.txt        BS latitude and longitude, one per line
    <folder>/unit2/GPS_data/gps_location_K.txt      the vehicle's GPS fix of row K
    <folder>/simulation.json                        the preset, seed and counts (provenance)
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from wmlm.data.sim.scenario import SimulatedScenario

HEADER = "index,unit1_pwr_60ghz,unit1_loc,unit2_loc,unit1_beam,unit1_blockage,seq_index"
POWER_DIR = Path("unit1") / "mmWave_data"
BS_GPS_FILE = Path("unit1") / "GPS_data" / "gps_location.txt"
VEHICLE_GPS_DIR = Path("unit2") / "GPS_data"
INFO_FILE = "simulation.json"
# what the writer makes, per folder (relative path patterns); overwrite removes exactly these
_POWER_FILE = re.compile(r"mmWave_power_\d+\.txt")
_VEHICLE_GPS_FILE = re.compile(r"gps_location_\d+\.txt")


def _written_files(folder: Path) -> list[Path]:
    """Files in ``folder`` that this writer creates (possibly from an earlier, larger run)."""
    found = [folder / f"{folder.name}.csv", folder / BS_GPS_FILE, folder / INFO_FILE]
    for directory, pattern in ((POWER_DIR, _POWER_FILE), (VEHICLE_GPS_DIR, _VEHICLE_GPS_FILE)):
        if (folder / directory).is_dir():
            found += [p for p in (folder / directory).iterdir() if p.is_file() and pattern.fullmatch(p.name)]
    return [p for p in found if p.is_file()]


def _clear(folder: Path) -> None:
    """Remove the writer's files from ``folder`` and the sub-folders left empty; nothing else."""
    for path in _written_files(folder):
        path.unlink()
    for directory in (POWER_DIR, BS_GPS_FILE.parent, VEHICLE_GPS_DIR, Path("unit1"), Path("unit2")):
        path = folder / directory
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def write_scenario_folder(sim: SimulatedScenario, folder: Path | str, overwrite: bool = False) -> Path:
    """Write ``sim`` into ``folder`` (DeepSense layout); returns the folder.

    Raises ``FileExistsError`` if ``folder`` is not empty, unless ``overwrite``: then the files a previous
    write left there are removed first and anything else is kept. The same ``sim`` gives the same bytes.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{folder} is not empty; pass overwrite=True (--overwrite) to replace it")
        _clear(folder)
    for directory in (POWER_DIR, BS_GPS_FILE.parent, VEHICLE_GPS_DIR):
        (folder / directory).mkdir(parents=True, exist_ok=True)

    bs_lat, bs_lon = sim.bs_lat_lon
    (folder / BS_GPS_FILE).write_text(f"{bs_lat:.10f}\n{bs_lon:.10f}\n")
    lines = [HEADER]
    for row in range(len(sim)):
        index = row + 1
        power_name = POWER_DIR / f"mmWave_power_{index}.txt"
        gps_name = VEHICLE_GPS_DIR / f"gps_location_{index}.txt"
        # %.9g round-trips float32 exactly; the file lists beam 64 first, as the official files do
        (folder / power_name).write_text("".join(f"{value:.9g}\n" for value in sim.power_linear[row, ::-1]))
        lat, lon = sim.lat_lon[row]
        (folder / gps_name).write_text(f"{lat:.10f}\n{lon:.10f}\n")
        lines.append(
            f"{index},./{power_name.as_posix()},./{BS_GPS_FILE.as_posix()},./{gps_name.as_posix()},"
            f"{sim.beam[row]},{int(sim.blocked[row])},{sim.seq_index[row]}"
        )
    (folder / f"{folder.name}.csv").write_text("\n".join(lines) + "\n")
    (folder / INFO_FILE).write_text(json.dumps(_provenance(sim), indent=2) + "\n")
    return folder


def _provenance(sim: SimulatedScenario) -> dict:
    """The preset and seed a folder was simulated from, with a few counts (JSON-ready)."""
    return {
        "simulator": "wmlm.data.sim",
        "seed": int(sim.seed),
        "samples": len(sim),
        "sequences": int(sim.seq_index.max()),
        "blocked_fraction": round(float(np.mean(sim.blocked)), 6),
        "preset": dataclasses.asdict(sim.preset),
    }
