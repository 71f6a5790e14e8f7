"""Training-time batch augmentations along the beam axis.

What transfers between base stations is how the beam pattern *moves*, not where on the codebook it sits:
another site's road runs through other beams, in the other direction. Mirroring and shifting the beam
axis (inputs and beam targets together) teaches exactly that invariance. They act on the ``beam``
modality and the ``beam`` and ``power`` targets (``BeamFlip`` also mirrors camera frames, point clouds and
CSI); GPS features are left as they are, which is exact for the mirror-symmetric ``range`` features only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from wmlm.errors import ConfigError

BEAM_KEY = "beam"
POWER_TARGET_KEY = "power"  # future beam-power vectors [B, F, beams] (the power head's target)


class BatchAugmentation(ABC):
    """A random transform of a training batch (dict in, new dict out; the input is not modified)."""

    @abstractmethod
    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]: ...


def _with_beam(
    batch: dict[str, Any], power: Tensor, labels: Tensor | None, future_power: Tensor | None = None
) -> dict[str, Any]:
    out = dict(batch)
    out[BEAM_KEY] = power
    target = dict(batch.get("target", {}))
    if labels is not None:
        target[BEAM_KEY] = labels
    if future_power is not None:
        target[POWER_TARGET_KEY] = future_power
    if target:
        out["target"] = target
    return out


class BeamFlip(BatchAugmentation):
    """Mirror the beam axis of a random share ``p`` of windows: beam ``b`` becomes ``num_beams - 1 - b``.

    Mirroring the codebook is mirroring the scene along the array axis (beam index grows with the sine of
    the arrival angle, i.e. towards local ``+x``), so other sensors' data of the same windows are mirrored
    with it and stay paired with the beams (absent keys are ignored):

    Args:
        p: share of windows mirrored.
        image_keys: camera frames ``[B, P, C, H, W]`` whose right side is the increasing-beam side (as in
            the simulator): flipped left-right.
        point_keys: point clouds ``[B, P, M, 3+]`` in the BS frame, ``x`` along the array: ``x`` negated.
        antenna_keys: channels ``[B, P, ..., antennas, subcarriers]`` of a ULA whose element positions are
            symmetric about its centre: the antenna axis reversed, which maps every arrival sine to its
            negative exactly.
    """

    def __init__(
        self,
        p: float = 0.5,
        image_keys: tuple[str, ...] = ("image",),
        point_keys: tuple[str, ...] = ("lidar",),
        antenna_keys: tuple[str, ...] = ("csi",),
    ) -> None:
        self.p = p
        self.image_keys, self.point_keys = tuple(image_keys), tuple(point_keys)
        self.antenna_keys = tuple(antenna_keys)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        power = batch[BEAM_KEY]  # [B, P, beams]
        flip = torch.rand(len(power), device=power.device) < self.p
        mirrored = torch.where(flip[:, None, None], power.flip(-1), power)
        labels = batch.get("target", {}).get(BEAM_KEY)
        if labels is not None:
            labels = torch.where(flip[:, None], power.shape[-1] - 1 - labels, labels)
        future = batch.get("target", {}).get(POWER_TARGET_KEY)
        if future is not None:
            future = torch.where(flip[:, None, None], future.flip(-1), future)
        out = _with_beam(batch, mirrored, labels, future)
        for keys, mirror in (
            (self.image_keys, lambda x: x.flip(-1)),
            (self.point_keys, _negate_x),
            (self.antenna_keys, lambda x: x.flip(-2)),
        ):
            for key in keys:
                if key in batch:
                    data = batch[key]
                    chosen = flip.reshape(-1, *([1] * (data.dim() - 1)))
                    out[key] = torch.where(chosen, mirror(data), data)
        return out


def _negate_x(points: Tensor) -> Tensor:
    """Points ``[..., 3+]`` with the first coordinate negated."""
    sign = torch.ones(points.shape[-1], dtype=points.dtype, device=points.device)
    sign[0] = -1
    return points * sign


class BeamShift(BatchAugmentation):
    """Shift each window's beam axis by a random whole number of beams, at most ``max_shift``.

    The shift is drawn per window so that its past best beams and future labels stay on the codebook;
    beams shifted in from outside take the window's lowest power.
    """

    def __init__(self, max_shift: int = 8) -> None:
        self.max_shift = max_shift

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        power = batch[BEAM_KEY]  # [B, P, beams]
        num_beams = power.shape[-1]
        labels = batch.get("target", {}).get(BEAM_KEY)
        occupied = power.argmax(-1)  # [B, P]
        if labels is not None:
            occupied = torch.cat([occupied, labels], dim=1)
        low = (-occupied.min(dim=1).values).clamp(min=-self.max_shift)  # shifts keeping every beam >= 0
        high = (num_beams - 1 - occupied.max(dim=1).values).clamp(max=self.max_shift)
        shift = low + (torch.rand(len(power), device=power.device) * (high - low + 1)).long().clamp(
            max=high - low
        )
        source = torch.arange(num_beams, device=power.device) - shift[:, None]  # [B, beams]
        inside = (source >= 0) & (source < num_beams)
        floor = power.amin(dim=(1, 2), keepdim=True)

        def move(values: Tensor) -> Tensor:  # [B, T, beams] shifted by each window's shift
            gathered = values.gather(-1, source.clamp(0, num_beams - 1)[:, None, :].expand_as(values))
            return torch.where(inside[:, None, :], gathered, floor)

        future = batch.get("target", {}).get(POWER_TARGET_KEY)
        return _with_beam(
            batch,
            move(power),
            None if labels is None else labels + shift[:, None],
            None if future is None else move(future),
        )


class ModalityDropout(BatchAugmentation):
    """Drop whole modalities from random training windows, so the model learns to predict without them.

    For each window and each modality of ``batch["mask"]`` not in ``keep``, with probability ``p`` the
    modality's mask is set False at every step; fusion then leaves it out, exactly as when the sensor is
    missing at test time (a camera that failed, a GPS outage). Inputs are not changed.

    Args:
        p: probability of dropping a modality from a window.
        keep: modalities never dropped (e.g. the beam power that a relative beam head reads).
    """

    def __init__(self, p: float = 0.2, keep: tuple[str, ...] = (BEAM_KEY,)) -> None:
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"ModalityDropout: p must be in [0, 1), got {p}")
        self.p = p
        self.keep = tuple(keep)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        masks = dict(batch.get("mask", {}))
        for name, mask in masks.items():
            if name in self.keep:
                continue
            dropped = torch.rand(mask.shape[0], device=mask.device) < self.p  # [B]
            masks[name] = mask & ~dropped[:, None]
        return {**batch, "mask": masks}
