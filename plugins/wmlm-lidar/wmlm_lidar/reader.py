"""The ``lidar`` field: one point cloud per CSV row, padded or subsampled to a fixed point count.

Field ``lidar``: ``float32 [N, num_points, 3]``, the x, y, z metres of each row's returns in the base
station's local frame. A scan with ``M < num_points`` returns fills the first ``M`` slots and leaves the
rest NaN (NaN marks padding; the encoder masks it). A scan with ``M > num_points`` returns keeps a random
subset of ``num_points`` of them, in their original (scan) order; the subset depends only on the reader's
``seed`` and the row, so re-reading a scenario gives the same arrays (and the parsed-array cache stays
valid).

Files (CSV column ``unit1_lidar``, paths relative to the scenario folder):
    ``.npy``          ``[M, 3]`` (or ``[M, 3+]``) numbers, e.g. the wmlm simulator's scans.
    ``.mat``          MATLAB v4-v7.2 file holding an ``[M, 3+]`` numeric variable (DeepSense), found by
                      ``mat_key`` or, by default, as the only such variable (or one of ``MAT_KEYS``).
    ``.csv``/``.txt`` ``[M, 3+]`` numbers, comma or whitespace separated; one header line is skipped.
Columns past the third (intensity, ring, time) are dropped.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from wmlm import FieldReader
from wmlm.data.table import DataError

if TYPE_CHECKING:
    from wmlm.data.table import ScenarioTable

NUM_POINTS = 256
# variable names tried, in order, when a .mat file holds several [M, 3+] arrays and no mat_key is given
MAT_KEYS = ("points", "point_cloud", "pointcloud", "pc", "xyz", "lidar", "data")
SUFFIXES = (".npy", ".mat", ".csv", ".txt")


def load_points(path: Path, where: str, mat_key: str | None = None) -> np.ndarray:
    """The ``float64 [M, 3]`` x, y, z of one scan file; ``DataError`` naming ``where`` if it is unusable.

    ``where`` locates the CSV cell (file, row, column) for the error messages.
    """
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _load_npy(path, where)
    elif suffix == ".mat":
        array = _load_mat(path, where, mat_key)
    elif suffix in (".csv", ".txt"):
        array = _load_text(path, where)
    else:
        raise DataError(
            f"{where}: {path} has an unsupported LiDAR file type {suffix!r}; expected one of {', '.join(SUFFIXES)}"
        )
    if array.size == 0:
        raise DataError(f"{where}: {path} holds no points (an empty scan)")
    if array.ndim != 2 or array.shape[1] < 3:
        raise DataError(
            f"{where}: {path} holds an array of shape {list(array.shape)}; expected [M, 3] "
            "(or [M, 3+]) x, y, z metres, one point per row"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataError(f"{where}: {path} holds {array.dtype} values; expected real numbers")
    xyz = array[:, :3].astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(xyz).all(axis=1))
    if bad.size:
        raise DataError(
            f"{where}: {path} holds NaN or infinite coordinates in {bad.size} of {len(xyz)} points "
            f"(first at point {int(bad[0])})"
        )
    return xyz


def _load_npy(path: Path, where: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{where}: cannot read {path} as a .npy array: {exc}") from None


def _load_mat(path: Path, where: str, mat_key: str | None) -> np.ndarray:
    import scipy.io  # imported here: listing plugins should not pay for scipy

    try:
        variables = scipy.io.loadmat(path)
    except NotImplementedError:  # scipy's way of saying "MATLAB v7.3 (HDF5)"
        raise DataError(
            f"{where}: {path} is a MATLAB v7.3 (HDF5) file, which is not supported; re-save it in MATLAB "
            "with save(..., '-v7')"
        ) from None
    except Exception as exc:  # scipy raises many types on corrupt files (MatReadError, IndexError, ...)
        raise DataError(f"{where}: cannot read {path} as a .mat file: {type(exc).__name__}: {exc}") from None
    names = [k for k in variables if not k.startswith("__")]
    if mat_key is not None:
        if mat_key not in variables:
            raise DataError(f"{where}: {path} has no variable {mat_key!r}; it holds {names}")
        return np.asarray(variables[mat_key])
    candidates = [
        k
        for k in names
        if isinstance(variables[k], np.ndarray)
        and variables[k].ndim == 2
        and variables[k].shape[1] >= 3
        and np.issubdtype(variables[k].dtype, np.number)
    ]
    if len(candidates) == 1:
        return variables[candidates[0]]
    preferred = [k for k in MAT_KEYS if k in candidates]
    if preferred:
        return variables[preferred[0]]
    shapes = {k: list(np.shape(variables[k])) for k in names}
    raise DataError(
        f"{where}: {path} should hold one [M, 3+] numeric variable (or one named {list(MAT_KEYS)}); "
        f"it holds {shapes}; pass mat_key= to the reader to choose"
    )


def _numbers(line: str) -> list[float] | None:
    """The comma- or whitespace-separated numbers of ``line``, or None if any token is not a number."""
    try:
        return [float(token) for token in line.replace(",", " ").split()]
    except ValueError:
        return None


def _load_text(path: Path, where: str) -> np.ndarray:
    try:
        with path.open() as handle:
            first, second = handle.readline(), handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: cannot read {path}: {exc}") from None
    # exported scans often start with a header such as "x,y,z,intensity": a first line that is not numbers
    header = _numbers(first) is None
    delimiter = "," if "," in (second if header else first) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            # numpy's C parser: real scans have tens of thousands of points per file
            return np.loadtxt(path, delimiter=delimiter, skiprows=int(header), ndmin=2, dtype=np.float64)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: cannot read {path} as [M, 3+] numbers: {exc}") from None


def fit_points(xyz: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """``float32 [num_points, 3]``: ``xyz [M, 3]`` subsampled (``M > num_points``) or NaN-padded.

    Subsampling draws without replacement and keeps the scan order, so neighbouring returns stay
    neighbours in the array.
    """
    out = np.full((num_points, 3), np.nan, dtype=np.float32)
    if len(xyz) > num_points:
        xyz = xyz[np.sort(rng.choice(len(xyz), size=num_points, replace=False))]
    out[: len(xyz)] = xyz
    return out


class LidarReader(FieldReader):
    """LiDAR scans from the ``unit1_lidar`` column: ``float32 [N, num_points, 3]``, NaN-padded.

    Args:
        num_points: points kept per scan; must equal the ``lidar`` modality's ``num_points``.
        seed: base seed of the per-row subsampling (row ``r`` uses the generator of ``[seed, r]``).
        mat_key: variable of ``.mat`` files that holds the points (default: found automatically).
    """

    name = "lidar"
    columns = ("unit1_lidar",)
    dtype = np.float32

    def __init__(self, num_points: int = NUM_POINTS, seed: int = 0, mat_key: str | None = None) -> None:
        if num_points < 1:
            raise ValueError(f"lidar reader: num_points must be positive, got {num_points}")
        self.num_points, self.seed, self.mat_key = num_points, seed, mat_key

    def read(self, table: ScenarioTable) -> np.ndarray:
        column, _ = table.column(*self.columns)
        clouds = np.empty((len(table), self.num_points, 3), dtype=np.float32)
        for row, path in enumerate(table.paths(column)):
            xyz = load_points(path, table.where(row, column), self.mat_key)
            clouds[row] = fit_points(xyz, self.num_points, np.random.default_rng([self.seed, row]))
        return clouds
