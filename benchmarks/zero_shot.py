"""Zero-shot beam prediction: train on every scenario under one root, test on every scenario under another.

    python benchmarks/zero_shot.py --train-root A --test-root B [--json results.json]

Trains the benchmark's wmlm configuration and its best GRU on all scenario folders under ``A`` (model
selection on a validation share of A's vehicle passes only), then tests both, and the repeat-last-beam and
kinematic baselines, on each scenario folder under ``B``, which nothing saw before. Prints one table; with
``--json`` also writes ``{model: {scenario: {"top1": [t1, t2, t3], "top3": [...], "dba": x}}}``.
Any folders in the DeepSense layout work (``root/<name>/<name>.csv``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wmlm.cli import run
from wmlm.data.deepsense import find_scenarios

CONFIGS = Path(__file__).parent / "configs"
TRAINED = {"wmlm": CONFIGS / "wmlm.yaml", "gru": CONFIGS / "gru.yaml"}
UNTRAINED = {
    "repeat_last": "wmlm.model.baselines.RepeatLastBeam",
    "kinematic": "wmlm.model.baselines.KinematicBaseline",
}
# --smoke: seconds-long runs for the test suite (tiny model, a few batches); numbers are meaningless
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
SMOKE_WMLM = ["--model.preset", "tiny", "--model.adapt_epochs", "1", "--model.embed_dim", "16"]
SMOKE_GRU = ["--model.hidden_size", "8"]


def quiet_run(args: list[str], log: io.TextIOBase):
    """``wmlm.cli.run`` with Lightning's own printing sent to ``log``."""
    with contextlib.redirect_stdout(log):
        return run(args)


def summarise(metrics: dict, future: int = 3) -> dict:
    return {
        "top1": [float(metrics[f"test/beam/top1_t{s}"]) for s in range(1, future + 1)],
        "top3": [float(metrics[f"test/beam/top3_t{s}"]) for s in range(1, future + 1)],
        "dba": float(metrics["test/beam/dba"]),
    }


def train(name: str, train_root: Path, out: Path, extra: list[str], log: io.TextIOBase) -> str:
    cli = quiet_run(
        [
            "fit",
            "--config",
            str(TRAINED[name]),
            "--data.root",
            str(train_root),
            "--data.split",
            "sequence",
            "--data.test_fraction",
            "0",
            "--data.val_fraction",
            "0.1",
            "--trainer.default_root_dir",
            str(out / name),
            "--test_after_fit",
            "false",
            *extra,
        ],
        log,
    )
    checkpoint = cli.trainer.checkpoint_callback
    if not checkpoint.best_model_path:
        raise RuntimeError(f"{name}: no best checkpoint (was the validation split empty?); see {out / name}")
    return checkpoint.best_model_path


def test_on(
    config: Path, scenario_root: Path, scenario: str, out: Path, extra: list[str], log: io.TextIOBase
) -> dict:
    cli = quiet_run(
        [
            "test",
            "--config",
            str(config),
            "--data.root",
            str(scenario_root),
            "--data.scenarios",
            f"[{scenario}]",
            "--data.split",
            "scenario",
            "--data.test_scenarios",
            f"[{scenario}]",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(out),
            *extra,
        ],
        log,
    )
    return summarise(cli.trainer.callback_metrics)


def table(results: dict[str, dict[str, dict]], title: str) -> Table:
    out = Table(title=title)
    for column in ("scenario", "model", "top1 t1", "t2", "t3", "top3 t1", "t2", "t3", "DBA"):
        out.add_column(column, justify="left" if column in ("scenario", "model") else "right")
    scenarios = list(next(iter(results.values())))
    for scenario in [*scenarios, "mean"]:
        for model, per_scenario in results.items():
            if scenario == "mean":
                rows = list(per_scenario.values())
                top1 = [sum(r["top1"][s] for r in rows) / len(rows) for s in range(3)]
                top3 = [sum(r["top3"][s] for r in rows) / len(rows) for s in range(3)]
                dba = sum(r["dba"] for r in rows) / len(rows)
            else:
                top1, top3, dba = (
                    per_scenario[scenario]["top1"],
                    per_scenario[scenario]["top3"],
                    per_scenario[scenario]["dba"],
                )
            out.add_row(scenario, model, *(f"{v:.3f}" for v in [*top1, *top3, dba]))
        out.add_section()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-root", type=Path, required=True, help="folder of training scenario folders")
    parser.add_argument("--test-root", type=Path, required=True, help="folder of held-out scenario folders")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="checkpoints and logs (default: a temporary folder)")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)

    test_scenarios = [p.name for p in find_scenarios(args.test_root)]
    train_scenarios = [p.name for p in find_scenarios(args.train_root)]
    console = Console()
    console.print(
        f"train: {train_scenarios} under {args.train_root}\ntest:  {test_scenarios} under {args.test_root}"
    )
    log = io.StringIO()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        results: dict[str, dict[str, dict]] = {}
        for name in TRAINED:
            extra = (SMOKE_ARGS + (SMOKE_WMLM if name == "wmlm" else SMOKE_GRU)) if args.smoke else []
            ckpt = train(name, args.train_root, workdir, extra, log)
            console.print(f"{name}: trained ({time.perf_counter() - started:.0f} s), best checkpoint {ckpt}")
            results[name] = {
                s: test_on(
                    TRAINED[name],
                    args.test_root,
                    s,
                    workdir / "test" / name / s,
                    [*extra, "--ckpt_path", ckpt],
                    log,
                )
                for s in test_scenarios
            }
        for name, class_path in UNTRAINED.items():
            extra = ["--model", class_path, *(SMOKE_ARGS if args.smoke else [])]
            results[name] = {
                s: test_on(TRAINED["gru"], args.test_root, s, workdir / "test" / name / s, extra, log)
                for s in test_scenarios
            }
    console.print(table(results, f"zero-shot: trained on {args.train_root}, tested on {args.test_root}"))
    console.print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        console.print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
