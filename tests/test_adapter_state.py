"""Saving and restoring an online adapter: a restarted base station continues exactly where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wmlm.deploy.adapter_state import SETTINGS_FILE, TENSORS_FILE
from wmlm.deploy.online import OnlineAdapter, Sample
from wmlm.deploy.prequential import LabelledSample, prequential_evaluate
from wmlm.errors import CheckpointError, ConfigError, OutputError
from wmlm.heads.beam import BeamHead
from wmlm.model.wmlm import WMLM

PAST, FUTURE = 3, 2


def tiny_model(embed_dim: int = 16) -> WMLM:
    torch.manual_seed(0)
    return WMLM(
        modalities=("beam", "gps"), heads=[BeamHead()], preset="tiny", embed_dim=embed_dim, past=PAST,
        future=FUTURE, align_epochs=0, adapt_epochs=1,
    )  # fmt: skip


def stream(passes: int, seed: int) -> list[LabelledSample]:
    """``passes`` vehicle passes of 8-11 samples sweeping the codebook from a random start."""
    rng = np.random.default_rng(seed)
    items, index = [], 0
    for number in range(passes):
        start = int(rng.integers(5, 30))
        for t in range(int(rng.integers(8, 12))):
            beam = int(np.clip(start + 3 * t + rng.integers(-1, 2), 1, 64))
            power = (0.01 * rng.random(64) + np.exp(-0.5 * ((np.arange(1, 65) - beam) / 2.0) ** 2)).astype(
                np.float32
            )
            gps = np.array([t, number], dtype=np.float32)
            items.append(LabelledSample(Sample(index, number, {"beam": power, "gps": gps}), beam))
            index += 1
        index += 5  # a gap between passes
    return items


VARIANTS = {
    "heads+prior+memory": {"adapt": "heads", "steps_per_pass": 3, "site_prior": 5.0, "site_memory": 0.5},
    "heads+backbone": {"adapt": "heads+backbone", "steps_per_pass": 3},
    "reservoir": {"adapt": "heads", "steps_per_pass": 2, "buffer_windows": 20, "buffer_policy": "reservoir"},
}


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_a_restored_adapter_continues_exactly_as_the_one_that_never_stopped(
    options: dict[str, object], tmp_path: Path
) -> None:
    items = stream(10, seed=1)
    first, rest = items[: len(items) // 2], items[len(items) // 2 :]
    while rest and rest[0].sample.pass_id == first[-1].sample.pass_id:  # cut between passes
        first, rest = [*first, rest[0]], rest[1:]
    kept = OnlineAdapter(tiny_model(), batch_size=8, **options)  # type: ignore[arg-type]
    prequential_evaluate(kept, first)
    kept.save(tmp_path / "state")
    restored = OnlineAdapter.load(tmp_path / "state", tiny_model())
    assert restored.passes_ended == kept.passes_ended and len(restored.buffer) == len(kept.buffer) > 0

    after_kept, after_restored = prequential_evaluate(kept, rest), prequential_evaluate(restored, rest)
    assert torch.equal(after_kept.scores, after_restored.scores)  # served the same, bit for bit
    assert [u.mean_loss for u in kept.updates[-3:]] == [u.mean_loss for u in restored.updates[-3:]]
    for (name, a), b in zip(kept.model.state_dict().items(), restored.model.state_dict().values()):
        assert torch.equal(a, b), name
    # and the learning mattered: a fresh adapter serves the rest differently
    fresh = prequential_evaluate(OnlineAdapter(tiny_model(), batch_size=8, **options), rest)  # type: ignore[arg-type]
    assert not torch.equal(fresh.scores, after_kept.scores)


def test_saving_during_a_pass_is_refused(tmp_path: Path) -> None:
    adapter = OnlineAdapter(tiny_model(), steps_per_pass=0, site_prior=5.0)
    adapter.predict(stream(1, seed=0)[0].sample)
    with pytest.raises(ConfigError, match=r"a pass is in progress \(1 samples\); call end_pass\(\)"):
        adapter.save(tmp_path / "state")
    assert not (tmp_path / "state").exists()


def test_a_tampered_or_foreign_state_is_refused(tmp_path: Path) -> None:
    adapter = OnlineAdapter(tiny_model(), steps_per_pass=1, batch_size=4, site_memory=0.3)
    prequential_evaluate(adapter, stream(3, seed=2))
    folder = adapter.save(tmp_path / "state")

    with pytest.raises(CheckpointError, match="saved for another model: .* parameter"):
        OnlineAdapter.load(folder, tiny_model(embed_dim=8))

    settings = json.loads((folder / SETTINGS_FILE).read_text())
    (folder / SETTINGS_FILE).write_text(json.dumps({**settings, "state_version": 99}))
    with pytest.raises(CheckpointError, match="state version 99, this wmlm reads version 1"):
        OnlineAdapter.load(folder, tiny_model())
    (folder / SETTINGS_FILE).write_text(json.dumps(settings))

    blob = bytearray((folder / TENSORS_FILE).read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit in the weights
    (folder / TENSORS_FILE).write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="does not match adapter.json"):
        OnlineAdapter.load(folder, tiny_model())

    with pytest.raises(CheckpointError, match="holds no saved online adapter"):
        OnlineAdapter.load(tmp_path, tiny_model())


def test_a_state_is_never_written_over_files_wmlm_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    adapter = OnlineAdapter(tiny_model(), steps_per_pass=0, site_prior=5.0)
    with pytest.raises(OutputError, match="was not written by wmlm online"):
        adapter.save(mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    adapter.save(tmp_path / "state")
    with pytest.raises(OutputError, match="already holds output of wmlm online; pass --overwrite"):
        adapter.save(tmp_path / "state", overwrite=False)
