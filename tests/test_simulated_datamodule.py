"""The simulated data module: generated once into a cache, reused, and read by the same reader as real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wmlm.data.deepsense import load_scenario
from wmlm.data.simulated import COMPLETE_MARKER, SimulatedDataModule, ensure_simulated

FIELDS = {"inputs": {"beam": "beam_power", "gps": "position"}, "targets": {"beam": "beam_label"}}


def test_cache_is_written_once_then_reused(tmp_path: Path) -> None:
    parent = ensure_simulated(tmp_path, ["suburban", "night"], sequences=3, seed=0)
    files = sorted(p for p in parent.rglob("*") if p.is_file())
    assert {p.name for p in parent.iterdir()} == {"suburban", "night"}  # no staging folders left behind
    assert all((parent / name / COMPLETE_MARKER).is_file() for name in ("suburban", "night"))
    mtimes = [p.stat().st_mtime_ns for p in files]
    assert ensure_simulated(tmp_path, ["suburban", "night"], sequences=3, seed=0) == parent
    assert [p.stat().st_mtime_ns for p in files] == mtimes  # cache hit: nothing rewritten


def test_an_interrupted_scenario_is_regenerated(tmp_path: Path) -> None:
    parent = ensure_simulated(tmp_path, ["suburban"], sequences=2, seed=1)
    (parent / "suburban" / COMPLETE_MARKER).unlink()  # as if the process died before finishing
    (parent / "suburban" / "suburban.csv").write_text("index\n")  # and left a broken file
    ensure_simulated(tmp_path, ["suburban"], sequences=2, seed=1)
    data = load_scenario(parent / "suburban", ["beam_label", "blockage"])
    assert len(data) > 10 and set(np.unique(data.fields["blockage"])) <= {0, 1}


def test_unknown_preset_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="available: .*suburban"):
        ensure_simulated(tmp_path, ["mars_base"], sequences=2, seed=0)


def test_datamodule_holds_out_the_last_preset_by_default(tmp_path: Path) -> None:
    data = SimulatedDataModule(
        presets=["suburban", "night", "urban_canyon"], sequences=4, cache_dir=str(tmp_path), **FIELDS
    )
    data.setup("fit")
    assert data.test_scenarios == ["urban_canyon"]
    test_ids = set(data.datasets["test"].scenario_of_window.tolist())
    train_ids = set(data.datasets["train"].scenario_of_window.tolist())
    assert test_ids == {data.scenario_names.index("urban_canyon")}
    assert not test_ids & train_ids
    batch = next(iter(data.train_dataloader()))
    assert batch["beam"].shape[1:] == (5, 64) and batch["target"]["beam"].shape[1:] == (3,)


def test_camera_frames_reach_the_batch_and_sensors_key_the_cache(tmp_path: Path) -> None:
    fields = {"inputs": {"beam": "beam_power", "image": "image"}, "targets": {"beam": "beam_label"}}
    data = SimulatedDataModule(
        presets=["suburban", "night"], sequences=2, sensors=["camera"], cache_dir=str(tmp_path), **fields
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape[1:] == (5, 3, 64, 64)
    without = ensure_simulated(tmp_path, ["suburban"], sequences=2, seed=0, sensors=())
    assert without != data.root  # another sensor set is another cache folder
    assert "unit1_rgb" not in (without / "suburban" / "suburban.csv").read_text().splitlines()[0]


def test_arrays_cache_dir_is_the_arrays_folder_under_cache_dir(tmp_path: Path) -> None:
    data = SimulatedDataModule(presets=["suburban", "night"], sequences=2, cache_dir=str(tmp_path), **FIELDS)
    assert data.arrays_cache_dir() == tmp_path / "arrays"  # the parent's attribute is not overwritten
    data.setup("fit")
    assert any((tmp_path / "arrays").iterdir())  # parsed arrays went there
    assert {p.name for p in tmp_path.iterdir()} >= {"arrays"} and any(tmp_path.glob("sim/sim-*"))


def test_preset_names_are_checked_in_one_place_for_the_cli_and_the_data_module(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from wmlm.cli import main
    from wmlm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data.presets: simulator presets listed twice"):
        SimulatedDataModule(presets=["night", "night"], sequences=2, cache_dir=str(tmp_path), **FIELDS)
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--scenarios", "night,night"]) == 2
    assert "--scenarios: simulator presets listed twice" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_parent_options_pass_through_without_being_declared_twice(capsys: pytest.CaptureFixture) -> None:
    import inspect

    import yaml

    from wmlm.cli import main

    own = inspect.signature(SimulatedDataModule.__init__).parameters
    assert "batch_size" not in own and "train_strides" not in own  # one declaration: the parent's
    argv = ["fit", "--model", "wmlm.WMLM", "--data", "wmlm.data.simulated.SimulatedDataModule"]
    assert main([*argv, "--data.init_args.batch_size", "7", "--print_config"]) == 0
    init_args = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]
    assert init_args["batch_size"] == 7 and init_args["split"] == "scenario" and "train_strides" in init_args
