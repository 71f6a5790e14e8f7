"""Checkpoints from anyone are safe to try: no code runs, no URL is fetched, every failure is one message.

Every test drives the real command line (``main([...])``) and checks the exit code, the printed message and
that nothing ran (a marker file a payload would write never appears).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from conftest import write_scenario
from test_cli_e2e import cli_args as args

from wmlm.cli import main
from wmlm.model.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``(data root, last.ckpt)`` of one tiny finished fit, shared by the tests of this module."""
    base = tmp_path_factory.mktemp("trained")
    write_scenario(base / "data" / "scenario1", seed=1)
    write_scenario(base / "data" / "scenario2", seed=2, sequence_lengths=(15, 12, 14))
    old = os.environ.get("WMLM_CACHE_DIR")
    os.environ["WMLM_CACHE_DIR"] = str(base / "cache")
    try:
        assert main(args("fit", base / "data", base / "runs", "--test_after_fit", "false")) == 0
    finally:
        if old is None:
            os.environ.pop("WMLM_CACHE_DIR")
        else:
            os.environ["WMLM_CACHE_DIR"] = old
    (last,) = (base / "runs").glob("**/checkpoints/last.ckpt")
    yield base / "data", last


class Payload:
    """Unpickling this runs code: it writes ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.path)!r}, 'w').write('ran')",))


def evil_checkpoint(tmp_path: Path, base: Path) -> tuple[Path, Path]:
    """A real checkpoint with a payload added: ``(checkpoint, marker the payload would write)``."""
    marker = tmp_path / "payload_ran"
    checkpoint = torch.load(base, weights_only=True)
    checkpoint["extra"] = Payload(marker)
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    return path, marker


def assert_one_message(err: str, *names: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("wmlm: error:")]
    assert len(lines) == 1, err
    for name in names:
        assert name in err, (name, err)


@pytest.mark.parametrize("verb", ["fit", "test", "predict"])
def test_remote_ckpt_path_is_refused_for_every_verb(
    verb: str, trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, _ = trained
    url = "http://127.0.0.1:9/x.ckpt"
    assert main(args(verb, root, tmp_path / "runs", "--ckpt_path", url)) == 1
    assert_one_message(capsys.readouterr().err, url, "local files only", "--allow_remote_checkpoints")


def test_remote_init_from_and_export_are_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, _ = trained
    url = "https://example.invalid/pretrained.ckpt"
    assert main(args("fit", root, tmp_path / "runs", "--model.init_args.init_from", url)) == 1
    assert_one_message(capsys.readouterr().err, url, "local files only")
    assert main(["export", "--ckpt", url, "--out", str(tmp_path / "exported")]) == 1
    assert_one_message(capsys.readouterr().err, url)
    assert not (tmp_path / "exported").exists()


def test_opting_in_to_urls_still_never_unpickles_code(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    evil, marker = evil_checkpoint(tmp_path, last)
    url = evil.resolve().as_uri()  # file://... : a URL, read through fsspec like any remote file
    code = main(args("test", root, tmp_path / "runs", "--ckpt_path", url, "--allow_remote_checkpoints"))
    assert code == 1
    assert_one_message(capsys.readouterr().err, url, "never runs")
    assert not marker.exists()
    assert "WMLM_ALLOW_REMOTE_CHECKPOINTS" not in os.environ  # the opt-in lasts one command


@pytest.mark.parametrize("verb", ["test", "predict", "fit"])
def test_a_pickle_that_runs_code_is_refused(
    verb: str, trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    evil, marker = evil_checkpoint(tmp_path, last)
    assert main(args(verb, root, tmp_path / "runs", "--ckpt_path", str(evil))) == 1
    assert_one_message(capsys.readouterr().err, str(evil), "cannot be read safely")
    assert not marker.exists()


def test_init_from_and_export_refuse_a_pickle_that_runs_code(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    evil, marker = evil_checkpoint(tmp_path, last)
    assert main(args("fit", root, tmp_path / "runs", "--model.init_args.init_from", str(evil))) == 1
    assert_one_message(capsys.readouterr().err, str(evil))
    assert main(["export", "--ckpt", str(evil), "--out", str(tmp_path / "exported")]) == 1
    assert_one_message(capsys.readouterr().err, str(evil))
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["random bytes", "cut in half", "a folder", "missing"])
def test_unusable_checkpoint_files_are_named(
    damage: str, trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    path = tmp_path / "bad.ckpt"
    if damage == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif damage == "cut in half":
        data = last.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "a folder":
        path.mkdir()
    assert main(args("test", root, tmp_path / "runs", "--ckpt_path", str(path))) == 1
    assert_one_message(capsys.readouterr().err, str(path))


HELPERS = """
open({marker!r}, "w").write("imported")
from wmlm import WMLM


class Mine(WMLM):
    pass
"""


def checkpoint_naming(tmp_path: Path, last: Path, where: str) -> tuple[Path, Path]:
    """A checkpoint whose hyperparameters name ``helpers.Mine``, with ``helpers.py`` importable beside it."""
    marker = tmp_path / "helpers_imported"
    (tmp_path / "helpers.py").write_text(HELPERS.format(marker=str(marker)))
    checkpoint = torch.load(last, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    if where == "model":
        hparams["_class_path"] = "helpers.Mine"
    else:
        hparams["heads"] = [*list(hparams["heads"]), {"class_path": "helpers.Mine", "init_args": {}}]
    path = tmp_path / "named.ckpt"
    torch.save(checkpoint, path)
    return path, marker


@pytest.mark.parametrize("where", ["model", "heads"])
def test_classes_named_by_a_checkpoint_are_not_imported(
    where: str,
    trained: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, last = trained
    path, marker = checkpoint_naming(tmp_path, last, where)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m wmlm` run beside the checkpoint would
    assert main(args("test", root, tmp_path / "runs", "--ckpt_path", str(path))) == 1
    key = "hyper_parameters._class_path" if where == "model" else "hyper_parameters.heads[1].class_path"
    assert_one_message(capsys.readouterr().err, key, "helpers.Mine", "--trust_checkpoint_classes")
    assert not marker.exists() and "helpers" not in sys.modules
    assert main(["export", "--ckpt", str(path), "--out", str(tmp_path / "exported")]) == 1
    assert_one_message(capsys.readouterr().err, "helpers.Mine")
    assert not marker.exists() and "helpers" not in sys.modules


def test_trust_flag_lets_a_checkpoint_name_its_class(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, last = trained
    path, marker = checkpoint_naming(tmp_path, last, "model")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code = main(
            args("test", root, tmp_path / "runs", "--ckpt_path", str(path), "--trust_checkpoint_classes")
        )
        assert code == 0 and marker.exists()
    finally:
        sys.modules.pop("helpers", None)


def test_test_says_which_typed_options_the_checkpoint_replaces(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    code = main(
        args("test", root, tmp_path / "runs", "--ckpt_path", str(last), "--model.init_args.dropout", "0.3")
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "the checkpoint's model options replace yours" in err and "dropout: 0.3 -> 0.1" in err
    assert "lr:" not in err  # options left at their defaults are not the user's


def test_one_last_checkpoint_holds_the_final_weights(trained: tuple[Path, Path]) -> None:
    _, last = trained
    assert [p.name for p in last.parent.glob("last*.ckpt")] == ["last.ckpt"]
    checkpoint = read_checkpoint(last)
    # tests/conf/beam_gps.yaml: 2 epochs of 3 training batches
    assert checkpoint["global_step"] == 6 and checkpoint["epoch"] == 1


def test_last_means_the_newest_run_of_the_same_configuration(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    runs = last.parents[3]  # .../runs/lightning_logs/version_0/checkpoints/last.ckpt
    # another configuration in the same folder is never picked, by any verb
    other = ("--model.init_args.embed_dim", "32")
    assert main(args("test", root, runs, "--ckpt_path", "last", *other)) == 1
    assert_one_message(capsys.readouterr().err, "--ckpt_path last", "other configurations left alone")
    assert (
        main(
            args(
                "predict", root, runs, "--ckpt_path", "last", *other, "--predictions_dir", str(tmp_path / "p")
            )
        )
        == 1
    )
    capsys.readouterr()
    # the same configuration finds the finished run
    assert main(args("test", root, runs, "--ckpt_path", "last")) == 0
    assert f"--ckpt_path last: {last}" in capsys.readouterr().err


def test_fit_last_of_another_configuration_starts_afresh(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    runs = tmp_path / "runs"
    runs.mkdir()
    old = runs / "lightning_logs" / "version_0"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "last.ckpt").write_bytes(last.read_bytes())
    (old / "config.yaml").write_text(yaml.safe_dump({"model": {"other": 1}, "data": {}}))
    code = main(
        args(
            "fit", root, runs, "--ckpt_path", "last", "--test_after_fit", "false", "--trainer.max_epochs", "1"
        )
    )
    assert code == 0
    assert "training starts afresh" in capsys.readouterr().err


def test_safetensors_weights_evaluate_like_the_checkpoint(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from wmlm.cli import run

    root, last = trained
    checkpoint = read_checkpoint(last)
    shared = tmp_path / "shared"
    shared.mkdir()
    save_file({k: v.contiguous() for k, v in checkpoint["state_dict"].items()}, shared / "model.safetensors")
    config = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    (shared / "model.yaml").write_text(yaml.safe_dump({"class_path": "wmlm.WMLM", "init_args": config}))
    reference = run(args("test", root, tmp_path / "a", "--ckpt_path", str(last))).trainer.callback_metrics
    from_safetensors = run(
        args("test", root, tmp_path / "b", "--ckpt_path", str(shared / "model.safetensors"))
    ).trainer.callback_metrics
    assert reference and {k: float(v) for k, v in reference.items()} == {
        k: float(v) for k, v in from_safetensors.items()
    }


def test_init_from_accepts_safetensors(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from wmlm.cli import run

    root, last = trained
    state = read_checkpoint(last)["state_dict"]
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    cli = run(
        args(
            "fit",
            root,
            tmp_path / "runs",
            "--model.init_args.init_from",
            str(path),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "0",
            "--test_after_fit",
            "false",
        )
    )
    loaded = cli.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_freezing_encoders_the_checkpoint_lacks_is_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, last = trained
    checkpoint = read_checkpoint(last)
    checkpoint["state_dict"] = {
        k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("encoders.gps")
    }
    partial = tmp_path / "no_gps.ckpt"
    torch.save(checkpoint, partial)
    extra = (
        "--model.init_args.init_from",
        str(partial),
        "--model.init_args.freeze_encoders",
        "true",
        "--model.init_args.align_epochs",
        "0",
    )
    assert main(args("fit", root, tmp_path / "runs", *extra)) == 2
    assert_one_message(capsys.readouterr().err, "encoders.gps", "random and frozen")
