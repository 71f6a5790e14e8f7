"""Shared helpers of the wmlm-lidar tests: the plugin registered at run time, a private cache, and tiny
DeepSense-layout scenario folders written by the tests themselves.

Every test module imports the autouse fixtures ``lidar_plugin`` and ``private_cache`` from here. They are not
in a ``conftest.py`` on purpose: pytest imports every conftest as the module ``conftest``, so a second one
would replace wmlm's ``tests/conftest.py`` in ``sys.modules`` and break its tests' ``from conftest import
...`` when both folders are collected in one run.

The tests run the same whether or not the distribution is installed: installed entry points are not loaded
(``WMLM_LOAD_PLUGINS=""``); the plugin module is registered at run time and unregistered afterwards.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

try:
    import wmlm_lidar  # noqa: F401  # installed (pip install ./plugins/wmlm-lidar)
except ModuleNotFoundError:  # a plain checkout: import the package from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmlm import registry
from wmlm.beams import NUM_BEAMS

import wmlm_lidar.plugin

RUNTIME_NAME = "wmlm-lidar (tests)"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed-array caches go to a per-test folder, never to ~/.cache."""
    monkeypatch.setenv("WMLM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def lidar_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Built-ins plus ``wmlm_lidar.plugin`` registered at run time; nothing left behind."""
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, "")
    registry.reset()
    registry.register_plugin(wmlm_lidar.plugin, RUNTIME_NAME)
    try:
        yield
    finally:
        registry.unregister_plugin(RUNTIME_NAME)
        registry.reset()


LIDAR_DIR = Path("unit1") / "lidar_data"


def scan(row: int, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """``float32 [num_points, 3]``: ground returns plus a box-shaped vehicle whose x moves with ``row``."""
    ground = np.column_stack(
        [rng.uniform(-40, 40, num_points), rng.uniform(2, 25, num_points), rng.normal(0, 0.02, num_points)]
    )
    vehicle = num_points // 4
    ground[:vehicle] = np.column_stack(
        [
            -20 + 2.0 * (row % 20) + rng.uniform(0, 4.5, vehicle),
            rng.uniform(8, 10, vehicle),
            rng.uniform(0, 1.6, vehicle),
        ]
    )
    return ground.astype(np.float32)


def point_counts(rows: int) -> list[int]:
    """Points per scan: below and above the reader's 256, so both padding and subsampling happen."""
    return [40 + (97 * k) % 500 for k in range(rows)]


def write_scenario(
    folder: Path, sequence_lengths: Sequence[int] = (12, 12, 12, 12), seed: int = 0
) -> list[np.ndarray]:
    """``folder/<name>.csv`` with beam power, beam labels and a ``.npy`` scan per row; returns the scans."""
    rng = np.random.default_rng(seed)
    (folder / "unit1" / "mmWave_data").mkdir(parents=True)
    (folder / LIDAR_DIR).mkdir(parents=True)
    total = sum(sequence_lengths)
    counts = point_counts(total)
    rows, scans, k = [], [], 0
    for seq, length in enumerate(sequence_lengths, start=1):
        for t in range(length):
            beam = 5 + (3 * t + 7 * seq) % 55
            power = 0.01 * rng.random(NUM_BEAMS) + np.exp(
                -0.5 * ((np.arange(1, NUM_BEAMS + 1) - beam) / 2.0) ** 2
            )
            power_file = f"./unit1/mmWave_data/mmWave_power_{k}.txt"
            # DeepSense files list the beams in reverse order of the labels
            (folder / power_file).write_text("\n".join(f"{p:.8f}" for p in power[::-1]) + "\n")
            lidar_file = f"./{LIDAR_DIR.as_posix()}/lidar_{k}.npy"
            points = scan(k, counts[k], rng)
            np.save(folder / lidar_file, points)
            scans.append(points)
            rows.append(
                {
                    "index": str(k + 1),
                    "unit1_pwr_60ghz": power_file,
                    "unit1_beam": str(int(np.argmax(power)) + 1),
                    "unit1_lidar": lidar_file,
                    "seq_index": str(seq),
                }
            )
            k += 1
    with (folder / f"{folder.name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return scans


def set_cell(folder: Path, row: int, column: str, value: str) -> None:
    """Overwrite one cell (0-based data row) of the scenario's CSV."""
    path = folder / f"{folder.name}.csv"
    with path.open(newline="") as handle:
        table = list(csv.reader(handle))
    table[row + 1][table[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(table)


def logged_scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar of the run's TensorBoard event files: ``{tag: [values in step order]}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[float]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in accumulator.Scalars(tag))
    return scalars
