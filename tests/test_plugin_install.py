"""A real plugin distribution, installed with pip, is found through the ``wmlm`` entry-point group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LIDAR = REPO_ROOT / "plugins" / "wmlm-lidar"


def test_pip_installed_lidar_plugin_is_listed_through_entry_points(tmp_path: Path) -> None:
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources it builds
    source = tmp_path / "src"
    shutil.copytree(
        LIDAR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    )
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "wmlm_lidar" / "plugin.py").is_file()

    # a fresh interpreter that can import the plugin only from the target folder; wmlm itself comes from
    # this environment. The target goes first on the path, so its distribution is the one listed even when
    # the plugin is also installed here.
    env = {k: v for k, v in os.environ.items() if k != "WMLM_LOAD_PLUGINS"}
    env["PYTHONPATH"] = str(target)
    listing = subprocess.run(
        [sys.executable, "-m", "wmlm", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,  # not the repository: nothing importable by accident from the working folder
    )
    assert listing.returncode == 0, listing.stderr
    records = {r["name"]: r for r in json.loads(listing.stdout)}
    assert "lidar" in records, f"entry point 'lidar' not listed; plugins: {sorted(records)}"
    record = records["lidar"]
    assert record["distribution"] == "wmlm-lidar" and record["version"] == "0.1.0"
    assert record["status"] == "ok", record["error"]
    assert record["registered"] == {"modality": ["lidar"], "head": [], "reader": ["lidar"]}

    where = subprocess.run(
        [sys.executable, "-c", "import wmlm_lidar; print(wmlm_lidar.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr
