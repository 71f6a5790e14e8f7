"""On-disk cache of parsed scenarios: one ``.npy`` file per field, memory-mapped on later runs.

Parsing a DeepSense folder means opening one small text file per sample and field (tens of thousands of
files); the cache turns that into a few ``np.load(mmap_mode="r")`` calls. An entry is keyed by everything
that can change its content: the bytes of every file under the scenario folder (a BLAKE2b digest, so a
file edited to the same size with its modification time restored is noticed; its cost:
docs/results/constants.md), the requested fields, the reader class and settings
of each field, the name and version of the distribution that provides the reader (an upgraded plugin
parses again) and the wmlm version. A stale entry is never reused, only replaced; a damaged one (a
truncated ``.npy``) is rebuilt with one warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from wmlm.data.deepsense import ScenarioData, find_scenarios, is_store_folder, load_scenario
from wmlm.data.store import read_store
from wmlm.data.table import DataError
from wmlm.outputs import atomic_write, atomic_write_text
from wmlm.version import __version__

log = logging.getLogger(__name__)
ENV_CACHE_DIR = "WMLM_CACHE_DIR"
META_FILE = "meta.json"


def default_cache_dir() -> Path:
    """``$WMLM_CACHE_DIR`` if set, else ``~/.cache/wmlm``."""
    return Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "wmlm").expanduser()


def folder_key(folder: Path) -> str:
    """Hex digest of the wmlm version, the folder's path and every file's relative path and bytes."""
    digest = hashlib.blake2b(json.dumps([__version__, str(folder.resolve())]).encode(), digest_size=32)
    for directory, subdirs, files in os.walk(folder):
        subdirs.sort()
        for file in sorted(files):
            path = os.path.join(directory, file)
            digest.update(f"{os.path.relpath(path, folder)}\0".encode())
            if not os.path.isfile(path):  # a FIFO or socket: reading it could block; its name is enough
                continue
            try:
                with open(path, "rb") as handle:
                    while chunk := handle.read(2**20):
                        digest.update(chunk)
            except OSError:
                continue  # unreadable files are reported by the reader that needs them
            digest.update(b"\0")
    return digest.hexdigest()


@functools.cache
def _distribution_of(module: str) -> str:
    """``name==version`` of the installed distribution providing ``module`` (wmlm's for built-ins)."""
    top = module.partition(".")[0]
    if top == "wmlm":
        return f"wmlm=={__version__}"
    names = metadata.packages_distributions().get(top, [])
    versions = []
    for name in sorted(names):
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ",".join(versions) or f"{top}==unversioned"


def _field_file(entry: Path, field: str) -> Path:
    """``<field>@<reader class>-<digest>.npy``: another reader class, setting or reader version is another file.

    The digest covers the reader's settings and the distribution (name and version) that provides its
    class, so upgrading a reader plugin never reuses arrays its previous version parsed.
    """
    from wmlm.registry import get_reader

    reader = get_reader(field)
    kind = type(reader)
    settings = repr(sorted((k, repr(v)) for k, v in vars(reader).items()))
    identity = f"{settings}|{_distribution_of(kind.__module__)}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return entry / f"{field}@{kind.__module__}.{kind.__qualname__}-{digest}.npy"


def load_scenario_cached(folder: Path | str, fields: Iterable[str], cache_dir: Path | str) -> ScenarioData:
    """``load_scenario`` through the cache under ``cache_dir``: each field parsed once, memory-mapped after.

    Fields missing from the folder's entry are parsed and added; present ones are not read again. An entry
    that cannot be read back (a truncated or garbled file) is removed and rebuilt, with one warning.
    """
    folder = Path(folder)
    fields = list(dict.fromkeys(fields))
    cache_dir = Path(cache_dir)
    _check_cache_dir(cache_dir)
    entry = cache_dir / f"{folder.name}-{folder_key(folder)[:20]}"
    missing = [f for f in fields if not _field_file(entry, f).is_file()]
    if missing or not (entry / META_FILE).is_file():
        _add_to_entry(entry, load_scenario(folder, missing), folder)
    try:
        return _open_entry(entry, folder.name, fields)
    except (OSError, ValueError, EOFError, KeyError) as exc:
        log.warning("cache entry %s of %s is damaged (%s); rebuilding it", entry, folder, exc)
        shutil.rmtree(entry, ignore_errors=True)
        _add_to_entry(entry, load_scenario(folder, fields), folder)
        return _open_entry(entry, folder.name, fields)


def _open_entry(entry: Path, name: str, fields: list[str]) -> ScenarioData:
    """Memory-map the arrays of ``entry``; ``ValueError`` if they do not fit together (e.g. truncated)."""
    index = np.load(entry / "_index.npy", mmap_mode="r")
    data = ScenarioData(
        name,
        index,
        np.load(entry / "_sequence.npy", mmap_mode="r"),
        {f: np.load(_field_file(entry, f), mmap_mode="r") for f in fields},
    )
    rows = json.loads((entry / META_FILE).read_text())["rows"]
    lengths = {len(index), len(data.sequence), *(len(v) for v in data.fields.values())}
    if lengths != {rows}:
        raise ValueError(f"arrays of {sorted(lengths)} rows, meta.json says {rows}")
    return data


def _check_cache_dir(cache_dir: Path) -> None:
    """The cache folder must be a writable folder (created if absent); the error names ``WMLM_CACHE_DIR``."""
    problem = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        problem = "is a file, not a folder"
    except OSError as exc:
        problem = f"cannot be created ({exc.strerror})"
    if problem is None and not os.access(cache_dir, os.W_OK | os.X_OK):
        problem = "is not writable"
    if problem:
        raise DataError(
            f"cache folder {cache_dir} {problem}; set {ENV_CACHE_DIR} (or data.cache_dir) to a writable "
            "folder, or data.cache to false"
        )


def _save_atomic(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` atomically: readers see all or nothing (no fsync: a cache can be rebuilt)."""
    with atomic_write(path, fsync=False) as stream:
        np.save(stream, np.ascontiguousarray(values))


def _add_to_entry(entry: Path, data: ScenarioData, source: Path) -> None:
    """Store the parsed fields in ``entry``; a new entry replaces older entries of the same folder."""
    fresh = not entry.is_dir()
    meta = {"source": str(source.resolve()), "rows": len(data)}
    try:
        entry.mkdir(parents=True, exist_ok=True)
        for name, values in data.fields.items():
            _save_atomic(_field_file(entry, name), values)
        _save_atomic(entry / "_index.npy", data.index)
        _save_atomic(entry / "_sequence.npy", data.sequence)
        atomic_write_text(entry / META_FILE, json.dumps(meta, indent=1), fsync=False)
    except OSError as exc:
        raise DataError(
            f"cannot write the cache entry {entry} ({exc.strerror}); set {ENV_CACHE_DIR} (or data.cache_dir) "
            "to a writable folder, or data.cache to false"
        ) from None
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


def load_scenarios(
    root: Path | str,
    fields: Iterable[str],
    names: Sequence[str] | None = None,
    cache_dir: Path | str | None = None,
) -> list[ScenarioData]:
    """``load_scenario`` for every selected scenario folder under ``root``.

    With ``cache_dir``, parsed fields are kept there as memory-mapped arrays (``wmlm.data.cache``). Array
    store sites (``wmlm.data.store``) are memory-mapped where they are, cache or not: nothing to parse.
    """
    fields = list(fields)
    loaded = []
    for folder in find_scenarios(root, names):
        if is_store_folder(folder):
            loaded.append(read_store(folder, fields))
        elif cache_dir is None:
            loaded.append(load_scenario(folder, fields))
        else:
            loaded.append(load_scenario_cached(folder, fields, cache_dir))
    return loaded
