"""The ``sionna`` data engine: codebook in an open scene, determinism, the DeepSense round trip, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sionna_fixtures import open_scene, private_cache, require_tracing, sionna_plugin  # noqa: F401  # autouse
from wmlm.cli import main
from wmlm.data.deepsense import load_scenario
from wmlm.data.sim.channel import nearest_beam

from wmlm_sionna.engine import parser, simulate

HERE = Path(__file__).parent
STREET_ARGS = ["--scene", "simple_street_canyon", "--sequences", "4", "--seed", "3"]


@pytest.fixture(scope="module")
def street_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same command run twice into two parents: ``(first, second)`` scenario folders."""
    require_tracing()
    folders = []
    for parent in ("a", "b"):
        out = tmp_path_factory.mktemp(parent)
        assert main(["data", "synth", "--engine", "sionna", "--out", str(out), *STREET_ARGS]) == 0
        folders.append(out / "sionna_simple_street_canyon_s3")
    return folders[0], folders[1]


def test_peak_beam_follows_the_line_of_sight_in_an_open_scene(tmp_path: Path) -> None:
    require_tracing()
    scene = open_scene(tmp_path / "scene")
    args = parser().parse_args(
        [
            "--out",
            str(tmp_path),
            "--scene",
            str(scene),
            "--bs-position",
            "0,-10,5",
            "--sequences",
            "3",
            "--tx-power-dbm",
            "30",
        ]
    )
    sim = simulate(args).sim
    assert len(sim) > 20 and not sim.blocked.any()  # nothing to obstruct the line of sight
    expected = nearest_beam(np.sin(np.radians(sim.los_aod_deg)))
    # within one beam inside the sector; at its edges the beams are wide and flat, so the ground bounce and
    # receiver noise may move the peak by two
    inside = np.abs(sim.los_aod_deg) <= 40
    assert inside.sum() > 20 and np.abs(sim.beam - expected)[inside].max() <= 1, np.c_[sim.beam, expected]
    assert np.abs(sim.beam - expected).max() <= 2
    assert sim.beam.min() < 20 and sim.beam.max() > 44  # a pass sweeps most of the codebook


def test_same_seed_same_bytes(street_folders: tuple[Path, Path]) -> None:
    first, second = street_folders
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) > 20
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    different = [str(f) for f in files if (first / f).read_bytes() != (second / f).read_bytes()]
    assert not different


def test_folder_reads_back_through_the_deepsense_reader(street_folders: tuple[Path, Path]) -> None:
    folder = street_folders[0]
    info = json.loads((folder / "simulation.json").read_text())
    assert info["simulator"] == "wmlm_sionna" and info["scene"] == "simple_street_canyon"
    data = load_scenario(folder, ["beam_power", "beam_label", "position", "blockage"])
    power, label = data.fields["beam_power"], data.fields["beam_label"]
    assert power.shape == (info["samples"], 64) and np.isfinite(power).all()
    assert np.array_equal(label, np.argmax(power, axis=1))
    assert set(np.unique(data.sequence)) == set(range(1, info["sequences"] + 1))
    assert data.fields["blockage"].mean() == pytest.approx(info["blocked_fraction"])
    # GPS fixes lie around the BS within a street's reach (metres east/north of the BS)
    assert np.nanmax(np.linalg.norm(data.fields["position"], axis=1)) < 80


def test_wmlm_fit_reads_the_folder(street_folders: tuple[Path, Path], tmp_path: Path) -> None:
    code = main(
        [
            "fit",
            "--config",
            str(HERE / "conf" / "beam_gps.yaml"),
            "--data.init_args.root",
            str(street_folders[0].parent),
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
            "--trainer.fast_dev_run",
            "1",
            "--test_after_fit",
            "false",
        ]
    )
    assert code == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--scene", "atlantis"],
            "--scene: unknown scene 'atlantis'; expected one of Sionna RT's built-in scenes",
        ),
        (["--bs-position", "1,2"], "--bs-position: expected three numbers x,y,z in metres"),
        (["--origin", "north"], "--origin: expected latitude,longitude in degrees"),
        (["--tx-power-dbm", "nan"], "--tx-power-dbm: expected a finite number, got 'nan'"),
    ],
)
def test_bad_input_is_one_clear_message(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["data", "synth", "--engine", "sionna", "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bs_position_far_from_every_street(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tracing()
    code = main(
        [
            "data",
            "synth",
            "--engine",
            "sionna",
            "--out",
            str(tmp_path),
            "--bs-position",
            "500,500,10",
            "--sequences",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--bs-position: 500,500,10 is more than 20 m from every street" in err
