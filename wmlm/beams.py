"""The beam codebook's facts, in one place: its size, dB normalisation, best beam, centring and top-k.

Beam index ``i`` (0-based, as in tensors) is codebook beam ``i + 1`` (1-based, as in the DeepSense files
and the prediction CSVs). Power is linear received power ``[..., NUM_BEAMS]``.

Importing this module does not import torch: the numpy-only simulator reads ``NUM_BEAMS`` from here and
stays torch-free. The functions take and return torch tensors; the two that build new tensors import
torch when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import Tensor

NUM_BEAMS = 64  # beams of the codebook (16-element ULA at 60 GHz, DeepSense 6G)
MIN_POWER = 1e-12  # linear; keeps log10 finite and peaks non-zero for all-zero vectors
PREDICTED_TOP_K = 3  # beams per future step written by ``beam_predictions`` (the DBA score's k)


# ------------------------------------------------------------------------------------ dB normalisation


def power_to_relative(power_linear: Tensor, peak_linear: Tensor, floor_db: float) -> Tensor:
    """Linear power ``[..., beams]`` to ``y = 1 + max(10 log10(p / peak), floor_db) / |floor_db|``.

    ``peak_linear`` broadcasts against ``power_linear`` (e.g. ``[B, 1, 1]`` or ``[..., 1]``). ``y = 1`` is the
    peak, ``y = 0`` is ``|floor_db|`` dB below it (everything weaker is clipped there) and ``y > 1`` is
    stronger than the peak. Dividing by a peak removes the absolute power level, which differs by orders of
    magnitude between sites (transmit power, distance, hardware).

    Args:
        power_linear: linear power, non-negative.
        peak_linear: the reference power, positive.
        floor_db: weakest relative power represented, in dB below the peak (negative).
    """
    ratio = (power_linear / peak_linear).clamp_min(10.0 ** (floor_db / 10.0))
    return 1.0 + 10.0 * ratio.log10() / abs(floor_db)


def relative_to_power(relative: Tensor, peak_linear: Tensor, floor_db: float) -> Tensor:
    """Inverse of ``power_to_relative``: linear power ``[..., beams]``; values below the floor sit on it."""
    ratio_db = (relative.clamp_min(0.0) - 1.0) * abs(floor_db)
    return peak_linear * 10.0 ** (ratio_db / 10.0)


def normalize_power(power_linear: Tensor, mode: Literal["db", "max"], floor_db: float) -> Tensor:
    """Per-vector normalisation of linear beam power ``[..., beams]`` into ``[0, 1]``.

    ``max`` divides by the vector's strongest beam. ``db`` is ``power_to_relative`` with that peak as the
    reference: ``10*log10(p / max p)`` clipped at ``floor_db``, ``[floor_db, 0] dB`` mapped to ``[0, 1]``.
    Both remove the absolute power level, so an encoder only sees the shape of the beam pattern, which is
    what carries the vehicle's angle.
    """
    peak = power_linear.amax(dim=-1, keepdim=True).clamp_min(MIN_POWER)
    if mode == "max":
        return (power_linear / peak).clamp_min(0.0)
    return power_to_relative(power_linear, peak, floor_db)


# ------------------------------------------------------------------------------------------ best beam


def best_beams(power_linear: Tensor) -> Tensor:
    """Index (0-based) of the strongest beam of each vector: ``[..., beams] -> [...]``."""
    return power_linear.argmax(dim=-1)


def last_best_beam(power_linear: Tensor) -> Tensor:
    """``[B]`` strongest beam (0-based) of each window's last *measured* step, from power ``[B, P, beams]``.

    A step whose beam sweep is missing is served as all-zero power (masked); taking its argmax would make
    beam 0 the reference of the ``last_beam`` frame and of ``BeamHead(relative_to=...)``. So the last step
    with any positive power is used (the last step when none has any). Traceable for ONNX export.
    """
    import torch

    measured = power_linear.amax(dim=-1) > 0  # [B, P]
    steps = power_linear.shape[1]
    # index of the last True per row: first True of the reversed row, counted from the end
    from_end = torch.flip(measured, dims=[1]).to(torch.int64).argmax(dim=1)
    last = torch.where(measured.any(dim=1), steps - 1 - from_end, torch.full_like(from_end, steps - 1))
    step_power = power_linear.gather(1, last[:, None, None].expand(-1, 1, power_linear.shape[-1]))[:, 0]
    return best_beams(step_power)


# -------------------------------------------------------------------- centring ("last_beam" frame)


def centre_on_beam(values: Tensor, centre: Tensor, fill: float = 0.0) -> Tensor:
    """Re-index the beam axis around ``centre [B]``: ``[B, P, N] -> [B, P, 2N - 1]``.

    Output index ``k`` holds beam ``centre + k - (N - 1)``, so the centre beam always sits at ``N - 1``
    and every beam of the codebook stays representable; positions off the codebook get ``fill``.
    """
    import torch

    batch, steps, num_beams = values.shape
    source = torch.arange(2 * num_beams - 1, device=values.device) + centre[:, None] - (num_beams - 1)
    inside = (source >= 0) & (source < num_beams)  # [B, 2N-1]
    index = source.clamp(0, num_beams - 1)[:, None, :].expand(batch, steps, -1)
    return torch.where(inside[:, None, :], values.gather(-1, index), torch.full_like(values[..., :1], fill))


def uncentre_scores(offset_scores: Tensor, centre: Tensor, num_beams: int = NUM_BEAMS) -> Tensor:
    """Scores per beam offset ``[B, F, 2N - 1]`` (as ``centre_on_beam`` lays them out) to beams ``[B, F, N]``.

    Absolute beam ``b`` is offset ``b - centre``, stored at index ``b - centre + N - 1``.
    """
    import torch

    index = torch.arange(num_beams, device=offset_scores.device) - centre[:, None] + num_beams - 1  # [B, N]
    return offset_scores.gather(-1, index[:, None, :].expand(-1, offset_scores.shape[1], -1))


# ---------------------------------------------------------------------------------------------- top-k


def beam_predictions(scores: Tensor, k: int = PREDICTED_TOP_K) -> dict[str, Tensor]:
    """Top-``k`` beams per future step, 1-based as in the DeepSense files: ``{"top-j beam": [B, F]}``.

    ``scores [B, F, beams]``: logits or any scores, higher is more likely.
    """
    ranked = scores.topk(k, dim=-1).indices + 1
    return {f"top-{j + 1} beam": ranked[..., j] for j in range(k)}
