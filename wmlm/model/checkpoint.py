"""The one way wmlm reads a checkpoint: local regular files, tensors only, no code named inside runs.

Every reader goes through ``read_checkpoint``: ``--ckpt_path`` of fit/validate/test/predict (through the
CLI and ``AtomicCheckpointIO``), ``model.init_from``, ``wmlm export --ckpt`` and resuming. Checkpoints
come from colleagues and downloads, so:

- only local regular files are read; a URL (``http://``, ``s3://``, ``file://`` ...) is refused unless the
  user opts in (``--allow_remote_checkpoints`` or ``WMLM_ALLOW_REMOTE_CHECKPOINTS=1``), and even then the
  bytes are unpickled with ``weights_only=True``;
- ``torch.load`` always runs with ``weights_only=True``; ``.safetensors`` files need no pickle at all;
- class paths named inside the checkpoint's hyperparameters are checked by ``wmlm.model.trust`` before
  anything imports them.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmlm.errors import CheckpointError, UntrustedCheckpointError
from wmlm.model.trust import ENV_ALLOW_REMOTE

log = logging.getLogger(__name__)
SAFETENSORS_SUFFIX = ".safetensors"
CONFIG_BESIDE_SAFETENSORS = "model.yaml"  # what `wmlm export --format safetensors` writes beside the weights


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose weights do not fit the model (another preset, embedding size, ...)."""


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return "://" in str(path)


def remote_allowed() -> bool:
    """Whether the user opted in to reading checkpoints from URLs."""
    return os.environ.get(ENV_ALLOW_REMOTE, "").strip().lower() in ("1", "true", "yes")


def _local_file(path: Path) -> Path:
    """``path`` if it is an existing regular file; else a ``CheckpointError`` saying what it is."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"checkpoint {path} is a folder; pass the checkpoint file inside it (*.ckpt)")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"checkpoint {path} is not a regular file (a pipe or device?)")
    return path


def _unpickle(source: Path | io.BytesIO, name: str) -> Any:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  # refused pickle, random bytes, a cut file: all mean "unusable"
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {name} cannot be read safely: it is not a checkpoint, was cut short, or needs code "
            f"to unpickle, which wmlm never runs ({type(error).__name__}: {reason})"
        ) from None


def _read_remote(url: str) -> Any:
    if not remote_allowed():
        raise UntrustedCheckpointError(
            f"checkpoint {url} is a URL; wmlm reads local files only. Download it, check where it comes from, "
            f"and pass the local file, or opt in with --allow_remote_checkpoints ({ENV_ALLOW_REMOTE}=1); "
            "remote files are still read with weights_only"
        )
    import fsspec

    try:
        with fsspec.open(url, "rb") as stream:
            data = stream.read()
    except Exception as error:  # noqa: BLE001  # any transport failure is the same message to the user
        raise CheckpointError(
            f"checkpoint {url} cannot be fetched: {type(error).__name__}: {error}"
        ) from None
    return _unpickle(io.BytesIO(data), url)


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file: {error}") from None
    return {"state_dict": tensors}


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of a checkpoint: a Lightning ``.ckpt``, a bare state dict, or a ``.safetensors`` file.

    A ``.safetensors`` file reads as ``{"state_dict": tensors}``. Raises ``CheckpointError`` (naming the file)
    for anything that is not a local regular file holding tensors and plain data.
    """
    if is_remote(path):
        checkpoint = _read_remote(str(path))
    else:
        local = _local_file(Path(path).expanduser())
        if local.suffix == SAFETENSORS_SUFFIX:
            return _read_safetensors(local)
        checkpoint = _unpickle(local, str(local))
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a dict of tensors")
    return checkpoint


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint (Lightning, bare state dict or safetensors), read safely."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(f"checkpoint {path} holds no state_dict of tensors")
    return state


def load_matching_weights(model: nn.Module, path: str | os.PathLike[str]) -> list[str]:
    """Copy the checkpoint's weights into ``model``; returns the model keys the checkpoint lacked.

    Keys present in both with different shapes are an error that names them; keys only in the model
    (e.g. heads absent from a stage-1 checkpoint) keep their fresh initialisation and are logged.
    """
    state = load_state_dict(path)
    own = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {list(v.shape)} vs model {list(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise CheckpointMismatchError(
            f"init_from {path}: {len(mismatched)} weights have other shapes (another preset or embed_dim?): "
            + "; ".join(mismatched[:8])
        )
    common = {k: v for k, v in state.items() if k in own}
    if not common:
        raise CheckpointMismatchError(f"init_from {path}: no weight name matches this model")
    model.load_state_dict(common, strict=False)
    missing = sorted(set(own) - set(common))
    log.info("init_from %s: loaded %d tensors; %d kept fresh", path, len(common), len(missing))
    return missing
