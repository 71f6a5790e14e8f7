"""The parsed-array cache: a miss parses and stores, a hit memory-maps, any file change invalidates."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from wmlm.data import cache
from wmlm.data.cache import load_scenario_cached
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.data.deepsense import load_scenario

FIELDS = ["beam_power", "beam_label", "position"]


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the fields of every real parse that goes through the cache."""
    calls: list[list[str]] = []

    def spy(folder: Path, fields: list[str]):  # noqa: ANN202
        calls.append(list(fields))
        return load_scenario(folder, fields)

    monkeypatch.setattr(cache, "load_scenario", spy)
    return calls


def test_miss_then_hit_gives_the_same_arrays_memory_mapped(
    make_scenario: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = make_scenario("scenario1")
    calls = count_parses(monkeypatch)
    first = load_scenario_cached(folder, FIELDS, tmp_path / "c")
    again = load_scenario_cached(folder, FIELDS, tmp_path / "c")
    assert calls == [FIELDS]  # parsed once
    assert isinstance(again.fields["beam_power"], np.memmap)
    direct = load_scenario(folder, FIELDS)
    for name in FIELDS:
        np.testing.assert_array_equal(again.fields[name], direct.fields[name])
        np.testing.assert_array_equal(first.fields[name], direct.fields[name])
    np.testing.assert_array_equal(again.sequence, direct.sequence)
    np.testing.assert_array_equal(again.index, direct.index)


def test_only_missing_fields_are_parsed(
    make_scenario: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = make_scenario("scenario1")
    calls = count_parses(monkeypatch)
    load_scenario_cached(folder, ["beam_label"], tmp_path / "c")
    load_scenario_cached(folder, ["beam_label", "position"], tmp_path / "c")
    assert calls == [["beam_label"], ["position"]]


def test_a_changed_file_invalidates_and_replaces_the_entry(
    make_scenario: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = make_scenario("scenario1")
    load_scenario_cached(folder, ["beam_power"], tmp_path / "c")
    power_file = folder / "unit1" / "mmWave_data" / "mmWave_power_0.txt"
    values = np.loadtxt(power_file)
    values[0] = 123.0  # the last beam (files are reversed) becomes the strongest
    power_file.write_text("\n".join(f"{v:.8f}" for v in values) + "\n")
    stat = power_file.stat()
    os.utime(power_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    calls = count_parses(monkeypatch)
    data = load_scenario_cached(folder, ["beam_power"], tmp_path / "c")
    assert calls == [["beam_power"]]
    assert data.fields["beam_power"][0, 63] == pytest.approx(123.0)
    entries = [p for p in (tmp_path / "c").iterdir() if p.name.startswith("scenario1-")]
    assert len(entries) == 1  # the stale entry is gone


def test_datamodule_uses_the_cache_dir(data_root: Path, tmp_path: Path) -> None:
    fields = {"inputs": {"beam": "beam_power"}, "targets": {"beam": "beam_label"}}
    cached = DeepSenseDataModule(data_root, cache_dir=str(tmp_path / "arrays"), **fields)
    cached.setup("fit")
    plain = DeepSenseDataModule(data_root, cache=False, **fields)
    plain.setup("fit")
    assert len(list((tmp_path / "arrays").iterdir())) == 3  # one entry per scenario
    a, b = cached.datasets["train"][0], plain.datasets["train"][0]
    assert a["beam"].equal(b["beam"]) and a["target"]["beam"].equal(b["target"]["beam"])


def test_reader_settings_are_part_of_the_key(tmp_path: Path) -> None:
    from wmlm import registry
    from wmlm.modalities.image import ImageReader

    entry = tmp_path / "entry"
    small = cache._field_file(entry, "image")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "get_reader", lambda name: ImageReader(size_hw=(32, 32)))
        other = cache._field_file(entry, "image")
    assert small != other and small.name.startswith("image@wmlm.modalities.image.ImageReader-")
