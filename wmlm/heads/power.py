"""Built-in ``power`` head: forecast the 64-beam received-power vectors of the next F steps.

The head predicts in a normalised dB space anchored at the window's last measurement, not in linear
power: see ``wmlm.beams.power_to_relative``, with the window's last measured peak as the reference
(``reference_peak``). Metrics are computed on linear power, after mapping back.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection

from wmlm.beams import MIN_POWER, NUM_BEAMS, power_to_relative, relative_to_power
from wmlm.errors import ConfigError
from wmlm.heads.base import TaskHead, output_projection
from wmlm.metrics_regression import power_metrics


def reference_peak(power_linear: Tensor) -> Tensor:
    """``[B, 1, 1]`` strongest linear power of each window's last past step, from ``[B, P, beams]``.

    As the reference of ``power_to_relative``, it removes the site's absolute power level (orders of
    magnitude between sites) but keeps how the level changes over the future steps (fading, blockage).
    """
    return power_linear[:, -1].amax(dim=-1).clamp_min(MIN_POWER)[:, None, None]


class PowerHead(TaskHead):
    """Beam-power forecast ``[B, F, 64]`` in the relative space of ``power_to_relative``.

    Outputs, loss and the target all live in that space: ``y = 1`` is the strongest beam power measured at
    the last past step (from the ``reference`` modality of the batch), one unit of ``y`` is ``|floor_db|``
    dB, and ``y = 0`` is the floor. Working in dB lets weak beams' shape count next to the peak, and the
    reference removes the absolute level, which differs by orders of magnitude between sites. The loss is
    the mean squared error of ``y``.

    With ``residual`` (default) the head adds a learned correction to the last measured vector (repeated
    for every future step), so an untrained head already forecasts "the pattern stays as it is", a strong
    guess at 10 Hz sampling; the layers only learn how the pattern moves.

    Metrics, on linear power mapped back with ``relative_to_power``: ``nmse_db`` and ``norm_beam_power``
    over all future steps and per step (``nmse_db_t1``, ...); see ``wmlm.metrics_regression``.

    Beam augmentations (``BeamFlip``, ``BeamShift``) move this head's ``power`` target along with the
    ``beam`` input, so they can be used with it.

    Args:
        name: head name (default ``power``).
        reference: batch key of the beam-power modality (linear ``[B, P, 64]``) the forecast is relative to.
        floor_db: weakest relative power represented, in dB below the reference peak (negative).
        residual: predict a correction to the last measured vector instead of the vector itself.
        dropout: dropout before the output layer.
    """

    name = "power"
    target_fields = {"power": "beam_power"}

    def __init__(
        self,
        name: str | None = None,
        reference: str = "beam",
        floor_db: float = -30.0,
        residual: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(name)
        if floor_db >= 0:
            raise ConfigError(f"power head: floor_db must be negative (dB below the peak), got {floor_db}")
        self.reference = reference
        self.floor_db = floor_db
        self.residual = residual
        self.dropout = dropout
        self.future_steps = 0

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.future_steps = future_steps
        self.proj = output_projection(hidden_dim, future_steps * NUM_BEAMS, self.dropout)
        if self.residual:
            # start from the persistence forecast; training moves away from it only where it helps
            nn.init.zeros_(self.proj[-1].weight)
            nn.init.zeros_(self.proj[-1].bias)

    def reference_power(self, batch: dict[str, Any]) -> Tensor:
        """The reference modality's linear power ``[B, P, 64]``, with a clear error when it is missing."""
        if self.reference not in batch:
            raise KeyError(
                f"power head: reference={self.reference!r} is not in this batch; the head forecasts power "
                "relative to the last measured beam-power vector, so the model needs a beam-power modality "
                "(set reference= to its name)"
            )
        power = batch[self.reference]
        if power.dim() != 3 or power.shape[-1] != NUM_BEAMS:
            raise ValueError(
                f"power head: reference {self.reference!r} should be [B, P, {NUM_BEAMS}] linear power, "
                f"got {list(power.shape)}"
            )
        return power

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        """``[B, F, 64]`` forecast in the relative space, from hidden states ``[B, P, H]``."""
        batch_size = hidden.shape[0]
        relative = self.proj(hidden[:, -1]).reshape(batch_size, self.future_steps, NUM_BEAMS)
        if self.residual:
            past = self.reference_power(batch)
            last = power_to_relative(past[:, -1:], reference_peak(past), self.floor_db)  # [B, 1, 64]
            relative = relative + last.to(relative.dtype)
        return relative

    def target_relative(self, batch: dict[str, Any]) -> Tensor:
        """``[B, F, 64]`` true future power in the head's relative space."""
        peak = reference_peak(self.reference_power(batch))
        return power_to_relative(batch["target"]["power"], peak, self.floor_db)

    def to_linear(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        """``[B, F, 64]`` linear power of a forecast ``outputs`` of this batch."""
        return relative_to_power(outputs, reference_peak(self.reference_power(batch)), self.floor_db)

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.mse_loss(outputs, self.target_relative(batch).to(outputs.dtype))

    def metrics(self) -> MetricCollection:
        return power_metrics(self.future_steps)

    def metric_inputs(self, outputs: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Linear predicted and true power, both ``[B, F, 64]``."""
        return self.to_linear(outputs.detach(), batch), batch["target"]["power"]

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        # the mapping to linear power is monotonic, so the strongest beam is the argmax of the outputs
        return {"strongest beam": outputs.argmax(dim=-1) + 1}
