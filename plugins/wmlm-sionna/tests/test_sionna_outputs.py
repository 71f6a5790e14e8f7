"""The engine's other outputs: camera frames rendered from the BS, and the array store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from sionna_fixtures import open_scene, private_cache, require_tracing, sionna_plugin  # noqa: F401  # autouse
from wmlm.cli import main
from wmlm.data.deepsense import load_scenario
from wmlm.data.store import read_index, read_store

from wmlm_sionna.camera import write_car_mesh

FIELDS = ["beam_power", "beam_label", "position", "blockage"]


def _open_args(out: Path, scene: Path, *extra: str) -> list[str]:
    return ["data", "synth", "--engine", "sionna", "--out", str(out), "--scene", str(scene),
            "--bs-position", "0,-10,5", "--sequences", "1", "--name", "site", *extra]  # fmt: skip


def test_car_mesh_is_a_closed_box_of_the_given_size(tmp_path: Path) -> None:
    lines = write_car_mesh(tmp_path / "car.obj", (4.0, 2.0, 1.5)).read_text().splitlines()
    vertices = np.array([[float(v) for v in line.split()[1:]] for line in lines if line.startswith("v ")])
    faces = [line for line in lines if line.startswith("f ")]
    assert vertices.shape == (8, 3) and len(faces) == 12
    assert np.allclose(vertices.min(axis=0), [-2.0, -1.0, 0.0]) and np.allclose(
        vertices.max(axis=0), [2.0, 1.0, 1.5]
    )


def test_camera_frames_show_the_car_moving_along_the_road(tmp_path: Path) -> None:
    require_tracing()
    scene = open_scene(tmp_path / "scene")
    assert main(_open_args(tmp_path / "out", scene, "--camera", "--camera-spp", "2")) == 0
    folder = tmp_path / "out" / "site"
    info = json.loads((folder / "simulation.json").read_text())
    assert info["sensors"]["camera"]["spp"] == 2
    header = (folder / "site.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "unit1_rgb"
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted(
        (folder / "unit1" / "camera_data").glob("image_*.png"), key=lambda p: int(p.stem.split("_")[1]))])  # fmt: skip
    assert frames.shape == (info["samples"], 72, 128, 3)
    # the ground alone is the same in every frame (fixed sampler seed): what differs is the car
    background = np.median(frames, axis=0)
    car = np.abs(frames.astype(np.float64) - background).sum(axis=-1) > 30  # [N, H, W]
    visible = car.sum(axis=(1, 2)) > 10
    assert visible.sum() > 10
    columns = np.array([np.flatnonzero(mask.any(axis=0)).mean() for mask in car[visible]])
    data = load_scenario(folder, ["position"])
    along = data.fields["position"][visible, 0]  # the open scene's road runs east (scene x)
    # image right is the road axis: the car's column follows its position along the road
    assert np.corrcoef(columns, along)[0, 1] > 0.9


def test_array_store_holds_the_same_data_as_the_deepsense_folder(tmp_path: Path) -> None:
    require_tracing()
    scene = open_scene(tmp_path / "scene")
    assert main(_open_args(tmp_path / "text", scene)) == 0
    assert main(_open_args(tmp_path / "arrays", scene, "--format", "arrays")) == 0
    text = load_scenario(tmp_path / "text" / "site", FIELDS)
    store = read_store(tmp_path / "arrays" / "site", FIELDS)
    assert np.array_equal(text.sequence, store.sequence)
    for field in FIELDS:
        assert np.array_equal(text.fields[field], store.fields[field], equal_nan=True), field
    info = json.loads((tmp_path / "arrays" / "site" / "simulation.json").read_text())
    assert info["simulator"] == "wmlm_sionna"
    assert read_index(tmp_path / "arrays" / "site")["provenance"]["simulator"] == "wmlm_sionna"


def test_camera_frames_go_into_the_array_store_as_the_image_field(tmp_path: Path) -> None:
    require_tracing()
    scene = open_scene(tmp_path / "scene")
    assert main(_open_args(tmp_path / "text", scene, "--camera", "--camera-spp", "2")) == 0
    assert (
        main(_open_args(tmp_path / "arrays", scene, "--camera", "--camera-spp", "2", "--format", "arrays"))
        == 0
    )
    text = load_scenario(tmp_path / "text" / "site", ["image"]).fields["image"]
    store = read_store(tmp_path / "arrays" / "site", ["image"]).fields["image"]
    assert store.shape == text.shape == (len(text), 3, 64, 64) and store.dtype == np.uint8
    # the same renders (fixed sampler seed) resized by the same function; a tolerance in case the
    # renderer's parallel sampling rounds differently between two runs
    assert np.abs(store.astype(np.int16) - text.astype(np.int16)).mean() < 1.0
    info = json.loads((tmp_path / "arrays" / "site" / "simulation.json").read_text())
    assert info["sensors"]["camera"]["spp"] == 2
