"""Built-in ``position`` head: the vehicle's east/north position (metres) at each of the next F steps."""

from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection

from wmlm.errors import ConfigError
from wmlm.heads.base import TaskHead, output_projection
from wmlm.metrics_regression import distance_metrics


class PositionHead(TaskHead):
    """Future positions ``[B, F, 2]``, metres east/north of the base station (the ``position`` field).

    If the batch holds the past positions (input key ``relative_to``, ``[B, P, 2]`` metres, e.g. the
    ``gps`` modality), the layers predict the displacement from the last past position and the head adds
    that position back: a vehicle moves a few metres between samples, while its absolute position spans a
    whole cell and depends on the site. Without that input the layers predict the absolute position.
    Either way the outputs are absolute metres, and the layers work in units of ``scale_m`` so their
    outputs stay O(1).

    The loss compares outputs and truth in units of ``scale_m``: smooth-L1 (quadratic for errors below
    ``scale_m``, linear above, so a few GPS jumps do not dominate) or MSE. Metrics: ``distance_m``, the mean
    Euclidean error in metres, over all future steps and per step (``distance_m_t1``, ...).

    Args:
        name: head name (default ``position``).
        relative_to: input key of past positions in metres; when present, displacement is predicted.
        scale_m: metres per unit of the layers' output and of the loss.
        loss: ``smooth_l1`` (default) or ``mse``.
        dropout: dropout before the output layer.
    """

    name = "position"
    target_fields = {"position": "position"}

    def __init__(
        self,
        name: str | None = None,
        relative_to: str | None = "gps",
        scale_m: float = 10.0,
        loss: Literal["smooth_l1", "mse"] = "smooth_l1",
        dropout: float = 0.1,
    ) -> None:
        super().__init__(name)
        if scale_m <= 0:
            raise ConfigError(f"position head: scale_m must be positive, got {scale_m}")
        if loss not in ("smooth_l1", "mse"):
            raise ConfigError(f"position head: loss must be 'smooth_l1' or 'mse', got {loss!r}")
        self.relative_to = relative_to
        self.scale_m = scale_m
        self.loss_kind = loss
        self.dropout = dropout
        self.future_steps = 0

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.future_steps = future_steps
        self.proj = output_projection(hidden_dim, future_steps * 2, self.dropout)

    def last_position(self, batch: dict[str, Any]) -> Tensor | None:
        """``[B, 1, 2]`` last past position in metres, or None if the batch has no position input."""
        if self.relative_to is None or self.relative_to not in batch:
            return None
        past = batch[self.relative_to]
        if past.dim() != 3 or past.shape[-1] != 2:
            raise ValueError(
                f"position head: input {self.relative_to!r} should be [B, P, 2] metres, got {list(past.shape)}"
            )
        return past[:, -1:]

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        """``[B, F, 2]`` absolute positions in metres, from hidden states ``[B, P, H]``."""
        scaled = self.proj(hidden[:, -1]).reshape(hidden.shape[0], self.future_steps, 2)
        position_m = scaled * self.scale_m
        last = self.last_position(batch)
        return position_m if last is None else position_m + last.to(position_m.dtype)

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        target = batch["target"]["position"].to(outputs.dtype)
        # in units of scale_m; the last position cancels in the difference, so this is the displacement error
        preds_scaled, target_scaled = outputs / self.scale_m, target / self.scale_m
        if self.loss_kind == "mse":
            return F.mse_loss(preds_scaled, target_scaled)
        return F.smooth_l1_loss(preds_scaled, target_scaled, beta=1.0)

    def metrics(self) -> MetricCollection:
        return distance_metrics(self.future_steps)

    def metric_inputs(self, outputs: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        return outputs.detach(), batch["target"]["position"]

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        return {"east_m": outputs[..., 0], "north_m": outputs[..., 1]}
