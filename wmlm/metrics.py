"""Beam-prediction metrics as torchmetrics ``Metric``s: top-k accuracy per future step and the DBA score.

All take ``preds`` = logits or scores ``[B, F, beams]`` and ``target`` = beam indices ``[B, F]`` (0-based).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

TOP_KS = (1, 2, 3, 5)


def select_step(
    preds: Tensor, target: Tensor, step: int | None, vector_target: bool = False
) -> tuple[Tensor, Tensor]:
    """Flatten ``[B, F, C]`` predictions and their targets over samples, keeping only future step ``step``.

    ``target`` is ``[B, F]`` (one class per step: beam indices) or, with ``vector_target``, ``[B, F, C]``
    like ``preds`` (power vectors, positions). Returns ``([N, C], [N])`` or ``([N, C], [N, C])`` with
    ``N = B`` when ``step`` is given, else ``N = B * F``.
    """
    expected = preds.shape if vector_target else preds.shape[:2]
    if preds.dim() != 3 or target.shape != expected:
        wanted = "[B, F, C] and target [B, F, C]" if vector_target else "[B, F, C] and target [B, F]"
        raise ValueError(f"expected preds {wanted}, got {list(preds.shape)} and {list(target.shape)}")
    if step is not None:
        return preds[:, step], target[:, step]
    return preds.reshape(-1, preds.shape[-1]), target.reshape(-1, *target.shape[2:])


class BeamTopK(Metric):
    """Share of samples whose true beam is among the ``k`` highest-scored beams.

    Args:
        k: how many ranked beams count as a hit.
        step: 0-based future step to score; None scores all steps together.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, k: int, step: int | None = None) -> None:
        super().__init__()
        self.k, self.step = k, step
        self.add_state("hits", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        scores, labels = select_step(preds, target, self.step)
        top = scores.topk(min(self.k, scores.shape[-1]), dim=-1).indices
        self.hits += (top == labels[:, None]).any(dim=-1).sum()
        self.total += labels.numel()

    def compute(self) -> Tensor:
        return self.hits / self.total.clamp_min(1)


class DistanceBasedAccuracy(Metric):
    """DBA score of the DeepSense 6G 2022 beam-prediction challenge.

    ``Y_k = 1 - mean_n min_{m<=k} min(|yhat_{n,m} - y_n| / delta, 1)`` over the ``k`` best-ranked beams,
    and the score is the mean of ``Y_1 .. Y_max_k``. A prediction within ``delta`` beams of the truth earns
    partial credit, so near misses count, unlike top-k accuracy.

    Args:
        max_k: the score averages ``Y_1 .. Y_max_k`` (3 in the challenge).
        delta: distance in beams at which a prediction earns nothing (5 in the challenge).
        step: 0-based future step to score; None scores all steps together.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, max_k: int = 3, delta: float = 5.0, step: int | None = None) -> None:
        super().__init__()
        self.max_k, self.delta, self.step = max_k, delta, step
        self.add_state("error_sum", torch.zeros(max_k), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        scores, labels = select_step(preds, target, self.step)
        ranked = scores.topk(self.max_k, dim=-1).indices  # [N, max_k]
        error = ((ranked - labels[:, None]).abs().float() / self.delta).clamp(max=1.0)
        best_so_far = error.cummin(dim=-1).values  # min over m <= k, for each k
        self.error_sum += best_so_far.sum(dim=0)
        self.total += labels.numel()

    def compute(self) -> Tensor:
        y_k = 1.0 - self.error_sum / self.total.clamp_min(1)
        return y_k.mean()


def beam_metrics(future_steps: int, top_ks: tuple[int, ...] = TOP_KS) -> MetricCollection:
    """Top-k accuracies and DBA over all future steps (``top1``, ``dba``) and per step (``top1_t1``, ...)."""
    metrics: dict[str, Metric] = {}
    for k in top_ks:
        metrics[f"top{k}"] = BeamTopK(k)
        for step in range(future_steps):
            metrics[f"top{k}_t{step + 1}"] = BeamTopK(k, step)
    metrics["dba"] = DistanceBasedAccuracy()
    for step in range(future_steps):
        metrics[f"dba_t{step + 1}"] = DistanceBasedAccuracy(step=step)
    # compute_groups would merge metrics whose states happen to match after the first batch
    return MetricCollection(metrics, compute_groups=False)
