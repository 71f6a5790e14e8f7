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
        mixed_tail: the last ``mixed_tail`` samples are a second pool (e.g. simulated sites beside real
            ones) of which each epoch takes only ``mixed_per_epoch``, drawn afresh every epoch (without
            replacement while the pool lasts); every other sample appears once per epoch. ``0``: no pool.
        mixed_per_epoch: samples of the pool per epoch (``None``: all of it).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        mixed_tail: int = 0,
        mixed_per_epoch: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= mixed_tail <= size:
            raise ValueError(f"mixed_tail must be in [0, {size}], got {mixed_tail}")
        if mixed_per_epoch is not None and (mixed_per_epoch < 0 or (mixed_per_epoch and not mixed_tail)):
            raise ValueError(f"mixed_per_epoch={mixed_per_epoch} needs a pool (mixed_tail={mixed_tail})")
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.mixed_tail = mixed_tail
        self.mixed_per_epoch = mixed_tail if mixed_per_epoch is None else mixed_per_epoch
        self.epoch = 0  # epoch of the next iteration
        self.skip = 0  # batches of that epoch already consumed before a resume

    @property
    def epoch_size(self) -> int:
        """Samples per epoch: every sample outside the pool, plus ``mixed_per_epoch`` of the pool."""
        return self.size - self.mixed_tail + self.mixed_per_epoch

    def __len__(self) -> int:
        return math.ceil(self.epoch_size / self.batch_size)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """``[epoch_size] int64`` sample indices of ``epoch``, in the order they are served."""
        # a large odd multiplier keeps (seed, epoch) pairs from colliding for any realistic run
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * epoch)
        first = self.size - self.mixed_tail
        chosen = torch.arange(first)
        if self.mixed_tail:
            laps = math.ceil(self.mixed_per_epoch / self.mixed_tail)  # > 1 only when the pool is smaller
            pool = torch.cat([torch.randperm(self.mixed_tail, generator=generator) for _ in range(laps)])
            chosen = torch.cat([chosen, first + pool[: self.mixed_per_epoch]])
        if not self.shuffle:
            return chosen
        return chosen[torch.randperm(len(chosen), generator=generator)]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip = epoch + 1, 0
        order = self._epoch_order(epoch)
        for start in range(skip * self.batch_size, len(order), self.batch_size):
            yield order[start : start + self.batch_size].tolist()


class ResumableLoader(DataLoader):
    """``DataLoader`` over a ``SeededBatchSampler`` that counts the batches it has handed out.

    ``state_dict()`` is ``{"seed", "epoch", "consumed"}``: the epoch being iterated and how many of its
    batches the training loop received. Batches are counted where the loop takes them (not where the
    sampler or worker processes produce them), so worker prefetching never makes the count run ahead.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool,
        seed: int,
        mixed_tail: int = 0,
        mixed_per_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        size = len(dataset)  # type: ignore[arg-type]
        sampler = SeededBatchSampler(size, batch_size, shuffle, seed, mixed_tail, mixed_per_epoch)
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
