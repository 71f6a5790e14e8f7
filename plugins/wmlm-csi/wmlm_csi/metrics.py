"""Channel-prediction NMSE in dB as a torchmetrics ``Metric``, per future step and overall."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

_EPS = 1e-30  # an all-zero true channel would divide by zero


class ChannelNMSEdB(Metric):
    """Normalised mean squared error of predicted channels, in dB (lower is better).

    ``NMSE = 10 log10( mean_n ||H_hat_n - H_n||^2 / ||H_n||^2 )`` over the selected samples ``n``, each a
    whole channel (every antenna, subcarrier, real and imaginary part). Each error is divided by its own
    channel's energy before averaging, so strong and weak channels weigh the same, and scaling a
    prediction and its truth by the same factor (e.g. the ``csi`` head's normalisation) changes nothing.
    The mean is taken in linear units and converted to dB last. 0 dB is as bad as predicting zeros.

    ``update(preds, target)`` takes ``[B, F, ...]`` tensors of the same shape.

    Args:
        step: 0-based future step to score; None scores all steps together.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, step: int | None = None) -> None:
        super().__init__()
        self.step = step
        self.add_state("ratio_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape or preds.dim() < 3:
            raise ValueError(
                f"ChannelNMSEdB: expected preds and target both [B, F, ...], got {list(preds.shape)} and "
                f"{list(target.shape)}"
            )
        # one sample per (window, future step): a whole channel, flattened
        if self.step is not None:
            predicted, truth = preds[:, self.step], target[:, self.step]  # [B, ...]
        else:
            predicted, truth = preds.flatten(0, 1), target.flatten(0, 1)  # [B * F, ...]
        # float64: ratios span orders of magnitude and validation sets can be long
        predicted, truth = predicted.flatten(1).double(), truth.flatten(1).double()
        error = (predicted - truth).pow(2).sum(dim=1)
        energy = truth.pow(2).sum(dim=1).clamp_min(_EPS)
        self.ratio_sum += (error / energy).sum()
        self.total += error.numel()

    def compute(self) -> Tensor:
        mean = self.ratio_sum / self.total.clamp_min(1)
        return (10.0 * torch.log10(mean.clamp_min(_EPS))).float()


def channel_metrics(future_steps: int) -> MetricCollection:
    """``nmse_db`` over all future steps and ``nmse_db_t1`` ... ``nmse_db_tF`` per step."""
    metrics: dict[str, Metric] = {"nmse_db": ChannelNMSEdB()}
    for step in range(future_steps):
        metrics[f"nmse_db_t{step + 1}"] = ChannelNMSEdB(step)
    # compute_groups would merge metrics whose states happen to match after the first batch
    return MetricCollection(metrics, compute_groups=False)
