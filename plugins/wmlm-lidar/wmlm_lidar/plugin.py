"""The wmlm plugin module of ``wmlm-lidar`` (entry point ``lidar``): the ``lidar`` modality and field reader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wmlm import hookimpl

from wmlm_lidar.modality import LidarModality
from wmlm_lidar.reader import LidarReader


@hookimpl
def wmlm_register_modalities(register: Callable[[type[Any]], None]) -> None:
    register(LidarModality)


@hookimpl
def wmlm_register_readers(register: Callable[[Any], None]) -> None:
    register(LidarReader())
