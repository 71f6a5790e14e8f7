"""``wmlm data synth``: simulate preset scenarios and write them as DeepSense-layout folders."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wmlm.data.sim.preset import PRESETS
from wmlm.data.sim.scenario import simulate_scenario
from wmlm.data.sim.writer import SENSORS, check_output_folder, check_sensors, write_scenario_folder
from wmlm.errors import ConfigError


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= minimum`` (argparse names the option in its message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


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
    parser.add_argument(
        "--sequences", type=_at_least(1), default=40, help="vehicle passes per scenario (default 40)"
    )
    parser.add_argument(
        "--seed", type=_at_least(0), default=0, help="random seed; the same seed gives the same files"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace scenario folders that an earlier `wmlm data synth` wrote (only those: any other "
        "folder is refused)",
    )
    parser.add_argument(
        "--sensors",
        default=",".join(SENSORS),
        help=f"comma-separated extra sensors written beside beam power and GPS, any of {', '.join(SENSORS)}; "
        "'none' for none (default: all)",
    )
    return parser


def synth_command(argv: list[str]) -> int:
    """Run ``wmlm data synth`` with ``argv``; returns 0.

    Raises ``ConfigError`` (exit 2) for an unknown preset or sensor and ``OutputError`` (exit 1) for an
    output folder it may not write, all before anything is simulated or written.
    """
    args = _parser().parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in PRESETS]
    if unknown or not names:
        raise ConfigError(
            f"--scenarios: unknown scenario preset(s) {', '.join(unknown) or '(none given)'}; "
            f"available: {', '.join(PRESETS)}"
        )
    try:
        sensors = check_sensors(s.strip() for s in args.sensors.split(",") if s.strip() not in ("", "none"))
    except ValueError as error:
        raise ConfigError(f"--sensors: {error} (or none)") from None
    folders = {name: args.out / name for name in names}
    for folder in folders.values():  # every folder, before the first is simulated
        check_output_folder(folder, args.overwrite)

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
