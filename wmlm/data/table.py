"""``ScenarioTable``: one scenario CSV in the DeepSense layout, with safe path resolution."""

from __future__ import annotations

import csv
import io
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmlm.errors import DataError

__all__ = ["DataError", "ScenarioTable", "decode_text", "excerpt", "read_regular_file", "scenario_csv"]

log = logging.getLogger(__name__)
MAX_CSV_BYTES = 256 * 2**20  # the official scenario 9 CSV is ~3 MB; 256 MiB is no scenario CSV
EXCERPT_CHARS = 40  # messages quote at most this much of a file's content


def excerpt(content: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of at most ``limit`` characters of ``content``, with ``...`` when cut (for messages)."""
    cut = content[:limit]
    return repr(cut) + ("..." if len(content) > limit else "")


def read_regular_file(path: Path, max_bytes: int, kind: str = "file", where: str = "") -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes`` bytes.

    The one function that opens data files (CSV and per-sample files): a FIFO or device would block or
    never end, and a file far larger than its kind can be (``kind``, e.g. ``"power file"``) is refused
    before it is read, so a bad file costs neither memory nor a huge message. ``where`` (e.g. the CSV row
    that names the file) starts every message.
    """
    at = f"{where}: " if where else ""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what was opened
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DataError(f"{at}cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{at}{path} is not a regular file (a FIFO, device or folder); expected a {kind}")
        too_big = f"{at}{path} is larger than {max_bytes} bytes, more than a {kind} can hold; refused"
        if info.st_size > max_bytes:
            raise DataError(too_big.replace("larger than", f"{info.st_size} bytes, larger than"))
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise DataError(f"{at}cannot read {path}: {exc.strerror}") from None
    if len(data) > max_bytes:  # grew while being read, or a file system that reports no size
        raise DataError(too_big)
    return data


_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def decode_text(data: bytes, path: Path, where: str = "") -> str:
    """``data`` decoded as UTF-8 (a leading byte-order mark is dropped); names the file, line and problem."""
    at = f"{where}: " if where else ""
    for bom, encoding in _BOMS.items():
        if data.startswith(bom):
            raise DataError(f"{at}{path}: the file is {encoding} text (byte-order mark); expected UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{at}{path}, line {line}: NUL bytes, near {excerpt(data[max(nul - 8, 0) :])}; expected UTF-8 text "
            "(a UTF-16 file without byte-order mark, or a binary file?)"
        )
    try:
        # utf-8-sig: spreadsheet programs often start a saved CSV with a byte-order mark
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{at}{path}, line {line}: byte {data[exc.start]:#04x} near {excerpt(data[max(exc.start - 8, 0) :])} "
            "is not UTF-8; expected UTF-8 text (re-save the file as UTF-8, e.g. from Latin-1)"
        ) from None


def is_hidden(path: Path) -> bool:
    """Names starting with ``.`` (``.ipynb_checkpoints``, editor locks) are never data."""
    return path.name.startswith(".")


def scenario_csv(root: Path) -> Path:
    """The CSV of scenario folder ``root``: ``<name>.csv``, else its only visible ``*.csv``; else an error."""
    named = root / f"{root.name}.csv"
    if named.exists():
        return named
    candidates = sorted(c for c in root.glob("*.csv") if not is_hidden(c))
    if len(candidates) != 1:
        raise DataError(
            f"scenario folder {root}: expected {named.name} (or exactly one *.csv), "
            f"found {[c.name for c in candidates]}"
        )
    return candidates[0]


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
        """Read ``root/<folder name>.csv`` (or the only ``*.csv`` in ``root``, said in one info line)."""
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"scenario folder {root} does not exist or is not a folder")
        csv_path = scenario_csv(root)
        if csv_path.name != f"{root.name}.csv":
            log.info("scenario folder %s: reading %s (no %s.csv)", root, csv_path.name, root.name)
        text = decode_text(read_regular_file(csv_path, MAX_CSV_BYTES, "scenario CSV"), csv_path)
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
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
        except csv.Error as exc:  # e.g. a cell longer than csv.field_size_limit(), an unclosed quote
            raise DataError(f"{csv_path}, line {reader.line_num}: not a readable CSV row ({exc})") from None
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
        if not path.exists():
            raise DataError(f"{where}: file {path} is missing")
        if not path.is_file():  # a folder, FIFO or device: reading it would fail or block forever
            raise DataError(f"{where}: {path} is not a regular file")
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
