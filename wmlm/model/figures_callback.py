"""``BeamFigures``: a Lightning callback that logs pictures of beam predictions and of the aligned space.

During validation it keeps a bounded sample of windows (the first ``max_windows`` of the loader, whole
vehicle passes in time order), re-runs the model on them and, at the end of the epoch, logs to TensorBoard
(``wmlm.model.figures``): the beam tracks of a few passes, top-k accuracy per future step and the beam
offset of the top-1 prediction (as a figure and as a histogram). At the first validation after the
alignment stage's last epoch it logs the embedding projector of the aligned space. During ``test`` it
writes the same figures as PNG files into ``<log dir>/figures`` (or ``png_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn

from wmlm.beams import last_best_beam
from wmlm.heads.beam import BeamHead
from wmlm.model.figures import beam_figures, figure_to_image, pass_ids_from_index, write_beam_figures

TOP_K = 5


def tensorboard_writer(trainer: pl.Trainer) -> Any | None:
    """The ``SummaryWriter`` of the trainer's first ``TensorBoardLogger``, or None."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def beam_head_name(model: nn.Module) -> str | None:
    """Name of the model's beam output, or None.

    A model with ``heads`` (``WMLM``): its first ``BeamHead``. A model without (the baselines of
    ``wmlm.model.baselines``, whose forward returns beam scores): ``"beam"`` when its ``data_fields()``
    targets include ``beam``. Duck-typed, so the baselines can use this callback without an import circle.
    """
    heads = getattr(model, "heads", None)
    if isinstance(heads, nn.ModuleDict):
        return next((name for name, head in heads.items() if isinstance(head, BeamHead)), None)
    data_fields = getattr(model, "data_fields", None)
    targets = data_fields().get("targets", {}) if callable(data_fields) else {}
    return "beam" if "beam" in targets else None


def beam_scores(model: nn.Module, batch: dict[str, Any]) -> Tensor | None:
    """Beam scores ``[B, F, C]`` of ``model`` (a ``WMLM`` with a beam head, or a baseline), else None."""
    name = beam_head_name(model)
    if name is None or "beam" not in batch.get("target", {}):
        return None
    outputs = model(batch)
    scores = outputs.get(name) if isinstance(outputs, dict) else outputs
    return scores if isinstance(scores, Tensor) and scores.dim() == 3 else None


def sample_arrays(rows: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(true_beams [N, F], pred_topk [N, F, K], pass_ids [N])`` from collected batch rows."""
    true = np.concatenate([r["true"] for r in rows])
    topk = np.concatenate([r["topk"] for r in rows])
    passes = pass_ids_from_index(
        np.concatenate([r["scenario_id"] for r in rows]), np.concatenate([r["index"] for r in rows])
    )
    return true, topk, passes


def _beam_rows(scores: Tensor, batch: dict[str, Any], take: int) -> dict[str, np.ndarray]:
    """The first ``take`` windows of a batch as numpy: true beams, top-K predictions, scenario, index."""
    return {
        "true": batch["target"]["beam"][:take].cpu().numpy(),
        "topk": scores[:take].topk(min(TOP_K, scores.shape[-1]), dim=-1).indices.cpu().numpy(),
        "scenario_id": batch["scenario_id"][:take].cpu().numpy(),
        "index": batch["index"][:take].cpu().numpy(),
    }


@torch.no_grad()
def predict_beam_sample(
    model: nn.Module, batches: Any, max_windows: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Run ``model`` (in eval mode) on the first ``max_windows`` windows of ``batches`` (e.g. a test loader).

    Returns ``(true_beams, pred_topk, pass_ids)`` for ``wmlm.model.figures.write_beam_figures``, or None
    when the model has no beam output. Batches must be on the model's device.
    """
    was_training = model.training
    model.eval()
    rows: list[dict[str, np.ndarray]] = []
    taken = 0
    try:
        for batch in batches:
            scores = beam_scores(model, batch)
            if scores is None:
                return None
            rows.append(_beam_rows(scores, batch, max_windows - taken))
            taken += len(rows[-1]["true"])
            if taken >= max_windows:
                break
    finally:
        model.train(was_training)
    return sample_arrays(rows) if rows else None


class BeamFigures(Callback):
    """Log beam-prediction figures each ``every_n_epochs`` validations and the aligned space after stage 1.

    A no-op on other ranks than global zero, with ``fast_dev_run``, during the sanity check, without a
    ``TensorBoardLogger`` (validation), and for models without a beam output. Beam figures are skipped in
    alignment epochs (the heads are not trained yet). Costs one extra forward pass over the sampled
    windows, unless the validation/test step returns its heads' outputs ``{head: scores [B, F, 64]}``,
    which are then used as they are; drawing and logging take a few hundred ms per validation.

    TensorBoard tags (``<split>`` is ``val`` or ``test``, ``<head>`` the beam head's name):
    images ``<split>/<head>/tracks``, ``<split>/<head>/topk``, ``<split>/<head>/offsets``; histogram
    ``<split>/<head>/offset_top1`` (predicted top-1 minus true beam, all future steps); embedding
    ``align/embeddings`` with metadata columns ``modality`` and ``best_beam`` (1-based).

    Args:
        every_n_epochs: log beam figures at validations of epochs ``n - 1, 2n - 1, ...``.
        max_windows: windows sampled per validation or test (the first ones of the loader).
        max_passes: vehicle passes drawn in the tracks figure.
        max_points: windows whose last past step goes into the projector, per modality.
        png_dir: folder of the test PNGs; None: ``<trainer.log_dir>/figures`` when there is a logger.
        dpi: resolution of the logged images and PNGs.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        max_windows: int = 256,
        max_passes: int = 4,
        max_points: int = 200,
        png_dir: str | Path | None = None,
        dpi: int = 80,
    ) -> None:
        if every_n_epochs < 1 or max_windows < 1 or max_passes < 1 or max_points < 1:
            raise ValueError(
                "BeamFigures: every_n_epochs, max_windows, max_passes and max_points must be >= 1, got "
                f"{every_n_epochs}, {max_windows}, {max_passes}, {max_points}"
            )
        self.every_n_epochs, self.max_windows, self.max_passes = every_n_epochs, max_windows, max_passes
        self.max_points, self.dpi = max_points, dpi
        self.png_dir = Path(png_dir) if png_dir is not None else None
        self.written: list[Path] = []  # PNG files of the last test
        self._rows: list[dict[str, np.ndarray]] = []
        self._points: list[dict[str, np.ndarray]] = []
        self._beams_on = self._embed_on = False
        self._projector_logged = False

    # ------------------------------------------------------------------------------------------ gating
    @staticmethod
    def _active(trainer: pl.Trainer) -> bool:
        return trainer.is_global_zero and not trainer.fast_dev_run and not trainer.sanity_checking

    def _wants_projector(self, trainer: pl.Trainer, model: pl.LightningModule) -> bool:
        align_epochs = getattr(model, "align_epochs", 0)
        return (
            not self._projector_logged
            and align_epochs > 0
            and len(getattr(model, "modality_specs", {})) >= 2
            and trainer.current_epoch >= align_epochs - 1
        )

    def _start(self, beams: bool, embed: bool) -> None:
        self._rows, self._points = [], []
        self._beams_on, self._embed_on = beams, embed

    # ------------------------------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._projector_logged = False

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        active = self._active(trainer) and tensorboard_writer(trainer) is not None
        beams = (
            active
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
            and getattr(pl_module, "stage", "adapt") != "align"
            and beam_head_name(pl_module) is not None
        )
        self._start(beams, active and self._wants_projector(trainer, pl_module))

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        has_place = self.png_dir is not None or bool(trainer.loggers)
        active = self._active(trainer) and has_place and beam_head_name(pl_module) is not None
        self._start(active, False)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._collect(pl_module, batch, outputs, dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._collect(pl_module, batch, outputs, dataloader_idx)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = tensorboard_writer(trainer)
        if writer is not None and self._rows:
            self._log_beams(writer, "val", beam_head_name(pl_module) or "beam", trainer.global_step)
        if writer is not None and self._points:
            self._log_projector(writer, trainer.global_step)
            self._projector_logged = True
        self._start(False, False)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._rows:
            return
        true, topk, passes = sample_arrays(self._rows)
        out_dir = self.png_dir or Path(trainer.log_dir or trainer.default_root_dir) / "figures"
        head = beam_head_name(pl_module) or "beam"
        self.written = write_beam_figures(out_dir, true, topk, passes, f"test_{head}", self.max_passes)
        writer = tensorboard_writer(trainer)
        if writer is not None:
            self._log_beams(writer, "test", head, trainer.global_step)
        self._start(False, False)

    # ------------------------------------------------------------------------------------------ work
    def _collect(self, model: pl.LightningModule, batch: Any, outputs: Any, dataloader_idx: int) -> None:
        if dataloader_idx != 0 or not (self._beams_on or self._embed_on):
            return
        with torch.no_grad():
            taken = sum(len(r["true"]) for r in self._rows)
            if self._beams_on and taken < self.max_windows:
                scores = _step_scores(outputs, beam_head_name(model))
                if scores is None:
                    scores = beam_scores(model, batch)
                if scores is None:
                    self._beams_on = False
                else:
                    self._rows.append(_beam_rows(scores, batch, self.max_windows - taken))
            points = sum(len(p["best_beam"]) for p in self._points)
            if self._embed_on and points < self.max_points:
                self._points.append(_last_step_embeddings(model, batch, self.max_points - points))

    def _log_beams(self, writer: Any, split: str, head: str, step: int) -> None:
        true, topk, passes = sample_arrays(self._rows)
        for name, fig in beam_figures(true, topk, passes, self.max_passes, self.dpi).items():
            writer.add_image(f"{split}/{head}/{name}", figure_to_image(fig), step, dataformats="HWC")
        offsets = (topk[..., 0] - true).reshape(-1)
        # one bin per integer offset, so the histogram reads in beams
        edges = np.arange(offsets.min(), offsets.max() + 2) - 0.5
        writer.add_histogram(f"{split}/{head}/offset_top1", offsets, step, bins=edges)

    def _log_projector(self, writer: Any, step: int) -> None:
        vectors, metadata = [], []
        for part in self._points:
            for modality, z in part["embeddings"].items():
                keep = part["mask"][modality]
                vectors.append(z[keep])
                metadata += [[modality, str(int(b))] for b in part["best_beam"][keep]]
        if vectors:
            writer.add_embedding(
                np.concatenate(vectors),
                metadata=metadata,
                metadata_header=["modality", "best_beam"],
                tag="align/embeddings",
                global_step=step,
            )


def _step_scores(outputs: Any, head: str | None) -> Tensor | None:
    """The beam scores ``[B, F, C]`` in what a validation/test step returned (``{head: scores}``), else None.

    A step that returns its heads' outputs spares the callback a second forward pass.
    """
    scores = outputs.get(head) if isinstance(outputs, dict) and head is not None else None
    return scores.detach() if isinstance(scores, Tensor) and scores.dim() == 3 else None


def _last_step_embeddings(model: nn.Module, batch: dict[str, Any], take: int) -> dict[str, Any]:
    """Unit-norm embeddings ``{modality: [b, D]}`` of the last past step of the first ``take`` windows.

    ``best_beam [b]`` (1-based) is the strongest beam of that step when the batch holds beam power, else
    the true beam of the first future step. ``mask {modality: [b] bool}``: the modality was present.
    """
    embeddings = model.embed(batch)
    masks = batch.get("mask", {})
    out = {
        "embeddings": {
            m: F.normalize(z[:take, -1].float(), dim=-1).cpu().numpy() for m, z in embeddings.items()
        },
        "mask": {
            m: masks[m][:take, -1].cpu().numpy().astype(bool)
            if m in masks
            else np.ones(len(z[:take]), dtype=bool)
            for m, z in embeddings.items()
        },
    }
    power = batch.get("beam")
    if isinstance(power, Tensor) and power.dim() == 3:
        best = last_best_beam(power[:take])
    else:
        best = batch["target"]["beam"][:take, 0]
    out["best_beam"] = best.cpu().numpy() + 1
    return out
