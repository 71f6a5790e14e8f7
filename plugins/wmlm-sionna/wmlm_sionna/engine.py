"""``wmlm data synth --engine sionna``: vehicle passes in a Sionna RT scene, written in the DeepSense layout.

Per sequence the vehicle drives one straight pass along the site's street (wmlm's traffic model); every
sample's paths are ray-traced (line of sight, specular reflections up to ``--max-depth`` bounces, edge
diffraction with ``--diffraction``), all samples of all passes batched into few ``PathSolver`` calls.
The 64 beam powers use wmlm's codebook (``wmlm_sionna.trace.beam_power``), the blockage label is "the
scene obstructs the line of sight", and the GPS fix is the true position plus wmlm's drifting GPS error.
The folder is written by wmlm's own writer, so ``wmlm fit`` reads it as any DeepSense scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from wmlm.data.sim.geometry import Scenery, enu_to_latlon_deg, heading_local_to_enu, local_to_enu
from wmlm.data.sim.scenario import SimulatedScenario, draw_gps_error_m
from wmlm.data.sim.traffic import TARGET_SIZE_M, draw_pass
from wmlm.data.sim.writer import INFO_FILE, check_output_folder, write_scenario_folder, write_store_folder
from wmlm.errors import ConfigError
from wmlm.outputs import atomic_write_text

from wmlm_sionna.backend import load_sionna
from wmlm_sionna.camera import SceneCamera, SceneCameraConfig
from wmlm_sionna.scene import HeightMap, find_streets, height_map, load_scene, scene_file
from wmlm_sionna.site import TEMPLATE, Site, make_site, parse_lat_lon, parse_triple
from wmlm_sionna.trace import SolverSettings, beam_power, trace_paths

ENGINE_NAME = "sionna"
CARRIER_HZ = 60e9
DEFAULT_SCENE = "simple_street_canyon"
DEFAULT_ORIGIN = "33.44866,-112.07402"  # scene (0, 0): the built-in urban_canyon site's latitude/longitude
FORMATS = ("deepsense", "arrays")


@dataclass(frozen=True, eq=False)
class Traced:
    """What ``simulate`` traced, for the writer: the scenario, its provenance record, and the scene, site and
    vehicle positions ``scene_xyz [N, 3]`` (scene frame, metres) a camera renders."""

    sim: SimulatedScenario
    info: dict
    simulated_s: float
    rt: ModuleType
    scene: Any
    site: Site
    scene_xyz: np.ndarray


def _at_least(minimum: int):  # noqa: ANN202
    """An argparse ``type``: an integer ``>= minimum`` (argparse names the option in its message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive, _non_negative = _at_least(1), _at_least(0)


def _finite(text: str) -> float:
    """An argparse ``type``: a finite float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wmlm data synth --engine sionna",
        description="Ray-trace 60 GHz V2I passes in a Sionna RT scene and write them as a DeepSense 6G "
        "scenario folder OUT/<name>.",
    )
    p.add_argument("--out", required=True, type=Path, help="parent folder of the scenario folder")
    p.add_argument(
        "--scene",
        default=DEFAULT_SCENE,
        help=f"a Sionna RT built-in scene (e.g. simple_street_canyon, munich) or a Mitsuba .xml file "
        f"(default {DEFAULT_SCENE})",
    )
    p.add_argument("--sequences", type=_positive, default=8, help="vehicle passes (default 8)")
    p.add_argument(
        "--seed", type=_non_negative, default=0, help="random seed; the same seed gives the same files"
    )
    p.add_argument(
        "--bs-position",
        metavar="X,Y,Z",
        help="BS array centre in the scene frame, metres (default: a seeded street-side position)",
    )
    p.add_argument("--street", metavar="K", type=_positive, help="drive on the K-th street found (1-based)")
    p.add_argument(
        "--origin",
        metavar="LAT,LON",
        default=DEFAULT_ORIGIN,
        help=f"latitude,longitude of the scene's (0, 0); scene x is east, y north (default {DEFAULT_ORIGIN})",
    )
    p.add_argument("--name", help="scenario folder name (default sionna_<scene>_s<seed>)")
    p.add_argument("--max-depth", type=_non_negative, default=2, help="reflections per path (default 2)")
    p.add_argument(
        "--samples-per-src", type=_positive, default=100_000, help="rays shot from the BS (default 100000)"
    )
    p.add_argument("--diffraction", action="store_true", help="also trace first-order edge diffraction")
    p.add_argument(
        "--tx-power-dbm",
        type=_finite,
        default=TEMPLATE.tx_power_dbm,
        help=f"transmit power in dBm; with the receiver noise it sets the SNR (default {TEMPLATE.tx_power_dbm:g}, "
        "calibrated on simple_street_canyon: docs/results/sionna.md)",
    )
    p.add_argument("--batch", type=_positive, default=512, help="receivers per PathSolver call (default 512)")
    p.add_argument(
        "--camera",
        action="store_true",
        help="also render a camera frame from the BS per sample (Mitsuba; CSV column unit1_rgb)",
    )
    p.add_argument(
        "--camera-spp",
        type=_positive,
        default=SceneCameraConfig.spp,
        help=f"samples per pixel of the camera frames (default {SceneCameraConfig.spp})",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=FORMATS[0],
        help="deepsense: the DeepSense 6G folder layout (default); arrays: wmlm's array store (camera frames "
        "as its image field)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a folder that an earlier `wmlm data synth` wrote"
    )
    return p


def _drive(site: Site, seed: int, number: int, heights: HeightMap) -> dict:
    """Sequence ``number``'s samples (local frame and times) with the random streams of the built-in
    simulator's sequences; samples off the drivable ground (the street ends, a parked car) are dropped."""
    streams = np.random.SeedSequence([seed, number]).spawn(4)
    target_rng, traffic_rng, noise_rng, gps_rng = (np.random.default_rng(s) for s in streams)
    drive = draw_pass(site.preset, target_rng, traffic_rng)
    scene_xyz = site.to_scene(drive.target_xyz_m)
    i, j = heights.cell(scene_xyz[:, :2])
    keep = heights.drivable()[i, j]
    time_s = drive.time_s[keep]
    return {
        "local": drive.target_xyz_m[keep],
        "scene": scene_xyz[keep],
        "time_s": time_s - (time_s[0] if len(time_s) else 0.0),
        "heading": drive.target_heading_rad[keep],
        "noise_rng": noise_rng,  # type: ignore[dict-item]
        "gps_error": draw_gps_error_m(site.preset, time_s, gps_rng),
    }


def simulate(args: argparse.Namespace) -> Traced:
    """Trace ``args``' passes: the scenario for wmlm's writer, its provenance record and the scene."""
    scene_file(args.scene)  # a bad --scene fails before drjit is loaded
    bs_position = parse_triple("--bs-position", args.bs_position) if args.bs_position else None
    origin = parse_lat_lon("--origin", args.origin)
    rt = load_sionna()
    started = time.perf_counter()
    scene, extrapolated = load_scene(rt, args.scene, CARRIER_HZ)
    heights = height_map(scene)
    streets = find_streets(heights)
    name = args.name or f"sionna_{Path(args.scene).stem}_s{args.seed}"
    site_rng = np.random.default_rng(np.random.SeedSequence([args.seed, 0]))
    site = make_site(streets, heights, origin, name, site_rng, bs_position, args.street)
    site = dataclasses.replace(
        site, preset=dataclasses.replace(site.preset, tx_power_dbm=float(args.tx_power_dbm))
    )
    drives = [_drive(site, args.seed, k, heights) for k in range(1, args.sequences + 1)]
    drives = [d for d in drives if len(d["time_s"])]
    if not drives:
        raise ConfigError(
            f"--bs-position: no pass of the street {site.street.describe()} is on drivable ground"
        )
    settings = SolverSettings(args.max_depth, args.samples_per_src, args.diffraction, args.batch)
    scene_xyz = np.concatenate([d["scene"] for d in drives])
    paths = trace_paths(rt, scene, site.bs_xyz, scene_xyz, settings)
    simulated_s = time.perf_counter() - started

    counts = [len(d["time_s"]) for d in drives]
    bounds = np.cumsum([0, *counts])
    powers = []
    for k, d in enumerate(drives):
        part = dataclasses.replace(
            paths,
            **{f.name: getattr(paths, f.name)[bounds[k] : bounds[k + 1]] for f in dataclasses.fields(paths)},
        )
        powers.append(beam_power(site.preset, part, site.axes, d["noise_rng"]))
    power = np.concatenate(powers)
    local = np.concatenate([d["local"] for d in drives])
    position = local_to_enu(site.preset, local[:, :2])
    gps_error = np.concatenate([d["gps_error"] for d in drives])
    delta = local - np.array([0.0, 0.0, site.preset.bs_height_m])
    heading = heading_local_to_enu(site.preset, np.concatenate([d["heading"] for d in drives]))
    n = len(power)
    sim = SimulatedScenario(
        preset=site.preset,
        seed=int(args.seed),
        power_linear=power,
        beam=np.argmax(power, axis=1).astype(np.int64) + 1,
        seq_index=np.repeat(np.arange(1, len(drives) + 1, dtype=np.int64), counts),
        time_s=np.concatenate([d["time_s"] for d in drives]),
        lat_lon=enu_to_latlon_deg(position + gps_error, np.asarray(site.preset.origin_lat_lon_deg)),
        bs_lat_lon=np.asarray(site.preset.origin_lat_lon_deg, dtype=np.float64),
        position_enu_m=position,
        target_xyz_local_m=local,
        los_aod_deg=np.degrees(np.arcsin(delta[:, 0] / np.linalg.norm(delta, axis=1))),
        blocked=~paths.los,
        los_loss_db=np.where(paths.los, 0.0, np.inf),
        target_box_enu=np.concatenate(
            [position, np.broadcast_to(TARGET_SIZE_M, (n, 3)), heading[:, None]], axis=1
        ),
        blocker_boxes_enu=np.zeros((n, 0, 6)),
        blocker_class=np.zeros((n, 0), dtype=np.int64),
        scenery=Scenery(np.zeros((0, 3)), np.zeros(0), np.zeros(0)),
    )
    info = {
        "simulator": "wmlm_sionna",
        "engine": ENGINE_NAME,
        "scene": args.scene,
        "sionna_rt": getattr(rt, "__version__", "?"),
        "seed": int(args.seed),
        "samples": n,
        "sequences": len(drives),
        "blocked_fraction": round(float(np.mean(sim.blocked)), 6),
        "carrier_hz": CARRIER_HZ,
        "bs_position_m": [round(float(v), 4) for v in site.bs_xyz],
        "array_axes_scene": site.axes.round(6).tolist(),
        "street": dataclasses.asdict(site.street),
        "origin_lat_lon_deg": list(origin),
        "solver": dataclasses.asdict(settings),
        "extrapolated_materials": extrapolated,
        "paths_per_sample": int((np.abs(paths.gain) > 0).sum(axis=1).max()),
        "preset": dataclasses.asdict(site.preset),
        "sensors": {},
    }
    return Traced(sim, info, simulated_s, rt, scene, site, scene_xyz)


def synth(argv: list[str]) -> int:
    """Run the engine with ``argv`` (the ``wmlm data synth`` arguments without ``--engine``); returns 0."""
    args = parser().parse_args(argv)
    folder = args.out / (args.name or f"sionna_{Path(args.scene).stem}_s{args.seed}")
    check_output_folder(folder, args.overwrite)  # before anything is traced
    traced = simulate(args)
    info, rendered_s = traced.info, 0.0

    def write(
        sensors: tuple[str, ...] = (), camera_frames: Callable[[int], np.ndarray] | None = None
    ) -> None:
        if args.format == "arrays":
            write_store_folder(traced.sim, folder, overwrite=args.overwrite, simulator=info["simulator"],
                               sensors=sensors, camera_frames=camera_frames)  # fmt: skip
        else:
            write_scenario_folder(
                traced.sim, folder, overwrite=args.overwrite, sensors=sensors, camera_frames=camera_frames
            )

    if args.camera:
        config = SceneCameraConfig(spp=args.camera_spp)
        info["sensors"] = {"camera": {**dataclasses.asdict(config), "renderer": "sionna.rt (Mitsuba)"}}
        with tempfile.TemporaryDirectory(prefix="wmlm-sionna-") as mesh_folder:
            camera = SceneCamera(traced.rt, traced.scene, traced.site, config, Path(mesh_folder))
            started = time.perf_counter()
            try:
                with camera:  # one switch to Mitsuba's rendering variant for all frames
                    write(("camera",), lambda row: camera.render(traced.scene_xyz[row]))
            finally:
                camera.close()
            rendered_s = time.perf_counter() - started
    else:
        write()
    # wmlm's writer records a built-in preset; this folder's own record says how it was ray-traced
    atomic_write_text(folder / INFO_FILE, json.dumps(info, indent=2) + "\n")
    camera_note = f", camera frames in {rendered_s:.1f} s" if args.camera else ""
    print(
        f"{folder.name}: {info['samples']} samples, {info['sequences']} sequences, "
        f"{100 * info['blocked_fraction']:.1f} % blocked, scene {info['scene']}, BS at "
        f"{', '.join(f'{v:.1f}' for v in info['bs_position_m'])} m, traced in {traced.simulated_s:.1f} s"
        f"{camera_note} -> {folder}"
    )
    sys.stdout.flush()
    return 0


class SionnaEngine:
    """The ``sionna`` data engine registered by ``wmlm_sionna.plugin``."""

    name = ENGINE_NAME

    def synth(self, argv: list[str]) -> int:
        return synth(argv)
