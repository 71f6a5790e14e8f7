"""Load DeepSense-layout scenario folders into per-row arrays of the requested fields."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmlm.data.table import DataError, ScenarioTable
from wmlm.registry import get_reader


@dataclass(frozen=True)
class ScenarioData:
    """One scenario as arrays.

    Attributes:
        name: scenario (folder) name.
        index: ``[N] int64`` the CSV's ``index`` column (row number from 1 if the column is absent).
        sequence: ``[N] int64`` the ``seq_index`` column: one value per vehicle pass.
        fields: ``{field name: [N, ...] array}`` for the requested fields.
    """

    name: str
    index: np.ndarray
    sequence: np.ndarray
    fields: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.index)


def is_scenario_folder(path: Path) -> bool:
    """A folder holding ``<name>.csv`` (DeepSense layout) or exactly one CSV."""
    return path.is_dir() and ((path / f"{path.name}.csv").is_file() or len(list(path.glob("*.csv"))) == 1)


def find_scenarios(root: Path | str, names: Sequence[str] | None = None) -> list[Path]:
    """Scenario folders under ``root``: ``root`` itself if it is one, else its scenario sub-folders.

    ``names`` selects among them (in the given order); an unknown name fails listing what exists.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data root {root} does not exist")
    if is_scenario_folder(root) and not any(is_scenario_folder(p) for p in root.iterdir() if p.is_dir()):
        available = {root.name: root}
    else:
        available = {p.name: p for p in sorted(root.iterdir()) if is_scenario_folder(p)}
    if not available:
        raise DataError(f"data root {root}: no scenario folder (a folder with <name>/<name>.csv) found")
    if names is None:
        return list(available.values())
    missing = [n for n in names if n not in available]
    if missing:
        raise DataError(f"data root {root}: unknown scenario(s) {missing}; available: {sorted(available)}")
    return [available[n] for n in names]


def check_row_order(table: ScenarioTable, index: np.ndarray, sequence: np.ndarray) -> None:
    """Rows must be samples in time order: unique increasing ``index``, non-decreasing ``seq_index``.

    Windows are cut along the rows, so shuffled or repeated rows would silently make wrong windows.
    """
    seen: dict[int, int] = {}
    for row, value in enumerate(index.tolist()):
        if value in seen:
            raise DataError(
                f"{table.where(row, 'index')}: index {value} repeats row {seen[value] + 1}; "
                "every sample needs its own index"
            )
        seen[value] = row
    for name, values, rule in (("index", index, "increase"), ("seq_index", sequence, "never decrease")):
        step = np.diff(values)
        bad = np.flatnonzero(step <= 0 if name == "index" else step < 0)
        if bad.size:
            row = int(bad[0]) + 1
            raise DataError(
                f"{table.where(row, name)}: {name} {values[row]} follows {values[row - 1]} of the previous "
                f"row; rows must be in time order ({name} must {rule} from row to row)"
            )


def load_scenario(folder: Path | str, fields: Iterable[str]) -> ScenarioData:
    """Read the CSV of one scenario folder and the requested fields (registered ``FieldReader``s)."""
    table = ScenarioTable.from_folder(folder)
    index = table.integers("index") if table.find_column("index") else np.arange(1, len(table) + 1)
    sequence = table.integers("seq_index")
    check_row_order(table, index, sequence)
    arrays: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(fields):
        array = get_reader(name).read(table)
        if len(array) != len(table):
            raise DataError(
                f"reader {name!r} returned {len(array)} rows for {table.csv_path}, expected {len(table)}"
            )
        arrays[name] = array
    return ScenarioData(table.name, index, sequence, arrays)


def load_scenarios(
    root: Path | str,
    fields: Iterable[str],
    names: Sequence[str] | None = None,
    cache_dir: Path | str | None = None,
) -> list[ScenarioData]:
    """``load_scenario`` for every selected scenario folder under ``root``.

    With ``cache_dir``, parsed fields are kept there as memory-mapped arrays (``wmlm.data.cache``).
    """
    fields = list(fields)
    folders = find_scenarios(root, names)
    if cache_dir is None:
        return [load_scenario(folder, fields) for folder in folders]
    from wmlm.data.cache import load_scenario_cached

    return [load_scenario_cached(folder, fields, cache_dir) for folder in folders]
