"""Shared fixtures: tiny DeepSense-layout scenario folders written by the tests themselves."""

from __future__ import annotations

import csv
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from wmlm import registry

BS_LAT_LON = (33.42034722, -111.92915278)
METRES_PER_DEG_LAT = 111_195.0


def write_scenario(
    folder: Path,
    sequence_lengths: Sequence[int] = (14, 12, 16, 13),
    label_column: str = "unit1_beam",
    seed: int = 0,
    extra_columns: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Write ``folder/<name>.csv`` and its files like an official DeepSense scenario.

    Vehicles drive past the base station, so the optimal beam sweeps across the codebook. The power files
    list beams in the official reversed order (label ``b`` is file element ``64 - b``).
    Returns the ground truth: ``beam`` (1-based labels), ``power`` (by beam, ``[N, 64]``), ``east_north_m``.
    """
    rng = np.random.default_rng(seed)
    name = folder.name
    (folder / "unit1" / "mmWave_data").mkdir(parents=True)
    (folder / "unit1" / "GPS_data").mkdir(parents=True)
    (folder / "unit2" / "GPS_data").mkdir(parents=True)
    (folder / "unit1" / "GPS_data" / "gps_location.txt").write_text(
        f"{BS_LAT_LON[0]:.8f}\n{BS_LAT_LON[1]:.8f}\n"
    )
    rows, beams, powers, positions = [], [], [], []
    k = 0
    for seq, length in enumerate(sequence_lengths, start=1):
        direction = 1 if seq % 2 else -1
        start_beam = 8 if direction == 1 else 56
        speed = rng.uniform(1.5, 3.0)  # beams per sample
        for t in range(length):
            beam = int(np.clip(round(start_beam + direction * speed * t), 1, 64))
            power_by_beam = 0.01 * rng.random(64) + np.exp(-0.5 * ((np.arange(1, 65) - beam) / 2.0) ** 2)
            east, north = direction * (t * 2.0 - 15.0), 10.0 + seq
            lat = BS_LAT_LON[0] + north / METRES_PER_DEG_LAT
            lon = BS_LAT_LON[1] + east / (METRES_PER_DEG_LAT * np.cos(np.radians(BS_LAT_LON[0])))
            power_file = f"./unit1/mmWave_data/mmWave_power_{k}.txt"
            gps_file = f"./unit2/GPS_data/gps_location_{k}.txt"
            (folder / power_file).write_text("\n".join(f"{p:.8f}" for p in power_by_beam[::-1]) + "\n")
            (folder / gps_file).write_text(f"{lat:.10f}\n{lon:.10f}\n")
            row = {
                "index": str(k + 1),
                "unit1_pwr_60ghz": power_file,
                "unit1_loc": "./unit1/GPS_data/gps_location.txt",
                "unit2_loc": gps_file,
                label_column: str(int(np.argmax(power_by_beam)) + 1),
                "seq_index": str(seq),
            }
            row.update(extra_columns or {})
            rows.append(row)
            beams.append(int(np.argmax(power_by_beam)) + 1)
            powers.append(power_by_beam)
            positions.append((east, north))
            k += 1
    with (folder / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"beam": np.array(beams), "power": np.array(powers), "east_north_m": np.array(positions)}


@pytest.fixture
def make_scenario(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, np.ndarray]]]:
    """``make_scenario(name, **kwargs) -> (folder, truth)`` under a per-test root ``tmp_path/data``."""

    def make(name: str = "scenario1", **kwargs: object) -> tuple[Path, dict[str, np.ndarray]]:
        folder = tmp_path / "data" / name
        return folder, write_scenario(folder, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def data_root(make_scenario: Callable[..., tuple[Path, dict[str, np.ndarray]]]) -> Path:
    """A folder of three tiny scenarios (two label column spellings)."""
    make_scenario("scenario1", seed=1)
    make_scenario("scenario2", seed=2, sequence_lengths=(15, 12, 14))
    folder, _ = make_scenario(
        "scenario9", seed=9, label_column="unit1_beam_index", sequence_lengths=(12, 16, 13)
    )
    return folder.parent


@pytest.fixture
def dev_sites_root(tmp_path: Path) -> Path:
    """Three 'real' development scenarios for the benchmark scripts: sites A (scenario1), C (scenario5) and
    D (scenario6) of ``benchmarks/real_deepsense.DEV_SITES``, five short passes each."""
    for seed, name in enumerate(["scenario1", "scenario5", "scenario6"]):
        write_scenario(tmp_path / "real" / name, seed=seed, sequence_lengths=(14, 12, 16, 13, 15))
    return tmp_path / "real"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches (parsed arrays, simulated scenarios) go to a per-test folder, never to ~/.cache."""
    monkeypatch.setenv("WMLM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Benchmark scripts run in-process set torch's thread count; later tests must not inherit it
    (results computed with other thread counts differ in the last bits)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch):
    """Every test starts from a freshly loaded plugin registry and leaves none behind.

    Installed third-party plugins (e.g. ``plugins/wmlm-lidar``) are not loaded: the core tests see the
    built-ins only, whatever the environment holds. Tests of entry points set their own environment.
    """
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, "")
    registry.reset()
    yield
    registry.reset()


class NetworkUsed(RuntimeError):
    """Raised by the ``no_network`` guard when code tries to open a connection."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection during the test raises ``NetworkUsed``."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise NetworkUsed(f"network access attempted: {args}")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
