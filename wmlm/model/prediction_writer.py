"""Writes ``wmlm predict`` outputs as CSV files, one per scenario, head and future step."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from wmlm.outputs import prepare_output_dir, publish_dir, staging_dir, write_marker

log = logging.getLogger(__name__)
VERB = "predict"


class PredictionWriter(BasePredictionWriter):
    """At the end of ``predict``, writes ``<dir>/<scenario>_<head>_t<step>.csv``.

    Each file has the CSV ``index`` of the last input sample of the window, then the head's columns; for
    the beam head that is the DeepSense challenge format ``index,top-1 beam,top-2 beam,top-3 beam``
    (1-based beams).

    One folder holds one run: it must be new or empty, which ``prepare`` checks before the prediction pass
    (also whether it can be created at all). The files are written into a hidden sibling folder that is
    renamed into place when all are complete, so a failed run leaves nothing and two runs never mix.

    Args:
        output_dir: target folder; default ``<trainer.log_dir>/predictions``.
    """

    def __init__(self, output_dir: str | Path | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir) if output_dir else None
        self.written: list[Path] = []
        self._prepared: Path | None = None

    def _folder(self, trainer: pl.Trainer) -> Path:
        if self.output_dir is not None:
            return self.output_dir
        return Path(trainer.log_dir or trainer.default_root_dir) / "predictions"

    def prepare(self, trainer: pl.Trainer) -> Path:
        """The output folder, checked: ``OutputError`` if it holds files or cannot be created."""
        folder = self._folder(trainer)
        prepare_output_dir(folder, VERB, overwrite=None)
        self._prepared = folder
        return folder

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "predict" and self._prepared is None:  # used from Python, without the CLI's early check
            self.prepare(trainer)

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if not batches:
            return
        names = list(getattr(trainer.datamodule, "scenario_names", []))
        index = torch.cat([b["index"] for b in batches])
        scenario_id = torch.cat([b["scenario_id"] for b in batches])
        folder = self._prepared or self.prepare(trainer)
        staging = staging_dir(folder)
        files = []
        try:
            for head in batches[0]["heads"]:
                columns = list(batches[0]["heads"][head])
                values = [torch.cat([b["heads"][head][c] for b in batches]) for c in columns]  # each [N, F]
                steps = values[0].shape[1] if columns else 0
                for sid in scenario_id.unique().tolist():
                    rows = scenario_id == sid
                    scenario = names[sid] if sid < len(names) else f"scenario{sid}"
                    for step in range(steps):
                        name = f"{scenario}_{head}_t{step + 1}.csv"
                        _write(
                            staging / name, ["index", *columns], index[rows], [v[rows, step] for v in values]
                        )
                        files.append(name)
            write_marker(staging, VERB, files=len(files))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        publish_dir(staging, folder)
        self.written = [folder / name for name in files]
        log.info("predictions written to %s", folder)
        print(f"predictions written to {folder}")


def _write(path: Path, header: list[str], index: torch.Tensor, columns: list[torch.Tensor]) -> None:
    """One CSV: ``header``, then ``index[i], columns[0][i], ...`` per row."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(len(index)):
            writer.writerow([int(index[i]), *(c[i].item() for c in columns)])
