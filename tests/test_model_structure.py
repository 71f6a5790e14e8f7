"""``WMLM``'s structure is frozen: checkpoint keys, shapes, hyperparameters and option errors stay the same.

``tests/data/wmlm_structure.json`` was written by ``python tests/test_model_structure.py`` with the model as
it was before ``WMLM.__init__`` was split into ``_check_options`` / ``configure_*`` (commit c1baf30); it
holds, for a few option sets, the ``state_dict`` keys in order with their shapes, the saved
``hyper_parameters`` (Python objects, LightningCLI's given hyperparameters), the public attributes other
modules read, and the exact message of every refused option set. Regenerate it only for a deliberate change
of the checkpoint format, and say so in CHANGELOG.md: old checkpoints stop loading.

``tests/data/wmlm_tiny_c1baf30.ckpt`` is a checkpoint of a tiny ``wmlm fit`` (``tests/conf/beam_gps.yaml``)
written by that same code, without its optimizer state; it must load with ``WMLM.load_from_checkpoint`` and
``wmlm.deploy.export.load_model`` and predict what it predicted then.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

from wmlm import WMLM
from wmlm.heads import BeamHead
from wmlm.modalities import BeamModality, GpsModality
from wmlm.model.augment import BeamFlip

DATA = Path(__file__).parent / "data"
STRUCTURE = DATA / "wmlm_structure.json"
OLD_CHECKPOINT = DATA / "wmlm_tiny_c1baf30.ckpt"
TINY: dict[str, Any] = {"preset": "tiny", "embed_dim": 16}
CLI_GIVEN = {  # what LightningCLI hands a model: the parsed config, class_path dicts included
    "modalities": [
        {"class_path": "wmlm.modalities.BeamModality", "init_args": {"frame": "last_beam"}},
        "gps",
    ],
    "heads": ["beam", "power"],
    "preset": "tiny",
    "embed_dim": 16,
    "_class_path": "wmlm.WMLM",
}


def _build_cases() -> dict[str, WMLM]:
    """Models of a few option sets; every call builds them afresh with fixed seeds."""
    cases: dict[str, Any] = {
        "defaults": lambda: WMLM(),
        "tiny": lambda: WMLM(**TINY),
        "joint_multihead": lambda: WMLM(
            modalities=["beam", "gps"],
            anchor=["beam", "gps"],
            heads=["beam", "power", "position", "blockage"],
            loss_weights={"power": 0.5},
            past=4,
            future=2,
            monitor="val/beam/top1",
            monitor_mode="max",
            checkpoint_every_n_steps=None,
            **TINY,
        ),
        "adapt_only_frozen": lambda: WMLM(
            modalities=["beam"],
            heads=["beam"],
            align_epochs=0,
            adapt_epochs=3,
            freeze_encoders=True,
            freeze_backbone=True,
            init_from="pretrained.ckpt",
            lr=3e-4,
            weight_decay=0.0,
            warmup_fraction=0.1,
            dropout=0.0,
            activation_checkpointing=True,
            **TINY,
        ),
        "align_only_objects": lambda: WMLM(
            modalities=[BeamModality(frame="last_beam"), GpsModality(features="range")],
            heads=[],
            adapt_epochs=0,
            **TINY,
        ),
        "objects_and_augmentations": lambda: WMLM(
            heads=[BeamHead(relative_to="beam"), "power"], augmentations=[BeamFlip()], **TINY
        ),
    }

    def under_cli() -> WMLM:
        with _given_hyperparameters_context(CLI_GIVEN, "lightning.pytorch.cli.LightningCLI"):
            given = {k: v for k, v in CLI_GIVEN.items() if not k.startswith("_")}
            given["modalities"] = [BeamModality(frame="last_beam"), "gps"]
            return WMLM(**given)

    cases["under_cli"] = under_cli
    built = {}
    for name, make in cases.items():
        torch.manual_seed(0)
        built[name] = make()
    return built


BAD_OPTIONS: dict[str, dict[str, Any]] = {
    "no_modalities": {"modalities": []},
    "unknown_anchor": {"anchor": "image"},
    "unknown_joint_anchor": {"anchor": ["beam", "lidar"]},
    "negative_epochs": {"align_epochs": -1},
    "zero_epochs": {"align_epochs": 0, "adapt_epochs": 0},
    "align_without_partner": {"modalities": ["beam"]},
    "past_zero": {"past": 0},
    "future_zero": {"future": 0},
    "freeze_backbone_without_init": {"freeze_backbone": True},
    "freeze_encoders_without_stage1": {"freeze_encoders": True, "align_epochs": 0},
    "checkpoint_every_zero": {"checkpoint_every_n_steps": 0},
    "unknown_preset": {"preset": "huge"},
    "past_beyond_preset": {"past": 65},
    "no_heads": {"heads": []},
    "duplicate_heads": {"heads": ["beam", "beam"]},
    "unknown_head": {"heads": ["nope"]},
    "unknown_modality": {"modalities": ["beam", "nope"]},
    "loss_weight_not_a_head": {"loss_weights": {"power": 1.0}},
    "several_wrong": {"modalities": ["beam"], "past": 0, "align_epochs": -2, "loss_weights": {"x": 1}},
    "epochs_and_past": {"align_epochs": 0, "adapt_epochs": 0, "past": 0, "preset": "huge"},
    "heads_and_preset": {"heads": [], "preset": "huge", "loss_weights": {"x": 1}},
}


def _plain(value: Any) -> Any:
    """JSON-able form that keeps tuples apart from lists and names objects by their class."""
    if isinstance(value, tuple):
        return {"tuple": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"object": f"{type(value).__module__}.{type(value).__qualname__}"}


def snapshot(model: WMLM) -> dict[str, Any]:
    """What a checkpoint and the other modules see of ``model``."""
    return {
        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "hyper_parameters": _plain(dict(model.hparams)),
        "attributes": _plain(
            {
                "modality_specs": list(model.modality_specs),
                "anchors": model.anchors,
                "pairs": [list(p) for p in model.pairs],
                "encoders": list(model.encoders),
                "fusion": list(model.fusion),
                "heads": list(model.heads),
                "loss_weights": model.loss_weights,
                "val_metrics": {h: list(m.keys()) for h, m in model.val_metrics.items()},
                "test_metrics": {h: list(m.keys()) for h, m in model.test_metrics.items()},
                "past": model.past,
                "future": model.future,
                "align_epochs": model.align_epochs,
                "adapt_epochs": model.adapt_epochs,
                "freeze_encoders": model.freeze_encoders,
                "freeze_backbone": model.freeze_backbone,
                "init_from": model.init_from,
                "lr": model.lr,
                "weight_decay": model.weight_decay,
                "warmup_fraction": model.warmup_fraction,
                "monitor": model.monitor,
                "monitor_mode": model.monitor_mode,
                "checkpoint_every_n_steps": model.checkpoint_every_n_steps,
                "augmentations": model.augmentations,
                "backbone_checkpointing": model.backbone.activation_checkpointing,
                "data_fields": model.data_fields(),
                "children": [name for name, _ in model.named_children()],
            }
        ),
    }


def initial_weights(model: WMLM) -> dict[str, list[float]]:
    """``{key: [sum, sum of squares]}`` of the floating-point weights drawn from ``torch.manual_seed(0)``."""
    return {
        k: [float(v.double().sum()), float(v.double().square().sum())]
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }


def refusal(options: dict[str, Any]) -> list[str]:
    """``[exception type, message]`` of building a tiny model with ``options``."""
    try:
        WMLM(**(TINY | options))
    except Exception as error:  # noqa: BLE001 - the type is part of what is recorded
        # the registry's list of what is available depends on the installed plugins, not on the model
        return [type(error).__name__, str(error).split("; available")[0]]
    return ["built", ""]


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(STRUCTURE.read_text())


@pytest.fixture(scope="module")
def built() -> dict[str, WMLM]:
    return _build_cases()


def test_cases_are_all_recorded(recorded: dict[str, Any], built: dict[str, WMLM]) -> None:
    assert sorted(recorded["models"]) == sorted(built)
    assert sorted(recorded["refusals"]) == sorted(BAD_OPTIONS)


@pytest.mark.parametrize("case", ["defaults", "tiny", "joint_multihead", "adapt_only_frozen",
                                  "align_only_objects", "objects_and_augmentations", "under_cli"])  # fmt: skip
@pytest.mark.parametrize("part", ["state_dict", "hyper_parameters", "attributes"])
def test_structure_unchanged(recorded: dict[str, Any], built: dict[str, WMLM], case: str, part: str) -> None:
    assert snapshot(built[case])[part] == recorded["models"][case][part]


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_refusals_unchanged(recorded: dict[str, Any], case: str) -> None:
    assert refusal(BAD_OPTIONS[case]) == recorded["refusals"][case]


@pytest.mark.parametrize("case", ["tiny", "joint_multihead", "align_only_objects", "under_cli"])
def test_same_initial_weights(recorded: dict[str, Any], built: dict[str, WMLM], case: str) -> None:
    """Parts are built in the same order as before, so a seed still draws the same initial weights."""
    now, then = initial_weights(built[case]), recorded["initial_weights"][case]
    assert list(now) == list(then)
    assert [x for v in now.values() for x in v] == pytest.approx(
        [x for v in then.values() for x in v], rel=1e-9
    )


def _old_checkpoint_batch() -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    power = torch.rand(2, 5, 64, generator=generator) + 1e-3
    gps = torch.randn(2, 5, 2, generator=generator) * 10
    return {"beam": power, "gps": gps, "mask": {"beam": torch.ones(2, 5, dtype=torch.bool)}}


def test_old_checkpoint_loads(recorded: dict[str, Any]) -> None:
    from wmlm.deploy.export import load_model

    expected = recorded["old_checkpoint"]
    for model in (
        WMLM.load_from_checkpoint(OLD_CHECKPOINT, map_location="cpu", weights_only=True).eval(),
        load_model(OLD_CHECKPOINT),
    ):
        assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
        assert _plain(dict(model.hparams)) == expected["hyper_parameters"]
        with torch.no_grad():
            logits = model(_old_checkpoint_batch())["beam"]
        assert torch.allclose(logits, torch.tensor(expected["beam_logits"]), atol=1e-5)


def test_fresh_fit_checkpoint_loads(tmp_path: Path) -> None:
    """A checkpoint written by today's ``wmlm fit`` loads both ways, with the structure recorded before."""
    from conftest import write_scenario

    from wmlm.cli import main
    from wmlm.deploy.export import load_model

    checkpoint = _tiny_fit(tmp_path, write_scenario, main)
    recorded = json.loads(STRUCTURE.read_text())["old_checkpoint"]
    for model in (WMLM.load_from_checkpoint(checkpoint, weights_only=True), load_model(checkpoint)):
        assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == recorded["state_dict"]
        assert _plain(dict(model.hparams)) == recorded["hyper_parameters"]


def _tiny_fit(root: Path, write_scenario: Any, main: Any) -> Path:
    for seed, name in enumerate(("scenario1", "scenario2", "scenario3")):
        write_scenario(root / "data" / name, seed=seed)
    conf = Path(__file__).parent / "conf" / "beam_gps.yaml"
    args = ["fit", "--config", str(conf), "--data.init_args.root", str(root / "data")]
    args += ["--trainer.default_root_dir", str(root / "runs"), "--test_after_fit", "false"]
    assert main(args) == 0
    return next((root / "runs").rglob("last.ckpt"))


def _record() -> None:  # pragma: no cover - run by hand, with the model code the fixture should freeze
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_scenario

    from wmlm.cli import main

    DATA.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WMLM_CACHE_DIR"] = str(Path(tmp) / "cache")
        checkpoint = torch.load(_tiny_fit(Path(tmp), write_scenario, main), weights_only=True)
    checkpoint.pop("optimizer_states", None)
    checkpoint.pop("lr_schedulers", None)
    torch.save(checkpoint, OLD_CHECKPOINT)
    old = WMLM.load_from_checkpoint(OLD_CHECKPOINT, map_location="cpu", weights_only=True).eval()
    with torch.no_grad():
        logits = old(_old_checkpoint_batch())["beam"]
    cases = _build_cases()
    record = {
        "models": {name: snapshot(model) for name, model in cases.items()},
        "initial_weights": {
            name: initial_weights(cases[name])
            for name in ("tiny", "joint_multihead", "align_only_objects", "under_cli")
        },
        "refusals": {name: refusal(options) for name, options in BAD_OPTIONS.items()},
        "old_checkpoint": {
            "state_dict": [[k, list(v.shape)] for k, v in old.state_dict().items()],
            "hyper_parameters": _plain(dict(old.hparams)),
            "beam_logits": logits.tolist(),
        },
    }
    STRUCTURE.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    _record()
