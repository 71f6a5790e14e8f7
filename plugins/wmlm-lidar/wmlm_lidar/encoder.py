"""PointNet encoder: a shared per-point MLP and a masked max-pool, one embedding per time step."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def point_mask(points: Tensor) -> Tensor:
    """``[..., N]`` bool: True where a point of ``[..., N, 3]`` is real, False where it is NaN padding."""
    return torch.isfinite(points).all(dim=-1)


class PointNetEncoder(nn.Module):
    """``[B, P, N, 3]`` point clouds (metres, NaN = padding) to ``[B, P, embed_dim]``.

    Every point is divided by ``range_scale_m`` (so coordinates are mostly within ``[-1, 1]``) and mapped by
    the same MLP; the per-feature maximum over the real points of a cloud is its descriptor. The maximum is
    invariant to the order of the points and, because padding is excluded from it (not just zeroed), to how
    many padding slots a cloud has. A cloud without any real point gets a learned "empty" descriptor.
    No batch normalisation: its statistics would mix padding and real points.

    Args:
        embed_dim: output width ``D``.
        width: width of the per-point features (the descriptor).
        range_scale_m: metres that map to 1.0.
    """

    def __init__(self, embed_dim: int, width: int = 128, range_scale_m: float = 50.0) -> None:
        super().__init__()
        if range_scale_m <= 0:
            raise ValueError(f"PointNetEncoder: range_scale_m must be positive, got {range_scale_m}")
        self.range_scale_m = range_scale_m
        self.point_mlp = nn.Sequential(
            nn.Linear(3, width // 2),
            nn.GELU(),
            nn.Linear(width // 2, width),
            nn.GELU(),
            nn.Linear(width, width),
        )
        self.empty = nn.Parameter(torch.zeros(width))
        self.head = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
        )

    def forward(self, points: Tensor) -> Tensor:
        valid = point_mask(points)  # [B, P, N]
        # padding must never reach the MLP: NaN times a weight is NaN, and so would be every gradient
        scaled = torch.where(valid[..., None], points, torch.zeros_like(points)) / self.range_scale_m
        features = self.point_mlp(scaled)  # [B, P, N, W]
        features = features.masked_fill(~valid[..., None], float("-inf"))
        pooled = features.amax(dim=-2)  # [B, P, W]; -inf where a cloud has no real point
        pooled = torch.where(valid.any(dim=-1, keepdim=True), pooled, self.empty.to(pooled.dtype))
        return self.head(pooled)
