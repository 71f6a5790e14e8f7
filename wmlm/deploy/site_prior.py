"""``SiteBeamPrior``: what one base station has taught about where its best beam goes next.

A model trained elsewhere predicts beam *movement* (the beam frame and the relative beam head make it
site-invariant), so it cannot know where on this site's codebook vehicles speed up, turn or leave. The
prior counts, per future step, how often the best beam went from beam ``b`` now to beam ``c`` ``j + 1``
samples later at this site, and blends the counts with the model's prediction as a Dirichlet posterior
whose prior mean is the model and whose strength is ``weight`` pseudo-counts:

    p(c | b) = (n_j[b, c] + weight * p_model(c)) / (n_j[b] + weight)

With no counts for the current beam the model's prediction is returned unchanged; as a beam collects
counts, the site's own statistics take over. Counting is O(F) per window and the blend O(F x 64) per
prediction, far inside a 100 ms sample period.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wmlm.beams import NUM_BEAMS
from wmlm.errors import ConfigError


class SiteBeamPrior:
    """Per-site transition counts ``[F, 64, 64]`` (future step, beam now, beam then; 0-based beams).

    Args:
        future: future steps per window (the beam head's ``F``).
        weight: pseudo-counts given to the model's prediction (> 0); small values trust the site's counts
            sooner. 50 was best of 2-200 on the real development sites, left out one at a time
            (``docs/results/online.md``).
    """

    def __init__(self, future: int, weight: float = 50.0) -> None:
        if future < 1:
            raise ConfigError(f"site prior: future must be at least 1, got {future}")
        if not weight > 0:
            raise ConfigError(f"site prior: weight must be a positive number of pseudo-counts, got {weight}")
        self.weight = float(weight)
        self.counts = torch.zeros(future, NUM_BEAMS, NUM_BEAMS)  # [F, beam now, beam j + 1 samples later]

    def add(self, current_beam: int, future_beams: Tensor) -> None:
        """Count one window: best beam ``current_beam`` at its last past step, ``future_beams`` ``[F]`` after."""
        if future_beams.shape != (self.counts.shape[0],):
            raise ValueError(
                f"site prior: expected {self.counts.shape[0]} future beams, got shape {list(future_beams.shape)}"
            )
        steps = torch.arange(self.counts.shape[0])
        self.counts[steps, current_beam, future_beams.long()] += 1

    def posterior(self, current_beam: int, probabilities: Tensor) -> Tensor:
        """``[F, 64]`` beam probabilities: the model's ``probabilities`` ``[F, 64]`` blended with the counts
        seen from ``current_beam`` (unchanged where there are none)."""
        counts = self.counts[:, current_beam]  # [F, 64]
        return (counts + self.weight * probabilities) / (counts.sum(-1, keepdim=True) + self.weight)
