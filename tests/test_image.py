"""The ``image`` modality and reader: frames of any size resized when read, encoded by an open_clip ViT."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_scenario
from PIL import Image
from test_cli_e2e import logged_scalars

from wmlm.cli import run
from wmlm.data.deepsense import load_scenario
from wmlm.data.table import DataError
from wmlm.modalities.image import IMAGE_SIZE_HW, ImageModality

CONF = Path(__file__).parent / "conf"


def add_camera(folder: Path, size_wh: tuple[int, int] = (96, 54), fmt: str = "png") -> np.ndarray:
    """Give every row of a scenario a camera frame whose brightness encodes the row; returns the levels."""
    csv_path = folder / f"{folder.name}.csv"
    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    (folder / "unit1" / "camera_data").mkdir(parents=True, exist_ok=True)
    levels = np.linspace(10, 245, len(rows) - 1).round().astype(np.uint8)
    rows[0].append("unit1_rgb")
    for k, (row, level) in enumerate(zip(rows[1:], levels)):
        relative = f"./unit1/camera_data/image_{k}.{fmt}"
        pixels = np.full((size_wh[1], size_wh[0], 3), level, dtype=np.uint8)
        pixels[:, :, 2] = 255 - level  # a colour that differs per channel, to catch channel-order mistakes
        Image.fromarray(pixels).save(folder / relative)
        row.append(relative)
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return levels


@pytest.mark.parametrize(("size_wh", "fmt"), [((96, 54), "png"), ((960, 540), "jpg")])
def test_reader_resizes_frames_of_any_size(tmp_path: Path, size_wh: tuple[int, int], fmt: str) -> None:
    folder = tmp_path / "cam"
    write_scenario(folder, sequence_lengths=(3, 3))
    levels = add_camera(folder, size_wh, fmt)
    frames = load_scenario(folder, ["image"]).fields["image"]
    assert frames.shape == (6, 3, *IMAGE_SIZE_HW) and frames.dtype == np.uint8
    tolerance = 0 if fmt == "png" else 3  # JPEG is lossy
    np.testing.assert_allclose(frames[:, 0].mean(axis=(1, 2)), levels, atol=tolerance)
    np.testing.assert_allclose(frames[:, 2].mean(axis=(1, 2)), 255 - levels, atol=tolerance)


def test_unreadable_frame_names_file_and_row(tmp_path: Path) -> None:
    folder = tmp_path / "cam"
    write_scenario(folder, sequence_lengths=(3,))
    add_camera(folder)
    (folder / "unit1" / "camera_data" / "image_1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"row 2 .*'unit1_rgb'.*cannot read image .*image_1.png"):
        load_scenario(folder, ["image"])


def test_missing_camera_column_is_an_error_only_when_asked_for(tmp_path: Path) -> None:
    folder = tmp_path / "nocam"
    write_scenario(folder, sequence_lengths=(3,))
    assert len(load_scenario(folder, ["beam_power"])) == 3
    with pytest.raises(DataError, match="unit1_rgb"):
        load_scenario(folder, ["image"])


def test_encoder_maps_frames_to_per_step_embeddings() -> None:
    modality = ImageModality(tower="tiny")
    encoder = modality.build_encoder(24)
    frames = torch.randint(0, 256, (2, 5, 3, *IMAGE_SIZE_HW), dtype=torch.uint8)
    modality.validate(frames)
    assert encoder(frames).shape == (2, 5, 24)
    # a step's embedding depends on that step's frame only
    changed = frames.clone()
    changed[1, 3] = 255 - changed[1, 3]
    encoder.eval()
    same = encoder(frames) == encoder(changed)
    assert same[0].all() and same[1, [0, 1, 2, 4]].all() and not same[1, 3].all()
    with pytest.raises(ValueError, match="image.*uint8"):
        modality.validate(frames.float())
    with pytest.raises(ValueError, match=r"image.*\[B, P, 3, 64, 64\]"):
        modality.validate(frames[..., :32])
    with pytest.raises(ValueError, match="patch size"):
        ImageModality(tower="small", image_size_hw=(60, 60))
    with pytest.raises(ValueError, match="available: tiny, small, base"):
        ImageModality(tower="huge")


def test_fit_with_image_anchor_end_to_end(tmp_path: Path) -> None:
    for name, seed in (("siteA", 1), ("siteB", 2)):
        write_scenario(tmp_path / "data" / name, seed=seed)
        add_camera(tmp_path / "data" / name)
    cli = run(
        [
            "fit",
            "--config",
            str(CONF / "beam_image.yaml"),
            "--data.init_args.root",
            str(tmp_path / "data"),
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert cli.trainer.current_epoch == 2
    assert 0 <= float(cli.trainer.callback_metrics["test/beam/top1"]) <= 1
    scalars = logged_scalars(tmp_path / "runs")
    assert len(scalars["align/logit_scale/image__beam"]) == 2 and np.isfinite(scalars["align/loss"]).all()
    assert "image" in cli.model.encoders
