"""The array store: one scenario (site) as one ``.npy`` file per field plus a small JSON index.

Layout of a store site folder (a folder of them is a data root, alone or beside DeepSense folders)::

    <site>/store.json          the index: format, version, name, rows, fields (file, dtype, shape),
                               the files of ``index`` and ``sequence``, provenance (who wrote it, from what)
    <site>/_index.npy          [N] int64  the sample index (``ScenarioData.index``)
    <site>/_sequence.npy       [N] int64  the vehicle pass of each row (``ScenarioData.sequence``)
    <site>/<field>.npy         [N, ...]   one field as its reader returns it (``wmlm.data.readers``: linear
                               power ordered by beam, 0-based labels, ENU metres, NaN for a missing step)

Why plain ``.npy`` and not a chunked library (zarr): the fields of a site are small dense arrays read by
row, ``np.load(mmap_mode="r")`` maps them with no copy and no new dependency, the parse cache
(``wmlm.data.cache``) already uses the same files, and any tool that reads numpy reads the store.
Compression and chunking would cost a decode per batch for arrays that are already small.

``store.json`` is written last, atomically: a folder without it is an interrupted write, never read as a
store (``is_store_folder`` is False, so ``find_scenarios`` does not take it for data). Reading checks the
version, that every file is a regular file of the size its header says, and that dtypes, shapes and row
counts agree with the index; each failure is a ``DataError`` naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from wmlm.data.deepsense import STORE_FILE, ScenarioData, is_store_folder
from wmlm.data.table import read_regular_file
from wmlm.errors import DataError
from wmlm.outputs import atomic_write, atomic_write_text
from wmlm.version import __version__

__all__ = ["STORE_FILE", "is_store_folder", "read_store", "write_store", "read_index", "store_fields"]
FORMAT_NAME = "wmlm-array-store"
FORMAT_VERSION = 1
INDEX_FILE, SEQUENCE_FILE = "_index.npy", "_sequence.npy"
MAX_INDEX_BYTES = 16 * 2**20  # a store.json holds names, shapes and provenance: kilobytes
_NPY_HEADER_MAX = 65536  # np.lib.format reads at most this much header


def field_file(field: str) -> str:
    """File name of ``field`` inside a store site; field names are reader names (no path separators)."""
    if not field or field.startswith((".", "_")) or "/" in field or "\\" in field or "\0" in field:
        raise DataError(
            f"field name {field!r} cannot be stored (it must not start with '.' or '_' nor hold '/')"
        )
    return f"{field}.npy"


def _save(path: Path, values: np.ndarray) -> None:
    with atomic_write(path, fsync=False) as stream:
        np.save(stream, np.ascontiguousarray(values), allow_pickle=False)


def write_store(data: ScenarioData, folder: Path | str, provenance: Mapping[str, Any] | None = None) -> Path:
    """Write ``data`` into the store site ``folder`` (created; its files replaced); returns the folder.

    Every array is written to its own ``.npy`` first, ``store.json`` last and atomically. ``provenance``
    (JSON-ready) is kept in the index, e.g. the source folder or the simulator's seed. The same ``data``
    gives the same bytes. Callers check the output folder first (``wmlm.outputs.prepare_output_dir``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STORE_FILE).unlink(missing_ok=True)  # from here until the end the folder is not a store
    rows = len(data)
    index = np.asarray(data.index, dtype=np.int64)
    sequence = np.asarray(data.sequence, dtype=np.int64)
    if len(sequence) != rows:
        raise DataError(f"scenario {data.name}: {len(sequence)} sequence values for {rows} rows")
    fields: dict[str, dict[str, Any]] = {}
    for name in sorted(data.fields):
        values = np.asarray(data.fields[name])
        if values.dtype.hasobject or len(values) != rows:
            raise DataError(
                f"scenario {data.name}: field {name!r} ({values.dtype}, {len(values)} rows) cannot be stored "
                f"as [{rows}, ...] numbers"
            )
        _save(folder / field_file(name), values)
        fields[name] = {"file": field_file(name), "dtype": values.dtype.str, "shape": list(values.shape)}
    _save(folder / INDEX_FILE, index)
    _save(folder / SEQUENCE_FILE, sequence)
    content = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "wmlm_version": __version__,
        "name": data.name,
        "rows": rows,
        "index": INDEX_FILE,
        "sequence": SEQUENCE_FILE,
        "fields": fields,
        "provenance": dict(provenance or {}),
    }
    atomic_write_text(folder / STORE_FILE, json.dumps(content, indent=1, sort_keys=True) + "\n", fsync=False)
    return folder


def read_index(folder: Path | str) -> dict[str, Any]:
    """The checked ``store.json`` of ``folder``: ``DataError`` naming it if absent, garbled or of another
    format version."""
    path = Path(folder) / STORE_FILE
    if not path.exists():
        raise DataError(f"{path} does not exist; {folder} is not a complete array store site")
    raw = read_regular_file(path, MAX_INDEX_BYTES, kind="store index (store.json)")
    try:
        content = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc}); rebuild the store (wmlm data pack / synth)"
        ) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT_NAME:
        raise DataError(f"{path} is not the index of a wmlm array store (no format {FORMAT_NAME!r})")
    if content.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: array store format version {content.get('version')!r} (written by wmlm "
            f"{content.get('wmlm_version', '?')}); this wmlm {__version__} reads version {FORMAT_VERSION}: "
            "rebuild it (wmlm data pack --overwrite, or wmlm data synth --format arrays --overwrite)"
        )
    try:
        rows = int(content["rows"])
        specs = content["fields"]
        if rows < 0 or not isinstance(specs, dict):
            raise ValueError("rows must be >= 0 and fields a mapping")
        for name, spec in specs.items():
            field_file(name)
            if spec["file"] != field_file(name):
                raise ValueError(f"field {name!r} names file {spec['file']!r}, expected {field_file(name)!r}")
            np.dtype(spec["dtype"])
            if [int(d) for d in spec["shape"]][:1] != [rows]:
                raise ValueError(f"field {name!r} has shape {spec['shape']}, expected {rows} rows first")
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} is not a valid array store index ({exc})") from None
    return content


def _open_array(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-map ``path``: a regular ``.npy`` file of exactly ``dtype`` and ``shape``, else ``DataError``."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise DataError(f"array store file {path} cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"array store file {path} is not a regular file (a FIFO, device or folder)")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if info.st_size < expected or info.st_size > expected + _NPY_HEADER_MAX:
        raise DataError(
            f"array store file {path} has {info.st_size} bytes, but {dtype} {list(shape)} needs {expected} "
            "plus a header: truncated or replaced; rebuild the store"
        )
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"array store file {path} is not a readable .npy file ({exc}); rebuild the store"
        ) from None
    if values.dtype != dtype or values.shape != shape:
        raise DataError(
            f"array store file {path} holds {values.dtype} {list(values.shape)}, but {STORE_FILE} says "
            f"{dtype} {list(shape)}; rebuild the store"
        )
    return values


def read_store(folder: Path | str, fields: Iterable[str] | None = None) -> ScenarioData:
    """The store site ``folder`` as ``ScenarioData`` of memory-mapped (read-only) arrays; nothing is read
    beyond the headers, except ``index`` and ``sequence`` (checked to be in time order).

    ``fields`` selects fields (default: all); one the store lacks fails listing what it holds.
    """
    folder = Path(folder)
    content = read_index(folder)
    rows, specs = int(content["rows"]), content["fields"]
    wanted = list(dict.fromkeys(fields)) if fields is not None else sorted(specs)
    missing = [f for f in wanted if f not in specs]
    if missing:
        raise DataError(
            f"array store {folder / STORE_FILE} has no field(s) {missing}; it holds {sorted(specs)} "
            "(pack the scenario again with those fields)"
        )
    int64 = np.dtype(np.int64)
    index = _open_array(folder / INDEX_FILE, int64, (rows,))
    sequence = _open_array(folder / SEQUENCE_FILE, int64, (rows,))
    if rows > 1 and (np.diff(index) <= 0).any():
        raise DataError(f"array store file {folder / INDEX_FILE}: index must increase from row to row")
    if rows > 1 and (np.diff(sequence) < 0).any():
        raise DataError(f"array store file {folder / SEQUENCE_FILE}: sequence must never decrease")
    arrays = {
        name: _open_array(
            folder / field_file(name),
            np.dtype(specs[name]["dtype"]),
            tuple(int(d) for d in specs[name]["shape"]),
        )
        for name in wanted
    }
    return ScenarioData(folder.name, index, sequence, arrays)  # named like a DeepSense folder: by folder


def store_fields(folder: Path | str) -> list[str]:
    """Names of the fields a store site holds."""
    return sorted(read_index(folder)["fields"])


PACK_VERB = "data pack"  # the verb named in a packed site's marker


def readable_fields(folder: Path | str) -> list[str]:
    """The registered fields (``FieldReader``s) whose CSV columns the DeepSense folder ``folder`` has."""
    from wmlm.data.table import ScenarioTable
    from wmlm.registry import load_plugins

    table = ScenarioTable.from_folder(folder)
    found = []
    for name, reader in sorted(load_plugins().readers.items()):
        extra = getattr(reader, "base_station_columns", ())
        if table.find_column(*reader.columns) and (not extra or table.find_column(*extra)):
            found.append(name)
    return found


def pack_scenarios(
    root: Path | str,
    out: Path | str,
    names: list[str] | None = None,
    fields: list[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Convert the DeepSense folders under ``root`` into store sites ``out/<name>``; returns them.

    ``fields`` (default: every field its columns allow, ``readable_fields``) are read by the registered
    readers, so the store holds exactly what ``load_scenario`` returns. Every output folder is checked
    first (``wmlm.outputs.prepare_output_dir``: ``--overwrite`` replaces only folders ``wmlm data pack``
    wrote); each gets a marker. Store sites under ``root`` are skipped (already arrays).
    """
    from wmlm.data.deepsense import find_scenarios, load_scenario
    from wmlm.outputs import prepare_output_dir, write_marker

    sources = [f for f in find_scenarios(root, names) if not is_store_folder(f)]
    if not sources:
        raise DataError(f"data root {root}: no DeepSense-layout scenario folder to pack")
    targets = [Path(out) / source.name for source in sources]
    replace = [prepare_output_dir(target, PACK_VERB, overwrite) for target in targets]
    for source, target, old in zip(sources, targets, replace):
        wanted = fields if fields is not None else readable_fields(source)
        data = load_scenario(source, wanted)
        if old:
            for path in target.glob("*.npy"):
                path.unlink()
            (target / STORE_FILE).unlink(missing_ok=True)
        target.mkdir(parents=True, exist_ok=True)
        write_marker(target, PACK_VERB, timestamp=False, source=source.name)
        write_store(data, target, provenance={"packed_from": source.name, "fields": wanted})
    return targets


def pack_command(argv: list[str]) -> int:
    """``wmlm data pack --root DIR --out STORE``: DeepSense folders -> array store sites; returns 0."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="wmlm data pack",
        description="Convert DeepSense-layout scenario folders into array store sites OUT/<name> "
        "(one .npy per field and a store.json index), read memory-mapped without parsing text.",
    )
    parser.add_argument("--root", required=True, type=Path, help="a scenario folder or a folder of them")
    parser.add_argument("--out", required=True, type=Path, help="parent folder of the store sites")
    parser.add_argument("--scenarios", default=None, help="comma-separated scenario names (default: all)")
    parser.add_argument(
        "--fields", default=None, help="comma-separated fields (default: every field the CSV's columns allow)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace store sites an earlier `wmlm data pack` wrote"
    )
    args = parser.parse_args(argv)
    split = lambda text: [t.strip() for t in text.split(",") if t.strip()] if text else None  # noqa: E731
    for target in pack_scenarios(
        args.root, args.out, split(args.scenarios), split(args.fields), args.overwrite
    ):
        content = read_index(target)
        print(
            f"{target.name}: {content['rows']} rows, fields {', '.join(sorted(content['fields']))} -> {target}"
        )
    return 0
