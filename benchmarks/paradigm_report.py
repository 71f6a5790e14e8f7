"""Tables, targets and figure of ``paradigm.py`` (issue 13): the few-label and missing-modality results
of every fusion mode and seed, summarised as ``mean ± sd`` and checked against the issue's targets."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

CONDITIONS = ("all present", "camera gone", "GPS gone", "last beam sweep gone")
# targets of issue 13
TARGET_F1_PTS, TARGET_POS_REL, TARGET_DROP_RATIO, TARGET_FUSION_PTS = 5.0, 0.10, 0.5, 2.0


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """``mean ± sd`` (sd only with several seeds)."""
    text = f"{scale * mean(values):.{digits}f}"
    return text + (f" ± {scale * statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def verdict(met: bool, gap: str) -> str:
    return f"**met** ({gap})" if met else f"not met ({gap})"


def summarise(results: dict, args: argparse.Namespace) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """Rows of the few-label table, rows of the missing-modality table, target lines."""
    few_rows, miss_rows, targets = [], [], []
    for fusion, per_fusion in results.items():
        seeds = list(per_fusion)
        few = [per_fusion[s]["few_labels"] for s in seeds]
        for n in args.labels:
            for name in ("aligned", "unaligned"):
                key = f"{name} N={n}"
                f1 = [r[key]["f1"] for r in few]
                auroc = [r[key]["auroc"] for r in few]
                dist = [r[key]["distance_m"] for r in few]
                few_rows.append(
                    [fusion, str(n), name, spread(f1, 100, 1), spread(auroc, 1, 3), spread(dist, 1, 2)]
                )
        if 200 in args.labels:
            f1_gap = 100 * mean([r["aligned N=200"]["f1"] - r["unaligned N=200"]["f1"] for r in few])
            al = mean([r["aligned N=200"]["distance_m"] for r in few])
            un = mean([r["unaligned N=200"]["distance_m"] for r in few])
            rel = (un - al) / un if un else 0.0
            targets.append(
                f"- [{fusion}] few labels, N=200, blockage F1 aligned − unaligned ≥ +{TARGET_F1_PTS:.0f} pts: "
                + verdict(f1_gap >= TARGET_F1_PTS, f"{f1_gap:+.1f} pts")
            )
            targets.append(
                f"- [{fusion}] few labels, N=200, position error ≥ {100 * TARGET_POS_REL:.0f} % lower aligned: "
                + verdict(rel >= TARGET_POS_REL, f"{100 * rel:+.1f} % lower, {al:.2f} m vs {un:.2f} m")
            )
        else:
            targets.append(f"- [{fusion}] few labels at N=200: not run (N = {args.labels})")
        miss = [per_fusion[s]["missing"] for s in seeds]
        drops: dict[str, dict[str, float]] = {}
        for model in miss[0]:
            for condition in CONDITIONS:
                if condition not in miss[0][model]:
                    continue
                top1 = [r[model][condition]["top1"] for r in miss]
                top3 = [r[model][condition]["top3"] for r in miss]
                drop = [r[model]["all present"]["top1"] - r[model][condition]["top1"] for r in miss]
                drops.setdefault(model, {})[condition] = mean(drop)
                cell = "" if condition == "all present" else f"{100 * mean(drop):+.1f} pts"
                miss_rows.append([fusion, model, condition, spread(top1), spread(top3), cell])
        for condition in CONDITIONS[1:]:
            if condition not in drops.get("aligned", {}):
                targets.append(
                    f"- [{fusion}] missing modality, {condition}: not run (modality not in the set)"
                )
                continue
            al, un = drops["aligned"][condition], drops["unaligned"][condition]
            ok = al <= TARGET_DROP_RATIO * un if un > 0 else al <= 0
            targets.append(
                f"- [{fusion}] missing modality, {condition}: aligned drop ≤ half the unaligned drop: "
                + verdict(ok, f"aligned {100 * al:+.1f} pts, unaligned {100 * un:+.1f} pts")
            )
        for model in ("aligned", "unaligned"):
            gain = 100 * mean(
                [r[model]["all present"]["top1"] - r["beam alone"]["all present"]["top1"] for r in miss]
            )
            targets.append(
                f"- [{fusion}] unseen site, {'+'.join(args.modalities)} ({model}) − beam alone ≥ "
                f"+{TARGET_FUSION_PTS:.0f} pts top-1: "
                + verdict(gain >= TARGET_FUSION_PTS, f"{gain:+.1f} pts")
            )
    targets.append(
        "- beam training saved (emergent / sensors-only / aligned-then-fine-tuned): "
        "in `paradigm_sensors.py` (paradigm_sensors.md)"
    )
    targets.append(
        "- anchor ablation (Fig. 4e: beam / image / GPS / joint / none): in `paradigm_sensors.py` (paradigm_sensors.md)"
    )
    return few_rows, miss_rows, targets


def plot(results: dict, args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for fusion, per_fusion in results.items():
        few = [r["few_labels"] for r in per_fusion.values()]
        for name, style in (("aligned", "-o"), ("unaligned", "--s")):
            f1 = [100 * mean([r[f"{name} N={n}"]["f1"] for r in few]) for n in args.labels]
            dist = [mean([r[f"{name} N={n}"]["distance_m"] for r in few]) for n in args.labels]
            axes[0].plot(args.labels, f1, style, label=f"{name} ({fusion})")
            axes[1].plot(args.labels, dist, style, label=f"{name} ({fusion})")
    for ax, label in ((axes[0], "blockage F1 (%)"), (axes[1], "position error (m)")):
        ax.set_xscale("log")
        ax.set_xlabel("labelled training windows N")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    axes[0].set_title("few labels")
    axes[1].set_title("few labels")
    fusion, per_fusion = next(iter(results.items()))
    miss = [r["missing"] for r in per_fusion.values()]
    models = list(miss[0])
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        values = [
            mean([r[model][c]["top1"] for r in miss]) if c in miss[0][model] else 0.0 for c in CONDITIONS
        ]
        axes[2].bar([x + i * width for x in range(len(CONDITIONS))], values, width, label=model)
    axes[2].set_xticks([x + 0.4 - width / 2 for x in range(len(CONDITIONS))], CONDITIONS, fontsize=7)
    axes[2].set_ylabel("beam top-1 (mean of 3 steps)")
    axes[2].set_title(f"missing modality ({fusion})")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
