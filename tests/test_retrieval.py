"""Alignment that can be judged: stage 1 logs top-1 retrieval between each pair on the validation split."""

from __future__ import annotations

from pathlib import Path

import torch
from test_cli_e2e import fit_args, logged_scalars

from wmlm.cli import run
from wmlm.model.align import AnchorAlignment


def test_retrieval_is_one_for_identical_embeddings_and_chance_for_unrelated_ones() -> None:
    generator = torch.Generator().manual_seed(0)
    beam = torch.randn(8, 5, 16, generator=generator)
    masks = {"beam": torch.ones(8, 5, dtype=torch.bool), "gps": torch.ones(8, 5, dtype=torch.bool)}
    align = AnchorAlignment([("beam", "gps")])
    same = align.retrieval({"beam": beam, "gps": 3.0 * beam}, masks)  # scale does not matter: cosine
    assert same == {"beam__gps/beam_to_gps": 1.0, "beam__gps/gps_to_beam": 1.0}
    shuffled = beam.reshape(40, 16)[torch.randperm(40, generator=generator)].reshape(8, 5, 16)
    unrelated = align.retrieval({"beam": beam, "gps": shuffled}, masks)
    assert all(v < 0.2 for v in unrelated.values())  # 40 candidates: chance is 0.025


def test_retrieval_leaves_out_masked_steps() -> None:
    beam = torch.randn(4, 5, 16, generator=torch.Generator().manual_seed(1))
    gps = beam.clone()
    gps[:, 0] = -beam[:, 0]  # the first step of every window is wrong...
    masks = {"beam": torch.ones(4, 5, dtype=torch.bool), "gps": torch.ones(4, 5, dtype=torch.bool)}
    align = AnchorAlignment([("beam", "gps")])
    assert align.retrieval({"beam": beam, "gps": gps}, masks)["beam__gps/beam_to_gps"] < 1.0
    masks["gps"][:, 0] = False  # ...and masked out: then every kept step is found
    assert align.retrieval({"beam": beam, "gps": gps}, masks)["beam__gps/beam_to_gps"] == 1.0


def test_fit_logs_retrieval_per_pair_and_direction(data_root: Path, tmp_path: Path) -> None:
    run(fit_args(data_root, tmp_path / "runs", "--test_after_fit", "false"))
    scalars = logged_scalars(tmp_path / "runs")
    for direction in ("beam_to_gps", "gps_to_beam"):
        values = scalars[f"val/align/retrieval/beam__gps/{direction}"]
        assert values and all(0.0 <= v <= 1.0 for v in values)
