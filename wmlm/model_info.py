"""``wmlm model-info``: parameters and forward FLOPs of a WMLM per part, without allocating its weights.

The model is built on PyTorch's meta device, so even ``wmlm-2.4b`` (9.4 GB of float32 weights) is
described in a second and no memory. FLOPs count one multiply-add as 2 FLOPs and are per window of
``past`` steps of one sample (batch size 1).

Backbone FLOPs are analytic, from the preset. With width ``w``, depth ``L``, MLP ratio ``r`` and ``P``
past steps, every block spends on each step:

- attention projections (query, key, value, output): ``2 · 4 · w²``
- attention scores ``QKᵀ`` and their weighted sum of values: ``2 · 2 · P · w`` (each step is scored
  against all ``P`` steps: the causal mask hides half of the ``P × P`` matrix but does not skip it)
- MLP (two linear layers): ``2 · 2 · r · w²``

so ``FLOPs/step = L · ((8 + 4r) · w² + 4 · P · w)`` (``L · (24 w² + 4 P w)`` for ``r = 4``) and
``FLOPs/window = P · FLOPs/step``. Norms, softmax, GELU and biases (``O(w)`` per step) are left out.
Encoders, fusion and heads depend on plugins, so their matmuls and convolutions are counted by
``torch.utils.flop_counter.FlopCounterMode`` on a meta-device forward of one window. Per-step figures are
per-window figures divided by ``P`` (heads read only the last step, their cost is spread over the window).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from wmlm.model.backbone import PRESETS, BackbonePreset
from wmlm.model.wmlm import WMLM


@dataclass(frozen=True)
class Part:
    """One row of the report: a named part, its parameter count and forward FLOPs per window."""

    name: str
    parameters: int
    flops_per_window: int | None  # None: the part's forward could not run on the meta device


def backbone_flops_per_step(preset: BackbonePreset, past: int) -> int:
    """Matmul FLOPs of the causal transformer per step of a window of ``past`` steps (see module doc)."""
    w, r = preset.width, preset.mlp_ratio
    per_block = 8 * w * w + int(4 * r * w * w) + 4 * past * w
    return preset.depth * per_block


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _counted_flops(run: Any) -> int | None:
    """FLOPs of calling ``run()`` as counted by ``FlopCounterMode``, or None if it fails on meta tensors."""
    try:
        with FlopCounterMode(display=False) as counter:
            run()
    except (RuntimeError, NotImplementedError, ValueError, TypeError):
        return None
    return int(counter.get_total_flops())


def build_meta_model(preset: str, modalities: list[str], heads: list[str], past: int) -> WMLM:
    """The full ``WMLM`` with every tensor on the meta device (shapes only, no storage)."""
    anchor = "beam" if "beam" in modalities else modalities[0]
    with torch.device("meta"):
        model = WMLM(
            modalities=modalities,
            anchor=anchor,
            heads=heads,
            preset=preset,
            past=past,
            align_epochs=1 if len(modalities) > 1 else 0,
            adapt_epochs=1,
        )
    return model.eval()


def describe(model: WMLM, preset: str) -> list[Part]:
    """Parts of ``model`` (encoders, alignment, fusion, backbone, heads), in forward order."""
    past = model.past
    with torch.device("meta"):
        batch: dict[str, Any] = {
            name: torch.zeros(1, past, *spec.step_shape, dtype=spec.dtype)
            for name, spec in model.modality_specs.items()
        }
        batch["mask"] = {name: torch.ones(1, past, dtype=torch.bool) for name in model.modality_specs}
        embed_dim = next(iter(model.fusion.values())).in_features
        embeddings = {name: torch.zeros(1, past, embed_dim) for name in model.modality_specs}
        hidden = torch.zeros(1, past, model.backbone.preset.width)
    parts = []
    with torch.no_grad():
        for name, encoder in model.encoders.items():
            flops = _counted_flops(lambda e=encoder, x=batch[name]: e(x))
            parts.append(Part(f"encoder {name}", count_parameters(encoder), flops))
        parts.append(Part("alignment", count_parameters(model.alignment), 0))
        fusion_flops = _counted_flops(lambda: model.fuse(embeddings, batch["mask"]))
        parts.append(Part("fusion", count_parameters(model.fusion), fusion_flops))
        backbone_flops = past * backbone_flops_per_step(model.backbone.preset, past)
        parts.append(Part(f"backbone {preset}", count_parameters(model.backbone), backbone_flops))
        for name, head in model.heads.items():
            flops = _counted_flops(lambda h=head: h(hidden, batch))
            parts.append(Part(f"head {name}", count_parameters(head), flops))
    return parts


def report(preset: str, modalities: list[str], heads: list[str], past: int) -> dict[str, Any]:
    """JSON-ready description: configuration, one entry per part and the total.

    ``{"preset", "width", "depth", "attention_heads", "mlp_ratio", "past", "future", "embed_dim",
    "modalities", "task_heads", "parts": [{"part", "parameters", "flops_per_window", "flops_per_step"}],
    "total": {"parameters", "flops_per_window", "flops_per_step"}}``; FLOPs of a part are null when its
    forward cannot run on the meta device, and the total then counts the other parts only.
    """
    model = build_meta_model(preset, modalities, heads, past)
    config = model.backbone.preset
    parts = describe(model, preset)
    total_flops = sum(p.flops_per_window or 0 for p in parts)
    return {
        "preset": preset,
        "width": config.width,
        "depth": config.depth,
        "attention_heads": config.heads,
        "mlp_ratio": config.mlp_ratio,
        "past": past,
        "future": model.future,
        "embed_dim": next(iter(model.fusion.values())).in_features,
        "modalities": list(model.modality_specs),
        "task_heads": list(model.heads),
        "parts": [
            {
                "part": p.name,
                "parameters": p.parameters,
                "flops_per_window": p.flops_per_window,
                "flops_per_step": None if p.flops_per_window is None else p.flops_per_window / past,
            }
            for p in parts
        ],
        "total": {
            "parameters": count_parameters(model),
            "flops_per_window": total_flops,
            "flops_per_step": total_flops / past,
        },
    }


def _si(value: float | None, unit: str) -> str:
    """``2.36 G<unit>``-style rendering; ``n/a`` for None."""
    if value is None:
        return "n/a"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def rich_report(info: dict[str, Any]) -> Table:
    """The report as a table: one row per part, the total last."""
    title = (
        f"wmlm {info['preset']}: width {info['width']}, depth {info['depth']}, {info['attention_heads']} "
        f"heads; {'+'.join(info['modalities'])} -> {'+'.join(info['task_heads'])}; "
        f"past {info['past']}, future {info['future']}, embed_dim {info['embed_dim']}"
    )
    weights = _si(4 * info["total"]["parameters"], "B")
    caption = f"FLOPs: forward, one window, multiply-add = 2. Weights: {weights} in float32."
    table = Table(title=title, caption=caption)
    for column in ("part", "parameters", "share", "FLOPs / window", "FLOPs / step"):
        table.add_column(column, justify="left" if column == "part" else "right")
    total = info["total"]
    for row in [*info["parts"], {"part": "total", **total}]:
        if row["part"] == "total":
            table.add_section()
        table.add_row(
            row["part"],
            f"{row['parameters']:,}",
            f"{100 * row['parameters'] / total['parameters']:.1f} %",
            _si(row["flops_per_window"], "FLOP"),
            _si(row["flops_per_step"], "FLOP"),
        )
    return table


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def model_info_command(argv: list[str]) -> int:
    """``wmlm model-info --preset X [--modalities beam,gps] [--heads beam] [--past 5] [--json]``."""
    parser = argparse.ArgumentParser(
        prog="wmlm model-info",
        description="Parameters and forward FLOPs of a WMLM, per part, built on the meta device.",
    )
    parser.add_argument("--preset", default="small", help=f"backbone preset: {', '.join(PRESETS)}")
    parser.add_argument("--modalities", default="beam,gps", help="comma-separated modality names")
    parser.add_argument("--heads", default="beam", help="comma-separated head names")
    parser.add_argument("--past", type=int, default=5, help="input steps per window")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.preset not in PRESETS:
        print(
            f"wmlm model-info: unknown preset {args.preset!r}; available: {', '.join(PRESETS)}",
            file=sys.stderr,
        )
        return 2
    modalities, heads = _names(args.modalities), _names(args.heads)
    if not modalities:
        print("wmlm model-info: --modalities needs at least one name", file=sys.stderr)
        return 2
    try:
        info = report(args.preset, modalities, heads, args.past)
    except (KeyError, ValueError) as error:
        print(f"wmlm model-info: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        Console().print(rich_report(info))
    return 0
