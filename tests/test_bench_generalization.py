"""``benchmarks/generalization.py`` end to end on a tiny fixture: variants, ensemble averaging, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_benchmarks import load_script


def test_generalization_script_variants_ensemble_and_resume(dev_sites_root: Path, tmp_path: Path) -> None:
    script = load_script("generalization")
    argv = [
        "--real-root", str(dev_sites_root), "--variants", "baseline,stride 1,2,3,ensemble of 3 seeds", "--seeds", "2",
        "--held-out", "A", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--smoke",
    ]  # fmt: skip
    results = script.main(argv)
    written = json.loads((tmp_path / "out" / "generalization.json").read_text())
    variants = written["variants"]
    assert list(variants) == ["baseline", "stride 1,2,3", "ensemble of 3 seeds"]
    assert variants["stride 1,2,3"]["overrides"] == ["--data.train_strides", "[1, 2, 3]"]
    for name in ("baseline", "stride 1,2,3"):
        v = variants[name]
        assert set(v["per_site"]) == {"A"} and set(v["sites"]["A"]["scores"]) == {"scenario1"}
        runs = v["sites"]["A"]["runs"]
        assert len(runs) == 2 and len(v["seed_top1"]) == 2  # seeds 0 and 1, scores their mean
        dba = [r["scores"]["scenario1"]["dba"] for r in runs]
        assert v["sites"]["A"]["scores"]["scenario1"]["dba"] == pytest.approx(sum(dba) / 2)
    assert "verdict" not in variants["baseline"]
    for name in ("stride 1,2,3", "ensemble of 3 seeds"):
        v = variants[name]
        expected = v["mean"]["top1"] - variants["baseline"]["mean"]["top1"]
        assert v["delta"]["top1"] == pytest.approx(expected)
        kept = v["delta"]["top1"] >= script.KEEP_TOP1 and v["delta"]["top3"] >= 0
        assert v["verdict"] == ("kept" if kept else "dropped")
    # the ensemble averaged three distinct baseline models: seeds 0, 1 (also the baseline row) and 2
    members = variants["ensemble of 3 seeds"]["sites"]["A"]["members"]
    assert members[:2] == [r["ckpt"] for r in variants["baseline"]["sites"]["A"]["runs"]]
    assert len(set(members)) == 3
    # scored from probabilities, one member alone reproduces the Lightning test of that model
    alone = script.ensemble_scores(members[:1], dev_sites_root, ["scenario1"])["scenario1"]
    tested = variants["baseline"]["sites"]["A"]["runs"][0]["scores"]["scenario1"]
    assert 0 < tested["dba"] < 1  # DBA gives credit for near misses, so it tells two untrained models apart
    for metric in ("top1", "top3", "dba"):
        assert alone[metric] == pytest.approx(tested[metric], abs=1e-6)
    stored = variants["ensemble of 3 seeds"]["sites"]["A"]["scores"]["scenario1"]
    again_scored = script.ensemble_scores(members, dev_sites_root, ["scenario1"])["scenario1"]
    assert again_scored["top1"] == pytest.approx(stored["top1"])
    assert again_scored["dba"] == pytest.approx(stored["dba"])
    markdown = (tmp_path / "out" / "generalization.md").read_text()
    assert "| stride 1,2,3 |" in markdown and "| ensemble of 3 seeds |" in markdown
    assert "**power gain**: a no-op" in markdown
    # a rerun finds every run in the progress file and trains nothing
    lines = (tmp_path / "work" / "progress.jsonl").read_text().splitlines()
    assert len(lines) == 6  # five trainings and the ensemble
    again = script.main(argv)
    assert (tmp_path / "work" / "progress.jsonl").read_text().splitlines() == lines
    assert again["variants"] == results["variants"]


def test_ensemble_averages_softmax_probabilities_on_a_known_case() -> None:
    script = load_script("generalization")
    # two windows, one future step, three beams; truth: beam 1, then beam 2
    confident_wrong = torch.tensor([[[0.6, 0.4, 0.0]], [[0.0, 0.1, 0.9]]])
    right = torch.tensor([[[0.0, 0.9, 0.1]], [[0.5, 0.3, 0.2]]])
    mean = script.average_probabilities([confident_wrong, right])
    assert torch.allclose(mean, torch.tensor([[[0.3, 0.65, 0.05]], [[0.25, 0.2, 0.55]]]))
    labels = torch.tensor([[1], [2]])
    assert script.score(mean, labels)["top1"] == [1.0]  # each member alone gets one of the two right
    assert script.score(confident_wrong, labels)["top1"] == [0.5]
    assert script.score(right, labels)["top1"] == [0.5]
    with pytest.raises(ValueError, match="differ in shape"):
        script.average_probabilities([mean, mean[:1]])


def test_variant_names_with_commas_and_unknown_ones(
    dev_sites_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script("generalization")
    assert script.split_variants("baseline,stride 1,2,3, tiny preset") == [
        "baseline",
        "stride 1,2,3",
        "tiny preset",
    ]
    with pytest.raises(SystemExit) as raised:
        script.main(
            ["--real-root", str(dev_sites_root), "--workdir", str(tmp_path), "--variants", "baseline,magic"]
        )
    assert raised.value.code == 2
    assert "unknown ['magic']" in capsys.readouterr().err


def test_sim_mixed_variant_draws_the_procedural_sites_once_and_mixes_them_in(
    dev_sites_root: Path, tmp_path: Path
) -> None:
    script = load_script("generalization")
    argv = [
        "--real-root", str(dev_sites_root), "--variants", "sim mixed,sim mixed, ensemble of 3 seeds",
        "--held-out", "A", "--sim-sites", "2",
        "--sim-sequences", "3", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--smoke",
    ]  # fmt: skip
    results = script.main(argv)
    sim_root = tmp_path / "work" / "sim"
    assert sorted(p.name for p in sim_root.iterdir() if p.is_dir()) == ["s0_site00001", "s0_site00002"]
    overrides = results["variants"]["sim mixed"]["overrides"]
    assert overrides == ["--data.mix_root", str(sim_root), "--data.mix_share", "0.5"]
    # the run's own saved config carries the mix, so the simulated windows really were in training
    configs = list((tmp_path / "work" / "runs").rglob("config.yaml"))
    assert configs and any(str(sim_root) in c.read_text() for c in configs)
    keys = [
        json.loads(line)["key"] for line in (tmp_path / "work" / "progress.jsonl").read_text().splitlines()
    ]
    assert keys[0] == "sim mixed/A/smoke/sites2/seq3"  # another population size is another run
    # the ensemble's members are sim mixed models (seed 0 is the row's own run), not baseline ones
    assert keys[1:] == [f"sim mixed/A/smoke/sites2/seq3/seed{s}" for s in (1, 2)] + [
        "sim mixed, ensemble of 3 seeds/A/smoke"
    ]
    members = results["variants"]["sim mixed, ensemble of 3 seeds"]["sites"]["A"]["members"]
    assert members[0] == results["variants"]["sim mixed"]["sites"]["A"]["runs"][0]["ckpt"]
    assert len(set(members)) == 3 and all("sim_mixed" in m for m in members)
