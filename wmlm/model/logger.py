"""The run folder logger: TensorBoard, with the version folder claimed atomically.

Lightning's ``TensorBoardLogger`` picks the next version by listing ``<save_dir>/<name>`` and creates
``version_N`` later, when it first writes; two runs started at once in one folder both list the same
folders and both take ``version_0``, mixing their event files and checkpoints. ``RunLogger`` creates the
folder it picks with an exclusive ``mkdir`` and moves on to the next number when another run got there
first, so every run owns its folder. The CLI uses it unless the user chose a logger.
"""

from __future__ import annotations

import os

from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class RunLogger(TensorBoardLogger):
    """``TensorBoardLogger`` (same arguments) whose next ``version_N`` folder is claimed by creating it."""

    def _get_next_version(self) -> int:
        # other ranks never create the folder: they are told rank 0's version (Lightning broadcasts it)
        if rank_zero_only.rank != 0 or not isinstance(self._fs, LocalFileSystem):
            return super()._get_next_version()
        os.makedirs(self.root_dir, exist_ok=True)
        version = super()._get_next_version()
        while True:
            try:
                os.mkdir(os.path.join(self.root_dir, f"version_{version}"))
                return version
            except FileExistsError:  # another run claimed it since the listing
                version += 1


def use_run_logger(trainer: Trainer, configured: object) -> None:
    """Give ``trainer`` a ``RunLogger`` in place of Lightning's default logger, with the same folder.

    ``configured`` is the ``logger`` option the user gave (None or True: Lightning's default, a plain
    ``TensorBoardLogger`` under ``default_root_dir``); a logger the user chose is left alone.
    """
    if configured not in (None, True) or len(trainer.loggers) != 1:
        return
    default = trainer.logger
    if type(default) is not TensorBoardLogger:
        return
    # _version: a SLURM job id or None (next free number), as Lightning chose for its default
    trainer.loggers = [RunLogger(save_dir=default.save_dir, name=default.name, version=default._version)]
