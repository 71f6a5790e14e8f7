"""Which classes a checkpoint may name: wmlm's own, those installed plugins registered, and those the user named.

A Lightning checkpoint written by ``wmlm fit`` stores the model's configuration in ``hyper_parameters``,
including ``class_path`` entries (``modalities``, ``heads``, ``augmentations``, the model's own
``_class_path``) and Lightning's ``_instantiator``. Rebuilding the model imports those modules, so a
checkpoint from someone else could make wmlm import any module on ``sys.path`` (a ``helpers.py`` beside
the checkpoint). Before anything is imported, every class path in the tree must resolve, *without
importing anything new*, to a class registered by a loaded plugin, or lie inside the ``wmlm`` package, or
be one the user's own configuration names. Anything else is refused, naming the key and the class, unless
the user passes ``--trust_checkpoint_classes`` (``WMLM_TRUST_CHECKPOINT_CLASSES=1``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from wmlm.errors import UntrustedCheckpointError

ENV_TRUST_CLASSES = "WMLM_TRUST_CHECKPOINT_CLASSES"
# read by ``wmlm.model.checkpoint``; here so the command line sets it without importing torch
ENV_ALLOW_REMOTE = "WMLM_ALLOW_REMOTE_CHECKPOINTS"
CLASS_KEYS = ("class_path", "_class_path")
# the only instantiator a checkpoint may name: the one LightningCLI writes
LIGHTNING_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


def classes_trusted() -> bool:
    """Whether the user said to import whatever classes checkpoints name."""
    return os.environ.get(ENV_TRUST_CLASSES, "").strip().lower() in ("1", "true", "yes")


def named_class_paths(tree: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(config key, class path)`` of every ``class_path`` / ``_class_path`` entry in a nested config."""
    if isinstance(tree, Mapping):
        for name, value in tree.items():
            where = f"{key}.{name}" if key else str(name)
            if name in CLASS_KEYS and isinstance(value, str):
                yield where, value
            else:
                yield from named_class_paths(value, where)
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from named_class_paths(value, f"{key}[{i}]")
    elif hasattr(tree, "__dict__") and type(tree).__name__ == "Namespace":  # jsonargparse's Namespace
        yield from named_class_paths(vars(tree), key)


def _loaded_object(path: str) -> object | None:
    """The object ``path`` names if its module is already imported; never imports anything."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: object = module
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
        return obj
    return None


def _registered_classes() -> set[type]:
    from wmlm.registry import load_plugins

    registry = load_plugins()
    return {*registry.modalities.values(), *registry.heads.values(), *map(type, registry.readers.values())}


def is_allowed(path: str, user_named: Iterable[str] = ()) -> bool:
    """Whether a checkpoint may name ``path`` (see the module docstring)."""
    if path == "wmlm" or path.startswith("wmlm.") or path in set(user_named):
        return True
    obj = _loaded_object(path)
    return obj is not None and obj in _registered_classes()


def check_checkpoint_classes(hparams: Any, source: str, user_named: Iterable[str] = ()) -> None:
    """Refuse a checkpoint whose hyperparameters name a class wmlm does not vouch for.

    Args:
        hparams: the checkpoint's ``hyper_parameters`` (or a model config beside a safetensors file).
        source: the checkpoint, for the message.
        user_named: class paths the user's own configuration names (the user trusts those already).

    Raises:
        UntrustedCheckpointError: naming the key and the class, and how to trust it.
    """
    if classes_trusted() or not isinstance(hparams, Mapping):
        return
    instantiator = hparams.get("_instantiator")
    if instantiator is not None and instantiator != LIGHTNING_INSTANTIATOR:
        raise UntrustedCheckpointError(
            f"checkpoint {source}: hyper_parameters._instantiator names {instantiator!r}; only "
            f"{LIGHTNING_INSTANTIATOR} is accepted"
        )
    named = list(user_named)
    for key, path in named_class_paths(hparams, "hyper_parameters"):
        if not is_allowed(path, named):
            raise UntrustedCheckpointError(
                f"checkpoint {source}: {key} names class {path!r}, which is neither wmlm's nor registered by an "
                "installed plugin nor named in your configuration; wmlm does not import it. If you trust "
                f"the checkpoint's author, pass --trust_checkpoint_classes ({ENV_TRUST_CLASSES}=1)"
            )
