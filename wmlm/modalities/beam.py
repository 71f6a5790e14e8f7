"""Built-in ``beam`` modality: received power of every beam of the codebook at each time step."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from wmlm.errors import ConfigError
from wmlm.hookspecs import hookimpl
from wmlm.modalities.base import Modality, StepMLP

NUM_BEAMS = 64


def normalize_power(power_linear: Tensor, mode: Literal["db", "max"], floor_db: float) -> Tensor:
    """Per-sample normalisation of linear beam power ``[..., beams]`` into ``[0, 1]``.

    ``max`` divides by the strongest beam. ``db`` takes ``10*log10(p / max p)``, clips it at ``floor_db``
    and maps ``[floor_db, 0] dB`` to ``[0, 1]``. Both remove the absolute power level, which differs by
    two orders of magnitude between sites (transmit power, distance, hardware), so the encoder only sees
    the shape of the beam pattern, which is what carries the vehicle's angle.
    """
    peak = power_linear.amax(dim=-1, keepdim=True).clamp_min(1e-12)
    ratio = (power_linear / peak).clamp_min(0.0)
    if mode == "max":
        return ratio
    ratio_db = 10.0 * torch.log10(ratio.clamp_min(10.0 ** (floor_db / 10.0)))
    return 1.0 - ratio_db / floor_db


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


def last_best_beam(power: Tensor) -> Tensor:
    """``[B]`` strongest beam of each window's last step, from power ``[B, P, beams]``."""
    return power[:, -1].argmax(dim=-1)


def centre_on_beam(values: Tensor, centre: Tensor, fill: float = 0.0) -> Tensor:
    """Re-index the beam axis around ``centre``: ``[B, P, N] -> [B, P, 2N - 1]``.

    Output index ``k`` holds beam ``centre + k - (N - 1)``, so the centre beam always sits at ``N - 1``
    and every beam of the codebook stays representable; positions off the codebook get ``fill``.
    """
    batch, steps, num_beams = values.shape
    source = torch.arange(2 * num_beams - 1, device=values.device) + centre[:, None] - (num_beams - 1)
    inside = (source >= 0) & (source < num_beams)  # [B, 2N-1]
    index = source.clamp(0, num_beams - 1)[:, None, :].expand(batch, steps, -1)
    return torch.where(inside[:, None, :], values.gather(-1, index), torch.full_like(values[..., :1], fill))


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
        normalization: ``db`` (default) or ``max``; see ``normalize_power``.
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


@hookimpl
def wmlm_register_modalities(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(BeamModality)
