"""Field readers: how a sensor column of a scenario CSV becomes one array row per CSV row.

Built-in fields:
    ``beam_power``  ``[N, 64] float32``  linear received power; element ``i`` is beam ``i + 1``.
    ``beam_label``  ``[N] int64``        optimal beam, 0-based (the CSV's label minus one).
    ``position``    ``[N, 2] float32``   vehicle east/north of the base station, metres (raw GPS).
    ``position_cal`` ``[N, 2] float32``  the same from calibrated GPS (``unit2_loc_cal``).
    ``blockage``    ``[N] int64``        1 if the line of sight is blocked (``unit1_blockage``, simulator).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from wmlm.data.table import DataError, ScenarioTable
from wmlm.hookspecs import hookimpl

EARTH_RADIUS_M = 6_371_008.8
NUM_BEAMS = 64


class FieldReader(ABC):
    """Reads one named data field for every row of a scenario.

    Attributes:
        name: the field name modalities and heads refer to.
        columns: CSV columns the field can come from, in order of preference.
        dtype: numpy dtype of the returned array.
    """

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    dtype: ClassVar[type] = np.float32

    @abstractmethod
    def read(self, table: ScenarioTable) -> np.ndarray:
        """The field for every row: ``[len(table), ...]`` of ``dtype``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def read_numbers(path: Path, expected: int, where: str) -> np.ndarray:
    """Whitespace- or comma-separated numbers of a text file, exactly ``expected`` of them, all finite."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: cannot read {path}: {exc}") from None
    try:
        values = np.array([float(token) for token in text.replace(",", " ").split()], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{where}: {path} holds text that is not a number ({exc})") from None
    if values.size != expected:
        raise DataError(f"{where}: {path} holds {values.size} numbers, expected {expected}")
    if not np.isfinite(values).all():
        raise DataError(f"{where}: {path} holds NaN or infinite values")
    return values


class BeamPowerReader(FieldReader):
    """64 linear beam powers per row from ``unit1_pwr_60ghz`` text files.

    The files list beams in the reverse of the official label order (label ``b`` is file element
    ``64 - b``, measured on every row of the DeepSense data), so the vector is reversed here: element
    ``i`` of the field is the power of beam ``i + 1``.
    """

    name = "beam_power"
    columns = ("unit1_pwr_60ghz",)

    def read(self, table: ScenarioTable) -> np.ndarray:
        column, _ = table.column(*self.columns)
        power = np.empty((len(table), NUM_BEAMS), dtype=np.float32)
        for row, path in enumerate(table.paths(column)):
            values = read_numbers(path, NUM_BEAMS, table.where(row, column))
            if (values < 0).any():
                raise DataError(f"{table.where(row, column)}: {path} holds negative linear power")
            power[row] = values[::-1]
        return power


class BeamLabelReader(FieldReader):
    """Optimal beam per row, 0-based, from ``unit1_beam_index`` (official scenario 9) or ``unit1_beam``."""

    name = "beam_label"
    columns = ("unit1_beam_index", "unit1_beam")
    dtype = np.int64

    def read(self, table: ScenarioTable) -> np.ndarray:
        labels = table.integers(*self.columns)
        bad = np.flatnonzero((labels < 1) | (labels > NUM_BEAMS))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{table.where(row, table.find_column(*self.columns) or '?')}: beam label {labels[row]} "
                f"is outside 1..{NUM_BEAMS}"
            )
        return labels - 1


def latlon_to_enu_m(lat_lon_deg: np.ndarray, origin_lat_lon_deg: np.ndarray) -> np.ndarray:
    """East/north metres ``[N, 2]`` of ``[N, 2]`` (lat, lon) points from origins ``[2]`` or ``[N, 2]``.

    Local tangent plane (equirectangular); over a cell's few hundred metres it errs by under a centimetre.
    """
    lat0 = np.radians(origin_lat_lon_deg[..., 0])
    d_lat = np.radians(lat_lon_deg[:, 0] - origin_lat_lon_deg[..., 0])
    d_lon = np.radians(lat_lon_deg[:, 1] - origin_lat_lon_deg[..., 1])
    return np.stack([d_lon * np.cos(lat0) * EARTH_RADIUS_M, d_lat * EARTH_RADIUS_M], axis=-1)


class PositionReader(FieldReader):
    """Vehicle position east/north of the base station in metres, from lat/lon text files."""

    name = "position"
    columns = ("unit2_loc",)
    base_station_columns: ClassVar[tuple[str, ...]] = ("unit1_loc",)

    def read(self, table: ScenarioTable) -> np.ndarray:
        column, _ = table.column(*self.columns)
        bs_column, _ = table.column(*self.base_station_columns)
        vehicle = np.stack(
            [self._lat_lon(path, table, row, column) for row, path in enumerate(table.paths(column))]
        )
        bs_cache: dict[Path, np.ndarray] = {}
        origin = np.empty_like(vehicle)
        for row, path in enumerate(table.paths(bs_column)):
            if path not in bs_cache:
                bs_cache[path] = self._lat_lon(path, table, row, bs_column)
            origin[row] = bs_cache[path]
        return latlon_to_enu_m(vehicle, origin).astype(np.float32)

    @staticmethod
    def _lat_lon(path: Path, table: ScenarioTable, row: int, column: str) -> np.ndarray:
        where = table.where(row, column)
        lat, lon = read_numbers(path, 2, where)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise DataError(
                f"{where}: {path} holds ({lat}, {lon}), not a latitude in [-90, 90] and longitude in [-180, 180]"
            )
        return np.array([lat, lon])


class CalibratedPositionReader(PositionReader):
    """Like ``position`` but from the calibrated vehicle GPS column ``unit2_loc_cal``."""

    name = "position_cal"
    columns = ("unit2_loc_cal",)


class BlockageReader(FieldReader):
    """Line-of-sight blockage label per row (0 or 1) from ``unit1_blockage``."""

    name = "blockage"
    columns = ("unit1_blockage",)
    dtype = np.int64

    def read(self, table: ScenarioTable) -> np.ndarray:
        labels = table.integers(*self.columns)
        bad = np.flatnonzero((labels != 0) & (labels != 1))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{table.where(row, self.columns[0])}: blockage label {labels[row]} is not 0 or 1"
            )
        return labels


@hookimpl
def wmlm_register_readers(register) -> None:  # noqa: ANN001
    readers = (
        BeamPowerReader(),
        BeamLabelReader(),
        PositionReader(),
        CalibratedPositionReader(),
        BlockageReader(),
    )
    for reader in readers:
        register(reader)
