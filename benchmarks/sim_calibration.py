"""How close is the built-in simulator to the real DeepSense 6G data? Prints one table of statistics.

    python benchmarks/sim_calibration.py --real-root ~/data/deepsense6g \
        --markdown docs/results/sim_calibration.md --plot docs/results/sim_calibration.png

Statistics, pooled over all real scenarios and over all simulator presets (same seed and sequence count
as the quickstart):
- best-beam change per step: histogram of |beam(t+1) - beam(t)| inside a sequence (bins 0, 1, 2, 3, 4,
  5-9, >= 10); compared by total-variation distance (half the L1 distance of the two histograms);
- power dynamic range: median over samples of the peak-to-median beam power ratio, dB;
- sequence length: mean samples per sequence (vehicle pass);
- repeat-last-beam accuracy 1, 2 and 3 steps ahead.
Scalars are compared by the ratio simulated / real. A statistic is within target when the distance is at
most 0.10 or the ratio within [0.9, 1.1].

Population mode (issue 12, item 2): ``--random-sites N`` draws procedural sites 1..N of population
``--seed`` (``wmlm.data.sim.random_sites``, as ``wmlm data synth --random-sites N --seed S``), simulates
``--sequences`` passes at each and measures every scalar statistic per site (``SITE_STATISTICS``). It checks
that each real development site (``--real-sites``: scenarios 1+2 = A, 5 = C, 6 = D, 8+9 = F) lies inside the
5-95 % range of the random sites, and that the pooled random population is within 10 % of the pooled real
data (TV distance for the histogram), and writes the table (``--markdown``) and a plot (``--plot``); its code
is in ``calibration_population.py``.

    python benchmarks/sim_calibration.py --real-root ~/data/deepsense6g --random-sites 200 --seed 0 \
        --sequences 20 --markdown docs/results/sim_population.md --plot docs/results/sim_population.png
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHANGE_BINS = ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 9), (10, 63))
TOLERANCE = 0.10


@dataclass(frozen=True)
class Recording:
    """Best beam ``[N]`` (any base), sequence id ``[N]`` and linear beam power ``[N, 64]`` of one source."""

    name: str
    beam: np.ndarray
    sequence: np.ndarray
    power_linear: np.ndarray


def change_histogram(beam: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Share of in-sequence steps whose best beam moves by each ``CHANGE_BINS`` range."""
    same = sequence[1:] == sequence[:-1]
    change = np.abs(np.diff(beam))[same]
    counts = np.array([np.sum((change >= lo) & (change <= hi)) for lo, hi in CHANGE_BINS], dtype=float)
    return counts / max(counts.sum(), 1.0)


def repeat_last_accuracy(beam: np.ndarray, sequence: np.ndarray, steps: int) -> float:
    """Share of rows whose beam equals the beam ``steps`` rows earlier in the same sequence."""
    same = sequence[steps:] == sequence[:-steps]
    return float(np.mean(beam[steps:][same] == beam[:-steps][same]))


def statistics(rec: Recording) -> dict[str, float | np.ndarray]:
    """The compared statistics of one pooled source."""
    peak = rec.power_linear.max(axis=1)
    median = np.maximum(np.median(rec.power_linear, axis=1), 1e-30)
    lengths = np.unique(rec.sequence, return_counts=True)[1]
    same = rec.sequence[1:] == rec.sequence[:-1]
    stats: dict[str, float | np.ndarray] = {
        "beam change per step (histogram)": change_histogram(rec.beam, rec.sequence),
        "beam change per step, mean (beams)": float(np.mean(np.abs(np.diff(rec.beam))[same])),
        "peak-to-median power, median (dB)": float(np.median(10 * np.log10(peak / median))),
        "samples per sequence, mean": float(lengths.mean()),
    }
    for k in (1, 2, 3):
        stats[f"repeat-last-beam accuracy, {k} step(s)"] = repeat_last_accuracy(rec.beam, rec.sequence, k)
    return stats


def pool(recordings: list[Recording], name: str) -> Recording:
    """One recording of several, with sequence ids made distinct across sources."""
    sequences, offset = [], 0
    for rec in recordings:
        sequences.append(rec.sequence - rec.sequence.min() + offset)
        offset = int(sequences[-1].max()) + 1
    return Recording(
        name,
        np.concatenate([r.beam for r in recordings]),
        np.concatenate(sequences),
        np.concatenate([r.power_linear for r in recordings]),
    )


def real_recordings(root: Path) -> list[Recording]:
    from wmlm.data.cache import load_scenarios

    return [
        Recording(s.name, s.fields["beam_label"], s.sequence, s.fields["beam_power"])
        for s in load_scenarios(root, ["beam_power", "beam_label"])
    ]


def simulated_recordings(presets: list[str], sequences: int, seed: int) -> list[Recording]:
    from wmlm.data.sim import PRESETS, simulate_scenario

    out = []
    for name in presets:
        sim = simulate_scenario(PRESETS[name], sequences, seed=seed)
        out.append(Recording(name, sim.beam, sim.seq_index, sim.power_linear))
    return out


def compare(real: dict, sim: dict) -> list[tuple[str, str, str, str, bool]]:
    """Rows ``(statistic, real, simulated, distance or ratio, within target)``."""
    rows = []
    for key, real_value in real.items():
        sim_value = sim[key]
        if isinstance(real_value, np.ndarray):
            distance = 0.5 * float(np.abs(real_value - sim_value).sum())
            fmt = " / ".join
            rows.append(
                (
                    key,
                    fmt(f"{v:.2f}" for v in real_value),
                    fmt(f"{v:.2f}" for v in sim_value),
                    f"TV distance {distance:.3f}",
                    distance <= TOLERANCE,
                )
            )
        else:
            ratio = sim_value / real_value
            ok = abs(ratio - 1) <= TOLERANCE
            rows.append((key, f"{real_value:.3f}", f"{sim_value:.3f}", f"ratio {ratio:.3f}", ok))
    return rows


def markdown(rows: list, per_source: list[tuple[str, dict]], command: str) -> str:
    bins = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in CHANGE_BINS)
    lines = [
        "# Simulator calibration against DeepSense 6G",
        "",
        f"{datetime.date.today().isoformat()}, made by `{command}`.",
        f"Histogram bins of the beam change (beams): {bins}. Target: TV distance or |ratio - 1| <= {TOLERANCE}.",
        "",
        "| statistic | real (pooled) | simulated (pooled) | distance / ratio | within 10 % |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {'yes' if ok else 'NO'} |" for a, b, c, d, ok in rows]
    lines += [
        "",
        "Per source (repeat-last accuracy at 1/2/3 steps, peak-to-median dB, mean sequence length):",
        "",
    ]
    lines += ["| source | repeat-last 1/2/3 | peak/median dB | samples per sequence |", "|---|---|---|---|"]
    for name, stats in per_source:
        repeat = " / ".join(f"{stats[f'repeat-last-beam accuracy, {k} step(s)']:.2f}" for k in (1, 2, 3))
        lines.append(
            f"| {name} | {repeat} | {stats['peak-to-median power, median (dB)']:.1f} | "
            f"{stats['samples per sequence, mean']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(real: dict, sim: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    labels = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in CHANGE_BINS]
    x = np.arange(len(labels))
    key = "beam change per step (histogram)"
    axes[0].bar(x - 0.2, real[key], 0.4, label="DeepSense 6G (real)")
    axes[0].bar(x + 0.2, sim[key], 0.4, label="simulator")
    axes[0].set(xticks=x, xticklabels=labels, xlabel="|best-beam change| per step (beams)", ylabel="share")
    axes[0].legend()
    steps = [1, 2, 3]
    for stats, label in ((real, "real"), (sim, "simulator")):
        axes[1].plot(
            steps, [stats[f"repeat-last-beam accuracy, {k} step(s)"] for k in steps], "o-", label=label
        )
    axes[1].set(xticks=steps, xlabel="steps ahead", ylabel="repeat-last-beam accuracy", ylim=(0, 1))
    axes[1].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def publish(text: str, markdown: Path | None) -> None:
    """Print the table and, with ``--markdown``, write it there."""
    print(text)
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text)


def main(argv: list[str] | None = None) -> list:
    sys.path.insert(0, str(Path(__file__).parent))
    from calibration_population import REAL_SITES, run_population

    from wmlm.data.simulated import DEFAULT_PRESETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-root", type=Path, required=True, help="DeepSense 6G scenario folders")
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    parser.add_argument("--sequences", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--random-sites", type=int, help="population mode: procedural sites 1..N of --seed")
    parser.add_argument("--real-sites", default=REAL_SITES, help="population mode: SITE=scenario[+...],...")
    args = parser.parse_args(argv)
    command = "python benchmarks/sim_calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.random_sites is not None:
        return run_population(args, command)
    real_parts = real_recordings(args.real_root)
    sim_parts = simulated_recordings(args.presets.split(","), args.sequences, args.seed)
    real, sim = statistics(pool(real_parts, "real")), statistics(pool(sim_parts, "simulated"))
    rows = compare(real, sim)
    per_source = [(r.name, statistics(r)) for r in [*real_parts, *sim_parts]]
    text = markdown(rows, per_source, command)
    publish(text, args.markdown)
    if args.plot:
        plot(real, sim, args.plot)
    return rows


if __name__ == "__main__":
    main()
