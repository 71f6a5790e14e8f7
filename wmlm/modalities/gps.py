"""Built-in ``gps`` modality: vehicle position relative to the base station, in local metres."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from wmlm.data.readers import POSITION_FIELDS
from wmlm.errors import ConfigError
from wmlm.modalities.base import Modality, StepMLP

PositionSource = Literal["auto", "raw", "calibrated"]


def position_field(source: str, owner: str) -> str:
    """The data field of a position source (``auto``, ``raw`` or ``calibrated``); ``owner`` names the option.

    ``auto`` -> ``position`` (calibrated GPS ``unit2_loc_cal`` where a scenario has it, else raw
    ``unit2_loc``), ``raw`` -> ``position_raw``, ``calibrated`` -> ``position_cal`` (an error on a scenario
    without the calibrated column).
    """
    if source not in POSITION_FIELDS:
        raise ConfigError(f"{owner}: position_source must be one of {list(POSITION_FIELDS)}, got {source!r}")
    return POSITION_FIELDS[source]


class ScaledEncoder(nn.Module):
    """Divides by a fixed scale (metres) before encoding, so inputs are O(1); optionally keeps only range."""

    def __init__(self, body: nn.Module, scale_m: float, range_only: bool = False) -> None:
        super().__init__()
        self.body = body
        self.scale_m = scale_m
        self.range_only = range_only

    def forward(self, position_enu_m: Tensor) -> Tensor:
        scaled = position_enu_m / self.scale_m
        if self.range_only:
            scaled = scaled.norm(dim=-1, keepdim=True)
        return self.body(scaled)


class GpsModality(Modality):
    """Vehicle position ``[B, P, 2]``: east and north of the base station, in metres.

    Args:
        scale_m: positions are divided by this before the encoder (typical cell radius).
        hidden_dim: width of the encoder's hidden layers.
        features: ``enu`` (east and north) or ``range`` (distance to the base station only). The bearing
            depends on how a site's road and array are oriented; the range does not, so ``range`` is the
            choice for models meant to work at base stations they never saw.
        position_source: which GPS column the positions come from: ``auto`` (default) the calibrated
            ``unit2_loc_cal`` where a scenario has it (said once per scenario when it is parsed), else the
            raw ``unit2_loc``; ``raw`` always ``unit2_loc``; ``calibrated`` always ``unit2_loc_cal`` (a
            scenario without it is an error). Sets ``field``: ``position``, ``position_raw`` or
            ``position_cal``.
    """

    name = "gps"
    field = "position"
    step_shape = (2,)

    def __init__(
        self,
        scale_m: float = 50.0,
        hidden_dim: int = 128,
        features: Literal["enu", "range"] = "enu",
        position_source: PositionSource = "auto",
    ) -> None:
        if scale_m <= 0:
            raise ConfigError(f"gps modality: scale_m must be positive, got {scale_m}")
        if features not in ("enu", "range"):
            raise ConfigError(f"gps modality: features must be 'enu' or 'range', got {features!r}")
        self.scale_m = scale_m
        self.hidden_dim = hidden_dim
        self.features = features
        self.position_source = position_source
        self.field = position_field(position_source, "gps modality")  # type: ignore[misc]

    def build_encoder(self, embed_dim: int) -> nn.Module:
        range_only = self.features == "range"
        return ScaledEncoder(
            StepMLP(1 if range_only else 2, embed_dim, self.hidden_dim), self.scale_m, range_only
        )
