"""Samples per second of ``wmlm data synth --engine sionna`` on this machine.

Runs the engine in-process (imports and kernel compilation excluded: one warm-up run per configuration first)
and prints one line per configuration: samples, seconds for the whole site (scene load, street search,
tracing, beams) and for writing the folder, and samples/s end to end. ``--camera`` adds the camera's own
rate: every sample's frame rendered from the BS (``wmlm_sionna.camera``, 128x72, ``--camera-spp``).

    OMP_NUM_THREADS=1 python plugins/wmlm-sionna/benchmarks/throughput.py --scene simple_street_canyon \
        --sequences 16 --max-depth 2 --max-depth 3 --camera
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from wmlm.data.sim.writer import write_scenario_folder

from wmlm_sionna.camera import SceneCamera, SceneCameraConfig
from wmlm_sionna.engine import parser as engine_parser
from wmlm_sionna.engine import simulate


def run_once(
    scene: str, sequences: int, seed: int, depth: int, samples_per_src: int, out: Path, camera_spp: int | None
) -> dict:
    args = engine_parser().parse_args(
        [
            "--out", str(out), "--scene", scene, "--sequences", str(sequences), "--seed", str(seed),
            "--max-depth", str(depth), "--samples-per-src", str(samples_per_src), "--overwrite",
        ]
    )  # fmt: skip
    started = time.perf_counter()
    traced = simulate(args)
    simulated = time.perf_counter() - started
    write_scenario_folder(traced.sim, out / "bench", overwrite=True)
    written = time.perf_counter() - started - simulated
    result = {"samples": len(traced.sim), "simulate_s": simulated, "write_s": written}
    if camera_spp is not None:
        camera = SceneCamera(traced.rt, traced.scene, traced.site, SceneCameraConfig(spp=camera_spp), out)
        started = time.perf_counter()
        with camera:
            for xyz in traced.scene_xyz:
                camera.render(xyz)
        result["camera_s"] = time.perf_counter() - started
        camera.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene", default="simple_street_canyon")
    p.add_argument("--sequences", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-depth", type=int, action="append", help="repeatable (default 2)")
    p.add_argument("--samples-per-src", type=int, default=100_000)
    p.add_argument("--camera", action="store_true", help="also time the camera frames")
    p.add_argument("--camera-spp", type=int, default=SceneCameraConfig.spp)
    args = p.parse_args()
    spp = args.camera_spp if args.camera else None
    depths = args.max_depth or [2]
    print(
        f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            run_once(args.scene, 1, args.seed, depth, args.samples_per_src, Path(tmp), spp)  # compile kernels
            r = run_once(args.scene, args.sequences, args.seed, depth, args.samples_per_src, Path(tmp), spp)
            total = r["simulate_s"] + r["write_s"]
            print(
                f"scene {args.scene}, max_depth {depth}, samples_per_src {args.samples_per_src}: "
                f"{r['samples']} samples, simulate {r['simulate_s']:.2f} s, write {r['write_s']:.2f} s, "
                f"{r['samples'] / total:.0f} samples/s end to end ({r['samples'] / r['simulate_s']:.0f} without writing)"
            )
            if "camera_s" in r:
                print(
                    f"  camera 128x72, {spp} spp: {r['camera_s']:.2f} s, {r['samples'] / r['camera_s']:.1f} frames/s; "
                    f"with it {r['samples'] / (total + r['camera_s']):.1f} samples/s end to end"
                )


if __name__ == "__main__":
    main()
