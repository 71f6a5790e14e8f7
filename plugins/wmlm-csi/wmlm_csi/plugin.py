"""The wmlm plugin module of ``wmlm-csi`` (entry point ``csi``): the ``csi`` modality, reader and head."""

from __future__ import annotations

from wmlm import hookimpl

from wmlm_csi.head import CsiHead
from wmlm_csi.modality import CsiModality
from wmlm_csi.reader import CsiReader


@hookimpl
def wmlm_register_modalities(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(CsiModality)


@hookimpl
def wmlm_register_heads(register) -> None:  # noqa: ANN001
    register(CsiHead)


@hookimpl
def wmlm_register_readers(register) -> None:  # noqa: ANN001
    register(CsiReader())
