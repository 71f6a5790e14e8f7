"""Safe checkpoint loading for ``init_from``: tensors only, and shapes must match."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from wmlm.errors import CheckpointError

log = logging.getLogger(__name__)


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose weights do not fit the model (another preset, embedding size, ...)."""


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a bare state dict), loaded with ``weights_only``."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise CheckpointMismatchError(
            f"checkpoint {path} cannot be loaded safely (weights only): {exc}"
        ) from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"checkpoint {path} holds no state_dict")
    return state


def load_matching_weights(model: nn.Module, path: Path) -> list[str]:
    """Copy the checkpoint's weights into ``model``; returns the model keys the checkpoint lacked.

    Keys present in both with different shapes are an error that names them; keys only in the model
    (e.g. heads absent from a stage-1 checkpoint) keep their fresh initialisation and are logged.
    """
    state = load_state_dict(path)
    own = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {list(v.shape)} vs model {list(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise CheckpointMismatchError(
            f"init_from {path}: {len(mismatched)} weights have other shapes (another preset or embed_dim?): "
            + "; ".join(mismatched[:8])
        )
    common = {k: v for k, v in state.items() if k in own}
    if not common:
        raise CheckpointMismatchError(f"init_from {path}: no weight name matches this model")
    model.load_state_dict(common, strict=False)
    missing = sorted(set(own) - set(common))
    log.info("init_from %s: loaded %d tensors; %d kept fresh", path, len(common), len(missing))
    return missing
