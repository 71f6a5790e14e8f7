"""Which sensors help on a site never seen in training: wmlm per modality set on the built-in simulator.

    python benchmarks/modality_sets.py [--sets beam beam+image ...] [--markdown docs/results/modality_sets.md]

Every set trains the quickstart recipe (``examples/quickstart.yaml``: anchor beam, 2 alignment + 8
adaptation epochs, ``small`` preset, mirrored training windows) on ``urban_canyon``, ``suburban`` and
``night`` and is tested on ``wide_avenue``, from one simulation with every sensor (camera, LiDAR, CSI), so
the sets differ in their inputs only. A set of the beam alone has no alignment stage and trains 10
adaptation epochs instead. Sets with the camera are tested a second time with the camera gone (the
``image`` input left out of every test batch), which gives the drop when the camera fails at test time.
With ``--anchors``, the set ``--anchor-set`` (default beam + image + GPS) is also trained once per anchor
(``image`` as the anchor, ``beam+image+gps`` joint anchors, ``none``: no alignment stage): the paper's
anchor ablation (its Fig. 4e) on the simulator.
LiDAR and CSI need the plugins: ``pip install ./plugins/wmlm-lidar ./plugins/wmlm-csi``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import SMOKE_ARGS, Scores, quiet_run, report, summarise  # noqa: E402

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.yaml"
# each modality as the quickstart configures it (site-invariant beam frame and GPS features)
MODALITIES = {
    "beam": "{class_path: wmlm.modalities.BeamModality, init_args: {frame: last_beam}}",
    "image": "{class_path: wmlm.modalities.ImageModality, init_args: {tower: tiny}}",
    "gps": "{class_path: wmlm.modalities.GpsModality, init_args: {features: range}}",
    "lidar": "lidar",
    "csi": "csi",
}
DEFAULT_SETS = ["beam", "beam+image", "beam+image+gps", "beam+lidar", "beam+image+gps+lidar+csi"]


def smoke_args() -> list[str]:
    """Seconds-long settings for tests: tiny model, one epoch per stage, two batches."""
    return [*SMOKE_ARGS, "--model.preset", "tiny", "--model.embed_dim", "16"]  # epochs: set_args


def set_args(names: list[str], smoke: bool, anchor: str = "beam") -> list[str]:
    """Model arguments of one run: the modalities, the anchor(s) (``a+b`` joint, ``none``: no alignment)."""
    unknown = [n for n in names if n not in MODALITIES]
    if unknown:
        raise SystemExit(f"--sets: unknown modality {unknown}; known: {list(MODALITIES)}")
    if names[0] != "beam":
        raise SystemExit(
            f"--sets: every set starts with beam (the beam head reads it); got {'+'.join(names)}"
        )
    anchors = [] if anchor == "none" else anchor.split("+")
    if any(a not in names for a in anchors):
        raise SystemExit(f"--anchors: {anchor} is not part of the set {'+'.join(names)}")
    align, adapt = (1, 1) if smoke else (2, 8)
    if len(names) == 1 or not anchors:  # nothing to align: the same number of epochs, all adaptation
        align, adapt = 0, align + adapt
    return [
        "--model.modalities",
        "[" + ", ".join(MODALITIES[n] for n in names) + "]",
        "--model.anchor",
        "[" + ", ".join(anchors or ["beam"]) + "]",
        "--model.align_epochs",
        str(align),
        "--model.adapt_epochs",
        str(adapt),
    ]


def evaluate(
    names: list[str], anchor: str, common: list[str], out: Path, smoke: bool, log: io.TextIOBase
) -> tuple[Scores, Scores | None]:
    """Trains one modality set; returns its test scores, and those without the camera (if it has one)."""
    model = set_args(names, smoke, anchor)
    cli = quiet_run(
        ["fit", *common, *model, "--trainer.default_root_dir", str(out), "--test_after_fit", "false"], log
    )
    best = cli.trainer.checkpoint_callback.best_model_path
    if not best:
        raise RuntimeError(
            f"{'+'.join(names)}: no best checkpoint (was the validation split empty?); see {out}"
        )
    inputs = cli.model.data_fields()["inputs"]
    test = ["test", *common, *model, "--trainer.logger", "false", "--ckpt_path", best]
    tested = quiet_run([*test, "--trainer.default_root_dir", str(out / "test")], log)
    scores = summarise(tested.trainer.callback_metrics)
    if "image" not in names:
        return scores, None
    without = "{" + ", ".join(f"{k}: {v}" for k, v in inputs.items() if k != "image") + "}"
    blind = quiet_run(
        [*test, "--trainer.default_root_dir", str(out / "test_blind"), "--data.inputs", without], log
    )
    return scores, summarise(blind.trainer.callback_metrics)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Scores]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", nargs="*", default=DEFAULT_SETS, help="modality sets, e.g. beam+image+gps")
    parser.add_argument(
        "--anchors",
        nargs="*",
        default=[],
        help="anchor ablation of --anchor-set: anchors such as beam, image, gps, beam+image+gps (joint), none",
    )
    parser.add_argument("--anchor-set", default="beam+image+gps", help="modality set of the anchor ablation")
    parser.add_argument("--sequences", type=int, default=20, help="vehicle passes simulated per scenario")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long run for tests; numbers meaningless"
    )
    args = parser.parse_args(argv)
    sets = [s.split("+") for s in args.sets]
    anchor_set = args.anchor_set.split("+")
    runs = [("+".join(names), names, "beam") for names in sets]
    runs += [(f"{args.anchor_set}, anchor {a}", anchor_set, a) for a in args.anchors]
    if args.anchors:
        sets.append(anchor_set)
    sensors = sorted(
        {"camera" if n == "image" else n for names in sets for n in names} & {"camera", "lidar", "csi"}
    )
    log = io.StringIO()
    common = [
        "--config",
        str(QUICKSTART),
        "--data.sequences",
        str(args.sequences),
        "--data.sensors",
        "[" + ", ".join(sensors) + "]",
        "--trainer.enable_progress_bar",
        "false",
        *(smoke_args() if args.smoke else []),
    ]
    results: dict[str, dict[str, Scores]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, names, anchor) in enumerate(runs):
            scores, blind = evaluate(names, anchor, common, Path(tmp) / f"run{number}", args.smoke, log)
            results[name] = {"all sensors": scores, **({"camera missing": blind} if blind else {})}
    seconds = time.perf_counter() - started
    header = [
        "modalities (anchor beam unless named)",
        "top-1 t+1",
        "t+2",
        "t+3",
        "top-3 t+1",
        "t+2",
        "t+3",
        "DBA",
        "top-1 camera missing",
        "drop",
    ]
    rows = []
    for name, per in results.items():
        scores = per["all sensors"]
        cells = [name, *(f"{v:.3f}" for v in [*scores["top1"], *scores["top3"], scores["dba"]])]  # type: ignore[misc]
        if "camera missing" in per:
            blind_top1 = mean(per["camera missing"]["top1"])  # type: ignore[arg-type]
            drop = mean(scores["top1"]) - blind_top1  # type: ignore[arg-type]
            cells += [f"{blind_top1:.3f}", f"{100 * drop:+.1f} pts"]
        else:
            cells += ["", ""]
        rows.append(cells)
    report(
        "Modality sets and anchors on a simulated site never seen in training (wide_avenue)",
        header,
        rows,
        "modality_sets.py",
        argv,
        args.markdown,
        note=f", {seconds:.0f} s",
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
