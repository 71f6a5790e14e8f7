"""The wmlm plugin module of ``wmlm-lidar`` (entry point ``lidar``): the ``lidar`` modality and field reader."""

from __future__ import annotations

from wmlm import hookimpl

from wmlm_lidar.modality import LidarModality
from wmlm_lidar.reader import LidarReader


@hookimpl
def wmlm_register_modalities(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(LidarModality)


@hookimpl
def wmlm_register_readers(register) -> None:  # noqa: ANN001
    register(LidarReader())
