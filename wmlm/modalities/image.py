"""Built-in ``image`` modality: the base station's camera frame at each time step.

Frames arrive as ``uint8`` RGB ``[B, P, 3, H, W]`` (the ``image`` field, resized when read) and are encoded
by an open_clip vision transformer built from scratch (no pretrained weights: nothing is downloaded).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor, nn

from wmlm.data.readers import FieldReader
from wmlm.data.table import DataError, ScenarioTable, read_regular_file
from wmlm.errors import ConfigError
from wmlm.modalities.base import Modality

IMAGE_SIZE_HW = (64, 64)
MAX_SOURCE_SCALE = (
    64  # a source frame may be at most this many times the output size per side (area: squared)
)
MAX_IMAGE_BYTES = 64 * 2**20  # a 960x540 DeepSense JPEG is ~100 kB; 64 MiB is no camera frame


@dataclass(frozen=True)
class VisionTowerPreset:
    """Architecture as data: patch size (pixels), width, depth and heads of the vision transformer."""

    patch_size: int
    width: int
    layers: int
    heads: int
    mlp_ratio: float = 4.0


VISION_TOWERS: dict[str, VisionTowerPreset] = {
    "tiny": VisionTowerPreset(patch_size=16, width=64, layers=2, heads=2),
    "small": VisionTowerPreset(patch_size=8, width=128, layers=4, heads=4),
    "base": VisionTowerPreset(patch_size=16, width=768, layers=12, heads=12),  # ViT-B/16
}


class FrameEncoder(nn.Module):
    """``uint8 [B, P, 3, H, W] -> [B, P, D]``: scale to [0, 1], jitter brightness (training), CLIP-normalise,
    encode every frame with the vision tower."""

    def __init__(self, tower: nn.Module, brightness_jitter: float) -> None:
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        super().__init__()
        self.tower = tower
        self.brightness_jitter = brightness_jitter
        self.register_buffer("mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: Tensor) -> Tensor:
        batch, steps = frames.shape[:2]
        x = frames.reshape(batch * steps, *frames.shape[2:]).float() / 255.0
        if self.training and self.brightness_jitter > 0:
            # one gain per frame: day/night and exposure differ between sites and times
            gain = 1.0 + self.brightness_jitter * (2 * torch.rand(len(x), 1, 1, 1, device=x.device) - 1)
            x = (x * gain).clamp(0.0, 1.0)
        return self.tower((x - self.mean) / self.std).reshape(batch, steps, -1)


class ImageModality(Modality):
    """Camera frames ``uint8 [B, P, 3, H, W]`` encoded by an open_clip ViT without pretrained weights.

    Args:
        tower: vision transformer size from ``VISION_TOWERS`` (``tiny``, ``small``, ``base``).
        image_size_hw: frame height and width in pixels; must match the data field (the ``image`` reader
            resizes every frame to ``IMAGE_SIZE_HW``).
        field: data field that supplies the frames.
        brightness_jitter: random gain in ``[1 - j, 1 + j]`` per training frame (0 disables).
    """

    name = "image"
    field = "image"
    dtype: ClassVar[torch.dtype] = torch.uint8

    def __init__(
        self,
        tower: str = "small",
        image_size_hw: tuple[int, int] = IMAGE_SIZE_HW,
        field: str = "image",
        brightness_jitter: float = 0.2,
    ) -> None:
        if tower not in VISION_TOWERS:
            raise ConfigError(
                f"image modality: unknown tower {tower!r}; available: {', '.join(VISION_TOWERS)}"
            )
        preset = VISION_TOWERS[tower]
        height, width = image_size_hw
        if height % preset.patch_size or width % preset.patch_size:
            raise ConfigError(
                f"image modality: image_size_hw={tuple(image_size_hw)} must be a multiple of the {tower!r} "
                f"tower's patch size {preset.patch_size}"
            )
        if not 0 <= brightness_jitter < 1:
            raise ConfigError(f"image modality: brightness_jitter must be in [0, 1), got {brightness_jitter}")
        self.tower, self.preset = tower, preset
        self.step_shape = (3, height, width)  # type: ignore[misc]  # per instance: the size is an option
        self.field = field  # type: ignore[misc]
        self.brightness_jitter = brightness_jitter

    def build_encoder(self, embed_dim: int) -> nn.Module:
        # imported here: open_clip takes seconds to import, and listing plugins should not pay for it
        from open_clip.transformer import VisionTransformer

        p = self.preset
        tower = VisionTransformer(
            image_size=self.step_shape[1:],
            patch_size=p.patch_size,
            width=p.width,
            layers=p.layers,
            heads=p.heads,
            mlp_ratio=p.mlp_ratio,
            output_dim=embed_dim,
        )
        return FrameEncoder(tower, self.brightness_jitter)


class ImageReader(FieldReader):
    """RGB frames from the ``unit1_rgb`` column (PNG or JPEG files), resized: ``uint8 [N, 3, H, W]``.

    Real DeepSense frames are 960x540; they are resized (bilinear, antialiased) to ``size_hw`` when read,
    so the cache and the batches stay small.
    """

    name = "image"
    columns = ("unit1_rgb",)
    dtype = np.uint8

    def __init__(self, size_hw: tuple[int, int] = IMAGE_SIZE_HW) -> None:
        self.size_hw = size_hw

    def read(self, table: ScenarioTable) -> np.ndarray:
        column, _ = table.column(*self.columns)
        height, width = self.size_hw
        frames = np.empty((len(table), 3, height, width), dtype=np.uint8)
        for row, path in enumerate(table.paths(column)):
            frames[row] = self._frame(path, table.where(row, column))
        return frames

    def max_source_pixels(self) -> int:
        """Largest frame (pixels) read: ``MAX_SOURCE_SCALE**2`` times the output size, at least 4096x4096.

        A PNG can declare 20000x20000 pixels in a few hundred bytes and take gigabytes to decode; the
        declared size is checked against this before any pixel is decoded.
        """
        height, width = self.size_hw
        return max(4096 * 4096, MAX_SOURCE_SCALE**2 * height * width)

    def _frame(self, path: Path, where: str) -> np.ndarray:
        height, width = self.size_hw
        data = read_regular_file(path, MAX_IMAGE_BYTES, "camera frame", where)
        try:
            with Image.open(io.BytesIO(data)) as image:
                declared_w, declared_h = image.size  # from the header only: nothing decoded yet
                if declared_w * declared_h > self.max_source_pixels():
                    raise DataError(
                        f"{where}: image {path} declares {declared_w}x{declared_h} pixels, more than the "
                        f"{self.max_source_pixels()} read for {width}x{height} frames; refused before decoding"
                    )
                image.draft("RGB", (2 * width, 2 * height))  # JPEG: decode at reduced size, much faster
                return resized_frame(image.convert("RGB"), self.size_hw)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{where}: cannot read image {path}: {exc}") from None


def resized_frame(image: Image.Image | np.ndarray, size_hw: tuple[int, int] = IMAGE_SIZE_HW) -> np.ndarray:
    """An RGB frame (PIL image or ``uint8 [H0, W0, 3]``) as the ``image`` field holds it: ``uint8 [3, H, W]``.

    The one resize of every camera frame wmlm reads or writes (bilinear, as ``ImageReader``), so a frame
    written straight into the array store equals the same frame written as a PNG and read back.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))  # [H, W, 3] uint8 is RGB
    height, width = size_hw
    rgb = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
