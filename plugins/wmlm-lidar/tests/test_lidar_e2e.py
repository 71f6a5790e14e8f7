"""``wmlm fit`` with beam + lidar, the modality named in the config, on a DeepSense-layout fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from lidar_fixtures import lidar_plugin, logged_scalars, private_cache, write_scenario  # noqa: F401  # autouse fixtures
from wmlm import WMLM
from wmlm.cli import run

HERE = Path(__file__).parent
EXAMPLE = HERE.parent / "examples" / "beam_lidar.yaml"


def test_fit_beam_and_lidar_end_to_end(tmp_path: Path) -> None:
    write_scenario(tmp_path / "data" / "site", seed=1)
    cli = run(
        [
            "fit",
            "--config",
            str(HERE / "conf" / "beam_lidar.yaml"),
            "--data.init_args.root",
            str(tmp_path / "data"),
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert cli.trainer.current_epoch == 2  # one alignment epoch, one adaptation epoch
    assert "lidar" in cli.model.encoders
    metrics = cli.trainer.callback_metrics
    assert 0 <= float(metrics["test/beam/top1"]) <= 1
    scalars = logged_scalars(tmp_path / "runs")
    assert len(scalars["align/logit_scale/beam__lidar"]) == 2  # both training batches of stage 1
    assert np.isfinite(scalars["align/loss"]).all() and np.isfinite(scalars["val/align_loss"]).all()
    batch = next(iter(cli.datamodule.train_dataloader()))
    assert batch["lidar"].shape[2:] == (256, 3) and batch["lidar"].dtype.is_floating_point


def test_example_config_names_the_plugin() -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    assert config["data"]["class_path"] == "wmlm.data.simulated.SimulatedDataModule"
    assert "lidar" in config["data"]["init_args"]["sensors"]
    model = WMLM(**config["model"]["init_args"])
    assert set(model.encoders) == {"beam", "lidar"}
    assert model.data_fields()["inputs"]["lidar"] == "lidar"
