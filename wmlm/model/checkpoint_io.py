"""Checkpoint files written atomically: a crash while saving never leaves a truncated ``last.ckpt``.

Lightning's default writer stages the file in the system temp folder and moves it into place; when that
folder is on another file system than the run (a common case: ``/tmp`` in memory, runs on a disk or a
network share), the move is a copy into the destination, and a crash during the copy truncates it. Here
the file is written next to its destination, flushed to disk, then renamed over it in one step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from wmlm.model.checkpoint import read_checkpoint
from wmlm.outputs import PARTIAL_SUFFIX, atomic_write

__all__ = ["PARTIAL_SUFFIX", "AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are write-to-sibling, fsync, ``os.replace``, and whose reads
    go through ``wmlm.model.checkpoint.read_checkpoint`` (local regular files, ``weights_only``, safetensors).

    A killed process leaves at most a ``.<name>.*.partial`` file beside the checkpoint; the checkpoint
    itself is always either the previous complete file or the new complete file. Remote paths (``s3://``
    and the like) keep Lightning's behaviour.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as stream:
            torch.save(checkpoint, stream)

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        checkpoint = read_checkpoint(path)
        # a safetensors file holds weights only; Lightning's restore wants to know which version wrote it
        checkpoint.setdefault("pytorch-lightning_version", lightning.__version__)
        return checkpoint
