"""Reliability guarantees: identical results for identical seeds, and no network access at any point."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import NetworkUsed
from test_cli_e2e import fit_args

from wmlm.cli import run


def test_same_seed_same_metrics_to_the_last_digit(data_root: Path, tmp_path: Path) -> None:
    first, second = (run(fit_args(data_root, tmp_path / name)) for name in ("a", "b"))
    a = {k: float(v) for k, v in first.trainer.callback_metrics.items()}
    b = {k: float(v) for k, v in second.trainer.callback_metrics.items()}
    assert a and a == b
    weights_a, weights_b = first.model.state_dict(), second.model.state_dict()
    assert all(weights_a[k].equal(weights_b[k]) for k in weights_a)
    other = run(fit_args(data_root, tmp_path / "c", "--seed_everything", "1"))
    weights_c = other.model.state_dict()
    assert not all(weights_a[k].equal(weights_c[k]) for k in weights_a)


def test_fit_and_predict_never_touch_the_network(data_root: Path, tmp_path: Path, no_network: None) -> None:
    with pytest.raises(NetworkUsed):  # the guard itself works
        socket.create_connection(("example.com", 80))
    fitted = run(fit_args(data_root, tmp_path / "runs"))
    best = fitted.trainer.checkpoint_callback.best_model_path
    run(
        [
            "predict",
            "--config",
            str(Path(__file__).parent / "conf" / "beam_gps.yaml"),
            "--data.init_args.root",
            str(data_root),
            "--trainer.default_root_dir",
            str(tmp_path / "eval"),
            "--ckpt_path",
            best,
            "--predictions_dir",
            str(tmp_path / "predictions"),
        ]
    )
    assert len(list((tmp_path / "predictions").glob("*.csv"))) == 3 * 3  # 3 scenarios x 3 future steps


KILL_WHILE_SAVING = """
import os, signal, sys, torch
from wmlm.model.checkpoint_io import AtomicCheckpointIO

class DieWhilePickled:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies in the middle of writing the file

AtomicCheckpointIO().save_checkpoint({"weights": torch.ones(100_000), "later": DieWhilePickled()}, sys.argv[1])
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    from wmlm.model.checkpoint_io import PARTIAL_SUFFIX, AtomicCheckpointIO

    last = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(7)}, last)
    script = tmp_path / "die.py"
    script.write_text(KILL_WHILE_SAVING)
    died = subprocess.run([sys.executable, str(script), str(last)], capture_output=True, timeout=120)
    assert died.returncode == -9
    assert torch.load(last, weights_only=True) == {"step": torch.tensor(7)}
    leftovers = [p.name for p in last.parent.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]
    assert len(leftovers) == 1 and leftovers[0].startswith(
        ".last.ckpt."
    )  # the dead write, never the real file


def test_cli_trainers_write_checkpoints_atomically(data_root: Path, tmp_path: Path) -> None:
    from wmlm.model.checkpoint_io import AtomicCheckpointIO

    cli = run(fit_args(data_root, tmp_path / "runs", "--test_after_fit", "false"))
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert len(list((tmp_path / "runs").rglob("last.ckpt"))) == 1


def test_every_test_named_in_the_reliability_doc_exists() -> None:
    import re

    repo = Path(__file__).parents[1]
    text = (repo / "docs" / "reliability.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)(::[\w*]+)?`((?:, `::[\w*]+`)*)", text)
    assert len(cited) > 20
    for path, first, more in cited:
        source = (repo / path).read_text()
        for name in re.findall(r"::([\w*]+)", first + more):
            pattern = "def " + name.replace("*", r"\w*") + r"\b"
            assert re.search(pattern, source), f"{path}::{name} is cited but missing"
