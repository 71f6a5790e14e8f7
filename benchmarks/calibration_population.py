"""Population mode of ``sim_calibration.py`` (issue 12, item 2): each real development site against the
5-95 % range of a population of procedural sites, and the pooled population against the pooled real data.

Run it as ``python benchmarks/sim_calibration.py --random-sites N ...`` (see that script's docstring).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from sim_calibration import CHANGE_BINS, TOLERANCE, Recording, pool, publish, real_recordings, statistics  # noqa: E402

# the real development sites: site letter -> its DeepSense scenarios (pooled into one recording)
REAL_SITES = "A=scenario1+scenario2,C=scenario5,D=scenario6,F=scenario8+scenario9"
HISTOGRAM = "beam change per step (histogram)"
LOW, HIGH = 5.0, 95.0  # percentiles of the random sites that a real site must lie within


def parse_sites(text: str) -> dict[str, list[str]]:
    """``"A=scenario1+scenario2,C=scenario5"`` -> ``{"A": ["scenario1", "scenario2"], "C": ["scenario5"]}``."""
    sites = {}
    for item in text.split(","):
        name, _, scenarios = item.partition("=")
        if not name.strip() or not scenarios.strip():
            raise SystemExit(f"--real-sites: expected SITE=scenario[+scenario...], got {item!r}")
        sites[name.strip()] = [s.strip() for s in scenarios.split("+")]
    return sites


def random_recordings(sites: int, sequences: int, seed: int) -> list[Recording]:
    """Sites 1..``sites`` of population ``seed``, ``sequences`` passes each, traffic seed ``seed`` (the
    recordings of ``wmlm data synth --random-sites N --seed S --sequences M``)."""
    from wmlm.data.sim import simulate_scenario
    from wmlm.data.sim.random_sites import random_site

    out = []
    for k in range(1, sites + 1):
        site = random_site(seed, k)
        sim = simulate_scenario(site.preset, sequences, seed=seed)
        out.append(Recording(site.name, sim.beam, sim.seq_index, sim.power_linear))
    return out


@dataclass(frozen=True)
class PopulationRow:
    """One scalar statistic: each real site's value, the random sites' percentiles, the pooled values."""

    statistic: str
    real: dict[str, float]  # site -> value
    percentiles: tuple[float, float, float]  # 5 %, 50 %, 95 % over the random sites
    pooled_real: float
    pooled_random: float

    def gap(self, value: float) -> float:
        """How far ``value`` lies outside the 5-95 % range (0 inside; negative below, positive above)."""
        low, _, high = self.percentiles
        return value - low if value < low else value - high if value > high else 0.0

    @property
    def ratio(self) -> float:
        return self.pooled_random / self.pooled_real

    @property
    def pooled_ok(self) -> bool:
        return abs(self.ratio - 1) <= TOLERANCE


def population_rows(real: dict[str, Recording], randoms: list[Recording]) -> list[PopulationRow]:
    """A ``PopulationRow`` per scalar statistic of ``statistics``."""
    per_site = {name: statistics(rec) for name, rec in real.items()}
    per_random = [statistics(rec) for rec in randoms]
    pooled_real = statistics(pool(list(real.values()), "real"))
    pooled_random = statistics(pool(randoms, "random"))
    rows = []
    for key in pooled_real:
        if key == HISTOGRAM:
            continue
        values = np.array([s[key] for s in per_random], dtype=float)
        low, mid, high = (float(v) for v in np.percentile(values, [LOW, 50.0, HIGH]))
        real_values = {name: float(s[key]) for name, s in per_site.items()}
        rows.append(PopulationRow(key, real_values, (low, mid, high), pooled_real[key], pooled_random[key]))
    return rows


def histogram_distance(real: dict[str, Recording], randoms: list[Recording]) -> tuple[np.ndarray, np.ndarray]:
    """The pooled beam-change histograms (real, random)."""
    return (
        statistics(pool(list(real.values()), "real"))[HISTOGRAM],
        statistics(pool(randoms, "random"))[HISTOGRAM],
    )


def population_markdown(
    rows: list[PopulationRow],
    histograms: tuple[np.ndarray, np.ndarray],
    sites: dict[str, list[str]],
    header: str,
) -> str:
    names = list(sites)
    lines = [
        "# Realism across the procedural site population",
        "",
        header,
        "",
        f"Per site: inside the {LOW:g}-{HIGH:g} % range of the random sites, else the gap to the range "
        f"(real minus the nearest bound). Pooled: |random / real - 1| <= {TOLERANCE:g}.",
        "",
        "| statistic | "
        + " | ".join(f"real {n}" for n in names)
        + f" | random {LOW:g} % | 50 % | {HIGH:g} % | pooled real | pooled random | pooled ratio | pooled |",
        "|---|" + "---|" * (len(names) + 7),
    ]
    inside = 0
    for row in rows:
        cells = []
        for name in names:
            gap = row.gap(row.real[name])
            inside += gap == 0
            cells.append(
                f"{row.real[name]:.3f} in" if gap == 0 else f"{row.real[name]:.3f} **out {gap:+.3f}**"
            )
        low, mid, high = row.percentiles
        pooled = "pass" if row.pooled_ok else f"**fail ({100 * (row.ratio - 1):+.1f} %)**"
        lines.append(
            f"| {row.statistic} | "
            + " | ".join(cells)
            + f" | {low:.3f} | {mid:.3f} | {high:.3f} | {row.pooled_real:.3f} | {row.pooled_random:.3f} | "
            f"{row.ratio:.3f} | {pooled} |"
        )
    real_hist, random_hist = histograms
    distance = 0.5 * float(np.abs(real_hist - random_hist).sum())
    bins = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in CHANGE_BINS)
    pooled_pass = sum(r.pooled_ok for r in rows) + (distance <= TOLERANCE)
    lines += [
        "",
        f"Beam change histogram (bins {bins}), pooled: real "
        + " / ".join(f"{v:.2f}" for v in real_hist)
        + ", random "
        + " / ".join(f"{v:.2f}" for v in random_hist)
        + f": TV distance {distance:.3f} ({'pass' if distance <= TOLERANCE else 'fail'}).",
        "",
        f"**Per site: {inside} of {len(rows) * len(names)} inside the {LOW:g}-{HIGH:g} % range. "
        f"Pooled: {pooled_pass} of {len(rows) + 1} within {100 * TOLERANCE:g} %.**",
        "",
        "Real sites: " + "; ".join(f"{n} = {' + '.join(s)}" for n, s in sites.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def population_plot(rows: list[PopulationRow], randoms: list[Recording], path: Path) -> None:
    """Per statistic a box of the random sites (whiskers at 5 and 95 %) with the real sites as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_random = [statistics(rec) for rec in randoms]
    columns = 3
    fig, axes = plt.subplots((len(rows) + columns - 1) // columns, columns, figsize=(11, 3.2 * 3))
    axes = np.atleast_1d(axes).ravel()
    for ax, row in zip(axes, rows):
        ax.boxplot([float(s[row.statistic]) for s in per_random], whis=(LOW, HIGH), widths=0.5)
        for i, (name, value) in enumerate(row.real.items()):
            ax.plot(1.35, value, "o", color=f"C{i + 1}")
            ax.annotate(name, (1.35, value), xytext=(5, -3), textcoords="offset points", fontsize=8)
        ax.set_title(row.statistic, fontsize=9)
        ax.set_xticks([1], [f"{len(randoms)} random sites"])
    for ax in axes[len(rows) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def run_population(args: argparse.Namespace, command: str) -> list[PopulationRow]:
    import os
    import platform
    import time

    sites = parse_sites(args.real_sites)
    parts = {r.name: r for r in real_recordings(args.real_root)}
    missing = [s for names in sites.values() for s in names if s not in parts]
    if missing:
        raise SystemExit(
            f"--real-sites: no scenario {missing} under {args.real_root} (found {sorted(parts)})"
        )
    real = {name: pool([parts[s] for s in names], name) for name, names in sites.items()}
    start = time.perf_counter()
    randoms = random_recordings(args.random_sites, args.sequences, args.seed)
    seconds = time.perf_counter() - start
    rows = population_rows(real, randoms)
    header = (
        f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU; "
        f"{args.random_sites} random sites of population {args.seed}, {args.sequences} passes each, simulated "
        f"in {seconds:.0f} s on one core. Made by `{command}`."
    )
    text = population_markdown(rows, histogram_distance(real, randoms), sites, header)
    publish(text, args.markdown)
    if args.plot:
        population_plot(rows, randoms, args.plot)
    return rows
