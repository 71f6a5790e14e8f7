"""``benchmarks/sim2real.py`` end to end on a tiny fixture: procedural sites, zero-shot, LOSO, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_benchmarks import load_script


def test_sim2real_script_tables_zero_shot_and_loso_and_resumes(dev_sites_root: Path, tmp_path: Path) -> None:
    script = load_script("sim2real")
    argv = [
        "--real-root", str(dev_sites_root), "--sites", "2", "--presets", "tiny", "--sequences", "6",
        "--workers", "1", "--loso-sites", "2", "--loso-held-out", "A", "--workdir", str(tmp_path / "work"),
        "--out", str(tmp_path / "out"), "--smoke",
    ]  # fmt: skip
    results = script.main(argv)
    written = json.loads((tmp_path / "out" / "sim2real.json").read_text())
    assert written["zero_shot"] == results["zero_shot"]
    # (a): one pretraining per population size, each tested on every real scenario
    assert set(written["zero_shot"]["tiny"]) == {"2"}
    for done in written["zero_shot"]["tiny"].values():
        assert set(done["scores"]) == {"scenario1", "scenario5", "scenario6"}
        assert all(len(s["top1"]) == 3 for s in done["scores"].values())
    # (b): the three variants, each tested on the held-out site's scenario only
    assert set(written["loso"]) == {"real only", "sim pretrained + real", "real + sim mixed"}
    assert all(set(per) == {"scenario1"} for per in written["loso"].values())
    markdown = (tmp_path / "out" / "sim2real.md").read_text()
    assert "| tiny | 2 |" in markdown and "| real + sim mixed |" in markdown
    assert (tmp_path / "out" / "sim2real.png").stat().st_size > 0
    # the procedural sites were drawn once, as an array store
    assert len(list((tmp_path / "work" / "sim").glob("s0_site*"))) == 2
    # a rerun finds every run in the progress file and trains nothing
    lines = (tmp_path / "work" / "progress.jsonl").read_text().splitlines()
    again = script.main(argv)
    assert (tmp_path / "work" / "progress.jsonl").read_text().splitlines() == lines
    assert again["loso"] == results["loso"]
    # another budget in the same work folder is a new run in its own folder, not a clash with the first
    other = script.main([*argv, "--loso-epochs", "2", "--loso-variants", "real only"])
    assert set(other["loso"]) == {"real only"} and set(other["loso"]["real only"]) == {"scenario1"}
    assert len((tmp_path / "work" / "progress.jsonl").read_text().splitlines()) == len(lines) + 1


def test_sim2real_refuses_unknown_variants(
    dev_sites_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        load_script("sim2real").main(
            [
                "--real-root",
                str(dev_sites_root),
                "--workdir",
                str(tmp_path),
                "--loso-variants",
                "real only,magic",
            ]
        )
    assert raised.value.code == 2
    assert "unknown ['magic']" in capsys.readouterr().err
