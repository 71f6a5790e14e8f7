"""A user-defined task head, used from YAML by ``class_path`` with no change inside wmlm.

``TurnHead`` predicts where the beam is heading over the next F steps: towards lower beam indices, to
higher ones, or staying within ``tolerance`` beams. It reuses the beam-label target (no new data field),
has its own loss (cross-entropy over 3 classes) and its own torchmetrics metric.

Run (from the repository root):
    PYTHONPATH=examples wmlm fit --config examples/custom_head.yaml --data.root /path/to/deepsense6g
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from wmlm import TaskHead

DOWN, STAY, UP = 0, 1, 2


class TurnHead(TaskHead):
    """3-way logits ``[B, 3]``: does the optimal beam move down, stay, or move up by the last future step?

    Args:
        name: head name (default ``turn``).
        tolerance: beam-index change (in beams) still counted as staying.
    """

    name = "turn"
    target_fields = {"beam": "beam_label"}

    def __init__(self, name: str | None = None, tolerance: int = 1) -> None:
        super().__init__(name)
        self.tolerance = tolerance

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.classifier = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, 3))

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        return self.classifier(hidden[:, -1])

    def turn_labels(self, batch: dict[str, Any]) -> Tensor:
        """``[B]`` class of the beam change from the first to the last future step."""
        beams = batch["target"]["beam"]
        change = beams[:, -1] - beams[:, 0]
        labels = torch.full_like(change, STAY)
        labels[change < -self.tolerance] = DOWN
        labels[change > self.tolerance] = UP
        return labels

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.cross_entropy(outputs, self.turn_labels(batch))

    def metrics(self) -> MetricCollection:
        return MetricCollection({"accuracy": MulticlassAccuracy(num_classes=3, average="micro")})

    def metric_inputs(self, outputs: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        return outputs, self.turn_labels(batch)

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        # one column, repeated per future step so it fits the [B, F] CSV layout
        return {"turn (0=down,1=stay,2=up)": outputs.argmax(dim=-1, keepdim=True)}
