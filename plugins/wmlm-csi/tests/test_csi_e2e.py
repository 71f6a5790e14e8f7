"""``wmlm fit`` with beam + csi and the beam and csi heads, all named in the config, on a fixture."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml
from csi_fixtures import csi_plugin, logged_scalars, private_cache, write_scenario  # noqa: F401  # autouse fixtures
from wmlm import WMLM
from wmlm.cli import run

HERE = Path(__file__).parent
EXAMPLE = HERE.parent / "examples" / "beam_csi.yaml"


def test_fit_beam_and_csi_end_to_end(tmp_path: Path) -> None:
    write_scenario(tmp_path / "data" / "site", seed=1)
    common = [
        "--config",
        str(HERE / "conf" / "beam_csi.yaml"),
        "--data.init_args.root",
        str(tmp_path / "data"),
    ]
    cli = run(["fit", *common, "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert cli.trainer.current_epoch == 2  # one alignment epoch, one adaptation epoch
    assert "csi" in cli.model.encoders and "csi" in cli.model.heads
    metrics = cli.trainer.callback_metrics
    assert 0 <= float(metrics["test/beam/top1"]) <= 1
    assert np.isfinite(float(metrics["test/csi/nmse_db"]))
    scalars = logged_scalars(tmp_path / "runs")
    assert len(scalars["align/logit_scale/beam__csi"]) == 2  # both training batches of stage 1
    for tag in ("train/csi/loss", "val/csi/nmse_db", "val/csi/nmse_db_t1", "val/csi/nmse_db_t3"):
        assert np.isfinite(scalars[tag]).all(), tag

    # predict writes the forecast power change per future step
    best = cli.trainer.checkpoint_callback.best_model_path
    out = tmp_path / "predictions"
    run(
        [
            "predict",
            *common,
            "--trainer.default_root_dir",
            str(tmp_path / "eval"),
            "--ckpt_path",
            best,
            "--predictions_dir",
            str(out),
        ]
    )
    files = sorted(out.glob("site_csi_t*.csv"))
    assert [f.name for f in files] == ["site_csi_t1.csv", "site_csi_t2.csv", "site_csi_t3.csv"]
    rows = list(csv.DictReader(files[0].open()))
    assert len(rows) == len(cli.datamodule.datasets["test"])
    assert list(rows[0]) == ["index", "power change (dB)"]
    assert all(np.isfinite(float(row["power change (dB)"])) for row in rows)


def test_example_config_names_the_plugin() -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    assert config["data"]["class_path"] == "wmlm.data.simulated.SimulatedDataModule"
    assert "csi" in config["data"]["init_args"]["sensors"]
    model = WMLM(**config["model"]["init_args"])
    assert set(model.encoders) == {"beam", "csi"} and set(model.heads) == {"beam", "csi"}
    assert model.data_fields() == {
        "inputs": {"beam": "beam_power", "csi": "csi"},
        "targets": {"beam": "beam_label", "csi": "csi"},
        "past": model.past,
        "future": model.future,
    }
