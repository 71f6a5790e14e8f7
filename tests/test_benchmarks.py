"""Benchmark scripts run end to end on tiny fixtures, so they cannot rot."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import write_scenario

from wmlm.errors import CheckpointError

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
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
            "--keep-checkpoints",
            str(tmp_path / "ckpts"),
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
    kept = {p.name for p in (tmp_path / "ckpts" / "loso").glob("*.ckpt")}
    assert {"wmlm_without_A.ckpt", "wmlm_without_B.ckpt", "gru_without_B.ckpt"} <= kept


def test_pipeline_script_measures_data_wait_cache_and_loader(tmp_path: Path) -> None:
    write_scenario(tmp_path / "data" / "s1", seed=0, sequence_lengths=(14, 12, 16, 13, 15))
    markdown = tmp_path / "pipeline.md"
    config = Path(__file__).parent / "conf" / "beam_gps.yaml"
    result = load_script("pipeline").main(
        [
            "--config",
            str(config),
            "--steps",
            "3",
            "--markdown",
            str(markdown),
            "--",
            "--data.root",
            str(tmp_path / "data"),
        ]
    )
    assert 0.0 <= result["wait_fraction"] < 1.0
    assert result["loader_windows_per_s"] > 0
    assert result["parse, no cache"] > 0 and result["load cache"] > 0
    text = markdown.read_text()
    assert "python benchmarks/pipeline.py --config" in text
    assert "| data wait / (data wait + step) |" in text and "target < 5 %" in text


def test_edge_finetune_script_tables_accuracy_against_fine_tuning_windows(tmp_path: Path) -> None:
    for seed, name in enumerate(["s1", "s2", "s3"]):
        write_scenario(tmp_path / "data" / name, seed=seed, sequence_lengths=(14, 12, 16, 13, 15, 14, 12, 13))
    markdown = tmp_path / "edge.md"
    rows = load_script("edge_finetune").main(
        [
            "--root",
            str(tmp_path / "data"),
            "--sites",
            "A=s1,s2",
            "B=s3",
            "--held-out",
            "B",
            "--windows",
            "4,12,10000",
            "--markdown",
            str(markdown),
            "--smoke",
        ]
    )
    pool = rows[-1]["windows"]
    assert 12 < pool < 10000
    assert [(r["windows"], r["variant"]) for r in rows] == [
        (0, "pretrained, zero-shot"),
        (4, "encoders frozen"),
        (4, "heads only"),
        (12, "encoders frozen"),
        (12, "heads only"),
        (pool, "encoders frozen"),  # 10000 is more than the site has: all of its windows
        (pool, "heads only"),
    ]
    assert all(r["site"] == "B" and 0.0 <= r["top1"] <= r["top3"] <= 1.0 for r in rows)
    assert "| B | 12 | heads only |" in markdown.read_text()

    # a model pretrained elsewhere (here: the smoke benchmark model on site A) skips pretraining
    script = load_script("edge_finetune")
    pretrained = script.train(
        script.WMLM_CONFIG,
        tmp_path / "data",
        tmp_path / "pretrain",
        [*script.SMOKE_ARGS, *script.SMOKE_MODEL["wmlm"]],
        io.StringIO(),
        scenarios=["s1", "s2"],
    )
    site_b = [
        "--root",
        str(tmp_path / "data"),
        "--sites",
        "A=s1,s2",
        "B=s3",
        "--held-out",
        "B",
        "--windows",
        "4",
    ]
    again = script.main([*site_b, "--pretrained", f"B={pretrained}", "--smoke"])
    assert [(r["windows"], r["variant"]) for r in again] == [
        (0, "pretrained, zero-shot"),
        (4, "encoders frozen"),
        (4, "heads only"),
    ]
    with pytest.raises(
        CheckpointError, match="missing.ckpt does not exist"
    ):  # the given checkpoint is what gets loaded
        script.main([*site_b, "--pretrained", f"B={tmp_path / 'missing.ckpt'}", "--smoke"])


def test_modality_sets_script_scores_each_set_anchor_and_the_camera_drop(tmp_path: Path) -> None:
    out = tmp_path / "sets.json"
    markdown = tmp_path / "sets.md"
    args = ["--sets", "beam", "beam+image", "--anchor-set", "beam+image", "--anchors", "image", "none"]
    results = load_script("modality_sets").main(
        [*args, "--sequences", "3", "--smoke", "--json", str(out), "--markdown", str(markdown)]
    )
    assert list(results) == ["beam", "beam+image", "beam+image, anchor image", "beam+image, anchor none"]
    assert set(results["beam"]) == {"all sensors"}  # no camera, nothing to take away
    assert set(results["beam+image, anchor image"]) == {"all sensors", "camera missing"}
    for per in results.values():
        for scores in per.values():
            assert len(scores["top1"]) == 3
            assert all(0 <= a <= b <= 1 for a, b in zip(scores["top1"], scores["top3"]))
    assert json.loads(out.read_text()) == results
    text = markdown.read_text()
    assert "| beam+image, anchor image |" in text and " pts |" in text


def test_sim_calibration_script_finds_the_simulator_identical_to_its_own_recordings(tmp_path: Path) -> None:
    from wmlm.data.simulated import ensure_simulated

    # "real" data that is the simulator's own output, written in the DeepSense layout and read back
    recorded = ensure_simulated(tmp_path / "cache", ["suburban", "night"], sequences=4, seed=3)
    markdown, plot = tmp_path / "calibration.md", tmp_path / "calibration.png"
    rows = load_script("sim_calibration").main(
        ["--real-root", str(recorded), "--presets", "suburban,night", "--sequences", "4", "--seed", "3"]
        + ["--markdown", str(markdown), "--plot", str(plot)]
    )
    assert len(rows) >= 5 and all(ok for *_, ok in rows)
    for _, _, _, distance, _ in rows:
        assert distance in ("TV distance 0.000", "ratio 1.000")
    assert "python benchmarks/sim_calibration.py --real-root" in markdown.read_text()
    assert plot.stat().st_size > 1000


def test_real_deepsense_merges_runs_that_split_the_sites(tmp_path: Path) -> None:
    def scores(value: float) -> dict:
        return {"top1": [value] * 3, "top3": [min(2 * value, 1.0)] * 3, "dba": value}

    first = tmp_path / "a" / "real_deepsense.json"
    first.parent.mkdir()
    first.write_text(json.dumps({"loso": {"wmlm": {"s1": scores(0.5)}, "gru": {"s1": scores(0.2)}}}))
    progress = tmp_path / "loso.progress.jsonl"  # an interrupted run keeps its scores here
    progress.write_text(
        json.dumps({"model": "wmlm", "scenario": "s3", **scores(0.4)})
        + "\n"
        + json.dumps({"model": "gru", "scenario": "s3", **scores(0.1)})
        + "\n"
    )
    out = tmp_path / "out"
    merged = load_script("real_deepsense").main(
        ["--merge", str(first), str(progress), "--only", "loso", "--out", str(out)]
    )
    assert merged == {
        "loso": {
            "wmlm": {"s1": scores(0.5), "s3": scores(0.4)},
            "gru": {"s1": scores(0.2), "s3": scores(0.1)},
        }
    }
    text = (out / "loso.md").read_text()
    assert f"merged from `{first}`, `{progress}`" in text
    assert "| **mean** | wmlm | 0.450 |" in text
    with pytest.raises(SystemExit):  # the same scenario twice is refused
        load_script("real_deepsense").main(["--merge", str(first), str(first), "--out", str(out)])


def test_real_deepsense_refuses_unknown_anchor_variants(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        load_script("real_deepsense").main(["--root", str(tmp_path), "--anchor-variants", "anchor lidar"])
