"""Writes ``wmlm predict`` outputs as CSV files, one per scenario, head and future step."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)


class PredictionWriter(BasePredictionWriter):
    """At the end of ``predict``, writes ``<dir>/<scenario>_<head>_t<step>.csv``.

    Each file has the CSV ``index`` of the last input sample of the window, then the head's columns; for
    the beam head that is the DeepSense challenge format ``index,top-1 beam,top-2 beam,top-3 beam``
    (1-based beams). An existing file is never overwritten.

    Args:
        output_dir: target folder; default ``<trainer.log_dir>/predictions``.
    """

    def __init__(self, output_dir: str | Path | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir) if output_dir else None
        self.written: list[Path] = []

    def _folder(self, trainer: pl.Trainer) -> Path:
        if self.output_dir is not None:
            return self.output_dir
        return Path(trainer.log_dir or trainer.default_root_dir) / "predictions"

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if not batches:
            return
        names = list(getattr(trainer.datamodule, "scenario_names", []))
        index = torch.cat([b["index"] for b in batches])
        scenario_id = torch.cat([b["scenario_id"] for b in batches])
        folder = self._folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        for head in batches[0]["heads"]:
            columns = list(batches[0]["heads"][head])
            values = {c: torch.cat([b["heads"][head][c] for b in batches]) for c in columns}  # [N, F]
            steps = next(iter(values.values())).shape[1] if columns else 0
            for sid in scenario_id.unique().tolist():
                rows = scenario_id == sid
                scenario = names[sid] if sid < len(names) else f"scenario{sid}"
                for step in range(steps):
                    path = folder / f"{scenario}_{head}_t{step + 1}.csv"
                    self._write(
                        path, ["index", *columns], index[rows], [values[c][rows, step] for c in columns]
                    )
        log.info("predictions written to %s", folder)
        print(f"predictions written to {folder}")

    def _write(self, path: Path, header: list[str], index: torch.Tensor, columns: list[torch.Tensor]) -> None:
        if path.exists():
            raise FileExistsError(f"{path} exists; choose another --predictions_dir or remove it")
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for i in range(len(index)):
                writer.writerow([int(index[i]), *(c[i].item() for c in columns)])
        self.written.append(path)
