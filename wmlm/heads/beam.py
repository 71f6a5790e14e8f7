"""Built-in ``beam`` head: the optimal beam of each of the next F steps (64-way classification)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection

from wmlm.beams import NUM_BEAMS, beam_predictions, last_best_beam, uncentre_scores
from wmlm.heads.base import TaskHead, output_projection
from wmlm.metrics import beam_metrics


class BeamHead(TaskHead):
    """Logits ``[B, F, 64]`` for the beams of the next F steps, from the last hidden state.

    Metrics (per future step ``t1..tF`` and over all steps): top-1/2/3/5 accuracy and the DBA score.

    Args:
        name: head name (default ``beam``).
        num_beams: codebook size.
        label_smoothing: cross-entropy label smoothing.
        dropout: dropout before the output layer.
        relative_to: name of a beam-power modality in the batch (e.g. ``beam``). If set, the head scores
            beams relative to that modality's best beam at the last past step (``2 * num_beams - 1``
            offsets) and maps them back to absolute beams: predictions move with the vehicle's current beam
            wherever it is on the codebook. Pair it with ``BeamModality(frame="last_beam")``.
    """

    name = "beam"
    target_fields = {"beam": "beam_label"}

    def __init__(
        self,
        name: str | None = None,
        num_beams: int = NUM_BEAMS,
        label_smoothing: float = 0.0,
        dropout: float = 0.1,
        relative_to: str | None = None,
    ) -> None:
        super().__init__(name)
        self.relative_to = relative_to
        self.num_beams = num_beams
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.future_steps = 0

    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        self.future_steps = future_steps
        self.proj = output_projection(hidden_dim, future_steps * self.num_scores, self.dropout)

    @property
    def num_scores(self) -> int:
        """Outputs per future step: one per beam, or one per beam offset when ``relative_to`` is set."""
        return 2 * self.num_beams - 1 if self.relative_to else self.num_beams

    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        scores = self.proj(hidden[:, -1]).reshape(hidden.shape[0], self.future_steps, self.num_scores)
        if not self.relative_to:
            return scores
        if self.relative_to not in batch:
            raise KeyError(f"beam head: relative_to={self.relative_to!r} is not a modality of this batch")
        return uncentre_scores(scores, last_best_beam(batch[self.relative_to]), self.num_beams)

    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        target = batch["target"]["beam"]
        return F.cross_entropy(
            outputs.reshape(-1, self.num_beams), target.reshape(-1), label_smoothing=self.label_smoothing
        )

    def metrics(self) -> MetricCollection:
        return beam_metrics(self.future_steps)

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        return beam_predictions(outputs)
