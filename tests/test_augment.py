"""Beam-axis augmentations keep inputs and targets consistent."""

from __future__ import annotations

import torch

from wmlm.model.augment import BeamFlip, BeamShift


def batch_with_peaks(past: list[list[int]], future: list[list[int]]) -> dict:
    power = torch.full((len(past), len(past[0]), 64), 0.01)
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
