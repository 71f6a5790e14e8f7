"""End to end through the CLI on tiny DeepSense-layout fixtures: fit (both stages), test, predict."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from wmlm.cli import main, run
from wmlm.errors import OutputError

CONF = Path(__file__).parent / "conf"
EXAMPLES = Path(__file__).parents[1] / "examples"


def cli_args(verb: str, root: Path, out: Path, *extra: str) -> list[str]:
    """``wmlm <verb>`` with the tiny test config on data ``root``, runs under ``out``."""
    return [
        verb,
        "--config",
        str(CONF / "beam_gps.yaml"),
        "--data.init_args.root",
        str(root),
        "--trainer.default_root_dir",
        str(out),
        *extra,
    ]


def fit_args(root: Path, out: Path, *extra: str) -> list[str]:
    return cli_args("fit", root, out, *extra)


def logged_scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar written to the run's TensorBoard event files: ``{tag: [values in step order]}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[float]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in accumulator.Scalars(tag))
    return scalars


@pytest.mark.parametrize("anchor", ["beam", "gps", "[beam, gps]"])
def test_fit_runs_both_stages_for_each_anchor(data_root: Path, tmp_path: Path, anchor: str) -> None:
    cli = run(fit_args(data_root, tmp_path / "runs", "--model.init_args.anchor", anchor))
    assert cli.trainer.current_epoch == 2  # align_epochs + adapt_epochs
    scalars = logged_scalars(tmp_path / "runs")
    # stage 1 logs the alignment loss, stage 2 the head losses; validation and the final test both ran
    for tag in (
        "align/loss",
        "train/loss",
        "train/beam/loss",
        "val/loss",
        "val/beam/top1_t1",
        "test/beam/dba",
    ):
        assert tag in scalars and all(v == v for v in scalars[tag]), tag
    assert len(scalars["align/loss"]) == 3 and len(scalars["train/loss"]) == 3  # 3 steps per stage
    assert len(scalars["val/beam/top1"]) == 2  # one validation per epoch
    for key in ("test/beam/top1_t1", "test/beam/top3_t3", "test/beam/dba"):
        assert 0.0 <= float(cli.trainer.callback_metrics[key]) <= 1.0
    checkpoints = list((tmp_path / "runs").rglob("*.ckpt"))
    assert {p.name for p in checkpoints} >= {"last.ckpt"} and len(checkpoints) >= 2


def test_fit_trains_the_encoders_only_in_stage_one_when_frozen(data_root: Path, tmp_path: Path) -> None:
    stage1 = run(
        fit_args(
            data_root, tmp_path / "s1", "--model.init_args.adapt_epochs", "0", "--test_after_fit", "false"
        )
    )
    ckpt = next((tmp_path / "s1").rglob("last.ckpt"))
    stage1_state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert stage1.trainer.current_epoch == 1
    stage2 = run(
        fit_args(
            data_root,
            tmp_path / "s2",
            "--model.init_args.align_epochs",
            "0",
            "--model.init_args.adapt_epochs",
            "2",
            "--model.init_args.freeze_encoders",
            "true",
            "--model.init_args.init_from",
            str(ckpt),
            "--test_after_fit",
            "false",
        )
    )
    model = stage2.model
    for key, value in model.state_dict().items():
        if key.startswith("encoders."):
            torch.testing.assert_close(value, stage1_state[key], msg=f"{key} moved although frozen")
    backbone_moved = any(
        not torch.equal(v, stage1_state[k])
        for k, v in model.state_dict().items()
        if k.startswith("backbone.")
    )
    assert backbone_moved


def test_test_and_predict_reproduce_and_write_challenge_csv(data_root: Path, tmp_path: Path) -> None:
    fitted = run(fit_args(data_root, tmp_path / "runs"))
    reported = {k: float(v) for k, v in fitted.trainer.callback_metrics.items() if k.startswith("test/")}
    best = fitted.trainer.checkpoint_callback.best_model_path
    common = [
        "--config",
        str(CONF / "beam_gps.yaml"),
        "--data.init_args.root",
        str(data_root),
        "--trainer.default_root_dir",
        str(tmp_path / "eval"),
        "--ckpt_path",
        best,
    ]
    tested = run(["test", *common])
    again = {k: float(v) for k, v in tested.trainer.callback_metrics.items() if k.startswith("test/")}
    assert again.keys() == reported.keys()
    for key, value in reported.items():
        assert again[key] == pytest.approx(value, abs=1e-6), key

    # the checkpoint alone rebuilds the model in Python (hyperparameters are plain config data)
    from wmlm import WMLM

    loaded = WMLM.load_from_checkpoint(best, weights_only=True).eval()
    batch = next(iter(tested.datamodule.test_dataloader()))
    tested.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["beam"], tested.model(batch)["beam"])

    out = tmp_path / "predictions"
    run(["predict", *common, "--predictions_dir", str(out)])
    num_test_windows = len(tested.datamodule.datasets["test"])
    files = sorted(out.glob("*_beam_t*.csv"))
    assert {f.name.split("_beam_")[1] for f in files} == {"t1.csv", "t2.csv", "t3.csv"}
    rows = [row for f in files if f.name.endswith("t1.csv") for row in csv.DictReader(f.open())]
    assert len(rows) == num_test_windows
    assert list(rows[0]) == ["index", "top-1 beam", "top-2 beam", "top-3 beam"]
    for row in rows:
        beams = [int(row[f"top-{k} beam"]) for k in (1, 2, 3)]
        assert all(1 <= b <= 64 for b in beams) and len(set(beams)) == 3
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    with pytest.raises(OutputError, match="already holds output of wmlm predict"):  # before the pass
        run(["predict", *common, "--predictions_dir", str(out)])
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_print_config_output_runs_as_is(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(fit_args(data_root, tmp_path / "runs", "--print_config")) == 0
    printed = capsys.readouterr().out
    config = tmp_path / "printed.yaml"
    config.write_text(printed)
    assert yaml.safe_load(printed)["model"]["class_path"] in ("wmlm.WMLM", "wmlm.model.wmlm.WMLM")
    assert main(["fit", "--config", str(config)]) == 0


def test_user_head_by_class_path(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    heads = "[beam, {class_path: custom_head.TurnHead, init_args: {tolerance: 2}}]"
    cli = run(
        fit_args(
            data_root,
            tmp_path / "runs",
            "--model.init_args.heads",
            heads,
            "--model.init_args.loss_weights",
            "{beam: 1.0, turn: 0.5}",
        )
    )
    assert type(cli.model.heads["turn"]).__name__ == "TurnHead"
    assert cli.model.heads["turn"].tolerance == 2
    metrics = cli.trainer.callback_metrics
    assert 0.0 <= float(metrics["test/turn/accuracy"]) <= 1.0
    assert "test/turn/loss" in metrics


def test_unknown_names_fail_listing_what_exists(data_root: Path, tmp_path: Path) -> None:
    with pytest.raises((KeyError, ValueError), match="unknown modality .radar.; available: beam, gps"):
        run(fit_args(data_root, tmp_path, "--model.init_args.modalities", "[beam, radar]"))
    with pytest.raises(ValueError, match="not among model.modalities"):
        run(fit_args(data_root, tmp_path, "--model.init_args.anchor", "image"))


def edge_args(root: Path, out: Path, *extra: str) -> list[str]:
    """``examples/edge_finetune.yaml`` shrunk to the tiny fixture."""
    return [
        "fit",
        "--config",
        str(EXAMPLES / "edge_finetune.yaml"),
        "--data.init_args.root",
        str(root),
        "--data.init_args.train_windows",
        "12",
        "--data.init_args.batch_size",
        "4",
        "--model.init_args.preset",
        "tiny",
        "--model.init_args.embed_dim",
        "16",
        "--model.init_args.adapt_epochs",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.default_root_dir",
        str(out),
        "--test_after_fit",
        "false",
        *extra,
    ]


@pytest.mark.parametrize("freeze_backbone", [True, False])
def test_edge_finetune_example_adapts_only_what_is_not_frozen(
    data_root: Path, tmp_path: Path, freeze_backbone: bool
) -> None:
    pretrain = run(
        edge_args(
            data_root,
            tmp_path / "pre",
            "--model.init_args.freeze_encoders",
            "false",
            "--model.init_args.lr",
            "0.01",
        )
    )
    ckpt = next((tmp_path / "pre").rglob("last.ckpt"))
    pretrained = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    tuned = run(
        edge_args(
            data_root,
            tmp_path / "tuned",
            "--model.init_args.init_from",
            str(ckpt),
            "--model.init_args.freeze_backbone",
            str(freeze_backbone).lower(),
        )
    )
    assert len(tuned.datamodule.datasets["train"]) == 12
    assert len(pretrain.datamodule.datasets["train"]) == 12
    moved = {k for k, v in tuned.model.state_dict().items() if not torch.equal(v, pretrained[k])}
    assert not {k for k in moved if k.startswith("encoders.")}
    assert {k for k in moved if k.startswith("heads.")}
    trunk_moved = {k for k in moved if k.startswith(("backbone.", "fusion."))}
    assert bool(trunk_moved) != freeze_backbone


def test_freezing_without_pretrained_weights_is_refused(data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set model.init_from"):
        run(edge_args(data_root, tmp_path, "--model.init_args.freeze_backbone", "true"))
