"""A training DataLoader whose position inside an epoch is saved in checkpoints and restored on resume.

Lightning saves ``state_dict()`` of every train loader that has one with each checkpoint and calls
``load_state_dict`` before iterating again after ``fit(ckpt_path=...)``. With this loader a run killed in
the middle of an epoch continues with exactly the batches the uninterrupted run would have seen next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


class SeededBatchSampler:
    """Batches of indices whose order depends only on ``(seed, epoch)``, not on the global RNG.

    Args:
        size: number of samples. batch_size: samples per batch (the last batch may be smaller).
        shuffle: permute the samples every epoch. seed: base seed of the permutations.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.epoch = 0  # epoch of the next iteration
        self.skip = 0  # batches of that epoch already consumed before a resume

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip = epoch + 1, 0
        if self.shuffle:
            # a large odd multiplier keeps (seed, epoch) pairs from colliding for any realistic run
            generator = torch.Generator().manual_seed(self.seed + 1_000_003 * epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        for start in range(skip * self.batch_size, self.size, self.batch_size):
            yield order[start : start + self.batch_size].tolist()


class ResumableLoader(DataLoader):
    """``DataLoader`` over a ``SeededBatchSampler`` that counts the batches it has handed out.

    ``state_dict()`` is ``{"seed", "epoch", "consumed"}``: the epoch being iterated and how many of its
    batches the training loop received. Batches are counted where the loop takes them (not where the
    sampler or worker processes produce them), so worker prefetching never makes the count run ahead.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int, **kwargs: Any) -> None:
        sampler = SeededBatchSampler(len(dataset), batch_size, shuffle, seed)  # type: ignore[arg-type]
        super().__init__(dataset, batch_sampler=sampler, **kwargs)
        self._epoch, self._consumed = 0, 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler: SeededBatchSampler = self.batch_sampler  # type: ignore[assignment]
        self._epoch, self._consumed = sampler.epoch, sampler.skip
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        sampler: SeededBatchSampler = self.batch_sampler  # type: ignore[assignment]
        return {"seed": sampler.seed, "epoch": self._epoch, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: SeededBatchSampler = self.batch_sampler  # type: ignore[assignment]
        sampler.seed = int(state["seed"])
        if state["consumed"] >= len(sampler):  # saved at the end of an epoch: the next one starts afresh
            sampler.epoch, sampler.skip = int(state["epoch"]) + 1, 0
        else:
            sampler.epoch, sampler.skip = int(state["epoch"]), int(state["consumed"])
        self._epoch, self._consumed = sampler.epoch, sampler.skip
