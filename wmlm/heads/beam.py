"""Built-in ``beam`` head: the optimal beam of each of the next F steps (64-way classification)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection

from wmlm.heads.base import TaskHead
from wmlm.hookspecs import hookimpl
from wmlm.metrics import beam_metrics

NUM_BEAMS = 64


class BeamHead(TaskHead):
    """Logits ``[B, F, 64]`` for the beams of the next F steps, from the last hidden state.

    Metrics (per future step ``t1..tF`` and over all steps): top-1/2/3/5 accuracy and the DBA score.

    Args:
        name: head name (default ``beam``).
        num_beams: codebook size.
        label_smoothing: cross-entropy label smoothing.
        dropout: dropout before the output layer.
    """

    name = "beam"
    target_fields = {"beam": "beam_label"}

    def __init__(
        self,
        name: str | None = None,
        num_beams: int = NUM_BEAMS,
        label_smoothing: float = 0.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(name)
        self.num_beams = num_beams
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.future_steps = 0

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.future_steps = future_steps
        self.proj = nn.Sequential(
            nn.LayerNorm(hidden_dim),
            nn.Dropout(self.dropout),
            nn.Linear(hidden_dim, future_steps * self.num_beams),
        )

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        return self.proj(hidden[:, -1]).reshape(hidden.shape[0], self.future_steps, self.num_beams)

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        target = batch["target"]["beam"]
        return F.cross_entropy(
            outputs.reshape(-1, self.num_beams), target.reshape(-1), label_smoothing=self.label_smoothing
        )

    def metrics(self) -> MetricCollection:
        return beam_metrics(self.future_steps)

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        return beam_predictions(outputs)


def beam_predictions(scores: Tensor) -> dict[str, Tensor]:
    """Top-3 beams per future step, 1-based as in the DeepSense files: ``{"top-k beam": [B, F]}``."""
    ranked = scores.topk(3, dim=-1).indices + 1
    return {f"top-{k + 1} beam": ranked[..., k] for k in range(3)}


@hookimpl
def wmlm_register_heads(register) -> None:  # noqa: ANN001
    register(BeamHead)
