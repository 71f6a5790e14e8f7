"""Zero-shot on real base stations from ray-traced streets, against the built-in simulator.

    OMP_NUM_THREADS=1 python plugins/wmlm-sionna/benchmarks/zero_shot.py --real-root ../shared/data/deepsense6g \
        --scenes simple_street_canyon,munich,etoile,florence --seeds 0,1 --sequences 24 --steps 2000 \
        --workdir W --out docs/results

1. Ray-traces one site per scene and seed (``wmlm data synth --engine sionna --format arrays``: the BS on a
   seeded street side of the scene, ``--sequences`` vehicle passes each).
2. Draws as many procedural sites of the built-in simulator with the same number of passes each
   (``wmlm data synth --random-sites N``), and links both populations into a third root (``both``).
3. Trains the benchmark configuration (``benchmarks/configs/wmlm.yaml``: beam power in the frame of the
   last best beam, relative beam head) for ``--steps`` optimizer steps on each source, with model selection
   on 10 % of the source's own passes (no real data), and tests it on every real development scenario.
Writes ``sionna_zero_shot.md`` and ``.json`` under ``--out``; every finished site and run is kept in
``WORKDIR/progress.jsonl``, so a rerun with the same ``--workdir`` resumes.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))
import numpy as np  # noqa: E402
from benchlib import SMOKE_ARGS, WMLM_CONFIG, machine, mean_scores, train  # noqa: E402
from sim2real import Progress, pretrain_args, summary, test_real  # noqa: E402
from wmlm.cli import main as wmlm_main  # noqa: E402
from wmlm.data.deepsense import find_scenarios  # noqa: E402

from wmlm_sionna.site import TEMPLATE  # noqa: E402

SOURCES = ("ray-traced", "built-in", "both")
BUILTIN_SEED = 0
# for scale, measured on the same real scenarios (docs/results/sim2real.md and loso.md)
REFERENCE = {
    "kinematic prior (no training)": (0.275, 0.704),
    "built-in, 10 procedural sites x 16 passes (sim2real.md)": (0.354, 0.806),
    "trained on the other real sites, 20 epochs (loso.md)": (0.463, 0.855),
}


def _synth(argv: list[str]) -> None:
    code = wmlm_main(["data", "synth", *argv])
    if code:
        raise SystemExit(f"wmlm data synth {' '.join(argv)} failed with exit code {code}")


def site_key(name: str, args: argparse.Namespace) -> str:
    key = f"site/{name}/seq{args.sequences}/depth{args.max_depth}"
    return key if args.tx_power_dbm == TEMPLATE.tx_power_dbm else f"{key}/tx{args.tx_power_dbm:g}"


def ray_traced_sites(
    root: Path, scenes: list[str], seeds: list[int], args: argparse.Namespace, progress: Progress
) -> list[str]:
    """Trace (or resume) one site per scene (a built-in name or a Mitsuba .xml file) and seed under ``root``;
    their folder names."""
    names = []
    for scene in scenes:
        for seed in seeds:
            name = f"sionna_{Path(scene).stem}_s{seed}"  # the engine's default folder name
            key = site_key(name, args)
            if progress.get(key) is None:
                started = time.perf_counter()
                _synth(["--engine", "sionna", "--scene", scene, "--seed", str(seed), "--sequences", str(args.sequences),
                        "--max-depth", str(args.max_depth), "--tx-power-dbm", str(args.tx_power_dbm), "--format", "arrays",
                        "--out", str(root), "--overwrite"])  # fmt: skip
                info = json.loads((root / name / "simulation.json").read_text())
                progress.put(key, {"samples": info["samples"], "seconds": time.perf_counter() - started})
            names.append(name)
    return names


def builtin_sites(root: Path, count: int, sequences: int, workers: int) -> list[str]:
    """Draw (or resume) ``count`` procedural sites of the built-in simulator under ``root``; their names."""
    _synth(["--out", str(root), "--random-sites", str(count), "--seed", str(BUILTIN_SEED), "--sequences", str(sequences),
            "--format", "arrays", "--sensors", "none", "--workers", str(workers), "--resume"])  # fmt: skip
    return sorted(p.name for p in find_scenarios(root))[:count]


def link_both(root: Path, sources: dict[Path, list[str]]) -> list[str]:
    """``root`` holding a symbolic link to every site of every source; the links' names."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for source, sites in sources.items():
        for name in sites:
            link = root / name
            if not link.exists():
                link.symlink_to((source / name).resolve(), target_is_directory=True)
            names.append(name)
    return names


def samples(root: Path, names: list[str]) -> int:
    return sum(json.loads((root / n / "simulation.json").read_text())["samples"] for n in names)


def run(args: argparse.Namespace) -> dict:
    log = io.StringIO()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    progress = Progress(workdir / "progress.jsonl")
    started = time.perf_counter()
    scenes, seeds = args.scenes.split(","), [int(s) for s in args.seeds.split(",")]
    traced = ray_traced_sites(workdir / "raytraced", scenes, seeds, args, progress)
    sources = args.sources.split(",")
    needs_builtin = "built-in" in sources or "both" in sources
    builtin = (
        builtin_sites(workdir / "builtin", len(traced), args.sequences, args.workers) if needs_builtin else []
    )
    both = (
        link_both(workdir / "both", {workdir / "raytraced": traced, workdir / "builtin": builtin})
        if "both" in sources
        else []
    )
    roots = {
        "ray-traced": (workdir / "raytraced", traced),
        "built-in": (workdir / "builtin", builtin),
        "both": (workdir / "both", both),
    }
    real = [p.name for p in find_scenarios(args.real_root)]
    smoke = SMOKE_ARGS if args.smoke else []
    results: dict[str, dict] = {}
    for source in sources:
        root, names = roots[source]
        runs = {}
        for seed in [int(v) for v in args.train_seeds.split(",")]:
            key = f"zero_shot/{source}/{args.preset}/steps{args.steps}/{','.join(names)}/seq{args.sequences}/seed{seed}"
            if source != "built-in" and args.tx_power_dbm != TEMPLATE.tx_power_dbm:
                key += f"/tx{args.tx_power_dbm:g}"  # the traced sites differ
            done = progress.get(key)
            if done is None:
                t0 = time.perf_counter()
                out = workdir / "runs" / source / f"seed{seed}"
                run_args = [
                    *pretrain_args(args.preset, args.steps, args.smoke),
                    "--seed_everything",
                    str(seed),
                ]
                ckpt = train(WMLM_CONFIG, root, out, run_args, log, names)
                done = {"scores": test_real(ckpt, args.real_root, real, out / "test", smoke, log),
                        "seconds": time.perf_counter() - t0}  # fmt: skip
                progress.put(key, done)
            runs[str(seed)] = done
            print(f"{source}, seed {seed}: {summary(done['scores'])} ({done['seconds']:.0f} s)", flush=True)
        # per scenario, the mean over training seeds
        scores = {s: mean_scores([r["scores"][s] for r in runs.values()]) for s in real}
        per_seed = {seed: summary(r["scores"]) for seed, r in runs.items()}
        results[source] = {
            "scores": scores,
            "per_seed": per_seed,
            "sites": len(names),
            "samples": samples(root, names),
        }
    report = {
        "date": str(datetime.date.today()),
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "sites": {n: progress.get(site_key(n, args)) for n in traced},
        "results": results,
    }
    if args.out:
        write(report, args.out)
    return report


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sionna_zero_shot.json").write_text(json.dumps(report, indent=2) + "\n")
    s = report["settings"]
    lines = [
        "# Zero-shot on real base stations from ray-traced streets (wmlm-sionna)",
        "",
        f"{report['date']}, {report['machine']}, {report['seconds']:.0f} s in all. Command:",
        "",
        "```bash",
        f"OMP_NUM_THREADS=1 python plugins/wmlm-sionna/benchmarks/zero_shot.py --real-root {s['real_root']} "
        f"--scenes {s['scenes']} --seeds {s['seeds']} --sequences {s['sequences']} --steps {s['steps']} "
        f"--tx-power-dbm {s['tx_power_dbm']} --preset {s['preset']} --train-seeds {s['train_seeds']} --workdir W --out {s['out']}",
        "```",
        "",
        f"Model: the benchmark configuration (`benchmarks/configs/wmlm.yaml`), preset `{s['preset']}`, "
        f"{s['steps']} optimizer steps (batch 64) on each source, model selection on 10 % of the source's "
        "own passes; no real sample is seen before the test. Scores: mean over the real development "
        f"scenarios and the three future steps; mean ± std over the training seeds {s['train_seeds']}.",
        "",
        "| trained on | sites | samples | top-1 | top-3 |",
        "|---|---|---|---|---|",
    ]
    for source, r in report["results"].items():
        cells = []
        for metric in ("top1", "top3"):
            values = np.array([v[metric] for v in r["per_seed"].values()])
            cells.append(
                f"{values.mean():.3f} ± {values.std():.3f}" if len(values) > 1 else f"{values[0]:.3f}"
            )
        lines.append(f"| {source} | {r['sites']} | {r['samples']} | {cells[0]} | {cells[1]} |")
    for name, (top1, top3) in REFERENCE.items():
        lines.append(f"| *{name}* | | | *{top1:.3f}* | *{top3:.3f}* |")
    scenarios = sorted(next(iter(report["results"].values()))["scores"]) if report["results"] else []
    lines += ["", "Per real scenario (top-1 / top-3, mean over the training seeds):", "", "| scenario | " + " | ".join(report["results"]) + " |",
              "|---|" + "---|" * len(report["results"])]  # fmt: skip
    for scenario in scenarios:
        cells = [
            "{:.3f} / {:.3f}".format(
                *(summary({scenario: r["scores"][scenario]})[k] for k in ("top1", "top3"))
            )
            for r in report["results"].values()
        ]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    lines += ["", "Ray-traced sites (samples, seconds to trace and write):", ""]
    lines += [f"- {n}: {v['samples']} samples, {v['seconds']:.0f} s" for n, v in report["sites"].items() if v]
    (out / "sionna_zero_shot.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real-root", type=Path, required=True, help="folder of the real development scenarios")
    p.add_argument("--scenes", default="simple_street_canyon,munich,etoile,florence", help="comma-separated")
    p.add_argument("--seeds", default="0,1", help="comma-separated site seeds per scene")
    p.add_argument("--sequences", type=int, default=24, help="vehicle passes per site")
    p.add_argument("--max-depth", type=int, default=2, help="reflections per traced path")
    p.add_argument(
        "--tx-power-dbm", type=float, default=TEMPLATE.tx_power_dbm, help="transmit power of the traced sites"
    )
    p.add_argument("--sources", default=",".join(SOURCES), help=f"which of {', '.join(SOURCES)} to train on")
    p.add_argument("--preset", default="tiny", help="model size")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps of every training run")
    p.add_argument("--train-seeds", default="0,1,2", help="comma-separated training seeds per source")
    p.add_argument("--workers", type=int, default=1, help="processes drawing built-in sites")
    p.add_argument("--workdir", type=Path, required=True, help="sites, checkpoints, progress")
    p.add_argument("--out", type=Path, help="folder for sionna_zero_shot.md/.json")
    p.add_argument("--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless")
    args = p.parse_args(argv)
    unknown = [s for s in args.sources.split(",") if s not in SOURCES]
    if unknown:
        p.error(f"--sources: unknown {unknown}; available: {', '.join(SOURCES)}")
    return run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
