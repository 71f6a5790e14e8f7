"""What the command line does with ``--ckpt_path``: read it safely, check its classes, say what it replaces, find ``last``.

Used only by ``wmlm.cli``. ``--ckpt_path last`` means the newest ``checkpoints/last.ckpt`` under
``trainer.default_root_dir`` whose run was made with the same ``model`` and ``data`` configuration; a run
of another configuration in the same folder is never picked.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from wmlm.errors import CheckpointError
from wmlm.model.checkpoint import (
    CONFIG_BESIDE_SAFETENSORS,
    SAFETENSORS_SUFFIX,
    is_remote,
    read_checkpoint,
)
from wmlm.model.trust import check_checkpoint_classes, named_class_paths

LAST = "last"
LIGHTNING_KEYWORDS = ("last", "best", "hpc", "registry")  # ckpt_path values Lightning resolves itself
RUN_CONFIG = "config.yaml"  # LightningCLI's SaveConfigCallback writes it into every run folder
COMPARED_SECTIONS = ("model", "data")


def plain(value: Any) -> Any:
    """``value`` as JSON-like data (Namespaces to dicts, tuples to lists, paths to strings), for comparing."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    return json.loads(json.dumps(value, default=str))


def checkpoint_model_config(ckpt_path: str) -> dict[str, Any]:
    """The model configuration a checkpoint carries: its ``hyper_parameters``, or ``model.yaml`` beside a
    ``.safetensors`` file (``{class_path, init_args}``); empty when it carries none."""
    if not is_remote(ckpt_path) and Path(ckpt_path).suffix == SAFETENSORS_SUFFIX:
        read_checkpoint(ckpt_path)  # refuse a bad file before its config is used
        beside = Path(ckpt_path).with_name(CONFIG_BESIDE_SAFETENSORS)
        if not beside.is_file():
            return {}
        try:
            config = yaml.safe_load(beside.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{beside}: not a YAML model configuration ({error})") from None
        return config if isinstance(config, dict) else {}
    hparams = read_checkpoint(ckpt_path).get("hyper_parameters") or {}
    return dict(hparams) if isinstance(hparams, Mapping) else {}


def as_model_section(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model configuration in the form the parser accepts for ``model``."""
    hparams = {k: v for k, v in hparams.items() if k != "_instantiator"}
    if "_class_path" in hparams:  # LightningCLI's layout: init args beside their class
        class_path = hparams.pop("_class_path")
        return {"class_path": class_path, "dict_kwargs": hparams}
    return hparams


def _typed_options(model_section: Any) -> dict[str, Any]:
    """The model's init args whose values differ from the class's defaults: what the user chose."""
    section = plain(model_section) or {}
    init_args = section.get("init_args") or {}
    from wmlm.model.trust import _loaded_object

    cls = _loaded_object(str(section.get("class_path", "")))
    if not callable(cls):
        return {}
    try:
        defaults = {
            name: p.default
            for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in init_args.items() if k in defaults and plain(defaults[k]) != v}


def replaced_options(model_section: Any, hparams: dict[str, Any]) -> list[str]:
    """``"key: yours -> checkpoint's"`` for every model option the user chose that the checkpoint overrides."""
    theirs = plain(hparams.get("init_args", hparams))
    return [
        f"{key}: {value!r} -> {theirs[key]!r}"
        for key, value in _typed_options(model_section).items()
        if key in theirs and theirs[key] != value
    ]


def note(message: str) -> None:
    """A one-line notice on stderr (not a log record: it must reach the terminal whatever logging does)."""
    print(f"wmlm: note: {message}", file=sys.stderr)


def apply_checkpoint_config(config: Any, parse: Any, subcommand: str) -> Any:
    """``config`` with the model section of its ``--ckpt_path`` checkpoint applied (as LightningCLI does),
    after checking the checkpoint's classes and telling the user which of their options it replaces.

    Args:
        config: the parsed configuration (a jsonargparse Namespace with ``config[subcommand]``).
        parse: ``parser.parse_object``.
    """
    section = config[subcommand]
    ckpt_path = section.get("ckpt_path")
    if not ckpt_path or ckpt_path in LIGHTNING_KEYWORDS:
        return config
    hparams = checkpoint_model_config(str(ckpt_path))
    user_named = [path for _, path in named_class_paths(plain(section))]
    check_checkpoint_classes(hparams, str(ckpt_path), user_named)
    hparams = as_model_section(hparams)
    if not hparams:
        return config
    replaced = replaced_options(section.get("model"), hparams.get("dict_kwargs", hparams))
    if replaced:
        note(f"--ckpt_path {ckpt_path}: the checkpoint's model options replace yours: " + "; ".join(replaced))
    return parse({subcommand: {"model": hparams}}, config)


def same_configuration(run_config: Path, current: dict[str, Any]) -> bool:
    """Whether the run folder's saved ``config.yaml`` has the same model and data sections as ``current``."""
    try:
        saved = yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return all(plain(saved.get(k)) == plain(current.get(k)) for k in COMPARED_SECTIONS)


def find_last(root: Path, current: dict[str, Any]) -> tuple[Path | None, int]:
    """The newest ``last.ckpt`` under ``root`` of a run with the same configuration, and how many ``last.ckpt``
    of other configurations were passed over."""
    found = [p for p in root.glob("**/checkpoints/last.ckpt") if p.is_file()]
    same = [p for p in found if same_configuration(p.parent.parent / RUN_CONFIG, current)]
    newest = max(same, key=lambda p: p.stat().st_mtime_ns) if same else None
    return newest, len(found) - len(same)


def resolve_last(root: Path, current: dict[str, Any], verb: str) -> str | None:
    """``--ckpt_path last`` as a file, for ``verb``; fit without one starts afresh, other verbs fail."""
    newest, others = find_last(root, current)
    if newest is not None:
        note(f"--ckpt_path last: {newest}")
        return str(newest)
    other = f" ({others} last.ckpt of other configurations left alone)" if others else ""
    if verb == "fit":
        note(f"--ckpt_path last: no run of this configuration under {root}{other}; training starts afresh")
        return None
    raise CheckpointError(
        f"--ckpt_path last: no checkpoints/last.ckpt of a run with this model and data configuration under "
        f"{root}{other}; pass the checkpoint file, or the trainer.default_root_dir of the run"
    )
