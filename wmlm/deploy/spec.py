"""Names shared by ``wmlm export`` and the ``Predictor``: files, format tag, ONNX input/output names.

No torch, numpy or onnxruntime here, so the torch-free ``Predictor`` can import it.
"""

from __future__ import annotations

MODEL_FILE = "model.onnx"
SPEC_FILE = "wmlm_export.json"
FORMAT = "wmlm-onnx"
FORMAT_VERSION = 1
BATCH_AXIS = "B"  # how a dynamic batch axis is written in the JSON shapes


def input_name(modality: str) -> str:
    """ONNX name of a modality's input ``[B, P, *step_shape]``: the modality's own name."""
    return modality


def mask_name(modality: str) -> str:
    """ONNX name of a modality's mask ``[B, P]`` float32 (1 = step present, 0 = missing)."""
    return f"mask.{modality}"


def output_name(head: str) -> str:
    """ONNX name of a head's output; prefixed, because a head and a modality may share a name (``beam``)."""
    return f"head.{head}"
