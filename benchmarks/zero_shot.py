"""Zero-shot beam prediction: train on every scenario under one root, test on every scenario under another.

    python benchmarks/zero_shot.py --train-root A --test-root B [--json results.json]

Trains the benchmark's wmlm configuration (``configs/wmlm.yaml``) and its best GRU (``configs/gru.yaml``)
on all scenario folders under ``A`` (model selection on 10 % of A's vehicle passes only), then tests them,
and the repeat-last-beam and kinematic baselines, on each scenario folder under ``B``, which nothing saw
before. Prints one table; with ``--json`` also writes
``{model: {scenario: {"top1": [t1, t2, t3], "top3": [t1, t2, t3], "dba": x}}}``.
Any folders in the DeepSense layout work (``root/<name>/<name>.csv``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import (
    GRU_CONFIG,
    SMOKE_ARGS,
    SMOKE_MODEL,
    UNTRAINED,
    WMLM_CONFIG,
    machine,
    rich_table,
    test,
    train,
)  # noqa: E402

from wmlm.data.deepsense import find_scenarios  # noqa: E402


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
    console.print(f"machine: {machine()}")
    log = io.StringIO()
    started = time.perf_counter()
    smoke = SMOKE_ARGS if args.smoke else []
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        for name, config in (("wmlm", WMLM_CONFIG), ("gru", GRU_CONFIG)):
            extra = [*smoke, *(SMOKE_MODEL[name] if args.smoke else [])]
            ckpt = train(config, args.train_root, workdir / name, extra, log)
            console.print(f"{name}: trained in {time.perf_counter() - started:.0f} s; best checkpoint {ckpt}")
            results[name] = {
                s: test(
                    config, args.test_root, s, workdir / "test" / name / s, [*extra, "--ckpt_path", ckpt], log
                )
                for s in test_scenarios
            }
        for name, class_path in UNTRAINED.items():
            extra = ["--model", class_path, *smoke]
            results[name] = {
                s: test(GRU_CONFIG, args.test_root, s, workdir / "test" / name / s, extra, log)
                for s in test_scenarios
            }
    console.print(rich_table(results, f"zero-shot: trained on {args.train_root}, tested on {args.test_root}"))
    console.print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        console.print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
