"""Does the paradigm pay? Alignment (stage 1) and extra sensors against no alignment and beam power alone,
on procedural simulated sites that training never saw.

    python benchmarks/paradigm.py [--sites 64 --test-sites 8 --sequences 20 --seeds 0 1 2]
        [--modalities beam image gps] [--fusion sum tokens] [--markdown docs/results/paradigm.md]

Data: procedural sites 1..``--sites`` of population ``--site-seed`` (``SimulatedDataModule(random_sites=...)``);
the last ``--test-sites`` are held out (every window of them is a test window), the others train (10 % of
their passes validate). Every experiment compares the aligned model (anchor beam, symmetric InfoNCE) with
the unaligned one at the same epoch budget:

1. **Few labels** (heads ``blockage`` + ``position``). Stage 1 runs once as its own fit on every training
   window (``data.train_windows`` limits both stages of one fit, so the stages cannot share a fit); stage 2
   starts from it (``model.init_from``) and trains on N labelled windows (``data.train_windows``: whole
   passes). The unaligned model trains stage 2 alone from random weights on the same N windows. Stage 2 gets
   about ``--label-steps`` optimizer steps whatever N is. Metrics on the held-out sites: blockage F1
   (``test/blockage/f1``) and mean position error (``test/position/distance_m``).
2. **Missing modality** (head ``beam``, relative to the last best beam). Trained with every modality of
   ``--modalities``; tested with everything, with the camera gone (``image`` left out of ``data.inputs``),
   with GPS gone, and with the beam sweep of the last past step gone (``DropLastBeamStep``: the step's
   beam mask is False, so its embedding is not fused; its power is the previous step's, because the
   ``last_beam`` frame and the relative beam head read the last sweep's best beam).
3. **Unseen site, everything present**: the models of 2 against beam power alone (top-1, mean of 3 steps).

``--fusion sum tokens`` repeats every experiment per fusion mode. The beam-training-saved experiment
(emergent beam head on other modalities' embeddings) and the anchor ablation (Fig. 4e, S_few vs S_all) are
in ``paradigm_sensors.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import machine, quiet_run, report  # noqa: E402
from paradigm_report import CONDITIONS, mean, plot, spread, summarise, verdict  # noqa: E402, F401

# LightningCLI resolves the test-time callback by class path; as a script this module is __main__
sys.modules.setdefault("paradigm", sys.modules[__name__])

MODALITIES = {  # the quickstart's site-invariant features
    "beam": {"class_path": "wmlm.modalities.BeamModality", "init_args": {"frame": "last_beam"}},
    "image": {"class_path": "wmlm.modalities.ImageModality", "init_args": {"tower": "tiny"}},
    "gps": {"class_path": "wmlm.modalities.GpsModality", "init_args": {"features": "range"}},
}
BEAM_HEAD = {"class_path": "wmlm.heads.BeamHead", "init_args": {"relative_to": "beam"}}


class DropLastBeamStep(Callback):
    """Test time: the beam sweep of the last past step is missing (mask False, power of the step before)."""

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        beam = batch["beam"]
        beam[:, -1] = beam[:, -2]
        masks = batch.setdefault("mask", {})
        mask = masks.get("beam")
        if mask is None:
            mask = masks["beam"] = beam.new_ones(beam.shape[:2], dtype=bool)
        mask[:, -1] = False


class Runner:
    """Writes one YAML config per run and fits / tests it through the CLI, quietly."""

    def __init__(self, args: argparse.Namespace, tmp: Path, log: io.TextIOBase) -> None:
        self.args, self.tmp, self.log, self.count = args, tmp, log, 0
        sites = [f"s{args.site_seed}_site{k:05d}" for k in range(1, args.sites + 1)]
        self.test_sites = sites[-args.test_sites :]
        sensors = ["camera"] if "image" in args.modalities else []
        self.data = {
            "class_path": "wmlm.data.simulated.SimulatedDataModule",
            "init_args": {
                "presets": [],
                "random_sites": args.sites,
                "site_seed": args.site_seed,
                "sequences": args.sequences,
                "sim_workers": args.sim_workers,
                "sensors": sensors,
                "cache_dir": args.cache_dir,
                "split": "scenario",
                "test_scenarios": self.test_sites,
                "val_fraction": 0.1,
                "train_strides": [1, 2],
                "batch_size": args.batch_size,
            },
        }

    def config(self, model: dict, seed: int, data: dict | None = None, callbacks: list | None = None) -> Path:
        self.count += 1
        out = self.tmp / f"run{self.count}"
        trainer: dict[str, Any] = {
            "accelerator": self.args.accelerator,
            "devices": 1,
            "default_root_dir": str(out),
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 10,
            **({"callbacks": callbacks} if callbacks else {}),
        }
        if self.args.smoke:
            trainer.update(limit_train_batches=2, limit_val_batches=1, limit_test_batches=2)
            data = {"val_fraction": 0.4, **(data or {})}  # a validation pass per site of a 3-pass fixture
        base = {
            "preset": self.args.preset,
            "embed_dim": self.args.embed_dim,
            "checkpoint_every_n_steps": None,
        }
        config = {
            "seed_everything": seed,
            "trainer": trainer,
            "model": {"class_path": "wmlm.WMLM", "init_args": {**base, **model}},
            "data": {**self.data, "init_args": {**self.data["init_args"], **(data or {})}},
        }
        path = (
            self.tmp / "configs" / f"run{self.count}.yaml"
        )  # not in default_root_dir: the CLI saves one there
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def fit(self, model: dict, seed: int, data: dict | None = None, extra: list[str] = ()) -> tuple[str, Any]:
        config = self.config(model, seed, data)
        cli = quiet_run(["fit", "--config", str(config), "--test_after_fit", "false", *extra], self.log)
        best = cli.trainer.checkpoint_callback.best_model_path
        if not best:
            raise RuntimeError(f"no best checkpoint (was the validation split empty?); see {config}")
        return best, cli

    def test(self, model: dict, seed: int, ckpt: str, data: dict | None = None, callbacks=None) -> dict:
        config = self.config(model, seed, data, callbacks)
        cli = quiet_run(["test", "--config", str(config), "--ckpt_path", ckpt], self.log)
        return {k: float(v) for k, v in cli.trainer.callback_metrics.items()}


def modality_specs(names: list[str]) -> list[dict]:
    return [MODALITIES[n] for n in names]


def few_labels(run: Runner, fusion: str, seed: int) -> dict[str, dict[str, float]]:
    """``{"aligned N=50": {"f1": .., "distance_m": ..}, "unaligned N=50": ..., ...}`` of one seed."""
    a = run.args
    common = {
        "modalities": modality_specs(a.modalities),
        "anchor": "beam",
        "heads": [
            {"class_path": "wmlm.heads.BlockageHead", "init_args": {"pos_weight": a.blockage_pos_weight}},
            {"class_path": "wmlm.heads.PositionHead"},
        ],
        "fusion": fusion,
        "monitor": "val/loss",
        "monitor_mode": "min",
    }
    align_model = {**common, "align_epochs": a.align_epochs, "adapt_epochs": 0, "monitor": "val/align_loss"}
    stage1, _ = run.fit(align_model, seed)
    results = {}
    for n in a.labels:
        batches = math.ceil(n / a.batch_size)
        epochs = 1 if a.smoke else max(1, math.ceil(a.label_steps / batches))
        extra = ["--trainer.check_val_every_n_epoch", str(max(1, epochs // 8))]
        for name, init in (("aligned", stage1), ("unaligned", None)):
            model = {**common, "align_epochs": 0, "adapt_epochs": epochs, "init_from": init}
            best, _ = run.fit(model, seed, {"train_windows": n}, extra)
            metrics = run.test(model | {"init_from": None}, seed, best)
            results[f"{name} N={n}"] = {
                "f1": metrics["test/blockage/f1"],
                "auroc": metrics.get("test/blockage/auroc", float("nan")),
                "distance_m": metrics["test/position/distance_m"],
                "epochs": epochs,
            }
    return results


def beam_top1(metrics: dict, future: int = 3) -> dict[str, float]:
    return {
        "top1": mean([metrics[f"test/beam/top1_t{s}"] for s in range(1, future + 1)]),
        "top3": mean([metrics[f"test/beam/top3_t{s}"] for s in range(1, future + 1)]),
    }


def missing_modality(run: Runner, fusion: str, seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {condition: {"top1", "top3"}}}`` of one seed; models aligned, unaligned, beam alone."""
    a = run.args
    names = a.modalities
    total = a.align_epochs + a.adapt_epochs
    base = {
        "anchor": "beam",
        "heads": [BEAM_HEAD],
        "augmentations": [{"class_path": "wmlm.model.augment.BeamFlip"}],
        "fusion": fusion,
        "monitor": "val/beam/top1",
        "monitor_mode": "max",
    }
    models = {
        "aligned": {
            **base,
            "modalities": modality_specs(names),
            "align_epochs": a.align_epochs,
            "adapt_epochs": a.adapt_epochs,
        },
        "unaligned": {**base, "modalities": modality_specs(names), "align_epochs": 0, "adapt_epochs": total},
        "beam alone": {
            **base,
            "modalities": modality_specs(["beam"]),
            "align_epochs": 0,
            "adapt_epochs": total,
        },
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, model in models.items():
        best, cli = run.fit(model, seed)
        inputs = cli.model.data_fields()["inputs"]
        per = {"all present": beam_top1(run.test(model, seed, best))}
        if label != "beam alone":
            for condition, gone in (("camera gone", "image"), ("GPS gone", "gps")):
                if gone in inputs:
                    kept = {k: v for k, v in inputs.items() if k != gone}
                    per[condition] = beam_top1(run.test(model, seed, best, {"inputs": kept}))
            dropped = run.test(model, seed, best, callbacks=[{"class_path": "paradigm.DropLastBeamStep"}])
            per["last beam sweep gone"] = beam_top1(dropped)
        results[label] = per
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=64, help="procedural sites simulated (train + test)")
    parser.add_argument("--test-sites", type=int, default=8, help="the last this many sites are held out")
    parser.add_argument("--site-seed", type=int, default=0, help="population of the procedural sites")
    parser.add_argument("--sequences", type=int, default=20, help="vehicle passes simulated per site")
    parser.add_argument(
        "--sim-workers", type=int, default=4, help="processes simulating sites on a cache miss"
    )
    parser.add_argument("--cache-dir", help="simulator cache (default $WMLM_CACHE_DIR or ~/.cache/wmlm)")
    parser.add_argument("--modalities", nargs="+", default=["beam", "image", "gps"], choices=list(MODALITIES))
    parser.add_argument("--fusion", nargs="+", default=["sum"], choices=["sum", "tokens"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--labels", nargs="+", type=int, default=[50, 200, 1000], help="labelled windows N")
    parser.add_argument("--label-steps", type=int, default=400, help="stage-2 optimizer steps of few labels")
    parser.add_argument(
        "--blockage-pos-weight", type=float, default=10.0, help="weight of blocked steps (rare) in the loss"
    )
    parser.add_argument("--align-epochs", type=int, default=5)
    parser.add_argument("--adapt-epochs", type=int, default=15)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument(
        "--experiments", nargs="+", default=["few_labels", "missing"], choices=["few_labels", "missing"]
    )
    parser.add_argument("--markdown", type=Path, help="write the tables here (and .json / .png beside it)")
    parser.add_argument("--json", type=Path, help="write the scores here (default: beside --markdown)")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    if args.modalities[0] != "beam":
        raise SystemExit("--modalities: start with beam (the anchor and the beam head's frame)")
    if not 1 <= args.test_sites < args.sites:
        raise SystemExit(
            f"--test-sites {args.test_sites}: must leave training sites among --sites {args.sites}"
        )
    if args.smoke:
        args.preset, args.embed_dim, args.align_epochs, args.adapt_epochs = "tiny", 16, 1, 1
    log = io.StringIO()
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = Runner(args, Path(tmp), log)
        for fusion in args.fusion:
            for seed in args.seeds:
                per: dict[str, Any] = {}
                if "few_labels" in args.experiments:
                    per["few_labels"] = few_labels(run, fusion, seed)
                if "missing" in args.experiments:
                    per["missing"] = missing_modality(run, fusion, seed)
                results.setdefault(fusion, {})[str(seed)] = per
                print(
                    f"[paradigm] fusion {fusion}, seed {seed}: {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
    seconds = time.perf_counter() - started
    complete = set(args.experiments) == {"few_labels", "missing"}
    few_rows, miss_rows, targets = summarise(results, args) if complete else ([], [], [])
    note = (
        f", {seconds:.0f} s; sites {args.sites} ({args.test_sites} held out: {', '.join(run.test_sites)}), "
        f"{args.sequences} passes each, seeds {args.seeds}"
    )
    report(
        "Few labels on unseen sites: blockage F1 (%) and position error (m)",
        ["fusion", "N", "model", "blockage F1 (%)", "blockage AUROC", "position error (m)"],
        few_rows,
        "paradigm.py",
        argv,
        args.markdown,
        note=note,
    )
    miss_title = "Missing modality and extra sensors on unseen sites: beam top-1 / top-3 (mean of 3 steps)"
    report(
        miss_title,
        ["fusion", "model", "test condition", "top-1", "top-3", "top-1 drop"],
        miss_rows,
        "paradigm.py",
        argv,
        None,
    )
    print("\n".join(targets))
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "command": "python benchmarks/paradigm.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": args.seeds,
        "seconds": seconds,
        "settings": {k: v for k, v in vars(args).items() if k not in ("markdown", "json")},
        "test_sites": run.test_sites,
        "results": results,
        "targets": targets,
    }
    if args.markdown:
        miss_table = [
            "",
            f"## {miss_title}",
            "",
            "| fusion | model | test condition | top-1 | top-3 | top-1 drop |",
            "|---|---|---|---|---|---|",
            *("| " + " | ".join(r) + " |" for r in miss_rows),
        ]
        lines = [*miss_table, "", "## Targets (issue 13)", "", *targets, ""]
        with args.markdown.open("a") as f:
            f.write("\n".join(lines))
        if complete:  # the figure has a panel per experiment
            plot(results, args, args.markdown.with_suffix(".png"))
    json_path = args.json or (args.markdown.with_suffix(".json") if args.markdown else None)
    if json_path:
        json_path.write_text(json.dumps(payload, indent=2, default=str))
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
