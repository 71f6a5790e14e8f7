"""The ``csi`` head: forecast the complex channel of the next F steps, relative to the last measured one."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from wmlm import TaskHead

from wmlm_csi.encoder import csi_power
from wmlm_csi.metrics import channel_metrics
from wmlm_csi.reader import NUM_ANTENNAS, NUM_SUBCARRIERS

_MIN_POWER = 1e-20


def reference_scale(past_csi: Tensor) -> Tensor:
    """``[B, 1, 1, 1, 1]`` RMS amplitude of each window's last past step, from CSI ``[B, P, 2, A, K]``."""
    return csi_power(past_csi[:, -1]).clamp_min(_MIN_POWER).sqrt()[:, None, None, None, None]


class CsiHead(TaskHead):
    """CSI forecast ``[B, F, 2, A, K]`` (real, imaginary) in units of the last past step's RMS amplitude.

    Outputs, loss and target live in a normalised space: the true future channels are divided by the RMS
    amplitude of the window's last measured channel (from the ``reference`` modality of the batch). That
    removes the site's absolute level, which differs by orders of magnitude between sites, but keeps how
    the level changes over the future steps (a vehicle approaching, a blockage starting). The loss is the
    mean squared error in that space; metrics are ``nmse_db`` overall and ``nmse_db_t1`` ... per step
    (``wmlm_csi.metrics.ChannelNMSEdB``), which the common normalisation leaves unchanged.

    The output layer starts at zero, so an untrained head predicts zeros (0 dB NMSE) rather than noise.
    ``residual=False`` by default: at 60 GHz a vehicle moves many wavelengths (5 mm) between 10 Hz samples,
    so each path's phase turns many times and the last channel is a poor forecast of the complex channel:
    repeating it scores +2.9 to +3.1 dB NMSE on the simulator's four presets, worse than predicting zeros.
    With ``residual=True`` the head adds its output to the last measured channel (repeated for every
    future step), so it starts from that persistence forecast: for data sampled fast enough that the
    channel is still correlated (lower carrier, slow movers).

    Args:
        name: head name (default ``csi``).
        reference: batch key of the CSI modality (``[B, P, 2, A, K]``) the forecast is relative to.
        antennas, subcarriers: channel size; must match the data (16 x 32 by default).
        residual: predict a correction to the last measured channel instead of the channel itself.
        dropout: dropout before the output layer.
    """

    name = "csi"
    target_fields = {"csi": "csi"}

    def __init__(
        self,
        name: str | None = None,
        reference: str = "csi",
        antennas: int = NUM_ANTENNAS,
        subcarriers: int = NUM_SUBCARRIERS,
        residual: bool = False,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(name)
        self.reference = reference
        self.channel_shape = (2, antennas, subcarriers)
        self.residual = residual
        self.dropout = dropout
        self.future_steps = 0

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.future_steps = future_steps
        size = 2 * self.channel_shape[1] * self.channel_shape[2]
        self.proj = nn.Sequential(
            nn.LayerNorm(hidden_dim), nn.Dropout(self.dropout), nn.Linear(hidden_dim, future_steps * size)
        )
        # start from zeros (or, with residual, from persistence); training moves away only where it helps
        nn.init.zeros_(self.proj[-1].weight)
        nn.init.zeros_(self.proj[-1].bias)

    def _check(self, csi: Tensor, what: str) -> Tensor:
        if csi.dim() != 5 or tuple(csi.shape[2:]) != self.channel_shape:
            shape = ", ".join(map(str, self.channel_shape))
            raise ValueError(f"csi head: {what} should be [B, T, {shape}] CSI, got {list(csi.shape)}")
        return csi

    def reference_csi(self, batch: dict[str, Any]) -> Tensor:
        """The reference modality's past CSI ``[B, P, 2, A, K]``, with a clear error when it is missing."""
        if self.reference not in batch:
            raise KeyError(
                f"csi head: reference={self.reference!r} is not in this batch; the head forecasts the channel "
                "relative to the last measured one, so the model needs a CSI modality (set reference= to its name)"
            )
        return self._check(batch[self.reference], f"reference {self.reference!r}")

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        """``[B, F, 2, A, K]`` normalised forecast from hidden states ``[B, P, H]``."""
        out = self.proj(hidden[:, -1]).reshape(hidden.shape[0], self.future_steps, *self.channel_shape)
        if self.residual:
            past = self.reference_csi(batch)
            out = out + (past[:, -1:] / reference_scale(past)).to(out.dtype)
        return out

    def target_normalized(self, batch: dict[str, Any]) -> Tensor:
        """``[B, F, 2, A, K]`` true future CSI divided by the last past step's RMS amplitude."""
        target = self._check(batch["target"]["csi"], "target 'csi'")
        return target / reference_scale(self.reference_csi(batch))

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.mse_loss(outputs, self.target_normalized(batch).to(outputs.dtype))

    def metrics(self) -> MetricCollection:
        return channel_metrics(self.future_steps)

    def metric_inputs(self, outputs: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Normalised forecast and truth, both ``[B, F, 2, A, K]`` (NMSE does not depend on the scale)."""
        return outputs.detach(), self.target_normalized(batch)

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        # the full channel does not fit a CSV cell; its predicted power relative to the last measured step does
        return {"power change (dB)": 10.0 * torch.log10(csi_power(outputs).clamp_min(_MIN_POWER))}
