"""Shared helpers of the wmlm-csi tests: the plugin registered at run time, a private cache, and tiny
DeepSense-layout scenario folders written by the tests themselves.

Every test module imports the autouse fixtures ``csi_plugin`` and ``private_cache`` from here. They are not
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
    import wmlm_csi  # noqa: F401  # installed (pip install ./plugins/wmlm-csi)
except ModuleNotFoundError:  # a plain checkout: import the package from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmlm import registry
from wmlm.beams import NUM_BEAMS

import wmlm_csi.plugin

RUNTIME_NAME = "wmlm-csi (tests)"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed-array caches go to a per-test folder, never to ~/.cache."""
    monkeypatch.setenv("WMLM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def csi_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Built-ins plus ``wmlm_csi.plugin`` registered at run time; nothing left behind."""
    monkeypatch.setenv(registry.ENV_LOAD_PLUGINS, "")
    registry.reset()
    registry.register_plugin(wmlm_csi.plugin, RUNTIME_NAME)
    try:
        yield
    finally:
        registry.unregister_plugin(RUNTIME_NAME)
        registry.reset()


CSI_DIR = Path("unit1") / "csi_data"


def channel(
    angle_sine: float, delay_s: float, amplitude: float, rng: np.random.Generator, shape=(16, 32)
) -> np.ndarray:
    """``complex64 [A, K]``: a line-of-sight path (ULA steering x delay ramp), a weaker echo and noise."""
    antennas, subcarriers = shape
    a = np.arange(antennas)[:, None]
    f = (np.arange(subcarriers)[None, :] - subcarriers / 2) * 50e6 / subcarriers
    los = np.exp(1j * np.pi * angle_sine * a) * np.exp(-2j * np.pi * f * delay_s)
    echo = 0.3 * np.exp(-1j * np.pi * 0.5 * a) * np.exp(-2j * np.pi * f * (delay_s + 40e-9))
    noise = 0.05 * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    return (amplitude * (los + echo + noise)).astype(np.complex64)


def write_scenario(
    folder: Path, sequence_lengths: Sequence[int] = (12, 12, 12, 12), seed: int = 0, amplitude: float = 1e-3
) -> np.ndarray:
    """``folder/<name>.csv`` with beam power, beam labels and a CSI ``.npy`` per row; returns ``[N, 16, 32]``."""
    rng = np.random.default_rng(seed)
    (folder / "unit1" / "mmWave_data").mkdir(parents=True)
    (folder / CSI_DIR).mkdir(parents=True)
    rows, channels, k = [], [], 0
    for seq, length in enumerate(sequence_lengths, start=1):
        for t in range(length):
            sine = np.clip(-0.9 + 0.15 * t * (1 if seq % 2 else -1) + (0 if seq % 2 else 1.8), -0.95, 0.95)
            beam = int(np.clip(round((sine + 1) / 2 * 63) + 1, 1, NUM_BEAMS))
            power = 0.01 * rng.random(NUM_BEAMS) + np.exp(
                -0.5 * ((np.arange(1, NUM_BEAMS + 1) - beam) / 2.0) ** 2
            )
            power_file = f"./unit1/mmWave_data/mmWave_power_{k}.txt"
            # DeepSense files list the beams in reverse order of the labels
            (folder / power_file).write_text("\n".join(f"{p:.8f}" for p in power[::-1]) + "\n")
            csi_file = f"./{CSI_DIR.as_posix()}/csi_{k}.npy"
            h = channel(sine, 20e-9 + 1e-9 * t, amplitude * (1 + 0.1 * t), rng)
            np.save(folder / csi_file, h)
            channels.append(h)
            rows.append(
                {
                    "index": str(k + 1),
                    "unit1_pwr_60ghz": power_file,
                    "unit1_beam": str(int(np.argmax(power)) + 1),
                    "unit1_csi": csi_file,
                    "seq_index": str(seq),
                }
            )
            k += 1
    with (folder / f"{folder.name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return np.stack(channels)


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
