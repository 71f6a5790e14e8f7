"""``wmlm online``: replay a recorded site through an ``OnlineAdapter`` and see how serving would have gone.

    wmlm online --ckpt wmlm.ckpt --data ../shared/data/deepsense6g --scenarios scenario5 --compare

The scenarios named (all under ``--data`` by default) are one base station's log, streamed in file order
as one site (``wmlm.deploy.prequential.scenario_stream``): every window is predicted before anything from
it or later is learned, each sample's best beam reaches the adapter ``--label-delay`` samples late, and a
vehicle pass is learned from once it ended (``prequential_evaluate``). The command prints top-1 / top-3
per future step, DBA, the update time per pass against the pass's real-time duration, and prediction
latency; ``--compare`` adds the same stream served without adapting; ``--json`` writes the numbers and
the running accuracy after each pass. ``--state DIR`` keeps what the adapter learned (``OnlineAdapter.save``:
safetensors + JSON): the next replay of the same site with the same ``--state`` resumes from it, as a base
station does after a restart.

What adapts is an online *variant* (``ONLINE_VARIANTS``): ``heads`` or ``heads+backbone`` (optimizer steps
after each pass), ``prior`` (the site's beam counts, ``wmlm.deploy.site_prior``), ``memory`` (the nearest
ended windows vote, ``wmlm.deploy.site_memory``), or combinations joined by ``+``. ``prior+memory``, the
default, takes no optimizer step and was best on the real development sites (docs/results/online.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wmlm.deploy.adapter_state import VERB, is_state_folder
from wmlm.errors import ConfigError, DataError, OutputError
from wmlm.outputs import atomic_write_text, prepare_output_dir

if TYPE_CHECKING:
    from wmlm.deploy.online import OnlineAdapter
    from wmlm.deploy.prequential import LabelledSample, PrequentialResult
    from wmlm.model.wmlm import WMLM

ZERO_SHOT = "zero-shot"  # serve the pretrained model as it is, learn nothing
ONLINE_VARIANTS = (
    "heads",
    "heads+backbone",
    "prior",
    "heads+prior",
    "heads+backbone+prior",
    "memory",
    "prior+memory",
    "heads+prior+memory",
)
DEFAULT_VARIANT = "prior+memory"
SITE_PRIOR = 50.0  # pseudo-counts of the model in the site prior (best of 2-200 on the development sites)
SITE_MEMORY = 0.3  # share of the site memory's vote, chosen in docs/results/online.md


def online_options(
    variant: str, steps_per_pass: int, site_prior: float = SITE_PRIOR, site_memory: float = SITE_MEMORY
) -> dict[str, object]:
    """``OnlineAdapter`` options of one online variant: ``zero-shot``, an ``adapt`` value (``heads``,
    ``heads+backbone``) or none, with ``+prior`` (the site's beam counts, ``site_prior`` pseudo-counts of the
    model, ``wmlm.deploy.site_prior``) and/or ``+memory`` (a nearest-neighbour vote of the site's ended
    windows with weight ``site_memory``, ``wmlm.deploy.site_memory``); ``prior``, ``memory``,
    ``prior+memory`` alone take no optimizer steps."""
    if variant not in (ZERO_SHOT, *ONLINE_VARIANTS):
        raise ConfigError(
            f"unknown online variant {variant!r}; choose from {', '.join((ZERO_SHOT, *ONLINE_VARIANTS))}"
        )
    parts = variant.split("+")
    learner = "+".join(part for part in parts if part not in ("prior", "memory"))
    gradient_free = learner in ("", ZERO_SHOT)
    return {
        "adapt": "heads" if gradient_free else learner,
        "steps_per_pass": 0 if gradient_free else steps_per_pass,
        "site_prior": site_prior if "prior" in parts else None,
        "site_memory": site_memory if "memory" in parts else None,
    }


def site_stream(
    model: WMLM | str | Path, root: Path | str, scenarios: Sequence[str] | None
) -> list[LabelledSample]:
    """Every sample of ``scenarios`` under ``root`` (None: all of them), in file order, as one site's
    prequential stream, with the fields ``model`` (a ``WMLM`` or a checkpoint path) reads; parsed arrays
    are cached as for training (``wmlm.data.cache``)."""
    from wmlm.data.cache import default_cache_dir, load_scenarios
    from wmlm.deploy.export import load_model
    from wmlm.deploy.prequential import scenario_stream

    if isinstance(model, (str, Path)):
        model = load_model(model)
    inputs = model.data_fields()["inputs"]
    data = load_scenarios(
        root,
        [*inputs.values(), "beam_label"],
        list(scenarios) if scenarios is not None else None,
        cache_dir=default_cache_dir() / "arrays",
    )
    return list(scenario_stream(data, inputs))


def new_adapter(model: WMLM, variant: str, args: argparse.Namespace) -> OnlineAdapter:
    """A fresh adapter of ``variant`` with the command's learning options."""
    from wmlm.deploy.online import OnlineAdapter

    options = online_options(variant, args.steps, args.site_prior, args.site_memory)
    return OnlineAdapter(
        model, buffer_windows=args.buffer, batch_size=args.batch_size, lr=args.lr, seed=args.seed, **options
    )


def replay(
    adapter: OnlineAdapter, stream: Sequence[LabelledSample], args: argparse.Namespace
) -> PrequentialResult:
    """One prequential run over ``stream`` (updates ``adapter`` in place); ``DataError`` if no window of
    ``past + future`` samples could be scored."""
    from wmlm.deploy.prequential import prequential_evaluate

    result = prequential_evaluate(adapter, stream, args.label_delay, args.sample_rate_hz)
    if not len(result.targets):
        raise DataError(
            f"{args.data}: no window to score: every pass is shorter than past + future = "
            f"{adapter.past + adapter.future} samples"
        )
    return result


def summary_lines(variant: str, result: PrequentialResult) -> list[str]:
    """What the terminal shows for one variant: accuracy per future step and mean, DBA, time budget."""
    numbers = result.summary()
    top1, top3 = numbers["top1"], numbers["top3"]
    mean = lambda values: sum(values) / max(len(values), 1)  # noqa: E731
    steps = " ".join(f"{a:.3f}" for a in top1)  # type: ignore[union-attr]
    steps3 = " ".join(f"{a:.3f}" for a in top3)  # type: ignore[union-attr]
    return [
        f"{variant}:",
        f"  top-1 {mean(top1):.3f} (t+1.. {steps})   top-3 {mean(top3):.3f} (t+1.. {steps3})   "  # type: ignore[arg-type]
        f"DBA {numbers['dba']:.3f}",
        f"  update {numbers['update_s_per_pass']:.3f} s per pass (max {numbers['update_s_max']:.3f}) against "
        f"passes of {numbers['pass_s_mean']:.1f} s; over budget {100 * numbers['passes_over_budget']:.0f} % "  # type: ignore[operator]
        f"of passes; predict {numbers['predict_ms_median']:.1f} ms median, {numbers['predict_ms_p95']:.1f} "
        "ms p95",
    ]


def record(variant: str, result: PrequentialResult) -> dict[str, object]:
    """The JSON of one variant: ``summary()`` and the running accuracy after each ended pass."""

    def finite(values: Sequence[float]) -> list[float | None]:
        return [None if v != v else float(v) for v in values]  # JSON has no NaN: None before any window

    return {
        "variant": variant,
        **result.summary(),
        "running_windows": result.running_windows().tolist(),
        "running_top1": finite(result.running_accuracy(1).tolist()),
        "running_top3": finite(result.running_accuracy(3).tolist()),
    }


def parser() -> argparse.ArgumentParser:
    """The options of ``wmlm online``."""
    p = argparse.ArgumentParser(
        prog="wmlm online",
        description="Replay one base station's recorded scenarios through an online adapter, test then "
        "train: every window is predicted before anything from it is learned.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint of a WMLM with a beam head (e.g. .../last.ckpt)")
    p.add_argument(
        "--data", required=True, help="a scenario folder or a folder of them (DeepSense or arrays)"
    )
    p.add_argument(
        "--scenarios",
        help="comma list of scenario folders of one site, streamed in this order (default: all)",
    )
    p.add_argument(
        "--adapt",
        default=DEFAULT_VARIANT,
        choices=(ZERO_SHOT, *ONLINE_VARIANTS),
        metavar="VARIANT",
        help=f"what learns while serving: {', '.join((ZERO_SHOT, *ONLINE_VARIANTS))} (default: {DEFAULT_VARIANT})",
    )
    p.add_argument("--compare", action="store_true", help="also serve the same stream zero-shot")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per ended pass (heads variants)")
    p.add_argument("--buffer", type=int, default=2048, help="replay buffer capacity in windows")
    p.add_argument("--batch-size", type=int, default=64, help="windows per optimizer step")
    p.add_argument("--lr", type=float, default=3e-4, help="online AdamW learning rate")
    p.add_argument("--site-prior", type=float, default=SITE_PRIOR, help="pseudo-counts of the model (+prior)")
    p.add_argument(
        "--site-memory", type=float, default=SITE_MEMORY, help="weight of the memory's vote (+memory)"
    )
    p.add_argument("--label-delay", type=int, default=3, help="samples until a sweep's best beam is known")
    p.add_argument("--sample-rate-hz", type=float, default=10.0, help="samples per second of the log")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="seed of buffer sampling and dropout")
    p.add_argument(
        "--json", type=Path, help="write the numbers here (a new file, or an earlier one with --overwrite)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--state",
        type=Path,
        help="adapter state folder: resumed from when it holds one (OnlineAdapter.save), and written after the "
        "replay, so that a site's next log continues where this one stopped",
    )
    return p


def online_command(argv: list[str]) -> int:
    """``wmlm online ...``; returns 0 (errors a user can fix raise ``WmlmError``)."""
    args = parser().parse_args(argv)
    if args.sample_rate_hz <= 0:
        raise ConfigError(f"--sample-rate-hz must be > 0 samples per second, got {args.sample_rate_hz}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.json is not None and args.json.exists() and not args.overwrite:
        raise OutputError(f"--json {args.json} exists; pass --overwrite to replace it")
    resumed = args.state is not None and is_state_folder(args.state)
    if args.state is not None and not resumed:
        prepare_output_dir(args.state, VERB, overwrite=None)  # new or empty: refused before any work
    import torch

    from wmlm.deploy.export import load_model
    from wmlm.deploy.online import OnlineAdapter

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = load_model(args.ckpt)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()] if args.scenarios else None
    stream = site_stream(model, args.data, scenarios)
    passes = len({item.sample.pass_id for item in stream})
    print(
        f"site: {len(stream)} samples in {passes} passes of {args.scenarios or 'every scenario'} under {args.data}"
    )
    variants = [ZERO_SHOT, args.adapt] if args.compare and args.adapt != ZERO_SHOT else [args.adapt]
    records = []
    for variant in variants:
        if variant == args.adapt and resumed:
            adapter = OnlineAdapter.load(args.state, model)
            print(
                f"resuming the adapter in {args.state} ({adapter.passes_ended} passes learned): its saved "
                "settings are used, not --adapt and the learning options"
            )
        else:
            adapter = new_adapter(model, variant, args)
        result = replay(adapter, stream, args)
        print("\n".join(summary_lines(variant, result)))
        records.append(record(variant, result))
        if variant == args.adapt and args.state is not None:
            adapter.save(args.state)
            print(f"saved the adapter to {args.state} ({adapter.passes_ended} passes learned)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "ckpt": str(args.ckpt),
            "data": str(args.data),
            "scenarios": scenarios,
            "variants": records,
        }
        atomic_write_text(args.json, json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
