"""``DeepSenseDataModule``: scenario folders -> windows -> train/val/test/predict loaders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from wmlm.data.cache import default_cache_dir, load_scenarios
from wmlm.data.deepsense import ScenarioData, find_scenarios
from wmlm.data.loader import ResumableLoader
from wmlm.data.table import DataError
from wmlm.data.windows import (
    WindowDataset,
    collate_batch,
    present_rows,
    split_sequences,
    window_starts,
    with_present_targets,
)
from wmlm.errors import ConfigError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
DEFAULT_PAST, DEFAULT_FUTURE = 5, 3  # window lengths for a model that states none


@runtime_checkable
class NeedsFields(Protocol):
    """A model that states its data contract: ``{"inputs": {key: field}, "targets": {key: field}}`` and, optionally,
    ``"past"`` and ``"future"`` (window lengths in samples)."""

    def data_fields(self) -> dict[str, Any]: ...


class DeepSenseDataModule(pl.LightningDataModule):
    """Windows of DeepSense-layout scenarios, split by sequence or by scenario.

    Args:
        root: one scenario folder, or a folder of scenario folders: DeepSense-layout folders (parsed, then
            cached) and array store sites (``wmlm.data.store``, memory-mapped as they are), side by side.
        scenarios: names of the scenario folders to use (default: all under ``root``).
        split: ``sequence``: every scenario's sequences (vehicle passes) are split at random into
            train/val/test; ``scenario``: ``test_scenarios`` are the test set, the others are split by
            sequence into train/val.
        test_scenarios: held-out scenario names when ``split="scenario"``.
        val_fraction: share of sequences for validation.
        test_fraction: share of sequences for testing (``split="sequence"`` only).
        past: input steps per window; ``None``: the model's ``past`` (``5`` for a model without one).
            A value that differs from the model's is an error: the model owns the contract.
        future: target steps per window; ``None``: the model's ``future`` (``3`` for a model without
            one); likewise checked against the model.
        batch_size: windows per batch. num_workers: DataLoader workers.
        seed: seed of the sequence split (independent of the training seed).
        inputs: ``{batch key: field}``; by default asked from the model (``data_fields()``).
        targets: ``{target key: field}``; by default asked from the model.
        predict_split: which split ``predict`` runs on.
        train_strides: sampling strides of training windows. ``[1, 2]`` adds windows that take every
            second sample, which look like vehicles passing twice as fast: an augmentation for sites whose
            traffic is faster (or farther sampled) than the training sites'. Validation and test windows
            always use stride 1.
        cache: keep parsed fields as memory-mapped arrays so later runs skip parsing the text files
            (``wmlm.data.cache``; an entry is invalidated when any file of the scenario changes).
        cache_dir: where the parsed arrays go (default ``$WMLM_CACHE_DIR/arrays`` or
            ``~/.cache/wmlm/arrays``).
        train_windows: train on this many windows only, taken as whole vehicle passes in a seeded random
            order (the last pass cut short), like the few passes recorded at a new site for fine-tuning.
            ``None``: all training windows. Asking for more than there are is an error.
        mix_root: a second folder of scenarios (e.g. simulated sites from ``wmlm data synth``) whose windows
            all join the training split, never validation or test: mixed real + simulated training. Its
            scenario names must differ from ``root``'s; ``train_windows`` counts ``root``'s windows only.
        mix_share: share of every training epoch drawn from ``mix_root`` (``0 < share < 1``): an epoch
            holds every training window of ``root`` plus as many ``mix_root`` windows as make up this
            share, drawn afresh each epoch (seeded, so a resumed run sees the same). ``None``: every window
            of both, once per epoch.
    """

    def __init__(
        self,
        root: str | Path,
        scenarios: list[str] | None = None,
        split: Literal["sequence", "scenario"] = "sequence",
        test_scenarios: list[str] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        past: int | None = None,
        future: int | None = None,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        inputs: dict[str, str] | None = None,
        targets: dict[str, str] | None = None,
        predict_split: Literal["train", "val", "test"] = "test",
        train_strides: list[int] | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        train_windows: int | None = None,
        mix_root: str | Path | None = None,
        mix_share: float | None = None,
    ) -> None:
        super().__init__()
        if mix_share is not None and (mix_root is None or not 0 < mix_share < 1):
            raise ConfigError(
                f"data.mix_share must be in (0, 1) and needs data.mix_root, got mix_share={mix_share!r}, "
                f"mix_root={mix_root!r}"
            )
        self.mix_root = Path(mix_root) if mix_root is not None else None
        self.mix_share = mix_share
        self._mixed_tail = 0  # training windows of mix_root: the tail of the training split
        self.cache, self.cache_dir = cache, cache_dir
        if train_windows is not None and train_windows < 1:
            raise ConfigError(
                f"data.train_windows must be a positive number of windows or null, got {train_windows}"
            )
        self.train_windows = train_windows
        self._train_pool_shortfall: int | None = None
        self.train_strides = list(train_strides or [1])
        if any(s < 1 for s in self.train_strides):
            raise ConfigError(f"data.train_strides must be positive integers, got {self.train_strides}")
        if split == "scenario" and not test_scenarios:
            raise ConfigError("data: split='scenario' needs test_scenarios (the held-out scenario names)")
        if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise ConfigError(
                f"data: val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1) "
                "and leave sequences for training"
            )
        for key, value, least in (("data.past", past, 1), ("data.future", future, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(
                    f"{key} must be an integer >= {least} (or null: the model's), got {value!r}"
                )
        for key, names in (("data.scenarios", scenarios), ("data.test_scenarios", test_scenarios)):
            repeated = sorted({n for n in names or [] if list(names or []).count(n) > 1})
            if repeated:
                raise ConfigError(f"{key} lists {repeated} more than once; every scenario would count twice")
        self.root = Path(root)
        self.scenarios = scenarios
        self.split = split
        self.test_scenarios = list(test_scenarios or [])
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.past, self.future = past, future
        self.batch_size, self.num_workers = batch_size, num_workers
        self.seed = seed
        self.inputs, self.targets = inputs, targets
        self.predict_split = predict_split
        self.datasets: dict[str, WindowDataset] = {}
        self._train_loader: ResumableLoader | None = None
        self._pending_loader_state: dict[str, int] | None = None
        self.scenario_names: list[str] = []
        self._passes: dict[str, int] = {}

    def _model(self) -> object | None:
        return self.trainer.lightning_module if self.trainer is not None else None

    def _fields(self) -> tuple[dict[str, str], dict[str, str]]:
        inputs, targets = self.inputs, self.targets
        if inputs is None or targets is None:
            model = self._model()
            if not isinstance(model, NeedsFields):
                raise ConfigError(
                    "data: set data.inputs and data.targets, or use a model with data_fields() (e.g. wmlm.WMLM)"
                )
            wanted = model.data_fields()
            inputs = inputs if inputs is not None else wanted["inputs"]
            targets = targets if targets is not None else wanted["targets"]
        return dict(inputs), dict(targets)

    def _window_lengths(self) -> tuple[int, int]:
        """``(past, future)``: the model's, or the data module's where the model has none; never two values."""
        model = self._model()
        # the model's data_fields() is the one statement of what it needs, window lengths included
        wanted = model.data_fields() if isinstance(model, NeedsFields) else {}
        lengths = []
        for key, mine, default in (
            ("past", self.past, DEFAULT_PAST),
            ("future", self.future, DEFAULT_FUTURE),
        ):
            theirs = wanted.get(key)
            if mine is not None and isinstance(theirs, int) and theirs != mine:
                raise ConfigError(
                    f"data.{key}={mine} differs from model.{key}={theirs}; the model sets the window length: "
                    f"remove data.{key} (or set it to {theirs})"
                )
            lengths.append(mine if mine is not None else theirs if isinstance(theirs, int) else default)
        return lengths[0], lengths[1]

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        inputs, targets = self._fields()
        self.past, self.future = self._window_lengths()
        names = self.scenarios
        if self.split == "scenario":
            available = [p.name for p in find_scenarios(self.root, names)]
            unknown = [n for n in self.test_scenarios if n not in available]
            if unknown:
                raise DataError(f"data.test_scenarios: unknown scenario(s) {unknown}; available: {available}")
        fields = [*inputs.values(), *targets.values()]
        scenarios = load_scenarios(self.root, fields, names, cache_dir=self.arrays_cache_dir())
        mixed = self._mixed_scenarios(fields, [s.name for s in scenarios])
        scenarios = [*scenarios, *mixed]
        self.scenario_names = [s.name for s in scenarios]
        self._passes = {s.name: len(np.unique(s.sequence)) for s in scenarios}
        starts = self._split_starts(scenarios, set(targets.values()), {s.name for s in mixed})
        for split in SPLITS:
            self.datasets[split] = WindowDataset(
                scenarios, starts[split], inputs, targets, self.past, self.future
            )
        self._check_splits()

    def _mixed_scenarios(self, fields: list[str], taken: list[str]) -> list[ScenarioData]:
        """The scenarios of ``mix_root`` (none without one); a name that ``root`` has too is an error."""
        if self.mix_root is None:
            return []
        mixed = load_scenarios(self.mix_root, fields, None, cache_dir=self.arrays_cache_dir())
        clash = sorted({s.name for s in mixed} & set(taken))
        if clash:
            raise DataError(
                f"data.mix_root {self.mix_root} has scenario(s) {clash} that data.root {self.root} has too; "
                "give the simulated sites other names"
            )
        return mixed

    def arrays_cache_dir(self) -> Path | None:
        """Folder of the parsed-array cache, or None when ``cache`` is off."""
        if not self.cache:
            return None
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir() / "arrays"

    def _split_starts(
        self, scenarios: list[ScenarioData], target_fields: set[str], train_only: set[str]
    ) -> dict[str, np.ndarray]:
        """``{split: [W, 3] (scenario position, first row, stride)}``; every window of a ``train_only``
        scenario (those of ``mix_root``, which come last) trains.

        Windows never cross a vehicle pass or a gap in ``index``, and never have a missing target step.
        """
        per_split: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        assert self.past is not None and self.future is not None
        for position, scenario in enumerate(scenarios):
            present = np.ones(len(scenario), dtype=bool)
            for field in sorted(target_fields):
                present &= present_rows(scenario.fields[field])
            if scenario.name in train_only:
                row_split = {"train": np.ones(len(scenario), bool)}
            elif self.split == "scenario" and scenario.name in self.test_scenarios:
                row_split = {"test": np.ones(len(scenario), bool)}
            else:
                fractions = {"val": self.val_fraction}
                if self.split == "sequence":
                    fractions["test"] = self.test_fraction
                row_split = split_sequences(scenario, fractions, self.seed)
            for split, rows in row_split.items():
                for stride in self.train_strides if split == "train" else [1]:
                    first_rows = window_starts(
                        scenario.sequence, self.past, self.future, stride, index=scenario.index
                    )
                    first_rows = with_present_targets(first_rows, present, self.past, self.future, stride)
                    chosen = first_rows[rows[first_rows]]
                    columns = [np.full(len(chosen), position), chosen, np.full(len(chosen), stride)]
                    per_split[split].append(np.stack(columns, axis=1))
        starts = {
            split: np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 3), np.int64)
            for split, parts in per_split.items()
        }
        first_mixed = len(scenarios) - len(train_only)
        is_mixed = starts["train"][:, 0] >= first_mixed
        own, mixed = starts["train"][~is_mixed], starts["train"][is_mixed]
        if self.train_windows is not None:
            own = self._first_passes(scenarios, own, self.train_windows)
        starts["train"], self._mixed_tail = np.concatenate([own, mixed]), len(mixed)
        return starts

    def _first_passes(self, scenarios: list[ScenarioData], starts: np.ndarray, count: int) -> np.ndarray:
        """``count`` rows of ``starts`` ``[W, 3]``: whole passes in a seeded random order, the last cut."""
        if count > len(starts):
            # an error only when training asks for the windows: testing needs none of them
            self._train_pool_shortfall = len(starts)
            return starts
        passes = np.array([scenarios[p].sequence[row] for p, row, _ in starts], dtype=np.int64)
        keys = np.stack([starts[:, 0], passes], axis=1)  # (scenario position, seq_index) per window
        unique, pass_of_window = np.unique(keys, axis=0, return_inverse=True)
        order = np.random.default_rng([self.seed, len(unique)]).permutation(len(unique))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        # stable sort by the pass's rank keeps each pass's windows in time order
        chosen = np.argsort(rank[pass_of_window.reshape(-1)], kind="stable")[:count]
        return starts[np.sort(chosen)]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=collate_batch,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        # checked here, not in setup: evaluating held-out scenarios needs no training window
        if len(self.datasets["train"]) == 0:
            raise DataError(
                f"data: no training window of {self.past}+{self.future} samples inside one sequence in {self.root}"
                f" (scenarios {self.scenario_names}, test_scenarios {self.test_scenarios})"
            )
        if self._train_pool_shortfall is not None:
            raise DataError(
                f"data.train_windows={self.train_windows}, but the training split of {self.scenario_names} in "
                f"{self.root} has only {self._train_pool_shortfall} windows"
            )
        if self.trainer is not None and self.trainer.world_size > 1:
            # several processes: Lightning gives every rank its share through a DistributedSampler (whose
            # order is fixed by the seed and the epoch); a resumed run restarts the interrupted epoch
            return self._loader("train", shuffle=True)
        # the shuffling seed comes from the global RNG, so seed_everything fixes it; the loader's position
        # within an epoch is checkpointed, so a resumed run sees the batches the interrupted one would have
        order_seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self._train_loader = ResumableLoader(
            self.datasets["train"],
            batch_size=self.batch_size,
            shuffle=True,
            seed=order_seed,
            mixed_tail=self._mixed_tail,
            mixed_per_epoch=self._mixed_per_epoch(),
            num_workers=self.num_workers,
            collate_fn=collate_batch,
            persistent_workers=self.num_workers > 0,
        )
        if self._pending_loader_state is not None:
            self._train_loader.load_state_dict(self._pending_loader_state)
            self._pending_loader_state = None
        return self._train_loader

    def _mixed_per_epoch(self) -> int | None:
        """``mix_root`` windows per training epoch: ``mix_share`` of the epoch (``None``: all of them)."""
        if self.mix_share is None or not self._mixed_tail:
            return None
        own = len(self.datasets["train"]) - self._mixed_tail
        return max(1, round(own * self.mix_share / (1 - self.mix_share)))

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: where the training loader is within its epoch."""
        return {} if self._train_loader is None else {"train_loader": self._train_loader.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores the datamodule before it asks for the training loader, so the state waits
        # for train_dataloader() unless a loader exists already
        self._pending_loader_state = state_dict.get("train_loader")
        if self._train_loader is not None and self._pending_loader_state is not None:
            self._train_loader.load_state_dict(self._pending_loader_state)
            self._pending_loader_state = None

    def _check_splits(self, lazy: str | None = None) -> None:
        """An asked-for test split without windows is an error naming the scenarios and their passes
        (Lightning would skip testing and exit 0 without a table); an empty validation split is one warning.

        Checked in ``setup`` (before any training) when there are training windows, else when the test
        loader is asked for (``lazy="test"``): without training windows ``train_dataloader`` says so first.
        """
        asked = {"val": self.val_fraction > 0, "test": self.split == "scenario" or self.test_fraction > 0}
        for split in ("test",) if lazy else ("test", "val"):
            if (
                not asked[split]
                or len(self.datasets[split])
                or (not lazy and not len(self.datasets["train"]))
            ):
                continue
            problem = (
                f"data: the {split} split has no window of {self.past}+{self.future} samples inside one vehicle "
                f"pass; vehicle passes (seq_index) per scenario in {self.root}: {self._passes} "
                f"(val_fraction={self.val_fraction}, test_fraction={self.test_fraction}, split={self.split!r})"
            )
            if split == "test":
                raise DataError(
                    f"{problem}; a split needs whole passes: add passes or scenarios, or set data.test_fraction: 0"
                )
            log.warning("%s; validation is skipped", problem)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        self._check_splits(lazy="test")
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)
