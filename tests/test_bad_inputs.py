"""Bad inputs not covered elsewhere: each gives one clear message naming the file, row or key.

The full catalogue, with the test proving each entry, is in docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_cli_e2e import fit_args

from wmlm.cli import main, run
from wmlm.data.deepsense import load_scenario
from wmlm.data.readers import read_numbers
from wmlm.data.table import DataError, ScenarioTable, _parse_int
from wmlm.model.checkpoint import CheckpointMismatchError


def test_gps_out_of_range_names_file_and_row(make_scenario) -> None:
    folder, _ = make_scenario(sequence_lengths=(4,))
    (folder / "unit2" / "GPS_data" / "gps_location_2.txt").write_text("123.4\n-111.9\n")
    with pytest.raises(
        DataError, match=r"row 3 .*'unit2_loc'.*gps_location_2.txt.*\(123.4, -111.9\).*latitude"
    ):
        load_scenario(folder, ["position"])


def test_scenario_without_rows_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "empty.csv").write_text("index,unit1_pwr_60ghz,unit1_beam,seq_index\n")
    with pytest.raises(DataError, match=r"empty.csv: no data rows"):
        load_scenario(folder, ["beam_label"])


def test_config_key_typo_names_the_key(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  init_args:\n    aling_epochs: 1\n")
    code = main([*fit_args(data_root, tmp_path / "runs"), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "aling_epochs" in err and "Traceback" not in err and "usage:" not in err


def test_data_root_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(DataError, match=f"data root {missing} does not exist"):
        run(fit_args(missing, tmp_path / "runs"))


def test_init_from_a_checkpoint_of_another_preset_names_the_weights(data_root: Path, tmp_path: Path) -> None:
    small = run(
        fit_args(data_root, tmp_path / "a", "--model.init_args.preset", "small", "--test_after_fit", "false")
    )
    ckpt = str(Path(small.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    with pytest.raises(
        CheckpointMismatchError, match=r"other shapes .*backbone\..*checkpoint \[\d+.*vs model"
    ):
        run(fit_args(data_root, tmp_path / "b", "--model.init_args.init_from", ckpt))


# ---------------------------------------------------------------- property-based: the text readers

numbers = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(values=numbers, separator=st.sampled_from(["\n", " ", ",", ", ", "\t", "\r\n"]))
def test_read_numbers_round_trips_any_finite_values(
    tmp_path_factory, values: list[float], separator: str
) -> None:
    path = tmp_path_factory.mktemp("n") / "values.txt"
    path.write_text(separator.join(repr(v) for v in values) + "\n")
    np.testing.assert_array_equal(read_numbers(path, len(values), "here"), np.array(values, dtype=np.float64))
    with pytest.raises(DataError, match=f"holds {len(values)} numbers, expected {len(values) + 1}"):
        read_numbers(path, len(values) + 1, "here")


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_read_numbers_fails_only_with_a_data_error(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("t") / "garbage.txt"
    if not _encodable(text):  # lone surrogates cannot be written as UTF-8 at all
        return
    path.write_text(text, encoding="utf-8")
    try:
        values = read_numbers(path, 3, "here")
    except DataError as exc:
        assert "here" in str(exc) and "garbage.txt" in str(exc)
    else:
        assert values.shape == (3,) and np.isfinite(values).all()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(st.text(alphabet="0123456789.-+e xa", max_size=8), min_size=1, max_size=20))
@example(cells=["1e100"])  # an integer too large for int64: found by this test, once a bare OverflowError
def test_integer_columns_parse_integers_and_name_the_bad_row(tmp_path_factory, cells: list[str]) -> None:
    folder = tmp_path_factory.mktemp("csv") / "s"
    folder.mkdir()
    lines = ["seq_index,other"] + [f"{c.replace(',', '')},x" for c in cells]
    (folder / "s.csv").write_text("\n".join(lines) + "\n")
    table = ScenarioTable.from_folder(folder)
    expected: list[int | None] = []
    for cell in (row[0] for row in table.rows):
        try:
            value = _parse_int(cell)
        except (ValueError, OverflowError):
            value = None
        expected.append(value if value is None or -(2**63) <= value < 2**63 else None)
    if None in expected:
        bad = expected.index(None)
        with pytest.raises(DataError, match=rf"row {bad + 1} .*'seq_index': expected an integer"):
            table.integers("seq_index")
    else:
        assert table.integers("seq_index").tolist() == expected
