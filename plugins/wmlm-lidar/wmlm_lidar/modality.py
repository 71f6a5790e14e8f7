"""The ``lidar`` modality: one point cloud per time step, encoded by a PointNet."""

from __future__ import annotations

from torch import nn
from wmlm import Modality

from wmlm_lidar.encoder import PointNetEncoder
from wmlm_lidar.reader import NUM_POINTS


class LidarModality(Modality):
    """LiDAR point clouds ``float32 [B, P, num_points, 3]``: metres in the base station's local frame.

    Padding points are NaN (see ``wmlm_lidar.reader``); the PointNet encoder ignores them, so a step's
    embedding depends only on its real points. Coordinates are divided by ``range_scale_m`` before the
    encoder: the simulator's returns reach 80 m and real roadside LiDARs a little more, so 50 m keeps most
    values within ``[-1, 1]`` without squashing the nearby vehicles that matter for the beam.

    Args:
        num_points: points per cloud; must match the ``lidar`` reader (``NUM_POINTS`` = 256 by default).
        range_scale_m: metres that map to 1.0 at the encoder's input.
        width: width of the PointNet's per-point features.
        field: data field that supplies the clouds.
    """

    name = "lidar"
    field = "lidar"
    step_shape = (NUM_POINTS, 3)

    def __init__(
        self,
        num_points: int = NUM_POINTS,
        range_scale_m: float = 50.0,
        width: int = 128,
        field: str = "lidar",
    ) -> None:
        if num_points < 1 or width < 2 or range_scale_m <= 0:
            raise ValueError(
                "lidar modality: need num_points >= 1, width >= 2 and range_scale_m > 0, got "
                f"num_points={num_points}, width={width}, range_scale_m={range_scale_m}"
            )
        self.num_points, self.range_scale_m, self.width = num_points, range_scale_m, width
        self.step_shape = (num_points, 3)  # type: ignore[misc]  # per instance: the point count is an option
        self.field = field  # type: ignore[misc]

    def build_encoder(self, embed_dim: int) -> nn.Module:
        return PointNetEncoder(embed_dim, width=self.width, range_scale_m=self.range_scale_m)
