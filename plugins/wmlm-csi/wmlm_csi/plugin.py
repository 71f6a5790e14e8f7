"""The wmlm plugin module of ``wmlm-csi`` (entry point ``csi``): the ``csi`` modality, reader and head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wmlm import hookimpl

from wmlm_csi.head import CsiHead
from wmlm_csi.modality import CsiModality
from wmlm_csi.reader import CsiReader


@hookimpl
def wmlm_register_modalities(register: Callable[[type[Any]], None]) -> None:
    register(CsiModality)


@hookimpl
def wmlm_register_heads(register: Callable[[type[Any]], None]) -> None:
    register(CsiHead)


@hookimpl
def wmlm_register_readers(register: Callable[[Any], None]) -> None:
    register(CsiReader())
