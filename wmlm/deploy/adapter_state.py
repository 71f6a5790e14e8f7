"""Save and restore what an ``OnlineAdapter`` has learned at its site, without pickle.

    adapter.save("site_A_state")                      # after end_pass(); no pass may be in progress
    adapter = OnlineAdapter.load("site_A_state", load_model("wmlm.ckpt"))

A base station restarts (power cut, software update) and must not forget its site. The state folder holds
``adapter.safetensors`` (every tensor: the model's weights as adapted, AdamW's moments, the replay buffer's
windows, the site prior's counts, the site memory's keys and futures, the update generator) and
``adapter.json`` (settings, counters, the random state of the buffer, the model's parameter names and
shapes, and the SHA-256 of the tensor file). Nothing is unpickled on load, so a state folder from elsewhere
cannot run code; a tensor file that does not match its JSON (a save cut short between the two files, a
file edited or swapped) is refused, as is a state written for another model or another state version.
The folder carries wmlm's output marker (verb ``online``): saving replaces only an earlier state.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from wmlm.deploy.replay import Window
from wmlm.errors import CheckpointError, ConfigError
from wmlm.outputs import atomic_write, atomic_write_text, marker_verb, prepare_output_dir, write_marker

if TYPE_CHECKING:
    from wmlm.model.wmlm import WMLM

# an ``OnlineAdapter`` (``wmlm.deploy.online``, which imports this module: named here only by its role,
# so that the two do not import each other)
OnlineAdapter = Any

STATE_VERSION = 1
TENSORS_FILE = "adapter.safetensors"
SETTINGS_FILE = "adapter.json"
VERB = "online"  # the output marker's verb: ``wmlm online --state`` writes these folders


def is_state_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved adapter state (its JSON file and wmlm's ``online`` marker)."""
    folder = Path(folder)
    return (folder / SETTINGS_FILE).is_file() and marker_verb(folder) == VERB


def save_adapter(adapter: OnlineAdapter, folder: str | Path, overwrite: bool = True) -> Path:
    """Write ``adapter``'s state to ``folder`` (created; an earlier state there is replaced when
    ``overwrite``); returns the folder. Raises ``ConfigError`` while a pass is in progress: its samples
    would be lost, so end it first."""
    from safetensors.torch import save as save_tensors

    folder = Path(folder)
    if adapter._pass is not None and adapter._pass.steps:
        raise ConfigError(
            f"online adapter: a pass is in progress ({len(adapter._pass.steps)} samples); call end_pass() before "
            "saving, or its samples would be lost"
        )
    prepare_output_dir(folder, VERB, overwrite)
    tensors = _tensors(adapter)
    blob = save_tensors({name: t.contiguous() for name, t in tensors.items()})
    folder.mkdir(parents=True, exist_ok=True)
    # the marker first: a save cut short leaves a folder the next save may replace, and a tensor file
    # that its JSON's hash does not match, which load refuses
    write_marker(folder, VERB, passes_ended=adapter.passes_ended)
    with atomic_write(folder / TENSORS_FILE) as stream:
        stream.write(blob)
    settings = _settings(adapter)
    settings["tensors_sha256"] = hashlib.sha256(blob).hexdigest()
    atomic_write_text(folder / SETTINGS_FILE, json.dumps(settings, indent=1) + "\n")
    return folder


def load_adapter(folder: str | Path, model: WMLM, adapter_class: type[OnlineAdapter]) -> OnlineAdapter:
    """The adapter saved in ``folder`` by ``save_adapter``, rebuilt as ``adapter_class`` (``OnlineAdapter``,
    which calls this from ``OnlineAdapter.load``; passed in so that this module does not import it) around
    ``model`` (the pretrained ``WMLM`` it was created from, or any with the same parameter names and
    shapes: its weights are replaced by the saved ones)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    folder = Path(folder)
    settings = _read_settings(folder)
    blob = (folder / TENSORS_FILE).read_bytes() if (folder / TENSORS_FILE).is_file() else None
    if blob is None or hashlib.sha256(blob).hexdigest() != settings.get("tensors_sha256"):
        raise CheckpointError(
            f"{folder / TENSORS_FILE} is missing or does not match {SETTINGS_FILE} (a save cut short, or a file "
            "changed since); the state cannot be trusted"
        )
    try:
        tensors = load_tensors(blob)
    except SafetensorError as error:
        raise CheckpointError(f"{folder / TENSORS_FILE} is not a safetensors file: {error}") from None
    shapes, saved = {n: list(t.shape) for n, t in model.state_dict().items()}, settings["model_shapes"]
    differing = sorted(n for n in shapes.keys() | saved.keys() if shapes.get(n) != saved.get(n))
    if differing:
        raise CheckpointError(
            f"{folder} was saved for another model: {len(differing)} parameter(s) differ in name or shape, "
            f"e.g. {differing[0]!r} ({saved.get(differing[0])} saved, {shapes.get(differing[0])} in the model)"
        )
    options = settings["options"]
    adapter = adapter_class(model, **options)
    adapter.model.load_state_dict(
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    )
    _restore_optimizer(adapter, tensors, settings["optimizer_groups"])
    _restore_buffer(adapter, tensors, settings["buffer"])
    if adapter.prior is not None:
        adapter.prior.counts = tensors["prior.counts"].clone()
    if adapter.memory is not None:
        _restore_memory(adapter, tensors, settings["memory"])
    adapter.generator.set_state(tensors["generator"].clone())
    adapter.passes_ended, adapter.late_labels = settings["passes_ended"], settings["late_labels"]
    return adapter


# ------------------------------------------------------------------------------------------ writing
def _tensors(adapter: OnlineAdapter) -> dict[str, Tensor]:
    tensors = {f"model.{k}": v.detach().clone() for k, v in adapter.model.state_dict().items()}
    for index, state in adapter.optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value).detach().clone()
    items = adapter.buffer.items
    if items:
        for m in items[0].inputs:
            tensors[f"buffer.inputs.{m}"] = torch.stack([w.inputs[m] for w in items])
            tensors[f"buffer.mask.{m}"] = torch.stack([w.mask[m] for w in items])
        tensors["buffer.target"] = torch.stack([w.target for w in items])
        tensors["buffer.index"] = torch.tensor([w.index for w in items], dtype=torch.int64)
        tensors["buffer.pass_number"] = torch.tensor([w.pass_number for w in items], dtype=torch.int64)
        if all(w.hidden is not None for w in items):
            tensors["buffer.hidden"] = torch.stack([w.hidden for w in items])  # type: ignore[misc]
    if adapter.prior is not None:
        tensors["prior.counts"] = adapter.prior.counts
    memory = adapter.memory
    if memory is not None and memory._keys is not None:
        tensors["memory.keys"], tensors["memory.futures"] = memory._keys, memory._futures
    tensors["generator"] = adapter.generator.get_state()
    return tensors


def _settings(adapter: OnlineAdapter) -> dict[str, Any]:
    memory = adapter.memory
    return {
        "state_version": STATE_VERSION,
        "options": adapter.options,
        "passes_ended": adapter.passes_ended,
        "late_labels": adapter.late_labels,
        "model_shapes": {name: list(t.shape) for name, t in adapter.model.state_dict().items()},
        "optimizer_groups": adapter.optimizer.state_dict()["param_groups"],
        "buffer": {
            "windows": len(adapter.buffer),
            "seen": adapter.buffer.seen,
            "next": adapter.buffer._next,
            "rng": adapter.buffer._rng.bit_generator.state,
        },
        "memory": None
        if memory is None
        else {
            "capacity": memory.capacity,
            "k": memory.k,
            "temperature": memory.temperature,
            "beam_weight": memory.beam_weight,
            "size": len(memory),
            "next": memory._next,
        },
    }


# ------------------------------------------------------------------------------------------ reading
def _read_settings(folder: Path) -> dict[str, Any]:
    path = folder / SETTINGS_FILE
    if not is_state_folder(folder):
        raise CheckpointError(
            f"{folder} holds no saved online adapter (expected {SETTINGS_FILE} written by wmlm)"
        )
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(settings, dict) or settings.get("state_version") != STATE_VERSION:
        found = settings.get("state_version") if isinstance(settings, dict) else None
        raise CheckpointError(
            f"{path}: state version {found!r}, this wmlm reads version {STATE_VERSION}; start a fresh adapter "
            "from the checkpoint"
        )
    return settings


def _restore_optimizer(adapter: OnlineAdapter, tensors: dict[str, Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value.clone()
    adapter.optimizer.load_state_dict({"state": state, "param_groups": groups})


def _restore_buffer(adapter: OnlineAdapter, tensors: dict[str, Tensor], saved: dict[str, Any]) -> None:
    buffer = adapter.buffer
    buffer.seen, buffer._next = saved["seen"], saved["next"]
    buffer._rng.bit_generator.state = saved["rng"]
    names = [k[len("buffer.inputs.") :] for k in tensors if k.startswith("buffer.inputs.")]
    hidden = tensors.get("buffer.hidden")
    buffer.items = [
        Window(
            {m: tensors[f"buffer.inputs.{m}"][i].clone() for m in names},
            {m: tensors[f"buffer.mask.{m}"][i].clone() for m in names},
            tensors["buffer.target"][i].clone(),
            int(tensors["buffer.index"][i]),
            int(tensors["buffer.pass_number"][i]),
            hidden[i].clone() if hidden is not None else None,
        )
        for i in range(saved["windows"])
    ]


def _restore_memory(adapter: OnlineAdapter, tensors: dict[str, Tensor], saved: dict[str, Any]) -> None:
    memory = adapter.memory
    assert memory is not None
    memory.capacity, memory.k = saved["capacity"], saved["k"]
    memory.temperature, memory.beam_weight = saved["temperature"], saved["beam_weight"]
    if "memory.keys" in tensors:
        memory._keys, memory._futures = tensors["memory.keys"].clone(), tensors["memory.futures"].clone()
    memory._size, memory._next = saved["size"], saved["next"]
