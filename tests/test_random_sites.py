"""Procedural sites: the distribution table, determinism, per-site regeneration, resume, shards and workers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from wmlm.cli import main
from wmlm.data.deepsense import load_scenario
from wmlm.data.sim import PRESETS
from wmlm.data.sim.channel import array_directions, measure_beams, nearest_beam
from wmlm.data.sim.geometry import Scenery
from wmlm.data.sim.preset import preset_from_dict
from wmlm.data.sim.random_sites import (
    SITE_DISTRIBUTIONS,
    Choice,
    Dirichlet,
    LogUniform,
    TruncatedNormal,
    Uniform,
    check_knobs,
    describe_distributions,
    draw_knobs,
    random_site,
)
from wmlm.data.simulated import SimulatedDataModule, ensure_simulated

TINY = ["--sequences", "2", "--sensors", "none"]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "simulator_sites.md"


def synth(out: Path, *args: str) -> int:
    return main(["data", "synth", "--out", str(out), *TINY, *args])


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# the table ------------------------------------------------------------------------------------------------


def test_drawn_sites_lie_inside_the_documented_distributions() -> None:
    sites = [random_site(0, k) for k in range(1, 121)]
    for site in sites:
        assert check_knobs(site.knobs) == [], site.name
        p = site.preset  # ScenarioPreset validated it too (lanes >= 3 m away, walls off the road, ...)
        assert 1 <= len(p.lane_offsets_m) <= 6 and np.all(np.diff(p.lane_offsets_m) >= 3.0)
        assert 9.0 <= p.sample_rate_hz <= 10.0 and -30.0 <= p.boresight_deg <= 30.0
        assert 3.0 <= p.bs_height_m <= 8.0 and p.speed_range_mps[1] <= 17.0
        assert abs(sum(p.vehicle_mix) - 1) < 1e-9 and p.blockage_loss_db[0] == 10.0
        assert all(w.y_m > max(p.lane_offsets_m) + 2 or w.y_m < 0 for w in p.walls)
    # the population spans the documented variety, not one site a hundred times
    assert {len(s.preset.lane_offsets_m) for s in sites} == set(range(1, 7))
    assert {s.preset.night for s in sites} == {True, False}
    assert {s.knobs["far_wall"] for s in sites} == {"none", "continuous", "buildings"}
    assert min(s.preset.boresight_deg for s in sites) < -10 < 10 < max(s.preset.boresight_deg for s in sites)
    assert len({s.preset.site_seed for s in sites}) == len(sites)
    bad = dict(sites[0].knobs, num_lanes=9, colour="red")
    assert any("num_lanes" in line for line in check_knobs(bad)) and any(
        "colour" in x for x in check_knobs(bad)
    )


def test_site_k_depends_on_seed_and_k_only() -> None:
    assert random_site(4, 3) == random_site(4, 3)
    assert draw_knobs(4, 3) != draw_knobs(5, 3) and draw_knobs(4, 3) != draw_knobs(4, 2)
    with pytest.raises(ValueError, match="1-based"):
        random_site(4, 0)


def test_impossible_distributions_are_refused() -> None:
    for make in (
        lambda: Uniform(2.0, 1.0),
        lambda: LogUniform(0.0, 1.0),
        lambda: TruncatedNormal(-1.0, 1.0, mean=3.0),
        lambda: Choice(()),
        lambda: Choice((1, 2), (1.0,)),
        lambda: Dirichlet((0.5, 0.6), 1.0),
    ):
        with pytest.raises(ValueError):
            make()


def test_the_docs_describe_every_knob() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert describe_distributions() in text  # the table in the docs is the table in the code
    assert all(f"`{name}`" in text for name in SITE_DISTRIBUTIONS)


def test_presets_round_trip_through_json() -> None:
    for preset in [*PRESETS.values(), random_site(2, 7).preset]:
        assert preset_from_dict(json.loads(json.dumps(dataclasses.asdict(preset)))) == preset
    with pytest.raises(ValueError, match="colour"):
        preset_from_dict(dict(dataclasses.asdict(PRESETS["night"]), colour="red"))
    with pytest.raises(ValueError, match="loss_db"):
        preset_from_dict(dict(dataclasses.asdict(PRESETS["night"]), walls=[{"y_m": 30.0, "loss_db": -1.0}]))


# boresight ------------------------------------------------------------------------------------------------


def test_a_yawed_array_sees_the_road_normal_off_its_broadside() -> None:
    base = dataclasses.replace(
        PRESETS["suburban"], walls=(), num_scatterers=0, ground_permittivity=0.0, traffic_density_per_km=0.0
    )
    ue = np.array([[0.0, 10.0, 1.5]])  # straight across the road
    none = Scenery(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    for yaw in (0.0, 20.0, -25.0):
        preset = dataclasses.replace(base, boresight_deg=yaw)
        beam = int(np.argmax(measure_beams(preset, ue, np.zeros((1, 0, 5)), none).power_linear[0])) + 1
        expected = int(nearest_beam(np.sin(np.arctan2(-np.tan(np.radians(yaw)), 1.0))))
        assert abs(beam - expected) <= 1, (yaw, beam, expected)
    directions = np.random.default_rng(0).normal(size=(5, 3))
    assert array_directions(base, directions) is directions  # broadside: the local frame, untouched
    with pytest.raises(ValueError, match="boresight_deg"):
        dataclasses.replace(base, boresight_deg=75.0)


# wmlm data synth --random-sites ---------------------------------------------------------------------------


def test_same_seed_same_bytes_and_one_site_regenerates_alone(tmp_path: Path) -> None:
    assert synth(tmp_path / "a", "--random-sites", "2", "--seed", "3") == 0
    assert synth(tmp_path / "b", "--random-sites", "3", "--seed", "3") == 0  # site K does not depend on N
    assert synth(tmp_path / "c", "--random-sites", "2", "--seed", "4") == 0
    assert synth(tmp_path / "d", "--site", "2", "--seed", "3") == 0
    names = ["s3_site00001", "s3_site00002"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == names
    for name in names:
        assert folder_bytes(tmp_path / "a" / name) == folder_bytes(tmp_path / "b" / name)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["s3_site00002"]
    assert folder_bytes(tmp_path / "d" / names[1]) == folder_bytes(tmp_path / "a" / names[1])
    other = folder_bytes(tmp_path / "c" / "s4_site00001")
    assert other["s4_site00001.csv"] != folder_bytes(tmp_path / "a" / names[0])["s3_site00001.csv"]
    # the folder's JSON records the draw; from it alone the same folder comes back
    info = json.loads((tmp_path / "a" / names[1] / "simulation.json").read_text())
    assert info["random_site"]["site"] == 2 and info["random_site"]["knobs"] == draw_knobs(3, 2)
    assert preset_from_dict(info["preset"]) == random_site(3, 2).preset
    assert synth(tmp_path / "e", "--from-json", str(tmp_path / "a" / names[1] / "simulation.json")) == 0
    assert folder_bytes(tmp_path / "e" / names[1]) == folder_bytes(tmp_path / "a" / names[1])
    data = load_scenario(tmp_path / "a" / names[0], ["beam_label", "position"])
    assert len(data) > 5


def test_bad_options_are_one_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for args, named in (
        (["--random-sites", "0"], "--random-sites"),
        (["--random-sites", "two"], "--random-sites"),
        (["--random-sites", "3", "--shard", "3/2"], "--shard"),
        (["--random-sites", "3", "--shard", "1-2"], "--shard"),
        (["--random-sites", "3", "--workers", "0"], "--workers"),
        (["--random-sites", "3", "--site", "5"], "--site"),
    ):
        assert synth(tmp_path / "x", *args) == 2, args
        err = capsys.readouterr().err
        assert f"wmlm: error: {named}" in err and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()


def test_two_shards_are_the_whole_and_workers_write_the_same_bytes(tmp_path: Path) -> None:
    assert synth(tmp_path / "whole", "--random-sites", "3", "--seed", "1") == 0
    assert synth(tmp_path / "one", "--random-sites", "3", "--seed", "1", "--shard", "1/2") == 0
    assert synth(tmp_path / "two", "--random-sites", "3", "--seed", "1", "--shard", "2/2") == 0
    first, second = ({p.name for p in (tmp_path / s).iterdir()} for s in ("one", "two"))
    assert not first & second and first | second == {p.name for p in (tmp_path / "whole").iterdir()}
    for shard, names in (("one", first), ("two", second)):
        for name in names:
            assert folder_bytes(tmp_path / shard / name) == folder_bytes(tmp_path / "whole" / name)
    assert synth(tmp_path / "pool", "--random-sites", "3", "--seed", "1", "--workers", "2") == 0
    assert folder_bytes(tmp_path / "pool") == folder_bytes(tmp_path / "whole")


def test_resume_skips_complete_sites_and_rebuilds_an_interrupted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "sites"
    assert synth(out, "--random-sites", "2", "--seed", "2") == 0
    whole = folder_bytes(out)
    kept = out / "s2_site00001" / "s2_site00001.csv"
    mtime = kept.stat().st_mtime_ns
    (out / "s2_site00002" / "simulation.json").unlink()  # killed before the writer's last file
    (out / "s2_site00002" / "s2_site00002.csv").write_text("index\n")
    capsys.readouterr()
    assert synth(out, "--random-sites", "2", "--seed", "2") == 1  # without --resume: refused, untouched
    assert "--overwrite" in capsys.readouterr().err
    assert synth(out, "--random-sites", "2", "--seed", "2", "--resume") == 0
    assert "skipped 1 complete" in capsys.readouterr().out
    assert folder_bytes(out) == whole and kept.stat().st_mtime_ns == mtime
    # a complete site of other parameters is not silently kept, nor replaced without --overwrite
    assert main(["data", "synth", "--out", str(out), "--random-sites", "1", "--seed", "2", "--resume",
                 "--sequences", "3", "--sensors", "none"]) == 1  # fmt: skip
    assert "other parameters" in capsys.readouterr().err


# SimulatedDataModule(random_sites=...) --------------------------------------------------------------------


def test_datamodule_serves_random_sites_and_matches_the_cli(tmp_path: Path) -> None:
    fields = {"inputs": {"beam": "beam_power", "gps": "position"}, "targets": {"beam": "beam_label"}}
    data = SimulatedDataModule(
        random_sites=3, sim_seed=5, sequences=2, sensors=[], cache_dir=str(tmp_path / "cache"), **fields
    )
    data.setup("fit")
    assert data.scenario_names == ["s5_site00001", "s5_site00002", "s5_site00003"]
    assert data.test_scenarios == ["s5_site00003"]
    batch = next(iter(data.train_dataloader()))
    assert batch["beam"].shape[1:] == (5, 64) and batch["target"]["beam"].shape[1:] == (3,)
    assert synth(tmp_path / "cli", "--site", "2", "--seed", "5") == 0
    cached = folder_bytes(data.root / "s5_site00002")
    cached.pop(".complete")
    assert cached == folder_bytes(tmp_path / "cli" / "s5_site00002")
    with pytest.raises(ValueError, match="random_sites"):
        ensure_simulated(tmp_path, [], sequences=2, seed=0, random_sites=-1)
