"""Load DeepSense-layout scenario folders into per-row arrays of the requested fields."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmlm.data.table import DataError, ScenarioTable, is_hidden
from wmlm.registry import get_reader

# Beam labels must equal the strongest beam of the power file on at least this share of the rows that
# have a power measurement (the real scenarios: docs/results/constants.md). Exact agreement, no +-1
# tolerance: a tolerance would hide exactly the off-by-one export this check exists for.
MIN_LABEL_AGREEMENT = 0.5
LABEL_FIELD, POWER_FIELD = "beam_label", "beam_power"
STORE_FILE = "store.json"  # the index of an array store site (``wmlm.data.store``)


@dataclass(frozen=True)
class ScenarioData:
    """One scenario as arrays.

    Attributes:
        name: scenario (folder) name.
        index: ``[N] int64`` the CSV's ``index`` column (row number from 1 if the column is absent). A step
            of more than 1 inside a vehicle pass is a gap (rows missing): windows never span it.
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
    """A visible folder holding ``<name>.csv`` (DeepSense layout) or at least one visible CSV.

    A folder with CSVs but none named after it and more than one is still a scenario folder: reading it
    fails naming the folder (``scenario_csv``) rather than skipping it without a word.
    """
    if is_hidden(path) or not path.is_dir():
        return False
    return (path / f"{path.name}.csv").exists() or any(not is_hidden(c) for c in path.glob("*.csv"))


def is_store_folder(path: Path) -> bool:
    """A visible folder holding ``store.json``: a complete site of the array store (``wmlm.data.store``).

    A store site being written has no ``store.json`` yet (it is written last), so it is not data.
    """
    return not is_hidden(path) and path.is_dir() and (path / STORE_FILE).is_file()


def find_scenarios(root: Path | str, names: Sequence[str] | None = None) -> list[Path]:
    """Scenario folders under ``root``: ``root`` itself if it is one, else its scenario sub-folders.

    A scenario folder is a DeepSense-layout folder (``is_scenario_folder``) or an array store site
    (``is_store_folder``); both kinds may sit side by side under one root. Hidden folders (``.ipynb_checkpoints``, any name starting with ``.``) are never scenarios. ``names``
    selects among them (in the given order); an unknown name fails listing what exists.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data root {root} does not exist")
    if not root.is_dir():
        raise DataError(f"data root {root} is not a folder; expected a scenario folder or a folder of them")
    subfolders = [p for p in sorted(root.iterdir()) if is_scenario_folder(p) or is_store_folder(p)]
    if (is_scenario_folder(root) or is_store_folder(root)) and not subfolders:
        available = {root.name: root}
    else:
        available = {p.name: p for p in subfolders}
    if not available:
        raise DataError(
            f"data root {root}: no scenario folder (a folder with <name>/<name>.csv, or an array store site with "
            f"<name>/{STORE_FILE}) found"
        )
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


def check_labels_agree_with_power(table: ScenarioTable, labels: np.ndarray, power: np.ndarray) -> None:
    """``labels [N]`` (0-based) must be the strongest beam of ``power [N, 64]`` on enough rows.

    Rows without a power measurement (NaN, see ``wmlm.data.readers``) are left out. Fails below
    ``MIN_LABEL_AGREEMENT``, naming the scenario and the share measured.
    """
    measured = np.isfinite(power).all(axis=1)
    if not measured.any():
        return
    agree = float((np.argmax(power[measured], axis=1) == labels[measured]).mean())
    if agree < MIN_LABEL_AGREEMENT:
        column = table.find_column(*get_reader(LABEL_FIELD).columns)
        raise DataError(
            f"scenario {table.name} ({table.csv_path}): beam labels ({column!r}) equal the strongest beam of "
            f"the power files on {agree:.1%} of {int(measured.sum())} rows, expected at least "
            f"{MIN_LABEL_AGREEMENT:.0%} (a 0-based or shifted label export?)"
        )


def load_scenario(folder: Path | str, fields: Iterable[str]) -> ScenarioData:
    """Read the CSV of one scenario folder and the requested fields (registered ``FieldReader``s).

    Beam labels are checked against the power files (``check_labels_agree_with_power``) whenever the
    scenario has both, even if only the labels are requested.
    """
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
    if LABEL_FIELD in arrays:
        power = arrays.get(POWER_FIELD)
        if power is None and table.find_column(*get_reader(POWER_FIELD).columns):
            power = get_reader(POWER_FIELD).read(table)
        if power is not None:
            check_labels_agree_with_power(table, arrays[LABEL_FIELD], power)
    return ScenarioData(table.name, index, sequence, arrays)
