"""Generalization ideas under leave-one-site-out on the real development sites: kept or dropped.

    OMP_NUM_THREADS=1 python benchmarks/generalization.py --real-root ../shared/data/deepsense6g \
        --epochs 6 --seeds 3 --variants "baseline,stride 1,2,3,tiny preset,ensemble of 3 seeds" \
        --workdir W --out docs/results

Measures, for each idea, the top-1 and top-3 beam accuracy (mean over t+1..t+3) on every scenario of a
held-out real site when the benchmark configuration (``configs/wmlm.yaml``) is trained for ``--epochs``
epochs on the other three sites (A = scenarios 1, 2; C = 5; D = 6; F = 8, 9), and compares the mean
over the held-out scenarios with the ``baseline`` variant (the configuration as it is). An idea is one
variant: a few extra CLI overrides of the same training run (``VARIANTS``), trained with seeds
0..``--seeds``-1 and scored by the mean over seeds. ``sim mixed``: every epoch also holds as many windows
of ``--sim-sites`` procedural sites (drawn once under ``WORKDIR/sim``). The ensembles (``ENSEMBLES``)
average, window by window, the softmax beam probabilities of their variant (``baseline`` or ``sim mixed``)
trained with seeds 0, 1 and 2 (``average_probabilities``). Verdict: **kept** if the mean top-1 gains at least
``KEEP_TOP1`` without any loss of top-3, else **dropped**. Ideas that cannot change the model's input
are listed in ``NOT_RUN`` with the reason, and not trained.

Writes ``generalization.md`` and ``generalization.json`` under ``--out``. Every finished
(variant, held-out site) run is appended to ``WORKDIR/progress.jsonl``; rerunning with the same
``--workdir`` skips what is done there.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import SMOKE_ARGS, SMOKE_MODEL, WMLM_CONFIG, Scores, machine, mean_scores, summarise, train  # noqa: E402
from real_deepsense import DEV_SITES  # noqa: E402
from sim2real import Progress, _names, generate, summary, test_real  # noqa: E402

from wmlm.data.datamodule import DeepSenseDataModule  # noqa: E402
from wmlm.data.deepsense import find_scenarios  # noqa: E402
from wmlm.deploy.export import load_model  # noqa: E402
from wmlm.metrics import beam_metrics  # noqa: E402

ENSEMBLE = "ensemble of 3 seeds"
ENSEMBLE_SEEDS = (0, 1, 2)  # the members of an ensemble: its variant trained with these seeds, averaged
SIM_MIXED = "sim mixed"
SIM_ENSEMBLE = "sim mixed, ensemble of 3 seeds"
SIM_MIX_SHARE = 0.5  # share of simulated windows in every epoch of ``SIM_MIXED``, as in sim2real.py
ENSEMBLES = {ENSEMBLE: "baseline", SIM_ENSEMBLE: SIM_MIXED}  # ensemble -> the variant its members train
KEEP_TOP1 = 0.005  # mean top-1 gain (0.5 points) for a kept idea; top-3 must not drop
VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    # speed: windows taking every 3rd sample too, vehicles three times as fast (or a site sampled slower)
    "stride 1,2,3": ["--data.train_strides", "[1, 2, 3]"],
    "tiny preset": ["--model.preset", "tiny"],
    # codebook offset: the beam axis shifted by up to 8 beams per window, on top of the mirror
    "codebook shift": [
        "--model.augmentations",
        "[{class_path: wmlm.model.augment.BeamFlip},"
        " {class_path: wmlm.model.augment.BeamShift, init_args: {max_shift: 8}}]",
    ],
    # array orientation, the other way round: the configuration without its mirrored windows (BeamFlip)
    "no mirror": ["--model.augmentations", "[]"],
    ENSEMBLE: [],  # no training of its own: the baseline trained with ENSEMBLE_SEEDS, averaged
    # many simulated sites: every epoch also holds as many windows drawn from procedural sites
    # (``--sim-sites`` of ``--sim-sequences`` passes, drawn under WORKDIR/sim; the options are added in ``run``)
    SIM_MIXED: [],
    SIM_ENSEMBLE: [],  # SIM_MIXED trained with ENSEMBLE_SEEDS, averaged
}
NOT_RUN = {
    "power gain": "a no-op: `BeamModality` normalises every power vector by its own peak "
    "(`wmlm.beams.normalize_power`, `db` mode: 10 log10(p / max p) clipped at -30 dB), and "
    "`BeamHead(relative_to=beam)` and the `last_beam` frame read the argmax only, so a gain of g dB "
    "on a window (or on any single step) leaves the model's input and output unchanged",
}


def average_probabilities(probabilities: Sequence[Tensor]) -> Tensor:
    """The ensemble's beam probabilities ``[N, F, beams]``: the mean of the members' softmax outputs."""
    if not probabilities or any(p.shape != probabilities[0].shape for p in probabilities):
        raise ValueError(
            f"ensemble: members' probabilities differ in shape: {[list(p.shape) for p in probabilities]}"
        )
    return torch.stack(list(probabilities)).mean(dim=0)


def score(probabilities: Tensor, labels: Tensor) -> Scores:
    """Top-1/top-3 per future step and DBA of beam scores ``[N, F, beams]`` against labels ``[N, F]``."""
    metrics = beam_metrics(labels.shape[1])
    metrics.update(probabilities, labels)
    return summarise({f"test/beam/{k}": v for k, v in metrics.compute().items()}, labels.shape[1])


def held_out_probabilities(ckpt: str, root: Path, scenario: str) -> tuple[Tensor, Tensor]:
    """Softmax beam probabilities ``[N, F, beams]`` of ``ckpt`` on every window of ``scenario`` (the windows
    ``benchlib.test`` scores, in the same order) and the true beams ``[N, F]``."""
    model = load_model(ckpt)
    fields = model.data_fields()
    data = DeepSenseDataModule(
        root, scenarios=[scenario], split="scenario", test_scenarios=[scenario], inputs=fields["inputs"],
        targets=fields["targets"], past=fields.get("past"), future=fields.get("future"), batch_size=256,
    )  # fmt: skip
    data.setup("test")
    probabilities, labels = [], []
    with torch.no_grad():
        for batch in data.test_dataloader():
            probabilities.append(model(batch)["beam"].softmax(dim=-1))
            labels.append(batch["target"]["beam"])
    return torch.cat(probabilities), torch.cat(labels)


def ensemble_scores(ckpts: Sequence[str], root: Path, scenarios: Sequence[str]) -> dict[str, Scores]:
    """``{scenario: scores}`` of the members' averaged probabilities on every window of each scenario."""
    out = {}
    for scenario in scenarios:
        members = [held_out_probabilities(c, root, scenario) for c in ckpts]
        if any(not torch.equal(labels, members[0][1]) for _, labels in members):
            raise ValueError(f"ensemble: members were scored on different windows of {scenario}")
        out[scenario] = score(average_probabilities([p for p, _ in members]), members[0][1])
    return out


def run(args: argparse.Namespace) -> dict:
    console, log = Console(), io.StringIO()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    progress = Progress(workdir / "progress.jsonl")
    real = [p.name for p in find_scenarios(args.real_root)]
    budget = ["--model.adapt_epochs", str(args.epochs)]
    if args.smoke:
        budget = [*SMOKE_ARGS, *SMOKE_MODEL["wmlm"]]
    tag = "smoke" if args.smoke else f"epochs{args.epochs}"
    started = time.perf_counter()
    results: dict[str, dict[str, dict]] = {}  # {variant: {site: {"scores": {scenario: Scores}, ...}}}
    overrides_of = dict(VARIANTS)
    if {SIM_MIXED, SIM_ENSEMBLE} & set(split_variants(args.variants)):
        sim_root = workdir / "sim"
        generate(sim_root, args.sim_sites, args.sim_sequences, args.workers, console)
        overrides_of[SIM_MIXED] = ["--data.mix_root", str(sim_root), "--data.mix_share", str(SIM_MIX_SHARE)]

    def trained(variant: str, site: str, held: list[str], others: list[str], seed: int) -> dict:
        run_name = f"{variant}/{site}/{tag}"
        if variant == SIM_MIXED:  # the drawn population is part of the run's identity
            run_name += f"/sites{args.sim_sites}/seq{args.sim_sequences}"
        key = run_name + (f"/seed{seed}" if seed else "")
        done = progress.get(key)
        if done is None:
            t0 = time.perf_counter()
            # one folder per run key: a rerun with another budget must not meet this run's test configs
            out = workdir / "runs" / run_name.replace(" ", "_").replace(",", "") / f"seed{seed}"
            overrides = [*budget, *overrides_of[variant], "--seed_everything", str(seed)]
            ckpt = train(WMLM_CONFIG, args.real_root, out, overrides, log, others)
            scores = test_real(
                ckpt, args.real_root, held, out / "test", SMOKE_ARGS if args.smoke else [], log
            )
            done = {"ckpt": ckpt, "scores": scores, "seconds": time.perf_counter() - t0}
            progress.put(key, done)
        mean = summary(done["scores"])
        console.print(
            f"{variant} seed {seed}, held out {site}: {mean['top1']:.3f} / {mean['top3']:.3f} "
            f"({done['seconds']:.0f} s)"
        )
        return done

    def seeds_mean(runs: list[dict]) -> dict:
        scores = {s: mean_scores([r["scores"][s] for r in runs]) for s in runs[0]["scores"]}
        return {"scores": scores, "runs": runs, "seconds": sum(r["seconds"] for r in runs)}

    held_sites = _names(args.held_out) if args.held_out else list(DEV_SITES)
    for variant in split_variants(args.variants):
        for site in held_sites:
            held = [s for s in DEV_SITES[site] if s in real]
            others = [s for s in real if s not in DEV_SITES[site]]
            if not held or not others:
                continue
            if variant not in ENSEMBLES:
                runs = [trained(variant, site, held, others, seed) for seed in range(args.seeds)]
                results.setdefault(variant, {})[site] = seeds_mean(runs)
                continue
            members = [trained(ENSEMBLES[variant], site, held, others, seed) for seed in ENSEMBLE_SEEDS]
            key = f"{variant}/{site}/{tag}"
            done = progress.get(key)
            if done is None:
                t0 = time.perf_counter()
                scores = ensemble_scores([m["ckpt"] for m in members], args.real_root, held)
                done = {"members": [m["ckpt"] for m in members], "scores": scores,
                        "seconds": time.perf_counter() - t0 + sum(m["seconds"] for m in members)}  # fmt: skip
                progress.put(key, done)
            results.setdefault(variant, {})[site] = done
            mean = summary(done["scores"])
            console.print(f"{variant}, held out {site}: {mean['top1']:.3f} / {mean['top3']:.3f}")

    table = compare(results)
    report = {
        "date": str(datetime.date.today()),
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "command": "python benchmarks/generalization.py " + " ".join(args.argv),
        "settings": {k: str(v) for k, v in vars(args).items() if k != "argv"},
        "not_run": NOT_RUN,
        "variants": {
            v: {"overrides": overrides_of[v], "sites": per, **table[v]} for v, per in results.items()
        },
    }
    if args.out:
        write(report, args.out, console)
    return report


def compare(results: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per variant: per-site and overall means (over scenarios), deltas against ``baseline`` on the sites
    both ran, the verdict (none for ``baseline``) and the mean top-1 of every seed on its own."""
    table: dict[str, dict] = {}
    base = results.get("baseline", {})
    for variant, per_site in results.items():
        scenarios = {s: sc for done in per_site.values() for s, sc in done["scores"].items()}
        row: dict = {
            "per_site": {site: summary(d["scores"]) for site, d in per_site.items()},
            "mean": summary(scenarios),
        }
        shared = [site for site in per_site if site in base]
        if variant != "baseline" and shared:
            mine = summary({s: sc for site in shared for s, sc in per_site[site]["scores"].items()})
            theirs = summary({s: sc for site in shared for s, sc in base[site]["scores"].items()})
            delta = {m: mine[m] - theirs[m] for m in ("top1", "top3")}
            row["delta"] = delta
            row["verdict"] = "kept" if delta["top1"] >= KEEP_TOP1 and delta["top3"] >= 0 else "dropped"
        seeds = min((len(d.get("runs", [])) for d in per_site.values()), default=0)
        row["seed_top1"] = [
            summary({s: sc for d in per_site.values() for s, sc in d["runs"][i]["scores"].items()})["top1"]
            for i in range(seeds)
        ]
        row["train_seconds"] = sum(d["seconds"] for d in per_site.values())
        table[variant] = row
    return table


def write(report: dict, out: Path, console: Console) -> None:
    """``generalization.json`` and ``generalization.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "generalization.json").write_text(json.dumps(report, indent=2))
    sites = sorted({site for v in report["variants"].values() for site in v["per_site"]})
    lines = [
        "# Generalization ideas under leave-one-site-out",
        "",
        f"{report['date']}, {report['machine']}, {report['seconds']:.0f} s.",
        "",
        f"```bash\n{report['command']}\n```",
        "",
        "Top-1 / top-3, mean over t+1..t+3 and the held-out site's scenarios; **mean** over all held-out "
        f"scenarios, then over training seeds; deltas against `baseline` in points. Kept: mean top-1 "
        f"+{100 * KEEP_TOP1:.1f} points or more, top-3 not lower.",
        "",
        "| variant | " + " | ".join(f"held out {s}" for s in sites) + " | **mean** top-1 | top-3 | Δ top-1 | Δ top-3 | verdict | seeds: top-1 each | train + test s |",
        "|---|" + "---|" * (len(sites) + 7),
    ]  # fmt: skip
    for variant, v in report["variants"].items():
        cells = [
            f"{v['per_site'][s]['top1']:.3f} / {v['per_site'][s]['top3']:.3f}" if s in v["per_site"] else ""
            for s in sites
        ]
        delta = v.get("delta")
        deltas = [f"{100 * delta[m]:+.1f}" for m in ("top1", "top3")] if delta else ["", ""]
        seeds = ", ".join(f"{t:.3f}" for t in v["seed_top1"]) if v["seed_top1"] else "averaged, seeds 0-2"
        lines.append(
            f"| {variant} | " + " | ".join(cells) + f" | **{v['mean']['top1']:.3f}** | {v['mean']['top3']:.3f} | "
            + " | ".join(deltas) + f" | {v.get('verdict', '')} | {seeds} | {v['train_seconds']:.0f} |"
        )  # fmt: skip
    lines += ["", "Not run:", "", *(f"- **{name}**: {why}." for name, why in report["not_run"].items()), ""]
    (out / "generalization.md").write_text("\n".join(lines))
    console.print(f"wrote {out / 'generalization.md'}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real-root", type=Path, required=True, help="folder of the real development scenarios"
    )
    parser.add_argument("--variants", default="baseline,stride 1,2,3,tiny preset,ensemble of 3 seeds",
                        help=f"comma-separated, in order (',' inside a name is kept); of: {', '.join(VARIANTS)}")  # fmt: skip
    parser.add_argument("--held-out", help="comma-separated sites held out (default: A,C,D,F)")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs of every run")
    parser.add_argument(
        "--seeds", type=int, default=1, help="training seeds 0..N-1 per variant; scores are their mean"
    )
    parser.add_argument("--sim-sites", type=int, default=1000, help=f"procedural sites of '{SIM_MIXED}'")
    parser.add_argument(
        "--sim-sequences", type=int, default=16, help=f"vehicle passes per site of '{SIM_MIXED}'"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes drawing the procedural sites")
    parser.add_argument("--workdir", type=Path, required=True, help="checkpoints and progress.jsonl")
    parser.add_argument("--out", type=Path, help="folder for generalization.md/.json")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long runs for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.variants = ",".join(split_variants(args.variants))
    unknown = [v for v in split_variants(args.variants) if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; available: {', '.join(VARIANTS)}")
    bad_sites = [s for s in _names(args.held_out or "") if s not in DEV_SITES]
    if bad_sites:
        parser.error(f"--held-out: unknown sites {bad_sites}; available: {', '.join(DEV_SITES)}")
    return run(args)


def split_variants(text: str) -> list[str]:
    """Variant names from a comma list; names that hold commas (``stride 1,2,3``) are matched first."""
    names, rest = [], text
    while rest.strip(" ,"):
        rest = rest.strip(" ,")
        name = next(
            (v for v in sorted(VARIANTS, key=len, reverse=True) if rest.startswith(v)), rest.split(",")[0]
        )
        names.append(name.strip())
        rest = rest[len(name) :]
    return names


if __name__ == "__main__":
    main(sys.argv[1:])
