"""Generating many site folders: one job per site, checked before any work, resumable, parallel, shardable.

A ``SiteJob`` is everything one scenario folder is made from (preset, seed, sequences, sensors and, for a
procedural site, its draw). ``plan_jobs`` decides for every job, before anything is simulated, whether to
write it, replace it or skip it, and refuses (``OutputError``) what the overwrite policy of
``wmlm.outputs`` forbids. ``run_jobs`` simulates and writes the planned jobs on ``workers`` processes; each
folder depends on its own job only, so any number of workers (or shards, ``select_shard``) writes the same
bytes as one.

A folder is *complete* when its ``simulation.json`` (written last, atomically, by ``write_scenario_folder``)
records exactly the job's preset, seed, sequences, sensors and draw, and its marker names this wmlm version;
*interrupted* when it carries the marker of ``wmlm data synth`` but no ``simulation.json`` (the writer was
stopped before the end), or, for an array store site, when its arrays do not match its ``store.json``. With ``resume``, complete folders are skipped and interrupted ones rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wmlm.data.deepsense import STORE_FILE
from wmlm.data.sim.preset import ScenarioPreset
from wmlm.data.sim.scenario import simulate_scenario
from wmlm.data.sim.writer import (
    INFO_FILE,
    VERB,
    check_output_folder,
    sensor_settings,
    write_scenario_folder,
    write_store_folder,
)
from wmlm.data.store import read_store
from wmlm.errors import ConfigError, DataError, OutputError
from wmlm.outputs import MARKER_FILE, marker_verb, wmlm_version

State = Literal["new", "complete", "interrupted", "stale"]
Action = Literal["write", "replace", "skip"]


@dataclass(frozen=True)
class SiteJob:
    """One scenario folder to make: ``sequences`` passes of ``preset`` with ``seed``, written to ``folder``
    with ``sensors``; ``record`` is a procedural site's draw (``RandomSite.record()``), else None."""

    preset: ScenarioPreset
    seed: int
    sequences: int
    sensors: tuple[str, ...]
    folder: Path
    record: dict[str, Any] | None = None
    format: Literal["deepsense", "arrays"] = "deepsense"

    def expected_info(self) -> dict[str, Any]:
        """The part of ``simulation.json`` that a complete folder of this job holds (JSON-normalised)."""
        info: dict[str, Any] = {
            "simulator": "wmlm.data.sim",
            "seed": int(self.seed),
            "sequences": int(self.sequences),
            "preset": dataclasses.asdict(self.preset),
            "sensors": sensor_settings(self.sensors),
        }
        if self.record is not None:
            info["random_site"] = self.record
        return json.loads(json.dumps(info))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def folder_state(job: SiteJob) -> State | None:
    """What ``job.folder`` holds: ``new`` (absent or empty), ``complete``, ``interrupted``, ``stale`` (a
    finished ``wmlm data synth`` folder of other parameters or another wmlm version) or None (anything
    else, which ``check_output_folder`` judges)."""
    folder = job.folder
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return "new"
    if not folder.is_dir() or marker_verb(folder) != VERB:
        return None
    info = _read_json(folder / INFO_FILE)
    if not isinstance(info, dict):
        return "interrupted"
    marker = _read_json(folder / MARKER_FILE) or {}
    expected = job.expected_info()
    same = all(info.get(key) == value for key, value in expected.items())
    same = same and ("random_site" in info) == ("random_site" in expected)
    data_file = folder / (STORE_FILE if job.format == "arrays" else f"{folder.name}.csv")
    current = marker.get("wmlm_version") == wmlm_version() and data_file.is_file()
    if same and current and job.format == "arrays":
        try:
            read_store(folder)  # a truncated or replaced array file: rebuilt by --resume, never skipped
        except DataError:
            return "interrupted"
    return "complete" if same and current else "stale"


def plan_jobs(jobs: Sequence[SiteJob], overwrite: bool, resume: bool) -> list[tuple[SiteJob, Action]]:
    """Every job with what to do about its folder; raises ``OutputError`` for the first refused folder,
    before any job runs. ``resume`` skips complete folders and rebuilds interrupted ones; ``overwrite``
    replaces any folder ``wmlm data synth`` wrote; neither touches a folder it did not write."""
    planned: list[tuple[SiteJob, Action]] = []
    for job in jobs:
        state = folder_state(job)
        if state == "new":
            planned.append((job, "write"))
        elif resume and state == "complete":
            planned.append((job, "skip"))
        elif resume and state == "interrupted":
            planned.append((job, "replace"))
        elif resume and state == "stale" and not overwrite:
            raise OutputError(
                f"{job.folder} holds a site that wmlm data synth wrote with other parameters or another wmlm "
                "version; pass --overwrite to replace it"
            )
        else:
            planned.append((job, "replace" if check_output_folder(job.folder, overwrite) else "write"))
    return planned


def run_job(
    job: SiteJob, replace: bool = False, on_sequence: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Simulate and write one job; returns a summary (name, samples, sequences, blocked share, folder).
    ``on_sequence(k)`` is called after each simulated sequence."""
    sim = simulate_scenario(job.preset, job.sequences, job.seed, on_sequence=on_sequence)
    if job.format == "arrays":
        write_store_folder(sim, job.folder, overwrite=replace, record=job.record, sensors=job.sensors)
    else:
        write_scenario_folder(sim, job.folder, overwrite=replace, sensors=job.sensors, record=job.record)
    return {
        "name": job.preset.name,
        "samples": len(sim),
        "sequences": job.sequences,
        "blocked": float(np.mean(sim.blocked)),
        "folder": str(job.folder),
    }


def _run_planned(item: tuple[SiteJob, Action]) -> dict[str, Any]:
    job, action = item
    return run_job(job, replace=action == "replace")


def run_jobs(
    planned: Sequence[tuple[SiteJob, Action]],
    workers: int = 1,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    on_sequences: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the planned jobs that are not skipped, on ``workers`` processes (1: in this process); returns
    their summaries in job order. ``on_done(summary)`` is called as each job finishes, ``on_sequences(n)``
    as ``n`` more sequences are simulated (progress bars; with workers, a job's sequences when it ends)."""
    todo = [item for item in planned if item[1] != "skip"]
    if workers <= 1 or len(todo) <= 1:
        summaries = []
        step = None if on_sequences is None else (lambda _: on_sequences(1))
        for job, action in todo:
            summaries.append(run_job(job, replace=action == "replace", on_sequence=step))
            if on_done is not None:
                on_done(summaries[-1])
        return summaries
    # fork on Linux: a spawned child would re-import the main module first (the ``wmlm`` script imports
    # Lightning: seconds per worker). The children run numpy and write files only, never a lock of the
    # parent's threads (progress bar, executor); elsewhere (macOS, Windows) fork is unsafe or absent: spawn
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context) as pool:
        futures = [pool.submit(_run_planned, item) for item in todo]
        summaries = []
        for future, (job, _) in zip(futures, todo):
            summaries.append(future.result())
            if on_sequences is not None:
                on_sequences(job.sequences)
            if on_done is not None:
                on_done(summaries[-1])
    return summaries


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``, shard ``I`` (1-based) of ``N``; ``ConfigError`` naming ``--shard`` otherwise."""
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (0, 0)
    except ValueError:
        index, count = 0, 0
    if not 1 <= index <= count:
        raise ConfigError(f"--shard: expected I/N with 1 <= I <= N (shard I of N, e.g. 1/4), got {text!r}")
    return index, count


def select_shard(items: Sequence[Any], index: int, count: int) -> list[Any]:
    """Shard ``index`` (1-based) of ``count``: every ``count``-th item from the ``index``-th. The shards of
    one ``count`` are disjoint and together hold every item."""
    return list(items[index - 1 :: count])
