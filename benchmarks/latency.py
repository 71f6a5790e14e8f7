"""Batch-1 inference latency of the default WMLM: PyTorch eager, torch.compile, ONNX Runtime.

    python benchmarks/latency.py [--ckpt PATH] [--runs 400] [--rounds 5] [--torch-threads 1]
                                 [--no-compile] [--exporter auto] [--markdown docs/results/latency.md]

The model is the default ``WMLM()``: ``small`` preset, beam + GPS in, beam head out, random initial weights
(the weights do not change the work), or the model of ``--ckpt``. One window of ``P = 5`` steps: beam power
``[1, 5, 64]`` (linear) and GPS ``[1, 5, 2]`` (metres); the output is the beam logits ``[1, 3, 64]``.

Methods, each called on the same window:

- PyTorch eager: ``model(batch)`` under ``torch.inference_mode`` (``--torch-threads`` threads, default 1).
- torch.compile: the same model through ``torch.compile`` (inductor; on a CPU it compiles C++ with the
  system compiler). Reported as failed, with the error, if it does not work here.
- ONNX Runtime with 1 and 2 intra-op threads: ``InferenceSession.run`` on the graph of
  ``wmlm.deploy.export.export_model`` (default exporter), inputs already numpy.
- Predictor: ``wmlm.deploy.Predictor.predict`` (1 thread), i.e. ONNX Runtime plus the input checks.

Timing: every method is warmed up, then called ``--runs`` times per round for ``--rounds`` rounds, the
methods interleaved round by round (in rotating order), so load from other processes, which comes and goes
over seconds, reaches all of them alike. Figures are the median and 90th percentile of single calls
(``time.perf_counter_ns``), in milliseconds, and each method's median relative to eager's. Target:
ONNX Runtime at <= 1 ms per window.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from rich.console import Console
from rich.table import Table

from wmlm.deploy import spec
from wmlm.deploy.export import export_model, load_model
from wmlm.deploy.predictor import Predictor
from wmlm.model.wmlm import WMLM

TARGET_MS = 1.0
WARMUP_CALLS = 50


def machine() -> dict[str, Any]:
    """CPU model, cores, load and versions of the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],
    }


def window(past: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One window as numpy: ``beam [1, P, 64]`` linear power in (0, 1], ``gps [1, P, 2]`` metres."""
    rng = np.random.default_rng(seed)
    return {
        "beam": rng.uniform(1e-4, 1.0, (1, past, 64)).astype(np.float32),
        "gps": (30.0 * rng.standard_normal((1, past, 2))).astype(np.float32),
    }


def torch_batch(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    batch: dict[str, Any] = {m: torch.from_numpy(x) for m, x in inputs.items()}
    batch["mask"] = {m: torch.ones(x.shape[:2], dtype=torch.bool) for m, x in inputs.items()}
    return batch


def ort_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def methods(
    model: WMLM, inputs: dict[str, np.ndarray], export_dir: Path, compile_model: bool, notes: dict[str, str]
) -> dict[str, Callable[[], np.ndarray]]:
    """``{method: call}``; each call runs one window and returns the beam logits ``[1, F, 64]``.

    ONNX Runtime's extra intra-op threads spin while they wait for work (its default), which on a shared
    machine competes with other processes; the 2-thread figures show that.
    """
    batch = torch_batch(inputs)

    def eager() -> np.ndarray:
        with torch.inference_mode():
            return model(batch)["beam"].numpy()

    calls: dict[str, Callable[[], np.ndarray]] = {"PyTorch eager": eager}
    if compile_model:
        compiled = torch.compile(model)

        def compiled_call() -> np.ndarray:
            with torch.inference_mode():
                return compiled(batch)["beam"].numpy()

        started = time.perf_counter()
        try:
            compiled_call()
            notes["torch.compile"] = (
                f"first call (compilation) {time.perf_counter() - started:.1f} s; inductor reuses its on-disk "
                "cache of earlier runs, so a first compilation on a fresh machine takes longer"
            )
            calls["torch.compile"] = compiled_call
        except Exception as error:  # inductor fails in many ways (no compiler, unsupported op, ...)
            notes["torch.compile"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    else:
        notes["torch.compile"] = "skipped (--no-compile)"
    model_path = export_dir / "model.onnx"
    feed = {spec.input_name(m): x for m, x in inputs.items()}
    feed |= {spec.mask_name(m): np.ones(x.shape[:2], dtype=np.float32) for m, x in inputs.items()}
    for threads in (1, 2):
        session = ort_session(model_path, threads)
        calls[f"ONNX Runtime, {threads} thread{'s' if threads > 1 else ''}"] = lambda s=session: s.run(
            [spec.output_name("beam")], feed
        )[0]
    notes["ONNX Runtime, 2 threads"] = (
        "the second thread spins while it waits for work (ONNX Runtime's default) and competes with other "
        "processes for the 2 cores: one thread is the setting for single windows"
    )
    predictor = Predictor(export_dir, intra_op_threads=1)
    calls["Predictor (ONNX Runtime, 1 thread, checked inputs)"] = lambda: predictor.predict(inputs)["beam"]
    return calls


def measure(calls: dict[str, Callable[[], np.ndarray]], runs: int, rounds: int) -> dict[str, list[float]]:
    """``{method: [milliseconds per call]}``, methods interleaved round by round after a warm-up."""
    for call in calls.values():
        for _ in range(WARMUP_CALLS):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            for _ in range(runs):
                start = time.perf_counter_ns()
                call()
                samples[name].append((time.perf_counter_ns() - start) / 1e6)
    return samples


def summarise(
    samples: dict[str, list[float]], reference: np.ndarray, outputs: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    eager_median = float(np.median(samples["PyTorch eager"]))
    rows = []
    for name, times in samples.items():
        median = float(np.median(times))
        rows.append(
            {
                "method": name,
                "median_ms": median,
                "p90_ms": float(np.percentile(times, 90)),
                "vs_eager": median / eager_median,
                "max_abs_diff_vs_eager": float(np.abs(outputs[name] - reference).max()),
                "calls": len(times),
            }
        )
    return rows


def table(rows: list[dict[str, Any]], title: str) -> Table:
    result = Table(title=title)
    for column in ("method", "median ms", "p90 ms", "time vs eager", "max |Δ| vs eager"):
        result.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        result.add_row(
            row["method"],
            f"{row['median_ms']:.3f}",
            f"{row['p90_ms']:.3f}",
            f"{row['vs_eager']:.2f}x",
            f"{row['max_abs_diff_vs_eager']:.1e}",
        )
    return result


def markdown(results: dict[str, Any], command: str) -> str:
    m = results["machine"]
    lines = [
        f"# {results['title']}",
        "",
        f"{datetime.date.today()}; {m['cpu']}, {m['cores']} cores, torch {m['torch']} (intra-op threads: "
        f"{results['torch_threads']}), ONNX Runtime {m['onnxruntime']}, Python {m['python']}; exporter "
        f"{results['exporter']}; "
        f"1-minute load average {m['load_average_1min']:.1f} before and {results['load_average_after']:.1f} "
        "after the run (other processes included).",
        "",
        "```bash",
        command,
        "```",
        "",
        "| method | median ms | p90 ms | time vs eager | max abs difference vs eager |",
        "|---|---|---|---|---|",
        *(
            f"| {r['method']} | {r['median_ms']:.3f} | {r['p90_ms']:.3f} | {r['vs_eager']:.2f}x | "
            f"{r['max_abs_diff_vs_eager']:.1e} |"
            for r in results["rows"]
        ),
        "",
        f"Target: ONNX Runtime <= {TARGET_MS:g} ms per window: **{results['target']}**.",
        "",
        "## Notes",
        "",
        *(f"- {name}: {note}" for name, note in results["notes"].items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ckpt", type=Path, help="a beam + gps WMLM checkpoint (default: the default model, random weights)"
    )
    parser.add_argument("--runs", type=int, default=400, help="timed calls per method per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of interleaved methods")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--exporter", default="auto", choices=["auto", "dynamo", "torchscript"], help="ONNX exporter"
    )
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    args = parser.parse_args(argv)
    if min(args.runs, args.rounds, args.torch_threads) < 1:
        parser.error("--runs, --rounds and --torch-threads must be >= 1")

    torch.set_num_threads(args.torch_threads)
    console = Console()
    info = machine()
    console.print(
        f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_average_1min']:.1f}; "
        f"torch {info['torch']} (intra-op threads: {args.torch_threads}), ONNX Runtime {info['onnxruntime']}"
    )
    torch.manual_seed(0)
    model = (load_model(args.ckpt) if args.ckpt else WMLM()).eval()
    inputs = window(model.past)
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        exported = export_model(model, folder, exporter=args.exporter, source=args.ckpt)
        notes["export"] = f"{exported['exporter']} exporter, {time.perf_counter() - started:.1f} s"
        calls = methods(model, inputs, Path(folder), not args.no_compile, notes)
        outputs = {name: call() for name, call in calls.items()}
        samples = measure(calls, args.runs, args.rounds)
    rows = summarise(samples, outputs["PyTorch eager"], outputs)
    ort_median = next(r["median_ms"] for r in rows if r["method"] == "ONNX Runtime, 1 thread")
    parameters = sum(p.numel() for p in model.parameters())
    source = f"checkpoint {args.ckpt}" if args.ckpt else "random weights"
    results = {
        "title": f"WMLM batch-1 latency: preset small ({parameters:,} parameters, {source}), beam + gps -> beam",
        "machine": info,
        "torch_threads": args.torch_threads,
        "exporter": exported["exporter"],
        "rows": rows,
        "target": f"met ({ort_median:.3f} ms)"
        if ort_median <= TARGET_MS
        else f"missed ({ort_median:.3f} ms)",
        "notes": notes,
        "load_average_after": os.getloadavg()[0],
    }
    load = max(info["load_average_1min"], results["load_average_after"])
    if load > (info["cores"] or 1):
        notes["machine"] = (
            f"shared with other jobs: 1-minute load average up to {load:.1f} on {info['cores']} cores, so "
            "other processes took turns on the cores; this mostly widens the 90th percentiles, and the "
            "interleaved rounds keep the ratios comparable"
        )
    console.print(table(rows, results["title"]))
    console.print(f"target ONNX Runtime <= {TARGET_MS:g} ms: {results['target']}")
    for name, note in notes.items():
        console.print(f"{name}: {note}")
    if args.markdown:
        command = "python benchmarks/latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, command.strip()))
        console.print(f"wrote {args.markdown}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
