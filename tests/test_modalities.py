"""Built-in modalities: shapes, normalisation, invariances and input validation."""

from __future__ import annotations

import math

import pytest
import torch

from wmlm.beams import normalize_power
from wmlm.modalities.beam import BeamModality
from wmlm.modalities.gps import GpsModality


def test_power_normalisation_removes_the_absolute_level() -> None:
    power = torch.tensor([[1e-3, 1e-4, 1e-6, 0.0]])
    db = normalize_power(power, "db", floor_db=-30.0)
    torch.testing.assert_close(db, torch.tensor([[1.0, 1.0 - 10.0 / 30.0, 0.0, 0.0]]))
    torch.testing.assert_close(normalize_power(power * 500.0, "db", -30.0), db)  # another site's gain
    torch.testing.assert_close(normalize_power(power, "max", -30.0), torch.tensor([[1.0, 0.1, 1e-3, 0.0]]))


@pytest.mark.parametrize("encoder", ["conv", "mlp"])
@pytest.mark.parametrize("frame", ["absolute", "last_beam"])
def test_beam_encoder_maps_steps_to_embeddings(encoder: str, frame: str) -> None:
    modality = BeamModality(encoder=encoder, frame=frame)
    out = modality.build_encoder(24)(torch.rand(3, 5, 64))
    assert out.shape == (3, 5, 24) and torch.isfinite(out).all()


def test_validation_names_the_modality_and_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"modality 'beam': expected a tensor of shape \[B, P, 64\]"):
        BeamModality().validate(torch.rand(2, 5, 63))
    with pytest.raises(ValueError, match="modality 'gps': expected dtype"):
        GpsModality().validate(torch.rand(2, 5, 2, dtype=torch.float64))
    GpsModality().validate(torch.rand(2, 5, 2))  # the right input passes


def test_bad_options_fail_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="floor_db must be negative"):
        BeamModality(floor_db=3.0)
    with pytest.raises(ValueError, match="frame must be 'absolute' or 'last_beam'"):
        BeamModality(frame="polar")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features must be 'enu' or 'range'"):
        GpsModality(features="lat_lon")  # type: ignore[arg-type]


def test_gps_range_features_ignore_the_site_orientation() -> None:
    torch.manual_seed(0)
    position = torch.tensor([[[30.0, 40.0], [10.0, -5.0]]])
    angle = math.radians(70.0)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rotated = position @ rotation.T
    by_range = GpsModality(features="range").build_encoder(8)
    by_enu = GpsModality(features="enu").build_encoder(8)
    torch.testing.assert_close(by_range(position), by_range(rotated))
    assert not torch.allclose(by_enu(position), by_enu(rotated))
