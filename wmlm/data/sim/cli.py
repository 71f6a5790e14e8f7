"""``wmlm data synth``: simulate preset and procedural sites and write them as DeepSense-layout folders.

``--random-sites N --seed S`` draws sites 1..N of population S (``wmlm.data.sim.random_sites``), ``--site K``
one site alone, ``--from-json`` the site a folder's ``simulation.json`` records; ``--workers``, ``--shard``
and ``--resume`` share the work out (``wmlm.data.sim.generate``). Same options, same bytes.

``--engine NAME`` picks the data engine: ``builtin`` (the default) is this simulator; any other name is an
engine a plugin registered (``wmlm_register_data_engines``, e.g. ``sionna`` from ``plugins/wmlm-sionna``),
which gets the remaining arguments and parses them itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wmlm.data.sim.generate import SiteJob, parse_shard, plan_jobs, run_jobs, select_shard
from wmlm.data.sim.preset import PRESETS, check_presets, preset_from_dict
from wmlm.data.sim.random_sites import random_site
from wmlm.data.sim.writer import INFO_FILE, SENSORS, STORE_SENSORS, check_sensors, unstorable_sensors
from wmlm.errors import ConfigError, DataError
from wmlm.registry import BUILTIN_ENGINE, UnknownNameError, get_data_engine


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
        "DeepSense 6G scenario folder OUT/<preset> (procedural sites: OUT/s<seed>_site<K>).",
    )
    parser.add_argument(
        "--engine",
        metavar="NAME",
        default=BUILTIN_ENGINE,
        help="data engine: builtin (default, this simulator) or one a plugin registers, e.g. sionna "
        "(pip install ./plugins/wmlm-sionna); `wmlm data synth --engine NAME --help` lists its options",
    )
    parser.add_argument("--out", required=True, type=Path, help="parent folder of the scenario folders")
    parser.add_argument(
        "--scenarios",
        default=None,
        help=f"comma-separated preset names (default: all of {', '.join(PRESETS)}, unless procedural sites "
        "are asked for)",
    )
    parser.add_argument(
        "--random-sites",
        metavar="N",
        help="also draw N procedural sites, OUT/s<seed>_site<K> for K = 1..N, from the documented "
        "distributions (docs/simulator_sites.md); site K depends on --seed and K only",
    )
    parser.add_argument(
        "--site",
        metavar="K",
        action="append",
        default=[],
        help="only procedural site K (repeatable): regenerate one site of a population alone",
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        action="append",
        default=[],
        type=Path,
        help="regenerate the site that a folder's simulation.json (or the folder) records (repeatable)",
    )
    parser.add_argument(
        "--workers", metavar="W", default="1", help="processes simulating sites at once (default 1)"
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="write only shard I (1-based) of N of the sites: every N-th site from the I-th",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip sites already complete with the same parameters and rebuild interrupted ones",
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
        "--format",
        choices=("deepsense", "arrays"),
        default="deepsense",
        help="deepsense: the DeepSense 6G layout (one text file per sample and field, for exchanging data); "
        "arrays: an array store site per scenario (one .npy per field, read memory-mapped; wmlm.data.store), "
        "with --sensors none (its default) or camera",
    )
    parser.add_argument(
        "--sensors",
        default=None,
        help=f"comma-separated extra sensors written beside beam power and GPS, any of {', '.join(SENSORS)}; "
        "'none' for none (default: all, none with --format arrays; with --from-json: those the folder recorded)",
    )
    return parser


def _count(option: str, text: str | None, minimum: int) -> int | None:
    """``text`` as an integer ``>= minimum`` (None stays None); ``ConfigError`` naming ``option``."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option}: expected an integer, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{option}: must be at least {minimum}, got {value}")
    return value


def _from_json(path: Path, sensors: tuple[str, ...] | None, out: Path) -> SiteJob:
    """The job that rewrites the site ``path`` (a ``simulation.json`` or its folder) records into ``out``;
    its own sequences and seed, and its sensors unless ``--sensors`` is given."""
    file = path / INFO_FILE if path.is_dir() else path
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
        preset = preset_from_dict(info["preset"])
        sequences, seed = int(info["sequences"]), int(info["seed"])
        recorded = tuple(info.get("sensors", {}))
        record = info.get("random_site")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"--from-json: {file} is not a simulation.json of wmlm data synth ({error})"
        ) from None
    chosen = check_sensors(recorded) if sensors is None else sensors
    return SiteJob(preset, seed, sequences, chosen, out / preset.name, record)


def split_engine(argv: list[str]) -> tuple[str, list[str]]:
    """The ``--engine NAME`` (or ``--engine=NAME``) of ``argv`` and the other arguments, in order.

    No ``--engine`` gives ``builtin``; a repeated one keeps the last, as argparse does. ``ConfigError`` for an
    ``--engine`` without a name.
    """
    engine, rest = BUILTIN_ENGINE, []
    items = iter(argv)
    for item in items:
        if item == "--engine":
            engine = next(items, "")
            if not engine or engine.startswith("-"):
                raise ConfigError(
                    "--engine: expected a data engine name (builtin, or one a plugin registers)"
                )
        elif item.startswith("--engine="):
            engine = item.split("=", 1)[1]
            if not engine:
                raise ConfigError(
                    "--engine: expected a data engine name (builtin, or one a plugin registers)"
                )
        else:
            rest.append(item)
    return engine, rest


def synth_command(argv: list[str]) -> int:
    """Run ``wmlm data synth`` with ``argv``; returns 0 (another ``--engine``: that engine's exit code).

    Raises ``ConfigError`` (exit 2) for an unknown preset or sensor or a bad count or shard, and
    ``OutputError`` (exit 1) for an output folder it may not write, all before anything is simulated or
    written.
    """
    engine, argv = split_engine(argv)
    if engine != BUILTIN_ENGINE:
        try:
            chosen = get_data_engine(engine)
        except UnknownNameError as error:
            raise ConfigError(f"--engine: {error}") from None
        return int(chosen.synth(argv))
    args = _parser().parse_args(argv)
    num_random = _count("--random-sites", args.random_sites, 1)
    sites = [_count("--site", text, 1) for text in args.site]
    workers = _count("--workers", args.workers, 1) or 1
    shard = parse_shard(args.shard) if args.shard is not None else None
    if num_random is not None and any(k > num_random for k in sites):
        raise ConfigError(f"--site: must be at most --random-sites {num_random}, got {max(sites)}")
    procedural = num_random is not None or sites or args.from_json
    names = [n.strip() for n in (args.scenarios or ("" if procedural else ",".join(PRESETS))).split(",")]
    names = [n for n in names if n]
    if names or args.scenarios is not None:
        check_presets(names, "--scenarios")
    try:
        text = ",".join(SENSORS) if args.sensors is None else args.sensors
        sensors = check_sensors(s.strip() for s in text.split(",") if s.strip() not in ("", "none"))
    except ValueError as error:
        raise ConfigError(f"--sensors: {error} (or none)") from None

    unstorable = unstorable_sensors(sensors)
    if args.format == "arrays" and unstorable and args.sensors is not None:
        raise ConfigError(
            f"--sensors {args.sensors}: --format arrays writes beam power, GPS, blockage and "
            f"{', '.join(STORE_SENSORS)} only; write the DeepSense layout and convert it with `wmlm data pack` "
            f"for {', '.join(unstorable)}"
        )
    if args.format == "arrays" and args.sensors is None:
        sensors = ()  # the default sensor set is the DeepSense layout's; the store's default is none
    jobs = [SiteJob(PRESETS[n], args.seed, args.sequences, sensors, args.out / n) for n in names]
    for k in sites or range(1, (num_random or 0) + 1):
        site = random_site(args.seed, k)
        jobs.append(
            SiteJob(site.preset, args.seed, args.sequences, sensors, args.out / site.name, site.record())
        )
    given = None if args.sensors is None else sensors
    for path in args.from_json:
        jobs.append(_from_json(path, given, args.out))
        unstorable = unstorable_sensors(jobs[-1].sensors)
        if args.format == "arrays" and unstorable:
            raise ConfigError(
                f"--from-json {path}: the site records sensors {', '.join(unstorable)}, which --format arrays "
                f"does not hold ({', '.join(STORE_SENSORS)} only); pass --sensors none or "
                f"--sensors {','.join(STORE_SENSORS)}, or write --format deepsense"
            )
    jobs = [dataclasses.replace(job, format=args.format) for job in jobs]
    if shard is not None:
        jobs = select_shard(jobs, *shard)
    planned = plan_jobs(jobs, args.overwrite, args.resume)  # every folder, before the first is simulated

    skipped = [job.preset.name for job, action in planned if action == "skip"]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        total = sum(job.sequences for job, action in planned if action != "skip")
        task = progress.add_task(f"simulating {len(planned) - len(skipped)} site(s), sequences", total=total)
        summaries = run_jobs(planned, workers, on_sequences=lambda n: progress.advance(task, n))
    for summary, job in zip(summaries, (job for job, action in planned if action != "skip")):
        print(
            f"{summary['name']}: {summary['samples']} samples, {summary['sequences']} sequences, "
            f"{100 * summary['blocked']:.1f} % blocked, sensors: {', '.join(job.sensors) or 'none'} "
            f"-> {summary['folder']}"
        )
    if skipped:
        print(
            f"skipped {len(skipped)} complete site(s) (--resume): {', '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else "")
        )
    return 0
