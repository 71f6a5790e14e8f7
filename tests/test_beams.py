"""``wmlm.beams``: the codebook's facts have one home and keep the numbers they had."""

from __future__ import annotations

import subprocess
import sys

import torch

from wmlm.beams import (
    NUM_BEAMS,
    beam_predictions,
    best_beams,
    centre_on_beam,
    last_best_beam,
    normalize_power,
    power_to_relative,
    relative_to_power,
    uncentre_scores,
)


def _power(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    power = torch.rand(4, 3, NUM_BEAMS, generator=generator) ** 6 * 1e-4  # [B, P, 64] linear, wide range
    power[0, 0] = 0.0  # an all-zero vector stays finite
    return power


def test_db_normalisation_is_power_to_relative_with_the_vector_peak() -> None:
    power = _power()
    floor_db = -30.0
    # the formula normalize_power had before the move, kept bit for bit
    peak = power.amax(dim=-1, keepdim=True).clamp_min(1e-12)
    ratio = (power / peak).clamp_min(0.0)
    old = 1.0 - 10.0 * torch.log10(ratio.clamp_min(10.0 ** (floor_db / 10.0))) / floor_db
    assert torch.equal(normalize_power(power, "db", floor_db), old)
    assert torch.equal(normalize_power(power, "db", floor_db), power_to_relative(power, peak, floor_db))
    assert torch.equal(normalize_power(power, "max", floor_db), ratio)
    back = relative_to_power(power_to_relative(power, peak, floor_db), peak, floor_db)
    kept = power / peak >= 1e-3  # above the floor, the inverse gives the power back
    torch.testing.assert_close(back[kept], power[kept])


def test_best_beam_and_centring_round_trip() -> None:
    power = _power(1)
    assert torch.equal(last_best_beam(power), best_beams(power)[:, -1])
    centre = last_best_beam(power)
    centred = centre_on_beam(power, centre)  # [B, P, 127]
    assert centred.shape == (4, 3, 2 * NUM_BEAMS - 1)
    # the centre beam sits at N - 1; mapping the offsets back gives the absolute beams again
    assert torch.equal(centred[:, -1, NUM_BEAMS - 1], power[torch.arange(4), -1, centre])
    assert torch.equal(uncentre_scores(centred, centre), power)


def test_beam_predictions_are_one_based_top3() -> None:
    scores = torch.zeros(1, 2, NUM_BEAMS)
    scores[0, :, 9], scores[0, :, 4], scores[0, :, 63] = 3.0, 2.0, 1.0
    predictions = beam_predictions(scores)
    assert list(predictions) == ["top-1 beam", "top-2 beam", "top-3 beam"]
    assert [predictions[k][0, 0].item() for k in predictions] == [10, 5, 64]


def test_the_codebook_module_and_the_simulator_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import wmlm.beams, wmlm.data.sim.channel\n"
        "assert wmlm.data.sim.channel.NUM_BEAMS == wmlm.beams.NUM_BEAMS == 64\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_last_best_beam_skips_a_missing_last_sweep() -> None:
    import torch

    from wmlm.beams import last_best_beam

    power = torch.rand(3, 5, 64) * 0.01
    power[:, :, 40] = 1.0  # every measured step peaks at beam 40
    power[0, -1] = 0.0  # window 0: the last sweep is missing (served as zeros)
    power[1, -2:] = 0.0  # window 1: the last two are missing
    assert last_best_beam(power).tolist() == [40, 40, 40]
    power[2] = 0.0  # nothing measured at all: the last step, as before
    assert last_best_beam(power)[2].item() == 0
