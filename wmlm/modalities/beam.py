"""Built-in ``beam`` modality: received power of every beam of the codebook at each time step."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from wmlm.beams import NUM_BEAMS, centre_on_beam, last_best_beam, normalize_power
from wmlm.errors import ConfigError
from wmlm.modalities.base import Modality, StepMLP


class BeamConvEncoder(nn.Module):
    """1-D convolutions along the beam axis, then a projection: ``[B, P, beams] -> [B, P, D]``.

    Convolution weights are shared across beam indices, so a pattern moving across the codebook (a
    vehicle's angle changing) is seen by the same filters wherever it is.
    """

    def __init__(self, num_beams: int, embed_dim: int, channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size=5, padding=2),
            nn.GELU(),
            nn.Conv1d(channels, channels, kernel_size=5, padding=2),
            nn.GELU(),
        )
        self.proj = nn.Sequential(
            nn.Linear(channels * num_beams, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        batch, steps, beams = x.shape
        features = self.conv(x.reshape(batch * steps, 1, beams))
        return self.proj(features.reshape(batch, steps, -1))


class NormalizedPowerEncoder(nn.Module):
    """Normalises linear power per sample, optionally centres each window on its last best beam, encodes."""

    def __init__(
        self, body: nn.Module, mode: Literal["db", "max"], floor_db: float, centred: bool = False
    ) -> None:
        super().__init__()
        self.body = body
        self.mode = mode
        self.floor_db = floor_db
        self.centred = centred

    def forward(self, power_linear: Tensor) -> Tensor:
        normalized = normalize_power(power_linear, self.mode, self.floor_db)
        if self.centred:
            normalized = centre_on_beam(normalized, last_best_beam(power_linear))
        return self.body(normalized)


class BeamModality(Modality):
    """Beam power: ``[B, P, 64]`` linear received power, index ``i`` = beam ``i + 1`` of the codebook.

    Args:
        normalization: ``db`` (default) or ``max``; see ``wmlm.beams.normalize_power``.
        floor_db: lowest relative power kept by ``db`` normalisation, in dB below the peak.
        encoder: ``conv`` (default; shared filters along the beam axis) or ``mlp`` (per-step MLP).
        frame: ``absolute`` (beam indices as measured) or ``last_beam``: every window is re-indexed around
            the best beam of its last step, so the encoder sees only how the pattern moves, not where on the
            codebook it is, which is what carries over to base stations never seen. Pair it with
            ``BeamHead(relative_to="beam")``.
        hidden_dim: width of the encoder's hidden layers.
    """

    name = "beam"
    field = "beam_power"
    step_shape = (NUM_BEAMS,)

    def __init__(
        self,
        normalization: Literal["db", "max"] = "db",
        floor_db: float = -30.0,
        encoder: Literal["mlp", "conv"] = "conv",
        hidden_dim: int = 256,
        frame: Literal["absolute", "last_beam"] = "absolute",
    ) -> None:
        if floor_db >= 0:
            raise ConfigError(f"beam modality: floor_db must be negative (dB below the peak), got {floor_db}")
        self.normalization = normalization
        self.floor_db = floor_db
        self.encoder = encoder
        self.hidden_dim = hidden_dim
        if frame not in ("absolute", "last_beam"):
            raise ConfigError(f"beam modality: frame must be 'absolute' or 'last_beam', got {frame!r}")
        self.frame = frame

    def build_encoder(self, embed_dim: int) -> nn.Module:
        width = 2 * NUM_BEAMS - 1 if self.frame == "last_beam" else NUM_BEAMS
        if self.encoder == "conv":
            body: nn.Module = BeamConvEncoder(width, embed_dim)
        elif self.encoder == "mlp":
            body = StepMLP(width, embed_dim, self.hidden_dim)
        else:
            raise ConfigError(f"beam modality: encoder must be 'mlp' or 'conv', got {self.encoder!r}")
        return NormalizedPowerEncoder(
            body, self.normalization, self.floor_db, centred=self.frame == "last_beam"
        )
