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


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--steps", type=int, default=60, help="training steps profiled")
    parser.add_argument("--loader-batches", type=int, default=200, help="batches read in (c)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("extra", nargs="*", help="more `wmlm fit` arguments (after --)")
    args = parser.parse_args(argv)
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
