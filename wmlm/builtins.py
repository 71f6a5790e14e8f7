"""wmlm's own plugin: every built-in ``@hookimpl`` in one module, as the plugin packages' ``plugin.py`` do.

``wmlm.registry`` registers this module (``DEFAULT_PLUGINS``) on the same plugin manager as third-party
plugins, before them, so on a name clash the built-in wins. Importing it imports the built-in modalities,
heads and readers and registers nothing: the registry calls the hooks on the first lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wmlm.data.readers import (
    BeamLabelReader,
    BeamPowerReader,
    BlockageReader,
    CalibratedPositionReader,
    PositionReader,
    PreferCalibratedPositionReader,
)
from wmlm.heads.beam import BeamHead
from wmlm.heads.blockage import BlockageHead
from wmlm.heads.position import PositionHead
from wmlm.heads.power import PowerHead
from wmlm.hookspecs import hookimpl
from wmlm.modalities.beam import BeamModality
from wmlm.modalities.gps import GpsModality
from wmlm.modalities.image import ImageModality, ImageReader

MODALITIES = (BeamModality, GpsModality, ImageModality)
HEADS = (BeamHead, PowerHead, PositionHead, BlockageHead)
READERS = (
    BeamPowerReader,
    BeamLabelReader,
    PreferCalibratedPositionReader,
    PositionReader,
    CalibratedPositionReader,
    BlockageReader,
    ImageReader,
)


@hookimpl
def wmlm_register_modalities(register: Callable[[type[Any]], None]) -> None:
    for modality in MODALITIES:
        register(modality)


@hookimpl
def wmlm_register_heads(register: Callable[[type[Any]], None]) -> None:
    for head in HEADS:
        register(head)


@hookimpl
def wmlm_register_readers(register: Callable[[Any], None]) -> None:
    for reader in READERS:
        register(reader())
