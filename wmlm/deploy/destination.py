"""Where ``wmlm export`` writes: the ``wmlm.outputs`` policy for ``--out``, and the files an export owns."""

from __future__ import annotations

import json
from pathlib import Path

from wmlm.deploy import spec
from wmlm.deploy.safetensors_export import CONFIG_FILE, WEIGHTS_FILE
from wmlm.outputs import prepare_output_dir, write_marker

VERB = "export"
# every file an export of any format writes; --overwrite removes these and nothing else
EXPORT_FILES = (spec.MODEL_FILE, spec.MODEL_FILE + ".data", spec.SPEC_FILE, WEIGHTS_FILE, CONFIG_FILE)


def _legacy_export(folder: Path) -> bool:
    """Whether ``folder`` holds an ONNX export written before marker files existed (its JSON says so)."""
    try:
        return json.loads((folder / spec.SPEC_FILE).read_text(encoding="utf-8")).get("format") == spec.FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_destination(out_dir: Path, overwrite: bool) -> bool:
    """``wmlm.outputs.prepare_output_dir`` for ``--out``: True when it replaces an earlier export.

    ``OutputError`` for a file, a folder that cannot be created, or a non-empty folder that no export wrote.
    """
    return prepare_output_dir(out_dir, VERB, overwrite, legacy=_legacy_export)


def claim(out_dir: Path, replacing: bool, export_format: str) -> None:
    """Create and mark ``out_dir``; when ``replacing``, first remove the earlier export's files (only those)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if replacing:
        for name in EXPORT_FILES:
            (out_dir / name).unlink(missing_ok=True)
    write_marker(out_dir, VERB, format=export_format)
