"""Windows of ``past`` input steps and ``future`` target steps that never cross a sequence."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from wmlm.data.deepsense import ScenarioData
from wmlm.errors import ConfigError

# fields of memory-mapped scenarios above this size stay on disk (``WindowDataset(resident_bytes=...)``)
RESIDENT_FIELD_BYTES = 64 * 2**20


def run_ids(sequence: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """``[N]`` id of each maximal run of consecutive rows sharing one ``seq_index``.

    With ``index`` (the CSV's sample index), a run also ends where ``index`` steps by more than 1: rows
    are missing there (e.g. 58 then 99 inside one vehicle pass), and a window across the hole would
    pretend 41 samples are one step.
    """
    change = np.ones(len(sequence), dtype=bool)
    change[1:] = sequence[1:] != sequence[:-1]
    if index is not None and len(index) > 1:
        change[1:] |= np.diff(np.asarray(index)) != 1
    return np.cumsum(change) - 1


def window_starts(
    sequence: np.ndarray, past: int, future: int, stride: int = 1, index: np.ndarray | None = None
) -> np.ndarray:
    """``[W]`` first rows of the windows of ``past + future`` rows, ``stride`` apart, inside one run.

    Runs are those of ``run_ids(sequence, index)``: a window never crosses a sequence, nor a gap in
    ``index`` when it is given.
    """
    if past < 1 or future < 0 or stride < 1:
        raise ConfigError(
            f"windows need past >= 1, future >= 0, stride >= 1; got past={past}, future={future}, stride={stride}"
        )
    span = (past + future - 1) * stride + 1
    if len(sequence) < span:
        return np.zeros(0, dtype=np.int64)
    runs = run_ids(sequence, index)
    starts = np.arange(len(sequence) - span + 1)
    return starts[runs[starts] == runs[starts + span - 1]].astype(np.int64)


def present_rows(values: np.ndarray) -> np.ndarray:
    """``[N] bool``: rows of a field ``[N, ...]`` that hold a value (NaN marks a missing step)."""
    if not np.issubdtype(values.dtype, np.floating):
        return np.ones(len(values), dtype=bool)
    return np.isfinite(np.asarray(values).reshape(len(values), -1)).all(axis=1)


def with_present_targets(
    starts: np.ndarray, present: np.ndarray, past: int, future: int, stride: int
) -> np.ndarray:
    """The ``starts [W]`` whose ``future`` target rows are all ``present [N] bool``."""
    if not len(starts) or future == 0:
        return starts
    rows = starts[:, None] + (past + np.arange(future))[None, :] * stride
    return starts[present[rows].all(axis=1)]


def split_sequences(
    scenario: ScenarioData, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Assign whole sequence runs of one scenario to splits at random (seeded per scenario name).

    ``fractions`` maps split names to shares of the runs (e.g. ``{"test": 0.2, "val": 0.1}``); the
    remaining runs go to ``"train"``, which keeps at least one run. Returns ``{split: [N] bool row mask}``.
    """
    runs = run_ids(scenario.sequence)
    num_runs = int(runs[-1]) + 1 if len(runs) else 0
    order = np.random.default_rng([seed, zlib.crc32(scenario.name.encode())]).permutation(num_runs)
    masks: dict[str, np.ndarray] = {}
    taken = 0
    for split, fraction in fractions.items():
        count = min(int(round(fraction * num_runs)), max(num_runs - 1 - taken, 0))
        masks[split] = np.isin(runs, order[taken : taken + count])
        taken += count
    masks["train"] = np.isin(runs, order[taken:])
    return masks


class WindowDataset(Dataset):
    """Windows over one or more scenarios, served as ready batches through ``__getitems__``.

    A sample (``dataset[i]``) and a batch share one layout; batches add a leading ``B``:
    ``{key: [P, ...] inputs per batch key, "mask": {key: [P] bool}, "target": {key: [F, ...]},
    "index": CSV index of the last past row, "scenario_id": position in ``scenario_names``}``.
    A missing step (a NaN row of a float field, see ``wmlm.data.readers``) is served as zeros with mask
    False; ``starts`` should hold only windows whose targets are present (``with_present_targets``).

    Args:
        scenarios: the loaded scenarios (fields must include every input and target field).
        starts: ``[W, 2]`` or ``[W, 3] int64`` rows of (scenario position, first row of the window, stride
            in rows between the window's samples; 1 if the column is absent).
        inputs: ``{batch key: field}`` for past steps, e.g. ``{"beam": "beam_power"}``.
        targets: ``{target key: field}`` for future steps, e.g. ``{"beam": "beam_label"}``.
        past, future: window lengths in samples.
        resident_bytes: a field whose arrays are memory-mapped (array store, parse cache) and larger than
            this in all (bytes) is not copied into RAM: each batch reads its rows from the per-scenario
            maps (index arithmetic, one fancy-indexing call per scenario in the batch). Smaller fields, and
            fields already in RAM, are concatenated into one table as before.
    """

    def __init__(
        self,
        scenarios: Sequence[ScenarioData],
        starts: np.ndarray,
        inputs: Mapping[str, str],
        targets: Mapping[str, str],
        past: int,
        future: int,
        resident_bytes: int | None = None,
    ) -> None:
        limit = RESIDENT_FIELD_BYTES if resident_bytes is None else resident_bytes
        self.scenario_names = [s.name for s in scenarios]
        self.inputs = dict(inputs)
        self.targets = dict(targets)
        self.past, self.future = past, future
        # one flat table over all scenarios, so a batch is a handful of fancy-indexing calls
        offsets = np.cumsum([0] + [len(s) for s in scenarios])
        self.starts = (
            (offsets[starts[:, 0]] + starts[:, 1]).astype(np.int64) if len(starts) else np.zeros(0, np.int64)
        )
        self.scenario_of_window = starts[:, 0].astype(np.int64) if len(starts) else np.zeros(0, np.int64)
        self.local_starts = starts[:, 1].astype(np.int64) if len(starts) else np.zeros(0, np.int64)
        self.strides = (
            starts[:, 2].astype(np.int64) if starts.shape[1] > 2 else np.ones(len(starts), np.int64)
        )
        needed = set(self.inputs.values()) | set(self.targets.values())
        self.fields, self.present = {}, {}
        self.mapped: dict[str, list[np.ndarray]] = {}  # fields left on disk: one array per scenario
        for field in sorted(needed):
            parts = [s.fields[field] for s in scenarios]
            if any(isinstance(p, np.memmap) for p in parts) and sum(p.nbytes for p in parts) > limit:
                self.mapped[field] = [np.asarray(p) for p in parts]  # plain views: faster indexing
                continue
            values = np.concatenate(parts)
            present = present_rows(values)
            if not present.all():  # missing steps are served as zeros with a False mask, never as NaN
                values = values.copy()
                values[~present] = 0
            self.fields[field] = torch.from_numpy(values)
            self.present[field] = torch.from_numpy(present)
        self.index = torch.from_numpy(np.concatenate([s.index for s in scenarios]))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitems__(self, indices: Sequence[int]) -> dict:
        chosen = np.asarray(indices, dtype=np.int64)
        first = torch.from_numpy(self.starts[chosen])[:, None]
        stride = torch.from_numpy(self.strides[chosen])[:, None]
        past_rows = first + torch.arange(self.past) * stride
        future_rows = first + (self.past + torch.arange(self.future)) * stride
        scenario = self.scenario_of_window[chosen]
        local = self.local_starts[chosen][:, None]
        steps = self.strides[chosen][:, None]
        local_past = local + np.arange(self.past) * steps
        local_future = local + (self.past + np.arange(self.future)) * steps
        batch: dict = {}
        mask: dict = {}
        for key, field in self.inputs.items():
            if field in self.mapped:
                batch[key], mask[key] = self._read_mapped(field, scenario, local_past)
            else:
                batch[key], mask[key] = self.fields[field][past_rows], self.present[field][past_rows]
        batch["mask"] = mask
        batch["target"] = {
            key: self._read_mapped(field, scenario, local_future)[0]
            if field in self.mapped
            else self.fields[field][future_rows]
            for key, field in self.targets.items()
        }
        batch["index"] = self.index[past_rows[:, -1]]
        batch["scenario_id"] = torch.from_numpy(self.scenario_of_window[chosen])
        return batch

    def _read_mapped(
        self, field: str, scenario: np.ndarray, rows: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(values [B, K, ...], present [B, K] bool)`` of ``field`` at per-scenario ``rows [B, K]`` of the
        windows' ``scenario [B]``, read from the memory maps; a missing step (NaN row) is served as zeros."""
        parts = self.mapped[field]
        first = parts[int(scenario[0])] if len(scenario) else parts[0]
        values = np.empty((*rows.shape, *first.shape[1:]), dtype=first.dtype)
        order = np.argsort(scenario, kind="stable")
        bounds = np.flatnonzero(np.diff(scenario[order])) + 1
        for group in np.split(order, bounds):
            if len(group):
                values[group] = parts[int(scenario[group[0]])][rows[group]]
        present = present_rows(values.reshape(-1, *values.shape[2:])).reshape(rows.shape)
        if not present.all():
            values[~present] = 0
        return torch.from_numpy(values), torch.from_numpy(present)

    def __getitem__(self, i: int) -> dict:
        batch = self.__getitems__([i])
        return _unbatch(batch)


def _unbatch(batch: dict) -> dict:
    return {k: _unbatch(v) if isinstance(v, dict) else v[0] for k, v in batch.items()}


def collate_batch(batch: dict) -> dict:
    """``collate_fn`` for ``WindowDataset``: its ``__getitems__`` already returns a collated batch."""
    return batch
