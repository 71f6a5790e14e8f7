"""DeepSense reader: CSV table, field readers, scenario discovery and the lat/lon -> metres conversion."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from wmlm.data.deepsense import find_scenarios, load_scenario
from wmlm.data.readers import latlon_to_enu_m
from wmlm.data.table import DataError, ScenarioTable

FIELDS = ["beam_power", "beam_label", "position"]


def _rewrite_csv(folder: Path, edit) -> None:  # noqa: ANN001 - edit(header, rows) -> (header, rows)
    csv_path = folder / f"{folder.name}.csv"
    with csv_path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    header, rows = edit(lines[0], lines[1:])
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _power_file(folder: Path, k: int) -> Path:
    return folder / "unit1" / "mmWave_data" / f"mmWave_power_{k}.txt"


# ---------------------------------------------------------------- labels, power order, position


@pytest.mark.parametrize("label_column", ["unit1_beam", "unit1_beam_index"])
def test_labels_are_zero_based_for_both_label_columns(make_scenario, label_column):
    folder, truth = make_scenario(label_column=label_column)
    data = load_scenario(folder, FIELDS)
    assert data.fields["beam_label"].dtype == np.int64
    np.testing.assert_array_equal(data.fields["beam_label"], truth["beam"] - 1)
    assert data.fields["beam_label"].min() >= 0
    assert data.fields["beam_label"].max() <= 63


def test_index_and_sequence_columns(make_scenario):
    folder, _ = make_scenario(sequence_lengths=(3, 4))
    data = load_scenario(folder, ["beam_label"])
    np.testing.assert_array_equal(data.index, np.arange(1, 8))
    np.testing.assert_array_equal(data.sequence, [1, 1, 1, 2, 2, 2, 2])
    assert data.name == "scenario1"
    assert len(data) == 7


def test_beam_power_is_in_beam_order(make_scenario):
    folder, truth = make_scenario()
    data = load_scenario(folder, FIELDS)
    power = data.fields["beam_power"]
    assert power.shape == (len(truth["beam"]), 64)
    assert power.dtype == np.float32
    # element i is the power of beam i + 1 (the file lists beams in reverse)
    np.testing.assert_allclose(power, truth["power"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(power.argmax(axis=1) + 1, truth["beam"])
    np.testing.assert_array_equal(power.argmax(axis=1), data.fields["beam_label"])


def test_beam_power_reverses_a_hand_written_file(make_scenario):
    folder, _ = make_scenario(sequence_lengths=(2,))
    _power_file(folder, 0).write_text("\n".join(str(float(v)) for v in range(64)) + "\n")
    power = load_scenario(folder, ["beam_power"]).fields["beam_power"]
    # file element j is beam 64 - j, so beam 1 (field element 0) is the last number in the file
    np.testing.assert_array_equal(power[0], np.arange(63, -1, -1, dtype=np.float32))


def test_position_is_east_north_metres(make_scenario):
    folder, truth = make_scenario()
    position = load_scenario(folder, FIELDS).fields["position"]
    assert position.shape == (len(truth["beam"]), 2)
    assert position.dtype == np.float32
    np.testing.assert_allclose(position, truth["east_north_m"], atol=0.05)


def test_latlon_to_enu_hand_computed():
    origin = np.array([33.0, -111.0])
    points = np.array([[33.0001, -111.0], [33.0, -111.0], [33.0, -111.0001]])
    enu = latlon_to_enu_m(points, origin)
    # 1e-4 degree of latitude = 1e-4 * pi / 180 * 6_371_008.8 m = 11.1195 m north
    assert enu[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert enu[0, 1] == pytest.approx(11.1195, abs=1e-3)
    assert enu[1] == pytest.approx([0.0, 0.0], abs=1e-12)
    # 1e-4 degree of longitude west at 33 deg N = -11.1195 * cos(33 deg) = -9.3256 m east
    assert enu[2, 0] == pytest.approx(-9.3256, abs=1e-3)
    assert enu[2, 1] == pytest.approx(0.0, abs=1e-9)


def test_latlon_to_enu_per_row_origins():
    points = np.array([[10.0001, 20.0], [0.0, 0.0001]])
    origins = np.array([[10.0, 20.0], [0.0, 0.0]])
    enu = latlon_to_enu_m(points, origins)
    np.testing.assert_allclose(enu, [[0.0, 11.1195], [11.1195, 0.0]], atol=1e-3)


# ---------------------------------------------------------------- missing and bad files


def test_missing_power_file_names_file_and_row(make_scenario):
    folder, _ = make_scenario()
    _power_file(folder, 2).unlink()
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["beam_power"])
    message = str(info.value)
    assert "mmWave_power_2.txt" in message
    assert "row 3" in message
    assert "missing" in message


def test_unrequested_modality_with_missing_files_does_not_break_loading(make_scenario):
    folder, truth = make_scenario(extra_columns={"unit1_rgb": "./unit1/camera_data/image_0.jpg"})
    assert not (folder / "unit1" / "camera_data").exists()
    data = load_scenario(folder, ["beam_power", "beam_label"])
    np.testing.assert_array_equal(data.fields["beam_power"].argmax(axis=1) + 1, truth["beam"])
    # and the column really is there and really is broken
    table = ScenarioTable.from_folder(folder)
    assert "unit1_rgb" in table.header
    with pytest.raises(DataError, match="image_0.jpg"):
        table.paths("unit1_rgb")


def test_path_outside_scenario_folder_is_refused(make_scenario):
    folder, _ = make_scenario()

    def edit(header, rows):
        rows[1][header.index("unit1_pwr_60ghz")] = "../../etc/passwd"
        return header, rows

    _rewrite_csv(folder, edit)
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["beam_power"])
    message = str(info.value)
    assert "outside the scenario folder" in message
    assert "../../etc/passwd" in message
    assert "row 2" in message


def test_path_escaping_through_a_sibling_is_refused(make_scenario, tmp_path):
    folder, _ = make_scenario()
    (tmp_path / "data" / "scenario1_evil").mkdir()
    (tmp_path / "data" / "scenario1_evil" / "p.txt").write_text("1\n" * 64)

    def edit(header, rows):
        rows[0][header.index("unit1_pwr_60ghz")] = "../scenario1_evil/p.txt"
        return header, rows

    _rewrite_csv(folder, edit)
    with pytest.raises(DataError, match="outside the scenario folder"):
        load_scenario(folder, ["beam_power"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("\n".join("0.5" for _ in range(63)) + "\n", "63 numbers, expected 64"),
        ("\n".join(["0.5"] * 32 + ["abc"] + ["0.5"] * 31) + "\n", "not a number"),
        ("\n".join(["0.5"] * 40 + ["nan"] + ["0.5"] * 23) + "\n", "NaN"),
        ("\n".join(["0.5"] * 40 + ["-0.5"] + ["0.5"] * 23) + "\n", "negative"),
    ],
    ids=["63-values", "text", "nan", "negative"],
)
def test_bad_power_file_names_the_file(make_scenario, content, expected):
    folder, _ = make_scenario()
    _power_file(folder, 4).write_text(content)
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["beam_power"])
    message = str(info.value)
    assert "mmWave_power_4.txt" in message
    assert expected in message
    assert "row 5" in message


def test_comma_separated_power_file_is_accepted(make_scenario):
    folder, _ = make_scenario(sequence_lengths=(2,))
    _power_file(folder, 1).write_text(",".join(str(float(v)) for v in range(64)))
    power = load_scenario(folder, ["beam_power"]).fields["beam_power"]
    assert power[1, 0] == 63.0 and power[1, 63] == 0.0


# ---------------------------------------------------------------- bad CSVs


def test_missing_seq_index_column_is_named(make_scenario):
    folder, _ = make_scenario()

    def edit(header, rows):
        drop = header.index("seq_index")
        return [h for i, h in enumerate(header) if i != drop], [
            [c for i, c in enumerate(r) if i != drop] for r in rows
        ]

    _rewrite_csv(folder, edit)
    with pytest.raises(DataError, match="seq_index"):
        load_scenario(folder, ["beam_power"])


def test_missing_label_column_lists_both_candidates(make_scenario):
    folder, _ = make_scenario()

    def edit(header, rows):
        return ["something_else" if h == "unit1_beam" else h for h in header], rows

    _rewrite_csv(folder, edit)
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["beam_label"])
    message = str(info.value)
    assert "unit1_beam_index" in message
    assert "'unit1_beam'" in message
    # the power field does not need a label column
    assert load_scenario(folder, ["beam_power"]).fields["beam_power"].shape[1] == 64


def test_label_out_of_range_is_refused(make_scenario):
    folder, _ = make_scenario()

    def edit(header, rows):
        rows[3][header.index("unit1_beam")] = "65"
        return header, rows

    _rewrite_csv(folder, edit)
    with pytest.raises(DataError, match="row 4.*65"):
        load_scenario(folder, ["beam_label"])


def test_non_integer_label_names_row_and_column(make_scenario):
    folder, _ = make_scenario()

    def edit(header, rows):
        rows[0][header.index("unit1_beam")] = "12.5"
        return header, rows

    _rewrite_csv(folder, edit)
    with pytest.raises(DataError, match=r"row 1 .*'unit1_beam'.*12\.5"):
        load_scenario(folder, ["beam_label"])


def test_ragged_csv_row_names_the_line(make_scenario):
    folder, _ = make_scenario()
    csv_path = folder / "scenario1.csv"
    csv_path.write_text(csv_path.read_text() + "1,2,3\n")
    with pytest.raises(DataError, match="line"):
        ScenarioTable.from_folder(folder)


def test_unknown_field_is_an_unknown_name(make_scenario):
    from wmlm.registry import UnknownNameError

    folder, _ = make_scenario()
    with pytest.raises(UnknownNameError, match="beam_power"):
        load_scenario(folder, ["no_such_field"])


# ---------------------------------------------------------------- find_scenarios


def test_find_scenarios_single_scenario_root(make_scenario):
    folder, _ = make_scenario("scenario5")
    assert find_scenarios(folder) == [folder]
    assert find_scenarios(folder, ["scenario5"]) == [folder]


def test_find_scenarios_folder_of_scenarios(data_root):
    found = find_scenarios(data_root)
    assert [p.name for p in found] == ["scenario1", "scenario2", "scenario9"]
    assert all(p.parent == data_root for p in found)


def test_find_scenarios_ignores_non_scenario_folders(data_root):
    (data_root / "notes").mkdir()
    (data_root / "notes" / "readme.txt").write_text("x")
    assert [p.name for p in find_scenarios(data_root)] == ["scenario1", "scenario2", "scenario9"]


def test_find_scenarios_names_select_in_given_order(data_root):
    found = find_scenarios(data_root, ["scenario9", "scenario1"])
    assert [p.name for p in found] == ["scenario9", "scenario1"]


def test_find_scenarios_unknown_name_lists_available(data_root):
    with pytest.raises(DataError) as info:
        find_scenarios(data_root, ["scenario1", "scenario7"])
    message = str(info.value)
    assert "scenario7" in message
    for name in ("scenario1", "scenario2", "scenario9"):
        assert name in message


def test_find_scenarios_nonexistent_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_scenarios(tmp_path / "nowhere")


def test_find_scenarios_empty_root(tmp_path):
    with pytest.raises(DataError, match="no scenario folder"):
        find_scenarios(tmp_path)


def test_error_line_number_after_a_blank_line(make_scenario):
    folder, _ = make_scenario()
    csv_path = folder / "scenario1.csv"
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("unit1_beam")] = "oops"
    # file: line 1 header, lines 2-3 data rows 1-2, line 4 blank, line 5 data row 3 (the bad one)
    csv_path.write_text("\n".join([*lines[:3], "", ",".join(cells), *lines[4:]]) + "\n")
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["beam_label"])
    message = str(info.value)
    assert "row 3" in message
    assert "line 5" in message


# ---------------------------------------------------------------- rows out of time order


def _set_cell(folder: Path, row: int, column: str, value: str) -> None:
    def edit(header, rows):
        rows[row][header.index(column)] = value
        return header, rows

    _rewrite_csv(folder, edit)


@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        (4, "index", "2", "index 2 repeats row 2"),
        (4, "index", "1", "index 1 repeats row 1"),
        (3, "index", "3", "index 3 repeats row 3"),
        (20, "seq_index", "1", "seq_index 1 follows 2"),
    ],
)
def test_rows_out_of_time_order_are_refused(make_scenario, row, column, value, expected):
    folder, _ = make_scenario(sequence_lengths=(14, 12))
    _set_cell(folder, row, column, value)
    with pytest.raises(DataError, match=expected) as info:
        load_scenario(folder, ["beam_label"])
    assert f"{folder.name}.csv, row {row + 1}" in str(info.value)


def test_decreasing_index_is_refused(make_scenario):
    folder, _ = make_scenario(sequence_lengths=(5,))
    _set_cell(folder, 2, "index", "100")
    with pytest.raises(DataError, match=r"row 4 .*index 4 follows 100"):
        load_scenario(folder, ["beam_label"])
