"""The ``Modality`` abstraction: what one sensor contributes per time step, and how it is encoded."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn


class Modality(ABC):
    """One sensor stream, e.g. beam power or GPS.

    Subclasses set the class attributes and implement ``build_encoder``. Register the class through the
    ``wmlm_register_modalities`` hook so configs can name it; or reference it by ``class_path``.

    Attributes:
        name: key of this modality in batches, encoders and configs.
        field: name of the data field (a registered ``FieldReader``) that supplies it.
        step_shape: shape of one time step, e.g. ``(64,)`` for beam power.
        dtype: dtype of one time step as fed to the encoder.
    """

    name: ClassVar[str]
    field: ClassVar[str]
    step_shape: ClassVar[tuple[int, ...]]
    dtype: ClassVar[torch.dtype] = torch.float32

    @abstractmethod
    def build_encoder(self, embed_dim: int) -> nn.Module:
        """A module mapping ``[B, P, *step_shape]`` to ``[B, P, embed_dim]``."""

    def validate(self, x: Tensor) -> None:
        """Raise ``ValueError`` naming this modality if ``x`` is not ``[B, P, *step_shape]`` of ``dtype``."""
        expected = "[" + ", ".join(map(str, ("B", "P", *self.step_shape))) + "]"
        if x.dim() != 2 + len(self.step_shape) or tuple(x.shape[2:]) != tuple(self.step_shape):
            raise ValueError(
                f"modality {self.name!r}: expected a tensor of shape {expected}, got {list(x.shape)}"
            )
        if x.dtype != self.dtype:
            raise ValueError(f"modality {self.name!r}: expected dtype {self.dtype}, got {x.dtype}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, field={self.field!r})"


class StepMLP(nn.Module):
    """Per-time-step MLP encoder: ``[B, P, in_dim] -> [B, P, embed_dim]``."""

    def __init__(self, in_dim: int, embed_dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, embed_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
