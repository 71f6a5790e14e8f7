"""Built-in ``gps`` modality: vehicle position relative to the base station, in local metres."""

from __future__ import annotations

from torch import Tensor, nn

from wmlm.hookspecs import hookimpl
from wmlm.modalities.base import Modality, StepMLP


class ScaledEncoder(nn.Module):
    """Divides by a fixed scale (metres) before encoding, so inputs are O(1)."""

    def __init__(self, body: nn.Module, scale_m: float) -> None:
        super().__init__()
        self.body = body
        self.scale_m = scale_m

    def forward(self, position_enu_m: Tensor) -> Tensor:
        return self.body(position_enu_m / self.scale_m)


class GpsModality(Modality):
    """Vehicle position ``[B, P, 2]``: east and north of the base station, in metres.

    Args:
        scale_m: positions are divided by this before the encoder (typical cell radius).
        hidden_dim: width of the encoder's hidden layers.
    """

    name = "gps"
    field = "position"
    step_shape = (2,)

    def __init__(self, scale_m: float = 50.0, hidden_dim: int = 128) -> None:
        if scale_m <= 0:
            raise ValueError(f"gps modality: scale_m must be positive, got {scale_m}")
        self.scale_m = scale_m
        self.hidden_dim = hidden_dim

    def build_encoder(self, embed_dim: int) -> nn.Module:
        return ScaledEncoder(StepMLP(2, embed_dim, self.hidden_dim), self.scale_m)


@hookimpl
def wmlm_register_modalities(register) -> None:  # noqa: ANN001
    register(GpsModality)
