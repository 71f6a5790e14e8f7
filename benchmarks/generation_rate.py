"""How fast does ``wmlm data synth`` generate samples? Today's path and the fast path, side by side.

    python benchmarks/generation_rate.py --sites 12 --sequences 10 --markdown docs/results/generation.md

Every mode writes the same procedural sites (``--random-sites N --seed S``, the same sequences per site,
hence the same samples) with ``wmlm data synth`` run in this process (no interpreter start-up counted):

- ``today``: the original path, the DeepSense text layout on one process
  (``--format deepsense --sensors none --workers 1``);
- ``arrays, 1 process``: the array store on one process (what the format alone gains);
- ``fast``: the array store on ``--workers`` processes (``--format arrays --workers 2``), no camera;
- ``camera``: camera frames on, on ``--workers`` processes, into the array store (``--format arrays
  --sensors camera``: the frames as the ``image`` field, no PNG encoded).

Each mode runs ``--repeats`` times into a fresh folder and keeps the fastest run: the machine is shared,
and the fastest run is the one least slowed by other work. Rates are samples (rows) per wall-clock second.
The target of issue 12 is ``fast`` >= 5x ``today`` on 2 cores without the camera.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TARGET_RATIO = 5.0
READING = "## Reading the table"  # the hand-written section a rerun keeps


@dataclass(frozen=True)
class Mode:
    """One way of running ``wmlm data synth``: a row of the table."""

    name: str
    format: str
    workers: int
    sensors: str  # the --sensors value


@dataclass(frozen=True)
class Timing:
    """The fastest of the repeated runs of one mode."""

    mode: Mode
    samples: int
    seconds: float

    @property
    def rate(self) -> float:
        """Samples per second."""
        return self.samples / self.seconds


def modes(workers: int) -> list[Mode]:
    return [
        Mode("today: DeepSense text, 1 process", "deepsense", 1, "none"),
        Mode("arrays, 1 process", "arrays", 1, "none"),
        Mode(f"fast: arrays, {workers} processes", "arrays", workers, "none"),
        Mode(f"camera: arrays + camera, {workers} processes", "arrays", workers, "camera"),
    ]


def count_samples(out: Path) -> int:
    """Rows written under ``out``: each site's ``store.json`` row count or CSV line count."""
    total = 0
    for site in sorted(p for p in out.iterdir() if p.is_dir()):
        if (site / "store.json").is_file():
            total += int(json.loads((site / "store.json").read_text())["rows"])
        else:
            total += len((site / f"{site.name}.csv").read_text().splitlines()) - 1
    return total


def synth_args(mode: Mode, sites: int, sequences: int, seed: int) -> list[str]:
    """The ``wmlm data synth`` arguments of ``mode`` (all but ``--out``)."""
    args = ["--random-sites", str(sites), "--seed", str(seed), "--sequences", str(sequences)]
    args += ["--format", mode.format, "--workers", str(mode.workers)]
    if mode.format == "deepsense" or mode.sensors != "none":  # arrays writes no sensor unless asked
        args += ["--sensors", mode.sensors]
    return args


def run_once(args: list[str], out: Path) -> tuple[int, float]:
    """One ``wmlm data synth`` into a fresh ``out``: (samples written, wall-clock seconds)."""
    from wmlm.data.sim.cli import synth_command

    shutil.rmtree(out, ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()):  # one line per site: not the table's business
        start = time.perf_counter()
        synth_command(["--out", str(out), *args])
        seconds = time.perf_counter() - start
    samples = count_samples(out)
    shutil.rmtree(out, ignore_errors=True)
    return samples, seconds


def time_modes(
    all_modes: list[Mode], sites: int, sequences: int, seed: int, repeats: int, scratch: Path
) -> list[Timing]:
    """The fastest of ``repeats`` runs of every mode. The modes take turns within each repeat, so a
    burst of other work on the shared machine slows one run of each rather than all runs of one mode."""
    best = {mode.name: (0, float("inf")) for mode in all_modes}
    for _ in range(repeats):
        for mode in all_modes:
            samples, seconds = run_once(synth_args(mode, sites, sequences, seed), scratch / "out")
            if seconds < best[mode.name][1]:
                best[mode.name] = (samples, seconds)
    return [Timing(mode, *best[mode.name]) for mode in all_modes]


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), no GPU used, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )


def verdict(ratio: float) -> str:
    """Met or missed the ``TARGET_RATIO`` target, and by how much."""
    if ratio >= TARGET_RATIO:
        return f"met: {ratio:.2f}x >= {TARGET_RATIO:g}x (by {ratio - TARGET_RATIO:.2f}x)"
    return (
        f"missed: {ratio:.2f}x < {TARGET_RATIO:g}x (short by {TARGET_RATIO - ratio:.2f}x, "
        f"{100 * ratio / TARGET_RATIO:.0f} % of the target)"
    )


def markdown(timings: list[Timing], sites: int, sequences: int, command: str, machine_line: str) -> str:
    today, fast = timings[0], timings[2]
    ratio = fast.rate / today.rate
    lines = [
        "# Generation rate of `wmlm data synth`",
        "",
        f"{datetime.date.today().isoformat()}, {machine_line}.",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{sites} procedural sites (`--random-sites {sites}`), {sequences} passes each, the same samples in "
        "every mode; the fastest of the repeated runs, in this process (no interpreter start-up).",
        "",
        "| mode | format | workers | sensors | samples | seconds | samples/s | vs today |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in timings:
        lines.append(
            f"| {t.mode.name} | {t.mode.format} | {t.mode.workers} | {t.mode.sensors} | {t.samples} | "
            f"{t.seconds:.2f} | {t.rate:.0f} | {t.rate / today.rate:.2f}x |"
        )
    lines += ["", f"Target fast >= {TARGET_RATIO:g}x today without the camera: **{verdict(ratio)}**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Timing]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=12, help="procedural sites per mode")
    parser.add_argument("--sequences", type=int, default=10, help="vehicle passes per site")
    parser.add_argument("--seed", type=int, default=0, help="site population and traffic seed")
    parser.add_argument("--workers", type=int, default=2, help="processes of the fast and camera modes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode; the fastest counts")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--smoke", action="store_true", help="2 sites, 2 passes, 1 run: seconds, for tests")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sites, args.sequences, args.repeats = 2, 2, 1
    command = "python benchmarks/generation_rate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine_line = machine()  # before the runs: the load average of the machine, not of this benchmark
    with tempfile.TemporaryDirectory(prefix="wmlm-genrate-") as scratch:
        timings = time_modes(
            modes(args.workers), args.sites, args.sequences, args.seed, args.repeats, Path(scratch)
        )
    text = markdown(timings, args.sites, args.sequences, command.strip(), machine_line)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + kept_reading(args.markdown))
    return timings


def kept_reading(path: Path) -> str:
    """The hand-written ``READING`` section of an earlier ``path`` (to its end), or ``""``: rerunning the
    benchmark replaces the table and keeps the reading of it."""
    if not path.is_file():
        return ""
    earlier = path.read_text()
    start = earlier.find(READING)
    return "" if start < 0 else earlier[start:]


if __name__ == "__main__":
    main()
