"""``plugins/wmlm-sionna/benchmarks/zero_shot.py`` end to end on tiny fixtures: traced and built-in sites,
three training sources, the report, and a resumed rerun that trains nothing."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from sionna_fixtures import open_scene, private_cache, require_tracing, sionna_plugin  # noqa: F401  # autouse
from wmlm.cli import main

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "zero_shot.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sionna_zero_shot", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sionna_zero_shot"] = module
    spec.loader.exec_module(module)
    return module


def test_zero_shot_benchmark_trains_each_source_tests_on_real_and_resumes(tmp_path: Path) -> None:
    require_tracing()
    # the "real" development scenarios: two folders of the built-in simulator in the DeepSense layout
    assert (
        main(
            [
                "data",
                "synth",
                "--scenarios",
                "suburban,night",
                "--sequences",
                "3",
                "--out",
                str(tmp_path / "real"),
            ]
        )
        == 0
    )
    scene = open_scene(tmp_path / "scene")
    argv = ["--real-root", str(tmp_path / "real"), "--scenes", str(scene), "--seeds", "0", "--sequences", "2",
            "--train-seeds", "0,1", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--smoke"]  # fmt: skip
    script = load_script()
    report = script.main(argv)
    written = json.loads((tmp_path / "out" / "sionna_zero_shot.json").read_text())
    assert set(written["results"]) == {"ray-traced", "built-in", "both"}
    for source, result in written["results"].items():
        assert set(result["scores"]) == {"suburban", "night"}, source
        assert all(len(s["top1"]) == 3 for s in result["scores"].values())
    # one traced site, one built-in site, and both of them linked into the third source
    assert written["results"]["both"]["samples"] == sum(
        written["results"][s]["samples"] for s in ("ray-traced", "built-in")
    )
    assert (tmp_path / "work" / "raytraced" / "sionna_open_ground_s0" / "store.json").is_file()
    # two training seeds per source, and the table's cells are their mean ± std
    assert all(set(r["per_seed"]) == {"0", "1"} for r in written["results"].values())
    markdown = (tmp_path / "out" / "sionna_zero_shot.md").read_text()
    assert "| ray-traced | 1 |" in markdown and "| night |" in markdown and " ± " in markdown
    lines = (tmp_path / "work" / "progress.jsonl").read_text().splitlines()
    again = script.main(argv)
    assert (tmp_path / "work" / "progress.jsonl").read_text().splitlines() == lines
    assert again["results"] == report["results"]
