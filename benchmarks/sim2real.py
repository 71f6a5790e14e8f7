"""Simulation-to-real pretraining and its scaling curve: procedural sites in, real base stations out.

    python benchmarks/sim2real.py --real-root ../shared/data/deepsense6g --sites 10,100,1000 \
        --presets tiny,small --steps 2000 --loso-sites 1000 --loso-epochs 8 --out docs/results

1. Draws ``max(--sites)`` procedural sites once (``wmlm data synth --random-sites N --format arrays``);
   the first N of them are the population of size N (site K depends on the seed and K only).
2. **Zero-shot (a)**: for every model size and N, pretrains the benchmark configuration
   (``configs/wmlm.yaml``: beam power in the frame of the last best beam) for the same number of
   optimizer steps on the first N sites (model selection on 10 % of their passes, no real data), then
   tests it on every real development scenario.
3. **Leave-one-site-out (b)**: for each real development site, trains on the other three sites
   (``real only``, from scratch), fine-tunes the model pretrained on ``--loso-sites`` sites
   (``sim pretrained + real``), and trains from scratch on the real sites mixed with the simulated ones
   (``real + sim mixed``: ``data.mix_root``, ``--mix-share`` of every epoch), each for ``--loso-epochs``
   epochs, then tests on every scenario of the held-out site.
Writes ``sim2real.md``, ``sim2real.json`` and ``sim2real.png`` (accuracy against the number of
pretraining sites, one line per model size) under ``--out``. Every finished run is appended to
``WORKDIR/progress.jsonl``; rerunning with the same ``--workdir`` skips what is done there.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import sys
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import SMOKE_ARGS, WMLM_CONFIG, Scores, machine, mean_scores, test, train  # noqa: E402
from real_deepsense import DEV_SITES  # noqa: E402

from wmlm.cli import main as wmlm_main  # noqa: E402
from wmlm.data.deepsense import find_scenarios  # noqa: E402

SEED = 0  # the procedural population
LOSO_VARIANTS = ("real only", "sim pretrained + real", "real + sim mixed")


def _ints(text: str) -> list[int]:
    return sorted({int(v) for v in text.split(",") if v.strip()})


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _mean(scores: Scores, metric: str) -> float:
    values: list[float] = scores[metric]  # type: ignore[assignment]
    return sum(values) / len(values)


class Progress:
    """Finished runs, keyed by a name, kept in a JSON-lines file so an interrupted benchmark resumes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                self.done[record["key"]] = record["value"]

    def get(self, key: str) -> dict | None:
        return self.done.get(key)

    def put(self, key: str, value: dict) -> None:
        self.done[key] = value
        with self.path.open("a") as stream:
            stream.write(json.dumps({"key": key, "value": value}) + "\n")


def generate(sim_root: Path, sites: int, sequences: int, workers: int, console: Console) -> list[str]:
    """Draw (or resume drawing) ``sites`` procedural sites under ``sim_root``; their names, site 1 first."""
    started = time.perf_counter()
    code = wmlm_main(
        [
            "data", "synth", "--out", str(sim_root), "--random-sites", str(sites), "--seed", str(SEED), "--sequences",
            str(sequences), "--format", "arrays", "--sensors", "none", "--workers", str(workers), "--resume",
        ]
    )  # fmt: skip
    if code:
        raise SystemExit(f"wmlm data synth failed with exit code {code}")
    names = sorted(p.name for p in find_scenarios(sim_root))[:sites]
    console.print(f"{len(names)} procedural sites under {sim_root} in {time.perf_counter() - started:.0f} s")
    return names


def pretrain_args(preset: str, steps: int, smoke: bool) -> list[str]:
    """Options for a pretraining run of ``steps`` optimizer steps, validated 4 times along the way."""
    if smoke:
        return [*SMOKE_ARGS, "--model.preset", preset, "--model.adapt_epochs", "1", "--model.embed_dim", "16"]
    return [
        "--model.preset", preset, "--model.adapt_epochs", "1000", "--trainer.max_steps", str(steps),
        "--trainer.check_val_every_n_epoch", "null", "--trainer.val_check_interval", str(max(steps // 4, 1)),
        "--trainer.limit_val_batches", "40",
    ]  # fmt: skip


def test_real(
    ckpt: str, real_root: Path, scenarios: list[str], out: Path, extra: list[str], log: io.StringIO
) -> dict:
    """``{scenario: scores}`` of ``ckpt`` on every window of each real scenario."""
    return {
        s: test(WMLM_CONFIG, real_root, s, out / s, [*extra, "--ckpt_path", ckpt], log) for s in scenarios
    }


def summary(per_scenario: dict[str, Scores]) -> dict[str, float]:
    """Means over scenarios and the future steps: ``{"top1": x, "top3": y}``."""
    mean = mean_scores(list(per_scenario.values()))
    return {"top1": _mean(mean, "top1"), "top3": _mean(mean, "top3")}


def run(args: argparse.Namespace) -> dict:
    console = Console()
    log = io.StringIO()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    progress = Progress(workdir / "progress.jsonl")
    real_scenarios = [p.name for p in find_scenarios(args.real_root)]
    sites = _ints(args.sites)
    presets = _names(args.presets)
    started = time.perf_counter()
    sim_root = workdir / "sim"
    # real-only leave-one-site-out needs no simulated site at all
    uses_sim = any(v != "real only" for v in _names(args.loso_variants))
    needed = max([*sites, *([args.loso_sites] if uses_sim else [])], default=0)
    names = generate(sim_root, needed, args.sequences, args.workers, console) if needed else []
    smoke = SMOKE_ARGS if args.smoke else []

    zero_shot: dict[str, dict[str, dict]] = {}
    checkpoints: dict[tuple[str, int], str] = {}
    for preset in presets:
        for n in sites:
            key = f"zero_shot/{preset}/{n}/steps{args.steps}/seq{args.sequences}"
            out = workdir / "runs" / key.removeprefix("zero_shot/")  # one folder per run key
            done = progress.get(key)
            if done is None:
                t0 = time.perf_counter()
                ckpt = train(
                    WMLM_CONFIG, sim_root, out, pretrain_args(preset, args.steps, args.smoke), log, names[:n]
                )
                scores = test_real(ckpt, args.real_root, real_scenarios, out / "test", smoke, log)
                done = {"ckpt": ckpt, "scores": scores, "seconds": time.perf_counter() - t0}
                progress.put(key, done)
            checkpoints[(preset, n)] = done["ckpt"]
            zero_shot.setdefault(preset, {})[str(n)] = done
            console.print(f"zero-shot {preset} N={n}: {summary(done['scores'])} ({done['seconds']:.0f} s)")

    loso: dict[str, dict[str, Scores]] = {}
    loso_preset = args.loso_preset or presets[-1]
    pretrained = checkpoints.get((loso_preset, args.loso_sites))
    epochs = (
        ["--model.adapt_epochs", str(args.loso_epochs)]
        if not args.smoke
        else [*SMOKE_ARGS, "--model.preset", loso_preset, "--model.embed_dim", "16"]
    )
    variants = {
        "real only": [],
        "sim pretrained + real": ["--model.init_from", str(pretrained)] if pretrained else None,
        "real + sim mixed": ["--data.mix_root", str(sim_root), "--data.mix_share", str(args.mix_share)],
    }
    held_sites = _names(args.loso_held_out) if args.loso_held_out else list(DEV_SITES)
    for site in held_sites:
        held = [s for s in DEV_SITES[site] if s in real_scenarios]
        others = [s for s in real_scenarios if s not in DEV_SITES[site]]
        if not held or not others:
            continue
        for variant in _names(args.loso_variants):
            extra = variants[variant]
            if extra is None:
                console.print(
                    f"{variant}: no model pretrained on {args.loso_sites} sites with {loso_preset}; skipped"
                )
                continue
            key = f"loso/{loso_preset}/{variant}/{site}/epochs{args.loso_epochs}"
            if variant != "real only":
                key += f"/sites{args.loso_sites}/seq{args.sequences}/steps{args.steps}/share{args.mix_share}"
            done = progress.get(key)
            if done is None:
                t0 = time.perf_counter()
                # one folder per run key: a rerun with another budget must not meet this run's test configs
                out = workdir / "loso" / key.removeprefix("loso/").replace(" ", "_").replace("+", "")
                run_args = ["--model.preset", loso_preset, *epochs, *extra]
                ckpt = train(WMLM_CONFIG, args.real_root, out, run_args, log, others)
                done = {"scores": test_real(ckpt, args.real_root, held, out / "test", smoke, log),
                        "seconds": time.perf_counter() - t0}  # fmt: skip
                progress.put(key, done)
            loso.setdefault(variant, {}).update(done["scores"])
            console.print(
                f"LOSO {variant}, held out {site}: {summary(done['scores'])} ({done['seconds']:.0f} s)"
            )

    results = {
        "date": str(datetime.date.today()),
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "zero_shot": zero_shot,
        "loso": loso,
    }
    if args.out:
        write(results, args, console)
    return results


def write(results: dict, args: argparse.Namespace, console: Console) -> None:
    """``sim2real.json``, ``sim2real.md`` and ``sim2real.png`` under ``args.out``."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim2real.json").write_text(json.dumps(results, indent=2))
    command = "python benchmarks/sim2real.py " + " ".join(sys.argv[1:])
    lines = [
        "# Simulation-to-real pretraining",
        "",
        f"{results['date']}, {results['machine']}, {results['seconds']:.0f} s in all.",
        "",
        f"```bash\n{command}\n```",
        "",
        "## (a) Zero-shot on the real development scenarios, pretrained on N procedural sites only",
        "",
        f"Mean over the real scenarios and the three future steps; {args.steps} optimizer steps per run "
        "whatever N, so N changes the variety of the data, not the amount of training.",
        "",
        "| model size | sites N | top-1 | top-3 | train + test s |",
        "|---|---|---|---|---|",
    ]
    for preset, per_n in results["zero_shot"].items():
        for n, done in per_n.items():
            mean = summary(done["scores"])
            lines.append(
                f"| {preset} | {n} | {mean['top1']:.3f} | {mean['top3']:.3f} | {done['seconds']:.0f} |"
            )
    if results["loso"]:
        lines += [
            "",
            "## (b) Leave one real site out",
            "",
            f"Mean over the scenarios of the held-out sites and the three future steps; {args.loso_epochs} "
            f"epochs each, model size {args.loso_preset or _names(args.presets)[-1]}.",
            "",
            "| variant | top-1 | top-3 | scenarios |",
            "|---|---|---|---|",
        ]
        for variant, per in results["loso"].items():
            mean = summary(per)
            lines.append(f"| {variant} | {mean['top1']:.3f} | {mean['top3']:.3f} | {', '.join(per)} |")
    lines += ["", "![sim2real](sim2real.png)", ""]
    (out / "sim2real.md").write_text("\n".join(lines))
    plot(results, out / "sim2real.png")
    console.print(f"wrote {out / 'sim2real.md'}")


def plot(results: dict, path: Path) -> None:
    """Zero-shot top-1 and top-3 against N (log scale), one line per model size; LOSO real-only dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("top1", "top3")):
        for preset, per_n in results["zero_shot"].items():
            ns = [int(n) for n in per_n]
            ax.plot(
                ns,
                [summary(d["scores"])[metric] for d in per_n.values()],
                marker="o",
                label=f"{preset}, zero-shot",
            )
        if "real only" in results["loso"]:
            ax.axhline(
                summary(results["loso"]["real only"])[metric], ls="--", c="k", lw=1, label="real only (LOSO)"
            )
        ax.set_xscale("log")
        ax.set_xlabel("procedural pretraining sites N")
        ax.set_ylabel(f"{metric} on real sites (mean of 3 steps)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real-root", type=Path, required=True, help="folder of the real development scenarios"
    )
    parser.add_argument("--sites", default="10,100,1000", help="comma-separated population sizes N")
    parser.add_argument("--presets", default="tiny,small", help="comma-separated model sizes")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps of every pretraining run")
    parser.add_argument("--sequences", type=int, default=16, help="vehicle passes per procedural site")
    parser.add_argument("--workers", type=int, default=2, help="processes drawing sites")
    parser.add_argument(
        "--loso-sites", type=int, default=1000, help="N of the pretrained model fine-tuned in (b)"
    )
    parser.add_argument("--loso-preset", help="model size of (b) (default: the last of --presets)")
    parser.add_argument("--loso-epochs", type=int, default=8, help="epochs of every run of (b)")
    parser.add_argument("--loso-held-out", help="comma-separated sites held out in (b) (default: A,C,D,F)")
    parser.add_argument("--loso-variants", default=",".join(LOSO_VARIANTS), help="which of (b)'s variants")
    parser.add_argument(
        "--mix-share", type=float, default=0.5, help="share of simulated windows in (b)'s mix"
    )
    parser.add_argument("--out", type=Path, help="folder for sim2real.md/.json/.png")
    parser.add_argument("--workdir", type=Path, required=True, help="procedural sites, checkpoints, progress")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    unknown = [v for v in _names(args.loso_variants) if v not in LOSO_VARIANTS]
    if unknown:
        parser.error(f"--loso-variants: unknown {unknown}; available: {', '.join(LOSO_VARIANTS)}")
    return run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
