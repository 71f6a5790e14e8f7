"""benchmarks/paradigm.py end to end on a tiny procedural-site fixture (seconds; the numbers mean nothing)."""

from __future__ import annotations

import json
from pathlib import Path

from test_benchmarks import load_script


def test_paradigm_script_compares_aligned_and_unaligned_on_unseen_sites(tmp_path: Path) -> None:
    markdown = tmp_path / "paradigm.md"
    args = ["--sites", "3", "--test-sites", "1", "--sequences", "3", "--sim-workers", "1"]
    args += ["--modalities", "beam", "gps", "--labels", "8", "--seeds", "0", "--accelerator", "cpu"]
    payload = load_script("paradigm").main(
        [*args, "--cache-dir", str(tmp_path / "cache"), "--smoke", "--markdown", str(markdown)]
    )
    per = payload["results"]["sum"]["0"]
    assert set(per["few_labels"]) == {"aligned N=8", "unaligned N=8"}
    for scores in per["few_labels"].values():
        assert 0 <= scores["f1"] <= 1 and scores["distance_m"] >= 0 and "auroc" in scores
    assert set(per["missing"]) == {"aligned", "unaligned", "beam alone"}
    # no camera in the set: GPS and the last beam sweep are taken away, the camera is not
    assert set(per["missing"]["aligned"]) == {"all present", "GPS gone", "last beam sweep gone"}
    assert set(per["missing"]["beam alone"]) == {"all present"}
    for model in per["missing"].values():
        for scores in model.values():
            assert 0 <= scores["top1"] <= scores["top3"] <= 1
    assert payload["test_sites"] == ["s0_site00003"] and payload["seeds"] == [0]
    assert json.loads(markdown.with_suffix(".json").read_text())["results"] == payload["results"]
    assert markdown.with_suffix(".png").stat().st_size > 0
    text = markdown.read_text()
    assert "| sum | 8 | aligned |" in text and "## Targets (issue 13)" in text
    assert "camera gone: not run" in text and "few labels at N=200: not run" in text
