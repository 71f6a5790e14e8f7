"""Bad input data at the command line: every case is refused with one clear message, or warned about once
with the count and never passed on. Catalogue: docs/reliability.md ("Input data")."""

from __future__ import annotations

import csv
import logging
import os
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli_e2e import fit_args

from wmlm import registry
from wmlm.cli import main
from wmlm.data import cache as cache_module
from wmlm.data.cache import load_scenario_cached
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.data.deepsense import find_scenarios, load_scenario
from wmlm.data.readers import BeamLabelReader
from wmlm.data.table import DataError, ScenarioTable
from wmlm.modalities.image import ImageReader

INPUTS = {"beam": "beam_power", "gps": "position"}
TARGETS = {"beam": "beam_label", "power": "beam_power", "position": "position"}


def rows_of(folder: Path) -> list[list[str]]:
    with (folder / f"{folder.name}.csv").open(newline="") as handle:
        return list(csv.reader(handle))


def write_rows(folder: Path, rows: list[list[str]], name: str | None = None) -> None:
    with (folder / (name or f"{folder.name}.csv")).open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def fails(args: list[str], capsys: pytest.CaptureFixture, code: int = 1) -> str:
    """Run the CLI, expect exit ``code`` with a short message and no traceback; the message."""
    result = main(args)
    err = capsys.readouterr().err
    assert result == code, err
    assert "Traceback" not in err and len(err.splitlines()) <= 12 and len(err) < 2500, err
    return err


def power_file(folder: Path, k: int) -> Path:
    return folder / "unit1" / "mmWave_data" / f"mmWave_power_{k}.txt"


# ------------------------------------------------------------------------------- labels (silent case 1)


def test_two_label_columns_that_disagree_are_refused(make_scenario, tmp_path: Path, capsys) -> None:
    folder, truth = make_scenario()
    rows = rows_of(folder)
    rows[0].append("unit1_beam_index")
    for k, row in enumerate(rows[1:]):
        row.append(str(truth["beam"][k] if k != 6 else truth["beam"][k] % 64 + 1))
    write_rows(folder, rows)
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "'unit1_beam_index'" in err and "'unit1_beam'" in err and "row 7" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.ckpt"))


def test_two_label_columns_that_agree_are_fine(make_scenario) -> None:
    folder, truth = make_scenario(sequence_lengths=(5,))
    rows = rows_of(folder)
    rows[0].append("unit1_beam_index")
    for k, row in enumerate(rows[1:]):
        row.append(str(truth["beam"][k]))
    write_rows(folder, rows)
    np.testing.assert_array_equal(
        load_scenario(folder, ["beam_label"]).fields["beam_label"], truth["beam"] - 1
    )


def test_labels_shifted_against_the_power_files_are_refused(make_scenario, tmp_path: Path, capsys) -> None:
    folder, truth = make_scenario("scenario4")
    rows = rows_of(folder)
    column = rows[0].index("unit1_beam")
    for k, row in enumerate(rows[1:]):
        row[column] = str(truth["beam"][k] - 1 if truth["beam"][k] > 1 else 1)  # a 0-based export
    write_rows(folder, rows)
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "scenario scenario4" in err and "strongest beam" in err and "50%" in err


# ------------------------------------------------------------------------------- power (silent case 2)


def test_all_zero_and_off_scale_power_rows_are_missing_never_targets(make_scenario, caplog) -> None:
    folder, truth = make_scenario()
    power_file(folder, 3).write_text("0\n" * 64)
    power_file(folder, 20).write_text("\n".join(f"{1e6 * p:.3f}" for p in truth["power"][20][::-1]))
    with caplog.at_level(logging.WARNING):
        dm = DeepSenseDataModule(folder.parent, inputs=INPUTS, targets=TARGETS, past=3, future=2)
        dm.setup()
    warned = [r.getMessage() for r in caplog.records if "unit1_pwr_60ghz" in r.getMessage()]
    assert len(warned) == 2 and all("1 of 55 rows" in w and "scenario1" in w for w in warned), warned
    for split, dataset in dm.datasets.items():
        if not len(dataset):
            continue
        batch = dataset.__getitems__(list(range(len(dataset))))
        assert torch.isfinite(batch["beam"]).all() and torch.isfinite(batch["target"]["power"]).all()
        # the bad rows (index 4 and 21) are never a target, and are masked wherever they are an input
        first_future = batch["index"] + 1
        for bad in (4, 21):
            assert not ((first_future <= bad) & (bad < first_future + 2)).any(), split
            step = bad - (batch["index"] - 2)  # position of the bad row among the past steps
            inside = (step >= 0) & (step < 3)
            rows = torch.nonzero(inside).flatten()
            assert not batch["mask"]["beam"][rows, step[rows]].any()


def test_power_head_never_trains_on_an_all_zero_row(make_scenario, tmp_path: Path, capsys) -> None:
    folder, _ = make_scenario()
    for k in range(10, 14):
        power_file(folder, k).write_text("0\n" * 64)
    args = fit_args(folder.parent, tmp_path / "runs", "--model.init_args.heads", "[beam, power]")
    assert main([*args, "--trainer.fast_dev_run", "1"]) == 0, capsys.readouterr().err


# ------------------------------------------------------------------------------- GPS 0 0 (silent case 3)


def test_gps_no_fix_is_masked_with_one_warning(make_scenario, caplog) -> None:
    folder, _ = make_scenario(sequence_lengths=(14, 12))
    for k in (2, 5, 6):
        (folder / "unit2" / "GPS_data" / f"gps_location_{k}.txt").write_text("0\n0\n")
    with caplog.at_level(logging.WARNING):
        dm = DeepSenseDataModule(
            folder.parent,
            inputs={"gps": "position"},
            targets={"beam": "beam_label"},
            past=3,
            future=1,
            val_fraction=0.0,
            test_fraction=0.0,
        )
        dm.setup()
    warned = [r.getMessage() for r in caplog.records if "no-fix" in r.getMessage()]
    assert len(warned) == 1 and "3 of 26 rows" in warned[0] and "'unit2_loc'" in warned[0]
    everything = torch.utils.data.ConcatDataset([d for d in dm.datasets.values() if len(d)])
    masked = 0
    for i in range(len(everything)):
        sample = everything[i]
        past_index = sample["index"] - 2 + torch.arange(3)
        no_fix = torch.isin(past_index, torch.tensor([3, 6, 7]))
        assert torch.equal(sample["mask"]["gps"], ~no_fix)
        assert sample["gps"].abs().max() < 100  # never 10,000 km away
        masked += int(no_fix.sum())
    assert masked > 0


# ------------------------------------------------------------------------------- gaps (silent case 4)


def test_windows_never_span_missing_rows_inside_a_pass(make_scenario) -> None:
    folder, _ = make_scenario(sequence_lengths=(14, 12))
    rows = rows_of(folder)
    for row in rows[8:15]:  # rows 8..14 of the first pass: index jumps from 7 to 50
        row[0] = str(int(row[0]) + 42)
    for row in rows[15:]:
        row[0] = str(int(row[0]) + 42)
    write_rows(folder, rows)
    dm = DeepSenseDataModule(
        folder.parent,
        inputs=INPUTS,
        targets={"beam": "beam_label"},
        past=3,
        future=2,
        val_fraction=0.0,
        test_fraction=0.0,
    )
    dm.setup()
    starts = dm.datasets["train"].starts
    index = dm.datasets["train"].index.numpy()
    for start in starts:
        np.testing.assert_array_equal(np.diff(index[start : start + 5]), 1)
    assert len(starts) == (7 - 4) + (7 - 4) + (12 - 4)


# ------------------------------------------------------------------------------- cache (silent case 5, 10)


def test_edit_with_restored_size_and_mtime_is_not_served_from_the_cache(make_scenario, tmp_path) -> None:
    folder, _ = make_scenario(sequence_lengths=(4,))
    cache = tmp_path / "cache"
    before = load_scenario_cached(folder, ["beam_power"], cache).fields["beam_power"][1].copy()
    path = power_file(folder, 1)
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace("0.", "9.", 1))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # rsync -t / cp -p
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    after = load_scenario_cached(folder, ["beam_power"], cache).fields["beam_power"][1]
    assert not np.array_equal(before, after)


def test_upgraded_reader_plugin_parses_again(make_scenario, tmp_path, monkeypatch) -> None:
    class PluginLabels(BeamLabelReader):
        calls = 0

        def read(self, table):  # noqa: ANN001, ANN202
            PluginLabels.calls += 1
            return super().read(table)

    PluginLabels.__module__ = "wmlm_fakeplugin.reader"
    reader, builtin = PluginLabels(), registry.get_reader
    monkeypatch.setattr(
        registry, "get_reader", lambda name: reader if name == "beam_label" else builtin(name)
    )
    monkeypatch.setattr("wmlm.data.deepsense.get_reader", registry.get_reader)
    version = {"v": "1.0"}
    monkeypatch.setattr(
        cache_module.metadata, "packages_distributions", lambda: {"wmlm_fakeplugin": ["fake"]}
    )
    monkeypatch.setattr(cache_module.metadata, "version", lambda name: version["v"])
    folder, _ = make_scenario(sequence_lengths=(4,))
    for v in ("1.0", "1.0", "1.1"):
        version["v"] = v
        cache_module._distribution_of.cache_clear()
        load_scenario_cached(folder, ["beam_label"], tmp_path / "cache")
    assert PluginLabels.calls == 2  # 1.0 parsed, 1.0 again from the cache, 1.1 parsed anew


def test_truncated_cache_file_is_rebuilt_with_one_warning(make_scenario, tmp_path, caplog) -> None:
    folder, truth = make_scenario(sequence_lengths=(6,))
    cache = tmp_path / "cache"
    load_scenario_cached(folder, ["beam_power"], cache)
    (npy,) = cache.rglob("beam_power@*.npy")
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        again = load_scenario_cached(folder, ["beam_power"], cache).fields["beam_power"]
    assert sum("damaged" in r.getMessage() for r in caplog.records) == 1
    np.testing.assert_allclose(again, truth["power"], atol=1e-7)
    caplog.clear()
    load_scenario_cached(folder, ["beam_power"], cache)
    assert not caplog.records  # rebuilt once, fine after


def test_unusable_cache_folder_names_wmlm_cache_dir(data_root, tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("WMLM_CACHE_DIR", str(blocker))
    err = fails(fit_args(data_root, tmp_path / "runs"), capsys)
    assert "WMLM_CACHE_DIR" in err and str(blocker) in err and blocker.read_text() == "x"


# ------------------------------------------------------------------------------- config (cases 6, 7, 11)


@pytest.mark.parametrize(
    ("option", "key"),
    [
        (["--data.init_args.past", "4"], "data.past=4 differs from model.past=5"),
        (["--data.init_args.future", "2"], "data.future=2 differs from model.future=3"),
        (["--data.init_args.future", "-1"], "data.future"),
        (["--data.init_args.past", "0"], "data.past"),
        (["--data.init_args.scenarios", "[scenario1, scenario1]"], "data.scenarios"),
    ],
)
def test_data_options_that_cannot_work_name_the_key(data_root, tmp_path, capsys, option, key) -> None:
    err = fails(fit_args(data_root, tmp_path / "runs", *option), capsys, code=2)
    assert key in err


def test_data_past_equal_to_the_model_is_fine(data_root, tmp_path, capsys) -> None:
    args = fit_args(data_root, tmp_path / "runs", "--data.init_args.past", "5", "--trainer.fast_dev_run", "1")
    assert main(args) == 0, capsys.readouterr().err


def test_single_pass_scenario_names_the_empty_split(make_scenario, tmp_path, capsys) -> None:
    folder, _ = make_scenario("scenario7", sequence_lengths=(30,))
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "scenario7" in err and "test split" in err and "'scenario7': 1" in err
    assert not list((tmp_path / "runs").rglob("*.ckpt"))  # refused before training


def test_too_few_passes_for_validation_is_one_warning(make_scenario, caplog) -> None:
    folder, _ = make_scenario(sequence_lengths=(14, 12, 16))
    with caplog.at_level(logging.WARNING):
        dm = DeepSenseDataModule(
            folder.parent, inputs=INPUTS, targets=TARGETS, val_fraction=0.1, past=3, future=1
        )
        dm.setup()
    assert len(dm.datasets["val"]) == 0 and len(dm.datasets["test"]) > 0
    assert sum("val split has no window" in r.getMessage() for r in caplog.records) == 1


# ------------------------------------------------------------------------------- folders (case 7, 8)


def test_csv_not_named_after_its_folder_is_read_with_one_info_line(make_scenario, caplog) -> None:
    folder, _ = make_scenario("scenario3", sequence_lengths=(5,))
    (folder / "scenario3.csv").rename(folder / "export.csv")
    with caplog.at_level(logging.INFO, logger="wmlm.data.table"):
        assert len(load_scenario(folder, ["beam_label"])) == 5
    assert sum("export.csv" in r.getMessage() for r in caplog.records) == 1


def test_folder_with_several_csvs_none_named_after_it_is_refused(data_root, tmp_path, capsys) -> None:
    folder = data_root / "scenario2"
    (folder / "scenario2.csv").rename(folder / "a.csv")
    (folder / "b.csv").write_text("x\n")
    err = fails(fit_args(data_root, tmp_path / "runs"), capsys)
    assert str(folder) in err and "'a.csv'" in err


def test_hidden_folders_are_never_scenarios(make_scenario) -> None:
    folder, _ = make_scenario(sequence_lengths=(5,))
    hidden = folder.parent / ".ipynb_checkpoints"
    hidden.mkdir()
    (hidden / "scenario1-checkpoint.csv").write_text((folder / "scenario1.csv").read_text())
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "scenario1-checkpoint.csv").write_text("broken")
    assert find_scenarios(folder.parent) == [folder]
    assert find_scenarios(folder) == [folder]


@pytest.mark.parametrize("kind", ["file", "devnull"])
def test_data_root_that_is_not_a_folder(tmp_path, capsys, kind) -> None:
    root = Path(os.devnull) if kind == "devnull" else tmp_path / "root.csv"
    if kind == "file":
        root.write_text("index\n")
    err = fails(fit_args(root, tmp_path / "runs"), capsys)
    assert f"data root {root} is not a folder" in err


@pytest.mark.parametrize("where", ["csv", "power"])
def test_fifo_is_refused_not_waited_for(make_scenario, tmp_path, capsys, where) -> None:
    folder, _ = make_scenario(sequence_lengths=(5, 5, 5))
    target = folder / "scenario1.csv" if where == "csv" else power_file(folder, 2)
    target.unlink()
    os.mkfifo(target)
    signal.alarm(60)  # a hang fails the test instead of stalling the suite
    try:
        err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    finally:
        signal.alarm(0)
    assert target.name in err and "regular file" in err


def test_huge_power_file_of_nul_bytes_quotes_no_content(make_scenario, tmp_path, capsys) -> None:
    folder, _ = make_scenario()
    with power_file(folder, 4).open("wb") as handle:
        handle.truncate(50_000_000)  # sparse: 50 MB of NUL bytes, instantly
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "mmWave_power_4.txt" in err and "row 5" in err and "50000000 bytes" in err and len(err) < 600


def test_small_power_file_of_nul_bytes_quotes_an_excerpt(make_scenario, tmp_path, capsys) -> None:
    folder, _ = make_scenario()
    power_file(folder, 4).write_bytes(b"\0" * 3000)
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "mmWave_power_4.txt" in err and "NUL" in err and len(err) < 600


@pytest.mark.parametrize(
    ("encode", "expected"),
    [
        (lambda text: text.encode("utf-16"), "UTF-16"),
        (lambda text: text.replace("index", "índex_é").encode("latin-1"), "line 1: byte 0xed"),
        (lambda text: text.encode("utf-16-le"), "NUL bytes"),
    ],
)
def test_csv_that_is_not_utf8_names_file_and_encoding(
    make_scenario, tmp_path, capsys, encode, expected
) -> None:
    folder, _ = make_scenario()
    csv_path = folder / "scenario1.csv"
    csv_path.write_bytes(encode(csv_path.read_text()))
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "scenario1.csv" in err and expected in err and "UTF-8" in err


def test_cell_beyond_the_csv_field_limit_names_file_and_line(make_scenario, tmp_path, capsys) -> None:
    folder, _ = make_scenario()
    rows = rows_of(folder)
    rows[3][1] = "x" * 200_000
    write_rows(folder, rows)
    err = fails(fit_args(folder.parent, tmp_path / "runs"), capsys)
    assert "scenario1.csv, line 4" in err and "field larger than field limit" in err and len(err) < 600


# ------------------------------------------------------------------------------- images (case 9)


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header declares ``width x height`` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("side", "expected"), [(10000, "declares 10000x10000 pixels"), (20000, "could be decompression bomb")]
)
def test_png_declaring_a_huge_size_is_refused_before_decoding(make_scenario, side, expected) -> None:
    folder, _ = make_scenario(sequence_lengths=(3,))
    rows = rows_of(folder)
    rows[0].append("unit1_rgb")
    for k, row in enumerate(rows[1:]):
        if k == 1:
            (folder / f"frame_{k}.png").write_bytes(png_declaring(side, side))
        else:
            Image.new("RGB", (96, 54)).save(folder / f"frame_{k}.png")
        row.append(f"./frame_{k}.png")
    write_rows(folder, rows)
    with pytest.raises(DataError, match=rf"row 2 .*'unit1_rgb'.*frame_1.png.*{expected}"):
        ImageReader().read(ScenarioTable.from_folder(folder))


def test_image_limit_follows_the_output_size() -> None:
    assert ImageReader((64, 64)).max_source_pixels() >= 960 * 540 * 4
    assert ImageReader((512, 512)).max_source_pixels() > ImageReader((64, 64)).max_source_pixels()
