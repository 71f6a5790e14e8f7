"""The bounded replay buffer of ``wmlm.deploy.online.OnlineAdapter``: the learnable windows of ended
passes, at most ``capacity`` of them, and the batches drawn from them for each optimizer step.

    buffer = ReplayBuffer(capacity=2048, policy="fifo")
    buffer.add(window)                          # a Window of an ended pass
    batch = collate_windows(buffer.sample(64))  # WindowDataset's batch layout

Memory is bounded by ``capacity`` whatever the stream's length; what is dropped once full depends on the
policy (``fifo``: the oldest window; ``reservoir``: a uniform sample of everything ever added is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from wmlm.errors import ConfigError

BufferPolicy = Literal["fifo", "reservoir"]
BEAM_TARGET = "beam"  # target key of the beam head (``BeamHead.target_fields``)


@dataclass(frozen=True)
class Window:
    """One learnable window: ``past`` input steps and the best beams observed at the ``future`` steps.

    Attributes:
        inputs: ``{modality: [P, *step_shape]}``; masked steps hold zeros. mask: ``{modality: [P] bool}``.
        target: ``[F] int64`` best beams, 0-based (beam ``i + 1``), of the samples after ``index``.
        index: sample index of the last past step. pass_number: 0-based pass count at this adapter.
        hidden: ``[P, width]`` the fixed trunk's hidden states, kept when only the heads learn (the trunk
            cannot change then, so replaying a window costs one head forward pass, not a whole model's).
    """

    inputs: dict[str, Tensor]
    mask: dict[str, Tensor]
    target: Tensor
    index: int
    pass_number: int
    hidden: Tensor | None = None


class ReplayBuffer:
    """At most ``capacity`` windows of earlier passes, sampled uniformly for each optimizer step.

    ``fifo`` (default) drops the oldest window: a deployed site changes (an array re-aimed, a new building,
    another season) and the most recent passes say most about the site as it is now; with a capacity of a
    few dozen passes it still holds both driving directions. ``reservoir`` keeps a uniform sample of every
    window ever added (Vitter's algorithm R), for a site known to be stationary where early, rare passes
    should not be forgotten. Below capacity both hold everything.

    Args:
        capacity: windows kept (memory: ``capacity * P * 64 * 4`` bytes for beam power alone).
        policy: ``fifo`` or ``reservoir``.
        seed: seed of the reservoir's replacement draws and of ``sample``.
    """

    def __init__(self, capacity: int, policy: BufferPolicy = "fifo", seed: int = 0) -> None:
        if capacity < 1:
            raise ConfigError(f"replay buffer: capacity must be >= 1 window, got {capacity}")
        if policy not in ("fifo", "reservoir"):
            raise ConfigError(f"replay buffer: policy must be 'fifo' or 'reservoir', got {policy!r}")
        self.capacity, self.policy = capacity, policy
        self.items: list[Window] = []
        self.seen = 0  # windows ever added
        self._next = 0  # fifo: slot of the oldest window
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, window: Window) -> None:
        """Keep ``window``; once full, evict the oldest (fifo) or a uniformly drawn one (reservoir)."""
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(window)
        elif self.policy == "fifo":
            self.items[self._next] = window
            self._next = (self._next + 1) % self.capacity
        else:
            slot = int(self._rng.integers(0, self.seen))
            if slot < self.capacity:
                self.items[slot] = window

    def sample(self, size: int) -> list[Window]:
        """``min(size, len)`` distinct windows drawn uniformly."""
        chosen = self._rng.choice(len(self.items), size=min(size, len(self.items)), replace=False)
        return [self.items[i] for i in chosen]


def collate_windows(windows: list[Window]) -> dict[str, Any]:
    """A training batch in ``WindowDataset``'s layout: ``{m: [B, P, ...], "mask": {m: [B, P]},
    "target": {"beam": [B, F]}, "index": [B]}``."""
    batch: dict[str, Any] = {m: torch.stack([w.inputs[m] for w in windows]) for m in windows[0].inputs}
    batch["mask"] = {m: torch.stack([w.mask[m] for w in windows]) for m in windows[0].mask}
    batch["target"] = {BEAM_TARGET: torch.stack([w.target for w in windows])}
    batch["index"] = torch.tensor([w.index for w in windows])
    return batch
