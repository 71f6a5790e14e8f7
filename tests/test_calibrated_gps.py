"""Calibrated GPS (``unit2_loc_cal``): preferred by default where a scenario has it, said once per scenario;
``position_source: raw | calibrated`` selects; the cache keeps the two apart; the benchmark script runs."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BS_LAT_LON, METRES_PER_DEG_LAT
from test_benchmarks import load_script

from wmlm.cli import main, run
from wmlm.data.cache import load_scenario_cached
from wmlm.data.deepsense import load_scenario
from wmlm.data.table import DataError
from wmlm.errors import ConfigError
from wmlm.modalities.gps import GpsModality
from wmlm.model.baselines import PositionKNN
from wmlm.model.wmlm import WMLM

CONF = Path(__file__).parent / "conf"
OFFSET_M = np.array([3.0, -2.0])  # calibrated = raw + this, east/north metres: tells the columns apart
MESSAGE = "calibrated GPS column 'unit2_loc_cal'"
MakeScenario = Callable[..., tuple[Path, dict[str, np.ndarray]]]


def add_calibrated_gps(folder: Path, east_north_m: np.ndarray) -> None:
    """Write ``unit2/GPS_data_calibrated/gps_location_K.txt`` at the raw positions ``[N, 2]`` plus
    ``OFFSET_M`` and add the ``unit2_loc_cal`` column to the scenario's CSV, as DeepSense scenario 8 has."""
    (folder / "unit2" / "GPS_data_calibrated").mkdir(parents=True)
    csv_path = folder / f"{folder.name}.csv"
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for k, (row, (east, north)) in enumerate(zip(rows, east_north_m + OFFSET_M, strict=True)):
        lat = BS_LAT_LON[0] + north / METRES_PER_DEG_LAT
        lon = BS_LAT_LON[1] + east / (METRES_PER_DEG_LAT * np.cos(np.radians(BS_LAT_LON[0])))
        path = f"./unit2/GPS_data_calibrated/gps_location_{k}.txt"
        (folder / path).write_text(f"{lat:.10f}\n{lon:.10f}\n")
        row["unit2_loc_cal"] = path
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def calibrated_root(make_scenario: MakeScenario) -> tuple[Path, dict[str, np.ndarray]]:
    """``scenario8`` with calibrated GPS and ``scenario1`` without; returns the root and scenario8's truth."""
    folder, truth = make_scenario("scenario8", seed=8, sequence_lengths=(14, 12, 16, 13, 15, 12))
    add_calibrated_gps(folder, truth["east_north_m"])
    make_scenario("scenario1", seed=1, sequence_lengths=(14, 12, 16, 13, 15, 12))
    return folder.parent, truth


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if MESSAGE in r.getMessage()]


def knn_args(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(CONF / "gru.yaml"),
        "--model",
        "wmlm.model.baselines.PositionKNN",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "1.0",
        "--test_after_fit",
        "false",
        "--data.init_args.root",
        str(root),
        "--trainer.default_root_dir",
        str(out),
        *extra,
    ]


# ----------------------------------------------------------------------------------------- the readers


def test_auto_prefers_calibrated_with_one_message_per_scenario(calibrated_root, caplog) -> None:
    root, truth = calibrated_root
    with caplog.at_level(logging.WARNING):
        auto = load_scenario(root / "scenario8", ["position"]).fields["position"]
    np.testing.assert_allclose(auto, truth["east_north_m"] + OFFSET_M, atol=0.01)
    (said,) = messages(caplog)
    assert "scenario8" in said and "position_source: raw" in said
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        plain = load_scenario(root / "scenario1", ["position"]).fields["position"]
    assert not messages(caplog)  # raw where there is no calibrated column, without a word
    np.testing.assert_allclose(
        plain, load_scenario(root / "scenario1", ["position_raw"]).fields["position_raw"]
    )


def test_raw_and_calibrated_fields_read_their_column(calibrated_root, caplog) -> None:
    root, truth = calibrated_root
    with caplog.at_level(logging.WARNING):
        fields = load_scenario(root / "scenario8", ["position_raw", "position_cal"]).fields
    np.testing.assert_allclose(fields["position_raw"], truth["east_north_m"], atol=0.01)
    np.testing.assert_allclose(fields["position_cal"], truth["east_north_m"] + OFFSET_M, atol=0.01)
    assert not messages(caplog)  # an explicit choice needs no notice


def test_calibrated_without_the_column_names_scenario_and_column(calibrated_root) -> None:
    root, _ = calibrated_root
    with pytest.raises(DataError, match=r"scenario scenario1 .*'unit2_loc_cal'"):
        load_scenario(root / "scenario1", ["position_cal"])


def test_cache_keeps_raw_and_calibrated_apart(calibrated_root, tmp_path: Path) -> None:
    root, truth = calibrated_root
    cache = tmp_path / "arrays"
    for _ in range(2):  # the second round is served from the cache
        auto = load_scenario_cached(root / "scenario8", ["position"], cache).fields["position"]
        raw = load_scenario_cached(root / "scenario8", ["position_raw"], cache).fields["position_raw"]
        np.testing.assert_allclose(auto, truth["east_north_m"] + OFFSET_M, atol=0.01)
        np.testing.assert_allclose(raw, truth["east_north_m"], atol=0.01)


# ------------------------------------------------------------------------------ modality and baseline


@pytest.mark.parametrize(
    ("source", "field"), [("auto", "position"), ("raw", "position_raw"), ("calibrated", "position_cal")]
)
def test_source_selects_the_field_of_gps_modality_and_knn(source: str, field: str) -> None:
    assert GpsModality(position_source=source).field == field  # type: ignore[arg-type]
    assert GpsModality.field == "position"  # the class default is untouched
    model = WMLM(modalities=[GpsModality(position_source=source), "beam"], heads=["beam"], preset="tiny")  # type: ignore[arg-type]
    assert model.data_fields()["inputs"]["gps"] == field
    assert PositionKNN(position_source=source).data_fields()["inputs"] == {"beam": "beam_power", "gps": field}  # type: ignore[arg-type]


def test_unknown_source_names_the_option() -> None:
    with pytest.raises(ConfigError, match="position_source.*'gnss'"):
        GpsModality(position_source="gnss")  # type: ignore[arg-type]


def test_old_gps_options_and_checkpoint_keys_are_unchanged() -> None:
    modality = GpsModality(features="range")
    assert modality.field == "position"
    keys = set(modality.build_encoder(8).state_dict())
    assert keys == set(GpsModality(position_source="calibrated").build_encoder(8).state_dict())
    assert set(PositionKNN(position_source="raw").state_dict()) == {"train_position_m", "train_future_beam"}


# ------------------------------------------------------------------------------------ the command line


def test_knn_through_the_cli_reads_the_chosen_column(calibrated_root, tmp_path: Path, caplog) -> None:
    root, _ = calibrated_root
    stored = {}
    for source in ("auto", "raw", "calibrated"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            cli = run(
                knn_args(
                    root,
                    tmp_path / source,
                    "--data.scenarios",
                    "[scenario8]",
                    "--model.position_source",
                    source,
                )
            )
        stored[source] = cli.model.train_position_m.clone()
        # the calibrated column is announced when a parse chooses it by default (auto runs first)
        assert len(messages(caplog)) == (1 if source == "auto" else 0)
    assert len(stored["raw"]) == len(stored["calibrated"]) > 0
    torch.testing.assert_close(stored["auto"], stored["calibrated"])
    shift = (stored["calibrated"] - stored["raw"]).mean(dim=0)
    torch.testing.assert_close(shift, torch.tensor(OFFSET_M, dtype=torch.float32), atol=0.01, rtol=0)


def test_calibrated_on_a_scenario_without_it_fails_at_the_cli(
    calibrated_root, tmp_path: Path, capsys
) -> None:
    root, _ = calibrated_root
    result = main(knn_args(root, tmp_path / "runs", "--model.position_source", "calibrated"))
    err = capsys.readouterr().err
    assert result == 1, err
    assert err.startswith("wmlm: error:") and "Traceback" not in err
    assert "scenario scenario1" in err and "'unit2_loc_cal'" in err and "scenario8" not in err


def test_gps_modality_source_at_the_cli(calibrated_root, tmp_path: Path, capsys) -> None:
    root, _ = calibrated_root
    modalities = "[beam, {class_path: wmlm.modalities.GpsModality, init_args: {position_source: calibrated}}]"
    args = [
        "fit",
        "--config",
        str(CONF / "beam_gps.yaml"),
        "--data.init_args.root",
        str(root),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
        "--model.init_args.modalities",
        modalities,
        "--trainer.fast_dev_run",
        "1",
    ]
    assert main([*args, "--data.init_args.scenarios", "[scenario8]"]) == 0, capsys.readouterr().err
    assert main(args) == 1
    assert "scenario scenario1" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- the benchmark


def test_position_knn_script_tables_raw_and_calibrated(calibrated_root, tmp_path: Path) -> None:
    root, _ = calibrated_root
    markdown, out = tmp_path / "calibrated_gps.md", tmp_path / "calibrated_gps.json"
    results = load_script("position_knn").main(
        [
            "--root",
            str(root),
            "--scenarios",
            "scenario8,scenario1",
            "--markdown",
            str(markdown),
            "--json",
            str(out),
        ]
    )
    assert [(r["scenario"], r["source"]) for r in results] == [
        ("scenario8", "raw"),
        ("scenario8", "calibrated"),
        ("scenario1", "raw"),
    ]
    for r in results:
        assert 0.0 <= r["current"]["top1"] <= r["current"]["top3"] <= 1.0
        assert len(r["future"]["top1"]) == 3 and r["current"]["test_samples"] > 0
    text = markdown.read_text()
    assert (
        "python benchmarks/position_knn.py --root" in text
        and "| scenario8 | calibrated (unit2_loc_cal) |" in text
    )
    assert out.is_file()
