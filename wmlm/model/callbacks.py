"""The callbacks every wmlm model brings (``configure_callbacks`` of ``WMLM`` and the baselines): one home."""

from __future__ import annotations

from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from wmlm.model.figures_callback import BeamFigures
from wmlm.model.last_checkpoint import LastCheckpoint

BEST_NAME = "best-epoch{epoch:02d}"


def model_callbacks(
    model: LightningModule, monitor: str, mode: str, every_n_train_steps: int | None = None
) -> list[Callback]:
    """The best checkpoint by ``monitor`` (``mode`` ``min`` or ``max``), the one ``last.ckpt`` (refreshed every
    ``every_n_train_steps`` steps too), and the beam figures in TensorBoard and beside test results.

    A ``BeamFigures`` the user gave the trainer is kept (Lightning would replace it by the model's).
    """
    best = ModelCheckpoint(
        monitor=monitor,
        mode=mode,
        save_last=False,  # LastCheckpoint owns last.ckpt, so there is exactly one
        filename=BEST_NAME,
        auto_insert_metric_name=False,
    )
    trainer = model._trainer
    given = trainer.callbacks if trainer is not None else []
    figures = [] if any(isinstance(c, BeamFigures) for c in given) else [BeamFigures()]
    return [best, LastCheckpoint(every_n_train_steps), *figures]
