"""Built-in ``blockage`` head: will the line of sight be blocked at each of the next F steps?"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

from wmlm.errors import ConfigError
from wmlm.heads.base import TaskHead, output_projection


class BinaryAccuracyAtStep(BinaryAccuracy):
    """Binary accuracy of one future step: ``preds`` probabilities ``[B, F]``, ``target`` 0/1 ``[B, F]``.

    Args:
        step: 0-based future step to score.
        threshold: probability at or above which a prediction counts as positive.
    """

    def __init__(self, step: int, threshold: float = 0.5) -> None:
        super().__init__(threshold=threshold)
        self.step = step

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(preds[:, self.step], target[:, self.step])


class BlockageHead(TaskHead):
    """Logits ``[B, F]`` that the line of sight is blocked at each of the next F steps (``blockage`` field).

    Loss: binary cross-entropy with logits; blockage is rare on most roads, so ``pos_weight`` (> 1) can
    weigh the blocked samples up. Metrics, on probabilities (the sigmoid of the logits): ``f1`` (threshold
    ``threshold``), ``auroc`` and ``accuracy`` over all future steps, and ``accuracy_t1 .. accuracy_tF``.
    AUROC is undefined on a split with a single class (torchmetrics then warns and reports 0).

    Args:
        name: head name (default ``blockage``).
        pos_weight: weight of the blocked class in the loss; None weighs both classes alike.
        threshold: probability at or above which a step is predicted blocked (F1 and accuracy).
        dropout: dropout before the output layer.
    """

    name = "blockage"
    target_fields = {"blockage": "blockage"}

    def __init__(
        self,
        name: str | None = None,
        pos_weight: float | None = None,
        threshold: float = 0.5,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(name)
        if pos_weight is not None and pos_weight <= 0:
            raise ConfigError(f"blockage head: pos_weight must be positive, got {pos_weight}")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"blockage head: threshold must be in (0, 1), got {threshold}")
        self.pos_weight = pos_weight
        self.threshold = threshold
        self.dropout = dropout
        self.future_steps = 0

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.future_steps = future_steps
        self.proj = output_projection(hidden_dim, future_steps, self.dropout)

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        """``[B, F]`` logits of blockage, from hidden states ``[B, P, H]``."""
        return self.proj(hidden[:, -1])

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        target = batch["target"]["blockage"].to(outputs.dtype)
        pos_weight = None
        if self.pos_weight is not None:
            pos_weight = torch.tensor(self.pos_weight, dtype=outputs.dtype, device=outputs.device)
        return F.binary_cross_entropy_with_logits(outputs, target, pos_weight=pos_weight)

    def metrics(self) -> MetricCollection:
        metrics: dict[str, Metric] = {
            "f1": BinaryF1Score(threshold=self.threshold),
            "auroc": BinaryAUROC(),
            "accuracy": BinaryAccuracy(threshold=self.threshold),
        }
        for step in range(self.future_steps):
            metrics[f"accuracy_t{step + 1}"] = BinaryAccuracyAtStep(step, self.threshold)
        return MetricCollection(metrics, compute_groups=False)

    def metric_inputs(self, outputs: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        # probabilities, not logits: torchmetrics guesses "logits" only when some value leaves [0, 1],
        # a guess that changes from batch to batch
        return outputs.detach().sigmoid(), batch["target"]["blockage"]

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        return {"blockage probability": outputs.sigmoid()}
