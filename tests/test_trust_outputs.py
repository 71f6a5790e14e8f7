"""Writing verbs never delete or mix what they did not write (issue 11): the marker-file overwrite policy of
``wmlm.outputs`` through the real command line, the atomic-write helper, ``wmlm export --format safetensors``
and run folders claimed atomically.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from conftest import write_scenario

from wmlm.cli import main
from wmlm.errors import OutputError
from wmlm.outputs import (
    MARKER_FILE,
    PARTIAL_SUFFIX,
    atomic_write,
    atomic_write_text,
    marker_verb,
    prepare_output_dir,
    write_marker,
)

SYNTH = ["--sequences", "2", "--sensors", "none"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys: pytest.CaptureFixture, code: int, *named: object) -> str:
    """Assert a one-message refusal with exit 1 naming ``named``; returns stderr."""
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and "wmlm: error:" in err
    for thing in named:
        assert str(thing) in err, err
    return err


# the helpers -------------------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as stream:
        stream.write(b"half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with atomic_write(path) as stream:
        stream.write(b"new")
    assert path.read_text() == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]


def test_prepare_output_dir_rules(tmp_path: Path) -> None:
    assert prepare_output_dir(tmp_path / "new" / "deeper", "export", overwrite=False) is False
    assert not (tmp_path / "new").exists()  # a check creates nothing
    (tmp_path / "empty").mkdir()
    assert prepare_output_dir(tmp_path / "empty", "export", overwrite=False) is False
    mine = tmp_path / "mine"
    mine.mkdir()
    write_marker(mine, "export")
    assert marker_verb(mine) == "export"
    assert prepare_output_dir(mine, "export", overwrite=True) is True
    with pytest.raises(OutputError, match="pass --overwrite"):
        prepare_output_dir(mine, "export", overwrite=False)
    with pytest.raises(OutputError, match="output of wmlm export, not of wmlm predict"):
        prepare_output_dir(mine, "predict", overwrite=None)
    (mine / MARKER_FILE).write_text("not json")  # a broken marker is no marker
    with pytest.raises(OutputError, match="not written by wmlm export"):
        prepare_output_dir(mine, "export", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a folder"):
        prepare_output_dir(tmp_path / "file", "export", overwrite=True)
    with pytest.raises(OutputError, match="file is a file, not a folder"):
        prepare_output_dir(tmp_path / "file" / "sub", "export", overwrite=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_permission_is_refused_before_work(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="no permission"):
            prepare_output_dir(locked / "out", "export", overwrite=False)
    finally:
        locked.chmod(0o700)


# wmlm data synth ----------------------------------------------------------------------------------------


def test_synth_overwrite_refuses_a_real_scenario_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "data"
    real = out / "night"  # a measured scenario that happens to carry a preset's name
    write_scenario(real)
    (real / "unit1" / "camera_data").mkdir()
    (real / "unit1" / "camera_data" / "image_1.png").write_bytes(b"\x89PNG measured")
    before = snapshot(real)
    argv = ["data", "synth", "--out", str(out), "--scenarios", "night", *SYNTH]
    err = refused(capsys, main([*argv, "--overwrite"]), real)
    assert "even with --overwrite" in err
    assert snapshot(real) == before
    refused(capsys, main(argv), real)
    assert snapshot(real) == before


def test_synth_refuses_all_before_simulating_any(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "data"
    (out / "suburban").mkdir(parents=True)
    (out / "suburban" / "notes.txt").write_text("mine")
    argv = ["data", "synth", "--out", str(out), "--scenarios", "night,suburban", *SYNTH, "--overwrite"]
    refused(capsys, main(argv), out / "suburban", "notes.txt")
    assert sorted(p.name for p in out.iterdir()) == ["suburban"]  # night was not written either


def test_synth_overwrite_replaces_its_own_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "data"
    argv = ["data", "synth", "--out", str(out), "--scenarios", "night", *SYNTH]
    assert main(argv) == 0
    assert marker_verb(out / "night") == "data synth"
    refused(capsys, main(argv), out / "night", "--overwrite")
    (out / "night" / "notes.txt").write_text("mine")
    assert main([*argv, "--overwrite", "--seed", "3"]) == 0
    assert (out / "night" / "notes.txt").read_text() == "mine"  # overwrite removes only what it wrote
    assert json.loads((out / "night" / "simulation.json").read_text())["seed"] == 3
    # a folder written before markers existed is recognised by its simulation.json
    (out / "night" / MARKER_FILE).unlink()
    assert main([*argv, "--overwrite"]) == 0


def test_synth_out_that_cannot_be_created(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a_file").write_text("x")
    argv = ["data", "synth", "--out", str(tmp_path / "a_file" / "data"), "--scenarios", "night", *SYNTH]
    refused(capsys, main(argv), tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "x"


def test_synth_bad_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["data", "synth", "--out", str(tmp_path / "d")]
    assert main([*base, "--scenarios", "atlantis"]) == 2
    assert "atlantis" in capsys.readouterr().err
    assert main([*base, "--sensors", "radar"]) == 2
    assert "radar" in capsys.readouterr().err
    assert main([*base, "--sequences", "0"]) == 2
    assert "--sequences" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


# run folders --------------------------------------------------------------------------------------------


def test_two_loggers_started_at_once_claim_different_versions(tmp_path: Path) -> None:
    from wmlm.model.logger import RunLogger

    loggers = [RunLogger(save_dir=tmp_path) for _ in range(6)]
    start = threading.Barrier(len(loggers))
    versions: list[int] = []

    def claim(logger: RunLogger) -> None:
        start.wait()
        versions.append(int(logger.version))

    threads = [threading.Thread(target=claim, args=(logger,)) for logger in loggers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(6))
    assert sorted(p.name for p in (tmp_path / "lightning_logs").iterdir()) == [
        f"version_{i}" for i in range(6)
    ]


def test_a_stale_listing_still_claims_a_fresh_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    from wmlm.model.logger import RunLogger

    # both runs listed the folder before either created its version: Lightning alone gives both 0
    monkeypatch.setattr(TensorBoardLogger, "_get_next_version", lambda self: 0)
    first, second = RunLogger(save_dir=tmp_path), RunLogger(save_dir=tmp_path)
    assert (first.version, second.version) == (0, 1)
