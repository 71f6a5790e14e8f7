"""benchmarks/paradigm_sensors.py: its batch transforms exactly, and the script end to end on a tiny
procedural-site fixture (the numbers mean nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from test_benchmarks import load_script

ps = load_script("paradigm_sensors")


def test_alternate_beam_masks_every_other_past_step_from_the_phase() -> None:
    power = torch.rand(2, 5, 64) + 0.1  # [B, P, beams]
    batch = {
        "beam": power.clone(),
        "mask": {"beam": torch.tensor([[True] * 5, [True, False, True, True, True]])},
    }
    ps.alternate_beam(batch, torch.tensor([0, 1]))
    # phase 0 keeps the last step and every second one before it; phase 1 the others; old masks still hold
    assert batch["mask"]["beam"].tolist() == [
        [True, False, True, False, True],
        [False, False, False, True, False],
    ]
    assert torch.equal(batch["beam"][0, 0], power[0, 0]) and not batch["beam"][0, 1].any()
    assert not batch["beam"][1, -1].any() and torch.equal(batch["beam"][1, 3], power[1, 3])


def test_sensor_flip_mirrors_labels_and_frames_without_a_beam_input() -> None:
    torch.manual_seed(0)
    labels = torch.tensor([[3, 4, 5]] * 8)
    frames = torch.arange(8 * 5 * 3 * 4 * 4, dtype=torch.float32).reshape(8, 5, 3, 4, 4)
    out = ps.SensorFlip(p=0.5)({"image": frames, "target": {"beam": labels}})
    assert "beam" not in out
    flipped = out["target"]["beam"][:, 0] == 63 - 3
    assert flipped.any() and (~flipped).any()
    assert torch.equal(out["image"][flipped], frames[flipped].flip(-1))
    assert torch.equal(out["image"][~flipped], frames[~flipped])


def test_emergent_checkpoint_gives_each_sensor_the_beam_projection_over_their_count(tmp_path: Path) -> None:
    stage1 = {"state_dict": {"encoders.image.w": torch.ones(2), "fusion.beam.weight": torch.zeros(3, 2),
                             "fusion.beam.bias": torch.zeros(3)}}  # fmt: skip
    head = {"state_dict": {"fusion.beam.weight": torch.full((3, 2), 4.0), "fusion.beam.bias": torch.ones(3)}}
    torch.save(stage1, tmp_path / "s1.ckpt")
    torch.save(head, tmp_path / "head.ckpt")
    out = ps.emergent_checkpoint(str(tmp_path / "s1.ckpt"), str(tmp_path / "head.ckpt"), ["image", "gps"],
                                 tmp_path / "e.ckpt")  # fmt: skip
    weights = torch.load(out, weights_only=False)["state_dict"]
    assert torch.equal(weights["encoders.image.w"], torch.ones(2))  # stage 1's aligned encoder kept
    for m in ("image", "gps"):
        assert torch.equal(weights[f"fusion.{m}.weight"], torch.full((3, 2), 2.0))
        assert torch.equal(weights[f"fusion.{m}.bias"], torch.full((3,), 0.5))


def test_paradigm_sensors_script_runs_both_experiments_and_marks_the_targets(tmp_path: Path) -> None:
    markdown = tmp_path / "paradigm_sensors.md"
    args = ["--test-sites", "1", "--train-sites", "2", "--few-sites", "1", "--sequences", "3"]
    args += ["--sim-workers", "1", "--settings", "unseen", "--anchors", "beam", "none", "--seeds", "0"]
    args += ["--accelerator", "cpu", "--cache-dir", str(tmp_path / "cache"), "--smoke"]
    payload = ps.main([*args, "--markdown", str(markdown)])
    saved = payload["results"]["beam_saved"]["unseen"]["0"]
    assert set(saved) == set(ps.SAVED_MODELS)
    anchors = payload["results"]["anchors"]
    assert set(anchors) == {"S1", "S2"} and set(anchors["S2"]["0"]) == {"beam", "none"}
    for scores in [*saved.values(), *anchors["S1"]["0"].values(), *anchors["S2"]["0"].values()]:
        assert 0 <= scores["top1"] <= scores["top3"] <= 1
    assert payload["test_sites"] == ["s0_site00001"]
    assert json.loads(markdown.with_suffix(".json").read_text())["results"] == payload["results"]
    assert markdown.with_suffix(".png").stat().st_size > 0
    assert not markdown.with_suffix(".partial.json").exists()  # removed once the full JSON is written
    text = markdown.read_text()
    for model in ps.SAVED_MODELS:
        assert f"| unseen | {model} |" in text
    assert "| S1 | beam |" in text and "| S2 | none |" in text and "## Targets (issue 13)" in text
    # the target line is marked met / not met, with the gap in points
    target = next(t for t in payload["targets"] if "camera + GPS, no beam" in t)
    assert ("**met**" in target) != ("not met" in target) and " pts, 1 seeds)" in target
    assert target in text and any("S2 beats S1, anchor none" in t for t in payload["targets"])

    again = tmp_path / "again.md"
    report = ps.main([*args, "--markdown", str(again), "--report-only", str(markdown.with_suffix(".json"))])
    assert report["targets"] == payload["targets"] and report["seeds"] == [0]
