"""On-disk cache of parsed scenarios: one ``.npy`` file per field, memory-mapped on later runs.

Parsing a DeepSense folder means opening one small text file per sample and field (tens of thousands of
files); the cache turns that into a few ``np.load(mmap_mode="r")`` calls. An entry is keyed by everything
that can change its content: the size and modification time of every file under the scenario folder, the
requested fields, the reader class of each field and the wmlm version. A stale entry is never reused,
only replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from wmlm.data.deepsense import ScenarioData, load_scenario

log = logging.getLogger(__name__)
ENV_CACHE_DIR = "WMLM_CACHE_DIR"
META_FILE = "meta.json"


def default_cache_dir() -> Path:
    """``$WMLM_CACHE_DIR`` if set, else ``~/.cache/wmlm``."""
    return Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "wmlm").expanduser()


def folder_key(folder: Path) -> str:
    """Hex digest of the wmlm version, the folder's path and every file's relative path, size and mtime."""
    from wmlm import __version__

    digest = hashlib.sha256(json.dumps([__version__, str(folder.resolve())]).encode())
    for directory, subdirs, files in os.walk(folder):
        subdirs.sort()
        for file in sorted(files):
            path = os.path.join(directory, file)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _field_file(entry: Path, field: str) -> Path:
    """``<field>@<reader class>-<settings digest>.npy``: another reader class or setting is another file."""
    from wmlm.registry import get_reader

    reader = get_reader(field)
    kind = type(reader)
    settings = repr(sorted((k, repr(v)) for k, v in vars(reader).items()))
    digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
    return entry / f"{field}@{kind.__module__}.{kind.__qualname__}-{digest}.npy"


def load_scenario_cached(folder: Path | str, fields: Iterable[str], cache_dir: Path | str) -> ScenarioData:
    """``load_scenario`` through the cache under ``cache_dir``: each field parsed once, memory-mapped after.

    Fields missing from the folder's entry are parsed and added; present ones are not read again.
    """
    folder = Path(folder)
    fields = list(dict.fromkeys(fields))
    entry = Path(cache_dir) / f"{folder.name}-{folder_key(folder)[:20]}"
    missing = [f for f in fields if not _field_file(entry, f).is_file()]
    if missing or not (entry / META_FILE).is_file():
        _add_to_entry(entry, load_scenario(folder, missing), folder)
    return ScenarioData(
        folder.name,
        np.load(entry / "_index.npy", mmap_mode="r"),
        np.load(entry / "_sequence.npy", mmap_mode="r"),
        {f: np.load(_field_file(entry, f), mmap_mode="r") for f in fields},
    )


def _save_atomic(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` through a temporary file and a rename: readers see all or nothing."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, np.ascontiguousarray(values))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _add_to_entry(entry: Path, data: ScenarioData, source: Path) -> None:
    """Store the parsed fields in ``entry``; a new entry replaces older entries of the same folder."""
    fresh = not entry.is_dir()
    entry.mkdir(parents=True, exist_ok=True)
    for name, values in data.fields.items():
        _save_atomic(_field_file(entry, name), values)
    _save_atomic(entry / "_index.npy", data.index)
    _save_atomic(entry / "_sequence.npy", data.sequence)
    meta = {"source": str(source.resolve()), "rows": len(data)}
    (entry / META_FILE).write_text(json.dumps(meta, indent=1))
    log.info("cached %s of %s (%d rows) in %s", sorted(data.fields), source, len(data), entry)
    if not fresh:
        return
    for old in entry.parent.glob(f"{source.name}-*"):
        meta_file = old / META_FILE
        if old == entry or not meta_file.is_file():
            continue
        try:
            stale = json.loads(meta_file.read_text()).get("source") == meta["source"]
        except (OSError, ValueError):
            stale = False
        if stale:
            shutil.rmtree(old, ignore_errors=True)
