"""Windows inside sequences, sequence splits, ``WindowDataset`` batches and ``DeepSenseDataModule`` splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmlm.data.cache import load_scenarios
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.data.deepsense import ScenarioData
from wmlm.data.table import DataError
from wmlm.data.windows import WindowDataset, run_ids, split_sequences, window_starts

INPUTS = {"beam": "beam_power", "gps": "position"}
TARGETS = {"beam": "beam_label"}


def _scenario(name: str, sequence: list[int], index_offset: int = 1) -> ScenarioData:
    """Hand-made scenario: power row r peaks at beam r % 64, label r % 64, position (r, -r)."""
    n = len(sequence)
    rows = np.arange(n)
    power = np.zeros((n, 64), np.float32)
    power[rows, rows % 64] = 1.0
    fields = {
        "beam_power": power,
        "beam_label": (rows % 64).astype(np.int64),
        "position": np.stack([rows, -rows], axis=1).astype(np.float32),
    }
    return ScenarioData(name, rows.astype(np.int64) + index_offset, np.asarray(sequence, np.int64), fields)


# ---------------------------------------------------------------- window_starts / run_ids


def test_run_ids():
    np.testing.assert_array_equal(run_ids(np.array([1, 1, 2, 2, 2, 1, 7])), [0, 0, 1, 1, 1, 2, 3])


def test_window_starts_hand_made():
    seq = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    starts = window_starts(seq, past=2, future=1)
    np.testing.assert_array_equal(starts, [0, 1, 4, 5, 6, 7])
    assert starts.dtype == np.int64
    for s in starts:
        assert len(set(seq[s : s + 3])) == 1


def test_window_starts_never_cross_a_sequence_random():
    rng = np.random.default_rng(0)
    seq = np.repeat(np.arange(30), rng.integers(1, 12, size=30))
    past, future = 4, 2
    starts = window_starts(seq, past, future)
    runs = run_ids(seq)
    expected = [s for s in range(len(seq) - past - future + 1) if len(set(runs[s : s + past + future])) == 1]
    np.testing.assert_array_equal(starts, expected)


def test_window_starts_same_seq_value_in_two_runs_is_two_sequences():
    seq = np.array([1, 1, 2, 1, 1])
    # [1, 1] + [1, 1] are separate passes: no 3-row window may join them across the 2
    assert window_starts(seq, past=2, future=1).tolist() == []
    assert window_starts(seq, past=1, future=1).tolist() == [0, 3]


def test_short_sequence_yields_no_windows():
    seq = np.array([1, 1, 2, 2, 2, 2, 3, 3])
    # window of 4: only the 4-long sequence 2 fits, exactly once
    np.testing.assert_array_equal(window_starts(seq, past=3, future=1), [2])
    assert window_starts(np.array([5, 5, 5]), past=3, future=1).size == 0
    assert window_starts(np.array([], dtype=np.int64), past=1, future=0).size == 0


def test_future_zero_and_bad_lengths():
    np.testing.assert_array_equal(window_starts(np.array([1, 1, 2]), past=1, future=0), [0, 1, 2])
    with pytest.raises(ValueError, match="past"):
        window_starts(np.array([1, 1, 1]), past=0, future=1)
    with pytest.raises(ValueError, match="future"):
        window_starts(np.array([1, 1, 1]), past=1, future=-1)


# ---------------------------------------------------------------- split_sequences


def _many_runs(name: str = "scenarioX") -> ScenarioData:
    return _scenario(name, list(np.repeat(np.arange(1, 21), 3)))


def test_split_sequences_every_run_in_exactly_one_split():
    scenario = _many_runs()
    masks = split_sequences(scenario, {"test": 0.2, "val": 0.1}, seed=0)
    assert set(masks) == {"train", "val", "test"}
    stacked = np.stack([masks["train"], masks["val"], masks["test"]])
    np.testing.assert_array_equal(stacked.sum(axis=0), np.ones(len(scenario), dtype=int))
    runs = run_ids(scenario.sequence)
    for mask in masks.values():
        # a run is wholly in or wholly out of each split
        for r in np.unique(runs):
            assert mask[runs == r].all() or not mask[runs == r].any()
    counts = {split: len(np.unique(runs[mask])) for split, mask in masks.items()}
    assert counts == {"test": 4, "val": 2, "train": 14}


def test_split_sequences_deterministic_and_seed_dependent():
    scenario = _many_runs()
    fractions = {"test": 0.2, "val": 0.2}
    first = split_sequences(scenario, fractions, seed=3)
    again = split_sequences(scenario, fractions, seed=3)
    for split in first:
        np.testing.assert_array_equal(first[split], again[split])
    other = split_sequences(scenario, fractions, seed=4)
    assert any(not np.array_equal(first[s], other[s]) for s in first)


def test_split_sequences_keeps_a_training_run():
    scenario = _scenario("tiny", [1, 1, 2, 2])
    masks = split_sequences(scenario, {"test": 0.5, "val": 0.5}, seed=0)
    assert masks["train"].any()
    np.testing.assert_array_equal(masks["train"].astype(int) + masks["val"] + masks["test"], [1, 1, 1, 1])


# ---------------------------------------------------------------- WindowDataset


def test_window_dataset_batch_layout():
    a = _scenario("a", [1] * 6 + [2] * 5, index_offset=100)
    b = _scenario("b", [7] * 8, index_offset=1)
    past, future = 3, 2
    starts = np.array([[0, 0], [0, 6], [1, 2], [1, 3]], dtype=np.int64)
    ds = WindowDataset([a, b], starts, INPUTS, TARGETS, past, future)
    assert len(ds) == 4
    batch = ds.__getitems__([0, 1, 2, 3])
    assert batch["beam"].shape == (4, past, 64)
    assert batch["beam"].dtype == torch.float32
    assert batch["gps"].shape == (4, past, 2)
    assert batch["target"]["beam"].shape == (4, future)
    assert batch["target"]["beam"].dtype == torch.long
    assert batch["mask"]["beam"].shape == (4, past) and batch["mask"]["beam"].all()
    assert set(batch["mask"]) == {"beam", "gps"}
    # CSV index of the last past row
    assert batch["index"].tolist() == [100 + 2, 100 + 8, 1 + 4, 1 + 5]
    assert batch["scenario_id"].tolist() == [0, 0, 1, 1]
    assert ds.scenario_names == ["a", "b"]
    # values come from the right rows: row r has position (r, -r) and label r
    assert batch["gps"][1, :, 0].tolist() == [6.0, 7.0, 8.0]
    assert batch["target"]["beam"][1].tolist() == [9, 10]
    assert batch["target"]["beam"][2].tolist() == [5, 6]
    assert batch["beam"][2].argmax(-1).tolist() == [2, 3, 4]


def test_window_dataset_getitem_matches_batch_and_dataloader():
    a = _scenario("a", [1] * 10)
    starts = np.stack([np.zeros(6, np.int64), window_starts(a.sequence, 3, 2)], axis=1)
    ds = WindowDataset([a], starts, INPUTS, TARGETS, 3, 2)
    sample = ds[4]
    assert sample["beam"].shape == (3, 64)
    assert sample["target"]["beam"].tolist() == [7, 8]
    assert int(sample["index"]) == 7
    from torch.utils.data import DataLoader

    from wmlm.data.windows import collate_batch

    batches = list(DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate_batch))
    assert [b["beam"].shape[0] for b in batches] == [4, 2]
    assert torch.equal(batches[1]["beam"][0], sample["beam"])


def test_window_dataset_empty():
    a = _scenario("a", [1, 1])
    ds = WindowDataset([a], np.zeros((0, 2), np.int64), INPUTS, TARGETS, 3, 1)
    assert len(ds) == 0


# ---------------------------------------------------------------- DeepSenseDataModule


def _all_windows(dm: DeepSenseDataModule, split: str) -> dict:
    ds = dm.datasets[split]
    return ds.__getitems__(list(range(len(ds)))) if len(ds) else {}


def _sequence_lookup(data_root, names):
    """``{(scenario name, CSV index): seq_index}``."""
    lookup = {}
    for s in load_scenarios(data_root, ["beam_label"], names):
        for index, seq in zip(s.index.tolist(), s.sequence.tolist()):
            lookup[(s.name, index)] = seq
    return lookup


def _window_sequences(dm: DeepSenseDataModule, split: str, lookup) -> set:
    """The (scenario, seq) of every window in ``split``; asserts each window stays in one sequence."""
    batch = _all_windows(dm, split)
    if not batch:
        return set()
    names = dm.datasets[split].scenario_names
    result = set()
    for scenario_id, last_past in zip(batch["scenario_id"].tolist(), batch["index"].tolist()):
        name = names[scenario_id]
        rows = range(last_past - dm.past + 1, last_past + dm.future + 1)
        seqs = {lookup[(name, r)] for r in rows}
        assert len(seqs) == 1, f"window ending at {name} index {last_past} crosses sequences {seqs}"
        result.add((name, seqs.pop()))
    return result


def test_datamodule_sequence_split_is_disjoint(data_root):
    dm = DeepSenseDataModule(
        data_root,
        inputs=INPUTS,
        targets=TARGETS,
        past=3,
        future=2,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.25,
        seed=0,
    )
    dm.setup("fit")
    lookup = _sequence_lookup(data_root, None)
    per_split = {split: _window_sequences(dm, split, lookup) for split in ("train", "val", "test")}
    assert per_split["train"] and per_split["val"] and per_split["test"]
    assert not per_split["train"] & per_split["val"]
    assert not per_split["train"] & per_split["test"]
    assert not per_split["val"] & per_split["test"]
    # every window of every scenario is in exactly one split
    total = sum(len(dm.datasets[s]) for s in ("train", "val", "test"))
    expected = sum(len(window_starts(s.sequence, 3, 2)) for s in load_scenarios(data_root, ["beam_label"]))
    assert total == expected
    # every sequence is used (all are long enough for a window): 4 + 3 + 3 in data_root
    assert len(set().union(*per_split.values())) == 4 + 3 + 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["beam"].shape[1:] == (3, 64)
    assert batch["gps"].shape[1:] == (3, 2)
    assert batch["target"]["beam"].shape[1:] == (2,)
    assert batch["target"]["beam"].dtype == torch.long


def test_datamodule_sequence_split_depends_on_seed_only(data_root):
    def splits(seed):
        dm = DeepSenseDataModule(
            data_root,
            inputs=INPUTS,
            targets=TARGETS,
            past=3,
            future=2,
            val_fraction=0.25,
            test_fraction=0.25,
            seed=seed,
        )
        dm.setup("fit")
        return {s: dm.datasets[s].starts.tolist() for s in ("train", "val", "test")}

    assert splits(0) == splits(0)
    assert any(splits(0) != splits(s) for s in (1, 2, 3))


def test_datamodule_scenario_split(data_root):
    dm = DeepSenseDataModule(
        data_root,
        split="scenario",
        test_scenarios=["scenario9"],
        inputs=INPUTS,
        targets=TARGETS,
        past=3,
        future=2,
        val_fraction=0.3,
    )
    dm.setup("fit")
    assert dm.scenario_names == ["scenario1", "scenario2", "scenario9"]
    nine = dm.scenario_names.index("scenario9")
    test = _all_windows(dm, "test")
    assert set(test["scenario_id"].tolist()) == {nine}
    scenario9 = load_scenarios(data_root, ["beam_label"], ["scenario9"])[0]
    assert len(dm.datasets["test"]) == len(window_starts(scenario9.sequence, 3, 2))
    for split in ("train", "val"):
        batch = _all_windows(dm, split)
        assert batch, f"{split} is empty"
        assert nine not in batch["scenario_id"].tolist()
    lookup = _sequence_lookup(data_root, None)
    train, val = _window_sequences(dm, "train", lookup), _window_sequences(dm, "val", lookup)
    assert not train & val
    assert {name for name, _ in train | val} == {"scenario1", "scenario2"}


def test_datamodule_scenario_split_unknown_test_scenario(data_root):
    dm = DeepSenseDataModule(
        data_root, split="scenario", test_scenarios=["scenario42"], inputs=INPUTS, targets=TARGETS
    )
    with pytest.raises(DataError) as info:
        dm.setup("fit")
    assert "scenario42" in str(info.value)
    assert "scenario9" in str(info.value)


def test_datamodule_scenario_split_needs_test_scenarios(data_root):
    with pytest.raises(ValueError, match="test_scenarios"):
        DeepSenseDataModule(data_root, split="scenario", inputs=INPUTS, targets=TARGETS)


def test_datamodule_bad_fractions(data_root):
    with pytest.raises(ValueError, match="val_fraction"):
        DeepSenseDataModule(data_root, val_fraction=0.6, test_fraction=0.5, inputs=INPUTS, targets=TARGETS)


def test_datamodule_without_fields_and_model_fails_clearly(data_root):
    dm = DeepSenseDataModule(data_root)
    with pytest.raises(ValueError, match="data.inputs"):
        dm.setup("fit")


def test_datamodule_no_training_window(data_root):
    dm = DeepSenseDataModule(data_root, inputs=INPUTS, targets=TARGETS, past=20, future=5)
    dm.setup("fit")
    with pytest.raises(DataError, match="no training window"):
        dm.train_dataloader()


def test_datamodule_all_scenarios_held_out_serves_test_only(data_root):
    names = ["scenario1", "scenario2", "scenario9"]
    dm = DeepSenseDataModule(
        data_root, split="scenario", test_scenarios=names, inputs=INPUTS, targets=TARGETS
    )
    dm.setup("test")
    assert len(dm.datasets["train"]) == len(dm.datasets["val"]) == 0
    assert len(dm.datasets["test"]) > 0 and len(dm.test_dataloader()) > 0


def test_strided_windows_stay_inside_a_sequence():
    seq = np.array([1] * 9 + [2] * 6)
    assert window_starts(seq, past=2, future=1, stride=2).tolist() == [0, 1, 2, 3, 4, 9, 10]
    with pytest.raises(ValueError, match="stride >= 1"):
        window_starts(seq, past=2, future=1, stride=0)


def test_train_strides_add_faster_windows_to_training_only(data_root):
    plain = DeepSenseDataModule(data_root, inputs=INPUTS, targets=TARGETS)
    strided = DeepSenseDataModule(data_root, inputs=INPUTS, targets=TARGETS, train_strides=[1, 2])
    plain.setup("fit")
    strided.setup("fit")
    assert len(strided.datasets["train"]) > len(plain.datasets["train"])
    for split in ("val", "test"):
        assert len(strided.datasets[split]) == len(plain.datasets[split])
    train = strided.datasets["train"]
    doubled = np.flatnonzero(train.strides == 2)
    batch = train.__getitems__(doubled[:4].tolist())
    first = train.starts[doubled[:4]]
    # the last past sample of a stride-2 window is 2 * (past - 1) rows after its first
    expected_index = train.index[torch.from_numpy(first + 2 * (strided.past - 1))]
    assert torch.equal(batch["index"], expected_index)


def _limited(data_root, train_windows, seed=0):
    dm = DeepSenseDataModule(
        data_root, inputs=INPUTS, targets=TARGETS, past=3, future=2, seed=seed, train_windows=train_windows
    )
    dm.setup("fit")
    return dm


def test_train_windows_takes_whole_passes_until_the_count(data_root):
    full = _limited(data_root, None)
    limited = _limited(data_root, 20)
    chosen = limited.datasets["train"].starts  # flat first rows over all scenarios
    assert len(chosen) == 20 and set(chosen.tolist()) <= set(full.datasets["train"].starts.tolist())
    # the vehicle pass of every flat row, as (scenario position, seq_index)
    pass_of_row = [
        (p, int(s)) for p, sc in enumerate(load_scenarios(data_root, ["beam_label"])) for s in sc.sequence
    ]

    def windows_per_pass(starts):
        counts: dict[tuple[int, int], int] = {}
        for row in starts.tolist():
            counts[pass_of_row[row]] = counts.get(pass_of_row[row], 0) + 1
        return counts

    taken, pool = windows_per_pass(chosen), windows_per_pass(full.datasets["train"].starts)
    # whole passes: at most one chosen pass is cut short
    assert len(taken) >= 2 and sum(taken[k] < pool[k] for k in taken) <= 1
    # validation and test are untouched, and the choice depends on the seed only
    for split in ("val", "test"):
        assert limited.datasets[split].starts.tolist() == full.datasets[split].starts.tolist()
    assert _limited(data_root, 20).datasets["train"].starts.tolist() == chosen.tolist()
    assert any(
        _limited(data_root, 20, seed=s).datasets["train"].starts.tolist() != chosen.tolist()
        for s in (1, 2, 3)
    )


def test_train_windows_beyond_the_pool_is_an_error_when_training_only(data_root):
    dm = _limited(data_root, 10_000)
    assert len(dm.datasets["test"]) > 0  # testing still works
    with pytest.raises(
        DataError, match=r"train_windows=10000, but the training split .* has only \d+ windows"
    ):
        dm.train_dataloader()
    with pytest.raises(ValueError, match="train_windows must be a positive"):
        DeepSenseDataModule(data_root, train_windows=0)


def test_the_models_data_fields_are_the_whole_contract(data_root):
    """Inputs, targets and window lengths come from ``data_fields()`` alone, not from model attributes."""

    class Contract:
        def data_fields(self):
            return {"inputs": INPUTS, "targets": TARGETS, "past": 4, "future": 2}

    dm = DeepSenseDataModule(data_root, batch_size=8, val_fraction=0.25, test_fraction=0.25)
    dm._model = Contract  # the model the trainer would hand over; it has no past/future attributes
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["beam"].shape[1:] == (4, 64) and batch["target"]["beam"].shape[1:] == (2,)
