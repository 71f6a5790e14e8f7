"""Speed of the data pipeline: parsing vs the array cache, windows/s from the cache, and data wait.

    python benchmarks/pipeline.py [--config examples/quickstart.yaml] [--steps 60] [--markdown PATH]
        [-- extra wmlm fit arguments, e.g. --data.root ~/data/deepsense6g]

Measured in one run, on the data and model of ``--config`` (default: the quickstart, whose camera
frames are the most expensive field to read):

(a) Training through ``wmlm fit`` for ``--steps`` steps with Lightning's ``SimpleProfiler``. The data
    wait is the time the training loop spends in ``next()`` on the training loader
    (``train_dataloader_next``), as a fraction of that plus the time of the training steps
    (``run_training_batch``: forward, backward, optimizer). Target: < 5 %.
(b) Parsing the scenario files into arrays with the cache off, building a fresh cache, and loading it
    again (memory-mapped): seconds each, and cold / warm ratios.
(c) Windows per second out of the training loader alone (one pass, shuffled, collated batches), from the
    cached arrays.
Prints the machine, a table, and with ``--markdown`` writes it to a file.

Store mode (the array store at many sites, ``wmlm.data.store``)::

    python benchmarks/pipeline.py --store-sites 500 [--store-sequences 10] [--config benchmarks/configs/wmlm.yaml]
        [--steps 60] [--markdown docs/results/store.md]

generates ``--store-sites`` random sites with ``wmlm data synth --format arrays --sensors none`` (in a
child process, timed), loads them memory-mapped (seconds, resident memory), and trains through ``wmlm
fit`` twice: with the default ``WindowDataset`` (memory-mapped fields up to ``RESIDENT_FIELD_BYTES`` are
copied into one table) and with every field left on disk (``RESIDENT_FIELD_BYTES = 0``). Reports data wait
as a share of step time, peak RSS (``resource.getrusage``) and the resident anonymous / file-backed
memory at the end (``/proc/self/status``: file-backed pages are the page cache of the maps, which the
kernel can drop).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wmlm.data.cache import load_scenarios

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import quiet_run, report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WAIT_KEY = "[_TrainingEpochLoop].train_dataloader_next"
STEP_KEY = "run_training_batch"


def data_wait(config: Path, steps: int, workdir: Path, extra: list[str]) -> tuple[float, float, float, Any]:
    """Trains ``steps`` steps; returns (seconds waiting for data, seconds in steps, windows/s, cli)."""
    log = io.StringIO()
    cli = quiet_run(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.max_steps",
            str(steps),
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(workdir),
            "--test_after_fit",
            "false",
            *extra,
            # the profiler's report goes to a file in the work folder, not the console
            "--trainer.profiler",
            "lightning.pytorch.profilers.SimpleProfiler",
            "--trainer.profiler.dirpath",
            str(workdir),
            "--trainer.profiler.filename",
            "profile",
        ],
        log,
    )
    durations = cli.trainer.profiler.recorded_durations
    # the first fetch builds the loader's iterator, the first step warms up kernels: both left out
    wait = sum(durations[WAIT_KEY][1:])
    busy = sum(durations[STEP_KEY][1:])
    timed_steps = max(len(durations[STEP_KEY]) - 1, 1)
    windows_per_s = timed_steps * cli.datamodule.batch_size / max(wait + busy, 1e-9)
    return wait, busy, windows_per_s, cli


def parse_vs_cache(cli: Any) -> dict[str, float]:
    """Seconds to parse the run's scenarios without cache, to build a fresh cache, and to load it."""
    datamodule, model = cli.datamodule, cli.model
    wanted = model.data_fields()
    fields = [*wanted["inputs"].values(), *wanted["targets"].values()]
    names = datamodule.scenario_names
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        for label, cache in (
            ("parse, no cache", None),
            ("parse + write cache", cache_dir),
            ("load cache", cache_dir),
        ):
            started = time.perf_counter()
            load_scenarios(datamodule.root, fields, names, cache_dir=Path(cache) if cache else None)
            seconds[label] = time.perf_counter() - started
    return seconds


def loader_throughput(cli: Any, max_batches: int) -> tuple[int, float]:
    """(windows, seconds) of one pass over the training loader (at most ``max_batches`` batches)."""
    loader = cli.datamodule.train_dataloader()
    windows = 0
    started = time.perf_counter()
    for count, batch in enumerate(loader):
        windows += len(batch["index"])
        if count + 1 >= max_batches:
            break
    return windows, time.perf_counter() - started


def _memory_mib() -> dict[str, float]:
    """Peak RSS of this process and its current anonymous / file-backed resident memory, MiB."""
    import resource

    found = {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                found[key] = float(value.split()[0]) / 1024
    except OSError:
        pass
    return found


def _compare_layouts(
    args: argparse.Namespace, workdir: Path, python: list[str]
) -> list[tuple[str, str, str]]:
    """Rows comparing the first ``--store-compare`` sites written and read as DeepSense text and as arrays."""
    import os
    import subprocess

    count = min(args.store_compare, args.store_sites)
    seconds: dict[str, float] = {}
    samples = 0
    for layout in ("deepsense", "arrays"):
        out = workdir / f"compare_{layout}"
        command = [*python, "data", "synth", "--out", str(out), "--random-sites", str(count)]
        command += ["--sequences", str(args.store_sequences), "--format", layout, "--sensors", "none"]
        started = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        seconds[f"write {layout}"] = time.perf_counter() - started
        started = time.perf_counter()
        loaded = load_scenarios(out, ["beam_power", "beam_label", "position"])  # no cache: text is parsed
        seconds[f"read {layout}"] = time.perf_counter() - started
        samples = sum(len(s) for s in loaded)
    ratio = seconds["read deepsense"] / max(seconds["read arrays"], 1e-9)
    return [
        (
            f"write {count} sites: DeepSense / arrays",
            f"{seconds['write deepsense']:.1f} s / {seconds['write arrays']:.1f} s",
            "wmlm data synth in a child process (~8 s start-up included)",
        ),
        (
            f"read {count} sites: parse / map",
            f"{seconds['read deepsense']:.2f} s / {seconds['read arrays']:.3f} s",
            f"{samples} samples, beam_power + beam_label + position, no cache; {ratio:.0f} ×",
        ),
    ]


def store_main(args: argparse.Namespace, argv: list[str] | None) -> dict[str, float]:
    """The store mode (module docstring): generate, load and train on ``args.store_sites`` store sites."""
    import os
    import subprocess

    from wmlm.data import windows

    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir) / "sites"
        command = [
            sys.executable,
            "-c",
            "import sys; from wmlm.cli import main; sys.exit(main(sys.argv[1:]))",
        ]
        command += ["data", "synth", "--out", str(root), "--random-sites", str(args.store_sites)]
        command += ["--sequences", str(args.store_sequences), "--format", "arrays", "--sensors", "none"]
        started = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        generate_s = time.perf_counter() - started
        compare = _compare_layouts(args, Path(workdir), command[:3]) if args.store_compare > 0 else []
        disk_mib = sum(p.stat().st_size for p in root.rglob("*.npy")) / 2**20
        before = _memory_mib()
        started = time.perf_counter()
        scenarios = load_scenarios(root, ["beam_power", "beam_label"])
        load_s = time.perf_counter() - started
        rows = sum(len(s) for s in scenarios)
        after_load = _memory_mib()
        del scenarios
        extra = ["--data.root", str(root), "--data.test_fraction", "0", *args.extra]
        results: dict[str, dict[str, float]] = {}
        default_limit = windows.RESIDENT_FIELD_BYTES
        # default first: peak RSS only grows, so the run that copies everything into RAM comes second
        for label, limit in (("default", default_limit), ("all in RAM", 2**62)):
            windows.RESIDENT_FIELD_BYTES = limit
            try:
                run_dir = Path(workdir) / label.replace(" ", "_")
                started = time.perf_counter()
                wait, busy, rate, _ = data_wait(args.config, args.steps, run_dir, extra)
                results[label] = {
                    "wait": wait / max(wait + busy, 1e-9),
                    "step_ms": 1000 * busy / max(args.steps - 1, 1),
                    "wait_ms": 1000 * wait / max(args.steps - 1, 1),
                    "windows_per_s": rate,
                    "fit_s": time.perf_counter() - started,
                    **_memory_mib(),
                }
            finally:
                windows.RESIDENT_FIELD_BYTES = default_limit
    samples = rows
    table = [
        (
            "sites",
            f"{args.store_sites}",
            f"{args.store_sequences} passes each, --format arrays --sensors none",
        ),
        ("samples", f"{samples}", f"{disk_mib:.1f} MiB of .npy on disk"),
        ("generate", f"{generate_s:.1f} s", f"{samples / generate_s:.0f} samples/s, one process"),
        ("load (memory-mapped)", f"{load_s:.2f} s", "load_scenarios of beam_power + beam_label, all sites"),
        (
            "RSS growth by loading",
            f"{after_load.get('RssAnon', 0) - before.get('RssAnon', 0):.1f} MiB anon",
            f"{after_load.get('RssFile', 0) - before.get('RssFile', 0):.1f} MiB file-backed",
        ),
        (
            "peak RSS before loading",
            f"{before['peak_rss']:.0f} MiB",
            "Python, torch, Lightning, wmlm imported",
        ),
        *compare,
    ]
    for label, r in results.items():
        note = (
            f"memory-mapped fields > {default_limit / 2**20:.0f} MiB read from the maps"
            if label == "default"
            else "every field copied into one table (before the store)"
        )
        table += [
            (
                f"({label}) data wait / (data wait + step)",
                f"{100 * r['wait']:.2f} %",
                f"target < 5 %; {note}",
            ),
            (f"({label}) data wait per step", f"{r['wait_ms']:.2f} ms", f"{args.steps - 1} timed steps"),
            (f"({label}) training step", f"{r['step_ms']:.2f} ms", "forward + backward + optimizer"),
            (
                f"({label}) setup + fit",
                f"{r['fit_s']:.1f} s",
                f"{r['windows_per_s']:.0f} windows/s while training",
            ),
            (
                f"({label}) peak RSS so far",
                f"{r['peak_rss']:.0f} MiB",
                f"now {r.get('RssAnon', 0):.0f} MiB anon + {r.get('RssFile', 0):.0f} MiB file-backed",
            ),
        ]
    report(
        f"Array store at {args.store_sites} sites ({args.config.name})",
        ["quantity", "value", "note"],
        table,
        "pipeline.py",
        argv,
        args.markdown,
    )
    return {
        "generate_s": generate_s,
        "load_s": load_s,
        "samples": float(samples),
        **{f"{label}_{k}": v for label, r in results.items() for k, v in r.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--steps", type=int, default=60, help="training steps profiled")
    parser.add_argument("--loader-batches", type=int, default=200, help="batches read in (c)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--store-sites", type=int, default=0, help="store mode: this many random sites")
    parser.add_argument("--store-sequences", type=int, default=10, help="store mode: passes per site")
    parser.add_argument(
        "--store-compare",
        type=int,
        default=100,
        help="store mode: also write and read this many of the sites as DeepSense text (0: skip)",
    )
    parser.add_argument("extra", nargs="*", help="more `wmlm fit` arguments (after --)")
    args = parser.parse_args(argv)
    if args.store_sites > 0:
        return store_main(args, argv)
    with tempfile.TemporaryDirectory() as workdir:
        wait, busy, train_rate, cli = data_wait(args.config, args.steps, Path(workdir), args.extra)
        cache = parse_vs_cache(cli)
        windows, loader_seconds = loader_throughput(cli, args.loader_batches)
    fraction = wait / max(wait + busy, 1e-9)
    rows = [
        ("data wait / (data wait + step)", f"{100 * fraction:.2f} %", "target < 5 %"),
        (
            "data wait per step",
            f"{1000 * wait / max(args.steps - 1, 1):.2f} ms",
            f"{args.steps - 1} timed steps",
        ),
        ("training step", f"{1000 * busy / max(args.steps - 1, 1):.2f} ms", "forward + backward + optimizer"),
        ("training windows/s", f"{train_rate:.0f}", "model + data"),
        (
            "loader windows/s from the cache",
            f"{windows / loader_seconds:.0f}",
            f"{windows} windows, no model",
        ),
        *((label, f"{s:.2f} s", "") for label, s in cache.items()),
        ("parse / load cache", f"{cache['parse, no cache'] / cache['load cache']:.1f} ×", ""),
    ]
    report(
        f"Data pipeline speed ({args.config.name})",
        ["quantity", "value", "note"],
        rows,
        "pipeline.py",
        argv,
        args.markdown,
    )
    return {"wait_fraction": fraction, "loader_windows_per_s": windows / loader_seconds, **cache}


if __name__ == "__main__":
    main(sys.argv[1:])
