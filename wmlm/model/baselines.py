"""Beam-prediction baselines as LightningModules, on the same data, metrics and CLI as ``WMLM``.

Select one by ``class_path`` (e.g. ``model: {class_path: wmlm.model.baselines.GRUBaseline}``): every
baseline reads the same windows, logs the same ``val/beam/...`` and ``test/beam/...`` metrics and writes
the same prediction CSVs, so a comparison is one config swap.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from wmlm.beams import NUM_BEAMS, beam_predictions, best_beams, last_best_beam, normalize_power
from wmlm.metrics import beam_metrics
from wmlm.modalities.gps import PositionSource, position_field
from wmlm.model.augment import BatchAugmentation
from wmlm.model.callbacks import model_callbacks


def scores_around(center: Tensor, num_beams: int = NUM_BEAMS) -> Tensor:
    """Scores ``[..., num_beams]`` ranking beams by distance to a (fractional) beam index ``center [...]``.

    The nearest beam ranks first, then its neighbours, so top-k is the k beams around the prediction.
    """
    beams = torch.arange(num_beams, device=center.device, dtype=torch.float32)
    return -(beams - center.unsqueeze(-1).float()).abs()


class BeamBaseline(pl.LightningModule):
    """Shared evaluation of baselines: ``forward(batch) -> scores [B, F, 64]``, higher = more likely.

    Args:
        future: predicted steps per window.
        use_gps: also read the ``gps`` modality (vehicle east/north in metres).
    """

    def __init__(self, future: int = 3, use_gps: bool = False) -> None:
        super().__init__()
        self.future, self.use_gps = future, use_gps
        self.val_metrics = beam_metrics(future).clone(prefix="val/beam/")
        self.test_metrics = beam_metrics(future).clone(prefix="test/beam/")

    def data_fields(self) -> dict[str, Any]:
        """Inputs, targets and ``future``; no ``past``: a baseline reads any number of past steps."""
        inputs = {"beam": "beam_power"} | ({"gps": "position"} if self.use_gps else {})
        return {"inputs": inputs, "targets": {"beam": "beam_label"}, "future": self.future}

    @abstractmethod
    def forward(self, batch: dict[str, Any]) -> Tensor:
        """Beam scores ``[B, F, 64]`` for a batch of windows."""

    def _evaluate(self, batch: dict[str, Any], split: str) -> dict[str, Tensor]:
        """Log the split's metrics; returns ``{"beam": scores}`` for callbacks (``BeamFigures``)."""
        scores = self(batch)
        metrics = self.val_metrics if split == "val" else self.test_metrics
        metrics.update(scores, batch["target"]["beam"])
        self.log_dict(metrics, batch_size=len(batch["index"]))
        return {"beam": scores}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return {
            "index": batch["index"],
            "scenario_id": batch["scenario_id"],
            "heads": {"beam": beam_predictions(self(batch))},
        }

    def configure_callbacks(self) -> list[Callback]:
        return model_callbacks(self, "val/beam/top1", "max")


class _NothingToTrain(BeamBaseline):
    """A baseline without weights: ``fit`` runs one pass that changes nothing, then it is evaluated."""

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        return None

    def configure_optimizers(self) -> None:
        return None


class RepeatLastBeam(_NothingToTrain):
    """Predicts the last observed best beam for every future step (top-k: its nearest neighbours)."""

    def forward(self, batch: dict[str, Any]) -> Tensor:
        last = last_best_beam(batch["beam"])
        return scores_around(last[:, None].expand(-1, self.future))


class KinematicBaseline(_NothingToTrain):
    """Least-squares line through the past best beams, extrapolated to each future step.

    A vehicle's angle seen from the base station changes smoothly, so its beam index drifts at a nearly
    constant rate over a fraction of a second; any learned model should at least match this prior.
    """

    def forward(self, batch: dict[str, Any]) -> Tensor:
        beams = best_beams(batch["beam"]).float()  # [B, P]
        steps = torch.arange(beams.shape[1], dtype=torch.float32, device=beams.device)
        t_mean, b_mean = steps.mean(), beams.mean(dim=1, keepdim=True)
        slope = ((steps - t_mean) * (beams - b_mean)).sum(dim=1, keepdim=True) / ((steps - t_mean) ** 2).sum()
        future_t = (
            beams.shape[1] - 1 + torch.arange(1, self.future + 1, dtype=torch.float32, device=beams.device)
        )
        predicted = (b_mean + slope * (future_t - t_mean)).clamp(0, NUM_BEAMS - 1)  # [B, F]
        return scores_around(predicted)


class GRUBaseline(BeamBaseline):
    """The small recurrent baseline: a GRU over normalised beam power (and optionally GPS).

    Args:
        hidden_size, num_layers, dropout: the GRU.
        use_gps: append GPS (divided by ``gps_scale_m``) to each step's input.
        normalization, floor_db: per-sample beam-power normalisation, as in the ``beam`` modality.
        lr, weight_decay: AdamW with cosine decay over the run.
        augmentations: random transforms of training batches, as for ``WMLM``.
    """

    def __init__(
        self,
        future: int = 3,
        use_gps: bool = False,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.1,
        normalization: str = "db",
        floor_db: float = -30.0,
        gps_scale_m: float = 50.0,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        augmentations: Sequence[BatchAugmentation] = (),
    ) -> None:
        super().__init__(future, use_gps)
        self.save_hyperparameters(ignore=["augmentations"] if augmentations else [])
        self.augmentations = list(augmentations)
        self.gru = nn.GRU(
            NUM_BEAMS + (2 if use_gps else 0),
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out = nn.Linear(hidden_size, future * NUM_BEAMS)

    def forward(self, batch: dict[str, Any]) -> Tensor:
        x = normalize_power(batch["beam"], self.hparams.normalization, self.hparams.floor_db)
        if self.use_gps:
            x = torch.cat([x, batch["gps"] / self.hparams.gps_scale_m], dim=-1)
        hidden, _ = self.gru(x)
        return self.out(hidden[:, -1]).reshape(len(x), self.future, NUM_BEAMS)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        for augment in self.augmentations:
            batch = augment(batch)
        logits = self(batch)
        loss = F.cross_entropy(logits.reshape(-1, NUM_BEAMS), batch["target"]["beam"].reshape(-1))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1)))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class PositionKNN(BeamBaseline):
    """Position-aided baseline: the future beams of the k training windows nearest in GPS position.

    ``fit`` runs one pass over the training windows to store (last position, future beams); scores are
    the neighbours' votes per future step, ties broken towards nearer neighbours.

    Args:
        k: neighbours that vote.
        position_source: which GPS column positions come from, as for the ``gps`` modality: ``auto``
            (calibrated ``unit2_loc_cal`` where a scenario has it, else raw ``unit2_loc``), ``raw`` or
            ``calibrated``.
    """

    def __init__(self, future: int = 3, k: int = 5, position_source: PositionSource = "auto") -> None:
        super().__init__(future, use_gps=True)
        self.k = k
        self.position_source = position_source
        self.gps_field = position_field(position_source, "PositionKNN")
        self.register_buffer("train_position_m", torch.zeros(0, 2))
        self.register_buffer("train_future_beam", torch.zeros(0, future, dtype=torch.long))
        self._collected: list[tuple[Tensor, Tensor]] = []

    def data_fields(self) -> dict[str, Any]:
        fields = super().data_fields()
        fields["inputs"]["gps"] = self.gps_field
        return fields

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collected.append((batch["gps"][:, -1].detach(), batch["target"]["beam"].detach()))
        return None

    def _store_collected(self) -> None:
        if self._collected:
            self.train_position_m = torch.cat([p for p, _ in self._collected])
            self.train_future_beam = torch.cat([b for _, b in self._collected])
            self._collected = []

    def on_train_epoch_start(self) -> None:
        self._collected = []

    def on_validation_start(self) -> None:
        # validation runs inside the training epoch, before on_train_epoch_end
        self._store_collected()

    def on_train_epoch_end(self) -> None:
        self._store_collected()

    def configure_optimizers(self) -> None:
        return None

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
        # the stored training set's size is only known from the checkpoint
        for name in ("train_position_m", "train_future_beam"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, batch: dict[str, Any]) -> Tensor:
        if len(self.train_position_m) == 0:
            if self._trainer is not None and self._trainer.sanity_checking:
                return torch.zeros(len(batch["gps"]), self.future, NUM_BEAMS, device=batch["gps"].device)
            raise RuntimeError(
                "PositionKNN has no training windows yet: run fit first (one epoch stores them)"
            )
        position = batch["gps"][:, -1]  # [B, 2]
        k = min(self.k, len(self.train_position_m))
        distance, nearest = torch.cdist(position, self.train_position_m).topk(k, largest=False)  # [B, k]
        beams = self.train_future_beam[nearest]  # [B, k, F]
        weights = 1.0 + 1e-3 / (1.0 + distance)  # one vote each; nearer neighbours break ties
        scores = torch.zeros(len(position), self.future, NUM_BEAMS, device=position.device)
        scores.scatter_add_(2, beams.transpose(1, 2), weights[:, None, :].expand(-1, self.future, -1))
        return scores
