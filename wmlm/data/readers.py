"""Field readers: how a sensor column of a scenario CSV becomes one array row per CSV row.

Built-in fields:
    ``beam_power``  ``[N, 64] float32``  linear received power; element ``i`` is beam ``i + 1``.
    ``beam_label``  ``[N] int64``        optimal beam, 0-based (the CSV's label minus one).
    ``position``    ``[N, 2] float32``   vehicle east/north of the base station, metres: calibrated GPS
                                         (``unit2_loc_cal``) where the scenario has it, else raw GPS.
    ``position_raw`` ``[N, 2] float32``  the same from raw GPS only (``unit2_loc``).
    ``position_cal`` ``[N, 2] float32``  the same from calibrated GPS only (``unit2_loc_cal``).
    ``blockage``    ``[N] int64``        1 if the line of sight is blocked (``unit1_blockage``, simulator).

A float row of NaN means "missing at this step": an all-zero power vector (no signal), a power peak more
than ``MAX_PEAK_RATIO`` off the scenario's median peak, GPS ``0 0`` (a receiver's no-fix placeholder).
Readers warn once per scenario with the count; windows mask such steps as inputs and never use them as
targets (``wmlm.data.windows``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from wmlm.beams import NUM_BEAMS
from wmlm.data.table import DataError, ScenarioTable, decode_text, excerpt, read_regular_file

log = logging.getLogger(__name__)
EARTH_RADIUS_M = 6_371_008.8
BYTES_PER_NUMBER = 64  # a text number file larger than this per expected number is refused unread
# A row's peak power this many times above or below the scenario's median peak is not a measurement
# (dB written into a linear file, another unit); the real rows' range: docs/results/constants.md.
MAX_PEAK_RATIO = 1000.0


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
    """Whitespace- or comma-separated numbers of a text file, exactly ``expected`` of them, all finite.

    The file must be a regular file of at most ``BYTES_PER_NUMBER * expected`` bytes (refused unread
    otherwise); messages quote at most a short excerpt of its content.
    """
    limit = max(4096, BYTES_PER_NUMBER * expected)
    data = read_regular_file(path, limit, f"text file of {expected} numbers", where)
    text = decode_text(data, path, where)
    tokens = text.replace(",", " ").split()
    try:
        values = np.array([float(token) for token in tokens], dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise DataError(f"{where}: {path} holds text that is not a number: {excerpt(bad)}") from None
    if values.size != expected:
        raise DataError(f"{where}: {path} holds {values.size} numbers, expected {expected}")
    if not np.isfinite(values).all():
        raise DataError(f"{where}: {path} holds NaN or infinite values")
    return values


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def warn_missing(table: ScenarioTable, column: str, missing: np.ndarray, what: str) -> None:
    """One warning per scenario and column: how many rows are treated as missing, and the first one."""
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        log.warning(
            "scenario %s: %d of %d rows of %r are %s; treated as missing (first: %s)",
            table.name,
            int(missing.sum()),
            len(missing),
            column,
            what,
            table.where(first, column),
        )


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
        peak = power.max(axis=1)
        silent = peak <= 0
        median = float(np.median(peak[~silent])) if (~silent).any() else 0.0
        off = ~silent & ((peak > MAX_PEAK_RATIO * median) | (peak < median / MAX_PEAK_RATIO))
        warn_missing(table, column, silent, "all zeros (no signal)")
        warn_missing(
            table,
            column,
            off,
            f"more than {MAX_PEAK_RATIO:g}x off the median peak {median:.3g} (another unit?)",
        )
        power[silent | off] = np.nan
        return power


class BeamLabelReader(FieldReader):
    """Optimal beam per row, 0-based, from ``unit1_beam_index`` (official scenario 9) or ``unit1_beam``."""

    name = "beam_label"
    columns = ("unit1_beam_index", "unit1_beam")
    dtype = np.int64

    def read(self, table: ScenarioTable) -> np.ndarray:
        labels = table.integers(*self.columns)
        present = [c for c in self.columns if c in table.header]
        if len(present) > 1:  # two label columns: they must say the same, or one of them is wrong
            other = table.integers(present[1])
            differ = np.flatnonzero(labels != other)
            if differ.size:
                row = int(differ[0])
                raise DataError(
                    f"{table.csv_path}, row {row + 1} (line {table.lines[row]}): label columns {present[0]!r} "
                    f"({labels[row]}) and {present[1]!r} ({other[row]}) disagree on {differ.size} of "
                    f"{len(labels)} rows; keep one label column"
                )
        bad = np.flatnonzero((labels < 1) | (labels > NUM_BEAMS))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{table.where(row, present[0] if present else '?')}: beam label {labels[row]} "
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


RAW_POSITION_COLUMN = "unit2_loc"
CALIBRATED_POSITION_COLUMN = "unit2_loc_cal"
# how a position source (``GpsModality(position_source=...)``, ``PositionKNN``) names its field
POSITION_FIELDS = {"auto": "position", "raw": "position_raw", "calibrated": "position_cal"}


class PositionReader(FieldReader):
    """Vehicle position ``[N, 2]`` east/north of the base station in metres, from raw lat/lon text files.

    The base class of the position readers: subclasses change only the vehicle column (``vehicle_column``).
    """

    name = "position_raw"
    columns = (RAW_POSITION_COLUMN,)
    base_station_columns: ClassVar[tuple[str, ...]] = ("unit1_loc",)

    def vehicle_column(self, table: ScenarioTable) -> str:
        """The CSV column of the vehicle's lat/lon files for this scenario."""
        column, _ = table.column(*self.columns)
        return column

    def read(self, table: ScenarioTable) -> np.ndarray:
        column = self.vehicle_column(table)
        bs_column, _ = table.column(*self.base_station_columns)
        vehicle = np.stack(
            [self._lat_lon(path, table, row, column) for row, path in enumerate(table.paths(column))]
        )
        # (0, 0) is where receivers write "no fix": a point in the Gulf of Guinea, not a position
        no_fix = (vehicle == 0).all(axis=1)
        warn_missing(table, column, no_fix, "GPS (0, 0), a no-fix placeholder")
        bs_cache: dict[Path, np.ndarray] = {}
        origin = np.empty_like(vehicle)
        for row, path in enumerate(table.paths(bs_column)):
            if path not in bs_cache:
                bs_cache[path] = self._lat_lon(path, table, row, bs_column)
            origin[row] = bs_cache[path]
        position = latlon_to_enu_m(vehicle, origin).astype(np.float32)
        position[no_fix] = np.nan
        return position

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
    """Like ``position_raw`` but from the calibrated vehicle GPS column ``unit2_loc_cal`` only.

    A scenario without that column is a ``DataError`` naming the scenario and the column.
    """

    name = "position_cal"
    columns = (CALIBRATED_POSITION_COLUMN,)

    def vehicle_column(self, table: ScenarioTable) -> str:
        if table.find_column(CALIBRATED_POSITION_COLUMN) is None:
            raise DataError(
                f"scenario {table.name} ({table.csv_path}) has no calibrated GPS column "
                f"{CALIBRATED_POSITION_COLUMN!r}; use position_source: auto (calibrated where a scenario has "
                f"it, else raw) or raw ({RAW_POSITION_COLUMN!r})"
            )
        return CALIBRATED_POSITION_COLUMN


class PreferCalibratedPositionReader(PositionReader):
    """The default ``position`` field: calibrated GPS (``unit2_loc_cal``) where the CSV has that column,
    else raw GPS (``unit2_loc``). Choosing the calibrated column is logged once per scenario parse (a
    cached parse is reused without a word; another source is another cache file, so it is parsed again).
    """

    name = "position"
    columns = (CALIBRATED_POSITION_COLUMN, RAW_POSITION_COLUMN)

    def vehicle_column(self, table: ScenarioTable) -> str:
        column = super().vehicle_column(table)
        if column == CALIBRATED_POSITION_COLUMN:
            log.warning(
                "scenario %s: vehicle positions from the calibrated GPS column %r (not the raw %r); "
                "position_source: raw selects the raw column",
                table.name,
                CALIBRATED_POSITION_COLUMN,
                RAW_POSITION_COLUMN,
            )
        return column


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
