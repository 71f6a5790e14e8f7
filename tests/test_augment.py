"""Beam-axis augmentations keep inputs and targets consistent."""

from __future__ import annotations

import pytest
import torch

from wmlm.model.augment import BeamFlip, BeamShift


def batch_with_peaks(past: list[list[int]], future: list[list[int]], floor: float = 0.01) -> dict:
    power = torch.full((len(past), len(past[0]), 64), floor)
    for w, beams in enumerate(past):
        for p, b in enumerate(beams):
            power[w, p, b] = 1.0
    return {"beam": power, "target": {"beam": torch.tensor(future)}, "index": torch.arange(len(past))}


def test_flip_mirrors_inputs_and_labels_together() -> None:
    batch = batch_with_peaks([[3, 4, 5]], [[6, 7]])
    flipped = BeamFlip(p=1.0)(batch)
    assert flipped["beam"].argmax(-1).tolist() == [[60, 59, 58]]
    assert flipped["target"]["beam"].tolist() == [[57, 56]]
    assert batch["beam"].argmax(-1).tolist() == [[3, 4, 5]]  # the input batch is untouched
    assert BeamFlip(p=0.0)(batch)["target"]["beam"].tolist() == [[6, 7]]


def test_shift_moves_everything_by_one_offset_and_stays_on_the_codebook() -> None:
    torch.manual_seed(0)
    past = [[0, 1, 2], [30, 31, 32], [61, 62, 63], [10, 20, 30]]
    future = [[3, 4], [33, 34], [63, 63], [40, 50]]
    batch = batch_with_peaks(past, future)
    offsets = set()
    for _ in range(50):
        shifted = BeamShift(max_shift=8)(batch)
        delta = shifted["beam"].argmax(-1) - batch["beam"].argmax(-1)  # [B, P]
        assert (delta == delta[:, :1]).all()  # one shift per window
        assert (shifted["target"]["beam"] - batch["target"]["beam"] == delta[:, :1]).all()
        assert shifted["target"]["beam"].min() >= 0 and shifted["target"]["beam"].max() <= 63
        assert delta.abs().max() <= 8
        offsets.update(delta[:, 0].tolist())
        assert delta[0, 0] >= 0 and delta[2, 0] <= 0  # windows at the codebook's edges only move inwards
    assert len(offsets) > 5  # the shift really varies


def test_centred_frame_makes_the_model_shift_equivariant() -> None:
    """With frame=last_beam and a relative head, shifting a window along the codebook shifts the prediction."""
    from wmlm.beams import centre_on_beam
    from wmlm.heads.beam import BeamHead
    from wmlm.modalities.beam import BeamModality

    values = torch.arange(1, 7, dtype=torch.float32).reshape(1, 2, 3)  # N = 3 beams
    centred = centre_on_beam(values, torch.tensor([2]), fill=0.0)
    assert centred.tolist() == [[[1, 2, 3, 0, 0], [4, 5, 6, 0, 0]]]  # beam 2 at index N - 1 = 2

    torch.manual_seed(0)
    encoder = BeamModality(frame="last_beam", encoder="conv").build_encoder(16)
    head = BeamHead(relative_to="beam", dropout=0.0)
    head.build(hidden_dim=16, past_steps=3, future_steps=2)
    batch = batch_with_peaks([[20, 22, 24]], [[26, 28]], floor=1e-4)  # off-peak: below the -30 dB floor
    batch["beam"][0, :, 21] = 0.1  # some structure beside the peak
    moved = BeamShift(max_shift=0)(batch)  # a copy
    moved["beam"] = torch.roll(batch["beam"], shifts=10, dims=-1)  # same pattern, 10 beams further
    # the encoder sees the same centred window, so the head's offsets are the same and land 10 beams further
    for b in (batch, moved):
        b["hidden"] = encoder(b["beam"])
    torch.testing.assert_close(batch["hidden"], moved["hidden"])
    scores, moved_scores = head(batch["hidden"], batch), head(moved["hidden"], moved)
    assert (moved_scores.argmax(-1) - scores.argmax(-1)).tolist() == [[10, 10]]


def test_power_target_moves_with_the_beam_axis() -> None:
    torch.manual_seed(1)
    batch = batch_with_peaks([[3, 4, 5], [40, 41, 42]], [[6, 7], [43, 44]])
    future_power = torch.full((2, 2, 64), 0.01)
    for w, beams in enumerate([[6, 7], [43, 44]]):
        for f, b in enumerate(beams):
            future_power[w, f, b] = 1.0
    batch["target"]["power"] = future_power
    flipped = BeamFlip(p=1.0)(batch)
    assert flipped["target"]["power"].argmax(-1).tolist() == flipped["target"]["beam"].tolist()
    for _ in range(10):
        shifted = BeamShift(max_shift=8)(batch)
        assert shifted["target"]["power"].argmax(-1).tolist() == shifted["target"]["beam"].tolist()
    assert batch["target"]["power"].argmax(-1).tolist() == [[6, 7], [43, 44]]  # untouched


def test_flip_mirrors_camera_frames_of_the_same_windows() -> None:
    torch.manual_seed(3)
    batch = batch_with_peaks([[3, 4, 5]] * 8, [[6, 7]] * 8)
    frames = torch.zeros(8, 3, 3, 4, 6, dtype=torch.uint8)
    frames[..., 0] = 200  # a bright left edge
    batch["image"] = frames
    flipped = BeamFlip(p=0.5)(batch)
    mirrored = flipped["beam"][:, 0].argmax(-1) == 60  # windows whose beams were mirrored
    assert 0 < mirrored.sum() < 8
    assert (flipped["image"][mirrored][..., -1] == 200).all() and (
        flipped["image"][mirrored][..., 0] == 0
    ).all()
    assert flipped["image"][~mirrored].equal(frames[~mirrored])
    assert batch["image"].equal(frames)  # untouched input


def test_modality_dropout_masks_whole_windows_and_the_model_still_predicts() -> None:
    from wmlm import WMLM
    from wmlm.model.augment import ModalityDropout

    torch.manual_seed(0)
    batch = batch_with_peaks([[3, 4, 5]] * 64, [[6, 7]] * 64)
    batch["gps"] = torch.randn(64, 3, 2)
    batch["mask"] = {"beam": torch.ones(64, 3, dtype=torch.bool), "gps": torch.ones(64, 3, dtype=torch.bool)}
    out = ModalityDropout(p=0.5)(batch)
    gps = out["mask"]["gps"]
    assert out["mask"]["beam"].all()  # kept
    assert (gps.all(dim=1) | ~gps.any(dim=1)).all()  # whole windows, never single steps
    assert 10 < (~gps.any(dim=1)).sum() < 54
    assert batch["mask"]["gps"].all() and out["gps"].equal(batch["gps"])  # input batch and values untouched
    with pytest.raises(ValueError, match="p must be"):
        ModalityDropout(p=1.0)

    model = WMLM(modalities=["beam", "gps"], preset="tiny", embed_dim=8, past=3, future=2).eval()
    with torch.no_grad():
        both = model(out)["beam"]
        no_gps = model({k: v for k, v in batch.items() if k != "gps"})[
            "beam"
        ]  # the sensor is gone at test time
        masked = model({**batch, "mask": {**batch["mask"], "gps": torch.zeros(64, 3, dtype=torch.bool)}})[
            "beam"
        ]
    assert both.shape == no_gps.shape == (64, 2, 64)
    torch.testing.assert_close(no_gps, masked)  # absent and fully masked are the same thing


def test_flip_mirrors_csi_and_lidar_consistently_with_the_beams() -> None:
    import numpy as np

    from wmlm.data.sim.channel import codebook_weights, nearest_beam, steering_vectors

    rng = np.random.default_rng(0)
    sines = rng.uniform(-0.7, 0.7, size=(4, 3))  # arrival sines of 4 windows x 3 steps
    channel = steering_vectors(sines)[..., None] * np.exp(
        1j * rng.uniform(0, 6.28, (4, 3, 1, 8))
    )  # [4,3,16,8]
    beam_power = (np.abs(channel.transpose(0, 1, 3, 2) @ codebook_weights().conj().T) ** 2).mean(
        2
    )  # [4,3,64]
    csi = torch.from_numpy(np.stack([channel.real, channel.imag], axis=2)).float()  # [4,3,2,16,8]
    # a LiDAR return at the vehicle: x along the array, so sine = x / range
    points = torch.from_numpy(np.stack([20 * sines, 20 * np.sqrt(1 - sines**2), np.ones_like(sines)], -1))
    points = points[:, :, None, :].repeat(1, 1, 5, 1).float()  # [4,3,5 points,3]
    labels = torch.from_numpy(nearest_beam(sines) - 1)[:, 1:]  # 0-based, two "future" steps
    batch = {
        "beam": torch.from_numpy(beam_power).float(),
        "csi": csi,
        "lidar": points,
        "target": {"beam": labels},
    }
    out = BeamFlip(p=1.0)(batch)
    # the beam power the mirrored CSI produces is the mirrored beam power
    flipped = out["csi"][:, :, 0] + 1j * out["csi"][:, :, 1]  # [4,3,16,8]
    power_of_flipped = (
        flipped.transpose(-1, -2) @ torch.from_numpy(codebook_weights().conj().T).to(flipped.dtype)
    ).abs() ** 2
    torch.testing.assert_close(power_of_flipped.mean(2).float(), out["beam"], rtol=1e-4, atol=1e-5)
    # the mirrored points lie on the mirrored labels' beams
    mirrored_sine = (out["lidar"][..., 0] / out["lidar"][..., :2].norm(dim=-1))[:, 1:, 0]
    assert (torch.from_numpy(nearest_beam(mirrored_sine.numpy()) - 1) == out["target"]["beam"]).all()
    assert out["lidar"][..., 1:].equal(points[..., 1:])  # only x changes
