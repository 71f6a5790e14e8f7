"""Beam metrics against hand-computed values, and the beam head's metric collection."""

from __future__ import annotations

import pytest
import torch

from wmlm.heads.beam import BeamHead
from wmlm.metrics import BeamTopK, DistanceBasedAccuracy

NUM_BEAMS = 8

# 4 samples x 2 future steps: the three best-ranked beams (best first) and the true beam.
RANKED = [
    [[2, 4, 6], [4, 0, 1]],
    [[3, 5, 1], [5, 3, 4]],
    [[1, 6, 0], [3, 2, 1]],
    [[0, 1, 2], [7, 5, 6]],
]
TARGET = torch.tensor([[2, 4], [5, 4], [0, 3], [7, 6]])

# Hand-computed from the table above.
# step t1 (targets 2, 5, 0, 7): sample 0 hit at rank 1; sample 1 at rank 2; sample 2 at rank 3; sample 3 never.
#   top1 = 1/4, top2 = 2/4, top3 = 3/4
#   DBA, delta=5, errors min(|pred - true| / 5, 1), running minimum over ranks:
#     s0 [0, 0, 0]   s1 [2/5, 0, 0]   s2 [1/5, 1/5, 0]   s3 [7/5->1, 1, 1]
#     Y1 = 1 - 1.6/4 = 0.6, Y2 = 1 - 1.2/4 = 0.7, Y3 = 1 - 1.0/4 = 0.75 -> DBA = 2.05/3
# step t2 (targets 4, 4, 3, 6): s0 rank 1; s1 rank 3; s2 rank 1; s3 rank 3.
#   top1 = 2/4, top2 = 2/4, top3 = 4/4
#     s0 [0, 0, 0]   s1 [1/5, 1/5, 0]   s2 [0, 0, 0]   s3 [1/5, 1/5, 0]
#     Y1 = 0.9, Y2 = 0.9, Y3 = 1.0 -> DBA = 2.8/3
# all steps (8 samples): top1 = 3/8, top2 = 4/8, top3 = 7/8
#     Y1 = 1 - 2.0/8 = 0.75, Y2 = 1 - 1.6/8 = 0.8, Y3 = 1 - 1.0/8 = 0.875 -> DBA = 2.425/3
TOPK_EXPECTED = {
    0: {1: 1 / 4, 2: 2 / 4, 3: 3 / 4},
    1: {1: 2 / 4, 2: 2 / 4, 3: 4 / 4},
    None: {1: 3 / 8, 2: 4 / 8, 3: 7 / 8},
}
Y_EXPECTED = {0: (0.6, 0.7, 0.75), 1: (0.9, 0.9, 1.0), None: (0.75, 0.8, 0.875)}
DBA_EXPECTED = {0: 2.05 / 3, 1: 2.8 / 3, None: 2.425 / 3}


def scores_from_ranking(ranked: list, num_beams: int = NUM_BEAMS) -> torch.Tensor:
    """``[B, F, num_beams]`` scores whose order puts ``ranked[b][f]`` first (3, 2, 1), the rest below 0."""
    batch, steps = len(ranked), len(ranked[0])
    scores = -torch.arange(1, num_beams + 1, dtype=torch.float32).repeat(batch, steps, 1) / 100.0
    for b in range(batch):
        for f in range(steps):
            for rank, beam in enumerate(ranked[b][f]):
                scores[b, f, beam] = float(len(ranked[b][f]) - rank)
    return scores


PREDS = scores_from_ranking(RANKED)


def test_scores_helper_ranks_as_written():
    assert PREDS.shape == (4, 2, NUM_BEAMS)
    assert PREDS.topk(3, dim=-1).indices.tolist() == RANKED


@pytest.mark.parametrize("step", [0, 1, None])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_topk_hand_computed(step, k):
    metric = BeamTopK(k, step)
    metric.update(PREDS, TARGET)
    assert metric.compute().item() == pytest.approx(TOPK_EXPECTED[step][k])


def test_topk_with_k_of_all_beams_is_one():
    metric = BeamTopK(NUM_BEAMS)
    metric.update(PREDS, TARGET)
    assert metric.compute().item() == 1.0


@pytest.mark.parametrize("step", [0, 1, None])
def test_dba_hand_computed(step):
    metric = DistanceBasedAccuracy(max_k=3, delta=5.0, step=step)
    metric.update(PREDS, TARGET)
    assert metric.compute().item() == pytest.approx(DBA_EXPECTED[step])


@pytest.mark.parametrize("step", [0, 1, None])
@pytest.mark.parametrize("max_k", [1, 2])
def test_dba_partial_means_give_each_y_k(step, max_k):
    # the score with max_k = K is the mean of Y_1 .. Y_K
    metric = DistanceBasedAccuracy(max_k=max_k, delta=5.0, step=step)
    metric.update(PREDS, TARGET)
    expected = sum(Y_EXPECTED[step][:max_k]) / max_k
    assert metric.compute().item() == pytest.approx(expected)


def test_dba_two_beams_off_single_sample():
    target = torch.tensor([[10]])
    # top-1 is 2 beams off, the next two are far away: Y_1 = Y_2 = Y_3 = 1 - 2/5 = 0.6
    metric = DistanceBasedAccuracy(max_k=3, delta=5.0)
    metric.update(scores_from_ranking([[[12, 30, 40]]], 64), target)
    assert metric.compute().item() == pytest.approx(0.6)
    y1 = DistanceBasedAccuracy(max_k=1, delta=5.0)
    y1.update(scores_from_ranking([[[12, 30, 40]]], 64), target)
    assert y1.compute().item() == pytest.approx(1 - 0.4)
    # ranks 2 and 3 get closer: Y = (0.6, 0.8, 1.0) -> 0.8
    closer = DistanceBasedAccuracy(max_k=3, delta=5.0)
    closer.update(scores_from_ranking([[[12, 11, 10]]], 64), target)
    assert closer.compute().item() == pytest.approx(0.8)
    # a later, worse prediction never lowers Y_k: (0.6, 0.6, 0.6)
    worse = DistanceBasedAccuracy(max_k=3, delta=5.0)
    worse.update(scores_from_ranking([[[12, 20, 0]]], 64), target)
    assert worse.compute().item() == pytest.approx(0.6)


def test_dba_delta_caps_the_error():
    target = torch.tensor([[10], [10]])
    # 5 and 50 beams off both cost the full 1 with delta=5; with delta=10, 5 off costs 0.5
    preds = scores_from_ranking([[[15]], [[60]]], 64)
    capped = DistanceBasedAccuracy(max_k=1, delta=5.0)
    capped.update(preds, target)
    assert capped.compute().item() == pytest.approx(0.0)
    wide = DistanceBasedAccuracy(max_k=1, delta=10.0)
    wide.update(preds, target)
    assert wide.compute().item() == pytest.approx(1 - (0.5 + 1.0) / 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BeamTopK(1),
        lambda: BeamTopK(3, 1),
        lambda: DistanceBasedAccuracy(),
        lambda: DistanceBasedAccuracy(step=0),
    ],
    ids=["top1", "top3_t2", "dba", "dba_t1"],
)
def test_accumulation_equals_concatenation(make):
    torch.manual_seed(0)
    preds = torch.randn(11, 2, NUM_BEAMS)
    target = torch.randint(0, NUM_BEAMS, (11, 2))
    target[:4] = preds[:4].argmax(-1)  # the first part is all hits, so it must weigh in the result
    split = make()
    split.update(preds[:4], target[:4])
    split.update(preds[4:], target[4:])
    whole = make()
    whole.update(preds, target)
    assert split.compute().item() == pytest.approx(whole.compute().item())
    last_only = make()
    last_only.update(preds[4:], target[4:])
    assert split.compute().item() != pytest.approx(last_only.compute().item())


def test_accumulation_hand_example_in_two_calls():
    topk = BeamTopK(1)
    dba = DistanceBasedAccuracy()
    for metric in (topk, dba):
        metric.update(PREDS[:3], TARGET[:3])
        metric.update(PREDS[3:], TARGET[3:])
    assert topk.compute().item() == pytest.approx(3 / 8)
    assert dba.compute().item() == pytest.approx(2.425 / 3)
    topk.reset()
    topk.update(PREDS[:2], TARGET[:2])
    # after reset only the new samples count: t1 hits 1 of 2, t2 hits 1 of 2
    assert topk.compute().item() == pytest.approx(2 / 4)


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="expected preds"):
        BeamTopK(1).update(PREDS[:, 0], TARGET[:, 0])
    with pytest.raises(ValueError, match="expected preds"):
        DistanceBasedAccuracy().update(PREDS, TARGET[:, :1])


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_empty_metric_computes_without_nan():
    assert BeamTopK(1).compute().item() == 0.0


# ---------------------------------------------------------------- BeamHead metric collection


def _built_head() -> BeamHead:
    head = BeamHead()
    head.build(hidden_dim=8, past_steps=5, future_steps=3)
    return head


def test_beam_head_metric_keys():
    metrics = _built_head().metrics()
    keys = set(metrics.keys())
    expected = {"dba", "dba_t1", "dba_t2", "dba_t3"}
    for k in (1, 2, 3, 5):
        expected |= {f"top{k}", f"top{k}_t1", f"top{k}_t2", f"top{k}_t3"}
    assert keys == expected
    assert metrics["top3_t2"].k == 3 and metrics["top3_t2"].step == 1
    assert metrics["top1"].step is None
    assert metrics["dba_t3"].step == 2 and metrics["dba"].step is None
    assert metrics["dba"].max_k == 3 and metrics["dba"].delta == 5.0


def test_beam_head_all_steps_is_mean_of_steps():
    head = _built_head()
    metrics = head.metrics()
    torch.manual_seed(1)
    hidden = torch.randn(6, 5, 8)
    outputs = head(hidden, {})
    assert outputs.shape == (6, 3, 64)
    for _ in range(3):
        logits = torch.randn(10, 3, 64)
        target = torch.randint(0, 64, (10, 3))
        # make top-1 right about half the time so per-step values differ from 0
        target[:5] = logits[:5].argmax(-1)
        preds, tgt = head.metric_inputs(logits, {"target": {"beam": target}})
        metrics.update(preds, tgt)
    values = metrics.compute()
    for name in ("top1", "top3", "dba"):
        per_step = [values[f"{name}_t{t}"].item() for t in (1, 2, 3)]
        assert values[name].item() == pytest.approx(sum(per_step) / 3)
    assert values["top1"].item() >= 0.5
    assert values["top5"].item() >= values["top3"].item() >= values["top2"].item() >= values["top1"].item()


def test_beam_head_metrics_hand_example():
    head = BeamHead()
    head.build(hidden_dim=8, past_steps=5, future_steps=2)
    metrics = head.metrics()
    preds = scores_from_ranking(RANKED, 64)
    metrics.update(preds, TARGET)
    values = {k: v.item() for k, v in metrics.compute().items()}
    assert values["top1_t1"] == pytest.approx(1 / 4)
    assert values["top1_t2"] == pytest.approx(2 / 4)
    assert values["top3"] == pytest.approx(7 / 8)
    assert values["dba_t1"] == pytest.approx(2.05 / 3)
    assert values["dba_t2"] == pytest.approx(2.8 / 3)
    assert values["dba"] == pytest.approx(2.425 / 3)


def test_beam_head_predictions_are_one_based_top3():
    head = BeamHead()
    head.build(hidden_dim=8, past_steps=5, future_steps=2)
    predictions = head.predictions(scores_from_ranking(RANKED, 64))
    assert set(predictions) == {"top-1 beam", "top-2 beam", "top-3 beam"}
    assert predictions["top-1 beam"].tolist() == [[3, 5], [4, 6], [2, 4], [1, 8]]
    assert predictions["top-3 beam"][0].tolist() == [7, 2]
