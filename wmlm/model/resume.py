"""What a checkpoint needs beyond Lightning's own state so a resumed run repeats the uninterrupted one.

Lightning restores weights, optimizer, scheduler, loop counters and (through ``wmlm.data.loader``) the
position in the epoch. The random number generators are ours to keep: dropout and the training-batch
augmentations draw from them, so without them a resumed run would drift from the uninterrupted one.
States are stored as tensors and plain lists, so checkpoints still load with ``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def collect_rng_states() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU) global generators."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": [version, list(python_state), gauss],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what ``collect_rng_states`` returned."""
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, python_state, gauss = states["python"]
    random.setstate((version, tuple(python_state), gauss))
