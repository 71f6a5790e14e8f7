"""Forecasting metrics as torchmetrics ``Metric``s: power NMSE in dB, normalised beam power, distance error.

Each metric scores one future step (``step=t``, 0-based) or all steps together (``step=None``), like the
beam metrics of ``wmlm.metrics``. ``preds`` and ``target`` are ``[B, F, C]``: ``C = 64`` linear beam powers
for the power metrics, ``C = 2`` east/north metres for the distance.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from wmlm.metrics import select_step

# below this, a truth vector counts as all-zero power and its NMSE denominator is clamped
_EPS = 1e-12


class _StepMeanMetric(Metric):
    """Mean of a per-vector score over the samples of one step (or all steps); subclasses score vectors."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, step: int | None = None) -> None:
        super().__init__()
        self.step = step
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    @abstractmethod
    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        """``[N]`` score of each predicted vector ``[N, C]`` against its truth ``[N, C]``."""

    def update(self, preds: Tensor, target: Tensor) -> None:
        vectors, truth = select_step(preds, target, self.step, vector_target=True)
        # float64 sums: NMSE ratios span many orders of magnitude and validation sets can be long
        self.score_sum += self.score(vectors.double(), truth.double()).sum()
        self.total += truth.shape[0]

    def mean(self) -> Tensor:
        return (self.score_sum / self.total.clamp_min(1)).float()

    def compute(self) -> Tensor:
        return self.mean()


class PowerNMSEdB(_StepMeanMetric):
    """Normalised mean squared error of linear beam-power vectors, in dB (lower is better).

    ``NMSE = 10 * log10( mean_n ||p_hat_n - p_n||^2 / ||p_n||^2 )`` over the 64-beam linear power vectors
    ``p_n`` of the selected samples and steps. Each vector is normalised by its own energy before averaging,
    so sites and distances whose absolute power differs by orders of magnitude weigh the same; the mean is
    taken in linear units and converted to dB last. ``0 dB`` is as bad as predicting zero power.

    Args:
        step: 0-based future step to score; None scores all steps together.
    """

    higher_is_better = False

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        error = (preds - target).pow(2).sum(dim=-1)
        energy = target.pow(2).sum(dim=-1).clamp_min(_EPS)
        return error / energy

    def compute(self) -> Tensor:
        return 10.0 * torch.log10(self.mean().clamp_min(_EPS))


class NormalizedBeamPower(_StepMeanMetric):
    """Received power of the beam a prediction would pick, relative to the best beam's (higher is better).

    ``mean_n p_n[argmax_b p_hat_n[b]] / max_b p_n[b]``, in ``[0, 1]``: 1 when the strongest predicted beam
    is the strongest true beam, and near 1 when it is a neighbour with almost the same power, which top-1
    accuracy would count as a plain miss. ``preds`` may be any beam scores (only their argmax is used).

    Args:
        step: 0-based future step to score; None scores all steps together.
    """

    higher_is_better = True

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        chosen = target.gather(-1, preds.argmax(dim=-1, keepdim=True)).squeeze(-1)
        return chosen / target.amax(dim=-1).clamp_min(_EPS)


class MeanDistance(_StepMeanMetric):
    """Mean Euclidean distance between predicted and true positions, in the inputs' unit (metres).

    ``mean_n ||x_hat_n - x_n||_2`` over the selected samples and steps (lower is better).

    Args:
        step: 0-based future step to score; None scores all steps together.
    """

    higher_is_better = False

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return (preds - target).norm(dim=-1)


def power_metrics(future_steps: int) -> MetricCollection:
    """``nmse_db`` and ``norm_beam_power`` (received power of the predicted beam / best), overall and per step."""
    metrics: dict[str, Metric] = {"nmse_db": PowerNMSEdB(), "norm_beam_power": NormalizedBeamPower()}
    for step in range(future_steps):
        metrics[f"nmse_db_t{step + 1}"] = PowerNMSEdB(step)
        metrics[f"norm_beam_power_t{step + 1}"] = NormalizedBeamPower(step)
    # compute_groups would merge metrics whose states happen to match after the first batch
    return MetricCollection(metrics, compute_groups=False)


def distance_metrics(future_steps: int) -> MetricCollection:
    """``distance_m`` (mean Euclidean error in metres), overall and per step (``distance_m_t1``, ...)."""
    metrics: dict[str, Metric] = {"distance_m": MeanDistance()}
    for step in range(future_steps):
        metrics[f"distance_m_t{step + 1}"] = MeanDistance(step)
    return MetricCollection(metrics, compute_groups=False)
