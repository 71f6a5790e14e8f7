"""``benchmarks/sim_calibration.py``'s statistics on ray-traced passes: real DeepSense 6G vs the built-in
simulator vs Sionna RT scenes, one markdown table.

Imports the statistics from wmlm's own script (not copied), so the numbers are comparable with
``docs/results/sim_calibration.md``:

    OMP_NUM_THREADS=1 python plugins/wmlm-sionna/benchmarks/calibrate.py --real-root ../shared/data/deepsense6g \
        --scene simple_street_canyon --scene munich --sequences 40 --markdown docs/results/sionna.md
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

from wmlm_sionna.engine import parser as engine_parser
from wmlm_sionna.engine import simulate
from wmlm_sionna.site import TEMPLATE

REPO = Path(__file__).resolve().parents[3]


def calibration_module() -> ModuleType:
    """wmlm's ``benchmarks/sim_calibration.py``, imported from the checkout."""
    path = REPO / "benchmarks" / "sim_calibration.py"
    spec = importlib.util.spec_from_file_location("sim_calibration", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sim_calibration"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def traced_recording(
    cal: ModuleType, scene: str, sequences: int, seed: int, tx_dbm: float
) -> tuple[object, float]:
    with tempfile.TemporaryDirectory() as tmp:
        args = engine_parser().parse_args(
            ["--out", tmp, "--scene", scene, "--sequences", str(sequences), "--seed", str(seed),
             "--tx-power-dbm", str(tx_dbm)]
        )  # fmt: skip
        started = time.perf_counter()
        sim = simulate(args).sim
    rec = cal.Recording(f"sionna:{scene}", sim.beam, sim.seq_index, sim.power_linear)
    return rec, time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real-root", type=Path, required=True)
    p.add_argument("--scene", action="append", help="repeatable (default simple_street_canyon)")
    p.add_argument("--sequences", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--tx-power-dbm", type=float, action="append", help=f"repeatable (default {TEMPLATE.tx_power_dbm:g})"
    )
    p.add_argument("--markdown", type=Path)
    args = p.parse_args()
    cal = calibration_module()
    real = cal.statistics(cal.pool(cal.real_recordings(args.real_root), "real"))
    from wmlm.data.simulated import DEFAULT_PRESETS

    builtin = cal.simulated_recordings(list(DEFAULT_PRESETS), args.sequences, args.seed)
    sources = [("built-in simulator (all presets)", cal.statistics(cal.pool(builtin, "builtin")))]
    notes = []
    powers = args.tx_power_dbm or [TEMPLATE.tx_power_dbm]
    for scene in args.scene or ["simple_street_canyon"]:
        for tx_dbm in powers:
            rec, seconds = traced_recording(cal, scene, args.sequences, args.seed, tx_dbm)
            sources.append((f"Sionna RT {scene}, {tx_dbm:g} dBm", cal.statistics(rec)))
            notes.append(f"{scene} at {tx_dbm:g} dBm: {len(rec.beam)} samples in {seconds:.0f} s")
    keys = list(real)
    header = "| statistic | real DeepSense | " + " | ".join(name for name, _ in sources) + " |"
    lines = [header, "|" + " --- |" * (2 + len(sources))]
    for key in keys:
        cells = []
        for _, stats in sources:
            row = cal.compare({key: real[key]}, {key: stats[key]})[0]
            mark = "ok" if row[4] else "off"
            cells.append(f"{row[2]} ({row[3]}, {mark})")
        lines.append(
            f"| {key} | {cal.compare({key: real[key]}, {key: real[key]})[0][1]} | " + " | ".join(cells) + " |"
        )
    bins = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in cal.CHANGE_BINS)
    scenes = " ".join(f"--scene {scene}" for scene in args.scene or ["simple_street_canyon"])
    scenes += "".join(f" --tx-power-dbm {tx:g}" for tx in args.tx_power_dbm or [])
    text = "\n".join(
        [
            "# Realism of ray-traced passes (wmlm-sionna): the statistics of sim_calibration.py",
            "",
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d} UTC, {platform.machine()}, {os.cpu_count()} CPUs, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; seed {args.seed}, {args.sequences} "
            f"passes per source; histogram bins {bins} beams; target: TV distance <= {cal.TOLERANCE} or ratio "
            f"within 1 +- {cal.TOLERANCE}. Command:",
            "",
            "```bash",
            f"OMP_NUM_THREADS=1 python plugins/wmlm-sionna/benchmarks/calibrate.py --real-root {args.real_root} "
            f"{scenes} --sequences {args.sequences} --markdown {args.markdown}",
            "```",
            "",
            *lines,
            "",
            "Ray tracing: " + "; ".join(notes) + ".",
        ]
    )
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
