"""Compact result tables: one row per head metric, one column per future step plus the mean."""

from __future__ import annotations

import re
from collections.abc import Mapping

from rich.table import Table

_STEP = re.compile(r"^(?P<split>[^/]+)/(?P<head>[^/]+)/(?P<metric>[^/]+?)(?:_t(?P<step>\d+))?$")


def collect(metrics: Mapping[str, float], split: str) -> dict[tuple[str, str], dict[str, float]]:
    """``{(head, metric): {"all": v, "t1": v, ...}}`` from flat keys like ``test/beam/top1_t2``."""
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        match = _STEP.match(key)
        if not match or match["split"] != split or match["metric"] == "loss":
            continue
        column = f"t{match['step']}" if match["step"] else "all"
        rows.setdefault((match["head"], match["metric"]), {})[column] = float(value)
    return rows


def results_table(metrics: Mapping[str, float], split: str = "test", title: str | None = None) -> Table:
    """A rich table of ``split`` metrics: rows ``head metric``, columns ``t1 .. tF`` and ``all``."""
    rows = collect(metrics, split)
    steps = sorted({c for cols in rows.values() for c in cols if c != "all"}, key=lambda c: int(c[1:]))
    table = Table(title=title or f"{split} results")
    table.add_column("head")
    table.add_column("metric")
    for column in [*steps, "all"]:
        table.add_column(column, justify="right")
    for (head, metric), values in sorted(rows.items()):
        table.add_row(head, metric, *(f"{values[c]:.3f}" if c in values else "" for c in [*steps, "all"]))
    return table


def comparison_table(
    results: Mapping[str, Mapping[str, float]], split: str = "test", head: str = "beam"
) -> Table:
    """Models side by side on the same windows: rows models, columns top-1 per future step and the means of
    top-1, top-3 and DBA (``results``: ``{model name: flat metrics}``, e.g. ``test/beam/top1_t2``)."""
    per_model = {name: collect(metrics, split) for name, metrics in results.items()}
    steps = sorted(
        {c for rows in per_model.values() for c in rows.get((head, "top1"), {}) if c != "all"},
        key=lambda c: int(c[1:]),
    )
    columns = [("top1", c) for c in steps] + [("top1", "all"), ("top3", "all"), ("dba", "all")]
    table = Table(title=f"{split}: {head} on the same windows")
    table.add_column("model")
    for metric, column in columns:
        table.add_column(f"{metric} {column}" if column != "all" else f"{metric}", justify="right")
    for name, rows in per_model.items():
        cells = [rows.get((head, metric), {}).get(column) for metric, column in columns]
        table.add_row(name, *("" if v is None else f"{v:.3f}" for v in cells))
    return table
