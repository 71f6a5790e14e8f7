"""The JSON written next to an exported graph (``wmlm_export.json``): inputs, outputs, provenance.

Read by ``wmlm.deploy.Predictor`` to check inputs and name outputs; meant for people too, so every input
and output carries its meaning (units, what an index stands for) from the modality's or head's docstring.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wmlm.deploy import spec
from wmlm.heads.beam import BeamHead
from wmlm.model.wmlm import WMLM
from wmlm.version import __version__


def _first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _dims(batch: int | str, step_shape: Sequence[int]) -> list[int | str]:
    """JSON shape ``[B or batch size, *step_shape]``."""
    return [spec.BATCH_AXIS if batch == "dynamic" else batch, *step_shape]


def describe(
    model: WMLM,
    modalities: Sequence[str],
    outputs: Sequence[Tensor],
    batch: int | str,
    exporter: str,
    opset: int,
    checkpoint: Path | None,
    verification: dict[str, Any],
) -> dict[str, Any]:
    """The JSON written next to the graph: what goes in and comes out, and where it came from.

    Args:
        model: the exported model. modalities: the graph's inputs, in order.
        outputs: the heads' outputs on the example batch (their shapes are recorded).
        batch: ``"dynamic"`` or the fixed batch size. exporter, opset: how the graph was made.
        checkpoint: the source checkpoint (None: a model built in Python).
        verification: how ONNX Runtime compared with PyTorch.
    """
    inputs = []
    for name in modalities:
        modality = model.modality_specs[name]
        inputs.append(
            {
                "modality": name,
                "onnx_name": spec.input_name(name),
                "shape": _dims(batch, (model.past, *modality.step_shape)),
                "dtype": str(modality.dtype).removeprefix("torch."),
                "mask_onnx_name": spec.mask_name(name),
                "mask_shape": _dims(batch, (model.past,)),
                "mask_dtype": "float32",
                "field": modality.field,
                "meaning": _first_paragraph(type(modality)),
            }
        )
    heads = []
    for (name, head), value in zip(model.heads.items(), outputs):
        entry: dict[str, Any] = {
            "head": name,
            "onnx_name": spec.output_name(name),
            "shape": _dims(batch, tuple(value.shape[1:])),
            "dtype": str(value.dtype).removeprefix("torch."),
            "class": f"{type(head).__module__}.{type(head).__qualname__}",
            "meaning": _first_paragraph(type(head)),
        }
        if isinstance(head, BeamHead):
            entry["kind"] = "beam_logits"
            entry["num_beams"] = head.num_beams
            entry["meaning"] = (
                f"unnormalised scores (logits) [B, F={model.future}, {head.num_beams}] of the optimal beam at "
                f"each of the next {model.future} steps; index i on the last axis is beam i + 1 of the "
                "codebook (DeepSense's 1-based labels); softmax over the last axis gives probabilities, "
                "argmax the predicted beam"
                + (
                    f"; scored relative to the best beam of the last step of input {head.relative_to!r} and "
                    "already mapped back to absolute beams"
                    if head.relative_to
                    else ""
                )
            )
        heads.append(entry)
    return {
        "format": spec.FORMAT,
        "format_version": spec.FORMAT_VERSION,
        "wmlm_version": __version__,
        "torch_version": torch.__version__,
        "exporter": exporter,
        "opset": opset,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source_checkpoint": None if checkpoint is None else str(checkpoint.resolve()),
        "source_checkpoint_sha256": None if checkpoint is None else _sha256(checkpoint),
        "past": model.past,
        "future": model.future,
        "batch": batch,
        "inputs": inputs,
        "modalities_left_out": [m for m in model.modality_specs if m not in modalities],
        "outputs": heads,
        "verification": verification,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
