"""wmlm: wireless-native multimodal large models.

Public API: ``Modality``, ``TaskHead``, ``FieldReader``, ``hookimpl``, ``WMLM``, ``DeepSenseDataModule``.
Heavy modules (Lightning, open_clip) are imported on first use of ``WMLM`` / ``DeepSenseDataModule``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wmlm.hookspecs import hookimpl
from wmlm.version import __version__

__all__ = ["DeepSenseDataModule", "FieldReader", "Modality", "TaskHead", "WMLM", "__version__", "hookimpl"]

_LAZY = {
    "Modality": "wmlm.modalities.base",
    "TaskHead": "wmlm.heads.base",
    "FieldReader": "wmlm.data.readers",
    "WMLM": "wmlm.model.wmlm",
    "DeepSenseDataModule": "wmlm.data.datamodule",
}

if TYPE_CHECKING:
    from wmlm.data.datamodule import DeepSenseDataModule
    from wmlm.data.readers import FieldReader
    from wmlm.heads.base import TaskHead
    from wmlm.modalities.base import Modality
    from wmlm.model.wmlm import WMLM


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wmlm' has no attribute {name!r}")
