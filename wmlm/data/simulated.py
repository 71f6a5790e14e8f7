"""Simulated scenarios as a data source: generated once into a cache folder, then read like real data.

``ensure_simulated`` writes each requested simulator preset as a DeepSense-layout scenario folder under
``<cache_dir>/sim-<key>/<preset>/``; ``SimulatedDataModule`` does that in ``prepare_data`` and then serves
the folders exactly as ``DeepSenseDataModule`` serves real downloads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from wmlm.data.cache import default_cache_dir
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.errors import ConfigError

COMPLETE_MARKER = ".complete"
# bump when the simulator's output changes for the same preset and seed, so old caches are not reused
SIMULATOR_FORMAT = 1
DEFAULT_PRESETS = ("urban_canyon", "suburban", "night", "wide_avenue")
DEFAULT_SENSORS = ("camera",)


def _check_presets(names: list[str]) -> None:
    from wmlm.data.sim import PRESETS

    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ConfigError(f"unknown simulator preset(s) {unknown}; available: {', '.join(sorted(PRESETS))}")
    if len(set(names)) != len(names):
        raise ConfigError(f"simulator presets listed twice: {names}")


def _fingerprint(name: str, sequences: int, seed: int, sensors: list[str]) -> str:
    """What a cached scenario folder was made from: preset, sequence count, seed, sensors, format."""
    from wmlm.data.sim import PRESETS

    preset = dataclasses.asdict(PRESETS[name])
    return json.dumps(
        {
            "preset": preset,
            "sequences": sequences,
            "seed": seed,
            "sensors": sorted(sensors),
            "format": SIMULATOR_FORMAT,
        },
        sort_keys=True,
        default=str,
    )


def simulated_root(
    cache_dir: str | Path | None, sequences: int, seed: int, sensors: list[str] | tuple[str, ...] = ()
) -> Path:
    """The folder that holds the scenario folders of one (sequences, seed, sensors) setting."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    with_sensors = "".join(f"-{s}" for s in sorted(sensors))
    return base / "sim" / f"sim-v{SIMULATOR_FORMAT}-seed{seed}-n{sequences}{with_sensors}"


def ensure_simulated(
    cache_dir: str | Path | None,
    presets: list[str],
    sequences: int,
    seed: int,
    sensors: list[str] | tuple[str, ...] = (),
) -> Path:
    """Simulate the presets that are not cached yet; returns the folder holding one folder per preset.

    ``sensors`` (``camera``, ``lidar``, ``csi``) are written beside beam power, GPS and blockage. A
    scenario folder counts as cached only when its ``.complete`` marker holds the fingerprint of the
    preset, sequence count, seed and sensors. Each folder is written into a staging folder beside the cache and
    moved into place in one rename, so an interrupted run never leaves a half-written scenario that a
    later run would trust.
    """
    from wmlm.data.sim import PRESETS, simulate_scenario, write_scenario_folder

    presets, sensors = list(presets), sorted(sensors)
    _check_presets(presets)
    if sequences < 1:
        raise ConfigError(f"simulated data: sequences must be >= 1, got {sequences}")
    parent = simulated_root(cache_dir, sequences, seed, sensors)
    parent.mkdir(parents=True, exist_ok=True)
    for name in presets:
        folder = parent / name
        expected = _fingerprint(name, sequences, seed, sensors)
        marker = folder / COMPLETE_MARKER
        if marker.is_file() and marker.read_text() == expected:
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=parent.parent))
        try:
            sim = simulate_scenario(PRESETS[name], sequences, seed=seed)
            write_scenario_folder(sim, staging / name, sensors=sensors)
            (staging / name / COMPLETE_MARKER).write_text(expected)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging / name, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return parent


class SimulatedDataModule(DeepSenseDataModule):
    """Windows of built-in simulated scenarios (``wmlm.data.sim`` presets), cached on first use.

    By default it trains on every preset but the last and tests on the last one: a base station whose
    road, traffic and surroundings training never saw.

    Args:
        presets: simulator preset names; they become the scenario names.
        sequences: vehicle passes simulated per preset.
        sim_seed: simulator seed (the data split has its own ``seed``).
        sensors: extra simulated sensors to write (``camera``, ``lidar``, ``csi``); default ``[camera]``.
            Only what a model asks for is read, but every listed sensor is simulated and cached.
        cache_dir: where simulated folders (and, under ``arrays/``, their parsed arrays) live; default
            ``$WMLM_CACHE_DIR`` or ``~/.cache/wmlm``.
        cache: keep parsed arrays memory-mapped between runs (see ``DeepSenseDataModule``).
        split: as in ``DeepSenseDataModule``; ``scenario`` by default.
        test_scenarios: held-out presets for ``split="scenario"`` (default: the last preset).
        **kwargs: any other ``DeepSenseDataModule`` argument (``past``, ``future``, ``batch_size``, ...).
    """

    def __init__(
        self,
        presets: list[str] | None = None,
        sequences: int = 40,
        sim_seed: int = 0,
        sensors: list[str] | None = None,
        cache_dir: str | None = None,
        split: Literal["sequence", "scenario"] = "scenario",
        test_scenarios: list[str] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        past: int | None = None,
        future: int | None = None,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        inputs: dict[str, str] | None = None,
        targets: dict[str, str] | None = None,
        predict_split: Literal["train", "val", "test"] = "test",
        train_strides: list[int] | None = None,
        cache: bool = True,
        train_windows: int | None = None,
    ) -> None:
        presets = list(presets or DEFAULT_PRESETS)
        _check_presets(presets)
        sensors = list(DEFAULT_SENSORS if sensors is None else sensors)
        if split == "scenario" and not test_scenarios:
            test_scenarios = presets[-1:]
        super().__init__(
            root=simulated_root(cache_dir, sequences, sim_seed, sensors),
            scenarios=presets,
            split=split,
            test_scenarios=test_scenarios,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            past=past,
            future=future,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            inputs=inputs,
            targets=targets,
            predict_split=predict_split,
            train_strides=train_strides,
            cache=cache,
            cache_dir=None if cache_dir is None else str(Path(cache_dir) / "arrays"),
            train_windows=train_windows,
        )
        # not ``self.cache_dir``: that is the parent's (parsed arrays, ``<cache_dir>/arrays``)
        self.presets, self.sequences, self.sim_seed = presets, sequences, sim_seed
        self.sim_cache_dir = cache_dir
        self.sensors = sensors

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node before setup: the only place that writes
        ensure_simulated(self.sim_cache_dir, self.presets, self.sequences, self.sim_seed, self.sensors)

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()  # a cache hit when prepare_data already ran; needed when used without a Trainer
        super().setup(stage)
