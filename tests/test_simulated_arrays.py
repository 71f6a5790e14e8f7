"""SimulatedDataModule(format=arrays): array store sites in the cache, the same batches as the DeepSense layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wmlm.data.deepsense import STORE_FILE
from wmlm.data.simulated import SimulatedDataModule, ensure_simulated
from wmlm.errors import ConfigError

FIELDS = {
    "inputs": {"beam": "beam_power", "gps": "position"},
    "targets": {"beam": "beam_label", "power": "beam_power", "position": "position"},
}


def module(tmp_path: Path, format: str, **kwargs) -> SimulatedDataModule:
    return SimulatedDataModule(
        presets=["suburban"], random_sites=2, site_seed=4, sequences=2, sensors=[], format=format,
        cache_dir=str(tmp_path / format), past=3, future=2, batch_size=8, seed=3, **FIELDS, **kwargs,
    )  # fmt: skip


def all_batches(data: SimulatedDataModule) -> list[dict]:
    data.setup("fit")
    return [b for split in ("train", "val", "test") for b in data._loader(split, shuffle=False)]


def test_arrays_and_deepsense_give_the_same_batches(tmp_path: Path) -> None:
    text, arrays = module(tmp_path, "deepsense"), module(tmp_path, "arrays")
    left, right = all_batches(text), all_batches(arrays)
    assert text.scenario_names == arrays.scenario_names == ["suburban", "s4_site00001", "s4_site00002"]
    for name in arrays.scenario_names:  # array store sites, no text files
        assert (arrays.root / name / STORE_FILE).is_file() and not (
            arrays.root / name / f"{name}.csv"
        ).exists()
        assert (text.root / name / f"{name}.csv").is_file()
    assert text.root != arrays.root  # another layout, another cache folder
    assert len(left) == len(right) > 0
    for a, b in zip(left, right):
        assert a.keys() == b.keys()
        for key in a:
            pairs = (
                [(a[key][k], b[key][k]) for k in a[key]] if isinstance(a[key], dict) else [(a[key], b[key])]
            )
            assert all(torch.equal(x, y) for x, y in pairs), key


def test_arrays_cache_is_reused_and_matches_the_cli(tmp_path: Path) -> None:
    from wmlm.cli import main

    parent = ensure_simulated(tmp_path, [], sequences=2, seed=4, random_sites=1, format="arrays")
    files = sorted(p for p in parent.rglob("*") if p.is_file())
    mtimes = [p.stat().st_mtime_ns for p in files]
    assert ensure_simulated(tmp_path, [], sequences=2, seed=4, random_sites=1, format="arrays") == parent
    assert [p.stat().st_mtime_ns for p in files] == mtimes  # a cache hit: nothing rewritten
    out = tmp_path / "cli"
    args = ["data", "synth", "--out", str(out), "--random-sites", "1", "--seed", "4", "--sequences", "2"]
    assert main([*args, "--format", "arrays"]) == 0
    site = "s4_site00001"
    cached = {p.name: p.read_bytes() for p in (parent / site).iterdir() if p.name != ".complete"}
    assert cached == {p.name: p.read_bytes() for p in (out / site).iterdir()}  # the CLI's bytes


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"format": "parquet"}, "data.format"), ({"format": "arrays", "sensors": ["lidar"]}, "data.sensors")],
)
def test_bad_format_is_one_clear_error_naming_the_key(tmp_path: Path, kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key) as error:
        SimulatedDataModule(presets=["suburban"], sequences=2, cache_dir=str(tmp_path), **FIELDS, **kwargs)
    assert kwargs["format"] in str(error.value) or "use format deepsense for lidar" in str(error.value)
    with pytest.raises(ConfigError, match=key):
        ensure_simulated(tmp_path, ["suburban"], sequences=2, seed=0, **kwargs)
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_arrays_with_camera_give_the_same_image_batches(tmp_path: Path) -> None:
    fields = {"inputs": {"beam": "beam_power", "image": "image"}, "targets": {"beam": "beam_label"}}
    made = [
        SimulatedDataModule(
            presets=["suburban"],
            sequences=1,
            sensors=["camera"],
            format=format,
            cache_dir=str(tmp_path / format),
            past=2,
            future=1,
            batch_size=4,
            seed=3,
            **fields,
        )  # fmt: skip
        for format in ("deepsense", "arrays")
    ]
    text, arrays = (all_batches(m) for m in made)
    assert len(text) == len(arrays) > 0
    for a, b in zip(text, arrays):
        assert a["image"].dtype == torch.uint8 and a["image"].shape[-3:] == (3, 64, 64)
        for key in ("image", "beam", "index"):
            assert torch.equal(a[key], b[key]), key
