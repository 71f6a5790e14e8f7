"""The extra verbs start without Lightning: ``wmlm data synth`` imports neither Lightning nor torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from wmlm.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "lightning", "transformers") if m in sys.modules)
print("heavy:", ",".join(heavy) or "none")
sys.exit(code)
"""


def test_data_synth_imports_neither_lightning_nor_torch(tmp_path: Path):
    args = ["data", "synth", "--random-sites", "1", "--seed", "0", "--sequences", "2"]
    args += ["--format", "arrays", "--sensors", "none", "--out", str(tmp_path / "sites")]
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "heavy: none" in done.stdout
    assert (tmp_path / "sites" / "s0_site00001" / "store.json").is_file()


def test_lightning_names_are_still_offered_by_wmlm_cli():
    import wmlm.cli
    from wmlm.cli import WMLMCLI, run
    from wmlm.cli_lightning import WMLMCLI as lightning_cli

    assert WMLMCLI is lightning_cli and callable(run)
    with pytest.raises(AttributeError, match="not_a_name"):
        wmlm.cli.not_a_name  # noqa: B018
