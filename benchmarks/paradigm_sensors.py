"""Issue 13's two sensor experiments that ``paradigm.py`` does not run: beam training saved, and the anchor
ablation (the paper's Fig. 4e), on procedural simulated sites.

    python benchmarks/paradigm_sensors.py [--test-sites 2 --train-sites 6 --few-sites 4 --sequences 20]
        [--settings seen unseen] [--seeds 0 1 2] [--markdown docs/results/paradigm_sensors.md]

Sites: sites ``1..--test-sites`` of population ``--site-seed`` are the unseen test sites, the next
``--train-sites`` train (10 % of their passes validate). Epoch budget: ``--align-epochs`` A of stage 1 plus
``--adapt-epochs`` S of stage 2, or A + S of stage 2 alone for a model without stage 1.

1. **Beam training saved** (``BeamModality(frame="absolute")`` and an absolute ``BeamHead``: without the past
   beam power there is no last best beam to be relative to). Camera + GPS in, the past beam power missing:
   - *emergent*: stage 1 aligns camera and GPS to the beam anchor on every training window; stage 2 trains
     backbone + head on beam-only inputs with the encoders frozen (so they stay in the aligned space). At test
     the beam is absent; the beam's fusion projection is copied onto the camera's and GPS's (each scaled by
     1/2, so the fused vector is the projection of their mean embedding): ImageBind-style emergent zero-shot.
     The same model tested with the beam present is the *beam-only head, beam present* reference row.
   - *supervised on sensors*: no stage 1; camera + GPS only, A + S epochs.
   - *aligned then fine-tuned*: the stage-1 weights of *emergent*, then S epochs of stage 2 on camera + GPS.
   And the beam swept at every other step only (``AlternateBeamSteps`` in training, ``AlternateBeamTest`` at
   test: the beam mask is False at alternate past steps, phase by window index) for the last two models with
   beam + camera + GPS in. Two settings (``--settings``): ``seen``: the training sites' held-out passes
   (``split: sequence``, 20 % of each site's passes tested, the test sites joining training), GPS ``enu`` (a
   site's map position fixes its absolute beam); ``unseen``: the test sites, GPS ``range`` (``enu`` is
   site-specific and ``range`` cannot tell the side of the base station, so the camera, mounted on the
   array, is the one sensor whose geometry can transfer), ``BeamFlip`` augmentation (mirrors beam + camera).
2. **Anchor ablation** on the unseen sites: beam (``last_beam`` frame) + camera + GPS ``range``, the relative
   beam head and ``BeamFlip`` (``paradigm.py``'s recipe), anchor beam / image / gps / joint / none (no stage
   1, A + S epochs of stage 2), trained on ``--train-sites`` sites and on the first ``--few-sites`` of them
   (the paper's S6 vs S4).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import machine, report  # noqa: E402
from paradigm import BEAM_HEAD, MODALITIES, Runner, beam_top1, mean, spread, verdict  # noqa: E402

from wmlm.beams import NUM_BEAMS  # noqa: E402
from wmlm.model.augment import BatchAugmentation, BeamFlip  # noqa: E402

# LightningCLI resolves the augmentation and the callback by class path; as a script this module is __main__
sys.modules.setdefault("paradigm_sensors", sys.modules[__name__])

BEAM_ABS = {"class_path": "wmlm.modalities.BeamModality", "init_args": {"frame": "absolute"}}
HEAD_ABS = {"class_path": "wmlm.heads.BeamHead"}
FLIP = {"class_path": "wmlm.model.augment.BeamFlip"}
SENSOR_FLIP = {"class_path": "paradigm_sensors.SensorFlip"}
ALTERNATE = {"class_path": "paradigm_sensors.AlternateBeamSteps"}
SAVED_MODELS = (
    "emergent",
    "supervised on sensors",
    "aligned then fine-tuned",
    "unaligned, beam every other step",
    "aligned then fine-tuned, beam every other step",
    "beam-only head, beam present",
)
ANCHORS = ("beam", "image", "gps", "beam+image+gps", "none")
TARGET_SAVED_PTS = 5.0  # issue 13: aligned then fine-tuned − supervised on sensors, top-3


def alternate_beam(batch: dict[str, Any], phase: torch.Tensor) -> None:
    """Mask the beam sweep at alternate past steps, in place: step ``p`` of ``P`` is kept where
    ``P - 1 - p + phase`` is even (phase ``[B]`` 0: the last step is swept, 1: it is not). Masked power is
    zeros with mask False, as the data module serves a missing step."""
    beam = batch["beam"]  # [B, P, beams] linear power
    steps = torch.arange(beam.shape[1], device=beam.device)
    keep = (beam.shape[1] - 1 - steps[None, :] + phase[:, None].to(beam.device)) % 2 == 0  # [B, P]
    masks = batch.setdefault("mask", {})
    old = masks.get("beam")
    masks["beam"] = keep if old is None else old.to(torch.bool) & keep
    batch["beam"] = beam * keep.unsqueeze(-1).to(beam.dtype)


class AlternateBeamSteps(BatchAugmentation):
    """Training (stage 2): the beam swept at every other step, random phase per window."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        out["mask"] = dict(batch.get("mask", {}))
        alternate_beam(out, torch.randint(0, 2, (len(batch["beam"]),)))
        return out


class SensorFlip(BeamFlip):
    """``BeamFlip`` that also takes batches without the beam input (camera + GPS models): it mirrors the beam
    labels and the camera frames (through a stand-in all-zero beam power, dropped again)."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        if "beam" in batch:
            return super().__call__(batch)
        labels = batch["target"]["beam"]  # [B, F] beam indices
        out = super().__call__(
            {**batch, "beam": torch.zeros(len(labels), 1, NUM_BEAMS, device=labels.device)}
        )
        del out["beam"]
        return out


class AlternateBeamTest(Callback):
    """Validation and test: the beam swept at every other step; the phase is the window's index parity, so
    consecutive windows of a pass see the sweep at alternate absolute steps, as a deployed sweep would."""

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        alternate_beam(batch, torch.as_tensor(batch["index"]).long() % 2)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        alternate_beam(batch, torch.as_tensor(batch["index"]).long() % 2)


def emergent_checkpoint(stage1: str, head: str, sources: list[str], out: Path) -> str:
    """The stage-1 checkpoint (every modality's aligned encoder) with the beam-only model ``head``'s weights
    on top (its beam encoder is stage 1's, frozen), and ``fusion.<m>`` of each of ``sources`` set to the beam's
    projection divided by ``len(sources)``: their sum fusion is the beam projection of their mean embedding."""
    state = torch.load(stage1, map_location="cpu", weights_only=False)
    weights = state["state_dict"]
    weights.update(torch.load(head, map_location="cpu", weights_only=False)["state_dict"])
    for m in sources:
        for part in ("weight", "bias"):
            weights[f"fusion.{m}.{part}"] = weights[f"fusion.beam.{part}"].clone() / len(sources)
    torch.save(state, out)
    return str(out)


def setting_data(run: Runner, setting: str) -> dict[str, Any]:
    if setting == "seen":  # every site's passes split 70 / 10 / 20; nothing is held out by site
        return {"split": "sequence", "test_scenarios": None, "test_fraction": 0.2}
    return {}


def beam_saved(run: Runner, setting: str, seed: int) -> dict[str, dict[str, float]]:
    """``{model: {"top1", "top3"}}`` of one seed and setting (``seen`` or ``unseen``); keys ``SAVED_MODELS``."""
    a = run.args
    features = "enu" if setting == "seen" else "range"
    gps = {"class_path": "wmlm.modalities.GpsModality", "init_args": {"features": features}}
    specs = [BEAM_ABS, MODALITIES["image"], gps]
    flip = [SENSOR_FLIP] if setting == "unseen" else []  # a mirror does not mirror enu GPS
    data = setting_data(run, setting)
    sensors_only = {"image": "image", "gps": "position"}  # data.inputs: the past beam power left out
    common = {"heads": [HEAD_ABS], "monitor": "val/beam/top1", "monitor_mode": "max"}
    total = a.align_epochs + a.adapt_epochs
    stage1, _ = run.fit(
        {**common, "modalities": specs, "anchor": "beam", "align_epochs": a.align_epochs, "adapt_epochs": 0,
         "monitor": "val/align_loss", "monitor_mode": "min"},
        seed,
        data,
    )  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    # emergent: backbone + head on beam-only inputs over the frozen aligned beam encoder, tested on the
    # sensors' embeddings (a model of the beam alone: validating stage 2 needs no sensor)
    beam_only = {**common, "modalities": [BEAM_ABS], "anchor": "beam", "align_epochs": 0,
                 "adapt_epochs": a.adapt_epochs, "init_from": stage1, "freeze_encoders": True,
                 "augmentations": flip}  # fmt: skip
    head, _ = run.fit(beam_only, seed, data)
    results["beam-only head, beam present"] = beam_top1(
        run.test({**beam_only, "init_from": None}, seed, head, data)
    )
    swapped = emergent_checkpoint(stage1, head, ["image", "gps"], run.tmp / f"emergent{run.count}.ckpt")
    every = {**common, "modalities": specs, "anchor": "beam", "align_epochs": 0, "adapt_epochs": 0}
    results["emergent"] = beam_top1(run.test(every, seed, swapped, {**data, "inputs": sensors_only}))
    # the sensor models have no beam encoder (anchor image: nothing to align, as stage 1 is not in their fit);
    # aligned then fine-tuned takes the image and GPS encoders of stage 1 through init_from
    sensors = {**common, "modalities": specs[1:], "anchor": "image"}
    runs = {
        "supervised on sensors": (sensors, None, flip, None),
        "aligned then fine-tuned": (sensors, stage1, flip, None),
        "unaligned, beam every other step": (every, None, [*flip, ALTERNATE], AlternateBeamTest),
        "aligned then fine-tuned, beam every other step": (
            every,
            stage1,
            [*flip, ALTERNATE],
            AlternateBeamTest,
        ),
    }
    for label, (model, init, augment, callback) in runs.items():
        epochs = a.adapt_epochs if init else total
        model = {**model, "align_epochs": 0, "adapt_epochs": epochs, "augmentations": augment}
        callbacks = [{"class_path": f"paradigm_sensors.{callback.__name__}"}] if callback else None
        # the checkpoint is chosen on validation under the test's condition
        extra = ["--trainer.callbacks", json.dumps(callbacks)] if callbacks else []
        best, _ = run.fit({**model, "init_from": init}, seed, data, extra)
        results[label] = beam_top1(run.test(model, seed, best, data, callbacks))
    return results


def anchor_ablation(run: Runner, sites: int, seed: int) -> dict[str, dict[str, float]]:
    """``{anchor: {"top1", "top3"}}`` on the unseen sites, trained on the first ``sites`` training sites."""
    a = run.args
    data = {"random_sites": a.test_sites + sites}
    results = {}
    for anchor in a.anchors:
        anchors = [] if anchor == "none" else anchor.split("+")
        epochs = (a.align_epochs, a.adapt_epochs) if anchors else (0, a.align_epochs + a.adapt_epochs)
        model = {
            "modalities": [MODALITIES[m] for m in ("beam", "image", "gps")],
            "anchor": anchors or ["beam"],
            "heads": [BEAM_HEAD],
            "augmentations": [FLIP],
            "align_epochs": epochs[0],
            "adapt_epochs": epochs[1],
            "monitor": "val/beam/top1",
            "monitor_mode": "max",
        }
        best, _ = run.fit(model, seed, data)
        results[anchor] = beam_top1(run.test(model, seed, best, data))
    return results


def cells(rows: list[dict[str, float]]) -> list[str]:
    return [spread([r["top1"] for r in rows]), spread([r["top3"] for r in rows])]


def summarise(results: dict[str, Any], args: argparse.Namespace) -> tuple[list, list, list[str]]:
    """Rows of the beam-saved table, rows of the anchor table, target lines."""
    saved_rows, anchor_rows, targets = [], [], []
    for setting, per_seed in results.get("beam_saved", {}).items():
        seeds = list(per_seed.values())
        for model in SAVED_MODELS:
            saved_rows.append([setting, model, *cells([s[model] for s in seeds])])
        for label, ours, theirs in (
            ("camera + GPS, no beam", "aligned then fine-tuned", "supervised on sensors"),
            (
                "beam every other step",
                "aligned then fine-tuned, beam every other step",
                "unaligned, beam every other step",
            ),
        ):
            gap = 100 * mean([s[ours]["top3"] - s[theirs]["top3"] for s in seeds])
            targets.append(
                f"- [{setting}] beam training saved, {label}: aligned then fine-tuned − unaligned ≥ "
                f"+{TARGET_SAVED_PTS:.0f} pts top-3: "
                + verdict(gap >= TARGET_SAVED_PTS, f"{gap:+.1f} pts, {len(seeds)} seeds")
            )
        gap = 100 * mean([s["emergent"]["top3"] - s["supervised on sensors"]["top3"] for s in seeds])
        targets.append(f"- [{setting}] (no target) emergent − supervised on sensors, top-3: {gap:+.1f} pts")
    per_sites = results.get("anchors", {})
    for sites, per_seed in per_sites.items():
        seeds = list(per_seed.values())
        for anchor in args.anchors:
            anchor_rows.append([sites, anchor, *cells([s[anchor] for s in seeds])])
    if per_sites:  # the paper's Fig. 4e ordering, checked on the largest site count
        largest = max(per_sites, key=lambda k: int(k[1:]))
        seeds = list(per_sites[largest].values())
        top1 = {x: mean([s[x]["top1"] for s in seeds]) for x in args.anchors}
        if "none" in top1:
            for anchor in [x for x in args.anchors if x != "none"]:
                gap = 100 * (top1[anchor] - top1["none"])
                targets.append(
                    f"- [{largest}] Fig. 4e: anchor {anchor} beats no alignment (top-1): "
                    + verdict(gap > 0, f"{gap:+.1f} pts")
                )
        joint = "beam+image+gps"
        if joint in top1 and len(top1) > 1:
            best = max((x for x in top1 if x != joint), key=top1.get)
            gap = 100 * (top1[joint] - top1[best])
            targets.append(
                f"- [{largest}] Fig. 4e: joint anchors best (top-1): "
                + verdict(gap > 0, f"{gap:+.1f} pts against the best other, {best}")
            )
        if len(per_sites) == 2:
            small = min(per_sites, key=lambda k: int(k[1:]))
            for anchor in args.anchors:
                gap = 100 * (top1[anchor] - mean([s[anchor]["top1"] for s in per_sites[small].values()]))
                targets.append(
                    f"- Fig. 4e: {largest} beats {small}, anchor {anchor} (top-1): "
                    + verdict(gap > 0, f"{gap:+.1f} pts")
                )
    return saved_rows, anchor_rows, targets


def plot(results: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    saved = results.get("beam_saved", {})
    width = 0.8 / max(len(saved), 1)
    for i, (setting, per_seed) in enumerate(saved.items()):
        values = [mean([s[m]["top3"] for s in per_seed.values()]) for m in SAVED_MODELS]
        axes[0].bar([x + i * width for x in range(len(SAVED_MODELS))], values, width, label=setting)
    labels = [m.replace(", ", ",\n").replace(" then", "\nthen") for m in SAVED_MODELS]
    axes[0].set_xticks([x + 0.4 - width / 2 for x in range(len(SAVED_MODELS))], labels, fontsize=6)
    axes[0].set_ylabel("beam top-3 (mean of 3 steps)")
    axes[0].set_title("beam training saved (absolute beams)")
    anchors = results.get("anchors", {})
    width = 0.8 / max(len(anchors), 1)
    for i, (sites, per_seed) in enumerate(anchors.items()):
        values = [mean([s[a]["top1"] for s in per_seed.values()]) for a in args.anchors]
        axes[1].bar([x + i * width for x in range(len(args.anchors))], values, width, label=sites)
    axes[1].set_xticks([x + 0.4 - width / 2 for x in range(len(args.anchors))], args.anchors, fontsize=7)
    axes[1].set_ylabel("beam top-1 on unseen sites (mean of 3 steps)")
    axes[1].set_title("anchor ablation (Fig. 4e)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--test-sites", type=int, default=8, help="sites 1..this are the unseen test sites")
    parser.add_argument("--train-sites", type=int, default=56, help="the next this many sites train")
    parser.add_argument("--few-sites", type=int, default=28, help="anchor ablation: also train on this many")
    parser.add_argument("--site-seed", type=int, default=0, help="population of the procedural sites")
    parser.add_argument("--sequences", type=int, default=20, help="vehicle passes simulated per site")
    parser.add_argument(
        "--sim-workers", type=int, default=4, help="processes simulating sites on a cache miss"
    )
    parser.add_argument("--cache-dir", help="simulator cache (default $WMLM_CACHE_DIR or ~/.cache/wmlm)")
    parser.add_argument("--settings", nargs="*", default=["seen", "unseen"], choices=["seen", "unseen"])
    parser.add_argument(
        "--anchors", nargs="*", default=list(ANCHORS), help="anchor ablation (none: skip stage 1)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--align-epochs", type=int, default=5)
    parser.add_argument("--adapt-epochs", type=int, default=15)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-strides", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--markdown", type=Path, help="write the tables here (and .json / .png beside it)")
    parser.add_argument(
        "--report-only", type=Path, help="write the tables from this results JSON, train nothing"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.few_sites <= args.train_sites:
        raise SystemExit(f"--few-sites {args.few_sites}: must be in [1, --train-sites {args.train_sites}]")
    unknown = [a for a in args.anchors if a != "none" and set(a.split("+")) - {"beam", "image", "gps"}]
    if unknown:
        raise SystemExit(f"--anchors: {unknown}; anchors are beam, image, gps, a+b joint, or none")
    if args.smoke:
        args.preset, args.embed_dim, args.align_epochs, args.adapt_epochs = "tiny", 16, 1, 1
    # what Runner reads: every simulated site, the camera among the sensors
    args.sites, args.modalities = args.test_sites + args.train_sites, ["beam", "image", "gps"]
    return args


def train_all(args: argparse.Namespace, partial: Path | None) -> tuple[dict[str, Any], list[str]]:
    """``({"beam_saved": {setting: {seed: ...}}, "anchors": {"S<n>": {seed: ...}}}, test sites)``; the
    results so far are rewritten to ``partial`` after every block (a run cut short keeps its seeds)."""
    log = io.StringIO()
    results: dict[str, Any] = {}
    started = time.perf_counter()
    site_counts = sorted({args.few_sites, args.train_sites}) if args.anchors else []
    with tempfile.TemporaryDirectory() as tmp:
        run = Runner(args, Path(tmp), log)
        # the first sites are the unseen ones, so that fewer training sites (Fig. 4e's S4) keep the same test set
        run.test_sites = [f"s{args.site_seed}_site{k:05d}" for k in range(1, args.test_sites + 1)]
        run.data["init_args"]["test_scenarios"] = run.test_sites
        run.data["init_args"]["train_strides"] = args.train_strides
        blocks = [("beam_saved", s) for s in args.settings] + [("anchors", n) for n in site_counts]
        for seed in args.seeds:
            for experiment, which in blocks:
                if experiment == "beam_saved":
                    key, scores = str(which), beam_saved(run, str(which), seed)
                else:
                    key, scores = f"S{which}", anchor_ablation(run, int(which), seed)
                results.setdefault(experiment, {}).setdefault(key, {})[str(seed)] = scores
                elapsed = time.perf_counter() - started
                print(f"[paradigm_sensors] {experiment} {key}, seed {seed}: {elapsed:.0f} s", flush=True)
                if partial:
                    partial.write_text(json.dumps({"seconds": elapsed, "results": results}, indent=2))
    return results, run.test_sites


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    started = time.perf_counter()
    partial = args.markdown.with_suffix(".partial.json") if args.markdown else None
    if args.report_only:  # tables from a (partial) run's JSON, e.g. one cut short after its first seeds
        loaded = json.loads(args.report_only.read_text())
        results, seconds = loaded["results"], loaded["seconds"]
        args.seeds = sorted({int(k) for per in results.values() for v in per.values() for k in v})
        test_sites = [f"s{args.site_seed}_site{k:05d}" for k in range(1, args.test_sites + 1)]
    else:
        results, test_sites = train_all(args, partial)
        seconds = time.perf_counter() - started
    saved_rows, anchor_rows, targets = summarise(results, args)
    note = (
        f", {seconds:.0f} s; {args.test_sites} unseen test sites ({', '.join(test_sites)}), "
        f"{args.train_sites} training sites, {args.sequences} passes each, seeds {args.seeds}"
    )
    title = "Beam training saved: beam top-1 / top-3 (mean of 3 steps), absolute beams"
    header = ["setting", "model", "top-1", "top-3"]
    report(title, header, saved_rows, "paradigm_sensors.py", argv, args.markdown, note=note)
    anchor_title = "Anchor ablation (Fig. 4e) on unseen sites: beam + camera + GPS, relative beam head"
    report(anchor_title, ["training sites", "anchor", "top-1", "top-3"], anchor_rows, "", None, None)
    print("\n".join(targets))
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "command": "python benchmarks/paradigm_sensors.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": args.seeds,
        "seconds": seconds,
        "settings": {k: v for k, v in vars(args).items() if k not in ("markdown", "report_only")},
        "test_sites": test_sites,
        "results": results,
        "targets": targets,
    }
    if args.markdown:
        lines = [
            f"## {anchor_title}",
            "",
            "| training sites | anchor | top-1 | top-3 |",
            "|---|---|---|---|",
            *("| " + " | ".join(r) + " |" for r in anchor_rows),
            "",
            "## Targets (issue 13)",
            "",
            *targets,
            "",
        ]
        with args.markdown.open("a") as f:
            f.write("\n".join(lines))
        plot(results, args, args.markdown.with_suffix(".png"))
        args.markdown.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
        if partial and not args.report_only:
            partial.unlink(missing_ok=True)  # the full JSON now holds everything
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
