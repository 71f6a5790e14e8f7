"""The paper's experiments on real DeepSense 6G data, side by side with the baselines.

    python benchmarks/real_deepsense.py --root ../shared/data/deepsense6g --out docs/results

Experiments (``--only`` picks some):
  indist    every scenario split by vehicle pass (seed 0, 20 % test), models trained on all scenarios pooled,
            tested per scenario (the paper's Fig. 4d setting);
  loso      zero-shot, leave one site out: train on the other sites, test on every scenario of the held-out one;
  anchor    ablation under leave-one-site-out with beam + GPS: anchor beam / gps / joint, and no alignment stage
            (the paper's Fig. 4e);
  s4s6      pretraining on 4 scenarios (1, 2, 5, 6) vs all 6, tested on the held-out passes of all six.
Writes markdown tables, PNG plots and JSON under ``--out`` and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import (  # noqa: E402
    GRU_CONFIG,
    SAME_AUGMENTATIONS,
    SMOKE_ARGS,
    SMOKE_MODEL,
    UNTRAINED,
    WMLM_CONFIG,
    Scores,
    bar_plot,
    machine,
    markdown_table,
    rich_table,
    test,
    train,
)

DEV_SITES = {
    "A": ["scenario1", "scenario2"],
    "C": ["scenario5"],
    "D": ["scenario6"],
    "F": ["scenario8", "scenario9"],
}
S4 = ["scenario1", "scenario2", "scenario5", "scenario6"]
# beam in the centred frame (as configs/wmlm.yaml) plus GPS range, both stages
BEAM_GPS = [
    "--model.modalities",
    "[{class_path: wmlm.modalities.BeamModality, init_args: {frame: last_beam}},"
    " {class_path: wmlm.modalities.GpsModality, init_args: {features: range}}]",
    "--model.align_epochs",
    "3",
    "--model.adapt_epochs",
    "20",
]
ANCHOR_VARIANTS = {
    "anchor beam": ["--model.anchor", "beam"],
    "anchor gps": ["--model.anchor", "gps"],
    "joint anchors": ["--model.anchor", "[beam, gps]"],
    "no alignment": ["--model.align_epochs", "0", "--model.adapt_epochs", "23"],
}
# the GRU twice: as the paper's baseline, and with the data augmentations wmlm's config uses
# (benchlib.SAME_AUGMENTATIONS), so the comparison separates what the model contributes from what the
# augmentations do
LOSO_MODELS = {
    "wmlm": ("wmlm", []),
    "gru": ("gru", []),
    "gru + augmentations": ("gru", SAME_AUGMENTATIONS),
    **{name: (name, []) for name in UNTRAINED},
}
Results = dict[str, dict[str, Scores]]


class Runner:
    """Trains and tests models under one work folder, with optional smoke settings."""

    def __init__(
        self,
        root: Path,
        workdir: Path,
        smoke: bool,
        progress: Path | None = None,
        keep: Path | None = None,
        wmlm_config: Path = WMLM_CONFIG,
    ) -> None:
        self.root, self.workdir, self.smoke = root, workdir, smoke
        self.wmlm_config = wmlm_config
        self.progress, self.keep = progress, keep
        self.log = io.StringIO()
        self.count = 0

    def keep_checkpoint(self, ckpt: str, name: str) -> None:
        """Copy a trained checkpoint out of the temporary work folder (``--keep-checkpoints``)."""
        if self.keep is not None:
            self.keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ckpt, self.keep / f"{name}.ckpt")

    def record(self, results: Results, name: str, scenario: str, scores: Scores) -> None:
        """Store one score, and append it to the progress file, so an interrupted run keeps what it has."""
        results.setdefault(name, {})[scenario] = scores
        if self.progress is not None:
            with self.progress.open("a") as stream:
                stream.write(json.dumps({"model": name, "scenario": scenario, **scores}) + "\n")

    def _dir(self) -> Path:
        self.count += 1
        return self.workdir / f"run{self.count:03d}"

    def fit(
        self, kind: str, scenarios: list[str], extra: list[str] | None = None, test_fraction: float = 0.0
    ) -> str:
        config = self.wmlm_config if kind == "wmlm" else GRU_CONFIG
        args = self._model_args(kind, extra or [])
        return train(
            config, self.root, self._dir(), args, self.log, scenarios=scenarios, test_fraction=test_fraction
        )

    def _smoke(self) -> list[str]:
        return SMOKE_ARGS if self.smoke else []

    def _model_args(self, kind: str, extra: list[str]) -> list[str]:
        if kind == "knn":
            return [
                "--model",
                "wmlm.model.baselines.PositionKNN",
                "--trainer.max_epochs",
                "1",
                *self._smoke(),
            ]
        if not self.smoke:
            return extra
        # smoke: tiny sizes and one epoch, but an anchor variant still runs its alignment stage
        stage1 = ["--model.align_epochs", "1"] if "--model.anchor" in extra else []
        return [*extra, *SMOKE_ARGS, *SMOKE_MODEL[kind], *stage1]

    def score(
        self, kind: str, scenario: str, ckpt: str | None, held_out: bool, extra: list[str] | None = None
    ) -> Scores:
        if kind in UNTRAINED:
            args = ["--model", UNTRAINED[kind], *self._smoke()]
            return test(GRU_CONFIG, self.root, scenario, self._dir(), args, self.log, held_out=held_out)
        config = self.wmlm_config if kind == "wmlm" else GRU_CONFIG
        args = [*self._model_args(kind, extra or []), "--ckpt_path", str(ckpt)]
        return test(config, self.root, scenario, self._dir(), args, self.log, held_out=held_out)


def indist(run: Runner, sites: dict[str, list[str]]) -> Results:
    scenarios = [s for names in sites.values() for s in names]
    results: Results = {}
    for kind in ("wmlm", "gru", "knn", *UNTRAINED):
        ckpt = run.fit(kind, scenarios, test_fraction=0.2) if kind not in UNTRAINED else None
        for s in scenarios:
            run.record(results, kind, s, run.score(kind, s, ckpt, held_out=False))
    return results


def loso(
    run: Runner,
    sites: dict[str, list[str]],
    models: dict[str, tuple[str, list[str]]],
    held_out_sites: list[str] | None = None,
) -> Results:
    """``{model: {scenario: scores}}``, each scenario scored by models that never saw its site.

    ``models`` maps a result name to (kind: ``wmlm``, ``gru`` or an untrained baseline, extra CLI args);
    ``held_out_sites`` limits which sites take their turn as the unseen one (default: all).
    """
    results: Results = {name: {} for name in models}
    for site, held_out in sites.items():
        if held_out_sites is not None and site not in held_out_sites:
            continue
        train_on = [s for other, names in sites.items() if other != site for s in names]
        for name, (kind, extra) in models.items():
            ckpt = run.fit(kind, train_on, extra) if kind not in UNTRAINED else None
            if ckpt is not None:
                run.keep_checkpoint(ckpt, f"{name.replace(' ', '_')}_without_{site}")
            for scenario in held_out:
                run.record(
                    results, name, scenario, run.score(kind, scenario, ckpt, held_out=True, extra=extra)
                )
    return results


def s4s6(run: Runner, sites: dict[str, list[str]], s4: list[str]) -> Results:
    scenarios = [s for names in sites.values() for s in names]
    results: Results = {}
    for name, pretrain in (("S4", s4), ("S6", scenarios)):
        ckpt = run.fit("wmlm", pretrain, test_fraction=0.2)
        for s in scenarios:
            run.record(results, f"wmlm {name}", s, run.score("wmlm", s, ckpt, held_out=False))
    return results


def main(argv: list[str] | None = None) -> dict[str, Results]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, help="folder of the DeepSense scenario folders")
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="where tables and plots go")
    parser.add_argument("--only", default="indist,loso,anchor,s4s6", help="comma list of experiments")
    parser.add_argument(
        "--sites", nargs="*", help="site map as SITE=scen1,scen2 ... (default: the six dev scenarios)"
    )
    parser.add_argument(
        "--held-out",
        help="comma list of the sites that take a turn as the unseen one in loso/anchor (default all)",
    )
    parser.add_argument(
        "--anchor-variants",
        default=",".join(ANCHOR_VARIANTS),
        help="comma list of the anchor experiment's variants (with two modalities the three anchor choices "
        "train the same pair, so 'anchor beam,no alignment' says as much)",
    )
    parser.add_argument("--s4", help="comma list of the 4 pretraining scenarios of the s4s6 experiment")
    parser.add_argument(
        "--keep-checkpoints",
        type=Path,
        help="copy the leave-one-site-out checkpoints here (NAME_without_SITE.ckpt), e.g. for edge_finetune.py",
    )
    parser.add_argument(
        "--wmlm-config",
        type=Path,
        default=WMLM_CONFIG,
        help="wmlm's configuration (default benchmarks/configs/wmlm.yaml; configs/wmlm_sim.yaml adds camera + GPS)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        help="train nothing: merge these results (real_deepsense.json or KEY.progress.jsonl of earlier runs) "
        "into the tables and plots",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    if args.root is None and not args.merge:
        parser.error("--root is required (unless --merge)")
    sites = dict(item.split("=", 1) for item in args.sites) if args.sites else None
    sites = {k: v.split(",") for k, v in sites.items()} if sites else DEV_SITES
    s4 = args.s4.split(",") if args.s4 else S4
    held_out_sites = args.held_out.split(",") if args.held_out else None
    anchor_variants = args.anchor_variants.split(",")
    if any(v not in ANCHOR_VARIANTS for v in anchor_variants):
        parser.error(f"--anchor-variants {anchor_variants}: choose from {list(ANCHOR_VARIANTS)}")
    if held_out_sites and any(site not in sites for site in held_out_sites):
        parser.error(f"--held-out {held_out_sites}: sites are {list(sites)}")
    only = args.only.split(",")
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.date.today()} on {machine()}"
    experiments: dict[str, tuple[str, Callable[[Runner], Results]]] = {
        "indist": (
            "In-distribution (every scenario split by vehicle pass, all pooled)",
            lambda r: indist(r, sites),
        ),
        "loso": (
            "Zero-shot, leave one site out",
            lambda r: loso(r, sites, LOSO_MODELS, held_out_sites),
        ),
        "anchor": (
            "Anchor ablation (beam + GPS, leave one site out)",
            lambda r: loso(
                r,
                sites,
                {k: ("wmlm", [*BEAM_GPS, *ANCHOR_VARIANTS[k]]) for k in anchor_variants},
                held_out_sites,
            ),
        ),
        "s4s6": (
            "Pretraining on 4 vs 6 scenarios (tested on the held-out passes of all)",
            lambda r: s4s6(r, sites, s4),
        ),
    }
    unknown = [o for o in only if o not in experiments]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {list(experiments)}")
    command = "python benchmarks/real_deepsense.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.merge:
        merged = merge_results(args.merge)
        sources = ", ".join(f"`{path}`" for path in args.merge)
        merged_stamp = f"{datetime.date.today()}: merged from {sources} (each run's own table, with its machine and run time, is the .md of the same name)"
        for key in [k for k in only if k in merged]:
            write_outputs(key, experiments[key][0], merged[key], merged_stamp, command, args.out)
            console.print(rich_table(merged[key], experiments[key][0]))
        (args.out / "real_deepsense.json").write_text(json.dumps(merged, indent=2))
        return merged
    all_results: dict[str, Results] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in only:
            title, experiment = experiments[key]
            started = time.perf_counter()
            progress = args.out / f"{key}.progress.jsonl"
            progress.unlink(missing_ok=True)
            keep = args.keep_checkpoints / key if args.keep_checkpoints else None
            runner = Runner(args.root, Path(tmp) / key, args.smoke, progress, keep, args.wmlm_config)
            results = experiment(runner)
            seconds = time.perf_counter() - started
            all_results[key] = results
            console.print(rich_table(results, f"{title} ({seconds:.0f} s)"))
            write_outputs(key, title, results, f"{stamp}, {seconds:.0f} s", command, args.out)
            progress.unlink(missing_ok=True)  # complete: the markdown and JSON hold it all
    (args.out / "real_deepsense.json").write_text(json.dumps(all_results, indent=2))
    return all_results


def write_outputs(key: str, title: str, results: Results, stamp: str, command: str, out: Path) -> None:
    """``out/KEY.md`` (table, with the command and machine) and ``out/KEY_METRIC.png`` (bars)."""
    metric = "top1" if key == "indist" else "top3"
    bar_plot(results, metric, out / f"{key}_{metric}.png", title)
    (out / f"{key}.md").write_text(
        f"# {title}\n\n{stamp}.\n\n```bash\n{command}\n```\n\n{markdown_table(results)}\n"
        f"![{key}]({key}_{metric}.png)\n"
    )


def merge_results(paths: list[Path]) -> dict[str, Results]:
    """Results of several runs (``real_deepsense.json`` files or ``KEY.progress.jsonl`` files) in one dict.

    Runs that split the work (e.g. ``--held-out C`` and ``--held-out F`` in parallel) add their scenarios;
    a scenario scored twice for one model is an error rather than a silent choice.
    """
    merged: dict[str, Results] = {}

    def add(key: str, model: str, scenario: str, scores: Scores, path: Path) -> None:
        per = merged.setdefault(key, {}).setdefault(model, {})
        if scenario in per:
            raise SystemExit(f"--merge: {path} scores {model} on {scenario} in {key!r} again")
        per[scenario] = scores

    for path in paths:
        if path.name.endswith(".progress.jsonl"):
            key = path.name.removesuffix(".progress.jsonl")
            for line in path.read_text().splitlines():
                row = json.loads(line)
                add(key, row.pop("model"), row.pop("scenario"), row, path)
        else:
            for key, results in json.loads(path.read_text()).items():
                for model, per in results.items():
                    for scenario, scores in per.items():
                        add(key, model, scenario, scores, path)
    return merged


if __name__ == "__main__":
    main(sys.argv[1:])
