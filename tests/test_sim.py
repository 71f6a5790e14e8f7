"""The simulator: determinism, physics sanity, DeepSense-layout round trip, CLI and realism."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from wmlm.cli import main
from wmlm.data.deepsense import load_scenario
from wmlm.data.readers import latlon_to_enu_m
from wmlm.data.sim import PRESETS, ScenarioPreset, simulate_scenario, write_scenario_folder
from wmlm.data.sim.channel import (
    BEAM_SINES,
    knife_edge_loss_db,
    measure_beams,
    nearest_beam,
)
from wmlm.data.sim.geometry import Scenery, local_to_enu
from wmlm.errors import OutputError

NO_SCENERY = Scenery(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
NO_BOXES = np.zeros((1, 0, 5))


def line_of_sight_only(preset: ScenarioPreset, **changes: object) -> ScenarioPreset:
    """``preset`` without reflections, scatterers or other vehicles."""
    return dataclasses.replace(
        preset, walls=(), num_scatterers=0, ground_permittivity=0.0, traffic_density_per_km=0.0, **changes
    )


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def peak_db(preset: ScenarioPreset, ue_xyz: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
    """Noiseless peak-beam power in dB for targets ``[N, 3]``."""
    boxes = np.zeros((len(ue_xyz), 0, 5)) if boxes is None else boxes
    out = measure_beams(preset, ue_xyz, boxes, NO_SCENERY, rng=None)
    return 10 * np.log10(out.power_linear.max(axis=1))


# 1. determinism -------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    preset = PRESETS["urban_canyon"]
    write_scenario_folder(simulate_scenario(preset, 3, seed=7), tmp_path / "a" / "urban_canyon")
    write_scenario_folder(simulate_scenario(preset, 3, seed=7), tmp_path / "b" / "urban_canyon")
    write_scenario_folder(simulate_scenario(preset, 3, seed=8), tmp_path / "c" / "urban_canyon")
    first, again, other = (folder_bytes(tmp_path / x / "urban_canyon") for x in "abc")
    assert len(first) > 10
    assert first == again
    assert first != other


def test_sequences_do_not_depend_on_how_many_are_drawn() -> None:
    few, many = (simulate_scenario(PRESETS["suburban"], n, seed=3) for n in (2, 4))
    head = many.seq_index <= 2
    np.testing.assert_array_equal(few.power_linear, many.power_linear[head])
    np.testing.assert_array_equal(few.lat_lon, many.lat_lon[head])


def test_presets_are_distinct_sites_and_bad_presets_fail() -> None:
    assert {"urban_canyon", "suburban", "wide_avenue", "night"} <= set(PRESETS)
    assert len({p.origin_lat_lon_deg for p in PRESETS.values()}) == len(PRESETS)
    assert PRESETS["night"].night and not PRESETS["suburban"].night
    with pytest.raises(ValueError, match="speed_range_mps"):
        dataclasses.replace(PRESETS["suburban"], speed_range_mps=(10.0, 5.0))
    with pytest.raises(ValueError, match="num_sequences"):
        simulate_scenario(PRESETS["suburban"], 0, seed=0)


# 2-4. physics ---------------------------------------------------------------------------------------------


def test_peak_beam_follows_the_vehicle_angle() -> None:
    # strong signal so that noise cannot reorder neighbouring beams
    preset = line_of_sight_only(PRESETS["suburban"], tx_power_dbm=40.0)
    sim = simulate_scenario(preset, 4, seed=1)
    delta = sim.target_xyz_local_m - np.array([0.0, 0.0, preset.bs_height_m])
    sine = delta[:, 0] / np.linalg.norm(delta, axis=1)  # direction cosine along the array axis
    np.testing.assert_allclose(np.sin(np.radians(sim.los_aod_deg)), sine, atol=1e-9)
    inside = np.abs(sine) <= BEAM_SINES[-1]
    assert inside.mean() > 0.7
    assert np.mean(sim.beam[inside] == nearest_beam(sine[inside])) >= 0.9
    for number in range(1, 5):
        rows = (sim.seq_index == number) & inside
        order = np.argsort(sine[rows])
        assert np.all(np.diff(sim.beam[rows][order]) >= 0), f"sequence {number}: beam not monotonic in angle"
        assert sim.beam[rows][order][-1] - sim.beam[rows][order][0] > 20  # a pass sweeps the codebook


def test_codebook_covers_the_sector_in_increasing_angle() -> None:
    assert BEAM_SINES.shape == (64,) and np.all(np.diff(BEAM_SINES) > 0)
    np.testing.assert_allclose(np.degrees(np.arcsin(BEAM_SINES[[0, -1]])), [-50.0, 50.0])
    np.testing.assert_array_equal(nearest_beam(BEAM_SINES), np.arange(1, 65))


@pytest.mark.parametrize("angle_deg", [0.0, 25.0, -40.0])
def test_power_falls_6_db_per_doubling_of_distance(angle_deg: float) -> None:
    preset = line_of_sight_only(PRESETS["urban_canyon"])
    preset = dataclasses.replace(preset, bs_height_m=preset.ue_height_m)  # distance in the plane = 3-D
    direction = np.array([np.sin(np.radians(angle_deg)), np.cos(np.radians(angle_deg)), 0.0])
    near, far = (direction * d + [0.0, 0.0, preset.ue_height_m] for d in (12.0, 24.0))
    drop = peak_db(preset, near[None])[0] - peak_db(preset, far[None])[0]
    assert drop == pytest.approx(6.02 + preset.oxygen_db_per_km * 12.0 / 1000, abs=0.2)
    assert abs(drop - 6.0) <= 1.5


def test_a_truck_in_the_ray_blocks_line_of_sight() -> None:
    preset = dataclasses.replace(PRESETS["urban_canyon"], walls=(), num_scatterers=0)
    ue = np.array([[3.0, 21.5, preset.ue_height_m]])
    truck = np.array([[[1.5, 11.0, 10.0, 2.5, 3.8]]])  # centre x, centre y, length, width, height
    car = np.array([[[1.5, 11.0, 4.6, 1.85, 1.5]]])
    clear = measure_beams(preset, ue, NO_BOXES, NO_SCENERY)
    blocked = measure_beams(preset, ue, truck, NO_SCENERY)
    passing_car = measure_beams(preset, ue, car, NO_SCENERY)
    low, high = preset.blockage_loss_db
    assert blocked.blocked[0] and not clear.blocked[0] and not passing_car.blocked[0]
    assert low <= blocked.los_loss_db[0] <= high
    drop = 10 * np.log10(clear.power_linear.max() / blocked.power_linear.max())
    assert drop >= low - 3.0
    assert passing_car.los_loss_db[0] == 0.0  # the ray passes well over a car's roof
    # the ITU-R knife edge: 6 dB at grazing incidence, none well above the edge, more the deeper the shadow
    assert knife_edge_loss_db(np.array([0.0]))[0] == pytest.approx(6.0, abs=0.1)
    assert knife_edge_loss_db(np.array([-1.0]))[0] == 0.0
    assert np.all(np.diff(knife_edge_loss_db(np.linspace(-0.7, 10, 50))) > 0)


def test_simulated_blockage_is_labelled_and_costs_power() -> None:
    sim = simulate_scenario(PRESETS["wide_avenue"], 12, seed=0)
    assert 0 < sim.blocked.mean() < 0.4
    low, high = sim.preset.blockage_loss_db
    assert np.all((sim.los_loss_db[sim.blocked] >= low) & (sim.los_loss_db[sim.blocked] <= high))
    peak = 10 * np.log10(sim.power_linear.max(axis=1))
    assert np.median(peak[~sim.blocked]) - np.median(peak[sim.blocked]) > 5.0


# 5. round trip through the DeepSense reader ---------------------------------------------------------------


def test_written_folder_reads_back_with_the_deepsense_reader(tmp_path: Path) -> None:
    sim = simulate_scenario(PRESETS["urban_canyon"], 4, seed=2)
    folder = tmp_path / "urban_canyon"
    write_scenario_folder(sim, folder)
    data = load_scenario(folder, ["beam_power", "beam_label", "position"])
    power, label, position = (data.fields[k] for k in ("beam_power", "beam_label", "position"))
    np.testing.assert_array_equal(label + 1, sim.beam)
    np.testing.assert_array_equal(np.argmax(power, axis=1), label)
    np.testing.assert_allclose(power, sim.power_linear, rtol=1e-6)
    np.testing.assert_array_equal(data.sequence, sim.seq_index)
    np.testing.assert_array_equal(data.index, np.arange(1, len(sim) + 1))
    gps_enu = latlon_to_enu_m(sim.lat_lon, sim.bs_lat_lon)
    assert np.abs(position - gps_enu).max() < 0.05
    # the GPS fix is the true position plus metre-level error
    error = np.linalg.norm(gps_enu - sim.position_enu_m, axis=1)
    assert 0.3 < np.median(error) < 4.0
    # the blockage column and the reversed file order, as in the official files
    text = (folder / f"{folder.name}.csv").read_text().splitlines()
    assert text[0] == "index,unit1_pwr_60ghz,unit1_loc,unit2_loc,unit1_beam,unit1_blockage,seq_index"
    blockage = np.array([int(line.split(",")[5]) for line in text[1:]])
    np.testing.assert_array_equal(blockage, sim.blocked.astype(int))
    first = np.loadtxt(folder / "unit1" / "mmWave_data" / "mmWave_power_1.txt")
    assert 64 - int(np.argmax(first)) == sim.beam[0]


def test_boxes_match_positions_for_later_sensors() -> None:
    sim = simulate_scenario(PRESETS["urban_canyon"], 2, seed=0)
    n, k = sim.blocker_class.shape
    assert sim.target_box_enu.shape == (n, 6) and sim.blocker_boxes_enu.shape == (n, k, 6)
    np.testing.assert_allclose(sim.target_box_enu[:, :2], sim.position_enu_m)
    np.testing.assert_allclose(local_to_enu(sim.preset, sim.target_xyz_local_m[:, :2]), sim.position_enu_m)
    padding = sim.blocker_class < 0
    assert (
        np.isnan(sim.blocker_boxes_enu[padding]).all() and np.isfinite(sim.blocker_boxes_enu[~padding]).all()
    )
    # the target drives along the road: its heading is the road's direction, either way
    road = np.radians(90.0 - sim.preset.road_bearing_deg)
    off_road = np.abs(np.sin(sim.target_box_enu[:, 5] - road))  # lane keeping: a few degrees at most
    assert np.median(off_road) < 0.05 and off_road.max() < 0.2


# 6. writer and CLI ----------------------------------------------------------------------------------------


def test_writer_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    sim = simulate_scenario(PRESETS["night"], 2, seed=0)
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    # a folder the writer did not write is never replaced (tests/test_trust_outputs.py has the CLI's side)
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=str(folder)):
            write_scenario_folder(sim, folder, overwrite=overwrite)
    (folder / "notes.txt").unlink()
    write_scenario_folder(sim, folder)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="pass --overwrite"):
        write_scenario_folder(sim, folder)
    write_scenario_folder(sim, folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"  # overwrite clears only what the writer makes
    assert len(load_scenario(folder, ["beam_label"])) == len(sim)


def test_synth_command_writes_presets_and_rejects_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "synth"
    args = [
        "data",
        "synth",
        "--out",
        str(out),
        "--scenarios",
        "suburban,night",
        "--sequences",
        "2",
        "--seed",
        "1",
    ]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["night", "suburban"]
    printed = capsys.readouterr().out
    assert "suburban:" in printed and "2 sequences" in printed and "blocked" in printed
    for name in ("suburban", "night"):
        assert len(load_scenario(out / name, ["beam_power"]).fields["beam_power"]) > 0
    assert main(args) == 1  # exists; needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert main(["data", "synth", "--out", str(out), "--scenarios", "suburban,atlantis"]) == 2
    err = capsys.readouterr().err
    assert "atlantis" in err and all(name in err for name in PRESETS)


# 7. realism against the real DeepSense statistics ---------------------------------------------------------


def repeat_last_accuracy(beam: np.ndarray, sequence: np.ndarray, steps: int) -> float:
    same = sequence[steps:] == sequence[:-steps]
    return float(np.mean(beam[steps:][same] == beam[:-steps][same]))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_realism_smoke(name: str) -> None:
    sim = simulate_scenario(PRESETS[name], 10, seed=0)
    assert 9.0 <= sim.preset.sample_rate_hz <= 10.0
    lengths = np.bincount(sim.seq_index)[1:]
    assert 20 <= lengths.mean() <= 120  # tens of samples per pass
    same = sim.seq_index[1:] == sim.seq_index[:-1]
    change = np.abs(np.diff(sim.beam))[same]
    assert np.median(change) <= 3  # the best beam moves by a beam or two per ~0.11 s step
    # motion matters: repeating the last beam is right less and less often (real data: 6-22 % at 3 steps)
    accuracy = [repeat_last_accuracy(sim.beam, sim.seq_index, k) for k in (1, 2, 3)]
    assert 0.01 <= accuracy[2] <= accuracy[0] <= 0.7
    # real data: the median peak-to-median ratio is 3-8 dB, the peak ~0.01-1 in linear units
    ratio_db = 10 * np.log10(sim.power_linear.max(axis=1) / np.median(sim.power_linear, axis=1))
    assert 3.0 <= np.median(ratio_db) <= 25.0
    assert 1e-3 <= np.median(sim.power_linear.max(axis=1)) <= 2.0
    assert (sim.power_linear >= 0).all()
    assert sim.blocked.mean() < 0.4
