"""Simulated scenarios as a data source: generated once into a cache folder, then read like real data.

``ensure_simulated`` writes each requested simulator preset, and procedural sites 1..N of a population
(``wmlm.data.sim.random_sites``), as scenario folders under ``<cache_dir>/sim/sim-<key>/``: DeepSense-layout
folders (``format="deepsense"``, text files, camera/LiDAR/CSI possible) or array store sites
(``format="arrays"``, one ``.npy`` per field, read memory-mapped; ``wmlm.data.store``). ``SimulatedDataModule``
does that in ``prepare_data`` and then serves the folders exactly as ``DeepSenseDataModule`` serves real
downloads; both formats give the same batches. A procedural site folder holds the same bytes as
``wmlm data synth --random-sites N --seed <site_seed> [--format arrays]`` writes (plus the ``.complete``
marker).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from wmlm.data.cache import default_cache_dir
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.data.sim.preset import check_presets
from wmlm.data.sim.writer import STORE_SENSORS, unstorable_sensors
from wmlm.errors import ConfigError

if TYPE_CHECKING:
    from wmlm.data.sim.preset import ScenarioPreset

COMPLETE_MARKER = ".complete"
# bump when the simulator's output changes for the same preset and seed, so old caches are not reused
SIMULATOR_FORMAT = 1
DEFAULT_PRESETS = ("urban_canyon", "suburban", "night", "wide_avenue")
DEFAULT_SENSORS = ("camera",)
FORMATS = ("deepsense", "arrays")
Format = Literal["deepsense", "arrays"]


def _fingerprint(
    preset: ScenarioPreset,
    sequences: int,
    seed: int,
    sensors: list[str],
    record: dict[str, Any] | None = None,
    layout: Format = "deepsense",
) -> str:
    """What a cached scenario folder was made from: preset, sequence count, seed, sensors, simulator format,
    the folder's layout (and a procedural site's draw)."""
    content = {
        "preset": dataclasses.asdict(preset),
        "sequences": sequences,
        "seed": seed,
        "sensors": sorted(sensors),
        "format": SIMULATOR_FORMAT,
    }
    if record is not None:
        content["random_site"] = record
    if layout != "deepsense":  # only then: DeepSense caches written before the option stay valid
        content["layout"] = layout
    return json.dumps(content, sort_keys=True, default=str)


def random_site_names(random_sites: int, site_seed: int) -> list[str]:
    """Scenario names of procedural sites 1..``random_sites`` of population ``site_seed``."""
    from wmlm.data.sim.random_sites import site_name

    return [site_name(site_seed, k) for k in range(1, random_sites + 1)]


def check_format(format: str, sensors: list[str] | tuple[str, ...]) -> None:
    """``ConfigError`` naming ``data.format`` for an unknown format, or ``data.sensors`` for sensors the
    array store cannot hold."""
    if format not in FORMATS:
        raise ConfigError(f"data.format: expected one of {', '.join(FORMATS)}, got {format!r}")
    unstorable = unstorable_sensors(sensors)
    if format == "arrays" and unstorable:
        raise ConfigError(
            f"data.sensors: format arrays holds beam power, GPS, blockage and {', '.join(STORE_SENSORS)}, got "
            f"sensors {list(sensors)}; use format deepsense for {', '.join(unstorable)}"
        )


def _check_counts(random_sites: int, site_seed: int | None, workers: int) -> None:
    if int(random_sites) != random_sites or random_sites < 0:
        raise ConfigError(f"data.random_sites: must be a non-negative integer, got {random_sites!r}")
    if site_seed is not None and (int(site_seed) != site_seed or site_seed < 0):
        raise ConfigError(f"data.site_seed: must be a non-negative integer, got {site_seed!r}")
    if int(workers) != workers or workers < 1:
        raise ConfigError(f"data.sim_workers: must be a positive integer, got {workers!r}")


def simulated_root(
    cache_dir: str | Path | None,
    sequences: int,
    seed: int,
    sensors: list[str] | tuple[str, ...] = (),
    format: Format = "deepsense",
) -> Path:
    """The folder that holds the scenario folders of one (sequences, seed, sensors, format) setting."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    with_sensors = "".join(f"-{s}" for s in sorted(sensors))
    layout = "" if format == "deepsense" else f"-{format}"
    return base / "sim" / f"sim-v{SIMULATOR_FORMAT}-seed{seed}-n{sequences}{with_sensors}{layout}"


def ensure_simulated(
    cache_dir: str | Path | None,
    presets: list[str],
    sequences: int,
    seed: int,
    sensors: list[str] | tuple[str, ...] = (),
    random_sites: int = 0,
    site_seed: int | None = None,
    workers: int = 1,
    format: Format = "deepsense",
) -> Path:
    """Simulate the scenarios that are not cached yet; returns the folder holding one folder per scenario.

        The scenarios are the named ``presets`` (simulated with ``seed``) and procedural sites 1..``random_sites``
        of population ``site_seed`` (default ``seed``; drawn and simulated with it, as ``wmlm data synth
        --random-sites N --seed <site_seed>`` does). ``sensors`` (``camera``, ``lidar``, ``csi``) are written
        beside beam power, GPS and blockage (``format="arrays"``: ``camera`` only). ``format`` is the folders' layout:
    ``deepsense`` text files or ``arrays``, array store sites (``wmlm.data.store``). A scenario folder counts as cached only when its ``.complete``
        marker holds the fingerprint of the preset, sequence count, seed, sensors (and draw). Each folder is
        written into a staging folder beside the cache and moved into place in one rename, so an interrupted run
        never leaves a half-written scenario that a later run would trust. ``workers`` processes simulate at once.
    """
    from wmlm.data.sim import PRESETS
    from wmlm.data.sim.generate import SiteJob, run_jobs
    from wmlm.data.sim.random_sites import random_site

    presets, sensors = list(presets), sorted(sensors)
    check_presets(presets, "data.presets", allow_empty=True)
    _check_counts(random_sites, site_seed, workers)
    check_format(format, sensors)
    if sequences < 1:
        raise ConfigError(f"simulated data: sequences must be >= 1, got {sequences}")
    site_seed = seed if site_seed is None else site_seed
    wanted: list[tuple[ScenarioPreset, int, dict[str, Any] | None]] = [
        (PRESETS[n], seed, None) for n in presets
    ]
    for k in range(1, random_sites + 1):
        site = random_site(site_seed, k)
        wanted.append((site.preset, site_seed, site.record()))
    parent = simulated_root(cache_dir, sequences, seed, sensors, format)
    parent.mkdir(parents=True, exist_ok=True)
    missing = []
    for preset, traffic_seed, record in wanted:
        expected = _fingerprint(preset, sequences, traffic_seed, sensors, record, format)
        marker = parent / preset.name / COMPLETE_MARKER
        if not (marker.is_file() and marker.read_text() == expected):
            missing.append((preset, traffic_seed, record, expected))
    if not missing:
        return parent
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent.parent))
    try:
        jobs = [
            (
                SiteJob(
                    preset, traffic_seed, sequences, tuple(sensors), staging / preset.name, record, format
                ),
                "write",
            )
            for preset, traffic_seed, record, _ in missing
        ]
        fingerprints = {preset.name: expected for preset, _, _, expected in missing}

        def publish(summary: dict[str, Any]) -> None:  # each folder as soon as it is written
            name = summary["name"]
            (staging / name / COMPLETE_MARKER).write_text(fingerprints[name])
            folder = parent / name
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging / name, folder)

        run_jobs(jobs, workers, on_done=publish)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return parent


class SimulatedDataModule(DeepSenseDataModule):
    """Windows of built-in simulated scenarios (``wmlm.data.sim`` presets), cached on first use.

    By default it trains on every scenario but the last and tests on the last one: a base station whose
    road, traffic and surroundings training never saw.

    Args:
        presets: simulator preset names; they become the scenario names. Default: all four presets, or
            none when ``random_sites`` is set.
        sequences: vehicle passes simulated per scenario.
        sim_seed: simulator seed (the data split has its own ``seed``).
        random_sites: also draw procedural sites 1..N (``wmlm.data.sim.random_sites``), scenarios
            ``s<site_seed>_site<K>`` after the presets; the same folders as ``wmlm data synth
            --random-sites N --seed <site_seed>``.
        site_seed: population of the procedural sites (default ``sim_seed``); site K depends on it and K only.
        sim_workers: processes simulating scenarios at once on a cache miss.
        sensors: extra simulated sensors to write (``camera``, ``lidar``, ``csi``); default ``[camera]``
            with ``format: deepsense``, none with ``arrays``. Only what a model asks for is read, but every
            listed sensor is simulated and cached.
        format: layout of the cached folders: ``deepsense`` (text files, the exchange format; parsed once
            into the arrays cache) or ``arrays`` (array store sites, ``wmlm.data.store``: written directly,
            read memory-mapped with nothing to parse; the camera as the ``image`` field, no LiDAR or CSI).
            The batches are the same.
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
        random_sites: int = 0,
        site_seed: int | None = None,
        sim_workers: int = 1,
        sensors: list[str] | None = None,
        format: Format = "deepsense",
        cache_dir: str | None = None,
        split: Literal["sequence", "scenario"] = "scenario",
        test_scenarios: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        presets = list(DEFAULT_PRESETS if presets is None and not random_sites else presets or [])
        check_presets(presets, "data.presets", allow_empty=True)
        _check_counts(random_sites, site_seed, sim_workers)
        site_seed = sim_seed if site_seed is None else site_seed
        scenarios = presets + random_site_names(random_sites, site_seed)
        if not scenarios:
            raise ConfigError("data: no simulated scenarios; give presets or random_sites >= 1")
        if format not in FORMATS:  # before the default sensors, whose default depends on it
            check_format(format, [])
        sensors = list((DEFAULT_SENSORS if format == "deepsense" else ()) if sensors is None else sensors)
        check_format(format, sensors)
        if split == "scenario" and not test_scenarios:
            test_scenarios = scenarios[-1:]
        super().__init__(
            root=simulated_root(cache_dir, sequences, sim_seed, sensors, format),
            scenarios=scenarios,
            split=split,
            test_scenarios=test_scenarios,
            cache_dir=None if cache_dir is None else str(Path(cache_dir) / "arrays"),
            **kwargs,
        )
        # not ``self.cache_dir``: that is the parent's (parsed arrays, ``<cache_dir>/arrays``)
        self.presets, self.sequences, self.sim_seed = presets, sequences, sim_seed
        self.random_sites, self.site_seed, self.sim_workers = random_sites, site_seed, sim_workers
        self.sim_cache_dir = cache_dir
        self.sensors, self.format = sensors, format

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node before setup: the only place that writes
        ensure_simulated(
            self.sim_cache_dir,
            self.presets,
            self.sequences,
            self.sim_seed,
            self.sensors,
            random_sites=self.random_sites,
            site_seed=self.site_seed,
            workers=self.sim_workers,
            format=self.format,
        )

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()  # a cache hit when prepare_data already ran; needed when used without a Trainer
        super().setup(stage)
