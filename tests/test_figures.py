"""Pictures: the drawing functions on small arrays, and the callback's TensorBoard images and projector."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from wmlm import WMLM
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.model.baselines import RepeatLastBeam
from wmlm.model.figures import (
    FIGURE_NAMES,
    beam_figures,
    beam_offsets,
    figure_to_image,
    pass_ids_from_index,
    topk_accuracy,
    write_beam_figures,
)
from wmlm.model.figures_callback import BeamFigures, beam_scores, predict_beam_sample

BEAM_TAGS = {"val/beam/tracks", "val/beam/topk", "val/beam/offsets"}


def sample(n: int = 30, future: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three passes of sweeping beams, predictions off by -2..2 beams (0-based, K = 5)."""
    rng = np.random.default_rng(seed)
    true = (np.arange(n)[:, None] * 2 + np.arange(future)[None] * 2) % 64
    pred = np.clip(true[..., None] + rng.integers(-2, 3, (n, future, 5)), 0, 63)
    return true, pred, np.repeat(np.arange(3), n // 3)


def test_pass_ids_split_on_gaps_and_scenarios() -> None:
    index = np.array([5, 6, 7, 15, 16, 3, 4])
    scenario = np.array([0, 0, 0, 0, 0, 1, 1])
    assert pass_ids_from_index(scenario, index).tolist() == [0, 0, 0, 1, 1, 2, 2]
    # the same index run in another scenario is another pass
    assert pass_ids_from_index(np.array([0, 1]), np.array([5, 6])).tolist() == [0, 1]


def test_topk_accuracy_and_offsets() -> None:
    true = np.array([[3, 4], [10, 10]])
    pred = np.array([[[3, 0, 1], [5, 4, 0]], [[12, 9, 10], [7, 8, 9]]])
    np.testing.assert_allclose(topk_accuracy(true, pred, ks=(1, 3)), [[0.5, 0.0], [1.0, 0.5]])
    assert beam_offsets(true, pred).tolist() == [[0, 1], [2, -3]]
    with pytest.raises(ValueError, match="expected true_beams"):
        topk_accuracy(true, pred[..., 0])


def test_figures_render_to_images() -> None:
    true, pred, passes = sample()
    figures = beam_figures(true, pred, passes, max_passes=2, dpi=50)
    assert tuple(figures) == FIGURE_NAMES
    for fig in figures.values():
        image = figure_to_image(fig)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.min() < 128 < image.max()  # something is drawn on the white background
    # the two longest passes, labelled, on one axis
    (tracks,) = figures["tracks"].axes
    assert [t.get_text() for t in tracks.texts] == ["pass 0", "pass 1"]
    # no windows: still a figure, saying so
    empty = beam_figures(true[:0], pred[:0], passes[:0], dpi=50)
    assert figure_to_image(empty["tracks"]).shape[2] == 3


def test_write_beam_figures_writes_decodable_deterministic_pngs(tmp_path: Path) -> None:
    true, pred, passes = sample(future=1)
    paths = write_beam_figures(tmp_path / "a", true, pred, passes, prefix="run", dpi=60)
    assert [p.name for p in paths] == ["run_tracks.png", "run_topk.png", "run_offsets.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
    again = write_beam_figures(tmp_path / "b", true, pred, passes, prefix="run", dpi=60)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


# ------------------------------------------------------------------------------------------ callback
def tiny_model(**kwargs: object) -> WMLM:
    options: dict = dict(
        modalities=["beam", "gps"],
        anchor="beam",
        heads=["beam"],
        preset="tiny",
        embed_dim=16,
        align_epochs=1,
        adapt_epochs=1,
        checkpoint_every_n_steps=None,
    )
    return WMLM(**(options | kwargs))


def tiny_data(root: Path) -> DeepSenseDataModule:
    return DeepSenseDataModule(root, batch_size=8, val_fraction=0.25, test_fraction=0.25)


def trainer(tmp_path: Path, logger: object, callback: BeamFigures, **kwargs: object) -> pl.Trainer:
    options: dict = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=2,
        limit_test_batches=2,
        num_sanity_val_steps=0,
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    return pl.Trainer(**(options | kwargs))


def tensorboard_tags(log_dir: Path) -> dict[str, set[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, set[str]] = {"images": set(), "histograms": set()}
    for events in log_dir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "histograms": 0})
        accumulator.Reload()
        for kind in tags:
            tags[kind] |= set(accumulator.Tags()[kind])
    return tags


def test_callback_logs_images_histogram_and_projector(data_root: Path, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    pl.seed_everything(0)
    logger = TensorBoardLogger(str(tmp_path / "tb"), name="run")
    callback = BeamFigures(max_windows=40, max_points=30, dpi=40)
    fit = trainer(tmp_path, logger, callback)
    fit.fit(tiny_model(), datamodule=tiny_data(data_root))
    log_dir = Path(logger.log_dir)
    tags = tensorboard_tags(log_dir)
    assert BEAM_TAGS <= tags["images"]
    assert "val/beam/offset_top1" in tags["histograms"]
    # the projector: config, vectors and the two-column metadata of the aligned space
    config = (log_dir / "projector_config.pbtxt").read_text()
    assert "align/embeddings" in config
    tensors = next(log_dir.rglob("tensors.tsv")).read_text().splitlines()
    metadata = next(log_dir.rglob("metadata.tsv")).read_text().splitlines()
    assert metadata[0].split("\t") == ["modality", "best_beam"]
    assert len(tensors) == len(metadata) - 1 and len(tensors[0].split("\t")) == 16
    assert {row.split("\t")[0] for row in metadata[1:]} == {"beam", "gps"}
    assert all(1 <= int(row.split("\t")[1]) <= 64 for row in metadata[1:])
    # test writes the same figures as PNGs into the log dir
    fit.test(fit.lightning_module, datamodule=fit.datamodule, verbose=False)
    assert [p.name for p in callback.written] == [
        "test_beam_tracks.png",
        "test_beam_topk.png",
        "test_beam_offsets.png",
    ]
    assert all(p.parent == log_dir / "figures" and p.stat().st_size > 0 for p in callback.written)
    assert {t.replace("val/", "test/") for t in BEAM_TAGS} <= tensorboard_tags(log_dir)["images"]


def test_callback_is_a_noop_without_a_logger_or_with_fast_dev_run(data_root: Path, tmp_path: Path) -> None:
    callback = BeamFigures()
    trainer(tmp_path, False, callback, max_epochs=2).fit(tiny_model(), datamodule=tiny_data(data_root))
    assert not callback._rows and not callback._points and not callback._projector_logged
    assert not list(tmp_path.rglob("events.out.tfevents.*")) and not list(tmp_path.rglob("*.png"))

    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(str(tmp_path / "tb"), name="run")
    fast = trainer(tmp_path, logger, callback, fast_dev_run=1)
    fast.fit(tiny_model(), datamodule=tiny_data(data_root))
    fast.test(fast.lightning_module, datamodule=fast.datamodule, verbose=False)
    assert not callback._projector_logged and not callback.written
    assert not list(tmp_path.rglob("projector_config.pbtxt")) and not list(tmp_path.rglob("*.png"))


def test_beam_scores_of_models_with_and_without_a_beam_head(data_root: Path) -> None:
    data = tiny_data(data_root)
    data.inputs, data.targets = {"beam": "beam_power", "gps": "position"}, {"beam": "beam_label"}
    data.setup("fit")
    model = tiny_model()
    loader = data.val_dataloader()
    batch = next(iter(loader))
    with torch.no_grad():
        assert beam_scores(model, batch).shape == (len(batch["index"]), 3, 64)
        assert beam_scores(RepeatLastBeam(), batch).shape == (len(batch["index"]), 3, 64)
        assert beam_scores(tiny_model(heads=["power"], adapt_epochs=1), batch) is None
    true, topk, passes = predict_beam_sample(model, loader, max_windows=10)
    assert true.shape == (10, 3) and topk.shape == (10, 3, 5) and passes.shape == (10,)
    assert model.training  # left as it was


def test_projector_only_with_an_alignment_stage_and_two_modalities() -> None:
    from types import SimpleNamespace

    callback = BeamFigures()
    at = SimpleNamespace(current_epoch=0)
    assert callback._wants_projector(at, tiny_model())  # type: ignore[arg-type]
    assert not callback._wants_projector(at, tiny_model(align_epochs=0))  # type: ignore[arg-type]
    assert not callback._wants_projector(at, RepeatLastBeam())  # type: ignore[arg-type]
    callback._projector_logged = True
    assert not callback._wants_projector(at, tiny_model())  # type: ignore[arg-type]


def test_scores_returned_by_the_step_spare_a_forward_pass() -> None:
    batch = {
        "target": {"beam": torch.tensor([[1, 2]])},
        "scenario_id": torch.tensor([0]),
        "index": torch.tensor([7]),
    }
    scores = torch.zeros(1, 2, 64)
    scores[0, :, 5] = 1.0

    class NoForward(RepeatLastBeam):
        def forward(self, batch: dict) -> torch.Tensor:
            raise AssertionError("the step's outputs should have been used")

    callback = BeamFigures()
    callback._start(True, False)
    callback._collect(NoForward(future=2), batch, {"beam": scores}, 0)
    assert callback._rows[0]["topk"][0, :, 0].tolist() == [5, 5]


def test_callback_draws_a_baseline_too(data_root: Path, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(str(tmp_path / "tb"), name="run")
    fit = trainer(tmp_path, logger, BeamFigures(dpi=40), max_epochs=1, limit_train_batches=1)
    fit.fit(RepeatLastBeam(), datamodule=tiny_data(data_root))
    assert BEAM_TAGS <= tensorboard_tags(Path(logger.log_dir))["images"]
    assert not list(tmp_path.rglob("projector_config.pbtxt"))  # no alignment stage, no projector
