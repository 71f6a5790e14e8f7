"""Edge fine-tuning on real sites never seen in pretraining: accuracy vs number of fine-tuning windows.

    python benchmarks/edge_finetune.py --root ../shared/data/deepsense6g --markdown docs/results/edge_finetune.md

For every held-out site (leave one site out, ``--held-out``; default all four development sites):
  1. pretrain the benchmark's wmlm configuration (``benchmarks/configs/wmlm.yaml``) on the other sites
     (or take ``--pretrained SITE=CKPT``, e.g. the leave-one-site-out checkpoints of real_deepsense.py);
  2. split the held-out site's vehicle passes (seed 0) into fine-tuning passes, 10 % validation and 50 %
     test passes, as ``examples/edge_finetune.yaml`` does;
  3. fine-tune with ``examples/edge_finetune.yaml`` on the first N windows of the fine-tuning passes (whole
     passes in a seeded random order), for every N in ``--windows``, once with frozen encoders and once
     with the transformer frozen as well (heads only), and test the final weights on the test passes.
     N = 0 is the pretrained model tested as is (zero-shot).
Prints one table (top-1 / top-3 mean over the 3 future steps, DBA; one row per site, N and variant) and
with ``--markdown`` writes it with the command, date and machine.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import SMOKE_ARGS, SMOKE_MODEL, WMLM_CONFIG, Scores, quiet_run, report, summarise, train  # noqa: E402
from real_deepsense import DEV_SITES  # noqa: E402

FINETUNE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "edge_finetune.yaml"
VARIANTS = {"encoders frozen": "false", "heads only": "true"}  # value of model.freeze_backbone
Row = dict[str, str | int | float]


def site_args(root: Path, scenarios: list[str], out: Path, pretrained: str) -> list[str]:
    """Arguments shared by every run on the held-out site: its data, its split, the pretrained weights."""
    return [
        "--config",
        str(FINETUNE_CONFIG),
        "--data.root",
        str(root),
        "--data.scenarios",
        f"[{', '.join(scenarios)}]",
        "--trainer.default_root_dir",
        str(out),
        "--model.init_args.init_from",
        pretrained,
    ]


def zero_shot(common: list[str], smoke: list[str], pretrained: str, log: io.TextIOBase) -> tuple[Scores, int]:
    """The pretrained model's test scores, and how many fine-tuning windows the site has in all."""
    args = ["test", *common, *smoke, "--data.train_windows", "null", "--trainer.logger", "false"]
    cli = quiet_run([*args, "--ckpt_path", pretrained], log)
    return summarise(cli.trainer.callback_metrics), len(cli.datamodule.datasets["train"])


def finetune(
    common: list[str], smoke: list[str], windows: int, freeze_backbone: str, log: io.TextIOBase
) -> tuple[Scores, int]:
    """Fine-tunes on ``windows`` windows; returns the final weights' test scores and the windows used."""
    cli = quiet_run(
        [
            "fit",
            *common,
            *smoke,
            "--data.train_windows",
            str(windows),
            "--model.init_args.freeze_backbone",
            freeze_backbone,
            "--test_after_fit",
            "false",
        ],
        log,
    )
    # the final weights: with a handful of windows, picking a checkpoint on validation would use more
    # labelled data from the new site than the fine-tuning budget says
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return summarise(cli.trainer.callback_metrics), len(cli.datamodule.datasets["train"])


def row(site: str, windows: int, variant: str, scores: Scores) -> Row:
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {
        "site": site,
        "windows": windows,
        "variant": variant,
        "top1": mean(scores["top1"]),  # type: ignore[arg-type]
        "top3": mean(scores["top3"]),  # type: ignore[arg-type]
        "dba": float(scores["dba"]),  # type: ignore[arg-type]
    }


def run_site(
    root: Path,
    site: str,
    pretrained: str | None,
    sites: dict[str, list[str]],
    counts: list[int],
    workdir: Path,
    smoke: bool,
    log: io.TextIOBase,
) -> list[Row]:
    pretrain_on = [s for other, names in sites.items() if other != site for s in names]
    if pretrained is None:
        smoke_pretrain = [*SMOKE_ARGS, *SMOKE_MODEL["wmlm"]] if smoke else []
        pretrained = train(
            WMLM_CONFIG, root, workdir / "pretrain", smoke_pretrain, log, scenarios=pretrain_on
        )
    smoke_ft = [*SMOKE_ARGS, "--model.preset", "tiny", "--model.embed_dim", "16", "--model.adapt_epochs", "1"]
    smoke_ft = smoke_ft if smoke else []
    common = site_args(root, sites[site], workdir / "finetune", pretrained)
    scores, pool = zero_shot(common, smoke_ft, pretrained, log)
    rows = [row(site, 0, "pretrained, zero-shot", scores)]
    # a count beyond the site's fine-tuning passes means all of them, once
    for count in sorted({min(count, pool) for count in counts}):
        for variant, freeze_backbone in VARIANTS.items():
            scores, used = finetune(common, smoke_ft, count, freeze_backbone, log)
            rows.append(row(site, used, variant, scores))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, required=True, help="folder of the DeepSense scenario folders")
    parser.add_argument("--held-out", default=",".join(DEV_SITES), help="comma list of sites to hold out")
    parser.add_argument(
        "--sites", nargs="*", help="site map as SITE=scen1,scen2 ... (default: the six dev scenarios)"
    )
    parser.add_argument("--windows", default="50,200,1000", help="comma list of fine-tuning window counts")
    parser.add_argument(
        "--pretrained",
        nargs="*",
        default=[],
        help="SITE=CKPT: a checkpoint of benchmarks/configs/wmlm.yaml trained without SITE (skips pretraining)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    sites = (
        {k: v.split(",") for k, v in (item.split("=", 1) for item in args.sites)} if args.sites else DEV_SITES
    )
    counts = [int(c) for c in args.windows.split(",")]
    held_out = args.held_out.split(",")
    unknown = [s for s in held_out if s not in sites]
    if unknown:
        parser.error(f"--held-out: unknown site(s) {unknown}; sites are {list(sites)}")
    pretrained = dict(item.split("=", 1) for item in args.pretrained)
    log = io.StringIO()
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for site in held_out:
            rows += run_site(
                args.root, site, pretrained.get(site), sites, counts, Path(tmp) / site, args.smoke, log
            )
    seconds = time.perf_counter() - started
    header = ["site", "fine-tuning windows", "variant", "top-1 (mean t+1..3)", "top-3", "DBA"]
    cells = [
        [
            str(r["site"]),
            str(r["windows"]),
            str(r["variant"]),
            *(f"{r[k]:.3f}" for k in ("top1", "top3", "dba")),
        ]
        for r in rows
    ]
    report(
        "Edge fine-tuning on sites never seen in pretraining",
        header,
        cells,
        "edge_finetune.py",
        argv,
        args.markdown,
        note=f", {seconds:.0f} s",
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
