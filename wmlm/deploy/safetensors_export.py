"""``wmlm export --format safetensors``: a model's weights without pickle, with its configuration beside them.

    <out>/model.safetensors   every tensor of the model's ``state_dict``, keys exactly as in the Lightning
                              checkpoint's ``state_dict``, contiguous CPU tensors; metadata
                              ``{"format": "wmlm", "wmlm_version", "source", "class_path"}``
    <out>/model.yaml          ``class_path`` and ``init_args``: the checkpoint's hyperparameters, which under
                              ``wmlm fit`` are the parsed model configuration

so that ``wmlm test --config DATA.yaml --model <out>/model.yaml --ckpt_path <out>/model.safetensors``
rebuilds and evaluates the model. A safetensors file holds tensors and strings only: loading one runs no
code, which is why it is the format for sharing weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from wmlm.errors import CheckpointError
from wmlm.outputs import atomic_write, atomic_write_text, wmlm_version

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.yaml"
FORMAT = "wmlm"
# training-only options that need ``init_from``; the exported config drops ``init_from`` (its weights are in
# model.safetensors), so these are cleared with it, or the config would be refused on rebuilding
_NEED_INIT_FROM = ("freeze_encoders", "freeze_backbone")


def class_path(model: nn.Module) -> str:
    """The importable name of ``model``'s class (``wmlm.model.wmlm.WMLM``)."""
    return f"{type(model).__module__}.{type(model).__qualname__}"


def model_config(model: nn.Module) -> tuple[dict[str, Any], list[str]]:
    """``({"class_path", "init_args"}, notes)``: the configuration that rebuilds ``model``, from its hparams.

    ``init_from`` becomes None; ``notes`` say what was changed and why (written as comments in the YAML).
    """
    init_args = {k: v for k, v in dict(getattr(model, "hparams", {})).items() if not k.startswith("_")}
    notes = []
    if init_args.get("init_from"):
        notes.append(f"init_from was {init_args['init_from']}; the trained weights are in {WEIGHTS_FILE}")
        init_args["init_from"] = None
        for key in _NEED_INIT_FROM:
            if init_args.get(key):
                notes.append(
                    f"{key} was true (it needs init_from); set init_from: {WEIGHTS_FILE} to fine-tune"
                )
                init_args[key] = False
    return {"class_path": class_path(model), "init_args": init_args}, notes


def weights(model: nn.Module) -> dict[str, Tensor]:
    """``model.state_dict()`` as separate, contiguous CPU tensors (safetensors refuses shared storage)."""
    tensors = {}
    for key, value in model.state_dict().items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"state_dict entry {key!r} is a {type(value).__name__}, not a tensor")
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    return tensors


def write_safetensors(model: nn.Module, out_dir: Path, source: Path | None = None) -> dict[str, Path]:
    """Write ``model.safetensors`` and ``model.yaml`` into the existing folder ``out_dir`` (atomically each).

    Args:
        model: the model to publish.
        out_dir: the output folder (checked and marked by the caller, ``wmlm.deploy.export``).
        source: the checkpoint the model came from (its file name goes into the metadata).

    Returns:
        ``{"weights": path, "config": path}``.
    """
    config, notes = model_config(model)
    try:
        text = yaml.safe_dump(config, sort_keys=False)
    except yaml.YAMLError as error:
        raise CheckpointError(
            f"the hyperparameters of {source or 'the model'} are not plain configuration data ({error}); "
            "train through `wmlm fit` so that the configuration is saved with the checkpoint"
        ) from None
    header = [f"# written by wmlm export --format safetensors; weights: {WEIGHTS_FILE}"]
    header += [f"# {note}" for note in notes]
    metadata = {
        "format": FORMAT,
        "wmlm_version": wmlm_version(),
        "source": source.name if source is not None else "",
        "class_path": config["class_path"],
    }
    weights_path, config_path = out_dir / WEIGHTS_FILE, out_dir / CONFIG_FILE
    with atomic_write(weights_path) as stream:
        stream.write(safetensors_bytes(weights(model), metadata=metadata))
    atomic_write_text(config_path, "\n".join(header) + "\n" + text)
    return {"weights": weights_path, "config": config_path}
