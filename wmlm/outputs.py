"""Where wmlm writes: the one overwrite policy, the one atomic-write helper, and checks made before any work.

**Overwrite policy.** A folder a wmlm verb writes carries a marker file, ``.wmlm-output.json``, saying which
verb wrote it, with which wmlm version and when. ``--overwrite`` may replace only the files of a folder that
carries the marker *of the same verb*; a folder that holds anything else (a real DeepSense scenario, a
user's files, another verb's output) is refused with an ``OutputError`` naming the folder, with or without
``--overwrite``. Even then a verb removes only the files it writes itself, never the whole folder.
``prepare_output_dir`` is the check, made before the (slow) work starts, so that a refused or impossible
output (a path that is a file, a parent that is a file, no permission) costs nothing.

**Atomic writes.** ``atomic_write(path)`` writes to a hidden sibling, flushes it to disk and renames it over
``path`` in one step: a reader, or a crash, sees the old complete file or the new complete file, never a
truncated one. ``publish_dir`` does the same for a whole folder (the prediction CSVs of one run appear
together or not at all, and never mix with another run's).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from wmlm.errors import OutputError
from wmlm.version import __version__

MARKER_FILE = ".wmlm-output.json"
PARTIAL_SUFFIX = ".partial"  # what a killed atomic write leaves behind: ``.<name>.<random>.partial``
_SAMPLE = 3  # how many of a refused folder's entries the message names


@contextlib.contextmanager
def atomic_write(path: str | Path, fsync: bool = True) -> Iterator[IO[bytes]]:
    """A binary stream whose content replaces ``path`` in one step when the ``with`` block ends without error.

    The data goes to ``.<name>.<random>.partial`` in the same folder (a rename is atomic only within one file
    system; the system temp folder is often another one), is flushed and, with ``fsync``, forced to disk,
    then renamed over ``path``. On an error the partial file is removed and ``path`` is left as it was.
    The parent folder must exist.
    """
    target = Path(path)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, fsync: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``atomic_write``)."""
    with atomic_write(path, fsync=fsync) as stream:
        stream.write(text.encode("utf-8"))


def publish_dir(staging: Path, folder: Path) -> None:
    """Move the finished folder ``staging`` to ``folder`` in one rename; ``folder`` must be absent or empty.

    ``staging`` must be a sibling of ``folder`` (same file system). If ``folder`` gained files meanwhile
    (another run wrote there), ``staging`` is removed and ``OutputError`` says so: two runs never mix.
    """
    try:
        os.rename(staging, folder)  # POSIX: replaces an empty folder, refuses a non-empty one
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise OutputError(
                f"{folder} received other files while this run was writing; nothing of this run was written "
                "there. Choose a new folder."
            ) from None
        raise OutputError(f"cannot write {folder}: {error.strerror or error}") from None


def staging_dir(folder: Path) -> Path:
    """A fresh hidden sibling of ``folder`` to fill and then ``publish_dir``; parents are created."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=PARTIAL_SUFFIX, dir=folder.parent))


def wmlm_version() -> str:
    """``wmlm.__version__`` (from ``wmlm.version``: this module sits below the package's ``__init__``)."""
    return __version__


def write_marker(folder: Path, verb: str, timestamp: bool = True, **details: Any) -> Path:
    """Mark ``folder`` as written by ``wmlm <verb>`` (JSON: verb, wmlm version, UTC time, ``details``).

    ``timestamp=False`` leaves the time out, for verbs whose output is byte-for-byte reproducible.
    """
    content: dict[str, Any] = {"written_by": "wmlm", "verb": verb, "wmlm_version": wmlm_version()}
    if timestamp:
        content["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    content.update(details)
    path = folder / MARKER_FILE
    atomic_write_text(path, json.dumps(content, indent=2) + "\n")
    return path


def marker_verb(folder: Path) -> str | None:
    """The verb named by ``folder``'s marker, or None (no marker, or one that is not wmlm's JSON)."""
    path = folder / MARKER_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict) or content.get("written_by") != "wmlm":
        return None
    verb = content.get("verb")
    return verb if isinstance(verb, str) else None


def check_creatable(folder: Path) -> None:
    """``OutputError`` unless ``folder`` exists as a writable folder or could be created; creates nothing."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = "a file, not a folder" if existing.exists() else "a broken link"
        raise OutputError(f"cannot create the output folder {folder}: {existing} is {reason}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the output folder {folder}: no permission to write in {existing}")


def _sample(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(names[:_SAMPLE])
    return shown + (f" and {len(names) - _SAMPLE} more" if len(names) > _SAMPLE else "")


def prepare_output_dir(
    folder: str | Path,
    verb: str,
    overwrite: bool | None,
    legacy: Callable[[Path], bool] | None = None,
) -> bool:
    """Check that ``wmlm <verb>`` may write into ``folder``; returns True when it replaces an earlier output.

    Accepted: a folder that does not exist but can be created, an empty writable folder, and, with
    ``overwrite``, a folder carrying ``verb``'s marker (or recognised by ``legacy``: an output this verb wrote
    before markers existed). Everything else raises ``OutputError`` naming the folder and why. Nothing is
    created or removed here.

    Args:
        folder: the output folder.
        verb: the verb as typed (``"data synth"``, ``"export"``, ``"predict"``).
        overwrite: the user's ``--overwrite``; None for a verb that never replaces (its messages then do
            not suggest the flag).
        legacy: recognises this verb's outputs written before the marker existed.
    """
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; wmlm {verb} writes a folder there")
    if not folder.exists():
        check_creatable(folder)
        return False
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {folder}: no permission")
    if not any(folder.iterdir()):
        return False
    found = marker_verb(folder)
    if found == verb or (found is None and legacy is not None and legacy(folder)):
        if overwrite:
            return True
        hint = (
            "pass --overwrite to replace it" if overwrite is not None else "choose a new folder or remove it"
        )
        raise OutputError(f"{folder} already holds output of wmlm {verb}; {hint}")
    never = "" if overwrite is None else ", even with --overwrite"
    if found is not None:
        raise OutputError(
            f"{folder} holds output of wmlm {found}, not of wmlm {verb}; wmlm does not write there{never}: "
            "choose another folder"
        )
    raise OutputError(
        f"{folder} is not empty and was not written by wmlm {verb} (it holds {_sample(folder)}); wmlm never "
        f"replaces files it did not write{never}: choose a new or empty folder"
    )
