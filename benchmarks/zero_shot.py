"""Zero-shot beam prediction: train on every scenario under one root, test on every scenario under another.

    python benchmarks/zero_shot.py --train-root A --test-root B [--json results.json] [--online]

Trains the benchmark's wmlm configuration (``configs/wmlm.yaml``) and its best GRU (``configs/gru.yaml``),
the GRU twice: as configured (``gru``) and with wmlm's data augmentations (``gru_aug``: mirrored windows,
strides 1 and 2; ``benchlib.SAME_AUGMENTATIONS``), on all scenario folders under ``A`` (model selection on
10 % of A's vehicle passes only), then tests them, and the repeat-last-beam and kinematic baselines, on each
scenario folder under ``B``, which nothing saw before.

``--online`` adds ``wmlm_online``: the same trained wmlm checkpoint, adapted while serving each test
scenario on its own (``wmlm.deploy.OnlineAdapter``) and scored prequentially (``wmlm.deploy.prequential``:
every window is scored before anything from it or later is learned, the first pass included; best beams
observed 3 samples late). ``--online-adapt`` says what learns: by default ``prior+memory``, no optimizer
step: the site's own beam transitions counted after each vehicle pass and blended with the model
(``wmlm.deploy.site_prior``, 50 pseudo-counts), then mixed with a vote of the site's most similar ended
windows (``wmlm.deploy.site_memory``, weight 0.3); the best online variant on the development sites
(``docs/results/online.md``). ``prior`` or ``memory`` alone; ``heads`` or ``heads+backbone`` take 20
optimizer steps after each pass on a FIFO replay of 2048 windows, alone or with ``+prior``. With ``--mix-sites`` the mixed model is adapted the same way (``wmlm_mixed_online``). It prints
the update time per pass against the passes' real-time duration at 10 Hz.

``--mix-sites N`` adds ``wmlm_mixed``: the same wmlm configuration trained on A mixed with N procedural
sites of the built-in simulator (``wmlm data synth --random-sites N``, array store, 16 passes each; half
of every epoch's training windows drawn afresh from them, ``data.mix_share 0.5``). On leave-one-site-out
among the development sites it raised top-3 at 6 and at 20 epochs and top-1 at 6 epochs only
(``docs/results/sim2real.md``).

Prints one table; with ``--json`` also writes
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
from benchlib import (  # noqa: E402
    GRU_CONFIG,
    ONLINE_VARIANTS,
    SAME_AUGMENTATIONS,
    SITE_MEMORY,
    SITE_PRIOR,
    SMOKE_ARGS,
    SMOKE_MODEL,
    UNTRAINED,
    WMLM_CONFIG,
    Scores,
    machine,
    online_options,
    rich_table,
    site_stream,
    test,
    train,
)
from sim2real import generate  # noqa: E402

from wmlm.data.deepsense import find_scenarios  # noqa: E402

# trained models: (name in the JSON, config, extra arguments, smoke model arguments)
TRAINED = (
    ("wmlm", WMLM_CONFIG, [], SMOKE_MODEL["wmlm"]),
    ("gru", GRU_CONFIG, [], SMOKE_MODEL["gru"]),
    ("gru_aug", GRU_CONFIG, SAME_AUGMENTATIONS, SMOKE_MODEL["gru"]),
)
# online adaptation as measured in docs/results/online.md (benchmarks/online.py's defaults)
ONLINE = {"steps_per_pass": 20, "buffer_windows": 2048, "batch_size": 64, "lr": 3e-4, "seed": 0}
LABEL_DELAY = 3  # samples until a sweep's best beam reaches the adapter
MIX_SEQUENCES, MIX_SHARE = 16, 0.5  # --mix-sites: passes per procedural site, simulated share of an epoch


def online_scores(
    name: str, ckpt: str, root: Path, scenario: str, variant: str, smoke: bool, console: Console
) -> Scores:
    """Prequential top-1/top-3 per future step and DBA of ``ckpt`` adapted online (``variant``, one of
    ``ONLINE_VARIANTS``) on ``scenario`` alone (a fresh adapter per scenario); prints the update time per
    pass against the pass duration under ``name``."""
    from wmlm.deploy.online import OnlineAdapter
    from wmlm.deploy.prequential import prequential_evaluate

    options = dict(ONLINE)
    if smoke:
        options["steps_per_pass"] = min(options["steps_per_pass"], 2)
        options["batch_size"] = min(options["batch_size"], 8)
    options.update(online_options(variant, options.pop("steps_per_pass"), SITE_PRIOR, SITE_MEMORY))
    adapter = OnlineAdapter.from_checkpoint(ckpt, **options)
    result = prequential_evaluate(adapter, site_stream(ckpt, root, [scenario]), label_delay=LABEL_DELAY)
    summary = result.summary()
    console.print(
        f"{name} {scenario}: {summary['windows']} windows, {summary['passes']} passes; update "
        f"{summary['update_s_per_pass']:.3f} s per pass (mean; max {summary['update_s_max']:.3f} s) against "
        f"a pass duration of {summary['pass_s_mean']:.1f} s (mean, 10 Hz); "
        f"{100 * summary['passes_over_budget']:.0f} % of passes over budget; "  # type: ignore[operator]
        f"predict {summary['predict_ms_median']:.1f} ms (median)"
    )
    return {"top1": summary["top1"], "top3": summary["top3"], "dba": summary["dba"]}  # type: ignore[dict-item]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-root", type=Path, required=True, help="folder of training scenario folders")
    parser.add_argument("--test-root", type=Path, required=True, help="folder of held-out scenario folders")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="checkpoints and logs (default: a temporary folder)")
    parser.add_argument(
        "--online", action="store_true", help="also adapt the trained wmlm online on each test scenario"
    )
    parser.add_argument(
        "--online-adapt",
        choices=ONLINE_VARIANTS,
        default="prior+memory",
        help="what learns online with --online: prior+memory (the site's beam counts and a vote of its "
        "nearest ended windows, no optimizer steps; default), prior, memory, heads or heads+backbone (20 "
        "steps per pass; encoders never learn), either with +prior",
    )
    parser.add_argument(
        "--mix-sites",
        type=int,
        default=0,
        help="also train wmlm_mixed: the training scenarios mixed with N procedural simulated sites (0: off)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    for option, root in (("--train-root", args.train_root), ("--test-root", args.test_root)):
        if not root.is_dir():
            parser.error(f"{option}: {root} is not a folder")
    if args.mix_sites < 0:
        parser.error(f"--mix-sites: expected a number of sites >= 0, got {args.mix_sites}")

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
        trained = list(TRAINED)
        if args.mix_sites:
            sim_root = workdir / "sim"
            generate(sim_root, args.mix_sites, MIX_SEQUENCES, 1, console)
            mixed = ["--data.mix_root", str(sim_root), "--data.mix_share", str(MIX_SHARE)]
            trained.append(("wmlm_mixed", WMLM_CONFIG, mixed, SMOKE_MODEL["wmlm"]))
        for name, config, options, smoke_model in trained:
            extra = [*options, *smoke, *(smoke_model if args.smoke else [])]
            ckpt = train(config, args.train_root, workdir / name, extra, log)
            console.print(f"{name}: trained in {time.perf_counter() - started:.0f} s; best checkpoint {ckpt}")
            results[name] = {
                s: test(
                    config, args.test_root, s, workdir / "test" / name / s, [*extra, "--ckpt_path", ckpt], log
                )
                for s in test_scenarios
            }
            if name in ("wmlm", "wmlm_mixed") and args.online:
                results[f"{name}_online"] = {
                    s: online_scores(
                        f"{name}_online", ckpt, args.test_root, s, args.online_adapt, args.smoke, console
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
