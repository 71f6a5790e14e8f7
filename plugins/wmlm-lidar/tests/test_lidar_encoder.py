"""The ``lidar`` modality and its PointNet encoder: shapes, masking of padding, registration."""

from __future__ import annotations

import pytest
import torch
from lidar_fixtures import lidar_plugin, private_cache  # noqa: F401  # autouse fixtures
from wmlm import registry

from wmlm_lidar import NUM_POINTS, LidarModality, PointNetEncoder


def _clouds(batch: int, steps: int, real: int, slots: int, seed: int = 0) -> torch.Tensor:
    """``[B, P, slots, 3]`` with ``real`` random points (metres) per cloud and NaN padding after them."""
    generator = torch.Generator().manual_seed(seed)
    clouds = torch.full((batch, steps, slots, 3), float("nan"))
    clouds[:, :, :real] = 40 * torch.rand(batch, steps, real, 3, generator=generator) - 20
    return clouds


def test_registered_by_name() -> None:
    assert registry.get_modality("lidar") is LidarModality
    record = next(r for r in registry.load_plugins().records if r.registered["modality"] == ["lidar"])
    assert record.status == "ok" and record.registered["reader"] == ["lidar"]


def test_encoder_maps_clouds_to_per_step_embeddings() -> None:
    torch.manual_seed(0)
    modality = LidarModality()
    encoder = modality.build_encoder(24).eval()
    clouds = _clouds(2, 5, real=100, slots=NUM_POINTS)
    modality.validate(clouds)
    out = encoder(clouds)
    assert out.shape == (2, 5, 24) and torch.isfinite(out).all()
    # a step's embedding depends on that step's cloud only
    changed = clouds.clone()
    changed[1, 3, :100] += 5.0
    same = (encoder(changed) == out).all(dim=-1)
    assert same[0].all() and same[1, [0, 1, 2, 4]].all() and not same[1, 3]
    with pytest.raises(ValueError, match=r"lidar.*\[B, P, 256, 3\]"):
        modality.validate(clouds[:, :, :128])
    with pytest.raises(ValueError, match="lidar.*float32"):
        modality.validate(clouds.double())
    assert LidarModality(num_points=64).step_shape == (64, 3)
    with pytest.raises(ValueError, match="range_scale_m"):
        LidarModality(range_scale_m=0)


def test_padding_points_do_not_change_the_output() -> None:
    torch.manual_seed(0)
    encoder = PointNetEncoder(16, width=32).eval()
    clouds = _clouds(3, 2, real=10, slots=16)
    out = encoder(clouds)
    # more padding slots
    longer = torch.cat([clouds, torch.full((3, 2, 48, 3), float("nan"))], dim=2)
    torch.testing.assert_close(encoder(longer), out)
    # padding anywhere, and in any order: only the set of real points counts
    shuffled = clouds[:, :, torch.randperm(16)]
    torch.testing.assert_close(encoder(shuffled), out)
    # a point with one non-finite coordinate is padding too
    partial = clouds.clone()
    partial[:, :, 12:] = torch.tensor([1.0, float("inf"), 2.0])
    torch.testing.assert_close(encoder(partial), out)
    # while a real point does change it
    extra = clouds.clone()
    extra[:, :, 10] = torch.tensor([30.0, -10.0, 2.0])
    assert not torch.allclose(encoder(extra), out)


def test_empty_clouds_and_gradients_stay_finite() -> None:
    torch.manual_seed(0)
    encoder = PointNetEncoder(8, width=16)
    clouds = _clouds(2, 3, real=5, slots=12)
    clouds[0, 1] = float("nan")  # a step without a single return
    out = encoder(clouds)
    assert torch.isfinite(out).all()
    # every empty cloud gets the same learned embedding
    clouds[1, 2] = float("nan")
    out = encoder(clouds)
    torch.testing.assert_close(out[0, 1], out[1, 2])
    out.square().sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert encoder.empty.grad.abs().sum() > 0


def test_points_are_scaled_by_range() -> None:
    torch.manual_seed(0)
    near = PointNetEncoder(8, width=16, range_scale_m=10.0).eval()
    far = PointNetEncoder(8, width=16, range_scale_m=100.0).eval()
    far.load_state_dict(near.state_dict())
    clouds = _clouds(1, 1, real=20, slots=20)
    # the same cloud ten times larger looks the same to an encoder with a ten times larger scale
    torch.testing.assert_close(far(10 * clouds), near(clouds))
