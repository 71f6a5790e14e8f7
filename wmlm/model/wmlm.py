"""``WMLM``: the two-stage LightningModule (anchor alignment, then multi-head causal adaptation)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import Tensor, nn

from wmlm.errors import ConfigError
from wmlm.heads.base import TaskHead
from wmlm.modalities.base import Modality
from wmlm.model.align import AnchorAlignment, alignment_pairs
from wmlm.model.augment import BatchAugmentation
from wmlm.model.backbone import BackbonePreset, CausalTransformer
from wmlm.model.callbacks import model_callbacks
from wmlm.model.checkpoint import load_matching_weights
from wmlm.model.fusion import FusedTokens, TokenTransformer, stack_tokens
from wmlm.model.llm_backbone import LLMBackbone, parse_backbone
from wmlm.model.options import check_options, make_head, make_modality, plain_specs
from wmlm.model.resume import collect_rng_states, set_rng_states

log = logging.getLogger(__name__)
Stage = Literal["align", "adapt"]


class WMLM(pl.LightningModule):
    """Wireless-native multimodal model trained in two stages within one ``fit``.

    Epochs ``[0, align_epochs)`` align every modality's per-step embedding to the anchor's with a
    symmetric InfoNCE loss; the next ``adapt_epochs`` train the fused-embedding causal transformer and the
    task heads. The trainer's ``max_epochs`` is set to ``align_epochs + adapt_epochs``.

    Args:
        modalities: modality names (registered) or ``Modality`` objects; order fixes nothing but logs.
        anchor: the anchor modality name, or a list of names for joint anchors.
        heads: head names (registered) or ``TaskHead`` objects (e.g. a user subclass by ``class_path``).
        loss_weights: ``{head name: weight}`` of the adaptation loss; missing heads weigh 1.
        preset: backbone size (``wmlm.model.backbone.PRESETS``).
        embed_dim: width of the shared per-step embedding space (the alignment space).
        past: input steps per window. future: predicted steps per window.
        align_epochs: epochs of stage 1 (0 skips it). adapt_epochs: epochs of stage 2 (0 skips it).
        freeze_encoders: keep modality encoders fixed during stage 2.
        freeze_backbone: also keep the fusion projections and the causal transformer fixed during stage 2,
            so only the heads learn (edge fine-tuning on a few windows of a new site).
        init_from: checkpoint whose matching weights initialise the model (e.g. a stage-1 run).
        lr: peak AdamW learning rate (warm-up then cosine decay, restarted for each stage).
        weight_decay: AdamW weight decay.
        warmup_fraction: share of each stage's steps spent warming up.
        dropout: backbone dropout.
        activation_checkpointing: recompute each backbone block's activations in the backward pass
            instead of storing them (less memory, about one more forward pass of compute per step); for
            large presets such as ``wmlm-2.4b``.
        monitor: metric that selects the best checkpoint. monitor_mode: ``min`` or ``max``.
        checkpoint_every_n_steps: also refresh ``last.ckpt`` every this many training steps (None: only at
            validation), so a killed run resumes mid-epoch with ``--ckpt_path last`` and loses little work.
        augmentations: random batch transforms applied to training batches of stage 2 (e.g.
            ``wmlm.model.augment.BeamFlip``); stage 1 sees the data as recorded, so modalities stay paired.
        fusion: how the per-step embeddings reach the backbone. ``sum``: one projection per modality, summed
            over the modalities present at a step (one token per step). ``tokens``: one token per modality
            per step plus a summary token the heads read, attention causal over steps and full within a
            step, missing modalities masked out (``wmlm.model.fusion``); same parameters plus the
            backbone's ``token_type`` embedding, about ``(M + 1)²`` times the attention cost.
        backbone: None: the preset's ``CausalTransformer``. ``{kind: llm, path: DIR, lora_rank: 8}``: a
            pretrained causal language model from the local Hugging Face folder ``DIR`` (never downloaded),
            frozen except norms, position embeddings, LoRA adapters and projections between the preset's
            ``width`` and the LM's hidden size (``wmlm.model.llm_backbone``; needs ``wmlm[llm]``).
    """

    def __init__(
        self,
        modalities: Sequence[str | Modality] = ("beam", "gps"),
        anchor: str | list[str] = "beam",
        heads: Sequence[str | TaskHead] = ("beam",),
        loss_weights: dict[str, float] | None = None,
        preset: str = "small",
        embed_dim: int = 128,
        past: int = 5,
        future: int = 3,
        align_epochs: int = 5,
        adapt_epochs: int = 20,
        freeze_encoders: bool = False,
        freeze_backbone: bool = False,
        init_from: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_fraction: float = 0.05,
        dropout: float = 0.1,
        monitor: str = "val/loss",
        monitor_mode: Literal["min", "max"] = "min",
        augmentations: Sequence[BatchAugmentation] = (),
        activation_checkpointing: bool = False,
        checkpoint_every_n_steps: int | None = 200,
        fusion: Literal["sum", "tokens"] = "sum",
        backbone: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Objects passed in Python are not plain data and are left out of the checkpoint's hyperparameters;
        # under LightningCLI the hyperparameters are the parsed config (class_path dicts), so they are kept
        # and load_from_checkpoint rebuilds user modalities and heads (e.g. for `wmlm export`).
        keep_all = _given_hyperparameters.get() is not None or plain_specs(modalities, heads, augmentations)
        self.save_hyperparameters(ignore=[] if keep_all else ["modalities", "heads", "augmentations"])
        self.modality_specs = {m.name: m for m in map(make_modality, modalities)}
        self.anchors = [anchor] if isinstance(anchor, str) else list(anchor)
        self.pairs = alignment_pairs(list(self.modality_specs), self.anchors)
        preset_cfg = check_options(
            list(self.modality_specs), self.anchors, self.pairs, preset=preset, past=past, future=future,
            align_epochs=align_epochs, adapt_epochs=adapt_epochs, freeze_encoders=freeze_encoders,
            freeze_backbone=freeze_backbone, init_from=init_from,
            checkpoint_every_n_steps=checkpoint_every_n_steps, num_heads=len(heads), fusion=fusion,
            backbone=backbone,
        )  # fmt: skip
        self.past, self.future = past, future
        self.align_epochs, self.adapt_epochs = align_epochs, adapt_epochs
        self.freeze_encoders, self.freeze_backbone = freeze_encoders, freeze_backbone
        self.init_from = init_from
        self.lr, self.weight_decay, self.warmup_fraction = lr, weight_decay, warmup_fraction
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.augmentations = list(augmentations)
        self._rng_to_restore: dict[str, Any] | None = None
        self.fusion_mode = fusion
        self.configure_models(
            preset_cfg, embed_dim, heads, dropout, activation_checkpointing, fusion, backbone
        )
        self.configure_losses(loss_weights)
        self.configure_metrics()

    # ----------------------------------------------------------------------------------- parts
    def configure_models(
        self,
        preset: BackbonePreset,
        embed_dim: int,
        heads: Sequence[str | TaskHead],
        dropout: float,
        activation_checkpointing: bool,
        fusion: str = "sum",
        backbone: dict[str, Any] | None = None,
    ) -> None:
        """Build ``encoders``, ``alignment``, ``fusion``, ``backbone`` and ``heads``, in this order (a seed
        draws the same initial weights as ever, and checkpoint keys keep their order).

        ``fusion="tokens"`` keeps the same per-modality projections (each makes that modality's token) and
        builds a ``TokenTransformer`` (its extra ``backbone.token_type`` is drawn after the positions).
        ``backbone={kind: llm, ...}`` builds an ``LLMBackbone`` in the backbone's place."""
        self.encoders = nn.ModuleDict({n: m.build_encoder(embed_dim) for n, m in self.modality_specs.items()})
        self.alignment = AnchorAlignment(self.pairs)
        # one projection per modality, summed over the modalities present at a step: equal to
        # concatenation + linear when all are present, and still defined when one is missing
        self.fusion = nn.ModuleDict({n: nn.Linear(embed_dim, preset.width) for n in self.modality_specs})
        llm = parse_backbone(backbone)
        if llm is not None:
            self.backbone: CausalTransformer | LLMBackbone = LLMBackbone(
                llm, preset, self.past, activation_checkpointing
            )
        elif fusion == "tokens":
            self.backbone = TokenTransformer(
                preset, len(self.modality_specs), dropout, activation_checkpointing
            )
        else:
            self.backbone = CausalTransformer(
                preset, dropout=dropout, activation_checkpointing=activation_checkpointing
            )
        self.heads = nn.ModuleDict()
        for head in [make_head(h) for h in heads]:
            if head.name in self.heads:
                raise ConfigError(
                    f"model.heads: two heads are named {head.name!r}; pass name=... to one of them"
                )
            head.build(preset.width, self.past, self.future)
            self.heads[head.name] = head

    def configure_losses(self, loss_weights: dict[str, float] | None) -> None:
        """``loss_weights``: every head's weight in the adaptation loss (1 unless given)."""
        self.loss_weights = {h: 1.0 for h in self.heads} | dict(loss_weights or {})
        extra = set(self.loss_weights) - set(self.heads)
        if extra:
            raise ConfigError(
                f"model.loss_weights: {sorted(extra)} are not heads; heads are {list(self.heads)}"
            )

    def configure_metrics(self) -> None:
        """``val_metrics`` and ``test_metrics``: ``{head: MetricCollection}``, keys prefixed ``<split>/<head>/``."""
        self.val_metrics = nn.ModuleDict(
            {h: head.metrics().clone(prefix=f"val/{h}/") for h, head in self.heads.items()}
        )
        self.test_metrics = nn.ModuleDict(
            {h: head.metrics().clone(prefix=f"test/{h}/") for h, head in self.heads.items()}
        )

    # ----------------------------------------------------------------------------------- data contract
    def data_fields(self) -> dict[str, Any]:
        """The data contract, in one place: ``{"inputs": {modality: field}, "targets": {target key: field},
        "past": steps in, "future": steps out}``; the data module serves exactly this."""
        targets: dict[str, str] = {}
        for head in self.heads.values():
            for key, field in head.target_fields.items():
                if targets.setdefault(key, field) != field:
                    raise ConfigError(
                        f"heads disagree on target {key!r}: fields {targets[key]!r} and {field!r}"
                    )
        return {
            "inputs": {n: m.field for n, m in self.modality_specs.items()},
            "targets": targets,
            "past": self.past,
            "future": self.future,
        }

    # ----------------------------------------------------------------------------------- forward
    @property
    def stage(self) -> Stage:
        """``align`` during the first ``align_epochs`` epochs, then ``adapt``."""
        return "align" if self.current_epoch < self.align_epochs else "adapt"

    def embed(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Per-step embeddings ``{modality: [B, P, embed_dim]}`` of the modalities present in ``batch``."""
        out = {}
        for name, spec in self.modality_specs.items():
            if name not in batch:
                continue
            spec.validate(batch[name])
            out[name] = self.encoders[name](batch[name])
        if not out:
            raise ValueError(f"batch holds none of the model's modalities {list(self.modality_specs)}")
        return out

    def fuse(self, embeddings: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor | FusedTokens:
        """What ``backbone`` takes. ``fusion="sum"``: ``[B, P, width]``, the sum of projected embeddings over
        the modalities present at each step. ``fusion="tokens"``: ``FusedTokens`` (``[B, P, M, width]``
        projected embeddings in the model's modality order and their ``[B, P, M]`` presence)."""
        if self.fusion_mode == "tokens":
            return stack_tokens(self.fusion, embeddings, masks)
        fused = None
        for name, z in embeddings.items():
            mask = masks.get(name)
            part = self.fusion[name](z)
            if mask is not None:
                part = part * mask.unsqueeze(-1).to(part.dtype)
            fused = part if fused is None else fused + part
        assert fused is not None
        return fused

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Outputs of every head, ``{head: outputs}``, for a batch of windows."""
        return self.heads_forward(self.embed(batch), batch)

    def heads_forward(self, embeddings: dict[str, Tensor], batch: dict[str, Any]) -> dict[str, Tensor]:
        """Fuse per-step embeddings, run the causal backbone and every head."""
        hidden = self.backbone(self.fuse(embeddings, batch.get("mask", {})))
        return {name: head(hidden, batch) for name, head in self.heads.items()}

    def _masks(self, batch: dict[str, Any], embeddings: dict[str, Tensor]) -> dict[str, Tensor]:
        masks = batch.get("mask", {})
        return {
            m: masks.get(m, torch.ones(z.shape[:2], dtype=torch.bool, device=z.device))
            for m, z in embeddings.items()
        }

    def _head_losses(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> dict[str, Tensor]:
        for key, target in batch["target"].items():
            if target.shape[1] != self.future:
                raise ConfigError(
                    f"target {key!r} has {target.shape[1]} future steps, model.future is {self.future}"
                )
        losses = {name: self.heads[name].loss(out, batch) for name, out in outputs.items()}
        losses["loss"] = sum(self.loss_weights[n] * losses[n] for n in self.heads)
        return losses

    # ----------------------------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        batch_size = len(batch["index"])
        if self.stage == "align":
            embeddings = self.embed(batch)
            losses = self.alignment(embeddings, self._masks(batch, embeddings))
            self.log_dict({f"align/{k}": v for k, v in losses.items() if k != "loss"}, batch_size=batch_size)
            self.log("align/loss", losses["loss"], prog_bar=True, batch_size=batch_size)
            for a, m in self.pairs:
                self.log(
                    f"align/logit_scale/{a}__{m}", self.alignment.logit_scale(a, m), batch_size=batch_size
                )
            return losses["loss"]
        for augment in self.augmentations:
            batch = augment(batch)
        losses = self._head_losses(self(batch), batch)
        self.log_dict({f"train/{k}/loss": v for k, v in losses.items() if k != "loss"}, batch_size=batch_size)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=batch_size)
        return losses["loss"]

    def _evaluate(self, batch: dict[str, Any], split: str, metrics: nn.ModuleDict) -> dict[str, Tensor]:
        """Log the split's losses and metrics; returns the heads' outputs (callbacks such as
        ``BeamFigures`` read them instead of running the model again)."""
        batch_size = len(batch["index"])
        embeddings = self.embed(batch)
        if self.pairs and split == "val":
            masks = self._masks(batch, embeddings)
            align = self.alignment(embeddings, masks)
            self.log("val/align_loss", align["loss"], batch_size=batch_size)
            retrieval = self.alignment.retrieval(embeddings, masks)
            self.log_dict(
                {f"val/align/retrieval/{k}": v for k, v in retrieval.items()}, batch_size=batch_size
            )
        if not self.heads:
            return {}
        outputs = self.heads_forward(embeddings, batch)
        losses = self._head_losses(outputs, batch)
        self.log_dict(
            {f"{split}/{k}/loss": v for k, v in losses.items() if k != "loss"}, batch_size=batch_size
        )
        self.log(f"{split}/loss", losses["loss"], prog_bar=split == "val", batch_size=batch_size)
        for name, head in self.heads.items():
            preds, target = head.metric_inputs(outputs[name], batch)
            metrics[name].update(preds, target)
            self.log_dict(metrics[name], batch_size=batch_size)
        return outputs

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        outputs = self(batch)
        return {
            "index": batch["index"],
            "scenario_id": batch["scenario_id"],
            "heads": {name: self.heads[name].predictions(out) for name, out in outputs.items()},
        }

    # ----------------------------------------------------------------------------------- stages
    def setup(self, stage: str) -> None:
        if stage == "fit":
            total = self.align_epochs + self.adapt_epochs
            # 1000 is Lightning's stand-in for "not set"
            if self.trainer.max_epochs not in (None, -1, 1000, total) and not self.trainer.fast_dev_run:
                log.warning(
                    "trainer.max_epochs=%s replaced by align_epochs + adapt_epochs = %d",
                    self.trainer.max_epochs,
                    total,
                )
            self.trainer.fit_loop.max_epochs = total
            if self.init_from:
                self._check_frozen_parts_loaded(load_matching_weights(self, self.init_from))
        world = self.trainer.world_size if self._trainer is not None else 1
        self.alignment.set_world(self.global_rank, world)

    def _check_frozen_parts_loaded(self, missing: list[str]) -> None:
        """Refuse to freeze weights that ``init_from`` did not provide (they would stay random forever)."""
        frozen = ["encoders."] if self.freeze_encoders else []
        frozen += ["fusion.", "backbone."] if self.freeze_backbone else []
        if self.freeze_encoders and self.align_epochs > 0:
            frozen.remove("encoders.")  # stage 1 trains them before they are frozen
        lacking = sorted({".".join(k.split(".")[:2]) for k in missing if k.startswith(tuple(frozen))})
        if lacking:
            raise ConfigError(
                f"model.init_from {self.init_from} lacks {', '.join(lacking)}, which model.freeze_encoders / "
                "model.freeze_backbone would keep random and frozen; train them (align_epochs > 0, or no "
                "freezing) or start from a checkpoint that has them"
            )

    def on_train_epoch_start(self) -> None:
        train_encoders = self.stage == "align" or not self.freeze_encoders
        self.encoders.requires_grad_(train_encoders)
        train_trunk = self.stage == "align" or not self.freeze_backbone
        self.fusion.requires_grad_(train_trunk)
        self.backbone.requires_grad_(train_trunk)
        self.alignment.requires_grad_(self.stage == "align")
        if self.current_epoch == self.align_epochs and self.align_epochs > 0:
            log.info("stage 2 (adaptation) starts at epoch %d", self.current_epoch)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total_steps = max(int(self.trainer.estimated_stepping_batches), 1)
        epochs = max(self.align_epochs + self.adapt_epochs, 1)
        steps_per_epoch = max(math.ceil(total_steps / epochs), 1)
        boundary = self.align_epochs * steps_per_epoch
        stage_lengths = (max(boundary, 1), max(total_steps - boundary, 1))
        warmup = self.warmup_fraction

        def factor(step: int) -> float:
            # warm-up then cosine decay, restarted at the stage boundary
            in_adapt = step >= boundary
            length = stage_lengths[1] if in_adapt else stage_lengths[0]
            position = (step - boundary if in_adapt else step) / length
            if position < warmup:
                return max(position / warmup, 1e-3)
            return 0.5 * (1 + math.cos(math.pi * min((position - warmup) / max(1 - warmup, 1e-9), 1.0)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[Callback]:
        return model_callbacks(self, self.monitor, self.monitor_mode, self.checkpoint_every_n_steps)

    # ----------------------------------------------------------------------------------- resuming
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["wmlm_rng_states"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # applied when training continues, not now: Lightning still builds loaders and loops after loading
        self._rng_to_restore = checkpoint.get("wmlm_rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
