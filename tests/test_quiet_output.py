"""A normal run prints what the user needs: no Lightning tips, no deprecation noise, no false messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_e2e import CONF

from wmlm.cli import main


def test_a_quickstart_sized_run_is_quiet_and_draws_its_pictures(
    data_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    config = tmp_path / "no_max_epochs.yaml"
    # like examples/quickstart.yaml: trainer.max_epochs not set, the model decides
    text = (CONF / "beam_gps.yaml").read_text().replace("  max_epochs: 2\n", "")
    assert "max_epochs" not in text
    config.write_text(text)
    code = main(
        [
            "fit",
            "--config",
            str(config),
            "--data.init_args.root",
            str(data_root),
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
            "--test_baselines",
            "[RepeatLastBeam, KinematicBaseline]",
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0
    # under pytest, warnings are recorded instead of printed: count them as printed
    printed = out + err + "\n".join(str(w.message) for w in recwarn)
    for noise in ("Tip", "deprecated", "`max_epochs` was not set", "will override existing callbacks"):
        assert noise not in printed, (noise, printed)
    assert "test results of" in out and "top1" in out
    # the baselines beside the model, on the same test windows
    rows = [
        line.split("│")[1].strip() for line in out.split("on the same windows")[1].splitlines() if "│" in line
    ]
    assert rows == ["wmlm", "RepeatLastBeam", "KinematicBaseline"]
    assert max(len(line) for line in out.splitlines() if "│" in line) <= 80
    # the pictures: beam figures and the aligned space's projector in TensorBoard, PNGs beside the test
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run_dir,) = (tmp_path / "runs" / "lightning_logs").glob("version_*")
    images: set[str] = set()
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
        accumulator.Reload()
        images |= set(accumulator.Tags()["images"])
    assert {"val/beam/tracks", "val/beam/topk", "val/beam/offsets"} <= images
    assert (run_dir / "projector_config.pbtxt").is_file()
    assert "align/embeddings" in (run_dir / "projector_config.pbtxt").read_text()
    assert {p.name for p in (run_dir / "figures").glob("*.png")} == {
        "test_beam_offsets.png",
        "test_beam_tracks.png",
        "test_beam_topk.png",
    }
