"""The array store (``wmlm.data.store``): round trip from the DeepSense layout, memory maps, discovery beside
DeepSense folders, ``wmlm data pack`` and ``wmlm data synth --format arrays``, and bad stores."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from wmlm.cli import main
from wmlm.data import windows as windows_module
from wmlm.data.cache import load_scenarios
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.data.deepsense import find_scenarios, load_scenario
from wmlm.data.store import STORE_FILE, read_store, write_store

FIELDS = ["beam_power", "beam_label", "position", "position_raw"]
INPUTS = {"beam": "beam_power", "gps": "position"}
TARGETS = {"beam": "beam_label", "power": "beam_power", "position": "position"}


def fails(args: list[str], capsys: pytest.CaptureFixture, code: int = 1) -> str:
    result = main(args)
    err = capsys.readouterr().err
    assert result == code, err
    assert "Traceback" not in err and "wmlm: error:" in err, err
    return err


def batches(root: Path, cache: bool = False, **kwargs) -> list[dict]:
    module = DeepSenseDataModule(
        root, inputs=INPUTS, targets=TARGETS, past=3, future=2, batch_size=8, seed=3, cache=cache, **kwargs
    )
    module.setup("fit")
    return [b for split in ("train", "val", "test") for b in module._loader(split, shuffle=False)]


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right) > 0
    for a, b in zip(left, right):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], dict):
                assert a[key].keys() == b[key].keys()
                for k in a[key]:
                    assert torch.equal(a[key][k], b[key][k]), (key, k)
            else:
                assert torch.equal(a[key], b[key]), key


def pack(root: Path, out: Path, *extra: str) -> int:
    return main(["data", "pack", "--root", str(root), "--out", str(out), *extra])


def test_round_trip_same_arrays_and_batches(data_root: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert pack(data_root, store) == 0
    for folder in find_scenarios(data_root):
        parsed = load_scenario(folder, FIELDS)
        stored = read_store(store / folder.name, FIELDS)
        assert stored.name == parsed.name
        np.testing.assert_array_equal(stored.index, parsed.index)
        np.testing.assert_array_equal(stored.sequence, parsed.sequence)
        for field in FIELDS:
            assert stored.fields[field].dtype == parsed.fields[field].dtype
            np.testing.assert_array_equal(stored.fields[field], parsed.fields[field])
            assert isinstance(stored.fields[field], np.memmap)  # mapped, not loaded
    assert_same_batches(batches(data_root), batches(store))
    # a store site alone is a data root too, like one DeepSense folder
    assert [s.name for s in load_scenarios(store / "scenario2", FIELDS)] == ["scenario2"]
    # left on disk (per-scenario maps, index arithmetic) the batches are the same as from one table
    assert_same_batches(batches(data_root), batches_lazy(store))


def batches_lazy(root: Path) -> list[dict]:
    original = windows_module.RESIDENT_FIELD_BYTES
    windows_module.RESIDENT_FIELD_BYTES = 0
    try:
        got = batches(root)
    finally:
        windows_module.RESIDENT_FIELD_BYTES = original
    return got


def test_missing_steps_are_masked_alike_on_disk(make_scenario, tmp_path: Path) -> None:
    folder, _ = make_scenario("gappy", seed=4)
    for k in (3, 20):  # two silent power files: NaN rows, masked inputs, never targets
        (folder / "unit1" / "mmWave_data" / f"mmWave_power_{k}.txt").write_text("0\n" * 64)
    store = tmp_path / "store"
    assert pack(folder.parent, store) == 0
    assert np.isnan(read_store(store / "gappy").fields["beam_power"]).any()
    assert_same_batches(batches(folder.parent), batches_lazy(store))


def test_store_beside_deepsense_folders(data_root: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(data_root / "scenario1", mixed / "scenario1")
    assert pack(data_root, tmp_path / "store", "--scenarios", "scenario2,scenario9") == 0
    for name in ("scenario2", "scenario9"):
        shutil.copytree(tmp_path / "store" / name, mixed / name)
    (mixed / "half").mkdir()  # an interrupted store write (no store.json yet) is not data
    np.save(mixed / "half" / "beam_power.npy", np.zeros((3, 64), np.float32))
    assert [p.name for p in find_scenarios(mixed)] == ["scenario1", "scenario2", "scenario9"]
    loaded = load_scenarios(mixed, FIELDS, cache_dir=tmp_path / "cache")
    assert [s.name for s in loaded] == ["scenario1", "scenario2", "scenario9"]
    assert not any((tmp_path / "cache").glob("scenario2-*"))  # stores need no cache copy
    assert_same_batches(batches(data_root, cache=True, cache_dir=str(tmp_path / "c2")), batches(mixed))


def test_pack_overwrite_policy(data_root: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert pack(data_root, store) == 0
    first = {p.name: p.read_bytes() for p in (store / "scenario1").iterdir()}
    assert "--overwrite" in fails(["data", "pack", "--root", str(data_root), "--out", str(store)], capsys)
    assert pack(data_root, store, "--overwrite") == 0
    assert {p.name: p.read_bytes() for p in (store / "scenario1").iterdir()} == first  # same bytes
    # a folder it did not write is refused, even with --overwrite
    fails(["data", "pack", "--root", str(data_root), "--out", str(data_root), "--overwrite"], capsys)


def test_pack_unknown_field_is_refused(data_root: Path, tmp_path: Path, capsys) -> None:
    err = fails(
        ["data", "pack", "--root", str(data_root), "--out", str(tmp_path / "s"), "--fields", "nope"],
        capsys,
        code=2,
    )
    assert "nope" in err


@pytest.fixture
def store_site(data_root: Path, tmp_path: Path) -> Path:
    assert pack(data_root, tmp_path / "store", "--scenarios", "scenario1") == 0
    return tmp_path / "store" / "scenario1"


def fit_on(root: Path) -> list[str]:
    return [
        "fit",
        "--model",
        "wmlm.model.baselines.RepeatLastBeam",
        "--data",
        "DeepSenseDataModule",
        "--data.root",
        str(root),
    ]


def edit_index(site: Path, **changes) -> None:
    content = json.loads((site / STORE_FILE).read_text())
    for key, value in changes.items():
        if key == "shape":
            content["fields"]["beam_power"]["shape"] = value
        else:
            content[key] = value
    (site / STORE_FILE).write_text(json.dumps(content))


def load_fails(site: Path, capsys) -> str:
    """Reading the bad store through the CLI (``wmlm data pack`` of a store root reads nothing: use fit)."""
    from wmlm.errors import DataError

    with pytest.raises(DataError) as error:
        load_scenarios(site.parent, FIELDS)
    return str(error.value)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda s: edit_index(s, version=99), "format version 99"),
        (lambda s: edit_index(s, shape=[5, 64]), "expected"),
        (lambda s: edit_index(s, rows=3), "expected 3 rows"),
        (lambda s: (s / STORE_FILE).write_text("{not json"), "not valid JSON"),
        (
            lambda s: (s / "beam_power.npy").write_bytes((s / "beam_power.npy").read_bytes()[:200]),
            "truncated",
        ),
        (lambda s: (s / "beam_power.npy").unlink(), "cannot be opened"),
        (lambda s: np.save(s / "beam_power.npy", np.zeros((55, 64), np.float64)), "beam_power.npy"),
        (lambda s: np.save(s / "_index.npy", np.zeros(55, np.int64)), "index must increase"),
    ],
)
def test_bad_store_is_a_clear_error(store_site: Path, capsys, damage, expected) -> None:
    damage(store_site)
    message = load_fails(store_site, capsys)
    assert expected in message and str(store_site) in message, message


def test_bad_store_through_the_cli(store_site: Path, capsys) -> None:
    edit_index(store_site, version=99)
    err = fails([*fit_on(store_site.parent), "--trainer.fast_dev_run", "1"], capsys)
    assert "format version 99" in err and STORE_FILE in err


def test_fifo_store_file_is_refused(store_site: Path) -> None:
    from wmlm.errors import DataError

    (store_site / "beam_power.npy").unlink()
    os.mkfifo(store_site / "beam_power.npy")
    with pytest.raises(DataError, match="not a regular file"):
        read_store(store_site)


def test_missing_field_names_what_the_store_holds(store_site: Path) -> None:
    from wmlm.errors import DataError

    with pytest.raises(DataError, match="has no field"):
        read_store(store_site, ["beam_power", "image"])


def test_write_store_is_deterministic(data_root: Path, tmp_path: Path) -> None:
    data = load_scenario(data_root / "scenario1", FIELDS)
    a = write_store(data, tmp_path / "a" / "scenario1")
    b = write_store(data, tmp_path / "b" / "scenario1")
    assert {p.name: p.read_bytes() for p in a.iterdir()} == {p.name: p.read_bytes() for p in b.iterdir()}


def synth(out: Path, *extra: str) -> int:
    return main(["data", "synth", "--out", str(out), "--sequences", "2", "--seed", "5", *extra])


def test_synth_arrays_equals_the_deepsense_layout_read_back(tmp_path: Path) -> None:
    fields = ["beam_power", "beam_label", "position", "position_raw", "blockage"]
    assert (
        synth(tmp_path / "text", "--scenarios", "suburban", "--random-sites", "2", "--sensors", "none") == 0
    )
    assert (
        synth(tmp_path / "arrays", "--scenarios", "suburban", "--random-sites", "2", "--format", "arrays")
        == 0
    )
    text, arrays = load_scenarios(tmp_path / "text", fields), load_scenarios(tmp_path / "arrays", fields)
    assert [s.name for s in text] == [s.name for s in arrays] == ["s5_site00001", "s5_site00002", "suburban"]
    for a, b in zip(text, arrays):
        np.testing.assert_array_equal(a.index, b.index)
        np.testing.assert_array_equal(a.sequence, b.sequence)
        for field in fields:
            assert a.fields[field].dtype == b.fields[field].dtype, field
            np.testing.assert_array_equal(a.fields[field], b.fields[field], err_msg=field)
        assert isinstance(b.fields["beam_power"], np.memmap)
    assert not list((tmp_path / "arrays" / "suburban").glob("*.csv"))


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_arrays_is_deterministic_resumable_and_guarded(tmp_path: Path, capsys) -> None:
    args = ("--random-sites", "3", "--format", "arrays")
    assert synth(tmp_path / "a", *args) == 0
    assert synth(tmp_path / "b", *args, "--workers", "2") == 0
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")  # same seed, same bytes
    assert "--overwrite" in fails(
        ["data", "synth", "--out", str(tmp_path / "a"), "--sequences", "2", "--seed", "5", *args], capsys
    )
    assert synth(tmp_path / "a", *args, "--overwrite") == 0
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    # an interrupted site (no store.json, no simulation.json) is not data and --resume rebuilds it
    site = tmp_path / "a" / "s5_site00002"
    (site / STORE_FILE).unlink()
    (site / "simulation.json").unlink()
    assert [p.name for p in find_scenarios(tmp_path / "a")] == ["s5_site00001", "s5_site00003"]
    capsys.readouterr()
    assert synth(tmp_path / "a", *args, "--resume") == 0
    assert "skipped 2 complete site(s)" in capsys.readouterr().out
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    # a damaged array of a complete site is detected and rebuilt too
    power = tmp_path / "a" / "s5_site00003" / "beam_power.npy"
    power.write_bytes(power.read_bytes()[:-7])
    assert synth(tmp_path / "a", *args, "--resume") == 0
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    # LiDAR and CSI are not written as arrays: a usage error naming them before anything is simulated
    err = fails(
        ["data", "synth", "--out", str(tmp_path / "c"), "--format", "arrays", "--sensors", "camera,lidar"],
        capsys,
        2,
    )
    assert "--sensors camera,lidar" in err and "wmlm data pack` for lidar" in err
    assert not (tmp_path / "c").exists()


def test_synth_arrays_with_camera_holds_the_frames_the_deepsense_layout_reads_back(
    tmp_path: Path, capsys
) -> None:
    args = ("--random-sites", "1", "--sequences", "1")
    assert synth(tmp_path / "text", *args, "--sensors", "camera") == 0
    assert synth(tmp_path / "arrays", *args, "--sensors", "camera", "--format", "arrays") == 0
    site = "s5_site00001"
    fields = ["image", "beam_power", "position"]
    text = load_scenario(tmp_path / "text" / site, fields)
    store = read_store(tmp_path / "arrays" / site, fields)
    assert store.fields["image"].shape == (len(text), 3, 64, 64) and store.fields["image"].dtype == np.uint8
    for field in fields:  # the PNG written and read back equals the frame stored directly
        assert np.array_equal(text.fields[field], store.fields[field], equal_nan=True), field
    assert store.fields["image"].std() > 10  # frames, not a blank
    assert not list((tmp_path / "arrays" / site).rglob("*.png"))  # no text-layout files in the store
    info = json.loads((tmp_path / "arrays" / site / "simulation.json").read_text())
    assert list(info["sensors"]) == ["camera"]
    # a site recorded with LiDAR cannot be rewritten as arrays without saying which sensors to keep
    assert synth(tmp_path / "lidar", *args, "--sensors", "lidar") == 0
    capsys.readouterr()
    err = fails(
        ["data", "synth", "--out", str(tmp_path / "again"), "--from-json", str(tmp_path / "lidar" / site),
         "--format", "arrays"], capsys, 2,
    )  # fmt: skip
    assert f"--from-json {tmp_path / 'lidar' / site}" in err and "records sensors lidar" in err
    assert not (tmp_path / "again").exists()
    assert main(["data", "synth", "--out", str(tmp_path / "again"), "--from-json", str(tmp_path / "lidar" / site),
                 "--format", "arrays", "--sensors", "none"]) == 0  # fmt: skip


def test_pipeline_store_mode_smoke(tmp_path: Path) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("pipeline_bench", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    markdown = tmp_path / "store.md"
    config = Path(__file__).parent / "conf" / "beam_gps.yaml"
    args = ["--store-sites", "3", "--store-sequences", "4", "--store-compare", "0", "--config", str(config)]
    args += ["--steps", "3"]
    result = module.main([*args, "--markdown", str(markdown)])
    assert result["samples"] > 0 and 0 <= result["default_wait"] < 1
    text = markdown.read_text()
    assert "--store-sites 3" in text and "peak RSS" in text and "target < 5 %" in text
