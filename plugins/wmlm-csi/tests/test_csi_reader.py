"""The ``csi`` field reader: complex .npy files to real/imaginary arrays, errors naming file and row."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from csi_fixtures import csi_plugin, private_cache, set_cell, write_scenario  # noqa: F401  # autouse fixtures
from wmlm import registry
from wmlm.data.deepsense import load_scenario
from wmlm.data.table import DataError, ScenarioTable

from wmlm_csi import CsiReader


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "site"


def test_registered_as_field_csi() -> None:
    reader = registry.get_reader("csi")
    assert isinstance(reader, CsiReader) and reader.columns == ("unit1_csi",)


def test_reads_real_and_imaginary_parts(folder: Path) -> None:
    channels = write_scenario(folder, sequence_lengths=(5, 4))
    csi = load_scenario(folder, ["csi"]).fields["csi"]
    assert csi.shape == (9, 2, 16, 32) and csi.dtype == np.float32
    np.testing.assert_array_equal(csi[:, 0], channels.real)
    np.testing.assert_array_equal(csi[:, 1], channels.imag)


def test_complex128_and_other_sizes(folder: Path) -> None:
    write_scenario(folder, sequence_lengths=(3,))
    wide = (np.arange(8 * 4) * (1 + 2j)).reshape(8, 4)  # complex128
    for row in range(3):
        np.save(folder / "unit1" / "csi_data" / f"csi_{row}.npy", wide)
    csi = CsiReader(antennas=8, subcarriers=4).read(ScenarioTable.from_folder(folder))
    assert csi.shape == (3, 2, 8, 4)
    np.testing.assert_array_equal(csi[2, 1], wide.imag.astype(np.float32))


def _real(path: Path) -> Path:
    np.save(path, np.ones((16, 32), np.float32))
    return path


def _wrong_shape(path: Path) -> Path:
    np.save(path, np.ones((16, 16), np.complex64))
    return path


def _transposed(path: Path) -> Path:
    np.save(path, np.ones((32, 16), np.complex64))
    return path


def _nan(path: Path) -> Path:
    channel = np.ones((16, 32), np.complex64)
    channel[3, 7] = complex(0, np.nan)
    np.save(path, channel)
    return path


def _unreadable(path: Path) -> Path:
    path.write_bytes(b"\x93NUMPY garbage")
    return path


def _not_npy(path: Path) -> Path:
    path = path.with_suffix(".mat")
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_real, "holds float32 values; expected complex"),
        (_wrong_shape, r"shape \[16, 16\]; expected \[16, 32\] \(antennas x subcarriers\)$"),
        (_transposed, r"shape \[32, 16\]; expected \[16, 32\] .*transposed"),
        (_nan, r"1 NaN or infinite values \(first at antenna 3, subcarrier 7\)"),
        (_unreadable, "cannot read .* as a .npy array"),
        (_not_npy, "is not a .npy file"),
    ],
    ids=["real", "shape", "transposed", "nan", "unreadable", "suffix"],
)
def test_bad_file_names_file_and_row(folder: Path, make: Callable[[Path], Path], message: str) -> None:
    write_scenario(folder, sequence_lengths=(4,))
    path = make(folder / "unit1" / "csi_data" / "broken.npy")
    set_cell(folder, 1, "unit1_csi", f"./unit1/csi_data/{path.name}")
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["csi"])
    text = str(info.value)
    assert text.startswith(f"{folder / 'site.csv'}, row 2 (line 3), column 'unit1_csi': "), text
    assert path.name in text
    assert re.search(message, text), text


def test_missing_column_and_file(folder: Path) -> None:
    write_scenario(folder, sequence_lengths=(3,))
    set_cell(folder, 2, "unit1_csi", "./unit1/csi_data/gone.npy")
    with pytest.raises(DataError, match=r"row 3 .*'unit1_csi'.*gone.npy is missing"):
        load_scenario(folder, ["csi"])
    csv_path = folder / "site.csv"
    csv_path.write_text(csv_path.read_text().replace("unit1_csi", "unit1_other"))
    with pytest.raises(DataError, match="none of the columns \\['unit1_csi'\\]"):
        load_scenario(folder, ["csi"])
