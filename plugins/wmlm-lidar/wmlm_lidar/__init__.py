"""wmlm-lidar: LiDAR point clouds as a wmlm modality.

Public API: ``LidarModality`` (modality ``lidar``), ``LidarReader`` (field ``lidar`` from the CSV column
``unit1_lidar``), ``PointNetEncoder``. The wmlm hooks live in ``wmlm_lidar.plugin`` (entry point ``lidar``).
"""

from __future__ import annotations

from wmlm_lidar.encoder import PointNetEncoder
from wmlm_lidar.modality import LidarModality
from wmlm_lidar.reader import NUM_POINTS, LidarReader

__version__ = "0.1.0"
__all__ = ["NUM_POINTS", "LidarModality", "LidarReader", "PointNetEncoder", "__version__"]
