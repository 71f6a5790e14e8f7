"""Efficiency of WMLM on this machine: Lightning's training overhead, inference latency, throughput.

    python benchmarks/efficiency.py [--steps 30] [--batch-size 64] [--preset small] [--markdown PATH]

Everything runs in one process on synthetic in-memory batches laid out like ``WindowDataset`` batches
(``beam [B, P, 64]`` linear power, ``gps [B, P, 2]`` metres, ``mask``, ``target.beam [B, F]`` beam
indices, ``index``, ``scenario_id``), so data loading costs nothing and only the model and the loop are
measured:

(a) Stage-2 training steps of the same ``WMLM`` (same initial weights, batches, AdamW settings and step
    count) through a Lightning ``Trainer`` and through a hand-written PyTorch loop. A step's time is the
    interval from the start of one step to the start of the next, so everything the loop does between
    steps counts; a run's figure is its median step after ``--warmup`` untimed ones. The loops run
    ``--repeats`` times in adjacent pairs, in alternating order (LP, PL, LP, ...); the ratio is the median
    over pairs of Lightning / plain, so load from other processes, which comes and goes over seconds,
    mostly hits both runs of a pair. Target: Lightning / plain <= 1.05.
(b) Inference latency (``model.eval()``, ``torch.inference_mode``) at batch 1 and batch 256: median and
    90th percentile of ``--runs`` forward passes after 10 untimed ones, in milliseconds.
(c) Training throughput in windows per second, from (a).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from wmlm.beams import NUM_BEAMS
from wmlm.data.windows import collate_batch
from wmlm.model.wmlm import WMLM

PAST, FUTURE = 5, 3


def machine() -> dict[str, Any]:
    """The machine the numbers come from: CPU, cores, torch threads and versions."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],
    }


def synthetic_batch(batch_size: int, generator: torch.Generator, first_index: int = 0) -> dict[str, Any]:
    """One batch in the layout of ``WindowDataset.__getitems__`` with random but valid values."""
    b = batch_size
    return {
        "beam": torch.rand(b, PAST, NUM_BEAMS, generator=generator),  # linear power, > 0
        "gps": 30.0 * torch.randn(b, PAST, 2, generator=generator),  # east/north in metres
        "mask": {"beam": torch.ones(b, PAST, dtype=torch.bool), "gps": torch.ones(b, PAST, dtype=torch.bool)},
        "target": {"beam": torch.randint(0, NUM_BEAMS, (b, FUTURE), generator=generator)},
        "index": torch.arange(first_index, first_index + b),
        "scenario_id": torch.zeros(b, dtype=torch.long),
    }


def synthetic_batches(count: int, batch_size: int, seed: int = 0) -> list[dict[str, Any]]:
    generator = torch.Generator().manual_seed(seed)
    return [synthetic_batch(batch_size, generator, i * batch_size) for i in range(count)]


def build_model(preset: str, seed: int = 0) -> WMLM:
    """Default modalities (beam, gps) and head (beam), stage 2 only (``align_epochs=0``)."""
    torch.manual_seed(seed)
    return WMLM(preset=preset, past=PAST, future=FUTURE, align_epochs=0, adapt_epochs=1)


def loader(batches: list[dict[str, Any]]) -> DataLoader:
    """Serves the prepared batches in order, unchanged (no workers, no collation)."""
    return DataLoader(batches, batch_size=None, shuffle=False, collate_fn=collate_batch)


def step_seconds(stamps: list[float], warmup: int) -> list[float]:
    """Durations of the steps after ``warmup``, from the start time of every step and the end of the last."""
    return [b - a for a, b in zip(stamps[:-1], stamps[1:])][warmup:]


class StepTimer(pl.Callback):
    """Start time of every training step and end time of the last one (``time.perf_counter``, s)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.end = time.perf_counter()


def lightning_steps(model: WMLM, batches: list[dict[str, Any]], warmup: int) -> list[float]:
    """Seconds of each step after ``warmup`` of ``Trainer.fit`` over ``batches`` (one step per batch)."""
    model.configure_callbacks = list  # no checkpoint callback: saving files is not training
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        max_steps=len(batches),
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, train_dataloaders=loader(batches))
    if trainer.global_step != len(batches):
        raise RuntimeError(f"Lightning ran {trainer.global_step} steps, expected {len(batches)}")
    return step_seconds([*timer.starts, timer.end], warmup)


def plain_steps(model: WMLM, batches: list[dict[str, Any]], warmup: int) -> list[float]:
    """Seconds of each step after ``warmup`` of a hand-written loop doing what ``WMLM`` does in stage 2.

    The same AdamW settings and per-step warm-up + cosine schedule shape as ``WMLM.configure_optimizers``
    (the schedule's values do not change the cost), the loss the same weighted sum of head losses.
    """
    model.train()
    model.alignment.requires_grad_(False)  # as WMLM.on_train_epoch_start does in stage 2
    optimizer = torch.optim.AdamW(model.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    total = len(batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
    )
    stamps = []
    for batch in loader(batches):
        stamps.append(time.perf_counter())
        outputs = model(batch)
        loss = sum(model.loss_weights[n] * model.heads[n].loss(out, batch) for n, out in outputs.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    stamps.append(time.perf_counter())
    return step_seconds(stamps, warmup)


def latency_ms(model: WMLM, batch: dict[str, Any], runs: int, untimed: int = 10) -> tuple[float, float]:
    """Median and 90th percentile of ``runs`` forward passes of ``batch``, in milliseconds."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(untimed + runs):
            start = time.perf_counter()
            model(batch)
            if i >= untimed:
                times.append(1e3 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[min(int(0.9 * len(times)), len(times) - 1)]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """All measurements: ``{"training": {...}, "latency_ms": {...}, "parameters": n}``."""
    batches = synthetic_batches(args.warmup + args.steps, args.batch_size)
    initial = build_model(args.preset)
    runs: dict[str, list[list[float]]] = {"lightning": [], "plain": []}
    loops = {"lightning": lightning_steps, "plain": plain_steps}
    for repeat in range(args.repeats):
        for name in ("lightning", "plain") if repeat % 2 == 0 else ("plain", "lightning"):
            runs[name].append(loops[name](copy.deepcopy(initial), batches, args.warmup))
    lightning_runs = [statistics.median(r) for r in runs["lightning"]]
    plain_runs = [statistics.median(r) for r in runs["plain"]]
    ratios = sorted(a / b for a, b in zip(lightning_runs, plain_runs))
    lightning_step, plain_step = statistics.median(lightning_runs), statistics.median(plain_runs)
    training = {
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "lightning_ms_per_step": 1e3 * lightning_step,
        "plain_ms_per_step": 1e3 * plain_step,
        "ratio": statistics.median(ratios),
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
        "lightning_total_s": sum(map(sum, runs["lightning"])),
        "plain_total_s": sum(map(sum, runs["plain"])),
        "lightning_windows_per_s": args.batch_size / lightning_step,
        "plain_windows_per_s": args.batch_size / plain_step,
    }
    latency = {}
    generator = torch.Generator().manual_seed(1)
    for batch_size in (1, 256):
        median, p90 = latency_ms(initial, synthetic_batch(batch_size, generator), args.runs)
        latency[str(batch_size)] = {"median": median, "p90": p90}
    parameters = sum(p.numel() for p in initial.parameters())
    return {"training": training, "latency_ms": latency, "parameters": parameters}


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's start-up messages and the expected warnings (no validation data, no logger)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for log in loggers:
            log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels):
                log.setLevel(level)


def rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """``(measure, value)`` rows shared by the terminal and Markdown tables."""
    t, lat = results["training"], results["latency_ms"]
    return [
        (
            f"training step, Lightning Trainer (batch {t['batch_size']}, median)",
            f"{t['lightning_ms_per_step']:.2f} ms",
        ),
        (
            f"training step, plain PyTorch loop (batch {t['batch_size']}, median)",
            f"{t['plain_ms_per_step']:.2f} ms",
        ),
        (
            f"Lightning / plain, median of {t['repeats']} pairs (target <= 1.05)",
            f"{t['ratio']:.3f} (pairs {t['ratio_min']:.3f} to {t['ratio_max']:.3f})",
        ),
        (
            f"timed steps in total, Lightning / plain ({t['repeats']} x {t['steps']} steps)",
            f"{t['lightning_total_s']:.1f} s / {t['plain_total_s']:.1f} s",
        ),
        ("training throughput, Lightning", f"{t['lightning_windows_per_s']:,.0f} windows/s"),
        ("training throughput, plain loop", f"{t['plain_windows_per_s']:,.0f} windows/s"),
        *(
            (f"inference latency, batch {b} (median / p90)", f"{v['median']:.2f} / {v['p90']:.2f} ms")
            for b, v in lat.items()
        ),
        (
            "inference throughput, batch 256 (median)",
            f"{256 / (lat['256']['median'] / 1e3):,.0f} windows/s",
        ),
    ]


def markdown(results: dict[str, Any], command: str, title: str) -> str:
    m = results["machine"]
    lines = [
        f"# {title}",
        "",
        f"{datetime.date.today()}; {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
        f"torch {m['torch']}, Lightning {m['lightning']}, Python {m['python']}; 1-minute load average "
        f"{m['load_average_1min']:.1f} before and {results['load_average_1min_after']:.1f} after the run "
        "(other processes included).",
        "",
        "```bash",
        command,
        "```",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows(results)),
        "",
    ]
    return "\n".join(lines)


def _table(title: str, pairs: Iterable[tuple[str, str]]) -> Table:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in pairs:
        table.add_row(name, value)
    return table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps before them")
    parser.add_argument("--repeats", type=int, default=6, help="pairs of runs (Lightning, plain)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (windows)")
    parser.add_argument("--preset", default="small", help="backbone preset (wmlm.model.backbone.PRESETS)")
    parser.add_argument("--runs", type=int, default=200, help="timed forward passes per latency figure")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    if min(args.steps, args.repeats, args.batch_size, args.runs) < 1 or args.warmup < 0:
        parser.error("--steps, --repeats, --batch-size and --runs must be >= 1, --warmup >= 0")

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    info = machine()
    console.print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads, "
        f"torch {info['torch']}, Lightning {info['lightning']}, load average {info['load_average_1min']:.1f}"
    )
    started = time.perf_counter()
    with quiet_lightning():
        results = {"machine": info, "preset": args.preset, **measure(args)}
    results["load_average_1min_after"] = os.getloadavg()[0]
    title = (
        f"WMLM efficiency, preset {args.preset} ({results['parameters']:,} parameters), beam + gps -> beam"
    )
    console.print(_table(title, rows(results)))
    console.print(
        f"total {time.perf_counter() - started:.0f} s; load average after: {results['load_average_1min_after']:.1f}"
    )
    if args.markdown:
        command = "python benchmarks/efficiency.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, command.strip(), title))
        console.print(f"wrote {args.markdown}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
