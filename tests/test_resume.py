"""A run killed with SIGKILL mid-epoch resumes with ``--ckpt_path last`` and ends exactly like an unbroken run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wmlm.cli import run
from wmlm.data.loader import ResumableLoader

CONF = Path(__file__).parent / "conf" / "beam_gps.yaml"
STEPS_PER_EPOCH = 6


def args(root: Path, out: Path) -> list[str]:
    return [
        "fit",
        "--config",
        str(CONF),
        "--data.init_args.root",
        str(root),
        "--data.init_args.batch_size",
        "4",
        "--trainer.default_root_dir",
        str(out),
        "--trainer.limit_train_batches",
        str(STEPS_PER_EPOCH),
        "--model.init_args.checkpoint_every_n_steps",
        "2",
        "--model.init_args.augmentations",
        "[wmlm.model.augment.BeamFlip]",  # random draws in every step: the RNG state must be restored too
        "--test_after_fit",
        "false",
    ]


@pytest.mark.parametrize(("kill_at_step", "stage"), [(3, "align"), (9, "adapt")])
def test_killed_run_resumes_to_the_same_result(
    data_root: Path, tmp_path: Path, kill_at_step: int, stage: str
) -> None:
    reference = run(args(data_root, tmp_path / "reference"))
    killed_dir = tmp_path / "killed"
    kill = json.dumps({"class_path": "kill_switch.KillAtStep", "init_args": {"step": kill_at_step}})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    crashed = subprocess.run(
        [sys.executable, "-m", "wmlm", *args(data_root, killed_dir), f"--trainer.callbacks+={kill}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert crashed.returncode == -9, crashed.stderr[-3000:]  # really killed, not finished
    last = list(killed_dir.rglob("last.ckpt"))
    assert len(last) == 1
    saved = torch.load(last[0], map_location="cpu", weights_only=True)
    assert saved["global_step"] == kill_at_step - 1  # checkpoints every 2 steps; the step in flight is lost
    assert (saved["epoch"] < 1) == (stage == "align")

    resumed = run([*args(data_root, killed_dir), "--ckpt_path", "last"])
    assert resumed.trainer.global_step == reference.trainer.global_step == 2 * STEPS_PER_EPOCH
    ours, theirs = resumed.model.state_dict(), reference.model.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    a = {k: float(v) for k, v in resumed.trainer.callback_metrics.items() if k.startswith("val/")}
    b = {k: float(v) for k, v in reference.trainer.callback_metrics.items() if k.startswith("val/")}
    assert a and a == b


def test_loader_state_resumes_mid_epoch_and_after_an_epoch() -> None:
    data = list(range(10))
    loader = ResumableLoader(data, batch_size=3, shuffle=True, seed=5, collate_fn=lambda b: b)
    first_epoch = list(loader)
    iterator = iter(loader)
    second_epoch_start = [next(iterator), next(iterator)]
    state = loader.state_dict()
    rest = list(iterator)
    assert state == {"seed": 5, "epoch": 1, "consumed": 2}
    assert sorted(x for b in first_epoch for x in b) == data and first_epoch != [*second_epoch_start, *rest]

    fresh = ResumableLoader(data, batch_size=3, shuffle=True, seed=0, collate_fn=lambda b: b)
    fresh.load_state_dict(state)
    assert list(fresh) == rest  # the remaining batches of epoch 1, in order
    after_epoch = ResumableLoader(data, batch_size=3, shuffle=True, seed=0, collate_fn=lambda b: b)
    after_epoch.load_state_dict({"seed": 5, "epoch": 0, "consumed": 4})  # saved at the end of epoch 0
    assert list(after_epoch) == [*second_epoch_start, *rest]
