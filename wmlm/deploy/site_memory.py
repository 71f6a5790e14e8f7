"""``SiteMemory``: a nearest-neighbour memory of one base station's ended passes, blended into predictions.

The site prior (``wmlm.deploy.site_prior``) remembers where the best beam went from each beam *now*; it
cannot tell a vehicle that is speeding up from one that is braking at the same beam. The memory keeps, for
every window of every ended pass, a key made of the fixed trunk's last-step hidden state (what the model
understood of the whole past: motion, power shape) and the beam now, and the window's observed future best
beams. A new window's prediction is blended with a vote of its ``k`` nearest keys (the idea of
nearest-neighbour language models, Khandelwal et al., ICLR 2020, applied per site):

    key      = [ h / |h| , beam_weight * (cos(pi b / 63), sin(pi b / 63)) ]      h: [D] hidden, b: beam now
    sim_i    = key . key_i                         for the k most similar kept windows i
    w_i      = softmax_i(sim_i / temperature)
    p_mem(c) = sum_i w_i [future beam of window i at that step == c]              per future step
    p        = weight * p_mem + (1 - weight) * p_model

The beam angle puts beams 1 and 64 at opposite ends of a half circle, so nearby beams are near keys, and
``beam_weight`` sets how much the beam now counts against the hidden state. Keys are only ever added after
their pass ended (the caller's duty; ``OnlineAdapter`` does so), so no window votes for itself or for an
earlier one. Memory is a ring of ``capacity`` windows (oldest overwritten); a query is one ``[N, D + 2]``
matrix-vector product and a top-k, well under a millisecond for thousands of windows on one CPU core.

Defaults (k 32, temperature 0.1, beam_weight 3, weight 0.3) were chosen on the real development sites left
out one at a time (``docs/results/online.md``), on top of a site prior of 50 pseudo-counts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wmlm.beams import NUM_BEAMS
from wmlm.errors import ConfigError


class SiteMemory:
    """Keys ``[capacity, D + 2]`` and future best beams ``[capacity, F]`` (0-based) of ended windows.

    Args:
        future: future steps per window (the beam head's ``F``).
        capacity: windows kept (> 0); the oldest are overwritten first.
        k: neighbours that vote (> 0); fewer while the memory holds fewer windows.
        temperature: softmax temperature of the similarities (> 0); small values trust the nearest most.
        beam_weight: weight of the beam-now angle in the key (>= 0; 0 keys on the hidden state alone).
        weight: share of the memory's vote in the served probabilities, in (0, 1].
    """

    def __init__(
        self,
        future: int,
        capacity: int = 8192,
        k: int = 32,
        temperature: float = 0.1,
        beam_weight: float = 3.0,
        weight: float = 0.3,
    ) -> None:
        if future < 1 or capacity < 1 or k < 1:
            raise ConfigError(
                f"site memory: need future >= 1, capacity >= 1, k >= 1; got {future}, {capacity}, {k}"
            )
        if not temperature > 0 or not beam_weight >= 0 or not 0 < weight <= 1:
            raise ConfigError(
                "site memory: need temperature > 0, beam_weight >= 0 and 0 < weight <= 1; got "
                f"{temperature}, {beam_weight}, {weight}"
            )
        self.future, self.capacity, self.k = future, capacity, k
        self.temperature, self.beam_weight, self.weight = (
            float(temperature),
            float(beam_weight),
            float(weight),
        )
        self._keys: Tensor | None = None  # [capacity, D + 2], allocated at the first add (D is the model's)
        self._futures = torch.zeros(capacity, future, dtype=torch.int64)
        self._size = 0  # windows kept (<= capacity)
        self._next = 0  # ring position of the next write

    def __len__(self) -> int:
        return self._size

    def key(self, hidden: Tensor, beam_now: Tensor) -> Tensor:
        """Keys ``[N, D + 2]`` of ``N`` windows: last-step hidden states ``[N, D]`` and beams now ``[N]``
        (0-based)."""
        if hidden.ndim != 2 or beam_now.shape != (hidden.shape[0],):
            raise ValueError(
                f"site memory: expected hidden [N, D] and beam_now [N], got {list(hidden.shape)} and "
                f"{list(beam_now.shape)}"
            )
        angle = beam_now.to(torch.float32) * (math.pi / (NUM_BEAMS - 1))
        direction = torch.stack([angle.cos(), angle.sin()], dim=-1) * self.beam_weight
        return torch.cat([torch.nn.functional.normalize(hidden.float(), dim=-1), direction], dim=-1)

    def add(self, keys: Tensor, future_beams: Tensor) -> None:
        """Keep ``N`` windows: ``keys`` ``[N, D + 2]`` (from ``key``), ``future_beams`` ``[N, F]`` 0-based."""
        if keys.ndim != 2 or future_beams.shape != (keys.shape[0], self.future):
            raise ValueError(
                f"site memory: expected keys [N, D + 2] and future beams [N, {self.future}], got "
                f"{list(keys.shape)} and {list(future_beams.shape)}"
            )
        if self._keys is None:
            self._keys = torch.zeros(self.capacity, keys.shape[1])
        elif keys.shape[1] != self._keys.shape[1]:
            raise ValueError(
                f"site memory: keys of width {keys.shape[1]}, memory holds {self._keys.shape[1]}"
            )
        for first in range(0, keys.shape[0], self.capacity):  # more than capacity at once: the last win
            chunk, beams = keys[first : first + self.capacity], future_beams[first : first + self.capacity]
            slots = (self._next + torch.arange(chunk.shape[0])) % self.capacity
            self._keys[slots], self._futures[slots] = chunk.float(), beams.long()
            self._next = int(slots[-1] + 1) % self.capacity
            self._size = min(self.capacity, self._size + chunk.shape[0])

    def vote(self, key: Tensor) -> Tensor | None:
        """``[F, 64]`` beam probabilities of the ``k`` kept windows nearest ``key`` ``[D + 2]``; None while
        the memory is empty."""
        if self._size == 0 or self._keys is None:
            return None
        similarity = self._keys[: self._size] @ key.float()  # [N]
        nearest = similarity.topk(min(self.k, self._size))
        weights = (nearest.values / self.temperature).softmax(-1)  # [k]
        votes = torch.zeros(self.future, NUM_BEAMS)
        beams = self._futures[nearest.indices].T  # [F, k]
        return votes.scatter_add_(1, beams, weights.expand(self.future, -1).contiguous())

    def blend(self, key: Tensor, probabilities: Tensor) -> Tensor:
        """``[F, 64]``: the model's ``probabilities`` ``[F, 64]`` mixed with the vote at ``key``
        (unchanged while the memory is empty)."""
        vote = self.vote(key)
        if vote is None:
            return probabilities
        return self.weight * vote + (1 - self.weight) * probabilities
