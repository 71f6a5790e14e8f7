"""The ``TaskHead`` abstraction: a module that turns backbone hidden states into one task's outputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor, nn
from torchmetrics import MetricCollection


def output_projection(hidden_dim: int, out_features: int, dropout: float) -> nn.Sequential:
    """LayerNorm, dropout, linear: ``[..., hidden_dim] -> [..., out_features]``, the usual last layer of a head.

    Built-in heads apply it to the last step's hidden state and reshape to ``[B, F, ...]``; its layers
    are ``[0]`` norm, ``[1]`` dropout, ``[2]`` linear (checkpoint keys ``proj.0``, ``proj.2``).
    """
    return nn.Sequential(nn.LayerNorm(hidden_dim), nn.Dropout(dropout), nn.Linear(hidden_dim, out_features))


class TaskHead(nn.Module, ABC):
    """One prediction task on top of the causal backbone.

    Subclass it in your own code and reference it by ``class_path`` in YAML, or register it through the
    ``wmlm_register_heads`` hook so configs can name it. Layers are created in ``build`` because only the
    model knows the backbone width and window lengths.

    Attributes:
        name: default name (key in ``model.heads`` outputs, in losses and in logged metrics).
        target_fields: ``{target key: data field}`` the head needs for future steps, e.g.
            ``{"beam": "beam_label"}``; the batch carries them as ``batch["target"][key]`` of shape
            ``[B, F, ...]``.

    Args:
        name: overrides the class's default name (e.g. two heads of one class).
    """

    name: str
    target_fields: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        if name is not None:
            self.name = name
        if not getattr(self, "name", None):
            raise TypeError(f"{type(self).__name__} needs a name (class attribute or name=...)")

    @abstractmethod
    def build(self, hidden_dim: int, past_steps: int, future_steps: int) -> None:
        """Create the layers, given the backbone width and the window lengths."""

    @abstractmethod
    def forward(self, hidden: Tensor, batch: dict[str, Any]) -> Tensor:
        """Outputs of the head from backbone hidden states ``[B, P, hidden_dim]``."""

    @abstractmethod
    def loss(self, outputs: Tensor, batch: dict[str, Any]) -> Tensor:
        """Scalar training loss of ``outputs`` against ``batch["target"]``."""

    def metrics(self) -> MetricCollection:
        """Fresh metrics, updated with ``metric_inputs``; empty by default."""
        return MetricCollection({})

    def metric_inputs(self, outputs: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """``(preds, target)`` passed to the metrics' ``update``; by default the first target key."""
        key = next(iter(self.target_fields))
        return outputs, batch["target"][key]

    def predictions(self, outputs: Tensor) -> dict[str, Tensor]:
        """Per-window predictions written by ``wmlm predict``: ``{CSV column: [B, F]}``."""
        return {}
