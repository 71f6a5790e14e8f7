"""What flows through ``wmlm.deploy.online.OnlineAdapter``: a sample as it arrives, the prediction made
at it, the report of one update, and the per-pass records the adapter keeps until a pass ends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wmlm.modalities.base import Modality


@dataclass(frozen=True)
class Sample:
    """One measurement of one site, as it arrives (every 100 ms at 10 Hz).

    Attributes:
        index: sample number at this site, increasing by 1 per sample (the DeepSense ``index`` column); a
            step of more than 1 is a gap (samples lost) that windows never span.
        pass_id: vehicle pass (the DeepSense ``seq_index``); a new value starts a new pass.
        inputs: ``{modality: one step}`` with the model's modality names and per-step shapes, e.g.
            ``{"beam": [64] linear received power (element i is beam i + 1), "gps": [2] metres east/north of
            the base station}``; numpy or torch. A missing modality, or a step holding a NaN, is masked.
    """

    index: int
    pass_id: int
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Prediction:
    """Beams predicted at one sample for the next ``F`` samples.

    Attributes:
        index: the sample the prediction was made at (the last past step of its window).
        beams: ``[F, k] int64`` codebook beams (1-based, as in the DeepSense files and ``wmlm.deploy.Predictor``),
            best first; row ``j`` is sample ``index + j + 1``.
        scores: ``[F, 64] float32`` the beam head's logits (element ``i`` is beam ``i + 1``); with a site
            prior, the log of the blended probabilities.
    """

    index: int
    beams: Tensor
    scores: Tensor


@dataclass(frozen=True)
class UpdateReport:
    """What one ``end_pass`` did. ``seconds``: wall time of the whole update (windows + steps)."""

    pass_number: int
    windows_added: int
    buffer_windows: int
    steps: int
    seconds: float
    mean_loss: float | None


@dataclass
class Step:
    """A sample of the current pass, kept until the pass ends."""

    index: int
    inputs: dict[str, Tensor]  # {modality: [*step_shape]}, zeros where masked
    mask: dict[str, bool]
    run: int  # contiguous run within the pass
    beam: int | None = None  # observed best beam, 0-based


@dataclass
class Pass:
    pass_id: int
    steps: list[Step] = field(default_factory=list)
    by_index: dict[int, Step] = field(default_factory=dict)


def step_inputs(
    specs: Mapping[str, Modality], inputs: Mapping[str, Any]
) -> tuple[dict[str, Tensor], dict[str, bool]]:
    """One sample's ``inputs`` as ``({modality: [*step_shape]}, {modality: present})`` for the model's
    modality ``specs``: zeros where a modality is missing or holds a NaN."""
    unknown = sorted(set(inputs) - set(specs))
    if unknown:
        raise ValueError(f"online adaptation: inputs {unknown} are not modalities of the model {list(specs)}")
    values, mask = {}, {}
    for name, spec in specs.items():
        raw = inputs.get(name)
        if raw is None:
            values[name], mask[name] = torch.zeros(spec.step_shape, dtype=spec.dtype), False
            continue
        value = torch.as_tensor(np.array(raw)).to(spec.dtype)  # a copy: memory-mapped rows are read-only
        if tuple(value.shape) != tuple(spec.step_shape):
            raise ValueError(
                f"online adaptation: modality {name!r} expects one step of shape {list(spec.step_shape)}, "
                f"got {list(value.shape)}"
            )
        present = bool(torch.isfinite(value).all()) if value.is_floating_point() else True
        values[name], mask[name] = (value if present else torch.zeros_like(value)), present
    return values, mask


def stack_steps(steps: list[Step]) -> dict[str, Any]:
    """One window ``{m: [1, P, ...], "mask": {m: [1, P] bool}}`` from ``P`` recorded steps."""
    names = steps[0].inputs
    batch: dict[str, Any] = {m: torch.stack([s.inputs[m] for s in steps])[None] for m in names}
    batch["mask"] = {m: torch.tensor([[s.mask[m] for s in steps]]) for m in names}
    return batch
