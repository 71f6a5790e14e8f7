"""``LastCheckpoint``: the run's one ``checkpoints/last.ckpt``, always its newest state.

Two ``ModelCheckpoint`` callbacks that both keep a "last" file make Lightning number them (``last.ckpt``,
``last-v1.ckpt``) in whichever order they first save, so ``last.ckpt`` was sometimes the end of stage 1 or
a periodic copy. Here one callback owns the file: it refreshes it every ``every_n_train_steps`` training
steps (so a killed run resumes mid-epoch and loses little), after every validation, and when fit ends, so
``--ckpt_path .../last.ckpt`` is always the final model of a finished run.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

LAST_NAME = "last.ckpt"


class LastCheckpoint(Callback):
    """Keeps ``<checkpoint dir>/last.ckpt`` current (the folder of the trainer's ``ModelCheckpoint``).

    Args:
        every_n_train_steps: also refresh after every this many optimizer steps (None: not between
            validations).
    """

    def __init__(self, every_n_train_steps: int | None = None) -> None:
        self.every_n_train_steps = every_n_train_steps
        self._saved_step = -1

    @property
    def state_key(self) -> str:
        return "LastCheckpoint"

    def _path(self, trainer: pl.Trainer) -> Path | None:
        callback = trainer.checkpoint_callback
        dirpath = getattr(callback, "dirpath", None)
        return Path(dirpath) / LAST_NAME if dirpath else None

    def _save(self, trainer: pl.Trainer, force: bool) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        if not force and self._saved_step == trainer.global_step:
            return
        path = self._path(trainer)
        if path is None:
            return
        self._saved_step = trainer.global_step
        trainer.save_checkpoint(path, weights_only=False)  # the whole state: resuming needs it

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object, **kwargs: object) -> None:
        every = self.every_n_train_steps
        if every and trainer.global_step > 0 and trainer.global_step % every == 0:
            self._save(trainer, force=False)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # forced: the validation's results (best-model bookkeeping) belong in the file even at the same step
        self._save(trainer, force=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, force=False)
