"""Deployment: ``wmlm export`` (a trained WMLM as ONNX), ``Predictor`` (ONNX Runtime from numpy) and
``OnlineAdapter`` (a per-site model that keeps learning while it serves; ``prequential_evaluate``).

Nothing is imported eagerly: ``wmlm.deploy.predictor`` must stay importable without torch, and
``wmlm.deploy.export`` needs torch. ``from wmlm.deploy import Predictor`` loads only the predictor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["OnlineAdapter", "Predictor", "export_onnx", "prequential_evaluate", "top_k_beams"]

_LAZY = {
    "Predictor": "wmlm.deploy.predictor",
    "top_k_beams": "wmlm.deploy.predictor",
    "export_onnx": "wmlm.deploy.export",
    "OnlineAdapter": "wmlm.deploy.online",
    "prequential_evaluate": "wmlm.deploy.prequential",
}

if TYPE_CHECKING:
    from wmlm.deploy.export import export_onnx
    from wmlm.deploy.online import OnlineAdapter
    from wmlm.deploy.predictor import Predictor, top_k_beams
    from wmlm.deploy.prequential import prequential_evaluate


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wmlm.deploy' has no attribute {name!r}")
