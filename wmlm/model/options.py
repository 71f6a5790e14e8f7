"""``WMLM``'s options: the specs they name and the rules they obey, checked in one place before building.

``check_options`` raises the first ``ConfigError`` (or the preset's ``KeyError``) in a fixed order, so a
config with several mistakes always reports the same one; the messages name the config key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wmlm.errors import ConfigError
from wmlm.heads.base import TaskHead
from wmlm.modalities.base import Modality
from wmlm.model.backbone import BackbonePreset, get_preset
from wmlm.model.fusion import FUSIONS
from wmlm.model.llm_backbone import parse_backbone
from wmlm.registry import get_head, get_modality


def make_modality(spec: str | Modality) -> Modality:
    """The modality ``spec`` names (a registered name), or ``spec`` itself."""
    return get_modality(spec)() if isinstance(spec, str) else spec


def make_head(spec: str | TaskHead) -> TaskHead:
    """A fresh head of the registered name ``spec``, or ``spec`` itself."""
    return get_head(spec)() if isinstance(spec, str) else spec


def plain_specs(modalities: Sequence[Any], heads: Sequence[Any], augmentations: Sequence[Any]) -> bool:
    """True when every spec is a plain name, so hyperparameters stay plain data."""
    return not augmentations and all(isinstance(x, str) for x in [*modalities, *heads])


def check_options(
    modalities: Sequence[str],
    anchors: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    *,
    preset: str,
    past: int,
    future: int,
    align_epochs: int,
    adapt_epochs: int,
    freeze_encoders: bool,
    freeze_backbone: bool,
    init_from: str | None,
    checkpoint_every_n_steps: int | None,
    num_heads: int,
    fusion: str = "sum",
    backbone: Mapping[str, Any] | None = None,
) -> BackbonePreset:
    """The backbone preset called ``preset``, once the options are known to fit together.

    Args:
        modalities: names of the model's modalities. anchors: the anchor names.
        pairs: the ``(anchor, modality)`` pairs stage 1 would align (``wmlm.model.align.alignment_pairs``).
        num_heads: how many heads the model is given.
        backbone: ``model.backbone`` (``wmlm.model.llm_backbone.parse_backbone`` checks it).
        The others: as ``WMLM``'s arguments of the same names.
    """
    if not modalities:
        raise ConfigError("model.modalities: at least one modality is needed")
    unknown = [a for a in anchors if a not in modalities]
    if unknown:
        raise ConfigError(f"model.anchor: {unknown} not among model.modalities {list(modalities)}")
    if align_epochs < 0 or adapt_epochs < 0 or align_epochs + adapt_epochs == 0:
        raise ConfigError(
            f"model: need align_epochs, adapt_epochs >= 0 and not both 0, got {align_epochs}, {adapt_epochs}"
        )
    if align_epochs > 0 and not pairs:
        raise ConfigError(
            "model: the alignment stage needs a modality besides the anchor; set align_epochs: 0 "
            f"or add a modality (modalities={list(modalities)}, anchor={list(anchors)})"
        )
    if past < 1 or future < 1:
        raise ConfigError(f"model.past and model.future must be >= 1, got past={past}, future={future}")
    if (freeze_backbone or (freeze_encoders and align_epochs == 0)) and not init_from:
        raise ConfigError(
            "model: freeze_backbone, or freeze_encoders without an alignment stage, fixes weights that "
            "nothing would have trained; set model.init_from to a pretrained checkpoint"
        )
    if checkpoint_every_n_steps is not None and checkpoint_every_n_steps < 1:
        raise ConfigError(
            f"model.checkpoint_every_n_steps must be >= 1 or null, got {checkpoint_every_n_steps}"
        )
    if fusion not in FUSIONS:
        raise ConfigError(f"model.fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
    if parse_backbone(backbone) is not None and fusion != "sum":
        raise ConfigError(f"model.fusion={fusion!r} is not supported with model.backbone kind llm; use sum")
    preset_cfg = get_preset(preset)
    if past > preset_cfg.max_steps:
        raise ConfigError(f"model.past={past} exceeds preset {preset!r} max_steps={preset_cfg.max_steps}")
    if not num_heads and adapt_epochs > 0:
        raise ConfigError("model.heads: the adaptation stage needs at least one head")
    return preset_cfg
