"""Baselines: hand-checked predictions, and each one end to end through the CLI like WMLM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wmlm.cli import run
from wmlm.model.baselines import KinematicBaseline, PositionKNN, RepeatLastBeam, scores_around

CONF = Path(__file__).parent / "conf"


def power_peaking_at(beams: list[int]) -> torch.Tensor:
    """``[1, P, 64]`` power whose best beam at step p is ``beams[p]``."""
    power = torch.full((1, len(beams), 64), 0.01)
    for p, b in enumerate(beams):
        power[0, p, b] = 1.0
    return power


def test_scores_around_ranks_nearest_beams_first() -> None:
    top = scores_around(torch.tensor([10.2])).topk(3).indices[0].tolist()
    assert top == [10, 11, 9]


def test_repeat_last_predicts_the_last_best_beam_for_every_step() -> None:
    scores = RepeatLastBeam(future=3)({"beam": power_peaking_at([3, 5, 7, 9, 11])})
    assert scores.argmax(-1).tolist() == [[11, 11, 11]]


def test_kinematic_extrapolates_a_straight_line() -> None:
    scores = KinematicBaseline(future=3)({"beam": power_peaking_at([3, 5, 7, 9, 11])})
    assert scores.argmax(-1).tolist() == [[13, 15, 17]]
    clipped = KinematicBaseline(future=3)({"beam": power_peaking_at([55, 58, 61, 63, 63])})
    assert clipped.argmax(-1).max() == 63  # never beyond the codebook


def test_position_knn_votes_with_the_nearest_training_windows() -> None:
    knn = PositionKNN(future=2, k=2)
    gps = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[50.0, 0.0]]]).expand(-1, 5, -1)
    beams = torch.tensor([[4, 5], [4, 6], [40, 41]])
    knn.training_step({"gps": gps, "target": {"beam": beams}}, 0)
    knn.on_train_epoch_end()
    scores = knn({"gps": torch.tensor([[[0.4, 0.0]]]).expand(-1, 5, -1)})
    assert scores.argmax(-1).tolist() == [[4, 5]]  # step 1: both say 4; step 2: tie broken by the nearer one
    assert scores[0, 1].topk(2).indices.tolist() == [5, 6]
    reloaded = PositionKNN(future=2, k=2)
    reloaded.load_state_dict(knn.state_dict())
    torch.testing.assert_close(reloaded({"gps": gps}), knn({"gps": gps}))


@pytest.mark.parametrize(
    "model_args",
    [
        ["--config", str(CONF / "gru.yaml")],
        [
            "--config",
            str(CONF / "gru.yaml"),
            "--model",
            "wmlm.model.baselines.RepeatLastBeam",
            "--trainer.max_epochs",
            "1",
        ],
        [
            "--config",
            str(CONF / "gru.yaml"),
            "--model",
            "wmlm.model.baselines.KinematicBaseline",
            "--trainer.max_epochs",
            "1",
        ],
        [
            "--config",
            str(CONF / "gru.yaml"),
            "--model",
            "wmlm.model.baselines.PositionKNN",
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "1.0",
        ],
    ],
    ids=["gru", "repeat_last", "kinematic", "knn"],
)
def test_baselines_fit_and_test_through_the_cli(
    data_root: Path, tmp_path: Path, model_args: list[str]
) -> None:
    cli = run(
        [
            "fit",
            *model_args,
            "--data.init_args.root",
            str(data_root),
            "--trainer.default_root_dir",
            str(tmp_path),
        ]
    )
    metrics = cli.trainer.callback_metrics
    for key in ("test/beam/top1", "test/beam/top3_t3", "test/beam/dba"):
        assert 0.0 <= float(metrics[key]) <= 1.0
    assert float(metrics["test/beam/top3"]) >= float(metrics["test/beam/top1"])


def test_kinematic_beats_repeat_last_on_sweeping_beams(data_root: Path) -> None:
    from wmlm.data.datamodule import DeepSenseDataModule
    from wmlm.metrics import BeamTopK

    data = DeepSenseDataModule(data_root, inputs={"beam": "beam_power"}, targets={"beam": "beam_label"})
    data.setup()
    batch = data.datasets["train"].__getitems__(list(range(len(data.datasets["train"]))))
    accuracy = {}
    for name, model in {"repeat": RepeatLastBeam(), "kinematic": KinematicBaseline()}.items():
        metric = BeamTopK(3, step=2)
        metric.update(model(batch), batch["target"]["beam"])
        accuracy[name] = float(metric.compute())
    # the fixture's vehicles sweep 1.5-3 beams per sample: 3 steps ahead the last beam is 4-9 beams off
    assert accuracy["kinematic"] > 0.8 > 0.3 > accuracy["repeat"]
