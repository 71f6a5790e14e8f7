"""Online adaptation at a base station never seen: zero-shot vs prequential online accuracy, and the
update cost per vehicle pass against the pass's real-time duration at 10 Hz.

    python benchmarks/online.py --markdown docs/results/online_sim.md                    # the simulator
    python benchmarks/online.py --root ../shared/data/deepsense6g --held-out A,C,D,F     # leave one site out

For every held-out site:
  1. pretrain the benchmark's wmlm configuration (``benchmarks/configs/wmlm.yaml``, ``small`` preset) on
     the other sites (simulator: every preset but the held-out one; real data: leave one site out), with
     model selection on 10 % of their passes only; or take ``--pretrained SITE=CKPT``;
  2. stream every sample of the held-out site, in file order, through ``wmlm.deploy.OnlineAdapter``
     (``prequential_evaluate``: each window is scored before anything from it or later is learned; the
     best beam of a sample is observed ``--label-delay`` samples later; a pass is learned from after it
     ended): once without updates (zero-shot, the same windows) and once per ``--adapt`` variant;
  3. print top-1 / top-3 (mean over the future steps) and DBA over all windows of the site, first pass
     included; accuracy against the number of passes seen; update seconds per pass against the pass's
     duration (samples / 10 Hz) and prediction latency per sample, with ``--threads`` torch threads.
``--markdown`` writes the tables with date, machine and command; ``--json`` the numbers; ``--plot`` a PNG of
prequential top-1/top-3 of each pass against passes seen, per site; ``--over-time`` a PNG of the running
accuracy (over every window so far) against passes seen, one line per site and variant, zero-shot dotted
(its table goes next to ``--markdown`` as ``*_over_time.md``). ``--smoke`` is a seconds-long run for the tests.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import (  # noqa: E402
    ONLINE_VARIANTS,
    SITE_MEMORY,
    SMOKE_ARGS,
    SMOKE_MODEL,
    WMLM_CONFIG,
    online_options,
    report,
    site_stream,
    train,
)

from wmlm.data.simulated import DEFAULT_PRESETS, ensure_simulated  # noqa: E402
from wmlm.deploy.online import OnlineAdapter  # noqa: E402
from wmlm.deploy.prequential import LabelledSample, PrequentialResult, prequential_evaluate  # noqa: E402

REAL_SITES = {
    "A": ["scenario1", "scenario2"],
    "C": ["scenario5"],
    "D": ["scenario6"],
    "F": ["scenario8", "scenario9"],
}
PASS_BINS = ((0, 0), (1, 4), (5, 9), (10, 19), (20, 10**9))  # passes learned from before the window
OVER_TIME_PASSES = (1, 5, 10, 20, 50, 100)  # passes seen at which the running-accuracy table is read
Row = dict[str, object]


def pretrain(
    root: Path, scenarios: list[str], workdir: Path, epochs: int, smoke: bool, log: io.TextIOBase
) -> str:
    extra = [*SMOKE_ARGS, *SMOKE_MODEL["wmlm"]] if smoke else ["--model.adapt_epochs", str(epochs)]
    return train(WMLM_CONFIG, root, workdir, extra, log, scenarios=scenarios)


def evaluate(
    ckpt: str, stream: list[LabelledSample], variant: str, args: argparse.Namespace
) -> PrequentialResult:
    """One prequential run of ``variant`` on the site's stream: ``zero-shot``, an ``adapt`` value, or either
    with ``+prior`` (``prior`` alone: no optimizer steps, the site's beam counts only)."""
    adapter = OnlineAdapter.from_checkpoint(
        ckpt,
        buffer_windows=args.buffer,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        **online_options(variant, args.steps, args.site_prior, args.site_memory),
    )
    return prequential_evaluate(adapter, stream, label_delay=args.label_delay)


def row(site: str, variant: str, result: PrequentialResult) -> Row:
    summary = result.summary()
    mean = lambda values: sum(values) / max(len(values), 1)  # noqa: E731
    curve = {}
    for low, high in PASS_BINS:
        chosen = (result.pass_number >= low) & (result.pass_number <= high)
        if chosen.any():
            hits = (result.scores[chosen].topk(3, -1).indices == result.targets[chosen][..., None]).any(-1)
            top1 = result.scores[chosen].argmax(-1) == result.targets[chosen]
            curve[f"{low}-{high}" if high < 10**9 else f"{low}+"] = {
                "windows": int(chosen.sum()),
                "top1": float(top1.float().mean()),
                "top3": float(hits.float().mean()),
            }
    return {
        "site": site,
        "variant": variant,
        **summary,
        "top1_mean": mean(summary["top1"]),  # type: ignore[arg-type]
        "top3_mean": mean(summary["top3"]),  # type: ignore[arg-type]
        "by_passes_seen": curve,
        "per_pass": [{"pass": n, "windows": w, "top3": a} for n, w, a in result.by_pass(3)],
        "per_pass_top1": [a for _, _, a in result.by_pass(1)],
        # after each ended pass: accuracy over every window so far (None before the first window)
        "running_windows": result.running_windows().tolist(),
        "running_top1": _nan_to_none(result.running_accuracy(1)),
        "running_top3": _nan_to_none(result.running_accuracy(3)),
    }


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    # JSON has no NaN; None (null) marks the passes before the first scored window
    return [None if v != v else float(v) for v in values.tolist()]


def over_time_cells(r: Row) -> list[str]:
    """``top-1 / top-3`` running accuracy after each of ``OVER_TIME_PASSES`` passes (``-`` past the
    site's last pass or before its first window), then after all of them."""
    top1, top3 = r["running_top1"], r["running_top3"]  # type: ignore[var-annotated]
    cells = []
    for seen in OVER_TIME_PASSES:
        a, b = (top1[seen - 1], top3[seen - 1]) if seen <= len(top1) else (None, None)  # type: ignore[arg-type, index]
        cells.append(f"{a:.2f} / {b:.2f}" if a is not None and b is not None else "-")
    cells.append(f"{r['top1_mean']:.3f} / {r['top3_mean']:.3f} ({len(top1)})")  # type: ignore[arg-type]
    return cells


def plot_over_time(rows: list[Row], path: Path) -> None:
    """Running prequential top-1 and top-3 (every window predicted so far) against passes seen: one
    colour per site; adapted variants solid or dashed, zero-shot (no adaptation, the same windows) dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    sites = list(dict.fromkeys(str(r["site"]) for r in rows))
    adapted = list(dict.fromkeys(str(r["variant"]) for r in rows if r["variant"] != "zero-shot"))
    colours, styles = plt.get_cmap("tab10"), ["-", "--", "-."]
    for r in rows:
        variant = str(r["variant"])
        look = {
            "color": colours(sites.index(str(r["site"])) % 10),
            "linestyle": ":" if variant == "zero-shot" else styles[adapted.index(variant) % len(styles)],
            "linewidth": 1.2 if variant == "zero-shot" else 1.8,
        }
        for ax, key in zip(axes, ("running_top1", "running_top3")):
            values = np.array([np.nan if v is None else v for v in r[key]], dtype=float)  # type: ignore[union-attr]
            ax.plot(np.arange(1, len(values) + 1), values, label=f"{r['site']} {variant}", **look)
    for ax, name in zip(axes, ("top-1", "top-3")):
        ax.set_xscale("log")
        ax.set_xlabel("vehicle passes seen at the new site (log scale)")
        ax.set_title(f"prequential {name}, all windows so far")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("accuracy (mean of future steps)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(rows: list[Row], path: Path) -> None:
    """Prequential top-1 and top-3 of each pass (running mean over 5 passes) against passes seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    sites = list(dict.fromkeys(str(r["site"]) for r in rows))
    variants = list(dict.fromkeys(str(r["variant"]) for r in rows))
    colours, styles = plt.get_cmap("tab10"), ["-", "--", ":", "-."]
    for r in rows:
        top3 = np.array([p["top3"] for p in r["per_pass"]])  # type: ignore[index, union-attr]
        top1 = np.array(r["per_pass_top1"])  # type: ignore[arg-type]
        look = {
            "color": colours(sites.index(str(r["site"])) % 10),
            "linestyle": styles[variants.index(str(r["variant"])) % len(styles)],
        }
        for ax, values in zip(axes, (top1, top3)):
            smooth = np.convolve(values, np.ones(5) / 5, mode="valid") if len(values) >= 5 else values
            start = len(values) - len(smooth)
            ax.plot(np.arange(len(smooth)) + start, smooth, label=f"{r['site']} {r['variant']}", **look)
    for ax, name in zip(axes, ("top-1", "top-3")):
        ax.set_xlabel("passes learned from before the pass")
        ax.set_title(f"prequential {name} per pass (running mean of 5)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (mean of future steps)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", type=Path, help="folder of DeepSense scenario folders (default: the simulator)"
    )
    parser.add_argument(
        "--sites", nargs="*", help="SITE=scen1,scen2 ... (default: A, C, D, F of the real data)"
    )
    parser.add_argument("--held-out", help="comma list of sites (default: A for real data; the last preset)")
    parser.add_argument(
        "--presets", default=",".join(DEFAULT_PRESETS), help="simulator presets; the last is held out"
    )
    parser.add_argument("--sequences", type=int, default=40, help="simulated passes per preset")
    parser.add_argument(
        "--pretrained", nargs="*", default=[], help="SITE=CKPT trained without SITE (skips pretraining)"
    )
    parser.add_argument("--epochs", type=int, default=10, help="pretraining epochs (model.adapt_epochs)")
    parser.add_argument(
        "--adapt",
        default="heads,heads+backbone",
        help="comma list of online variants: heads, heads+backbone, prior (site beam counts only, no steps), "
        "memory (nearest ended windows vote, no steps), prior+memory, or heads / heads+backbone with +prior "
        "(heads also with +prior+memory)",
    )
    parser.add_argument(
        "--site-prior", type=float, default=50.0, help="pseudo-counts of the model in the +prior variants"
    )
    parser.add_argument(
        "--site-memory",
        type=float,
        default=SITE_MEMORY,
        help="share of the memory's vote in the +memory variants",
    )
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per ended pass")
    parser.add_argument("--buffer", type=int, default=2048, help="replay buffer capacity in windows")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per optimizer step")
    parser.add_argument("--lr", type=float, default=3e-4, help="online AdamW learning rate")
    parser.add_argument(
        "--label-delay", type=int, default=3, help="samples until a sweep's best beam is known"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads while serving and adapting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="checkpoints and logs (default: a temporary folder)")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--plot", type=Path, help="also write the accuracy-over-passes PNG here")
    parser.add_argument(
        "--over-time", type=Path, help="also write the running-accuracy-against-passes-seen PNG here"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.batch_size = min(args.steps, 2), min(args.batch_size, 8)

    bad = [v for v in args.adapt.split(",") if v not in ONLINE_VARIANTS]
    if bad:
        parser.error(f"--adapt: unknown variant(s) {bad}; choose from {', '.join(ONLINE_VARIANTS)}")
    log = io.StringIO()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        if args.root is None:
            presets = args.presets.split(",")
            root = ensure_simulated(workdir / "sim", presets, args.sequences, seed=0)
            sites = {p: [p] for p in presets}
            held_out = (args.held_out or presets[-1]).split(",")
        else:
            root = args.root
            sites = (
                dict((k, v.split(",")) for k, v in (s.split("=", 1) for s in args.sites))
                if args.sites
                else REAL_SITES
            )
            held_out = (args.held_out or "A").split(",")
        unknown = [s for s in held_out if s not in sites]
        if unknown:
            parser.error(f"--held-out: unknown site(s) {unknown}; sites are {list(sites)}")
        pretrained = dict(item.split("=", 1) for item in args.pretrained)
        rows: list[Row] = []
        for site in held_out:
            others = [s for other, names in sites.items() if other != site for s in names]
            ckpt = pretrained.get(site) or pretrain(
                root, others, workdir / f"without_{site}", args.epochs, args.smoke, log
            )
            print(
                f"{site}: pretrained on {others} ({time.perf_counter() - started:.0f} s); {ckpt}", flush=True
            )
            threads = torch.get_num_threads()
            torch.set_num_threads(args.threads)
            try:
                stream = site_stream(ckpt, root, sites[site])
                for variant in ["zero-shot", *args.adapt.split(",")]:
                    rows.append(row(site, variant, evaluate(ckpt, stream, variant, args)))
                    print(
                        f"  {variant}: top-3 {rows[-1]['top3_mean']:.3f} ({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
            finally:
                torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    header = [
        "site", "variant", "windows", "passes", "top-1 (mean t+1..)", "top-3", "DBA",
        "update s/pass (mean, max)", "pass s (mean)", "over budget", "predict ms (median, p95)",
    ]  # fmt: skip
    cells = [
        [
            str(r["site"]), str(r["variant"]), str(r["windows"]), str(r["passes"]),
            f"{r['top1_mean']:.3f}", f"{r['top3_mean']:.3f}", f"{r['dba']:.3f}",
            f"{r['update_s_per_pass']:.3f}, {r['update_s_max']:.3f}", f"{r['pass_s_mean']:.1f}",
            f"{100 * r['passes_over_budget']:.0f} %",  # type: ignore[operator]
            f"{r['predict_ms_median']:.1f}, {r['predict_ms_p95']:.1f}",
        ]
        for r in rows
    ]  # fmt: skip
    note = f", {args.threads} torch threads while serving, {seconds:.0f} s in all"
    report(
        "Online adaptation at sites never seen (prequential)",
        header,
        cells,
        "online.py",
        argv,
        args.markdown,
        note,
    )
    bins = [f"{low}-{high}" if high < 10**9 else f"{low}+" for low, high in PASS_BINS]
    curve_rows = [
        [str(r["site"]), str(r["variant"])]
        + [
            f"{c['top1']:.2f} / {c['top3']:.2f} ({c['windows']})"
            if (c := r["by_passes_seen"].get(b))
            else "-"  # type: ignore[union-attr]
            for b in bins
        ]
        for r in rows
    ]
    curve_header = ["site", "variant", *(f"{b} passes seen: top-1 / top-3 (windows)" for b in bins)]
    curve_md = args.markdown.with_name(args.markdown.stem + "_curve.md") if args.markdown else None
    report("Prequential accuracy against passes seen", curve_header, curve_rows, "online.py", argv, curve_md)
    over_header = [
        "site", "variant", *(f"{n} passes seen" for n in OVER_TIME_PASSES), "all windows (passes)",
    ]  # fmt: skip
    over_rows = [[str(r["site"]), str(r["variant"]), *over_time_cells(r)] for r in rows]
    over_md = args.markdown.with_name(args.markdown.stem + "_over_time.md") if args.markdown else None
    report(
        "Running prequential top-1 / top-3 against passes seen",
        over_header,
        over_rows,
        "online.py",
        argv,
        over_md,
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.plot:
        plot(rows, args.plot)
    if args.over_time:
        plot_over_time(rows, args.over_time)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
