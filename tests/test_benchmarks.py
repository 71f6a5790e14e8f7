"""Benchmark scripts run end to end on tiny fixtures, so they cannot rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from conftest import write_scenario

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zero_shot_script_writes_the_promised_json(tmp_path: Path) -> None:
    for name, seed in (("siteA1", 1), ("siteA2", 2)):
        write_scenario(tmp_path / "train" / name, seed=seed)
    write_scenario(tmp_path / "unseen" / "siteZ", seed=3, label_column="unit1_beam_index")
    out = tmp_path / "results.json"
    results = load_script("zero_shot").main(
        [
            "--train-root",
            str(tmp_path / "train"),
            "--test-root",
            str(tmp_path / "unseen"),
            "--json",
            str(out),
            "--smoke",
        ]
    )
    written = json.loads(out.read_text())
    assert written == results
    assert {"wmlm", "gru", "repeat_last", "kinematic"} <= set(written)
    for model in written.values():
        assert set(model) == {"siteZ"}  # only the held-out scenario is scored
        scores = model["siteZ"]
        assert len(scores["top1"]) == len(scores["top3"]) == 3
        assert all(0.0 <= a <= b <= 1.0 for a, b in zip(scores["top1"], scores["top3"]))
        assert 0.0 <= scores["dba"] <= 1.0
    # the fixture's beams sweep steadily, which the kinematic prior extrapolates and repeat-last cannot
    assert written["kinematic"]["siteZ"]["top3"][2] > written["repeat_last"]["siteZ"]["top3"][2]


def test_real_deepsense_script_writes_tables_plots_and_json(tmp_path: Path) -> None:
    sites = {"A": ["s1", "s2"], "B": ["s3"]}
    for seed, name in enumerate(["s1", "s2", "s3"]):
        write_scenario(tmp_path / "data" / name, seed=seed, sequence_lengths=(14, 12, 16, 13, 15))
    out = tmp_path / "results"
    results = load_script("real_deepsense").main(
        [
            "--root",
            str(tmp_path / "data"),
            "--out",
            str(out),
            "--smoke",
            "--s4",
            "s1,s2",
            "--sites",
            *(f"{k}={','.join(v)}" for k, v in sites.items()),
        ]
    )
    assert set(results) == {"indist", "loso", "anchor", "s4s6"}
    assert set(results["indist"]) == {"wmlm", "gru", "knn", "repeat_last", "kinematic"}
    assert set(results["indist"]["wmlm"]) == {"s1", "s2", "s3"}
    assert set(results["anchor"]) == {"anchor beam", "anchor gps", "joint anchors", "no alignment"}
    assert set(results["s4s6"]) == {"wmlm S4", "wmlm S6"}
    for key in results:
        text = (out / f"{key}.md").read_text()
        assert "python benchmarks/real_deepsense.py" in text and "| **mean** |" in text
        assert next(out.glob(f"{key}_*.png")).stat().st_size > 1000
    assert json.loads((out / "real_deepsense.json").read_text()) == results
