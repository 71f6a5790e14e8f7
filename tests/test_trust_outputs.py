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


# a trained model: wmlm export and wmlm predict ----------------------------------------------------------

CONF = Path(__file__).parent / "conf" / "beam_gps.yaml"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"data", "runs", "checkpoint"}`` of one tiny ``wmlm fit`` (``tests/conf/beam_gps.yaml``)."""
    from wmlm.cli import run
    from wmlm.model.logger import RunLogger

    root = tmp_path_factory.mktemp("fitted")
    for seed, name in enumerate(("scenario1", "scenario2", "scenario3")):
        write_scenario(root / "data" / name, seed=seed)
    with pytest.MonkeyPatch.context() as patch:  # the autouse cache fixture is per test, this is not
        patch.setenv("WMLM_CACHE_DIR", str(root / "cache"))
        argv = ["fit", "--config", str(CONF), "--data.init_args.root", str(root / "data")]
        cli = run([*argv, "--trainer.default_root_dir", str(root / "runs"), "--test_after_fit", "false"])
    # the CLI's default logger claims its run folder; it is where Lightning's would have been
    assert isinstance(cli.trainer.logger, RunLogger)
    assert Path(cli.trainer.log_dir) == root / "runs" / "lightning_logs" / "version_0"
    checkpoint = root / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    return {"data": root / "data", "runs": root / "runs", "checkpoint": checkpoint}


def export(fitted: dict[str, Path], out: Path, *extra: str) -> int:
    argv = ["export", "--ckpt", str(fitted["checkpoint"]), "--format", "safetensors", "--out", str(out)]
    return main([*argv, *extra])


def test_export_safetensors_holds_the_checkpoints_tensors_and_config(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import torch
    import yaml
    from safetensors import safe_open
    from safetensors.torch import load_file

    out = tmp_path / "shared"
    assert export(fitted, out) == 0
    assert "model.safetensors" in capsys.readouterr().out
    checkpoint = torch.load(fitted["checkpoint"], map_location="cpu", weights_only=True)
    tensors = load_file(out / "model.safetensors")
    assert sorted(tensors) == sorted(checkpoint["state_dict"])  # the file keeps keys sorted
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(tensors[key], value), key
    with safe_open(out / "model.safetensors", framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == "wmlm" and metadata["source"] == "last.ckpt" and metadata["wmlm_version"]
    config = yaml.safe_load((out / "model.yaml").read_text())
    assert config["class_path"] == "wmlm.model.wmlm.WMLM"
    expected = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    assert config["init_args"] == expected
    assert marker_verb(out) == "export"
    assert sorted(p.name for p in out.iterdir()) == [MARKER_FILE, "model.safetensors", "model.yaml"]


def test_export_out_rules(fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    refused(capsys, export(fitted, a_file, "--overwrite"), a_file)
    refused(capsys, export(fitted, a_file / "sub"), a_file)  # cannot be created: its parent is a file
    assert a_file.read_text() == "mine"
    results = tmp_path / "results"  # a user's folder, not an export
    results.mkdir()
    (results / "model.yaml").write_text("mine")
    err = refused(capsys, export(fitted, results, "--overwrite"), results)
    assert "even with --overwrite" in err and (results / "model.yaml").read_text() == "mine"
    assert sorted(p.name for p in results.iterdir()) == ["model.yaml"]
    # an earlier export: refused without --overwrite, replaced with it; a user's file beside it stays
    out = tmp_path / "shared"
    assert export(fitted, out) == 0
    (out / "README.md").write_text("notes")
    refused(capsys, export(fitted, out), out, "--overwrite")
    assert export(fitted, out, "--overwrite") == 0
    assert (out / "README.md").read_text() == "notes" and (out / "model.safetensors").is_file()


def predict(fitted: dict[str, Path], tmp_path: Path, out: Path) -> int:
    argv = ["predict", "--config", str(CONF), "--data.init_args.root", str(fitted["data"])]
    argv += ["--trainer.default_root_dir", str(tmp_path / "runs"), "--ckpt_path", str(fitted["checkpoint"])]
    return main([*argv, "--predictions_dir", str(out)])


def test_predict_folder_is_checked_before_the_prediction_pass(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wmlm.model.wmlm import WMLM

    earlier = tmp_path / "earlier"  # results of an earlier run, without a marker
    earlier.mkdir()
    (earlier / "scenario1_beam_t1.csv").write_text("index,top-1 beam\n1,5\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the prediction pass ran before the output folder was checked")

    monkeypatch.setattr(WMLM, "predict_step", never)
    refused(capsys, predict(fitted, tmp_path, earlier), earlier, "scenario1_beam_t1.csv")
    assert sorted(p.name for p in earlier.iterdir()) == ["scenario1_beam_t1.csv"]
    refused(capsys, predict(fitted, tmp_path, a_file), a_file)
    refused(capsys, predict(fitted, tmp_path, a_file / "predictions"), a_file)
    assert a_file.read_text() == "x"


def test_predict_writes_one_run_per_folder(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "predictions"
    assert predict(fitted, tmp_path, out) == 0
    first = snapshot(out)
    assert marker_verb(out) == "predict" and any(name.endswith("_beam_t1.csv") for name in first)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]  # no staging left
    refused(capsys, predict(fitted, tmp_path, out), out)
    assert snapshot(out) == first


def test_exported_safetensors_and_yaml_rebuild_the_model_for_wmlm_test(
    fitted: dict[str, Path], tmp_path: Path
) -> None:
    from wmlm.cli import run

    out = tmp_path / "shared"
    assert export(fitted, out) == 0
    common = ["test", "--config", str(CONF), "--data.init_args.root", str(fitted["data"])]
    common += ["--trainer.default_root_dir", str(tmp_path / "eval")]
    original = run([*common, "--ckpt_path", str(fitted["checkpoint"])]).trainer.callback_metrics
    shared = run([*common, "--model", str(out / "model.yaml"), "--ckpt_path", str(out / "model.safetensors")])
    again = shared.trainer.callback_metrics
    assert set(again) == set(original)
    for key, value in original.items():
        assert float(again[key]) == pytest.approx(float(value), abs=1e-6), key
