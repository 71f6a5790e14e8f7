"""``wmlm data synth``: simulate preset scenarios and write them as DeepSense-layout folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wmlm.data.sim.scenario import PRESETS, simulate_scenario
from wmlm.data.sim.writer import SENSORS, write_scenario_folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wmlm data synth",
        description="Simulate 60 GHz V2I scenarios (vehicle passes at a 64-beam BS) and write each as a "
        "DeepSense 6G scenario folder OUT/<preset>.",
    )
    parser.add_argument("--out", required=True, type=Path, help="parent folder of the scenario folders")
    parser.add_argument(
        "--scenarios",
        default=",".join(PRESETS),
        help=f"comma-separated preset names (default: all of {', '.join(PRESETS)})",
    )
    parser.add_argument("--sequences", type=int, default=40, help="vehicle passes per scenario (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    parser.add_argument("--overwrite", action="store_true", help="replace scenario folders that exist")
    parser.add_argument(
        "--sensors",
        default=",".join(SENSORS),
        help=f"comma-separated extra sensors written beside beam power and GPS, any of {', '.join(SENSORS)}; "
        "'none' for none (default: all)",
    )
    return parser


def synth_command(argv: list[str]) -> int:
    """Run ``wmlm data synth`` with ``argv``; returns the exit code (1: folder exists, 2: bad arguments)."""
    args = _parser().parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in PRESETS]
    if unknown or not names:
        print(
            f"wmlm data synth: unknown scenario preset(s) {', '.join(unknown) or '(none given)'}; "
            f"available: {', '.join(PRESETS)}",
            file=sys.stderr,
        )
        return 2
    sensors = [s.strip() for s in args.sensors.split(",") if s.strip() and s.strip() != "none"]
    bad = [s for s in sensors if s not in SENSORS]
    if bad:
        print(
            f"wmlm data synth: unknown sensor(s) {', '.join(bad)}; available: {', '.join(SENSORS)} (or none)",
            file=sys.stderr,
        )
        return 2
    if args.seed < 0:
        print(f"wmlm data synth: --seed must be non-negative, got {args.seed}", file=sys.stderr)
        return 2
    if args.sequences < 1:
        print(f"wmlm data synth: --sequences must be at least 1, got {args.sequences}", file=sys.stderr)
        return 2
    folders = {name: args.out / name for name in names}
    taken = [str(f) for f in folders.values() if f.exists() and (not f.is_dir() or any(f.iterdir()))]
    if taken and not args.overwrite:
        print(
            f"wmlm data synth: output folder(s) not empty: {', '.join(taken)}; pass --overwrite to replace "
            "what the simulator wrote there",
            file=sys.stderr,
        )
        return 1

    summaries = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        for name, folder in folders.items():
            task = progress.add_task(f"simulating {name}", total=args.sequences)
            sim = simulate_scenario(
                PRESETS[name],
                args.sequences,
                args.seed,
                on_sequence=lambda _, task=task: progress.advance(task),
            )
            progress.update(task, description=f"writing {name}", completed=0, total=len(sim))
            write_scenario_folder(
                sim,
                folder,
                overwrite=args.overwrite,
                sensors=sensors,
                on_sample=lambda _, task=task: progress.advance(task),
            )
            summaries.append(
                f"{name}: {len(sim)} samples, {args.sequences} sequences, "
                f"{100 * np.mean(sim.blocked):.1f} % blocked, sensors: {', '.join(sensors) or 'none'} "
                f"-> {folder}"
            )
    for line in summaries:
        print(line)
    return 0
