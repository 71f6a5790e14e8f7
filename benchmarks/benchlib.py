"""Shared pieces of the benchmark scripts: quiet CLI runs, metric summaries, tables and plots."""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import torch
from rich.console import Console
from rich.table import Table

from wmlm.cli import run
from wmlm.deploy.site_replay import (  # noqa: F401 - the benchmarks' online settings, one home
    ONLINE_VARIANTS,
    SITE_MEMORY,
    SITE_PRIOR,
    online_options,
    site_stream,
)

CONFIGS = Path(__file__).parent / "configs"
WMLM_CONFIG = CONFIGS / "wmlm.yaml"
GRU_CONFIG = CONFIGS / "gru.yaml"
UNTRAINED = {
    "repeat_last": "wmlm.model.baselines.RepeatLastBeam",
    "kinematic": "wmlm.model.baselines.KinematicBaseline",
}
# --smoke: seconds-long runs for the test suite (tiny model, a few batches); the numbers mean nothing
SMOKE_ARGS = [
    "--trainer.max_epochs",
    "1",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.limit_val_batches",
    "1",
    "--data.batch_size",
    "8",
    "--data.val_fraction",
    "0.3",
]
SMOKE_MODEL = {
    "wmlm": [
        "--model.preset",
        "tiny",
        "--model.align_epochs",
        "0",
        "--model.adapt_epochs",
        "1",
        "--model.embed_dim",
        "16",
    ],
    "gru": ["--model.hidden_size", "8"],
}

# the data augmentations of benchmarks/configs/wmlm.yaml, as arguments for another model's config (the GRU),
# so a comparison separates what the model contributes from what the augmentations do
SAME_AUGMENTATIONS = [
    "--data.train_strides",
    "[1, 2]",
    "--model.augmentations",
    "[{class_path: wmlm.model.augment.BeamFlip}]",
]

Scores = dict[str, list[float] | float]  # {"top1": [t1, t2, t3], "top3": [...], "dba": x}


def machine() -> str:
    """One line naming the machine the numbers come from."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}"
    )


def quiet_run(args: list[str], log: io.TextIOBase):
    """``wmlm.cli.run`` with Lightning's own printing sent to ``log``."""
    # the script's own command line is not the CLI's: hide it, or LightningCLI warns about both
    with contextlib.redirect_stdout(log), mock.patch.object(sys, "argv", sys.argv[:1]):
        return run(args)


def summarise(metrics: dict, future: int = 3) -> Scores:
    return {
        "top1": [float(metrics[f"test/beam/top1_t{s}"]) for s in range(1, future + 1)],
        "top3": [float(metrics[f"test/beam/top3_t{s}"]) for s in range(1, future + 1)],
        "dba": float(metrics["test/beam/dba"]),
    }


def train(
    config: Path,
    root: Path,
    out: Path,
    args: Sequence[str],
    log: io.TextIOBase,
    scenarios: Sequence[str] | None = None,
    test_fraction: float = 0.0,
) -> str:
    """Fit ``config`` on scenarios under ``root``, split by sequence (10 % validation, ``test_fraction``
    held out for in-distribution tests); returns the best checkpoint."""
    chosen = ["--data.scenarios", f"[{', '.join(scenarios)}]"] if scenarios else []
    cli = quiet_run(
        [
            "fit",
            "--config",
            str(config),
            "--data.root",
            str(root),
            *chosen,
            "--data.split",
            "sequence",
            "--data.test_fraction",
            str(test_fraction),
            "--data.val_fraction",
            "0.1",
            "--trainer.default_root_dir",
            str(out),
            "--test_after_fit",
            "false",
            *args,
        ],
        log,
    )
    best = cli.trainer.checkpoint_callback.best_model_path
    if not best:
        raise RuntimeError(f"no best checkpoint from {config} (was the validation split empty?); see {out}")
    return best


def test(
    config: Path,
    root: Path,
    scenario: str,
    out: Path,
    args: Sequence[str],
    log: io.TextIOBase,
    held_out: bool = True,
) -> Scores:
    """Test on one scenario under ``root``: all of its windows (``held_out``) or its test sequences."""
    split = (
        ["--data.split", "scenario", "--data.test_scenarios", f"[{scenario}]"]
        if held_out
        else ["--data.split", "sequence"]
    )
    cli = quiet_run(
        [
            "test",
            "--config",
            str(config),
            "--data.root",
            str(root),
            "--data.scenarios",
            f"[{scenario}]",
            *split,
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(out),
            *args,
        ],
        log,
    )
    return summarise(cli.trainer.callback_metrics)


def mean_scores(rows: Sequence[Scores]) -> Scores:
    steps = len(rows[0]["top1"])  # type: ignore[arg-type]
    return {
        "top1": [sum(r["top1"][s] for r in rows) / len(rows) for s in range(steps)],  # type: ignore[index]
        "top3": [sum(r["top3"][s] for r in rows) / len(rows) for s in range(steps)],  # type: ignore[index]
        "dba": sum(r["dba"] for r in rows) / len(rows),  # type: ignore[misc]
    }


def with_means(results: dict[str, dict[str, Scores]]) -> dict[str, dict[str, Scores]]:
    """``results`` with a ``mean`` entry (over scenarios) added per model."""
    return {m: {**per, "mean": mean_scores(list(per.values()))} for m, per in results.items()}


def _cells(scores: Scores) -> list[str]:
    return [f"{v:.3f}" for v in [*scores["top1"], *scores["top3"], scores["dba"]]]  # type: ignore[misc]


HEADER = ["scenario", "model", "top-1 t+1", "t+2", "t+3", "top-3 t+1", "t+2", "t+3", "DBA"]


def rich_table(results: dict[str, dict[str, Scores]], title: str) -> Table:
    """Rows: scenario × model (``mean`` last); columns: top-1 and top-3 per future step, DBA."""
    table = Table(title=title)
    for column in HEADER:
        table.add_column(column, justify="left" if column in ("scenario", "model") else "right")
    full = with_means(results)
    for scenario in next(iter(full.values())):
        for model, per in full.items():
            table.add_row(scenario, model, *_cells(per[scenario]))
        table.add_section()
    return table


def markdown_table(results: dict[str, dict[str, Scores]]) -> str:
    full = with_means(results)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for scenario in next(iter(full.values())):
        for model, per in full.items():
            name = f"**{scenario}**" if scenario == "mean" else scenario
            lines.append("| " + " | ".join([name, model, *_cells(per[scenario])]) + " |")
    return "\n".join(lines) + "\n"


def bar_plot(results: dict[str, dict[str, Scores]], metric: str, path: Path, title: str) -> None:
    """Grouped bars per scenario (mean over future steps of ``metric``), one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = with_means(results)
    scenarios = list(next(iter(full.values())))
    models = list(full)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(scenarios)), 3.5))
    for i, model in enumerate(models):
        values = [sum(full[model][s][metric]) / len(full[model][s][metric]) for s in scenarios]  # type: ignore[arg-type]
        ax.bar([x + i * width for x in range(len(scenarios))], values, width, label=model)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(scenarios))], scenarios)
    ax.set_ylabel(f"{metric} accuracy (mean of 3 steps)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    script: str,
    argv: Sequence[str] | None,
    markdown: Path | None,
    note: str = "",
) -> None:
    """Print ``rows`` as a table and, with ``markdown``, write them there under ``title`` with the date,
    the machine, ``note`` and the command that reproduces them (``python benchmarks/SCRIPT ARGV``)."""
    table = Table(title=title)
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if markdown is None:
        return
    command = f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"# {title}",
        "",
        f"{datetime.date.today()}, {machine()}{note}.",
        "",
        f"```bash\n{command}\n```",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(lines))
