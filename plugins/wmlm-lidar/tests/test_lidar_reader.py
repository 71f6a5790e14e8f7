"""The ``lidar`` field reader: formats, padding, deterministic subsampling, and errors naming file and row."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from lidar_fixtures import lidar_plugin, private_cache, set_cell, write_scenario  # noqa: F401  # autouse fixtures
from wmlm import registry
from wmlm.data.deepsense import load_scenario
from wmlm.data.table import DataError, ScenarioTable

from wmlm_lidar import NUM_POINTS, LidarReader


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "site"


def test_registered_as_field_lidar() -> None:
    reader = registry.get_reader("lidar")
    assert isinstance(reader, LidarReader) and reader.columns == ("unit1_lidar",)


def test_pads_small_scans_and_subsamples_large_ones(folder: Path) -> None:
    scans = write_scenario(folder, sequence_lengths=(6, 6))
    clouds = load_scenario(folder, ["lidar"]).fields["lidar"]
    assert clouds.shape == (12, NUM_POINTS, 3) and clouds.dtype == np.float32
    assert any(len(s) < NUM_POINTS for s in scans) and any(len(s) > NUM_POINTS for s in scans)
    for cloud, points in zip(clouds, scans):
        real = np.isfinite(cloud).all(axis=1)
        if len(points) <= NUM_POINTS:
            # the scan itself, then NaN rows
            np.testing.assert_array_equal(cloud[: len(points)], points)
            assert real[: len(points)].all() and np.isnan(cloud[len(points) :]).all()
        else:
            # a subset of distinct points of the scan, in scan order
            assert real.all()
            position = {tuple(p): i for i, p in enumerate(points)}
            order = [position[tuple(p)] for p in cloud]
            assert order == sorted(set(order))


def test_subsampling_is_deterministic_per_row_and_seed(folder: Path) -> None:
    scans = write_scenario(folder, sequence_lengths=(6,))
    big = next(k for k, points in enumerate(scans) if len(points) > NUM_POINTS)
    # the same large scan on two rows: each row draws its own subset
    for row in (0, 1):
        set_cell(folder, row, "unit1_lidar", f"./unit1/lidar_data/lidar_{big}.npy")
    table = ScenarioTable.from_folder(folder)
    first = LidarReader().read(table)
    np.testing.assert_array_equal(first, LidarReader().read(table))  # read again: same arrays
    assert np.isfinite(first[:2]).all() and not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], LidarReader(seed=1).read(table)[0])
    # the draw of a row is the generator of [seed, row], whatever the other rows hold
    expected = np.sort(np.random.default_rng([0, 1]).choice(len(scans[big]), NUM_POINTS, replace=False))
    np.testing.assert_array_equal(first[1], scans[big][expected])


def _points(rows: int = 300) -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.column_stack([rng.uniform(-30, 30, (rows, 3)), rng.uniform(0, 1, rows)])  # x, y, z, intensity


def _save_mat(path: Path, points: np.ndarray) -> None:
    scipy.io.savemat(path, {"points": points, "timestamp": np.array([[1.5]])})


def _save_csv(path: Path, points: np.ndarray) -> None:
    lines = ["x,y,z,intensity"] + [",".join(f"{v:.9g}" for v in p) for p in points]
    path.write_text("\n".join(lines) + "\n")


def _save_txt(path: Path, points: np.ndarray) -> None:
    path.write_text("\n".join(" ".join(f"{v:.9g}" for v in p) for p in points) + "\n")


@pytest.mark.parametrize(
    ("suffix", "save"),
    [(".mat", _save_mat), (".csv", _save_csv), (".txt", _save_txt)],
    ids=["mat", "csv", "txt"],
)
def test_deepsense_formats_read_like_npy(
    folder: Path, suffix: str, save: Callable[[Path, np.ndarray], None]
) -> None:
    write_scenario(folder, sequence_lengths=(3,))
    points = _points(300)  # [300, 4]: x, y, z, intensity
    np.save(folder / "unit1" / "lidar_data" / "ref.npy", points[:, :3])
    save(folder / "unit1" / "lidar_data" / f"scan{suffix}", points)
    set_cell(folder, 1, "unit1_lidar", "./unit1/lidar_data/ref.npy")
    set_cell(folder, 2, "unit1_lidar", f"./unit1/lidar_data/scan{suffix}")
    table = ScenarioTable.from_folder(folder)
    whole = LidarReader(num_points=320).read(table)  # more slots than points: every point, in file order
    np.testing.assert_allclose(whole[2, :300], points[:, :3].astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(whole[2], whole[1], rtol=1e-6)
    assert np.isnan(whole[2, 300:]).all()
    assert np.isfinite(LidarReader().read(table)[2]).all()  # 300 > 256 points: subsampled


def test_mat_variable_by_name_and_ambiguity(folder: Path) -> None:
    write_scenario(folder, sequence_lengths=(3,))
    path = folder / "unit1" / "lidar_data" / "two.mat"
    scipy.io.savemat(path, {"scan_a": _points(10), "scan_b": _points(20)})
    set_cell(folder, 0, "unit1_lidar", "./unit1/lidar_data/two.mat")
    table = ScenarioTable.from_folder(folder)
    with pytest.raises(DataError, match=r"row 1 .*'unit1_lidar'.*two\.mat.*scan_a.*mat_key"):
        LidarReader().read(table)
    clouds = LidarReader(mat_key="scan_b").read(table)
    assert np.isfinite(clouds[0]).all(axis=1).sum() == 20
    with pytest.raises(DataError, match=r"no variable 'nope'.*scan_a"):
        LidarReader(mat_key="nope").read(table)


def _bad_npy(path: Path) -> Path:
    path = path.with_suffix(".npy")
    path.write_bytes(b"this is not a numpy file")
    return path


def _two_columns(path: Path) -> Path:
    path = path.with_suffix(".npy")
    np.save(path, np.zeros((10, 2), np.float32))
    return path


def _with_nan(path: Path) -> Path:
    path = path.with_suffix(".npy")
    points = np.ones((10, 3), np.float32)
    points[7, 1] = np.nan
    np.save(path, points)
    return path


def _empty(path: Path) -> Path:
    path = path.with_suffix(".npy")
    np.save(path, np.zeros((0, 3), np.float32))
    return path


def _text_garbage(path: Path) -> Path:
    path = path.with_suffix(".csv")
    path.write_text("x,y,z\n1,2,3\n4,five,6\n")
    return path


def _ragged_text(path: Path) -> Path:
    path = path.with_suffix(".txt")
    path.write_text("1 2 3\n4 5\n")
    return path


def _bad_mat(path: Path) -> Path:
    path = path.with_suffix(".mat")
    path.write_bytes(b"MATLAB 5.0 MAT-file, but truncated")
    return path


def _mat_v73(path: Path) -> Path:
    """The 128-byte header of a MATLAB v7.3 (HDF5) file: version 0x0200, little-endian."""
    path = path.with_suffix(".mat")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    path.write_bytes(text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM" + b"\x00" * 512)
    return path


def _unsupported(path: Path) -> Path:
    path = path.with_suffix(".pcd")
    path.write_text("VERSION .7\n")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_bad_npy, "cannot read .*as a .npy array"),
        (_two_columns, r"shape \[10, 2\]; expected \[M, 3\]"),
        (_with_nan, "NaN or infinite coordinates in 1 of 10 points .first at point 7"),
        (_empty, "holds no points"),
        (_text_garbage, "cannot read .* as \\[M, 3\\+\\] numbers"),
        (_ragged_text, "cannot read .* as \\[M, 3\\+\\] numbers"),
        (_bad_mat, "cannot read .* as a .mat file"),
        (_mat_v73, r"MATLAB v7.3 \(HDF5\) file, which is not supported; re-save"),
        (_unsupported, "unsupported LiDAR file type '.pcd'"),
    ],
    ids=["unreadable", "wrong-shape", "nan", "empty", "text", "ragged", "mat", "mat-v7.3", "suffix"],
)
def test_bad_scan_names_file_and_row(folder: Path, make: Callable[[Path], Path], message: str) -> None:
    write_scenario(folder, sequence_lengths=(4,))
    path = make(folder / "unit1" / "lidar_data" / "broken")
    set_cell(folder, 2, "unit1_lidar", f"./unit1/lidar_data/{path.name}")
    with pytest.raises(DataError) as info:
        load_scenario(folder, ["lidar"])
    text = str(info.value)
    assert text.startswith(f"{folder / 'site.csv'}, row 3 (line 4), column 'unit1_lidar': "), text
    assert path.name in text
    assert re.search(message, text), text


def test_missing_column_and_missing_file(folder: Path) -> None:
    write_scenario(folder, sequence_lengths=(3,))
    set_cell(folder, 1, "unit1_lidar", "./unit1/lidar_data/nowhere.npy")
    with pytest.raises(DataError, match=r"row 2 .*'unit1_lidar'.*nowhere.npy is missing"):
        load_scenario(folder, ["lidar"])
    other = folder.parent / "nolidar"
    write_scenario(other, sequence_lengths=(3,))
    csv_path = other / "nolidar.csv"
    csv_path.write_text(csv_path.read_text().replace("unit1_lidar", "unit1_other"))
    with pytest.raises(DataError, match="unit1_lidar"):
        load_scenario(other, ["lidar"])
