"""Property: whatever happens to a scenario folder, ``wmlm fit`` either stops with a short message (no
traceback) or succeeds on data that round-trips (what the model was fed is what the files say)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_e2e import fit_args

from wmlm.cli import main
from wmlm.data.deepsense import load_scenario
from wmlm.data.readers import MAX_PEAK_RATIO

NAME = "scenario1"
PASSES = (8, 8, 8, 8)
ROWS = sum(PASSES)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One valid tiny scenario folder, copied for every example."""
    folder = tmp_path_factory.mktemp("pristine") / NAME
    write_scenario(folder, sequence_lengths=PASSES, seed=3)
    return folder


def power_path(folder: Path, k: int) -> Path:
    return folder / "unit1" / "mmWave_data" / f"mmWave_power_{k}.txt"


def csv_path(folder: Path) -> Path:
    return folder / f"{NAME}.csv"


def edit_rows(folder: Path, edit) -> None:  # noqa: ANN001 - a function of the row list
    with csv_path(folder).open(newline="") as handle:
        rows = list(csv.reader(handle))
    edit(rows)
    with csv_path(folder).open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


# one corruption: (kind, row, payload); payloads are drawn to cover empty, huge, binary and odd text
corruption = st.tuples(
    st.sampled_from(
        [
            "truncate_power",
            "garble_power",
            "label_cell",
            "delete_file",
            "encode_csv",
            "nul_bytes",
            "duplicate_row",
            "swap_rows",
            "power_separators",
            "blank_lines",
        ]
    ),
    st.integers(0, ROWS - 1),
    st.one_of(st.binary(max_size=40), st.text(max_size=12), st.integers(-5, 70).map(str)),
)


def corrupt(folder: Path, kind: str, row: int, payload: bytes | str) -> None:
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    text = payload if isinstance(payload, str) else payload.decode("latin-1")
    path = power_path(folder, row)
    if kind == "truncate_power":
        path.write_bytes(path.read_bytes()[: len(raw)])
    elif kind == "garble_power":
        data = bytearray(path.read_bytes())
        data[: len(raw)] = raw
        path.write_bytes(bytes(data))
    elif kind == "label_cell":
        edit_rows(folder, lambda rows: rows[row + 1].__setitem__(rows[0].index("unit1_beam"), text))
    elif kind == "delete_file":
        path.unlink()
    elif kind == "encode_csv":
        source = csv_path(folder).read_text()
        encoding = ["utf-16", "latin-1", "cp1252", "utf-8"][len(raw) % 4]
        csv_path(folder).write_bytes(
            (source.replace("index", "índex", row % 2) + text).encode(encoding, "replace")
        )
    elif kind == "nul_bytes":
        target = csv_path(folder) if row % 2 else path
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2] + b"\0" * (1 + len(raw)) + data[len(data) // 2 :])
    elif kind == "duplicate_row":
        edit_rows(folder, lambda rows: rows.insert(row + 1, list(rows[row + 1])))
    elif kind == "swap_rows":
        other = (row + 1 + len(raw)) % ROWS
        edit_rows(folder, lambda rows: rows.__setitem__(slice(None), _swapped(rows, row + 1, other + 1)))
    elif kind == "power_separators":  # benign: commas, tabs and CRLF between the numbers
        numbers = path.read_text().split()
        path.write_text([", ", "\t", "\r\n", " "][len(raw) % 4].join(numbers))
    elif kind == "blank_lines":  # benign: blank lines between rows
        lines = csv_path(folder).read_text().splitlines(keepends=True)
        lines.insert(row + 1, "\n" * (1 + len(raw) % 3))
        csv_path(folder).write_text("".join(lines))


def _swapped(rows: list[list[str]], a: int, b: int) -> list[list[str]]:
    rows = list(rows)
    rows[a], rows[b] = rows[b], rows[a]
    return rows


def independent_parse(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0-based) and power by beam ``[N, 64]``, parsed without wmlm.

    Rows wmlm documents as missing are NaN: all zeros, or a peak ``MAX_PEAK_RATIO`` off the median peak.
    """
    with csv_path(folder).open(newline="", encoding="utf-8-sig") as handle:
        rows = [r for r in csv.DictReader(handle) if r]
    labels = np.array([int(float(r["unit1_beam"])) - 1 for r in rows])
    power = np.stack(
        [
            np.array(open(folder / r["unit1_pwr_60ghz"]).read().replace(",", " ").split(), float)[::-1]
            for r in rows
        ]
    )
    peak = power.max(axis=1)
    median = np.median(peak[peak > 0])
    power[(peak <= 0) | (peak > MAX_PEAK_RATIO * median) | (peak < median / MAX_PEAK_RATIO)] = np.nan
    return labels, power


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same 20 examples every run: a failure is reproducible and the time is stable
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=st.lists(corruption, min_size=1, max_size=2))
def test_broken_scenario_folders_fail_short_or_round_trip(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture, changes
) -> None:
    root = tmp_path_factory.mktemp("root")
    folder = root / NAME
    shutil.copytree(pristine, folder)
    for change in changes:
        corrupt(folder, *change)
    out = root / "runs"
    capsys.readouterr()
    code = main(fit_args(root, out, "--trainer.fast_dev_run", "1", "--test_after_fit", "false"))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code != 0:
        lines = err.strip().splitlines()
        assert code in (1, 2) and lines[0].startswith("wmlm: error: ") and len(lines) <= 12, err
        assert len(err) < 2500, err
        return
    # success: what wmlm read is what the files say
    labels, power = independent_parse(folder)
    data = load_scenario(folder, ["beam_label", "beam_power"])
    np.testing.assert_array_equal(data.fields["beam_label"], labels)
    np.testing.assert_allclose(data.fields["beam_power"], power, rtol=1e-6, atol=1e-12)
