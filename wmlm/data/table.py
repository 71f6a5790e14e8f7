"""``ScenarioTable``: one scenario CSV in the DeepSense layout, with safe path resolution."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmlm.errors import DataError

__all__ = ["DataError", "ScenarioTable"]


@dataclass(frozen=True)
class ScenarioTable:
    """The rows of ``<root>/<name>.csv``; cells stay strings until a reader parses them.

    Attributes:
        name: scenario name (folder name), e.g. ``scenario9``.
        root: the scenario folder; relative paths in cells are resolved against it.
        csv_path: the CSV file.
        header: column names in file order (may contain an empty name, as the official files do).
        rows: cell strings, one tuple per data row, in file order.
        lines: file line number of each row (blank lines and multi-line cells make it differ from row + 1).
    """

    name: str
    root: Path
    csv_path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    @classmethod
    def from_folder(cls, root: Path | str) -> ScenarioTable:
        """Read ``root/<folder name>.csv`` (or the only ``*.csv`` in ``root``)."""
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"scenario folder {root} does not exist or is not a folder")
        csv_path = root / f"{root.name}.csv"
        if not csv_path.is_file():
            candidates = sorted(root.glob("*.csv"))
            if len(candidates) != 1:
                raise DataError(
                    f"scenario folder {root}: expected {csv_path.name} (or exactly one *.csv), "
                    f"found {[c.name for c in candidates]}"
                )
            csv_path = candidates[0]
        # utf-8-sig: spreadsheet programs often start a saved CSV with a byte-order mark
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                header = tuple(name.strip() for name in next(reader))
            except StopIteration:
                raise DataError(f"{csv_path}: the file is empty (no header row)") from None
            rows, lines = [], []
            line_number = reader.line_num
            for row in reader:
                first_line, line_number = line_number + 1, reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{csv_path}, line {first_line}: {len(row)} cells, expected {len(header)} (one per column)"
                    )
                rows.append(tuple(cell.strip() for cell in row))
                lines.append(first_line)
        if not rows:
            raise DataError(f"{csv_path}: no data rows")
        return cls(root.name, root, csv_path, header, tuple(rows), tuple(lines))

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, row: int, column: str) -> str:
        """Human location of a cell for error messages: file, row (from 1), file line and column."""
        return f"{self.csv_path}, row {row + 1} (line {self.lines[row]}), column {column!r}"

    def find_column(self, *candidates: str) -> str | None:
        """The first of ``candidates`` present in the header, or None."""
        for name in candidates:
            if name in self.header:
                return name
        return None

    def column(self, *candidates: str) -> tuple[str, list[str]]:
        """``(name, cells)`` of the first present candidate column; a clear error if none is present."""
        name = self.find_column(*candidates)
        if name is None:
            raise DataError(
                f"{self.csv_path}: none of the columns {list(candidates)} is present; "
                f"columns are {[h for h in self.header if h]}"
            )
        position = self.header.index(name)
        return name, [row[position] for row in self.rows]

    def integers(self, *candidates: str) -> np.ndarray:
        """An integer column as ``[N] int64``; names the row of a cell that is not an integer."""
        name, cells = self.column(*candidates)
        values = np.empty(len(cells), dtype=np.int64)
        for i, cell in enumerate(cells):
            try:
                values[i] = _parse_int(cell)
            except ValueError:
                raise DataError(f"{self.where(i, name)}: expected an integer, got {cell!r}") from None
            except OverflowError:  # e.g. "1e100": an integer, but not one a 64-bit column can hold
                raise DataError(
                    f"{self.where(i, name)}: expected an integer, got {cell!r} (out of range)"
                ) from None
        return values

    def resolve(self, column: str, row: int, cell: str) -> Path:
        """The file a path cell points to, which must exist and stay inside the scenario folder."""
        where = self.where(row, column)
        if not cell:
            raise DataError(f"{where}: the path cell is empty")
        path = (self.root / cell).resolve()
        root = self.root.resolve()
        if root not in path.parents:
            raise DataError(f"{where}: path {cell!r} points outside the scenario folder {self.root}; refused")
        if not path.is_file():
            raise DataError(f"{where}: file {path} is missing")
        return path

    def paths(self, *candidates: str) -> list[Path]:
        """Resolved file paths of the first present candidate column, one per row."""
        name, cells = self.column(*candidates)
        return [self.resolve(name, i, cell) for i, cell in enumerate(cells)]


def _parse_int(cell: str) -> int:
    """``"3"`` or ``"3.0"`` -> 3; anything else raises ``ValueError``."""
    try:
        return int(cell)
    except ValueError:
        value = float(cell)
        if not value.is_integer():
            raise
        return int(value)
