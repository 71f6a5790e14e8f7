"""Reliability guarantees: identical results for identical seeds, and no network access at any point."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
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


class NetworkUsed(RuntimeError):
    pass


def test_fit_and_predict_never_touch_the_network(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise NetworkUsed(f"network access attempted: {args}")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
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
