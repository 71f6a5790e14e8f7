"""``Predictor``: run a ``wmlm export`` folder on ONNX Runtime from plain numpy, without torch.

    from wmlm.deploy import Predictor
    predictor = Predictor("exported/")
    outputs = predictor.predict({"beam": power_linear, "gps": position_enu_m})  # {head: np.ndarray}
    beams = predictor.top_k_beams({"beam": power_linear, "gps": position_enu_m}, k=3)  # [B, F, 3], 1-based

Inputs are what the model's batches hold: one array per modality ``[B, P, *step_shape]`` with the dtype
listed in ``wmlm_export.json`` (e.g. ``beam`` float32 ``[B, 5, 64]`` linear received power, ``gps`` float32
``[B, 5, 2]`` metres east/north of the base station). Optional masks ``[B, P]`` (bool or 0/1) mark
missing steps: a step with mask 0 contributes nothing to the fused embedding (give it finite values,
e.g. zeros). Everything is checked against the JSON before ONNX Runtime runs, with errors that say
what was expected. This module imports only numpy, onnxruntime and the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from wmlm.deploy import spec


class PredictorInputError(ValueError):
    """Inputs that do not match the export (missing modality, wrong shape or dtype, bad values)."""


def top_k_beams(logits: np.ndarray, k: int = 3) -> np.ndarray:
    """The ``k`` highest-scoring beams ``[..., k]`` (1-based codebook numbers, best first).

    Args:
        logits: beam-head output ``[..., num_beams]``; index ``i`` is beam ``i + 1``.
        k: how many beams, ``1 <= k <= num_beams``.
    """
    if not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"top_k_beams: k must be in [1, {logits.shape[-1]}], got {k}")
    # a stable sort of the negated scores keeps the lower beam first among equal scores
    return np.argsort(-logits, axis=-1, kind="stable")[..., :k] + 1


class Predictor:
    """An exported WMLM on ONNX Runtime.

    Args:
        export_dir: folder written by ``wmlm export`` (``model.onnx`` and ``wmlm_export.json``).
        intra_op_threads: ONNX Runtime threads within an operator (None: ONNX Runtime's default, one
            per core). For batch-1 latency on a shared machine, 1 is often best.
        providers: ONNX Runtime execution providers, in order of preference.
    """

    def __init__(
        self,
        export_dir: str | Path,
        intra_op_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        folder = Path(export_dir)
        spec_path, model_path = folder / spec.SPEC_FILE, folder / spec.MODEL_FILE
        for path in (spec_path, model_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist; create the folder with `wmlm export`")
        self.spec: dict[str, Any] = json.loads(spec_path.read_text())
        if self.spec.get("format") != spec.FORMAT or self.spec.get("format_version") != spec.FORMAT_VERSION:
            raise ValueError(
                f"{spec_path} is not a {spec.FORMAT} v{spec.FORMAT_VERSION} description "
                f"(format {self.spec.get('format')!r} v{self.spec.get('format_version')!r})"
            )
        options = onnxruntime.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1  # the graph is a chain: no parallel branches worth a thread
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=list(providers))
        self._inputs = {entry["modality"]: entry for entry in self.spec["inputs"]}
        self._outputs = {entry["head"]: entry for entry in self.spec["outputs"]}
        expected = {e["onnx_name"] for e in self._inputs.values()} | {
            e["mask_onnx_name"] for e in self._inputs.values()
        }
        graph = {i.name for i in self.session.get_inputs()}
        if graph != expected:
            raise ValueError(
                f"{model_path} takes inputs {sorted(graph)}, {spec_path} lists {sorted(expected)}"
            )

    @property
    def modalities(self) -> list[str]:
        """Input modalities, in graph order."""
        return list(self._inputs)

    @property
    def heads(self) -> list[str]:
        """Output heads, in graph order."""
        return list(self._outputs)

    @property
    def past(self) -> int:
        """Input steps ``P`` per window."""
        return int(self.spec["past"])

    def predict(
        self, inputs: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Every head's output ``{head: array}`` (shapes in ``spec["outputs"]``) for a batch of windows.

        Args:
            inputs: ``{modality: [B, P, *step_shape]}``, one array per modality of the export.
            masks: ``{modality: [B, P]}`` bool or 0/1; a modality left out of ``masks`` is all present.
        """
        feed = self._feed(inputs, masks)
        names = [self._outputs[h]["onnx_name"] for h in self._outputs]
        return dict(zip(self._outputs, self.session.run(names, feed)))

    def top_k_beams(
        self,
        inputs: Mapping[str, np.ndarray],
        k: int = 3,
        masks: Mapping[str, np.ndarray] | None = None,
        head: str | None = None,
    ) -> np.ndarray:
        """The ``k`` most likely beams ``[B, F, k]`` of each future step (1-based, best first).

        Args:
            inputs, masks: as for ``predict``.
            k: beams per step.
            head: the beam head to read (default: the only one).
        """
        beam_heads = [h for h, e in self._outputs.items() if e.get("kind") == "beam_logits"]
        if head is None:
            if len(beam_heads) != 1:
                raise ValueError(f"top_k_beams: name the head; beam heads of this export: {beam_heads}")
            head = beam_heads[0]
        elif head not in beam_heads:
            raise ValueError(f"top_k_beams: {head!r} is not a beam head; beam heads: {beam_heads}")
        return top_k_beams(self.predict(inputs, masks)[head], k)

    # ------------------------------------------------------------------------------------- validation
    def _feed(
        self, inputs: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray] | None
    ) -> dict[str, np.ndarray]:
        if not isinstance(inputs, Mapping):
            raise PredictorInputError(
                f"inputs must be a dict {{modality: array}}, got {type(inputs).__name__}"
            )
        left_out = set(self.spec.get("modalities_left_out", []))
        for name in inputs:
            if name not in self._inputs:
                why = " (left out when exported)" if name in left_out else ""
                raise PredictorInputError(
                    f"unknown input {name!r}{why}; this export takes {', '.join(self._inputs)}"
                )
        missing = [m for m in self._inputs if m not in inputs]
        if missing:
            raise PredictorInputError(
                f"missing input(s) {missing}; this export takes {', '.join(self._inputs)}. For a modality "
                "that is not available, pass zeros of its shape and a mask of zeros."
            )
        feed: dict[str, np.ndarray] = {}
        batch: int | None = None
        for name, entry in self._inputs.items():
            value = self._checked(name, inputs[name], entry)
            if batch is not None and value.shape[0] != batch:
                raise PredictorInputError(
                    f"input {name!r} has batch size {value.shape[0]}, other inputs {batch}"
                )
            batch = value.shape[0]
            feed[entry["onnx_name"]] = value
        assert batch is not None
        unknown_masks = set(masks or {}) - set(self._inputs)
        if unknown_masks:
            raise PredictorInputError(
                f"masks for unknown input(s) {sorted(unknown_masks)}; inputs: {', '.join(self._inputs)}"
            )
        for name, entry in self._inputs.items():
            given = (masks or {}).get(name)
            feed[entry["mask_onnx_name"]] = self._mask(name, given, batch)
        return feed

    def _checked(self, name: str, value: Any, entry: dict[str, Any]) -> np.ndarray:
        """``value`` if it is an array of the export's dtype and shape ``[B, P, *step_shape]``."""
        if not isinstance(value, np.ndarray):
            raise PredictorInputError(f"input {name!r} must be a numpy array, got {type(value).__name__}")
        dtype = np.dtype(entry["dtype"])
        if value.dtype != dtype:
            raise PredictorInputError(
                f"input {name!r} has dtype {value.dtype}, expected {dtype} (convert with .astype(np.{dtype}))"
            )
        shape = entry["shape"]
        fixed = [(axis, size) for axis, size in enumerate(shape) if size != spec.BATCH_AXIS]
        if value.ndim != len(shape) or any(value.shape[axis] != size for axis, size in fixed):
            expected = "[" + ", ".join(map(str, shape)) + "]"
            raise PredictorInputError(
                f"input {name!r} has shape {list(value.shape)}, expected {expected} "
                f"({entry['meaning'] or 'see wmlm_export.json'})"
            )
        if value.shape[0] < 1:
            raise PredictorInputError(f"input {name!r} holds no window (batch size 0)")
        if dtype.kind == "f" and not np.isfinite(value).all():
            raise PredictorInputError(
                f"input {name!r} holds NaN or infinite values; give missing steps finite values (e.g. 0) "
                f"and mask them out with masks={{{name!r}: ...}}"
            )
        return value

    def _mask(self, name: str, given: Any, batch: int) -> np.ndarray:
        """float32 ``[B, P]`` mask (1 present, 0 missing) from a bool or 0/1 array; all ones if None."""
        if given is None:
            return np.ones((batch, self.past), dtype=np.float32)
        if not isinstance(given, np.ndarray):
            raise PredictorInputError(f"mask of {name!r} must be a numpy array, got {type(given).__name__}")
        if given.shape != (batch, self.past):
            raise PredictorInputError(
                f"mask of {name!r} has shape {list(given.shape)}, expected [{batch}, {self.past}] ([B, P])"
            )
        if given.dtype != np.bool_ and not np.isin(given, (0, 1)).all():
            raise PredictorInputError(f"mask of {name!r} must be bool or 0/1, got other values")
        return given.astype(np.float32)
