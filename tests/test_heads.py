"""Power, position and blockage heads: shapes, a tiny overfit, metrics against hand-computed values."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import write_scenario
from torch import Tensor

import wmlm.cli
from wmlm import registry
from wmlm.beams import power_to_relative, relative_to_power
from wmlm.heads.base import TaskHead
from wmlm.heads.blockage import BlockageHead
from wmlm.heads.position import PositionHead
from wmlm.heads.power import PowerHead, reference_peak
from wmlm.metrics_regression import MeanDistance, NormalizedBeamPower, PowerNMSEdB

HIDDEN, PAST, FUTURE, BATCH = 16, 3, 2, 8
CONF = Path(__file__).parent / "conf"


def built(head: TaskHead) -> TaskHead:
    head.build(HIDDEN, PAST, FUTURE)
    return head


def random_batch(seed: int = 0) -> dict:
    """Inputs and every target of the three heads for ``BATCH`` windows (``PAST`` in, ``FUTURE`` out)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "beam": torch.rand(BATCH, PAST, 64, generator=gen) + 1e-3,
        "gps": torch.randn(BATCH, PAST, 2, generator=gen) * 20.0,
        "target": {
            "power": torch.rand(BATCH, FUTURE, 64, generator=gen) + 1e-3,
            "position": torch.randn(BATCH, FUTURE, 2, generator=gen) * 20.0,
            "blockage": (torch.rand(BATCH, FUTURE, generator=gen) < 0.4).long(),
        },
    }


def test_heads_are_registered_by_name():
    assert registry.get_head("power") is PowerHead
    assert registry.get_head("position") is PositionHead
    assert registry.get_head("blockage") is BlockageHead


def test_target_keys_do_not_collide_with_inputs_or_each_other():
    fields = {}
    for head in (PowerHead, PositionHead, BlockageHead):
        for key, field in head.target_fields.items():
            assert fields.setdefault(key, field) == field
    assert fields == {"power": "beam_power", "position": "position", "blockage": "blockage"}


@pytest.mark.parametrize(
    ("head", "shape"),
    [
        (PowerHead(), (BATCH, FUTURE, 64)),
        (PositionHead(), (BATCH, FUTURE, 2)),
        (BlockageHead(), (BATCH, FUTURE)),
    ],
)
def test_output_shapes_and_predictions(head: TaskHead, shape: tuple[int, ...]):
    built(head)
    batch = random_batch()
    outputs = head(torch.randn(BATCH, PAST, HIDDEN), batch)
    assert outputs.shape == shape
    assert head.loss(outputs, batch).dim() == 0
    preds, target = head.metric_inputs(outputs, batch)
    assert preds.shape == target.shape
    for column in head.predictions(outputs).values():
        assert column.shape == (BATCH, FUTURE)


@pytest.mark.parametrize(
    "head",
    [
        PowerHead(dropout=0.0),
        PowerHead(dropout=0.0, residual=False),
        PositionHead(dropout=0.0),
        PositionHead(dropout=0.0, relative_to=None, loss="mse"),
        BlockageHead(dropout=0.0, pos_weight=2.0),
    ],
)
def test_loss_decreases_on_a_tiny_overfit(head: TaskHead):
    torch.manual_seed(0)
    built(head)
    batch = random_batch()
    hidden = torch.randn(BATCH, PAST, HIDDEN)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.03)
    first = head.loss(head(hidden, batch), batch).item()
    for _ in range(150):
        optimizer.zero_grad()
        loss = head.loss(head(hidden, batch), batch)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first


# ---------------------------------------------------------------------------------------- power head
def test_relative_power_space_round_trip_and_anchors():
    power = torch.tensor([[[1.0, 0.1, 0.001, 1e-6, 2.0]]])  # [1, 1, 5] linear
    peak = torch.ones(1, 1, 1)
    relative = power_to_relative(power, peak, floor_db=-30.0)
    # 0 dB -> 1, -10 dB -> 2/3, -30 dB -> 0, below the floor clipped to 0, +3.01 dB -> 1.1003
    expected = torch.tensor([[[1.0, 2 / 3, 0.0, 0.0, 1.0 + 10 * math.log10(2.0) / 30]]])
    torch.testing.assert_close(relative, expected)
    back = relative_to_power(relative, peak, floor_db=-30.0)
    torch.testing.assert_close(back, torch.tensor([[[1.0, 0.1, 0.001, 0.001, 2.0]]]))


def test_power_head_starts_from_the_last_measured_vector():
    head = built(PowerHead())
    batch = random_batch()
    outputs = head(torch.randn(BATCH, PAST, HIDDEN), batch)
    last = batch["beam"][:, -1:]
    # the residual layer starts at zero: the forecast is the last step, repeated, where above the floor
    linear = head.to_linear(outputs, batch)
    torch.testing.assert_close(linear, last.expand(-1, FUTURE, -1), rtol=1e-4, atol=0.0)
    assert torch.equal(head.predictions(outputs)["strongest beam"][:, 0], last[:, 0].argmax(-1) + 1)


def test_power_head_perfect_forecast_scores_best():
    head = built(PowerHead())
    batch = random_batch()
    # every target beam is within 30 dB of the reference peak, so the relative space loses nothing
    assert (batch["target"]["power"] / reference_peak(batch["beam"]) > 1e-3).all()
    outputs = head.target_relative(batch)
    assert head.loss(outputs, batch).item() == pytest.approx(0.0, abs=1e-12)
    metrics = head.metrics()
    metrics.update(*head.metric_inputs(outputs, batch))
    values = metrics.compute()
    assert set(values) == {"nmse_db", "nmse_db_t1", "nmse_db_t2", "norm_beam_power"} | {
        "norm_beam_power_t1",
        "norm_beam_power_t2",
    }
    assert values["nmse_db"] < -80.0
    assert values["norm_beam_power"] == pytest.approx(1.0)


def test_power_head_needs_its_reference_modality():
    head = built(PowerHead(reference="beam"))
    batch = random_batch()
    del batch["beam"]
    with pytest.raises(KeyError, match="reference='beam' is not in this batch"):
        head(torch.randn(BATCH, PAST, HIDDEN), batch)


def test_nmse_db_hand_computed():
    # [B=2, F=2, 2 beams]. Per-vector ||p_hat - p||^2 / ||p||^2:
    #   step t1: sample 0 truth [1, 1] pred [1, 2] -> 1/2; sample 1 truth [2, 0] pred [2, 0] -> 0
    #   step t2: sample 0 truth [1, 0] pred [0, 0] -> 1;   sample 1 truth [3, 4] pred [3, 4] -> 0
    # t1: 10 log10(0.25) = -6.0206 dB; t2: 10 log10(0.5) = -3.0103 dB; all: 10 log10(1.5 / 4) = -4.2597 dB
    target = torch.tensor([[[1.0, 1.0], [1.0, 0.0]], [[2.0, 0.0], [3.0, 4.0]]])
    preds = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[2.0, 0.0], [3.0, 4.0]]])
    expected = {0: 10 * math.log10(0.25), 1: 10 * math.log10(0.5), None: 10 * math.log10(1.5 / 4)}
    for step, value in expected.items():
        metric = PowerNMSEdB(step)
        metric.update(preds, target)
        assert metric.compute().item() == pytest.approx(value, abs=1e-5), step


def test_normalized_beam_power_hand_computed():
    # [B=2, F=2, 3 beams]: truth power, and scores whose argmax picks a beam
    #   t1: s0 picks beam 2 (power 2 of best 4) -> 0.5; s1 picks beam 0 (3 of 3) -> 1
    #   t2: s0 picks beam 1 (1 of 4) -> 0.25;         s1 picks beam 1 (1 of 2) -> 0.5
    target = torch.tensor([[[1.0, 4.0, 2.0], [4.0, 1.0, 0.0]], [[3.0, 1.0, 1.0], [2.0, 1.0, 0.5]]])
    preds = torch.tensor([[[0.0, 1.0, 5.0], [0.0, 9.0, 1.0]], [[7.0, 1.0, 1.0], [-1.0, 0.0, -2.0]]])
    expected = {0: 0.75, 1: 0.375, None: 2.25 / 4}
    for step, value in expected.items():
        metric = NormalizedBeamPower(step)
        metric.update(preds, target)
        assert metric.compute().item() == pytest.approx(value), step


# ---------------------------------------------------------------------------------------- position head
def zero_output_layer(head: TaskHead) -> None:
    torch.nn.init.zeros_(head.proj[-1].weight)
    torch.nn.init.zeros_(head.proj[-1].bias)


def test_position_head_predicts_displacement_from_the_last_gps_fix():
    head = built(PositionHead(relative_to="gps"))
    zero_output_layer(head)
    batch = random_batch()
    outputs = head(torch.randn(BATCH, PAST, HIDDEN), batch)
    # zero displacement: every future step sits at the last past position
    torch.testing.assert_close(outputs, batch["gps"][:, -1:].expand(-1, FUTURE, -1))


def test_position_head_is_absolute_without_a_position_input():
    head = built(PositionHead(relative_to="gps", scale_m=10.0))
    zero_output_layer(head)
    batch = random_batch()
    del batch["gps"]
    outputs = head(torch.randn(BATCH, PAST, HIDDEN), batch)
    assert torch.equal(outputs, torch.zeros(BATCH, FUTURE, 2))
    # smooth-L1 in units of scale_m: a 5 m error is 0.5 units -> 0.5 * 0.5^2 = 0.125; a 30 m one -> 3 - 0.5
    batch["target"]["position"] = torch.zeros(BATCH, FUTURE, 2)
    batch["target"]["position"][..., 0] = 5.0
    batch["target"]["position"][..., 1] = -30.0
    assert head.loss(outputs, batch).item() == pytest.approx((0.125 + 2.5) / 2)


def test_mean_distance_hand_computed():
    # [B=2, F=2, 2]: errors t1 = 5 m (3-4-5) and 0 m; t2 = 1 m and 13 m (5-12-13)
    target = torch.tensor([[[3.0, 4.0], [1.0, 1.0]], [[0.0, 0.0], [5.0, 12.0]]])
    preds = torch.tensor([[[0.0, 0.0], [1.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    expected = {0: 2.5, 1: 7.0, None: 19.0 / 4}
    for step, value in expected.items():
        metric = MeanDistance(step)
        metric.update(preds, target)
        assert metric.compute().item() == pytest.approx(value), step
    # accumulates over batches: a second batch with zero error halves the overall mean
    metric = MeanDistance()
    metric.update(preds, target)
    metric.update(target, target)
    assert metric.compute().item() == pytest.approx(19.0 / 8)


def test_position_head_metrics_are_in_metres():
    head = built(PositionHead())
    batch = random_batch()
    outputs = batch["target"]["position"] + torch.tensor([3.0, 4.0])  # every prediction 5 m off
    metrics = head.metrics()
    metrics.update(*head.metric_inputs(outputs, batch))
    values = metrics.compute()
    assert set(values) == {"distance_m", "distance_m_t1", "distance_m_t2"}
    for value in values.values():
        assert value.item() == pytest.approx(5.0, rel=1e-5)


# ---------------------------------------------------------------------------------------- blockage head
def logit(p: Tensor) -> Tensor:
    return torch.log(p / (1 - p))


def test_blockage_metrics_hand_computed():
    # [B=3, F=2] probabilities and labels; at threshold 0.5 the predictions are [[1, 0], [1, 0], [0, 1]]
    probs = torch.tensor([[0.9, 0.2], [0.6, 0.4], [0.1, 0.7]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]])
    # flattened: TP = 2 (0.9, 0.7), FP = 1 (0.6), FN = 2 (0.4, 0.1) -> F1 = 2*2 / (2*2 + 1 + 2) = 4/7
    # AUROC: positives {0.9, 0.4, 0.1, 0.7} over negatives {0.2, 0.6}: 2 + 1 + 0 + 2 = 5 of 8 pairs
    # accuracy: 3 of 6 right; t1 (0.9, 0.6, 0.1 vs 1, 0, 1): 1 of 3; t2 (0.2, 0.4, 0.7 vs 0, 1, 1): 2 of 3
    head = built(BlockageHead())
    batch = {"target": {"blockage": labels}}
    metrics = head.metrics()
    # the head's logits go through its metric_inputs (sigmoid), as during validation
    metrics.update(*head.metric_inputs(logit(probs), batch))
    values = {k: v.item() for k, v in metrics.compute().items()}
    assert values == pytest.approx(
        {"f1": 4 / 7, "auroc": 5 / 8, "accuracy": 0.5, "accuracy_t1": 1 / 3, "accuracy_t2": 2 / 3}
    )


def test_blockage_loss_is_bce_with_pos_weight():
    logits = torch.tensor([[0.0, 2.0]])
    batch = {"target": {"blockage": torch.tensor([[1, 0]])}}
    # BCE: label 1 at logit 0 -> ln 2 (weighted 3x), label 0 at logit 2 -> ln(1 + e^2)
    expected = (3 * math.log(2.0) + math.log(1 + math.exp(2.0))) / 2
    head = built(BlockageHead(pos_weight=3.0))
    assert head.loss(logits, batch).item() == pytest.approx(expected, rel=1e-6)
    plain = built(BlockageHead())
    assert plain.loss(logits, batch).item() == pytest.approx(
        (math.log(2.0) + math.log(1 + math.exp(2.0))) / 2, rel=1e-6
    )


# ---------------------------------------------------------------------------------------- end to end
def write_blockage_scenario(folder: Path, seed: int) -> None:
    """A conftest scenario plus a ``unit1_blockage`` column that alternates: 2 rows blocked in every 5."""
    write_scenario(folder, seed=seed)
    table = folder / f"{folder.name}.csv"
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for k, row in enumerate(rows):
        row["unit1_blockage"] = "1" if (k + seed) % 5 in (1, 2) else "0"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


CLASS_PATH_HEADS = (
    "[beam, {class_path: wmlm.heads.power.PowerHead, init_args: {floor_db: -25.0}},"
    " {class_path: wmlm.heads.position.PositionHead, init_args: {scale_m: 5.0, loss: mse}},"
    " {class_path: wmlm.heads.blockage.BlockageHead, init_args: {pos_weight: 1.5}}]"
)
HEAD_METRICS = {
    "beam": ("top1", "top1_t1", "dba"),
    "power": ("nmse_db", "nmse_db_t1", "nmse_db_t3", "norm_beam_power", "norm_beam_power_t2"),
    "position": ("distance_m", "distance_m_t1", "distance_m_t3"),
    "blockage": ("f1", "auroc", "accuracy", "accuracy_t1", "accuracy_t3"),
}


@pytest.mark.parametrize("heads", [None, CLASS_PATH_HEADS], ids=["by_name", "by_class_path"])
def test_multihead_fit_logs_every_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heads: str | None):
    root = tmp_path / "data"
    for seed, name in enumerate(("scenario1", "scenario2")):
        write_blockage_scenario(root / name, seed)
    clis = []
    real_run = wmlm.cli.run
    monkeypatch.setattr(wmlm.cli, "run", lambda args, **kw: clis.append(real_run(args, **kw)) or clis[-1])
    args = ["fit", "--config", str(CONF / "multihead.yaml"), "--data.root", str(root)]
    args += ["--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.fast_dev_run", "1"]
    if heads is not None:
        args += ["--model.init_args.heads", heads]
    assert wmlm.cli.main(args) == 0

    model, metrics = clis[0].model, clis[0].trainer.callback_metrics
    assert list(model.heads) == ["beam", "power", "position", "blockage"]
    if heads is not None:
        assert model.heads["power"].floor_db == -25.0 and model.heads["blockage"].pos_weight == 1.5
    assert model.data_fields()["targets"] == {
        "beam": "beam_label",
        "power": "beam_power",
        "position": "position",
        "blockage": "blockage",
    }
    weights = {"beam": 1.0, "power": 0.5, "position": 0.25, "blockage": 2.0}
    assert model.loss_weights == weights
    # the one training step's total loss is the weighted sum of the heads' losses
    weighted = sum(w * float(metrics[f"train/{h}/loss"]) for h, w in weights.items())
    assert float(metrics["train/loss"]) == pytest.approx(weighted, rel=1e-5)
    for head, names in HEAD_METRICS.items():
        assert math.isfinite(float(metrics[f"val/{head}/loss"])), head
        for name in names:
            value = float(metrics[f"val/{head}/{name}"])
            assert math.isfinite(value), f"val/{head}/{name}"
    assert 0.0 <= float(metrics["val/power/norm_beam_power"]) <= 1.0
    assert 0.0 <= float(metrics["val/blockage/auroc"]) <= 1.0
