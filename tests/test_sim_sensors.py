"""The simulator's camera, LiDAR and CSI: determinism, physical sanity, writer columns and the CLI option."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from wmlm.cli import main
from wmlm.data.deepsense import load_scenario
from wmlm.data.sim import PRESETS, SENSORS, simulate_scenario, write_scenario_folder
from wmlm.data.sim.camera import CameraRenderer
from wmlm.data.sim.channel import codebook_weights, measure_beams
from wmlm.data.sim.cli import synth_command
from wmlm.data.sim.csi import CsiConfig, simulate_csi
from wmlm.data.sim.geometry import boxes_enu_to_local
from wmlm.data.sim.lidar import LidarConfig, LidarScanner
from wmlm.data.sim.raycast import cast_boxes
from wmlm.data.sim.writer import HEADER

SENSOR_HEADER = HEADER + ",unit1_rgb,unit1_lidar,unit1_csi"


def no_traffic(name: str, **changes: object) -> object:
    """Preset ``name`` with the target alone on the road."""
    return dataclasses.replace(PRESETS[name], traffic_density_per_km=0.0, **changes)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def beamformed_power(csi: np.ndarray) -> np.ndarray:
    """Codebook beam power ``[N, 64]`` of CSI ``[N, 16, K]``, averaged over subcarriers."""
    return np.mean(np.abs(np.einsum("bm,nmk->nbk", codebook_weights().conj(), csi)) ** 2, axis=2)


# writer: determinism, columns, round trip -----------------------------------------------------------------


def test_sensor_files_are_deterministic_and_read_back(tmp_path: Path) -> None:
    sim = simulate_scenario(PRESETS["night"], 1, seed=4)
    for copy in ("a", "b"):
        write_scenario_folder(sim, tmp_path / copy / "night", sensors=SENSORS)
    first, again = folder_bytes(tmp_path / "a" / "night"), folder_bytes(tmp_path / "b" / "night")
    assert first == again
    folder = tmp_path / "a" / "night"
    lines = (folder / "night.csv").read_text().splitlines()
    assert lines[0] == SENSOR_HEADER and len(lines) == len(sim) + 1
    assert lines[1].endswith(
        ",./unit1/camera_data/image_1.png,./unit1/lidar_data/lidar_1.npy,./unit1/csi_data/csi_1.npy"
    )
    data = load_scenario(folder, ["image", "beam_label"])
    assert data.fields["image"].shape == (len(sim), 3, 64, 64) and data.fields["image"].dtype == np.uint8
    points = np.load(folder / "unit1" / "lidar_data" / "lidar_1.npy")
    assert points.dtype == np.float32 and points.ndim == 2 and points.shape[1] == 3 and len(points) > 100
    csi = np.load(folder / "unit1" / "csi_data" / "csi_1.npy")
    assert csi.dtype == np.complex64 and csi.shape == (16, 32)
    # a sequence's sensor data does not depend on how many sequences were simulated
    more = simulate_scenario(PRESETS["night"], 2, seed=4)
    np.testing.assert_array_equal(simulate_csi(more)[: len(sim)], simulate_csi(sim))
    assert np.array_equal(CameraRenderer(more).render(7).rgb, CameraRenderer(sim).render(7).rgb)
    other = simulate_scenario(PRESETS["night"], 1, seed=5)
    write_scenario_folder(other, tmp_path / "c" / "night", sensors=["camera"])
    assert (tmp_path / "c" / "night" / "unit1" / "camera_data" / "image_1.png").read_bytes() != first[
        "unit1/camera_data/image_1.png"
    ]


def test_overwrite_removes_sensor_files_and_unknown_sensors_fail(tmp_path: Path) -> None:
    sim = simulate_scenario(no_traffic("suburban"), 1, seed=0)
    folder = tmp_path / "suburban"
    write_scenario_folder(sim, folder, sensors=("lidar", "csi"))
    (folder / "unit1" / "lidar_data" / "mine.txt").write_text("keep")
    write_scenario_folder(sim, folder, overwrite=True)  # default: no sensors
    assert (folder / "suburban.csv").read_text().splitlines()[0] == HEADER
    assert not (folder / "unit1" / "csi_data").exists()
    assert [p.name for p in (folder / "unit1" / "lidar_data").iterdir()] == ["mine.txt"]
    with pytest.raises(ValueError, match="available: camera, lidar, csi"):
        write_scenario_folder(sim, tmp_path / "other", sensors=["radar"])


def test_synth_command_sensors_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["--scenarios", "night", "--sequences", "1", "--seed", "2"]
    assert synth_command(["--out", str(tmp_path / "all"), *base]) == 0
    assert (tmp_path / "all" / "night" / "night.csv").read_text().splitlines()[0] == SENSOR_HEADER
    assert "sensors: camera, lidar, csi" in capsys.readouterr().out
    assert synth_command(["--out", str(tmp_path / "cam"), *base, "--sensors", "camera"]) == 0
    assert (tmp_path / "cam" / "night" / "night.csv").read_text().splitlines()[0] == HEADER + ",unit1_rgb"
    assert synth_command(["--out", str(tmp_path / "none"), *base, "--sensors", "none"]) == 0
    assert (tmp_path / "none" / "night" / "night.csv").read_text().splitlines()[0] == HEADER
    assert main(["data", "synth", "--out", str(tmp_path / "bad"), *base, "--sensors", "camera,radar"]) == 2
    err = capsys.readouterr().err
    assert "radar" in err and all(name in err for name in SENSORS)


# camera ---------------------------------------------------------------------------------------------------


def test_target_moves_across_the_image_the_way_it_drives() -> None:
    sim = simulate_scenario(no_traffic("suburban"), 3, seed=1)
    camera = CameraRenderer(sim)
    for seq in (1, 2, 3):
        rows = np.flatnonzero(sim.seq_index == seq)[::4]
        columns, xs = [], []
        for row in rows:
            owner = camera.render(int(row)).owner
            if (owner == 0).sum() >= 10:  # the target is in view
                columns.append(np.nonzero(owner == 0)[1].mean())
                xs.append(sim.target_xyz_local_m[row, 0])
        assert len(columns) >= 5
        assert np.corrcoef(columns, xs)[0, 1] > 0.95  # image right is local +x
        steps = np.sign(np.diff(columns)) == np.sign(np.diff(xs))
        assert steps.mean() >= 0.9


def test_night_is_dark_with_bright_lights_and_noisier() -> None:
    day_preset = no_traffic("suburban")
    day, night = (
        simulate_scenario(p, 1, seed=3) for p in (day_preset, dataclasses.replace(day_preset, night=True))
    )
    day_cam, night_cam = CameraRenderer(day), CameraRenderer(night)
    brightest = []
    for row in range(0, len(day), 3):
        lit, dark = day_cam.render(row), night_cam.render(row)
        np.testing.assert_array_equal(lit.owner, dark.owner)  # the same scene, other lighting
        # street lamps light pools of road, so the mean stays above a tenth of the day's; the typical pixel is dark
        assert dark.rgb.mean() < 0.6 * lit.rgb.mean() and np.median(dark.rgb) < 60
        if (dark.owner == 0).sum() > 30:
            brightest.append(dark.rgb[dark.owner == 0].max())
    # head- or taillights shine whenever the target shows its front or back (not when seen side-on)
    assert len(brightest) > 5 and np.mean(np.array(brightest) > 150) > 0.3


def test_vehicle_colours_vary_between_sequences() -> None:
    sim = simulate_scenario(PRESETS["urban_canyon"], 6, seed=0)
    camera = CameraRenderer(sim)
    target = camera.colours[1:, 0]  # the target's body colour per sequence
    assert len({tuple(np.round(c, 2)) for c in target}) >= 4
    assert camera.colours.min() >= 0 and camera.colours.max() <= 1


# LiDAR ----------------------------------------------------------------------------------------------------


def test_lidar_ground_vehicle_and_range() -> None:
    preset = no_traffic("suburban", walls=(), num_scatterers=0)
    sim = simulate_scenario(preset, 1, seed=0)
    scanner = LidarScanner(sim, LidarConfig(dropout=0.0))
    origin = np.array([0.0, 0.0, preset.bs_height_m])
    row = int(np.argmin(np.abs(sim.target_xyz_local_m[:, 0])))  # the target abeam of the BS
    points = scanner.scan(row).astype(np.float64)
    assert np.linalg.norm(points - origin, axis=1).max() <= scanner.config.max_range_m
    box = boxes_enu_to_local(preset, sim.target_box_enu[row])
    # a margin for the few degrees a car's heading wanders within its lane (the footprint test is axis-aligned)
    inside = (np.abs(points[:, 0] - box[0]) <= box[2] / 2 + 0.3) & (
        np.abs(points[:, 1] - box[1]) <= box[3] / 2 + 0.3
    )
    on_car = inside & (points[:, 2] > 0.1)
    assert on_car.sum() >= 10
    assert points[on_car, 2].max() <= box[4] + 0.1  # returns on the car, not above it
    ground = points[~inside]
    assert np.abs(ground[:, 2]).max() < 0.05  # everything else is the ground plane
    # when the target is elsewhere, the same spot shows only ground
    far = scanner.scan(0).astype(np.float64)
    spot = (np.abs(far[:, 0] - box[0]) <= box[2] / 2 + 0.1) & (np.abs(far[:, 1] - box[1]) <= box[3] / 2 + 0.1)
    assert abs(sim.target_xyz_local_m[0, 0] - box[0]) > 6 and spot.sum() > 0  # the car is 4.6 m long
    assert np.abs(far[spot, 2]).max() < 0.05


def test_culled_ray_casts_match_casting_every_ray_at_every_box() -> None:
    sim = simulate_scenario(PRESETS["urban_canyon"], 1, seed=0)
    camera, scanner = CameraRenderer(sim), LidarScanner(sim)
    for row in range(0, len(sim), 10):
        boxes = scanner.boxes[row][np.isfinite(scanner.boxes[row]).all(axis=1)]
        every = cast_boxes(scanner.origin, scanner.rays, boxes).distance
        culled = cast_boxes(scanner.origin, scanner.rays, boxes, scanner._candidate_pairs(boxes)).distance
        np.testing.assert_array_equal(culled, every)
        hits = cast_boxes(camera.origin, camera.rays, camera.boxes[row])
        owner = np.where(hits.distance < camera.depth, hits.box, -1)
        np.testing.assert_array_equal(camera.render(row).owner.ravel(), owner)


# CSI ------------------------------------------------------------------------------------------------------


def test_csi_beamforms_to_the_beam_powers() -> None:
    sim = simulate_scenario(PRESETS["suburban"], 3, seed=0)
    csi = simulate_csi(sim)
    assert csi.shape == (len(sim), 16, 32) and csi.dtype == np.complex64
    boxes = boxes_enu_to_local(sim.preset, sim.blocker_boxes_enu)[..., :5]
    clean = measure_beams(sim.preset, sim.target_xyz_local_m, boxes, sim.scenery, rng=None).power_linear
    clean_csi = beamformed_power(simulate_csi(sim, CsiConfig(noise=False)))
    assert np.mean(clean_csi.argmax(1) == clean.argmax(1)) >= 0.97  # the same paths, the same physics
    los = ~sim.blocked
    noisy = beamformed_power(csi)
    # neighbouring beams are within a fraction of a dB at the peak, so noisy labels may swap them
    assert np.mean(np.abs(noisy.argmax(1) - sim.power_linear.argmax(1))[los] <= 1) >= 0.85
    ratio_db = 10 * np.log10(noisy.max(axis=1) / sim.power_linear.max(axis=1))
    assert abs(np.median(ratio_db)) < 1.0 and np.percentile(np.abs(ratio_db), 90) < 3.0
    # the noise floor: a weak beam of the noisy CSI is above the clean one by about the noise power
    assert (noisy.min(axis=1) > clean_csi.min(axis=1)).mean() > 0.9
